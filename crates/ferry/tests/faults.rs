//! Fault harness: the real `ferry run` killed with SIGKILL at random moments of its syncs, against
//! the local control plane. ferry promises that killing it at any instant and starting it again
//! converges, that a hook runs once per sync operation, and that nothing Git declares is deleted.
//!
//! Each round commits a new revision of an app with PreSync, Sync and PostSync hook Jobs, two
//! waves and a prune, kills ferry at a random moment (half the rounds at a random delay after
//! the push, half at a random delay after the sync is seen running), restarts it and waits for
//! the app to converge. Then it checks:
//! - the app is Synced and Healthy at the round's commit and the last operation succeeded;
//! - each hook of the round ran exactly once (hooks are `generateName` Jobs labelled with the
//!   round and kept after success, so every run leaves a Job behind to count);
//! - the ConfigMap that every revision declares was never deleted (its uid never changes);
//! - the previous round's ConfigMap was pruned and the current one exists.
//!
//! `make test` runs 3 rounds; `make faults` runs `FERRY_FAULT_ROUNDS` (default 50) and prints
//! the figures. The random seed is printed so a failing run can be repeated
//! (`FERRY_FAULT_SEED`).

mod common;

use std::time::{Duration, Instant};

use common::*;
use ferry_testsupport::{GitRepo, Probe, wait_until};
use serde_json::Value;

/// A small deterministic generator (xorshift), seeded from the clock unless given.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn hook(kind: &str, round: u32) -> String {
    format!(
        r#"apiVersion: batch/v1
kind: Job
metadata:
  generateName: {lower}-
  labels: {{fault-round: "{round}", fault-hook: {lower}}}
  annotations:
    argocd.argoproj.io/hook: {kind}
    argocd.argoproj.io/hook-delete-policy: HookFailed
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations: {{testenv.ferry.dev/run-for: "300ms"}}
    spec:
      restartPolicy: Never
      containers: [{{name: run, image: registry.example/hook:1}}]
"#,
        lower = kind.to_lowercase()
    )
}

