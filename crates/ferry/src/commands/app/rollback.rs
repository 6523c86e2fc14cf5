//! `ferry app rollback NAME ID`: sync to the revision of history entry ID and turn automated
//! sync off, as Argo CD does (an automated sync would undo the rollback at once). Re-enable
//! automation in Git when done; the GitOps way to roll back is `git revert` and push.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::Common;
use super::sync::{request_operation, wait_for_operation};
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
    let status = app.status.clone().unwrap_or_default();
    let Some(entry) = status.history.iter().find(|h| h.id == args.id) else {
        let ids: Vec<String> = status.history.iter().map(|h| h.id.to_string()).collect();
        anyhow::bail!(
            "application {} has no history entry {} (entries: {})",
            args.name,
            args.id,
            ids.join(", ")
        );
    };
    let revision = entry.revision.clone().unwrap_or_default();
    if app.spec.is_automated() {
        let patch = json!({"spec": {"syncPolicy": {"automated": null}}});
        apps.patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        println!(
            "automated sync of {} turned off (re-enable it in Git when the rollback is done)",
            args.name
        );
    }
    let request = request_operation(
        &apps,
        &args.name,
        json!({"revision": revision, "prune": args.prune}),
    )
    .await?;
    println!(
        "rolling {} back to history entry {} ({revision})",
        args.name, args.id
    );
    wait_for_operation(&apps, &args.name, &request, args.timeout).await
}
