//! ferry's progressive delivery. It reads Argo Rollouts' `argoproj.io/v1alpha1` `Rollout`,
//! `AnalysisTemplate`, `ClusterAnalysisTemplate` and `AnalysisRun` unchanged (a documented
//! subset, docs/rollouts.md) and runs canary rollouts: stable and canary ReplicaSets, traffic
//! weights, and analysis that aborts a bad canary.
//!
//! Start at [`controller::run_rollouts`] (the loop), then [`reconcile`] (one step of one
//! Rollout: read, plan, apply), [`plan`] (the pure decisions, unit-tested), [`spec`] and
//! [`status`] (the Argo Rollouts shapes), [`traffic`] (ingress-nginx and the Gateway API) and
//! [`ops`] (promote, abort, retry: what the CLI and the API call).

pub mod analysis;
pub mod analysis_link;
pub mod controller;
pub mod hash;
pub mod kube_util;
pub mod ops;
pub mod plan;
pub mod reconcile;
pub mod spec;
pub mod status;
pub mod traffic;

pub use controller::{Gate, RolloutsConfig, run_rollouts};
pub use reconcile::Context;
