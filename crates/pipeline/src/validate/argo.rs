//! Argo CD's `Application` and `AppProject` (`argoproj.io/v1alpha1`): the fields ferry knows,
//! as CRD-style schemas, and the rules ferry's engine needs before it can render an app.
//!
//! The schemas list every field of `ferry_core`'s `Application` and `AppProject` types, so a
//! misspelled field is reported. Blocks ferry passes through without reading (`helm`,
//! `kustomize`, `plugin`, `directory.jsonnet`, `operation`, `status`) accept anything, and so do
//! the Argo CD fields ferry does not implement but real repositories carry (`sourceHydrator`;
//! an AppProject's `roles`, `syncWindows`, `orphanedResources`, `signatureKeys`,
//! `destinationServiceAccounts`, `permitOnlyProjectScopedClusters`), so manifests written for
//! Argo CD validate as they are. A CRD for these kinds among the inputs (or given with `--crd`)
//! replaces the schema; the rules below apply either way:
//!
//! - an Application has `spec.source` or `spec.sources` (a non-empty list), and every source has
//!   a `repoURL`;
//! - an Application has `spec.destination` with `server` or `name` (not both).

use serde_json::{Value, json};

use super::schema::{Gvk, Issue, Segment, Target};

/// The API group of Argo CD's kinds.
pub(crate) const GROUP: &str = "argoproj.io";

fn opaque() -> Value {
    json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true})
}

fn strings() -> Value {
    json!({"type": "array", "items": {"type": "string"}})
}

fn string_map() -> Value {
    json!({"type": "object", "additionalProperties": {"type": "string"}})
}

fn source() -> Value {
    json!({"type": "object", "properties": {
        "repoURL": {"type": "string"},
        "path": {"type": "string"},
        "targetRevision": {"type": "string"},
        "chart": {"type": "string"},
        "ref": {"type": "string"},
        "name": {"type": "string"},
        "directory": {"type": "object", "properties": {
            "recurse": {"type": "boolean"},
            "include": {"type": "string"},
            "exclude": {"type": "string"},
            "jsonnet": opaque(),
        }},
        "helm": opaque(),
        "kustomize": opaque(),
        "plugin": opaque(),
    }})
}

fn destination() -> Value {
    json!({"type": "object", "properties": {
        "server": {"type": "string"},
        "name": {"type": "string"},
        "namespace": {"type": "string"},
    }})
}

fn group_kinds() -> Value {
    json!({"type": "array", "items": {"type": "object", "properties": {
        "group": {"type": "string"},
        "kind": {"type": "string"},
    }}})
}

/// ferry's schema of an Application.
fn application_schema() -> Value {
    json!({"type": "object", "required": ["spec"], "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "project": {"type": "string"},
            "source": source(),
            "sources": {"type": "array", "items": source()},
            "destination": destination(),
            "syncPolicy": {"type": "object", "properties": {
                "automated": {"type": "object", "properties": {
                    "prune": {"type": "boolean"},
                    "selfHeal": {"type": "boolean"},
                    "allowEmpty": {"type": "boolean"},
                    "enabled": {"type": "boolean"},
                }},
                "syncOptions": strings(),
                "retry": {"type": "object", "properties": {
                    "limit": {"type": "integer"},
                    "backoff": {"type": "object", "properties": {
                        "duration": {"type": "string"},
                        "factor": {"type": "integer"},
                        "maxDuration": {"type": "string"},
                    }},
                }},
                "managedNamespaceMetadata": {"type": "object", "properties": {
                    "labels": string_map(),
                    "annotations": string_map(),
                }},
            }},
            "ignoreDifferences": {"type": "array", "items": {"type": "object", "properties": {
                "group": {"type": "string"},
                "kind": {"type": "string"},
                "name": {"type": "string"},
                "namespace": {"type": "string"},
                "jsonPointers": strings(),
                "jqPathExpressions": strings(),
                "managedFieldsManagers": strings(),
            }}},
            "revisionHistoryLimit": {"type": "integer"},
            "info": {"type": "array", "items": {"type": "object", "properties": {
                "name": {"type": "string"},
                "value": {"type": "string"},
            }}},
            "sourceHydrator": opaque(),
        }},
        "operation": opaque(),
        "status": opaque(),
    }})
}