fn waved_configmap(name: &str, wave: i32, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations: {{argocd.argoproj.io/sync-wave: \"{wave}\"}}\ndata:\n  value: \"{value}\"\n"
    )
}

/// Writes round `round`'s revision of the app into the repository and commits it.
fn commit_round(repo: &GitRepo, round: u32) -> String {
    if round > 0 {
        repo.remove(&format!("app/gen-{}.yaml", round - 1));
    }
    repo.write(
        "app/keep.yaml",
        &waved_configmap("keep", 0, &round.to_string()),
    )
    .write(
        &format!("app/gen-{round}.yaml"),
        &waved_configmap(&format!("gen-{round}"), 0, "x"),
    )
    .write(
        "app/late.yaml",
        &waved_configmap("late", 1, &round.to_string()),
    )
    .write(
        "app/web.yaml",
        &deployment("web", &format!("registry.example/web:{round}"), 1),
    )
    .write("app/pre.yaml", &hook("PreSync", round))
    .write("app/sync.yaml", &hook("Sync", round))
    .write("app/post.yaml", &hook("PostSync", round));
    repo.commit(&format!("round {round}"))
}

fn uid(w: &World, name: &str) -> Option<String> {
    w.kubectl()
        .try_run(&["get", "configmap", name, "-o", "jsonpath={.metadata.uid}"])
        .ok()
        .filter(|u| !u.is_empty())
}

/// How many Jobs of `round` ran for each hook kind.
fn hook_runs(w: &World, round: u32) -> Vec<(String, usize)> {
    let out = w.kubectl().run(&[
        "get",
        "jobs",
        "-l",
        &format!("fault-round={round}"),
        "-o",
        "json",
    ]);
    let jobs: Value = serde_json::from_str(&out).expect("a Job list");
    ["presync", "sync", "postsync"]
        .iter()
        .map(|kind| {
            let n = jobs["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|j| j.pointer("/metadata/labels/fault-hook") == Some(&Value::from(*kind)))
                .count();
            (kind.to_string(), n)
        })
        .collect()
}

#[tokio::test]
async fn syncs_killed_at_random_moments_converge_and_run_each_hook_once() {
    let rounds: u32 = std::env::var("FERRY_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let seed: u64 = std::env::var("FERRY_FAULT_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("a clock after 1970")
                .as_nanos() as u64
                | 1
        });
    eprintln!("fault harness: {rounds} rounds, FERRY_FAULT_SEED={seed}");
    let mut rng = Rng(seed);

    let mut w = World::start("faults-kill").await;
    let ns = w.ns.name().to_string();
    let repo = GitRepo::new();
    commit_round(&repo, 0);
    w.apply(&application("faulty", &repo.url(), "app", &ns, AUTOMATED));
    w.wait_app("faulty", "round 0 synced", |a| {
        sync_status(a) == "Synced"
            && health_status(a) == "Healthy"
            && a.pointer("/status/operationState/phase") == Some(&Value::from("Succeeded"))
    })
    .await;
    let keep_uid = uid(&w, "keep").expect("ConfigMap keep exists after round 0");

    let (mut killed_while_running, mut twice, mut wrongly_deleted) = (0u32, 0u32, 0u32);
    let started = Instant::now();
    for round in 1..=rounds {
        let sha = commit_round(&repo, round);
        w.kubectl().run(&[
            "annotate",
            "application",
            "faulty",
            "--overwrite",
            "argocd.argoproj.io/refresh=normal",
        ]);
        if round % 2 == 0 {
            // Kill while the sync runs: wait until it is seen running, then a random delay.
            let seen = wait_until(
                &format!("round {round}: the sync of {sha} to start"),
                STEP,
                || async {
                    match w.app("faulty") {
                        Some(a)
                            if a.pointer("/status/operationState/syncResult/revision")
                                == Some(&Value::from(sha.as_str())) =>
                        {
                            Probe::Done(
                                a.pointer("/status/operationState/phase")
                                    == Some(&Value::from("Running")),
                            )
                        }
                        Some(a) => Probe::pending(summary(&a)),
                        None => Probe::pending("no app"),
                    }
                },
            )
            .await;
            killed_while_running += u32::from(seen);
        }
        // The fault itself: a random moment, not a wait for anything.
        tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
        w.controller.kill();
        w.controller.restart();

        let app = w
            .wait_app(
                "faulty",
                &format!("round {round} ({sha}) synced after the kill"),
                |a| {
                    sync_status(a) == "Synced"
                        && health_status(a) == "Healthy"
                        && a.pointer("/status/sync/revision") == Some(&Value::from(sha.as_str()))
                        && a.pointer("/status/operationState/syncResult/revision")
                            == Some(&Value::from(sha.as_str()))
                        && a.pointer("/status/operationState/phase")
                            == Some(&Value::from("Succeeded"))
                },
            )
            .await;
        let runs = hook_runs(&w, round);
        eprintln!("round {round}: {sha:.8} converged; hook runs {runs:?}");
        if runs.iter().any(|(_, n)| *n > 1) {
            twice += 1;
        }
        assert!(
            runs.iter().all(|(_, n)| *n == 1),
            "round {round}: every hook must run exactly once, ran {runs:?}\n{}",
            summary(&app)
        );
        if uid(&w, "keep").as_deref() != Some(keep_uid.as_str()) {
            wrongly_deleted += 1;
        }
        assert_eq!(
            uid(&w, "keep"),
            Some(keep_uid.clone()),
            "round {round}: ConfigMap keep, declared by every revision, was deleted and re-created"
        );
        assert!(
            uid(&w, &format!("gen-{round}")).is_some(),
            "gen-{round} missing"
        );
        assert!(
            uid(&w, &format!("gen-{}", round - 1)).is_none(),
            "gen-{} was not pruned",
            round - 1
        );
    }
    eprintln!(
        "fault harness figures: {rounds} syncs killed ({killed_while_running} seen running at the kill), \
         {rounds} converged, hooks run twice in {twice} rounds, wrongly deleted objects in {wrongly_deleted} rounds, \
         {:.0} s",
        started.elapsed().as_secs_f64()
    );
}

const GIT_USER: &str = "ferry";
const GIT_PASSWORD: &str = "outage-test-password";

fn repository_secret(url: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: outage-repo\n  labels:\n    \
         argocd.argoproj.io/secret-type: repository\nstringData:\n  url: {url}\n  \
         username: {GIT_USER}\n  password: {GIT_PASSWORD}\n"
    )
}

/// The app's conditions, once one of them is a ComparisonError.
async fn wait_comparison_error(w: &World, what: &str) -> String {
    let app = w
        .wait_app("outage", what, |a| {
            conditions(a)
                .iter()
                .any(|c| c.starts_with("ComparisonError"))
        })
        .await;
    conditions(&app).join("\n")
}

