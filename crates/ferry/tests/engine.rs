//! End-to-end scenarios of the GitOps engine: the real `ferry` binary, a real Git repository and
//! the local control plane. Each test has its own namespace, where ferry runs and deploys.

mod common;

use common::*;
use ferry_testsupport::{FIXTURE_AUTHOR, GitRepo, Probe, wait_until};
use serde_json::Value;

fn replicas(obj: Option<&Value>) -> Option<i64> {
    obj?.pointer("/spec/replicas")?.as_i64()
}

fn image(obj: Option<&Value>) -> Option<&str> {
    obj?.pointer("/spec/template/spec/containers/0/image")?
        .as_str()
}

#[tokio::test]
async fn a_root_app_creates_two_children_that_become_synced_and_healthy() {
    let w = World::start("app-of-apps").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "apps/frontend.yaml",
        &application("frontend", &repo.url(), "workloads/frontend", ns, AUTOMATED),
    )
    .write(
        "apps/backend.yaml",
        &application("backend", &repo.url(), "workloads/backend", ns, AUTOMATED),
    )
    .write(
        "workloads/frontend/deploy.yaml",
        &deployment("frontend", "registry.example/frontend:1.0", 2),
    )
    .write(
        "workloads/backend/deploy.yaml",
        &deployment("backend", "registry.example/backend:1.0", 1),
    )
    .write(
        "workloads/backend/config.yaml",
        &configmap("backend-config", "a"),
    );
    repo.commit("two apps");
    // The root app's destination is the namespace where Applications live.
    w.apply(&application("root", &repo.url(), "apps", ns, AUTOMATED));

    let root = w.wait_synced_healthy("root").await;
    let kinds: Vec<&str> = root["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["Application", "Application"], "{root}");
    for child in ["frontend", "backend"] {
        let app = w.wait_synced_healthy(child).await;
        assert_eq!(
            app.pointer("/status/sync/revision").and_then(Value::as_str),
            Some(repo.head().as_str())
        );
    }
    // The root created each child with one apply, and its comparison knew they did not exist
    // (no GET, no dry run). Their creation, seen by both of ferry's watches, is ferry's own
    // write: no second comparison of the root (which would dry-run both again).
    let metrics = w.controller.logged_address("serving /metrics");
    assert_eq!(
        metric_sum_where(
            &metrics,
            "ferry_kube_requests_total",
            &[("verb", "APPLY"), ("resource", "applications")]
        ),
        2.0,
        "one apply per child Application"
    );
    let deploy = w
        .wait_object(&["deployment/frontend"], "frontend deployment", |d| {
            d.is_some()
        })
        .await;
    let tracking = deploy
        .as_ref()
        .unwrap()
        .pointer("/metadata/annotations/argocd.argoproj.io~1tracking-id")
        .unwrap();
    assert_eq!(tracking, &format!("frontend:apps/Deployment:{ns}/frontend"));
    // kubectl shows Argo CD's columns.
    let table = w.kubectl().run(&["get", "applications"]);
    assert!(
        table.contains("SYNC STATUS") && table.contains("HEALTH STATUS"),
        "{table}"
    );
}

#[tokio::test]
async fn a_commit_changing_an_image_is_applied_without_a_manual_step() {
    let w = World::start("image-commit").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "web/deploy.yaml",
        &deployment("web", "registry.example/web:1.0", 1),
    );
    repo.commit("web 1.0");
    w.apply(&application("web", &repo.url(), "web", ns, AUTOMATED));
    w.wait_synced_healthy("web").await;

    repo.write(
        "web/deploy.yaml",
        &deployment("web", "registry.example/web:1.1", 1),
    );
    let sha = repo.commit("web 1.1");
    w.wait_object(&["deployment/web"], "web running 1.1", |d| {
        image(d) == Some("registry.example/web:1.1")
    })
    .await;
    let app = w
        .wait_app("web", "synced to the new commit", |a| {
            a.pointer("/status/sync/revision").and_then(Value::as_str) == Some(&sha)
                && sync_status(a) == "Synced"
        })
        .await;
    let images = app.pointer("/status/summary/images").unwrap();
    assert_eq!(images, &serde_json::json!(["registry.example/web:1.1"]));
}

