//! Git through the `git` CLI: listing remote refs, a bare mirror per repository, checkouts
//! cached by commit, and commit metadata for the audit trail.
//!
//! Start with [`RepoCache`]: [`RepoCache::resolve_fresh`] fetches a repository when its last
//! fetch is older than a poll interval (concurrent callers share one fetch) and turns a
//! `targetRevision` into a commit SHA; [`RepoCache::checkout`] gives a read-only working tree of
//! that commit; [`RepoCache::commit_info`] says who made it.
//!
//! Every `git` runs through [`run_command`] with a private `HOME`
//! and an empty global config, no system config, no terminal prompts, `LC_ALL=C`, and only the
//! `file`, `git`, `http`, `https` and `ssh` transports. Credentials never appear in argv, URLs,
//! errors or logs:
//!
//! - username and password reach git through a credential helper whose *text* is in argv
//!   (`-c credential.helper=!f() { … }; f`) but whose values are read from the child's
//!   environment (`FERRY_GIT_USERNAME`, `FERRY_GIT_PASSWORD`), and stderr is redacted;
//! - an SSH private key is written to a `0600` file in a private temporary directory that is
//!   removed when the command ends, and named in `GIT_SSH_COMMAND`.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::command::{CommandError, CommandSpec, run_command};

/// A secret string (password, token, private key). `Debug` prints `***`; there is no `Display`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself. Only pass it to a child's environment or a `0600` file.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// How to authenticate to a repository (Argo CD's repository secret fields).
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// HTTP(S) username.
    pub username: Option<String>,
    /// HTTP(S) password or token.
    pub password: Option<SecretString>,
    /// PEM/OpenSSH private key for `ssh://` and `user@host:path` URLs.
    pub ssh_private_key: Option<SecretString>,
    /// Skip TLS verification (HTTPS) and host key checking (SSH).
    pub insecure: bool,
}

impl Credentials {
    /// No credentials: public repositories and `file://`.
    pub fn none() -> Self {
        Self::default()
    }

    /// HTTP(S) basic authentication.
    pub fn basic(username: impl Into<String>, password: impl Into<SecretString>) -> Self {
        Self {
            username: Some(username.into()),
            password: Some(password.into()),
            ..Self::default()
        }
    }

    /// The secret values, to mask in error output.
    fn secrets(&self) -> Vec<String> {
        [&self.password, &self.ssh_private_key]
            .into_iter()
            .flatten()
            .map(|s| s.expose().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    }
}

/// A ref a remote advertises.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RemoteRef {
    /// Full name: `HEAD`, `refs/heads/main`, `refs/tags/v1`, `refs/tags/v1^{}` (peeled tag).
    pub name: String,
    /// The object it points to.
    pub sha: String,
}

/// Who made a commit and why, for the sync history.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommitInfo {
    /// Full commit SHA.
    pub sha: String,
    /// Author name.
    pub author_name: String,
    /// Author e-mail.
    pub author_email: String,
    /// Author date, strict ISO 8601 (`2024-05-01T12:00:00+02:00`).
    pub date: String,
    /// First line of the message.
    pub subject: String,
}

/// Why a git operation failed. Messages never contain credentials.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// The repository URL is empty or looks like a command-line option.
    #[error(
        "repository URL {url:?} is not valid: it must be non-empty and must not start with '-'"
    )]
    InvalidUrl {
        /// The URL (credentials masked).
        url: String,
    },
    /// The URL uses a transport the operator has not allowed (`file://` and local paths by
    /// default).
    #[error(
        "repository URL {url:?} uses the {protocol} protocol, which this ferry does not allow: use https:// or ssh:// \
         (local repositories need the operator flag --allow-file-repos, FERRY_ALLOW_FILE_REPOS=true)"
    )]
    ProtocolNotAllowed {
        /// The URL (credentials masked).
        url: String,
        /// The protocol (`file` for local paths).
        protocol: String,
    },
    /// The revision is not something git can name safely.
    #[error(
        "revision {revision:?} of {url} is not valid: use a branch, a tag, a commit SHA or HEAD"
    )]
    InvalidRevision {
        /// The repository (credentials masked).
        url: String,
        /// The revision as given.
        revision: String,
    },
    /// No branch, tag or commit of that name exists.
    #[error(
        "revision {revision:?} does not exist in {url}: no branch, tag or commit has that name; check targetRevision"
    )]
    RevisionNotFound {
        /// The repository (credentials masked).
        url: String,
        /// The revision as given.
        revision: String,
    },
    /// Listing the remote's refs failed.
    #[error(
        "listing the refs of {url} failed: {source}; check the URL, that the repository is reachable, and its credentials"
    )]
    LsRemote {
        /// The repository (credentials masked).
        url: String,
        /// What git said.
        #[source]
        source: Box<CommandError>,
    },
    /// Fetching into the mirror failed.
    #[error(
        "fetching {url} failed: {source}; check the URL, that the repository is reachable, and its credentials"
    )]
    Fetch {
        /// The repository (credentials masked).
        url: String,
        /// What git said.
        #[source]
        source: Box<CommandError>,
    },
    /// A fetch failed. Every caller that shared that fetch gets the same error (inside).
    #[error(transparent)]
    SharedFetch(Arc<GitError>),
    /// The repository was never fetched into this cache.
    #[error("{url} has not been fetched yet: fetch it before resolving or checking out")]
    NotFetched {
        /// The repository (credentials masked).
        url: String,
    },
    /// A local git command on the mirror failed.
    #[error("{action} in the mirror of {url} failed: {source}")]
    Local {
        /// What was being done (`checking out 1a2b…`).
        action: String,
        /// The repository (credentials masked).
        url: String,
        /// What git said.
        #[source]
        source: Box<CommandError>,
    },
    /// git printed something ferry did not understand.
    #[error("{action} for {url}: unexpected git output {output:?}")]
    UnexpectedOutput {
        /// What was being done.
        action: String,
        /// The repository (credentials masked).
        url: String,
        /// The output, cut to 200 bytes.
        output: String,
    },
    /// A file or directory of the cache could not be used.
    #[error("{action} {path}: {source}; check that the cache directory is writable")]
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

