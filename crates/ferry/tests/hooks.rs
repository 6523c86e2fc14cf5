//! End-to-end scenarios of sync phases, waves, hooks and sync options: the real `ferry` binary,
//! a real Git repository and the local control plane. Order is read from what the cluster and
//! the Application record — `status.operationState.syncResult.resources` (appended in execution
//! order), objects' uids and timestamps — never from sleeps.

mod common;

use common::*;
use ferry_testsupport::{Cluster, GitRepo, Probe, wait_until};
use serde_json::Value;

// Helpers ------------------------------------------------------------------------------------

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

fn op_phase(app: &Value) -> Option<&str> {
    str_at(app, "/status/operationState/phase")
}

fn op_message(app: &Value) -> &str {
    str_at(app, "/status/operationState/message").unwrap_or_default()
}

fn result_revision(app: &Value) -> Option<&str> {
    str_at(app, "/status/operationState/syncResult/revision")
}

/// `status.operationState.syncResult.resources`, in the order they were recorded.
fn sync_results(app: &Value) -> Vec<Value> {
    app.pointer("/status/operationState/syncResult/resources")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// One sync result as a short step: `PreSync hook Job/pre`, `ConfigMap/a`, `prune ConfigMap/b`.
fn step(r: &Value) -> String {
    let what = format!(
        "{}/{}",
        r["kind"].as_str().unwrap_or_default(),
        r["name"].as_str().unwrap_or_default()
    );
    match (r["hookType"].as_str(), r["status"].as_str()) {
        (Some(hook), _) => format!("{hook} hook {what}"),
        (None, Some("Pruned")) => format!("prune {what}"),
        _ => what,
    }
}

fn steps(app: &Value) -> Vec<String> {
    sync_results(app).iter().map(step).collect()
}

/// The result of the hook of type `hook_type` whose name starts with `name`.
fn hook_result(app: &Value, hook_type: &str, name: &str) -> Option<Value> {
    sync_results(app).into_iter().find(|r| {
        r["hookType"] == hook_type && r["name"].as_str().is_some_and(|n| n.starts_with(name))
    })
}

fn hook_phase(app: &Value, hook_type: &str, name: &str) -> Option<String> {
    hook_result(app, hook_type, name).and_then(|r| r["hookPhase"].as_str().map(str::to_string))
}

/// `kubectl get ARGS -o json` in the test's namespace; `None` when not found.
fn get(w: &World, args: &[&str]) -> Option<Value> {
    let mut all = vec!["get"];
    all.extend_from_slice(args);
    all.extend(["-o", "json", "--ignore-not-found"]);
    let out = w.kubectl().run(&all);
    if out.trim().is_empty() {
        None
    } else {
        Some(serde_json::from_str(&out).unwrap())
    }
}

fn must_get(w: &World, args: &[&str]) -> Value {
    get(w, args).unwrap_or_else(|| panic!("kubectl get {args:?}: not found"))
}

fn uid(obj: &Value) -> String {
    str_at(obj, "/metadata/uid").unwrap().to_string()
}

/// `metadata.creationTimestamp` (RFC 3339 in UTC, so strings compare as times do).
fn created(obj: &Value) -> String {
    str_at(obj, "/metadata/creationTimestamp")
        .unwrap()
        .to_string()
}

/// When a Job finished: `status.completionTime`, or for a failed Job the time of its `Failed`
/// condition.
fn completed(job: &Value) -> String {
    str_at(job, "/status/completionTime")
        .or_else(|| {
            job.pointer("/status/conditions")
                .and_then(Value::as_array)
                .and_then(|cs| {
                    cs.iter()
                        .find(|c| c["type"] == "Failed" && c["status"] == "True")
                })
                .and_then(|c| c["lastTransitionTime"].as_str())
        })
        .unwrap_or_else(|| panic!("the Job has not finished: {job}"))
        .to_string()
}

/// Whether the object is gone or on its way out.
fn gone_or_going(obj: Option<&Value>) -> bool {
    obj.is_none_or(|o| o.pointer("/metadata/deletionTimestamp").is_some())
}

/// `{"k": "v", ...}`, a YAML flow mapping.
fn flow_map(pairs: &[(&str, &str)]) -> String {
    let items: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!("\"{k}\": \"{v}\""))
        .collect();
    format!("{{{}}}", items.join(", "))
}

/// A manifest with annotations added to its (first, top-level) `metadata`.
fn annotated(manifest: &str, annotations: &[(&str, &str)]) -> String {
    manifest.replacen(
        "metadata:\n",
        &format!("metadata:\n  annotations: {}\n", flow_map(annotations)),
        1,
    )
}

/// A Job that fails fast (`backoffLimit: 0`), with annotations on itself and on its pod.
fn job(name: &str, annotations: &[(&str, &str)], pod_annotations: &[(&str, &str)]) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
  annotations: {}
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations: {}
    spec:
      restartPolicy: Never
      containers: [{{name: run, image: registry.example/hook:1}}]
"#,
        flow_map(annotations),
        flow_map(pod_annotations)
    )
}

const HOOK: &str = "argocd.argoproj.io/hook";
const DELETE_POLICY: &str = "argocd.argoproj.io/hook-delete-policy";
const WAVE: &str = "argocd.argoproj.io/sync-wave";
const SYNC_OPTIONS: &str = "argocd.argoproj.io/sync-options";
const FAIL: (&str, &str) = ("testenv.ferry.dev/fail", "true");

/// An automated policy (prune, selfHeal) with app-level sync options.
fn automated_with(options: &[&str]) -> String {
    let mut spec = AUTOMATED.to_string();
    spec.push_str("    syncOptions:\n");
    for o in options {
        spec.push_str(&format!("    - {o}\n"));
    }
    spec
}

/// Waits for the app's operation to end in `phase` for `revision`.
async fn wait_operation(w: &World, app: &str, phase: &str, revision: &str) -> Value {
    w.wait_app(app, &format!("operation {phase} at {revision}"), |a| {
        op_phase(a) == Some(phase) && result_revision(a) == Some(revision)
    })
    .await
}

