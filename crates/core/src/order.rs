//! Sync ordering: phases, waves, kind order, hooks and per-resource sync options.
//!
//! A sync applies objects phase by phase (PreSync → Sync → PostSync; SyncFail only when the sync
//! failed), within a phase wave by wave (`argocd.argoproj.io/sync-wave`, default 0, lowest first),
//! within a wave kind by kind (Namespaces first, custom resources last, see [`kind_rank`]).
//! [`plan_stages`] turns a list of [`PlannedObject`]s into that sequence of [`Stage`]s; pruning
//! goes the other way round ([`prune_order`]).

use std::collections::BTreeMap;
use std::fmt;
use std::num::ParseIntError;

use serde_json::Value;

use crate::tracking::ResourceKey;

/// Annotation with an object's sync wave (an integer, may be negative; default 0).
pub const SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";
/// Annotation that makes an object a hook: a comma-separated list of [`HookType`]s.
pub const HOOK_ANNOTATION: &str = "argocd.argoproj.io/hook";
/// Annotation with a hook's delete policies, comma-separated (see [`HookDeletePolicy`]).
pub const HOOK_DELETE_POLICY_ANNOTATION: &str = "argocd.argoproj.io/hook-delete-policy";
/// Annotation with per-resource sync options, comma-separated `Key=Value` (see [`SyncOptions`]).
pub const SYNC_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/sync-options";
/// Annotation with per-resource compare options, comma-separated `Key=Value`
/// (e.g. `IgnoreExtraneous`).
pub const COMPARE_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/compare-options";
/// Helm's hook annotation, mapped onto Argo CD hooks.
pub const HELM_HOOK_ANNOTATION: &str = "helm.sh/hook";
/// Helm's hook weight, used as the wave when there is no sync-wave annotation.
pub const HELM_HOOK_WEIGHT_ANNOTATION: &str = "helm.sh/hook-weight";
/// Helm's hook delete policy, mapped onto [`HookDeletePolicy`].
pub const HELM_HOOK_DELETE_POLICY_ANNOTATION: &str = "helm.sh/hook-delete-policy";

/// Kinds in the order they are applied within a wave, each with the API groups it is known
/// under. Matches the order kubectl, Helm and Argo CD use.
const KIND_ORDER: &[(&str, &[&str])] = &[
    ("Namespace", &[""]),
    ("NetworkPolicy", &["networking.k8s.io", "extensions"]),
    ("ResourceQuota", &[""]),
    ("LimitRange", &[""]),
    ("PodSecurityPolicy", &["policy", "extensions"]),
    ("PodDisruptionBudget", &["policy"]),
    ("ServiceAccount", &[""]),
    ("Secret", &[""]),
    ("SecretList", &[""]),
    ("ConfigMap", &[""]),
    ("StorageClass", &["storage.k8s.io"]),
    ("PersistentVolume", &[""]),
    ("PersistentVolumeClaim", &[""]),
    ("CustomResourceDefinition", &["apiextensions.k8s.io"]),
    ("ClusterRole", &["rbac.authorization.k8s.io"]),
    ("ClusterRoleList", &["rbac.authorization.k8s.io"]),
    ("ClusterRoleBinding", &["rbac.authorization.k8s.io"]),
    ("ClusterRoleBindingList", &["rbac.authorization.k8s.io"]),
    ("Role", &["rbac.authorization.k8s.io"]),
    ("RoleList", &["rbac.authorization.k8s.io"]),
    ("RoleBinding", &["rbac.authorization.k8s.io"]),
    ("RoleBindingList", &["rbac.authorization.k8s.io"]),
    ("Service", &[""]),
    ("DaemonSet", &["apps", "extensions"]),
    ("Pod", &[""]),
    ("ReplicationController", &[""]),
    ("ReplicaSet", &["apps", "extensions"]),
    ("Deployment", &["apps", "extensions"]),
    ("HorizontalPodAutoscaler", &["autoscaling"]),
    ("StatefulSet", &["apps"]),
    ("Job", &["batch"]),
    ("CronJob", &["batch"]),
    ("IngressClass", &["networking.k8s.io"]),
    ("Ingress", &["networking.k8s.io", "extensions"]),
    ("APIService", &["apiregistration.k8s.io"]),
];

/// The rank of every kind not in the built-in order (custom resources): after all others.
pub const UNKNOWN_KIND_RANK: u32 = KIND_ORDER.len() as u32;

