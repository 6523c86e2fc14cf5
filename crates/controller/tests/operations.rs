//! The app-operations module against a real kube-apiserver (no controller runs, so requested
//! operations and refresh annotations stay where the tests can see them): concurrent sync
//! requests leave exactly one operation, a request racing another change still lands, rollback
//! turns automation off first, and the waits return what the controller would have written.

use std::time::Duration;

use ferry_controller::operations::{self, OperationError, RefreshType, SyncParams, WantedStatus};
use ferry_core::application::{
    Application, HealthStatusCode, OperationPhase, REQUEST_INFO, SyncStatusCode,
};
use ferry_testsupport::{Cluster, TestNamespace};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

fn install_crds() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let crds = ferry_testsupport::repo_root().join("manifests/crds");
        let kubectl = Cluster::shared().kubectl();
        kubectl.run(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            crds.to_str().expect("utf-8 path"),
        ]);
        kubectl.run(&[
            "wait",
            "--for=condition=Established",
            "crd/applications.argoproj.io",
            "crd/appprojects.argoproj.io",
        ]);
    });
}

async fn namespace_with_app(prefix: &str, automated: bool) -> (TestNamespace, Api<Application>) {
    ferry_testsupport::install_crypto_provider();
    install_crds();
    let ns = Cluster::shared().namespace(prefix).await;
    let policy = if automated {
        "  syncPolicy: {automated: {prune: true}}\n"
    } else {
        ""
    };
    ns.kubectl().apply(&format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  \
         project: default\n  source: {{repoURL: 'https://example.test/r.git', path: .}}\n  \
         destination: {{server: https://kubernetes.default.svc, namespace: {}}}\n{policy}",
        ns.name()
    ));
    let apps: Api<Application> = ns.api();
    (ns, apps)
}

/// The request id of the app's pending operation.
fn pending_request(app: &Application) -> Option<String> {
    app.operation
        .as_ref()?
        .info
        .iter()
        .find(|i| i.name == REQUEST_INFO)
        .map(|i| i.value.clone())
}

/// Writes the status, as the controller does (the app's resourceVersion moves on).
async fn write_status(apps: &Api<Application>, status: serde_json::Value) {
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"status": status})),
    )
    .await
    .expect("status written");
}

#[tokio::test]
async fn concurrent_sync_requests_leave_exactly_one_operation() {
    let (_ns, apps) = namespace_with_app("ops-concurrent", false).await;
    // Both requests start from the same read, so both patches carry the same resourceVersion
    // and one must lose the race at the API server.
    let app = operations::get(&apps, "web").await.expect("app read");
    let first = SyncParams {
        revision: Some("one".into()),
        ..SyncParams::default()
    };
    let second = SyncParams {
        revision: Some("two".into()),
        prune: true,
        ..SyncParams::default()
    };
    let (a, b) = tokio::join!(
        operations::request_sync(&apps, &app, &first, "alice"),
        operations::request_sync(&apps, &app, &second, "bob"),
    );
    let (won, lost, revision) = match (a, b) {
        (Ok(id), Err(e)) => (id, e, "one"),
        (Err(e), Ok(id)) => (id, e, "two"),
        (a, b) => panic!("expected one request to land and one to be refused: {a:?}, {b:?}"),
    };
    assert!(
        matches!(&lost, OperationError::OperationPending { name } if name == "web"),
        "{lost:?}"
    );
    assert!(lost.to_string().contains("application web"), "{lost}");
    let now = operations::get(&apps, "web").await.expect("app read");
    assert_eq!(pending_request(&now).as_deref(), Some(won.as_str()));
    let sync = now
        .operation
        .and_then(|o| o.sync)
        .expect("a sync operation");
    assert_eq!(
        sync.revision.as_deref(),
        Some(revision),
        "the winner's request"
    );

    // A third request, from a fresh read, is refused as well and leaves the operation alone.
    let fresh = operations::get(&apps, "web").await.expect("app read");
    let third = operations::request_sync(&apps, &fresh, &SyncParams::default(), "carol").await;
    assert!(
        matches!(third, Err(OperationError::OperationPending { .. })),
        "{third:?}"
    );
    let now = operations::get(&apps, "web").await.expect("app read");
    assert_eq!(pending_request(&now).as_deref(), Some(won.as_str()));
}

