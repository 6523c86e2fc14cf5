//! The conformance corpus: small repositories laid out the way people lay them out for Argo CD,
//! each run unchanged by the real `ferry` binary against the local control plane. Each case
//! checks the final state in the cluster and what Argo CD would show for it (sync status,
//! health, conditions, the operation's result).

mod common;

use common::*;
use ferry_testsupport::{Cluster, GitRepo};
use serde_json::Value;

// Helpers ------------------------------------------------------------------------------------

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

/// `status.operationState.syncResult.resources`.
fn sync_results(app: &Value) -> Vec<Value> {
    app.pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// The sync result message of the resource `kind`/`name`.
fn result_message(app: &Value, kind: &str, name: &str) -> Option<String> {
    sync_results(app)
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name && r["hookType"].is_null())
        .and_then(|r| r["message"].as_str().map(str::to_string))
}

/// The resource `kind`/`name` as `status.resources` lists it.
fn resource<'a>(app: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    app.pointer("/status/resources")
        .and_then(Value::as_array)?
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name)
}

fn tracking_id(obj: &Value) -> Option<&str> {
    str_at(obj, "/metadata/annotations/argocd.argoproj.io~1tracking-id")
}

/// The notes of the Events with `reason` on the Application `app`.
fn events(w: &World, app: &str, reason: &str) -> Vec<String> {
    let out = w.kubectl().run(&[
        "get",
        "events",
        "--field-selector",
        &format!("involvedObject.kind=Application,involvedObject.name={app},reason={reason}"),
        "-o",
        "json",
    ]);
    let list: Value = serde_json::from_str(&out).unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn get(w: &World, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend(["-o", "json", "--ignore-not-found"]);
    let out = w.kubectl().run(&all);
    (!out.trim().is_empty()).then(|| serde_json::from_str(&out).unwrap())
}

fn project(name: &str, wave: i64) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: {name}
  annotations:
    argocd.argoproj.io/sync-wave: "{wave}"
spec:
  description: the workshop's apps
  sourceRepos: ["*"]
  destinations:
  - server: "*"
    namespace: "*"
  clusterResourceWhitelist:
  - group: "*"
    kind: "*"
"#
    )
}

/// An Application of project `project` in wave `wave`, with the resources finalizer, as the
/// workshop writes them.
fn child_app(name: &str, project: &str, repo: &str, path: &str, ns: &str, wave: i64) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  annotations:
    argocd.argoproj.io/sync-wave: "{wave}"
  finalizers:
  - resources-finalizer.argocd.argoproj.io
spec:
  project: {project}
  source:
    repoURL: {repo}
    path: {path}
    targetRevision: main
  destination:
    server: https://kubernetes.default.svc
    namespace: {ns}
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
"#
    )
}

// The App-of-Apps of the issue -----------------------------------------------------------------