impl GitError {
    fn io(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> GitError {
        let action = action.to_owned();
        let path = path.to_owned();
        move |source| GitError::Io {
            action,
            path,
            source,
        }
    }
}

/// Runs the `git` CLI with a private `HOME`, an empty global config and no prompts.
#[derive(Clone, Debug)]
pub struct Git {
    home: PathBuf,
    timeout: Duration,
    allow_file: bool,
}

/// Keeps a credential file alive while one git command runs.
struct CredentialFiles {
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

    /// Whether `file://` URLs and local paths are allowed.
    pub fn allows_file_repos(&self) -> bool {
        self.allow_file
    }

    /// The transports git may use (`GIT_ALLOW_PROTOCOL`).
    fn allowed_protocols(&self) -> &'static str {
        if self.allow_file {
            "file:git:http:https:ssh"
        } else {
            "git:http:https:ssh"
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

    /// Builds the command for `git <args>` in `cwd`, with credentials wired through env and files.
    fn command(
        &self,
        cwd: &Path,
        args: &[&str],
        creds: &Credentials,
    ) -> Result<(CommandSpec, CredentialFiles), GitError> {
        self.prepare_home()?;
        let mut argv: Vec<String> = vec!["-c".into(), "credential.helper=".into()];
        let mut spec = CommandSpec::new("git", cwd)
            .with_timeout(self.timeout)
            .with_env("HOME", self.home.to_string_lossy())
            .with_env("GIT_CONFIG_NOSYSTEM", "1")
            .with_env("GIT_CONFIG_GLOBAL", self.global_config().to_string_lossy())
            .with_env("GIT_TERMINAL_PROMPT", "0")
            .with_env("GIT_ALLOW_PROTOCOL", self.allowed_protocols())
            .with_env("LC_ALL", "C");
        for secret in creds.secrets() {
            spec = spec.with_secret(secret);
        }
        for password in args.iter().filter_map(|a| url_password(a)) {
            spec = spec.with_secret(password);
        }
        if creds.username.is_some() || creds.password.is_some() {
            argv.push("-c".into());
            argv.push(CREDENTIAL_HELPER.into());
            spec = spec
                .with_env(
                    "FERRY_GIT_USERNAME",
                    creds.username.clone().unwrap_or_default(),
                )
                .with_env(
                    "FERRY_GIT_PASSWORD",
                    creds
                        .password
                        .as_ref()
                        .map(|p| p.expose().to_owned())
                        .unwrap_or_default(),
                );
        }
        if creds.insecure {
            argv.push("-c".into());
            argv.push("http.sslVerify=false".into());
        }
        let mut dir = None;
        let key_file = match &creds.ssh_private_key {
            Some(key) if !key.expose().is_empty() => {
                let (tmp, path) = self.write_key_file(key)?;
                dir = Some(tmp);
                Some(path)
            }
            _ => None,
        };
        let ssh = ssh_command(
            &self.home.join("known_hosts"),
            key_file.as_deref(),
            creds.insecure,
        );
        spec = spec.with_env("GIT_SSH_COMMAND", ssh);
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        spec.args = argv;
        spec.label = Some(format!("git {}", subcommand(args)));
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

    async fn run(
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
            .map_err(|source| GitError::LsRemote {
                url: redact_url(url),
                source: Box::new(source),
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

/// The credential helper: its text is in argv, the values come from the child's environment.
const CREDENTIAL_HELPER: &str = "credential.helper=!f() { test \"$1\" = get || exit 0; \
     echo \"username=${FERRY_GIT_USERNAME}\"; echo \"password=${FERRY_GIT_PASSWORD}\"; }; f";

/// `GIT_SSH_COMMAND`: batch mode (never prompt), the known hosts the operator configured
/// (ConfigMap `argocd-ssh-known-hosts-cm`, see [`Git::set_known_hosts`]) checked strictly, the
/// key if any. Only `insecure` repositories skip the check.
fn ssh_command(known_hosts: &Path, key_file: Option<&Path>, insecure: bool) -> String {
    let mut cmd = String::from("ssh -o BatchMode=yes");
    cmd.push_str(" -o UserKnownHostsFile=");
    cmd.push_str(&shell_quote(&known_hosts.to_string_lossy()));
    cmd.push_str(" -o GlobalKnownHostsFile=/dev/null");
    if insecure {
        cmd.push_str(" -o StrictHostKeyChecking=no");
    } else {
        cmd.push_str(" -o StrictHostKeyChecking=yes");
    }
    if let Some(key) = key_file {
        cmd.push_str(" -o IdentitiesOnly=yes -i ");
        cmd.push_str(&shell_quote(&key.to_string_lossy()));
    }
    cmd
}

/// The git subcommand in `args` (the first argument that is neither an option nor the value
/// of `-c`), for short error messages.
fn subcommand<'a>(args: &[&'a str]) -> &'a str {
    let mut after_c = false;
    for arg in args {
        if after_c {
            after_c = false;
        } else if *arg == "-c" {
            after_c = true;
        } else if !arg.starts_with('-') {
            return arg;
        }
    }
    ""
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn check_url(url: &str) -> Result<(), GitError> {
    if url.trim().is_empty() || url.starts_with('-') {
        return Err(GitError::InvalidUrl {
            url: redact_url(url),
        });
    }
    Ok(())
}

/// The transport git would use for `url`: its scheme (`git+ssh` counts as `ssh`), `ssh` for
/// scp-like `user@host:path`, `file` for a local path.
pub fn url_protocol(url: &str) -> String {
    let url = url.trim();
    // `<transport>::<address>` (git's remote helpers, `ext::` among them).
    if let Some((transport, _)) = url.split_once("::")
        && !transport.contains(['/', ':'])
    {
        return transport.to_ascii_lowercase();
    }
    if let Some((scheme, _)) = url.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        return match scheme.as_str() {
            "git+ssh" | "ssh+git" => "ssh".to_owned(),
            _ => scheme,
        };
    }
    // scp-like syntax: a `:` before any `/` (git's own rule).
    match (url.find(':'), url.find('/')) {
        (Some(colon), slash) if slash.is_none_or(|s| colon < s) => "ssh".to_owned(),
        _ => "file".to_owned(),
    }
}

fn check_revision(url: &str, revision: &str) -> Result<(), GitError> {
    let bad = revision.starts_with('-')
        || revision.contains("..")
        || revision
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if bad {
        return Err(GitError::InvalidRevision {
            url: redact_url(url),
            revision: revision.to_owned(),
        });
    }
    Ok(())
}

/// Whether `revision` means the remote's default branch.
fn is_head(revision: &str) -> bool {
    revision.is_empty() || revision == "HEAD"
}

/// Whether `s` is a full SHA-1 or SHA-256 object name.
fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `s` could be an abbreviated object name.
fn is_hex_prefix(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses `git ls-remote` output (`<sha>\t<ref>` lines).
fn parse_ls_remote(out: &str) -> Option<Vec<RemoteRef>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (sha, name) = line.split_once('\t')?;
            is_full_sha(sha).then(|| RemoteRef {
                name: name.to_owned(),
                sha: sha.to_owned(),
            })
        })
        .collect()
}

/// Resolves a revision against advertised refs, as Argo CD does: `HEAD` or empty → `HEAD`;
/// a full ref name as is; otherwise a branch, then a tag (peeled to its commit); a full SHA is
/// returned as it is. `None` when nothing matches (a short SHA needs a fetched repository).
pub fn resolve_from_refs(refs: &[RemoteRef], revision: &str) -> Option<String> {
    let find = |name: &str| refs.iter().find(|r| r.name == name).map(|r| r.sha.clone());
    if is_head(revision) {
        return find("HEAD");
    }
    let candidates: Vec<String> = if revision.starts_with("refs/") {
        vec![format!("{revision}^{{}}"), revision.to_owned()]
    } else {
        vec![
            format!("refs/heads/{revision}"),
            format!("refs/tags/{revision}^{{}}"),
            format!("refs/tags/{revision}"),
        ]
    };
    candidates
        .iter()
        .find_map(|c| find(c))
        .or_else(|| is_full_sha(revision).then(|| revision.to_ascii_lowercase()))
}

/// The password of `scheme://user:password@host/…`, if the URL has one.
fn url_password(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}

/// The URL with its userinfo masked (`https://***@host/repo`): the one helper in
/// [`ferry_core::redact`].
pub use ferry_core::redact::redact_url;

/// The key under which a repository is cached and its credentials are found: one
/// normalization for all of ferry, see [`ferry_core::repo_url`].
pub use ferry_core::repo_url::RepoUrl;

/// `<last path segment>-<hash>`: readable, and unique per normalized URL. The hash is keyed
/// by `key` (a secret of the cache, see [`cache_key`]): the directory of another repository
/// cannot be guessed from its URL.
pub(crate) fn repo_dir_name(key: &[u8], url: &str) -> String {
    use sha2::Digest as _;
    let normalized = RepoUrl::new(url);
    let last = normalized
        .as_str()
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default();
    let readable: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    let readable = if readable.is_empty() {
        "repo".to_owned()
    } else {
        readable
    };
    let mut hasher = sha2::Sha256::new();
    hasher.update(key);
    hasher.update([0u8]);
    hasher.update(normalized.as_str().as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{readable}-{hex}")
}

/// The secret that keys a cache's directory names: read from `<dir>/.key`, created (random,
/// mode 0600) when missing. When the file cannot be written the key is random for this process
/// (the cache is then rebuilt after a restart).
pub fn cache_key(dir: &Path) -> Vec<u8> {
    let path = dir.join(".key");
    if let Ok(key) = std::fs::read(&path)
        && key.len() >= 32
    {
        return key;
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).expect("the operating system's random source failed");
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&path)?.write_all(&key)
    });
    match written {
        Ok(()) => key,
        // Another process (or thread) wrote it first: use theirs.
        Err(_) => match std::fs::read(&path) {
            Ok(existing) if existing.len() >= 32 => existing,
            _ => key,
        },
    }
}

