//! Gitea (REST `/api/v1`): page-number pagination (`page`, `limit`). A server may give fewer
//! items than asked for (its `MAX_RESPONSE_ITEMS`), so listing stops at `X-Total-Count` items
//! when the server sends it, and at the first empty page otherwise.

use serde_json::Value;

use super::github::label_names;
use super::{Branch, Conn, Page, Pull, Repo};
use crate::generators::remote::{self, encode, encode_path};
use crate::params::GeneratorError;

const LIMIT: usize = 50;

async fn all(conn: &Conn<'_>, base: &str, query: &str) -> Result<Vec<Value>, GeneratorError> {
    let sep = if query.is_empty() { "" } else { "&" };
    // Atomics, not Cells: the future must be Send (the ApplicationSet controller spawns it).
    use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
    let total = AtomicUsize::new(usize::MAX);
    let got = AtomicUsize::new(0);
    super::all_pages(
        conn,
        |p| format!("{base}?{query}{sep}page={p}&limit={LIMIT}"),
        |conn, path, answer| {
            let items = conn.list(path, "items", &answer.body)?.clone();
            if let Some(t) = remote::header(answer, "x-total-count").and_then(|t| t.parse().ok()) {
                total.store(t, Relaxed);
            }
            let got = got.fetch_add(items.len(), Relaxed) + items.len();
            let more = match total.load(Relaxed) {
                usize::MAX => !items.is_empty(),
                t => got < t && !items.is_empty(),
            };
            Ok(Page { items, more })
        },
    )
    .await
}

fn required<'s>(conn: &Conn<'_>, spec: &'s Value, field: &str) -> Result<&'s str, GeneratorError> {
    spec.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| GeneratorError::new(conn.generator, format!("gitea: {field} is required")))
}

fn repo_path(repo: &Repo) -> String {
    format!(
        "/repos/{}/{}",
        encode(&repo.organization),
        encode(&repo.repository)
    )
}

/// The repositories of the organization `owner`, with their topics as labels.
pub(crate) async fn repos(conn: &Conn<'_>, spec: &Value) -> Result<Vec<Repo>, GeneratorError> {
    let owner = required(conn, spec, "owner")?;
    let base = format!("/orgs/{}/repos", encode(owner));
    let items = all(conn, &base, "").await?;
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let mut repo = Repo {
            organization: conn.text(&base, item, "owner.login")?,
            repository: conn.text(&base, item, "name")?,
            id: remote::optional_text(item, "id"),
            ssh_url: conn.text(&base, item, "ssh_url")?,
            https_url: conn.text(&base, item, "clone_url")?,
            default_branch: remote::optional_text(item, "default_branch"),
            labels: Vec::new(),
        };
        let topics_path = format!("{}/topics", repo_path(&repo));
        let answer = conn.get(&topics_path).await?;
        let topics = answer
            .body
            .get("topics")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                remote::wrong_shape(
                    conn.generator,
                    "GET",
                    &conn.url(&topics_path),
                    "{\"topics\": [...]}",
                    &answer.body,
                )
            })?;
        repo.labels = topics
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect();
        out.push(repo);
    }
    Ok(out)
}

/// One branch, or `None` when it does not exist.
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
        sha: conn.text(&path, &answer.body, "commit.id")?,
    }))
}

/// All branches.
pub(crate) async fn branches(conn: &Conn<'_>, repo: &Repo) -> Result<Vec<Branch>, GeneratorError> {
    let base = format!("{}/branches", repo_path(repo));
    let items = all(conn, &base, "").await?;
    items
        .iter()
        .map(|i| {
            Ok(Branch {
                name: conn.text(&base, i, "name")?,
                sha: conn.text(&base, i, "commit.id")?,
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
    let items = all(conn, &base, "state=open").await?;
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
