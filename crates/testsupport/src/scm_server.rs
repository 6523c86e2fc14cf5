//! A small local Git hosting API for tests of the ApplicationSet `scmProvider`, `pullRequest`
//! and `plugin` generators: it answers the few REST calls ferry makes to GitHub Enterprise
//! (`/api/v3`), GitLab (`/api/v4`), Gitea (`/api/v1`) and Bitbucket Server (`/rest/api/1.0`),
//! from one set of repositories and pull requests, with each provider's pagination (pages of
//! [`ScmData::page_size`] items, whatever the client asks for), and the plugin call
//! `POST /api/v1/getparams.execute`.
//!
//! Fault modes ([`Fault`]) make it answer 500, an HTML page with status 200, JSON of the wrong
//! shape, or never answer, for every request or only those whose path and query contain a given
//! text (`"page=2"` breaks the second page only). Every request is recorded for assertions.
//!
//! When [`ScmData::token`] is set, a request without that token (as `Authorization: Bearer`,
//! `Authorization: token`, `PRIVATE-TOKEN`, or the password of `Authorization: Basic`) gets 401.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A repository, the same on every provider: `org` is the GitHub/Gitea organization, the
/// GitLab group and the Bitbucket project key.
#[derive(Debug, Clone)]
pub struct Repo {
    /// Organization, group or project key.
    pub org: String,
    /// Name (GitLab path, Bitbucket slug).
    pub name: String,
    /// Numeric id.
    pub id: u64,
    /// Default branch; `None` for an empty repository.
    pub default_branch: Option<String>,
    /// Branches and their head commits.
    pub branches: Vec<(String, String)>,
    /// Topics (GitHub, GitLab, Gitea) or labels (Bitbucket).
    pub labels: Vec<String>,
    /// Files present on every branch (their parent directories exist too).
    pub files: Vec<String>,
}

impl Repo {
    /// A repository with branch `main` at `sha` and no labels or files.
    pub fn new(org: &str, name: &str, id: u64, sha: &str) -> Repo {
        Repo {
            org: org.into(),
            name: name.into(),
            id,
            default_branch: Some("main".into()),
            branches: vec![("main".into(), sha.into())],
            labels: Vec::new(),
            files: Vec::new(),
        }
    }
}

/// An open pull request of `org/repo`.
#[derive(Debug, Clone)]
pub struct Pull {
    /// The repository's organization.
    pub org: String,
    /// The repository's name.
    pub repo: String,
    /// Number (GitLab iid, Bitbucket id).
    pub number: u64,
    /// Title.
    pub title: String,
    /// Source branch.
    pub branch: String,
    /// Target branch.
    pub target: String,
    /// Head commit.
    pub sha: String,
    /// Labels.
    pub labels: Vec<String>,
    /// Author's login.
    pub author: String,
}

/// What the server holds.
#[derive(Debug, Clone)]
pub struct ScmData {
    /// Repositories.
    pub repos: Vec<Repo>,
    /// Open pull requests.
    pub pulls: Vec<Pull>,
    /// The whole answer to `POST /api/v1/getparams.execute`.
    pub plugin_answer: Value,
    /// Items per page, whatever the client asks for.
    pub page_size: usize,
    /// The token every request must carry, when set.
    pub token: Option<String>,
}

impl Default for ScmData {
    fn default() -> Self {
        ScmData {
            repos: Vec::new(),
            pulls: Vec::new(),
            plugin_answer: json!({"output": {"parameters": []}}),
            page_size: 2,
            token: None,
        }
    }
}

/// How the server misbehaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Status 500 with a short text body.
    Status500,
    /// Status 200 with an HTML maintenance page.
    Html200,
    /// Status 200 with a JSON object that is no answer to anything (`{"unexpected": true}`).
    WrongShape,
    /// Accepts the request and never answers.
    Hang,
}

/// A request the server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    /// Method.
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl Seen {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    data: ScmData,
    fault: Option<(Fault, Option<String>)>,
    seen: Vec<Seen>,
}