/// Per-repository fetch bookkeeping, behind that repository's async mutex.
#[derive(Default)]
struct RepoState {
    /// When the last successful fetch started.
    last_success_started: Option<Instant>,
    /// When the last fetch (successful or not) ended, and its result.
    last_completed: Option<(Instant, Result<(), Arc<GitError>>)>,
}

/// A cache of bare mirrors (one per repository URL) and of checkouts (one per commit).
///
/// Layout under the root: `home/` (git's private HOME), `mirrors/<name>-<hash>/` (bare
/// repositories), `checkouts/<name>-<hash>/<sha>/` (read-only working trees). Each repository
/// has its own async mutex, held only while that repository is fetched; other repositories
/// never wait for it. Checkouts are not evicted: remove `checkouts/` while ferry is stopped to
/// reclaim space. Two processes must not share one root.
pub struct RepoCache {
    root: PathBuf,
    key: Vec<u8>,
    git: Git,
    repos: Mutex<HashMap<RepoUrl, Arc<tokio::sync::Mutex<RepoState>>>>,
    fetches: AtomicUsize,
    /// Revisions already resolved in a mirror, valid until the mirror's refs change: keyed by
    /// mirror path and revision; each entry remembers the mirror's generation it was read at.
    resolved: Mutex<HashMap<(PathBuf, String), (u64, String)>>,
    /// Bumped for a mirror whenever a fetch may have moved its refs.
    generations: Mutex<HashMap<PathBuf, u64>>,
    /// Commit metadata by mirror and SHA (commits never change).
    commits: Mutex<HashMap<(PathBuf, String), CommitInfo>>,
    /// The directories of the latest commits looked at, by mirror and SHA.
    trees: Mutex<Vec<(CommitKey, Arc<CommitTrees>)>>,
}

/// A commit of a mirror: the mirror's path and the commit's SHA.
type CommitKey = (PathBuf, String);

/// The directories of one commit: each one's Git tree id, and whether everything under it is a
/// plain file or directory.
#[derive(Debug, Default)]
struct CommitTrees {
    dirs: HashMap<String, (String, bool)>,
}

/// The tree listings of this many commits are kept.
const TREE_CACHE_COMMITS: usize = 8;

/// At most this many commits' metadata are kept; the cache starts over when full.
const COMMIT_INFO_CACHE_LIMIT: usize = 10_000;

