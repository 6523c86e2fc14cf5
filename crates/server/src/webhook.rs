//! Git webhooks (`POST /api/webhook`): GitHub, GitLab, Gitea/Gogs and Bitbucket Cloud push
//! events make ferry compare the apps that follow the pushed branch or tag at once instead of
//! at the next poll.
//!
//! A delivery is checked against the provider's secret from a Kubernetes Secret (keys as Argo
//! CD names them: `webhook.github.secret`, `webhook.gitlab.secret`, `webhook.gitea.secret` (or
//! `webhook.gogs.secret`), `webhook.bitbucket.uuid`), compared in constant time. A provider
//! without a configured secret is refused (403), unlike Argo CD, which then accepts unsigned
//! payloads. Accepted pushes are answered 202 at once; the matching apps get the
//! `argocd.argoproj.io/refresh: normal` annotation in the background (the annotation, not the
//! controller's queue, so it works whether or not the controller runs in this process).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferry_controller::operations::{self, RefreshType};
use ferry_controller::touched::Touched;
use ferry_core::application::Application;
use ferry_core::repo_url::normalize_repo_url;
use hmac::{Hmac, KeyInit, Mac};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use serde_json::{Value, json};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::{ApiError, ServerState};

/// Where webhook secrets come from.
#[derive(Debug, Clone, Default)]
pub enum WebhookSecretSource {
    /// No secrets: every delivery is refused.
    #[default]
    None,
    /// A Secret in the server's namespace, read at each delivery (so rotation needs no restart).
    Kubernetes {
        /// The Secret's name.
        secret_name: String,
    },
    /// Fixed values (for embedding and tests).
    Fixed(WebhookSecrets),
}

/// The secret of each provider.
#[derive(Clone, Default)]
pub struct WebhookSecrets {
    /// `webhook.github.secret`: the HMAC key of `X-Hub-Signature-256`.
    pub github: Option<Vec<u8>>,
    /// `webhook.gitlab.secret`: the value of `X-Gitlab-Token`.
    pub gitlab: Option<Vec<u8>>,
    /// `webhook.gitea.secret` (or `webhook.gogs.secret`): the HMAC key of `X-Gitea-Signature`
    /// and `X-Gogs-Signature`.
    pub gitea: Option<Vec<u8>>,
    /// `webhook.bitbucket.uuid`: the value of `X-Hook-UUID`.
    pub bitbucket_uuid: Option<Vec<u8>>,
}

impl std::fmt::Debug for WebhookSecrets {
    // Secret values never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set = |v: &Option<Vec<u8>>| if v.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("WebhookSecrets")
            .field("github", &set(&self.github))
            .field("gitlab", &set(&self.gitlab))
            .field("gitea", &set(&self.gitea))
            .field("bitbucket_uuid", &set(&self.bitbucket_uuid))
            .finish()
    }
}

impl WebhookSecretSource {
    /// The current secrets. A missing Secret means no secrets.
    pub async fn load(
        &self,
        client: &kube::Client,
        namespace: &str,
    ) -> Result<WebhookSecrets, String> {
        match self {
            WebhookSecretSource::None => Ok(WebhookSecrets::default()),
            WebhookSecretSource::Fixed(s) => Ok(s.clone()),
            WebhookSecretSource::Kubernetes { secret_name } => {
                let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
                let secret = secrets.get_opt(secret_name).await.map_err(|e| {
                    format!("reading webhook Secret {secret_name} in namespace {namespace}: {e}")
                })?;
                let data = secret.and_then(|s| s.data).unwrap_or_default();
                let get = |k: &str| data.get(k).map(|v| v.0.clone()).filter(|v| !v.is_empty());
                Ok(WebhookSecrets {
                    github: get("webhook.github.secret"),
                    gitlab: get("webhook.gitlab.secret"),
                    gitea: get("webhook.gitea.secret").or_else(|| get("webhook.gogs.secret")),
                    bitbucket_uuid: get("webhook.bitbucket.uuid"),
                })
            }
        }
    }
}

