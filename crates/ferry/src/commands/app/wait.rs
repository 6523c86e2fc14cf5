//! `ferry app wait NAME [--sync] [--health] [--operation] [--timeout 2m]`.

use std::time::Duration;

use ferry_controller::operations::{self, OperationError, WantedStatus};

use super::{Common, EXIT_FAILED};
use crate::commands::controller::parse_duration;

/// Arguments of `ferry app wait`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application's name.
    name: String,
    /// Wait until the app is Synced.
    #[arg(long)]
    sync: bool,
    /// Wait until the app is Healthy.
    #[arg(long)]
    health: bool,
    /// Wait until no operation is running (a sync goes on while its hooks run).
    #[arg(long)]
    operation: bool,
    /// How long to wait before giving up (exit code 1).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    timeout: Duration,
}

pub(crate) async fn run(c: &Common, args: &Args) -> anyhow::Result<i32> {
    let (apps, _) = c.get(&args.name).await?;
    // No flag: wait for all three, as `argocd app wait` does.
    let wanted = if args.sync || args.health || args.operation {
        WantedStatus {
            synced: args.sync,
            healthy: args.health,
            settled: args.operation,
        }
    } else {
        WantedStatus {
            synced: true,
            healthy: true,
            settled: true,
        }
    };
    match operations::wait_for_status(&apps, &args.name, wanted, args.timeout).await {
        Ok(status) => {
            println!(
                "{}: {:?} and {:?}",
                args.name, status.sync.status, status.health.status
            );
            Ok(0)
        }
        Err(e @ OperationError::Timeout { .. }) => {
            eprintln!("{e}");
            Ok(EXIT_FAILED)
        }
        Err(e) => Err(e.into()),
    }
}
