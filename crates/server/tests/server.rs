//! The server against the real local control plane: every API route, authentication, webhooks
//! of each provider, and metrics. The controller does not run here, so requested operations
//! and refresh annotations stay on the Applications for the tests to see.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_controller::{Engine, EngineConfig};
use ferry_core::application::Application;
use ferry_server::{Server, ServerConfig, WebhookSecretSource};
use ferry_testsupport::{Cluster, GitRepo, Probe, TestNamespace, wait_until};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const REFRESH: &str = "argocd.argoproj.io/refresh";

/// Applies ferry's CRDs (server-side, so repeating it is harmless).
fn install_crds() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let crds = ferry_testsupport::repo_root().join("manifests/crds");
        Cluster::shared().kubectl().run(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            crds.to_str().unwrap(),
        ]);
        Cluster::shared().kubectl().run(&[
            "wait",
            "--for=condition=Established",
            "crd/applications.argoproj.io",
            "crd/appprojects.argoproj.io",
        ]);
    });
}

/// A server in-process for `ns`; stops when the returned sender is dropped.
struct Running {
    addr: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
    _cache: tempfile::TempDir,
}

async fn start(ns: &TestNamespace, insecure: bool, secrets: WebhookSecretSource) -> Running {
    ferry_testsupport::install_crypto_provider();
    let cache = tempfile::tempdir().unwrap();
    let client = ns.client();
    let engine = Arc::new(Engine::new(
        client.clone(),
        EngineConfig {
            namespace: ns.name().to_string(),
            field_manager: "ferry".into(),
            poll_interval: Duration::ZERO,
            cache_dir: cache.path().to_path_buf(),
            per_app_concurrency: 4,
        },
    ));
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), ns.name());
    config.insecure_no_auth = insecure;
    config.webhook_secrets = secrets;
    let server = Server::bind(config, client, engine).await.unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    Running {
        addr,
        _stop: stop,
        _cache: cache,
    }
}

/// One HTTP/1.1 request on its own connection: status and body.
async fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may answer (413) and close before it has read all of a big body.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    (status, body)
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

fn app_manifest(name: &str, ns: &str, repo: &str, revision: &str, path: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
spec:
  project: default
  source:
    repoURL: {repo}
    targetRevision: {revision}
    path: {path}
  destination:
    server: https://kubernetes.default.svc
    namespace: {ns}
"#
    )
}

fn default_project(ns: &TestNamespace) {
    ns.kubectl().apply(&format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: default
spec:
  sourceRepos: ["*"]
  destinations:
  - server: https://kubernetes.default.svc
    namespace: {}
"#,
        ns.name()
    ));
}

async fn get_app(ns: &TestNamespace, name: &str) -> Application {
    ns.api::<Application>().get(name).await.unwrap()
}

