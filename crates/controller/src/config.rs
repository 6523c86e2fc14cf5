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

impl EngineConfig {
    /// The settings for the Applications of `namespace`, with the cache under `cache_dir` and
    /// the rest as `ferry controller`'s flags default them: field manager `ferry`, a 3-minute
    /// poll, 8 requests at once per app, no local repositories, Kustomize remote bases over
    /// `https` and `ssh`, untracked objects adopted, child apps' health waited for.
    pub fn new(namespace: impl Into<String>, cache_dir: impl Into<PathBuf>) -> Self {
        EngineConfig {
            namespace: namespace.into(),
            field_manager: "ferry".into(),
            poll_interval: Duration::from_secs(180),
            cache_dir: cache_dir.into(),
            per_app_concurrency: 8,
            allow_file_repos: false,
            kustomize_remote_protocols: vec!["https".into(), "ssh".into()],
            fail_on_untracked_resource: false,
            child_health: Default::default(),
        }
    }
}
