//! End-to-end tests of Argo CD settings that real repositories and installations carry: AppProject
//! sync windows, `argocd-cm` resource customizations (Lua health checks, ignoreDifferences with
//! jq paths, exclusions) and the label tracking method of Argo CD 2.x — each run with the real
//! `ferry` binary against the local control plane.

mod common;
mod ui_support;

use common::*;
use ferry_testsupport::GitRepo;
use serde_json::Value;

/// An AppProject that permits everything, with `windows` (YAML list items, indented by 4) as its
/// sync windows.
fn project(name: &str, windows: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: {name}
spec:
  sourceRepos: ["*"]
  destinations: [{{server: "*", namespace: "*"}}]
  clusterResourceWhitelist: [{{group: "*", kind: "*"}}]
  syncWindows:
{windows}
"#
    )
}

fn in_project(manifest: &str, project: &str) -> String {
    manifest.replace("project: default", &format!("project: {project}"))
}

fn has_condition(app: &Value, prefix: &str, needles: &[&str]) -> bool {
    conditions(app)
        .iter()
        .any(|c| c.starts_with(prefix) && needles.iter().all(|n| c.contains(n)))
}

#[tokio::test]
async fn a_deny_window_holds_an_automated_sync_back_until_it_is_edited_away() {
    let w = World::start("sync-window").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("web/config.yaml", &configmap("web-config", "a"))
        .write("other/config.yaml", &configmap("other-config", "b"))
        .write("free/config.yaml", &configmap("free-config", "c"));
    repo.commit("two apps");
    // A deny window open around the clock, for `web` only.
    let deny = r#"    - kind: deny
      schedule: "* * * * *"
      duration: 24h
      applications: [web]
"#;
    w.apply(&project("frozen", deny));
    w.apply(&in_project(
        &application("web", &repo.url(), "web", ns, AUTOMATED),
        "frozen",
    ));
    w.apply(&in_project(
        &application("other", &repo.url(), "other", ns, AUTOMATED),
        "frozen",
    ));

    let app = w
        .wait_app("web", "OutOfSync, held back by the deny window", |a| {
            sync_status(a) == "OutOfSync"
                && has_condition(
                    a,
                    "SyncWindowBlocked: automated sync of web blocked by deny window syncWindows[0]",
                    &["AppProject frozen"],
                )
        })
        .await;
    assert!(app.pointer("/status/operationState").is_none(), "{app}");
    // The window applies to `web` only: `other` syncs.
    w.wait_synced_healthy("other").await;
    assert!(
        w.kubectl()
            .run(&[
                "get",
                "configmap",
                "web-config",
                "--ignore-not-found",
                "-o",
                "name"
            ])
            .trim()
            .is_empty(),
        "web-config was created through a deny window"
    );
    let shown = w.ferry(&["app", "get", "web"]);
    let out = String::from_utf8_lossy(&shown.stdout);
    assert!(
        out.contains("Sync windows:  syncWindows[0] deny \"* * * * *\" 24h (open until"),
        "{out}"
    );
    assert!(
        out.contains("Sync allowed:  no (automated sync of web blocked"),
        "{out}"
    );

    // The app's page in the UI shows the window and why nothing syncs.
    let ui = ui_support::UiServer::start(w.kubeconfig(), ns, true).await;
    let page = ui.get("/applications/web");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("id=\"sync-windows\""), "{}", page.body);
    assert!(
        page.body.contains("syncWindows[0] deny") && page.body.contains("24h (open until"),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains("automated sync of web blocked by deny window"),
        "{}",
        page.body
    );

    // A manual sync waits too (the window does not say manualSync: true), Running, as in Argo
    // CD.
    let out = w.ferry(&["app", "sync", "web", "--async"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    w.wait_app("web", "the manual sync held Running by the window", |a| {
        a.pointer("/status/operationState/phase") == Some(&Value::from("Running"))
            && a.pointer("/status/operationState/message")
                .and_then(Value::as_str)
                .is_some_and(|m| {
                    m.starts_with("Sync operation blocked by sync window: manual sync of web blocked by deny window syncWindows[0]")
                })
    })
    .await;

    // The window is edited away: the next look syncs (the waiting manual sync), and the
    // condition goes.
    w.apply(&project("frozen", "    []"));
    let app = w
        .wait_app("web", "synced by the manual sync, Healthy", |a| {
            sync_status(a) == "Synced"
                && health_status(a) == "Healthy"
                && a.pointer("/status/operationState/phase") == Some(&Value::from("Succeeded"))
        })
        .await;
    assert!(app.get("operation").is_none(), "{app}");
    assert_ne!(
        app.pointer("/status/operationState/operation/initiatedBy/automated"),
        Some(&Value::Bool(true)),
        "the sync that ran is the manual one: {app}"
    );
    assert!(
        !conditions(&app).iter().any(|c| c.starts_with("SyncWindow")),
        "{app}"
    );
    assert!(
        !w.kubectl()
            .run(&["get", "configmap", "web-config", "-o", "name"])
            .trim()
            .is_empty()
    );

    // A malformed window: a condition names the app, the project and the window; the other app
    // of another project keeps working.
    let broken = r#"    - kind: deny
      schedule: "0 25 * * *"
      duration: 1h
      applications: ["*"]
"#;
    w.apply(&project("frozen", broken));
    w.wait_app("web", "SyncWindowError naming the window", |a| {
        has_condition(
            a,
            "SyncWindowError: Application web: AppProject frozen",
            &["syncWindows[0]", "schedule \"0 25 * * *\"", "hour field"],
        )
    })
    .await;
    w.apply(&application("free", &repo.url(), "free", ns, AUTOMATED));
    w.wait_synced_healthy("free").await;
}

/// ConfigMap `argocd-cm` with `data` (YAML lines, indented by 2).
fn argocd_cm(data: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\ndata:\n{data}\n")
}

fn uid(w: &World, name: &str) -> String {
    w.kubectl()
        .run(&["get", "configmap", name, "-o", "jsonpath={.metadata.uid}"])
        .trim()
        .to_string()
}

#[tokio::test]
async fn label_tracked_resources_of_argo_cd_2_are_taken_over_without_re_creating_or_pruning_the_wrong_ones()
 {
    let w = World::start("label-tracking").await;
    let ns = w.ns.name();
    w.apply(&argocd_cm("  application.resourceTrackingMethod: label"));
    // As Argo CD 2.x left them: label-tracked objects, no tracking annotation.
    let labelled = |name: &str, app: &str, value: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  labels:\n    app.kubernetes.io/instance: {app}\ndata:\n  value: \"{value}\"\n"
        )
    };
    w.apply(&labelled("kept", "web", "old"));
    w.apply(&labelled("gone", "web", "old"));
    w.apply(&labelled("theirs", "other", "old"));
    let kept_uid = uid(&w, "kept");
    let theirs_uid = uid(&w, "theirs");

    let repo = GitRepo::new();
    repo.write("web/kept.yaml", &configmap("kept", "new"));
    repo.commit("web");
    // The Application as Argo CD left it, its status listing what it tracked (the object of the
    // other app included, as after a move between apps).
    let status = r#"status:
  resources:
    - {version: v1, kind: ConfigMap, name: kept, namespace: NS}
    - {version: v1, kind: ConfigMap, name: gone, namespace: NS}
    - {version: v1, kind: ConfigMap, name: theirs, namespace: NS}
