//! `ferry app refresh NAME [--hard]`: sets Argo CD's refresh annotation; ferry compares again
//! and removes it.

use ferry_core::application::REFRESH_ANNOTATION;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::Common;

/// Arguments of `ferry app refresh`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application's name.
    name: String,
    /// Also drop cached renders and fetch the repository again.
    #[arg(long)]
    hard: bool,
}

pub(crate) async fn run(c: &Common, args: &Args) -> anyhow::Result<i32> {
    let (apps, _) = c.get(&args.name).await?;
    let kind = if args.hard { "hard" } else { "normal" };
    let patch = json!({"metadata": {"annotations": {REFRESH_ANNOTATION: kind}}});
    apps.patch(&args.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    println!("application {} refresh ({kind}) requested", args.name);
    Ok(0)
}