#[tokio::test]
async fn api_routes_serve_and_request_operations() {
    install_crds();
    let ns = Cluster::shared().namespace("server-api").await;
    default_project(&ns);
    let repo = GitRepo::new();
    repo.write(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: b\n",
    );
    repo.write(
        "app/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: hunter2-in-git\n",
    );
    repo.commit("app");
    ns.kubectl()
        .apply(&app_manifest("web", ns.name(), &repo.url(), "main", "app"));
    let s = start(&ns, true, WebhookSecretSource::None).await;

    let (code, body) = http(s.addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(s.addr, "GET", "/readyz", &[], b"").await;
    assert_eq!(code, 200, "{body}");
    let (code, body) = http(s.addr, "GET", "/api/openapi.json", &[], b"").await;
    assert_eq!(code, 200);
    assert!(json_of(&body)["paths"]["/api/v1/applications/{name}/sync"].is_object());

    let (code, body) = http(s.addr, "GET", "/api/v1/applications", &[], b"").await;
    assert_eq!(code, 200, "{body}");
    let list = json_of(&body);
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{body}");
    assert_eq!(items[0]["name"], "web");
    assert_eq!(items[0]["project"], "default");
    assert_eq!(items[0]["repoURL"], repo.url());
    assert_eq!(items[0]["targetRevision"], "main");
    assert_eq!(items[0]["syncStatus"], "Unknown");

    let (code, body) = http(s.addr, "GET", "/api/v1/applications/web", &[], b"").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(json_of(&body)["metadata"]["name"], "web");
    let (code, body) = http(s.addr, "GET", "/api/v1/applications/missing", &[], b"").await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(json_of(&body)["code"], "application_not_found");
    let (code, body) = http(s.addr, "GET", "/api/v1/applications/web/history", &[], b"").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(json_of(&body)["items"], json!([]));
    let (code, _) = http(
        s.addr,
        "GET",
        "/api/v1/applications/missing/history",
        &[],
        b"",
    )
    .await;
    assert_eq!(code, 404);

    // Diff: rendered from Git, the Secret's value masked.
    let (code, body) = http(s.addr, "GET", "/api/v1/applications/web/diff", &[], b"").await;
    assert_eq!(code, 200, "{body}");
    assert!(!body.contains("hunter2-in-git"), "secret leaked: {body}");
    let diff = json_of(&body);
    let kinds: Vec<&str> = diff["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    assert!(
        kinds.contains(&"ConfigMap") && kinds.contains(&"Secret"),
        "{body}"
    );
    let (code, _) = http(s.addr, "GET", "/api/v1/applications/missing/diff", &[], b"").await;
    assert_eq!(code, 404);

    // Refresh sets the annotation.
    let (code, body) = http(
        s.addr,
        "POST",
        "/api/v1/applications/web/refresh?hard=true",
        &[],
        b"",
    )
    .await;
    assert_eq!(code, 202, "{body}");
    let app = get_app(&ns, "web").await;
    assert_eq!(
        app.metadata
            .annotations
            .unwrap_or_default()
            .get(REFRESH)
            .map(String::as_str),
        Some("hard")
    );
    let (code, _) = http(
        s.addr,
        "POST",
        "/api/v1/applications/missing/refresh",
        &[],
        b"",
    )
    .await;
    assert_eq!(code, 404);

    // Sync: a bad body is 400, then .operation is set, then a second request is 409.
    let (code, body) = http(
        s.addr,
        "POST",
        "/api/v1/applications/web/sync",
        &[],
        b"{not json",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert_eq!(json_of(&body)["code"], "bad_request");
    let (code, _) = http(
        s.addr,
        "POST",
        "/api/v1/applications/web/sync",
        &[],
        br#"{"purge": true}"#,
    )
    .await;
    assert_eq!(code, 400);
    let (code, body) = http(
        s.addr,
        "POST",
        "/api/v1/applications/web/sync",
        &[("Content-Type", "application/json")],
        br#"{"revision": "v1", "prune": true, "dryRun": true}"#,
    )
    .await;
    assert_eq!(code, 202, "{body}");
    let op =
        serde_json::to_value(get_app(&ns, "web").await.operation.expect("operation set")).unwrap();
    assert_eq!(op["sync"]["revision"], "v1", "{op}");
    assert_eq!(op["sync"]["prune"], true, "{op}");
    assert_eq!(op["sync"]["dryRun"], true, "{op}");
    assert_eq!(op["initiatedBy"]["username"], "ferry-server", "{op}");
    let (code, body) = http(s.addr, "POST", "/api/v1/applications/web/sync", &[], b"").await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(json_of(&body)["code"], "operation_pending");
    let (code, _) = http(
        s.addr,
        "POST",
        "/api/v1/applications/missing/sync",
        &[],
        b"",
    )
    .await;
    assert_eq!(code, 404);

    // Rollback: 400 without an id, 404 for an unknown entry.
    let (code, _) = http(
        s.addr,
        "POST",
        "/api/v1/applications/web/rollback",
        &[],
        b"{}",
    )
    .await;
    assert_eq!(code, 400);
    let (code, body) = http(
        s.addr,
        "POST",
        "/api/v1/applications/web/rollback",
        &[],
        br#"{"id": 7}"#,
    )
    .await;
    assert_eq!(code, 404, "{body}");
    assert_eq!(json_of(&body)["code"], "history_entry_not_found");
    let (code, _) = http(s.addr, "GET", "/api/v1/nothing-here", &[], b"").await;
    assert_eq!(code, 404);
}

#[tokio::test]
async fn rollback_requests_a_sync_to_the_entry_revision() {
    install_crds();
    let ns = Cluster::shared().namespace("server-rollback").await;
    ns.kubectl().apply(&app_manifest(
        "web",
        ns.name(),
        "https://example.test/r.git",
        "main",
        ".",
    ));
    // A history entry, as the controller would have written it.
    ns.kubectl().run(&[
        "patch",
        "application",
        "web",
        "--type=merge",
        "-p",
        r#"{"status":{"history":[{"id":3,"revision":"abc123","deployedAt":"2026-01-01T00:00:00Z"}]}}"#,
    ]);
    let s = start(&ns, true, WebhookSecretSource::None).await;
    let (code, body) = http(s.addr, "GET", "/api/v1/applications/web/history", &[], b"").await;
    assert_eq!(code, 200);
    assert_eq!(json_of(&body)["items"][0]["revision"], "abc123", "{body}");
    let (code, body) = http(
        s.addr,
        "POST",
        "/api/v1/applications/web/rollback",
        &[],
        br#"{"id": 3}"#,
    )
    .await;
    assert_eq!(code, 202, "{body}");
    let op =
        serde_json::to_value(get_app(&ns, "web").await.operation.expect("operation set")).unwrap();
    assert_eq!(op["sync"]["revision"], "abc123", "{op}");
    // A second request while the first is pending.
    let (code, body) = http(
        s.addr,
        "POST",
        "/api/v1/applications/web/rollback",
        &[],
        br#"{"id": 3}"#,
    )
    .await;
    assert_eq!(code, 409, "{body}");
}

#[tokio::test]
async fn api_needs_authentication_unless_insecure() {
    install_crds();
    let ns = Cluster::shared().namespace("server-auth").await;
    let s = start(&ns, false, WebhookSecretSource::None).await;
    for (method, path) in [
        ("GET", "/api/v1/applications"),
        ("GET", "/api/v1/applications/x"),
        ("POST", "/api/v1/applications/x/sync"),
        ("GET", "/api/openapi.json"),
    ] {
        let (code, body) = http(s.addr, method, path, &[], b"").await;
        assert_eq!(code, 401, "{method} {path}: {body}");
        assert_eq!(json_of(&body)["code"], "unauthorized");
    }
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (code, body) = http(s.addr, "GET", path, &[], b"").await;
        assert_eq!(code, 200, "{path}: {body}");
    }
}

fn sign(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn github_push(repo: &str, git_ref: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "ref": git_ref,
        "after": "0123456789abcdef0123456789abcdef01234567",
        "repository": {
            "html_url": format!("https://github.com/{repo}"),
            "clone_url": format!("https://github.com/{repo}.git"),
            "ssh_url": format!("git@github.com:{repo}.git"),
            "default_branch": "main",
        },
    }))
    .unwrap()
}