/// Waits for a successful sync of `revision` that left the app Synced and Healthy.
async fn wait_synced_at(w: &World, app: &str, revision: &str) -> Value {
    w.wait_app(
        app,
        &format!("Succeeded, Synced and Healthy at {revision}"),
        |a| {
            op_phase(a) == Some("Succeeded")
                && result_revision(a) == Some(revision)
                && sync_status(a) == "Synced"
                && health_status(a) == "Healthy"
        },
    )
    .await
}

/// A PreSync hook Job named `name` that runs for `run_for` (e.g. `600s`).
fn slow_pre_sync_hook(name: &str, run_for: &str) -> String {
    job(
        name,
        &[(HOOK, "PreSync")],
        &[("testenv.ferry.dev/run-for", run_for)],
    )
}

/// Waits until the sync of `app` is Running and its hook Job `job` exists.
async fn wait_in_hook(w: &World, app: &str, job: &str) {
    w.wait_app(app, &format!("its sync waiting in hook {job}"), |a| {
        op_phase(a) == Some("Running") && get(w, &[&format!("job/{job}")]).is_some()
    })
    .await;
}

/// Cluster-scoped objects a test creates outside its namespace, deleted when dropped (kept when
/// the test fails or `FERRY_TEST_KEEP=1`). Declare it before the [`World`], so that it is
/// dropped after the controller has stopped.
#[derive(Default)]
struct ClusterObjects(Vec<(String, String)>);

impl ClusterObjects {
    fn add(&mut self, kind: &str, name: &str) {
        self.0.push((kind.to_string(), name.to_string()));
    }
}

impl Drop for ClusterObjects {
    fn drop(&mut self) {
        let keep =
            std::thread::panicking() || std::env::var("FERRY_TEST_KEEP").is_ok_and(|v| v == "1");
        for (kind, name) in &self.0 {
            if keep {
                eprintln!("keeping {kind} {name} for inspection");
                continue;
            }
            let _ = Cluster::shared().kubectl().try_run(&[
                "delete",
                kind,
                name,
                "--ignore-not-found",
                "--wait=false",
            ]);
        }
    }
}

// 1. Order -----------------------------------------------------------------------------------

#[tokio::test]
async fn phases_waves_and_hooks_run_in_argo_cd_order() {
    let w = World::start("hook-order").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("app/pre.yaml", &job("pre", &[(HOOK, "PreSync")], &[]))
        .write(
            "app/early.yaml",
            &annotated(&configmap("early", "1"), &[(WAVE, "-1")]),
        )
        .write(
            "app/web.yaml",
            &annotated(
                &deployment("web", "registry.example/web:1.0", 1),
                &[(WAVE, "0")],
            ),
        )
        .write(
            "app/late.yaml",
            &annotated(&configmap("late", "1"), &[(WAVE, "1")]),
        )
        .write(
            "app/sync-hook.yaml",
            &job("sync-hook", &[(HOOK, "Sync"), (WAVE, "0")], &[]),
        )
        .write("app/post.yaml", &job("post", &[(HOOK, "PostSync")], &[]));
    let sha = repo.commit("hooks in every phase, three waves");
    w.apply(&application("ordered", &repo.url(), "app", ns, AUTOMATED));
    let app = wait_synced_at(&w, "ordered", &sha).await;

    assert_eq!(
        steps(&app),
        [
            "PreSync hook Job/pre",
            "ConfigMap/early",
            "Deployment/web",
            "Sync hook Job/sync-hook",
            "ConfigMap/late",
            "PostSync hook Job/post",
        ],
        "{app}"
    );
    for (hook_type, name) in [
        ("PreSync", "pre"),
        ("Sync", "sync-hook"),
        ("PostSync", "post"),
    ] {
        assert_eq!(
            hook_phase(&app, hook_type, name).as_deref(),
            Some("Succeeded"),
            "{hook_type} hook {name}: {app}"
        );
    }

    // The cluster agrees: each step started after the one before had finished.
    let pre = must_get(&w, &["job/pre"]);
    let early = must_get(&w, &["configmap/early"]);
    let web = must_get(&w, &["deployment/web"]);
    let sync_hook = must_get(&w, &["job/sync-hook"]);
    let late = must_get(&w, &["configmap/late"]);
    let post = must_get(&w, &["job/post"]);
    assert!(
        completed(&pre) <= created(&early),
        "the PreSync hook completed ({}) before wave -1 was applied ({})",
        completed(&pre),
        created(&early)
    );
    assert!(created(&early) <= created(&web));
    assert!(
        created(&web) <= created(&sync_hook),
        "wave 0's Sync hook comes after wave 0's resources"
    );
    assert!(
        completed(&sync_hook) <= created(&late),
        "wave 1 ({}) starts after wave 0's Sync hook completed ({})",
        created(&late),
        completed(&sync_hook)
    );
    let available = web
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c["type"] == "Available" && c["status"] == "True")
        })
        .and_then(|c| c["lastTransitionTime"].as_str())
        .unwrap_or_else(|| panic!("the Deployment is Available: {web}"))
        .to_string();
    assert!(
        available <= created(&late),
        "wave 1 ({}) waits for wave 0 to be healthy ({available})",
        created(&late)
    );
    assert!(
        available <= created(&post) && created(&late) <= created(&post),
        "the PostSync hook ({}) runs once the Deployment is Available ({available}) and the last wave is applied ({})",
        created(&post),
        created(&late)
    );
}

// 2. A failing PreSync hook ------------------------------------------------------------------

