//! How a rollout starts, follows and stops its analysis runs, through the analysis module's
//! API (`ensure_run`, `advance`, `terminate`). The run names follow Argo Rollouts':
//! `<rollout>-<hash>-<step>` for a step's analysis and `<rollout>-<hash>` for the background
//! one, with a `.N` suffix after the N-th retry.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::Value;

use crate::analysis::{self, AnalysisError, Arg, RunRequest, TemplateRef};
use crate::plan::AnalysisView;
use crate::spec::AnalysisRef;

/// The name of the AnalysisRun of step `index` (or of the background analysis, `None`).
pub fn run_name(rollout: &str, hash: &str, index: Option<usize>, attempt: i64) -> String {
    let mut name = match index {
        Some(i) => format!("{rollout}-{hash}-{i}"),
        None => format!("{rollout}-{hash}"),
    };
    if attempt > 0 {
        name.push_str(&format!(".{attempt}"));
    }
    name
}

/// What a run needs from the Rollout.
#[derive(Debug, Clone)]
pub struct RunTarget<'a> {
    /// The namespace.
    pub namespace: &'a str,
    /// The run's name ([`run_name`]).
    pub name: String,
    /// The Rollout (owner of the run), as JSON.
    pub rollout: &'a serde_json::Value,
    /// The templates and arguments.
    pub analysis: &'a AnalysisRef,
    /// The canary's pod-template hash (a label on the run).
    pub hash: &'a str,
    /// The stable's pod-template hash (for `podTemplateHashValue: Stable`).
    pub stable_hash: &'a str,
}

/// The run's args: each `value`, or a `valueFrom` Argo Rollouts offers for Rollouts
/// (`podTemplateHashValue: Stable|Latest`, `fieldRef` to the Rollout's name, namespace, a label
/// or an annotation). An arg that cannot be resolved is an error naming it.
pub fn resolve_args(
    analysis: &AnalysisRef,
    rollout: &Value,
    stable_hash: &str,
    latest_hash: &str,
) -> Result<Vec<Arg>, String> {
    let mut out = Vec::new();
    for (i, a) in analysis.args.iter().enumerate() {
        let name = a.get("name").and_then(Value::as_str).unwrap_or_default();
        if name.is_empty() {
            return Err(format!("analysis args[{i}]: no name"));
        }
        let value = if let Some(v) = a.get("value").filter(|v| !v.is_null()) {
            match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }
        } else if let Some(from) = a.get("valueFrom") {
            if let Some(h) = from.get("podTemplateHashValue").and_then(Value::as_str) {
                match h {
                    "Stable" => stable_hash.to_owned(),
                    "Latest" => latest_hash.to_owned(),
                    other => {
                        return Err(format!(
                            "analysis arg {name:?}: podTemplateHashValue {other:?} is not Stable or Latest"
                        ));
                    }
                }
            } else if let Some(path) = from.pointer("/fieldRef/fieldPath").and_then(Value::as_str) {
                field_of(rollout, path).ok_or_else(|| {
                    format!("analysis arg {name:?}: fieldRef {path:?} has no value on the Rollout (supported: metadata.name, metadata.namespace, metadata.labels['k'], metadata.annotations['k'])")
                })?
            } else {
                return Err(format!(
                    "analysis arg {name:?}: valueFrom is not supported here (use value, podTemplateHashValue or fieldRef)"
                ));
            }
        } else {
            return Err(format!("analysis arg {name:?}: give a value or valueFrom"));
        };
        out.push(Arg {
            name: name.to_owned(),
            value,
        });
    }
    Ok(out)
}

fn field_of(rollout: &Value, path: &str) -> Option<String> {
    let meta = &rollout["metadata"];
    match path {
        "metadata.name" => meta["name"].as_str().map(str::to_owned),
        "metadata.namespace" => meta["namespace"].as_str().map(str::to_owned),
        _ => {
            for map in ["labels", "annotations"] {
                if let Some(key) = path
                    .strip_prefix(&format!("metadata.{map}['"))
                    .and_then(|k| k.strip_suffix("']"))
                {
                    return meta[map][key].as_str().map(str::to_owned);
                }
            }
            None
        }
    }
}

fn error_view(name: &str, message: String) -> AnalysisView {
    AnalysisView {
        name: name.to_owned(),
        phase: "Error".into(),
        message,
        next_in: None,
    }
}

