//! `ferry git clone` and `ferry git commit-push`: the Git steps of a pipeline, done safely.
//!
//! [`clone_repo`] clones a branch, tag or commit (optionally shallow). [`commit_and_push`]
//! stages everything, commits with the given author (also as committer) and pushes to the
//! branch the checkout came from; when the remote moved meanwhile (another pipeline pushed),
//! it fetches, rebases and pushes again, a few times with a short backoff. It never
//! force-pushes: a real conflict aborts the rebase and fails naming the files, and the remote
//! is left as it was.
//!
//! Every `git` is built by the engine's hardened command builder
//! ([`ferry_source::git::GitCommand`]) and run through [`ferry_source::run_command`]: a
//! private temporary `HOME` with an empty global config, no system config, no terminal
//! prompts, `LC_ALL=C`, only the `file`, `git`, `http`, `https` and `ssh` transports, git's
//! low-speed limit (a server that stops sending fails the step in about 30 s), and a timeout;
//! this module adds hooks and signing off. Credentials never appear in argv, URLs, logs or
//! errors:
//!
//! - username and password reach git through a credential helper whose text is in argv but
//!   whose values come from the child's environment (`FERRY_GIT_USERNAME`,
//!   `FERRY_GIT_PASSWORD`); stderr is redacted before it goes into an error;
//! - an SSH key is copied to a `0600` file in the private `HOME` (removed afterwards) and named
//!   in `GIT_SSH_COMMAND`;
//! - a URL with credentials in it (`https://user:token@host/…`) is refused, and the refusal
//!   does not repeat them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ferry_source::command::{CommandError, CommandSpec, run_command};
use ferry_source::git::{ALL_PROTOCOLS, Credentials, GitCommand, HostKeys, redact_url};
use tempfile::TempDir;

/// The default timeout of one git command.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// Who a commit is by (`Name <email>`); used as author and committer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
}

impl Identity {
    /// Parses `Name <email>`.
    pub fn parse(text: &str) -> Result<Identity, PipelineGitError> {
        let err = || PipelineGitError::InvalidAuthor {
            author: text.to_owned(),
        };
        let text = text.trim();
        let (name, rest) = text.split_once('<').ok_or_else(err)?;
        let email = rest.strip_suffix('>').ok_or_else(err)?.trim();
        let name = name.trim();
        if name.is_empty()
            || email.is_empty()
            || email.contains(['<', '>'])
            || name.contains(['<', '>'])
            || text.chars().any(char::is_control)
        {
            return Err(err());
        }
        Ok(Identity {
            name: name.to_owned(),
            email: email.to_owned(),
        })
    }
}

/// What to clone.
#[derive(Clone, Debug)]
pub struct CloneOptions {
    /// The repository URL (no credentials in it).
    pub url: String,
    /// Where to clone to (must not exist, or be empty).
    pub dir: PathBuf,
    /// A branch, a tag or a commit SHA; `None`: the remote's default branch.
    pub revision: Option<String>,
    /// Clone only this many commits of history.
    pub depth: Option<u32>,
    /// Timeout of each git command.
    pub timeout: Duration,
}

/// What [`clone_repo`] produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cloned {
    /// The commit checked out.
    pub commit: String,
    /// The branch checked out, `None` for a tag or a commit (detached `HEAD`).
    pub branch: Option<String>,
}

/// What to commit and where to push it.
#[derive(Clone, Debug)]
pub struct CommitPushOptions {
    /// The working tree.
    pub dir: PathBuf,
    /// The commit message.
    pub message: String,
    /// Author and committer.
    pub author: Identity,
    /// The remote branch to push to; `None`: the upstream of the current branch.
    pub branch: Option<String>,
    /// How many times to fetch, rebase and push again when the remote moved.
    pub retries: u32,
    /// Commit (and push) even when nothing changed.
    pub allow_empty: bool,
    /// Timeout of each git command.
    pub timeout: Duration,
}

/// What [`commit_and_push`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommitPushOutcome {
    /// The working tree had no changes (and `allow_empty` was off): nothing was committed or
    /// pushed.
    NothingToCommit,
    /// The commit is on the remote branch.
    Pushed {
        /// The pushed commit (after any rebase).
        commit: String,
        /// The remote name.
        remote: String,
        /// The branch pushed to.
        branch: String,
        /// How many times the remote had moved and the commit was rebased.
        rebases: u32,
    },
}

