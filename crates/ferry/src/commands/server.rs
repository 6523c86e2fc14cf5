//! `ferry server`: the HTTP server alone (JSON API, Git webhooks, probes, metrics), without the
//! controller. Syncs and refreshes it is asked for are carried out by a `ferry run` watching
//! the same namespace.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use ferry_controller::{Engine, EngineConfig};
use ferry_server::{ServerConfig, WebhookSecretSource};

use super::kube::KubeArgs;

/// Arguments of `ferry server`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    kube: KubeArgs,
    /// Where to listen (address:port).
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The namespace of the Applications (and of the webhook Secret).
    #[arg(long, short = 'n', default_value = "ferry", env = "FERRY_NAMESPACE")]
    namespace: String,
    /// Serve the API without authentication. Only for local use: anyone who can reach the
    /// address can sync and roll back applications.
    #[arg(long)]
    insecure_no_auth: bool,
    /// The Secret holding webhook secrets (keys `webhook.github.secret`,
    /// `webhook.gitlab.secret`, `webhook.gitea.secret`, `webhook.bitbucket.uuid`). Without it
    /// every webhook delivery is refused.
    #[arg(long, value_name = "NAME")]
    webhook_secret: Option<String>,
}

/// Runs the server until interrupted (Ctrl-C or SIGTERM).
pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let mut config = ServerConfig::new(args.listen, args.namespace.clone());
    config.insecure_no_auth = args.insecure_no_auth;
    if let Some(name) = &args.webhook_secret {
        config.webhook_secrets = WebhookSecretSource::Kubernetes {
            secret_name: name.clone(),
        };
    }
    let client = args.kube.client().await?;
    // The engine only renders for diffs here; its checkouts go to a directory of this process.
    let cache = tempfile::Builder::new()
        .prefix("ferry-server-")
        .tempdir()
        .context("creating the server's cache directory")?;
    let engine = Arc::new(Engine::new(
        client.clone(),
        EngineConfig {
            namespace: args.namespace.clone(),
            field_manager: "ferry".into(),
            poll_interval: std::time::Duration::ZERO,
            cache_dir: cache.path().to_path_buf(),
            per_app_concurrency: 8,
        },
    ));
    ferry_server::serve(config, client, engine, shutdown_signal()).await?;
    Ok(())
}

/// Completes on Ctrl-C or SIGTERM.
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
    tracing::info!("stopping the server");
}
