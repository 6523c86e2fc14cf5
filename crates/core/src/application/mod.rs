//! Argo CD's `argoproj.io/v1alpha1` `Application`, as serde types.
//!
//! The types accept Argo CD manifests unchanged: every field Argo CD lets you omit is optional
//! here, unknown fields are ignored (never rejected), an explicit `null` list counts as empty, and
//! serialization leaves out what is unset so that a manifest round-trips to (nearly) what was
//! written. The `helm`, `kustomize` and `plugin` source blocks are kept as opaque JSON.
//!
//! [`Application`] is written by hand rather than derived with `kube::CustomResource`, because Argo
//! CD puts an `operation` field next to `spec` and `status`, which the derive cannot express.

use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::order::PropagationPolicy;

mod rules;
mod status;

pub use rules::{SpecField, SpecProblem, spec_problems};
pub use status::*;

/// API group of Argo CD's resources.
pub const GROUP: &str = "argoproj.io";
/// API version of Argo CD's resources.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of Argo CD's resources.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// Finalizer on an Application: deleting the Application deletes its resources (foreground).
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";
/// Variant of [`RESOURCES_FINALIZER`] that deletes the resources in the foreground (explicit).
pub const RESOURCES_FINALIZER_FOREGROUND: &str =
    "resources-finalizer.argocd.argoproj.io/foreground";
/// Variant of [`RESOURCES_FINALIZER`] that deletes the resources in the background.
pub const RESOURCES_FINALIZER_BACKGROUND: &str =
    "resources-finalizer.argocd.argoproj.io/background";
/// Annotation asking for a refresh (`normal` or `hard`); removed once the refresh is done.
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";
/// Name of the project an Application belongs to when `spec.project` is omitted.
pub const DEFAULT_PROJECT: &str = "default";
/// The `operation.info` entry by which ferry's CLI and server recognise the result of the sync
/// they requested (operation timestamps have one-second resolution, so two syncs in one second
/// would look alike).
pub const REQUEST_INFO: &str = "ferry-request";

/// A `.operation` requesting `sync` (a `SyncOperation` as JSON) for `username`, marked with a
/// fresh request id under [`REQUEST_INFO`]. Returns the operation and the id.
pub fn sync_request_operation(sync: Value, username: &str) -> (Value, String) {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let request = format!("{}-{nanos}", std::process::id());
    let operation = serde_json::json!({
        "sync": sync,
        "initiatedBy": {"username": username},
        "info": [{"name": REQUEST_INFO, "value": request}],
    });
    (operation, request)
}

/// Values of [`ApplicationCondition::type_`] that Argo CD (and ferry) set.
pub mod condition_type {
    /// The Application could not be deleted.
    pub const DELETION_ERROR: &str = "DeletionError";
    /// The spec is invalid (unknown project, forbidden source or destination, ...).
    pub const INVALID_SPEC_ERROR: &str = "InvalidSpecError";
    /// Desired and live state could not be compared (render failed, repo unreachable, ...).
    pub const COMPARISON_ERROR: &str = "ComparisonError";
    /// The last sync failed.
    pub const SYNC_ERROR: &str = "SyncError";
    /// An error that fits no other type.
    pub const UNKNOWN_ERROR: &str = "UnknownError";
    /// A resource is also managed by another Application.
    pub const SHARED_RESOURCE_WARNING: &str = "SharedResourceWarning";
    /// The same resource appears more than once in the rendered manifests.
    pub const REPEATED_RESOURCE_WARNING: &str = "RepeatedResourceWarning";
    /// A rendered resource is excluded from management by configuration.
    pub const EXCLUDED_RESOURCE_WARNING: &str = "ExcludedResourceWarning";
    /// The destination namespace holds resources no Application tracks.
    pub const ORPHANED_RESOURCE_WARNING: &str = "OrphanedResourceWarning";
}

/// Deserializes `null` as the type's default, like Go does for lists and maps.
pub(crate) fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