/// Why a pipeline git step failed. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum PipelineGitError {
    /// The URL has credentials in it.
    #[error(
        "the repository URL {url} has credentials in it; remove them from the URL and pass them with FERRY_GIT_USERNAME/FERRY_GIT_PASSWORD or --username-file/--password-file"
    )]
    UrlHasCredentials {
        /// The URL with its user information replaced by `***`.
        url: String,
    },
    /// The URL is empty or looks like an option.
    #[error(
        "repository URL {url:?} is not valid: it must be non-empty and must not start with '-'"
    )]
    InvalidUrl {
        /// The URL.
        url: String,
    },
    /// A revision or branch name git could misread.
    #[error("{what} {name:?} is not a valid branch, tag or commit name")]
    InvalidName {
        /// `revision` or `branch`.
        what: &'static str,
        /// The name.
        name: String,
    },
    /// `--author` is not `Name <email>`.
    #[error("author {author:?} is not valid: write it as \"Name <email>\"")]
    InvalidAuthor {
        /// As given.
        author: String,
    },
    /// The commit message is empty.
    #[error("the commit message is empty: pass --message")]
    EmptyMessage,
    /// `dir` is not inside a git working tree.
    #[error("{dir} is not a git working tree: {source}")]
    NotARepository {
        /// The directory.
        dir: PathBuf,
        /// What git said.
        #[source]
        source: Box<CommandError>,
    },
    /// There is no branch to push to.
    #[error("{dir}: {reason}; pass --branch to name the remote branch to push to")]
    NoTargetBranch {
        /// The working tree.
        dir: PathBuf,
        /// Why (detached HEAD, no upstream).
        reason: String,
    },
    /// A git command failed.
    #[error("{action} failed: {source}")]
    Git {
        /// What was being done (`cloning https://host/repo`).
        action: String,
        /// What git said (credentials masked).
        #[source]
        source: Box<CommandError>,
    },
    /// The remote branch has a change that conflicts with ours.
    #[error(
        "pushing to {remote}/{branch}: the remote has changes that conflict with this commit in {}; the rebase was aborted, the remote is unchanged and the local commit {commit} is kept: update the files from the latest {branch} and run the pipeline again",
        files.join(", ")
    )]
    Conflict {
        /// The remote.
        remote: String,
        /// The branch.
        branch: String,
        /// The local commit that could not be rebased.
        commit: String,
        /// The conflicting files.
        files: Vec<String>,
    },
    /// The remote moved on every attempt.
    #[error(
        "pushing to {remote}/{branch}: the remote moved again on each of {attempts} attempts; try again later or raise --retries"
    )]
    RemoteKeptMoving {
        /// The remote.
        remote: String,
        /// The branch.
        branch: String,
        /// How many pushes were tried.
        attempts: u32,
    },
    /// A local file or directory could not be used.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

impl PipelineGitError {
    /// Whether the step could not even start (bad input, not a repository) as opposed to
    /// having been tried and failed (network, credentials, conflict).
    pub fn is_usage_error(&self) -> bool {
        matches!(
            self,
            PipelineGitError::UrlHasCredentials { .. }
                | PipelineGitError::InvalidUrl { .. }
                | PipelineGitError::InvalidName { .. }
                | PipelineGitError::InvalidAuthor { .. }
                | PipelineGitError::EmptyMessage
                | PipelineGitError::NotARepository { .. }
                | PipelineGitError::NoTargetBranch { .. }
                | PipelineGitError::Io { .. }
        )
    }
}

/// Refuses URLs with user information that could be a secret: any `user:password@`, and any
/// userinfo at all in `http(s)://` and `git://` URLs (a token is often written as the user).
/// `ssh://git@host/…` and `git@host:path` are fine.
pub fn check_url(url: &str) -> Result<(), PipelineGitError> {
    if url.trim().is_empty() || url.starts_with('-') {
        return Err(PipelineGitError::InvalidUrl {
            url: redact_url(url),
        });
    }
    if let Some((scheme, rest)) = url.split_once("://") {
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        if let Some((userinfo, host)) = authority.rsplit_once('@') {
            let scheme_lc = scheme.to_ascii_lowercase();
            if userinfo.contains(':') || scheme_lc != "ssh" {
                let path = &rest[authority.len()..];
                return Err(PipelineGitError::UrlHasCredentials {
                    url: format!("{scheme}://***@{host}{path}"),
                });
            }
        }
    }
    Ok(())
}

