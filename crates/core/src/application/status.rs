//! What an Application reports (`status`: sync, health, resources, history, conditions,
//! `operationState`) and what it is asked to do (the top-level `operation`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    ApplicationDestination, ApplicationSource, Info, ResourceIgnoreDifferences, RetryStrategy,
    is_false, null_as_default,
};

/// Whether live state matches Git.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum SyncStatusCode {
    /// Live matches desired.
    Synced,
    /// Live differs from desired.
    OutOfSync,
    /// Not known (not compared yet, or the comparison failed). Also any unrecognised value.
    #[default]
    #[serde(other)]
    Unknown,
}

/// Health of a resource or an Application. The order of the variants is the "worst of" order:
/// `Healthy < Suspended < Progressing < Missing < Degraded < Unknown`.
#[derive(
    Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum HealthStatusCode {
    /// Running as intended.
    Healthy,
    /// Paused or suspended on purpose (a paused Deployment, a suspended CronJob).
    Suspended,
    /// Not healthy yet, but expected to become so.
    Progressing,
    /// Desired but absent from the cluster.
    Missing,
    /// Failed, or will not become healthy by itself.
    Degraded,
    /// Health could not be assessed. Also any unrecognised value.
    #[default]
    #[serde(other)]
    Unknown,
}

/// `status` of an Application, in Argo CD's shape.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// Resources the Application manages, with their sync and health status.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<ResourceStatus>,
    /// Sync status of the Application as a whole.
    #[serde(default)]
    pub sync: SyncStatus,
    /// Health of the Application as a whole (worst of its resources).
    #[serde(default)]
    pub health: HealthStatus,
    /// Past syncs, oldest first.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub history: Vec<RevisionHistory>,
    /// Errors and warnings.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<ApplicationCondition>,
    /// When the Application was last compared with Git (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_at: Option<String>,
    /// When live state was last observed (RFC 3339; deprecated in Argo CD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<String>,
    /// The state of the current or last operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_state: Option<OperationState>,
    /// Images and external URLs found in the resources.
    #[serde(default)]
    pub summary: ApplicationSummary,
    /// How the source was rendered: `Directory`, `Kustomize`, `Helm`, `Plugin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_type: Option<String>,
    /// Like `sourceType`, one per source (multi-source).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub source_types: Vec<String>,
}

/// `status.sync`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncStatus {
    /// Synced, OutOfSync or Unknown.
    #[serde(default)]
    pub status: SyncStatusCode,
    /// The commit (or chart version) compared with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Like `revision`, one per source (multi-source).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub revisions: Vec<String>,
    /// The spec the comparison was made for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compared_to: Option<ComparedTo>,
}

/// `status.sync.comparedTo`: the parts of the spec a comparison used.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ComparedTo {
    /// The single source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// The sources (multi-source).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sources: Vec<ApplicationSource>,
    /// The destination.
    #[serde(default)]
    pub destination: ApplicationDestination,
    /// The ignore rules.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ignore_differences: Vec<ResourceIgnoreDifferences>,
}

/// A health status with an optional explanation.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// The status code.
    #[serde(default)]
    pub status: HealthStatusCode,
    /// Why, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// One entry of `status.resources`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// API group (empty for the core group).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// API version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
    /// Namespace (empty for cluster-scoped resources).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Sync status of this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<SyncStatusCode>,
    /// Health of this resource (absent for kinds without health rules in Argo CD).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthStatus>,
    /// Whether the resource is a hook.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook: Option<bool>,
    /// Whether the resource is no longer rendered and would be pruned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requires_pruning: Option<bool>,
    /// The resource's sync wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_wave: Option<i64>,
}

/// Phase of an operation.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum OperationPhase {
    /// In progress.
    Running,
    /// Being stopped on request.
    Terminating,
    /// Finished without success (a resource or hook failed).
    Failed,
    /// Could not be carried out (invalid spec, render error, ...).
    Error,
    /// Finished successfully.
    Succeeded,
}

impl OperationPhase {
    /// Whether the operation has ended (Failed, Error or Succeeded).
    pub fn is_completed(self) -> bool {
        matches!(self, Self::Failed | Self::Error | Self::Succeeded)
    }
}

/// `status.operationState`: progress and result of the current or last operation.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct OperationState {
    /// The operation that was run.
    #[serde(default)]
    pub operation: Operation,
    /// Where it stands.
    pub phase: OperationPhase,
    /// A human-readable summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The result of a sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_result: Option<SyncOperationResult>,
    /// When it started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    /// When it ended (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    /// How many times it has been retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_count: Option<i64>,
}

