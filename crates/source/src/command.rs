//! The one runner for external processes (`git` now, `helm` and `kustomize` later).
//!
//! Every process ferry starts goes through [`run_command`], which enforces safety invariant 5 of
//! the design: a timeout, bounded output, and a locked-down environment. Concretely:
//!
//! - the environment is cleared; the child sees `PATH` (from ferry's own environment, or a
//!   default) plus exactly the variables the caller lists in [`CommandSpec::env`]. Callers set
//!   `HOME` to a private directory so no user configuration leaks in;
//! - the child runs in its own process group; on timeout the whole group is killed (so helpers
//!   such as `git-remote-https` or `ssh` die with it), and the child is also killed when the
//!   future is dropped;
//! - stdout and stderr are read concurrently and each is kept up to
//!   [`CommandSpec::max_output`] bytes; the rest is read and dropped, and the output says it was
//!   truncated;
//! - a non-zero exit becomes [`CommandError::Failed`] with the tail of stderr, after the
//!   caller's secrets have been replaced by `***` ([`redact`]).
//!
//! Secrets never go into `argv` (pass them through [`CommandSpec::env`] or stdin); should one
//! arrive there anyway (a password a user wrote into a repository URL), the command line shown
//! in errors is masked with the same [`CommandSpec::secrets`] as stderr.

use std::fmt;
use std::path::PathBuf;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

/// What to run, where, with which environment and limits.
///
/// Build one with [`CommandSpec::new`] and the `with_*` methods; the defaults are a 60 s
/// timeout and 16 MiB of output per stream.
#[derive(Clone)]
pub struct CommandSpec {
    /// The program, looked up on `PATH` unless it contains a `/`.
    pub program: String,
    /// Arguments. Never put a secret here: argv is visible to every user of the machine.
    pub args: Vec<String>,
    /// Working directory of the child.
    pub cwd: PathBuf,
    /// Environment variables set for the child, on top of `PATH`. Nothing else is inherited.
    pub env: Vec<(String, String)>,
    /// How long the process may run before it (and its process group) is killed.
    pub timeout: Duration,
    /// Bytes written to the child's stdin, which is then closed. `None`: stdin is `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// Bytes kept of stdout and of stderr each; the rest is dropped.
    pub max_output: usize,
    /// Strings replaced by `***` in stderr before it goes into an error (passwords, tokens).
    pub secrets: Vec<String>,
    /// How errors name the command (`git fetch`); `None`: the whole command line.
    pub label: Option<String>,
}

impl CommandSpec {
    /// A spec running `program` in `cwd` with no arguments, no extra environment, a 60 s
    /// timeout and 16 MiB of output per stream.
    pub fn new(program: impl Into<String>, cwd: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            cwd: cwd.into(),
            env: Vec::new(),
            timeout: Duration::from_secs(60),
            stdin: None,
            max_output: 16 << 20,
            secrets: Vec::new(),
            label: None,
        }
    }

    /// Appends arguments.
    #[must_use]
    pub fn with_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Adds one environment variable for the child.
    #[must_use]
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((name.into(), value.into()));
        self
    }

    /// Sets the timeout.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the bytes written to stdin.
    #[must_use]
    pub fn with_stdin(mut self, stdin: Vec<u8>) -> Self {
        self.stdin = Some(stdin);
        self
    }

    /// Sets how many bytes of stdout and of stderr are kept.
    #[must_use]
    pub fn with_max_output(mut self, max_output: usize) -> Self {
        self.max_output = max_output;
        self
    }

    /// Adds a secret to be masked in stderr shown in errors.
    #[must_use]
    pub fn with_secret(mut self, secret: impl Into<String>) -> Self {
        let secret = secret.into();
        if !secret.is_empty() {
            self.secrets.push(secret);
        }
        self
    }

    /// Sets how errors name the command (a short `git fetch` instead of the whole line).
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// `program arg1 arg2 …` for messages and logs, with [`CommandSpec::secrets`] masked.
    pub fn display(&self) -> String {
        let secrets: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
        redact(&display_command(&self.program, &self.args), &secrets)
    }
}

/// Environment values may hold secrets, so `Debug` shows only their names.
impl fmt::Debug for CommandSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("CommandSpec")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("cwd", &self.cwd)
            .field("env", &env_names)
            .field("timeout", &self.timeout)
            .field(
                "stdin",
                &self.stdin.as_ref().map(|s| format!("{} bytes", s.len())),
            )
            .field("max_output", &self.max_output)
            .field("secrets", &format!("{} masked", self.secrets.len()))
            .field("label", &self.label)
            .finish()
    }
}