/// A Git server that goes down, then answers 500, then comes back: the app keeps its resources
/// and says which repository failed, and a commit pushed during the outage is applied once the
/// server is back, with no help.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_git_outage_keeps_resources_and_recovers_by_itself() {
    let w = World::start("faults-git-outage").await;
    let ns = w.ns.name().to_string();
    let repo = GitRepo::new();
    repo.write("app/kept.yaml", &configmap("kept", "1"));
    repo.commit("before the outage");
    let root = repo
        .bare_dir()
        .parent()
        .expect("the bare repo's folder")
        .to_path_buf();
    let mut server = ferry_testsupport::git_http::serve(root, GIT_USER, GIT_PASSWORD).await;
    let url = format!("{}/repo.git", server.base_url);
    w.apply(&repository_secret(&url));
    w.apply(&application("outage", &url, "app", &ns, AUTOMATED));
    w.wait_synced_healthy("outage").await;
    let kept_uid = uid(&w, "kept").expect("ConfigMap kept");

    // Down: connections refused. A commit is pushed meanwhile (to the repository on disk).
    server.stop();
    repo.write("app/kept.yaml", &configmap("kept", "2"))
        .write("app/added.yaml", &configmap("added", "1"));
    let during = repo.commit("pushed during the outage");
    let text = wait_comparison_error(&w, "a ComparisonError while the server is down").await;
    assert!(
        text.contains(&url),
        "the condition names the repository: {text}"
    );
    assert!(
        !text.contains(GIT_PASSWORD),
        "no password in conditions: {text}"
    );
    assert_eq!(
        uid(&w, "kept").as_deref(),
        Some(kept_uid.as_str()),
        "resources are kept"
    );

    // Up, but broken: every answer is a 500.
    server.start_again().await;
    server.set_fault(ferry_testsupport::git_http::Fault::ServerError);
    w.kubectl().run(&[
        "annotate",
        "application",
        "outage",
        "--overwrite",
        "argocd.argoproj.io/refresh=hard",
    ]);
    let text = wait_comparison_error(&w, "a ComparisonError while the server answers 500").await;
    assert!(
        text.contains(&url),
        "the condition names the repository: {text}"
    );
    let value = w
        .kubectl()
        .run(&["get", "configmap", "kept", "-o", "jsonpath={.data.value}"]);
    assert_eq!(value, "1", "nothing of the unreachable commit was applied");
    assert_eq!(
        uid(&w, "kept").as_deref(),
        Some(kept_uid.as_str()),
        "resources are kept"
    );
    assert!(uid(&w, "added").is_none());

    // Up, but it stops sending: the answer starts and then nothing more comes. Git's low-speed
    // limit (1 byte/s for 30 s) ends the fetch, rather than the 3-minute command timeout.
    server.set_fault(ferry_testsupport::git_http::Fault::Stall);
    w.kubectl().run(&[
        "annotate",
        "application",
        "outage",
        "--overwrite",
        "argocd.argoproj.io/refresh=hard",
    ]);
    let app = w
        .wait_app(
            "outage",
            "a ComparisonError saying the Git server stopped sending",
            |a| conditions(a).iter().any(|c| c.contains("stopped sending")),
        )
        .await;
    let text = conditions(&app).join("; ");
    assert!(
        text.contains(&url),
        "the condition names the repository: {text}"
    );
    assert_eq!(
        uid(&w, "kept").as_deref(),
        Some(kept_uid.as_str()),
        "resources are kept"
    );
    assert!(uid(&w, "added").is_none());

    // Healthy again: the commit pushed during the outage is applied with no manual step.
    server.set_fault(ferry_testsupport::git_http::Fault::None);
    let app = w
        .wait_app(
            "outage",
            "the commit pushed during the outage synced",
            |a| {
                sync_status(a) == "Synced"
                    && a.pointer("/status/sync/revision") == Some(&Value::from(during.as_str()))
                    && conditions(a).is_empty()
            },
        )
        .await;
    assert_eq!(health_status(&app), "Healthy");
    let value = w
        .kubectl()
        .run(&["get", "configmap", "kept", "-o", "jsonpath={.data.value}"]);
    assert_eq!(value, "2");
    assert_eq!(uid(&w, "kept").as_deref(), Some(kept_uid.as_str()));
    assert!(uid(&w, "added").is_some());
    assert!(
        !w.controller.log().contains(GIT_PASSWORD),
        "no password in the log"
    );
}

