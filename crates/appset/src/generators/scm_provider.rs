//! The `scmProvider` generator: one parameter set per repository (or per branch with
//! `allBranches`) of a GitHub organization, GitLab group, Gitea organization or Bitbucket Server
//! project, as Argo CD generates them.
//!
//! Filters work as in Argo CD: a filter with only `repositoryMatch`/`labelMatch` selects
//! repositories, a filter with `branchMatch`/`pathsExist`/`pathsDoNotExist` selects branches;
//! within one filter every condition must hold, and an item passes when any filter of its kind
//! passes. Regular expressions match anywhere in the text (Go's `MatchString`).
//!
//! Parameters: `organization`, `repository`, `repository_id`, `url` (by `cloneProtocol`, `ssh`
//! by default), `branch`, `branchNormalized`, `sha`, `short_sha` (8), `short_sha_7`, `labels`
//! (comma-separated) and `values`.

use std::time::Duration;

use regex::Regex;
use serde_json::{Value, json};

use super::RemoteContext;
use super::remote;
use super::scm::{self, Branch, Conn, Kind, Repo};
use crate::params::{GeneratorError, Params};

const GENERATOR: &str = "scmProvider";

/// How often Argo CD lists the repositories again when `requeueAfterSeconds` is not set.
pub const DEFAULT_REQUEUE: Duration = Duration::from_secs(30 * 60);

/// When the ApplicationSet should be generated again.
pub fn requeue_after(spec: &Value) -> Duration {
    remote::requeue_after_seconds(spec).unwrap_or(DEFAULT_REQUEUE)
}

/// One filter of `filters[]`, compiled.
#[derive(Debug, Default)]
struct Filter {
    repository: Option<Regex>,
    label: Option<Regex>,
    branch: Option<Regex>,
    paths_exist: Vec<String>,
    paths_do_not_exist: Vec<String>,
}

impl Filter {
    fn selects_branches(&self) -> bool {
        self.branch.is_some() || !self.paths_exist.is_empty() || !self.paths_do_not_exist.is_empty()
    }
}

fn regex_field(i: usize, f: &Value, field: &str) -> Result<Option<Regex>, GeneratorError> {
    match f.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Regex::new(s).map(Some).map_err(|e| {
            GeneratorError::new(
                GENERATOR,
                format!("filters[{i}].{field} {s:?} is not a valid regular expression: {e}"),
            )
        }),
        Some(other) => Err(GeneratorError::new(
            GENERATOR,
            format!(
                "filters[{i}].{field} must be a string, not {}",
                remote::describe(other)
            ),
        )),
    }
}

fn paths_field(i: usize, f: &Value, field: &str) -> Result<Vec<String>, GeneratorError> {
    match f.get(field) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(a)) => a
            .iter()
            .map(|p| {
                p.as_str()
                    .map(|s| s.trim_end_matches('/').to_string())
                    .ok_or_else(|| {
                        GeneratorError::new(
                            GENERATOR,
                            format!("filters[{i}].{field} must be a list of paths"),
                        )
                    })
            })
            .collect(),
        Some(_) => Err(GeneratorError::new(
            GENERATOR,
            format!("filters[{i}].{field} must be a list of paths"),
        )),
    }
}

fn compile_filters(spec: &Value) -> Result<Vec<Filter>, GeneratorError> {
    let Some(list) = spec.get("filters").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| GeneratorError::new(GENERATOR, "filters must be a list of filters"))?;
    list.iter()
        .enumerate()
        .map(|(i, f)| {
            Ok(Filter {
                repository: regex_field(i, f, "repositoryMatch")?,
                label: regex_field(i, f, "labelMatch")?,
                branch: regex_field(i, f, "branchMatch")?,
                paths_exist: paths_field(i, f, "pathsExist")?,
                paths_do_not_exist: paths_field(i, f, "pathsDoNotExist")?,
            })
        })
        .collect()
}

/// The conditions of `filter` that need no further request.
fn matches_locally(filter: &Filter, repo: &Repo, branch: Option<&str>) -> bool {
    if let Some(r) = &filter.repository
        && !r.is_match(&repo.repository)
    {
        return false;
    }
    if let Some(l) = &filter.label
        && !repo.labels.iter().any(|label| l.is_match(label))
    {
        return false;
    }
    if let (Some(b), Some(branch)) = (&filter.branch, branch)
        && !b.is_match(branch)
    {
        return false;
    }
    true
}

