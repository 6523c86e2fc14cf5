//! ferry's controller: it watches Argo CD `Application`s and reconciles each one from Git into
//! its destination cluster.
//!
//! Start with [`reconcile::Engine::reconcile`], which follows one app through the data flow
//! (fetch → render → prepare → compare → sync → status); [`controller::run_controller`] runs
//! it for every app; [`sync::run_sync`] applies and prunes. [`sops_keys`] reads the age keys
//! each AppProject may use for SOPS-encrypted files.

pub mod adoption;
pub mod app_of_apps;
pub mod compare;
pub mod controller;
pub mod credentials;
pub mod desired;
pub mod destinations;
pub mod finalize;
pub mod history;
pub mod jq;
pub mod lua_health;
pub mod metrics;
pub mod normalize;
pub mod operations;
pub mod queue;
pub mod reconcile;
pub mod retry;
pub mod settings;
pub mod sops_keys;
pub mod sync;
pub mod watches;
mod windows;

pub use controller::run_controller;
pub use reconcile::{Engine, EngineConfig, ResourceDiff};