/// The sending service, told by its headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    GitHub,
    GitLab,
    Gitea,
    Gogs,
    Bitbucket,
}

impl Provider {
    fn detect(headers: &HeaderMap) -> Option<Provider> {
        let has = |h: &str| headers.contains_key(h);
        if has("x-github-event") {
            Some(Provider::GitHub)
        } else if has("x-gitlab-event") || has("x-gitlab-token") {
            Some(Provider::GitLab)
        } else if has("x-gitea-event") || has("x-gitea-signature") {
            Some(Provider::Gitea)
        } else if has("x-gogs-event") || has("x-gogs-signature") {
            Some(Provider::Gogs)
        } else if has("x-hook-uuid") || has("x-event-key") {
            Some(Provider::Bitbucket)
        } else {
            None
        }
    }

    fn label(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::GitLab => "gitlab",
            Provider::Gitea => "gitea",
            Provider::Gogs => "gogs",
            Provider::Bitbucket => "bitbucket",
        }
    }
}

/// A verified push: the repository's URLs, the pushed ref and the default branch if known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Push {
    /// The repository's clone and web URLs, normalized.
    pub repo_urls: BTreeSet<String>,
    /// `refs/heads/<branch>` or `refs/tags/<tag>`.
    pub git_ref: String,
    /// The repository's default branch (what `HEAD` means), if the payload says.
    pub default_branch: Option<String>,
}

/// A delivery that is answered with an error, and the metric result it counts as.
struct Refusal {
    error: ApiError,
    result: &'static str,
}

fn refuse(
    status: StatusCode,
    code: &'static str,
    result: &'static str,
    message: impl Into<String>,
) -> Refusal {
    Refusal {
        error: ApiError::new(status, code, message),
        result,
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Checks an HMAC-SHA256 hex signature (optionally with a `sha256=` prefix) in constant time.
fn hmac_matches(key: &[u8], body: &[u8], signature_hex: &str) -> bool {
    let hex = signature_hex.trim();
    let hex = hex.strip_prefix("sha256=").unwrap_or(hex);
    let Some(signature) = decode_hex(hex) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&signature).is_ok()
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks the delivery's signature or token against `secrets`.
fn verify(
    provider: Provider,
    headers: &HeaderMap,
    body: &[u8],
    secrets: &WebhookSecrets,
) -> Result<(), Refusal> {
    let (secret, header_name) = match provider {
        Provider::GitHub => (&secrets.github, "x-hub-signature-256"),
        Provider::GitLab => (&secrets.gitlab, "x-gitlab-token"),
        Provider::Gitea => (&secrets.gitea, "x-gitea-signature"),
        Provider::Gogs => (&secrets.gitea, "x-gogs-signature"),
        Provider::Bitbucket => (&secrets.bitbucket_uuid, "x-hook-uuid"),
    };
    let Some(secret) = secret else {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "webhook_not_configured",
            "not_configured",
            format!(
                "no {} webhook secret is configured; add it to the webhook Secret",
                provider.label()
            ),
        ));
    };
    let Some(given) = header(headers, header_name) else {
        return Err(refuse(
            StatusCode::UNAUTHORIZED,
            "signature_missing",
            "unauthorized",
            format!("the {header_name} header is missing"),
        ));
    };
    let ok = match provider {
        Provider::GitHub | Provider::Gitea | Provider::Gogs => hmac_matches(secret, body, given),
        Provider::GitLab | Provider::Bitbucket => bool::from(given.as_bytes().ct_eq(secret)),
    };
    if ok {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "signature_invalid",
            "forbidden",
            format!("the {header_name} header does not match the configured secret"),
        ))
    }
}

/// Whether the delivery is a push (other events are acknowledged and ignored).
fn is_push(provider: Provider, headers: &HeaderMap) -> bool {
    let event = |h| header(headers, h).unwrap_or_default();
    match provider {
        Provider::GitHub => event("x-github-event") == "push",
        Provider::GitLab => matches!(event("x-gitlab-event"), "Push Hook" | "Tag Push Hook"),
        Provider::Gitea => event("x-gitea-event") == "push",
        Provider::Gogs => event("x-gogs-event") == "push",
        Provider::Bitbucket => event("x-event-key") == "repo:push",
    }
}

