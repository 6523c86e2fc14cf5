//! Analysis: `AnalysisTemplate`s and `ClusterAnalysisTemplate`s turned into `AnalysisRun`s,
//! their measurements taken from Prometheus, and their conditions evaluated.
//!
//! The Rollout controller drives a run with three calls:
//!
//! - [`ensure_run`] creates the `AnalysisRun` from its templates and args (once; a run that
//!   exists is left as it is);
//! - [`advance`] takes the measurements that are due, applies the metrics' limits, writes the
//!   run's status and says when to come back ([`RunOutcome::next_in`]);
//! - [`terminate`] stops a run: it ends with what it has measured.
//!
//! Everything needed to continue lives in the run's status (measurements with their times,
//! counters), so a restarted ferry goes on where it stopped. The rules (which metric is due, what
//! a measurement, a metric and the run come to) are pure code in `assess`; the expression
//! language of the conditions is in [`expr`]; the Prometheus provider in `prometheus`.

mod assess;
pub mod expr;
mod prometheus;
mod template;
pub mod types;

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde::{Deserialize, Serialize};

pub use assess::{DEFAULT_CONSECUTIVE_ERROR_LIMIT, MEASUREMENTS_KEPT};
use assess::{
    ResolvedMetric, apply_run_options, assess_run, due_metrics, evaluate, next_due, record,
    resolve_metric,
};
use template::{NamedTemplate, build_run_spec};
pub use types::{
    AnalysisRun, AnalysisRunSpec, AnalysisRunStatus, AnalysisTemplate, AnalysisTemplateSpec,
    ClusterAnalysisTemplate, Measurement, Metric, MetricResult,
};

/// The phase of a run, a metric or a measurement, as Argo Rollouts names it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunPhase {
    /// Not started.
    #[default]
    Pending,
    /// Measuring.
    Running,
    /// Every metric passed.
    Successful,
    /// A metric failed more often than its `failureLimit`.
    Failed,
    /// A metric was inconclusive more often than its `inconclusiveLimit`.
    Inconclusive,
    /// A metric could not be measured more often in a row than its `consecutiveErrorLimit`, or
    /// the run itself is invalid.
    Error,
}

impl RunPhase {
    /// Whether the phase is final.
    pub fn is_completed(self) -> bool {
        !matches!(self, RunPhase::Pending | RunPhase::Running)
    }
}

impl fmt::Display for RunPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            RunPhase::Pending => "Pending",
            RunPhase::Running => "Running",
            RunPhase::Successful => "Successful",
            RunPhase::Failed => "Failed",
            RunPhase::Inconclusive => "Inconclusive",
            RunPhase::Error => "Error",
        })
    }
}

/// A template a run is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateRef {
    /// The template's name.
    pub template_name: String,
    /// A `ClusterAnalysisTemplate` (otherwise an `AnalysisTemplate` in the run's namespace).
    pub cluster_scope: bool,
}

/// A value for one of the templates' args.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The arg's name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// What [`ensure_run`] creates.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// The run's namespace (and the namespace of its `AnalysisTemplate`s).
    pub namespace: String,
    /// The `AnalysisRun`'s name.
    pub name: String,
    /// The run's owner (the Rollout), so that the run goes with it.
    pub owner: OwnerReference,
    /// The templates, merged in this order.
    pub templates: Vec<TemplateRef>,
    /// Values for the templates' args (args no template declares are ignored, as in Argo
    /// Rollouts).
    pub args: Vec<Arg>,
    /// Labels of the run.
    pub labels: BTreeMap<String, String>,
}

/// Where a run stands after [`advance`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// The run's phase.
    pub phase: RunPhase,
    /// Why it ended as it did (`Metric "errors" assessed Failed due to failed (1) > failureLimit (0)`).
    pub message: Option<String>,
    /// When the next measurement is due; `None` when the run has ended.
    pub next_in: Option<Duration>,
}