/// The workshop's layout for Argo CD 2.13: the bootstrap applies the AppProject and the root
/// Application by hand; the root (`path: apps`, recursive) lists both of them again, and child
/// apps in waves 0, 1, 2 and 10. It converges with no manual step: the project and the root
/// adopt themselves, the root never waits for its own health, and the children come up wave by
/// wave.
#[tokio::test]
async fn app_of_apps_that_manages_itself_and_its_project_converges() {
    let w = World::start("conf-root").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let url = repo.url();
    repo.write("apps/project.yaml", &project("workshop", -1));
    let root = format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: root
  finalizers:
  - resources-finalizer.argocd.argoproj.io
spec:
  project: workshop
  source:
    repoURL: {url}
    path: apps
    targetRevision: main
    directory:
      recurse: true
  destination:
    server: https://kubernetes.default.svc
    namespace: {ns}
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
"#
    );
    repo.write("apps/root.yaml", &root);
    for (name, wave) in [
        ("metallb", 0),
        ("ingress", 1),
        ("monitoring", 2),
        ("podinfo", 10),
    ] {
        repo.write(
            &format!("apps/children/{name}.yaml"),
            &child_app(
                name,
                "workshop",
                &url,
                &format!("platform/{name}"),
                ns,
                wave,
            ),
        );
        repo.write(
            &format!("platform/{name}/settings.yaml"),
            &configmap(&format!("{name}-settings"), name),
        );
    }
    repo.write(
        "platform/podinfo/deploy.yaml",
        &deployment("podinfo", "ghcr.io/stefanprodan/podinfo:6.7.0", 2),
    );
    repo.commit("the workshop's apps");

    // Something made before GitOps: the same ConfigMap, created by hand, untracked.
    w.kubectl().apply(&configmap("metallb-settings", "by hand"));
    // The bootstrap script.
    w.apply(&project("workshop", -1));
    w.apply(&root);

    let root_app = w.wait_synced_healthy("root").await;
    for child in ["metallb", "ingress", "monitoring", "podinfo"] {
        w.wait_synced_healthy(child).await;
    }
    let podinfo = get(&w, &["deployment/podinfo"]).expect("podinfo runs");
    assert_eq!(podinfo["status"]["readyReplicas"], 2, "{podinfo}");

    // The root tracks itself and its project, and says it adopted them.
    let root_live = w.app("root").unwrap();
    assert_eq!(
        tracking_id(&root_live),
        Some(format!("root:argoproj.io/Application:{ns}/root").as_str())
    );
    let project_live = get(&w, &["appproject/workshop"]).unwrap();
    assert_eq!(
        tracking_id(&project_live),
        Some(format!("root:argoproj.io/AppProject:{ns}/workshop").as_str())
    );
    let first_sync = root_app.clone();
    for (kind, name) in [("AppProject", "workshop"), ("Application", "root")] {
        let message = result_message(&first_sync, kind, name);
        assert!(
            message.as_deref().is_some_and(|m| m.starts_with("adopted")),
            "{kind}/{name}: {message:?}\n{first_sync}"
        );
    }
    // The root shows no health of its own for itself (it would be waiting for itself).
    let own = resource(&root_app, "Application", "root").expect("root lists itself");
    assert!(own["health"].is_null(), "{own}");
    assert_eq!(own["status"], "Synced");
    // The hand-made ConfigMap was adopted by its app, with an Event on that app.
    let metallb = w.app("metallb").unwrap();
    let message = result_message(&metallb, "ConfigMap", "metallb-settings");
    assert!(
        message.as_deref().is_some_and(|m| m.starts_with("adopted")),
        "{message:?}\n{metallb}"
    );
    let cm = get(&w, &["configmap/metallb-settings"]).unwrap();
    assert_eq!(cm["data"]["value"], "metallb");
    assert_eq!(
        tracking_id(&cm),
        Some(format!("metallb:/ConfigMap:{ns}/metallb-settings").as_str())
    );
    let adopted = events(&w, "metallb", "ResourceAdopted");
    assert!(
        adopted.iter().any(|e| e.contains("metallb-settings")),
        "{adopted:?}"
    );
    let adopted = events(&w, "root", "ResourceAdopted");
    assert!(
        adopted.iter().any(|e| e.contains("AppProject"))
            && adopted.iter().any(|e| e.contains("/root")),
        "{adopted:?}"
    );

    // One sync of the root for one commit: its own status, operation and refresh annotation are
    // no drift. A refresh compares again and changes nothing.
    assert_eq!(
        root_app["status"]["history"].as_array().map(Vec::len),
        Some(1),
        "{root_app}"
    );
    w.kubectl().run(&[
        "annotate",
        "application",
        "root",
        "argocd.argoproj.io/refresh=normal",
    ]);
    let refreshed = w
        .wait_app("root", "refresh done", |a| {
            str_at(a, "/metadata/annotations/argocd.argoproj.io~1refresh").is_none()
        })
        .await;
    assert_eq!(sync_status(&refreshed), "Synced", "{}", summary(&refreshed));
    assert_eq!(
        refreshed["status"]["history"].as_array().map(Vec::len),
        Some(1),
        "{refreshed}"
    );

    // A new commit changes a child's files and none of the root's: the child syncs it; the
    // root syncs nothing and shows the child healthy again.
    repo.write(
        "platform/podinfo/deploy.yaml",
        &deployment("podinfo", "ghcr.io/stefanprodan/podinfo:6.7.1", 2),
    );
    let head = repo.commit("podinfo 6.7.1");
    w.wait_app("podinfo", "synced at the new commit", |a| {
        str_at(a, "/status/sync/revision") == Some(head.as_str())
            && sync_status(a) == "Synced"
            && health_status(a) == "Healthy"
    })
    .await;
    let root_app = w
        .wait_app(
            "root",
            "Synced and Healthy with the child at its new commit",
            |a| {
                sync_status(a) == "Synced"
                    && health_status(a) == "Healthy"
                    && resource(a, "Application", "podinfo")
                        .is_some_and(|r| r["health"]["status"] == "Healthy")
            },
        )
        .await;
    assert_eq!(
        root_app["status"]["history"].as_array().map(Vec::len),
        Some(1),
        "the root's own objects did not change, so it has nothing to sync: {root_app}"
    );

    // Removing the root's own file from Git never prunes the root or its project.
    repo.remove("apps/root.yaml").remove("apps/project.yaml");
    let head = repo.commit("the bootstrap files move out");
    let root_app = w
        .wait_app("root", "compared at the commit without its own file", |a| {
            str_at(a, "/status/sync/revision") == Some(head.as_str())
        })
        .await;
    // Nothing is left to prune: the app and its project are not prunable.
    assert_eq!(sync_status(&root_app), "Synced", "{}", summary(&root_app));
    assert!(
        resource(&root_app, "Application", "root").is_none(),
        "{root_app}"
    );
    assert!(
        w.app("root")
            .is_some_and(|a| a["metadata"]["deletionTimestamp"].is_null())
    );
    assert!(get(&w, &["appproject/workshop"]).is_some());
    assert!(
        sync_results(&root_app)
            .iter()
            .all(|r| r["status"] != "Pruned"),
        "{root_app}"
    );
}

