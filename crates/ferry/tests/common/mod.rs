//! Shared pieces of ferry's end-to-end tests: the real `ferry` binary run against the local
//! control plane, in a namespace of the test's own, with a real Git repository.

// Each test binary uses a different part of this module, and its items are `pub` for the
// binaries that include it rather than for other crates.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferry_testsupport::{Cluster, Kubectl, Probe, TestNamespace, wait_until};
use serde_json::Value;

/// How long a scenario step may take before the test fails.
pub const STEP: Duration = Duration::from_secs(90);

/// The ferry binary under test.
pub fn ferry_bin() -> &'static str {
    env!("CARGO_BIN_EXE_ferry")
}

/// Runs `ferry ARGS` to completion with the cluster's kubeconfig.
pub fn ferry(kubeconfig: &Path, args: &[&str]) -> std::process::Output {
    Command::new(ferry_bin())
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .env("FERRY_LOG", "warn")
        // Test repositories are local (file://): the operator switch that allows them.
        .env("FERRY_ALLOW_FILE_REPOS", "true")
        .output()
        .expect("running ferry")
}

/// Runs `ferry ARGS` and panics unless it succeeds; returns stdout.
pub fn ferry_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let out = ferry(kubeconfig, args);
    assert!(
        out.status.success(),
        "ferry {} failed ({}):\n{}\n{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `ferry run` controller, stopped (and its log printed if the test failed) on drop.
pub struct Controller {
    child: Option<Child>,
    log: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
    kubeconfig: PathBuf,
    _cache: tempfile::TempDir,
}

impl Controller {
    /// Starts `ferry run` for `namespace` with a short poll interval.
    pub fn start(kubeconfig: &Path, namespace: &str) -> Controller {
        Self::start_command(
            kubeconfig,
            &[
                "run",
                "--namespace",
                namespace,
                "--poll-interval",
                "1s",
                // Many controllers run at once: each serves on a port of its own.
                "--listen",
                "127.0.0.1:0",
                // /metrics without sign-in, as Prometheus scrapes it (the UI port needs one).
                "--metrics-listen",
                "127.0.0.1:0",
            ],
        )
    }

    /// Starts `ferry <args>` (with `--cache-dir` added for `run` and `controller`), logging to
    /// a file of its own.
    pub fn start_command(kubeconfig: &Path, args: &[&str]) -> Controller {
        Self::start_command_with_env(kubeconfig, args, &[])
    }

    /// [`Controller::start_command`] with more environment variables.
    pub fn start_command_with_env(
        kubeconfig: &Path,
        args: &[&str],
        env: &[(&str, &str)],
    ) -> Controller {
        let cache = tempfile::Builder::new()
            .prefix("ferry-cache-")
            .tempdir()
            .unwrap();
        let log = cache.path().join("ferry.log");
        let mut args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        if matches!(args[0].as_str(), "run" | "controller") {
            args.push("--cache-dir".into());
            args.push(cache.path().join("cache").display().to_string());
        }
        let mut c = Controller {
            child: None,
            log,
            args,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            kubeconfig: kubeconfig.to_path_buf(),
            _cache: cache,
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(ferry_bin())
            .args(&self.args)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("FERRY_ALLOW_FILE_REPOS", "true")
            .env("FERRY_LOG", "info,ferry_controller=debug")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting ferry run");
        self.child = Some(child);
    }

    /// Kills the controller at once (SIGKILL), as a crash would.
    /// The process id of the running controller.
    #[allow(dead_code)] // not every test binary that includes this module reads it
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The controller's peak resident memory so far (`VmHWM`), in KiB.
    #[allow(dead_code)] // not every test binary that includes this module reads it
    pub fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again with the same arguments and cache.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// The controller's cache directory (`--cache-dir`).
    pub fn cache_dir(&self) -> PathBuf {
        self._cache.path().join("cache")
    }

    /// The controller's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The `address=` of the first log line containing `marker` (waits up to 30 s for it).
    pub fn logged_address(&self, marker: &str) -> String {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let log = self.log();
            if let Some(addr) = log
                .lines()
                .find(|l| l.contains(marker))
                .and_then(|l| l.split("address=").nth(1))
                .map(|a| a.split_whitespace().next().unwrap().to_string())
            {
                return addr;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no {marker:?} line with an address in the log:\n{log}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

impl Drop for Controller {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() || std::env::var_os("FERRY_TEST_PRINT_LOG").is_some() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(60).collect();
            eprintln!("--- last lines of the ferry controller's log ---");
            for line in tail.into_iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// A test's world: its namespace (where ferry runs and Applications live), ferry installed
/// there, and a controller.
pub struct World {
    pub ns: TestNamespace,
    pub controller: Controller,
}

impl World {
    /// Installs ferry into a fresh namespace and starts the controller.
    pub async fn start(test: &str) -> World {
        let cluster = Cluster::shared();
        let ns = cluster.namespace(test).await;
        ferry_ok(cluster.kubeconfig(), &["install", "--namespace", ns.name()]);
        let controller = Controller::start(cluster.kubeconfig(), ns.name());
        World { ns, controller }
    }

    /// The admin kubeconfig.
    pub fn kubeconfig(&self) -> &Path {
        Cluster::shared().kubeconfig()
    }

    /// kubectl in the test's namespace.
    pub fn kubectl(&self) -> &Kubectl {
        self.ns.kubectl()
    }

    /// `ferry ARGS` with `--namespace` set to the test's namespace.
    pub fn ferry(&self, args: &[&str]) -> std::process::Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--namespace", self.ns.name()]);
        ferry(self.kubeconfig(), &all)
    }

    /// The Application `name` as JSON.
    pub fn app(&self, name: &str) -> Option<Value> {
        self.kubectl()
            .try_run(&["get", "application", name, "-o", "json"])
            .ok()
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    /// Waits until the Application `name` satisfies `check` (given its JSON), and returns it.
    pub async fn wait_app(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        wait_until(&format!("application {name}: {what}"), STEP, || async {
            match self.app(name) {
                Some(app) if check(&app) => Probe::Done(app),
                Some(app) => Probe::pending(summary(&app)),
                None => Probe::pending("no such application"),
            }
        })
        .await
    }

    /// Waits until the app is Synced and Healthy.
    /// Waits until the app is Synced and Healthy with no operation running (a sync goes on,
    /// with the app's resources Synced and Healthy, while its PostSync hooks run).
    pub async fn wait_synced_healthy(&self, name: &str) -> Value {
        self.wait_app(name, "Synced and Healthy, no operation running", |a| {
            sync_status(a) == "Synced"
                && health_status(a) == "Healthy"
                && a.pointer("/status/operationState/phase") != Some(&Value::from("Running"))
        })
        .await
    }

    /// Waits until kubectl `get` of `what` (e.g. `deployment/web -n x`) returns JSON meeting `check`.
    pub async fn wait_object(
        &self,
        args: &[&str],
        what: &str,
        check: impl Fn(Option<&Value>) -> bool,
    ) -> Option<Value> {
        wait_until(what, STEP, || async {
            let mut all = vec!["get"];
            all.extend_from_slice(args);
            all.extend(["-o", "json", "--ignore-not-found"]);
            let out = self.kubectl().run(&all);
            let obj: Option<Value> = if out.trim().is_empty() {
                None
            } else {
                Some(serde_json::from_str(&out).unwrap())
            };
            if check(obj.as_ref()) {
                Probe::Done(obj)
            } else {
                Probe::pending(format!(
                    "{:.300}",
                    obj.map(|o| o.to_string()).unwrap_or("absent".into())
                ))
            }
        })
        .await
    }

    /// Applies an Application manifest (YAML) into the test's namespace.
    pub fn apply(&self, manifest: &str) {
        self.kubectl().apply(manifest);
    }
}

/// `status.sync.status` of an app.
pub fn sync_status(app: &Value) -> &str {
    app.pointer("/status/sync/status")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// `status.health.status` of an app.
pub fn health_status(app: &Value) -> &str {
    app.pointer("/status/health/status")
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The conditions of an app as "Type: message" lines.
pub fn conditions(app: &Value) -> Vec<String> {
    app.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(|cs| {
            cs.iter()
                .map(|c| {
                    format!(
                        "{}: {}",
                        c["type"].as_str().unwrap_or(""),
                        c["message"].as_str().unwrap_or("")
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A one-line summary of an app's status for wait messages.
pub fn summary(app: &Value) -> String {
    format!(
        "sync={} health={} revision={} op={} conditions={:?}",
        sync_status(app),
        health_status(app),
        app.pointer("/status/sync/revision")
            .and_then(Value::as_str)
            .unwrap_or(""),
        app.pointer("/status/operationState/phase")
            .and_then(Value::as_str)
            .unwrap_or(""),
        conditions(app)
    )
}

/// An Application manifest for a plain directory source.
pub fn application(name: &str, repo: &str, path: &str, dest_ns: &str, extra_spec: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
spec:
  project: default
  source:
    repoURL: {repo}
    path: {path}
    targetRevision: main
  destination:
    server: https://kubernetes.default.svc
    namespace: {dest_ns}
{extra_spec}"#
    )
}

/// The sync policy most scenarios use.
pub const AUTOMATED: &str =
    "  syncPolicy:\n    automated:\n      prune: true\n      selfHeal: true\n";

/// A Deployment manifest.
pub fn deployment(name: &str, image: &str, replicas: u32) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app: {name}}}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: {image}
"#
    )
}

/// A ConfigMap manifest.
pub fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: \"{value}\"\n"
    )
}
