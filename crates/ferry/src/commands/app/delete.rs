//! `ferry app delete NAME [--cascade=false]`: deletes an Application. With cascade (the
//! default, as `argocd app delete`), its resources go too (the resources finalizer is added
//! first); without, they stay (the finalizer is removed first).

use std::time::Duration;

use ferry_core::application::RESOURCES_FINALIZER;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::json;

use super::{Common, EXIT_FAILED};
use crate::commands::controller::parse_duration;

/// Arguments of `ferry app delete`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application's name.
    name: String,
    /// Delete the app's resources too.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    cascade: bool,
    /// Return without waiting for the deletion to finish.
    #[arg(long = "async")]
    no_wait: bool,
    /// How long to wait.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    timeout: Duration,
}

pub(crate) async fn run(c: &Common, args: &Args) -> anyhow::Result<i32> {
    let (apps, app) = c.get(&args.name).await?;
    let mut finalizers = app.metadata.finalizers.clone().unwrap_or_default();
    let had = finalizers
        .iter()
        .any(|f| f.starts_with(RESOURCES_FINALIZER));
    if args.cascade && !had {
        finalizers.push(RESOURCES_FINALIZER.to_string());
    } else if !args.cascade && had {
        finalizers.retain(|f| !f.starts_with(RESOURCES_FINALIZER));
    }
    if finalizers != app.metadata.finalizers.clone().unwrap_or_default() {
        let patch = json!({"metadata": {"finalizers": finalizers}});
        apps.patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
    }
    apps.delete(&args.name, &DeleteParams::default()).await?;
    println!(
        "deleting application {} ({})",
        args.name,
        if args.cascade {
            "with its resources"
        } else {
            "keeping its resources"
        }
    );
    if args.no_wait {
        return Ok(0);
    }
    let deadline = tokio::time::Instant::now() + args.timeout;
    while apps.get_opt(&args.name).await?.is_some() {
        if tokio::time::Instant::now() >= deadline {
            eprintln!(
                "timed out after {}s waiting for {} to be deleted",
                args.timeout.as_secs(),
                args.name
            );
            return Ok(EXIT_FAILED);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    println!("application {} deleted", args.name);
    Ok(0)
}