/// What a finished process produced.
#[derive(Debug, Clone)]
pub struct CommandOutput {
    /// Exit status (always success when returned by [`run_command`]).
    pub status: ExitStatus,
    /// Standard output, at most `max_output` bytes.
    pub stdout: Vec<u8>,
    /// Standard error, at most `max_output` bytes.
    pub stderr: Vec<u8>,
    /// Whether stdout was longer than `max_output` and cut.
    pub stdout_truncated: bool,
    /// Whether stderr was longer than `max_output` and cut.
    pub stderr_truncated: bool,
}

impl CommandOutput {
    /// Stdout as text (invalid UTF-8 replaced).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Why an external process did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The program could not be started.
    #[error(
        "could not start `{program}` in {cwd}: {source}; check that `{program}` is installed and on PATH"
    )]
    Spawn {
        /// The program.
        program: String,
        /// The working directory it was started in.
        cwd: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Talking to the process (stdin, stdout, stderr, wait) failed.
    #[error("I/O error while running `{command}`: {source}")]
    Io {
        /// The command line.
        command: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The process ran longer than its timeout and was killed.
    #[error(
        "`{command}` did not finish within {timeout:?} and was killed; the remote may be slow or unreachable, or the timeout too short"
    )]
    TimedOut {
        /// The command line.
        command: String,
        /// The timeout that expired.
        timeout: Duration,
    },
    /// The process exited unsuccessfully.
    #[error("`{args_for_display}` failed ({status}): {stderr_tail}")]
    Failed {
        /// The program.
        program: String,
        /// The command line (or the spec's label), secrets masked, for messages.
        args_for_display: String,
        /// The exit status.
        status: ExitStatus,
        /// The last lines of stderr, secrets masked.
        stderr_tail: String,
    },
}

impl CommandError {
    /// The stderr tail of a [`CommandError::Failed`], empty for the other variants.
    pub fn stderr_tail(&self) -> &str {
        match self {
            CommandError::Failed { stderr_tail, .. } => stderr_tail,
            _ => "",
        }
    }
}

/// How much of stderr goes into [`CommandError::Failed`].
const STDERR_TAIL_BYTES: usize = 2048;

/// Runs a process as described by `spec` and returns its output when it exits with status 0.
///
/// See the [module docs](self) for the environment, timeout and output rules.
pub async fn run_command(spec: CommandSpec) -> Result<CommandOutput, CommandError> {
    let secrets: Vec<&str> = spec.secrets.iter().map(String::as_str).collect();
    // Arguments should hold no secret, but a user may put one in a URL: `display` masks it.
    let command_line = match &spec.label {
        Some(label) => label.clone(),
        None => spec.display(),
    };
    let path = spec
        .env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or_else(inherited_path, |(_, v)| v.clone());
    let mut cmd = Command::new(program_path(&spec.program, &path));
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .env_clear()
        .env("PATH", inherited_path())
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(if spec.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);

    let mut child = cmd.spawn().map_err(|source| CommandError::Spawn {
        program: spec.program.clone(),
        cwd: spec.cwd.clone(),
        source,
    })?;
    let pid = child.id();

    let stdin_task = match (spec.stdin, child.stdin.take()) {
        (Some(bytes), Some(mut pipe)) => Some(tokio::spawn(async move {
            // A child that exits without reading its input closes the pipe: not our error.
            let _ = pipe.write_all(&bytes).await;
            let _ = pipe.shutdown().await;
        })),
        _ => None,
    };
    let stdout = child.stdout.take().expect("stdout is piped");
    let stderr = child.stderr.take().expect("stderr is piped");
    let limit = spec.max_output;

    let finished = tokio::time::timeout(spec.timeout, async {
        let (out, err, status) = tokio::join!(
            read_bounded(stdout, limit),
            read_bounded(stderr, limit),
            child.wait()
        );
        (out, err, status)
    })
    .await;

    if let Some(task) = stdin_task {
        task.abort();
    }
    let (out, err, status) = match finished {
        Ok(done) => done,
        Err(_elapsed) => {
            kill_process_group(pid);
            let _ = child.start_kill();
            let _ = child.wait().await;
            return Err(CommandError::TimedOut {
                command: command_line,
                timeout: spec.timeout,
            });
        }
    };
    let io_err = |source| CommandError::Io {
        command: command_line.clone(),
        source,
    };
    let status = status.map_err(io_err)?;
    let (stdout, stdout_truncated) = out.map_err(io_err)?;
    let (stderr, stderr_truncated) = err.map_err(io_err)?;

    if !status.success() {
        return Err(CommandError::Failed {
            program: spec.program.clone(),
            args_for_display: command_line,
            status,
            stderr_tail: redact(&stderr_tail(&stderr), &secrets),
        });
    }
    Ok(CommandOutput {
        status,
        stdout,
        stderr,
        stdout_truncated,
        stderr_truncated,
    })
}

