use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use kube::config::{KubeConfigOptions, Kubeconfig};

use crate::{Kubectl, TestNamespace, install_crypto_provider, repo_root};

/// Environment variable naming the admin kubeconfig of a control plane that a whole test run
/// shares (set by `make test`). Deliberately not `KUBECONFIG`: tests never run against whatever
/// cluster a developer's shell points at.
pub const SHARED_KUBECONFIG_ENV: &str = "FERRY_TEST_KUBECONFIG";

/// A local control plane started by `scripts/local-cluster.sh`.
#[derive(Debug)]
pub struct Cluster {
    dir: PathBuf,
    kubeconfig: PathBuf,
    restricted_kubeconfig: PathBuf,
    /// Started by this handle, so stopped when it is dropped.
    owned: bool,
}

impl Cluster {
    /// The control plane shared by every test of this run: the one named by
    /// `FERRY_TEST_KUBECONFIG`, or else one started on first use that stops when this test
    /// process ends.
    pub fn shared() -> &'static Cluster {
        static SHARED: OnceLock<Cluster> = OnceLock::new();
        SHARED.get_or_init(|| match std::env::var_os(SHARED_KUBECONFIG_ENV) {
            Some(path) => {
                let kubeconfig = PathBuf::from(path);
                let dir = kubeconfig
                    .parent()
                    .expect("the kubeconfig is in a directory")
                    .to_path_buf();
                Cluster {
                    restricted_kubeconfig: dir.join("restricted.kubeconfig"),
                    kubeconfig,
                    dir,
                    owned: false,
                }
            }
            None => {
                let mut cluster = Cluster::start_in(&run_dir("shared"));
                // Never stopped by a destructor (statics are not dropped); the owner pid ends it.
                cluster.owned = false;
                cluster
            }
        })
    }

    /// Starts a control plane of this test's own, stopped when the handle is dropped (and in any
    /// case when the test process ends). `name` only labels its directory.
    pub fn start_own(name: &str) -> Cluster {
        Cluster::start_in(&run_dir(name))
    }

    fn start_in(dir: &Path) -> Cluster {
        sweep_stale_run_dirs();
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("creating the cluster directory");
        let out = Command::new(repo_root().join("scripts/local-cluster.sh"))
            .arg("up")
            .arg(dir)
            .env("TESTENV_OWNER_PID", std::process::id().to_string())
            .output()
            .expect("running scripts/local-cluster.sh");
        assert!(
            out.status.success(),
            "starting a local control plane in {} failed:\n{}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        Cluster {
            kubeconfig: dir.join("kubeconfig"),
            restricted_kubeconfig: dir.join("restricted.kubeconfig"),
            dir: dir.to_path_buf(),
            owned: true,
        }
    }

    /// Stops this control plane now (it must be one this handle started).
    pub fn stop(&self) {
        let out = Command::new(repo_root().join("scripts/local-cluster.sh"))
            .arg("down")
            .arg(&self.dir)
            .output()
            .expect("running scripts/local-cluster.sh down");
        assert!(
            out.status.success(),
            "stopping {}: {:?}",
            self.dir.display(),
            out
        );
    }

    /// Kills this control plane's kube-apiserver (SIGKILL, as a crash would) and starts it again
    /// on the same etcd, port and certificates, returning once it answers `/readyz`. Clients see
    /// refused connections in between; what is in etcd stays.
    pub fn restart_apiserver(&self) {
        let pid_file = self.dir.join("apiserver.pid");
        let pid = std::fs::read_to_string(&pid_file)
            .unwrap_or_else(|e| panic!("reading {}: {e}", pid_file.display()));
        let pid = pid.trim();
        let argv = std::fs::read(format!("/proc/{pid}/cmdline"))
            .unwrap_or_else(|e| panic!("the apiserver (pid {pid}) is not running: {e}"));
        let argv: Vec<String> = argv
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let killed = Command::new("kill").args(["-9", pid]).status();
        assert!(killed.is_ok_and(|s| s.success()), "kill -9 {pid} failed");
        // Wait until it is gone (its port is free) before starting the new one.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::path::Path::new(&format!("/proc/{pid}/cmdline")).exists()
            && std::fs::read(format!("/proc/{pid}/stat"))
                .map(|s| !String::from_utf8_lossy(&s).contains(") Z "))
                .unwrap_or(false)
        {
            assert!(
                std::time::Instant::now() < deadline,
                "the apiserver did not die"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let log = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(self.dir.join("logs/apiserver.log"))
            .expect("the apiserver's log");
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .stdout(log.try_clone().expect("a log handle"))
            .stderr(log)
            .spawn()
            .expect("starting the apiserver again");
        std::fs::write(&pid_file, child.id().to_string()).expect("writing apiserver.pid");
        // It runs until `down` or until its owner (this test process) ends; reap it then.
        std::thread::spawn(move || child.wait());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let ready = self
                .kubectl()
                .try_run(&["get", "--raw", "/readyz"])
                .is_ok_and(|out| out.trim() == "ok");
            if ready {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the restarted apiserver was not ready within 120 s (log: {})",
                self.dir.join("logs/apiserver.log").display()
            );
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// The directory holding the cluster's state, logs and kubeconfigs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The admin kubeconfig (user `admin` in `system:masters`).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The kubeconfig of the restricted user, who may `edit` only in namespace `restricted`.
    pub fn restricted_kubeconfig(&self) -> &Path {
        &self.restricted_kubeconfig
    }

    /// A kube-rs client with admin rights.
    pub async fn client(&self) -> kube::Client {
        client_for(&self.kubeconfig).await
    }

    /// A kube-rs client as the restricted user.
    pub async fn restricted_client(&self) -> kube::Client {
        client_for(&self.restricted_kubeconfig).await
    }

    /// The real kubectl, as admin.
    pub fn kubectl(&self) -> Kubectl {
        Kubectl::new(&self.kubeconfig)
    }

    /// A fresh namespace for one test, named after `test` with a random suffix.
    pub async fn namespace(&self, test: &str) -> TestNamespace {
        TestNamespace::create(self, test).await
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.owned {
            let _ = Command::new(repo_root().join("scripts/local-cluster.sh"))
                .arg("down")
                .arg(&self.dir)
                .output();
            if !std::thread::panicking() {
                let _ = std::fs::remove_dir_all(&self.dir);
            }
        }
    }
}

/// A kube-rs client from a kubeconfig file.
pub(crate) async fn client_for(kubeconfig: &Path) -> kube::Client {
    install_crypto_provider();
    let kc = Kubeconfig::read_from(kubeconfig)
        .unwrap_or_else(|e| panic!("reading kubeconfig {}: {e}", kubeconfig.display()));
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("loading kubeconfig {}: {e}", kubeconfig.display()));
    kube::Client::try_from(config).expect("building a kube client")
}

fn runs_root() -> PathBuf {
    repo_root().join("target/testenv/runs")
}

/// `target/testenv/runs/<pid>-<name>-<n>`: the pid prefix lets later runs sweep dead ones.
fn run_dir(name: &str) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    runs_root().join(format!("{}-{name}-{n}", std::process::id()))
}

/// Removes the directories of clusters whose test process is gone.
fn sweep_stale_run_dirs() {
    let Ok(entries) = std::fs::read_dir(runs_root()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}