/// What went wrong with a run (not with a measurement: those are in the run's status).
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// A template does not exist.
    #[error("{kind} {name:?} not found{}: create it, or fix the name the Rollout's analysis refers to", namespace.as_ref().map(|n| format!(" in namespace {n:?}")).unwrap_or_default())]
    TemplateNotFound {
        /// `AnalysisTemplate` or `ClusterAnalysisTemplate`.
        kind: &'static str,
        /// The name asked for.
        name: String,
        /// The namespace looked in (none for a `ClusterAnalysisTemplate`).
        namespace: Option<String>,
    },
    /// An arg has no value: the template declares none and the caller gives none.
    #[error(
        "args.{arg} was not resolved: {template} declares it without a value and the Rollout passes none; pass it in the Rollout's analysis args or give it a value in the template"
    )]
    MissingArg {
        /// The arg.
        arg: String,
        /// The template that declares it.
        template: String,
    },
    /// A metric refers to an arg no template declares.
    #[error(
        "metric {metric:?} of {template} uses {{{{args.{arg}}}}}, which no template declares: add {arg:?} to the template's args"
    )]
    UndeclaredArg {
        /// The arg.
        arg: String,
        /// The metric.
        metric: String,
        /// The template.
        template: String,
    },
    /// Two templates have a metric of the same name.
    #[error(
        "two metrics are named {metric:?} ({first} and {second}): a run's metric names must be unique"
    )]
    DuplicateMetric {
        /// The name.
        metric: String,
        /// The first template.
        first: String,
        /// The second.
        second: String,
    },
    /// Two templates give an arg different values.
    #[error("arg {arg:?} has different values in {first} and {second}")]
    ConflictingArg {
        /// The arg.
        arg: String,
        /// The first template.
        first: String,
        /// The second.
        second: String,
    },
    /// A run needs at least one template.
    #[error("an analysis needs at least one template")]
    NoTemplates,
    /// The run does not exist.
    #[error("AnalysisRun {name:?} not found in namespace {namespace:?}")]
    RunNotFound {
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
    },
    /// The Kubernetes API refused or failed a request.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done, to which object.
        action: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
}

impl AnalysisError {
    /// Whether another writer changed the run first (try again).
    pub fn is_conflict(&self) -> bool {
        matches!(self, AnalysisError::Kube { source: kube::Error::Api(s), .. } if s.code == 409)
    }
}

fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> AnalysisError {
    let action = action.into();
    move |source| AnalysisError::Kube { action, source }
}

/// Creates the `AnalysisRun` from its templates and args if it does not exist (merging several
/// templates as Argo Rollouts does); an unknown template or a missing arg is an error naming it.
pub async fn ensure_run(kube: &kube::Client, req: &RunRequest) -> Result<(), AnalysisError> {
    let runs: Api<AnalysisRun> = Api::namespaced(kube.clone(), &req.namespace);
    let shown_run = format!("AnalysisRun {}/{}", req.namespace, req.name);
    if runs
        .get_opt(&req.name)
        .await
        .map_err(kube_err(format!("reading {shown_run}")))?
        .is_some()
    {
        return Ok(());
    }
    let mut templates = Vec::new();
    for t in &req.templates {
        templates.push(read_template(kube, &req.namespace, t).await?);
    }
    let spec = build_run_spec(&templates, &req.args)?;
    let run = AnalysisRun {
        metadata: ObjectMeta {
            name: Some(req.name.clone()),
            namespace: Some(req.namespace.clone()),
            labels: (!req.labels.is_empty()).then(|| req.labels.clone()),
            owner_references: Some(vec![req.owner.clone()]),
            ..ObjectMeta::default()
        },
        spec,
        status: None,
    };
    match runs.create(&PostParams::default(), &run).await {
        Ok(_) => Ok(()),
        // Created meanwhile (by another replica or an earlier attempt): it stands.
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(kube_err(format!("creating {shown_run}"))(e)),
    }
}