#[tokio::test]
async fn a_failing_pre_sync_hook_fails_the_sync_and_runs_the_sync_fail_hooks() {
    let w = World::start("hook-presync-fails").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "app/pre.yaml",
        &job("pre-fails", &[(HOOK, "PreSync")], &[FAIL]),
    )
    .write("app/config.yaml", &configmap("app-config", "1"))
    .write(
        "app/web.yaml",
        &deployment("web", "registry.example/web:1.0", 1),
    )
    .write(
        "app/on-fail.yaml",
        &annotated(&configmap("sync-failed", "1"), &[(HOOK, "SyncFail")]),
    )
    .write(
        "app/notify.yaml",
        &job("notify", &[(HOOK, "SyncFail")], &[]),
    );
    let sha = repo.commit("a PreSync hook that fails");
    w.apply(&application("failing", &repo.url(), "app", ns, AUTOMATED));
    let app = wait_operation(&w, "failing", "Failed", &sha).await;

    let message = op_message(&app);
    assert!(
        message.contains("pre-fails"),
        "the message names the hook: {message}"
    );
    let pre = hook_result(&app, "PreSync", "pre-fails").unwrap_or_else(|| panic!("{app}"));
    assert_eq!(pre["hookPhase"], "Failed", "{app}");
    assert_eq!(pre["status"], "SyncFailed", "{app}");

    // Nothing of the Sync phase was applied.
    assert!(
        get(&w, &["configmap/app-config"]).is_none(),
        "the Sync phase must not run after a failed PreSync hook"
    );
    assert!(get(&w, &["deployment/web"]).is_none());
    let sync_phase: Vec<String> = sync_results(&app)
        .iter()
        .filter(|r| r["syncPhase"] == "Sync")
        .map(step)
        .collect();
    assert!(sync_phase.is_empty(), "{sync_phase:?}");

    // The SyncFail hooks ran, after the failure.
    assert!(get(&w, &["configmap/sync-failed"]).is_some(), "{app}");
    let notify = must_get(&w, &["job/notify"]);
    assert!(completed(&must_get(&w, &["job/pre-fails"])) <= created(&notify));
    let order = steps(&app);
    let at = |s: &str| {
        order
            .iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("{s} in {order:?}"))
    };
    assert!(at("PreSync hook Job/pre-fails") < at("SyncFail hook ConfigMap/sync-failed"));
    assert!(at("PreSync hook Job/pre-fails") < at("SyncFail hook Job/notify"));
    assert!(
        conditions(&app).iter().any(|c| c.starts_with("SyncError")),
        "{}",
        summary(&app)
    );
}

// 3. Delete policies -------------------------------------------------------------------------

#[tokio::test]
async fn hook_delete_policies_decide_when_hooks_go() {
    let w = World::start("hook-delete-policy").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "ok/gone.yaml",
        &job(
            "gone-on-success",
            &[(HOOK, "PreSync"), (DELETE_POLICY, "HookSucceeded")],
            &[],
        ),
    )
    .write("ok/stays.yaml", &job("stays", &[(HOOK, "PreSync")], &[]))
    .write("ok/config.yaml", &configmap("config", "1"))
    .write(
        "failing/gone.yaml",
        &job(
            "gone-on-failure",
            &[(HOOK, "PreSync"), (DELETE_POLICY, "HookFailed")],
            &[FAIL],
        ),
    )
    .write("failing/config.yaml", &configmap("never", "1"));
    let first = repo.commit("hooks with delete policies");
    w.apply(&application("policies", &repo.url(), "ok", ns, AUTOMATED));
    w.apply(&application(
        "failing",
        &repo.url(),
        "failing",
        ns,
        AUTOMATED,
    ));

    // HookSucceeded: gone once the sync is done.
    let app = wait_synced_at(&w, "policies", &first).await;
    assert_eq!(
        hook_phase(&app, "PreSync", "gone-on-success").as_deref(),
        Some("Succeeded"),
        "{app}"
    );
    assert!(
        gone_or_going(get(&w, &["job/gone-on-success"]).as_ref()),
        "HookSucceeded: the hook is deleted when it succeeded"
    );
    w.wait_object(&["job/gone-on-success"], "gone-on-success deleted", |o| {
        o.is_none()
    })
    .await;

    // BeforeHookCreation (the default): the Job stays until the next sync replaces it.
    assert_eq!(
        hook_phase(&app, "PreSync", "stays").as_deref(),
        Some("Succeeded")
    );
    let stays = must_get(&w, &["job/stays"]);
    assert!(stays.pointer("/metadata/deletionTimestamp").is_none());
    let first_uid = uid(&stays);

    repo.write("ok/config.yaml", &configmap("config", "2"));
    let second = repo.commit("a second sync");
    let app = wait_synced_at(&w, "policies", &second).await;
    assert_eq!(
        hook_phase(&app, "PreSync", "stays").as_deref(),
        Some("Succeeded"),
        "{app}"
    );
    let stays = must_get(&w, &["job/stays"]);
    assert_ne!(
        uid(&stays),
        first_uid,
        "the second sync replaced the hook with a new Job"
    );
    assert!(stays.pointer("/metadata/deletionTimestamp").is_none());
    assert!(gone_or_going(get(&w, &["job/gone-on-success"]).as_ref()));

    // HookFailed: gone once it failed.
    let failed = wait_operation(&w, "failing", "Failed", &second).await;
    assert_eq!(
        hook_phase(&failed, "PreSync", "gone-on-failure").as_deref(),
        Some("Failed"),
        "{failed}"
    );
    assert!(
        gone_or_going(get(&w, &["job/gone-on-failure"]).as_ref()),
        "HookFailed: the hook is deleted when it failed"
    );
    w.wait_object(&["job/gone-on-failure"], "gone-on-failure deleted", |o| {
        o.is_none()
    })
    .await;
    assert!(get(&w, &["configmap/never"]).is_none());
}

// 4. generateName ----------------------------------------------------------------------------