pub(crate) fn is_false(b: &bool) -> bool {
    !*b
}

fn default_project() -> String {
    DEFAULT_PROJECT.to_owned()
}

/// An Argo CD `Application`: which manifests (source) go where (destination), and how to sync.
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Application {
    /// Standard object metadata.
    #[serde(default)]
    pub metadata: ObjectMeta,
    /// What to deploy, where, and how.
    pub spec: ApplicationSpec,
    /// Observed state, written by the controller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<ApplicationStatus>,
    /// A requested operation (a manual sync), cleared by the controller once it ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<Operation>,
}

impl Application {
    /// A new Application named `name` with the given spec, no status and no operation.
    pub fn new(name: &str, spec: ApplicationSpec) -> Self {
        Self {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec,
            status: None,
            operation: None,
        }
    }

    /// The refresh requested through [`REFRESH_ANNOTATION`], if any. Unknown values count as
    /// [`RefreshType::Normal`].
    pub fn refresh_requested(&self) -> Option<RefreshType> {
        let value = self
            .metadata
            .annotations
            .as_ref()?
            .get(REFRESH_ANNOTATION)?;
        Some(if value == "hard" {
            RefreshType::Hard
        } else {
            RefreshType::Normal
        })
    }

    /// How the resources are deleted with the Application, from its finalizers: `None` when it
    /// has no resources finalizer (resources stay when the Application is deleted).
    pub fn resources_finalizer(&self) -> Option<PropagationPolicy> {
        let finalizers = self.metadata.finalizers.as_deref().unwrap_or_default();
        finalizers.iter().find_map(|f| match f.as_str() {
            RESOURCES_FINALIZER | RESOURCES_FINALIZER_FOREGROUND => {
                Some(PropagationPolicy::Foreground)
            }
            RESOURCES_FINALIZER_BACKGROUND => Some(PropagationPolicy::Background),
            _ => None,
        })
    }
}

impl Serialize for Application {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let len = 4 + usize::from(self.status.is_some()) + usize::from(self.operation.is_some());
        let mut obj = serializer.serialize_struct("Application", len)?;
        obj.serialize_field("apiVersion", API_VERSION)?;
        obj.serialize_field("kind", "Application")?;
        obj.serialize_field("metadata", &self.metadata)?;
        obj.serialize_field("spec", &self.spec)?;
        if let Some(status) = &self.status {
            obj.serialize_field("status", status)?;
        }
        if let Some(operation) = &self.operation {
            obj.serialize_field("operation", operation)?;
        }
        obj.end()
    }
}