/// kube-apiserver killed and restarted (same etcd) while a sync waits on a hook: ferry's
/// requests fail for a while, its watches break; afterwards the sync finishes (its hook run
/// once), and drift made after the restart is reverted, so the watches came back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_server_restart_during_a_sync_is_survived() {
    // A control plane of this test's own: the shared one must not go down under other tests.
    let cluster = ferry_testsupport::Cluster::start_own("apiserver-restart");
    let ns = cluster.namespace("faults-apiserver").await;
    let name = ns.name().to_string();
    ferry_ok(cluster.kubeconfig(), &["install", "--namespace", &name]);
    let controller = Controller::start(cluster.kubeconfig(), &name);
    let w = World { ns, controller };

    let repo = GitRepo::new();
    let slow_hook = hook("PreSync", 1).replace("run-for: \"300ms\"", "run-for: \"4s\"");
    repo.write("app/pre.yaml", &slow_hook)
        .write("app/kept.yaml", &configmap("kept", "1"));
    let sha = repo.commit("a sync with a slow PreSync hook");
    w.apply(&application(
        "survivor",
        &repo.url(),
        "app",
        &name,
        AUTOMATED,
    ));
    w.wait_app("survivor", "the sync running, waiting on its hook", |a| {
        a.pointer("/status/operationState/phase") == Some(&Value::from("Running"))
    })
    .await;

    cluster.restart_apiserver();

    let app = w
        .wait_app("survivor", "synced after the apiserver restart", |a| {
            sync_status(a) == "Synced"
                && health_status(a) == "Healthy"
                && a.pointer("/status/operationState/phase") == Some(&Value::from("Succeeded"))
                && a.pointer("/status/operationState/syncResult/revision")
                    == Some(&Value::from(sha.as_str()))
        })
        .await;
    assert_eq!(
        hook_runs(&w, 1),
        vec![
            ("presync".into(), 1),
            ("sync".into(), 0),
            ("postsync".into(), 0)
        ],
        "the PreSync hook ran once: {}",
        summary(&app)
    );

    // Drift after the restart is seen (the watches reconnected) and reverted.
    w.kubectl().run(&[
        "patch",
        "configmap",
        "kept",
        "--type=merge",
        "-p",
        r#"{"data":{"value":"drifted"}}"#,
    ]);
    w.wait_object(&["configmap", "kept"], "the drift reverted", |o| {
        o.is_some_and(|o| o["data"]["value"] == "1")
    })
    .await;
}