#[tokio::test]
async fn generate_name_hooks_get_a_fresh_job_per_sync() {
    let w = World::start("hook-generate-name").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let hook = job("gen-hook-", &[(HOOK, "PreSync")], &[])
        .replace("  name: gen-hook-\n", "  generateName: gen-hook-\n");
    repo.write("app/hook.yaml", &hook)
        .write("app/config.yaml", &configmap("config", "1"));
    let first = repo.commit("a generateName hook");
    w.apply(&application("gen", &repo.url(), "app", ns, AUTOMATED));
    let app = wait_synced_at(&w, "gen", &first).await;
    let r1 = hook_result(&app, "PreSync", "gen-hook-").unwrap_or_else(|| panic!("{app}"));
    assert_eq!(r1["hookPhase"], "Succeeded", "{app}");
    let n1 = r1["name"].as_str().unwrap().to_string();
    assert!(n1.len() > "gen-hook-".len(), "a generated name: {n1}");
    let job1 = must_get(&w, &["job", &n1]);

    repo.write("app/config.yaml", &configmap("config", "2"));
    let second = repo.commit("a second sync");
    let app = wait_synced_at(&w, "gen", &second).await;
    let r2 = hook_result(&app, "PreSync", "gen-hook-").unwrap_or_else(|| panic!("{app}"));
    assert_eq!(r2["hookPhase"], "Succeeded", "{app}");
    let n2 = r2["name"].as_str().unwrap().to_string();
    assert_ne!(n1, n2, "each sync creates its own Job");
    assert!(n2.starts_with("gen-hook-") && n2.len() > "gen-hook-".len());
    let job2 = must_get(&w, &["job", &n2]);
    assert_ne!(uid(&job1), uid(&job2));
    assert!(completed(&job1) <= created(&job2));

    let mut jobs: Vec<String> = w
        .kubectl()
        .run(&["get", "jobs", "-o", "name"])
        .lines()
        .filter_map(|l| l.strip_prefix("job.batch/"))
        .filter(|n| n.starts_with("gen-hook-"))
        .map(str::to_string)
        .collect();
    jobs.sort();
    let mut expected = vec![n1, n2];
    expected.sort();
    assert_eq!(jobs, expected, "one Job per sync, and no more");
}

// 5. Restart safety --------------------------------------------------------------------------

/// Waits until a sync is running and its PreSync hook `pre` is recorded as Succeeded; kills the
/// controller there, restarts it, and checks that the sync finishes without running `pre` again.
async fn restart_after_the_pre_sync_hook(w: &mut World, app: &str, revision: &str) -> Value {
    let running = w
        .wait_app(app, "a sync running, its PreSync hook done", |a| {
            op_phase(a) == Some("Running")
                && hook_phase(a, "PreSync", "pre").as_deref() == Some("Succeeded")
        })
        .await;
    let pre_uid = uid(&must_get(w, &["job/pre"]));
    w.controller.kill();
    let still = w.app(app).unwrap();
    assert_eq!(
        op_phase(&still),
        Some("Running"),
        "killed in the middle of the sync: {}",
        summary(&still)
    );
    w.controller.restart();

    let done = wait_synced_at(w, app, revision).await;
    assert_eq!(
        uid(&must_get(w, &["job/pre"])),
        pre_uid,
        "the PreSync hook that had succeeded was not run again; before the kill: {running}\nafter: {done}"
    );
    assert_eq!(
        hook_phase(&done, "PreSync", "pre").as_deref(),
        Some("Succeeded"),
        "{done}"
    );
    done
}

#[tokio::test]
async fn a_restart_after_a_pre_sync_hook_does_not_run_it_again_wave_job() {
    let mut w = World::start("hook-restart-wave").await;
    let ns = w.ns.name().to_string();
    let repo = GitRepo::new();
    // Wave 0 holds a Job that runs 5s; wave 1 waits for it.
    repo.write("app/pre.yaml", &job("pre", &[(HOOK, "PreSync")], &[]))
        .write(
            "app/slow.yaml",
            &job("slow", &[], &[("testenv.ferry.dev/run-for", "5s")]),
        )
        .write(
            "app/after.yaml",
            &annotated(&configmap("after", "1"), &[(WAVE, "1")]),
        );
    let sha = repo.commit("a PreSync hook, a slow wave 0, wave 1");
    w.apply(&application(
        "restarted",
        &repo.url(),
        "app",
        &ns,
        AUTOMATED,
    ));
    let app = restart_after_the_pre_sync_hook(&mut w, "restarted", &sha).await;
    let slow = must_get(&w, &["job/slow"]);
    let after = must_get(&w, &["configmap/after"]);
    assert!(completed(&slow) <= created(&after), "{app}");
}

#[tokio::test]
async fn a_restart_after_a_pre_sync_hook_does_not_run_it_again_sync_hook() {
    let mut w = World::start("hook-restart-hook").await;
    let ns = w.ns.name().to_string();
    let repo = GitRepo::new();
    // The last step of the sync is a Sync hook that runs 5s: when ferry is killed, every
    // resource is already applied, and only the operation says the sync is not done.
    repo.write("app/pre.yaml", &job("pre", &[(HOOK, "PreSync")], &[]))
        .write("app/config.yaml", &configmap("config", "1"))
        .write(
            "app/slow.yaml",
            &job(
                "slow-hook",
                &[(HOOK, "Sync")],
                &[("testenv.ferry.dev/run-for", "5s")],
            ),
        );
    let sha = repo.commit("a PreSync hook, then a slow Sync hook");
    w.apply(&application(
        "restarted",
        &repo.url(),
        "app",
        &ns,
        AUTOMATED,
    ));
    let app = restart_after_the_pre_sync_hook(&mut w, "restarted", &sha).await;
    assert_eq!(
        hook_phase(&app, "Sync", "slow-hook").as_deref(),
        Some("Succeeded"),
        "{app}"
    );
    assert!(
        must_get(&w, &["job/slow-hook"])
            .pointer("/status/completionTime")
            .is_some()
    );
}

// 6. Sync options ----------------------------------------------------------------------------

#[tokio::test]
async fn prune_last_prunes_after_the_post_sync_hooks() {
    let w = World::start("prune-last").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("app/keep.yaml", &configmap("keep", "1"))
        .write("app/remove.yaml", &configmap("remove-me", "1"))
        .write("app/post.yaml", &job("post", &[(HOOK, "PostSync")], &[]));
    let first = repo.commit("two configmaps and a PostSync hook");
    w.apply(&application(
        "last",
        &repo.url(),
        "app",
        ns,
        &automated_with(&["PruneLast=true"]),
    ));
    wait_synced_at(&w, "last", &first).await;

    repo.remove("app/remove.yaml");
    let second = repo.commit("drop remove-me");
    let app = wait_synced_at(&w, "last", &second).await;
    let order = steps(&app);
    let post = order
        .iter()
        .position(|s| s == "PostSync hook Job/post")
        .unwrap_or_else(|| panic!("{order:?}"));
    let pruned = order
        .iter()
        .position(|s| s == "prune ConfigMap/remove-me")
        .unwrap_or_else(|| panic!("{order:?}"));
    assert!(
        pruned > post,
        "PruneLast: the prune comes after PostSync: {order:?}"
    );
    assert!(get(&w, &["configmap/remove-me"]).is_none());
}

