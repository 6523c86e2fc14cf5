//! Argo CD's `argoproj.io/v1alpha1` `ApplicationSet`, as serde types.
//!
//! As with [`ferry_core::application::Application`], the types accept Argo CD manifests unchanged:
//! every field Argo CD lets you omit is optional, unknown fields are ignored, and serialization
//! leaves out what is unset. The generators and the template are kept as JSON: each generator
//! reads its own block (see [`crate::generators`]), and the template is rendered as JSON before
//! it becomes an Application.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `kind` of an ApplicationSet.
pub const KIND: &str = "ApplicationSet";
/// Resource name (plural) of ApplicationSets.
pub const PLURAL: &str = "applicationsets";

/// Annotation that asks the controller to look at the ApplicationSet again now (Argo CD's name);
/// the controller removes it when done.
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/application-set-refresh";
/// Annotation that confirms a held deletion: its value must be the comma-separated, sorted names
/// of exactly the Applications the hold condition lists (what `ferry appset confirm` writes).
pub const CONFIRM_DELETION_ANNOTATION: &str = "ferry.dev/confirm-deletion";
/// Annotation that overrides, for one ApplicationSet, the share of its Applications (in percent,
/// 0–100) that one pass may delete without confirmation.
pub const DELETION_SHARE_ANNOTATION: &str = "ferry.dev/max-deletion-percent";

/// An Argo CD `ApplicationSet`: generators produce parameter sets, the template turns each into
/// an Application.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSet {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What to generate and how.
    #[serde(default)]
    pub spec: ApplicationSetSpec,
    /// What the controller last did, written by it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplicationSetStatus>,
}

impl Serialize for ApplicationSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut obj = serializer.serialize_struct("ApplicationSet", 5)?;
        obj.serialize_field("apiVersion", ferry_core::application::API_VERSION)?;
        obj.serialize_field("kind", KIND)?;
        obj.serialize_field("metadata", &self.metadata)?;
        obj.serialize_field("spec", &self.spec)?;
        if let Some(status) = &self.status {
            obj.serialize_field("status", status)?;
        }
        obj.end()
    }
}

impl kube::Resource for ApplicationSet {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        KIND.into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        ferry_core::application::GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        ferry_core::application::VERSION.into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        ferry_core::application::API_VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        PLURAL.into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

impl ApplicationSet {
    /// The ApplicationSet's name (empty when it has none).
    pub fn name(&self) -> &str {
        self.metadata.name.as_deref().unwrap_or_default()
    }

    /// One of its annotations.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(key))
            .map(String::as_str)
    }
}

/// `spec` of an ApplicationSet.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetSpec {
    /// The generators, each a one-key object (`list`, `clusters`, `git`, `matrix`, `merge`,
    /// `scmProvider`, `pullRequest`, `clusterDecisionResource`, `plugin`) with an optional
    /// `selector` (filters the parameter sets it produced) and `template` (overrides parts of
    /// the spec's template for its apps). Their results are concatenated.
    #[serde(default, deserialize_with = "null_as_default")]
    pub generators: Vec<Value>,
    /// The Application template: `metadata` (name, namespace, labels, annotations, finalizers)
    /// and `spec` (an Application spec), with parameters in its strings.
    #[serde(default)]
    pub template: Value,
    /// A Go template that renders to YAML, merged over the rendered template (for fields that
    /// are not strings, such as `automated` or lists). Needs `goTemplate: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_patch: Option<String>,
    /// Render the template with Go's text/template (and Sprig) instead of `{{param}}`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub go_template: bool,
    /// Go template options; `missingkey=error` makes a missing parameter an error.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub go_template_options: Vec<String>,
    /// What the controller may do to the Applications it generates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<ApplicationSetSyncPolicy>,
    /// How changes roll out over the generated Applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub strategy: Option<ApplicationSetStrategy>,
    /// Fields of generated Applications that the controller leaves as they are in the cluster.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ignore_application_differences: Vec<ApplicationSetIgnoreDifferences>,
    /// Annotations and labels of generated Applications that the controller keeps when it
    /// updates them (beside those Argo CD always keeps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preserved_fields: Option<PreservedFields>,
}

impl ApplicationSetSpec {
    /// The `applicationsSync` policy (`sync` when unset).
    pub fn applications_sync(&self) -> ApplicationsSyncPolicy {
        self.sync_policy
            .as_ref()
            .and_then(|p| p.applications_sync)
            .unwrap_or_default()
    }

    /// Whether generated Applications keep their resources when they are deleted.
    pub fn preserve_resources_on_deletion(&self) -> bool {
        self.sync_policy
            .as_ref()
            .is_some_and(|p| p.preserve_resources_on_deletion)
    }

    /// The RollingSync steps, when the strategy is `RollingSync`.
    pub fn rolling_sync_steps(&self) -> Option<&[RollingSyncStep]> {
        let strategy = self.strategy.as_ref()?;
        (strategy.type_ == "RollingSync").then(|| {
            strategy
                .rolling_sync
                .as_ref()
                .map(|r| r.steps.as_slice())
                .unwrap_or_default()
        })
    }
}