/// Packages chart `demo` at `version` (a ConfigMap whose value is the version) into `repo` and
/// writes the repository's index, with the pinned helm.
fn package_chart(repo: &std::path::Path, version: &str) {
    let src = tempfile::tempdir().expect("a chart folder");
    let chart = src.path().join("demo");
    std::fs::create_dir_all(chart.join("templates")).expect("the chart's folders");
    std::fs::write(
        chart.join("Chart.yaml"),
        format!("apiVersion: v2\nname: demo\nversion: {version}\n"),
    )
    .expect("Chart.yaml");
    std::fs::write(
        chart.join("templates/cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-chart\ndata:\n  version: {{ .Chart.Version | quote }}\n",
    )
    .expect("the template");
    let helm = |args: &[&str]| {
        let out = std::process::Command::new("helm")
            .args(args)
            .env("HOME", src.path())
            .output()
            .expect("running helm (make test puts the pinned one on PATH)");
        assert!(
            out.status.success(),
            "helm {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let (chart, repo) = (
        chart.to_str().expect("utf-8"),
        repo.to_str().expect("utf-8"),
    );
    helm(&["package", chart, "--destination", repo]);
    helm(&["repo", "index", repo]);
}

/// A chart repository that goes down, then serves a broken `index.yaml`, then a truncated
/// archive: each time the app keeps its resources and names the repository; once the
/// repository is whole again the new chart version is applied by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_chart_repository_keeps_resources_and_recovers_by_itself() {
    let w = World::start("faults-chart-repo").await;
    let ns = w.ns.name().to_string();
    let charts = tempfile::tempdir().expect("a chart repository folder");
    package_chart(charts.path(), "1.0.0");
    let mut server =
        ferry_testsupport::static_http::StaticServer::serve(charts.path().to_path_buf()).await;
    let repo_url = server.url.clone();
    let app = |version: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: charted\nspec:\n  \
             project: default\n  source: {{repoURL: '{}', chart: demo, targetRevision: '{version}'}}\n  \
             destination: {{server: https://kubernetes.default.svc, namespace: {ns}}}\n{AUTOMATED}",
            repo_url
        )
    };
    w.apply(&app("1.0.0"));
    w.wait_synced_healthy("charted").await;
    let chart_uid = uid(&w, "from-chart").expect("the chart's ConfigMap");
    let version = || {
        w.kubectl().run(&[
            "get",
            "configmap",
            "from-chart",
            "-o",
            "jsonpath={.data.version}",
        ])
    };
    assert_eq!(version(), "1.0.0");

    // 1.1.0 is published while the repository is down; the app asks for it.
    server.stop();
    package_chart(charts.path(), "1.1.0");
    w.apply(&app("1.1.0"));
    let wait_error = |what: &'static str| {
        let w = &w;
        async move {
            let app = w
                .wait_app("charted", what, |a| {
                    conditions(a)
                        .iter()
                        .any(|c| c.starts_with("ComparisonError"))
                })
                .await;
            conditions(&app).join("\n")
        }
    };
    let text = wait_error("a ComparisonError while the chart repository is down").await;
    assert!(
        text.contains(&server.url),
        "the condition names the repository: {text}"
    );
    assert_eq!(uid(&w, "from-chart").as_deref(), Some(chart_uid.as_str()));
    assert_eq!(version(), "1.0.0");

    // Up, with an index that is not YAML.
    let index = std::fs::read(charts.path().join("index.yaml")).expect("the index");
    std::fs::write(
        charts.path().join("index.yaml"),
        "<html>maintenance</html>\n: [\n",
    )
    .expect("breaking the index");
    server.start_again().await;
    let hard_refresh = || {
        w.kubectl().run(&[
            "annotate",
            "application",
            "charted",
            "--overwrite",
            "argocd.argoproj.io/refresh=hard",
        ])
    };
    hard_refresh();
    let text = wait_error("a ComparisonError for a broken index.yaml").await;
    assert!(
        text.contains(&server.url),
        "the condition names the repository: {text}"
    );
    assert_eq!(uid(&w, "from-chart").as_deref(), Some(chart_uid.as_str()));
    assert_eq!(version(), "1.0.0");

    // A whole index, but the new chart's archive is cut short.
    std::fs::write(charts.path().join("index.yaml"), &index).expect("restoring the index");
    let archive = charts.path().join("demo-1.1.0.tgz");
    let bytes = std::fs::read(&archive).expect("the archive");
    std::fs::write(&archive, &bytes[..bytes.len() / 2]).expect("truncating the archive");
    hard_refresh();
    let app_now = w
        .wait_app(
            "charted",
            "a ComparisonError for a truncated archive",
            |a| {
                conditions(a)
                    .iter()
                    .any(|c| c.starts_with("ComparisonError") && !c.contains("index"))
            },
        )
        .await;
    let text = conditions(&app_now).join("\n");
    assert!(
        text.contains("demo"),
        "the condition names the chart: {text}"
    );
    assert_eq!(uid(&w, "from-chart").as_deref(), Some(chart_uid.as_str()));
    assert_eq!(version(), "1.0.0");

    // Whole again: 1.1.0 is applied with no manual step.
    std::fs::write(&archive, &bytes).expect("restoring the archive");
    w.wait_app("charted", "chart 1.1.0 synced", |a| {
        sync_status(a) == "Synced" && health_status(a) == "Healthy" && conditions(a).is_empty()
    })
    .await;
    assert_eq!(version(), "1.1.0");
    assert_eq!(uid(&w, "from-chart").as_deref(), Some(chart_uid.as_str()));
}

/// A TCP proxy to the shared API server that can stall: while stalled, bytes in flight stop and
/// new connections wait, like an API server that stopped answering.
struct StallingProxy {
    addr: std::net::SocketAddr,
    stalled: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StallingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl StallingProxy {
    async fn start(upstream: std::net::SocketAddr) -> StallingProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a port");
        let addr = listener.local_addr().expect("an address");
        let (stalled, watch) = tokio::sync::watch::channel(false);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let watch = watch.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::join!(pump(cr, sw, watch.clone()), pump(sr, cw, watch));
                });
            }
        });
        StallingProxy {
            addr,
            stalled,
            task,
        }
    }

    fn stall(&self, on: bool) {
        self.stalled.send_replace(on);
    }
}

