//! `ferry app wait NAME [--sync] [--health] [--timeout 2m]`.

use std::time::Duration;

use ferry_core::application::{HealthStatusCode, SyncStatusCode};

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
    /// How long to wait before giving up (exit code 1).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    timeout: Duration,
}

pub(crate) async fn run(c: &Common, args: &Args) -> anyhow::Result<i32> {
    let (apps, _) = c.get(&args.name).await?;
    // Neither flag: wait for both, as `argocd app wait` does.
    let (want_sync, want_health) = if args.sync || args.health {
        (args.sync, args.health)
    } else {
        (true, true)
    };
    let deadline = tokio::time::Instant::now() + args.timeout;
    loop {
        let status = apps.get(&args.name).await?.status.unwrap_or_default();
        let synced = status.sync.status == SyncStatusCode::Synced;
        let healthy = status.health.status == HealthStatusCode::Healthy;
        if (!want_sync || synced) && (!want_health || healthy) {
            println!(
                "{}: {:?} and {:?}",
                args.name, status.sync.status, status.health.status
            );
            return Ok(0);
        }
        if tokio::time::Instant::now() >= deadline {
            eprintln!(
                "timed out after {}s: {} is {:?} and {:?}",
                args.timeout.as_secs(),
                args.name,
                status.sync.status,
                status.health.status
            );
            return Ok(EXIT_FAILED);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