/// A running server; stops when dropped.
pub struct ScmServer {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Drop for ScmServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ScmServer {
    /// Serves `data`.
    pub async fn start(data: ScmData) -> ScmServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port");
        let addr = listener.local_addr().expect("an address");
        let state = Arc::new(Mutex::new(State {
            data,
            ..State::default()
        }));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = shared.clone();
                tokio::spawn(async move {
                    let _ = serve_one(stream, state).await;
                });
            }
        });
        ScmServer {
            url: format!("http://{addr}"),
            state,
            task,
        }
    }

    /// Misbehaves as `fault` on every request, or (with `only`) on requests whose path and
    /// query contain that text.
    pub fn set_fault(&self, fault: Fault, only: Option<&str>) {
        self.state.lock().unwrap().fault = Some((fault, only.map(String::from)));
    }

    /// Answers normally again.
    pub fn clear_fault(&self) {
        self.state.lock().unwrap().fault = None;
    }

    /// Changes what the server holds.
    pub fn update(&self, change: impl FnOnce(&mut ScmData)) {
        change(&mut self.state.lock().unwrap().data);
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }
}

struct Answer {
    status: u16,
    content_type: &'static str,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn json(body: Value) -> Answer {
        Answer {
            status: 200,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_string(),
        }
    }
    fn status(status: u16, message: &str) -> Answer {
        Answer {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: json!({ "message": message }).to_string(),
        }
    }
    fn header(mut self, name: &str, value: String) -> Answer {
        self.headers.push((name.into(), value));
        self
    }
}

