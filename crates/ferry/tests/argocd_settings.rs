//! End-to-end tests of Argo CD settings that real repositories and installations carry: AppProject
//! sync windows, `argocd-cm` resource customizations (Lua health checks, ignoreDifferences with
//! jq paths, exclusions) and the label tracking method of Argo CD 2.x — each run with the real
//! `ferry` binary against the local control plane.

mod common;

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

    // The window is edited away: the next look syncs, and the condition goes.
    w.apply(&project("frozen", "    []"));
    let app = w.wait_synced_healthy("web").await;
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
