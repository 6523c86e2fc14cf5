//! The REST calls of the Git hosting services that the `scmProvider` and `pullRequest`
//! generators talk to: GitHub (and GitHub Enterprise), GitLab, Gitea and Bitbucket Server. Each
//! provider module lists repositories, branches, paths and open pull requests with the few calls
//! Argo CD's providers make, following the provider's pagination to the last page.
//!
//! A page of the wrong shape anywhere is an error for the whole list: a partial list would make
//! the ApplicationSet controller delete the apps of the missing repositories.

pub(crate) mod bitbucket_server;
pub(crate) mod gitea;
pub(crate) mod github;
pub(crate) mod gitlab;

use base64::Engine as _;
use ferry_http::JsonResponse;
use serde_json::Value;

use super::RemoteContext;
use super::remote;
use crate::params::GeneratorError;

/// The `argocd-cmd-params-cm` ConfigMap, where Argo CD's ApplicationSet controller settings live.
pub(crate) const CMD_PARAMS_CM: &str = "argocd-cmd-params-cm";
/// Its key listing the SCM API URLs that generators may call (comma-separated; empty: all).
pub(crate) const ALLOWED_SCM_PROVIDERS_KEY: &str = "applicationsetcontroller.allowed.scm.providers";
/// Its key that turns the SCM and pull-request generators off (`"false"`).
pub(crate) const ENABLE_SCM_PROVIDERS_KEY: &str = "applicationsetcontroller.enable.scm.providers";

/// Most pages a listing follows before it gives up (a server that always says "next").
const MAX_PAGES: usize = 1000;

/// Which service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    GitHub,
    GitLab,
    Gitea,
    BitbucketServer,
}

impl Kind {
    /// The provider's key in the generator spec.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Kind::GitHub => "github",
            Kind::GitLab => "gitlab",
            Kind::Gitea => "gitea",
            Kind::BitbucketServer => "bitbucketServer",
        }
    }
}

/// The provider keys Argo CD knows that ferry does not call.
const UNSUPPORTED: &[&str] = &["bitbucket", "azureDevOps", "awsCodeCommit"];

/// Finds the provider object of a generator spec: exactly one of the supported keys.
pub(crate) fn provider_of<'s>(
    generator: &'static str,
    spec: &'s Value,
) -> Result<(Kind, &'s Value), GeneratorError> {
    let mut found = Vec::new();
    for kind in [
        Kind::GitHub,
        Kind::GitLab,
        Kind::Gitea,
        Kind::BitbucketServer,
    ] {
        if let Some(v) = spec.get(kind.key()).filter(|v| !v.is_null()) {
            found.push((kind, v));
        }
    }
    match found.len() {
        1 => Ok(found[0]),
        0 => {
            let other = UNSUPPORTED.iter().find(|k| spec.get(**k).is_some());
            Err(GeneratorError::new(
                generator,
                match other {
                    Some(k) => format!(
                        "the provider {k:?} is not supported by ferry; supported: github, gitlab, \
                         gitea, bitbucketServer"
                    ),
                    None => "no provider given: add one of github, gitlab, gitea, bitbucketServer"
                        .to_string(),
                },
            ))
        }
        _ => Err(GeneratorError::new(
            generator,
            "more than one provider given: use one generator per provider",
        )),
    }
}

/// A connection to one provider's API: base URL and credentials.
pub(crate) struct Conn<'a> {
    pub kind: Kind,
    pub generator: &'static str,
    /// Root of the REST API, without a trailing slash (e.g. `https://h/api/v4`).
    pub base: String,
    headers: Vec<(String, String)>,
    http: &'a ferry_http::Client,
}