#[tokio::test]
async fn prune_propagation_policy_orphan_leaves_the_replica_set() {
    let w = World::start("prune-orphan").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "app/web.yaml",
        &deployment("web", "registry.example/web:1.0", 1),
    )
    .write("app/config.yaml", &configmap("config", "1"));
    let first = repo.commit("a deployment");
    w.apply(&application(
        "orphans",
        &repo.url(),
        "app",
        ns,
        &automated_with(&["PrunePropagationPolicy=orphan"]),
    ));
    wait_synced_at(&w, "orphans", &first).await;
    let web = must_get(&w, &["deployment/web"]);
    let rs = must_get(&w, &["replicasets", "-l", "app=web"]);
    let rs = rs["items"].as_array().unwrap();
    assert_eq!(rs.len(), 1, "{rs:?}");
    let rs_name = str_at(&rs[0], "/metadata/name").unwrap().to_string();
    let rs_uid = uid(&rs[0]);
    assert_eq!(
        rs[0].pointer("/metadata/ownerReferences/0/uid"),
        Some(&Value::from(uid(&web)))
    );

    repo.remove("app/web.yaml");
    let second = repo.commit("drop the deployment");
    let app = wait_operation(&w, "orphans", "Succeeded", &second).await;
    assert!(
        steps(&app).contains(&"prune Deployment/web".to_string()),
        "{app}"
    );
    w.wait_object(&["deployment/web"], "the Deployment pruned", |o| {
        o.is_none()
    })
    .await;
    // Orphaned: the ReplicaSet stays, without its owner. (Background or foreground deletion
    // would have the garbage collector delete it instead.)
    let orphan = w
        .wait_object(&["replicaset", &rs_name], "the ReplicaSet orphaned", |o| {
            o.is_some_and(|o| {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty)
            })
        })
        .await
        .unwrap();
    assert_eq!(uid(&orphan), rs_uid);
    assert!(orphan.pointer("/metadata/deletionTimestamp").is_none());
}