/// Position of `group`/`kind` in the apply order within a wave: 0 for Namespace, increasing
/// through the built-in kinds, [`UNKNOWN_KIND_RANK`] for everything else.
///
/// The group must be one the kind is known under, so a custom `serving.knative.dev` `Service`
/// ranks as a custom resource, not as a core Service.
pub fn kind_rank(group: &str, kind: &str) -> u32 {
    KIND_ORDER
        .iter()
        .position(|(k, groups)| *k == kind && groups.contains(&group))
        .map_or(UNKNOWN_KIND_RANK, |i| i as u32)
}

/// Errors reading ordering annotations.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    /// The sync-wave (or Helm hook-weight) annotation is not an integer.
    #[error(
        "{object}: annotation {annotation} is {value:?}, expected an integer such as \"-1\" or \"5\""
    )]
    InvalidWave {
        /// The object, e.g. `apps/Deployment:shop/web`.
        object: String,
        /// The annotation read.
        annotation: &'static str,
        /// The value found.
        value: String,
        /// Why it did not parse.
        #[source]
        source: ParseIntError,
    },
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")?.get(key)?.as_str()
}

/// How to name an object in errors: its key, or whatever of it is there.
fn describe(obj: &Value) -> String {
    if let Some(key) = ResourceKey::from_object(obj) {
        return key.to_string();
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("object");
    let name = obj
        .pointer("/metadata/name")
        .or_else(|| obj.pointer("/metadata/generateName"))
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    format!("{kind} {name}")
}

/// The sync wave of an object: its `argocd.argoproj.io/sync-wave` annotation, else its
/// `helm.sh/hook-weight`, else 0. Surrounding spaces are ignored; anything else that is not an
/// integer is an error naming the object and the value (Argo CD silently uses 0 instead).
pub fn sync_wave(obj: &Value) -> Result<i64, OrderError> {
    for key in [SYNC_WAVE_ANNOTATION, HELM_HOOK_WEIGHT_ANNOTATION] {
        if let Some(value) = annotation(obj, key) {
            return value
                .trim()
                .parse()
                .map_err(|source| OrderError::InvalidWave {
                    object: describe(obj),
                    annotation: key,
                    value: value.to_owned(),
                    source,
                });
        }
    }
    Ok(0)
}

/// The phase of a sync an object belongs to. Ordered as they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Hooks that run before anything is applied.
    PreSync,
    /// The application's resources (and Sync hooks).
    Sync,
    /// Hooks that run once everything is applied and healthy.
    PostSync,
    /// Hooks that run when the sync failed.
    SyncFail,
    /// Hooks that run when the Application is deleted, before its resources are.
    PreDelete,
    /// Hooks that run when the Application is deleted, after its resources are gone.
    PostDelete,
}

impl Phase {
    /// The name used in annotations and status (`PreSync`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreSync => "PreSync",
            Self::Sync => "Sync",
            Self::PostSync => "PostSync",
            Self::SyncFail => "SyncFail",
            Self::PreDelete => "PreDelete",
            Self::PostDelete => "PostDelete",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A value of the hook annotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookType {
    /// Runs before the Sync phase.
    PreSync,
    /// Runs with the Sync phase.
    Sync,
    /// Runs after the Sync phase succeeded and everything is healthy.
    PostSync,
    /// Runs when the sync failed.
    SyncFail,
    /// Not applied at all.
    Skip,
    /// Runs before the Application's resources are deleted.
    PreDelete,
    /// Runs after the Application's resources are deleted.
    PostDelete,
}

impl HookType {
    /// The sync phase this hook runs in; `None` for Skip, PreDelete and PostDelete.
    pub fn phase(self) -> Option<Phase> {
        match self {
            Self::PreSync => Some(Phase::PreSync),
            Self::Sync => Some(Phase::Sync),
            Self::PostSync => Some(Phase::PostSync),
            Self::SyncFail => Some(Phase::SyncFail),
            Self::Skip | Self::PreDelete | Self::PostDelete => None,
        }
    }

    /// The deletion phase this hook runs in: PreDelete or PostDelete, else `None`.
    pub fn deletion_phase(self) -> Option<Phase> {
        match self {
            Self::PreDelete => Some(Phase::PreDelete),
            Self::PostDelete => Some(Phase::PostDelete),
            _ => None,
        }
    }