/// `spec.syncPolicy` of an ApplicationSet (not of the Applications it generates).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetSyncPolicy {
    /// Which changes the controller makes to generated Applications.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applications_sync: Option<ApplicationsSyncPolicy>,
    /// Generated Applications get no resources finalizer, so deleting one (or the whole set)
    /// leaves its workloads running.
    #[serde(default, skip_serializing_if = "is_false")]
    pub preserve_resources_on_deletion: bool,
}

/// `syncPolicy.applicationsSync`: which of create, update and delete the controller does.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum ApplicationsSyncPolicy {
    /// Create only; never update or delete.
    #[serde(rename = "create-only")]
    CreateOnly,
    /// Create and update; never delete.
    #[serde(rename = "create-update")]
    CreateUpdate,
    /// Create and delete; never update.
    #[serde(rename = "create-delete")]
    CreateDelete,
    /// Create, update and delete (the default).
    #[default]
    #[serde(rename = "sync")]
    Sync,
}

impl ApplicationsSyncPolicy {
    /// Whether existing Applications are updated to match the template.
    pub fn allows_update(self) -> bool {
        matches!(self, Self::Sync | Self::CreateUpdate)
    }

    /// Whether Applications no longer generated are deleted.
    pub fn allows_delete(self) -> bool {
        matches!(self, Self::Sync | Self::CreateDelete)
    }
}

/// `spec.strategy`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetStrategy {
    /// `AllAtOnce` (the default) or `RollingSync`.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// The steps of a `RollingSync`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rolling_sync: Option<RollingSyncStrategy>,
}

/// `strategy.rollingSync`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollingSyncStrategy {
    /// The steps, in order.
    #[serde(default, deserialize_with = "null_as_default")]
    pub steps: Vec<RollingSyncStep>,
}

/// One step of a RollingSync: the apps whose labels match, synced at most `maxUpdate` at a time.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RollingSyncStep {
    /// Which apps are in the step (all must match; an empty list matches no app).
    #[serde(default, deserialize_with = "null_as_default")]
    pub match_expressions: Vec<MatchExpression>,
    /// How many of the step's apps may sync at once: a number or a percentage (`"25%"`);
    /// unset means all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_update: Option<Value>,
}

/// A label selector requirement (`In`, `NotIn`, `Exists`, `DoesNotExist`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MatchExpression {
    /// The label (or, in a generator's `selector`, the parameter) name.
    pub key: String,
    /// `In`, `NotIn`, `Exists` or `DoesNotExist`.
    pub operator: String,
    /// The values for `In` and `NotIn`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub values: Vec<String>,
}

/// A Kubernetes label selector, as generators' `selector` fields take it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must have exactly these values.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub match_labels: BTreeMap<String, String>,
    /// Requirements that must all hold.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub match_expressions: Vec<MatchExpression>,
}

impl LabelSelector {
    /// Whether the selector has no requirement (it matches everything).
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

/// One entry of `spec.ignoreApplicationDifferences`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetIgnoreDifferences {
    /// The generated Application it applies to; unset: all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// JSON pointers into the Application (e.g. `/spec/source/targetRevision`).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub json_pointers: Vec<String>,
    /// jq path expressions (ferry reads the simple `.a.b` and `.a["b"]` forms).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub jq_path_expressions: Vec<String>,
}

/// `spec.preservedFields`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct PreservedFields {
    /// Annotation keys kept on update.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub annotations: Vec<String>,
    /// Label keys kept on update.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub labels: Vec<String>,
}

/// `status` of an ApplicationSet, as Argo CD writes it.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetStatus {
    /// `ErrorOccurred`, `ParametersGenerated`, `ResourcesUpToDate` and `RolloutProgressing`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub conditions: Vec<ApplicationSetCondition>,
    /// Where each generated Application is in a RollingSync.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub application_status: Vec<ApplicationSetApplicationStatus>,
    /// The generated Applications, with their sync and health status.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub resources: Vec<ResourceStatus>,
}

