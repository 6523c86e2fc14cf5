//! The one hardened `git` command line, shared by the engine's repository cache
//! ([`super::Git`]) and the pipeline tools (clone, commit and push): [`GitCommand`].
//!
//! Every `git` ferry runs gets a private `HOME` and an empty global config, no system config,
//! no terminal prompts, `LC_ALL=C`, an allow-list of transports, credentials through a
//! credential helper that reads them from the child's environment (never argv), an
//! `ssh` that never prompts and checks host keys, and git's low-speed limit so that a server
//! that stops sending fails the command in seconds instead of at its timeout.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::Credentials;
use crate::command::CommandSpec;

/// How `ssh` checks a host's key when the repository is not `insecure` (an `insecure`
/// repository skips the check).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostKeys {
    /// Only the hosts listed in `known_hosts` in the private `HOME` (the operator's list,
    /// Argo CD's `argocd-ssh-known-hosts-cm`); unknown hosts are refused and the system's
    /// known hosts are ignored.
    Strict,
    /// Hosts listed in the system's or the private `known_hosts` are checked against their
    /// keys; a host seen for the first time is accepted (a pipeline step with a throw-away
    /// `HOME`).
    AcceptNew,
}

/// git's low-speed limit (`http.lowSpeedLimit`, `http.lowSpeedTime`): an HTTP transfer slower
/// than `bytes_per_second` for `seconds` in a row is aborted. A server that accepts the
/// request and then sends nothing thus fails in `seconds`, not at the command's timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LowSpeedLimit {
    /// The slowest transfer rate tolerated, in bytes per second (at least 1).
    pub bytes_per_second: u32,
    /// For how long the transfer may be slower than that, in seconds (at least 1).
    pub seconds: u32,
}

impl Default for LowSpeedLimit {
    /// 1 byte per second for 30 seconds.
    fn default() -> Self {
        Self {
            bytes_per_second: 1,
            seconds: 30,
        }
    }
}

/// The transports git may use when local repositories are refused.
pub const REMOTE_PROTOCOLS: &str = "git:http:https:ssh";

/// The transports git may use when local repositories are allowed.
pub const ALL_PROTOCOLS: &str = "file:git:http:https:ssh";

/// Builds hardened `git` invocations: see the [module docs](self).
///
/// ```
/// # use std::time::Duration;
/// # use ferry_source::git::{Credentials, GitCommand};
/// let git = GitCommand::new("/tmp/home", Duration::from_secs(60));
/// let spec = git.build("/tmp".as_ref(), &["ls-remote", "https://example.com/repo"], &Credentials::none(), None);
/// assert_eq!(spec.program, "git");
/// ```
#[derive(Clone, Debug)]
pub struct GitCommand {
    home: PathBuf,
    timeout: Duration,
    protocols: &'static str,
    host_keys: HostKeys,
    low_speed: Option<LowSpeedLimit>,
    config: Vec<String>,
    env: Vec<(String, String)>,
}

impl GitCommand {
    /// `git` with `HOME` = `home` (which must hold an empty `gitconfig`; the caller creates it)
    /// and a `timeout` per command; remote transports only, strict host keys, the default
    /// [`LowSpeedLimit`].
    pub fn new(home: impl Into<PathBuf>, timeout: Duration) -> Self {
        Self {
            home: home.into(),
            timeout,
            protocols: REMOTE_PROTOCOLS,
            host_keys: HostKeys::Strict,
            low_speed: Some(LowSpeedLimit::default()),
            config: Vec::new(),
            env: Vec::new(),
        }
    }

    /// The transports git may use (`GIT_ALLOW_PROTOCOL`): [`REMOTE_PROTOCOLS`] or
    /// [`ALL_PROTOCOLS`].
    #[must_use]
    pub fn protocols(mut self, protocols: &'static str) -> Self {
        self.protocols = protocols;
        self
    }

    /// How ssh checks host keys.
    #[must_use]
    pub fn host_keys(mut self, host_keys: HostKeys) -> Self {
        self.host_keys = host_keys;
        self
    }

    /// Replaces the low-speed limit (`None`: only the timeout stops a stalled transfer).
    #[must_use]
    pub fn low_speed_limit(mut self, limit: Option<LowSpeedLimit>) -> Self {
        self.low_speed = limit;
        self
    }

    /// The low-speed limit in use.
    pub fn low_speed(&self) -> Option<LowSpeedLimit> {
        self.low_speed
    }