    fn parse(value: &str) -> Option<Self> {
        Some(match value {
            "PreSync" => Self::PreSync,
            "Sync" => Self::Sync,
            "PostSync" => Self::PostSync,
            "SyncFail" => Self::SyncFail,
            "Skip" => Self::Skip,
            "PreDelete" => Self::PreDelete,
            "PostDelete" => Self::PostDelete,
            _ => return None,
        })
    }

    fn from_helm(value: &str) -> Option<Self> {
        Some(match value {
            "pre-install" | "pre-upgrade" => Self::PreSync,
            "post-install" | "post-upgrade" => Self::PostSync,
            "post-delete" => Self::PostDelete,
            _ => return None,
        })
    }
}

fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The hook types of an object, from `argocd.argoproj.io/hook`, else from `helm.sh/hook`
/// (`pre-install`/`pre-upgrade` → PreSync, `post-install`/`post-upgrade` → PostSync,
/// `post-delete` → PostDelete). Empty for ordinary resources. Unrecognised values are ignored, as
/// Argo CD does; `helm.sh/hook: crd-install` in particular makes a normal resource.
pub fn hook_types(obj: &Value) -> Vec<HookType> {
    let mut hooks: Vec<HookType> = if let Some(value) = annotation(obj, HOOK_ANNOTATION) {
        split_list(value).filter_map(HookType::parse).collect()
    } else if let Some(value) = annotation(obj, HELM_HOOK_ANNOTATION) {
        split_list(value).filter_map(HookType::from_helm).collect()
    } else {
        Vec::new()
    };
    hooks.sort();
    hooks.dedup();
    hooks
}

/// When a hook object is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum HookDeletePolicy {
    /// After the hook succeeded.
    HookSucceeded,
    /// After the hook failed.
    HookFailed,
    /// Before a new run creates it again (the default).
    BeforeHookCreation,
}

/// The delete policies of a hook, from `argocd.argoproj.io/hook-delete-policy`, else from
/// `helm.sh/hook-delete-policy`; `[BeforeHookCreation]` when neither gives a known value.
pub fn hook_delete_policies(obj: &Value) -> Vec<HookDeletePolicy> {
    let mut policies: Vec<HookDeletePolicy> =
        if let Some(value) = annotation(obj, HOOK_DELETE_POLICY_ANNOTATION) {
            split_list(value)
                .filter_map(|v| match v {
                    "HookSucceeded" => Some(HookDeletePolicy::HookSucceeded),
                    "HookFailed" => Some(HookDeletePolicy::HookFailed),
                    "BeforeHookCreation" => Some(HookDeletePolicy::BeforeHookCreation),
                    _ => None,
                })
                .collect()
        } else if let Some(value) = annotation(obj, HELM_HOOK_DELETE_POLICY_ANNOTATION) {
            split_list(value)
                .filter_map(|v| match v {
                    "hook-succeeded" => Some(HookDeletePolicy::HookSucceeded),
                    "hook-failed" => Some(HookDeletePolicy::HookFailed),
                    "before-hook-creation" => Some(HookDeletePolicy::BeforeHookCreation),
                    _ => None,
                })
                .collect()
        } else {
            Vec::new()
        };
    if policies.is_empty() {
        policies.push(HookDeletePolicy::BeforeHookCreation);
    }
    policies.sort();
    policies.dedup();
    policies
}

/// How dependents are deleted when ferry deletes an object (Kubernetes' propagation policy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum PropagationPolicy {
    /// Dependents first, then the object (Argo CD's default for pruning).
    #[default]
    Foreground,
    /// The object at once, dependents by the garbage collector.
    Background,
    /// The object only; dependents are left.
    Orphan,
}

impl PropagationPolicy {
    /// The value Kubernetes' `DeleteOptions.propagationPolicy` takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Foreground => "Foreground",
            Self::Background => "Background",
            Self::Orphan => "Orphan",
        }
    }
}