impl kube::Resource for Application {
    type DynamicType = ();
    type Scope = kube::core::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Application".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        VERSION.into()
    }
    fn api_version(_: &()) -> Cow<'_, str> {
        API_VERSION.into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "applications".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The kind of refresh asked for through [`REFRESH_ANNOTATION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshType {
    /// Compare again with the current revision (cached renders may be reused).
    Normal,
    /// Also drop cached renders.
    Hard,
}

impl RefreshType {
    /// [`RefreshType::Hard`] when `hard`, [`RefreshType::Normal`] otherwise.
    pub fn hard_if(hard: bool) -> Self {
        if hard { Self::Hard } else { Self::Normal }
    }

    /// The value of [`REFRESH_ANNOTATION`] that asks for this refresh.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Hard => "hard",
        }
    }
}

/// `spec` of an Application.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// The AppProject the Application belongs to (`default` when omitted).
    #[serde(default = "default_project")]
    pub project: String,
    /// The single source of manifests (ignored when `sources` is non-empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<ApplicationSource>,
    /// Several sources whose manifests are combined.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sources: Option<Vec<ApplicationSource>>,
    /// Target cluster and namespace.
    #[serde(default)]
    pub destination: ApplicationDestination,
    /// When and how to sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<SyncPolicy>,
    /// Differences to ignore when comparing.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub ignore_differences: Vec<ResourceIgnoreDifferences>,
    /// How many entries of `status.history` to keep (Argo CD's default is 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<i64>,
    /// Free-form information shown with the Application.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub info: Vec<Info>,
}

impl Default for ApplicationSpec {
    fn default() -> Self {
        Self {
            project: default_project(),
            source: None,
            sources: None,
            destination: ApplicationDestination::default(),
            sync_policy: None,
            ignore_differences: Vec::new(),
            revision_history_limit: None,
            info: Vec::new(),
        }
    }
}

impl ApplicationSpec {
    /// The sources to render: `sources` when it is non-empty (Argo CD prefers it when both are
    /// set), otherwise `source`, otherwise none.
    pub fn effective_sources(&self) -> Vec<&ApplicationSource> {
        match &self.sources {
            Some(sources) if !sources.is_empty() => sources.iter().collect(),
            _ => self.source.iter().collect(),
        }
    }

    /// Whether the Application syncs by itself (an `automated` block not disabled by
    /// `enabled: false`).
    pub fn is_automated(&self) -> bool {
        self.sync_policy
            .as_ref()
            .is_some_and(SyncPolicy::is_automated)
    }

    /// The app-level sync options (`syncPolicy.syncOptions`), empty when unset.
    pub fn sync_options(&self) -> &[String] {
        self.sync_policy
            .as_ref()
            .map(|p| p.sync_options.as_slice())
            .unwrap_or_default()
    }
}

/// Where an Application's manifests come from.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSource {
    /// Git repository URL, or Helm repository URL when `chart` is set.
    #[serde(rename = "repoURL", default)]
    pub repo_url: String,
    /// Directory inside the repository.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Branch, tag, commit, or chart version (`HEAD` when omitted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_revision: Option<String>,
    /// Helm chart name, for Helm repositories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Name other sources use to refer to this one (`$name/values.yaml`), multi-source only.
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub ref_: Option<String>,
    /// Display name of the source (multi-source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Options for plain directories of manifests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySource>,
    /// Helm options, kept as opaque JSON for now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<Value>,
    /// Kustomize options, kept as opaque JSON for now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<Value>,
    /// Config management plugin options, kept as opaque JSON for now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<Value>,
}

impl ApplicationSource {
    /// The revision to check out: `targetRevision`, or `HEAD` when it is empty or omitted.
    pub fn target_revision_or_head(&self) -> &str {
        self.target_revision
            .as_deref()
            .filter(|r| !r.is_empty())
            .unwrap_or("HEAD")
    }
}

/// Options for a source that is a plain directory of manifests.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySource {
    /// Also read subdirectories.
    #[serde(default, skip_serializing_if = "is_false")]
    pub recurse: bool,
    /// Glob of files to read (e.g. `{*.yaml,*.yml}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub include: Option<String>,
    /// Glob of files to skip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exclude: Option<String>,
    /// Jsonnet options, kept as opaque JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jsonnet: Option<Value>,
}

/// Target cluster (by `server` URL or by `name`) and namespace.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationDestination {
    /// API server URL of the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Name of the cluster (as registered), instead of `server`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Namespace for namespaced resources that do not set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// `spec.syncPolicy`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicy {
    /// Present when the Application syncs automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<Automated>,
    /// App-level sync options, e.g. `CreateNamespace=true` (see [`crate::order::SyncOptions`]).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub sync_options: Vec<String>,
    /// How failed syncs are retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryStrategy>,
    /// Labels and annotations for the namespace created by `CreateNamespace=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_namespace_metadata: Option<ManagedNamespaceMetadata>,
}

impl SyncPolicy {
    /// Whether automated sync is on: `automated` is present and `enabled` is not `false`.
    pub fn is_automated(&self) -> bool {
        self.automated
            .as_ref()
            .is_some_and(|a| a.enabled != Some(false))
    }
}