/// Starts the run if it does not exist and takes its next measurements when due. A run that
/// cannot be made (an unknown template, a missing arg) comes back as `Error` with the cause,
/// which aborts the rollout; an API error reading the run is `Running` (tried again).
pub async fn follow_run(
    kube: &kube::Client,
    http: &ferry_http::Client,
    target: &RunTarget<'_>,
) -> AnalysisView {
    let rollout_name = target.rollout["metadata"]["name"]
        .as_str()
        .unwrap_or_default();
    let args = match resolve_args(
        target.analysis,
        target.rollout,
        target.stable_hash,
        target.hash,
    ) {
        Ok(a) => a,
        Err(e) => return error_view(&target.name, e),
    };
    let templates = target
        .analysis
        .templates
        .iter()
        .map(|t| TemplateRef {
            template_name: t["templateName"].as_str().unwrap_or_default().to_owned(),
            cluster_scope: t["clusterScope"].as_bool() == Some(true),
        })
        .collect();
    let owner = OwnerReference {
        api_version: crate::spec::API_VERSION.into(),
        kind: crate::spec::KIND.into(),
        name: rollout_name.to_owned(),
        uid: target.rollout["metadata"]["uid"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let labels = [
        ("rollout-name".to_owned(), rollout_name.to_owned()),
        (crate::spec::HASH_LABEL.to_owned(), target.hash.to_owned()),
    ]
    .into();
    let req = RunRequest {
        namespace: target.namespace.to_owned(),
        name: target.name.clone(),
        owner,
        templates,
        args,
        labels,
    };
    if let Err(e) = analysis::ensure_run(kube, &req).await {
        return match e {
            AnalysisError::Kube { .. } => AnalysisView {
                name: target.name.clone(),
                phase: "Running".into(),
                message: format!("{e} (trying again)"),
                next_in: Some(std::time::Duration::from_secs(3)),
            },
            e => error_view(&target.name, e.to_string()),
        };
    }
    match analysis::advance(kube, http, target.namespace, &target.name).await {
        Ok(o) => AnalysisView {
            name: target.name.clone(),
            phase: o.phase.to_string(),
            message: o.message.unwrap_or_default(),
            next_in: o.next_in,
        },
        Err(e @ AnalysisError::Kube { .. }) => AnalysisView {
            name: target.name.clone(),
            phase: "Running".into(),
            message: format!("{e} (trying again)"),
            next_in: Some(std::time::Duration::from_secs(3)),
        },
        Err(e) => error_view(&target.name, e.to_string()),
    }
}

/// Stops a run (no error when it does not exist).
pub async fn stop_run(kube: &kube::Client, namespace: &str, name: &str) -> Result<(), String> {
    match analysis::terminate(kube, namespace, name).await {
        Ok(()) | Err(AnalysisError::RunNotFound { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn args_resolve_from_values_hashes_and_fields() {
        let a: AnalysisRef = serde_json::from_value(json!({
            "templates": [{"templateName": "t"}],
            "args": [
                {"name": "service", "value": "web-canary"},
                {"name": "stable", "valueFrom": {"podTemplateHashValue": "Stable"}},
                {"name": "latest", "valueFrom": {"podTemplateHashValue": "Latest"}},
                {"name": "ns", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                {"name": "team", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['team']"}}}
            ]
        }))
        .unwrap();
        let ro = json!({"metadata": {"name": "web", "namespace": "shop", "labels": {"team": "a"}}});
        let args = resolve_args(&a, &ro, "s1", "c2").unwrap();
        let got: Vec<(&str, &str)> = args
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("service", "web-canary"),
                ("stable", "s1"),
                ("latest", "c2"),
                ("ns", "shop"),
                ("team", "a")
            ]
        );

        let bad: AnalysisRef = serde_json::from_value(json!({"templates": [{"templateName": "t"}], "args": [{"name": "x", "valueFrom": {"fieldRef": {"fieldPath": "spec.replicas"}}}]})).unwrap();
        let e = resolve_args(&bad, &ro, "s", "c").unwrap_err();
        assert!(e.contains("\"x\"") && e.contains("spec.replicas"), "{e}");
    }

    #[test]
    fn run_names_follow_argo_rollouts() {
        assert_eq!(run_name("web", "abc", Some(2), 0), "web-abc-2");
        assert_eq!(run_name("web", "abc", None, 0), "web-abc");
        assert_eq!(run_name("web", "abc", Some(2), 1), "web-abc-2.1");
    }
}