// Adoption ----------------------------------------------------------------------------------

/// Strict mode: per app (`FailOnUntrackedResource=true`) an untracked object is refused with a
/// message that says how to adopt it; an object tracked by another app is refused always.
#[tokio::test]
async fn strict_adoption_refuses_untracked_objects_and_other_apps_objects_are_never_taken() {
    let w = World::start("conf-strict").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("strict/cm.yaml", &configmap("by-hand", "git"))
        .write("thief/cm.yaml", &configmap("owned", "thief"))
        .write("owner/cm.yaml", &configmap("owned", "owner"));
    repo.commit("three apps");
    w.kubectl().apply(&configmap("by-hand", "by hand"));
    let strict =
        "  syncPolicy:\n    automated: {}\n    syncOptions:\n    - FailOnUntrackedResource=true\n";
    w.apply(&application("strict", &repo.url(), "strict", ns, strict));
    w.apply(&application("owner", &repo.url(), "owner", ns, AUTOMATED));
    w.wait_synced_healthy("owner").await;
    w.apply(&application("thief", &repo.url(), "thief", ns, AUTOMATED));

    let app = w
        .wait_app("strict", "sync refused", |a| {
            str_at(a, "/status/operationState/phase") == Some("Failed")
        })
        .await;
    let message = str_at(&app, "/status/operationState/message").unwrap();
    assert!(
        message.contains("not managed by any app")
            && message.contains("FailOnUntrackedResource=false")
            && message.contains("kubectl annotate configmap by-hand"),
        "{message}"
    );
    assert!(
        conditions(&app).iter().any(|c| c.starts_with("SyncError")),
        "{}",
        summary(&app)
    );
    let cm = get(&w, &["configmap/by-hand"]).unwrap();
    assert_eq!(cm["data"]["value"], "by hand");
    assert!(tracking_id(&cm).is_none());

    let thief = w
        .wait_app("thief", "sync refused", |a| {
            str_at(a, "/status/operationState/phase") == Some("Failed")
        })
        .await;
    assert!(
        conditions(&thief)
            .iter()
            .any(|c| c.starts_with("SharedResourceWarning") && c.contains("owner")),
        "{}",
        summary(&thief)
    );
    let owned = get(&w, &["configmap/owned"]).unwrap();
    assert_eq!(owned["data"]["value"], "owner");
}

/// The installation-wide strict mode (`--fail-on-untracked-resource`), and `Adopt=true` (ferry's
/// older option) letting one app adopt anyway.
#[tokio::test]
async fn the_strict_flag_refuses_adoption_unless_the_app_allows_it() {
    let cluster = Cluster::shared();
    let ns = cluster.namespace("conf-strict-flag").await;
    ferry_ok(cluster.kubeconfig(), &["install", "--namespace", ns.name()]);
    let controller = Controller::start_command(
        cluster.kubeconfig(),
        &[
            "run",
            "--namespace",
            ns.name(),
            "--poll-interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--fail-on-untracked-resource",
        ],
    );
    let w = World { ns, controller };
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("refused/cm.yaml", &configmap("first", "git"))
        .write("allowed/cm.yaml", &configmap("second", "git"));
    repo.commit("two apps");
    w.kubectl().apply(&configmap("first", "by hand"));
    w.kubectl().apply(&configmap("second", "by hand"));
    w.apply(&application(
        "refused",
        &repo.url(),
        "refused",
        ns,
        AUTOMATED,
    ));
    let adopt = "  syncPolicy:\n    automated: {}\n    syncOptions:\n    - Adopt=true\n";
    w.apply(&application("allowed", &repo.url(), "allowed", ns, adopt));

    let allowed = w.wait_synced_healthy("allowed").await;
    assert!(
        result_message(&allowed, "ConfigMap", "second").is_some_and(|m| m.starts_with("adopted")),
        "{allowed}"
    );
    let refused = w
        .wait_app("refused", "sync refused", |a| {
            str_at(a, "/status/operationState/phase") == Some("Failed")
        })
        .await;
    assert!(
        str_at(&refused, "/status/operationState/message")
            .is_some_and(|m| m.contains("--fail-on-untracked-resource")),
        "{}",
        summary(&refused)
    );
    assert_eq!(
        get(&w, &["configmap/first"]).unwrap()["data"]["value"],
        "by hand"
    );
}

// Child-app health -----------------------------------------------------------------------------