/// `syncPolicy.automated`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Automated {
    /// Delete tracked resources that are no longer rendered.
    #[serde(default, skip_serializing_if = "is_false")]
    pub prune: bool,
    /// Revert changes made to live resources (drift).
    #[serde(default, skip_serializing_if = "is_false")]
    pub self_heal: bool,
    /// Allow a sync that would leave the Application with no resources.
    #[serde(default, skip_serializing_if = "is_false")]
    pub allow_empty: bool,
    /// `false` turns automated sync off while keeping the block.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// `syncPolicy.retry` (also `operation.retry`).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RetryStrategy {
    /// Number of retries; negative means without limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// Delay between retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

/// Exponential back-off between retries.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// First delay, a duration like `5s` or `2m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration: Option<String>,
    /// Multiplier applied after each retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<i64>,
    /// Upper bound of the delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<String>,
}

/// `syncPolicy.managedNamespaceMetadata`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ManagedNamespaceMetadata {
    /// Labels set on the created namespace.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// Annotations set on the created namespace.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub annotations: BTreeMap<String, String>,
}

/// One entry of `spec.ignoreDifferences`: which parts of which resources not to compare.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ResourceIgnoreDifferences {
    /// API group (empty for the core group).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Kind.
    #[serde(default)]
    pub kind: String,
    /// Only the resource with this name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only resources in this namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// JSON pointers (RFC 6901) of fields to ignore.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub json_pointers: Vec<String>,
    /// jq path expressions of fields to ignore.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub jq_path_expressions: Vec<String>,
    /// Field managers whose fields are ignored.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub managed_fields_managers: Vec<String>,
}

/// A name/value pair of `spec.info` or `operation.info`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Info {
    /// Name.
    #[serde(default)]
    pub name: String,
    /// Value.
    #[serde(default)]
    pub value: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::Resource;
    use serde_json::json;

    const ROOT: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: root
  namespace: argocd
  finalizers:
    - resources-finalizer.argocd.argoproj.io
spec:
  project: default
  source:
    repoURL: https://github.com/example/gitops.git
    targetRevision: HEAD
    path: apps
    directory:
      recurse: true
  destination:
    server: https://kubernetes.default.svc
    namespace: argocd
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
"#;

    const CHILD: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: podinfo
  namespace: argocd
  annotations:
    argocd.argoproj.io/sync-wave: "2"
  labels:
    team: platform
spec:
  project: workshop
  source:
    repoURL: https://stefanprodan.github.io/podinfo
    chart: podinfo
    targetRevision: 6.7.1
    helm:
      releaseName: podinfo
      valuesObject:
        replicaCount: 2
      someFutureField: kept
  destination:
    name: in-cluster
    namespace: podinfo
  syncPolicy:
    automated:
      prune: true
      selfHeal: true
      allowEmpty: false
    syncOptions:
      - CreateNamespace=true
      - ServerSideApply=true
      - PrunePropagationPolicy=foreground
    retry:
      limit: 5
      backoff:
        duration: 5s
        factor: 2
        maxDuration: 3m
    managedNamespaceMetadata:
      labels:
        pod-security.kubernetes.io/enforce: baseline
  ignoreDifferences:
    - group: apps
      kind: Deployment
      jsonPointers:
        - /spec/replicas
    - kind: Secret
      name: podinfo-token
      namespace: podinfo
      jqPathExpressions:
        - .data.token
      managedFieldsManagers:
        - kube-controller-manager
  revisionHistoryLimit: 5
  info:
    - name: owner
      value: platform-team
  someFieldFerryDoesNotKnow: true