/// Sync options, from an Application's `syncPolicy.syncOptions`, a sync operation, or a
/// resource's `argocd.argoproj.io/sync-options` annotation.
///
/// Build with [`SyncOptions::default`] and [`SyncOptions::apply`], or [`SyncOptions::merged`] to
/// layer app-level and per-resource lists (later entries win). Entries ferry does not recognise
/// are kept in `unrecognized` so callers can warn about them; Argo CD ignores them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncOptions {
    /// `Prune=false` keeps the resource when it is no longer rendered (default true).
    pub prune: bool,
    /// `Prune=confirm`: pruning the resource needs a confirmation.
    pub prune_confirm: bool,
    /// `Delete=false` keeps the resource when the Application is deleted (default true).
    pub delete: bool,
    /// `Delete=confirm`: deleting the resource with the Application needs a confirmation.
    pub delete_confirm: bool,
    /// `ServerSideApply=true|false`; `None` when not set (ferry applies server-side by default).
    pub server_side_apply: Option<bool>,
    /// `CreateNamespace=true`: create the destination namespace when missing.
    pub create_namespace: bool,
    /// `PruneLast=true`: prune after all waves were applied and are healthy.
    pub prune_last: bool,
    /// `ApplyOutOfSyncOnly=true`: apply only resources that differ.
    pub apply_out_of_sync_only: bool,
    /// `Replace=true`: replace instead of apply.
    pub replace: bool,
    /// `Force=true`: delete and recreate when replace/apply fails.
    pub force: bool,
    /// `Validate=false` turns off schema validation (default true).
    pub validate: bool,
    /// `SkipDryRunOnMissingResource=true`: do not dry-run resources whose kind is not known yet.
    pub skip_dry_run_on_missing_resource: bool,
    /// `RespectIgnoreDifferences=true`: keep ignored fields as they are live when applying.
    pub respect_ignore_differences: bool,
    /// `FailOnSharedResource=true`: fail when a resource is tracked by another Application.
    pub fail_on_shared_resource: bool,
    /// `FailOnUntrackedResource=true|false` (ferry's own): refuse, or allow, adopting an existing
    /// object that no app tracks; `None` when not set (the installation's default decides).
    /// ferry's older `Adopt=true` means `FailOnUntrackedResource=false`.
    pub fail_on_untracked_resource: Option<bool>,
    /// `PrunePropagationPolicy=foreground|background|orphan` (default foreground).
    pub prune_propagation_policy: PropagationPolicy,
    /// Entries that were not recognised, as written.
    pub unrecognized: Vec<String>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        Self {
            prune: true,
            prune_confirm: false,
            delete: true,
            delete_confirm: false,
            server_side_apply: None,
            create_namespace: false,
            prune_last: false,
            apply_out_of_sync_only: false,
            replace: false,
            force: false,
            validate: true,
            skip_dry_run_on_missing_resource: false,
            respect_ignore_differences: false,
            fail_on_shared_resource: false,
            fail_on_untracked_resource: None,
            prune_propagation_policy: PropagationPolicy::Foreground,
            unrecognized: Vec::new(),
        }
    }
}

impl SyncOptions {
    /// Applies one `Key=Value` entry over the current options. Keys are case-sensitive as in Argo
    /// CD, values are not; surrounding spaces are ignored.
    pub fn apply(&mut self, entry: &str) {
        let entry = entry.trim();
        if entry.is_empty() {
            return;
        }
        let Some((key, value)) = entry.split_once('=') else {
            self.unrecognized.push(entry.to_owned());
            return;
        };
        let value = value.trim().to_ascii_lowercase();
        let flag = match value.as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        };
        let known = match (key.trim(), flag) {
            ("Prune", _) if value == "confirm" => {
                self.prune = true;
                self.prune_confirm = true;
                true
            }
            ("Prune", Some(b)) => {
                self.prune = b;
                self.prune_confirm = false;
                true
            }
            ("Delete", _) if value == "confirm" => {
                self.delete = true;
                self.delete_confirm = true;
                true
            }
            ("Delete", Some(b)) => {
                self.delete = b;
                self.delete_confirm = false;
                true
            }
            ("ServerSideApply", Some(b)) => set(&mut self.server_side_apply, Some(b)),
            ("CreateNamespace", Some(b)) => set(&mut self.create_namespace, b),
            ("PruneLast", Some(b)) => set(&mut self.prune_last, b),
            ("ApplyOutOfSyncOnly", Some(b)) => set(&mut self.apply_out_of_sync_only, b),
            ("Replace", Some(b)) => set(&mut self.replace, b),
            ("Force", Some(b)) => set(&mut self.force, b),
            ("Validate", Some(b)) => set(&mut self.validate, b),
            ("SkipDryRunOnMissingResource", Some(b)) => {
                set(&mut self.skip_dry_run_on_missing_resource, b)
            }
            ("RespectIgnoreDifferences", Some(b)) => set(&mut self.respect_ignore_differences, b),
            ("FailOnSharedResource", Some(b)) => set(&mut self.fail_on_shared_resource, b),
            ("FailOnUntrackedResource", Some(b)) => {
                set(&mut self.fail_on_untracked_resource, Some(b))
            }
            ("Adopt", Some(b)) => set(&mut self.fail_on_untracked_resource, Some(!b)),
            ("PrunePropagationPolicy", _) => match value.as_str() {
                "foreground" => set(
                    &mut self.prune_propagation_policy,
                    PropagationPolicy::Foreground,
                ),
                "background" => set(
                    &mut self.prune_propagation_policy,
                    PropagationPolicy::Background,
                ),
                "orphan" => set(
                    &mut self.prune_propagation_policy,
                    PropagationPolicy::Orphan,
                ),
                _ => false,
            },
            _ => false,
        };
        if !known {
            self.unrecognized.push(entry.to_owned());
        }
    }

    /// Parses a list of entries over the defaults.
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Self {
        let mut options = Self::default();
        entries.into_iter().for_each(|e| options.apply(e));
        options
    }

    /// The options for one resource: the app-level entries (`syncPolicy.syncOptions`, or those
    /// of the sync operation), then the resource's own entries, which win where both set a key.
    pub fn merged<'a>(
        app_level: impl IntoIterator<Item = &'a str>,
        resource_level: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        Self::parse(app_level.into_iter().chain(resource_level))
    }
}

