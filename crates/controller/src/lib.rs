//! ferry's controller: it watches Argo CD `Application`s and reconciles each one from Git into
//! its destination cluster.
//!
//! Start with [`Engine::reconcile`], which follows one app through the data flow as a list of
//! steps (admit → fetch → render → desired → compare → status → sync), each in its own module;
//! [`run_controller`] runs it for every app; the `sync` module applies and prunes, in steps.
//! A [`Differ`] works out diffs without a controller; [`operations`] is how the CLI, API, UI and
//! webhooks ask for a sync, refresh or rollback. docs/architecture.md walks through it all.

mod admit;
mod adoption;
pub mod app_of_apps;
mod auto_sync;
pub mod compare;
pub mod comparison;
pub mod conditions;
mod config;
mod controller;
mod credentials;
pub mod desired;
mod desired_state;
pub mod destinations;
pub mod differ;
pub mod engine;
mod error;
mod fetch;
mod finalize;
mod history;
mod jq;
mod labelled_secrets;
mod lease;
mod lua_health;
mod memo;
pub mod metrics;
pub mod normalize;
pub mod operations;
mod poller;
mod queue;
mod reconcile;
mod render;
mod retry;
mod settings;
pub mod shard;
mod sops_keys;
mod status;
mod sync;
mod sync_step;
pub mod touched;
mod watches;
mod windows;

pub use controller::run_controller;
pub use differ::{Differ, ResourceDiff};
pub use engine::{Engine, EngineConfig};
pub use lease::run_leases;
pub use shard::{ShardConfig, Shards};
