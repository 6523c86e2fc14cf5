//! The pure rules of a run, as Argo Rollouts applies them: which metrics are due for a
//! measurement, what a measurement's phase is, what a metric's phase is given its counters and
//! limits, what the run's phase is, and when to look again.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use k8s_openapi::jiff::Timestamp;
use serde_json::Value as Json;

use super::RunPhase;
use super::expr::{Condition, Value};
use super::types::{
    AnalysisRunStatus, DryRun, Measurement, MeasurementRetention, Metric, MetricResult, RunSummary,
};

/// Errors in a row a metric tolerates unless it says otherwise (Argo Rollouts' default).
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i64 = 4;
/// Time before an Error measurement is retried when the metric has no interval.
pub(super) const ERROR_RETRY_INTERVAL: Duration = Duration::from_secs(10);
/// Measurements kept per metric (the oldest are dropped), as Argo Rollouts keeps them.
pub const MEASUREMENTS_KEPT: usize = 10;

/// A metric with its arguments substituted and its fields parsed.
#[derive(Debug, Clone)]
pub(super) struct ResolvedMetric {
    /// The metric's name.
    pub(super) name: String,
    /// Time between measurements.
    pub(super) interval: Option<Duration>,
    /// Time before the first measurement.
    pub(super) initial_delay: Option<Duration>,
    /// Measurements to take (errors do not count); `None` runs until the run ends.
    pub(super) count: Option<i64>,
    /// `successCondition`.
    pub(super) success: Option<Condition>,
    /// `failureCondition`.
    pub(super) failure: Option<Condition>,
    /// `failureLimit` (negative: no limit).
    pub(super) failure_limit: i64,
    /// `inconclusiveLimit` (negative: no limit).
    pub(super) inconclusive_limit: i64,
    /// `consecutiveErrorLimit`.
    pub(super) consecutive_error_limit: i64,
    /// A dry-run metric (`spec.dryRun`): measured, but its phase does not decide the run's.
    pub(super) dry_run: bool,
    /// Measurements kept (`spec.measurementRetention`).
    pub(super) keep: usize,
    /// The metric as substituted, for its provider.
    pub(super) metric: Metric,
}

/// Substitutes `{{args.NAME}}` in every string of `metric` and parses its fields. The error
/// names the field.
pub(super) fn resolve_metric(
    metric: &Metric,
    args: &BTreeMap<String, String>,
) -> Result<ResolvedMetric, String> {
    let mut json = serde_json::to_value(metric).map_err(|e| e.to_string())?;
    substitute(&mut json, args)?;
    let metric: Metric = serde_json::from_value(json).map_err(|e| e.to_string())?;
    let duration = |field: &str, v: &Option<String>| -> Result<Option<Duration>, String> {
        v.as_deref()
            .map(|s| parse_duration(s).map_err(|e| format!("{field} {s:?}: {e}")))
            .transpose()
    };
    let number = |field: &str, v: &Option<IntOrString>| -> Result<Option<i64>, String> {
        match v {
            None => Ok(None),
            Some(IntOrString::Int(n)) => Ok(Some(i64::from(*n))),
            Some(IntOrString::String(s)) => s
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| format!("{field} {s:?} is not a whole number")),
        }
    };
    let condition = |field: &str, v: &Option<String>| -> Result<Option<Condition>, String> {
        match v.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => Condition::parse(s)
                .map(Some)
                .map_err(|e| format!("{field}: {e}")),
        }
    };
    let count = number("count", &metric.count)?.filter(|n| *n != 0);
    if count.is_some_and(|n| n < 0) {
        return Err("count must not be negative".into());
    }
    Ok(ResolvedMetric {
        name: metric.name.clone(),
        interval: duration("interval", &metric.interval)?,
        initial_delay: duration("initialDelay", &metric.initial_delay)?,
        // Without an interval, one measurement (Argo Rollouts' effective count).
        count: match count {
            None if metric.interval.is_none() => Some(1),
            other => other,
        },
        success: condition("successCondition", &metric.success_condition)?,
        failure: condition("failureCondition", &metric.failure_condition)?,
        failure_limit: number("failureLimit", &metric.failure_limit)?.unwrap_or(0),
        inconclusive_limit: number("inconclusiveLimit", &metric.inconclusive_limit)?.unwrap_or(0),
        consecutive_error_limit: number("consecutiveErrorLimit", &metric.consecutive_error_limit)?
            .unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT),
        dry_run: false,
        keep: MEASUREMENTS_KEPT,
        metric,
    })
}

