//! `ferry run`: the controller and the server (UI, JSON API, webhooks, metrics) in one
//! process, out of cluster (with a kubeconfig) or in cluster.

use super::controller::ControllerArgs;
use super::kube::KubeArgs;
use super::server::ServeArgs;
use ferry_controller::run_controller;

/// Arguments of `ferry run`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    kube: KubeArgs,

    #[command(flatten)]
    controller: ControllerArgs,

    #[command(flatten)]
    serve: ServeArgs,
}

/// Runs the controller and the server until interrupted.
pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let client = args.kube.client().await?;
    let mut metrics = ferry_server::Metrics::new();
    let engine = args.controller.engine(client.clone(), &mut metrics)?;
    let server = match args.serve.config(&args.controller.namespace, true)? {
        None => None,
        Some(config) => {
            let server =
                ferry_server::Server::bind_with_metrics(config, client, engine.clone(), metrics)
                    .await?;
            tracing::info!(address = %server.local_addr(), "serving the API, UI, webhooks and metrics");
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
        () = run_controller(engine, args.controller.workers) => Ok(()),
        served = serving => served,
        _ = super::server::shutdown_signal() => {
            tracing::info!("interrupted, stopping");
            Ok(())
        }
    }
}
