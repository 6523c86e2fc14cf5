//! `ferry app sync NAME`: requests a sync through the Application's `operation` field, as Argo
//! CD's CLI does, and waits for its result.

use std::time::Duration;

use ferry_controller::operations::{self, OperationError, SyncParams};
use ferry_core::application::{Application, OperationPhase};
use kube::api::Api;

use super::{Common, EXIT_FAILED, cli_user};
use crate::commands::controller::parse_duration;

/// Arguments of `ferry app sync`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application's name.
    name: String,
    /// The revision to sync to (branch, tag or commit); default: the app's target revision.
    #[arg(long)]
    revision: Option<String>,
    /// Delete tracked resources that are no longer in Git.
    #[arg(long)]
    prune: bool,
    /// Only report what would be done.
    #[arg(long)]
    dry_run: bool,
    /// Return once the sync is requested, without waiting for its result.
    #[arg(long = "async")]
    no_wait: bool,
    /// How long to wait for the result.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    timeout: Duration,
}

pub(crate) async fn run(c: &Common, args: &Args) -> anyhow::Result<i32> {
    let (apps, app) = c.get(&args.name).await?;
    let params = SyncParams {
        revision: args.revision.clone(),
        prune: args.prune,
        dry_run: args.dry_run,
        sync_options: Vec::new(),
    };
    let request = operations::request_sync(&apps, &app, &params, &cli_user()).await?;
    println!("sync of {} requested", args.name);
    if args.no_wait {
        return Ok(0);
    }
    wait_for_operation(&apps, &args.name, &request, args.timeout).await
}

/// Waits until the operation with request id `request` has finished; prints its result and
/// returns 0 when it succeeded, [`EXIT_FAILED`] otherwise (also when the wait timed out).
pub(crate) async fn wait_for_operation(
    apps: &Api<Application>,
    name: &str,
    request: &str,
    timeout: Duration,
) -> anyhow::Result<i32> {
    let op = match operations::wait_for_operation(apps, name, request, timeout).await {
        Ok(op) => op,
        Err(e @ OperationError::Timeout { .. }) => {
            eprintln!("{e}");
            return Ok(EXIT_FAILED);
        }
        Err(e) => return Err(e.into()),
    };
    let message = op.message.unwrap_or_default();
    println!("{:?}: {message}", op.phase);
    for r in op.sync_result.map(|r| r.resources).unwrap_or_default() {
        let status = r.status.map(|s| format!("{s:?}")).unwrap_or_default();
        println!(
            "  {status:<13} {}/{} {}",
            r.kind,
            r.name,
            r.message.unwrap_or_default()
        );
    }
    Ok(if op.phase == OperationPhase::Succeeded {
        0
    } else {
        EXIT_FAILED
    })
}