/// Applies the run's `dryRun` and `measurementRetention` to its metrics. A `metricName` is a
/// metric's name or a regular expression that matches whole names.
pub(super) fn apply_run_options(
    metrics: &mut [ResolvedMetric],
    dry_run: &[DryRun],
    retention: &[MeasurementRetention],
) -> Result<(), String> {
    let matcher = |field: &str, pattern: &str| {
        regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| format!("{field} metricName {pattern:?} is not a regular expression: {e}"))
    };
    for d in dry_run {
        let re = matcher("dryRun", &d.metric_name)?;
        metrics
            .iter_mut()
            .filter(|m| re.is_match(&m.name))
            .for_each(|m| m.dry_run = true);
    }
    for r in retention {
        let re = matcher("measurementRetention", &r.metric_name)?;
        if r.limit < 1 {
            return Err(format!(
                "measurementRetention limit {} of {:?} must be at least 1",
                r.limit, r.metric_name
            ));
        }
        metrics
            .iter_mut()
            .filter(|m| re.is_match(&m.name))
            .for_each(|m| m.keep = r.limit as usize);
    }
    Ok(())
}

/// The `{{args.NAME}}` references in `metric`'s strings.
pub(super) fn arg_references(metric: &Metric) -> Vec<String> {
    let mut out = Vec::new();
    let json = serde_json::to_value(metric).unwrap_or_default();
    collect_refs(&json, &mut out);
    out.sort();
    out.dedup();
    out
}

fn collect_refs(v: &Json, out: &mut Vec<String>) {
    match v {
        Json::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let Some(len) = rest[start..].find("}}") else {
                    break;
                };
                let tag = rest[start + 2..start + len].trim();
                if let Some(name) = tag.strip_prefix("args.") {
                    out.push(name.to_string());
                }
                rest = &rest[start + len + 2..];
            }
        }
        Json::Array(items) => items.iter().for_each(|i| collect_refs(i, out)),
        Json::Object(map) => map.values().for_each(|i| collect_refs(i, out)),
        _ => {}
    }
}

fn substitute(v: &mut Json, args: &BTreeMap<String, String>) -> Result<(), String> {
    match v {
        Json::String(s) => {
            if !s.contains("{{") {
                return Ok(());
            }
            let mut out = String::new();
            let mut rest = s.as_str();
            while let Some(start) = rest.find("{{") {
                let Some(len) = rest[start..].find("}}") else {
                    break;
                };
                out.push_str(&rest[..start]);
                let tag = rest[start + 2..start + len].trim();
                match tag.strip_prefix("args.") {
                    Some(name) => match args.get(name) {
                        Some(value) => out.push_str(value),
                        None => {
                            return Err(format!(
                                "{{{{args.{name}}}}} has no value: the run has no arg {name:?}"
                            ));
                        }
                    },
                    None => out.push_str(&rest[start..start + len + 2]),
                }
                rest = &rest[start + len + 2..];
            }
            out.push_str(rest);
            *s = out;
            Ok(())
        }
        Json::Array(items) => items.iter_mut().try_for_each(|i| substitute(i, args)),
        Json::Object(map) => map.values_mut().try_for_each(|i| substitute(i, args)),
        _ => Ok(()),
    }
}

/// Parses a Go duration (`30s`, `1m30s`, `500ms`, `1.5h`); `0` alone is zero.
pub(super) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    if s == "0" {
        return Ok(Duration::ZERO);
    }
    if s.is_empty() {
        return Err("empty duration".into());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| "a number without a unit (s, m, h, ms)".to_string())?;
        if num_len == 0 {
            return Err("expected a number such as 30s, 5m or 1h".into());
        }
        let n: f64 = rest[..num_len]
            .parse()
            .map_err(|_| format!("{:?} is not a number", &rest[..num_len]))?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let seconds = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => return Err(format!("unknown unit {other:?}; use ms, s, m or h")),
        };
        total += n * seconds;
        rest = &rest[unit_len..];
    }
    Duration::try_from_secs_f64(total).map_err(|e| e.to_string())
}

