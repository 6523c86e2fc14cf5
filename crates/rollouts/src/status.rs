//! A Rollout's `status`, in Argo Rollouts' shape, so that `kubectl argo rollouts get`, Argo CD's
//! health check for Rollouts and ferry's own CLI and UI read the same fields. Everything ferry
//! needs to continue a rollout after a restart is here.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `status.phase` values, as Argo Rollouts writes them.
pub mod phase {
    /// All replicas run the stable revision and are available.
    pub const HEALTHY: &str = "Healthy";
    /// A canary is under way, or replicas are becoming available.
    pub const PROGRESSING: &str = "Progressing";
    /// Waiting at a pause step (or after an inconclusive analysis) for time or a promote.
    pub const PAUSED: &str = "Paused";
    /// Aborted, or the spec cannot be acted on.
    pub const DEGRADED: &str = "Degraded";
}

/// `status` of a Rollout.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// `Healthy`, `Progressing`, `Paused` or `Degraded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// Why the phase is what it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The index of the canary step under way (`steps.len()` when all are done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_index: Option<i64>,
    /// The pod-template hash of the stable ReplicaSet.
    #[serde(default, rename = "stableRS", skip_serializing_if = "Option::is_none")]
    pub stable_rs: Option<String>,
    /// The pod-template hash of the spec's template (the canary while it differs from stableRS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_pod_hash: Option<String>,
    /// Canary details: weights and the analysis runs under way.
    #[serde(default)]
    pub canary: CanaryStatus,
    /// Why the rollout is paused, with when each pause began.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pause_conditions: Vec<PauseCondition>,
    /// Set while ferry paused the rollout; a promote clears `pauseConditions` and leaves this.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub controller_pause: bool,
    /// Set by an abort (`ferry rollout abort`, or a failed analysis); cleared by a retry.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort: bool,
    /// When the abort happened (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aborted_at: Option<String>,
    /// Set by `ferry rollout promote --full`: skip the remaining steps.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub promote_full: bool,
    /// Replica counts over all the Rollout's ReplicaSets.
    #[serde(default)]
    pub replicas: i64,
    /// Replicas of the current pod template.
    #[serde(default)]
    pub updated_replicas: i64,
    /// Ready replicas.
    #[serde(default)]
    pub ready_replicas: i64,
    /// Available replicas.
    #[serde(default)]
    pub available_replicas: i64,
    /// The pods' label selector as a string, for the scale subresource (and HPAs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// The `metadata.generation` this status describes (a string, as Argo Rollouts writes it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<String>,
    /// ferry's own: how many times the rollout of this revision was retried after an abort
    /// (a retry starts new analysis runs, named with a `.N` suffix).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempt: i64,
    /// Conditions: `InvalidSpec`, `Progressing`, `Available`, `Paused`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Value>,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// `status.canary`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryStatus {
    /// The traffic weights ferry has set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<TrafficWeights>,
    /// The analysis run of the current step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_step_analysis_run_status: Option<RunStatus>,
    /// The background analysis run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_background_analysis_run_status: Option<RunStatus>,
}

/// `status.canary.weights`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrafficWeights {
    /// The canary's share.
    pub canary: WeightDestination,
    /// The stable's share.
    pub stable: WeightDestination,
}

/// One side of the traffic split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WeightDestination {
    /// Percent of requests.
    pub weight: i64,
    /// The Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_name: Option<String>,
    /// The pods' hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_template_hash: Option<String>,
}

/// An analysis run's name, phase and message.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunStatus {
    /// The AnalysisRun's name.
    pub name: String,
    /// Its phase.
    pub status: String,
    /// Its message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// `status.pauseConditions[]`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseCondition {
    /// `CanaryPauseStep`, `InconclusiveAnalysisRun` or `BlueGreenPause`.
    pub reason: String,
    /// When the pause began (RFC 3339).
    pub start_time: String,
}

/// The reason of a pause at a pause step.
pub const PAUSE_STEP: &str = "CanaryPauseStep";
/// The reason of a pause after an inconclusive analysis.
pub const PAUSE_INCONCLUSIVE: &str = "InconclusiveAnalysisRun";

impl RolloutStatus {
    /// Reads a Rollout's status (defaults for what is missing or unreadable).
    pub fn of(rollout: &Value) -> Self {
        rollout
            .get("status")
            .cloned()
            .and_then(|s| serde_json::from_value(s).ok())
            .unwrap_or_default()
    }
}

/// A condition in Kubernetes' shape.
pub fn condition(type_: &str, status: bool, reason: &str, message: &str, now: &str) -> Value {
    serde_json::json!({
        "type": type_,
        "status": if status { "True" } else { "False" },
        "reason": reason,
        "message": message,
        "lastTransitionTime": now,
        "lastUpdateTime": now,
    })
}

/// Sets (or replaces) the condition of `type` in `conditions`, keeping its transition time
/// when its status did not change.
pub fn set_condition(conditions: &mut Vec<Value>, new: Value) {
    let type_ = new["type"].clone();
    if let Some(old) = conditions.iter_mut().find(|c| c["type"] == type_) {
        let mut new = new;
        if old["status"] == new["status"] {
            new["lastTransitionTime"] = old["lastTransitionTime"].clone();
            if old["reason"] == new["reason"] && old["message"] == new["message"] {
                new["lastUpdateTime"] = old["lastUpdateTime"].clone();
            }
        }
        *old = new;
    } else {
        conditions.push(new);
    }
}

/// Removes the condition of `type`.
pub fn remove_condition(conditions: &mut Vec<Value>, type_: &str) {
    conditions.retain(|c| c["type"] != type_);
}