#[tokio::test]
async fn webhooks_are_verified_and_refresh_matching_apps() {
    install_crds();
    let ns = Cluster::shared().namespace("server-webhook").await;
    ns.kubectl().run(&[
        "create",
        "secret",
        "generic",
        "ferry-webhooks",
        "--from-literal=webhook.github.secret=gh-secret",
        "--from-literal=webhook.gitlab.secret=gl-token",
        "--from-literal=webhook.gitea.secret=gt-secret",
        "--from-literal=webhook.bitbucket.uuid={bb-uuid}",
    ]);
    let n = ns.name();
    ns.kubectl().apply(&app_manifest(
        "one-main",
        n,
        "https://github.com/org/one.git",
        "main",
        ".",
    ));
    ns.kubectl().apply(&app_manifest(
        "one-head",
        n,
        "https://GitHub.com/org/one",
        "HEAD",
        ".",
    ));
    ns.kubectl().apply(&app_manifest(
        "one-dev",
        n,
        "https://github.com/org/one.git",
        "dev",
        ".",
    ));
    ns.kubectl().apply(&app_manifest(
        "two-main",
        n,
        "https://github.com/org/two.git",
        "main",
        ".",
    ));
    let s = start(
        &ns,
        false,
        WebhookSecretSource::Kubernetes {
            secret_name: "ferry-webhooks".into(),
        },
    )
    .await;

    let body = github_push("org/one", "refs/heads/main");
    let good = format!("sha256={}", sign("gh-secret", &body));
    let bad = format!("sha256={}", sign("wrong", &body));
    // Missing and wrong signatures.
    let (code, out) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[("X-GitHub-Event", "push")],
        &body,
    )
    .await;
    assert_eq!(code, 401, "{out}");
    let (code, out) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &bad)],
        &body,
    )
    .await;
    assert_eq!(code, 403, "{out}");
    assert_eq!(json_of(&out)["code"], "signature_invalid");
    // Too big.
    let big = vec![b' '; 2 * 1024 * 1024];
    let (code, out) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &good)],
        &big,
    )
    .await;
    assert_eq!(code, 413, "{out}");
    // Unknown sender.
    let (code, _) = http(s.addr, "POST", "/api/webhook", &[], &body).await;
    assert_eq!(code, 400);
    // Nothing was refreshed by the refused deliveries.
    for name in ["one-main", "one-head", "one-dev", "two-main"] {
        let app = get_app(&ns, name).await;
        assert!(
            !app.metadata
                .annotations
                .unwrap_or_default()
                .contains_key(REFRESH),
            "{name}"
        );
    }

    // A valid push to org/one main refreshes exactly the apps following it.
    let (code, out) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[("X-GitHub-Event", "push"), ("X-Hub-Signature-256", &good)],
        &body,
    )
    .await;
    assert_eq!(code, 202, "{out}");
    for name in ["one-main", "one-head"] {
        wait_until(
            &format!("{name} has the refresh annotation"),
            Duration::from_secs(30),
            || async {
                let app = get_app(&ns, name).await;
                match app.metadata.annotations.unwrap_or_default().get(REFRESH) {
                    Some(v) => Probe::Done(v.clone()),
                    None => Probe::Pending("no annotation".into()),
                }
            },
        )
        .await;
    }
    for name in ["one-dev", "two-main"] {
        let app = get_app(&ns, name).await;
        assert!(
            !app.metadata
                .annotations
                .unwrap_or_default()
                .contains_key(REFRESH),
            "{name} was refreshed by a push to another repo or branch"
        );
    }

    // GitLab: token.
    let gl = serde_json::to_vec(&json!({
        "ref": "refs/heads/main",
        "project": {"web_url": "https://gitlab.com/org/two", "default_branch": "main"},
    }))
    .unwrap();
    let (code, _) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "nope")],
        &gl,
    )
    .await;
    assert_eq!(code, 403);
    let (code, _) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[("X-Gitlab-Event", "Push Hook")],
        &gl,
    )
    .await;
    assert_eq!(code, 401);
    let (code, out) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[
            ("X-Gitlab-Event", "Push Hook"),
            ("X-Gitlab-Token", "gl-token"),
        ],
        &gl,
    )
    .await;
    assert_eq!(code, 202, "{out}");
    // Gitea: HMAC hex without prefix.
    let gt = github_push("org/two", "refs/heads/main");
    let (code, _) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Signature", &sign("nope", &gt)),
        ],
        &gt,
    )
    .await;
    assert_eq!(code, 403);
    let (code, out) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[
            ("X-Gitea-Event", "push"),
            ("X-Gitea-Signature", &sign("gt-secret", &gt)),
        ],
        &gt,
    )
    .await;
    assert_eq!(code, 202, "{out}");
    // The Gitea push was for org/two main.
    wait_until(
        "two-main has the refresh annotation",
        Duration::from_secs(30),
        || async {
            let app = get_app(&ns, "two-main").await;
            match app.metadata.annotations.unwrap_or_default().get(REFRESH) {
                Some(v) => Probe::Done(v.clone()),
                None => Probe::Pending("no annotation".into()),
            }
        },
    )
    .await;
    // Bitbucket Cloud: the hook's UUID.
    let bb = serde_json::to_vec(&json!({
        "repository": {"full_name": "org/three"},
        "push": {"changes": [{"new": {"type": "branch", "name": "main"}}]},
    }))
    .unwrap();
    let (code, _) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[("X-Event-Key", "repo:push"), ("X-Hook-UUID", "{other}")],
        &bb,
    )
    .await;
    assert_eq!(code, 403);
    let (code, out) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[("X-Event-Key", "repo:push"), ("X-Hook-UUID", "{bb-uuid}")],
        &bb,
    )
    .await;
    assert_eq!(code, 202, "{out}");
    // A GitHub ping is acknowledged and ignored.
    let ping = br#"{"zen": "hi"}"#;
    let sig = format!("sha256={}", sign("gh-secret", ping));
    let (code, out) = http(
        s.addr,
        "POST",
        "/api/webhook",
        &[("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", &sig)],
        ping,
    )
    .await;
    assert_eq!(code, 202, "{out}");
    assert_eq!(json_of(&out)["status"], "ignored");

    // Metrics.
    let (code, metrics) = http(s.addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(code, 200);
    for expected in [
        r#"ferry_webhook_requests_total{provider="github",result="accepted"} 1"#,
        r#"ferry_webhook_requests_total{provider="github",result="forbidden"} 1"#,
        r#"ferry_webhook_requests_total{provider="github",result="unauthorized"} 1"#,
        r#"ferry_webhook_requests_total{provider="github",result="too_large"} 1"#,
        r#"ferry_webhook_requests_total{provider="gitlab",result="accepted"} 1"#,
        r#"ferry_webhook_requests_total{provider="bitbucket",result="accepted"} 1"#,
        r#"ferry_webhook_requests_total{provider="unknown",result="bad_request"} 1"#,
        "# TYPE ferry_app_info gauge",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
    let info = format!(
        r#"ferry_app_info{{name="one-dev",namespace="{n}",project="default",sync_status="Unknown",health_status="Unknown"}} 1"#
    );
    assert!(metrics.contains(&info), "{info} missing from:\n{metrics}");
    assert_eq!(metrics.matches("ferry_app_info{").count(), 4, "{metrics}");
}