/// The phase of a measurement whose `result` came back, from the conditions (Argo Rollouts'
/// rules): no conditions → Successful; only a success condition → Failed when it is false; only a
/// failure condition → Successful when it is false; both → Failed when the failure condition
/// holds, Successful when only the success condition holds, Inconclusive when neither does. An
/// expression error is an Error.
pub(super) fn evaluate(metric: &ResolvedMetric, result: &Value) -> Result<RunPhase, String> {
    let success = match &metric.success {
        Some(c) => Some(
            c.eval(result)
                .map_err(|e| format!("successCondition: {e}"))?,
        ),
        None => None,
    };
    let failure = match &metric.failure {
        Some(c) => Some(
            c.eval(result)
                .map_err(|e| format!("failureCondition: {e}"))?,
        ),
        None => None,
    };
    Ok(match (success, failure) {
        (None, None) => RunPhase::Successful,
        (Some(s), None) => {
            if s {
                RunPhase::Successful
            } else {
                RunPhase::Failed
            }
        }
        (None, Some(f)) => {
            if f {
                RunPhase::Failed
            } else {
                RunPhase::Successful
            }
        }
        (Some(s), Some(f)) => {
            if f {
                RunPhase::Failed
            } else if s {
                RunPhase::Successful
            } else {
                RunPhase::Inconclusive
            }
        }
    })
}

fn finished_at(m: &Measurement) -> Option<Timestamp> {
    m.finished_at.as_ref().map(|t| t.0)
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d).unwrap_or(t)
}

/// Whether the run is ending: asked to (`spec.terminate`) or a metric (not a dry-run one)
/// already ended Failed, Error or Inconclusive.
pub(super) fn is_terminating(terminate: bool, status: &AnalysisRunStatus) -> bool {
    terminate
        || status.metric_results.iter().any(|r| {
            !r.dry_run
                && matches!(
                    r.phase,
                    RunPhase::Failed | RunPhase::Error | RunPhase::Inconclusive
                )
        })
}

fn result_of<'a>(status: &'a AnalysisRunStatus, name: &str) -> Option<&'a MetricResult> {
    status.metric_results.iter().find(|r| r.name == name)
}

/// The metrics (by index) whose next measurement is due at `now`.
pub(super) fn due_metrics(
    metrics: &[ResolvedMetric],
    status: &AnalysisRunStatus,
    terminate: bool,
    now: Timestamp,
) -> Vec<usize> {
    if is_terminating(terminate, status) {
        return Vec::new();
    }
    let started = status.started_at.as_ref().map_or(now, |t| t.0);
    let mut due = Vec::new();
    for (i, m) in metrics.iter().enumerate() {
        let result = result_of(status, &m.name);
        if result.is_some_and(|r| r.phase.is_completed()) {
            continue;
        }
        match result.and_then(|r| r.measurements.last()) {
            None => {
                if m.initial_delay.is_none_or(|d| add(started, d) <= now) {
                    due.push(i);
                }
            }
            Some(last) => {
                let r = result.expect("a result when there is a measurement");
                if m.count.is_some_and(|c| i64::from(r.count) >= c) {
                    continue;
                }
                let interval = m.interval.unwrap_or(ERROR_RETRY_INTERVAL);
                if finished_at(last).is_none_or(|f| add(f, interval) <= now) {
                    due.push(i);
                }
            }
        }
    }
    due
}

/// When the next measurement of any metric is due, from `now`; `None` when none is.
pub(super) fn next_due(
    metrics: &[ResolvedMetric],
    status: &AnalysisRunStatus,
    terminate: bool,
    now: Timestamp,
) -> Option<Duration> {
    if is_terminating(terminate, status) {
        return None;
    }
    let started = status.started_at.as_ref().map_or(now, |t| t.0);
    let mut next: Option<Timestamp> = None;
    for m in metrics {
        let result = result_of(status, &m.name);
        if result.is_some_and(|r| r.phase.is_completed()) {
            continue;
        }
        let at = match result.and_then(|r| r.measurements.last()) {
            None => add(started, m.initial_delay.unwrap_or_default()),
            Some(last) => {
                let r = result.expect("a result when there is a measurement");
                if m.count.is_some_and(|c| i64::from(r.count) >= c) {
                    continue;
                }
                let interval = m.interval.unwrap_or(ERROR_RETRY_INTERVAL);
                finished_at(last).map_or(now, |f| add(f, interval))
            }
        };
        next = Some(next.map_or(at, |n| n.min(at)));
    }
    next.map(|at| {
        let d = at.duration_since(now);
        Duration::try_from(d).unwrap_or(Duration::ZERO)
    })
}

