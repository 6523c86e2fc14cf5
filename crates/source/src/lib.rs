//! ferry's sources: getting manifests out of Git and rendering them.
//!
//! Where to start:
//!
//! - [`git::RepoCache`] keeps a bare mirror per repository and a read-only checkout per commit.
//!   A reconcile calls [`RepoCache::resolve_fresh`](git::RepoCache::resolve_fresh) (fetch at
//!   most once per poll interval, shared by every app of that repository, then resolve the
//!   `targetRevision` to a SHA), [`RepoCache::checkout`](git::RepoCache::checkout) and
//!   [`RepoCache::commit_info`](git::RepoCache::commit_info) for the audit trail.
//! - [`render::render_directory`] turns a directory of a checkout into [`render::Manifest`]s,
//!   with Argo CD's `directory` options (recurse, include, exclude).
//! - [`command::run_command`] is the one runner for external programs (git today, helm and
//!   kustomize next): timeout, bounded output, cleared environment, secrets masked in errors.
//!
//! Credentials ([`git::Credentials`]) never reach argv, URLs, errors or logs. Tests in `tests/`
//! run the real `git` CLI against repositories served over `file://` and HTTP.

pub mod command;
pub mod git;
pub mod render;

pub use command::{CommandError, CommandOutput, CommandSpec, redact, run_command};
pub use git::{CommitInfo, Credentials, GitError, RepoCache, SecretString};
pub use render::{DirectoryOptions, Manifest, RenderError, render_directory};
