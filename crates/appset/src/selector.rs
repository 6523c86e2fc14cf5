//! Label selectors (`matchLabels`, `matchExpressions` with `In`, `NotIn`, `Exists`,
//! `DoesNotExist`), as generators' `selector` applies them to parameter sets and RollingSync
//! steps to Applications' labels.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::params::Params;
use crate::types::{LabelSelector, MatchExpression};

/// Whether `labels` meet every requirement of `selector` (an empty selector matches all).
/// An unknown operator is an error (a typo must not select everything or nothing silently).
pub fn selector_matches(
    selector: &LabelSelector,
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    for (k, v) in &selector.match_labels {
        if labels.get(k) != Some(v) {
            return Ok(false);
        }
    }
    expressions_match(&selector.match_expressions, labels)
}

/// Whether `labels` meet every expression (an empty list matches all).
pub fn expressions_match(
    expressions: &[MatchExpression],
    labels: &BTreeMap<String, String>,
) -> Result<bool, String> {
    for e in expressions {
        let value = labels.get(&e.key);
        let ok = match e.operator.as_str() {
            "In" | "in" => value.is_some_and(|v| e.values.contains(v)),
            "NotIn" | "notin" => value.is_none_or(|v| !e.values.contains(v)),
            "Exists" | "exists" => value.is_some(),
            "DoesNotExist" | "doesnotexist" => value.is_none(),
            other => {
                return Err(format!(
                    "matchExpressions key {:?}: unknown operator {other:?} (use In, NotIn, Exists or DoesNotExist)",
                    e.key
                ));
            }
        };
        if !ok {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The parameter set as flat `name → string` pairs: nested maps joined with `.`, list items by
/// index (`path.segments.0`), scalars as text (Argo CD flattens the same way for selectors).
pub fn flatten(params: &Params) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in params {
        flatten_into(k, v, &mut out);
    }
    out
}

fn flatten_into(prefix: &str, value: &Value, out: &mut BTreeMap<String, String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten_into(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten_into(&format!("{prefix}.{i}"), v, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), scalar_text(other));
        }
    }
}

/// A scalar as text: strings as they are, `null` as empty, numbers and booleans as JSON writes them.
pub fn scalar_text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Keeps the parameter sets that `selector` selects (by their flattened names).
pub fn filter_params(selector: &LabelSelector, sets: Vec<Params>) -> Result<Vec<Params>, String> {
    if selector.is_empty() {
        return Ok(sets);
    }
    let mut kept = Vec::with_capacity(sets.len());
    for set in sets {
        if selector_matches(selector, &flatten(&set))? {
            kept.push(set);
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(v: Value) -> LabelSelector {
        serde_json::from_value(v).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn operators_follow_kubernetes() {
        let l = labels(&[("env", "prod"), ("tier", "web")]);
        let m = |v| selector_matches(&sel(v), &l).unwrap();
        assert!(m(json!({})));
        assert!(m(json!({"matchLabels": {"env": "prod"}})));
        assert!(!m(json!({"matchLabels": {"env": "dev"}})));
        assert!(m(
            json!({"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev", "prod"]}]})
        ));
        assert!(!m(
            json!({"matchExpressions": [{"key": "env", "operator": "NotIn", "values": ["prod"]}]})
        ));
        assert!(m(
            json!({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]})
        ));
        assert!(m(
            json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]})
        ));
        assert!(!m(
            json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]})
        ));
        let bad = selector_matches(
            &sel(json!({"matchExpressions": [{"key": "env", "operator": "Equals"}]})),
            &l,
        )
        .unwrap_err();
        assert!(bad.contains("unknown operator \"Equals\""), "{bad}");
    }

    #[test]
    fn nested_params_flatten_with_dots() {
        let p: Params = serde_json::from_value(json!({
            "path": {"basename": "a", "segments": ["apps", "a"]},
            "n": 3, "ok": true, "none": null
        }))
        .unwrap();
        let f = flatten(&p);
        assert_eq!(f["path.basename"], "a");
        assert_eq!(f["path.segments.1"], "a");
        assert_eq!(f["n"], "3");
        assert_eq!(f["ok"], "true");
        assert_eq!(f["none"], "");
    }

    #[test]
    fn selectors_filter_parameter_sets() {
        let sets: Vec<Params> = vec![
            serde_json::from_value(json!({"env": "staging"})).unwrap(),
            serde_json::from_value(json!({"env": "prod"})).unwrap(),
        ];
        let kept = filter_params(&sel(json!({"matchLabels": {"env": "staging"}})), sets).unwrap();
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0]["env"], "staging");
    }
}