async fn serve_one(stream: tokio::net::TcpStream, state: Arc<Mutex<State>>) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("/").to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).await?;
        if h.trim().is_empty() {
            break;
        }
        if let Some((n, v)) = h.split_once(':') {
            headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let len: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await?;
    let seen = Seen {
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let (fault, answer) = {
        let mut st = state.lock().unwrap();
        st.seen.push(seen.clone());
        let fault = st
            .fault
            .as_ref()
            .filter(|(_, only)| {
                only.as_ref()
                    .is_none_or(|o| seen.target.contains(o.as_str()))
            })
            .map(|(f, _)| f.clone());
        let answer = if authorized(&st.data, &seen) {
            route(&st.data, &seen)
        } else {
            Answer::status(401, "401 Unauthorized")
        };
        (fault, answer)
    };
    let answer = match fault {
        None => answer,
        Some(Fault::Status500) => Answer {
            status: 500,
            content_type: "text/plain",
            headers: Vec::new(),
            body: "internal error: the database is down".into(),
        },
        Some(Fault::Html200) => Answer {
            status: 200,
            content_type: "text/html",
            headers: Vec::new(),
            body: "<!DOCTYPE html><html><body><h1>Down for maintenance</h1></body></html>".into(),
        },
        Some(Fault::WrongShape) => Answer::json(json!({"unexpected": true})),
        Some(Fault::Hang) => {
            std::future::pending::<()>().await;
            unreachable!()
        }
    };
    let reason = match answer.status {
        200 => "OK",
        204 => "No Content",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n",
        answer.status,
        answer.content_type,
        answer.body.len()
    );
    for (n, v) in &answer.headers {
        head.push_str(&format!("{n}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = reader.into_inner();
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(answer.body.as_bytes()).await?;
    stream.shutdown().await
}

fn authorized(data: &ScmData, seen: &Seen) -> bool {
    let Some(token) = &data.token else {
        return true;
    };
    if seen.header("private-token") == Some(token.as_str()) {
        return true;
    }
    let Some(auth) = seen.header("authorization") else {
        return false;
    };
    if auth == format!("Bearer {token}") || auth == format!("token {token}") {
        return true;
    }
    auth.strip_prefix("Basic ")
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|up| up.split_once(':').map(|(_, p)| p == token))
        .unwrap_or(false)
}

/// Percent-decodes a path segment or query value.
fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Some(b) = std::str::from_utf8(&bytes[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn query(target: &str) -> Vec<(String, String)> {
    target
        .split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn q<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

fn has_path(repo: &Repo, path: &str) -> bool {
    let path = path.trim_matches('/');
    path.is_empty()
        || repo
            .files
            .iter()
            .any(|f| f == path || f.starts_with(&format!("{path}/")))
}

/// The entries directly under `dir` (files and directories).
fn tree(repo: &Repo, dir: &str) -> Vec<(String, &'static str)> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    let mut out: Vec<(String, &'static str)> = Vec::new();
    for f in &repo.files {
        if let Some(rest) = f.strip_prefix(&prefix) {
            let (entry, kind) = match rest.split_once('/') {
                Some((d, _)) => (format!("{prefix}{d}"), "tree"),
                None => (f.clone(), "blob"),
            };
            if !out.iter().any(|(e, _)| *e == entry) {
                out.push((entry, kind));
            }
        }
    }
    out
}

/// Page `page` (1-based) of `items` and whether another follows.
fn page_of<T: Clone>(items: &[T], page: usize, size: usize) -> (Vec<T>, bool) {
    let start = (page.max(1) - 1) * size;
    let slice: Vec<T> = items.iter().skip(start).take(size).cloned().collect();
    (slice, start + size < items.len())
}

fn route(data: &ScmData, seen: &Seen) -> Answer {
    let path = seen.target.split('?').next().unwrap_or("");
    let params = query(&seen.target);
    let segs: Vec<String> = path.split('/').skip(1).map(decode).collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    if seen.method == "POST" && path == "/api/v1/getparams.execute" {
        return Answer::json(data.plugin_answer.clone());
    }
    if seen.method != "GET" {
        return Answer::status(405, "method not allowed");
    }
    match segs.as_slice() {
        ["api", "v3", rest @ ..] => github(data, rest, &params),
        ["api", "v4", rest @ ..] => gitlab(data, rest, &params),
        ["api", "v1", rest @ ..] => gitea(data, rest, &params),
        ["rest", "api", "1.0", rest @ ..] => bitbucket(data, rest, &params),
        _ => Answer::status(404, "404 Not Found"),
    }
}

fn find_repo<'d>(data: &'d ScmData, org: &str, name: &str) -> Option<&'d Repo> {
    data.repos.iter().find(|r| r.org == org && r.name == name)
}

fn branch_sha<'r>(repo: &'r Repo, name: &str) -> Option<&'r str> {
    repo.branches
        .iter()
        .find(|(b, _)| b == name)
        .map(|(_, s)| s.as_str())
}

fn not_found() -> Answer {
    Answer::status(404, "404 Not Found")
}

fn github_page(items: Vec<Value>, params: &[(String, String)], size: usize) -> Answer {
    let page: usize = q(params, "page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let (slice, more) = page_of(&items, page, size);
    let answer = Answer::json(Value::Array(slice));
    if more {
        answer.header(
            "Link",
            format!(
                "<http://elsewhere.invalid/?page={}>; rel=\"next\"",
                page + 1
            ),
        )
    } else {
        answer
    }
}

fn github(data: &ScmData, segs: &[&str], params: &[(String, String)]) -> Answer {
    let size = data.page_size;
    match segs {
        ["orgs", org, "repos"] => {
            let items = data
                .repos
                .iter()
                .filter(|r| r.org == *org)
                .map(|r| {
                    json!({
                        "id": r.id, "name": r.name, "full_name": format!("{}/{}", r.org, r.name),
                        "owner": {"login": r.org},
                        "clone_url": format!("https://git.example/{}/{}.git", r.org, r.name),
                        "ssh_url": format!("git@git.example:{}/{}.git", r.org, r.name),
                        "default_branch": r.default_branch, "topics": r.labels,
                    })
                })
                .collect();
            github_page(items, params, size)
        }
        ["repos", org, name, "branches"] => match find_repo(data, org, name) {
            Some(r) => github_page(
                r.branches
                    .iter()
                    .map(|(b, s)| json!({"name": b, "commit": {"sha": s}}))
                    .collect(),
                params,
                size,
            ),
            None => not_found(),
        },
        ["repos", org, name, "branches", branch @ ..] => {
            let branch = branch.join("/");
            match find_repo(data, org, name).and_then(|r| branch_sha(r, &branch)) {
                Some(s) => Answer::json(json!({"name": branch, "commit": {"sha": s}})),
                None => not_found(),
            }
        }
        ["repos", org, name, "contents", path @ ..] => match find_repo(data, org, name) {
            Some(r) if has_path(r, &path.join("/")) => {
                Answer::json(json!({"path": path.join("/")}))
            }
            _ => not_found(),
        },
        ["repos", org, name, "pulls"] => {
            if find_repo(data, org, name).is_none() {
                return not_found();
            }
            let items = data
                .pulls
                .iter()
                .filter(|p| p.org == *org && p.repo == *name)
                .map(|p| {
                    json!({
                        "number": p.number, "title": p.title, "state": "open",
                        "head": {"ref": p.branch, "sha": p.sha}, "base": {"ref": p.target},
                        "labels": p.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
                        "user": {"login": p.author},
                    })
                })
                .collect();
            github_page(items, params, size)
        }
        _ => not_found(),
    }
}

fn gitlab_page(items: Vec<Value>, params: &[(String, String)], size: usize) -> Answer {
    let page: usize = q(params, "page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let (slice, more) = page_of(&items, page, size);
    let next = if more {
        (page + 1).to_string()
    } else {
        String::new()
    };
    Answer::json(Value::Array(slice))
        .header("X-Page", page.to_string())
        .header("X-Next-Page", next)
}

fn gitlab_project<'d>(data: &'d ScmData, id: &str) -> Option<&'d Repo> {
    data.repos
        .iter()
        .find(|r| r.id.to_string() == id || format!("{}/{}", r.org, r.name) == id)
}

fn gitlab(data: &ScmData, segs: &[&str], params: &[(String, String)]) -> Answer {
    let size = data.page_size;
    match segs {
        ["groups", group, "projects"] => {
            let subgroups = q(params, "include_subgroups") == Some("true");
            let items = data
                .repos
                .iter()
                .filter(|r| r.org == *group || (subgroups && r.org.starts_with(&format!("{group}/"))))
                .map(|r| {
                    json!({
                        "id": r.id, "path": r.name, "path_with_namespace": format!("{}/{}", r.org, r.name),
                        "namespace": {"full_path": r.org},
                        "http_url_to_repo": format!("https://git.example/{}/{}.git", r.org, r.name),
                        "ssh_url_to_repo": format!("git@git.example:{}/{}.git", r.org, r.name),
                        "default_branch": r.default_branch, "topics": r.labels,
                    })
                })
                .collect();
            gitlab_page(items, params, size)
        }
        ["projects", id, "repository", "branches"] => match gitlab_project(data, id) {
            Some(r) => gitlab_page(
                r.branches
                    .iter()
                    .map(|(b, s)| json!({"name": b, "commit": {"id": s}}))
                    .collect(),
                params,
                size,
            ),
            None => not_found(),
        },
        ["projects", id, "repository", "branches", branch] => {
            match gitlab_project(data, id).and_then(|r| branch_sha(r, branch)) {
                Some(s) => Answer::json(json!({"name": branch, "commit": {"id": s}})),
                None => not_found(),
            }
        }
        ["projects", id, "repository", "tree"] => {
            let dir = q(params, "path")
                .unwrap_or("")
                .trim_matches('/')
                .to_string();
            match gitlab_project(data, id) {
                Some(r) if has_path(r, &dir) => gitlab_page(
                    tree(r, &dir)
                        .into_iter()
                        .map(|(p, t)| json!({"name": p.rsplit('/').next(), "path": p, "type": t}))
                        .collect(),
                    params,
                    size,
                ),
                _ => not_found(),
            }
        }
        ["projects", id, "merge_requests"] => {
            let Some(repo) = gitlab_project(data, id) else {
                return not_found();
            };
            let wanted: Vec<&str> = q(params, "labels")
                .map(|l| l.split(',').collect())
                .unwrap_or_default();
            let items = data
                .pulls
                .iter()
                .filter(|p| p.org == repo.org && p.repo == repo.name)
                .filter(|p| wanted.iter().all(|w| p.labels.iter().any(|l| l == w)))
                .map(|p| {
                    json!({
                        "iid": p.number, "title": p.title, "state": "opened",
                        "source_branch": p.branch, "target_branch": p.target, "sha": p.sha,
                        "labels": p.labels, "author": {"username": p.author},
                    })
                })
                .collect();
            gitlab_page(items, params, size)
        }
        _ => not_found(),
    }
}

fn gitea_page(items: Vec<Value>, params: &[(String, String)], size: usize) -> Answer {
    let page: usize = q(params, "page").and_then(|p| p.parse().ok()).unwrap_or(1);
    let total = items.len();
    let (slice, _) = page_of(&items, page, size);
    Answer::json(Value::Array(slice)).header("X-Total-Count", total.to_string())
}

fn gitea(data: &ScmData, segs: &[&str], params: &[(String, String)]) -> Answer {
    let size = data.page_size;
    match segs {
        ["orgs", org, "repos"] => {
            let items = data
                .repos
                .iter()
                .filter(|r| r.org == *org)
                .map(|r| {
                    json!({
                        "id": r.id, "name": r.name, "full_name": format!("{}/{}", r.org, r.name),
                        "owner": {"login": r.org},
                        "clone_url": format!("https://git.example/{}/{}.git", r.org, r.name),
                        "ssh_url": format!("git@git.example:{}/{}.git", r.org, r.name),
                        "default_branch": r.default_branch,
                    })
                })
                .collect();
            gitea_page(items, params, size)
        }
        ["repos", org, name, "topics"] => match find_repo(data, org, name) {
            Some(r) => Answer::json(json!({"topics": r.labels})),
            None => not_found(),
        },
        ["repos", org, name, "branches"] => match find_repo(data, org, name) {
            Some(r) => gitea_page(
                r.branches
                    .iter()
                    .map(|(b, s)| json!({"name": b, "commit": {"id": s}}))
                    .collect(),
                params,
                size,
            ),
            None => not_found(),
        },
        ["repos", org, name, "branches", branch @ ..] => {
            let branch = branch.join("/");
            match find_repo(data, org, name).and_then(|r| branch_sha(r, &branch)) {
                Some(s) => Answer::json(json!({"name": branch, "commit": {"id": s}})),
                None => not_found(),
            }
        }
        ["repos", org, name, "contents", path @ ..] => match find_repo(data, org, name) {
            Some(r) if has_path(r, &path.join("/")) => {
                Answer::json(json!({"path": path.join("/")}))
            }
            _ => not_found(),
        },
        ["repos", org, name, "pulls"] => {
            if find_repo(data, org, name).is_none() {
                return not_found();
            }
            let items = data
                .pulls
                .iter()
                .filter(|p| p.org == *org && p.repo == *name)
                .map(|p| {
                    json!({
                        "number": p.number, "title": p.title, "state": "open",
                        "head": {"ref": p.branch, "sha": p.sha}, "base": {"ref": p.target},
                        "labels": p.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
                        "user": {"login": p.author},
                    })
                })
                .collect();
            gitea_page(items, params, size)
        }
        _ => not_found(),
    }
}

fn bitbucket_page(items: Vec<Value>, params: &[(String, String)], size: usize) -> Answer {
    let start: usize = q(params, "start").and_then(|p| p.parse().ok()).unwrap_or(0);
    let slice: Vec<Value> = items.iter().skip(start).take(size).cloned().collect();
    let last = start + size >= items.len();
    let mut body = json!({
        "size": slice.len(), "limit": size, "start": start, "isLastPage": last, "values": slice,
    });
    if !last {
        body["nextPageStart"] = json!(start + size);
    }
    Answer::json(body)
}

fn bitbucket(data: &ScmData, segs: &[&str], params: &[(String, String)]) -> Answer {
    let size = data.page_size;
    match segs {
        ["projects", key, "repos"] => {
            let items = data
                .repos
                .iter()
                .filter(|r| r.org == *key)
                .map(|r| {
                    json!({
                        "id": r.id, "slug": r.name, "name": r.name, "project": {"key": r.org},
                        "links": {"clone": [
                            {"name": "http", "href": format!("https://git.example/scm/{}/{}.git", r.org.to_lowercase(), r.name)},
                            {"name": "ssh", "href": format!("ssh://git@git.example:7999/{}/{}.git", r.org.to_lowercase(), r.name)},
                        ]},
                    })
                })
                .collect();
            bitbucket_page(items, params, size)
        }
        ["projects", key, "repos", slug, "branches", "default"] => {
            let Some(repo) = find_repo(data, key, slug) else {
                return not_found();
            };
            match repo
                .default_branch
                .as_ref()
                .and_then(|b| branch_sha(repo, b).map(|s| (b, s)))
            {
                Some((b, s)) => Answer::json(json!({
                    "id": format!("refs/heads/{b}"), "displayId": b, "latestCommit": s,
                })),
                // An empty repository: 204 without a body, as Bitbucket Server answers.
                None => Answer {
                    status: 204,
                    content_type: "application/json",
                    headers: Vec::new(),
                    body: String::new(),
                },
            }
        }
        ["projects", key, "repos", slug, "branches"] => match find_repo(data, key, slug) {
            Some(r) => bitbucket_page(
                r.branches
                    .iter()
                    .map(|(b, s)| {
                        json!({"id": format!("refs/heads/{b}"), "displayId": b, "latestCommit": s})
                    })
                    .collect(),
                params,
                size,
            ),
            None => not_found(),
        },
        ["projects", key, "repos", slug, "labels"] => match find_repo(data, key, slug) {
            Some(r) => bitbucket_page(
                r.labels.iter().map(|l| json!({"name": l})).collect(),
                params,
                size,
            ),
            None => not_found(),
        },
        ["projects", key, "repos", slug, "browse", path @ ..] => match find_repo(data, key, slug) {
            Some(r) if has_path(r, &path.join("/")) => {
                let file = r.files.iter().any(|f| *f == path.join("/"));
                Answer::json(json!({"type": if file { "FILE" } else { "DIRECTORY" }}))
            }
            _ => not_found(),
        },
        ["projects", key, "repos", slug, "pull-requests"] => {
            if find_repo(data, key, slug).is_none() {
                return not_found();
            }
            let items = data
                .pulls
                .iter()
                .filter(|p| p.org == *key && p.repo == *slug)
                .map(|p| {
                    json!({
                        "id": p.number, "title": p.title, "state": "OPEN",
                        "fromRef": {"displayId": p.branch, "latestCommit": p.sha},
                        "toRef": {"displayId": p.target},
                        "author": {"user": {"name": p.author}},
                    })
                })
                .collect();
            bitbucket_page(items, params, size)
        }
        _ => not_found(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_undoes_percent_encoding() {
        assert_eq!(decode("group%2Fsub"), "group/sub");
        assert_eq!(decode("a%20b"), "a b");
        assert_eq!(decode("100%"), "100%");
    }

    #[test]
    fn tree_lists_direct_entries_once() {
        let mut r = Repo::new("o", "r", 1, "abc");
        r.files = vec!["a/b.yaml".into(), "a/c/d.yaml".into(), "top.txt".into()];
        assert_eq!(
            tree(&r, "a"),
            vec![
                ("a/b.yaml".to_string(), "blob"),
                ("a/c".to_string(), "tree")
            ]
        );
        assert!(has_path(&r, "a/c"));
        assert!(!has_path(&r, "a/x"));
    }
}
