//! GitLab (REST `/api/v4`): page-number pagination (`page`, `per_page`), the `X-Next-Page`
//! header naming the next page (empty on the last). Projects are addressed by id; a group or
//! project path is URL-encoded (`group%2Fsub`).

use serde_json::Value;

use super::{Branch, Conn, PER_PAGE, Page, Pull, Repo, all_pages};
use crate::generators::remote::{self, encode};
use crate::params::GeneratorError;

fn page_of(
    conn: &Conn<'_>,
    path: &str,
    answer: &ferry_http::JsonResponse,
) -> Result<Page, GeneratorError> {
    let items = conn.list(path, "items", &answer.body)?.clone();
    let more = match remote::header(answer, "x-next-page") {
        Some(next) => !next.trim().is_empty(),
        // Without the header (keyset pagination, or a proxy that drops it): a full page may
        // have a successor.
        None => items.len() >= PER_PAGE,
    };
    Ok(Page { items, more })
}

fn bool_param(spec: &Value, field: &str, default: bool) -> bool {
    spec.get(field).and_then(Value::as_bool).unwrap_or(default)
}

/// The projects of `group` (with `includeSubgroups`, `includeSharedProjects` (default true) and
/// `topic`, as Argo CD passes them).
pub(crate) async fn repos(conn: &Conn<'_>, spec: &Value) -> Result<Vec<Repo>, GeneratorError> {
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| GeneratorError::new(conn.generator, "gitlab: group is required"))?;
    let base = format!("/groups/{}/projects", encode(group));
    let mut query = format!(
        "include_subgroups={}&with_shared={}",
        bool_param(spec, "includeSubgroups", false),
        bool_param(spec, "includeSharedProjects", true)
    );
    if let Some(topic) = spec
        .get("topic")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        query.push_str(&format!("&topic={}", encode(topic)));
    }
    let items = all_pages(
        conn,
        |p| format!("{base}?{query}&per_page={PER_PAGE}&page={p}"),
        page_of,
    )
    .await?;
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let labels = item
            .get("topics")
            .filter(|t| t.is_array())
            .or_else(|| item.get("tag_list"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        out.push(Repo {
            organization: conn.text(&base, item, "namespace.full_path")?,
            repository: conn.text(&base, item, "path")?,
            id: conn.text(&base, item, "id")?,
            ssh_url: conn.text(&base, item, "ssh_url_to_repo")?,
            https_url: conn.text(&base, item, "http_url_to_repo")?,
            default_branch: remote::optional_text(item, "default_branch"),
            labels,
        });
    }
    Ok(out)
}

/// One branch, or `None` when it does not exist.
pub(crate) async fn branch(
    conn: &Conn<'_>,
    repo: &Repo,
    name: &str,
) -> Result<Option<Branch>, GeneratorError> {
    let path = format!(
        "/projects/{}/repository/branches/{}",
        encode(&repo.id),
        encode(name)
    );
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
    let base = format!("/projects/{}/repository/branches", encode(&repo.id));
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
                sha: conn.text(&base, i, "commit.id")?,
            })
        })
        .collect()
}

/// Whether `path` exists on `branch`: listed in the tree of its parent directory (as Argo CD
/// asks). A parent that does not exist answers 404.
pub(crate) async fn has_path(
    conn: &Conn<'_>,
    repo: &Repo,
    branch: &str,
    path: &str,
) -> Result<bool, GeneratorError> {
    let path = path.trim_matches('/');
    let dir = path.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
    let base = format!("/projects/{}/repository/tree", encode(&repo.id));
    for page in 1..=1000usize {
        let p = format!(
            "{base}?path={}&ref={}&per_page={PER_PAGE}&page={page}",
            encode(dir),
            encode(branch)
        );
        let Some(answer) = conn.get_or_404(&p).await? else {
            return Ok(false);
        };
        let Page { items, more } = page_of(conn, &p, &answer)?;
        for item in &items {
            if conn.text(&base, item, "path")? == path {
                return Ok(true);
            }
        }
        if !more {
            return Ok(false);
        }
    }
    Err(conn.too_many_pages(&base))
}

/// The merge requests of `project` (an id or a path), in `pullRequestState` when given (as Argo
/// CD: no state filter otherwise), with `labels` as the server-side filter.
pub(crate) async fn pulls(conn: &Conn<'_>, spec: &Value) -> Result<Vec<Pull>, GeneratorError> {
    let project = match spec.get("project") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => {
            return Err(GeneratorError::new(
                conn.generator,
                "gitlab: project is required (its id or path)",
            ));
        }
    };
    let base = format!("/projects/{}/merge_requests", encode(&project));
    let mut query = String::new();
    if let Some(state) = spec
        .get("pullRequestState")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        query.push_str(&format!("state={}&", encode(state)));
    }
    let labels: Vec<&str> = spec
        .get("labels")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !labels.is_empty() {
        query.push_str(&format!("labels={}&", encode(&labels.join(","))));
    }
    let items = all_pages(
        conn,
        |p| format!("{base}?{query}per_page={PER_PAGE}&page={p}"),
        page_of,
    )
    .await?;
    items
        .iter()
        .map(|i| {
            Ok(Pull {
                number: conn.text(&base, i, "iid")?,
                title: remote::optional_text(i, "title"),
                branch: conn.text(&base, i, "source_branch")?,
                target_branch: conn.text(&base, i, "target_branch")?,
                head_sha: conn.text(&base, i, "sha")?,
                labels: i
                    .get("labels")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(String::from)
                            .collect()
                    })
                    .unwrap_or_default(),
                author: remote::optional_text(i, "author.username"),
            })
        })
        .collect()
}