fn check_name(what: &'static str, name: &str) -> Result<(), PipelineGitError> {
    let bad = name.is_empty()
        || name.starts_with(['-', '/'])
        || name.ends_with(['/', '.'])
        || name.ends_with(".lock")
        || name.contains("..")
        || name.contains("@{")
        || name
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if bad {
        return Err(PipelineGitError::InvalidName {
            what,
            name: name.to_owned(),
        });
    }
    Ok(())
}

/// Runs git the way `ferry_source::git` does, for one pipeline step.
struct Runner {
    home: TempDir,
    timeout: Duration,
    creds: Credentials,
    identity: Option<Identity>,
    key_file: Option<PathBuf>,
}

impl Runner {
    fn new(
        creds: &Credentials,
        identity: Option<Identity>,
        timeout: Duration,
    ) -> Result<Runner, PipelineGitError> {
        let home = tempfile::Builder::new()
            .prefix("ferry-git-home-")
            .tempdir()
            .map_err(|source| PipelineGitError::Io {
                action: "creating a private HOME for git in".into(),
                path: std::env::temp_dir(),
                source,
            })?;
        let io = |action: &str, path: &Path| {
            let action = action.to_owned();
            let path = path.to_owned();
            move |source| PipelineGitError::Io {
                action,
                path,
                source,
            }
        };
        let config = home.path().join("gitconfig");
        std::fs::write(&config, b"").map_err(io("creating", &config))?;
        let key_file = match &creds.ssh_private_key {
            Some(key) if !key.expose().is_empty() => {
                let path = home.path().join("ssh-key");
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let mut text = key.expose().to_owned();
                if !text.ends_with('\n') {
                    text.push('\n'); // ssh rejects a key without its final newline
                }
                let mut file = options.open(&path).map_err(io("writing SSH key", &path))?;
                std::io::Write::write_all(&mut file, text.as_bytes())
                    .map_err(io("writing SSH key", &path))?;
                Some(path)
            }
            _ => None,
        };
        Ok(Runner {
            home,
            timeout,
            creds: creds.clone(),
            identity,
            key_file,
        })
    }

    /// The hardened git command line (ferry-source's [`GitCommand`]) with the pipeline's
    /// additions: no hooks, no signing, the commit identity, and ssh host keys accepted on
    /// first sight (the `HOME` is thrown away after the step).
    fn spec(&self, cwd: &Path, args: &[&str]) -> CommandSpec {
        let mut git = GitCommand::new(self.home.path(), self.timeout)
            .protocols(ALL_PROTOCOLS)
            .host_keys(HostKeys::AcceptNew)
            .config("core.hooksPath=/dev/null")
            .config("commit.gpgSign=false")
            .config("advice.pushUpdateRejected=false");
        if let Some(id) = &self.identity {
            git = git
                .env("GIT_AUTHOR_NAME", &id.name)
                .env("GIT_AUTHOR_EMAIL", &id.email)
                .env("GIT_COMMITTER_NAME", &id.name)
                .env("GIT_COMMITTER_EMAIL", &id.email);
        }
        git.build(cwd, args, &self.creds, self.key_file.as_deref())
    }

    async fn run(&self, cwd: &Path, args: &[&str]) -> Result<String, CommandError> {
        let spec = self.spec(cwd, args);
        tracing::debug!(command = %spec.display(), "running git");
        run_command(spec).await.map(|out| out.stdout_text())
    }

    async fn run_with_stdin(
        &self,
        cwd: &Path,
        args: &[&str],
        stdin: &str,
    ) -> Result<String, CommandError> {
        let spec = self.spec(cwd, args).with_stdin(stdin.as_bytes().to_vec());
        tracing::debug!(command = %spec.display(), "running git");
        run_command(spec).await.map(|out| out.stdout_text())
    }
}

fn git_error(action: impl Into<String>) -> impl FnOnce(CommandError) -> PipelineGitError {
    let action = action.into();
    move |source| PipelineGitError::Git {
        action,
        source: Box::new(source),
    }
}

