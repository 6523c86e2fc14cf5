//! Finding and running `helm` and `kustomize`, and the private directories they run in.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;

use super::RenderError;
use crate::command::{CommandError, CommandSpec};

/// The environment variable naming the `helm` binary (a full path).
pub const HELM_ENV: &str = "FERRY_HELM";
/// The environment variable naming the `kustomize` binary (a full path).
pub const KUSTOMIZE_ENV: &str = "FERRY_KUSTOMIZE";

/// Default timeout of one `helm` or `kustomize` command (Argo CD's default is 90 s too).
pub const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(90);

/// The protocols kustomize may fetch remote bases with unless the operator says otherwise.
pub const DEFAULT_REMOTE_BASE_PROTOCOLS: [&str; 2] = ["https", "ssh"];

/// Default bytes kept of a tool's output; a larger render is an error, never used partially.
pub const DEFAULT_MAX_RENDER_BYTES: usize = 64 << 20;

/// The `helm` and `kustomize` binaries, their limits, and the cache of pulled Helm charts.
///
/// One per process, shared by every render. Layout under the cache directory:
/// `charts/<repo>-<hash>/<chart>/<version>.tgz` (pulled chart archives, reused by later renders)
/// and `tmp/` (a private directory per command, removed when it ends: the tools' `HOME`, XDG and
/// `HELM_*` directories, copies of checkouts that get edited).
#[derive(Debug)]
pub struct RenderTools {
    helm: String,
    kustomize: String,
    cache_dir: PathBuf,
    timeout: Duration,
    max_output: usize,
    pulls: AtomicUsize,
    chart_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    key: Vec<u8>,
    remote_protocols: Vec<String>,
}

impl RenderTools {
    /// Tools found through `$FERRY_HELM` / `$FERRY_KUSTOMIZE` (full paths), else `helm` and
    /// `kustomize` on `PATH`, with their cache under `cache_dir`.
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        let from_env = |var: &str, default: &str| {
            std::env::var(var)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let cache_dir = cache_dir.into();
        Self {
            helm: from_env(HELM_ENV, "helm"),
            kustomize: from_env(KUSTOMIZE_ENV, "kustomize"),
            key: crate::git::cache_key(&cache_dir),
            remote_protocols: DEFAULT_REMOTE_BASE_PROTOCOLS
                .iter()
                .map(|p| (*p).to_owned())
                .collect(),
            cache_dir,
            timeout: DEFAULT_TOOL_TIMEOUT,
            max_output: DEFAULT_MAX_RENDER_BYTES,
            pulls: AtomicUsize::new(0),
            chart_locks: Mutex::new(HashMap::new()),
        }
    }

    /// Uses this `helm` binary.
    #[must_use]
    pub fn with_helm(mut self, program: impl AsRef<Path>) -> Self {
        self.helm = program.as_ref().to_string_lossy().into_owned();
        self
    }

    /// Uses this `kustomize` binary.
    #[must_use]
    pub fn with_kustomize(mut self, program: impl AsRef<Path>) -> Self {
        self.kustomize = program.as_ref().to_string_lossy().into_owned();
        self
    }

    /// The protocols kustomize may fetch remote bases with (`https`, `ssh`, `http`, `git`).
    /// `file` is never allowed: a `file://` base would read other repositories' mirrors.
    #[must_use]
    pub fn with_remote_protocols<I, S>(mut self, protocols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.remote_protocols = protocols
            .into_iter()
            .map(|p| p.into().trim().to_ascii_lowercase())
            .filter(|p| !p.is_empty() && p != "file")
            .collect();
        self
    }

    /// The protocols kustomize may fetch remote bases with.
    pub fn remote_protocols(&self) -> &[String] {
        &self.remote_protocols
    }

    /// The secret that keys cache directory names.
    pub(crate) fn cache_key(&self) -> &[u8] {
        &self.key
    }

    /// Sets the timeout of each command.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets how many bytes of output a render may produce.
    #[must_use]
    pub fn with_max_output(mut self, max_output: usize) -> Self {
        self.max_output = max_output;
        self
    }

    /// The `helm` binary.
    pub fn helm_program(&self) -> &str {
        &self.helm
    }