fn set<T>(field: &mut T, value: T) -> bool {
    *field = value;
    true
}

/// An object's own sync options, from its `argocd.argoproj.io/sync-options` annotation
/// (comma-separated), over the defaults. To layer them over app-level options use
/// [`resource_sync_option_entries`] with [`SyncOptions::merged`].
pub fn sync_options(obj: &Value) -> SyncOptions {
    SyncOptions::parse(resource_sync_option_entries(obj))
}

/// The entries of an object's `argocd.argoproj.io/sync-options` annotation, trimmed.
pub fn resource_sync_option_entries(obj: &Value) -> Vec<&str> {
    annotation(obj, SYNC_OPTIONS_ANNOTATION)
        .map(|v| split_list(v).collect())
        .unwrap_or_default()
}

/// An object to be applied, as far as ordering is concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedObject {
    /// The object's identity.
    pub key: ResourceKey,
    /// Its sync wave (see [`sync_wave`]).
    pub wave: i64,
    /// The phase it is applied in (its hook phase, or Sync for ordinary resources).
    pub phase: Phase,
}

/// A set of objects that may be applied together (in parallel): same phase, wave and kind rank.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    /// The phase.
    pub phase: Phase,
    /// The wave.
    pub wave: i64,
    /// The kind rank shared by the objects (see [`kind_rank`]).
    pub kind_rank: u32,
    /// The objects, sorted by kind, name and namespace.
    pub objects: Vec<ResourceKey>,
}

/// Groups objects into stages ordered by phase, then wave, then kind rank. Within a stage the
/// objects are sorted by kind, then name, then namespace and group, so plans are deterministic.
pub fn plan_stages(objects: &[PlannedObject]) -> Vec<Stage> {
    let mut groups: BTreeMap<(Phase, i64, u32), Vec<ResourceKey>> = BTreeMap::new();
    for obj in objects {
        let rank = kind_rank(&obj.key.group, &obj.key.kind);
        groups
            .entry((obj.phase, obj.wave, rank))
            .or_default()
            .push(obj.key.clone());
    }
    groups
        .into_iter()
        .map(|((phase, wave, kind_rank), mut objects)| {
            objects.sort_by(|a, b| {
                (&a.kind, &a.name, &a.namespace, &a.group).cmp(&(
                    &b.kind,
                    &b.name,
                    &b.namespace,
                    &b.group,
                ))
            });
            objects.dedup();
            Stage {
                phase,
                wave,
                kind_rank,
                objects,
            }
        })
        .collect()
}