#[tokio::test]
async fn replace_updates_the_object_instead_of_applying_it() {
    let w = World::start("replace").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let replaced =
        |v: &str| annotated(&configmap("replaced", v), &[(SYNC_OPTIONS, "Replace=true")]);
    repo.write("app/replaced.yaml", &replaced("1"))
        .write("app/applied.yaml", &configmap("applied", "1"));
    let first = repo.commit("Replace=true on one configmap");
    w.apply(&application("rep", &repo.url(), "app", ns, AUTOMATED));
    wait_synced_at(&w, "rep", &first).await;
    repo.write("app/replaced.yaml", &replaced("2"))
        .write("app/applied.yaml", &configmap("applied", "2"));
    let second = repo.commit("change both");
    wait_synced_at(&w, "rep", &second).await;

    let managers = |obj: &Value| -> Vec<(String, String)> {
        obj.pointer("/metadata/managedFields")
            .and_then(Value::as_array)
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["manager"].as_str().unwrap_or_default().to_string(),
                    m["operation"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let cm = must_get(&w, &["configmap/replaced", "--show-managed-fields"]);
    assert_eq!(str_at(&cm, "/data/value"), Some("2"));
    let replaced_managers = managers(&cm);
    assert!(
        replaced_managers.contains(&("ferry".into(), "Update".into())),
        "{replaced_managers:?}"
    );
    assert!(
        !replaced_managers.contains(&("ferry".into(), "Apply".into())),
        "Replace=true: no server-side apply: {replaced_managers:?}"
    );
    // The other one is applied as usual.
    let applied = must_get(&w, &["configmap/applied", "--show-managed-fields"]);
    assert_eq!(str_at(&applied, "/data/value"), Some("2"));
    assert!(
        managers(&applied).contains(&("ferry".into(), "Apply".into())),
        "{:?}",
        managers(&applied)
    );
}

/// A ConfigMap with a field the API server does not know (`extraData`, a typo of `data`).
fn configmap_with_unknown_field(name: &str) -> String {
    format!("{}extraData:\n  oops: \"1\"\n", configmap(name, "1"))
}

#[tokio::test]
async fn validate_false_lets_an_object_with_an_unknown_field_sync() {
    // Under server-side apply the API server refuses unknown fields whatever `fieldValidation`
    // says ("failed to create typed patch object ...: .extraData: field not declared in
    // schema"); Argo CD's `Validate=false` (kubectl apply --validate=false) drops them.
    let w = World::start("validate-false").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "lenient/c.yaml",
        &annotated(
            &configmap_with_unknown_field("lenient"),
            &[(SYNC_OPTIONS, "Validate=false")],
        ),
    )
    .write("strict/c.yaml", &configmap_with_unknown_field("strict"));
    let sha = repo.commit("configmaps with an unknown field");
    w.apply(&application(
        "lenient",
        &repo.url(),
        "lenient",
        ns,
        AUTOMATED,
    ));
    w.apply(&application("strict", &repo.url(), "strict", ns, AUTOMATED));

    let strict = wait_operation(&w, "strict", "Failed", &sha).await;
    assert!(
        op_message(&strict).contains("extraData"),
        "the failure names the unknown field: {}",
        op_message(&strict)
    );
    assert!(get(&w, &["configmap/strict"]).is_none());

    let lenient = w
        .wait_app("lenient", "the sync finished", |a| {
            result_revision(a) == Some(sha.as_str())
                && matches!(op_phase(a), Some("Succeeded" | "Failed" | "Error"))
        })
        .await;
    assert_eq!(
        op_phase(&lenient),
        Some("Succeeded"),
        "Validate=false: {}",
        op_message(&lenient)
    );
    let cm = must_get(&w, &["configmap/lenient"]);
    assert_eq!(str_at(&cm, "/data/value"), Some("1"));
    assert!(cm.get("extraData").is_none(), "{cm}");
}

#[tokio::test]
async fn create_namespace_sets_managed_namespace_metadata() {
    let mut cleanup = ClusterObjects::default();
    let w = World::start("managed-ns-metadata").await;
    let ns = w.ns.name();
    let dest = format!("{ns}-managed");
    cleanup.add("namespace", &dest);
    let repo = GitRepo::new();
    repo.write("app/c.yaml", &configmap("inside", "1"));
    let sha = repo.commit("a configmap");
    let spec = format!(
        "{}    managedNamespaceMetadata:\n      labels:\n        team: ferry-hooks\n      annotations:\n        example.com/owner: hooks-test\n",
        automated_with(&["CreateNamespace=true"])
    );
    w.apply(&application("managed", &repo.url(), "app", &dest, &spec));
    wait_synced_at(&w, "managed", &sha).await;
    let namespace = must_get(&w, &["namespace", &dest]);
    assert_eq!(
        str_at(&namespace, "/metadata/labels/team"),
        Some("ferry-hooks"),
        "{namespace}"
    );
    assert_eq!(
        str_at(&namespace, "/metadata/annotations/example.com~1owner"),
        Some("hooks-test"),
        "{namespace}"
    );
    assert!(get(&w, &["configmap/inside", "-n", &dest]).is_some());
}

#[tokio::test]
async fn delete_false_keeps_a_resource_when_its_app_is_deleted() {
    let w = World::start("delete-false").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("app/goes.yaml", &configmap("goes", "1")).write(
        "app/stays.yaml",
        &annotated(&configmap("stays", "1"), &[(SYNC_OPTIONS, "Delete=false")]),
    );
    let sha = repo.commit("two configmaps");
    let manifest = application("doomed", &repo.url(), "app", ns, AUTOMATED).replace(
        "metadata:\n  name: doomed\n",
        "metadata:\n  name: doomed\n  finalizers:\n  - resources-finalizer.argocd.argoproj.io\n",
    );
    w.apply(&manifest);
    wait_synced_at(&w, "doomed", &sha).await;
    let stays_uid = uid(&must_get(&w, &["configmap/stays"]));

    w.kubectl()
        .run(&["delete", "application", "doomed", "--wait=false"]);
    w.wait_object(&["application/doomed"], "the app deleted", |o| o.is_none())
        .await;
    assert!(
        get(&w, &["configmap/goes"])
            .is_none_or(|o| o.pointer("/metadata/deletionTimestamp").is_some()),
        "the cascade deletes the other resource"
    );
    let stays = must_get(&w, &["configmap/stays"]);
    assert_eq!(uid(&stays), stays_uid);
    assert!(
        stays.pointer("/metadata/deletionTimestamp").is_none(),
        "Delete=false: it outlives its app"
    );
}

#[tokio::test]
async fn apply_out_of_sync_only_applies_just_the_drifted_object() {
    let w = World::start("apply-out-of-sync-only").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("app/one.yaml", &configmap("one", "1"))
        .write("app/two.yaml", &configmap("two", "2"));
    let sha = repo.commit("two configmaps");
    w.apply(&application(
        "selective",
        &repo.url(),
        "app",
        ns,
        &automated_with(&["ApplyOutOfSyncOnly=true"]),
    ));
    let app = wait_synced_at(&w, "selective", &sha).await;
    let mut first: Vec<String> = steps(&app);
    first.sort();
    assert_eq!(first, ["ConfigMap/one", "ConfigMap/two"]);
    let one_version = str_at(
        &must_get(&w, &["configmap/one"]),
        "/metadata/resourceVersion",
    )
    .unwrap()
    .to_string();

    w.kubectl().run(&[
        "patch",
        "configmap",
        "two",
        "--type",
        "merge",
        "-p",
        r#"{"data":{"value":"drifted"}}"#,
    ]);
    // Self-heal syncs again; the sync is recorded as a second history entry.
    let app = w
        .wait_app("selective", "a second sync, Succeeded and Synced", |a| {
            a.pointer("/status/history/1").is_some()
                && op_phase(a) == Some("Succeeded")
                && sync_status(a) == "Synced"
        })
        .await;
    assert_eq!(steps(&app), ["ConfigMap/two"], "{app}");
    assert_eq!(
        str_at(&must_get(&w, &["configmap/two"]), "/data/value"),
        Some("2")
    );
    assert_eq!(
        str_at(
            &must_get(&w, &["configmap/one"]),
            "/metadata/resourceVersion"
        ),
        Some(one_version.as_str()),
        "the object in sync was not touched"
    );
}

#[tokio::test]
async fn respect_ignore_differences_keeps_the_live_replicas_on_sync() {
    let w = World::start("respect-ignore-differences").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write(
        "app/web.yaml",
        &deployment("web", "registry.example/web:1.0", 2),
    );
    let first = repo.commit("web 1.0");
    let spec = format!(
        "  ignoreDifferences:\n  - group: apps\n    kind: Deployment\n    jsonPointers: [/spec/replicas]\n{}",
        automated_with(&["RespectIgnoreDifferences=true"])
    );
    w.apply(&application("respect", &repo.url(), "app", ns, &spec));
    wait_synced_at(&w, "respect", &first).await;

    w.kubectl()
        .run(&["scale", "deployment/web", "--replicas=5"]);
    repo.write(
        "app/web.yaml",
        &deployment("web", "registry.example/web:1.1", 2),
    );
    let second = repo.commit("web 1.1");
    let app = wait_synced_at(&w, "respect", &second).await;
    assert!(steps(&app).contains(&"Deployment/web".to_string()), "{app}");
    let web = must_get(&w, &["deployment/web"]);
    assert_eq!(
        str_at(&web, "/spec/template/spec/containers/0/image"),
        Some("registry.example/web:1.1")
    );
    assert_eq!(
        web.pointer("/spec/replicas").and_then(Value::as_i64),
        Some(5),
        "RespectIgnoreDifferences: the sync keeps the scaled replicas"
    );
}

/// PreDelete and PostDelete hooks, as Argo CD runs them when an app with the resources
/// finalizer is deleted: not during syncs; PreDelete first, and while it fails the resources
/// stay (with a DeletionError); then the resources go, then PostDelete runs, then the app.
#[tokio::test]
async fn delete_hooks_run_around_the_deletion_of_an_app() {
    let w = World::start("delete-hooks").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let pre = |pod: &[(&str, &str)]| job("pre-delete", &[(HOOK, "PreDelete")], pod);
    repo.write("app/cm.yaml", &configmap("keep-until-pre-delete", "x"))
        .write("app/pre.yaml", &pre(&[FAIL]))
        .write(
            "app/post.yaml",
            &job("post-delete", &[(HOOK, "PostDelete")], &[]),
        );
    repo.commit("an app with delete hooks");
    let manifest = application("doomed", &repo.url(), "app", ns, AUTOMATED).replacen(
        "metadata:\n  name: doomed\n",
        "metadata:\n  name: doomed\n  finalizers:\n  - resources-finalizer.argocd.argoproj.io\n",
        1,
    );
    w.apply(&manifest);
    let app = w.wait_synced_healthy("doomed").await;
    // Delete hooks are neither resources nor sync hooks.
    assert!(
        app["status"]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["kind"] == "ConfigMap"),
        "{app}"
    );
    assert!(get(&w, &["job/pre-delete"]).is_none());
    assert!(get(&w, &["job/post-delete"]).is_none());
    // As Argo CD does, the app gets the finalizers of its delete hooks.
    let app = w
        .wait_app("doomed", "the delete-hook finalizers", |a| {
            let finalizers = a["metadata"]["finalizers"].to_string();
            finalizers.contains("pre-delete-finalizer.argocd.argoproj.io")
                && finalizers.contains("post-delete-finalizer.argocd.argoproj.io")
        })
        .await;
    assert!(
        app["metadata"]["finalizers"]
            .to_string()
            .contains("resources-finalizer.argocd.argoproj.io"),
        "{app}"
    );

    // The PreDelete hook fails: the resources stay, and the app says why.
    w.kubectl()
        .run(&["delete", "application", "doomed", "--wait=false"]);
    let app = w
        .wait_app("doomed", "a DeletionError after the failed hook", |a| {
            // Each attempt (one per poll interval) runs the hook again: wait for one's end.
            op_phase(a) == Some("Failed")
                && hook_phase(a, "PreDelete", "pre-delete").as_deref() == Some("Failed")
        })
        .await;
    assert!(
        conditions(&app)
            .iter()
            .any(|c| c.starts_with("DeletionError")
                && c.contains("PreDelete hook")
                && c.contains("pre-delete")),
        "{}",
        summary(&app)
    );
    assert!(get(&w, &["configmap/keep-until-pre-delete"]).is_some());
    assert!(get(&w, &["job/post-delete"]).is_none());

    // Fixed in Git: the next attempt runs the new hook, deletes the resources, runs PostDelete
    // and lets the app go.
    repo.write("app/pre.yaml", &pre(&[]));
    repo.commit("the PreDelete hook works");
    wait_until("the app to be gone", STEP, || async {
        match w.app("doomed") {
            None => Probe::Done(()),
            Some(a) => Probe::pending(summary(&a)),
        }
    })
    .await;
    assert!(get(&w, &["configmap/keep-until-pre-delete"]).is_none());
    let pre_job = must_get(&w, &["job/pre-delete"]);
    let post_job = w
        .wait_object(&["job/post-delete"], "the PostDelete Job", |j| {
            j.is_some_and(|j| j.pointer("/status/completionTime").is_some())
        })
        .await
        .unwrap();
    assert!(
        pre_job.pointer("/status/completionTime").is_some(),
        "{pre_job}"
    );
    // In order: PreDelete finished before PostDelete was created.
    assert!(
        completed(&pre_job) <= created(&post_job),
        "{pre_job}\n{post_job}"
    );
}

