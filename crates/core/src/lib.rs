//! ferry's Argo CD-compatible types and the pure logic of a sync — no I/O, no cluster.
//!
//! Where to start:
//!
//! - [`application`]: the `argoproj.io/v1alpha1` [`Application`] (spec, status, operation), read
//!   from and written in Argo CD's shape. [`ApplicationSpec::effective_sources`] says what to
//!   render.
//! - [`project`]: the [`AppProject`] and its checks — may this app use that repository
//!   ([`AppProjectSpec::permits_source`]), deploy there
//!   ([`AppProjectSpec::permits_destination`]), create that kind
//!   ([`AppProjectSpec::permits_resource`])?
//! - [`repo_url`]: [`RepoUrl`], the one normalization of repository URLs used to compare them,
//!   key caches and credentials, and match `sourceRepos` (userinfo is never kept).
//! - [`tracking`]: [`ResourceKey`], the identity of an object used throughout ferry, and the
//!   tracking annotation ([`TrackingId`], [`is_tracked_by`]) that says which app owns an object.
//! - [`order`]: how a sync is sequenced — phases, waves ([`sync_wave`]), kind order
//!   ([`kind_rank`]), hooks, per-resource [`SyncOptions`], and [`plan_stages`] /
//!   [`prune_order`].
//! - [`health`]: Argo CD's built-in health rules ([`assess_health`]) and the app-level
//!   aggregate ([`worst`]).
//! - [`settings`]: what ferry reads from Argo CD's `argocd-cm` ConfigMap
//!   ([`settings::ArgoSettings`]): tracking method, resource customizations, exclusions.
//! - [`sync_window`]: AppProject sync windows — may this app sync now
//!   ([`sync_window::SyncWindows::evaluate`])?
//!
//! Everything here works on plain data (`serde_json::Value` for live and desired objects), so it
//! is unit-tested without a cluster; the crates that talk to Git and Kubernetes build on it.

pub mod application;
mod glob;
pub mod health;
mod health_crds;
pub mod inputs;
pub mod order;
pub mod project;
pub mod redact;
pub mod repo_url;
pub mod settings;
pub mod sync_window;
pub mod tracking;

pub use application::{
    Application, ApplicationDestination, ApplicationSource, ApplicationSpec, ApplicationStatus,
    HealthStatus, HealthStatusCode, Operation, OperationPhase, OperationState, SyncPolicy,
    SyncStatusCode,
};
pub use health::{Health, assess_health, worst};
pub use order::{
    Phase, PlannedObject, PropagationPolicy, Stage, SyncOptions, kind_rank, plan_stages,
    prune_order, sync_options, sync_wave,
};
pub use project::{AppProject, AppProjectSpec, GroupKind, ProjectDestination, default_project};
pub use repo_url::RepoUrl;
pub use tracking::{ResourceKey, TRACKING_ANNOTATION, TrackingId, is_tracked_by};