/// A wave waits for its child Applications and says which one blocks and why (a child whose
/// comparison failed is said to be so, not "Progressing"); a parent annotated
/// `ferry.dev/child-health: ignore` counts a child Healthy once it exists, as Argo CD does.
#[tokio::test]
async fn a_blocking_child_is_named_and_a_parent_may_ignore_child_health() {
    let w = World::start("conf-children").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let url = repo.url();
    for parent in ["gated", "ignoring"] {
        repo.write(
            &format!("{parent}/broken.yaml"),
            &child_app(
                &format!("broken-{parent}"),
                "default",
                &url,
                "no/such/path",
                ns,
                0,
            ),
        )
        .write(
            &format!("{parent}/after.yaml"),
            &child_app(
                &format!("after-{parent}"),
                "default",
                &url,
                &format!("after-{parent}"),
                ns,
                1,
            ),
        )
        .write(
            &format!("after-{parent}/cm.yaml"),
            &configmap(&format!("after-{parent}"), "x"),
        );
    }
    repo.commit("two parents, each with a broken child in wave 0");
    w.apply(&application("gated", &repo.url(), "gated", ns, AUTOMATED));
    let ignoring = application("ignoring", &repo.url(), "ignoring", ns, AUTOMATED).replace(
        "metadata:\n  name: ignoring\n",
        "metadata:\n  name: ignoring\n  annotations:\n    ferry.dev/child-health: ignore\n",
    );
    w.apply(&ignoring);

    let gated = w
        .wait_app("gated", "waiting on its broken child", |a| {
            str_at(a, "/status/operationState/message").is_some_and(|m| {
                m.contains(&format!(
                    "wave 0: waiting for Application {ns}/broken-gated ("
                )) && m.contains("ComparisonError")
            })
        })
        .await;
    assert_eq!(
        str_at(&gated, "/status/operationState/phase"),
        Some("Running")
    );
    assert!(
        w.app("after-gated").is_none(),
        "wave 1 must wait for wave 0"
    );

    let ignoring = w.wait_synced_healthy("ignoring").await;
    assert_eq!(
        str_at(&ignoring, "/status/operationState/phase"),
        Some("Succeeded"),
        "{}",
        summary(&ignoring)
    );
    w.wait_synced_healthy("after-ignoring").await;
    let broken = w.app("broken-ignoring").unwrap();
    assert!(
        conditions(&broken)
            .iter()
            .any(|c| c.starts_with("ComparisonError")),
        "{}",
        summary(&broken)
    );
}

// Sync order, failures, CRDs, duplicates ------------------------------------------------------

fn with_annotations(manifest: &str, annotations: &[(&str, &str)]) -> String {
    let items: Vec<String> = annotations
        .iter()
        .map(|(k, v)| format!("\"{k}\": \"{v}\""))
        .collect();
    manifest.replacen(
        "metadata:\n",
        &format!("metadata:\n  annotations: {{{}}}\n", items.join(", ")),
        1,
    )
}

const WAVE: &str = "argocd.argoproj.io/sync-wave";
const HOOK: &str = "argocd.argoproj.io/hook";
const DELETE_POLICY: &str = "argocd.argoproj.io/hook-delete-policy";