#[tokio::test]
async fn a_removed_file_is_pruned_with_prune_on_and_kept_out_of_sync_with_prune_off() {
    let w = World::start("prune").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("pruned/a.yaml", &configmap("pruned-a", "1"))
        .write("pruned/b.yaml", &configmap("pruned-b", "1"))
        .write("kept/a.yaml", &configmap("kept-a", "1"))
        .write("kept/b.yaml", &configmap("kept-b", "1"));
    repo.commit("four configmaps");
    w.apply(&application(
        "pruning",
        &repo.url(),
        "pruned",
        ns,
        AUTOMATED,
    ));
    w.apply(&application(
        "keeping",
        &repo.url(),
        "kept",
        ns,
        "  syncPolicy:\n    automated:\n      prune: false\n      selfHeal: true\n",
    ));
    w.wait_synced_healthy("pruning").await;
    w.wait_synced_healthy("keeping").await;

    repo.remove("pruned/b.yaml").remove("kept/b.yaml");
    let sha = repo.commit("drop b");
    w.wait_object(&["configmap/pruned-b"], "pruned-b deleted", |o| o.is_none())
        .await;
    w.wait_app("pruning", "synced after the prune", |a| {
        sync_status(a) == "Synced"
            && a.pointer("/status/sync/revision").and_then(Value::as_str) == Some(&sha)
    })
    .await;
    let keeping = w
        .wait_app("keeping", "OutOfSync with kept-b to prune", |a| {
            sync_status(a) == "OutOfSync"
                && a.pointer("/status/sync/revision").and_then(Value::as_str) == Some(&sha)
        })
        .await;
    let needs_pruning: Vec<&str> = keeping["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["requiresPruning"] == true)
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(needs_pruning, ["kept-b"]);
    assert!(
        w.kubectl().try_run(&["get", "configmap", "kept-b"]).is_ok(),
        "kept-b must stay"
    );
}

#[tokio::test]
async fn drift_is_reverted_with_self_heal() {
    let w = World::start("self-heal").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "web/deploy.yaml",
        &deployment("web", "registry.example/web:1.0", 2),
    )
    .write("web/config.yaml", &configmap("web-config", "blue"));
    repo.commit("web");
    w.apply(&application("web", &repo.url(), "web", ns, AUTOMATED));
    w.wait_synced_healthy("web").await;

    w.kubectl()
        .run(&["scale", "deployment/web", "--replicas=5"]);
    w.wait_object(&["deployment/web"], "replicas back to 2", |d| {
        replicas(d) == Some(2)
    })
    .await;

    w.kubectl().run(&[
        "set",
        "image",
        "deployment/web",
        "main=registry.example/web:evil",
    ]);
    w.wait_object(&["deployment/web"], "image back to 1.0", |d| {
        image(d) == Some("registry.example/web:1.0")
    })
    .await;

    w.kubectl().run(&["delete", "configmap", "web-config"]);
    w.wait_object(&["configmap/web-config"], "web-config re-created", |c| {
        c.is_some()
    })
    .await;
    w.wait_synced_healthy("web").await;
}

