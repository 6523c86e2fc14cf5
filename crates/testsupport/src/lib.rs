//! Test support for ferry's integration tests: every test runs against a real Kubernetes
//! control plane (the `testenv` program in this repository: etcd, kube-apiserver,
//! kube-controller-manager and a simulated node).
//!
//! Start here:
//!
//! - [`Cluster::shared`] gives the control plane that all tests of a run share. When
//!   `FERRY_TEST_KUBECONFIG` is set (as `make test` and `.ci/run` do) that cluster is used;
//!   otherwise the first test to ask starts one that stops when the test process ends.
//! - [`Cluster::namespace`] gives a test its own namespace, deleted when the test passes and kept
//!   (with its name printed) when it fails.
//! - [`Cluster::start_own`] starts a private control plane, for tests of cluster-scoped objects,
//!   several clusters, or restarts.
//! - [`wait_until`] waits for a condition with a deadline and says what it last saw when the
//!   deadline passes; tests never sleep for a guessed time.
//! - [`Kubectl`] runs the real `kubectl` against a cluster.
//! - [`GitRepo`] is a real Git repository (bare, served over `file://`) to commit fixtures to;
//!   [`git_http::serve`] serves such repositories over HTTP with Basic auth (`git http-backend`).
//! - [`prometheus::Prometheus`] is Debian's real Prometheus on 127.0.0.1, scraping series the test
//!   sets (for rollout analysis).
//!
//! ```no_run
//! use std::time::Duration;
//! use ferry_testsupport::{Cluster, Probe, wait_until};
//!
//! # async fn example() {
//! let ns = Cluster::shared().namespace("example").await;
//! ns.kubectl().run(&["create", "configmap", "c", "--from-literal=a=b"]);
//! wait_until("configmap c exists", Duration::from_secs(30), || async {
//!     match ns.kubectl().try_run(&["get", "configmap", "c"]) {
//!         Ok(_) => Probe::Done(()),
//!         Err(e) => Probe::Pending(e),
//!     }
//! })
//! .await;
//! # }
//! ```

mod cluster;
mod git;
pub mod git_http;
pub mod http;
mod kubectl;
mod namespace;
pub mod prometheus;
pub mod static_http;
mod wait;

pub use cluster::{Cluster, SHARED_KUBECONFIG_ENV};
pub use git::{FIXTURE_AUTHOR, GitRepo};
pub use kubectl::Kubectl;
pub use namespace::{TEST_NAMESPACE_LABEL, TestNamespace};
pub use wait::{Probe, wait_until};

/// The repository's root directory (where `scripts/` and `testenv/` are).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// Installs the process-wide rustls crypto provider (ring, as the `ferry` binary does) once.
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Another test helper may have installed the same provider first; either way ring is in.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}
