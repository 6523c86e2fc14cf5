//! `ferry app list`.

use ferry_core::application::Application;
use kube::api::ListParams;

use super::Common;
use crate::commands::output::{Format, print_structured, print_table, short_sha};

/// Arguments of `ferry app list`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

pub(crate) async fn run(c: &Common, args: &Args) -> anyhow::Result<i32> {
    let apps = c.apps().await?.list(&ListParams::default()).await?;
    if args.output != Format::Table {
        print_structured(args.output, &apps.items)?;
        return Ok(0);
    }
    let mut rows = vec![
        [
            "NAME", "PROJECT", "SYNC", "HEALTH", "REVISION", "REPO", "PATH",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for app in &apps.items {
        rows.push(row(app));
    }
    print_table(&rows);
    Ok(0)
}

fn row(app: &Application) -> Vec<String> {
    let status = app.status.clone().unwrap_or_default();
    let source = app
        .spec
        .effective_sources()
        .first()
        .map(|s| (*s).clone())
        .unwrap_or_default();
    vec![
        app.metadata.name.clone().unwrap_or_default(),
        app.spec.project.clone(),
        format!("{:?}", status.sync.status),
        format!("{:?}", status.health.status),
        short_sha(status.sync.revision.as_deref().unwrap_or("")).to_string(),
        source.repo_url,
        source.path.unwrap_or_default(),
    ]
}
