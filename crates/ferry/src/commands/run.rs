//! `ferry run`: the controller and the server (UI, JSON API, webhooks, metrics) in one
//! process, out of cluster (with a kubeconfig) or in cluster.

use super::controller::ControllerArgs;
use super::kube::KubeArgs;
use super::server::ServeArgs;

/// Arguments of `ferry run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    kube: KubeArgs,

    #[command(flatten)]
    controller: ControllerArgs,

    #[command(flatten)]
    serve: ServeArgs,

    /// Also serve `/metrics` and `/healthz` without authentication on this address, for
    /// Prometheus (e.g. 0.0.0.0:8082; keep it inside the cluster network). `off` (the
    /// default): `/metrics` is only on --listen, for signed-in users and API tokens.
    #[arg(long, default_value = "off")]
    metrics_listen: String,
}

/// Runs the controller and the server until interrupted.
pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let client = args.kube.client().await?;
    let mut metrics = ferry_server::Metrics::new();
    let engine = args.controller.engine(client.clone(), &mut metrics)?;
    // ferry_app_info from the controller's watch: no LIST of every Application per scrape.
    let watched = engine.clone();
    metrics.set_app_source(std::sync::Arc::new(move || watched.applications()));
    let appsets = args.controller.appset_controller(client.clone(), &engine)?;
    let metrics_addr: Option<std::net::SocketAddr> = match args.metrics_listen.as_str() {
        "off" => None,
        listen => Some(listen.parse().map_err(|e| {
            anyhow::anyhow!(
                "--metrics-listen {listen:?} is not an address like 0.0.0.0:8082 (or off): {e}"
            )
        })?),
    };
    let apps = kube::Api::namespaced(client.clone(), &args.controller.namespace);
    let rollouts = args.controller.run_rollouts(client.clone(), None);
    let (server, metrics) = match args.serve.config(&args.controller.namespace, true)? {
        None => (None, std::sync::Arc::new(metrics)),
        Some(config) => {
            let server =
                ferry_server::Server::bind_with_metrics(config, client, engine.differ(), metrics)
                    .await?;
            tracing::info!(address = %server.local_addr(), "serving the API, UI, webhooks and metrics");
            let metrics = server.metrics();
            (Some(server), metrics)
        }
    };
    let metrics_serving = async move {
        match metrics_addr {
            Some(addr) => ferry_server::serve_metrics(
                addr,
                metrics,
                Some(apps),
                super::server::shutdown_signal(),
            )
            .await
            .map_err(anyhow::Error::from),
            None => std::future::pending().await,
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
        () = super::controller::run_controllers(engine, appsets, args.controller.workers) => Ok(()),
        rollouts = rollouts => rollouts,
        served = serving => served,
        served = metrics_serving => served,
        _ = super::server::shutdown_signal() => {
            tracing::info!("interrupted, stopping");
            Ok(())
        }
    }
}