async fn read_template(
    kube: &kube::Client,
    namespace: &str,
    t: &TemplateRef,
) -> Result<NamedTemplate, AnalysisError> {
    if t.cluster_scope {
        let api: Api<ClusterAnalysisTemplate> = Api::all(kube.clone());
        let found = api
            .get_opt(&t.template_name)
            .await
            .map_err(kube_err(format!(
                "reading ClusterAnalysisTemplate {:?}",
                t.template_name
            )))?
            .ok_or_else(|| AnalysisError::TemplateNotFound {
                kind: "ClusterAnalysisTemplate",
                name: t.template_name.clone(),
                namespace: None,
            })?;
        Ok(NamedTemplate {
            shown: format!("ClusterAnalysisTemplate {:?}", t.template_name),
            spec: found.spec.template,
        })
    } else {
        let api: Api<AnalysisTemplate> = Api::namespaced(kube.clone(), namespace);
        let found = api
            .get_opt(&t.template_name)
            .await
            .map_err(kube_err(format!(
                "reading AnalysisTemplate {namespace}/{}",
                t.template_name
            )))?
            .ok_or_else(|| AnalysisError::TemplateNotFound {
                kind: "AnalysisTemplate",
                name: t.template_name.clone(),
                namespace: Some(namespace.to_string()),
            })?;
        Ok(NamedTemplate {
            shown: format!("AnalysisTemplate {:?}", t.template_name),
            spec: found.spec,
        })
    }
}

/// Takes the measurements that are due (interval, count, initialDelay), evaluates
/// successCondition/failureCondition, applies failureLimit/inconclusiveLimit/consecutiveErrorLimit,
/// writes the AnalysisRun's status (metricResults with measurements, phase, message) and says
/// when to come back.
///
/// A run changed by another writer meanwhile gives an error for which
/// [`AnalysisError::is_conflict`] is true: call again.
pub async fn advance(
    kube: &kube::Client,
    http: &ferry_http::Client,
    namespace: &str,
    name: &str,
) -> Result<RunOutcome, AnalysisError> {
    step(kube, Some(http), namespace, name).await
}

/// Stops a run: no more measurements; it ends with what it has (Successful unless a metric had
/// already passed a limit), its message `Run Terminated`.
pub async fn terminate(
    kube: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<(), AnalysisError> {
    let runs: Api<AnalysisRun> = Api::namespaced(kube.clone(), namespace);
    runs.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"spec": {"terminate": true}})),
    )
    .await
    .map_err(|e| match e {
        kube::Error::Api(s) if s.code == 404 => AnalysisError::RunNotFound {
            namespace: namespace.into(),
            name: name.into(),
        },
        e => kube_err(format!("terminating AnalysisRun {namespace}/{name}"))(e),
    })?;
    let mut attempts = 0;
    loop {
        match step(kube, None, namespace, name).await {
            Err(e) if e.is_conflict() && attempts < 5 => attempts += 1,
            other => return other.map(|_| ()),
        }
    }
}

