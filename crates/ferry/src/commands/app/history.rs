//! `ferry app history NAME`: the audit trail of syncs.

use super::Common;
use crate::commands::output::{Format, print_structured, print_table, short_sha};

/// Arguments of `ferry app history`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application's name.
    name: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

pub(crate) async fn run(c: &Common, args: &Args) -> anyhow::Result<i32> {
    let (_, app) = c.get(&args.name).await?;
    let history = app.status.map(|s| s.history).unwrap_or_default();
    if args.output != Format::Table {
        print_structured(args.output, &history)?;
        return Ok(0);
    }
    let mut rows = vec![
        ["ID", "DEPLOYED", "REVISION", "AUTHOR", "SUBJECT", "BY"]
            .map(String::from)
            .to_vec(),
    ];
    for h in history.iter().rev() {
        let commit = h.commit.clone().unwrap_or_default();
        let by = match &h.initiated_by {
            Some(i) if i.automated => "automated".to_string(),
            Some(i) => i.username.clone().unwrap_or_default(),
            None => String::new(),
        };
        rows.push(vec![
            h.id.to_string(),
            h.deployed_at.clone().unwrap_or_default(),
            short_sha(h.revision.as_deref().unwrap_or("")).to_string(),
            commit.author,
            commit.subject,
            by,
        ]);
    }
    print_table(&rows);
    Ok(0)
}
