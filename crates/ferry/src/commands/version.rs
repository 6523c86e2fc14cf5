//! `ferry version`: what this binary is.

use clap::ValueEnum;

/// Output formats of `ferry version`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
}

/// Arguments of `ferry version`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Text)]
    output: Format,
}

/// Prints ferry's version, as text or as JSON for scripts.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    match args.output {
        Format::Text => println!("ferry {version}"),
        Format::Json => println!("{}", serde_json::json!({ "ferry": version })),
    }
    Ok(())
}