/// One reconcile of a run; without `http` no measurement is taken (terminating).
async fn step(
    kube: &kube::Client,
    http: Option<&ferry_http::Client>,
    namespace: &str,
    name: &str,
) -> Result<RunOutcome, AnalysisError> {
    let runs: Api<AnalysisRun> = Api::namespaced(kube.clone(), namespace);
    let shown_run = format!("AnalysisRun {namespace}/{name}");
    let mut run = runs
        .get_opt(name)
        .await
        .map_err(kube_err(format!("reading {shown_run}")))?
        .ok_or_else(|| AnalysisError::RunNotFound {
            namespace: namespace.into(),
            name: name.into(),
        })?;
    let before = run.status.clone();
    let mut status = run.status.take().unwrap_or_default();
    if let Some(phase) = status.phase.filter(|p| p.is_completed()) {
        return Ok(RunOutcome {
            phase,
            message: status.message.clone(),
            next_in: None,
        });
    }
    let now = Timestamp::now();
    status.started_at.get_or_insert(Time(now));
    let terminate = run.spec.terminate;

    let (args, secrets) = match resolve_args(kube, namespace, &run.spec.args).await {
        Ok(resolved) => resolved,
        // The API server could not be asked: the run stays as it is; the caller tries again.
        Err(ArgProblem::Transient(e)) => return Err(e),
        Err(ArgProblem::Invalid(why)) => {
            let message = format!("Unable to resolve metric arguments: {why}");
            return write_end(&runs, run, status, message).await;
        }
    };
    let metrics: Result<Vec<ResolvedMetric>, String> = run
        .spec
        .metrics
        .iter()
        .map(|m| resolve_metric(m, &args).map_err(|e| format!("metric {:?}: {e}", m.name)))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|mut metrics| {
            apply_run_options(
                &mut metrics,
                &run.spec.dry_run,
                &run.spec.measurement_retention,
            )?;
            Ok(metrics)
        });
    let metrics = match metrics {
        Ok(m) => m,
        Err(why) => {
            let message = format!("Analysis spec invalid: {}", redact(&why, &secrets));
            return write_end(&runs, run, status, message).await;
        }
    };

    if let Some(http) = http {
        // The metrics that are due are measured at the same time.
        let due = due_metrics(&metrics, &status, terminate, now);
        let taken =
            futures::future::join_all(due.iter().map(|&i| measure(http, &metrics[i]))).await;
        for (i, mut measurement) in due.into_iter().zip(taken) {
            let m = &metrics[i];
            measurement.message = measurement.message.map(|s| redact(&s, &secrets));
            let position = status.metric_results.iter().position(|r| r.name == m.name);
            let result = match position {
                Some(p) => &mut status.metric_results[p],
                None => {
                    status.metric_results.push(MetricResult {
                        name: m.name.clone(),
                        phase: RunPhase::Running,
                        dry_run: m.dry_run,
                        metadata: resolved_query(m).map(|q| {
                            BTreeMap::from([(
                                "ResolvedPrometheusQuery".to_string(),
                                redact(&q, &secrets),
                            )])
                        }),
                        ..MetricResult::default()
                    });
                    status.metric_results.last_mut().expect("just pushed")
                }
            };
            record(result, measurement, m.keep);
        }
    }
    let (phase, message) = assess_run(&metrics, &mut status, terminate);
    status.phase = Some(phase);
    status.message = message.clone();
    let status = if before.as_ref() == Some(&status) {
        // Nothing was due and nothing changed: no write.
        status
    } else {
        run.status = Some(status);
        let written = write_status(&runs, &run, &shown_run).await?;
        written.status.unwrap_or_default()
    };
    let next_in = if phase.is_completed() {
        None
    } else {
        next_due(&metrics, &status, terminate, Timestamp::now())
    };
    Ok(RunOutcome {
        phase,
        message,
        next_in,
    })
}

/// Ends the run in Error with `message` (an invalid spec or args that cannot be resolved).
async fn write_end(
    runs: &Api<AnalysisRun>,
    mut run: AnalysisRun,
    mut status: AnalysisRunStatus,
    message: String,
) -> Result<RunOutcome, AnalysisError> {
    let shown_run = format!(
        "AnalysisRun {}/{}",
        run.metadata.namespace.as_deref().unwrap_or_default(),
        run.metadata.name.as_deref().unwrap_or_default()
    );
    status.phase = Some(RunPhase::Error);
    status.message = Some(message.clone());
    run.status = Some(status);
    write_status(runs, &run, &shown_run).await?;
    Ok(RunOutcome {
        phase: RunPhase::Error,
        message: Some(message),
        next_in: None,
    })
}

/// Writes the status with the resourceVersion read, so that two writers cannot both record a
/// measurement.
async fn write_status(
    runs: &Api<AnalysisRun>,
    run: &AnalysisRun,
    shown_run: &str,
) -> Result<AnalysisRun, AnalysisError> {
    let name = run.metadata.name.clone().unwrap_or_default();
    runs.replace_status(&name, &PostParams::default(), run)
        .await
        .map_err(kube_err(format!("writing the status of {shown_run}")))
}

fn resolved_query(m: &ResolvedMetric) -> Option<String> {
    m.metric
        .provider
        .prometheus
        .as_ref()
        .map(|p| p.query.clone())
}

fn redact(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), "*****");
    }
    out
}

/// Why args could not be resolved.
enum ArgProblem {
    /// The run cannot go on (a missing Secret or key, an arg without a value).
    Invalid(String),
    /// Reading a Secret failed; it may work next time.
    Transient(AnalysisError),
}

impl From<String> for ArgProblem {
    fn from(why: String) -> Self {
        ArgProblem::Invalid(why)
    }
}