/// Copies `from` to `to`, holding every chunk while the proxy is stalled.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut stalled: tokio::sync::watch::Receiver<bool>,
) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if stalled.wait_for(|s| !*s).await.is_err() {
            return;
        }
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if stalled.wait_for(|s| !*s).await.is_err() || to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// A destination cluster whose API server stops answering does not hold up the apps of other
/// clusters: their commits still sync while it hangs, and its own app catches up once it
/// answers again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_cluster_does_not_hold_up_other_apps() {
    use base64::Engine as _;
    let w = World::start("faults-stalled-cluster").await;
    let ns = w.ns.name().to_string();
    let view = w
        .kubectl()
        .run(&["config", "view", "--raw", "--minify", "-o", "json"]);
    let kc: Value = serde_json::from_str(&view).expect("kubeconfig JSON");
    let server = kc["clusters"][0]["cluster"]["server"]
        .as_str()
        .expect("server")
        .to_string();
    let upstream: std::net::SocketAddr = server
        .trim_start_matches("https://")
        .parse()
        .expect("the local API server listens on an IP and port");
    let proxy = StallingProxy::start(upstream).await;
    let far_server = format!("https://{}", proxy.addr);
    let config = serde_json::json!({
        "bearerToken": kc["users"][0]["user"]["token"],
        "tlsClientConfig": {"caData": kc["clusters"][0]["cluster"]["certificate-authority-data"]},
    })
    .to_string();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    w.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: far-cluster\n  labels:\n    \
         argocd.argoproj.io/secret-type: cluster\ndata:\n  name: {}\n  server: {}\n  config: {}\n",
        b64("far"),
        b64(&far_server),
        b64(&config)
    ));

    let repo = GitRepo::new();
    let names = ["far", "near-1", "near-2", "near-3"];
    for n in names {
        repo.write(&format!("{n}/c.yaml"), &configmap(&format!("{n}-cm"), "1"));
    }
    repo.commit("four apps");
    for n in names {
        let mut manifest = application(n, &repo.url(), n, &ns, AUTOMATED);
        if n == "far" {
            manifest = manifest.replace("https://kubernetes.default.svc", &far_server);
        }
        w.apply(&manifest);
    }
    for n in names {
        w.wait_synced_healthy(n).await;
    }

    let peak_before = w.controller.peak_rss_kib();
    proxy.stall(true);
    for n in names {
        repo.write(&format!("{n}/c.yaml"), &configmap(&format!("{n}-cm"), "2"));
    }
    let sha = repo.commit("a change to every app while one cluster hangs");
    for n in names {
        w.kubectl().run(&[
            "annotate",
            "application",
            n,
            "--overwrite",
            "argocd.argoproj.io/refresh=normal",
        ]);
    }
    for n in &names[1..] {
        w.wait_app(n, "synced while another cluster hangs", |a| {
            sync_status(a) == "Synced"
                && a.pointer("/status/sync/revision") == Some(&Value::from(sha.as_str()))
        })
        .await;
        let value = w.kubectl().run(&[
            "get",
            "configmap",
            &format!("{n}-cm"),
            "-o",
            "jsonpath={.data.value}",
        ]);
        assert_eq!(value, "2", "{n} applied while the far cluster hangs");
    }
    let far_value =
        w.kubectl()
            .run(&["get", "configmap", "far-cm", "-o", "jsonpath={.data.value}"]);
    assert_eq!(far_value, "1", "nothing reached the stalled cluster");

    proxy.stall(false);
    w.wait_app("far", "synced once its cluster answers again", |a| {
        sync_status(a) == "Synced"
            && a.pointer("/status/sync/revision") == Some(&Value::from(sha.as_str()))
    })
    .await;
    let far_value =
        w.kubectl()
            .run(&["get", "configmap", "far-cm", "-o", "jsonpath={.data.value}"]);
    assert_eq!(far_value, "2");
    eprintln!(
        "MEASURE stalled-cluster: controller peak RSS {:?} KiB before the stall, {:?} KiB after it",
        peak_before,
        w.controller.peak_rss_kib()
    );
}