"#
    .replace("NS", ns);
    w.apply(&format!(
        "{}{status}",
        application("web", &repo.url(), "web", ns, AUTOMATED)
    ));

    w.wait_object(&["configmap", "gone"], "gone pruned", |o| o.is_none())
        .await;
    let app = w.wait_synced_healthy("web").await;
    let kept = w
        .wait_object(&["configmap", "kept"], "kept updated from Git", |o| {
            o.is_some_and(|o| o["data"]["value"] == "new")
        })
        .await
        .unwrap();
    assert_eq!(
        kept["metadata"]["uid"],
        kept_uid.as_str(),
        "kept was re-created"
    );
    assert_eq!(
        kept["metadata"]["labels"]["app.kubernetes.io/instance"],
        "web"
    );
    assert_eq!(
        kept["metadata"]["annotations"]["argocd.argoproj.io/tracking-id"],
        format!("web:/ConfigMap:{ns}/kept")
    );
    // The other app's object stays, untouched.
    assert_eq!(uid(&w, "theirs"), theirs_uid, "{app}");
    let theirs = w
        .kubectl()
        .run(&["get", "configmap", "theirs", "-o", "json"]);
    let theirs: Value = serde_json::from_str(&theirs).unwrap();
    assert_eq!(theirs["data"]["value"], "old");

    // Git now declares the other app's object too: refused, not taken.
    repo.write("web/theirs.yaml", &configmap("theirs", "mine"));
    repo.commit("take theirs");
    w.wait_app("web", "refusing the other app's object", |a| {
        conditions(a).iter().any(|c| {
            c.starts_with("SharedResourceWarning") && c.contains("theirs is tracked by other")
        })
    })
    .await;
    let theirs = w
        .kubectl()
        .run(&["get", "configmap", "theirs", "-o", "json"]);
    let theirs: Value = serde_json::from_str(&theirs).unwrap();
    assert_eq!(theirs["data"]["value"], "old");
}

