//! `ferry git clone` and `ferry git commit-push`: the Git steps of a GitOps pipeline.
//!
//! Credentials come from the environment (`FERRY_GIT_USERNAME`/`FERRY_GIT_PASSWORD`, or
//! `GIT_USERNAME`/`GIT_PASSWORD`) or from files (`--username-file`, `--password-file`,
//! `--ssh-key-file`, for example a mounted Kubernetes Secret), and reach git through a
//! credential helper: never in a URL, argv, log or error. A URL with credentials in it is
//! refused.
//!
//! Exit codes: 0 done (also "nothing to commit"), 1 the clone or push was tried and failed
//! (unreachable remote, wrong credentials, a conflict with the remote), 2 the command could
//! not run (bad flags, a URL with credentials, not a git working tree).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use ferry_pipeline::{
    CloneOptions, CommitPushOptions, CommitPushOutcome, Credentials, Identity, PipelineGitError,
    SecretString, clone_repo, commit_and_push,
};

use super::controller::parse_duration;

/// Arguments of `ferry git`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Clone a repository at a branch, tag or commit.
    Clone(CloneArgs),
    /// Stage everything, commit, and push to the upstream branch; rebase and retry when the
    /// remote moved, never force-push.
    CommitPush(CommitPushArgs),
}

/// Where credentials come from.
#[derive(Debug, clap::Args)]
struct CredentialArgs {
    /// A file holding the username (default: $FERRY_GIT_USERNAME, then $GIT_USERNAME).
    #[arg(long, value_name = "FILE")]
    username_file: Option<PathBuf>,
    /// A file holding the password or token (default: $FERRY_GIT_PASSWORD, then
    /// $GIT_PASSWORD).
    #[arg(long, value_name = "FILE")]
    password_file: Option<PathBuf>,
    /// A file holding an SSH private key, for ssh:// and user@host:path URLs.
    #[arg(long, value_name = "FILE")]
    ssh_key_file: Option<PathBuf>,
    /// How long each git command may take.
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    timeout: Duration,
}

/// Arguments of `ferry git clone`.
#[derive(Debug, clap::Args)]
struct CloneArgs {
    /// The repository URL (without credentials).
    url: String,
    /// The directory to clone into (must not exist, or be empty).
    dir: PathBuf,
    /// A branch, a tag or a commit SHA (default: the remote's default branch).
    #[arg(long)]
    revision: Option<String>,
    /// Fetch only this many commits of history.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    depth: Option<u32>,
    #[command(flatten)]
    credentials: CredentialArgs,
}

/// Arguments of `ferry git commit-push`.
#[derive(Debug, clap::Args)]
struct CommitPushArgs {
    /// The working tree.
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// The commit message.
    #[arg(long, short)]
    message: String,
    /// Author and committer, as "Name <email>".
    #[arg(long)]
    author: String,
    /// The remote branch to push to (default: the upstream of the current branch).
    #[arg(long)]
    branch: Option<String>,
    /// How many times to fetch, rebase and push again when someone else pushed first.
    #[arg(long, default_value_t = 5)]
    retries: u32,
    /// Commit and push even when nothing changed (otherwise: "nothing to commit", exit 0).
    #[arg(long)]
    allow_empty: bool,
    #[command(flatten)]
    credentials: CredentialArgs,
}

/// Runs a `ferry git` subcommand; returns the process exit code.
pub(crate) async fn run(args: &Args) -> anyhow::Result<i32> {
    match &args.command {
        Command::Clone(a) => clone(a).await,
        Command::CommitPush(a) => commit_push(a).await,
    }
}

async fn clone(args: &CloneArgs) -> anyhow::Result<i32> {
    let creds = credentials(&args.credentials)?;
    let options = CloneOptions {
        url: args.url.clone(),
        dir: args.dir.clone(),
        revision: args.revision.clone(),
        depth: args.depth,
        timeout: args.credentials.timeout,
    };
    match clone_repo(&options, &creds).await {
        Ok(cloned) => {
            let at = cloned.branch.as_deref().unwrap_or("detached HEAD");
            println!(
                "cloned into {} at {} ({at})",
                args.dir.display(),
                cloned.commit
            );
            Ok(0)
        }
        Err(e) => failed(e),
    }
}

async fn commit_push(args: &CommitPushArgs) -> anyhow::Result<i32> {
    let creds = credentials(&args.credentials)?;
    let options = CommitPushOptions {
        dir: args.dir.clone(),
        message: args.message.clone(),
        author: Identity::parse(&args.author)?,
        branch: args.branch.clone(),
        retries: args.retries,
        allow_empty: args.allow_empty,
        timeout: args.credentials.timeout,
    };
    match commit_and_push(&options, &creds).await {
        Ok(CommitPushOutcome::NothingToCommit) => {
            println!("nothing to commit in {}", args.dir.display());
            Ok(0)
        }
        Ok(CommitPushOutcome::Pushed {
            commit,
            remote,
            branch,
            rebases,
        }) => {
            let rebased = match rebases {
                0 => String::new(),
                1 => " (rebased once: the remote had moved)".to_owned(),
                n => format!(" (rebased {n} times: the remote kept moving)"),
            };
            println!("pushed {commit} to {remote}/{branch}{rebased}");
            Ok(0)
        }
        Err(e) => failed(e),
    }
}

/// Usage errors exit 2 (through `main`); a clone or push that was tried and failed exits 1.
fn failed(e: PipelineGitError) -> anyhow::Result<i32> {
    if e.is_usage_error() {
        return Err(e.into());
    }
    eprintln!("error: {e}");
    Ok(1)
}

/// Credentials from files first, then from the environment. A password without a username
/// uses the username `git` (token-based hosts accept any).
fn credentials(args: &CredentialArgs) -> anyhow::Result<Credentials> {
    let username = match &args.username_file {
        Some(path) => Some(read_secret_file(path, "username")?),
        None => env_var(&["FERRY_GIT_USERNAME", "GIT_USERNAME"]),
    };
    let password = match &args.password_file {
        Some(path) => Some(read_secret_file(path, "password")?),
        None => env_var(&["FERRY_GIT_PASSWORD", "GIT_PASSWORD"]),
    };
    let ssh_private_key = match &args.ssh_key_file {
        Some(path) => Some(SecretString::new(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the SSH key file {}", path.display()))?,
        )),
        None => None,
    };
    let username = match (&username, &password) {
        (None, Some(_)) => Some("git".to_owned()),
        _ => username,
    };
    Ok(Credentials {
        username,
        password: password.map(SecretString::new),
        ssh_private_key,
        insecure: false,
    })
}

/// A one-line secret from a file, without its trailing line break.
fn read_secret_file(path: &Path, what: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the {what} file {}", path.display()))?;
    Ok(text.trim_end_matches(['\r', '\n']).to_owned())
}

fn env_var(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|n| std::env::var(n).ok().filter(|v| !v.is_empty()))
}