// A sync stuck in a long hook and the other apps ---------------------------------------------

/// Drifts the ConfigMaps `cm-{i}` for every `i` in `apps` and waits until all are back at their
/// Git value; returns how long that took.
async fn drift_and_wait(w: &World, apps: std::ops::Range<usize>) -> std::time::Duration {
    let drifted = std::time::Instant::now();
    for i in apps.clone() {
        w.kubectl().run(&[
            "patch",
            "configmap",
            &format!("cm-{i}"),
            "--type=merge",
            "-p",
            r#"{"data":{"value":"drifted"}}"#,
        ]);
    }
    wait_until(
        "every drifted ConfigMap back at its Git value",
        STEP,
        || async {
            let left: Vec<usize> = apps
                .clone()
                .filter(|i| {
                    get(w, &[&format!("configmap/cm-{i}")])
                        .is_none_or(|cm| cm["data"]["value"] != "git")
                })
                .collect();
            if left.is_empty() {
                Probe::Done(())
            } else {
                Probe::pending(format!("still drifted: {left:?}"))
            }
        },
    )
    .await;
    drifted.elapsed()
}

/// Ten apps' syncs wait in PreSync hooks that run for ten minutes (more syncs than the
/// controller has workers), while 20 other apps drift: every one of them is put back while those
/// syncs are still waiting. For the record (no timed assertion), the time from the drift to the
/// last reversal is printed next to the same figure for 20 further apps drifted before the long
/// syncs started.
#[tokio::test]
async fn long_pre_sync_hooks_do_not_hold_back_drift_reversal_in_other_apps() {
    const OTHERS: usize = 20;
    const LONG: usize = 10;
    let w = World::start("hook-long-others").await;
    let ns = w.ns.name().to_string();
    let repo = GitRepo::new();
    for l in 0..LONG {
        repo.write(
            &format!("slow-{l}/long.yaml"),
            &slow_pre_sync_hook(&format!("long-{l}"), "600s"),
        )
        .write(
            &format!("slow-{l}/after.yaml"),
            &configmap(&format!("after-long-{l}"), "1"),
        );
    }
    for i in 0..2 * OTHERS {
        repo.write(
            &format!("app-{i}/cm.yaml"),
            &configmap(&format!("cm-{i}"), "git"),
        );
    }
    let sha = repo.commit("ten apps with a ten-minute PreSync hook, forty without");
    for i in 0..2 * OTHERS {
        w.apply(&application(
            &format!("other-{i}"),
            &repo.url(),
            &format!("app-{i}"),
            &ns,
            AUTOMATED,
        ));
    }
    for i in 0..2 * OTHERS {
        wait_synced_at(&w, &format!("other-{i}"), &sha).await;
    }
    // The baseline: drift with no long sync anywhere.
    let baseline = drift_and_wait(&w, OTHERS..2 * OTHERS).await;

    for l in 0..LONG {
        let name = format!("slow-{l}");
        w.apply(&application(&name, &repo.url(), &name, &ns, AUTOMATED));
    }
    for l in 0..LONG {
        wait_in_hook(&w, &format!("slow-{l}"), &format!("long-{l}")).await;
    }
    let during = drift_and_wait(&w, 0..OTHERS).await;

    for l in 0..LONG {
        let slow = w.app(&format!("slow-{l}")).expect("the app");
        assert_eq!(
            op_phase(&slow),
            Some("Running"),
            "the long sync must still be waiting in its hook: {slow}"
        );
        assert!(
            get(&w, &[&format!("configmap/after-long-{l}")]).is_none(),
            "the Sync phase ran before its PreSync hook ended: {slow}"
        );
    }
    eprintln!(
        "MEASURE long-hooks: {OTHERS} drifted apps reverted in {:.2}s while {LONG} other apps' syncs waited in PreSync hooks; \
         {:.2}s with no long sync (ratio {:.2})",
        during.as_secs_f64(),
        baseline.as_secs_f64(),
        during.as_secs_f64() / baseline.as_secs_f64().max(0.001)
    );
}