/// Reads the pushed repository and ref from a push payload.
fn parse_push(provider: Provider, payload: &Value) -> Option<Vec<Push>> {
    let strs = |v: &Value, keys: &[&str]| -> BTreeSet<String> {
        keys.iter()
            .filter_map(|k| v.get(*k).and_then(Value::as_str))
            .filter(|s| !s.is_empty())
            .map(normalize_repo_url)
            .collect()
    };
    let text = |v: &Value| v.as_str().filter(|s| !s.is_empty()).map(str::to_string);
    match provider {
        Provider::GitHub | Provider::Gitea | Provider::Gogs => {
            let repo = payload.get("repository")?;
            Some(vec![Push {
                repo_urls: strs(
                    repo,
                    &["html_url", "clone_url", "ssh_url", "git_url", "url"],
                ),
                git_ref: text(payload.get("ref")?)?,
                default_branch: repo.get("default_branch").and_then(text),
            }])
        }
        Provider::GitLab => {
            let project = payload.get("project")?;
            let mut urls = strs(
                project,
                &[
                    "web_url",
                    "git_http_url",
                    "git_ssh_url",
                    "http_url",
                    "ssh_url",
                ],
            );
            if let Some(repo) = payload.get("repository") {
                urls.extend(strs(
                    repo,
                    &["homepage", "git_http_url", "git_ssh_url", "url"],
                ));
            }
            Some(vec![Push {
                repo_urls: urls,
                git_ref: text(payload.get("ref")?)?,
                default_branch: project.get("default_branch").and_then(text),
            }])
        }
        Provider::Bitbucket => {
            let repo = payload.get("repository")?;
            let full_name = repo.get("full_name").and_then(Value::as_str)?;
            let mut urls: BTreeSet<String> = [
                format!("https://bitbucket.org/{full_name}"),
                format!("git@bitbucket.org:{full_name}.git"),
            ]
            .iter()
            .map(|u| normalize_repo_url(u))
            .collect();
            if let Some(href) = repo.pointer("/links/html/href").and_then(Value::as_str) {
                urls.insert(normalize_repo_url(href));
            }
            let default_branch = repo.pointer("/mainbranch/name").and_then(text);
            let changes = payload.pointer("/push/changes")?.as_array()?;
            Some(
                changes
                    .iter()
                    .filter_map(|c| {
                        let new = c.get("new")?;
                        let name = new.get("name").and_then(Value::as_str)?;
                        let kind = new.get("type").and_then(Value::as_str).unwrap_or("branch");
                        let prefix = if kind == "tag" {
                            "refs/tags/"
                        } else {
                            "refs/heads/"
                        };
                        Some(Push {
                            repo_urls: urls.clone(),
                            git_ref: format!("{prefix}{name}"),
                            default_branch: default_branch.clone(),
                        })
                    })
                    .collect(),
            )
        }
    }
}

/// Whether `app` follows the pushed repository and ref: one of its Git sources has the same
/// normalized URL, and its target revision is the pushed branch or tag (short or full name), or
/// `HEAD`/empty and the pushed branch is the default branch (any branch when the payload does
/// not name the default branch). Commit SHAs and Helm chart sources never match.
pub fn app_follows_push(app: &Application, push: &Push) -> bool {
    let branch = push.git_ref.strip_prefix("refs/heads/");
    let tag = push.git_ref.strip_prefix("refs/tags/");
    app.spec.effective_sources().iter().any(|source| {
        if source.chart.is_some()
            || !push
                .repo_urls
                .contains(&normalize_repo_url(&source.repo_url))
        {
            return false;
        }
        let target = source.target_revision_or_head();
        if target == push.git_ref {
            return true;
        }
        if target == "HEAD" {
            return match (branch, &push.default_branch) {
                (Some(b), Some(default)) => b == default,
                (Some(_), None) => true,
                (None, _) => false,
            };
        }
        let short = target
            .strip_prefix("refs/heads/")
            .or_else(|| target.strip_prefix("refs/tags/"))
            .unwrap_or(target);
        branch == Some(short) || tag == Some(short)
    })
}

