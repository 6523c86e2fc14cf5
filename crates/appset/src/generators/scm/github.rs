//! GitHub and GitHub Enterprise (REST v3): page-number pagination (`page`, `per_page`), the
//! `Link` header saying whether a next page exists.

use serde_json::Value;

use super::{Branch, Conn, PER_PAGE, Page, Pull, Repo, all_pages, link_has_next};
use crate::generators::remote::{self, encode, encode_path};
use crate::params::GeneratorError;

fn page_of(
    conn: &Conn<'_>,
    path: &str,
    answer: &ferry_http::JsonResponse,
) -> Result<Page, GeneratorError> {
    let items = conn.list(path, "items", &answer.body)?.clone();
    Ok(Page {
        items,
        more: link_has_next(remote::header(answer, "link")),
    })
}

fn required<'s>(conn: &Conn<'_>, spec: &'s Value, field: &str) -> Result<&'s str, GeneratorError> {
    spec.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| GeneratorError::new(conn.generator, format!("github: {field} is required")))
}

/// The repositories of `organization`.
pub(crate) async fn repos(conn: &Conn<'_>, spec: &Value) -> Result<Vec<Repo>, GeneratorError> {
    let org = required(conn, spec, "organization")?;
    let base = format!("/orgs/{}/repos", encode(org));
    let items = all_pages(
        conn,
        |p| format!("{base}?per_page={PER_PAGE}&page={p}"),
        page_of,
    )
    .await?;
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        out.push(Repo {
            organization: conn.text(&base, item, "owner.login")?,
            repository: conn.text(&base, item, "name")?,
            id: remote::optional_text(item, "id"),
            ssh_url: conn.text(&base, item, "ssh_url")?,
            https_url: conn.text(&base, item, "clone_url")?,
            default_branch: remote::optional_text(item, "default_branch"),
            labels: string_list(item.get("topics")),
        });
    }
    Ok(out)
}

fn string_list(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

fn repo_path(repo: &Repo) -> String {
    format!(
        "/repos/{}/{}",
        encode(&repo.organization),
        encode(&repo.repository)
    )
}

/// One branch, or `None` when it does not exist (an empty repository).
pub(crate) async fn branch(
    conn: &Conn<'_>,
    repo: &Repo,
    name: &str,
) -> Result<Option<Branch>, GeneratorError> {
    let path = format!("{}/branches/{}", repo_path(repo), encode_path(name));
    let Some(answer) = conn.get_or_404(&path).await? else {
        return Ok(None);
    };
    Ok(Some(Branch {
        name: conn.text(&path, &answer.body, "name")?,
        sha: conn.text(&path, &answer.body, "commit.sha")?,
    }))
}

/// All branches.
pub(crate) async fn branches(conn: &Conn<'_>, repo: &Repo) -> Result<Vec<Branch>, GeneratorError> {
    let base = format!("{}/branches", repo_path(repo));
    let items = all_pages(
        conn,
        |p| format!("{base}?per_page={PER_PAGE}&page={p}"),
        page_of,
    )
    .await?;
    items
        .iter()
        .map(|i| {
            Ok(Branch {
                name: conn.text(&base, i, "name")?,
                sha: conn.text(&base, i, "commit.sha")?,
            })
        })
        .collect()
}

/// Whether `path` exists on `branch`.
pub(crate) async fn has_path(
    conn: &Conn<'_>,
    repo: &Repo,
    branch: &str,
    path: &str,
) -> Result<bool, GeneratorError> {
    let p = format!(
        "{}/contents/{}?ref={}",
        repo_path(repo),
        encode_path(path.trim_matches('/')),
        encode(branch)
    );
    Ok(conn.get_or_404(&p).await?.is_some())
}

/// The open pull requests of `owner/repo`.
pub(crate) async fn pulls(conn: &Conn<'_>, spec: &Value) -> Result<Vec<Pull>, GeneratorError> {
    let owner = required(conn, spec, "owner")?;
    let repo = required(conn, spec, "repo")?;
    let base = format!("/repos/{}/{}/pulls", encode(owner), encode(repo));
    let items = all_pages(
        conn,
        |p| format!("{base}?state=open&per_page={PER_PAGE}&page={p}"),
        page_of,
    )
    .await?;
    items
        .iter()
        .map(|i| {
            Ok(Pull {
                number: conn.text(&base, i, "number")?,
                title: remote::optional_text(i, "title"),
                branch: conn.text(&base, i, "head.ref")?,
                target_branch: conn.text(&base, i, "base.ref")?,
                head_sha: conn.text(&base, i, "head.sha")?,
                labels: label_names(i.get("labels")),
                author: remote::optional_text(i, "user.login"),
            })
        })
        .collect()
}

/// `[{name: ...}]` label lists (GitHub, Gitea).
pub(crate) fn label_names(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|l| l.get("name").and_then(Value::as_str))
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}