/// The args' values, reading `valueFrom.secretKeyRef` from the run's namespace (the secret
/// values are returned too, to keep them out of messages).
async fn resolve_args(
    kube: &kube::Client,
    namespace: &str,
    args: &[types::Argument],
) -> Result<(BTreeMap<String, String>, Vec<String>), ArgProblem> {
    let mut values = BTreeMap::new();
    let mut secrets = Vec::new();
    for a in args {
        let value = match (&a.value, &a.value_from) {
            (Some(_), Some(_)) => {
                return Err(ArgProblem::Invalid(format!(
                    "arg {:?} has both value and valueFrom",
                    a.name
                )));
            }
            (Some(v), None) => v.clone(),
            (None, Some(from)) => match (&from.secret_key_ref, &from.field_ref) {
                (Some(r), _) => {
                    let api: Api<Secret> = Api::namespaced(kube.clone(), namespace);
                    let secret = api
                        .get_opt(&r.name)
                        .await
                        .map_err(|e| {
                            ArgProblem::Transient(kube_err(format!(
                                "arg {:?}: reading Secret {namespace}/{}",
                                a.name, r.name
                            ))(e))
                        })?
                        .ok_or_else(|| {
                            format!("arg {:?}: Secret {namespace}/{} not found", a.name, r.name)
                        })?;
                    let bytes = secret
                        .data
                        .as_ref()
                        .and_then(|d| d.get(&r.key))
                        .ok_or_else(|| {
                            format!(
                                "arg {:?}: Secret {namespace}/{} has no key {:?}",
                                a.name, r.name, r.key
                            )
                        })?;
                    let value = String::from_utf8(bytes.0.clone()).map_err(|_| {
                        format!(
                            "arg {:?}: key {:?} of Secret {namespace}/{} is not UTF-8 text",
                            a.name, r.key, r.name
                        )
                    })?;
                    secrets.push(value.clone());
                    value
                }
                (None, Some(f)) => {
                    return Err(ArgProblem::Invalid(format!(
                        "arg {:?}: valueFrom.fieldRef {:?} is resolved by the Rollout that creates the run, and this run has none resolved",
                        a.name, f.field_path
                    )));
                }
                (None, None) => {
                    return Err(ArgProblem::Invalid(format!(
                        "arg {:?}: valueFrom names no secretKeyRef",
                        a.name
                    )));
                }
            },
            (None, None) => {
                return Err(ArgProblem::Invalid(format!(
                    "args.{} was not resolved",
                    a.name
                )));
            }
        };
        values.insert(a.name.clone(), value);
    }
    Ok((values, secrets))
}

/// Takes one measurement of `m`.
async fn measure(http: &ferry_http::Client, m: &ResolvedMetric) -> Measurement {
    let started = Timestamp::now();
    let mut measurement = Measurement {
        started_at: Some(Time(started)),
        ..Measurement::default()
    };
    match &m.metric.provider.prometheus {
        Some(p) => match prometheus::query(http, p).await {
            Ok(answer) => {
                measurement.value = Some(answer.shown.clone());
                if !answer.warnings.is_empty() {
                    measurement.metadata = Some(BTreeMap::from([(
                        "warnings".to_string(),
                        answer.warnings.join(", "),
                    )]));
                }
                match evaluate(m, &answer.result) {
                    Ok(phase) => measurement.phase = phase,
                    Err(e) => {
                        measurement.phase = RunPhase::Error;
                        measurement.message = Some(e);
                    }
                }
            }
            Err(e) => {
                measurement.phase = RunPhase::Error;
                measurement.message = Some(e);
            }
        },
        None => {
            let others: Vec<&str> = m.metric.provider.rest.keys().map(String::as_str).collect();
            measurement.phase = RunPhase::Error;
            measurement.message = Some(if others.is_empty() {
                "the metric has no provider: ferry measures with provider.prometheus".to_string()
            } else {
                format!(
                    "provider {} is not supported by ferry: ferry measures with provider.prometheus",
                    others.join(", ")
                )
            });
        }
    }
    measurement.finished_at = Some(Time(Timestamp::now()));
    measurement
}
