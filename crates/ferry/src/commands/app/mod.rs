//! `ferry app ...`: look at and act on Applications straight through the kubeconfig, no ferry
//! server needed. Exit codes: 0 success, 1 the operation failed or a wait timed out, 2 the
//! command could not run (bad flags, app not found, cluster unreachable).

mod delete;
mod diff;
mod get;
mod history;
mod list;
mod refresh;
mod rollback;
mod sync;
mod wait;

use anyhow::Context as _;
use ferry_core::application::Application;
use kube::api::Api;

use super::kube::KubeArgs;

/// Exit code for "the operation failed" (as opposed to "could not run").
pub(crate) const EXIT_FAILED: i32 = 1;

/// Flags every `ferry app` subcommand takes.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct Common {
    #[command(flatten)]
    pub(crate) kube: KubeArgs,
    /// The namespace of the Applications (where ferry runs).
    #[arg(
        long,
        short = 'n',
        global = true,
        default_value = "ferry",
        env = "FERRY_NAMESPACE"
    )]
    pub(crate) namespace: String,
}

impl Common {
    pub(crate) async fn apps(&self) -> anyhow::Result<Api<Application>> {
        Ok(Api::namespaced(self.kube.client().await?, &self.namespace))
    }

    pub(crate) async fn get(&self, name: &str) -> anyhow::Result<(Api<Application>, Application)> {
        let apps = self.apps().await?;
        let app = apps
            .get_opt(name)
            .await
            .with_context(|| format!("reading application {name} in namespace {}", self.namespace))?
            .with_context(|| {
                format!(
                    "application {name} not found in namespace {} (use -n to pick another)",
                    self.namespace
                )
            })?;
        Ok((apps, app))
    }
}

/// Arguments of `ferry app`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List applications with their sync and health status.
    List(list::Args),
    /// Show one application: source, destination, status, resources, conditions.
    Get(get::Args),
    /// Show what differs between Git and the cluster (Secret values masked).
    Diff(diff::Args),
    /// Sync an application now (optionally to a revision, with prune, or as a dry run).
    Sync(sync::Args),
    /// Ask ferry to compare the application with Git again (`--hard` also drops cached renders).
    Refresh(refresh::Args),
    /// Show the sync history with commit, author and subject.
    History(history::Args),
    /// Sync to an earlier history entry and turn automated sync off.
    Rollback(rollback::Args),
    /// Wait until an application is synced and/or healthy.
    Wait(wait::Args),
    /// Delete an application (with its resources unless --cascade=false).
    Delete(delete::Args),
}

/// Runs a `ferry app` subcommand; returns the process exit code.
pub(crate) async fn run(args: &Args) -> anyhow::Result<i32> {
    let c = &args.common;
    match &args.command {
        Command::List(a) => list::run(c, a).await,
        Command::Get(a) => get::run(c, a).await,
        Command::Diff(a) => diff::run(c, a).await,
        Command::Sync(a) => sync::run(c, a).await,
        Command::Refresh(a) => refresh::run(c, a).await,
        Command::History(a) => history::run(c, a).await,
        Command::Rollback(a) => rollback::run(c, a).await,
        Command::Wait(a) => wait::run(c, a).await,
        Command::Delete(a) => delete::run(c, a).await,
    }
}

/// The user named in an operation's `initiatedBy`: $USER, else "ferry-cli".
pub(crate) fn cli_user() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| "ferry-cli".into())
}