    /// Adds a `-c key=value` for every command (a constant of ferry's, never a spec value).
    #[must_use]
    pub fn config(mut self, key_value: impl Into<String>) -> Self {
        self.config.push(key_value.into());
        self
    }

    /// Adds an environment variable for every command.
    #[must_use]
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// The private `HOME`.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The per-command timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The command `git <args>` in `cwd` with `creds` wired through the environment; an SSH key
    /// must already be in `key_file` (mode `0600`, in a private directory the caller removes).
    /// Passwords of `creds` and of URLs in `args` are masked in the command's errors.
    pub fn build(
        &self,
        cwd: &Path,
        args: &[&str],
        creds: &Credentials,
        key_file: Option<&Path>,
    ) -> CommandSpec {
        let mut argv: Vec<String> = vec!["-c".into(), "credential.helper=".into()];
        for config in &self.config {
            argv.push("-c".into());
            argv.push(config.clone());
        }
        if let Some(limit) = self.low_speed {
            argv.push("-c".into());
            argv.push(format!(
                "http.lowSpeedLimit={}",
                limit.bytes_per_second.max(1)
            ));
            argv.push("-c".into());
            argv.push(format!("http.lowSpeedTime={}", limit.seconds.max(1)));
        }
        let mut spec = CommandSpec::new("git", cwd)
            .with_timeout(self.timeout)
            .with_env("HOME", self.home.to_string_lossy())
            .with_env("GIT_CONFIG_NOSYSTEM", "1")
            .with_env(
                "GIT_CONFIG_GLOBAL",
                self.home.join("gitconfig").to_string_lossy(),
            )
            .with_env("GIT_TERMINAL_PROMPT", "0")
            .with_env("GIT_ALLOW_PROTOCOL", self.protocols)
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
        let ssh = ssh_command(
            &self.home.join("known_hosts"),
            key_file,
            creds.insecure,
            self.host_keys,
        );
        spec = spec.with_env("GIT_SSH_COMMAND", ssh);
        for (name, value) in &self.env {
            spec = spec.with_env(name, value);
        }
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        spec.args = argv;
        spec.label = Some(format!("git {}", subcommand(args)));
        spec
    }
}

/// Whether git's stderr says the transfer was aborted by the [`LowSpeedLimit`] (curl's
/// "Operation too slow").
pub(crate) fn stalled(stderr: &str) -> bool {
    stderr.contains("Operation too slow")
}

/// The credential helper: its text is in argv, the values come from the child's environment.
pub(crate) const CREDENTIAL_HELPER: &str = "credential.helper=!f() { test \"$1\" = get || exit 0; \
     echo \"username=${FERRY_GIT_USERNAME}\"; echo \"password=${FERRY_GIT_PASSWORD}\"; }; f";

/// `GIT_SSH_COMMAND`: batch mode (never prompt), the known hosts in the private `HOME`
/// (with [`HostKeys::Strict`] the operator's list, see [`super::Git::set_known_hosts`],
/// checked strictly), the key if any. Only `insecure` repositories skip the check.
pub(crate) fn ssh_command(
    known_hosts: &Path,
    key_file: Option<&Path>,
    insecure: bool,
    host_keys: HostKeys,
) -> String {
    let mut cmd = String::from("ssh -o BatchMode=yes");
    cmd.push_str(" -o UserKnownHostsFile=");
    cmd.push_str(&shell_quote(&known_hosts.to_string_lossy()));
    if host_keys == HostKeys::Strict {
        cmd.push_str(" -o GlobalKnownHostsFile=/dev/null");
    }
    cmd.push_str(match (insecure, host_keys) {
        (true, _) => " -o StrictHostKeyChecking=no",
        (false, HostKeys::Strict) => " -o StrictHostKeyChecking=yes",
        (false, HostKeys::AcceptNew) => " -o StrictHostKeyChecking=accept-new",
    });
    if let Some(key) = key_file {
        cmd.push_str(" -o IdentitiesOnly=yes -i ");
        cmd.push_str(&shell_quote(&key.to_string_lossy()));
    }
    cmd
}

/// The git subcommand in `args` (the first argument that is neither an option nor the value
/// of `-c`), for short error messages.
pub(crate) fn subcommand<'a>(args: &[&'a str]) -> &'a str {
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