#[tokio::test]
async fn a_sync_request_racing_a_status_write_still_lands() {
    let (_ns, apps) = namespace_with_app("ops-race", false).await;
    let stale = operations::get(&apps, "web").await.expect("app read");
    write_status(&apps, json!({"reconciledAt": "2026-01-01T00:00:00Z"})).await;
    let moved = operations::get(&apps, "web").await.expect("app read");
    assert_ne!(
        stale.metadata.resource_version, moved.metadata.resource_version,
        "the status write changed the resourceVersion"
    );
    let params = SyncParams {
        revision: Some("v1".into()),
        prune: true,
        dry_run: true,
        sync_options: vec!["CreateNamespace=true".into()],
    };
    let request = operations::request_sync(&apps, &stale, &params, "alice")
        .await
        .expect("the request lands after reading the app again");
    let now = operations::get(&apps, "web").await.expect("app read");
    assert_eq!(pending_request(&now).as_deref(), Some(request.as_str()));
    let op = now.operation.expect("operation set");
    assert_eq!(
        op.initiated_by.and_then(|i| i.username).as_deref(),
        Some("alice")
    );
    let sync = op.sync.expect("a sync operation");
    assert_eq!(sync.revision.as_deref(), Some("v1"));
    assert!(sync.prune && sync.dry_run);
    assert_eq!(sync.sync_options, ["CreateNamespace=true"]);
    // The status written meanwhile is still there.
    assert!(
        now.status.and_then(|s| s.reconciled_at).is_some(),
        "the status write was kept"
    );
}

#[tokio::test]
async fn rollback_turns_automation_off_then_requests_the_entry_revision() {
    let (_ns, apps) = namespace_with_app("ops-rollback", true).await;
    write_status(
        &apps,
        json!({"history": [{"id": 3, "revision": "abc123", "deployedAt": "2026-01-01T00:00:00Z"}]}),
    )
    .await;
    let app = operations::get(&apps, "web").await.expect("app read");
    let missing = operations::rollback(&apps, &app, 7, false, "alice").await;
    match missing {
        Err(OperationError::NoHistoryEntry { id: 7, entries, .. }) => assert_eq!(entries, "3"),
        other => panic!("expected no history entry 7: {other:?}"),
    }

    let done = operations::rollback(&apps, &app, 3, true, "alice")
        .await
        .expect("rollback requested");
    assert_eq!(done.revision, "abc123");
    assert!(done.automation_turned_off);
    let now = operations::get(&apps, "web").await.expect("app read");
    assert!(!now.spec.is_automated(), "automated sync is off");
    assert_eq!(
        pending_request(&now).as_deref(),
        Some(done.request.as_str())
    );
    let sync = now.operation.clone().and_then(|o| o.sync).expect("a sync");
    assert_eq!(sync.revision.as_deref(), Some("abc123"));
    assert!(sync.prune);

    // A second rollback while the first is pending is refused.
    let again = operations::rollback(&apps, &now, 3, false, "bob").await;
    assert!(
        matches!(again, Err(OperationError::OperationPending { .. })),
        "{again:?}"
    );
}

#[tokio::test]
async fn rollback_refuses_before_touching_automation_when_an_operation_is_pending() {
    let (_ns, apps) = namespace_with_app("ops-rollback-pending", true).await;
    write_status(
        &apps,
        json!({"history": [{"id": 1, "revision": "abc123", "deployedAt": "2026-01-01T00:00:00Z"}]}),
    )
    .await;
    let app = operations::get(&apps, "web").await.expect("app read");
    operations::request_sync(&apps, &app, &SyncParams::default(), "alice")
        .await
        .expect("sync requested");
    let app = operations::get(&apps, "web").await.expect("app read");
    let refused = operations::rollback(&apps, &app, 1, false, "bob").await;
    assert!(
        matches!(refused, Err(OperationError::OperationPending { .. })),
        "{refused:?}"
    );
    let now = operations::get(&apps, "web").await.expect("app read");
    assert!(now.spec.is_automated(), "automation left on");
}

#[tokio::test]
async fn refresh_sets_the_annotation_and_a_missing_app_is_not_found() {
    let (ns, apps) = namespace_with_app("ops-refresh", false).await;
    operations::request_refresh(&apps, "web", RefreshType::Hard)
        .await
        .expect("refresh requested");
    let app = operations::get(&apps, "web").await.expect("app read");
    assert_eq!(
        app.metadata
            .annotations
            .unwrap_or_default()
            .get("argocd.argoproj.io/refresh")
            .map(String::as_str),
        Some("hard")
    );
    let missing = operations::request_refresh(&apps, "nothing", RefreshType::Normal).await;
    match missing {
        Err(OperationError::NotFound { name, namespace }) => {
            assert_eq!(name, "nothing");
            assert_eq!(namespace, ns.name());
        }
        other => panic!("expected not found: {other:?}"),
    }
    let missing = operations::get(&apps, "nothing").await;
    assert!(
        matches!(missing, Err(OperationError::NotFound { .. })),
        "{missing:?}"
    );
}