impl ApplicationSetStatus {
    /// The condition of type `type_`, if any.
    pub fn condition(&self, type_: &str) -> Option<&ApplicationSetCondition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

/// Condition types, as Argo CD names them.
pub mod condition_type {
    /// Something failed: `status: "True"` with the cause in the message.
    pub const ERROR_OCCURRED: &str = "ErrorOccurred";
    /// The generators produced their parameters.
    pub const PARAMETERS_GENERATED: &str = "ParametersGenerated";
    /// The generated Applications match the template.
    pub const RESOURCES_UP_TO_DATE: &str = "ResourcesUpToDate";
    /// A RollingSync is under way.
    pub const ROLLOUT_PROGRESSING: &str = "RolloutProgressing";
}

/// Condition reasons, as Argo CD names them (and ferry's own for held deletions).
pub mod condition_reason {
    /// Everything is as the template says.
    pub const UP_TO_DATE: &str = "ApplicationSetUpToDate";
    /// The generators produced their parameters.
    pub const PARAMETERS_GENERATED: &str = "ParametersGenerated";
    /// A generator failed.
    pub const GENERATION_ERROR: &str = "ApplicationGenerationFromParamsError";
    /// The template could not be rendered with a parameter set.
    pub const RENDER_ERROR: &str = "RenderTemplateParamsError";
    /// A generated Application is invalid (e.g. two parameter sets gave the same name).
    pub const VALIDATION_ERROR: &str = "ApplicationValidationError";
    /// Creating, updating or deleting an Application failed.
    pub const UPDATE_ERROR: &str = "UpdateApplicationError";
    /// ferry held back deleting many Applications until someone confirms it.
    pub const DELETION_HELD: &str = "DeletionHeld";
    /// A RollingSync step is progressing.
    pub const ROLLOUT_PROGRESSING: &str = "ApplicationSetModified";
    /// A RollingSync finished.
    pub const ROLLOUT_COMPLETE: &str = "ApplicationSetRolloutComplete";
}

/// One condition of an ApplicationSet.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetCondition {
    /// One of the [`condition_type`] constants.
    #[serde(rename = "type", default)]
    pub type_: String,
    /// `"True"` or `"False"`.
    #[serde(default)]
    pub status: String,
    /// A [`condition_reason`] constant.
    #[serde(default)]
    pub reason: String,
    /// What happened, in words.
    #[serde(default)]
    pub message: String,
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// Where one generated Application is in a RollingSync (`status.applicationStatus`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSetApplicationStatus {
    /// The Application's name.
    pub application: String,
    /// `Waiting` (its step has not started), `Pending` (sync requested), `Progressing` (syncing)
    /// or `Healthy` (done).
    pub status: String,
    /// In words.
    #[serde(default)]
    pub message: String,
    /// The step it belongs to (1-based, as a string as Argo CD writes it).
    #[serde(default)]
    pub step: String,
    /// When the status last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

/// One generated Application in `status.resources`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceStatus {
    /// `argoproj.io`.
    #[serde(default)]
    pub group: String,
    /// `v1alpha1`.
    #[serde(default)]
    pub version: String,
    /// `Application`.
    #[serde(default)]
    pub kind: String,
    /// The Application's name.
    #[serde(default)]
    pub name: String,
    /// Its namespace.
    #[serde(default)]
    pub namespace: String,
    /// Its sync status (`Synced`, `OutOfSync`, `Unknown`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub status: String,
    /// Its health.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<ResourceHealth>,
}

/// Health in [`ResourceStatus`].
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceHealth {
    /// `Healthy`, `Progressing`, `Degraded`, ...
    #[serde(default)]
    pub status: String,
    /// In words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Treats an explicit `null` as the type's default (as Go's JSON decoding does for lists).
fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_argo_cd_manifest_reads_unchanged() {
        let set: ApplicationSet = serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "ApplicationSet",
            "metadata": {"name": "guestbook", "namespace": "argocd"},
            "spec": {
                "goTemplate": true,
                "goTemplateOptions": ["missingkey=error"],
                "generators": [{"list": {"elements": [{"cluster": "dev"}]}}],
                "template": {"metadata": {"name": "{{.cluster}}"}, "spec": {"project": "default"}},
                "syncPolicy": {"applicationsSync": "create-update", "preserveResourcesOnDeletion": true},
                "strategy": {"type": "RollingSync", "rollingSync": {"steps": [
                    {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]},
                    {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}], "maxUpdate": "25%"}
                ]}},
                "ignoreApplicationDifferences": [{"jsonPointers": ["/spec/source/targetRevision"]}],
                "preservedFields": {"labels": ["team"]},
                "somethingNew": 1
            }
        }))
        .unwrap();
        assert_eq!(set.name(), "guestbook");
        assert!(set.spec.go_template);
        assert_eq!(
            set.spec.applications_sync(),
            ApplicationsSyncPolicy::CreateUpdate
        );
        assert!(set.spec.preserve_resources_on_deletion());
        let steps = set.spec.rolling_sync_steps().unwrap();
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[1].max_update, Some(Value::from("25%")));
        let back = serde_json::to_value(&set).unwrap();
        assert_eq!(back["kind"], "ApplicationSet");
        assert_eq!(
            back["spec"]["syncPolicy"]["applicationsSync"],
            "create-update"
        );
    }

    #[test]
    fn defaults_are_argo_cds() {
        let set: ApplicationSet =
            serde_json::from_value(serde_json::json!({"spec": {"generators": null}})).unwrap();
        assert_eq!(set.spec.applications_sync(), ApplicationsSyncPolicy::Sync);
        assert!(!set.spec.preserve_resources_on_deletion());
        assert!(set.spec.rolling_sync_steps().is_none());
        assert!(ApplicationsSyncPolicy::Sync.allows_delete());
        assert!(!ApplicationsSyncPolicy::CreateUpdate.allows_delete());
        assert!(!ApplicationsSyncPolicy::CreateDelete.allows_update());
        assert!(!ApplicationsSyncPolicy::CreateOnly.allows_update());
    }
}