/// `operationState.syncResult`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperationResult {
    /// One result per resource applied, pruned or run as a hook.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<ResourceResult>,
    /// The revision synced.
    #[serde(default)]
    pub revision: String,
    /// Like `revision`, one per source (multi-source).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub revisions: Vec<String>,
    /// The source synced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// The sources synced (multi-source).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sources: Vec<ApplicationSource>,
}

/// Outcome for one resource in a sync.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq, Hash)]
pub enum ResultCode {
    /// Applied.
    Synced,
    /// Apply failed.
    SyncFailed,
    /// Deleted because it is no longer rendered.
    Pruned,
    /// Not deleted (prune disabled for the sync or the resource).
    PruneSkipped,
}

/// One entry of `syncResult.resources`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceResult {
    /// API group (empty for the core group).
    #[serde(default)]
    pub group: String,
    /// API version.
    #[serde(default)]
    pub version: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
    /// Namespace (empty for cluster-scoped resources).
    #[serde(default)]
    pub namespace: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// What happened to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ResultCode>,
    /// Details, e.g. the apply error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// For hooks: where the hook run stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_phase: Option<OperationPhase>,
    /// For hooks: `PreSync`, `Sync`, `PostSync`, `SyncFail`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hook_type: Option<String>,
    /// The phase the resource was synced in: `PreSync`, `Sync`, `PostSync` or `SyncFail`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_phase: Option<String>,
}

/// One entry of `status.history`: a completed sync.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RevisionHistory {
    /// Sequence number, increasing.
    #[serde(default)]
    pub id: i64,
    /// The revision deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Like `revision`, one per source (multi-source).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub revisions: Vec<String>,
    /// When the sync finished (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_at: Option<String>,
    /// When the sync started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy_started_at: Option<String>,
    /// The source deployed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// The sources deployed (multi-source).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sources: Vec<ApplicationSource>,
    /// Who started the sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<OperationInitiator>,
    /// ferry's audit trail: the deployed commit's author, date and subject. Argo CD's tools
    /// ignore this field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<CommitMetadata>,
}

/// The commit a history entry deployed, as ferry records it for the audit trail.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct CommitMetadata {
    /// `Name <email>` of the commit's author.
    #[serde(default)]
    pub author: String,
    /// The author date (RFC 3339).
    #[serde(default)]
    pub date: String,
    /// The first line of the commit message.
    #[serde(default)]
    pub subject: String,
}

/// Who started an operation.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct OperationInitiator {
    /// The user, for manual operations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Whether the controller started it (automated sync).
    #[serde(default, skip_serializing_if = "is_false")]
    pub automated: bool,
}

/// One entry of `status.conditions`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationCondition {
    /// One of the [`condition_type`] constants.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// What happened, in words.
    #[serde(default)]
    pub message: String,
    /// When the condition was first seen (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

impl ApplicationCondition {
    /// Whether this is an error condition (its type ends with `Error`), as opposed to a warning.
    pub fn is_error(&self) -> bool {
        self.type_.ends_with("Error")
    }
}

/// `status.summary`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSummary {
    /// Container images used by the resources.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub images: Vec<String>,
    /// URLs the resources are reachable at (from Ingresses and LoadBalancer Services).
    #[serde(
        rename = "externalURLs",
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub external_urls: Vec<String>,
}

/// A requested operation: the top-level `operation` field of an Application.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// A sync to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncOperation>,
    /// Who asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<OperationInitiator>,
    /// Free-form information.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub info: Vec<Info>,
    /// How to retry it when it fails.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryStrategy>,
}

/// `operation.sync`: parameters of a sync.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperation {
    /// Revision to sync to (default: the spec's `targetRevision`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Like `revision`, one per source (multi-source).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub revisions: Vec<String>,
    /// Delete tracked resources that are no longer rendered.
    #[serde(default, skip_serializing_if = "is_false")]
    pub prune: bool,
    /// Only report what would be done.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
    /// Sync only these resources (a selective sync); all when empty.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<SyncOperationResource>,
    /// Sync options for this operation.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sync_options: Vec<String>,
    /// Source to sync instead of the spec's (rollback to an earlier source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// Sources to sync instead of the spec's (multi-source).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sources: Vec<ApplicationSource>,
    /// Argo CD's `syncStrategy` (`apply` / `hook`), kept as opaque JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_strategy: Option<Value>,
    /// How many self-heal syncs of the same revision ran in a row (Argo CD's field): each
    /// waits longer than the one before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub self_heal_attempts_count: i64,
}

fn is_zero(n: &i64) -> bool {
    *n == 0
}

/// A resource selected for a selective sync.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncOperationResource {
    /// API group (empty for the core group).
    #[serde(default)]
    pub group: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Namespace (absent for cluster-scoped resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}