/// ferry's schema of an AppProject.
fn app_project_schema() -> Value {
    json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": {
            "description": {"type": "string"},
            "sourceRepos": strings(),
            "sourceNamespaces": strings(),
            "destinations": {"type": "array", "items": destination()},
            "clusterResourceWhitelist": group_kinds(),
            "clusterResourceBlacklist": group_kinds(),
            "namespaceResourceWhitelist": group_kinds(),
            "namespaceResourceBlacklist": group_kinds(),
            "roles": {"type": "array", "items": opaque()},
            "syncWindows": {"type": "array", "items": opaque()},
            "orphanedResources": opaque(),
            "signatureKeys": {"type": "array", "items": opaque()},
            "destinationServiceAccounts": {"type": "array", "items": opaque()},
            "permitOnlyProjectScopedClusters": {"type": "boolean"},
        }},
        "status": opaque(),
    }})
}

/// The schemas of Argo CD's kinds, to add to a schema set.
pub(crate) fn schemas() -> Vec<(Gvk, Value)> {
    let gvk = |kind: &str| (GROUP.to_owned(), "v1alpha1".to_owned(), kind.to_owned());
    vec![
        (gvk("Application"), application_schema()),
        (gvk("AppProject"), app_project_schema()),
    ]
}

fn key(name: &str) -> Segment {
    Segment::Key(name.into())
}

fn non_empty(value: Option<&Value>) -> bool {
    value
        .and_then(Value::as_str)
        .is_some_and(|s| !s.trim().is_empty())
}

/// The rules an Application must follow beyond its schema.
pub(crate) fn check_application(object: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    let Some(spec) = object.get("spec").and_then(Value::as_object) else {
        return issues; // a missing or mistyped spec is the schema's to report
    };
    let spec_path = [key("spec")];
    let mut sources: Vec<(Vec<Segment>, &Value)> = Vec::new();
    match (spec.get("source"), spec.get("sources")) {
        (_, Some(Value::Array(list))) if !list.is_empty() => {
            for (i, s) in list.iter().enumerate() {
                sources.push((vec![key("spec"), key("sources"), Segment::Index(i)], s));
            }
        }
        (Some(s @ Value::Object(_)), _) => sources.push((vec![key("spec"), key("source")], s)),
        _ => issues.push(Issue::new(
            &spec_path,
            Target::Value,
            "missing source: set spec.source, or spec.sources with at least one entry",
        )),
    }
    for (path, s) in sources {
        if s.is_object() && !non_empty(s.get("repoURL")) {
            issues.push(Issue::new(
                &path,
                Target::Value,
                "missing required field \"repoURL\"",
            ));
        }
    }
    match spec.get("destination") {
        Some(d @ Value::Object(_)) => {
            let path = [key("spec"), key("destination")];
            match (non_empty(d.get("server")), non_empty(d.get("name"))) {
                (false, false) => issues.push(Issue::new(
                    &path,
                    Target::Value,
                    "destination needs server (an API server URL) or name (a cluster name)",
                )),
                (true, true) => issues.push(Issue::new(
                    &path,
                    Target::Value,
                    "destination sets both server and name; keep one",
                )),
                _ => {}
            }
        }
        Some(Value::Null) | None => issues.push(Issue::new(
            &spec_path,
            Target::Value,
            "missing required field \"destination\" (with server or name)",
        )),
        Some(_) => {} // the schema reports the type
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(object: &Value) -> Vec<String> {
        check_application(object)
            .into_iter()
            .map(|i| i.message)
            .collect()
    }

    #[test]
    fn application_needs_a_source_and_a_destination() {
        let ok = json!({"spec": {"source": {"repoURL": "https://g/r.git"},
            "destination": {"server": "https://kubernetes.default.svc"}}});
        assert!(messages(&ok).is_empty());
        let multi = json!({"spec": {"sources": [{"repoURL": "r"}, {"path": "p"}],
            "destination": {"name": "in-cluster"}}});
        assert_eq!(messages(&multi), ["missing required field \"repoURL\""]);
        let bare = json!({"spec": {"project": "default"}});
        assert_eq!(messages(&bare).len(), 2);
        let both = json!({"spec": {"source": {"repoURL": "r"},
            "destination": {"server": "s", "name": "n"}}});
        assert_eq!(
            messages(&both),
            ["destination sets both server and name; keep one"]
        );
        assert_eq!(schemas().len(), 2);
    }
}