impl fmt::Debug for RepoCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepoCache")
            .field("root", &self.root)
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

/// Default timeout of one git command (a fetch of a large repository can take a while).
pub const DEFAULT_GIT_TIMEOUT: Duration = Duration::from_secs(180);

/// The ref in each mirror that holds the commit the remote's `HEAD` pointed at.
const REMOTE_HEAD_REF: &str = "refs/ferry/remote-head";

impl RepoCache {
    /// A cache under `root` (created on first use) with [`DEFAULT_GIT_TIMEOUT`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_timeout(root, DEFAULT_GIT_TIMEOUT)
    }

    /// A cache under `root` whose git commands time out after `timeout`.
    pub fn with_timeout(root: impl Into<PathBuf>, timeout: Duration) -> Self {
        let root = root.into();
        Self {
            git: Git::new(root.join("home"), timeout),
            key: cache_key(&root),
            root,
            repos: Mutex::new(HashMap::new()),
            fetches: AtomicUsize::new(0),
            resolved: Mutex::default(),
            generations: Mutex::default(),
            commits: Mutex::default(),
            trees: Mutex::default(),
        }
    }

    /// Replaces the SSH known hosts; see [`Git::set_known_hosts`].
    pub fn set_known_hosts(&self, text: &str) -> Result<(), GitError> {
        self.git.set_known_hosts(text)
    }

    /// Allows (or refuses, the default) `file://` URLs and local paths; see
    /// [`Git::with_file_repos`].
    #[must_use]
    pub fn with_file_repos(mut self, allow: bool) -> Self {
        self.git.allow_file = allow;
        self
    }

    /// The git runner this cache uses (for [`Git::ls_remote`]).
    pub fn git(&self) -> &Git {
        &self.git
    }

    /// How many fetches ran (successful or not) since this cache was created.
    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// The bare mirror of `url`.
    pub fn mirror_dir(&self, url: &str) -> PathBuf {
        self.root
            .join("mirrors")
            .join(repo_dir_name(&self.key, url))
    }

    /// The current ref generation of `mirror`.
    fn generation(&self, mirror: &Path) -> u64 {
        let generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        generations.get(mirror).copied().unwrap_or_default()
    }

    /// Forgets what was resolved in `mirror`: a fetch may move its refs.
    fn refs_may_change(&self, mirror: &Path) {
        *self
            .generations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(mirror.to_path_buf())
            .or_default() += 1;
        self.resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(m, _), _| m != mirror);
    }

    fn checkouts_dir(&self, url: &str) -> PathBuf {
        self.root
            .join("checkouts")
            .join(repo_dir_name(&self.key, url))
    }

    fn slot(&self, url: &str) -> Arc<tokio::sync::Mutex<RepoState>> {
        let mut repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        repos.entry(RepoUrl::new(url)).or_default().clone()
    }

    /// Fetches all branches and tags of `url` into its mirror (creating it on first use).
    ///
    /// Callers that arrive while a fetch of the same repository is running wait for it and share
    /// its result instead of fetching again.
    pub async fn fetch(&self, url: &str, creds: &Credentials) -> Result<(), GitError> {
        self.fetch_if_older(url, creds, Duration::ZERO).await
    }

    /// Fetches `url` unless a successful fetch started at most `max_age` before this call (or
    /// one finished while this call waited for it). With `max_age` = the poll interval, every
    /// app of a poll round shares one fetch per repository.
    pub async fn fetch_if_older(
        &self,
        url: &str,
        creds: &Credentials,
        max_age: Duration,
    ) -> Result<(), GitError> {
        self.git.check_url(url)?;
        let requested = Instant::now();
        let slot = self.slot(url);
        let mut state = slot.lock().await;
        if let Some((completed, result)) = &state.last_completed
            && *completed >= requested
        {
            return result.clone().map_err(GitError::SharedFetch);
        }
        if let Some(started) = state.last_success_started
            && requested.saturating_duration_since(started) <= max_age
        {
            return Ok(());
        }
        let started = Instant::now();
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let mirror = self.mirror_dir(url);
        self.refs_may_change(&mirror);
        let result = self.fetch_now(url, creds).await;
        self.refs_may_change(&mirror);
        if result.is_ok() {
            state.last_success_started = Some(started);
        }
        let shared = result.map_err(Arc::new);
        state.last_completed = Some((Instant::now(), shared.clone()));
        shared.map_err(GitError::SharedFetch)
    }

    async fn ensure_mirror(&self, url: &str) -> Result<PathBuf, GitError> {
        let mirror = self.mirror_dir(url);
        if mirror.join("HEAD").exists() {
            return Ok(mirror);
        }
        let parent = mirror.parent().expect("mirror has a parent");
        std::fs::create_dir_all(parent).map_err(GitError::io("creating", parent))?;
        let tmp = tempfile::Builder::new()
            .prefix(".init-")
            .tempdir_in(parent)
            .map_err(GitError::io("creating a temporary directory in", parent))?;
        let tmp_str = tmp.path().to_string_lossy().into_owned();
        self.git
            .run(
                parent,
                &["init", "--bare", "-q", &tmp_str],
                &Credentials::none(),
            )
            .await?
            .map_err(|source| GitError::Local {
                action: "creating the mirror".into(),
                url: redact_url(url),
                source: Box::new(source),
            })?;
        std::fs::rename(tmp.path(), &mirror).map_err(GitError::io("creating mirror", &mirror))?;
        Ok(mirror)
    }

    async fn fetch_now(&self, url: &str, creds: &Credentials) -> Result<(), GitError> {
        let mirror = self.ensure_mirror(url).await?;
        let git_dir = format!("--git-dir={}", mirror.to_string_lossy());
        let head_spec = format!("+HEAD:{REMOTE_HEAD_REF}");
        let mut args = vec![
            git_dir.as_str(),
            "fetch",
            "--quiet",
            "--prune",
            "--force",
            url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
            head_spec.as_str(),
        ];
        tracing::debug!(url = %redact_url(url), "fetching repository");
        match self.git.run(&mirror, &args, creds).await? {
            Ok(_) => Ok(()),
            Err(e) if e.stderr_tail().contains("couldn't find remote ref HEAD") => {
                // An empty remote, or a HEAD pointing at a missing branch: fetch the rest.
                args.pop();
                self.git
                    .run(&mirror, &args, creds)
                    .await?
                    .map_err(|source| GitError::Fetch {
                        url: redact_url(url),
                        source: Box::new(source),
                    })?;
                let _ = self
                    .git
                    .run(
                        &mirror,
                        &[&git_dir, "update-ref", "-d", REMOTE_HEAD_REF],
                        creds,
                    )
                    .await?;
                Ok(())
            }
            Err(source) => Err(GitError::Fetch {
                url: redact_url(url),
                source: Box::new(source),
            }),
        }
    }

    /// Whether [`RepoCache::fetch_if_older`] with `max_age` would fetch `url` now: no successful
    /// fetch started within `max_age`, and none is running (callers of a running fetch share
    /// it). Callers use it to read credentials only when a fetch will need them.
    pub fn fetch_due(&self, url: &str, max_age: Duration) -> bool {
        let slot = self.slot(url);
        let Ok(state) = slot.try_lock() else {
            return false;
        };
        state
            .last_success_started
            .is_none_or(|started| started.elapsed() > max_age)
    }

    /// How long until a fetch of `url` with `max_age` falls due; `None` before the first
    /// successful fetch. Apps that are looked at again then share that one fetch.
    pub fn fetch_due_in(&self, url: &str, max_age: Duration) -> Option<Duration> {
        let slot = self.slot(url);
        let Ok(state) = slot.try_lock() else {
            return Some(max_age); // fetching now
        };
        state
            .last_success_started
            .map(|started| max_age.saturating_sub(started.elapsed()))
    }

    /// Fetches `url` if its last successful fetch is older than `max_age` (see
    /// [`RepoCache::fetch_if_older`]), then resolves `revision` to a commit SHA
    /// ([`RepoCache::resolve_revision`]).
    pub async fn resolve_fresh(
        &self,
        url: &str,
        creds: &Credentials,
        revision: &str,
        max_age: Duration,
    ) -> Result<String, GitError> {
        check_revision(url, revision)?;
        self.fetch_if_older(url, creds, max_age).await?;
        self.resolve_revision(url, creds, revision).await
    }

    /// Resolves `revision` in the fetched mirror of `url` to a full commit SHA.
    ///
    /// `HEAD` or empty is the remote's default branch; otherwise a branch, then a tag, then a
    /// (short or full) commit SHA; a full ref name (`refs/pull/1/head`) is also accepted. A full
    /// SHA or ref name the mirror lacks (a commit on no branch) is fetched on its own. A revision
    /// that names nothing gives [`GitError::RevisionNotFound`].
    pub async fn resolve_revision(
        &self,
        url: &str,
        creds: &Credentials,
        revision: &str,
    ) -> Result<String, GitError> {
        check_revision(url, revision)?;
        let mirror = self.mirror_dir(url);
        if !mirror.join("HEAD").exists() {
            return Err(GitError::NotFetched {
                url: redact_url(url),
            });
        }
        if let Some(sha) = self.resolve_local(&mirror, revision).await? {
            return Ok(sha);
        }
        if is_full_sha(revision) || revision.starts_with("refs/") {
            let slot = self.slot(url);
            let _state = slot.lock().await;
            let refspec = if revision.starts_with("refs/") {
                format!("+{revision}:{revision}")
            } else {
                format!("+{revision}:refs/ferry/commits/{revision}")
            };
            let git_dir = format!("--git-dir={}", mirror.to_string_lossy());
            self.fetches.fetch_add(1, Ordering::SeqCst);
            self.refs_may_change(&mirror);
            let fetched = self
                .git
                .run(
                    &mirror,
                    &[&git_dir, "fetch", "--quiet", url, &refspec],
                    creds,
                )
                .await?;
            self.refs_may_change(&mirror);
            match fetched {
                Ok(_) => {
                    if let Some(sha) = self.resolve_local(&mirror, revision).await? {
                        return Ok(sha);
                    }
                }
                Err(e) if !names_missing_revision(e.stderr_tail()) => {
                    return Err(GitError::Fetch {
                        url: redact_url(url),
                        source: Box::new(e),
                    });
                }
                Err(_) => {}
            }
        }
        Err(GitError::RevisionNotFound {
            url: redact_url(url),
            revision: revision.to_owned(),
        })
    }

    /// Looks `revision` up in the mirror only; answers from memory while no fetch has run since
    /// the last look-up (no `git` process per app and reconcile).
    async fn resolve_local(
        &self,
        mirror: &Path,
        revision: &str,
    ) -> Result<Option<String>, GitError> {
        let key = (mirror.to_path_buf(), revision.to_owned());
        let generation = self.generation(mirror);
        if let Some((g, sha)) = self
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && *g == generation
        {
            return Ok(Some(sha.clone()));
        }
        let found = self.resolve_local_uncached(mirror, revision).await?;
        if let Some(sha) = &found {
            let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
            // Only if no fetch started meanwhile (it may have moved the ref).
            if self.generation(mirror) == generation {
                resolved.insert(key, (generation, sha.clone()));
            }
        }
        Ok(found)
    }

    async fn resolve_local_uncached(
        &self,
        mirror: &Path,
        revision: &str,
    ) -> Result<Option<String>, GitError> {
        let candidates: Vec<String> = if is_head(revision) {
            vec![REMOTE_HEAD_REF.to_owned()]
        } else if revision.starts_with("refs/") {
            vec![revision.to_owned()]
        } else {
            let mut c = vec![
                format!("refs/heads/{revision}"),
                format!("refs/tags/{revision}"),
            ];
            if is_hex_prefix(revision) {
                c.push(revision.to_owned());
            }
            c
        };
        let git_dir = format!("--git-dir={}", mirror.to_string_lossy());
        for candidate in candidates {
            let spec = format!("{candidate}^{{commit}}");
            let out = self
                .git
                .run(
                    mirror,
                    &[&git_dir, "rev-parse", "--verify", "--quiet", &spec],
                    &Credentials::none(),
                )
                .await?;
            if let Ok(out) = out {
                let sha = out.trim();
                if is_full_sha(sha) {
                    return Ok(Some(sha.to_owned()));
                }
            }
        }
        Ok(None)
    }

    /// A read-only working tree of commit `sha` of `url`, created on first request and reused.
    ///
    /// `sha` must be a full SHA (from [`RepoCache::resolve_revision`]) of a fetched repository.
    /// Files are made read-only; callers must not write into the tree. Submodules and Git LFS
    /// files are not materialized.
    pub async fn checkout(&self, url: &str, sha: &str) -> Result<PathBuf, GitError> {
        if !is_full_sha(sha) {
            return Err(GitError::InvalidRevision {
                url: redact_url(url),
                revision: sha.into(),
            });
        }
        let dir = self.checkouts_dir(url);
        let target = dir.join(sha);
        if target.is_dir() {
            return Ok(target);
        }
        let mirror = self.mirror_dir(url);
        if !mirror.join("HEAD").exists() {
            return Err(GitError::NotFetched {
                url: redact_url(url),
            });
        }
        std::fs::create_dir_all(&dir).map_err(GitError::io("creating", &dir))?;
        let tmp = tempfile::Builder::new()
            .prefix(".checkout-")
            .tempdir_in(&dir)
            .map_err(GitError::io("creating a temporary directory in", &dir))?;
        let tree = tmp.path().join("tree");
        std::fs::create_dir(&tree).map_err(GitError::io("creating", &tree))?;
        let (mut spec, _files) = self.git.command(
            &tree,
            &[
                &format!("--git-dir={}", mirror.to_string_lossy()),
                &format!("--work-tree={}", tree.to_string_lossy()),
                "-c",
                "core.hooksPath=/dev/null",
                "checkout",
                "--quiet",
                "--force",
                sha,
                "--",
                ".",
            ],
            &Credentials::none(),
        )?;
        spec = spec.with_env("GIT_INDEX_FILE", tmp.path().join("index").to_string_lossy());
        run_command(spec).await.map_err(|source| GitError::Local {
            action: format!("checking out {sha}"),
            url: redact_url(url),
            source: Box::new(source),
        })?;
        make_read_only(&tree).map_err(GitError::io("making the checkout read-only:", &tree))?;
        match std::fs::rename(&tree, &target) {
            Ok(()) => Ok(target),
            // Another caller finished the same checkout first: use theirs.
            Err(_) if target.is_dir() => Ok(target),
            Err(e) => Err(GitError::io("moving the checkout to", &target)(e)),
        }
    }

    /// What identifies the files under directory `path` (relative to the repository root, `.`
    /// for the root) of commit `sha` of a fetched `url`, when it is a plain directory of
    /// manifests: the directory's Git tree id, the same in every commit that leaves those files
    /// as they are. `None` when the path is not a directory of that commit, holds a symlink or a
    /// submodule somewhere below (their content is not part of the tree id), or is a Kustomize
    /// or Helm source (which may read files outside it). One `git ls-tree` per commit, cached.
    pub async fn tree_id(
        &self,
        url: &str,
        sha: &str,
        path: &str,
    ) -> Result<Option<String>, GitError> {
        check_revision(url, sha)?;
        if !is_full_sha(sha) {
            return Ok(None);
        }
        let mirror = self.mirror_dir(url);
        let key = (mirror.clone(), sha.to_owned());
        let cached = self
            .trees
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, t)| t.clone());
        let trees = match cached {
            Some(t) => t,
            None => {
                let trees = Arc::new(self.list_trees(url, &mirror, sha).await?);
                let mut all = self.trees.lock().unwrap_or_else(|e| e.into_inner());
                if all.len() >= TREE_CACHE_COMMITS {
                    all.remove(0);
                }
                all.push((key, trees.clone()));
                trees
            }
        };
        let path = normalize_tree_path(path);
        Ok(trees
            .dirs
            .get(&path)
            .filter(|(_, plain)| *plain)
            .map(|(id, _)| id.clone()))
    }

    async fn list_trees(
        &self,
        url: &str,
        mirror: &Path,
        sha: &str,
    ) -> Result<CommitTrees, GitError> {
        let git_dir = format!("--git-dir={}", mirror.to_string_lossy());
        let tree_spec = format!("{sha}^{{tree}}");
        let root = self
            .git
            .run(
                mirror,
                &[&git_dir, "rev-parse", "--verify", "--quiet", &tree_spec],
                &Credentials::none(),
            )
            .await?
            .map_err(|source| GitError::Local {
                action: format!("reading the tree of {sha}"),
                url: redact_url(url),
                source: Box::new(source),
            })?;
        let out = self
            .git
            .run(
                mirror,
                &[&git_dir, "ls-tree", "-r", "-t", "-z", "--full-tree", sha],
                &Credentials::none(),
            )
            .await?
            .map_err(|source| GitError::Local {
                action: format!("listing the files of {sha}"),
                url: redact_url(url),
                source: Box::new(source),
            })?;
        Ok(parse_trees(root.trim(), &out))
    }

    /// Author, date and subject of commit `sha` of a fetched `url`.
    pub async fn commit_info(&self, url: &str, sha: &str) -> Result<CommitInfo, GitError> {
        check_revision(url, sha)?;
        let mirror = self.mirror_dir(url);
        if !mirror.join("HEAD").exists() {
            return Err(GitError::NotFetched {
                url: redact_url(url),
            });
        }
        let key = (mirror.clone(), sha.to_owned());
        if let Some(info) = self
            .commits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(info.clone());
        }
        let git_dir = format!("--git-dir={}", mirror.to_string_lossy());
        let spec = format!("{sha}^{{commit}}");
        let out = self
            .git
            .run(
                &mirror,
                &[
                    &git_dir,
                    "log",
                    "-1",
                    "--no-show-signature",
                    "--format=%H%x00%an%x00%ae%x00%aI%x00%s",
                    &spec,
                    "--",
                ],
                &Credentials::none(),
            )
            .await?
            .map_err(|source| GitError::Local {
                action: format!("reading commit {sha}"),
                url: redact_url(url),
                source: Box::new(source),
            })?;
        let info = parse_commit_info(&out).ok_or_else(|| GitError::UnexpectedOutput {
            action: format!("reading commit {sha}"),
            url: redact_url(url),
            output: out.chars().take(200).collect(),
        })?;
        // A full SHA names one commit forever; a short one may become ambiguous.
        if is_full_sha(sha) {
            let mut commits = self.commits.lock().unwrap_or_else(|e| e.into_inner());
            if commits.len() >= COMMIT_INFO_CACHE_LIMIT {
                commits.clear();
            }
            commits.insert(key, info.clone());
        }
        Ok(info)
    }
}