/// Sets the refresh annotation on every app of `state`'s namespace that follows one of
/// `pushes` and whose inputs the pushed commits changed (see [`ferry_controller::touched`]):
/// the repository is fetched once, the files changed since the commit each app was last
/// compared at are listed once per pair of commits, and an app none of whose inputs changed is
/// left alone (Argo CD's `manifest-generate-paths`, for every app). Returns the names
/// refreshed.
pub async fn refresh_matching_apps(
    state: &ServerState,
    pushes: &[Push],
) -> Result<Vec<String>, kube::Error> {
    let received = std::time::Instant::now();
    // The controller's watch when it runs in this process: no LIST per push.
    let apps = match state.metrics.watched_apps() {
        Some(watched) => watched,
        None => state
            .apps
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .map(Arc::new)
            .collect(),
    };
    let mut refreshed = Vec::new();
    for app in apps {
        if !pushes.iter().any(|p| app_follows_push(&app, p)) {
            continue;
        }
        let Some(name) = app.metadata.name.clone() else {
            continue;
        };
        // One fetch for the push: every app after the first shares it.
        if let Some(old) = compared_revisions(&app) {
            let touched = state
                .differ
                .touched_since(&app, &old, received.elapsed())
                .await;
            if matches!(touched, Touched::Untouched(_)) {
                continue;
            }
        }
        match operations::request_refresh(&state.apps, &name, RefreshType::Normal).await {
            Ok(_) => refreshed.push(name),
            Err(e) => tracing::warn!(app = %name, "requesting a refresh after a webhook push: {e}"),
        }
    }
    Ok(refreshed)
}

/// The revisions `app` was last compared at, one per source: its `status.sync.revision` for a
/// single source. `None` (refresh it) before its first comparison and for several sources.
fn compared_revisions(app: &Application) -> Option<Vec<String>> {
    let sync = &app.status.as_ref()?.sync;
    if app.spec.effective_sources().len() != 1 {
        return None;
    }
    sync.revision
        .clone()
        .filter(|r| !r.is_empty())
        .map(|r| vec![r])
}

/// `POST /api/webhook`.
pub async fn receive_webhook(
    State(state): State<Arc<ServerState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let provider = Provider::detect(&headers);
    let label = provider.map_or("unknown", Provider::label);
    match accept_webhook(&state, provider, &headers, body).await {
        Ok((result, response)) => {
            state.metrics.count_webhook(label, result);
            response
        }
        Err(refusal) => {
            state.metrics.count_webhook(label, refusal.result);
            tracing::info!(
                provider = label,
                code = refusal.error.code,
                "webhook refused: {}",
                refusal.error.message
            );
            refusal.error.into_response()
        }
    }
}

