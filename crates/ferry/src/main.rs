//! `ferry`: a GitOps engine that reads Argo CD `Application` and `AppProject` manifests and
//! reconciles Kubernetes clusters to match what Git holds.
//!
//! This file only parses flags, sets up tracing and TLS, and hands over to one subcommand; each
//! subcommand lives in its own file under `commands/`.

mod commands;

use clap::{Parser, Subcommand};

/// ferry: GitOps for Kubernetes, compatible with Argo CD Applications.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// Log filter, as in RUST_LOG (for example `info` or `ferry=debug`).
    #[arg(long, global = true, env = "FERRY_LOG", default_value = "info")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print ferry's version.
    Version(commands::version::Args),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .init();
    // One crypto provider for every TLS connection in the process (kube, the server, webhooks).
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;

    match cli.command {
        Command::Version(args) => commands::version::run(&args),
    }
}