/// Groups objects to prune by wave, highest wave first; each group may be deleted in parallel,
/// and a group should start only when the one before it is gone. Keys within a group are sorted.
pub fn prune_order(keys_with_waves: &[(ResourceKey, i64)]) -> Vec<Vec<ResourceKey>> {
    let mut waves: BTreeMap<i64, Vec<ResourceKey>> = BTreeMap::new();
    for (key, wave) in keys_with_waves {
        waves.entry(*wave).or_default().push(key.clone());
    }
    waves
        .into_values()
        .rev()
        .map(|mut keys| {
            keys.sort();
            keys.dedup();
            keys
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with_annotations(annotations: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "shop", "annotations": annotations}})
    }

    #[test]
    fn kind_rank_follows_the_known_order() {
        let order = [
            ("", "Namespace"),
            ("networking.k8s.io", "NetworkPolicy"),
            ("", "ServiceAccount"),
            ("", "Secret"),
            ("", "ConfigMap"),
            ("", "PersistentVolumeClaim"),
            ("apiextensions.k8s.io", "CustomResourceDefinition"),
            ("rbac.authorization.k8s.io", "ClusterRole"),
            ("rbac.authorization.k8s.io", "RoleBinding"),
            ("", "Service"),
            ("apps", "Deployment"),
            ("batch", "Job"),
            ("networking.k8s.io", "Ingress"),
            ("apiregistration.k8s.io", "APIService"),
            ("example.com", "Widget"),
        ];
        let ranks: Vec<u32> = order.iter().map(|(g, k)| kind_rank(g, k)).collect();
        assert!(ranks.windows(2).all(|w| w[0] < w[1]), "{ranks:?}");
        assert_eq!(kind_rank("", "Namespace"), 0);
        assert_eq!(kind_rank("example.com", "Widget"), UNKNOWN_KIND_RANK);
    }

    #[test]
    fn kind_rank_checks_the_group() {
        assert_eq!(
            kind_rank("serving.knative.dev", "Service"),
            UNKNOWN_KIND_RANK
        );
        assert_eq!(
            kind_rank("extensions", "Deployment"),
            kind_rank("apps", "Deployment")
        );
        assert_eq!(kind_rank("", "Deployment"), UNKNOWN_KIND_RANK);
    }

    #[test]
    fn sync_wave_defaults_to_zero() {
        assert_eq!(sync_wave(&json!({"metadata": {"name": "x"}})), Ok(0));
        assert_eq!(sync_wave(&with_annotations(json!({"other": "1"}))), Ok(0));
    }

    #[test]
    fn sync_wave_reads_annotation_and_helm_weight() {
        assert_eq!(
            sync_wave(&with_annotations(json!({SYNC_WAVE_ANNOTATION: "5"}))),
            Ok(5)
        );
        assert_eq!(
            sync_wave(&with_annotations(json!({SYNC_WAVE_ANNOTATION: " -2 "}))),
            Ok(-2)
        );
        assert_eq!(
            sync_wave(&with_annotations(
                json!({HELM_HOOK_WEIGHT_ANNOTATION: "-5"})
            )),
            Ok(-5)
        );
        // Argo CD's annotation wins over Helm's weight.
        assert_eq!(
            sync_wave(&with_annotations(
                json!({SYNC_WAVE_ANNOTATION: "1", HELM_HOOK_WEIGHT_ANNOTATION: "9"})
            )),
            Ok(1)
        );
    }

    #[test]
    fn sync_wave_error_names_object_and_value() {
        let err = sync_wave(&with_annotations(json!({SYNC_WAVE_ANNOTATION: "first"}))).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("apps/Deployment:shop/web"), "{text}");
        assert!(text.contains("\"first\""), "{text}");
        assert!(text.contains(SYNC_WAVE_ANNOTATION), "{text}");
        let OrderError::InvalidWave { value, .. } = err;
        assert_eq!(value, "first");
        let unnamed = json!({"kind": "Job", "metadata": {"generateName": "migrate-",
            "annotations": {SYNC_WAVE_ANNOTATION: "1.5"}}});
        assert!(
            sync_wave(&unnamed)
                .unwrap_err()
                .to_string()
                .contains("Job migrate-")
        );
    }

    #[test]
    fn hook_types_from_argo_and_helm() {
        assert!(hook_types(&with_annotations(json!({}))).is_empty());
        assert_eq!(
            hook_types(&with_annotations(
                json!({HOOK_ANNOTATION: "PostSync, PreSync,PreSync"})
            )),
            [HookType::PreSync, HookType::PostSync]
        );
        assert_eq!(
            hook_types(&with_annotations(json!({HOOK_ANNOTATION: "Skip"}))),
            [HookType::Skip]
        );
        assert_eq!(
            hook_types(&with_annotations(
                json!({HELM_HOOK_ANNOTATION: "pre-install,pre-upgrade"})
            )),
            [HookType::PreSync]
        );
        assert_eq!(
            hook_types(&with_annotations(
                json!({HELM_HOOK_ANNOTATION: "post-upgrade"})
            )),
            [HookType::PostSync]
        );
        assert!(
            hook_types(&with_annotations(
                json!({HELM_HOOK_ANNOTATION: "crd-install"})
            ))
            .is_empty()
        );
        // Argo CD's annotation wins.
        assert_eq!(
            hook_types(&with_annotations(
                json!({HOOK_ANNOTATION: "Sync", HELM_HOOK_ANNOTATION: "pre-install"})
            )),
            [HookType::Sync]
        );
        assert_eq!(HookType::SyncFail.phase(), Some(Phase::SyncFail));
        assert_eq!(HookType::PreDelete.phase(), None);
        assert_eq!(HookType::PreDelete.deletion_phase(), Some(Phase::PreDelete));
        assert_eq!(
            HookType::PostDelete.deletion_phase(),
            Some(Phase::PostDelete)
        );
        assert_eq!(HookType::Sync.deletion_phase(), None);
        assert_eq!(HookType::PostDelete.phase(), None);
    }

    #[test]
    fn hook_delete_policies_default_and_helm_mapping() {
        assert_eq!(
            hook_delete_policies(&with_annotations(json!({}))),
            [HookDeletePolicy::BeforeHookCreation]
        );
        assert_eq!(
            hook_delete_policies(&with_annotations(
                json!({HOOK_DELETE_POLICY_ANNOTATION: "HookSucceeded,HookFailed"})
            )),
            [
                HookDeletePolicy::HookSucceeded,
                HookDeletePolicy::HookFailed
            ]
        );
        assert_eq!(
            hook_delete_policies(&with_annotations(
                json!({HELM_HOOK_DELETE_POLICY_ANNOTATION: "hook-succeeded"})
            )),
            [HookDeletePolicy::HookSucceeded]
        );
    }

    #[test]
    fn sync_options_defaults() {
        let o = SyncOptions::default();
        assert!(o.prune && o.delete && o.validate);
        assert!(!o.create_namespace && !o.prune_last && !o.replace);
        assert_eq!(o.server_side_apply, None);
        assert_eq!(o.prune_propagation_policy, PropagationPolicy::Foreground);
        assert_eq!(sync_options(&with_annotations(json!({}))), o);
    }

    #[test]
    fn sync_options_parse_every_key() {
        let o = SyncOptions::parse([
            "Prune=false",
            "Delete=false",
            "ServerSideApply=true",
            "CreateNamespace=true",
            "PruneLast=true",
            "ApplyOutOfSyncOnly=true",
            "Replace=true",
            "Force=true",
            "Validate=false",
            "SkipDryRunOnMissingResource=true",
            "RespectIgnoreDifferences=true",
            "FailOnSharedResource=true",
            "PrunePropagationPolicy=orphan",
        ]);
        assert!(!o.prune && !o.delete && !o.validate);
        assert_eq!(o.server_side_apply, Some(true));
        assert!(o.create_namespace && o.prune_last && o.apply_out_of_sync_only && o.replace);
        assert!(o.force && o.skip_dry_run_on_missing_resource);
        assert!(o.respect_ignore_differences && o.fail_on_shared_resource);
        assert_eq!(o.prune_propagation_policy, PropagationPolicy::Orphan);
        assert!(o.unrecognized.is_empty(), "{:?}", o.unrecognized);
    }

    #[test]
    fn untracked_objects_follow_the_last_word_on_adoption() {
        assert_eq!(SyncOptions::parse([]).fail_on_untracked_resource, None);
        let strict = SyncOptions::parse(["FailOnUntrackedResource=true"]);
        assert_eq!(strict.fail_on_untracked_resource, Some(true));
        // ferry's older spelling, and a resource's own option over the app's.
        let adopt = SyncOptions::merged(["FailOnUntrackedResource=true"], ["Adopt=true"]);
        assert_eq!(adopt.fail_on_untracked_resource, Some(false));
        assert!(adopt.unrecognized.is_empty(), "{:?}", adopt.unrecognized);
    }

    #[test]
    fn sync_options_confirm_and_unrecognized() {
        let o = SyncOptions::parse([
            "Prune=confirm",
            "Delete=confirm",
            "Bogus=1",
            "Validate=maybe",
            "noequals",
        ]);
        assert!(o.prune && o.prune_confirm && o.delete && o.delete_confirm);
        assert!(o.validate);
        assert_eq!(o.unrecognized, ["Bogus=1", "Validate=maybe", "noequals"]);
    }

    #[test]
    fn sync_options_from_annotation() {
        let obj = with_annotations(json!({SYNC_OPTIONS_ANNOTATION: "Prune=false, Replace=true,"}));
        let o = sync_options(&obj);
        assert!(!o.prune && o.replace);
        assert_eq!(
            resource_sync_option_entries(&obj),
            ["Prune=false", "Replace=true"]
        );
    }

    #[test]
    fn resource_options_win_over_app_options() {
        let app = [
            "ServerSideApply=true",
            "PrunePropagationPolicy=background",
            "CreateNamespace=true",
        ];
        let obj =
            with_annotations(json!({SYNC_OPTIONS_ANNOTATION: "ServerSideApply=false,Prune=false"}));
        let o = SyncOptions::merged(app, resource_sync_option_entries(&obj));
        assert_eq!(o.server_side_apply, Some(false));
        assert!(!o.prune);
        // App-level settings the resource does not override stay.
        assert_eq!(o.prune_propagation_policy, PropagationPolicy::Background);
        assert!(o.create_namespace);
        let back = SyncOptions::merged(["Prune=false"], ["Prune=true"]);
        assert!(back.prune);
    }

    fn planned(group: &str, kind: &str, name: &str, wave: i64, phase: Phase) -> PlannedObject {
        PlannedObject {
            key: ResourceKey::new(group, kind, "ns", name),
            wave,
            phase,
        }
    }

    #[test]
    fn plan_orders_by_phase_wave_kind_and_name() {
        let objects = [
            planned("apps", "Deployment", "web", 0, Phase::Sync),
            planned("", "ConfigMap", "b", 0, Phase::Sync),
            planned("", "ConfigMap", "a", 0, Phase::Sync),
            planned("batch", "Job", "smoke", 0, Phase::PostSync),
            planned("batch", "Job", "migrate", 0, Phase::PreSync),
            planned("apps", "Deployment", "db", -1, Phase::Sync),
            planned("example.com", "Widget", "w", 0, Phase::Sync),
            planned("", "Namespace", "ns", 0, Phase::Sync),
            planned("batch", "Job", "notify", 0, Phase::SyncFail),
        ];
        let stages = plan_stages(&objects);
        let summary: Vec<(Phase, i64, Vec<&str>)> = stages
            .iter()
            .map(|s| {
                (
                    s.phase,
                    s.wave,
                    s.objects.iter().map(|k| k.name.as_str()).collect(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (Phase::PreSync, 0, vec!["migrate"]),
                (Phase::Sync, -1, vec!["db"]),
                (Phase::Sync, 0, vec!["ns"]),
                (Phase::Sync, 0, vec!["a", "b"]),
                (Phase::Sync, 0, vec!["web"]),
                (Phase::Sync, 0, vec!["w"]),
                (Phase::PostSync, 0, vec!["smoke"]),
                (Phase::SyncFail, 0, vec!["notify"]),
            ]
        );
        assert_eq!(stages[2].kind_rank, 0);
        assert_eq!(stages[5].kind_rank, UNKNOWN_KIND_RANK);
    }

    #[test]
    fn custom_resources_of_different_kinds_share_a_stage() {
        let stages = plan_stages(&[
            planned("example.com", "Widget", "w", 0, Phase::Sync),
            planned("example.com", "Gadget", "g", 0, Phase::Sync),
        ]);
        assert_eq!(stages.len(), 1);
        let kinds: Vec<&str> = stages[0].objects.iter().map(|k| k.kind.as_str()).collect();
        assert_eq!(kinds, ["Gadget", "Widget"]);
    }

    #[test]
    fn plan_of_nothing_is_empty() {
        assert!(plan_stages(&[]).is_empty());
    }

    #[test]
    fn prune_goes_highest_wave_first() {
        let key = |name: &str| ResourceKey::new("", "ConfigMap", "ns", name);
        let order = prune_order(&[
            (key("a"), 0),
            (key("c"), 5),
            (key("b"), -1),
            (key("d"), 5),
            (key("e"), 0),
        ]);
        assert_eq!(
            order,
            [
                vec![key("c"), key("d")],
                vec![key("a"), key("e")],
                vec![key("b")]
            ]
        );
        assert!(prune_order(&[]).is_empty());
    }

    #[test]
    fn phase_and_policy_names() {
        assert_eq!(Phase::PreSync.to_string(), "PreSync");
        assert!(Phase::PreSync < Phase::Sync && Phase::PostSync < Phase::SyncFail);
        assert_eq!(PropagationPolicy::Orphan.as_str(), "Orphan");
    }
}