/// Whether `revision` looks like a (possibly abbreviated) commit SHA.
fn is_sha_like(revision: &str) -> bool {
    (7..=64).contains(&revision.len()) && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Runs a read-only git command (`rev-parse`, `config --get-regexp`) in the local repository
/// `dir` with the same locked-down environment as the other steps; its standard output.
pub async fn query_repo(dir: &Path, args: &[&str]) -> Result<String, PipelineGitError> {
    let runner = Runner::new(&Credentials::none(), None, Duration::from_secs(60))?;
    runner.run(dir, args).await.map_err(git_error(format!(
        "git {} in {}",
        args.join(" "),
        dir.display()
    )))
}

/// Clones `options.url` into `options.dir` and checks out the revision.
///
/// A branch is checked out as a branch that tracks the remote one (so
/// [`commit_and_push`] knows where to push); a tag or a commit SHA gives a detached `HEAD`.
/// With a depth and a commit that is not a branch tip, the commit is fetched by its SHA (the
/// server must allow it; Git's protocol v2 servers do).
pub async fn clone_repo(
    options: &CloneOptions,
    creds: &Credentials,
) -> Result<Cloned, PipelineGitError> {
    check_url(&options.url)?;
    if let Some(revision) = &options.revision {
        check_name("revision", revision)?;
    }
    let runner = Runner::new(creds, None, options.timeout)?;
    let dir = options.dir.to_string_lossy().into_owned();
    let depth = options.depth.map(|d| d.max(1).to_string());
    let cwd = match options.dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let action = format!("cloning {}", redact_url(&options.url));
    let sha = options.revision.as_deref().filter(|r| is_sha_like(r));
    let mut args: Vec<&str> = vec!["clone", "--quiet"];
    if let Some(depth) = &depth {
        args.extend(["--depth", depth]);
    }
    match (&options.revision, sha) {
        (_, Some(_)) => args.push("--no-checkout"),
        (Some(revision), None) => args.extend(["--branch", revision]),
        (None, None) => {}
    }
    args.extend(["--", &options.url, &dir]);
    runner.run(&cwd, &args).await.map_err(git_error(&action))?;

    if let Some(sha) = sha {
        let checkout = runner
            .run(
                &options.dir,
                &["checkout", "--quiet", "--detach", sha, "--"],
            )
            .await;
        if checkout.is_err() {
            let mut fetch = vec!["fetch", "--quiet"];
            if let Some(depth) = &depth {
                fetch.extend(["--depth", depth]);
            }
            fetch.extend(["origin", sha]);
            runner
                .run(&options.dir, &fetch)
                .await
                .map_err(git_error(format!("{action}: fetching commit {sha}")))?;
            runner
                .run(
                    &options.dir,
                    &["checkout", "--quiet", "--detach", "FETCH_HEAD", "--"],
                )
                .await
                .map_err(git_error(format!("{action}: checking out {sha}")))?;
        }
    }
    let commit = runner
        .run(&options.dir, &["rev-parse", "HEAD"])
        .await
        .map_err(git_error(format!("{action}: reading HEAD")))?
        .trim()
        .to_owned();
    let branch = runner
        .run(
            &options.dir,
            &["symbolic-ref", "--quiet", "--short", "HEAD"],
        )
        .await
        .ok()
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty());
    Ok(Cloned { commit, branch })
}

/// Where a push goes.
struct Target {
    remote: String,
    branch: String,
}

async fn push_target(
    runner: &Runner,
    dir: &Path,
    branch: Option<&str>,
) -> Result<Target, PipelineGitError> {
    let current = runner
        .run(dir, &["symbolic-ref", "--quiet", "--short", "HEAD"])
        .await
        .ok()
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty());
    let upstream = match &current {
        Some(current) => {
            let out = runner
                .run(
                    dir,
                    &[
                        "for-each-ref",
                        "--format=%(upstream:remotename)%00%(upstream:remoteref)",
                        &format!("refs/heads/{current}"),
                    ],
                )
                .await
                .map_err(git_error(format!("reading the upstream of {current}")))?;
            let line = out.trim_end_matches('\n');
            match line.split_once('\0') {
                Some((remote, reference)) if !remote.is_empty() && !reference.is_empty() => {
                    let branch = reference.strip_prefix("refs/heads/").unwrap_or(reference);
                    Some((remote.to_owned(), branch.to_owned()))
                }
                _ => None,
            }
        }
        None => None,
    };
    let remote = upstream
        .as_ref()
        .map_or_else(|| "origin".to_owned(), |(r, _)| r.clone());
    let branch = match (branch, upstream, current) {
        (Some(b), _, _) => b.to_owned(),
        (None, Some((_, b)), _) => b,
        (None, None, Some(current)) => {
            return Err(PipelineGitError::NoTargetBranch {
                dir: dir.to_owned(),
                reason: format!("branch {current} has no upstream"),
            });
        }
        (None, None, None) => {
            return Err(PipelineGitError::NoTargetBranch {
                dir: dir.to_owned(),
                reason: "HEAD is detached (a tag or a commit was checked out)".into(),
            });
        }
    };
    check_name("branch", &branch)?;
    Ok(Target { remote, branch })
}

