//! `ferry app refresh NAME [--hard]`: sets Argo CD's refresh annotation; ferry compares again
//! and removes it.

use ferry_controller::operations::{self, RefreshType};

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
    let kind = RefreshType::hard_if(args.hard);
    operations::request_refresh(&apps, &args.name, kind).await?;
    println!(
        "application {} refresh ({}) requested",
        args.name,
        kind.as_str()
    );
    Ok(0)
}