/// Adds a finished measurement to a metric's result and counts it; keeps the last `keep`
/// measurements.
pub(super) fn record(result: &mut MetricResult, measurement: Measurement, keep: usize) {
    match measurement.phase {
        RunPhase::Successful => {
            result.successful += 1;
            result.count += 1;
            result.consecutive_error = 0;
        }
        RunPhase::Failed => {
            result.failed += 1;
            result.count += 1;
            result.consecutive_error = 0;
        }
        RunPhase::Inconclusive => {
            result.inconclusive += 1;
            result.count += 1;
            result.consecutive_error = 0;
        }
        RunPhase::Error => {
            result.error += 1;
            result.consecutive_error += 1;
        }
        RunPhase::Pending | RunPhase::Running => {}
    }
    result.message = measurement.message.clone();
    result.measurements.push(measurement);
    let extra = result.measurements.len().saturating_sub(keep.max(1));
    result.measurements.drain(..extra);
}

/// A metric's phase from its counters and limits, and the reason when it ended other than
/// Successful.
pub(super) fn assess_metric(
    m: &ResolvedMetric,
    r: &MetricResult,
    terminating: bool,
) -> (RunPhase, Option<String>) {
    if r.phase.is_completed() {
        let reason = limit_passed(m, r)
            .filter(|(p, _)| *p == r.phase)
            .map(|(_, why)| why);
        return (r.phase, reason);
    }
    if r.measurements.is_empty() {
        return if terminating {
            (RunPhase::Successful, None)
        } else {
            (RunPhase::Pending, None)
        };
    }
    if let Some((phase, why)) = limit_passed(m, r) {
        return (phase, Some(why));
    }
    if m.count.is_some_and(|c| i64::from(r.count) >= c) {
        return (RunPhase::Successful, None);
    }
    if terminating {
        return (RunPhase::Successful, None);
    }
    (RunPhase::Running, None)
}

/// The limit a metric's counters passed, if any: failures, then inconclusive measurements,
/// then errors in a row.
fn limit_passed(m: &ResolvedMetric, r: &MetricResult) -> Option<(RunPhase, String)> {
    let failed = i64::from(r.failed);
    if m.failure_limit >= 0 && failed > m.failure_limit {
        return Some((
            RunPhase::Failed,
            format!("failed ({failed}) > failureLimit ({})", m.failure_limit),
        ));
    }
    let inconclusive = i64::from(r.inconclusive);
    if m.inconclusive_limit >= 0 && inconclusive > m.inconclusive_limit {
        return Some((
            RunPhase::Inconclusive,
            format!(
                "inconclusive ({inconclusive}) > inconclusiveLimit ({})",
                m.inconclusive_limit
            ),
        ));
    }
    let errors = i64::from(r.consecutive_error);
    if errors > m.consecutive_error_limit {
        return Some((
            RunPhase::Error,
            format!(
                "consecutiveErrors ({errors}) > consecutiveErrorLimit ({})",
                m.consecutive_error_limit
            ),
        ));
    }
    None
}

fn severity(p: RunPhase) -> u8 {
    match p {
        RunPhase::Pending => 0,
        RunPhase::Running => 1,
        RunPhase::Successful => 2,
        RunPhase::Inconclusive => 3,
        RunPhase::Error => 4,
        RunPhase::Failed => 5,
    }
}

/// Updates each metric's phase and the run's summary, and gives the run's phase and message:
/// Running while a metric is, otherwise the worst phase of the metrics (Failed, then Error,
/// then Inconclusive, then Successful), with the reason of the metric that gave it.
pub(super) fn assess_run(
    metrics: &[ResolvedMetric],
    status: &mut AnalysisRunStatus,
    terminate: bool,
) -> (RunPhase, Option<String>) {
    let before = is_terminating(terminate, status);
    let assessed = assess_once(metrics, status, terminate, before);
    if !before && is_terminating(terminate, status) {
        // A metric has just ended the run: the others stop where they are.
        return assess_once(metrics, status, terminate, true);
    }
    assessed
}

