//! More end-to-end scenarios of the GitOps engine and the `ferry app` CLI: manual sync, diff,
//! refresh, list/get/wait, CRDs with their custom resources, CreateNamespace, App-of-Apps
//! pruning, per-resource Prune=false, empty renders, history limits, repository credentials over
//! HTTP, and `ferry install --dry-run`.

mod common;

use std::process::Output;
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use ferry_testsupport::{Cluster, GitRepo, Probe, wait_until};
use serde_json::Value;

/// stdout and stderr of a command, for assertion messages.
fn said(out: &Output) -> String {
    format!(
        "exit {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// `status.history` of an app (empty when absent).
fn history(app: &Value) -> Vec<Value> {
    app.pointer("/status/history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn revision(app: &Value) -> Option<&str> {
    str_at(app, "/status/sync/revision")
}

fn op_phase(app: &Value) -> Option<&str> {
    str_at(app, "/status/operationState/phase")
}

/// Names of the app's resources that carry `requiresPruning: true`.
fn requires_pruning(app: &Value) -> Vec<String> {
    app.pointer("/status/resources")
        .and_then(Value::as_array)
        .map(|rs| {
            rs.iter()
                .filter(|r| r["requiresPruning"] == true)
                .map(|r| r["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether `kubectl get ARGS` finds the object (in the test's namespace unless ARGS say `-n`).
fn exists(w: &World, args: &[&str]) -> bool {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend(["-o", "name", "--ignore-not-found"]);
    !w.kubectl().run(&all).trim().is_empty()
}

/// The current UTC time as `status.reconciledAt` writes it (`%Y-%m-%dT%H:%M:%SZ`).
fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3_600,
        rem % 3_600 / 60,
        rem % 60
    )
}

/// Cluster-scoped objects a test creates outside its namespace, deleted when dropped (kept, like
/// the test namespace, when the test fails or `FERRY_TEST_KEEP=1`). Declare it before the
/// [`World`] so that it is dropped after the controller has stopped and cannot re-create them.
#[derive(Default)]
struct ClusterObjects(Vec<Vec<String>>);

impl ClusterObjects {
    fn add(&mut self, kind: &str, name: &str) {
        self.0.push(vec![kind.to_string(), name.to_string()]);
    }
}

impl Drop for ClusterObjects {
    fn drop(&mut self) {
        let keep =
            std::thread::panicking() || std::env::var("FERRY_TEST_KEEP").is_ok_and(|v| v == "1");
        for obj in &self.0 {
            if keep {
                eprintln!("keeping {} {} for inspection", obj[0], obj[1]);
                continue;
            }
            let _ = Cluster::shared().kubectl().try_run(&[
                "delete",
                &obj[0],
                &obj[1],
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }
}

const MANUAL: &str = "";

// 1 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_manual_app_syncs_only_through_the_cli_and_a_dry_run_changes_nothing() {
    let w = World::start("manual-sync").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "web/deploy.yaml",
        &deployment("web", "registry.example/web:1.0", 1),
    )
    .write("web/config.yaml", &configmap("web-config", "a"));
    let sha = repo.commit("web");
    w.apply(&application("web", &repo.url(), "web", ns, MANUAL));

    let app = w
        .wait_app("web", "OutOfSync with its resources Missing", |a| {
            sync_status(a) == "OutOfSync"
                && revision(a) == Some(sha.as_str())
                && health_status(a) == "Missing"
        })
        .await;
    let resources = app["status"]["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 2, "{app}");
    assert!(
        resources
            .iter()
            .all(|r| r["status"] == "OutOfSync" && r["health"]["status"] == "Missing"),
        "{app}"
    );
    assert!(!exists(&w, &["deployment/web"]), "nothing synced by itself");
    assert!(!exists(&w, &["configmap/web-config"]), "nothing synced");
    assert!(history(&app).is_empty(), "{app}");

    // A dry run succeeds and creates nothing.
    let out = w.ferry(&["app", "sync", "web", "--dry-run", "--timeout", "60s"]);
    assert!(out.status.success(), "{}", said(&out));
    let app = w.app("web").unwrap();
    assert_eq!(op_phase(&app), Some("Succeeded"), "{}", summary(&app));
    assert!(
        app.pointer("/status/operationState/operation/sync/dryRun") == Some(&Value::Bool(true)),
        "the recorded operation is the dry run: {app}"
    );
    assert!(
        !exists(&w, &["deployment/web"]),
        "a dry run creates nothing"
    );
    assert!(
        !exists(&w, &["configmap/web-config"]),
        "a dry run creates nothing"
    );
    assert!(
        history(&app).is_empty(),
        "a dry run is no deployment: {app}"
    );
    assert_eq!(sync_status(&app), "OutOfSync", "{}", summary(&app));

    // The real sync.
    let out = w.ferry(&["app", "sync", "web", "--timeout", "60s"]);
    assert!(out.status.success(), "{}", said(&out));
    assert!(stdout(&out).contains("Succeeded"), "{}", said(&out));
    assert!(exists(&w, &["deployment/web"]), "synced by the CLI");
    assert!(exists(&w, &["configmap/web-config"]), "synced by the CLI");
    let app = w.wait_synced_healthy("web").await;
    assert_eq!(op_phase(&app), Some("Succeeded"), "{}", summary(&app));
    assert!(
        app.get("operation").is_none_or(Value::is_null),
        "the operation is cleared once done: {app}"
    );
    let h = history(&app);
    assert_eq!(h.len(), 1, "{app}");
    assert_eq!(h[0]["revision"], sha.as_str());
    let by = &h[0]["initiatedBy"];
    assert!(
        by["username"].as_str().is_some_and(|u| !u.is_empty()),
        "a manual sync names its user: {by}"
    );
    assert!(by["automated"] != true, "not automated: {by}");
}

// 2 ------------------------------------------------------------------------------------------

const SECRET_PLAIN_1: &str = "pl41n-Pass-one-5521";
const SECRET_PLAIN_2: &str = "pl41n-Pass-two-8830";
const TOKEN_1: &str = "t0ken-Value-one-1177";
const TOKEN_2: &str = "t0ken-Value-two-6642";

fn secrets(password: &str, token: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ntype: Opaque\nstringData:\n  password: \"{password}\"\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: token\ntype: Opaque\ndata:\n  token: {}\n",
        b64(token)
    )
}

/// Lines of a unified diff that remove or add something (not the `---`/`+++` headers).
fn changed_lines(diff: &str) -> Vec<&str> {
    diff.lines()
        .filter(|l| {
            (l.starts_with('-') && !l.starts_with("---"))
                || (l.starts_with('+') && !l.starts_with("+++"))
        })
        .collect()
}

/// The part of `ferry app diff`'s output about the object whose title contains `title`.
fn diff_section<'a>(diff: &'a str, title: &str) -> Option<&'a str> {
    let start = diff
        .match_indices("===== ")
        .map(|(i, _)| i)
        .find(|&i| diff[i..].lines().next().is_some_and(|l| l.contains(title)))?;
    let rest = &diff[start + 6..];
    let end = rest.find("\n===== ").map_or(diff.len(), |e| start + 6 + e);
    Some(&diff[start..end])
}

#[tokio::test]
async fn app_diff_shows_drift_and_masks_secret_values() {
    let w = World::start("app-diff").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "web/deploy.yaml",
        &deployment("web", "registry.example/web:1.0", 2),
    )
    .write("web/secrets.yaml", &secrets(SECRET_PLAIN_1, TOKEN_1));
    repo.commit("web with secrets");
    w.apply(&application("web", &repo.url(), "web", ns, MANUAL));
    w.wait_app("web", "compared", |a| sync_status(a) == "OutOfSync")
        .await;
    let out = w.ferry(&["app", "sync", "web", "--timeout", "60s"]);
    assert!(out.status.success(), "{}", said(&out));
    w.wait_synced_healthy("web").await;
    let forbidden = [
        SECRET_PLAIN_1.to_string(),
        SECRET_PLAIN_2.to_string(),
        TOKEN_1.to_string(),
        TOKEN_2.to_string(),
        b64(SECRET_PLAIN_1),
        b64(SECRET_PLAIN_2),
        b64(TOKEN_1),
        b64(TOKEN_2),
    ];
    let no_secret_values = |out: &Output| {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for value in &forbidden {
            assert!(
                !text.contains(value.as_str()),
                "ferry app diff printed a Secret value ({value}):\n{text}"
            );
        }
    };

    // In sync: exit 0, nothing printed.
    let out = w.ferry(&["app", "diff", "web"]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));
    assert!(stdout(&out).trim().is_empty(), "{}", said(&out));
    no_secret_values(&out);

    // Drift: exit 1 and a unified diff of replicas.
    w.kubectl()
        .run(&["scale", "deployment/web", "--replicas=5"]);
    let out = w.ferry(&["app", "diff", "web"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let text = stdout(&out);
    no_secret_values(&out);
    let deploy = diff_section(&text, &format!("Deployment:{ns}/web"))
        .unwrap_or_else(|| panic!("no section for the Deployment:\n{text}"));
    assert!(deploy.contains("@@"), "a unified diff: {text}");
    let changed = changed_lines(deploy);
    assert!(
        changed
            .iter()
            .any(|l| l.starts_with('-') && l.contains("replicas: 5")),
        "live replicas shown: {text}"
    );
    assert!(
        changed
            .iter()
            .any(|l| l.starts_with('+') && l.contains("replicas: 2")),
        "desired replicas shown: {text}"
    );
    assert!(
        diff_section(&text, "Secret:").is_none(),
        "unchanged Secrets are not shown: {text}"
    );

    // Undo the drift, so that only the Secrets differ below.
    let out = w.ferry(&["app", "sync", "web", "--timeout", "60s"]);
    assert!(out.status.success(), "{}", said(&out));
    w.wait_synced_healthy("web").await;
    let out = w.ferry(&["app", "diff", "web"]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));

    // A new Secret value in Git: the Secret shows as changed, its values masked.
    repo.write("web/secrets.yaml", &secrets(SECRET_PLAIN_2, TOKEN_2));
    let sha = repo.commit("rotate secrets");
    let app = w
        .wait_app("web", "OutOfSync with the new commit", |a| {
            revision(a) == Some(sha.as_str()) && sync_status(a) == "OutOfSync"
        })
        .await;
    let drifted: Vec<&str> = app["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "OutOfSync")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(drifted, ["creds", "token"], "{app}");
    let out = w.ferry(&["app", "diff", "web"]);
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    let text = stdout(&out);
    no_secret_values(&out);
    for name in ["creds", "token"] {
        let section = diff_section(&text, &format!("Secret:{ns}/{name}"))
            .unwrap_or_else(|| panic!("the changed Secret {name} is shown:\n{text}"));
        let changed = changed_lines(section);
        assert!(
            changed.iter().any(|l| l.starts_with('-'))
                && changed.iter().any(|l| l.starts_with('+')),
            "Secret {name} shows a change: {section}"
        );
        assert!(section.contains("++++++++"), "masked: {section}");
    }
    // The live Secrets still hold the old values: the diff is no sync.
    let live = w
        .kubectl()
        .run(&["get", "secret", "creds", "-o", "jsonpath={.data.password}"]);
    assert_eq!(live, b64(SECRET_PLAIN_1));
}

// 3 ------------------------------------------------------------------------------------------

fn refresh_annotation(app: &Value) -> Option<&str> {
    str_at(app, "/metadata/annotations/argocd.argoproj.io~1refresh")
}

#[tokio::test]
async fn app_refresh_is_done_and_its_annotation_removed() {
    let mut w = World::start("refresh").await;
    let ns = w.ns.name().to_string();
    let repo = GitRepo::new();
    repo.write("cfg/c.yaml", &configmap("c", "1"));
    repo.commit("c");
    w.apply(&application("cfg", &repo.url(), "cfg", &ns, AUTOMATED));
    let app = w.wait_synced_healthy("cfg").await;
    let before = str_at(&app, "/status/reconciledAt")
        .expect("reconciledAt is set")
        .to_string();
    // reconciledAt has a resolution of one second: let the clock move past it first.
    wait_until("the clock to pass reconciledAt", STEP, || async {
        let now = utc_now();
        if now > before {
            Probe::Done(())
        } else {
            Probe::pending(format!("now {now}, reconciledAt {before}"))
        }
    })
    .await;

    let out = w.ferry(&["app", "refresh", "cfg"]);
    assert!(out.status.success(), "{}", said(&out));
    let app = w
        .wait_app(
            "cfg",
            "refresh annotation removed, reconciledAt moved on",
            |a| {
                refresh_annotation(a).is_none()
                    && str_at(a, "/status/reconciledAt").is_some_and(|r| r > before.as_str())
            },
        )
        .await;
    assert_eq!(sync_status(&app), "Synced", "{}", summary(&app));

    // With the controller stopped, the annotation is there as the CLI wrote it; ferry removes it
    // once it runs again.
    w.controller.kill();
    let out = w.ferry(&["app", "refresh", "cfg", "--hard"]);
    assert!(out.status.success(), "{}", said(&out));
    let app = w.app("cfg").unwrap();
    assert_eq!(refresh_annotation(&app), Some("hard"), "{app}");
    w.controller.restart();
    w.wait_app("cfg", "hard refresh annotation removed", |a| {
        refresh_annotation(a).is_none()
    })
    .await;
}

#[tokio::test]
async fn app_refresh_of_an_app_with_a_comparison_error_is_removed_too() {
    let w = World::start("refresh-error").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("cfg/c.yaml", &configmap("c", "1"));
    repo.commit("c");
    w.apply(&application(
        "broken",
        &repo.url(),
        "no/such/path",
        ns,
        AUTOMATED,
    ));
    w.wait_app("broken", "a ComparisonError", |a| {
        conditions(a)
            .iter()
            .any(|c| c.starts_with("ComparisonError"))
    })
    .await;
    let out = w.ferry(&["app", "refresh", "broken"]);
    assert!(out.status.success(), "{}", said(&out));
    // The refresh was done (the comparison ran again and failed again); the request is answered.
    let app = w
        .wait_app("broken", "refresh annotation removed", |a| {
            refresh_annotation(a).is_none()
        })
        .await;
    assert!(
        conditions(&app)
            .iter()
            .any(|c| c.starts_with("ComparisonError")),
        "{}",
        summary(&app)
    );
}

#[tokio::test]
async fn manual_syncs_in_quick_succession_each_report_their_result() {
    let w = World::start("sync-twice").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("cfg/c.yaml", &configmap("c", "1"));
    repo.commit("c");
    w.apply(&application("cfg", &repo.url(), "cfg", ns, MANUAL));
    w.wait_app("cfg", "compared", |a| sync_status(a) == "OutOfSync")
        .await;
    // Each `ferry app sync` waits for the result of its own operation, however soon after the
    // previous one it starts.
    for i in 0..4 {
        let dry_run = i % 2 == 0;
        let mut args = vec!["app", "sync", "cfg", "--timeout", "30s"];
        if dry_run {
            args.push("--dry-run");
        }
        let started = Instant::now();
        let out = w.ferry(&args);
        assert!(
            out.status.success(),
            "sync {i} (dry run: {dry_run}) after {:?}: {}",
            started.elapsed(),
            said(&out)
        );
    }
    let app = w.wait_synced_healthy("cfg").await;
    assert_eq!(history(&app).len(), 2, "two real syncs: {app}");
}

// 4 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn app_list_get_and_wait() {
    let w = World::start("list-get-wait").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "healthy/deploy.yaml",
        &deployment("fine", "registry.example/fine:1", 1),
    )
    .write(
        "stuck/deploy.yaml",
        &deployment("stuck", "registry.example/stuck:1", 1).replace(
            "    metadata:\n      labels: {app: stuck}\n",
            "    metadata:\n      labels: {app: stuck}\n      annotations: {testenv.ferry.dev/not-ready: \"true\"}\n",
        ),
    );
    repo.commit("two apps");
    w.apply(&application(
        "healthy",
        &repo.url(),
        "healthy",
        ns,
        AUTOMATED,
    ));
    w.apply(&application("stuck", &repo.url(), "stuck", ns, AUTOMATED));
    w.wait_synced_healthy("healthy").await;
    w.wait_app("stuck", "Synced and Progressing", |a| {
        sync_status(a) == "Synced" && health_status(a) == "Progressing"
    })
    .await;

    let out = w.ferry(&["app", "list", "-o", "json"]);
    assert!(out.status.success(), "{}", said(&out));
    let list: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("app list -o json is JSON ({e}): {}", said(&out)));
    let mut seen: Vec<(String, String, String)> = list
        .as_array()
        .unwrap_or_else(|| panic!("a JSON array: {list}"))
        .iter()
        .map(|a| {
            (
                a.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                sync_status(a).to_string(),
                health_status(a).to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("healthy".into(), "Synced".into(), "Healthy".into()),
            ("stuck".into(), "Synced".into(), "Progressing".into()),
        ]
    );
    let out = w.ferry(&["app", "list"]);
    assert!(out.status.success(), "{}", said(&out));
    let table = stdout(&out);
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("healthy ") && l.contains("Synced") && l.contains("Healthy"))
            && table
                .lines()
                .any(|l| l.starts_with("stuck ") && l.contains("Progressing")),
        "{table}"
    );

    let out = w.ferry(&["app", "get", "healthy"]);
    assert!(out.status.success(), "{}", said(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("Sync status:") && l.contains("Synced")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("Health:") && l.contains("Healthy")),
        "{text}"
    );
    let out = w.ferry(&["app", "get", "stuck"]);
    assert!(out.status.success(), "{}", said(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("Health:") && l.contains("Progressing")),
        "{text}"
    );

    let out = w.ferry(&[
        "app",
        "wait",
        "healthy",
        "--sync",
        "--health",
        "--timeout",
        "60s",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", said(&out));

    let started = Instant::now();
    let out = w.ferry(&[
        "app",
        "wait",
        "stuck",
        "--sync",
        "--health",
        "--timeout",
        "2s",
    ]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", said(&out));
    assert!(
        took < Duration::from_secs(20),
        "gave up after {took:?}, not about 2s"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("timed out"),
        "{}",
        said(&out)
    );

    let out = w.ferry(&["app", "get", "no-such-app"]);
    assert_eq!(out.status.code(), Some(2), "{}", said(&out));
}

// 5 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_crd_and_its_custom_resource_sync_in_one_go() {
    let mut cleanup = ClusterObjects::default();
    let w = World::start("crd-and-cr").await;
    let ns = w.ns.name();
    let group = format!("{ns}.example");
    let crd_name = format!("widgets.{group}");
    cleanup.add("customresourcedefinition", &crd_name);
    let repo = GitRepo::new();
    repo.write(
        "widgets/crd.yaml",
        &format!(
            r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: {crd_name}
spec:
  group: {group}
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    listKind: WidgetList
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#
        ),
    )
    .write(
        "widgets/gizmo.yaml",
        &format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: gizmo\nspec:\n  size: 3\n"
        ),
    );
    repo.commit("a CRD and a widget");
    w.apply(&application(
        "widgets",
        &repo.url(),
        "widgets",
        ns,
        AUTOMATED,
    ));
    let app = w.wait_synced_healthy("widgets").await;
    let kinds: Vec<&str> = app["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["CustomResourceDefinition", "Widget"], "{app}");
    assert!(
        !conditions(&app)
            .iter()
            .any(|c| c.starts_with("ComparisonError") || c.starts_with("SyncError")),
        "{}",
        summary(&app)
    );
    let widget = w
        .wait_object(&[&format!("widgets.{group}/gizmo")], "the widget", |o| {
            o.is_some()
        })
        .await
        .unwrap();
    assert_eq!(widget.pointer("/spec/size"), Some(&Value::from(3)));
    assert_eq!(
        str_at(
            &widget,
            "/metadata/annotations/argocd.argoproj.io~1tracking-id"
        ),
        Some(format!("widgets:{group}/Widget:{ns}/gizmo").as_str())
    );
    assert_eq!(
        history(&app).len(),
        1,
        "one sync did it all: {}",
        summary(&app)
    );
}

// 6 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn create_namespace_creates_the_destination_namespace() {
    let mut cleanup = ClusterObjects::default();
    let w = World::start("create-ns").await;
    let ns = w.ns.name();
    let dest = format!("{ns}-created");
    cleanup.add("namespace", &dest);
    let repo = GitRepo::new();
    repo.write("app/c.yaml", &configmap("in-new-ns", "1"));
    repo.commit("c");
    assert!(
        w.kubectl().try_run(&["get", "namespace", &dest]).is_err(),
        "{dest} does not exist yet"
    );
    w.apply(&application(
        "newns",
        &repo.url(),
        "app",
        &dest,
        "  syncPolicy:\n    automated:\n      prune: true\n      selfHeal: true\n    syncOptions:\n    - CreateNamespace=true\n",
    ));
    let app = w.wait_synced_healthy("newns").await;
    let namespace = w
        .wait_object(&["namespace", &dest], "the destination namespace", |o| {
            o.is_some()
        })
        .await
        .unwrap();
    assert_eq!(
        str_at(&namespace, "/status/phase"),
        Some("Active"),
        "{namespace}"
    );
    let cm = w
        .kubectl()
        .run(&["get", "configmap", "in-new-ns", "-n", &dest, "-o", "json"]);
    let cm: Value = serde_json::from_str(&cm).unwrap();
    assert_eq!(cm.pointer("/data/value"), Some(&Value::from("1")));
    assert!(
        !exists(&w, &["configmap/in-new-ns"]),
        "not in the app's own namespace"
    );
    let resources = app["status"]["resources"].as_array().unwrap();
    assert!(
        resources
            .iter()
            .any(|r| r["kind"] == "ConfigMap" && r["namespace"] == dest.as_str()),
        "{app}"
    );
}

// 7 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_child_app_removed_from_git_is_deleted_with_its_resources_if_it_has_the_finalizer() {
    let w = World::start("child-prune").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let with_finalizer = |name: &str, path: &str| {
        application(name, &repo.url(), path, ns, AUTOMATED).replace(
            &format!("metadata:\n  name: {name}\n"),
            &format!(
                "metadata:\n  name: {name}\n  finalizers:\n  - resources-finalizer.argocd.argoproj.io\n"
            ),
        )
    };
    repo.write(
        "apps/stays.yaml",
        &with_finalizer("stays", "workloads/stays"),
    )
    .write(
        "apps/cascade.yaml",
        &with_finalizer("cascade", "workloads/cascade"),
    )
    .write(
        "apps/orphan.yaml",
        &application("orphan", &repo.url(), "workloads/orphan", ns, AUTOMATED),
    )
    .write("workloads/stays/c.yaml", &configmap("stays-config", "1"))
    .write(
        "workloads/cascade/c.yaml",
        &configmap("cascade-config", "1"),
    )
    .write(
        "workloads/cascade/d.yaml",
        &deployment("cascade-web", "registry.example/web:1", 1),
    )
    .write("workloads/orphan/c.yaml", &configmap("orphan-config", "1"));
    repo.commit("three children");
    w.apply(&application("root", &repo.url(), "apps", ns, AUTOMATED));
    w.wait_synced_healthy("root").await;
    for child in ["stays", "cascade", "orphan"] {
        w.wait_synced_healthy(child).await;
    }
    assert!(exists(&w, &["configmap/cascade-config"]));
    assert!(exists(&w, &["deployment/cascade-web"]));

    repo.remove("apps/cascade.yaml").remove("apps/orphan.yaml");
    let sha = repo.commit("drop two children");
    w.wait_object(
        &["application/cascade"],
        "child with the finalizer deleted",
        |o| o.is_none(),
    )
    .await;
    w.wait_object(
        &["application/orphan"],
        "child without the finalizer deleted",
        |o| o.is_none(),
    )
    .await;
    assert!(
        !exists(&w, &["configmap/cascade-config"]),
        "the finalizer deletes the child's resources before the child goes"
    );
    w.wait_object(&["deployment/cascade-web"], "cascade-web deleted", |o| {
        o.is_none()
    })
    .await;
    assert!(
        exists(&w, &["configmap/orphan-config"]),
        "without the finalizer the child's resources stay"
    );
    let root = w
        .wait_app("root", "Synced at the new commit", |a| {
            sync_status(a) == "Synced" && revision(a) == Some(sha.as_str())
        })
        .await;
    let names: Vec<&str> = root["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["stays"], "{root}");
    w.wait_synced_healthy("stays").await;
    assert!(exists(&w, &["configmap/stays-config"]));
}

// 8 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn prune_false_on_a_resource_keeps_it_and_leaves_the_app_out_of_sync() {
    let w = World::start("prune-false").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let protected = configmap("protected", "1").replace(
        "metadata:\n",
        "metadata:\n  annotations:\n    argocd.argoproj.io/sync-options: Prune=false\n",
    );
    repo.write("app/protected.yaml", &protected)
        .write("app/plain.yaml", &configmap("plain", "1"))
        .write("app/stays.yaml", &configmap("stays", "1"));
    repo.commit("three configmaps");
    w.apply(&application("app", &repo.url(), "app", ns, AUTOMATED));
    w.wait_synced_healthy("app").await;

    repo.remove("app/protected.yaml").remove("app/plain.yaml");
    let sha = repo.commit("drop two");
    w.wait_object(&["configmap/plain"], "plain pruned", |o| o.is_none())
        .await;
    let app = w
        .wait_app("app", "OutOfSync with protected to prune", |a| {
            revision(a) == Some(sha.as_str())
                && sync_status(a) == "OutOfSync"
                && requires_pruning(a) == ["protected"]
        })
        .await;
    assert!(
        exists(&w, &["configmap/protected"]),
        "Prune=false keeps it: {}",
        summary(&app)
    );
    assert!(exists(&w, &["configmap/stays"]));
    let skipped: Vec<&Value> = app
        .pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .map(|rs| rs.iter().filter(|r| r["name"] == "protected").collect())
        .unwrap_or_default();
    assert!(
        skipped.iter().any(|r| r["status"] == "PruneSkipped"),
        "the sync result says the prune was skipped: {app}"
    );
}

// 9 ------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_empty_render_prunes_nothing_unless_allow_empty() {
    let w = World::start("empty-render").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("guarded/a.yaml", &configmap("guarded-a", "1"))
        .write("guarded/b.yaml", &configmap("guarded-b", "1"))
        .write("emptyok/a.yaml", &configmap("emptyok-a", "1"))
        .write("emptyok/b.yaml", &configmap("emptyok-b", "1"));
    repo.commit("two apps");
    w.apply(&application(
        "guarded",
        &repo.url(),
        "guarded",
        ns,
        AUTOMATED,
    ));
    w.apply(&application(
        "emptyok",
        &repo.url(),
        "emptyok",
        ns,
        "  syncPolicy:\n    automated:\n      prune: true\n      selfHeal: true\n      allowEmpty: true\n",
    ));
    w.wait_synced_healthy("guarded").await;
    w.wait_synced_healthy("emptyok").await;

    for dir in ["guarded", "emptyok"] {
        repo.remove(&format!("{dir}/a.yaml"))
            .remove(&format!("{dir}/b.yaml"))
            .write(&format!("{dir}/README.md"), "Nothing here for now.\n");
    }
    repo.commit("empty both");
    let app = w
        .wait_app("guarded", "a ComparisonError about the empty render", |a| {
            conditions(a)
                .iter()
                .any(|c| c.starts_with("ComparisonError") && c.contains("allowEmpty"))
        })
        .await;
    w.wait_object(&["configmap/emptyok-a"], "emptyok-a pruned", |o| {
        o.is_none()
    })
    .await;
    w.wait_object(&["configmap/emptyok-b"], "emptyok-b pruned", |o| {
        o.is_none()
    })
    .await;
    assert!(
        exists(&w, &["configmap/guarded-a"]) && exists(&w, &["configmap/guarded-b"]),
        "an empty render prunes nothing: {}",
        summary(&app)
    );
    let emptyok = w
        .wait_app("emptyok", "Synced with no resources", |a| {
            sync_status(a) == "Synced"
                && a.pointer("/status/resources")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
        })
        .await;
    assert!(
        !conditions(&emptyok)
            .iter()
            .any(|c| c.starts_with("ComparisonError")),
        "{}",
        summary(&emptyok)
    );
    // Still nothing pruned on later looks.
    let app = w.app("guarded").unwrap();
    assert!(
        exists(&w, &["configmap/guarded-a"]) && exists(&w, &["configmap/guarded-b"]),
        "{}",
        summary(&app)
    );
}