/// A repository path as `ls-tree` names directories: no `./`, no trailing `/`, `""` the root.
fn normalize_tree_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

/// Files that make a directory a Kustomize or Helm source, whose output may depend on files
/// outside the directory.
const RENDERED_BY_TOOLS: [&str; 4] = [
    "kustomization.yaml",
    "kustomization.yml",
    "Kustomization",
    "Chart.yaml",
];

/// Reads `git ls-tree -r -t -z` output (`<mode> <type> <id>\t<path>\0`) of a commit whose root
/// tree is `root`: every directory's id, and whether anything below it is a symlink (mode
/// 120000) or a submodule (type commit).
fn parse_trees(root: &str, out: &str) -> CommitTrees {
    let mut dirs: HashMap<String, (String, bool)> = HashMap::new();
    dirs.insert(String::new(), (root.to_owned(), true));
    let mut special = Vec::new();
    let mut tool_dirs = Vec::new();
    for entry in out.split('\0').filter(|e| !e.is_empty()) {
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let mut fields = meta.split(' ');
        let (Some(mode), Some(kind), Some(id)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if kind == "tree" {
            dirs.insert(path.to_owned(), (id.to_owned(), true));
        } else if mode == "120000" || kind == "commit" {
            special.push(path.to_owned());
        } else if let Some((dir, name)) = path.rsplit_once('/').or(Some(("", path)))
            && RENDERED_BY_TOOLS.contains(&name)
        {
            tool_dirs.push(dir.to_owned());
        }
    }
    for dir in tool_dirs {
        if let Some(entry) = dirs.get_mut(&dir) {
            entry.1 = false;
        }
    }
    for path in special {
        // Every directory above a symlink or submodule is not plain.
        let mut dir = path.as_str();
        loop {
            dir = dir.rsplit_once('/').map_or("", |(d, _)| d);
            if let Some(entry) = dirs.get_mut(dir) {
                entry.1 = false;
            }
            if dir.is_empty() {
                break;
            }
        }
    }
    CommitTrees { dirs }
}

/// Whether git's stderr says the wanted revision does not exist on the remote.
fn names_missing_revision(stderr: &str) -> bool {
    [
        "couldn't find remote ref",
        "not our ref",
        "unadvertised object",
        "no such remote ref",
    ]
    .iter()
    .any(|needle| stderr.contains(needle))
}

fn parse_commit_info(out: &str) -> Option<CommitInfo> {
    let line = out.trim_end_matches('\n');
    let mut fields = line.splitn(5, '\0');
    let info = CommitInfo {
        sha: fields.next()?.to_owned(),
        author_name: fields.next()?.to_owned(),
        author_email: fields.next()?.to_owned(),
        date: fields.next()?.to_owned(),
        subject: fields.next()?.to_owned(),
    };
    is_full_sha(&info.sha).then_some(info)
}

/// Marks every regular file under `dir` read-only (symlinks are left alone).
fn make_read_only(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            make_read_only(&entry.path())?;
        } else if kind.is_file() {
            let mut perms = entry.metadata()?.permissions();
            perms.set_readonly(true);
            std::fs::set_permissions(entry.path(), perms)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, sha: char) -> RemoteRef {
        RemoteRef {
            name: name.into(),
            sha: sha.to_string().repeat(40),
        }
    }

    #[test]
    fn tree_listing_marks_directories_above_symlinks_and_submodules() {
        let out = [
            "040000 tree t1\tapps",
            "100644 blob b1\tapps/a.yaml",
            "040000 tree t2\tapps/x",
            "040000 tree t3\tlinks",
            "120000 blob b2\tlinks/l",
            "040000 tree t4\tlinks/deep",
            "160000 commit c1\tmods/sub",
            "040000 tree t5\tmods",
            "040000 tree t6\tk",
            "100644 blob b3\tk/kustomization.yaml",
            "",
        ]
        .join("\0");
        let t = parse_trees("root", &out);
        assert_eq!(t.dirs[""], ("root".to_owned(), false));
        assert_eq!(t.dirs["apps"], ("t1".to_owned(), true));
        assert_eq!(t.dirs["apps/x"], ("t2".to_owned(), true));
        assert!(!t.dirs["links"].1);
        assert!(t.dirs["links/deep"].1);
        assert!(!t.dirs["mods"].1);
        assert!(!t.dirs["k"].1, "a kustomization");
        assert_eq!(normalize_tree_path("./apps/x/"), "apps/x");
        assert_eq!(normalize_tree_path("."), "");
    }

    #[test]
    fn resolves_like_argo_cd() {
        let refs = vec![
            r("HEAD", 'a'),
            r("refs/heads/main", 'a'),
            r("refs/heads/v1", 'b'),
            r("refs/tags/v1", 'c'),
            r("refs/tags/v2", 'd'),
            r("refs/tags/v2^{}", 'e'),
        ];
        assert_eq!(resolve_from_refs(&refs, ""), Some("a".repeat(40)));
        assert_eq!(resolve_from_refs(&refs, "HEAD"), Some("a".repeat(40)));
        assert_eq!(
            resolve_from_refs(&refs, "v1"),
            Some("b".repeat(40)),
            "branch before tag"
        );
        assert_eq!(
            resolve_from_refs(&refs, "v2"),
            Some("e".repeat(40)),
            "annotated tag peeled"
        );
        assert_eq!(
            resolve_from_refs(&refs, "refs/tags/v1"),
            Some("c".repeat(40))
        );
        assert_eq!(
            resolve_from_refs(&refs, &"F".repeat(40)),
            Some("f".repeat(40))
        );
        assert_eq!(resolve_from_refs(&refs, "abc1234"), None);
        assert_eq!(resolve_from_refs(&refs, "nope"), None);
    }

    #[test]
    fn parses_ls_remote() {
        let a = "a".repeat(40);
        let out = format!("{a}\tHEAD\n{a}\trefs/heads/main\n");
        let refs = parse_ls_remote(&out).unwrap();
        assert_eq!(refs, vec![r("HEAD", 'a'), r("refs/heads/main", 'a')]);
        assert_eq!(parse_ls_remote("garbage\n"), None);
        assert_eq!(parse_ls_remote(""), Some(vec![]));
    }

    #[test]
    fn mirror_names_follow_the_normalized_url() {
        assert_eq!(
            repo_dir_name(b"k", "https://a/x.git"),
            repo_dir_name(b"k", "https://A/x")
        );
        // One rule for all of ferry (Argo CD's): URLs that differ only in case are one
        // repository, and userinfo is not part of the key.
        assert_eq!(
            repo_dir_name(b"k", "https://a/x"),
            repo_dir_name(b"k", "https://user:pw@a/X")
        );
        assert_ne!(
            repo_dir_name(b"k", "https://a/x"),
            repo_dir_name(b"k", "https://a/y")
        );
        assert!(repo_dir_name(b"k", "https://a/my-repo.git").starts_with("my-repo-"));
        // Another key, another name: directories cannot be guessed without the cache's key.
        assert_ne!(
            repo_dir_name(b"k", "https://a/x"),
            repo_dir_name(b"other", "https://a/x")
        );
    }

    #[test]
    fn subcommand_skips_options_and_config() {
        assert_eq!(
            subcommand(&["--git-dir=x", "-c", "a=b", "fetch", "--quiet"]),
            "fetch"
        );
        assert_eq!(subcommand(&["ls-remote", "u"]), "ls-remote");
    }

    #[test]
    fn protocols_of_urls_and_the_file_switch() {
        assert_eq!(url_protocol("https://h/r"), "https");
        assert_eq!(url_protocol("git@github.com:org/r.git"), "ssh");
        assert_eq!(url_protocol("FILE:///tmp/r"), "file");
        assert_eq!(url_protocol("/tmp/r"), "file");
        assert_eq!(url_protocol("./a:b"), "file");
        assert_eq!(url_protocol("ext::sh -c touch% /tmp/x"), "ext");
        let git = Git::new("/nonexistent", Duration::from_secs(1));
        assert!(git.check_url("https://h/r").is_ok());
        let err = git.check_url("file:///tmp/r").unwrap_err();
        assert!(matches!(err, GitError::ProtocolNotAllowed { .. }), "{err}");
        assert!(err.to_string().contains("--allow-file-repos"), "{err}");
        assert!(git.check_url("/tmp/r").is_err());
        assert!(git.check_url("ext::sh -c x").is_err());
        let git = git.with_file_repos(true);
        assert!(git.check_url("file:///tmp/r").is_ok());
        assert!(git.check_url("ftp://h/r").is_err());
    }

    #[test]
    fn redacts_url_passwords() {
        assert_eq!(redact_url("https://u:secret@h/r"), "https://***@h/r");
        assert_eq!(redact_url("https://token@h/r"), "https://***@h/r");

        assert_eq!(redact_url("git@h:r"), "git@h:r");
        assert_eq!(
            url_password("https://u:secret@h/r").as_deref(),
            Some("secret")
        );
        assert_eq!(url_password("https://u@h/r:x"), None);
    }

    #[test]
    fn rejects_option_like_urls_and_revisions() {
        assert!(check_url("--upload-pack=touch /tmp/x").is_err());
        assert!(check_url("").is_err());
        assert!(check_revision("u", "--output=x").is_err());
        assert!(check_revision("u", "main..dev").is_err());
        assert!(check_revision("u", "a b").is_err());
        assert!(check_revision("u", "release/1.0").is_ok());
        assert!(check_revision("u", "").is_ok());
    }

    #[test]
    fn secrets_do_not_show_in_debug() {
        let creds = Credentials {
            ssh_private_key: Some("KEY".into()),
            ..Credentials::basic("me", "hunter2")
        };
        let shown = format!("{creds:?}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("KEY"),
            "{shown}"
        );
    }

    #[test]
    fn ssh_command_quotes_paths_and_pins_the_key() {
        let cmd = ssh_command(Path::new("/h/known hosts"), Some(Path::new("/h/k")), false);
        assert_eq!(
            cmd,
            "ssh -o BatchMode=yes -o UserKnownHostsFile='/h/known hosts' \
             -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
             -o IdentitiesOnly=yes -i '/h/k'"
        );
        assert!(ssh_command(Path::new("/k"), None, true).contains("StrictHostKeyChecking=no"));
    }

    #[test]
    fn credentials_reach_git_through_env_only() {
        let home = tempfile::tempdir().unwrap();
        let git = Git::new(home.path(), Duration::from_secs(5));
        let creds = Credentials {
            ssh_private_key: Some("PRIVATE KEY".into()),
            ..Credentials::basic("me", "hunter2")
        };
        let (spec, files) = git
            .command(home.path(), &["ls-remote", "x"], &creds)
            .unwrap();
        assert!(
            spec.args
                .iter()
                .all(|a| !a.contains("hunter2") && !a.contains("PRIVATE"))
        );
        let env: HashMap<_, _> = spec.env.iter().cloned().collect();
        assert_eq!(env["FERRY_GIT_PASSWORD"], "hunter2");
        assert_eq!(env["GIT_TERMINAL_PROMPT"], "0");
        let ssh = &env["GIT_SSH_COMMAND"];
        let key_path = ssh.rsplit(" -i ").next().unwrap().trim_matches('\'');
        assert_eq!(std::fs::read_to_string(key_path).unwrap(), "PRIVATE KEY\n");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(files);
        assert!(
            !Path::new(key_path).exists(),
            "the key file is removed after the command"
        );
    }

    #[test]
    fn parses_commit_info() {
        let sha = "a".repeat(40);
        let out = format!("{sha}\0Ann\0ann@x\02024-01-02T03:04:05+00:00\0fix: a\n");
        let info = parse_commit_info(&out).unwrap();
        assert_eq!(info.author_name, "Ann");
        assert_eq!(info.subject, "fix: a");
        assert!(parse_commit_info("nope").is_none());
    }
}
