//! Argo Rollouts' `argoproj.io/v1alpha1` `AnalysisTemplate`, `ClusterAnalysisTemplate` and
//! `AnalysisRun`, in their shape. Fields ferry does not interpret are kept (`rest`), so a run
//! made from a template carries everything the template said.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::CustomResource;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use super::RunPhase;

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn is_zero(n: &i32) -> bool {
    *n == 0
}

/// `spec` of an `AnalysisTemplate`: the metrics to measure and the arguments they take.
#[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisTemplate",
    plural = "analysistemplates",
    namespaced,
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisTemplateSpec {
    /// The metrics, each measured on its own schedule.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metrics: Vec<Metric>,
    /// The arguments the metrics refer to as `{{args.NAME}}`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<Argument>,
    /// Metrics whose results do not count towards the run's phase.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric (default [`super::MEASUREMENTS_KEPT`]).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Fields ferry does not interpret, kept as written.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

/// `spec` of a `ClusterAnalysisTemplate`: the same as an `AnalysisTemplate`'s, cluster-wide.
#[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "ClusterAnalysisTemplate",
    plural = "clusteranalysistemplates",
    schema = "disabled"
)]
pub struct ClusterAnalysisTemplateSpec {
    /// The template.
    #[serde(flatten)]
    pub template: AnalysisTemplateSpec,
}

/// `spec` of an `AnalysisRun`: the metrics of its templates, merged, and the arguments' values.
#[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[kube(
    group = "argoproj.io",
    version = "v1alpha1",
    kind = "AnalysisRun",
    plural = "analysisruns",
    namespaced,
    status = "AnalysisRunStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunSpec {
    /// The metrics.
    #[serde(default, deserialize_with = "null_as_default")]
    pub metrics: Vec<Metric>,
    /// The arguments, each with a value (or a Secret to read it from).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub args: Vec<Argument>,
    /// Stop measuring: the run ends with what it has measured so far.
    #[serde(default, skip_serializing_if = "is_false")]
    pub terminate: bool,
    /// Metrics whose results do not count towards the run's phase.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub dry_run: Vec<DryRun>,
    /// How many measurements to keep per metric.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub measurement_retention: Vec<MeasurementRetention>,
    /// Fields ferry does not interpret, kept as written.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

/// `dryRun[]`: metrics measured and recorded whose results do not decide the run.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DryRun {
    /// A metric's name, or a regular expression matching whole names (`.*` for all).
    pub metric_name: String,
}

/// `measurementRetention[]`: how many measurements of matching metrics to keep.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MeasurementRetention {
    /// A metric's name, or a regular expression matching whole names.
    pub metric_name: String,
    /// Measurements kept (at least 1).
    pub limit: i32,
}

/// One metric: where to measure, how often, and what counts as success.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Metric {
    /// Unique among the run's metrics.
    pub name: String,
    /// Time between measurements (`30s`, `5m`); without it one measurement is taken.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
    /// Time to wait before the first measurement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<String>,
    /// How many measurements to take (errors do not count); unlimited with an interval and no
    /// count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<IntOrString>,
    /// An expression over `result` that makes a measurement Successful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub success_condition: Option<String>,
    /// An expression over `result` that makes a measurement Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_condition: Option<String>,
    /// Failed measurements tolerated (default 0; -1 for no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_limit: Option<IntOrString>,
    /// Inconclusive measurements tolerated (default 0; -1 for no limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inconclusive_limit: Option<IntOrString>,
    /// Errors in a row tolerated (default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consecutive_error_limit: Option<IntOrString>,
    /// Where the value comes from.
    #[serde(default)]
    pub provider: MetricProvider,
    /// Fields ferry does not interpret, kept as written.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

/// A metric's provider. ferry measures with `prometheus`; other providers are kept and give an
/// Error measurement that names them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct MetricProvider {
    /// A Prometheus instant query.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prometheus: Option<PrometheusMetric>,
    /// Other providers (`web`, `job`, `datadog`, ...), kept as written.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

/// `provider.prometheus`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct PrometheusMetric {
    /// Prometheus' base URL (`http://prometheus.monitoring:9090`).
    #[serde(default)]
    pub address: String,
    /// The PromQL query, after `{{args.NAME}}` substitution.
    #[serde(default)]
    pub query: String,
    /// Seconds a query may take (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// Headers sent with the query (for a bearer token read from a Secret through an arg).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub headers: Vec<WebHeader>,
    /// Fields ferry does not interpret (`authentication`, ...), kept as written.
    #[serde(flatten)]
    pub rest: BTreeMap<String, Value>,
}

/// One header of a query.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct WebHeader {
    /// The header's name.
    pub key: String,
    /// Its value.
    pub value: String,
}

/// A template argument or a run's argument value.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Argument {
    /// The name metrics refer to as `{{args.NAME}}`.
    pub name: String,
    /// The value (a default, in a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Where to read the value from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_from: Option<ValueFrom>,
}

/// `valueFrom` of an argument.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct ValueFrom {
    /// A key of a Secret in the run's namespace, read at each measurement (never stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_ref: Option<SecretKeyRef>,
    /// A field of the Rollout (`metadata.labels['app']`), resolved by the Rollout controller
    /// before it creates the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field_ref: Option<FieldRef>,
}

/// `valueFrom.secretKeyRef`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct SecretKeyRef {
    /// The Secret's name.
    pub name: String,
    /// The key.
    pub key: String,
}

/// `valueFrom.fieldRef`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct FieldRef {
    /// The field's path.
    pub field_path: String,
}

/// `status` of an `AnalysisRun`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRunStatus {
    /// The run's phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<RunPhase>,
    /// Why the run ended as it did (the metric and the limit it passed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// One result per metric that has started.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub metric_results: Vec<MetricResult>,
    /// When the run started (initial delays count from here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// How many metrics ended in which phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_summary: Option<RunSummary>,
    /// The same for the dry-run metrics.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run_summary: Option<RunSummary>,
}

/// `status.runSummary`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// Metrics in the run.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: i32,
    /// Metrics Successful.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub successful: i32,
    /// Metrics Failed.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: i32,
    /// Metrics Inconclusive.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inconclusive: i32,
    /// Metrics in Error.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub error: i32,
}

/// One metric's measurements and counters.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MetricResult {
    /// The metric's name.
    pub name: String,
    /// The metric's phase.
    pub phase: RunPhase,
    /// The latest measurements (at most [`super::MEASUREMENTS_KEPT`]).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub measurements: Vec<Measurement>,
    /// The last measurement's message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Measurements that were not errors.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub count: i32,
    /// Successful measurements.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub successful: i32,
    /// Failed measurements.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub failed: i32,
    /// Inconclusive measurements.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub inconclusive: i32,
    /// Error measurements.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub error: i32,
    /// Error measurements since the last one that was not.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub consecutive_error: i32,
    /// Details of the provider (the resolved query).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// A dry-run metric: its phase does not count towards the run's.
    #[serde(default, skip_serializing_if = "is_false")]
    pub dry_run: bool,
}

/// One measurement.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// Successful, Failed, Inconclusive or Error.
    pub phase: RunPhase,
    /// Why it is an Error (the provider's or the expression's message).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the query was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Time>,
    /// When the answer was evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<Time>,
    /// The value as text: `0.5` for a scalar, `[0.5,0.7]` for a vector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Provider details (Prometheus' warnings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
}