// 10 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn revision_history_limit_keeps_the_last_entries() {
    let w = World::start("history-limit").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let mut shas = Vec::new();
    repo.write("cfg/c.yaml", &configmap("c", "0"));
    shas.push(repo.commit("config 0"));
    w.apply(&application(
        "cfg",
        &repo.url(),
        "cfg",
        ns,
        &format!("  revisionHistoryLimit: 2\n{AUTOMATED}"),
    ));
    for i in 0..4 {
        if i > 0 {
            repo.write("cfg/c.yaml", &configmap("c", &i.to_string()));
            shas.push(repo.commit(&format!("config {i}")));
        }
        let sha = shas[i].clone();
        w.wait_app("cfg", &format!("commit {i} deployed"), |a| {
            history(a)
                .last()
                .is_some_and(|h| h["revision"] == sha.as_str())
        })
        .await;
    }
    let app = w.app("cfg").unwrap();
    let h = history(&app);
    let got: Vec<(i64, &str)> = h
        .iter()
        .map(|e| (e["id"].as_i64().unwrap(), e["revision"].as_str().unwrap()))
        .collect();
    assert_eq!(got, [(2, shas[2].as_str()), (3, shas[3].as_str())], "{app}");
}

// 11 -----------------------------------------------------------------------------------------