fn assess_once(
    metrics: &[ResolvedMetric],
    status: &mut AnalysisRunStatus,
    terminate: bool,
    terminating: bool,
) -> (RunPhase, Option<String>) {
    let mut completed = true;
    let mut worst: Option<(RunPhase, Option<String>)> = None;
    let mut summary = RunSummary::default();
    let mut dry_summary = RunSummary::default();
    for m in metrics {
        let counts = if m.dry_run {
            &mut dry_summary
        } else {
            &mut summary
        };
        counts.count += 1;
        let Some(r) = status.metric_results.iter_mut().find(|r| r.name == m.name) else {
            if terminating {
                // Never measured and the run is ending: it does not count against the run.
                counts.successful += 1;
                continue;
            }
            completed = false;
            continue;
        };
        let (phase, reason) = assess_metric(m, r, terminating);
        r.phase = phase;
        r.dry_run = m.dry_run;
        match phase {
            RunPhase::Successful => counts.successful += 1,
            RunPhase::Failed => counts.failed += 1,
            RunPhase::Inconclusive => counts.inconclusive += 1,
            RunPhase::Error => counts.error += 1,
            RunPhase::Pending | RunPhase::Running => {}
        }
        if !phase.is_completed() {
            completed = false;
            continue;
        }
        if m.dry_run {
            continue;
        }
        if worst
            .as_ref()
            .is_none_or(|(w, _)| severity(phase) > severity(*w))
        {
            let message = reason.map(|reason| {
                let mut msg = format!("Metric {:?} assessed {phase} due to {reason}", m.name);
                if let Some(last) = r.message.as_deref().filter(|s| !s.is_empty()) {
                    msg.push_str(&format!(": \"Error Message: {last}\""));
                }
                msg
            });
            worst = Some((phase, message));
        }
    }
    status.run_summary = Some(summary);
    status.dry_run_summary = (dry_summary.count > 0).then_some(dry_summary);
    let terminated = || terminate.then(|| "Run Terminated".to_string());
    match worst {
        Some((phase, message)) if completed || terminating => (phase, message.or_else(terminated)),
        // Every metric a dry run, or the run ended before any measurement.
        None if completed || terminating => (RunPhase::Successful, terminated()),
        _ => (RunPhase::Running, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn metric(yaml: serde_json::Value) -> ResolvedMetric {
        let m: Metric = serde_json::from_value(yaml).unwrap();
        resolve_metric(&m, &BTreeMap::new()).unwrap()
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + secs).unwrap()
    }

    fn measurement(phase: RunPhase, finished: i64) -> Measurement {
        Measurement {
            phase,
            finished_at: Some(Time(at(finished))),
            started_at: Some(Time(at(finished))),
            ..Measurement::default()
        }
    }

    fn status_with(name: &str, phases: &[(RunPhase, i64)]) -> AnalysisRunStatus {
        let mut r = MetricResult {
            name: name.into(),
            phase: RunPhase::Running,
            ..MetricResult::default()
        };
        for (p, t) in phases {
            record(&mut r, measurement(*p, *t), MEASUREMENTS_KEPT);
        }
        AnalysisRunStatus {
            started_at: Some(Time(at(0))),
            metric_results: vec![r],
            ..AnalysisRunStatus::default()
        }
    }

    #[test]
    fn durations_are_go_durations() {
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "30", "5x", "m", "-1s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn args_are_substituted_and_a_missing_one_is_named() {
        let m: Metric = serde_json::from_value(serde_json::json!({
            "name": "rate", "interval": "{{args.every}}", "count": "{{ args.n }}",
            "provider": {"prometheus": {"address": "http://p:9090",
                "query": "sum(rate(x{svc=\"{{args.svc}}\"}[1m]))"}}
        }))
        .unwrap();
        assert_eq!(arg_references(&m), ["every", "n", "svc"]);
        let args: BTreeMap<String, String> = [("every", "5s"), ("n", "3"), ("svc", "web")]
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let r = resolve_metric(&m, &args).unwrap();
        assert_eq!(r.interval, Some(Duration::from_secs(5)));
        assert_eq!(r.count, Some(3));
        assert_eq!(
            r.metric.provider.prometheus.unwrap().query,
            "sum(rate(x{svc=\"web\"}[1m]))"
        );
        let mut partial = args.clone();
        partial.remove("svc");
        let e = resolve_metric(&m, &partial).unwrap_err();
        assert!(e.contains("{{args.svc}}"), "{e}");
    }

    #[test]
    fn bad_fields_are_named() {
        let cases = [
            (
                serde_json::json!({"name": "a", "interval": "5 minutes"}),
                "interval",
            ),
            (serde_json::json!({"name": "a", "count": "many"}), "count"),
            (
                serde_json::json!({"name": "a", "failureLimit": "x"}),
                "failureLimit",
            ),
            (
                serde_json::json!({"name": "a", "successCondition": "result <"}),
                "successCondition",
            ),
        ];
        for (json, field) in cases {
            let m: Metric = serde_json::from_value(json).unwrap();
            let e = resolve_metric(&m, &BTreeMap::new()).unwrap_err();
            assert!(e.starts_with(field), "{e}");
        }
    }

    #[test]
    fn measurement_phases_follow_the_conditions() {
        let both = metric(serde_json::json!({"name": "a",
            "successCondition": "result < 1", "failureCondition": "result > 2"}));
        assert_eq!(evaluate(&both, &Value::Num(0.5)), Ok(RunPhase::Successful));
        assert_eq!(evaluate(&both, &Value::Num(3.0)), Ok(RunPhase::Failed));
        assert_eq!(
            evaluate(&both, &Value::Num(1.5)),
            Ok(RunPhase::Inconclusive)
        );
        assert_eq!(
            evaluate(&both, &Value::Num(f64::NAN)),
            Ok(RunPhase::Inconclusive)
        );
        let success_only =
            metric(serde_json::json!({"name": "a", "successCondition": "result < 1"}));
        assert_eq!(
            evaluate(&success_only, &Value::Num(1.5)),
            Ok(RunPhase::Failed)
        );
        let failure_only =
            metric(serde_json::json!({"name": "a", "failureCondition": "result > 2"}));
        assert_eq!(
            evaluate(&failure_only, &Value::Num(1.5)),
            Ok(RunPhase::Successful)
        );
        let none = metric(serde_json::json!({"name": "a"}));
        assert_eq!(evaluate(&none, &Value::Num(9.0)), Ok(RunPhase::Successful));
        let e = evaluate(&success_only, &Value::List(vec![])).unwrap_err();
        assert!(
            e.starts_with("successCondition: expression \"result < 1\""),
            "{e}"
        );
    }

    #[test]
    fn defaults_are_argo_rollouts_defaults() {
        let m = metric(serde_json::json!({"name": "a"}));
        assert_eq!(m.failure_limit, 0);
        assert_eq!(m.inconclusive_limit, 0);
        assert_eq!(m.consecutive_error_limit, 4);
        assert_eq!(m.count, Some(1), "no interval: one measurement");
        let m = metric(serde_json::json!({"name": "a", "interval": "1s"}));
        assert_eq!(
            m.count, None,
            "an interval without a count runs until the run ends"
        );
    }

    #[test]
    fn a_metric_passes_at_its_count_and_fails_beyond_its_failure_limit() {
        let m = metric(
            serde_json::json!({"name": "a", "interval": "1s", "count": 3, "failureLimit": 1}),
        );
        let s = status_with("a", &[(RunPhase::Successful, 1), (RunPhase::Failed, 2)]);
        assert_eq!(
            assess_metric(&m, &s.metric_results[0], false).0,
            RunPhase::Running
        );
        let s = status_with(
            "a",
            &[
                (RunPhase::Successful, 1),
                (RunPhase::Failed, 2),
                (RunPhase::Successful, 3),
            ],
        );
        assert_eq!(
            assess_metric(&m, &s.metric_results[0], false).0,
            RunPhase::Successful
        );
        let s = status_with("a", &[(RunPhase::Failed, 1), (RunPhase::Failed, 2)]);
        let (phase, why) = assess_metric(&m, &s.metric_results[0], false);
        assert_eq!(phase, RunPhase::Failed);
        assert_eq!(why.unwrap(), "failed (2) > failureLimit (1)");
    }

    #[test]
    fn errors_do_not_count_and_too_many_in_a_row_end_in_error() {
        let m = metric(
            serde_json::json!({"name": "a", "interval": "1s", "count": 2,
            "consecutiveErrorLimit": 2}),
        );
        let s = status_with(
            "a",
            &[
                (RunPhase::Error, 1),
                (RunPhase::Successful, 2),
                (RunPhase::Error, 3),
                (RunPhase::Error, 4),
            ],
        );
        let r = &s.metric_results[0];
        assert_eq!((r.count, r.error, r.consecutive_error), (1, 3, 2));
        assert_eq!(assess_metric(&m, r, false).0, RunPhase::Running);
        let s = status_with(
            "a",
            &[
                (RunPhase::Error, 1),
                (RunPhase::Error, 2),
                (RunPhase::Error, 3),
            ],
        );
        let (phase, why) = assess_metric(&m, &s.metric_results[0], false);
        assert_eq!(phase, RunPhase::Error);
        assert_eq!(
            why.unwrap(),
            "consecutiveErrors (3) > consecutiveErrorLimit (2)"
        );
    }

    #[test]
    fn a_negative_limit_means_no_limit() {
        let m = metric(serde_json::json!({"name": "a", "interval": "1s", "failureLimit": -1}));
        let s = status_with("a", &[(RunPhase::Failed, 1), (RunPhase::Failed, 2)]);
        assert_eq!(
            assess_metric(&m, &s.metric_results[0], false).0,
            RunPhase::Running
        );
    }

    #[test]
    fn measurements_are_due_after_the_initial_delay_and_each_interval() {
        let ms = [metric(
            serde_json::json!({"name": "a", "interval": "5s", "count": 2,
            "initialDelay": "10s"}),
        )];
        let empty = AnalysisRunStatus {
            started_at: Some(Time(at(0))),
            ..AnalysisRunStatus::default()
        };
        assert!(due_metrics(&ms, &empty, false, at(9)).is_empty());
        assert_eq!(
            next_due(&ms, &empty, false, at(4)),
            Some(Duration::from_secs(6))
        );
        assert_eq!(due_metrics(&ms, &empty, false, at(10)), [0]);
        let one = status_with("a", &[(RunPhase::Successful, 10)]);
        assert!(due_metrics(&ms, &one, false, at(14)).is_empty());
        assert_eq!(
            next_due(&ms, &one, false, at(14)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(due_metrics(&ms, &one, false, at(15)), [0]);
        let two = status_with(
            "a",
            &[(RunPhase::Successful, 10), (RunPhase::Successful, 15)],
        );
        assert!(
            due_metrics(&ms, &two, false, at(100)).is_empty(),
            "count reached"
        );
        assert_eq!(next_due(&ms, &two, false, at(100)), None);
        assert!(
            due_metrics(&ms, &one, true, at(100)).is_empty(),
            "terminating"
        );
    }

    #[test]
    fn an_error_without_interval_is_retried_after_ten_seconds() {
        let ms = [metric(serde_json::json!({"name": "a"}))];
        let s = status_with("a", &[(RunPhase::Error, 0)]);
        assert!(due_metrics(&ms, &s, false, at(9)).is_empty());
        assert_eq!(due_metrics(&ms, &s, false, at(10)), [0]);
    }

    #[test]
    fn the_run_takes_the_worst_phase_and_says_why() {
        let ms = [
            metric(serde_json::json!({"name": "a"})),
            metric(serde_json::json!({"name": "b", "interval": "1s"})),
        ];
        let mut s = status_with("a", &[(RunPhase::Successful, 1)]);
        assert_eq!(
            assess_run(&ms, &mut s, false).0,
            RunPhase::Running,
            "b has not started"
        );
        let mut b = MetricResult {
            name: "b".into(),
            phase: RunPhase::Running,
            ..MetricResult::default()
        };
        let mut failed = measurement(RunPhase::Error, 1);
        failed.message = Some("no answer".into());
        for _ in 0..5 {
            record(&mut b, failed.clone(), MEASUREMENTS_KEPT);
        }
        s.metric_results.push(b);
        let (phase, message) = assess_run(&ms, &mut s, false);
        assert_eq!(phase, RunPhase::Error);
        assert_eq!(
            message.unwrap(),
            "Metric \"b\" assessed Error due to consecutiveErrors (5) > consecutiveErrorLimit (4): \"Error Message: no answer\""
        );
        let summary = s.run_summary.unwrap();
        assert_eq!(
            (summary.count, summary.successful, summary.error),
            (2, 1, 1)
        );
    }

    #[test]
    fn a_failed_metric_ends_the_run_while_others_still_run() {
        let ms = [
            metric(serde_json::json!({"name": "a", "interval": "1s"})),
            metric(serde_json::json!({"name": "b", "interval": "1s", "initialDelay": "1h"})),
        ];
        let mut s = status_with("a", &[(RunPhase::Failed, 1)]);
        // a is Failed: the run is ending, and b, never measured, does not hold it.
        let (phase, message) = assess_run(&ms, &mut s, false);
        assert_eq!(phase, RunPhase::Failed);
        assert_eq!(
            message.unwrap(),
            "Metric \"a\" assessed Failed due to failed (1) > failureLimit (0)"
        );
    }

    #[test]
    fn a_terminated_run_ends_successful_with_what_it_has() {
        let ms = [metric(serde_json::json!({"name": "a", "interval": "1s"}))];
        let mut s = status_with("a", &[(RunPhase::Successful, 1)]);
        assert_eq!(assess_run(&ms, &mut s, false).0, RunPhase::Running);
        let (phase, message) = assess_run(&ms, &mut s, true);
        assert_eq!(phase, RunPhase::Successful);
        assert_eq!(message.as_deref(), Some("Run Terminated"));
        let mut empty = AnalysisRunStatus::default();
        assert_eq!(assess_run(&ms, &mut empty, true).0, RunPhase::Successful);
    }

    #[test]
    fn only_the_last_measurements_are_kept() {
        let mut r = MetricResult::default();
        for i in 0..15 {
            record(
                &mut r,
                measurement(RunPhase::Successful, i),
                MEASUREMENTS_KEPT,
            );
        }
        assert_eq!(r.measurements.len(), MEASUREMENTS_KEPT);
        assert_eq!(r.count, 15);
        assert_eq!(finished_at(&r.measurements[0]), Some(at(5)));
    }

    #[test]
    fn a_dry_run_metric_is_measured_but_does_not_decide_the_run() {
        let mut ms = [
            metric(serde_json::json!({"name": "errors"})),
            metric(serde_json::json!({"name": "latency-p99"})),
        ];
        apply_run_options(
            &mut ms,
            &[DryRun {
                metric_name: "latency-.*".into(),
            }],
            &[MeasurementRetention {
                metric_name: "errors".into(),
                limit: 2,
            }],
        )
        .unwrap();
        assert_eq!((ms[0].dry_run, ms[1].dry_run), (false, true));
        assert_eq!((ms[0].keep, ms[1].keep), (2, MEASUREMENTS_KEPT));
        let mut s = status_with("errors", &[(RunPhase::Successful, 1)]);
        let mut latency = MetricResult {
            name: "latency-p99".into(),
            phase: RunPhase::Running,
            ..MetricResult::default()
        };
        record(
            &mut latency,
            measurement(RunPhase::Failed, 1),
            MEASUREMENTS_KEPT,
        );
        s.metric_results.push(latency);
        let (phase, message) = assess_run(&ms, &mut s, false);
        assert_eq!((phase, message), (RunPhase::Successful, None));
        assert_eq!(s.metric_results[1].phase, RunPhase::Failed);
        assert!(s.metric_results[1].dry_run);
        assert_eq!(s.dry_run_summary.as_ref().unwrap().failed, 1);
        assert_eq!(s.run_summary.as_ref().unwrap().successful, 1);
        // Names match whole: "errors" is not a dry run because of a pattern "error".
        let mut ms = [metric(serde_json::json!({"name": "errors"}))];
        apply_run_options(
            &mut ms,
            &[DryRun {
                metric_name: "error".into(),
            }],
            &[],
        )
        .unwrap();
        assert!(!ms[0].dry_run);
        let e = apply_run_options(
            &mut ms,
            &[DryRun {
                metric_name: "(".into(),
            }],
            &[],
        )
        .unwrap_err();
        assert!(e.starts_with("dryRun metricName \"(\""), "{e}");
    }
}
