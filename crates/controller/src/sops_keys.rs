//! The age keys each AppProject may use to decrypt SOPS files at render time.
//!
//! Keys live in Secrets in ferry's namespace labelled [`SOPS_KEYS_LABEL`]`: "true"`. Every data
//! entry whose name ends in `.agekey` holds an age identity file (Flux's convention), and the
//! annotation [`SOPS_PROJECTS_ANNOTATION`] lists the AppProjects allowed to use them
//! (comma-separated; `*` for every project). A Secret without the annotation serves no project:
//! keys are never shared by default.

use ferry_source::render::KeyRing;
use tracing::warn;

use crate::labelled_secrets::LabelledSecrets;

/// The label that marks a Secret as holding SOPS age keys.
pub(crate) const SOPS_KEYS_LABEL: &str = "ferry.dev/sops-keys";
/// The annotation naming the AppProjects that may use a key Secret (`team-a,team-b`, or `*`).
pub(crate) const SOPS_PROJECTS_ANNOTATION: &str = "ferry.dev/sops-projects";
/// The suffix of the data entries that hold age identities.
pub(crate) const AGE_KEY_SUFFIX: &str = ".agekey";

/// Reads SOPS key Secrets from the controller's namespace (from a watch of the labelled
/// Secrets, see [`LabelledSecrets`]).
#[derive(Clone, Debug)]
pub(crate) struct SopsKeys {
    secrets: LabelledSecrets,
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
        SopsKeys {
            secrets: LabelledSecrets::new(client, namespace, &format!("{SOPS_KEYS_LABEL}=true")),
        }
    }

    /// The keys `project` may use. An entry that is not an age identity is skipped with a
    /// warning naming the Secret and entry (never its content).
    pub(crate) async fn for_project(&self, project: &str) -> Result<KeyRing, String> {
        let secrets = self.secrets.current().await.map_err(|e| {
            format!(
                "reading SOPS key Secrets ({}): {e}",
                self.secrets.selector()
            )
        })?;
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
