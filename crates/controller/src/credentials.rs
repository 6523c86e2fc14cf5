//! Repository credentials from Secrets labelled `argocd.argoproj.io/secret-type: repository`
//! (matched by URL) or `repo-creds` (matched by the longest URL prefix), as Argo CD reads them.

use std::collections::BTreeMap;

use ferry_core::repo_url::normalize_repo_url;
use ferry_source::git::Credentials;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::Api;

use crate::destinations::SECRET_TYPE_LABEL;
use crate::labelled_secrets::LabelledSecrets;

/// Reads repository credentials from the controller's namespace.
#[derive(Clone)]
pub(crate) struct RepoCredentials {
    /// `repository` and `repo-creds` Secrets, from a watch (no request per fetch).
    secrets: LabelledSecrets,
    config_maps: Api<ConfigMap>,
    namespace: String,
}

/// The ConfigMap holding SSH known hosts, as Argo CD names it.
pub(crate) const KNOWN_HOSTS_CONFIG_MAP: &str = "argocd-ssh-known-hosts-cm";
/// Its key.
pub(crate) const KNOWN_HOSTS_KEY: &str = "ssh_known_hosts";

impl std::fmt::Debug for RepoCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoCredentials").finish_non_exhaustive()
    }
}

impl RepoCredentials {
    /// Credentials from Secrets in `namespace`.
    pub(crate) fn new(client: kube::Client, namespace: &str) -> Self {
        RepoCredentials {
            secrets: LabelledSecrets::new(
                client.clone(),
                namespace,
                &format!("{SECRET_TYPE_LABEL} in (repository,repo-creds)"),
            ),
            config_maps: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
        }
    }

    /// The SSH known hosts from ConfigMap `argocd-ssh-known-hosts-cm` (key `ssh_known_hosts`);
    /// empty when it does not exist (then every SSH host is unknown, and refused).
    pub(crate) async fn known_hosts(&self) -> Result<String, String> {
        let cm = self
            .config_maps
            .get_opt(KNOWN_HOSTS_CONFIG_MAP)
            .await
            .map_err(|e| format!("reading ConfigMap {KNOWN_HOSTS_CONFIG_MAP}: {e}"))?;
        Ok(cm
            .and_then(|c| c.data)
            .and_then(|mut d| d.remove(KNOWN_HOSTS_KEY))
            .unwrap_or_default())
    }

    /// `message` (a git failure) with a hint where to add the host key when ssh refused an
    /// unknown one.
    pub(crate) fn explain_host_key(&self, message: String) -> String {
        host_key_hint(message, &self.namespace)
    }

    /// The credentials for `url`: a `repository` Secret for exactly this URL wins, then the
    /// `repo-creds` Secret with the longest matching prefix; none means anonymous access.
    pub(crate) async fn for_url(&self, url: &str) -> Result<Credentials, String> {
        let want = normalize_repo_url(url);
        let secrets = self
            .secrets
            .current()
            .await
            .map_err(|e| format!("reading repository Secrets: {e}"))?;
        let mut exact = None;
        let mut best_prefix: Option<(usize, BTreeMap<String, String>)> = None;
        for secret in secrets {
            let kind = secret
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(SECRET_TYPE_LABEL))
                .cloned()
                .unwrap_or_default();
            let fields = secret_fields(&secret);
            let Some(secret_url) = fields.get("url") else {
                continue;
            };
            let secret_url = normalize_repo_url(secret_url);
            if kind == "repository" && secret_url == want {
                exact = Some(fields);
            } else if kind == "repo-creds"
                && prefix_matches(&secret_url, &want)
                && best_prefix
                    .as_ref()
                    .is_none_or(|(len, _)| secret_url.len() > *len)
            {
                best_prefix = Some((secret_url.len(), fields));
            }
        }
        let fields = exact.or(best_prefix.map(|(_, f)| f)).unwrap_or_default();
        Ok(Credentials {
            username: fields.get("username").cloned(),
            password: fields.get("password").cloned().map(Into::into),
            ssh_private_key: fields.get("sshPrivateKey").cloned().map(Into::into),
            insecure: fields.get("insecure").is_some_and(|v| v == "true"),
        })
    }
}

/// Whether the `repo-creds` URL `prefix` covers `url` (both normalized): equal, or a prefix that
/// ends at a path boundary. `https://git.corp.com` covers `https://git.corp.com/team/repo`,
/// never `https://git.corp.com.evil.io/repo`; `https://git.corp.com/team` does not cover
/// `https://git.corp.com/teammate/repo`. (Argo CD compares plain prefixes.)
pub(crate) fn prefix_matches(prefix: &str, url: &str) -> bool {
    if prefix.is_empty() {
        return false;
    }
    match url.strip_prefix(prefix) {
        Some("") => true,
        Some(rest) => {
            prefix.ends_with(['/', ':']) || rest.starts_with('/') || rest.starts_with(':')
        }
        None => false,
    }
}

/// Adds to a git failure caused by an unknown SSH host key where to add that key.
pub(crate) fn host_key_hint(message: String, namespace: &str) -> String {
    let unknown = message.contains("Host key verification failed")
        || message.contains("host key is known")
        || message.contains("REMOTE HOST IDENTIFICATION HAS CHANGED");
    if !unknown {
        return message;
    }
    format!(
        "{message}; the repository server's SSH host key is unknown (or changed): add its \
         known_hosts line (e.g. from `ssh-keyscan HOST`) to ConfigMap {KNOWN_HOSTS_CONFIG_MAP}, \
         key {KNOWN_HOSTS_KEY}, in namespace {namespace}"
    )
}

fn secret_fields(secret: &Secret) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_creds_prefixes_match_on_boundaries() {
        assert!(prefix_matches(
            "https://git.corp.com",
            "https://git.corp.com/team/repo"
        ));
        assert!(prefix_matches(
            "https://git.corp.com/",
            "https://git.corp.com/team/repo"
        ));
        assert!(prefix_matches(
            "https://git.corp.com/team",
            "https://git.corp.com/team"
        ));
        assert!(!prefix_matches(
            "https://git.corp.com",
            "https://git.corp.com.evil.io/repo"
        ));
        assert!(!prefix_matches(
            "https://git.corp.com/team",
            "https://git.corp.com/teammate/r"
        ));
        assert!(prefix_matches(
            "git.corp.com:team",
            "git.corp.com:team/repo"
        ));
        assert!(!prefix_matches("", "https://x/y"));
    }

    #[test]
    fn unknown_host_keys_say_where_to_add_them() {
        let said = host_key_hint(
            "fetching ssh://git@h/r: No ED25519 host key is known for h and you have requested strict checking.\nHost key verification failed.".into(),
            "ferry",
        );
        assert!(
            said.contains("ConfigMap argocd-ssh-known-hosts-cm"),
            "{said}"
        );
        assert!(
            said.contains("key ssh_known_hosts, in namespace ferry"),
            "{said}"
        );
        assert_eq!(host_key_hint("timeout".into(), "ferry"), "timeout");
    }
}