pub(crate) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The password of `scheme://user:password@host/…`, if the URL has one.
pub(crate) fn url_password(url: &str) -> Option<String> {
    let (_, rest) = url.split_once("://")?;
    let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
    let (userinfo, _) = authority.rsplit_once('@')?;
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then(|| password.to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn args_and_env(spec: &CommandSpec) -> (Vec<String>, HashMap<String, String>) {
        (spec.args.clone(), spec.env.iter().cloned().collect())
    }

    #[test]
    fn every_command_is_hardened() {
        let git = GitCommand::new("/h", Duration::from_secs(9));
        let spec = git.build(
            Path::new("/w"),
            &["ls-remote", "https://example.com/r"],
            &Credentials::none(),
            None,
        );
        let (args, env) = args_and_env(&spec);
        assert_eq!(args[..2], ["-c", "credential.helper="]);
        assert!(args.ends_with(&["ls-remote".into(), "https://example.com/r".into()]));
        assert_eq!(env["HOME"], "/h");
        assert_eq!(env["GIT_CONFIG_NOSYSTEM"], "1");
        assert_eq!(env["GIT_CONFIG_GLOBAL"], "/h/gitconfig");
        assert_eq!(env["GIT_TERMINAL_PROMPT"], "0");
        assert_eq!(env["GIT_ALLOW_PROTOCOL"], REMOTE_PROTOCOLS);
        assert!(env["GIT_SSH_COMMAND"].contains("StrictHostKeyChecking=yes"));
        assert!(env["GIT_SSH_COMMAND"].contains("GlobalKnownHostsFile=/dev/null"));
        assert_eq!(spec.label.as_deref(), Some("git ls-remote"));
    }

    #[test]
    fn the_low_speed_limit_is_passed_as_config() {
        let limited =
            GitCommand::new("/h", Duration::from_secs(9)).low_speed_limit(Some(LowSpeedLimit {
                bytes_per_second: 0,
                seconds: 7,
            }));
        let (args, _) =
            args_and_env(&limited.build(Path::new("/w"), &["fetch"], &Credentials::none(), None));
        // 0 would switch git's limit off: at least 1 byte/s.
        assert!(
            args.contains(&"http.lowSpeedLimit=1".to_owned()),
            "{args:?}"
        );
        assert!(args.contains(&"http.lowSpeedTime=7".to_owned()), "{args:?}");
        let default = GitCommand::new("/h", Duration::from_secs(9));
        let (args, _) =
            args_and_env(&default.build(Path::new("/w"), &["fetch"], &Credentials::none(), None));
        assert!(
            args.contains(&"http.lowSpeedTime=30".to_owned()),
            "{args:?}"
        );
        let off = default.low_speed_limit(None);
        let (args, _) =
            args_and_env(&off.build(Path::new("/w"), &["fetch"], &Credentials::none(), None));
        assert!(!args.iter().any(|a| a.contains("lowSpeed")), "{args:?}");
    }

    #[test]
    fn pipeline_settings_add_config_env_and_accept_new_hosts() {
        let git = GitCommand::new("/h", Duration::from_secs(9))
            .protocols(ALL_PROTOCOLS)
            .host_keys(HostKeys::AcceptNew)
            .config("core.hooksPath=/dev/null")
            .env("GIT_AUTHOR_NAME", "Bot");
        let creds = Credentials::basic("u", "hunter2");
        let spec = git.build(Path::new("/w"), &["push", "origin"], &creds, None);
        let (args, env) = args_and_env(&spec);
        assert_eq!(args[2..4], ["-c", "core.hooksPath=/dev/null"]);
        assert_eq!(env["GIT_ALLOW_PROTOCOL"], ALL_PROTOCOLS);
        assert_eq!(env["GIT_AUTHOR_NAME"], "Bot");
        assert!(env["GIT_SSH_COMMAND"].contains("StrictHostKeyChecking=accept-new"));
        assert!(!env["GIT_SSH_COMMAND"].contains("GlobalKnownHostsFile"));
        assert!(!args.iter().any(|a| a.contains("hunter2")), "{args:?}");
        assert_eq!(env["FERRY_GIT_PASSWORD"], "hunter2");
    }

    #[test]
    fn recognises_curls_low_speed_abort() {
        assert!(stalled(
            "fatal: unable to access 'http://h/r/': Operation too slow. Less than 1 bytes/sec transferred the last 30 seconds"
        ));
        assert!(!stalled("fatal: Authentication failed for 'http://h/r/'"));
    }
}