impl<'a> Conn<'a> {
    /// Connects to the provider in `provider` (the object under `github`, `gitlab`, ...):
    /// checks its `api` against Argo CD's allow-list, refuses options ferry cannot honour, reads
    /// the token Secret.
    pub(crate) async fn new(
        generator: &'static str,
        kind: Kind,
        provider: &Value,
        ctx: &RemoteContext<'a>,
    ) -> Result<Conn<'a>, GeneratorError> {
        let err = |m: String| GeneratorError::new(generator, format!("{}: {m}", kind.key()));
        for option in ["insecure", "caRef", "appSecretName"] {
            let set = match provider.get(option) {
                None | Some(Value::Null) | Some(Value::Bool(false)) => false,
                Some(Value::String(s)) => !s.is_empty(),
                Some(_) => true,
            };
            if set {
                return Err(err(format!(
                    "{option} is not supported by ferry: remove it (use a token in tokenRef, and a \
                     server certificate the system trusts)"
                )));
            }
        }
        let api = provider
            .get("api")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty());
        check_allowed(generator, kind, api, ctx).await?;
        let base = match (kind, api) {
            (Kind::GitHub, None) => "https://api.github.com".to_string(),
            (Kind::GitHub, Some(api)) => github_enterprise_base(api),
            (Kind::GitLab, api) => {
                let api = api.unwrap_or("https://gitlab.com").trim_end_matches('/');
                if api.ends_with("/api/v4") {
                    api.to_string()
                } else {
                    format!("{api}/api/v4")
                }
            }
            (Kind::Gitea, api) => {
                let api = api.unwrap_or("https://gitea.com").trim_end_matches('/');
                format!("{api}/api/v1")
            }
            (Kind::BitbucketServer, Some(api)) => {
                format!("{}/rest/api/1.0", api.trim_end_matches('/'))
            }
            (Kind::BitbucketServer, None) => {
                return Err(err(
                    "api is required: give the server's URL (https://bitbucket.example.com)".into(),
                ));
            }
        };
        let mut headers = Vec::new();
        if kind == Kind::BitbucketServer {
            if let Some(basic) = provider.get("basicAuth").filter(|v| !v.is_null()) {
                let user = basic
                    .get("username")
                    .and_then(Value::as_str)
                    .ok_or_else(|| err("basicAuth.username is required".into()))?;
                let password = secret_ref(
                    generator,
                    kind,
                    basic.get("passwordRef"),
                    "basicAuth.passwordRef",
                    ctx,
                )
                .await?
                .ok_or_else(|| err("basicAuth.passwordRef is required".into()))?;
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                headers.push(("Authorization".into(), format!("Basic {encoded}")));
            } else if let Some(bearer) = provider.get("bearerToken").filter(|v| !v.is_null()) {
                let token = secret_ref(
                    generator,
                    kind,
                    bearer.get("tokenRef"),
                    "bearerToken.tokenRef",
                    ctx,
                )
                .await?
                .ok_or_else(|| err("bearerToken.tokenRef is required".into()))?;
                headers.push(("Authorization".into(), format!("Bearer {token}")));
            }
        } else if let Some(token) =
            secret_ref(generator, kind, provider.get("tokenRef"), "tokenRef", ctx).await?
        {
            let header = match kind {
                Kind::GitHub => ("Authorization".to_string(), format!("Bearer {token}")),
                Kind::GitLab => ("PRIVATE-TOKEN".to_string(), token),
                Kind::Gitea => ("Authorization".to_string(), format!("token {token}")),
                Kind::BitbucketServer => unreachable!("handled above"),
            };
            headers.push(header);
        }
        Ok(Conn {
            kind,
            generator,
            base,
            headers,
            http: ctx.http,
        })
    }

    /// `GET {base}{path}`.
    pub(crate) async fn get(&self, path: &str) -> Result<JsonResponse, GeneratorError> {
        let url = format!("{}{path}", self.base);
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        self.http
            .get_json(&url, &headers)
            .await
            .map_err(|e| remote::http_error(self.generator, e))
    }

    /// `GET {base}{path}`, or `None` when the server answers 404 (a path that does not exist).
    pub(crate) async fn get_or_404(
        &self,
        path: &str,
    ) -> Result<Option<JsonResponse>, GeneratorError> {
        let url = format!("{}{path}", self.base);
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        match self.http.get_json(&url, &headers).await {
            Ok(answer) => Ok(Some(answer)),
            Err(e) if remote::http_status(&e) == Some(404) => Ok(None),
            Err(e) => Err(remote::http_error(self.generator, e)),
        }
    }

    /// `GET {base}{path}`, or `None` when the server answers 404 or a 2xx without a body (how
    /// Bitbucket Server answers for an empty repository's default branch).
    pub(crate) async fn get_or_absent(
        &self,
        path: &str,
    ) -> Result<Option<JsonResponse>, GeneratorError> {
        let url = format!("{}{path}", self.base);
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        match self.http.get_json(&url, &headers).await {
            Ok(answer) => Ok(Some(answer)),
            Err(e) if remote::http_status(&e) == Some(404) => Ok(None),
            Err(ferry_http::HttpError::NotJson { snippet, .. }) if snippet.is_empty() => Ok(None),
            Err(e) => Err(remote::http_error(self.generator, e)),
        }
    }

    /// The full URL of `path`, for messages.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A list answer's items, or an error.
    pub(crate) fn list<'b>(
        &self,
        path: &str,
        what: &str,
        body: &'b Value,
    ) -> Result<&'b Vec<Value>, GeneratorError> {
        remote::expect_list(self.generator, &self.url(path), what, body)
    }

    /// A text field of an item.
    pub(crate) fn text(
        &self,
        path: &str,
        item: &Value,
        field: &str,
    ) -> Result<String, GeneratorError> {
        remote::text_field(self.generator, &self.url(path), item, field)
    }

    /// The error for a listing that never ends.
    pub(crate) fn too_many_pages(&self, path: &str) -> GeneratorError {
        GeneratorError::new(
            self.generator,
            format!(
                "GET {}: more than {MAX_PAGES} pages; the server keeps saying there is a next page",
                ferry_http::shown_url(&self.url(path))
            ),
        )
    }
}

