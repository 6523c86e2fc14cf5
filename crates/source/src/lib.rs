//! ferry's sources: getting manifests out of Git and rendering them.
//!
//! Where to start:
//!
//! - [`git::RepoCache`] keeps a bare mirror per repository and a read-only checkout per commit.
//!   A reconcile calls [`RepoCache::resolve_fresh`](git::RepoCache::resolve_fresh) (fetch at
//!   most once per poll interval, shared by every app of that repository, then resolve the
//!   `targetRevision` to a SHA), [`RepoCache::checkout`](git::RepoCache::checkout) and
//!   [`RepoCache::commit_info`](git::RepoCache::commit_info) for the audit trail.
//! - [`render::render_source`] renders one source of an app, picking the type as Argo CD does:
//!   [`render::render_directory`] (a directory of manifests, with Argo CD's `directory`
//!   options), [`render::render_kustomize`] (the real `kustomize build`, with the app's
//!   `kustomize` overrides applied to a private copy) or [`render::render_helm`] (the real
//!   `helm template`, charts from a checkout, a chart repository or an OCI registry). All give
//!   [`render::Manifest`]s. [`render::RenderTools`] finds `helm` and `kustomize`
//!   (`$FERRY_HELM`, `$FERRY_KUSTOMIZE`, else `PATH`) and caches pulled charts.
//! - [`render::sops`] decrypts SOPS-encrypted files during a render with the age keys in
//!   [`SourceRender::keys`](render::SourceRender::keys) (the app's project's keys), after their
//!   MAC verifies; clear values stay in memory or, for helm and kustomize inputs, in the
//!   render's private temporary directory until the tool ends.
//! - [`command::run_command`] is the one runner for external programs (git, helm, kustomize):
//!   timeout, bounded output, cleared environment, secrets masked in errors.
//!
//! Credentials ([`git::Credentials`]) never reach argv, URLs, errors or logs. Tests in `tests/`
//! run the real `git` CLI against repositories served over `file://` and HTTP, and the real
//! `helm` and `kustomize` (installed by `scripts/install-tools.sh` into `target/tools/bin/`)
//! against fixture charts and overlays, with a chart repository served over HTTP.

pub mod command;
pub mod git;
pub mod render;

pub use command::{CommandError, CommandOutput, CommandSpec, redact, run_command};
pub use git::{CommitInfo, Credentials, GitError, RepoCache, SecretString};
pub use render::{
    DirectoryOptions, HelmOptions, HelmRender, KustomizeOptions, KustomizeRender, Manifest,
    RenderError, RenderTools, RenderedSource, SourceRender, SourceType, render_directory,
    render_helm, render_kustomize, render_source,
};
