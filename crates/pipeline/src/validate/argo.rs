//! Argo CD's `Application`, `AppProject` and `ApplicationSet` (`argoproj.io/v1alpha1`): the fields ferry knows,
//! as CRD-style schemas, and the rules ferry's engine needs before it can render an app.
//!
//! The schemas type fields of `ferry_core`'s `Application` and `AppProject` types (a test checks
//! that every typed field is one the core types read, and that the CRDs `ferry install` applies
//! agree), so a misspelled field is reported. Blocks ferry passes through without reading
//! (`helm`, `kustomize`, `plugin`, `directory.jsonnet`, `operation`, `status`) accept anything,
//! and so do the Argo CD fields ferry does not implement but real repositories carry
//! (`sourceHydrator`; an AppProject's `roles`, `orphanedResources`, `signatureKeys`,
//! `destinationServiceAccounts`, `permitOnlyProjectScopedClusters`), so manifests written for
//! Argo CD validate as they are. `syncWindows` are read by the engine, which reports a window it
//! cannot evaluate on the app; here they are accepted as they are. A CRD for these kinds among
//! the inputs (or given with `--crd`) replaces the schema; the rules apply either way. They are
//! core's spec rules ([`ferry_core::application::spec_problems`]), the ones the engine applies:
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

/// An ApplicationSet: the fields ferry's ApplicationSet controller reads are typed; generators
/// and the template are open, as in Argo CD's CRD (generator blocks nest, and the template holds
/// parameters where the Application has other types).
fn application_set_schema() -> Value {
    json!({"type": "object", "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {
            "generators": {"type": "array", "items": opaque()},
            "template": opaque(),
            "templatePatch": {"type": "string"},
            "goTemplate": {"type": "boolean"},
            "goTemplateOptions": strings(),
            "syncPolicy": opaque(),
            "strategy": opaque(),
            "ignoreApplicationDifferences": {"type": "array", "items": opaque()},
            "preservedFields": opaque(),
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
        (gvk("ApplicationSet"), application_set_schema()),
    ]
}

fn key(name: &str) -> Segment {
    Segment::Key(name.into())
}

/// The rules an Application must follow beyond its schema: core's spec rules (the ones the
/// engine applies), each reported at its field.
pub(crate) fn check_application(object: &Value) -> Vec<Issue> {
    use ferry_core::application::{ApplicationSpec, SpecField, spec_problems};
    let mut issues = Vec::new();
    let Some(raw) = object.get("spec").filter(|s| s.is_object()) else {
        return issues; // a missing or mistyped spec is the schema's to report
    };
    // A field of the wrong type is the schema's to report too.
    let Ok(spec) = serde_json::from_value::<ApplicationSpec>(raw.clone()) else {
        return issues;
    };
    let no_destination = matches!(raw.get("destination"), None | Some(Value::Null));
    if no_destination {
        issues.push(Issue::new(
            &[key("spec")],
            Target::Value,
            "missing required field \"destination\" (with server or name)",
        ));
    }
    for problem in spec_problems(&spec) {
        let path = match problem.field {
            SpecField::Spec => vec![key("spec")],
            SpecField::Source => vec![key("spec"), key("source")],
            SpecField::Sources(i) => vec![key("spec"), key("sources"), Segment::Index(i)],
            SpecField::Destination if no_destination => continue,
            SpecField::Destination => vec![key("spec"), key("destination")],
        };
        issues.push(Issue::new(&path, Target::Value, &problem.message));
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
            ["sets both server (s) and name (n): keep one"]
        );
        assert_eq!(schemas().len(), 3);
    }

    /// Every leaf of a schema below `path`: its path (`None` for an array's item) and schema.
    /// Blocks kept as they are (`x-kubernetes-preserve-unknown-fields`) are not descended.
    fn leaves(
        schema: &Value,
        path: Vec<Option<String>>,
        out: &mut Vec<(Vec<Option<String>>, Value)>,
    ) {
        if schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
            return;
        }
        if let Some(props) = schema.get("properties").and_then(Value::as_object) {
            for (name, sub) in props {
                let mut p = path.clone();
                p.push(Some(name.clone()));
                leaves(sub, p, out);
            }
        } else if let Some(items) = schema.get("items").filter(|_| schema["type"] == "array") {
            if items.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true)) {
                return;
            }
            if items.get("properties").is_some() {
                let mut p = path.clone();
                p.push(None);
                leaves(items, p, out);
            } else {
                out.push((path, schema.clone()));
            }
        } else {
            out.push((path, schema.clone()));
        }
    }

    /// An example value of a leaf's type.
    fn example(schema: &Value) -> Value {
        match schema["type"].as_str() {
            Some("string") => json!("x"),
            Some("boolean") => json!(true),
            Some("integer") => json!(2),
            Some("array") => json!([example(&schema["items"])]),
            Some("object") if schema.get("additionalProperties").is_some() => json!({"k": "x"}),
            _ => json!({}),
        }
    }

    /// An object with only `path` set to `value` (one item in each array on the way).
    fn with_path(path: &[Option<String>], value: Value) -> Value {
        match path.split_first() {
            None => value,
            Some((Some(name), rest)) => json!({ name.as_str(): with_path(rest, value) }),
            Some((None, rest)) => json!([with_path(rest, value)]),
        }
    }

    fn at<'a>(v: &'a Value, path: &[Option<String>]) -> Option<&'a Value> {
        match path.split_first() {
            None => Some(v),
            Some((Some(name), rest)) => at(v.get(name)?, rest),
            Some((None, rest)) => at(v.get(0)?, rest),
        }
    }

    fn spec_leaves(schema: &Value) -> Vec<(Vec<Option<String>>, Value)> {
        let mut out = Vec::new();
        leaves(
            &schema["properties"]["spec"],
            vec![Some("spec".into())],
            &mut out,
        );
        assert!(out.len() > 10, "the walk found too few fields: {out:?}");
        out
    }

    fn shown(path: &[Option<String>]) -> String {
        path.iter()
            .map(|p| p.clone().unwrap_or_else(|| "[0]".into()))
            .collect::<Vec<_>>()
            .join(".")
    }

    /// The validator's schema and the engine's types agree: every field the schema types is one
    /// that `ferry_core` reads and writes back (so `ferry validate` never accepts a field the
    /// engine would silently drop, nor refuses one it reads).
    #[test]
    fn every_typed_field_of_the_schemas_is_a_field_of_the_core_types() {
        /// The typed fields the core type drops.
        fn dropped<T: serde::de::DeserializeOwned + serde::Serialize>(
            kind: &str,
            schema: &Value,
        ) -> Vec<String> {
            let mut out = Vec::new();
            for (path, leaf) in spec_leaves(schema) {
                let value = example(&leaf);
                let mut object = with_path(&path, value.clone());
                object["metadata"] = json!({"name": "x"});
                let typed: T = serde_json::from_value(object.clone()).unwrap_or_else(|e| {
                    panic!("{kind}: {} = {value} does not read: {e}", shown(&path))
                });
                let back = serde_json::to_value(&typed).expect("serializes");
                if at(&back, &path) != Some(&value) {
                    out.push(shown(&path));
                }
            }
            out
        }
        assert_eq!(
            dropped::<ferry_core::application::Application>("Application", &application_schema()),
            Vec::<String>::new(),
            "fields the validator types but the engine drops"
        );
        // Accepted so that Argo CD's manifests validate, but not read by ferry (see the
        // module's documentation).
        assert_eq!(
            dropped::<ferry_core::project::AppProject>("AppProject", &app_project_schema()),
            ["spec.permitOnlyProjectScopedClusters"],
            "fields the validator types but the engine drops"
        );
    }

    /// The CRDs `ferry install` applies type nothing the validator types differently.
    #[test]
    fn the_installed_crds_agree_with_the_validator() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../manifests/crds");
        for (file, ours) in [
            ("applications.argoproj.io.yaml", application_schema()),
            ("appprojects.argoproj.io.yaml", app_project_schema()),
        ] {
            let text = std::fs::read_to_string(dir.join(file)).expect("the CRD");
            let crd: Value = serde_saphyr::from_str(&text).expect("the CRD parses");
            let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
            let mut typed = Vec::new();
            leaves(
                &schema["properties"]["spec"],
                vec![Some("spec".into())],
                &mut typed,
            );
            for (path, leaf) in typed {
                let mut node = &ours["properties"]["spec"];
                for p in &path[1..] {
                    node = match p {
                        Some(name) => &node["properties"][name.as_str()],
                        None => &node["items"],
                    };
                }
                assert_eq!(
                    node["type"],
                    leaf["type"],
                    "{file}: {} is typed {} in the CRD and {} in the validator",
                    shown(&path),
                    leaf["type"],
                    node["type"]
                );
            }
        }
    }
}
