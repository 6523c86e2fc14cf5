//! The server against the real local control plane: every API route, authentication, webhooks
//! of each provider, and metrics. The controller does not run here, so requested operations
//! and refresh annotations stay on the Applications for the tests to see.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ferry_controller::{Differ, EngineConfig};
use ferry_core::application::Application;
use ferry_server::{Server, ServerConfig, WebhookSecretSource};
use ferry_testsupport::http::{Reply, parse_reply, request_head};
use ferry_testsupport::{Cluster, GitRepo, Probe, TestNamespace, wait_until};
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[path = "appsets/mod.rs"]
mod appsets;

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
    let engine = Arc::new(Differ::new(
        client.clone(),
        EngineConfig {
            poll_interval: Duration::ZERO,
            per_app_concurrency: 4,
            // The test's repository is a local one.
            allow_file_repos: true,
            ..EngineConfig::new(ns.name().to_string(), cache.path().to_path_buf())
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
    let r = http_full(addr, method, path, headers, body).await;
    (r.status, r.body)
}

/// One HTTP/1.1 request on its own connection.
async fn http_full(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    http_on(stream, addr, method, path, headers, body).await
}

/// One HTTP/1.1 request on `stream` (plain or TLS).
async fn http_on<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let head = request_head(addr, method, path, headers, body.len());
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
    parse_reply(&raw).unwrap_or_else(|e| panic!("{method} {path}: {e}"))
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
    assert_eq!(op["initiatedBy"]["username"], "anonymous", "{op}");
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
    // Every route that is not public, by the router's own table.
    let protected: Vec<_> = ferry_server::route_table()
        .into_iter()
        .filter(|(_, _, public)| !public)
        .collect();
    assert!(protected.len() >= 10, "{protected:?}");
    for (method, path, _) in protected {
        let path = path.replace("{name}", "x");
        let (code, body) = http(s.addr, method.as_str(), &path, &[], b"").await;
        assert_eq!(code, 401, "{method} {path}: {body}");
        assert_eq!(json_of(&body)["code"], "unauthorized", "{method} {path}");
        // A made-up bearer token or session cookie is no better.
        let (code, _) = http(
            s.addr,
            method.as_str(),
            &path,
            &[("Authorization", "Bearer ferry_madeup")],
            b"",
        )
        .await;
        assert_eq!(code, 401, "{method} {path} with a made-up token");
    }
    for path in ["/healthz", "/readyz"] {
        let (code, body) = http(s.addr, "GET", path, &[], b"").await;
        assert_eq!(code, 200, "{path}: {body}");
    }
    // /metrics names every app, project and repository: signed-in callers only here.
    let (code, body) = http(s.addr, "GET", "/metrics", &[], b"").await;
    assert_eq!(code, 401, "anonymous /metrics: {body}");
    // With --insecure-no-auth everything is open, as the admin.
    let open = start(&ns, true, WebhookSecretSource::None).await;
    let (code, body) = http(open.addr, "GET", "/api/v1/session/userinfo", &[], b"").await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(json_of(&body)["insecure"], true);
    assert_eq!(json_of(&body)["role"], "admin");
}

/// Reads a Secret's key as text.
async fn secret_value(ns: &TestNamespace, name: &str, key: &str) -> String {
    let secret = ns
        .api::<k8s_openapi::api::core::v1::Secret>()
        .get(name)
        .await
        .unwrap();
    String::from_utf8(secret.data.unwrap()[key].0.clone()).unwrap()
}

/// Logs in through the API: (token, csrf token, the Set-Cookie header).
async fn log_in(addr: SocketAddr, user: &str, password: &str) -> (String, String, String) {
    let body = json!({"username": user, "password": password}).to_string();
    let r = http_full(
        addr,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "login of {user}: {}", r.body);
    let v = json_of(&r.body);
    (
        v["token"].as_str().unwrap().to_string(),
        v["csrfToken"].as_str().unwrap().to_string(),
        r.header("set-cookie").unwrap().to_string(),
    )
}

#[tokio::test]
async fn logins_sessions_roles_projects_and_api_tokens() {
    install_crds();
    let ns = Cluster::shared().namespace("server-login").await;
    default_project(&ns);
    let n = ns.name().to_string();
    ns.kubectl().apply(&app_manifest(
        "web",
        &n,
        "https://example.test/repo.git",
        "main",
        "web",
    ));
    let s = start(&ns, false, WebhookSecretSource::None).await;

    // The admin's initial password, in a Secret as Argo CD keeps it; only a hash in ferry-secret.
    let password = secret_value(&ns, "ferry-initial-admin-secret", "password").await;
    assert_eq!(password.len(), 24);
    let hash = secret_value(&ns, "ferry-secret", "admin.password").await;
    assert!(hash.starts_with("$argon2id$") && !hash.contains(&password));

    // Wrong password: 401 and no cookie.
    let wrong = http_full(
        s.addr,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        br#"{"username":"admin","password":"nope"}"#,
    )
    .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(json_of(&wrong.body)["code"], "invalid_credentials");
    assert!(wrong.header("set-cookie").is_none());

    let (token, csrf, set_cookie) = log_in(s.addr, "admin", &password).await;
    assert!(
        set_cookie.starts_with(&format!("ferry_session={token};")),
        "{set_cookie}"
    );
    for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set_cookie.contains(attr), "{attr} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP: {set_cookie}");
    let bearer = format!("Bearer {token}");
    let cookie = format!("ferry_session={token}");

    // The session token as a bearer token.
    let (code, body) = http(
        s.addr,
        "GET",
        "/api/v1/applications",
        &[("Authorization", &bearer)],
        b"",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    assert_eq!(json_of(&body)["items"][0]["name"], "web");
    let (code, body) = http(
        s.addr,
        "GET",
        "/api/v1/session/userinfo",
        &[("Cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(json_of(&body)["username"], "admin");

    // A cookie-authenticated change needs the CSRF token.
    let refresh = "/api/v1/applications/web/refresh";
    let (code, body) = http(s.addr, "POST", refresh, &[("Cookie", &cookie)], b"").await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(json_of(&body)["code"], "csrf_token_invalid");
    let (code, _) = http(
        s.addr,
        "POST",
        refresh,
        &[("Cookie", &cookie), ("X-CSRF-Token", "wrong")],
        b"",
    )
    .await;
    assert_eq!(code, 403);
    let (code, body) = http(
        s.addr,
        "POST",
        refresh,
        &[("Cookie", &cookie), ("X-CSRF-Token", &csrf)],
        b"",
    )
    .await;
    assert_eq!(code, 202, "{body}");
    // Bearer tokens are not sent by browsers on their own: no CSRF token needed.
    let (code, body) = http(s.addr, "POST", refresh, &[("Authorization", &bearer)], b"").await;
    assert_eq!(code, 202, "{body}");

    // Accounts: a readonly viewer, a sync account limited to another project, a CI account
    // with an API token.
    let store = ferry_server::auth::accounts::AccountStore::new(ns.client(), &n);
    use ferry_server::auth::Role;
    store
        .upsert_account("viewer", Role::ReadOnly, &[])
        .await
        .unwrap();
    store
        .set_password("viewer", "viewer-password")
        .await
        .unwrap();
    store
        .upsert_account("other-team", Role::Sync, &["other".into()])
        .await
        .unwrap();
    store
        .set_password("other-team", "other-password")
        .await
        .unwrap();
    store
        .upsert_account("ci", Role::Sync, &["default".into()])
        .await
        .unwrap();
    let ci_token = store.generate_token("ci", "pipeline").await.unwrap();
    assert!(ci_token.starts_with("ferry_"));
    assert!(
        !secret_value(&ns, "ferry-secret", "accounts.ci.tokens")
            .await
            .contains(&ci_token)
    );

    let (viewer, _, _) = log_in(s.addr, "viewer", "viewer-password").await;
    let viewer = format!("Bearer {viewer}");
    let (code, _) = http(
        s.addr,
        "GET",
        "/api/v1/applications/web",
        &[("Authorization", &viewer)],
        b"",
    )
    .await;
    assert_eq!(code, 200, "readonly reads");
    for (path, body) in [
        ("/api/v1/applications/web/sync", "{}"),
        ("/api/v1/applications/web/refresh", ""),
        ("/api/v1/applications/web/rollback", r#"{"id": 0}"#),
    ] {
        let (code, out) = http(
            s.addr,
            "POST",
            path,
            &[("Authorization", &viewer)],
            body.as_bytes(),
        )
        .await;
        assert_eq!(code, 403, "readonly on {path}: {out}");
        assert_eq!(json_of(&out)["code"], "permission_denied");
        assert!(
            json_of(&out)["message"]
                .as_str()
                .unwrap()
                .contains("viewer"),
            "{out}"
        );
    }

    let (other, _, _) = log_in(s.addr, "other-team", "other-password").await;
    let other = format!("Bearer {other}");
    let (code, body) = http(
        s.addr,
        "GET",
        "/api/v1/applications",
        &[("Authorization", &other)],
        b"",
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(
        json_of(&body)["items"],
        json!([]),
        "apps of other projects are not listed"
    );
    let (code, _) = http(
        s.addr,
        "GET",
        "/api/v1/applications/web",
        &[("Authorization", &other)],
        b"",
    )
    .await;
    assert_eq!(code, 404, "nor readable");
    let (code, _) = http(
        s.addr,
        "POST",
        "/api/v1/applications/web/sync",
        &[("Authorization", &other)],
        b"{}",
    )
    .await;
    assert_eq!(code, 404, "nor syncable");

    let ci = format!("Bearer {ci_token}");
    let (code, body) = http(
        s.addr,
        "POST",
        "/api/v1/applications/web/sync",
        &[("Authorization", &ci)],
        b"{}",
    )
    .await;
    assert_eq!(code, 202, "{body}");
    let app = get_app(&ns, "web").await;
    let op = serde_json::to_value(app.operation.unwrap()).unwrap();
    assert_eq!(op["initiatedBy"]["username"], "ci", "{op}");
    // A deleted token stops working (after the account cache's few seconds).
    assert!(store.delete_token("ci", "pipeline").await.unwrap());
    wait_until(
        "the deleted API token to be refused",
        Duration::from_secs(15),
        || async {
            let (code, _) = http(
                s.addr,
                "GET",
                "/api/v1/applications",
                &[("Authorization", &ci)],
                b"",
            )
            .await;
            if code == 401 {
                Probe::Done(())
            } else {
                Probe::pending(format!("status {code}"))
            }
        },
    )
    .await;

    // The login form: a redirect with the cookie, or back to the form with an error.
    let form = "username=viewer&password=viewer-password&next=%2Fapplications%2Fweb";
    let r = http_full(
        s.addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/applications/web"));
    assert!(
        r.header("set-cookie")
            .unwrap()
            .starts_with("ferry_session=")
    );
    let form_cookie = r
        .header("set-cookie")
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = http_full(
        s.addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"username=viewer&password=x&next=https%3A%2F%2Fevil.example%2F",
    )
    .await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some("/login?error=invalid&next=%2F"),
        "no open redirect"
    );

    // Logout by form needs the CSRF field; afterwards the cookie is dead.
    let (code, _) = http(
        s.addr,
        "POST",
        "/logout",
        &[
            ("Cookie", &form_cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"_csrf=wrong",
    )
    .await;
    assert_eq!(code, 403);
    let (code, body) = http(
        s.addr,
        "GET",
        "/api/v1/session/userinfo",
        &[("Cookie", &form_cookie)],
        b"",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let form_csrf = json_of(&body)["csrfToken"].as_str().unwrap().to_string();
    let r = http_full(
        s.addr,
        "POST",
        "/logout",
        &[
            ("Cookie", &form_cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        format!("_csrf={form_csrf}").as_bytes(),
    )
    .await;
    assert_eq!(r.status, 303, "{}", r.body);
    assert_eq!(r.header("location"), Some("/login"));
    assert!(r.header("set-cookie").unwrap().contains("Max-Age=0"));
    let (code, _) = http(
        s.addr,
        "GET",
        "/api/v1/session/userinfo",
        &[("Cookie", &form_cookie)],
        b"",
    )
    .await;
    assert_eq!(code, 401, "logged out");
    let (code, body) = http(
        s.addr,
        "DELETE",
        "/api/v1/session",
        &[("Authorization", &viewer)],
        b"",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let (code, _) = http(
        s.addr,
        "GET",
        "/api/v1/applications",
        &[("Authorization", &viewer)],
        b"",
    )
    .await;
    assert_eq!(code, 401, "the session ended");

    // Failed logins are limited per account: after five (one was the form above), even the
    // right password is refused.
    for _ in 0..4 {
        let (code, _) = http(
            s.addr,
            "POST",
            "/api/v1/session",
            &[("Content-Type", "application/json")],
            br#"{"username":"viewer","password":"guess"}"#,
        )
        .await;
        assert_eq!(code, 401);
    }
    let (code, body) = http(
        s.addr,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        br#"{"username":"viewer","password":"viewer-password"}"#,
    )
    .await;
    assert_eq!(code, 429, "{body}");
    assert_eq!(json_of(&body)["code"], "too_many_failed_logins");
    let r = http_full(
        s.addr,
        "POST",
        "/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"username=viewer&password=viewer-password",
    )
    .await;
    assert_eq!(r.header("location"), Some("/login?error=locked&next=%2F"));
    // Other accounts are not affected.
    let (token, _, _) = log_in(s.addr, "admin", &password).await;

    let bearer = format!("Bearer {token}");
    let (_, metrics) = http(
        s.addr,
        "GET",
        "/metrics",
        &[("Authorization", bearer.as_str())],
        b"",
    )
    .await;
    assert!(
        metrics.contains(r#"ferry_login_attempts_total{result="locked"} 2"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"ferry_login_attempts_total{result="failure"}"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn tls_serves_https_and_marks_cookies_secure() {
    install_crds();
    let ns = Cluster::shared().namespace("server-tls").await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    // A CA, and a certificate for 127.0.0.1 signed by it.
    let ca_cert = dir.path().join("ca.crt");
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .current_dir(dir.path())
            .args(args)
            .output()
            .expect("running openssl (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &ec,
            &[
                "-days",
                "1",
                "-subj",
                "/CN=test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ],
        ]
        .concat(),
    );
    openssl(
        &[
            &["req"][..],
            &ec,
            &[
                "-subj",
                "/CN=localhost",
                "-keyout",
                "tls.key",
                "-out",
                "tls.csr",
            ],
        ]
        .concat(),
    );
    std::fs::write(
        dir.path().join("ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "tls.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "ext",
        "-out",
        "tls.crt",
    ]);

    // A key that does not exist is a clear error naming the file.
    ferry_testsupport::install_crypto_provider();
    let mut config = ServerConfig::new("127.0.0.1:0".parse().unwrap(), ns.name());
    config.tls_files = Some(ferry_server::TlsFiles {
        cert: cert.clone(),
        key: dir.path().join("missing.key"),
    });
    let engine = Arc::new(Differ::new(
        ns.client(),
        EngineConfig {
            poll_interval: Duration::ZERO,
            per_app_concurrency: 4,
            // The test's repository is a local one.
            allow_file_repos: true,
            ..EngineConfig::new(ns.name().to_string(), dir.path().join("cache"))
        },
    ));
    let err = Server::bind(config.clone(), ns.client(), engine.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("missing.key"), "{err}");

    config.tls_files = Some(ferry_server::TlsFiles {
        cert: cert.clone(),
        key,
    });
    let server = Server::bind(config, ns.client(), engine).await.unwrap();
    let addr = server.local_addr();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));

    let mut roots = rustls::RootCertStore::empty();
    use rustls_pki_types::pem::PemObject;
    for c in rustls_pki_types::CertificateDer::pem_file_iter(&ca_cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let client_config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client_config));
    let connect = || async {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        connector
            .connect(
                rustls_pki_types::ServerName::IpAddress(addr.ip().into()),
                tcp,
            )
            .await
            .unwrap()
    };
    let r = http_on(connect().await, addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(r.status, 200, "{}", r.body);
    // Plain HTTP on the TLS port gets nowhere.
    let plain = tokio::time::timeout(Duration::from_secs(10), http_full_raw(addr)).await;
    assert!(
        !matches!(plain, Ok(Some(ref s)) if s.starts_with("HTTP/1.1 200")),
        "{plain:?}"
    );

    let password = secret_value(&ns, "ferry-initial-admin-secret", "password").await;
    let body = json!({"username": "admin", "password": password}).to_string();
    let r = http_on(
        connect().await,
        addr,
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let set_cookie = r.header("set-cookie").unwrap();
    assert!(set_cookie.ends_with("; Secure"), "{set_cookie}");
    drop(stop);
}

/// What a plain-HTTP request to `addr` gets back, if anything.
async fn http_full_raw(addr: SocketAddr) -> Option<String> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.ok()?;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .ok()?;
    let mut out = Vec::new();
    let _ = stream.read_to_end(&mut out).await;
    Some(String::from_utf8_lossy(&out).into_owned())
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

    // Metrics (signed in).
    let password = secret_value(&ns, "ferry-initial-admin-secret", "password").await;
    let (token, _, _) = log_in(s.addr, "admin", &password).await;
    let bearer = format!("Bearer {token}");
    let (code, metrics) = http(
        s.addr,
        "GET",
        "/metrics",
        &[("Authorization", bearer.as_str())],
        b"",
    )
    .await;
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

/// A flood of failed logins: five bad admin passwords lock the admin out, and failures for
/// made-up names afterwards do not lift that lock (the made-up names' table is bounded apart,
/// see the limiter's unit test for the 10,001-name case). 200 concurrent bad logins run their
/// password checks a few at a time while an authenticated request is answered; its latency is
/// printed (not asserted: the machine's load decides it).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn login_floods_keep_the_lock_out_and_the_api_answering() {
    install_crds();
    let ns = Cluster::shared().namespace("server-flood").await;
    default_project(&ns);
    let s = start(&ns, false, WebhookSecretSource::None).await;
    let password = secret_value(&ns, "ferry-initial-admin-secret", "password").await;
    let (token, _, _) = log_in(s.addr, "admin", &password).await;
    let bearer = format!("Bearer {token}");
    let json = [("Content-Type", "application/json")];
    let attempt = |user: String, pass: String| async move {
        let body = json!({"username": user, "password": pass}).to_string();
        http(s.addr, "POST", "/api/v1/session", &json, body.as_bytes())
            .await
            .0
    };
    for _ in 0..5 {
        assert_eq!(attempt("admin".into(), "wrong".into()).await, 401);
    }
    assert_eq!(attempt("admin".into(), password.clone()).await, 429);

    // 200 concurrent failures with made-up names, while the admin's session reads the API.
    let flood: Vec<_> = (0..200)
        .map(|i| tokio::spawn(attempt(format!("nobody-{i}"), "x".into())))
        .collect();
    let started = std::time::Instant::now();
    let (code, body) = http(
        s.addr,
        "GET",
        "/api/v1/applications",
        &[("Authorization", bearer.as_str())],
        b"",
    )
    .await;
    let latency = started.elapsed();
    assert_eq!(code, 200, "{body}");
    let mut codes = std::collections::BTreeMap::new();
    for task in flood {
        *codes.entry(task.await.unwrap()).or_insert(0) += 1;
    }
    eprintln!(
        "authenticated GET during 200 concurrent bad logins: {} ms; login answers by status: {codes:?}",
        latency.as_millis()
    );
    assert!(
        codes.keys().all(|c| [401, 503].contains(c)),
        "failed logins are refused (503 when too many wait): {codes:?}"
    );
    // Still locked: the flood reset nothing.
    assert_eq!(attempt("admin".into(), password).await, 429);
}

/// A session ends, with its open event stream, on logout; and a session ends when the account's
/// password changes (here as `ferry account update-password` would change it, in the Secret).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sessions_and_event_streams_end_on_logout_and_password_change() {
    install_crds();
    let ns = Cluster::shared().namespace("server-session-end").await;
    default_project(&ns);
    let s = start(&ns, false, WebhookSecretSource::None).await;
    let password = secret_value(&ns, "ferry-initial-admin-secret", "password").await;
    let addr = s.addr;

    // An open /events stream of a session; logout ends it (the connection closes).
    let (token, _, _) = log_in(addr, "admin", &password).await;
    let bearer = format!("Bearer {token}");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = request_head(
        addr,
        "GET",
        "/events",
        &[("Authorization", bearer.as_str())],
        0,
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Read until the stream's first event: it is open.
    let mut seen = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), async {
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&seen).contains("event: ready") {
            let n = stream.read(&mut buf).await.unwrap();
            assert!(
                n > 0,
                "the stream closed early: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
    })
    .await
    .expect("the event stream opened");
    let (code, _) = http(
        addr,
        "DELETE",
        "/api/v1/session",
        &[("Authorization", bearer.as_str())],
        b"",
    )
    .await;
    assert_eq!(code, 200);
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut rest))
        .await
        .expect("the event stream did not end after logout")
        .unwrap();
    let (code, _) = http(
        addr,
        "GET",
        "/api/v1/session/userinfo",
        &[("Authorization", bearer.as_str())],
        b"",
    )
    .await;
    assert_eq!(code, 401, "the session ended");

    // A new session; the password changes; the session no longer works.
    let (token, _, _) = log_in(addr, "admin", &password).await;
    let bearer = format!("Bearer {token}");
    let hash = ferry_server::auth::accounts::hash_password("a-new-password-1").unwrap();
    ns.kubectl().run(&[
        "patch",
        "secret",
        ferry_server::auth::accounts::SECRET,
        "--type=merge",
        "-p",
        &json!({"stringData": {"admin.password": hash}}).to_string(),
    ]);
    wait_until(
        "the old session to end after the password change",
        Duration::from_secs(30),
        || {
            let bearer = bearer.clone();
            async move {
                let (code, body) = http(
                    addr,
                    "GET",
                    "/api/v1/session/userinfo",
                    &[("Authorization", bearer.as_str())],
                    b"",
                )
                .await;
                if code == 401 {
                    Probe::Done(())
                } else {
                    Probe::Pending(format!("{code} {body}"))
                }
            }
        },
    )
    .await;
    log_in(addr, "admin", "a-new-password-1").await;
}

/// A client that never finishes its request headers (slow loris) is disconnected after the
/// header-read timeout; the server keeps answering others meanwhile. Security headers are on
/// every answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_dropped_and_answers_carry_security_headers() {
    install_crds();
    let ns = Cluster::shared().namespace("server-slow").await;
    default_project(&ns);
    let s = start(&ns, false, WebhookSecretSource::None).await;
    let mut slow = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (code, _) = http(s.addr, "GET", "/healthz", &[], b"").await;
    assert_eq!(code, 200, "others are answered while a client dawdles");
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    // The server closes the connection (read ends) well before this deadline.
    let read = tokio::time::timeout(Duration::from_secs(60), slow.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the slow connection was not closed");
    eprintln!(
        "slow client dropped after {} ms",
        started.elapsed().as_millis()
    );

    let r = http_full(s.addr, "GET", "/login", &[], b"").await;
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let csp = r.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
}
