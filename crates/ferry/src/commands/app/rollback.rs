//! `ferry app rollback NAME ID`: sync to the revision of history entry ID and turn automated
//! sync off, as Argo CD does (an automated sync would undo the rollback at once). Re-enable
//! automation in Git when done; the GitOps way to roll back is `git revert` and push.

use std::time::Duration;

use ferry_controller::operations;

use super::sync::wait_for_operation;
use super::{Common, cli_user};
use crate::commands::controller::parse_duration;

/// Arguments of `ferry app rollback`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application's name.
    name: String,
    /// The history entry to go back to (see `ferry app history`).
    id: i64,
    /// Delete resources the earlier revision does not have.
    #[arg(long)]
    prune: bool,
    /// How long to wait for the result.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    timeout: Duration,
}

pub(crate) async fn run(c: &Common, args: &Args) -> anyhow::Result<i32> {
    let (apps, app) = c.get(&args.name).await?;
    let done = operations::rollback(&apps, &app, args.id, args.prune, &cli_user()).await?;
    if done.automation_turned_off {
        println!(
            "automated sync of {} turned off (re-enable it in Git when the rollback is done)",
            args.name
        );
    }
    println!(
        "rolling {} back to history entry {} ({})",
        args.name, args.id, done.revision
    );
    wait_for_operation(&apps, &args.name, &done.request, args.timeout).await
}