    /// The `kustomize` binary.
    pub fn kustomize_program(&self) -> &str {
        &self.kustomize
    }

    /// The cache directory.
    pub fn cache_dir(&self) -> &Path {
        &self.cache_dir
    }

    /// How many `helm pull` commands ran (successful or not) since these tools were created.
    pub fn helm_pull_count(&self) -> usize {
        self.pulls.load(Ordering::SeqCst)
    }

    pub(crate) fn count_pull(&self) {
        self.pulls.fetch_add(1, Ordering::SeqCst);
    }

    pub(crate) fn max_output(&self) -> usize {
        self.max_output
    }

    /// The directory of pulled chart archives.
    pub(crate) fn charts_dir(&self) -> PathBuf {
        self.cache_dir.join("charts")
    }

    /// The lock serializing pulls of one chart of one repository (other charts never wait).
    pub(crate) fn chart_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.chart_locks.lock().unwrap_or_else(|e| e.into_inner());
        locks.entry(key.to_owned()).or_default().clone()
    }

    /// Removes private directories holding decrypted SOPS files (`<cache>/tmp/sops-*`) that a
    /// process killed in the middle of a render left behind. Call it once at start, before any
    /// render of this cache directory.
    pub fn remove_stale_decrypted(&self) -> std::io::Result<usize> {
        let tmp = self.cache_dir.join("tmp");
        let Ok(entries) = std::fs::read_dir(&tmp) else {
            return Ok(0);
        };
        let mut removed = 0;
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with(super::sops::PRIVATE_PREFIX)
            {
                std::fs::remove_dir_all(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// A fresh private directory under `<cache>/tmp`, removed when dropped.
    pub(crate) fn private_dir(&self, prefix: &str) -> Result<TempDir, RenderError> {
        let tmp = self.cache_dir.join("tmp");
        std::fs::create_dir_all(&tmp).map_err(|source| RenderError::Io {
            path: tmp.display().to_string(),
            source,
        })?;
        tempfile::Builder::new()
            .prefix(prefix)
            .tempdir_in(&tmp)
            .map_err(|source| RenderError::Io {
                path: tmp.display().to_string(),
                source,
            })
    }

    /// `helm <args>` in `cwd` with `HOME`, XDG and `HELM_*` directories inside `home` (a private
    /// directory) and nothing else from ferry's environment but `PATH`: no kubeconfig, no user
    /// repositories or plugins.
    pub(crate) fn helm_command(&self, home: &Path, cwd: &Path, args: Vec<String>) -> CommandSpec {
        let dir = |rel: &str| home.join(rel).to_string_lossy().into_owned();
        let label = format!("helm {}", args.first().map_or("", String::as_str));
        CommandSpec::new(&self.helm, cwd)
            .with_args(args)
            .with_timeout(self.timeout)
            .with_max_output(self.max_output)
            .with_label(label)
            .with_env("HOME", dir(""))
            .with_env("TMPDIR", dir("tmp"))
            .with_env("XDG_CACHE_HOME", dir(".cache"))
            .with_env("XDG_CONFIG_HOME", dir(".config"))
            .with_env("XDG_DATA_HOME", dir(".local/share"))
            .with_env("HELM_CACHE_HOME", dir(".cache/helm"))
            .with_env("HELM_CONFIG_HOME", dir(".config/helm"))
            .with_env("HELM_DATA_HOME", dir(".local/share/helm"))
            .with_env("HELM_PLUGINS", dir(".local/share/helm/plugins"))
            .with_env(
                "HELM_REPOSITORY_CONFIG",
                dir(".config/helm/repositories.yaml"),
            )
            .with_env("HELM_REPOSITORY_CACHE", dir(".cache/helm/repository"))
            .with_env(
                "HELM_REGISTRY_CONFIG",
                dir(".config/helm/registry/config.json"),
            )
            .with_env("LC_ALL", "C")
    }

    /// `kustomize <args>` in `cwd` with a private `HOME` and `TMPDIR` inside `home`.
    pub(crate) fn kustomize_command(
        &self,
        home: &Path,
        cwd: &Path,
        args: Vec<String>,
    ) -> CommandSpec {
        let dir = |rel: &str| home.join(rel).to_string_lossy().into_owned();
        let label = match args.as_slice() {
            [first, second, third, ..] if first == "edit" => {
                format!("kustomize edit {second} {third}")
            }
            [first, ..] => format!("kustomize {first}"),
            [] => "kustomize".to_owned(),
        };
        CommandSpec::new(&self.kustomize, cwd)
            .with_args(args)
            .with_timeout(self.timeout)
            .with_max_output(self.max_output)
            .with_label(label)
            .with_env("HOME", dir(""))
            .with_env("TMPDIR", dir("tmp"))
            .with_env("XDG_CONFIG_HOME", dir(".config"))
            .with_env("XDG_CACHE_HOME", dir(".cache"))
            .with_env("GIT_TERMINAL_PROMPT", "0")
            .with_env("GIT_CONFIG_NOSYSTEM", "1")
            // kustomize's own `git` for remote bases: only the transports the operator allows.
            .with_env("GIT_ALLOW_PROTOCOL", self.git_allow_protocol())
            .with_env("LC_ALL", "C")
    }

    /// `GIT_ALLOW_PROTOCOL` for kustomize's git: the allowed remote-base protocols (never
    /// `file`); an empty list allows nothing (`none` is no protocol git knows).
    fn git_allow_protocol(&self) -> String {
        if self.remote_protocols.is_empty() {
            "none".to_owned()
        } else {
            self.remote_protocols.join(":")
        }
    }
}

/// Creates the directories a private tool home needs (helm fails on a missing `TMPDIR`).
pub(crate) fn prepare_home(home: &Path) -> Result<(), RenderError> {
    for rel in ["tmp", ".cache", ".config", ".local/share/helm/plugins"] {
        let dir = home.join(rel);
        std::fs::create_dir_all(&dir).map_err(|source| RenderError::Io {
            path: dir.display().to_string(),
            source,
        })?;
    }
    Ok(())
}

/// A [`CommandError`] that is not a plain non-zero exit (missing binary, timeout, I/O) as a
/// [`RenderError::Tool`]; `Ok(stderr)` for a non-zero exit, for the caller to classify.
pub(crate) fn split_failure(
    err: CommandError,
    tool: &'static str,
    env_var: &'static str,
) -> Result<String, RenderError> {
    match err {
        CommandError::Failed { stderr_tail, .. } => Ok(tool_message(&stderr_tail)),
        source => Err(RenderError::Tool {
            tool,
            env_var,
            source,
        }),
    }
}

/// A tool's stderr without the `Error: ` prefix, the `--debug` hint and cobra's usage text.
pub(crate) fn tool_message(stderr: &str) -> String {
    // Cobra prints the command's usage after a flag or argument error: not the problem.
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim_end)
        .take_while(|l| !l.starts_with("Usage:"))
        .filter(|l| !l.is_empty() && !l.starts_with("Use --debug flag"))
        .map(|l| l.strip_prefix("Error: ").unwrap_or(l))
        .collect();
    lines.join("\n")
}

/// Copies the tree `src` (a canonical checkout root) to `dst` (created), so that a tool may
/// write into the copy. Files become writable by their owner; a symlink that resolves inside
/// `src` becomes a symlink to the same place in the copy; one that leads outside is
/// [`RenderError::PathEscapes`]; a dangling one is dropped.
pub(crate) fn copy_tree(src: &Path, dst: &Path) -> Result<(), RenderError> {
    copy_dir(src, src, dst, dst)
}

fn copy_dir(root: &Path, dir: &Path, dst_root: &Path, dst: &Path) -> Result<(), RenderError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| RenderError::Io { path, source }
    };
    std::fs::create_dir_all(dst).map_err(io(dst))?;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let target = dst.join(entry.file_name());
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            copy_dir(root, &path, dst_root, &target)?;
        } else if kind.is_symlink() {
            let rel = |p: &Path| {
                p.strip_prefix(root)
                    .unwrap_or(p)
                    .to_string_lossy()
                    .into_owned()
            };
            match path.canonicalize() {
                Ok(resolved) if resolved.starts_with(root) => {
                    let inside = dst_root.join(resolved.strip_prefix(root).unwrap_or(&resolved));
                    #[cfg(unix)]
                    std::os::unix::fs::symlink(&inside, &target).map_err(io(&target))?;
                    #[cfg(not(unix))]
                    let _ = inside;
                }
                Ok(_) => {
                    return Err(RenderError::PathEscapes { path: rel(&path) });
                }
                Err(_) if !super::symlink_stays_inside(&path, root) => {
                    return Err(RenderError::PathEscapes { path: rel(&path) });
                }
                Err(_) => {} // dangling: nothing to copy
            }
        } else if kind.is_file() {
            std::fs::copy(&path, &target).map_err(io(&path))?;
            let mut perms = std::fs::metadata(&target)
                .map_err(io(&target))?
                .permissions();
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt as _;
                perms.set_mode(perms.mode() | 0o600);
            }
            #[cfg(not(unix))]
            perms.set_readonly(false);
            std::fs::set_permissions(&target, perms).map_err(io(&target))?;
        }
    }
    Ok(())
}

