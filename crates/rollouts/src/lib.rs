//! ferry's progressive delivery. It reads Argo Rollouts' `argoproj.io/v1alpha1` `Rollout`,
//! `AnalysisTemplate`, `ClusterAnalysisTemplate` and `AnalysisRun` unchanged (a documented
//! subset, docs/rollouts.md) and runs canary rollouts: stable and canary ReplicaSets, traffic
//! weights, and analysis that aborts a bad canary.

pub mod analysis;
