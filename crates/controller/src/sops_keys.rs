//! The age keys each AppProject may use to decrypt SOPS files at render time.
//!
//! Keys live in Secrets in ferry's namespace labelled [`SOPS_KEYS_LABEL`]`: "true"`. Every data
//! entry whose name ends in `.agekey` holds an age identity file (Flux's convention), and the
//! annotation [`SOPS_PROJECTS_ANNOTATION`] lists the AppProjects allowed to use them
//! (comma-separated; `*` for every project). A Secret without the annotation serves no project:
//! keys are never shared by default.

use ferry_source::render::KeyRing;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use tracing::warn;

/// The label that marks a Secret as holding SOPS age keys.
pub(crate) const SOPS_KEYS_LABEL: &str = "ferry.dev/sops-keys";
/// The annotation naming the AppProjects that may use a key Secret (`team-a,team-b`, or `*`).
pub(crate) const SOPS_PROJECTS_ANNOTATION: &str = "ferry.dev/sops-projects";
/// The suffix of the data entries that hold age identities.
pub(crate) const AGE_KEY_SUFFIX: &str = ".agekey";

/// Reads SOPS key Secrets from the controller's namespace: from a watch of the labelled
/// Secrets once it has listed them (no request per render), before that with a LIST.
#[derive(Clone)]
pub(crate) struct SopsKeys {
    secrets: Api<Secret>,
    store: kube::runtime::reflector::Store<Secret>,
    writer:
        std::sync::Arc<std::sync::Mutex<Option<kube::runtime::reflector::store::Writer<Secret>>>>,
}

impl std::fmt::Debug for SopsKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SopsKeys").finish_non_exhaustive()
    }
}

/// Whether the annotation value `projects` allows `project`.
pub(crate) fn project_allowed(projects: &str, project: &str) -> bool {
    projects
        .split(',')
        .map(str::trim)
        .any(|p| p == "*" || p == project)
}

impl SopsKeys {
    /// Key Secrets in `namespace`.
    pub(crate) fn new(client: kube::Client, namespace: &str) -> Self {
        let (store, writer) = kube::runtime::reflector::store();
        SopsKeys {
            secrets: Api::namespaced(client, namespace),
            store,
            writer: std::sync::Arc::new(std::sync::Mutex::new(Some(writer))),
        }
    }

    /// The key Secrets: from the watch once it has listed them (the first call starts it),
    /// else from the API.
    async fn key_secrets(&self) -> Result<Vec<std::sync::Arc<Secret>>, kube::Error> {
        use futures::StreamExt as _;
        use kube::runtime::WatchStreamExt as _;
        let selector = format!("{SOPS_KEYS_LABEL}=true");
        let writer = self.writer.lock().expect("sops keys lock").take();
        if let Some(writer) = writer {
            let stream = kube::runtime::reflector::reflector(
                writer,
                kube::runtime::watcher::watcher(
                    self.secrets.clone(),
                    kube::runtime::watcher::Config::default().labels(&selector),
                )
                .modify(crate::watches::drop_managed_fields_of),
            )
            .default_backoff();
            tokio::spawn(stream.for_each(|_| std::future::ready(())));
        }
        if futures::FutureExt::now_or_never(self.store.wait_until_ready())
            .is_some_and(|r| r.is_ok())
        {
            return Ok(self.store.state());
        }
        let list = self
            .secrets
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(list.items.into_iter().map(std::sync::Arc::new).collect())
    }

    /// The keys `project` may use. An entry that is not an age identity is skipped with a
    /// warning naming the Secret and entry (never its content).
    pub(crate) async fn for_project(&self, project: &str) -> Result<KeyRing, String> {
        let secrets = self
            .key_secrets()
            .await
            .map_err(|e| format!("reading SOPS key Secrets ({SOPS_KEYS_LABEL}=true): {e}"))?;
        let mut keys = KeyRing::new();
        for secret in secrets {
            let name = secret.metadata.name.clone().unwrap_or_default();
            let allowed = secret
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(SOPS_PROJECTS_ANNOTATION))
                .is_some_and(|p| project_allowed(p, project));
            if !allowed {
                continue;
            }
            let entries = secret
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                .chain(
                    secret
                        .string_data
                        .iter()
                        .flatten()
                        .map(|(k, v)| (k.clone(), v.clone())),
                );
            for (entry, text) in entries.filter(|(k, _)| k.ends_with(AGE_KEY_SUFFIX)) {
                if let Err(e) = keys.add_key_file(&format!("Secret {name} entry {entry}"), &text) {
                    warn!("skipping a SOPS key: {e}");
                }
            }
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn projects_are_named_explicitly_or_by_star() {
        assert!(project_allowed("team-a, team-b", "team-b"));
        assert!(project_allowed("*", "anything"));
        assert!(!project_allowed("team-a", "team-ab"));
        assert!(!project_allowed("", "default"));
    }
}
