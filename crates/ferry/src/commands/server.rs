//! `ferry server`: the HTTP server alone (web UI, JSON API, Git webhooks, probes, metrics),
//! without the controller. Syncs and refreshes it is asked for are carried out by a
//! `ferry controller` (or `ferry run`) watching the same namespace.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use ferry_controller::Differ;
use ferry_server::{ServerConfig, TlsFiles, WebhookSecretSource};

use super::kube::KubeArgs;

/// The server's settings, shared by `ferry run` and `ferry server`.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Where the HTTP server (UI, JSON API, Git webhooks, /metrics, /healthz, /readyz) listens;
    /// `off` (ferry run only) runs the controller alone.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,

    /// Serve without authentication. For a local demo only: anyone who can reach the port can
    /// sync and roll back applications (the UI says so on every page).
    #[arg(long)]
    insecure_no_auth: bool,

    /// The Secret (in the namespace) holding webhook secrets (`webhook.github.secret`,
    /// `webhook.gitlab.secret`, `webhook.gitea.secret`, `webhook.bitbucket.uuid`). Without it
    /// every webhook delivery is refused.
    #[arg(long, value_name = "NAME")]
    webhook_secret: Option<String>,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key-file).
    #[arg(long, value_name = "FILE", requires = "tls_key_file")]
    tls_cert_file: Option<PathBuf>,

    /// The PEM private key of --tls-cert-file.
    #[arg(long, value_name = "FILE", requires = "tls_cert_file")]
    tls_key_file: Option<PathBuf>,

    /// Clients reach this server over HTTPS through a proxy that terminates TLS: mark session
    /// cookies Secure although this server speaks plain HTTP.
    #[arg(long)]
    behind_tls_proxy: bool,
}

impl ServeArgs {
    /// The server's configuration for the Applications of `namespace`; `None` for
    /// `--listen off` when `off_allowed`.
    pub(crate) fn config(
        &self,
        namespace: &str,
        off_allowed: bool,
    ) -> anyhow::Result<Option<ServerConfig>> {
        if self.listen == "off" {
            anyhow::ensure!(
                off_allowed,
                "--listen off: ferry server has nothing to do without an address"
            );
            return Ok(None);
        }
        let addr = self.listen.parse().map_err(|e| {
            anyhow::anyhow!(
                "--listen {:?} is not an address like 127.0.0.1:8080: {e}",
                self.listen
            )
        })?;
        let mut config = ServerConfig::new(addr, namespace);
        config.insecure_no_auth = self.insecure_no_auth;
        if let Some(name) = &self.webhook_secret {
            config.webhook_secrets = WebhookSecretSource::Kubernetes {
                secret_name: name.clone(),
            };
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert_file, &self.tls_key_file) {
            config.tls_files = Some(TlsFiles {
                cert: cert.clone(),
                key: key.clone(),
            });
        }
        config.tls = self.behind_tls_proxy;
        Ok(Some(config))
    }
}

/// Arguments of `ferry server`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    kube: KubeArgs,

    /// The namespace of the Applications (and of the accounts and webhook Secrets).
    #[arg(long, short = 'n', default_value = "ferry", env = "FERRY_NAMESPACE")]
    namespace: String,

    #[command(flatten)]
    serve: ServeArgs,

    #[command(flatten)]
    sources: super::controller::SourceArgs,
}

/// Runs the server until interrupted (Ctrl-C or SIGTERM).
pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let config = args
        .serve
        .config(&args.namespace, false)?
        .context("no address to listen on")?;
    let client = args.kube.client().await?;
    // The differ renders for diffs only; its checkouts go to a directory of this process.
    let cache = tempfile::Builder::new()
        .prefix("ferry-server-")
        .tempdir()
        .context("creating the server's cache directory")?;
    let differ = Arc::new(Differ::new(
        client.clone(),
        args.sources.engine_config(
            &args.namespace,
            std::time::Duration::ZERO,
            cache.path().to_path_buf(),
            8,
        ),
    ));
    let mut metrics = ferry_server::Metrics::new();
    ferry_cluster::ApiMetrics::global().register(metrics.registry_mut());
    ferry_server::Server::bind_with_metrics(config, client, differ, metrics)
        .await?
        .run(shutdown_signal())
        .await?;
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!("cannot listen for SIGTERM: {e}");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    tracing::info!("stopping");
}
