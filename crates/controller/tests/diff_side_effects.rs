//! A diff asked for by a user (UI, API, `ferry app diff`) must change nothing the controller
//! relies on: in `ferry run` the server and the controller share one [`Engine`], and a diff that
//! ran between a drift event and the reconcile it queued used to record "compared, nothing
//! changed", so that reconcile skipped the app and the drift was neither reported nor healed.
//!
//! The test drives the engine by hand (no workers), so the order is certain: sync, drift, wait
//! for the drift's watch event, diff, then reconcile — which must heal the drift.

use std::sync::Arc;
use std::time::Duration;

use ferry_controller::{Engine, EngineConfig};
use ferry_core::application::{Application, SyncStatusCode};
use ferry_testsupport::{Cluster, GitRepo, Probe, wait_until};
use kube::Api;

const STEP: Duration = Duration::from_secs(60);

fn configmap(value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: {value}\n"
    )
}

#[tokio::test]
async fn a_diff_between_drift_and_reconcile_does_not_hide_the_drift() {
    ferry_testsupport::install_crypto_provider();
    let cluster = Cluster::shared();
    let kubectl = cluster.kubectl();
    let root = ferry_testsupport::repo_root();
    for crd in [
        "applications.argoproj.io.yaml",
        "appprojects.argoproj.io.yaml",
    ] {
        let path = root.join("manifests/crds").join(crd);
        kubectl.run(&[
            "apply",
            "--server-side",
            "-f",
            path.to_str().expect("utf-8 path"),
        ]);
    }
    let ns = cluster.namespace("diff-side-effects").await;
    let name = ns.name().to_string();

    let repo = GitRepo::new();
    repo.write("app/settings.yaml", &configmap("calm"));
    repo.commit("settings");
    ns.kubectl().apply(
        "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: default\nspec:\n  \
         sourceRepos: ['*']\n  destinations: [{server: '*', namespace: '*'}]\n  \
         clusterResourceWhitelist: [{group: '*', kind: '*'}]\n",
    );
    ns.kubectl().apply(&format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: web\nspec:\n  \
         project: default\n  source: {{repoURL: '{}', path: app}}\n  \
         destination: {{server: https://kubernetes.default.svc, namespace: {name}}}\n  \
         syncPolicy: {{automated: {{prune: true, selfHeal: true}}}}\n",
        repo.url()
    ));

    let cache = tempfile::tempdir().expect("a cache directory");
    let engine = Arc::new(Engine::new(
        ns.client(),
        EngineConfig {
            poll_interval: Duration::from_secs(3600),
            per_app_concurrency: 4,
            // The test's repository is a local one.
            allow_file_repos: true,
            ..EngineConfig::new(name.clone(), cache.path().to_path_buf())
        },
    ));
    let apps: Api<Application> = ns.api();
    let live_mode = || {
        ns.kubectl().try_run(&[
            "get",
            "configmap",
            "settings",
            "-o",
            "jsonpath={.data.mode}",
        ])
    };

    // Reconcile until the app is Synced (the first reconcile syncs it, the next records it).
    wait_until(
        "the app to be synced by hand-driven reconciles",
        STEP,
        || async {
            if let Err(e) = engine.reconcile("web").await {
                return Probe::pending(format!("reconcile failed: {e}"));
            }
            let app = apps.get("web").await.expect("reading the app");
            let status = app.status.unwrap_or_default();
            match (status.sync.status, live_mode()) {
                (SyncStatusCode::Synced, Ok(mode)) if mode == "calm" => Probe::Done(()),
                (sync, mode) => Probe::pending(format!("sync {sync:?}, live mode {mode:?}")),
            }
        },
    )
    .await;
    // One more reconcile with nothing new: the engine now remembers the comparison.
    engine.reconcile("web").await.expect("a quiet reconcile");

    // Drift, and wait until the engine's watch has seen it.
    let epoch_before = engine.live_change_count("web");
    ns.kubectl().run(&[
        "patch",
        "configmap",
        "settings",
        "--type=merge",
        "-p",
        r#"{"data":{"mode":"wild"}}"#,
    ]);
    wait_until(
        "the drift's watch event to reach the engine",
        STEP,
        || async {
            let now = engine.live_change_count("web");
            if now > epoch_before {
                Probe::Done(())
            } else {
                Probe::pending(format!("change count still {now}"))
            }
        },
    )
    .await;

    // A user looks at the diff before the queued reconcile runs: it shows the drift...
    let diffs = engine.differ().diff_app("web").await.expect("the diff");
    let drifted = diffs
        .iter()
        .find(|d| d.key.kind == "ConfigMap" && d.key.name == "settings")
        .expect("the ConfigMap in the diff");
    assert_eq!(
        drifted.live.as_ref().map(|l| l["data"]["mode"].clone()),
        Some("wild".into())
    );
    assert_eq!(
        drifted.desired.as_ref().map(|d| d["data"]["mode"].clone()),
        Some("calm".into())
    );

    // ...and the reconcile that the drift queued still heals it.
    engine
        .reconcile("web")
        .await
        .expect("the reconcile after the diff");
    assert_eq!(
        live_mode().as_deref(),
        Ok("calm"),
        "the reconcile after a diff must revert the drift (selfHeal)"
    );
}