/// Removes a cluster-scoped object when dropped (declared before the [`World`], so the
/// controller has stopped by then).
struct DeleteOnDrop(&'static str, String);

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = ferry_testsupport::Cluster::shared().kubectl().try_run(&[
                "delete",
                self.0,
                &self.1,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }
}

fn resource<'a>(app: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    app["status"]["resources"]
        .as_array()?
        .iter()
        .find(|r| r["kind"] == kind && r["name"] == name)
}

#[tokio::test]
async fn a_lua_health_check_from_argocd_cm_makes_a_custom_resource_degraded_and_a_broken_one_says_so()
 {
    let group = format!("lua-{}.example", std::process::id());
    let _crd = DeleteOnDrop("customresourcedefinition", format!("widgets.{group}"));
    let w = World::start("lua-health").await;
    let ns = w.ns.name();
    let setting = format!("resource.customizations.health.{group}_Widget");
    let check = r#"
      hs = {status = "Healthy", message = "fine"}
      if obj.spec ~= nil and obj.spec.size > 5 then
        hs.status = "Degraded"
        hs.message = "size " .. obj.spec.size .. " is too big"
      end
      return hs"#;
    w.apply(&argocd_cm(&format!("  {setting}: |{check}")));
    let repo = GitRepo::new();
    repo.write(
        "widgets/crd.yaml",
        &format!(
            r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.{group}
spec:
  group: {group}
  scope: Namespaced
  names: {{plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {{type: object, x-kubernetes-preserve-unknown-fields: true}}
"#
        ),
    )
    .write(
        "widgets/gizmo.yaml",
        &format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: gizmo\nspec:\n  size: 9\n"
        ),
    )
    .write("widgets/config.yaml", &configmap("widget-config", "x"));
    repo.commit("a CRD, a widget that is too big, a ConfigMap");
    w.apply(&application(
        "widgets",
        &repo.url(),
        "widgets",
        ns,
        AUTOMATED,
    ));

    let app = w
        .wait_app("widgets", "Degraded by the Lua check", |a| {
            sync_status(a) == "Synced" && health_status(a) == "Degraded"
        })
        .await;
    let gizmo = resource(&app, "Widget", "gizmo").unwrap();
    assert_eq!(gizmo["health"]["status"], "Degraded", "{app}");
    assert_eq!(gizmo["health"]["message"], "size 9 is too big", "{app}");
    assert_eq!(
        app["status"]["health"]["message"],
        "Widget/gizmo: size 9 is too big"
    );

    // A check that never ends, for ConfigMaps: stopped; that ConfigMap's health is Unknown, a
    // condition names the app and the setting, and the widget's check still runs.
    w.apply(&argocd_cm(&format!(
        "  {setting}: |{check}\n  resource.customizations.health.ConfigMap: |\n    while true do end"
    )));
    let app = w
        .wait_app("widgets", "HealthCheckError for the endless check", |a| {
            has_condition(
                a,
                "HealthCheckError: Application widgets: the Lua health check resource.customizations.health.ConfigMap failed on ConfigMap:",
                &["widget-config", "stopped after"],
            )
        })
        .await;
    assert_eq!(
        resource(&app, "ConfigMap", "widget-config").unwrap()["health"]["status"],
        "Unknown",
        "{app}"
    );
    assert_eq!(
        resource(&app, "Widget", "gizmo").unwrap()["health"]["status"],
        "Degraded",
        "{app}"
    );

    // Fixed in Git: Healthy again, and the broken check removed: the condition goes.
    w.apply(&argocd_cm(&format!("  {setting}: |{check}")));
    repo.write(
        "widgets/gizmo.yaml",
        &format!(
            "apiVersion: {group}/v1\nkind: Widget\nmetadata:\n  name: gizmo\nspec:\n  size: 2\n"
        ),
    );
    repo.commit("a smaller widget");
    let app = w.wait_synced_healthy("widgets").await;
    assert!(
        !conditions(&app)
            .iter()
            .any(|c| c.starts_with("HealthCheckError")),
        "{app}"
    );
}

/// Patches ConfigMap `name`'s data as another field manager would, and waits until ferry has
/// compared the app again afterwards (a refresh it has answered).
async fn patch_and_refresh(w: &World, app: &str, name: &str, data: &str) {
    w.kubectl().run(&[
        "patch",
        "configmap",
        name,
        "--type=merge",
        "-p",
        &format!("{{\"data\": {data}}}"),
    ]);
    w.kubectl().run(&[
        "annotate",
        "application",
        app,
        "argocd.argoproj.io/refresh=normal",
        "--overwrite",
    ]);
    w.wait_app(app, "the refresh answered", |a| {
        a.pointer("/metadata/annotations/argocd.argoproj.io~1refresh")
            .is_none()
    })
    .await;
}

#[tokio::test]
async fn jq_path_expressions_keep_fields_out_of_drift_and_a_broken_one_is_named() {
    let w = World::start("jq-ignore").await;
    let ns = w.ns.name();
    // A customization in argocd-cm for every ConfigMap.
    w.apply(&argocd_cm(
        "  resource.customizations.ignoreDifferences.ConfigMap: |\n    jqPathExpressions:\n    - '.data | .owned_elsewhere'",
    ));
    let repo = GitRepo::new();
    repo.write(
        "app/config.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  watched: a\n  tuned_by_hand: b\n  owned_elsewhere: c\n",
    );
    repo.commit("config");
    let ignore = r#"  ignoreDifferences:
    - group: ""
      kind: ConfigMap
      jqPathExpressions:
        - '.data.tuned_by_hand'
        - '.data["not closed'
"#;
    w.apply(&format!(
        "{}{ignore}",
        application("cfg", &repo.url(), "app", ns, AUTOMATED)
    ));
    let app = w.wait_synced_healthy("cfg").await;
    // The expression that does not parse is named, with the app; the others work.
    assert!(
        has_condition(
            &app,
            "IgnoreDifferencesError: Application cfg:",
            &[
                "spec.ignoreDifferences[0].jqPathExpressions[1]",
                "not closed"
            ]
        ),
        "{app}"
    );

    // A field nothing ignores drifts, and self-heal puts it back.
    patch_and_refresh(&w, "cfg", "settings", r#"{"watched": "changed"}"#).await;
    w.wait_object(&["configmap", "settings"], "watched healed", |o| {
        o.is_some_and(|o| o["data"]["watched"] == "a")
    })
    .await;
    // The ignored ones (by the app, and by argocd-cm) do not: the app stays Synced, and the
    // changes stay.
    patch_and_refresh(
        &w,
        "cfg",
        "settings",
        r#"{"tuned_by_hand": "mine", "owned_elsewhere": "theirs"}"#,
    )
    .await;
    let app = w.wait_synced_healthy("cfg").await;
    let cm = w
        .kubectl()
        .run(&["get", "configmap", "settings", "-o", "json"]);
    let cm: Value = serde_json::from_str(&cm).unwrap();
    assert_eq!(cm["data"]["tuned_by_hand"], "mine", "{app}");
    assert_eq!(cm["data"]["owned_elsewhere"], "theirs", "{app}");
    assert_eq!(cm["data"]["watched"], "a");
}

#[tokio::test]
async fn resource_exclusions_in_argocd_cm_leave_a_kind_alone() {
    let w = World::start("exclusions").await;
    let ns = w.ns.name();
    w.apply(&argocd_cm(
        "  resource.exclusions: |\n    - apiGroups: [\"\"]\n      kinds: [Secret]\n      clusters: [\"*\"]",
    ));
    let repo = GitRepo::new();
    repo.write("app/config.yaml", &configmap("kept", "a"))
        .write(
            "app/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: left-alone\nstringData:\n  k: v\n",
        );
    repo.commit("a ConfigMap and a Secret");
    w.apply(&application("ex", &repo.url(), "app", ns, AUTOMATED));
    let app = w.wait_synced_healthy("ex").await;
    assert!(
        has_condition(
            &app,
            "ExcludedResourceWarning: 1 left alone",
            &[&format!("Secret:{ns}/left-alone (app/secret.yaml")]
        ),
        "{app}"
    );
    assert!(resource(&app, "Secret", "left-alone").is_none(), "{app}");
    assert!(resource(&app, "ConfigMap", "kept").is_some(), "{app}");
    assert!(
        w.kubectl()
            .run(&[
                "get",
                "secret",
                "left-alone",
                "--ignore-not-found",
                "-o",
                "name"
            ])
            .trim()
            .is_empty()
    );
}