/// The names of the sync results with status `Pruned`, in the order they were recorded.
fn pruned(app: &Value) -> Vec<String> {
    sync_results(app)
        .iter()
        .filter(|r| r["status"] == "Pruned")
        .map(|r| r["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Pruning goes highest wave first, as Argo CD prunes; `PruneLast=true` on one resource puts it
/// after all others. The app ends Synced and Healthy with only what Git declares.
#[tokio::test]
async fn prune_runs_in_reverse_wave_order_and_prune_last_goes_last() {
    let w = World::start("conf-prune-order").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("app/keep.yaml", &configmap("keep", "x"));
    for (name, wave) in [("w-1", -1), ("w0", 0), ("w5", 5)] {
        repo.write(
            &format!("app/{name}.yaml"),
            &with_annotations(&configmap(name, "x"), &[(WAVE, &wave.to_string())]),
        );
    }
    repo.write(
        "app/last.yaml",
        &with_annotations(
            &configmap("last", "x"),
            &[
                (WAVE, "-5"),
                ("argocd.argoproj.io/sync-options", "PruneLast=true"),
            ],
        ),
    );
    repo.commit("five objects in four waves");
    w.apply(&application("order", &repo.url(), "app", ns, AUTOMATED));
    w.wait_synced_healthy("order").await;

    for name in ["w-1", "w0", "w5", "last"] {
        repo.remove(&format!("app/{name}.yaml"));
    }
    let head = repo.commit("only keep stays");
    let app = w
        .wait_app("order", "synced after pruning", |a| {
            str_at(a, "/status/operationState/syncResult/revision") == Some(head.as_str())
                && str_at(a, "/status/operationState/phase") == Some("Succeeded")
        })
        .await;
    assert_eq!(pruned(&app), ["w5", "w0", "w-1", "last"], "{app}");
    let app = w.wait_synced_healthy("order").await;
    let names: Vec<&str> = app["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["keep"]);
    for name in ["w-1", "w0", "w5", "last"] {
        assert!(get(&w, &[&format!("configmap/{name}")]).is_none(), "{name}");
    }
}

/// A resource the API server refuses in wave 1: wave 0 is applied, wave 2 is not, the sync
/// fails once with the object named (SyncError), and automated sync does not try the same
/// commit again and again; a refresh decides the same. A fixing commit syncs.
#[tokio::test]
async fn a_failing_resource_mid_sync_fails_once_and_does_not_loop() {
    let w = World::start("conf-mid-fail").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let bad = r#"apiVersion: v1
kind: Service
metadata:
  name: broken
spec:
  ports:
  - port: 99999
"#;
    repo.write(
        "app/a.yaml",
        &with_annotations(&configmap("first", "x"), &[(WAVE, "0")]),
    )
    .write("app/b.yaml", &with_annotations(bad, &[(WAVE, "1")]))
    .write(
        "app/c.yaml",
        &with_annotations(&configmap("third", "x"), &[(WAVE, "2")]),
    );
    repo.commit("a bad port in wave 1");
    w.apply(&application("midfail", &repo.url(), "app", ns, AUTOMATED));
    let app = w
        .wait_app("midfail", "the sync failed", |a| {
            str_at(a, "/status/operationState/phase") == Some("Failed")
        })
        .await;
    let message = str_at(&app, "/status/operationState/message").unwrap();
    assert!(
        message.contains("Service") && message.contains("broken"),
        "{message}"
    );
    assert!(
        conditions(&app)
            .iter()
            .any(|c| c.starts_with("SyncError") && c.contains("broken")),
        "{}",
        summary(&app)
    );
    assert!(get(&w, &["configmap/first"]).is_some());
    assert!(get(&w, &["configmap/third"]).is_none());
    let started = str_at(&app, "/status/operationState/startedAt").map(str::to_string);

    // A refresh compares again; the failed commit is not synced again.
    w.kubectl().run(&[
        "annotate",
        "application",
        "midfail",
        "argocd.argoproj.io/refresh=normal",
    ]);
    let app = w
        .wait_app("midfail", "refresh done", |a| {
            str_at(a, "/metadata/annotations/argocd.argoproj.io~1refresh").is_none()
        })
        .await;
    assert_eq!(sync_status(&app), "OutOfSync", "{}", summary(&app));
    assert_eq!(
        str_at(&app, "/status/operationState/startedAt").map(str::to_string),
        started,
        "no second sync of the same commit"
    );
    assert!(
        app["status"]["history"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );

    repo.write(
        "app/b.yaml",
        &with_annotations(&bad.replace("99999", "80"), &[(WAVE, "1")]),
    );
    repo.commit("a good port");
    w.wait_synced_healthy("midfail").await;
    assert!(get(&w, &["configmap/third"]).is_some());
}

/// A CustomResourceDefinition and a custom resource of it in the same app and commit: the CRD
/// goes first and the resource waits until it is established; both end Synced.
#[tokio::test]
async fn a_crd_and_its_resource_in_one_sync() {
    let w = World::start("conf-crd").await;
    let ns = w.ns.name();
    // Cluster-wide, so the group is unique to this test's namespace.
    let group = format!("{ns}.conformance.example");
    let crd = format!(
        r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: gadgets, singular: gadget, kind: Gadget}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {{type: integer}}
"#
    );
    let cr =
        format!("apiVersion: {group}/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  size: 2\n");
    let repo = GitRepo::new();
    repo.write("app/crd.yaml", &crd)
        .write("app/gadget.yaml", &cr);
    repo.commit("a CRD and a Gadget");
    w.apply(&application("gadgets", &repo.url(), "app", ns, AUTOMATED));
    let app = w.wait_synced_healthy("gadgets").await;
    let kinds: Vec<&str> = app["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["CustomResourceDefinition", "Gadget"], "{app}");
    let gadget = get(&w, &[&format!("gadgets.{group}/g1")]).unwrap();
    assert_eq!(gadget["spec"]["size"], 2);
    w.kubectl()
        .run(&["delete", "crd", &format!("gadgets.{group}"), "--wait=false"]);
}

/// The same object twice in one app (two files): nothing is applied, and the app says which
/// object and where, as a ComparisonError.
#[tokio::test]
async fn the_same_object_twice_gives_a_clear_condition() {
    let w = World::start("conf-twice").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("app/one.yaml", &configmap("twice", "one"))
        .write("app/two.yaml", &configmap("twice", "two"))
        .write("app/other.yaml", &configmap("other", "x"));
    repo.commit("one object in two files");
    w.apply(&application("twice", &repo.url(), "app", ns, AUTOMATED));
    let app = w
        .wait_app("twice", "a ComparisonError", |a| {
            conditions(a)
                .iter()
                .any(|c| c.starts_with("ComparisonError"))
        })
        .await;
    let condition = conditions(&app)
        .into_iter()
        .find(|c| c.starts_with("ComparisonError"))
        .unwrap();
    assert!(
        condition.contains("ConfigMap")
            && condition.contains("twice")
            && condition.contains("app/one.yaml")
            && condition.contains("app/two.yaml"),
        "{condition}"
    );
    assert_eq!(sync_status(&app), "Unknown");
    assert!(get(&w, &["configmap/other"]).is_none(), "nothing applied");
}

/// A Job hook (`backoffLimit: 0`) with annotations on itself and its pod.
fn hook_job(name: &str, annotations: &[(&str, &str)], fail: bool) -> String {
    let pod = if fail {
        "{\"testenv.ferry.dev/fail\": \"true\"}"
    } else {
        "{}"
    };
    with_annotations(
        &format!(
            r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations: {pod}
    spec:
      restartPolicy: Never
      containers: [{{name: run, image: registry.example/hook:1}}]
"#
        ),
        annotations,
    )
}

/// Hooks of every type with every delete policy, and `Skip`: PreSync, Sync, PostSync run in
/// order with the resources between them; HookSucceeded hooks go once they succeed,
/// BeforeHookCreation (and no policy) hooks stay until the next run; a failing Sync hook
/// fails the sync, runs the SyncFail hook, and a HookFailed hook goes once it failed; a `Skip`
/// object is never applied.
#[tokio::test]
async fn hooks_of_every_type_with_every_delete_policy_and_skip() {
    let w = World::start("conf-hooks").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("app/cm.yaml", &configmap("resource", "x"))
        .write(
            "app/pre.yaml",
            &hook_job(
                "pre",
                &[(HOOK, "PreSync"), (DELETE_POLICY, "HookSucceeded")],
                false,
            ),
        )
        .write(
            "app/sync.yaml",
            &hook_job(
                "during",
                &[(HOOK, "Sync"), (DELETE_POLICY, "BeforeHookCreation")],
                false,
            ),
        )
        .write(
            "app/post.yaml",
            &hook_job("post", &[(HOOK, "PostSync")], false),
        )
        .write(
            "app/fail.yaml",
            &hook_job(
                "on-fail",
                &[(HOOK, "SyncFail"), (DELETE_POLICY, "HookSucceeded")],
                false,
            ),
        )
        .write(
            "app/skip.yaml",
            &with_annotations(&configmap("skipped", "x"), &[(HOOK, "Skip")]),
        );
    repo.commit("hooks of every type");
    w.apply(&application("hooks", &repo.url(), "app", ns, AUTOMATED));
    let app = w.wait_synced_healthy("hooks").await;
    let order: Vec<String> = sync_results(&app)
        .iter()
        .map(|r| {
            format!(
                "{}{}",
                r["hookType"]
                    .as_str()
                    .map(|h| format!("{h} "))
                    .unwrap_or_default(),
                r["name"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        order,
        ["PreSync pre", "resource", "Sync during", "PostSync post"],
        "{app}"
    );
    for r in sync_results(&app)
        .iter()
        .filter(|r| !r["hookType"].is_null())
    {
        assert_eq!(r["hookPhase"], "Succeeded", "{r}");
    }
    w.wait_object(&["job/pre"], "HookSucceeded: gone", |j| j.is_none())
        .await;
    assert!(
        get(&w, &["job/during"]).is_some(),
        "BeforeHookCreation stays"
    );
    assert!(
        get(&w, &["job/post"]).is_some(),
        "no policy (BeforeHookCreation) stays"
    );
    assert!(
        get(&w, &["job/on-fail"]).is_none(),
        "SyncFail runs only on failure"
    );
    assert!(
        get(&w, &["configmap/skipped"]).is_none(),
        "Skip is never applied"
    );
    assert!(resource(&app, "ConfigMap", "skipped").is_none());

    // A Sync hook that fails (HookFailed: it goes once it failed) fails the sync and runs the
    // SyncFail hook.
    repo.write(
        "app/sync.yaml",
        &hook_job(
            "during",
            &[(HOOK, "Sync"), (DELETE_POLICY, "HookFailed")],
            true,
        ),
    )
    .write("app/cm.yaml", &configmap("resource", "y"));
    let head = repo.commit("the Sync hook fails");
    let app = w
        .wait_app("hooks", "the sync failed", |a| {
            str_at(a, "/status/operationState/syncResult/revision") == Some(head.as_str())
                && str_at(a, "/status/operationState/phase") == Some("Failed")
        })
        .await;
    let results = sync_results(&app);
    let hook = |kind: &str| {
        results
            .iter()
            .find(|r| r["hookType"] == kind)
            .unwrap_or_else(|| panic!("no {kind} result: {app}"))
    };
    assert_eq!(hook("Sync")["hookPhase"], "Failed");
    assert_eq!(hook("SyncFail")["hookPhase"], "Succeeded");
    assert!(results.iter().all(|r| r["hookType"] != "PostSync"), "{app}");
    w.wait_object(&["job/during"], "HookFailed: gone", |j| j.is_none())
        .await;
    w.wait_object(&["job/on-fail"], "HookSucceeded: gone", |j| j.is_none())
        .await;
    assert!(
        conditions(&app).iter().any(|c| c.starts_with("SyncError")),
        "{}",
        summary(&app)
    );
}

// Sources as the workshop writes them ------------------------------------------------------------

/// Runs the pinned helm (from PATH) with a private HOME; panics on failure.
fn helm(home: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("helm")
        .args(args)
        .env("HOME", home)
        .output()
        .expect("running helm (scripts/install-tools.sh puts it in target/tools/bin)");
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// As the workshop's MetalLB, ingress-nginx and kube-prometheus-stack apps are written: a chart
/// from a chart repository (`chart` + `targetRevision`), its value files from a second Git
/// source (`ref: values`, `$values/...`).
#[tokio::test(flavor = "multi_thread")]
async fn a_chart_from_a_chart_repository_with_values_from_git() {
    let w = World::start("conf-helm-repo").await;
    let ns = w.ns.name();
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("lb");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: lb\nversion: 0.0.0\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("values.yaml"),
        "replicas: 1\naddressPool: 10.0.0.0/30\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/config.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  pool: {{ .Values.addressPool | quote }}\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("templates/controller.yaml"),
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-controller
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
      - name: controller
        image: "registry.example/lb:{{ .Chart.Version }}"
"#,
    )
    .unwrap();
    let served = dir.path().join("served");
    std::fs::create_dir(&served).unwrap();
    for version in ["1.0.0", "1.2.0"] {
        helm(
            dir.path(),
            &[
                "package",
                chart.to_str().unwrap(),
                "--version",
                version,
                "--destination",
                served.to_str().unwrap(),
            ],
        );
    }
    let server = ferry_testsupport::static_http::StaticServer::serve(served.clone()).await;
    helm(
        dir.path(),
        &[
            "repo",
            "index",
            served.to_str().unwrap(),
            "--url",
            &server.url,
        ],
    );

    let values = GitRepo::new();
    values.write(
        "values/lb.yaml",
        "replicas: 2\naddressPool: 192.168.56.200/29\n",
    );
    values.commit("the workshop's values");
    w.apply(&format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: metallb
spec:
  project: default
  sources:
  - repoURL: {charts}
    chart: lb
    targetRevision: 1.2.0
    helm:
      releaseName: metallb
      valueFiles:
      - $values/values/lb.yaml
  - repoURL: {values}
    targetRevision: main
    ref: values
  destination:
    server: https://kubernetes.default.svc
    namespace: {ns}
{AUTOMATED}"#,
        charts = server.url,
        values = values.url(),
    ));
    let app = w.wait_synced_healthy("metallb").await;
    assert_eq!(str_at(&app, "/status/sourceType"), Some("Helm"), "{app}");
    assert_eq!(str_at(&app, "/status/sync/revision"), Some("1.2.0"));
    let config = get(&w, &["configmap/metallb-config"]).unwrap();
    assert_eq!(config["data"]["pool"], "192.168.56.200/29");
    let controller = get(&w, &["deployment/metallb-controller"]).unwrap();
    assert_eq!(controller["spec"]["replicas"], 2);
    assert_eq!(
        controller["spec"]["template"]["spec"]["containers"][0]["image"],
        "registry.example/lb:1.2.0"
    );

    // A values commit is picked up like any commit.
    values.write(
        "values/lb.yaml",
        "replicas: 3\naddressPool: 192.168.56.200/29\n",
    );
    values.commit("three controllers");
    w.wait_object(&["deployment/metallb-controller"], "three replicas", |d| {
        d.is_some_and(|d| d["spec"]["replicas"] == 3)
    })
    .await;
    w.wait_synced_healthy("metallb").await;
}

/// Flags the operator gives ferry to let kustomize fetch remote bases over plain `http` (the
/// default allows only https and ssh).
const KUSTOMIZE_HTTP_FLAGS: &[&str] = &["--kustomize-remote-protocols", "https,ssh,http"];

/// A Kustomize overlay whose base is a remote Git URL (`http://host/org/repo.git//path?ref=v1`),
/// served by a local Git HTTP server: kustomize fetches it, the overlay's changes apply on top.
#[tokio::test(flavor = "multi_thread")]
async fn a_kustomize_app_with_a_remote_git_base() {
    let cluster = Cluster::shared();
    let ns = cluster.namespace("conf-kustomize-remote").await;
    ferry_ok(cluster.kubeconfig(), &["install", "--namespace", ns.name()]);
    let mut args = vec![
        "run",
        "--namespace",
        ns.name(),
        "--poll-interval",
        "1s",
        "--listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(KUSTOMIZE_HTTP_FLAGS);
    let controller = Controller::start_command(cluster.kubeconfig(), &args);
    let w = World { ns, controller };
    let ns = w.ns.name();

    // The shared base, tagged v1, in a repository served over HTTP (as a public one is).
    let base = GitRepo::new();
    base.write(
        "base/kustomization.yaml",
        "resources: [deployment.yaml, settings.yaml]\n",
    )
    .write(
        "base/deployment.yaml",
        &deployment("podinfo", "ghcr.io/stefanprodan/podinfo:6.7.0", 1),
    )
    .write("base/settings.yaml", &configmap("settings", "base"));
    base.commit("the base");
    base.tag("v1");
    let server =
        ferry_testsupport::git_http::serve(base.bare_dir().parent().unwrap().to_path_buf(), "", "")
            .await;
    let remote = format!("{}/repo.git//base?ref=v1", server.base_url);

    let overlay = GitRepo::new();
    overlay.write(
        "envs/prod/kustomization.yaml",
        &format!(
            "resources:\n- {remote}\nnamePrefix: prod-\nreplicas:\n- name: podinfo\n  count: 2\n"
        ),
    );
    overlay.commit("prod overlay on the remote base");
    w.apply(&application(
        "podinfo",
        &overlay.url(),
        "envs/prod",
        ns,
        AUTOMATED,
    ));
    let app = w.wait_synced_healthy("podinfo").await;
    assert_eq!(
        str_at(&app, "/status/sourceType"),
        Some("Kustomize"),
        "{app}"
    );
    let d = get(&w, &["deployment/prod-podinfo"]).unwrap();
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/stefanprodan/podinfo:6.7.0"
    );
    assert_eq!(
        get(&w, &["configmap/prod-settings"]).unwrap()["data"]["value"],
        "base"
    );
    assert!(
        tracking_id(&d).is_some_and(|t| t.starts_with("podinfo:apps/Deployment:")),
        "{d}"
    );
}

/// A resource that never stays: its owner reference names an object that does not exist, so
/// Kubernetes' garbage collector deletes it after every apply. The app is always OutOfSync;
/// self-heal tries again, but backs off between attempts (as Argo CD's self-heal backoff does)
/// instead of syncing in a tight loop, and says so.
#[tokio::test]
async fn an_always_out_of_sync_resource_does_not_make_an_endless_sync_loop() {
    let w = World::start("conf-always-oos").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let doomed = configmap("collected", "x").replacen(
        "metadata:\n",
        "metadata:\n  ownerReferences:\n  - apiVersion: v1\n    kind: ConfigMap\n    name: never-there\n    uid: 00000000-0000-0000-0000-00000000dead\n",
        1,
    );
    repo.write("app/doomed.yaml", &doomed)
        .write("app/fine.yaml", &configmap("fine", "x"));
    repo.commit("an object the garbage collector removes");
    w.apply(&application("flappy", &repo.url(), "app", ns, AUTOMATED));

    let attempts = |a: &Value| {
        a.pointer("/status/operationState/operation/sync/selfHealAttemptsCount")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    // A self-heal that finished, after at least one before it ...
    let app = w
        .wait_app("flappy", "a second self-heal finished", |a| {
            attempts(a) >= 2 && str_at(a, "/status/operationState/phase") == Some("Succeeded")
        })
        .await;
    let n = attempts(&app);
    let finished = epoch_seconds(str_at(&app, "/status/operationState/finishedAt").unwrap());
    // ... and the next one waits its back-off: 2s × 3^(n-1), not a tight loop.
    let next = w
        .wait_app("flappy", "the next self-heal", |a| attempts(a) > n)
        .await;
    assert_eq!(attempts(&next), n + 1, "{}", summary(&next));
    let started = epoch_seconds(str_at(&next, "/status/operationState/startedAt").unwrap());
    let backoff = 2 * 3_i64.pow(u32::try_from(n - 1).unwrap());
    // Timestamps have whole seconds: one second of rounding.
    assert!(
        started - finished >= backoff - 1,
        "self-heal {} started {}s after the one before, back-off {backoff}s",
        n + 1,
        started - finished
    );
    // The resource that stays is there, and the app tells the truth about the other.
    assert!(get(&w, &["configmap/fine"]).is_some());
    let app = w.app("flappy").unwrap();
    assert!(
        ["OutOfSync", "Synced"].contains(&sync_status(&app)),
        "{}",
        summary(&app)
    );
}

/// Seconds since 1970 of an RFC 3339 UTC time with whole seconds (`2026-12-02T09:27:41Z`).
fn epoch_seconds(t: &str) -> i64 {
    let n = |range: std::ops::Range<usize>| t[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + n(11..13) * 3600 + n(14..16) * 60 + n(17..19)
}
