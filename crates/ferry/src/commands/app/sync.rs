//! `ferry app sync NAME`: requests a sync through the Application's `operation` field, as Argo
//! CD's CLI does, and waits for its result.

use std::time::Duration;

use ferry_core::application::{Application, OperationPhase, REQUEST_INFO, sync_request_operation};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

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
    let (apps, _) = c.get(&args.name).await?;
    let mut sync = json!({"prune": args.prune, "dryRun": args.dry_run});
    if let Some(r) = &args.revision {
        sync["revision"] = json!(r);
    }
    let request = request_operation(&apps, &args.name, sync).await?;
    println!("sync of {} requested", args.name);
    if args.no_wait {
        return Ok(0);
    }
    wait_for_operation(&apps, &args.name, &request, args.timeout).await
}

/// Sets `.operation.sync` to `sync`, marked with a request id, refusing when an operation is
/// already pending. Returns the request id.
pub(crate) async fn request_operation(
    apps: &Api<Application>,
    name: &str,
    sync: serde_json::Value,
) -> anyhow::Result<String> {
    let app = apps.get(name).await?;
    if app.operation.is_some() {
        anyhow::bail!(
            "application {name} already has an operation pending; wait for it or try again later"
        );
    }
    let (operation, request) = sync_request_operation(sync, &cli_user());
    let patch = json!({"operation": operation});
    apps.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    Ok(request)
}

/// Waits until the operation with request id `request` has finished; prints its result and
/// returns 0 when it succeeded, [`EXIT_FAILED`] otherwise.
pub(crate) async fn wait_for_operation(
    apps: &Api<Application>,
    name: &str,
    request: &str,
    timeout: Duration,
) -> anyhow::Result<i32> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let app = apps.get(name).await?;
        if app.operation.is_none()
            && let Some(op) = app.status.as_ref().and_then(|s| s.operation_state.clone())
            && op
                .operation
                .info
                .iter()
                .any(|i| i.name == REQUEST_INFO && i.value == request)
            && op.phase.is_completed()
        {
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
            return Ok(if op.phase == OperationPhase::Succeeded {
                0
            } else {
                EXIT_FAILED
            });
        }
        if tokio::time::Instant::now() >= deadline {
            eprintln!(
                "timed out after {}s waiting for the sync of {name} to finish",
                timeout.as_secs()
            );
            return Ok(EXIT_FAILED);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
