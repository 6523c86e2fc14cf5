//! `ferry`: a GitOps engine that reads Argo CD `Application` and `AppProject` manifests and
//! reconciles Kubernetes clusters to match what Git holds.
//!
//! This file only parses flags, sets up tracing and TLS, and hands over to one subcommand; each
//! subcommand lives in its own file under `commands/`. Exit codes: 0 success, 1 the operation
//! failed (a sync failed, a wait timed out, `app diff` found differences), 2 ferry could not run
//! (bad flags, unreachable cluster, missing app).

mod commands;

use std::process::ExitCode;

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
    /// Local accounts of the server: list, create, update-password, generate-token, delete-token.
    Account(commands::account::Args),
    /// Look at and act on Applications: list, get, diff, sync, refresh, history, rollback, wait, delete.
    App(commands::app::Args),
    /// Look at ApplicationSets: list, get, preview (what one would create, change, delete),
    /// confirm (a held mass deletion).
    Appset(commands::appset::Args),
    /// Git steps of a pipeline: clone, and commit-push with rebase and retry.
    Git(commands::git::Args),
    /// Pipeline step: set image tags or digests in manifests, Kustomizations and Helm values.
    Image(commands::image::Args),
    /// Install ferry's CRDs and the `default` AppProject (and, optionally, its controller).
    Install(commands::install::Args),
    /// Run the controller: reconcile the Applications of a namespace from Git (alone; the UI and
    /// API come from `ferry server`).
    Controller(commands::controller::Args),
    /// Pipeline step: what a change would do, app by app: render every Application under PATH at
    /// two revisions of a clone and diff them (no cluster needed).
    Preview(commands::preview::Args),
    /// Look at and act on canary Rollouts: get, promote, abort, retry.
    Rollout(commands::rollout::Args),
    /// Run the controller and the server (UI, API, webhooks, metrics) in one process.
    Run(commands::run::Args),
    /// Serve the web UI, HTTP API, Git webhooks, probes and metrics (without the controller).
    Server(commands::server::Args),
    /// SOPS files with age keys: encrypt, decrypt, edit, rotate, keygen (compatible with sops).
    Secret(commands::secret::Args),
    /// Pipeline step: validate manifests offline against bundled Kubernetes schemas and CRDs.
    Validate(commands::validate::Args),
    /// Print ferry's version.
    Version(commands::version::Args),
}

/// jemalloc, not the C library's malloc. glibc's malloc kept what a sync once held: `ferry run`
/// at 1,000 apps grew from 60 to 67 MiB after its initial sync while its heap stayed at 22 MB,
/// and at 10,000 apps from 256 to 323 MiB. jemalloc hands freed pages back to the kernel at once
/// (`dirty_decay_ms:0`, set with its other options in `.cargo/config.toml`; the
/// `_RJEM_MALLOC_CONF` environment variable overrides them). bench/README.md, "Memory
/// (evening)".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&cli.log)?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // One crypto provider for every TLS connection in the process (kube, the server, webhooks).
    rustls::crypto::ring::default_provider()
        .install_default()
        .map_err(|_| anyhow::anyhow!("a rustls crypto provider was already installed"))?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Account(args) => commands::account::run(&args).await,
            Command::App(args) => commands::app::run(&args).await,
            Command::Appset(args) => commands::appset::run(&args).await,
            Command::Controller(args) => commands::controller::run(&args).await.map(|()| 0),
            Command::Git(args) => commands::git::run(&args).await,
            Command::Image(args) => commands::image::run(&args),
            Command::Install(args) => commands::install::run(&args).await.map(|()| 0),
            Command::Rollout(args) => commands::rollout::run(&args).await,
            Command::Run(args) => commands::run::run(&args).await.map(|()| 0),
            Command::Server(args) => commands::server::run(&args).await.map(|()| 0),
            Command::Preview(args) => commands::preview::run(&args).await,
            Command::Secret(args) => commands::secret::run(&args).map(|()| 0),
            Command::Validate(args) => commands::validate::run(&args).await,
            Command::Version(args) => commands::version::run(&args).map(|()| 0),
        }
    })
}
