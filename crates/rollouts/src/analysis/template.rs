//! An `AnalysisRun`'s spec from its templates and the caller's args, merged as Argo Rollouts
//! merges them: the metrics of all templates (names unique), their args (one value per name),
//! the caller's values over the templates' defaults; every arg resolved and every
//! `{{args.NAME}}` declared.

use std::collections::BTreeMap;

use serde_json::Value;

use super::AnalysisError;
use super::Arg;
use super::assess::arg_references;
use super::types::{AnalysisRunSpec, AnalysisTemplateSpec, Argument};

/// A template as read, with the name messages give it (`AnalysisTemplate "x"`).
#[derive(Debug, Clone)]
pub(super) struct NamedTemplate {
    /// `AnalysisTemplate "name"` or `ClusterAnalysisTemplate "name"`.
    pub(super) shown: String,
    /// Its spec.
    pub(super) spec: AnalysisTemplateSpec,
}

/// The run's spec from `templates` and `args`.
pub(super) fn build_run_spec(
    templates: &[NamedTemplate],
    args: &[Arg],
) -> Result<AnalysisRunSpec, AnalysisError> {
    if templates.is_empty() {
        return Err(AnalysisError::NoTemplates);
    }
    let mut metrics = Vec::new();
    let mut metric_owner: BTreeMap<String, &str> = BTreeMap::new();
    let mut merged_args: Vec<Argument> = Vec::new();
    let mut arg_owner: BTreeMap<String, &str> = BTreeMap::new();
    let mut rest: BTreeMap<String, Value> = BTreeMap::new();
    let mut dry_run = Vec::new();
    let mut retention = Vec::new();
    for t in templates {
        for m in &t.spec.metrics {
            if let Some(first) = metric_owner.get(&m.name) {
                return Err(AnalysisError::DuplicateMetric {
                    metric: m.name.clone(),
                    first: (*first).to_string(),
                    second: t.shown.clone(),
                });
            }
            metric_owner.insert(m.name.clone(), &t.shown);
            metrics.push(m.clone());
        }
        for a in &t.spec.args {
            match merged_args.iter_mut().find(|m| m.name == a.name) {
                Some(existing) => {
                    if let (Some(x), Some(y)) = (&existing.value, &a.value)
                        && x != y
                    {
                        return Err(AnalysisError::ConflictingArg {
                            arg: a.name.clone(),
                            first: arg_owner[&a.name].to_string(),
                            second: t.shown.clone(),
                        });
                    }
                    if existing.value.is_none() && existing.value_from.is_none() {
                        existing.value = a.value.clone();
                        existing.value_from = a.value_from.clone();
                    }
                }
                None => {
                    arg_owner.insert(a.name.clone(), &t.shown);
                    merged_args.push(a.clone());
                }
            }
        }
        dry_run.extend(t.spec.dry_run.iter().cloned());
        retention.extend(t.spec.measurement_retention.iter().cloned());
        for (key, value) in &t.spec.rest {
            match (rest.get_mut(key), value) {
                (Some(Value::Array(have)), Value::Array(more)) => have.extend(more.iter().cloned()),
                (Some(_), _) => {}
                (None, _) => {
                    rest.insert(key.clone(), value.clone());
                }
            }
        }
    }
    for given in args {
        if let Some(a) = merged_args.iter_mut().find(|a| a.name == given.name) {
            a.value = Some(given.value.clone());
            a.value_from = None;
        }
    }
    for a in &merged_args {
        if a.value.is_none() && a.value_from.is_none() {
            return Err(AnalysisError::MissingArg {
                arg: a.name.clone(),
                template: arg_owner[&a.name].to_string(),
            });
        }
    }
    for m in &metrics {
        for r in arg_references(m) {
            if !merged_args.iter().any(|a| a.name == r) {
                return Err(AnalysisError::UndeclaredArg {
                    arg: r,
                    metric: m.name.clone(),
                    template: metric_owner[&m.name].to_string(),
                });
            }
        }
    }
    Ok(AnalysisRunSpec {
        metrics,
        args: merged_args,
        terminate: false,
        dry_run,
        measurement_retention: retention,
        rest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn template(shown: &str, spec: Value) -> NamedTemplate {
        NamedTemplate {
            shown: shown.into(),
            spec: serde_json::from_value(spec).unwrap(),
        }
    }

    fn arg(name: &str, value: &str) -> Arg {
        Arg {
            name: name.into(),
            value: value.into(),
        }
    }

    fn metric(name: &str, query: &str) -> Value {
        json!({"name": name, "provider": {"prometheus": {"address": "http://p", "query": query}}})
    }

    #[test]
    fn templates_merge_and_given_args_win_over_defaults() {
        let a = template(
            "AnalysisTemplate \"a\"",
            json!({"args": [{"name": "svc"}, {"name": "limit", "value": "0.05"}],
                "metrics": [metric("errors", "x{svc=\"{{args.svc}}\"} > {{args.limit}}")],
                "dryRun": [{"metricName": "errors"}]}),
        );
        let b = template(
            "ClusterAnalysisTemplate \"b\"",
            json!({"args": [{"name": "svc"}],
                "metrics": [metric("latency", "y{svc=\"{{args.svc}}\"}")],
                "dryRun": [{"metricName": "latency"}]}),
        );
        let spec = build_run_spec(&[a, b], &[arg("svc", "web"), arg("unused", "x")]).unwrap();
        let names: Vec<_> = spec.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["errors", "latency"]);
        let args: Vec<_> = spec
            .args
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_deref()))
            .collect();
        assert_eq!(args, [("svc", Some("web")), ("limit", Some("0.05"))]);
        let dry: Vec<_> = spec
            .dry_run
            .iter()
            .map(|d| d.metric_name.as_str())
            .collect();
        assert_eq!(dry, ["errors", "latency"]);
    }

    #[test]
    fn an_arg_without_a_value_is_named() {
        let a = template(
            "AnalysisTemplate \"a\"",
            json!({"args": [{"name": "svc"}], "metrics": [metric("m", "{{args.svc}}")]}),
        );
        let e = build_run_spec(&[a], &[]).unwrap_err();
        assert!(
            matches!(&e, AnalysisError::MissingArg { arg, .. } if arg == "svc"),
            "{e}"
        );
        assert!(
            e.to_string().contains("args.svc") && e.to_string().contains("\"a\""),
            "{e}"
        );
    }

    #[test]
    fn a_reference_to_an_undeclared_arg_is_named() {
        let a = template(
            "AnalysisTemplate \"a\"",
            json!({"metrics": [metric("m", "up{job=\"{{args.job}}\"}")]}),
        );
        let e = build_run_spec(&[a], &[arg("job", "x")]).unwrap_err();
        assert!(
            matches!(&e, AnalysisError::UndeclaredArg { arg, metric, .. } if arg == "job" && metric == "m"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_metrics_and_conflicting_args_are_refused() {
        let a = template(
            "AnalysisTemplate \"a\"",
            json!({"metrics": [metric("m", "up")]}),
        );
        let b = template(
            "AnalysisTemplate \"b\"",
            json!({"metrics": [metric("m", "up")]}),
        );
        let e = build_run_spec(&[a, b], &[]).unwrap_err();
        assert!(
            e.to_string().contains("\"a\"") && e.to_string().contains("\"b\""),
            "{e}"
        );
        let a = template(
            "AnalysisTemplate \"a\"",
            json!({"args": [{"name": "x", "value": "1"}], "metrics": []}),
        );
        let b = template(
            "AnalysisTemplate \"b\"",
            json!({"args": [{"name": "x", "value": "2"}], "metrics": []}),
        );
        let e = build_run_spec(&[a, b], &[]).unwrap_err();
        assert!(matches!(e, AnalysisError::ConflictingArg { .. }), "{e}");
        assert!(matches!(
            build_run_spec(&[], &[]),
            Err(AnalysisError::NoTemplates)
        ));
    }
}