/// Whether a failed push was refused because the remote branch moved (and a fetch and rebase
/// can fix it), as opposed to refused for good (permissions, hooks) or not tried (network).
fn remote_moved(err: &CommandError) -> bool {
    let stderr = err.stderr_tail();
    let rejected = stderr.contains("[rejected]")
        && ["fetch first", "non-fast-forward", "stale info"]
            .iter()
            .any(|n| stderr.contains(n));
    let lost_race = stderr.contains("[remote rejected]")
        && [
            "failed to update ref",
            "cannot lock ref",
            "incorrect old value",
        ]
        .iter()
        .any(|n| stderr.contains(n));
    rejected || lost_race
}

/// A short, growing, slightly random pause between push attempts (so two pipelines that
/// collided do not collide again in lockstep).
fn backoff(attempt: u32) -> Duration {
    let base = 100u64 << attempt.min(5);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()));
    let jitter = (nanos ^ u64::from(std::process::id())) % (base + 1);
    Duration::from_millis((base + jitter).min(5_000))
}

/// Stages everything in `options.dir`, commits it and pushes it; see the [module docs](self).
///
/// Nothing to commit (and `allow_empty` off) is not an error: it returns
/// [`CommitPushOutcome::NothingToCommit`] without pushing.
pub async fn commit_and_push(
    options: &CommitPushOptions,
    creds: &Credentials,
) -> Result<CommitPushOutcome, PipelineGitError> {
    if options.message.trim().is_empty() {
        return Err(PipelineGitError::EmptyMessage);
    }
    if let Some(branch) = &options.branch {
        check_name("branch", branch)?;
    }
    let runner = Runner::new(creds, Some(options.author.clone()), options.timeout)?;
    let dir = options.dir.as_path();
    let top = runner
        .run(dir, &["rev-parse", "--show-toplevel"])
        .await
        .map_err(|source| PipelineGitError::NotARepository {
            dir: dir.to_owned(),
            source: Box::new(source),
        })?;
    let top = PathBuf::from(top.trim());
    let target = push_target(&runner, &top, options.branch.as_deref()).await?;

    runner
        .run(&top, &["add", "--all"])
        .await
        .map_err(git_error("staging the changes (git add --all)"))?;
    let staged = runner
        .run(&top, &["diff", "--cached", "--name-only"])
        .await
        .map_err(git_error("listing the staged changes"))?;
    if staged.trim().is_empty() && !options.allow_empty {
        return Ok(CommitPushOutcome::NothingToCommit);
    }
    let mut commit_args = vec![
        "commit",
        "--quiet",
        "--no-verify",
        "--cleanup=strip",
        "-F",
        "-",
    ];
    if options.allow_empty {
        commit_args.push("--allow-empty");
    }
    runner
        .run_with_stdin(&top, &commit_args, &options.message)
        .await
        .map_err(git_error("committing"))?;

    let refspec = format!("HEAD:refs/heads/{}", target.branch);
    let remote_ref = format!("refs/heads/{}", target.branch);
    let mut rebases = 0;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let pushed = runner
            .run(&top, &["push", "--quiet", "--", &target.remote, &refspec])
            .await;
        match pushed {
            Ok(_) => break,
            Err(e) if remote_moved(&e) && attempt <= options.retries => {
                tracing::info!(
                    remote = %target.remote,
                    branch = %target.branch,
                    attempt,
                    "the remote branch moved; fetching and rebasing"
                );
            }
            Err(e) if remote_moved(&e) => {
                return Err(PipelineGitError::RemoteKeptMoving {
                    remote: target.remote,
                    branch: target.branch,
                    attempts: attempt,
                });
            }
            Err(e) => {
                return Err(git_error(format!(
                    "pushing to {}/{}",
                    target.remote, target.branch
                ))(e));
            }
        }
        tokio::time::sleep(backoff(attempt - 1)).await;
        runner
            .run(
                &top,
                &["fetch", "--quiet", "--", &target.remote, &remote_ref],
            )
            .await
            .map_err(git_error(format!(
                "fetching {}/{}",
                target.remote, target.branch
            )))?;
        rebase_onto_fetched(&runner, &top, &target).await?;
        rebases += 1;
    }
    let commit = runner
        .run(&top, &["rev-parse", "HEAD"])
        .await
        .map_err(git_error("reading HEAD"))?
        .trim()
        .to_owned();
    Ok(CommitPushOutcome::Pushed {
        commit,
        remote: target.remote,
        branch: target.branch,
        rebases,
    })
}

