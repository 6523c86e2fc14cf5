//! `ferry run`: the controller, out of cluster (with a kubeconfig) or in cluster.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_controller::{Engine, EngineConfig, run_controller};

use super::kube::KubeArgs;

/// Arguments of `ferry run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    kube: KubeArgs,

    /// The namespace whose Applications ferry reconciles (`argocd` makes an Argo CD repo work
    /// with no edits).
    #[arg(long, short = 'n', default_value = "ferry")]
    namespace: String,

    /// How often repositories are checked for new commits (e.g. 30s, 3m, 1h).
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    poll_interval: Duration,

    /// How many apps are reconciled at once.
    #[arg(long, default_value_t = 8)]
    workers: usize,

    /// How many API requests one app makes at once while comparing or applying.
    #[arg(long, default_value_t = 8)]
    per_app_concurrency: usize,

    /// Where repository mirrors and checkouts are kept (default: a `ferry` folder in the
    /// system's cache or temp directory).
    #[arg(long)]
    cache_dir: Option<PathBuf>,

    /// Where the HTTP server (JSON API, Git webhooks, /metrics, /healthz, /readyz) listens;
    /// `off` runs the controller alone.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,

    /// Serve the API without authentication. For a local demo only: anyone who can reach the
    /// port can sync and roll back applications.
    #[arg(long)]
    insecure_no_auth: bool,

    /// The Secret (in --namespace) holding webhook secrets (`webhook.github.secret`, ...).
    #[arg(long, value_name = "NAME")]
    webhook_secret: Option<String>,
}

/// Parses `500ms`, `30s`, `3m`, `1h` or a plain number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 3m or 1h"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}: use ms, s, m or h"
            ));
        }
    })
}

/// Runs the controller until interrupted.
pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let client = args.kube.client().await?;
    let cache_dir = args.cache_dir.clone().unwrap_or_else(|| {
        std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir)
            .join("ferry")
    });
    std::fs::create_dir_all(&cache_dir)?;
    let engine = Arc::new(Engine::new(
        client.clone(),
        EngineConfig {
            namespace: args.namespace.clone(),
            field_manager: "ferry".into(),
            poll_interval: args.poll_interval,
            cache_dir,
            per_app_concurrency: args.per_app_concurrency,
        },
    ));
    let server = match args.listen.as_str() {
        "off" => None,
        listen => {
            let addr = listen.parse().map_err(|e| {
                anyhow::anyhow!(
                    "--listen {listen:?} is not an address like 127.0.0.1:8080 (or off): {e}"
                )
            })?;
            let mut config = ferry_server::ServerConfig::new(addr, args.namespace.clone());
            config.insecure_no_auth = args.insecure_no_auth;
            if let Some(name) = &args.webhook_secret {
                config.webhook_secrets = ferry_server::WebhookSecretSource::Kubernetes {
                    secret_name: name.clone(),
                };
            }
            // One registry for the process: the server's metrics and the controller's.
            let mut metrics = ferry_server::Metrics::new();
            engine.metrics.register(metrics.registry_mut());
            let server = ferry_server::Server::bind_with_metrics(
                config,
                client.clone(),
                engine.clone(),
                metrics,
            )
            .await?;
            tracing::info!(address = %server.local_addr(), "serving the API, webhooks and metrics");
            Some(server)
        }
    };
    let serving = async move {
        match server {
            Some(s) => s
                .run(super::server::shutdown_signal())
                .await
                .map_err(anyhow::Error::from),
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        () = run_controller(engine, args.workers) => Ok(()),
        served = serving => served,
        _ = super::server::shutdown_signal() => {
            tracing::info!("interrupted, stopping");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("m").is_err());
    }
}