"#;

    fn parse(yaml: &str) -> Application {
        serde_saphyr::from_str(yaml).expect("Application parses")
    }

    #[test]
    fn app_of_apps_root_parses() {
        let app = parse(ROOT);
        assert_eq!(app.metadata.name.as_deref(), Some("root"));
        assert_eq!(app.spec.project, "default");
        let source = app.spec.source.as_ref().unwrap();
        assert_eq!(source.repo_url, "https://github.com/example/gitops.git");
        assert_eq!(source.path.as_deref(), Some("apps"));
        assert!(source.directory.as_ref().unwrap().recurse);
        assert_eq!(
            app.spec.destination.server.as_deref(),
            Some("https://kubernetes.default.svc")
        );
        assert!(app.spec.is_automated());
        assert_eq!(
            app.resources_finalizer(),
            Some(PropagationPolicy::Foreground)
        );
        assert!(app.status.is_none() && app.operation.is_none());
    }

    #[test]
    fn child_with_policies_parses() {
        let app = parse(CHILD);
        let spec = &app.spec;
        assert_eq!(spec.project, "workshop");
        assert_eq!(spec.destination.name.as_deref(), Some("in-cluster"));
        assert_eq!(spec.destination.server, None);
        let policy = spec.sync_policy.as_ref().unwrap();
        let automated = policy.automated.as_ref().unwrap();
        assert!(automated.prune && automated.self_heal && !automated.allow_empty);
        assert_eq!(
            spec.sync_options(),
            [
                "CreateNamespace=true",
                "ServerSideApply=true",
                "PrunePropagationPolicy=foreground"
            ]
        );
        let retry = policy.retry.as_ref().unwrap();
        assert_eq!(retry.limit, Some(5));
        let backoff = retry.backoff.as_ref().unwrap();
        assert_eq!(backoff.duration.as_deref(), Some("5s"));
        assert_eq!(backoff.factor, Some(2));
        assert_eq!(backoff.max_duration.as_deref(), Some("3m"));
        let namespace_labels = &policy.managed_namespace_metadata.as_ref().unwrap().labels;
        assert_eq!(
            namespace_labels["pod-security.kubernetes.io/enforce"],
            "baseline"
        );
        assert_eq!(spec.ignore_differences.len(), 2);
        assert_eq!(spec.ignore_differences[0].group, "apps");
        assert_eq!(spec.ignore_differences[0].json_pointers, ["/spec/replicas"]);
        assert_eq!(spec.ignore_differences[1].group, "");
        assert_eq!(
            spec.ignore_differences[1].jq_path_expressions,
            [".data.token"]
        );
        assert_eq!(
            spec.ignore_differences[1].managed_fields_managers,
            ["kube-controller-manager"]
        );
        assert_eq!(spec.revision_history_limit, Some(5));
        assert_eq!(spec.info[0].value, "platform-team");
        let helm = spec.source.as_ref().unwrap().helm.as_ref().unwrap();
        assert_eq!(helm["valuesObject"]["replicaCount"], 2);
        assert_eq!(helm["someFutureField"], "kept");
        assert_eq!(app.resources_finalizer(), None);
    }

    #[test]
    fn round_trip_is_stable_and_minimal() {
        for yaml in [ROOT, CHILD] {
            let app = parse(yaml);
            let json = serde_json::to_value(&app).unwrap();
            assert_eq!(json["apiVersion"], "argoproj.io/v1alpha1");
            assert_eq!(json["kind"], "Application");
            assert!(json.get("status").is_none());
            assert!(json.get("operation").is_none());
            let again: Application = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(again, app);
            assert_eq!(serde_json::to_value(&again).unwrap(), json);
        }
        let json = serde_json::to_value(parse(CHILD)).unwrap();
        // Unset fields are not written back.
        assert_eq!(
            json["spec"]["syncPolicy"]["automated"],
            json!({"prune": true, "selfHeal": true})
        );
        assert!(json["spec"].get("sources").is_none());
        assert_eq!(json["spec"]["ignoreDifferences"][1]["kind"], "Secret");
        assert!(json["spec"]["ignoreDifferences"][1].get("group").is_none());
        assert_eq!(json["spec"]["source"]["helm"]["someFutureField"], "kept");
    }

    #[test]
    fn yaml_serialization_round_trips() {
        let app = parse(CHILD);
        let yaml = serde_saphyr::to_string(&app).unwrap();
        assert_eq!(parse(&yaml), app);
    }

    #[test]
    fn nulls_and_omissions_are_tolerated() {
        let app: Application = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": "x"},
            "spec": {
                "destination": {"server": "https://kubernetes.default.svc"},
                "source": {"repoURL": "https://example.com/r.git"},
                "syncPolicy": {"syncOptions": null, "automated": {}},
                "ignoreDifferences": null,
                "info": null
            }
        }))
        .unwrap();
        assert_eq!(app.spec.project, DEFAULT_PROJECT);
        assert!(app.spec.sync_options().is_empty());
        assert!(app.spec.ignore_differences.is_empty());
        assert!(app.spec.is_automated());
        assert_eq!(
            app.spec.source.as_ref().unwrap().target_revision_or_head(),
            "HEAD"
        );
    }

    #[test]
    fn automated_can_be_disabled_with_enabled_false() {
        let mut spec = ApplicationSpec::default();
        assert!(!spec.is_automated());
        spec.sync_policy = Some(SyncPolicy {
            automated: Some(Automated {
                enabled: Some(false),
                ..Automated::default()
            }),
            ..SyncPolicy::default()
        });
        assert!(!spec.is_automated());
        spec.sync_policy
            .as_mut()
            .unwrap()
            .automated
            .as_mut()
            .unwrap()
            .enabled = Some(true);
        assert!(spec.is_automated());
    }

    #[test]
    fn effective_sources_prefers_non_empty_sources() {
        let one = ApplicationSource {
            repo_url: "https://one".into(),
            ..Default::default()
        };
        let two = ApplicationSource {
            repo_url: "https://two".into(),
            ref_: Some("values".into()),
            ..Default::default()
        };
        let mut spec = ApplicationSpec {
            source: Some(one.clone()),
            ..Default::default()
        };
        assert_eq!(spec.effective_sources(), vec![&one]);
        spec.sources = Some(vec![]);
        assert_eq!(spec.effective_sources(), vec![&one]);
        spec.sources = Some(vec![two.clone(), one.clone()]);
        assert_eq!(spec.effective_sources(), vec![&two, &one]);
        spec.source = None;
        assert_eq!(spec.effective_sources().len(), 2);
        spec.sources = None;
        assert!(spec.effective_sources().is_empty());
    }

    #[test]
    fn multi_source_with_ref_parses() {
        let app = parse(
            r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: prom, namespace: argocd}
spec:
  destination: {server: "https://kubernetes.default.svc", namespace: monitoring}
  sources:
    - repoURL: https://prometheus-community.github.io/helm-charts
      chart: kube-prometheus-stack
      targetRevision: 77.0.0
      helm:
        valueFiles: [$values/monitoring/values.yaml]
    - repoURL: https://github.com/example/gitops.git
      targetRevision: main
      ref: values
"#,
        );
        let sources = app.spec.effective_sources();
        assert_eq!(sources.len(), 2);
        assert_eq!(sources[1].ref_.as_deref(), Some("values"));
        let json = serde_json::to_value(&app).unwrap();
        assert_eq!(json["spec"]["sources"][1]["ref"], "values");
    }

    #[test]
    fn status_in_argo_shape_parses_and_round_trips() {
        let status = json!({
            "sync": {
                "status": "Synced",
                "revision": "8f3c2a1",
                "comparedTo": {
                    "source": {"repoURL": "https://github.com/example/gitops.git", "path": "apps"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": "argocd"}
                }
            },
            "health": {"status": "Progressing", "message": "waiting"},
            "resources": [
                {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "web",
                 "name": "ui", "status": "Synced", "health": {"status": "Healthy"}},
                {"version": "v1", "kind": "ConfigMap", "namespace": "web", "name": "old",
                 "status": "OutOfSync", "requiresPruning": true},
                {"group": "batch", "version": "v1", "kind": "Job", "namespace": "web",
                 "name": "migrate", "hook": true}
            ],
            "operationState": {
                "operation": {
                    "sync": {"revision": "8f3c2a1", "prune": true, "syncOptions": ["Validate=false"]},
                    "initiatedBy": {"automated": true},
                    "retry": {"limit": 5}
                },
                "phase": "Succeeded",
                "message": "successfully synced (all tasks run)",
                "syncResult": {
                    "revision": "8f3c2a1",
                    "source": {"repoURL": "https://github.com/example/gitops.git"},
                    "resources": [
                        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "web",
                         "name": "ui", "status": "Synced", "message": "deployment.apps/ui configured",
                         "syncPhase": "Sync"},
                        {"group": "batch", "version": "v1", "kind": "Job", "namespace": "web",
                         "name": "migrate", "status": "Synced", "hookPhase": "Succeeded",
                         "hookType": "PreSync", "syncPhase": "PreSync"}
                    ]
                },
                "startedAt": "2025-01-01T10:00:00Z",
                "finishedAt": "2025-01-01T10:00:05Z"
            },
            "history": [{
                "id": 3, "revision": "8f3c2a1",
                "deployedAt": "2025-01-01T10:00:05Z", "deployStartedAt": "2025-01-01T10:00:00Z",
                "source": {"repoURL": "https://github.com/example/gitops.git"},
                "initiatedBy": {"username": "alice"}
            }],
            "conditions": [{"type": "OrphanedResourceWarning", "message": "1 orphan",
                            "lastTransitionTime": "2025-01-01T10:00:00Z"}],
            "reconciledAt": "2025-01-01T10:01:00Z",
            "summary": {"images": ["ghcr.io/stefanprodan/podinfo:6.7.1"],
                        "externalURLs": ["http://podinfo.local"]},
            "sourceType": "Directory",
            "controllerNamespace": "argocd"
        });
        let parsed: ApplicationStatus = serde_json::from_value(status.clone()).unwrap();
        assert_eq!(parsed.sync.status, SyncStatusCode::Synced);
        assert_eq!(parsed.health.status, HealthStatusCode::Progressing);
        assert_eq!(parsed.resources.len(), 3);
        assert_eq!(parsed.resources[1].requires_pruning, Some(true));
        assert_eq!(parsed.resources[2].hook, Some(true));
        let op = parsed.operation_state.as_ref().unwrap();
        assert_eq!(op.phase, OperationPhase::Succeeded);
        assert!(op.phase.is_completed());
        assert!(op.operation.sync.as_ref().unwrap().prune);
        assert!(op.operation.initiated_by.as_ref().unwrap().automated);
        let result = op.sync_result.as_ref().unwrap();
        assert_eq!(
            result.resources[1].hook_phase,
            Some(OperationPhase::Succeeded)
        );
        assert_eq!(result.resources[0].status, Some(ResultCode::Synced));
        assert_eq!(parsed.history[0].id, 3);
        assert_eq!(
            parsed.history[0]
                .initiated_by
                .as_ref()
                .unwrap()
                .username
                .as_deref(),
            Some("alice")
        );
        assert_eq!(
            parsed.conditions[0].type_,
            condition_type::ORPHANED_RESOURCE_WARNING
        );
        assert!(!parsed.conditions[0].is_error());
        assert_eq!(parsed.summary.external_urls, ["http://podinfo.local"]);

        // Everything ferry knows is written back in the same shape.
        let mut expected = status;
        expected
            .as_object_mut()
            .unwrap()
            .remove("controllerNamespace");
        assert_eq!(serde_json::to_value(&parsed).unwrap(), expected);
    }

    #[test]
    fn unknown_status_codes_fall_back_to_unknown() {
        let h: HealthStatus = serde_json::from_value(json!({"status": "Exploded"})).unwrap();
        assert_eq!(h.status, HealthStatusCode::Unknown);
        let s: SyncStatus = serde_json::from_value(json!({"status": "Weird"})).unwrap();
        assert_eq!(s.status, SyncStatusCode::Unknown);
        let s: SyncStatus = serde_json::from_value(json!({})).unwrap();
        assert_eq!(s.status, SyncStatusCode::Unknown);
    }

    #[test]
    fn manual_operation_parses_and_serializes() {
        let app: Application = serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "web", "namespace": "argocd"},
            "spec": {"destination": {"server": "https://kubernetes.default.svc"}},
            "operation": {
                "sync": {
                    "revision": "abc123", "prune": true, "dryRun": true,
                    "resources": [{"group": "apps", "kind": "Deployment", "name": "ui",
                                   "namespace": "web"}],
                    "syncOptions": ["Replace=true"]
                },
                "initiatedBy": {"username": "admin"},
                "info": [{"name": "reason", "value": "rollback"}]
            }
        }))
        .unwrap();
        let op = app.operation.as_ref().unwrap();
        let sync = op.sync.as_ref().unwrap();
        assert!(sync.prune && sync.dry_run);
        assert_eq!(sync.resources[0].namespace.as_deref(), Some("web"));
        assert_eq!(op.info[0].value, "rollback");
        let json = serde_json::to_value(&app).unwrap();
        assert_eq!(json["operation"]["sync"]["dryRun"], true);
        assert_eq!(
            json["operation"]["initiatedBy"],
            json!({"username": "admin"})
        );
    }

    #[test]
    fn resource_impl_describes_applications() {
        assert_eq!(Application::kind(&()), "Application");
        assert_eq!(Application::group(&()), "argoproj.io");
        assert_eq!(Application::api_version(&()), "argoproj.io/v1alpha1");
        assert_eq!(Application::plural(&()), "applications");
        assert_eq!(
            Application::url_path(&(), Some("argocd")),
            "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications"
        );
        let mut app = Application::new("web", ApplicationSpec::default());
        assert_eq!(app.meta().name.as_deref(), Some("web"));
        app.meta_mut().namespace = Some("argocd".into());
        assert_eq!(app.metadata.namespace.as_deref(), Some("argocd"));
    }

    #[test]
    fn refresh_annotation_and_finalizer_variants() {
        let mut app = Application::new("web", ApplicationSpec::default());
        assert_eq!(app.refresh_requested(), None);
        app.metadata.annotations = Some(BTreeMap::from([(
            REFRESH_ANNOTATION.to_owned(),
            "hard".to_owned(),
        )]));
        assert_eq!(app.refresh_requested(), Some(RefreshType::Hard));
        app.metadata.annotations = Some(BTreeMap::from([(
            REFRESH_ANNOTATION.to_owned(),
            "normal".to_owned(),
        )]));
        assert_eq!(app.refresh_requested(), Some(RefreshType::Normal));
        app.metadata.finalizers = Some(vec!["other".into(), RESOURCES_FINALIZER_BACKGROUND.into()]);
        assert_eq!(
            app.resources_finalizer(),
            Some(PropagationPolicy::Background)
        );
    }

    #[test]
    fn health_codes_order_worst_last() {
        use HealthStatusCode::*;
        let mut codes = vec![Unknown, Degraded, Missing, Progressing, Suspended, Healthy];
        codes.sort();
        assert_eq!(
            codes,
            [Healthy, Suspended, Progressing, Missing, Degraded, Unknown]
        );
    }

    #[test]
    fn error_conditions_are_recognised() {
        let c = ApplicationCondition {
            type_: condition_type::COMPARISON_ERROR.into(),
            ..Default::default()
        };
        assert!(c.is_error());
    }
}
