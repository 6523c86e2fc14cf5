//! Repository credentials from Secrets labelled `argocd.argoproj.io/secret-type: repository`
//! (matched by URL) or `repo-creds` (matched by the longest URL prefix), as Argo CD reads them.

use std::collections::BTreeMap;

use ferry_source::git::{Credentials, normalize_repo_url};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};

use crate::destinations::SECRET_TYPE_LABEL;

/// Reads repository credentials from the controller's namespace.
#[derive(Clone)]
pub struct RepoCredentials {
    secrets: Api<Secret>,
}

impl std::fmt::Debug for RepoCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoCredentials").finish_non_exhaustive()
    }
}

impl RepoCredentials {
    /// Credentials from Secrets in `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        RepoCredentials {
            secrets: Api::namespaced(client, namespace),
        }
    }

    /// The credentials for `url`: a `repository` Secret for exactly this URL wins, then the
    /// `repo-creds` Secret with the longest matching prefix; none means anonymous access.
    pub async fn for_url(&self, url: &str) -> Result<Credentials, String> {
        let want = normalize_repo_url(url);
        let list = self
            .secrets
            .list(
                &ListParams::default()
                    .labels(&format!("{SECRET_TYPE_LABEL} in (repository,repo-creds)")),
            )
            .await
            .map_err(|e| format!("reading repository Secrets: {e}"))?;
        let mut exact = None;
        let mut best_prefix: Option<(usize, BTreeMap<String, String>)> = None;
        for secret in list.items {
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
                && want.starts_with(&secret_url)
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
