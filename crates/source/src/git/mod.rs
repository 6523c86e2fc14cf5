//! Git through the `git` CLI: listing remote refs, a bare mirror per repository, checkouts
//! cached by commit, and commit metadata for the audit trail.
//!
//! Start with [`RepoCache`]: [`RepoCache::resolve_fresh`] fetches a repository when its last
//! fetch is older than a poll interval (concurrent callers share one fetch) and turns a
//! `targetRevision` into a commit SHA; [`RepoCache::checkout`] gives a read-only working tree of
//! that commit; [`RepoCache::commit_info`] says who made it.
//!
//! Every `git` is built by [`GitCommand`] (shared with the pipeline tools) and runs through
//! [`run_command`](crate::command::run_command) with a private `HOME`
//! and an empty global config, no system config, no terminal prompts, `LC_ALL=C`, and only the
//! `file`, `git`, `http`, `https` and `ssh` transports, and git's low-speed limit
//! ([`LowSpeedLimit`]: a server that stops sending fails with [`GitError::Stalled`] instead of
//! holding the fetch until the timeout). Credentials never appear in argv, URLs, errors or
//! logs:
//!
//! - username and password reach git through a credential helper whose *text* is in argv
//!   (`-c credential.helper=!f() { … }; f`) but whose values are read from the child's
//!   environment (`FERRY_GIT_USERNAME`, `FERRY_GIT_PASSWORD`), and stderr is redacted;
//! - an SSH private key is written to a `0600` file in a private temporary directory that is
//!   removed when the command ends, and named in `GIT_SSH_COMMAND`.

mod cache;
mod changes;
mod checkouts;
mod command;
mod runner;
mod trees;
mod url;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::command::CommandError;

pub use cache::{
    DEFAULT_GIT_TIMEOUT, DIRECTORY_CHECKOUTS_PER_COMMIT, FAILURE_SHARED_FOR, RepoCache,
};
pub use changes::CHANGE_CACHE_PAIRS;
pub use command::{ALL_PROTOCOLS, GitCommand, HostKeys, LowSpeedLimit, REMOTE_PROTOCOLS};
pub use runner::Git;
pub use trees::TREE_CACHE_COMMITS;
pub(crate) use url::repo_dir_name;
pub use url::{RepoUrl, cache_key, redact_url, resolve_from_refs, url_protocol};

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
    pub(crate) fn secrets(&self) -> Vec<String> {
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
    /// The server stopped sending: the transfer was slower than git's low-speed limit
    /// ([`LowSpeedLimit`]) for its whole time, so git gave up long before the timeout.
    #[error(
        "{action} {url} failed: the Git server stopped sending data (less than {bytes_per_second} byte/s for {seconds} s); \
         ferry retries with backoff; check that the server is up and not overloaded"
    )]
    Stalled {
        /// What was being done (`fetching`, `listing the refs of`).
        action: String,
        /// The repository (credentials masked).
        url: String,
        /// The low-speed limit's rate.
        bytes_per_second: u32,
        /// The low-speed limit's time.
        seconds: u32,
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
    /// A failed transfer from `url`: [`GitError::Stalled`] when git's low-speed limit aborted
    /// it, else `other(url, source)`.
    pub(crate) fn transfer(
        action: &str,
        url: &str,
        limit: Option<LowSpeedLimit>,
        source: CommandError,
        other: impl FnOnce(String, Box<CommandError>) -> GitError,
    ) -> GitError {
        match limit {
            Some(limit) if command::stalled(source.stderr_tail()) => GitError::Stalled {
                action: action.to_owned(),
                url: redact_url(url),
                bytes_per_second: limit.bytes_per_second.max(1),
                seconds: limit.seconds.max(1),
                source: Box::new(source),
            },
            _ => other(redact_url(url), Box::new(source)),
        }
    }

    /// Whether the server stopped sending (see [`GitError::Stalled`]), also when the error was
    /// shared by several callers of one fetch.
    pub fn is_stalled(&self) -> bool {
        match self {
            GitError::Stalled { .. } => true,
            GitError::SharedFetch(inner) => inner.is_stalled(),
            _ => false,
        }
    }

    pub(crate) fn io(action: &str, path: &Path) -> impl FnOnce(std::io::Error) -> GitError {
        let action = action.to_owned();
        let path = path.to_owned();
        move |source| GitError::Io {
            action,
            path,
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use super::cache::*;
    use super::command::*;
    use super::trees::*;
    use super::url::*;
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
        let cmd = ssh_command(
            Path::new("/h/known hosts"),
            Some(Path::new("/h/k")),
            false,
            HostKeys::Strict,
        );
        assert_eq!(
            cmd,
            "ssh -o BatchMode=yes -o UserKnownHostsFile='/h/known hosts' \
             -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes \
             -o IdentitiesOnly=yes -i '/h/k'"
        );
        assert!(
            ssh_command(Path::new("/k"), None, true, HostKeys::Strict)
                .contains("StrictHostKeyChecking=no")
        );
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