async fn has_path(
    conn: &Conn<'_>,
    repo: &Repo,
    branch: &str,
    path: &str,
) -> Result<bool, GeneratorError> {
    match conn.kind {
        Kind::GitHub => scm::github::has_path(conn, repo, branch, path).await,
        Kind::GitLab => scm::gitlab::has_path(conn, repo, branch, path).await,
        Kind::Gitea => scm::gitea::has_path(conn, repo, branch, path).await,
        Kind::BitbucketServer => scm::bitbucket_server::has_path(conn, repo, branch, path).await,
    }
}

async fn matches_branch(
    conn: &Conn<'_>,
    filter: &Filter,
    repo: &Repo,
    branch: &str,
) -> Result<bool, GeneratorError> {
    if !matches_locally(filter, repo, Some(branch)) {
        return Ok(false);
    }
    for path in &filter.paths_exist {
        if !has_path(conn, repo, branch, path).await? {
            return Ok(false);
        }
    }
    for path in &filter.paths_do_not_exist {
        if has_path(conn, repo, branch, path).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn list_repos(conn: &Conn<'_>, provider: &Value) -> Result<Vec<Repo>, GeneratorError> {
    match conn.kind {
        Kind::GitHub => scm::github::repos(conn, provider).await,
        Kind::GitLab => scm::gitlab::repos(conn, provider).await,
        Kind::Gitea => scm::gitea::repos(conn, provider).await,
        Kind::BitbucketServer => scm::bitbucket_server::repos(conn, provider).await,
    }
}

/// The branches of `repo` the generator looks at: all, or the default one (none for an empty
/// repository).
async fn branches_of(
    conn: &Conn<'_>,
    repo: &Repo,
    all: bool,
) -> Result<Vec<Branch>, GeneratorError> {
    if all {
        return match conn.kind {
            Kind::GitHub => scm::github::branches(conn, repo).await,
            Kind::GitLab => scm::gitlab::branches(conn, repo).await,
            Kind::Gitea => scm::gitea::branches(conn, repo).await,
            Kind::BitbucketServer => scm::bitbucket_server::branches(conn, repo).await,
        };
    }
    let default = match conn.kind {
        Kind::BitbucketServer => scm::bitbucket_server::default_branch(conn, repo).await?,
        _ if repo.default_branch.is_empty() => None,
        Kind::GitHub => scm::github::branch(conn, repo, &repo.default_branch).await?,
        Kind::GitLab => scm::gitlab::branch(conn, repo, &repo.default_branch).await?,
        Kind::Gitea => scm::gitea::branch(conn, repo, &repo.default_branch).await?,
    };
    if default.is_none() {
        tracing::info!(
            repository = %repo.repository,
            "scmProvider: the repository has no default branch (empty?); it gives no parameters"
        );
    }
    Ok(default.into_iter().collect())
}

/// Lists the repositories (and branches) of the provider and turns them into parameter sets.
pub async fn generate(
    spec: &Value,
    ctx: &RemoteContext<'_>,
) -> Result<Vec<Params>, GeneratorError> {
    let (kind, provider) = scm::provider_of(GENERATOR, spec)?;
    let filters = compile_filters(spec)?;
    let protocol = spec
        .get("cloneProtocol")
        .and_then(Value::as_str)
        .filter(|p| !p.is_empty())
        .unwrap_or("ssh");
    if protocol != "ssh" && protocol != "https" {
        return Err(GeneratorError::new(
            GENERATOR,
            format!("cloneProtocol {protocol:?} is not known: use ssh or https"),
        ));
    }
    let all_branches = provider
        .get("allBranches")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let values = remote::values(GENERATOR, spec)?;
    let conn = Conn::new(GENERATOR, kind, provider, ctx).await?;
    let repos = list_repos(&conn, provider).await?;

    let repo_filters: Vec<&Filter> = filters.iter().filter(|f| !f.selects_branches()).collect();
    let branch_filters: Vec<&Filter> = filters.iter().filter(|f| f.selects_branches()).collect();
    let mut out = Vec::new();
    for repo in &repos {
        if !repo_filters.is_empty() && !repo_filters.iter().any(|f| matches_locally(f, repo, None))
        {
            continue;
        }
        for branch in branches_of(&conn, repo, all_branches).await? {
            let mut keep = branch_filters.is_empty();
            for f in &branch_filters {
                if matches_branch(&conn, f, repo, &branch.name).await? {
                    keep = true;
                    break;
                }
            }
            if keep {
                out.push(params(repo, &branch, protocol, values.as_ref()));
            }
        }
    }
    Ok(out)
}

fn params(
    repo: &Repo,
    branch: &Branch,
    protocol: &str,
    values: Option<&serde_json::Map<String, Value>>,
) -> Params {
    let url = if protocol == "https" {
        &repo.https_url
    } else {
        &repo.ssh_url
    };
    let short = |n: usize| branch.sha.chars().take(n).collect::<String>();
    let mut p = Params::new();
    p.insert("organization".into(), json!(repo.organization));
    p.insert("repository".into(), json!(repo.repository));
    p.insert("repository_id".into(), json!(repo.id));
    p.insert("url".into(), json!(url));
    p.insert("branch".into(), json!(branch.name));
    p.insert(
        "branchNormalized".into(),
        json!(sanitize_name(&branch.name)),
    );
    p.insert("sha".into(), json!(branch.sha));
    p.insert("short_sha".into(), json!(short(8)));
    p.insert("short_sha_7".into(), json!(short(7)));
    p.insert("labels".into(), json!(repo.labels.join(",")));
    if let Some(values) = values {
        p.insert("values".into(), Value::Object(values.clone()));
    }
    p
}

/// Argo CD's `SanitizeName`: lowercase, every character but `a-z0-9-.` replaced by `-`, at most
/// 253 characters, leading and trailing `-`/`.` removed.
pub fn sanitize_name(name: &str) -> String {
    let mut out: String = name
        .to_lowercase()
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '.' => c,
            _ => '-',
        })
        .collect();
    if out.len() > 253 {
        out.truncate(253);
    }
    out.trim_matches(['-', '.']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_name_follows_argo_cd() {
        assert_eq!(sanitize_name("feature/ABC_1.2"), "feature-abc-1.2");
        assert_eq!(sanitize_name("-main."), "main");
        assert_eq!(sanitize_name(&"a".repeat(300)).len(), 253);
    }

    #[test]
    fn filters_split_into_repository_and_branch_filters() {
        let spec = json!({"filters": [
            {"repositoryMatch": "^app"},
            {"labelMatch": "deploy", "pathsExist": ["kustomize/"]},
        ]});
        let f = compile_filters(&spec).unwrap();
        assert!(!f[0].selects_branches());
        assert!(f[1].selects_branches());
        assert_eq!(f[1].paths_exist, vec!["kustomize".to_string()]);
        let repo = Repo {
            organization: "o".into(),
            repository: "app-one".into(),
            id: "1".into(),
            ssh_url: String::new(),
            https_url: String::new(),
            default_branch: "main".into(),
            labels: vec!["team-a".into()],
        };
        assert!(matches_locally(&f[0], &repo, None));
        assert!(
            !matches_locally(&f[1], &repo, Some("main")),
            "no label matches deploy"
        );
    }

    #[test]
    fn a_bad_regular_expression_names_the_filter() {
        let e = compile_filters(&json!({"filters": [{}, {"branchMatch": "("}]})).unwrap_err();
        assert!(e.message.contains("filters[1].branchMatch"), "{e}");
    }

    #[test]
    fn params_carry_argo_cd_names() {
        let repo = Repo {
            organization: "org".into(),
            repository: "r".into(),
            id: "42".into(),
            ssh_url: "git@h:org/r.git".into(),
            https_url: "https://h/org/r.git".into(),
            default_branch: "main".into(),
            labels: vec!["a".into(), "b".into()],
        };
        let branch = Branch {
            name: "Feature/X".into(),
            sha: "0123456789abcdef".into(),
        };
        let p = params(&repo, &branch, "https", None);
        assert_eq!(p["url"], "https://h/org/r.git");
        assert_eq!(p["short_sha"], "01234567");
        assert_eq!(p["short_sha_7"], "0123456");
        assert_eq!(p["labels"], "a,b");
        assert_eq!(p["branchNormalized"], "feature-x");
        assert_eq!(p["repository_id"], "42");
    }
}
