//! The controller's settings, as the `ferry controller`, `ferry run` and `ferry server` flags
//! set them.

use std::path::PathBuf;
use std::time::Duration;

/// The controller's settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The namespace holding Applications, AppProjects and ferry's Secrets.
    pub namespace: String,
    /// The field manager of ferry's server-side applies.
    pub field_manager: String,
    /// How often repositories are checked for new commits.
    pub poll_interval: Duration,
    /// Where repository mirrors and checkouts are kept.
    pub cache_dir: PathBuf,
    /// How many API requests one app makes at once while comparing or applying.
    pub per_app_concurrency: usize,
    /// Allow `repoURL: file://…` and local paths (tests and demos; off in production: a local
    /// URL reads any repository the process can read).
    pub allow_file_repos: bool,
    /// The protocols kustomize may fetch remote bases with (default `https`, `ssh`; `file`
    /// is never allowed).
    pub kustomize_remote_protocols: Vec<String>,
    /// Refuse to adopt existing objects that no app tracks (ferry's older behaviour), unless an
    /// app says `FailOnUntrackedResource=false`. Off by default: they are adopted, as Argo CD
    /// adopts them.
    pub fail_on_untracked_resource: bool,
    /// Whether a wave waits for the child Applications in it to be healthy (the default), or
    /// counts them Healthy once they exist, as Argo CD does; a parent's `ferry.dev/child-health`
    /// annotation overrides it.
    pub child_health: crate::app_of_apps::ChildHealth,
}