#[tokio::test]
async fn drift_without_self_heal_shows_out_of_sync() {
    let w = World::start("no-self-heal").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "web/deploy.yaml",
        &deployment("web", "registry.example/web:1.0", 2),
    );
    repo.commit("web");
    w.apply(&application(
        "web",
        &repo.url(),
        "web",
        ns,
        "  syncPolicy:\n    automated:\n      prune: true\n",
    ));
    w.wait_synced_healthy("web").await;
    w.kubectl()
        .run(&["scale", "deployment/web", "--replicas=4"]);
    let app = w
        .wait_app("web", "OutOfSync after kubectl scale", |a| {
            sync_status(a) == "OutOfSync"
        })
        .await;
    let drifted: Vec<&str> = app["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "OutOfSync")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(drifted, ["web"]);
    let live = w
        .kubectl()
        .run(&["get", "deployment/web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(live, "4", "without selfHeal the drift stays");
}

#[tokio::test]
async fn history_records_commit_author_and_subject() {
    let w = World::start("history").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("cfg/c.yaml", &configmap("c", "1"));
    let first = repo.commit("first config");
    w.apply(&application("cfg", &repo.url(), "cfg", ns, AUTOMATED));
    w.wait_synced_healthy("cfg").await;
    repo.write("cfg/c.yaml", &configmap("c", "2"));
    let second = repo.commit("second config");
    let app = w
        .wait_app("cfg", "two history entries", |a| {
            a.pointer("/status/history")
                .and_then(Value::as_array)
                .is_some_and(|h| h.len() == 2)
        })
        .await;
    let history = app["status"]["history"].as_array().unwrap();
    assert_eq!(history[0]["revision"], first.as_str());
    assert_eq!(history[1]["revision"], second.as_str());
    assert_eq!(history[1]["id"], 1);
    let commit = &history[1]["commit"];
    assert_eq!(commit["subject"], "second config");
    assert_eq!(
        commit["author"],
        format!("{} <{}>", FIXTURE_AUTHOR.0, FIXTURE_AUTHOR.1).as_str()
    );

    let out = w.ferry(&["app", "history", "cfg"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains(&second[..7])
            && text.contains("second config")
            && text.contains(FIXTURE_AUTHOR.0),
        "{text}"
    );
}

#[tokio::test]
async fn rollback_goes_back_and_stops_automated_sync() {
    let w = World::start("rollback").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "web/deploy.yaml",
        &deployment("web", "registry.example/web:1.0", 1),
    );
    let good = repo.commit("web 1.0");
    w.apply(&application("web", &repo.url(), "web", ns, AUTOMATED));
    w.wait_synced_healthy("web").await;
    repo.write(
        "web/deploy.yaml",
        &deployment("web", "registry.example/web:2.0-broken", 1),
    );
    repo.commit("web 2.0");
    w.wait_object(&["deployment/web"], "web on 2.0", |d| {
        image(d) == Some("registry.example/web:2.0-broken")
    })
    .await;
    w.wait_app("web", "two history entries", |a| {
        a.pointer("/status/history/1").is_some()
    })
    .await;

    let out = w.ferry(&["app", "rollback", "web", "0"]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    w.wait_object(&["deployment/web"], "web back on 1.0", |d| {
        image(d) == Some("registry.example/web:1.0")
    })
    .await;
    let app = w.app("web").unwrap();
    assert!(
        app.pointer("/spec/syncPolicy/automated").is_none(),
        "automated sync is off after a rollback: {app}"
    );
    assert_eq!(
        app.pointer("/status/operationState/syncResult/revision")
            .and_then(Value::as_str),
        Some(good.as_str())
    );
    // Git still says 2.0, so the app shows OutOfSync, and nothing syncs it back by itself.
    w.wait_app("web", "OutOfSync against main", |a| {
        sync_status(a) == "OutOfSync"
    })
    .await;
    let live = w.kubectl().run(&[
        "get",
        "deployment/web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ]);
    assert_eq!(live, "registry.example/web:1.0");
}

#[tokio::test]
async fn deleting_an_app_cascades_only_with_the_finalizer() {
    let w = World::start("cascade").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("with/c.yaml", &configmap("with-finalizer", "1"))
        .write("without/c.yaml", &configmap("without-finalizer", "1"));
    repo.commit("two apps");
    let with = application("with", &repo.url(), "with", ns, AUTOMATED).replace(
        "metadata:\n  name: with\n",
        "metadata:\n  name: with\n  finalizers:\n  - resources-finalizer.argocd.argoproj.io\n",
    );
    w.apply(&with);
    w.apply(&application(
        "without",
        &repo.url(),
        "without",
        ns,
        AUTOMATED,
    ));
    w.wait_synced_healthy("with").await;
    w.wait_synced_healthy("without").await;

    w.kubectl()
        .run(&["delete", "application", "with", "--wait=false"]);
    w.kubectl()
        .run(&["delete", "application", "without", "--wait=false"]);
    w.wait_object(
        &["configmap/with-finalizer"],
        "with-finalizer deleted by cascade",
        |o| o.is_none(),
    )
    .await;
    w.wait_object(&["application/with"], "app with finalizer gone", |o| {
        o.is_none()
    })
    .await;
    w.wait_object(
        &["application/without"],
        "app without finalizer gone",
        |o| o.is_none(),
    )
    .await;
    assert!(
        w.kubectl()
            .try_run(&["get", "configmap", "without-finalizer"])
            .is_ok(),
        "resources stay without the finalizer"
    );
}

#[tokio::test]
async fn a_project_violation_is_refused_before_anything_is_applied() {
    let w = World::start("project").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("app/c.yaml", &configmap("should-not-exist", "1"))
        .write("app/role.yaml", "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: ferry-test-forbidden\nrules: []\n");
    repo.commit("app");
    w.apply(&format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: team
spec:
  sourceRepos: ["{}"]
  destinations:
  - server: https://kubernetes.default.svc
    namespace: {ns}
"#,
        repo.url()
    ));
    // A forbidden repository.
    w.apply(
        &application(
            "wrong-repo",
            "file:///nowhere/else.git",
            "app",
            ns,
            AUTOMATED,
        )
        .replace("project: default", "project: team"),
    );
    // A forbidden destination namespace.
    w.apply(
        &application("wrong-dest", &repo.url(), "app", "kube-system", AUTOMATED)
            .replace("project: default", "project: team"),
    );
    // A cluster-scoped kind the project does not whitelist.
    w.apply(
        &application("wrong-kind", &repo.url(), "app", ns, AUTOMATED)
            .replace("project: default", "project: team"),
    );

    for (app, expected) in [
        ("wrong-repo", "sourceRepos"),
        ("wrong-dest", "destinations"),
        ("wrong-kind", "ClusterRole"),
    ] {
        let a = w
            .wait_app(app, "an InvalidSpecError", |a| {
                conditions(a)
                    .iter()
                    .any(|c| c.starts_with("InvalidSpecError"))
            })
            .await;
        let text = conditions(&a).join("\n");
        assert!(text.contains(expected), "{app}: {text}");
    }
    assert!(
        w.kubectl()
            .try_run(&["get", "configmap", "should-not-exist"])
            .is_err(),
        "nothing may be applied"
    );
    assert!(
        w.kubectl()
            .try_run(&["get", "clusterrole", "ferry-test-forbidden"])
            .is_err(),
        "nothing may be applied"
    );
}

#[tokio::test]
async fn a_restart_in_the_middle_of_a_sync_converges() {
    let mut w = World::start("restart").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    // Wave 0 holds a Job that runs for 3 s, so the sync is still running (waiting for wave 0 to
    // be healthy) when ferry is killed; wave 1 must still arrive after the restart.
    repo.write(
        "many/job.yaml",
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: migrate
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations: {testenv.ferry.dev/run-for: 3s}
    spec:
      restartPolicy: Never
      containers: [{name: run, image: registry.example/migrate:1}]
"#,
    );
    for i in 0..20 {
        let cm = configmap(&format!("c{i}"), "1").replace(
            "metadata:\n",
            "metadata:\n  annotations: {argocd.argoproj.io/sync-wave: \"1\"}\n",
        );
        repo.write(&format!("many/c{i}.yaml"), &cm);
    }
    repo.commit("a job, then twenty configmaps");
    w.apply(&application("many", &repo.url(), "many", ns, AUTOMATED));
    w.wait_app("many", "a sync running", |a| {
        a.pointer("/status/operationState/phase")
            .and_then(Value::as_str)
            == Some("Running")
    })
    .await;
    w.controller.kill();
    let kubectl = w.kubectl().clone();
    let configmaps = || {
        kubectl
            .run(&["get", "configmaps", "-o", "name"])
            .lines()
            .filter(|l| l.starts_with("configmap/c"))
            .count()
    };
    assert_eq!(
        configmaps(),
        0,
        "wave 1 must not have started while wave 0 was running"
    );
    w.controller.restart();
    w.wait_synced_healthy("many").await;
    assert_eq!(configmaps(), 20);
    let app = w.app("many").unwrap();
    assert_eq!(
        app.pointer("/status/operationState/phase")
            .and_then(Value::as_str),
        Some("Succeeded")
    );
}

#[tokio::test]
async fn ignored_differences_do_not_count_as_drift() {
    let w = World::start("ignore-differences").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "web/deploy.yaml",
        &deployment("web", "registry.example/web:1.0", 2),
    );
    repo.commit("web");
    let spec = "  ignoreDifferences:\n  - group: apps\n    kind: Deployment\n    jsonPointers: [/spec/replicas]\n  syncPolicy:\n    automated:\n      prune: true\n";
    w.apply(&application("web", &repo.url(), "web", ns, spec));
    w.wait_synced_healthy("web").await;
    w.kubectl()
        .run(&["scale", "deployment/web", "--replicas=4"]);
    // A change to a field that is not ignored does show, which proves the app was compared
    // after the scale.
    w.kubectl().run(&[
        "set",
        "image",
        "deployment/web",
        "main=registry.example/web:other",
    ]);
    let app = w
        .wait_app("web", "OutOfSync for the image", |a| {
            sync_status(a) == "OutOfSync"
        })
        .await;
    let drifted: Vec<&str> = app["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "OutOfSync")
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(drifted, ["web"]);
    w.kubectl().run(&[
        "set",
        "image",
        "deployment/web",
        "main=registry.example/web:1.0",
    ]);
    w.wait_app("web", "Synced again with replicas still 4", |a| {
        sync_status(a) == "Synced"
    })
    .await;
    let live = w
        .kubectl()
        .run(&["get", "deployment/web", "-o", "jsonpath={.spec.replicas}"]);
    assert_eq!(
        live,
        "4",
        "the ignored field keeps its live value: {}",
        summary(&app)
    );
}

#[tokio::test]
async fn a_failed_sync_is_retried_as_the_retry_policy_says() {
    let w = World::start("retry").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("app/svc.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n  - port: 99999\n");
    repo.commit("a service the API server refuses");
    let spec = "  syncPolicy:\n    automated: {}\n    retry:\n      limit: 2\n      backoff:\n        duration: 1s\n        factor: 1\n";
    w.apply(&application("retried", &repo.url(), "app", ns, spec));
    let app = w
        .wait_app(
            "retried",
            "two retries used up, the last one finished",
            |a| {
                // A retry shows its count while it runs, as in Argo CD.
                a.pointer("/status/operationState/retryCount")
                    .and_then(Value::as_i64)
                    == Some(2)
                    && a.pointer("/status/operationState/phase") != Some(&Value::from("Running"))
            },
        )
        .await;
    assert_eq!(
        app.pointer("/status/operationState/phase")
            .and_then(Value::as_str),
        Some("Failed"),
        "{}",
        summary(&app)
    );
    let message = app
        .pointer("/status/operationState/message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(message.contains("99999"), "{message}");
    // Each attempt is an Event on the Application.
    let events = w.kubectl().run(&[
        "get",
        "events",
        "--field-selector",
        "involvedObject.kind=Application,involvedObject.name=retried",
        "-o",
        "json",
    ]);
    let events: Value = serde_json::from_str(&events).unwrap();
    let notes: Vec<&str> = events["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["note"].as_str().or(e["message"].as_str()))
        .collect();
    assert!(notes.iter().any(|n| n.contains("failed")), "{notes:?}");
}

#[tokio::test]
async fn ferry_run_serves_probes_and_metrics_beside_the_controller() {
    let cluster = ferry_testsupport::Cluster::shared();
    let ns = cluster.namespace("run-serves").await;
    ferry_ok(cluster.kubeconfig(), &["install", "--namespace", ns.name()]);
    let controller = common::Controller::start_command(
        cluster.kubeconfig(),
        &[
            "run",
            "--namespace",
            ns.name(),
            "--poll-interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let w = World { ns, controller };
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("cfg/c.yaml", &configmap("c", "1"));
    repo.commit("c");
    w.apply(&application("cfg", &repo.url(), "cfg", ns, AUTOMATED));
    w.wait_synced_healthy("cfg").await;
    // The log names the address the server bound (port 0 picks a free one).
    let addr = w.controller.logged_address("serving the API");
    let get = |path: &str| http_request(&addr, "GET", path, "");
    let healthz = get("/healthz");
    assert_eq!(healthz.status, 200, "{}", healthz.body);
    assert_eq!(get("/readyz").status, 200);
    // /metrics names every app, project and repository: not for anonymous callers on the UI
    // and API port; Prometheus scrapes the --metrics-listen address.
    let anonymous = get("/metrics");
    assert!(
        anonymous.status == 401 && !anonymous.body.contains("ferry_app_info"),
        "anonymous /metrics: {} {}",
        anonymous.status,
        anonymous.body
    );
    let metrics_addr = w.controller.logged_address("serving /metrics");
    let metrics = http_request(&metrics_addr, "GET", "/metrics", "").body;
    assert!(
        metrics.contains("ferry_app_info{") && metrics.contains("name=\"cfg\""),
        "{metrics}"
    );
    // The controller's metrics share the one registry.
    for expected in [
        "ferry_app_sync_total{name=\"cfg\",phase=\"Succeeded\"} 1",
        "ferry_app_reconcile_seconds_count ",
        "ferry_git_seconds_count{repo=",
        "ferry_render_seconds_count{repo=",
        // Kubernetes API requests by verb, code and resource, with latency.
        "ferry_kube_requests_total{verb=\"APPLY\",code=\"20",
        "ferry_kube_requests_total{verb=\"WATCH\",code=\"200\",resource=\"applications\"}",
        "resource=\"configmaps\"}",
        "ferry_kube_request_seconds_bucket{",
        "ferry_kube_request_seconds_count{verb=\"APPLY\"}",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from:\n{metrics}"
        );
    }
    // No anonymous access to the API by default.
    assert_eq!(get("/api/v1/applications").status, 401);
}

/// A request to `addr` (`host:port`), with a JSON body when there is one.
fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    body: &str,
) -> ferry_testsupport::http::Reply {
    let addr = addr.parse().unwrap();
    let headers = [("Content-Type", "application/json")];
    ferry_testsupport::http::request(addr, method, path, &headers, body.as_bytes())
}

#[tokio::test]
async fn controller_and_server_run_as_separate_processes() {
    let mut w = World::start("split").await;
    // Replace `ferry run` by its two halves.
    w.controller.kill();
    let ns = w.ns.name().to_string();
    let controller = common::Controller::start_command(
        w.kubeconfig(),
        &[
            "controller",
            "--namespace",
            &ns,
            "--poll-interval",
            "1s",
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let server = common::Controller::start_command(
        w.kubeconfig(),
        &[
            "server",
            "--namespace",
            &ns,
            "--listen",
            "127.0.0.1:0",
            "--insecure-no-auth",
        ],
    );
    let metrics_addr = controller.logged_address("serving /metrics");
    let api_addr = server.logged_address("ferry server listening");

    let repo = GitRepo::new();
    repo.write("cfg/c.yaml", &configmap("split", "1"));
    repo.commit("c");
    // Manual sync: the server asks, the controller does it.
    w.apply(&application("cfg", &repo.url(), "cfg", &ns, ""));
    w.wait_app("cfg", "OutOfSync", |a| sync_status(a) == "OutOfSync")
        .await;
    let response = http_request(&api_addr, "POST", "/api/v1/applications/cfg/sync", "{}");
    assert_eq!(response.status, 202, "{}", response.body);
    w.wait_synced_healthy("cfg").await;
    let app = w.app("cfg").unwrap();
    assert_eq!(
        app["status"]["operationState"]["operation"]["initiatedBy"]["username"],
        "anonymous"
    );

    let metrics = http_request(&metrics_addr, "GET", "/metrics", "").body;
    for expected in [
        "ferry_app_sync_total{name=\"cfg\",phase=\"Succeeded\"} 1",
        "ferry_kube_requests_total{verb=\"APPLY\",code=\"20",
    ] {
        assert!(
            metrics.contains(expected),
            "{expected} missing from the controller's metrics:\n{metrics}"
        );
    }
    assert!(
        http_request(&metrics_addr, "GET", "/api/v1/applications", "").status == 404,
        "the controller serves no API"
    );
    let server_metrics = http_request(&api_addr, "GET", "/metrics", "").body;
    assert!(
        server_metrics.contains("ferry_app_info{"),
        "{server_metrics}"
    );
    assert!(
        !server_metrics.contains("ferry_app_sync_total{"),
        "syncs are counted where they run"
    );
}

/// `ferry_app_untouched_total` from the controller's /metrics.
fn untouched_looks(metrics_addr: &str) -> u64 {
    let body = http_request(metrics_addr, "GET", "/metrics", "").body;
    body.lines()
        .find_map(|l| l.strip_prefix("ferry_app_untouched_total "))
        .map_or(0, |v| v.trim().parse().unwrap())
}

fn sync_revision(app: &Value) -> &str {
    app.pointer("/status/sync/revision")
        .and_then(Value::as_str)
        .unwrap_or("")
}

#[tokio::test]
async fn a_commit_refreshes_only_the_apps_whose_files_it_changed() {
    let w = World::start("touched").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("apps/a/cm.yaml", &configmap("touch-a", "1"));
    repo.write("apps/b/cm.yaml", &configmap("touch-b", "1"));
    repo.write("docs/notes.md", "first\n");
    let c1 = repo.commit("a and b");
    w.apply(&application(
        "touch-a",
        &repo.url(),
        "apps/a",
        ns,
        AUTOMATED,
    ));
    w.apply(&application(
        "touch-b",
        &repo.url(),
        "apps/b",
        ns,
        AUTOMATED,
    ));
    w.wait_synced_healthy("touch-a").await;
    let b_before = w.wait_synced_healthy("touch-b").await;
    assert_eq!(sync_revision(&b_before), c1);
    let metrics = w.controller.logged_address("serving /metrics");

    // A commit outside every app's inputs refreshes nobody: both are looked at (the counter
    // counts each app once per commit) and stay at the commit that last changed them. Right
    // after its first sync an app is compared once more (its watch was still starting), so
    // a docs commit in that window is compared in full; then the next one is tried.
    let mut settled = false;
    for round in 0..3 {
        let untouched = untouched_looks(&metrics);
        repo.write("docs/notes.md", &format!("round {round}\n"));
        let docs = repo.commit("docs only");
        let (looked, compared) =
            wait_until("both apps done with the docs commit", STEP, || async {
                let looked = untouched_looks(&metrics) - untouched;
                let compared = ["touch-a", "touch-b"]
                    .iter()
                    .filter(|n| w.app(n).is_some_and(|a| sync_revision(&a) == docs))
                    .count() as u64;
                if looked + compared >= 2 {
                    Probe::Done((looked, compared))
                } else {
                    Probe::pending(format!("{looked} untouched, {compared} compared"))
                }
            })
            .await;
        if looked == 2 && compared == 0 {
            settled = true;
            break;
        }
    }
    assert!(settled, "a docs commit left both apps alone");
    let a_settled = w.app("touch-a").unwrap();
    let b_settled = w.app("touch-b").unwrap();
    let c1 = sync_revision(&b_settled).to_string();

    // A commit that changes a's folder (and the docs again): a is synced to it; b is looked at
    // and left as it was, not even its status written.
    let untouched = untouched_looks(&metrics);
    repo.write("apps/a/cm.yaml", &configmap("touch-a", "2"));
    repo.write("docs/notes.md", "third\n");
    let c3 = repo.commit("a only");
    w.wait_object(
        &["configmap", "touch-a"],
        "touch-a's ConfigMap at the new value",
        |o| o.and_then(|o| o.pointer("/data/value")) == Some(&Value::from("2")),
    )
    .await;
    w.wait_app("touch-a", "compared at the new commit", |a| {
        sync_revision(a) == c3 && sync_status(a) == "Synced"
    })
    .await;
    wait_until("touch-b looked at after the commit", STEP, || async {
        let now = untouched_looks(&metrics);
        if now > untouched {
            Probe::Done(now)
        } else {
            Probe::pending(format!("ferry_app_untouched_total {now}"))
        }
    })
    .await;
    assert_ne!(sync_revision(&a_settled), c3);
    let b_after = w.app("touch-b").unwrap();
    assert_eq!(
        sync_revision(&b_after),
        c1,
        "b stays at the commit that last changed it"
    );
    assert_eq!(
        b_after.pointer("/metadata/resourceVersion"),
        b_settled.pointer("/metadata/resourceVersion"),
        "b's status was not written"
    );
    let b_cm = w.kubectl().run(&[
        "get",
        "configmap",
        "touch-b",
        "-o",
        "jsonpath={.data.value}",
    ]);
    assert_eq!(b_cm.trim(), "1");
}

/// The sum of the controller's metric `name` over its label sets (0 when it has none yet).
fn metric_sum(metrics_addr: &str, name: &str) -> f64 {
    metric_sum_where(metrics_addr, name, &[])
}

#[tokio::test]
async fn a_quiet_poll_fetches_the_repository_once_and_reconciles_no_app() {
    let w = World::start("quiet-poll").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    for name in ["quiet-x", "quiet-y", "quiet-z"] {
        repo.write(&format!("apps/{name}/cm.yaml"), &configmap(name, "1"));
    }
    let first = repo.commit("three apps");
    for name in ["quiet-x", "quiet-y", "quiet-z"] {
        w.apply(&application(
            name,
            &repo.url(),
            &format!("apps/{name}"),
            ns,
            AUTOMATED,
        ));
    }
    for name in ["quiet-x", "quiet-y", "quiet-z"] {
        w.wait_synced_healthy(name).await;
    }
    let metrics = w.controller.logged_address("serving /metrics");
    let reconciles = || metric_sum(&metrics, "ferry_app_reconcile_seconds_count");
    let polls = || metric_sum(&metrics, "ferry_git_polls_total");

    // The poll interval is 1 s and nothing changes: after the first syncs have settled, three
    // polls (one fetch of the one repository each) reconcile no app. (Before the poller, every
    // app was looked at once per poll.)
    let mut quiet = None;
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let (r0, p0) = (reconciles(), polls());
        wait_until("three more polls", STEP, || async {
            let p = polls();
            if p >= p0 + 3.0 {
                Probe::Done(p)
            } else {
                Probe::pending(format!("ferry_git_polls_total {p} (from {p0})"))
            }
        })
        .await;
        let r1 = reconciles();
        rounds.push((r0, r1));
        if r1 == r0 {
            quiet = Some(r0);
            break;
        }
    }
    let Some(quiet) = quiet else {
        let log = w.controller.log();
        let looks: Vec<&str> = log
            .lines()
            .filter(|l| l.contains("reconcile{app="))
            .collect();
        panic!(
            "three polls in a row reconciled no app (reconciles before and after each round: \
             {rounds:?}); the reconciles logged:\n{}",
            looks[looks.len().saturating_sub(40)..].join("\n")
        );
    };
    assert!(
        quiet >= 3.0,
        "each app was reconciled at least once: {quiet}"
    );

    // A commit to one app's folder: the poller queues the apps of the repository whose
    // revision moved; x syncs it, y and z are left at the commit that last changed them.
    repo.write("apps/quiet-x/cm.yaml", &configmap("quiet-x", "2"));
    let second = repo.commit("x only");
    w.wait_app("quiet-x", "synced at the new commit", |a| {
        sync_revision(a) == second && sync_status(a) == "Synced"
    })
    .await;
    let body = http_request(&metrics, "GET", "/metrics", "").body;
    assert!(
        body.lines()
            .any(|l| l.starts_with("ferry_git_polls_total{") && l.contains("result=\"moved\"")),
        "a poll that moved a revision is counted as moved:\n{body}"
    );
    for name in ["quiet-y", "quiet-z"] {
        assert_eq!(sync_revision(&w.app(name).unwrap()), first, "{name}");
    }
    let value = w.kubectl().run(&[
        "get",
        "configmap",
        "quiet-x",
        "-o",
        "jsonpath={.data.value}",
    ]);
    assert_eq!(value.trim(), "2");
}

/// The sum of `name`'s series whose labels include every `label="value"` of `labels` (all of
/// them when `labels` is empty).
fn metric_sum_where(metrics_addr: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let body = http_request(metrics_addr, "GET", "/metrics", "").body;
    body.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn an_object_the_watch_never_saw_is_created_without_reading_it_first() {
    let w = World::start("absent-read").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    for name in ["absent-a", "absent-b"] {
        repo.write(&format!("apps/{name}/cm.yaml"), &configmap(name, "1"));
    }
    repo.commit("two apps");
    // The first app starts the ConfigMap watch (and waits for its listing).
    w.apply(&application(
        "absent-a",
        &repo.url(),
        "apps/absent-a",
        ns,
        AUTOMATED,
    ));
    w.wait_synced_healthy("absent-a").await;
    let metrics = w.controller.logged_address("serving /metrics");
    let requests = |verb: &str| {
        metric_sum_where(
            &metrics,
            "ferry_kube_requests_total",
            &[("verb", verb), ("resource", "configmaps")],
        )
    };
    let (gets, applies) = (requests("GET"), requests("APPLY"));

    // The second app's ConfigMap is not in the watch: the comparison knows it is missing
    // without a GET (and without a dry run), and the sync creates it with one apply.
    w.apply(&application(
        "absent-b",
        &repo.url(),
        "apps/absent-b",
        ns,
        AUTOMATED,
    ));
    w.wait_synced_healthy("absent-b").await;
    let value = w.kubectl().run(&[
        "get",
        "configmap",
        "absent-b",
        "-o",
        "jsonpath={.data.value}",
    ]);
    assert_eq!(value.trim(), "1");
    assert_eq!(
        requests("GET") - gets,
        0.0,
        "no GET of a ConfigMap while comparing and syncing an object the watch never saw"
    );
    assert!(
        requests("APPLY") - applies >= 1.0,
        "the sync applied the ConfigMap"
    );
    assert!(
        metric_sum(&metrics, "ferry_watched_objects") >= 2.0,
        "the watches know the two ConfigMaps"
    );
}