/// go-github's rule for Enterprise URLs: `/api/v3` is added unless the URL has it or the host
/// is an `api.` host.
fn github_enterprise_base(api: &str) -> String {
    let trimmed = api.trim_end_matches('/');
    let host = trimmed
        .split_once("://")
        .map(|(_, rest)| rest.split('/').next().unwrap_or(""))
        .unwrap_or("");
    if trimmed.ends_with("/api/v3") || host.starts_with("api.") || host.contains(".api.") {
        trimmed.to_string()
    } else {
        format!("{trimmed}/api/v3")
    }
}

/// Reads a `{secretName, key}` reference, when given.
async fn secret_ref(
    generator: &'static str,
    kind: Kind,
    reference: Option<&Value>,
    field: &str,
    ctx: &RemoteContext<'_>,
) -> Result<Option<String>, GeneratorError> {
    let Some(reference) = reference.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let name = reference.get("secretName").and_then(Value::as_str);
    let key = reference.get("key").and_then(Value::as_str);
    match (name, key) {
        (Some(name), Some(key)) if !name.is_empty() && !key.is_empty() => {
            let token = remote::secret_key(ctx, generator, name, key, false).await?;
            Ok(Some(token))
        }
        _ => Err(GeneratorError::new(
            generator,
            format!("{}: {field} needs secretName and key", kind.key()),
        )),
    }
}

/// Argo CD's `applicationsetcontroller.allowed.scm.providers` (and `.enable.scm.providers`) in
/// `argocd-cmd-params-cm`, read from the ApplicationSet's namespace: when the list is set, an
/// `api` URL outside it is an error. Providers without a custom `api` are not restricted (as in
/// Argo CD).
async fn check_allowed(
    generator: &'static str,
    kind: Kind,
    api: Option<&str>,
    ctx: &RemoteContext<'_>,
) -> Result<(), GeneratorError> {
    let Some(data) = remote::optional_config_map(ctx, generator, CMD_PARAMS_CM).await? else {
        return Ok(());
    };
    if data
        .get(ENABLE_SCM_PROVIDERS_KEY)
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"))
    {
        return Err(GeneratorError::new(
            generator,
            format!(
                "the SCM provider and pull request generators are turned off \
                 ({ENABLE_SCM_PROVIDERS_KEY}: \"false\" in ConfigMap {}/{CMD_PARAMS_CM})",
                ctx.namespace
            ),
        ));
    }
    let Some(api) = api else { return Ok(()) };
    let allowed = allowed_list(data.get(ALLOWED_SCM_PROVIDERS_KEY).map(String::as_str));
    if allowed.is_empty() || allowed.iter().any(|a| *a == api.trim_end_matches('/')) {
        return Ok(());
    }
    Err(GeneratorError::new(
        generator,
        format!(
            "{}: the API URL {} is not allowed: {ALLOWED_SCM_PROVIDERS_KEY} in ConfigMap \
             {}/{CMD_PARAMS_CM} lists only {}; add it there or use an allowed one",
            kind.key(),
            ferry_http::shown_url(api),
            ctx.namespace,
            allowed.join(", ")
        ),
    ))
}