#[tokio::test]
async fn waits_return_what_the_controller_wrote_or_say_what_they_last_saw() {
    let (_ns, apps) = namespace_with_app("ops-wait", false).await;
    let app = operations::get(&apps, "web").await.expect("app read");
    let request = operations::request_sync(&apps, &app, &SyncParams::default(), "alice")
        .await
        .expect("sync requested");

    // Nobody carries the operation out: the wait gives up and says so.
    let timed_out =
        operations::wait_for_operation(&apps, "web", &request, Duration::from_secs(1)).await;
    match timed_out {
        Err(OperationError::Timeout { last_seen, .. }) => {
            assert!(last_seen.contains("still pending"), "{last_seen}")
        }
        other => panic!("expected a timeout: {other:?}"),
    }

    // What the controller writes when it has finished the operation.
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({
            "operation": null,
            "status": {
                "sync": {"status": "Synced"},
                "health": {"status": "Healthy"},
                "operationState": {
                    "operation": {"sync": {}, "info": [{"name": REQUEST_INFO, "value": request}]},
                    "phase": "Failed",
                    "message": "one or more objects failed to apply",
                    "startedAt": "2026-01-01T00:00:00Z",
                },
            },
        })),
    )
    .await
    .expect("operation finished");
    let state = operations::wait_for_operation(&apps, "web", &request, Duration::from_secs(60))
        .await
        .expect("the operation's result");
    assert_eq!(state.phase, OperationPhase::Failed);
    assert_eq!(
        state.message.as_deref(),
        Some("one or more objects failed to apply")
    );
    let both = WantedStatus {
        synced: true,
        healthy: true,
        settled: false,
    };
    let status = operations::wait_for_status(&apps, "web", both, Duration::from_secs(60))
        .await
        .expect("synced and healthy");
    assert_eq!(status.sync.status, SyncStatusCode::Synced);
    assert_eq!(status.health.status, HealthStatusCode::Healthy);

    write_status(&apps, json!({"sync": {"status": "OutOfSync"}})).await;
    let timed_out = operations::wait_for_status(&apps, "web", both, Duration::from_secs(1)).await;
    match timed_out {
        Err(e @ OperationError::Timeout { .. }) => {
            let said = e.to_string();
            assert!(said.contains("web is OutOfSync and Healthy"), "{said}");
        }
        other => panic!("expected a timeout: {other:?}"),
    }
}

#[tokio::test]
async fn a_sync_request_is_not_made_when_the_app_moved_to_another_project_meanwhile() {
    let (_ns, apps) = namespace_with_app("ops-project", false).await;
    // The caller checked its permission on this read (project default).
    let checked = operations::get(&apps, "web").await.expect("app read");
    apps.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"project": "other"}})),
    )
    .await
    .expect("project changed");
    let refused = operations::request_sync(&apps, &checked, &SyncParams::default(), "alice").await;
    assert!(
        matches!(&refused, Err(OperationError::Conflict { name, .. }) if name == "web"),
        "{refused:?}"
    );
    let now = operations::get(&apps, "web").await.expect("app read");
    assert!(now.operation.is_none(), "no operation was set");
}

/// An automated sync leaves no `.operation`, but while it runs a request is refused all the
/// same (as Argo CD refuses: another operation is already in progress), so a request cannot
/// take over or cut short a sync under way.
#[tokio::test]
async fn a_request_while_an_automated_sync_runs_is_refused() {
    let (_ns, apps) = namespace_with_app("ops-running", true).await;
    write_status(
        &apps,
        json!({"operationState": {
            "operation": {"sync": {"revision": "abc"}, "initiatedBy": {"automated": true}},
            "phase": "Running",
            "syncResult": {"revision": "abc", "resources": []},
            "startedAt": "2026-01-01T00:00:00Z"
        }}),
    )
    .await;
    let app = apps.get("web").await.expect("the app");
    let refused = operations::request_sync(&apps, &app, &SyncParams::default(), "admin").await;
    assert!(
        matches!(&refused, Err(OperationError::OperationPending { name }) if name == "web"),
        "{refused:?}"
    );
    assert!(
        apps.get("web").await.expect("the app").operation.is_none(),
        "no operation was asked for"
    );

    // Once it has finished, a request goes through.
    write_status(
        &apps,
        json!({"operationState": {"phase": "Succeeded", "finishedAt": "2026-01-01T00:01:00Z"}}),
    )
    .await;
    let app = apps.get("web").await.expect("the app");
    operations::request_sync(&apps, &app, &SyncParams::default(), "admin")
        .await
        .expect("a request once nothing runs");
}
