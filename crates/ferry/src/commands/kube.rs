//! Connecting to a cluster: `--kubeconfig`, `--context`, or in-cluster config.

use std::path::PathBuf;

use anyhow::Context as _;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// Flags shared by every subcommand that talks to a cluster.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct KubeArgs {
    /// Path to a kubeconfig file. Without it: $KUBECONFIG, ~/.kube/config, then the in-cluster
    /// service account.
    #[arg(long, global = true, env = "KUBECONFIG")]
    pub(crate) kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use (default: its current context).
    #[arg(long, global = true)]
    pub(crate) context: Option<String>,
}

impl KubeArgs {
    /// A kube client for these flags.
    pub(crate) async fn client(&self) -> anyhow::Result<kube::Client> {
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                // $KUBECONFIG may hold several paths separated by ':'; kube merges them.
                let paths: Vec<PathBuf> = std::env::split_paths(path).collect();
                let mut merged: Option<Kubeconfig> = None;
                for p in &paths {
                    let kc = Kubeconfig::read_from(p)
                        .with_context(|| format!("reading kubeconfig {}", p.display()))?;
                    merged = Some(match merged {
                        Some(m) => m.merge(kc).with_context(|| format!("merging kubeconfig {}", p.display()))?,
                        None => kc,
                    });
                }
                let kc = merged.context("--kubeconfig names no file")?;
                kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .with_context(|| format!("loading kubeconfig {}", path.display()))?
            }
            None => kube::Config::infer().await.context(
                "no kubeconfig given and none found (~/.kube/config), and not running in a cluster: \
                 pass --kubeconfig",
            )?,
        };
        // Every request is counted (ferry_kube_requests_total) for `ferry run`'s /metrics.
        ferry_cluster::instrumented_client(config).context("building the Kubernetes client")
    }
}