async fn accept_webhook(
    state: &Arc<ServerState>,
    provider: Option<Provider>,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(&'static str, Response), Refusal> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                "too_large",
                format!(
                    "webhook bodies are limited to {} bytes",
                    state.config.webhook_body_limit
                ),
            )
        } else {
            refuse(
                e.status(),
                "bad_request",
                "bad_request",
                format!("reading the body: {e}"),
            )
        }
    })?;
    let Some(provider) = provider else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "unknown_provider",
            "bad_request",
            "not a GitHub, GitLab, Gitea, Gogs or Bitbucket Cloud webhook (no known event header)",
        ));
    };
    let secrets = state
        .config
        .webhook_secrets
        .load(&state.client, &state.config.namespace)
        .await
        .map_err(|e| {
            refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "secrets_unavailable",
                "error",
                e,
            )
        })?;
    verify(provider, headers, &body, &secrets)?;
    if !is_push(provider, headers) {
        let response = (
            StatusCode::ACCEPTED,
            Json(json!({"status": "ignored", "reason": "not a push event"})),
        );
        return Ok(("ignored", response.into_response()));
    }
    let payload: Value = serde_json::from_slice(&body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            "bad_payload",
            "bad_request",
            format!("the payload is not JSON: {e}"),
        )
    })?;
    let pushes = parse_push(provider, &payload).ok_or_else(|| {
        refuse(
            StatusCode::BAD_REQUEST,
            "bad_payload",
            "bad_request",
            "the push payload names no repository or ref",
        )
    })?;
    let background = state.clone();
    tokio::spawn(async move {
        match refresh_matching_apps(&background, &pushes).await {
            Ok(names) => tracing::info!(apps = ?names, "webhook push: refresh requested"),
            Err(e) => tracing::warn!("listing applications after a webhook push: {e}"),
        }
    });
    let response = (StatusCode::ACCEPTED, Json(json!({"status": "accepted"})));
    Ok(("accepted", response.into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(repo: &str, revision: Option<&str>) -> Application {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "a"},
            "spec": {"project": "default", "destination": {},
                     "source": {"repoURL": repo, "targetRevision": revision}},
        }))
        .unwrap()
    }

    fn push(url: &str, git_ref: &str, default: Option<&str>) -> Push {
        Push {
            repo_urls: [normalize_repo_url(url)].into(),
            git_ref: git_ref.into(),
            default_branch: default.map(str::to_string),
        }
    }

    #[test]
    fn matches_repo_and_branch() {
        let p = push(
            "https://GitHub.com/org/repo",
            "refs/heads/main",
            Some("main"),
        );
        assert!(app_follows_push(
            &app("https://github.com/org/repo.git", Some("main")),
            &p
        ));
        assert!(app_follows_push(
            &app("https://github.com/org/repo", None),
            &p
        ));
        assert!(app_follows_push(
            &app("https://github.com/org/repo", Some("HEAD")),
            &p
        ));
        assert!(app_follows_push(
            &app("https://github.com/org/repo", Some("refs/heads/main")),
            &p
        ));
        assert!(!app_follows_push(
            &app("https://github.com/org/repo", Some("dev")),
            &p
        ));
        assert!(!app_follows_push(
            &app("https://github.com/org/other", Some("main")),
            &p
        ));
        let dev = push(
            "https://github.com/org/repo",
            "refs/heads/dev",
            Some("main"),
        );
        assert!(!app_follows_push(
            &app("https://github.com/org/repo", None),
            &dev
        ));
        let tag = push("https://github.com/org/repo", "refs/tags/v1", Some("main"));
        assert!(app_follows_push(
            &app("https://github.com/org/repo", Some("v1")),
            &tag
        ));
        assert!(!app_follows_push(
            &app("https://github.com/org/repo", None),
            &tag
        ));
    }

    #[test]
    fn signatures() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog")
        let sig = "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8";
        let body = b"The quick brown fox jumps over the lazy dog";
        assert!(hmac_matches(b"key", body, sig));
        assert!(hmac_matches(b"key", body, &format!("sha256={sig}")));
        assert!(!hmac_matches(b"other", body, sig));
        assert!(!hmac_matches(b"key", body, "zz"));
        assert!(!hmac_matches(b"key", body, ""));
    }

    #[test]
    fn secrets_do_not_print() {
        let s = WebhookSecrets {
            github: Some(b"hunter2".to_vec()),
            ..WebhookSecrets::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn bitbucket_payload() {
        let payload = json!({
            "repository": {"full_name": "team/repo", "mainbranch": {"name": "main"}},
            "push": {"changes": [{"new": {"type": "branch", "name": "main"}}]},
        });
        let pushes = parse_push(Provider::Bitbucket, &payload).unwrap();
        assert_eq!(pushes.len(), 1);
        assert!(app_follows_push(
            &app("https://bitbucket.org/team/repo.git", None),
            &pushes[0]
        ));
    }
}

#[cfg(test)]
#[path = "webhook_properties.rs"]
mod properties;