const GIT_USER: &str = "ferry-reader";
const GIT_PASSWORD: &str = "c0rrect-Horse-battery-31";
const WRONG_PASSWORD: &str = "wr0ng-Secret-4711-xyz";

fn repository_secret(name: &str, url: &str, password: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: {name}
  labels:
    argocd.argoproj.io/secret-type: repository
stringData:
  url: {url}
  username: {GIT_USER}
  password: {password}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repository_credentials_from_a_secret_over_http() {
    let w = World::start("repo-creds").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("app/c.yaml", &configmap("over-http", "1"))
        .write("other/c.yaml", &configmap("wrong-password", "1"));
    let sha = repo.commit("served over http");
    let root = repo.bare_dir().parent().unwrap().to_path_buf();
    // Two servers of the same repository, so each URL has its own Secret.
    let good_server =
        ferry_testsupport::git_http::serve(root.clone(), GIT_USER, GIT_PASSWORD).await;
    let bad_server = ferry_testsupport::git_http::serve(root, GIT_USER, GIT_PASSWORD).await;
    let good_url = format!("{}/repo.git", good_server.base_url);
    let bad_url = format!("{}/repo.git", bad_server.base_url);
    w.apply(&repository_secret("good-repo", &good_url, GIT_PASSWORD));
    w.apply(&repository_secret("bad-repo", &bad_url, WRONG_PASSWORD));
    w.apply(&application("good", &good_url, "app", ns, AUTOMATED));
    w.apply(&application("bad", &bad_url, "other", ns, AUTOMATED));

    let good = w.wait_synced_healthy("good").await;
    assert_eq!(revision(&good), Some(sha.as_str()));
    assert!(exists(&w, &["configmap/over-http"]));

    let bad = w
        .wait_app("bad", "a ComparisonError", |a| {
            conditions(a)
                .iter()
                .any(|c| c.starts_with("ComparisonError"))
        })
        .await;
    let text = conditions(&bad).join("\n");
    assert!(text.contains(&bad_url), "the error names the repo: {text}");
    assert!(
        !bad.to_string().contains(WRONG_PASSWORD),
        "the password shows in the app: {bad}"
    );
    assert!(
        !w.controller.log().contains(WRONG_PASSWORD),
        "the password shows in the controller's log"
    );
    assert!(!exists(&w, &["configmap/wrong-password"]));

    // Fixing the Secret is enough.
    w.apply(&repository_secret("bad-repo", &bad_url, GIT_PASSWORD));
    w.wait_synced_healthy("bad").await;
    assert!(exists(&w, &["configmap/wrong-password"]));
    let log = w.controller.log();
    assert!(
        !log.contains(GIT_PASSWORD) && !log.contains(WRONG_PASSWORD),
        "no password in the controller's log"
    );
}

// 12 -----------------------------------------------------------------------------------------

#[tokio::test]
async fn install_dry_run_prints_the_controller_objects_without_a_cluster() {
    let out = std::process::Command::new(ferry_bin())
        .args([
            "install",
            "--dry-run",
            "--with-controller",
            "--namespace",
            "gitops-x",
        ])
        // No cluster at all: a dry run must not need one.
        .env("KUBECONFIG", "/nonexistent/ferry-test/kubeconfig")
        .env("FERRY_LOG", "warn")
        .output()
        .expect("running ferry");
    assert!(out.status.success(), "{}", said(&out));
    let objects: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("a stream of JSON objects ({e}): {}", said(&out)));
    let find =
        |kind: &str| -> Vec<&Value> { objects.iter().filter(|o| o["kind"] == kind).collect() };
    let crds: Vec<&str> = find("CustomResourceDefinition")
        .iter()
        .map(|o| str_at(o, "/metadata/name").unwrap_or_default())
        .collect();
    assert_eq!(
        crds,
        [
            "applications.argoproj.io",
            "appprojects.argoproj.io",
            "rollouts.argoproj.io",
            "analysistemplates.argoproj.io",
            "clusteranalysistemplates.argoproj.io",
            "analysisruns.argoproj.io",
            "applicationsets.argoproj.io"
        ],
        "{}",
        said(&out)
    );
    let deployments = find("Deployment");
    assert_eq!(deployments.len(), 1, "{}", said(&out));
    let d = deployments[0];
    assert_eq!(str_at(d, "/metadata/name"), Some("ferry"));
    assert_eq!(str_at(d, "/metadata/namespace"), Some("gitops-x"));
    let args: Vec<&str> = d
        .pointer("/spec/template/spec/containers/0/args")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        args.windows(2).any(|p| p == ["--namespace", "gitops-x"]),
        "the controller runs for its namespace: {args:?}"
    );
    assert!(
        args.windows(2).any(|p| p == ["--listen", "0.0.0.0:8080"]),
        "the UI is reachable from outside the pod: {args:?}"
    );
    let services = find("Service");
    assert_eq!(services.len(), 1, "{}", said(&out));
    assert_eq!(services[0]["spec"]["ports"][0]["targetPort"], "http");
    let bindings = find("ClusterRoleBinding");
    assert_eq!(bindings.len(), 1, "{}", said(&out));
    let subject = &bindings[0]["subjects"][0];
    assert_eq!(subject["kind"], "ServiceAccount");
    assert_eq!(subject["namespace"], "gitops-x");
    assert_eq!(find("ServiceAccount").len(), 1);
    assert_eq!(find("ClusterRole").len(), 1);
    assert!(
        find("Namespace")
            .iter()
            .any(|n| str_at(n, "/metadata/name") == Some("gitops-x"))
    );
    assert!(
        find("AppProject")
            .iter()
            .any(|p| str_at(p, "/metadata/name") == Some("default")
                && str_at(p, "/metadata/namespace") == Some("gitops-x"))
    );
    assert!(
        !stdout(&out).contains("applied "),
        "nothing applied in a dry run"
    );
}