/// The allow-list's URLs, without trailing slashes.
pub(crate) fn allowed_list(value: Option<&str>) -> Vec<&str> {
    value
        .unwrap_or("")
        .split([',', '\n'])
        .map(|s| s.trim().trim_end_matches('/'))
        .filter(|s| !s.is_empty())
        .collect()
}

/// A repository's default or listed branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Branch {
    pub name: String,
    pub sha: String,
}

/// A repository as the providers list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Repo {
    pub organization: String,
    pub repository: String,
    /// The provider's id (GitLab's project id, Bitbucket's repository id, ...).
    pub id: String,
    pub ssh_url: String,
    pub https_url: String,
    pub default_branch: String,
    pub labels: Vec<String>,
}

/// An open pull (merge) request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pull {
    pub number: String,
    pub title: String,
    pub branch: String,
    pub target_branch: String,
    pub head_sha: String,
    pub labels: Vec<String>,
    pub author: String,
}

/// The page size asked for (servers may give fewer).
pub(crate) const PER_PAGE: usize = 100;

/// Whether a GitHub-style `Link` header has a `rel="next"` link.
pub(crate) fn link_has_next(link: Option<&str>) -> bool {
    link.is_some_and(|l| {
        l.split(',')
            .any(|part| part.split(';').skip(1).any(|p| p.trim() == "rel=\"next\""))
    })
}

/// The items of one page and whether the provider says another follows.
pub(crate) struct Page {
    pub items: Vec<Value>,
    pub more: bool,
}

/// Follows pages 1, 2, ... of `path_for(page)` (page-number pagination) until `page_of` says
/// there are no more.
pub(crate) async fn all_pages<F, P>(
    conn: &Conn<'_>,
    path_for: F,
    page_of: P,
) -> Result<Vec<Value>, GeneratorError>
where
    F: Fn(usize) -> String,
    P: Fn(&Conn<'_>, &str, &JsonResponse) -> Result<Page, GeneratorError>,
{
    let mut out = Vec::new();
    for page in 1..=MAX_PAGES {
        let path = path_for(page);
        let answer = conn.get(&path).await?;
        let Page { items, more } = page_of(conn, &path, &answer)?;
        out.extend(items);
        if !more {
            return Ok(out);
        }
    }
    Err(conn.too_many_pages(&path_for(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn github_enterprise_urls_get_api_v3_as_go_github_adds_it() {
        assert_eq!(
            github_enterprise_base("https://git.example.com/"),
            "https://git.example.com/api/v3"
        );
        assert_eq!(
            github_enterprise_base("https://git.example.com/api/v3/"),
            "https://git.example.com/api/v3"
        );
        assert_eq!(
            github_enterprise_base("https://api.git.example.com"),
            "https://api.git.example.com"
        );
    }

    #[test]
    fn link_next_is_found_only_as_rel_next() {
        assert!(link_has_next(Some(
            "<https://h/x?page=2>; rel=\"next\", <https://h/x?page=5>; rel=\"last\""
        )));
        assert!(!link_has_next(Some("<https://h/x?page=1>; rel=\"prev\"")));
        assert!(!link_has_next(None));
    }

    #[test]
    fn allowed_list_trims_slashes_and_blanks() {
        assert_eq!(
            allowed_list(Some(" https://a.example/ ,https://b.example,, ")),
            vec!["https://a.example", "https://b.example"]
        );
        assert!(allowed_list(None).is_empty());
    }
}