/// A manual sync that names no revision syncs the commit its branch had when it started: a
/// commit pushed while its PreSync hook runs neither restarts it (the hook runs once) nor
/// mixes into it; the next sync picks the commit up.
#[tokio::test]
async fn a_sync_keeps_its_commit_when_the_branch_moves_during_a_hook() {
    let w = World::start("hook-pinned").await;
    let ns = w.ns.name().to_string();
    let repo = GitRepo::new();
    repo.write("app/pre.yaml", &slow_pre_sync_hook("pre", "8s"))
        .write("app/cm.yaml", &configmap("pinned", "1"));
    let first = repo.commit("the commit the sync starts with");
    w.apply(&application("pinned", &repo.url(), "app", &ns, ""));
    w.kubectl().run(&[
        "patch",
        "application",
        "pinned",
        "--type=merge",
        "-p",
        r#"{"operation":{"sync":{}}}"#,
    ]);
    wait_in_hook(&w, "pinned", "pre").await;
    let job_uid = must_get(&w, &["job/pre"])["metadata"]["uid"].clone();

    repo.write("app/cm.yaml", &configmap("pinned", "2"));
    let second = repo.commit("pushed while the hook runs");
    w.kubectl().run(&[
        "annotate",
        "application",
        "pinned",
        "--overwrite",
        "argocd.argoproj.io/refresh=normal",
    ]);
    let app = wait_operation(&w, "pinned", "Succeeded", &first).await;
    assert_eq!(
        must_get(&w, &["configmap/pinned"])["data"]["value"],
        "1",
        "the sync applied its own commit: {app}"
    );
    assert_eq!(
        must_get(&w, &["job/pre"])["metadata"]["uid"],
        job_uid,
        "the hook ran once: {app}"
    );
    assert!(app.get("operation").is_none_or(Value::is_null), "{app}");
    w.wait_app("pinned", "OutOfSync at the new commit", |a| {
        sync_status(a) == "OutOfSync"
            && a.pointer("/status/sync/revision") == Some(&Value::from(second.as_str()))
    })
    .await;
}

/// A hook deleted while it runs (by hand, or a Job's TTL) fails the sync: it is never created a
/// second time.
#[tokio::test]
async fn a_hook_that_disappears_while_it_runs_fails_the_sync_and_is_not_created_again() {
    let w = World::start("hook-gone").await;
    let ns = w.ns.name().to_string();
    let repo = GitRepo::new();
    repo.write("app/pre.yaml", &slow_pre_sync_hook("pre", "600s"))
        .write("app/cm.yaml", &configmap("after-gone", "1"));
    let sha = repo.commit("a long PreSync hook");
    w.apply(&application("gone", &repo.url(), "app", &ns, AUTOMATED));
    wait_in_hook(&w, "gone", "pre").await;
    w.kubectl().run(&["delete", "job", "pre", "--wait=true"]);
    let app = wait_operation(&w, "gone", "Failed", &sha).await;
    assert!(
        op_message(&app).contains("disappeared before it finished"),
        "{app}"
    );
    assert!(
        get(&w, &["job/pre"]).is_none(),
        "the hook was created again"
    );
    assert!(
        get(&w, &["configmap/after-gone"]).is_none(),
        "the Sync phase ran without its PreSync hook"
    );
}

/// A sync under way whose app can no longer be compared for a reason that will not pass (here
/// its spec became invalid) ends as Error with its results, instead of staying Running.
#[tokio::test]
async fn a_sync_under_way_ends_when_its_spec_becomes_invalid() {
    let w = World::start("hook-invalid").await;
    let ns = w.ns.name().to_string();
    let repo = GitRepo::new();
    repo.write("app/pre.yaml", &slow_pre_sync_hook("pre", "600s"))
        .write("app/cm.yaml", &configmap("never-applied", "1"));
    let sha = repo.commit("a long PreSync hook");
    w.apply(&application("broken", &repo.url(), "app", &ns, AUTOMATED));
    wait_in_hook(&w, "broken", "pre").await;
    w.kubectl().run(&[
        "patch",
        "application",
        "broken",
        "--type=merge",
        "-p",
        r#"{"spec":{"destination":{"name":"in-cluster"}}}"#,
    ]);
    let app = w
        .wait_app("broken", "the sync ended as Error", |a| {
            op_phase(a) == Some("Error")
        })
        .await;
    assert!(op_message(&app).contains("sets both server"), "{app}");
    assert_eq!(result_revision(&app), Some(sha.as_str()), "{app}");
    assert!(
        hook_result(&app, "PreSync", "pre").is_some(),
        "the results so far are kept: {app}"
    );
    assert!(
        app.pointer("/status/operationState/finishedAt").is_some(),
        "{app}"
    );
}