/// Replaces every occurrence of each non-empty secret in `text` by `***`.
///
/// Longer secrets are replaced first, so a secret that contains another is masked whole.
pub fn redact(text: &str, secrets: &[&str]) -> String {
    let mut sorted: Vec<&str> = secrets.iter().copied().filter(|s| !s.is_empty()).collect();
    sorted.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let mut out = text.to_owned();
    for secret in sorted {
        out = out.replace(secret, "***");
    }
    out
}

fn display_command(program: &str, args: &[String]) -> String {
    let mut line = program.to_owned();
    for arg in args {
        line.push(' ');
        if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || c == '\'' || c == '"') {
            line.push('\'');
            line.push_str(&arg.replace('\'', r"'\''"));
            line.push('\'');
        } else {
            line.push_str(arg);
        }
    }
    line
}

/// The last [`STDERR_TAIL_BYTES`] of stderr as trimmed text, on a character boundary.
fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    if text.is_empty() {
        return "(no error output)".to_owned();
    }
    if text.len() <= STDERR_TAIL_BYTES {
        return text.to_owned();
    }
    let mut start = text.len() - STDERR_TAIL_BYTES;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    format!("…{}", &text[start..])
}

/// Where the child's `exec` would find `program` on `path` (the PATH it is given): the first
/// executable file of that name in its directories; `program` itself when it names a path (has
/// a `/`) or is found nowhere (the spawn then fails as it would have). Spawning a path lets the
/// standard library use `posix_spawn`, which does not copy ferry's page tables; a bare name
/// with a PATH other than ferry's own makes it `fork` (at 10,000 apps ferry is a few hundred
/// MiB, and each git, helm or kustomize run paid for that copy).
fn program_path(program: &str, path: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    if program.contains('/') || program.is_empty() {
        return PathBuf::from(program);
    }
    std::env::split_paths(path)
        .filter(|dir| dir.is_absolute())
        .map(|dir| dir.join(program))
        .find(|candidate| {
            std::fs::metadata(candidate)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| PathBuf::from(program))
}

fn inherited_path() -> String {
    std::env::var("PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_owned())
}

/// Reads a stream to its end, keeping the first `limit` bytes. Returns the bytes and whether
/// anything was dropped. Reading on after the limit keeps the child from blocking on a full pipe.
async fn read_bounded<R: AsyncRead + Unpin>(
    mut reader: R,
    limit: usize,
) -> std::io::Result<(Vec<u8>, bool)> {
    let mut kept = Vec::new();
    let mut truncated = false;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = reader.read(&mut chunk).await?;
        if n == 0 {
            return Ok((kept, truncated));
        }
        let room = limit.saturating_sub(kept.len());
        if n > room {
            truncated = true;
        }
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
}

/// Kills the child's whole process group (it was started as a group leader), best effort.
///
/// Without `unsafe` there is no `killpg`, so this asks `kill(1)`.
fn kill_process_group(pid: Option<u32>) {
    #[cfg(unix)]
    if let Some(pid) = pid {
        let _ = std::process::Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{pid}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    #[cfg(not(unix))]
    let _ = pid;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_found_as_the_childs_exec_would_find_it() {
        use std::os::unix::fs::PermissionsExt as _;
        let dirs = tempfile::tempdir().expect("a temporary directory");
        let (first, second) = (dirs.path().join("first"), dirs.path().join("second"));
        for d in [&first, &second] {
            std::fs::create_dir(d).expect("a directory");
        }
        let tool = |dir: &std::path::Path, mode: u32| {
            let f = dir.join("tool");
            std::fs::write(&f, "#!/bin/sh\n").expect("a file");
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(mode)).expect("mode");
            f
        };
        // Not executable in the first directory: the second one's is taken.
        tool(&first, 0o644);
        let runnable = tool(&second, 0o755);
        let path =
            std::env::join_paths(["relative/dir".as_ref(), first.as_path(), second.as_path()])
                .expect("a PATH")
                .into_string()
                .expect("UTF-8");
        assert_eq!(program_path("tool", &path), runnable);
        // A path stays as it is; a name found nowhere stays a name (the spawn reports it).
        assert_eq!(program_path("./tool", &path), PathBuf::from("./tool"));
        assert_eq!(program_path("missing", &path), PathBuf::from("missing"));
        // Only absolute directories count: a relative one would depend on the child's cwd.
        let relative_only = "first";
        assert_eq!(program_path("tool", relative_only), PathBuf::from("tool"));
    }

    #[tokio::test]
    async fn a_program_is_looked_up_on_the_path_the_child_gets() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().expect("a temporary directory");
        let script = dir.path().join("ferry-test-tool");
        std::fs::write(&script, "#!/bin/sh\necho found\n").expect("a script");
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("mode");
        let mut spec = CommandSpec::new("ferry-test-tool", dir.path());
        spec.env.push((
            "PATH".into(),
            format!("{}:/usr/bin:/bin", dir.path().display()),
        ));
        let out = run_command(spec).await.expect("the tool runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "found");
    }

    #[test]
    fn redact_masks_every_secret_longest_first() {
        assert_eq!(
            redact("user pw pw2 and pw", &["pw", "pw2", ""]),
            "user *** *** and ***"
        );
        assert_eq!(redact("nothing here", &[]), "nothing here");
    }

    #[test]
    fn display_quotes_arguments_with_spaces() {
        let line = display_command("git", &["-c".into(), "a=b c".into(), "it's".into()]);
        assert_eq!(line, r"git -c 'a=b c' 'it'\''s'");
    }

    #[test]
    fn stderr_tail_keeps_the_end() {
        let long = "x".repeat(5000) + "THE END";
        let tail = stderr_tail(long.as_bytes());
        assert!(tail.ends_with("THE END"));
        assert!(tail.len() <= STDERR_TAIL_BYTES + 4);
        assert_eq!(stderr_tail(b"  \n"), "(no error output)");
    }

    #[test]
    fn debug_hides_environment_values() {
        let spec = CommandSpec::new("git", "/").with_env("FERRY_GIT_PASSWORD", "hunter2");
        let shown = format!("{spec:?}");
        assert!(shown.contains("FERRY_GIT_PASSWORD"));
        assert!(!shown.contains("hunter2"));
    }

    #[tokio::test]
    async fn runs_with_a_clean_environment_and_stdin() {
        let out = run_command(
            CommandSpec::new("sh", "/")
                .with_args(["-c", "cat; echo \"[$HOME][$FOO]\""])
                .with_env("FOO", "bar")
                .with_stdin(b"in:".to_vec()),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout_text(), "in:[][bar]\n");
    }

    #[tokio::test]
    async fn failure_carries_redacted_stderr() {
        let err = run_command(
            CommandSpec::new("sh", "/")
                .with_args(["-c", "echo \"bad password $PW\" >&2; exit 3"])
                .with_env("PW", "s3cret")
                .with_secret("s3cret"),
        )
        .await
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("bad password ***"), "{msg}");
        assert!(!msg.contains("s3cret"), "{msg}");
        assert!(matches!(err, CommandError::Failed { .. }));
    }

    #[tokio::test]
    async fn output_is_bounded() {
        let out = run_command(
            CommandSpec::new("sh", "/")
                .with_args(["-c", "head -c 100000 /dev/zero"])
                .with_max_output(1000),
        )
        .await
        .unwrap();
        assert_eq!(out.stdout.len(), 1000);
        assert!(out.stdout_truncated);
        assert!(!out.stderr_truncated);
    }

    #[tokio::test]
    async fn timeout_kills_the_process_group() {
        // The grandchild keeps stdout open: only killing the group ends the read.
        let err = run_command(
            CommandSpec::new("sh", "/")
                .with_args(["-c", "sleep 30 & sleep 30"])
                .with_timeout(Duration::from_millis(300)),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CommandError::TimedOut { .. }), "{err}");
    }

    #[tokio::test]
    async fn missing_program_is_a_spawn_error() {
        let err = run_command(CommandSpec::new("ferry-no-such-program", "/"))
            .await
            .unwrap_err();
        assert!(matches!(err, CommandError::Spawn { .. }));
        assert!(err.to_string().contains("PATH"));
    }
}