/// Rebases the local commits onto `FETCH_HEAD`; on a conflict, aborts and names the files.
async fn rebase_onto_fetched(
    runner: &Runner,
    top: &Path,
    target: &Target,
) -> Result<(), PipelineGitError> {
    let Err(error) = runner
        .run(top, &["rebase", "--quiet", "--no-autostash", "FETCH_HEAD"])
        .await
    else {
        return Ok(());
    };
    let files: Vec<String> = runner
        .run(top, &["diff", "--name-only", "--diff-filter=U"])
        .await
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    // Back to the commit as it was before the rebase; the remote was never touched.
    let _ = runner.run(top, &["rebase", "--abort"]).await;
    let commit = runner
        .run(top, &["rev-parse", "--short", "HEAD"])
        .await
        .unwrap_or_default()
        .trim()
        .to_owned();
    if files.is_empty() {
        return Err(git_error(format!(
            "rebasing onto {}/{}",
            target.remote, target.branch
        ))(error));
    }
    Err(PipelineGitError::Conflict {
        remote: target.remote.clone(),
        branch: target.branch.clone(),
        commit,
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_urls_with_credentials_without_echoing_them() {
        for url in [
            "https://me:hunter2@example.com/r.git",
            "https://ghp_token@example.com/r.git",
            "ssh://git:hunter2@example.com/r.git",
        ] {
            let err = check_url(url).unwrap_err();
            let msg = err.to_string();
            assert!(
                !msg.contains("hunter2") && !msg.contains("ghp_token"),
                "{msg}"
            );
            assert!(msg.contains("***@example.com/r.git"), "{msg}");
        }
        assert!(check_url("https://example.com/r.git").is_ok());
        assert!(check_url("ssh://git@example.com/r.git").is_ok());
        assert!(check_url("git@example.com:r.git").is_ok());
        assert!(check_url("--upload-pack=x").is_err());
    }

    #[test]
    fn parses_identities() {
        let id = Identity::parse("CI Bot <ci@example.com>").unwrap();
        assert_eq!(
            (id.name.as_str(), id.email.as_str()),
            ("CI Bot", "ci@example.com")
        );
        assert!(Identity::parse("nobody").is_err());
        assert!(Identity::parse("<a@b>").is_err());
        assert!(Identity::parse("A <>").is_err());
    }

    #[test]
    fn checks_names() {
        assert!(check_name("branch", "release/1.0").is_ok());
        for bad in ["-x", "a..b", "a b", "a~1", "", "x.lock", "a@{1}"] {
            assert!(check_name("branch", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn credentials_stay_out_of_argv() {
        let creds = Credentials {
            ssh_private_key: Some("PRIVATE KEY".into()),
            ..Credentials::basic("me", "hunter2")
        };
        let runner = Runner::new(&creds, None, DEFAULT_TIMEOUT).unwrap();
        let spec = runner.spec(Path::new("/"), &["push", "origin", "HEAD:main"]);
        assert!(
            spec.args
                .iter()
                .all(|a| !a.contains("hunter2") && !a.contains("PRIVATE"))
        );
        assert!(!format!("{spec:?}").contains("hunter2"));
        assert_eq!(spec.label.as_deref(), Some("git push"));
        let key = runner.key_file.clone().unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), "PRIVATE KEY\n");
        drop(runner);
        assert!(!key.exists(), "the key goes with the private HOME");
    }

    #[test]
    fn backoff_grows_and_stays_small() {
        assert!(backoff(0) >= Duration::from_millis(100));
        assert!(backoff(0) <= Duration::from_millis(200));
        assert!(backoff(10) <= Duration::from_secs(5));
    }
}
