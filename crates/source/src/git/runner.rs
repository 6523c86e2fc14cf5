//! [`Git`]: runs `git` for one cache, with its private `HOME`, its known hosts and its rules
//! for which transports may be used.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tempfile::TempDir;

use super::command::*;
use super::url::*;
use super::{Credentials, GitError, RemoteRef, SecretString};
use crate::command::{CommandError, CommandSpec, run_command};

/// Runs the `git` CLI with a private `HOME`, an empty global config and no prompts.
#[derive(Clone, Debug)]
pub struct Git {
    home: PathBuf,
    timeout: Duration,
    pub(crate) allow_file: bool,
    pub(crate) low_speed: Option<LowSpeedLimit>,
}

/// Keeps a credential file alive while one git command runs.
pub(crate) struct CredentialFiles {
    _dir: Option<TempDir>,
}

impl Git {
    /// A git runner whose `HOME` is `home` (created on first use, with an empty `gitconfig`) and
    /// whose commands time out after `timeout`.
    pub fn new(home: impl Into<PathBuf>, timeout: Duration) -> Self {
        Self {
            home: home.into(),
            timeout,
            allow_file: false,
            low_speed: Some(LowSpeedLimit::default()),
        }
    }

    /// Allows (or refuses, the default) `file://` URLs and local paths. Local repositories are
    /// for tests and demos: on a shared ferry they let an Application read any repository the
    /// process can read, including other projects' mirrors.
    #[must_use]
    pub fn with_file_repos(mut self, allow: bool) -> Self {
        self.allow_file = allow;
        self
    }

    /// Replaces the SSH known hosts (OpenSSH `known_hosts` lines, as in Argo CD's ConfigMap
    /// `argocd-ssh-known-hosts-cm`, key `ssh_known_hosts`). Hosts not listed are refused.
    pub fn set_known_hosts(&self, text: &str) -> Result<(), GitError> {
        self.prepare_home()?;
        let path = self.home.join("known_hosts");
        if std::fs::read_to_string(&path).is_ok_and(|old| old == text) {
            return Ok(());
        }
        let tmp = self.home.join(".known_hosts.partial");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(GitError::io("writing the SSH known hosts", &path))
    }

    /// Replaces git's low-speed limit (default: [`LowSpeedLimit::default`]); `None` leaves a
    /// stalled transfer to the timeout.
    #[must_use]
    pub fn with_low_speed_limit(mut self, limit: Option<LowSpeedLimit>) -> Self {
        self.low_speed = limit;
        self
    }

    /// Whether `file://` URLs and local paths are allowed.
    pub fn allows_file_repos(&self) -> bool {
        self.allow_file
    }

    /// The transports git may use (`GIT_ALLOW_PROTOCOL`).
    fn allowed_protocols(&self) -> &'static str {
        if self.allow_file {
            ALL_PROTOCOLS
        } else {
            REMOTE_PROTOCOLS
        }
    }

    /// Refuses URLs that are empty, look like an option, or use a transport not allowed.
    pub fn check_url(&self, url: &str) -> Result<(), GitError> {
        check_url(url)?;
        let protocol = url_protocol(url);
        let allowed = match protocol.as_str() {
            "file" => self.allow_file,
            "git" | "http" | "https" | "ssh" => true,
            _ => false,
        };
        if !allowed {
            return Err(GitError::ProtocolNotAllowed {
                url: redact_url(url),
                protocol,
            });
        }
        Ok(())
    }

    /// The private `HOME`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The per-command timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    fn global_config(&self) -> PathBuf {
        self.home.join("gitconfig")
    }

    fn prepare_home(&self) -> Result<(), GitError> {
        std::fs::create_dir_all(&self.home)
            .map_err(GitError::io("creating git's private HOME", &self.home))?;
        let config = self.global_config();
        if !config.exists() {
            std::fs::write(&config, b"")
                .map_err(GitError::io("creating git's empty global config", &config))?;
        }
        Ok(())
    }

    /// The hardened command line this runner uses (see [`GitCommand`]).
    pub fn command_builder(&self) -> GitCommand {
        GitCommand::new(&self.home, self.timeout)
            .protocols(self.allowed_protocols())
            .host_keys(HostKeys::Strict)
            .low_speed_limit(self.low_speed)
    }

    /// Builds the command for `git <args>` in `cwd`, with credentials wired through env and files.
    pub(crate) fn command(
        &self,
        cwd: &Path,
        args: &[&str],
        creds: &Credentials,
    ) -> Result<(CommandSpec, CredentialFiles), GitError> {
        self.prepare_home()?;
        let mut dir = None;
        let key_file = match &creds.ssh_private_key {
            Some(key) if !key.expose().is_empty() => {
                let (tmp, path) = self.write_key_file(key)?;
                dir = Some(tmp);
                Some(path)
            }
            _ => None,
        };
        let spec = self
            .command_builder()
            .build(cwd, args, creds, key_file.as_deref());
        Ok((spec, CredentialFiles { _dir: dir }))
    }

    fn write_key_file(&self, key: &SecretString) -> Result<(TempDir, PathBuf), GitError> {
        let dir = tempfile::Builder::new()
            .prefix("ssh-")
            .tempdir_in(&self.home)
            .map_err(GitError::io(
                "creating a private directory for an SSH key in",
                &self.home,
            ))?;
        let path = dir.path().join("key");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .map_err(GitError::io("writing SSH key", &path))?;
        let mut text = key.expose().to_owned();
        if !text.ends_with('\n') {
            text.push('\n'); // ssh rejects a key without its final newline
        }
        file.write_all(text.as_bytes())
            .map_err(GitError::io("writing SSH key", &path))?;
        Ok((dir, path))
    }

    pub(crate) async fn run(
        &self,
        cwd: &Path,
        args: &[&str],
        creds: &Credentials,
    ) -> Result<Result<String, CommandError>, GitError> {
        let (spec, _files) = self.command(cwd, args, creds)?;
        tracing::debug!(command = %spec.display(), "running git");
        Ok(run_command(spec).await.map(|out| out.stdout_text()))
    }

    /// Lists the refs `url` advertises (`git ls-remote`), including `HEAD`: a cheap way to see
    /// whether anything changed without fetching.
    pub async fn ls_remote(
        &self,
        url: &str,
        creds: &Credentials,
    ) -> Result<Vec<RemoteRef>, GitError> {
        self.check_url(url)?;
        let out = self
            .run(&self.home, &["ls-remote", url], creds)
            .await?
            .map_err(|source| {
                GitError::transfer(
                    "listing the refs of",
                    url,
                    self.low_speed,
                    source,
                    |url, source| GitError::LsRemote { url, source },
                )
            })?;
        parse_ls_remote(&out).ok_or_else(|| GitError::UnexpectedOutput {
            action: "listing refs".into(),
            url: redact_url(url),
            output: out.chars().take(200).collect(),
        })
    }

    /// Resolves `revision` against the refs `url` advertises, without fetching.
    ///
    /// Returns `Ok(None)` when the revision is not an advertised ref and not a full SHA (for
    /// example a short SHA): [`RepoCache::resolve_revision`] can resolve it after a fetch.
    pub async fn resolve_advertised(
        &self,
        url: &str,
        creds: &Credentials,
        revision: &str,
    ) -> Result<Option<String>, GitError> {
        check_revision(url, revision)?;
        let refs = self.ls_remote(url, creds).await?;
        Ok(resolve_from_refs(&refs, revision))
    }
}