/// Checks that no symlink under `dir` (canonical, inside the canonical `root`) leads outside
/// `root`: helm and kustomize follow symlinks, and must read nothing outside the checkout.
pub(crate) fn check_symlinks_inside(root: &Path, dir: &Path) -> Result<(), RenderError> {
    let io = |path: &Path| {
        let path = path.display().to_string();
        move |source| RenderError::Io { path, source }
    };
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            check_symlinks_inside(root, &path)?;
        } else if kind.is_symlink() {
            let inside = match path.canonicalize() {
                Ok(resolved) => resolved.starts_with(root),
                Err(_) => super::symlink_stays_inside(&path, root),
            };
            if !inside {
                let rel = path.strip_prefix(root).unwrap_or(&path);
                return Err(RenderError::PathEscapes {
                    path: rel.to_string_lossy().into_owned(),
                });
            }
        }
    }
    Ok(())
}

/// `path` relative to `root`, with `/` separators, for messages and [`Manifest`](super::Manifest)s.
pub(crate) fn display_relative(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    let shown = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/");
    if shown.is_empty() {
        ".".to_owned()
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_message_drops_usage() {
        let msg = tool_message("Error: x has no match\nUsage:\n  kustomize edit add component\n");
        assert_eq!(msg, "x has no match");
    }

    #[test]
    fn tool_message_drops_noise() {
        let msg = tool_message(
            "Error: execution error at (c/templates/a.yaml:3:9): greeting is required\n\nUse --debug flag to see more information\n",
        );
        assert_eq!(
            msg,
            "execution error at (c/templates/a.yaml:3:9): greeting is required"
        );
    }

    #[test]
    fn copies_are_writable_and_links_stay_inside() {
        let src = tempfile::tempdir().unwrap();
        let root = src.path().canonicalize().unwrap();
        std::fs::create_dir_all(root.join("a")).unwrap();
        std::fs::write(root.join("a/f.yaml"), "x").unwrap();
        let mut perms = std::fs::metadata(root.join("a/f.yaml"))
            .unwrap()
            .permissions();
        perms.set_readonly(true);
        std::fs::set_permissions(root.join("a/f.yaml"), perms).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("a", root.join("b")).unwrap();
        let dst = tempfile::tempdir().unwrap();
        let copy = dst.path().join("copy");
        copy_tree(&root, &copy).unwrap();
        std::fs::write(copy.join("a/f.yaml"), "y").unwrap();
        assert_eq!(std::fs::read_to_string(root.join("a/f.yaml")).unwrap(), "x");
        #[cfg(unix)]
        assert_eq!(std::fs::read_to_string(copy.join("b/f.yaml")).unwrap(), "y");

        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/etc", root.join("out")).unwrap();
            let err = copy_tree(&root, &dst.path().join("copy2")).unwrap_err();
            assert!(matches!(err, RenderError::PathEscapes { .. }), "{err}");
            let err = check_symlinks_inside(&root, &root).unwrap_err();
            assert!(matches!(err, RenderError::PathEscapes { .. }), "{err}");
        }
    }
}
