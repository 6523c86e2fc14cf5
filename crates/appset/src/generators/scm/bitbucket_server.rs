//! Bitbucket Server / Data Center (REST `/rest/api/1.0`): paged answers
//! `{"values": [...], "isLastPage": bool, "nextPageStart": n}`, followed by `start`.

use serde_json::Value;

use super::{Branch, Conn, PER_PAGE, Pull, Repo};
use crate::generators::remote::{self, encode, encode_path};
use crate::params::GeneratorError;

/// Every item of a paged listing of `base` (which may carry a query already).
async fn all(conn: &Conn<'_>, base: &str) -> Result<Vec<Value>, GeneratorError> {
    let sep = if base.contains('?') { '&' } else { '?' };
    let mut out = Vec::new();
    let mut start: u64 = 0;
    for _ in 0..1000 {
        let path = format!("{base}{sep}start={start}&limit={PER_PAGE}");
        let answer = conn.get(&path).await?;
        let shape = || {
            remote::wrong_shape(
                conn.generator,
                "GET",
                &conn.url(&path),
                "a page {\"values\": [...], \"isLastPage\": ...}",
                &answer.body,
            )
        };
        let values = answer
            .body
            .get("values")
            .and_then(Value::as_array)
            .ok_or_else(shape)?;
        let last = answer
            .body
            .get("isLastPage")
            .and_then(Value::as_bool)
            .ok_or_else(shape)?;
        out.extend(values.iter().cloned());
        if last {
            return Ok(out);
        }
        start = answer
            .body
            .get("nextPageStart")
            .and_then(Value::as_u64)
            .filter(|n| *n > start)
            .ok_or_else(shape)?;
    }
    Err(conn.too_many_pages(base))
}

fn required<'s>(conn: &Conn<'_>, spec: &'s Value, field: &str) -> Result<&'s str, GeneratorError> {
    spec.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            GeneratorError::new(
                conn.generator,
                format!("bitbucketServer: {field} is required"),
            )
        })
}

fn repo_path(repo: &Repo) -> String {
    format!(
        "/projects/{}/repos/{}",
        encode(&repo.organization),
        encode(&repo.repository)
    )
}

fn clone_link(item: &Value, name: &str) -> String {
    item.pointer("/links/clone")
        .and_then(Value::as_array)
        .and_then(|links| {
            links
                .iter()
                .find(|l| l.get("name").and_then(Value::as_str) == Some(name))
        })
        .map(|l| remote::optional_text(l, "href"))
        .unwrap_or_default()
}

/// The repositories of `project`, with their labels and default branch.
pub(crate) async fn repos(conn: &Conn<'_>, spec: &Value) -> Result<Vec<Repo>, GeneratorError> {
    let project = required(conn, spec, "project")?;
    let base = format!("/projects/{}/repos", encode(project));
    let items = all(conn, &base).await?;
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let mut repo = Repo {
            organization: conn.text(&base, item, "project.key")?,
            repository: conn.text(&base, item, "slug")?,
            id: remote::optional_text(item, "id"),
            ssh_url: clone_link(item, "ssh"),
            https_url: clone_link(item, "http"),
            default_branch: String::new(),
            labels: Vec::new(),
        };
        let labels_path = format!("{}/labels", repo_path(&repo));
        repo.labels = all(conn, &labels_path)
            .await?
            .iter()
            .map(|l| conn.text(&labels_path, l, "name"))
            .collect::<Result<_, _>>()?;
        out.push(repo);
    }
    Ok(out)
}

/// The default branch, or `None` for an empty repository (Bitbucket answers 204 without a
/// body, or 404 when the default branch is set but missing; Argo CD skips both).
pub(crate) async fn default_branch(
    conn: &Conn<'_>,
    repo: &Repo,
) -> Result<Option<Branch>, GeneratorError> {
    let path = format!("{}/branches/default", repo_path(repo));
    let Some(answer) = conn.get_or_absent(&path).await? else {
        return Ok(None);
    };
    Ok(Some(Branch {
        name: conn.text(&path, &answer.body, "displayId")?,
        sha: conn.text(&path, &answer.body, "latestCommit")?,
    }))
}

/// All branches.
pub(crate) async fn branches(conn: &Conn<'_>, repo: &Repo) -> Result<Vec<Branch>, GeneratorError> {
    let base = format!("{}/branches", repo_path(repo));
    all(conn, &base)
        .await?
        .iter()
        .map(|i| {
            Ok(Branch {
                name: conn.text(&base, i, "displayId")?,
                sha: conn.text(&base, i, "latestCommit")?,
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
        "{}/browse/{}?at={}&type=true",
        repo_path(repo),
        encode_path(path.trim_matches('/')),
        encode(branch)
    );
    Ok(conn.get_or_404(&p).await?.is_some())
}

/// The open pull requests of `project/repo`.
pub(crate) async fn pulls(conn: &Conn<'_>, spec: &Value) -> Result<Vec<Pull>, GeneratorError> {
    let project = required(conn, spec, "project")?;
    let repo = required(conn, spec, "repo")?;
    let base = format!(
        "/projects/{}/repos/{}/pull-requests?state=OPEN",
        encode(project),
        encode(repo)
    );
    all(conn, &base)
        .await?
        .iter()
        .map(|i| {
            Ok(Pull {
                number: conn.text(&base, i, "id")?,
                title: remote::optional_text(i, "title"),
                branch: conn.text(&base, i, "fromRef.displayId")?,
                target_branch: conn.text(&base, i, "toRef.displayId")?,
                head_sha: conn.text(&base, i, "fromRef.latestCommit")?,
                labels: Vec::new(),
                author: remote::optional_text(i, "author.user.name"),
            })
        })
        .collect()
}
