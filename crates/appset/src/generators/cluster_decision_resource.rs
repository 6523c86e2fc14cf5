//! The `clusterDecisionResource` generator: clusters chosen by another controller (Open Cluster
//! Management's `PlacementDecision`, or any custom resource of that "duck type").
//!
//! As Argo CD: `configMapRef` names a ConfigMap with `apiVersion`, `kind` (the resource, plural
//! as in Argo CD's example `placementdecisions`; a Kind name is found through discovery),
//! `statusListKey` and `matchKey`. The resources are the one called `name` or those matching
//! `labelSelector`. Each entry of their `status.<statusListKey>` names a cluster by its
//! `matchKey` field; an entry whose cluster ferry knows (a cluster Secret's `name`, or
//! `in-cluster`) gives a parameter set with `name`, `server`, every field of the entry, and
//! `values`. An entry naming an unknown cluster is skipped, as in Argo CD.
//!
//! Failing closed: a missing ConfigMap, a resource that does not exist, no resource matching the
//! selector, or a resource without `status.<statusListKey>` is an error.

use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::{self, Scope};
use serde_json::{Value, json};

use super::RemoteContext;
use super::remote;
use crate::params::{GeneratorError, Params};

const GENERATOR: &str = "clusterDecisionResource";

/// How often Argo CD reads the decisions again when `requeueAfterSeconds` is not set.
pub const DEFAULT_REQUEUE: Duration = Duration::from_secs(3 * 60);

/// The label of cluster Secrets.
const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";
/// The cluster ferry runs in, as Argo CD names it.
const IN_CLUSTER: (&str, &str) = ("in-cluster", "https://kubernetes.default.svc");

/// When the ApplicationSet should be generated again.
pub fn requeue_after(spec: &Value) -> Duration {
    remote::requeue_after_seconds(spec).unwrap_or(DEFAULT_REQUEUE)
}

fn err(m: impl Into<String>) -> GeneratorError {
    GeneratorError::new(GENERATOR, m)
}

/// Reads the decisions and turns them into parameter sets.
pub async fn generate(
    spec: &Value,
    ctx: &RemoteContext<'_>,
) -> Result<Vec<Params>, GeneratorError> {
    let cm_name = match spec.get("configMapRef") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        // Tolerate the plugin generator's `{name: ...}` form.
        Some(Value::Object(o)) => o
            .get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| err("configMapRef is required: name the duck-type ConfigMap"))?,
        _ => {
            return Err(err(
                "configMapRef is required: name the duck-type ConfigMap",
            ));
        }
    };
    let cm = remote::config_map(ctx, GENERATOR, cm_name).await?;
    let where_ = format!("ConfigMap {}/{cm_name}", ctx.namespace);
    let get = |key: &str| {
        cm.get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .ok_or_else(|| {
                err(format!(
                    "{where_} has no {key}: add it (see Argo CD's clusterDecisionResource docs)"
                ))
            })
    };
    let api_version = get("apiVersion")?;
    let kind = get("kind")?;
    let list_key = get("statusListKey")?;
    let match_key = get("matchKey")?;
    let values = remote::values(GENERATOR, spec)?;

    let resource = find_resource(ctx, &api_version, &kind).await?;
    let api: Api<DynamicObject> = match resource.1 {
        Scope::Namespaced => Api::namespaced_with(ctx.kube.clone(), ctx.namespace, &resource.0),
        Scope::Cluster => Api::all_with(ctx.kube.clone(), &resource.0),
    };
    let shown = format!("{} {}", resource.0.plural, api_version);
    let objects = match (
        spec.get("name")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty()),
        spec.get("labelSelector").filter(|v| !v.is_null()),
    ) {
        (Some(name), _) => match api.get_opt(name).await {
            Ok(Some(o)) => vec![o],
            Ok(None) => {
                return Err(err(format!(
                    "{shown} {name:?} does not exist in namespace {}",
                    ctx.namespace
                )));
            }
            Err(e) => return Err(err(format!("reading {shown} {name:?}: {e}"))),
        },
        (None, Some(selector)) => {
            let selector = label_selector(selector)?;
            let list = api
                .list(&ListParams::default().labels(&selector))
                .await
                .map_err(|e| err(format!("listing {shown} with labels {selector:?}: {e}")))?;
            if list.items.is_empty() {
                return Err(err(format!(
                    "no {shown} in namespace {} matches the labels {selector:?}",
                    ctx.namespace
                )));
            }
            list.items
        }
        (None, None) => return Err(err("give name or labelSelector to choose the resources")),
    };

    let clusters = known_clusters(ctx).await?;
    let mut out = Vec::new();
    for object in &objects {
        let obj_name = object.metadata.name.clone().unwrap_or_default();
        let entries = object
            .data
            .get("status")
            .and_then(|s| s.get(&list_key))
            .ok_or_else(|| {
                err(format!(
                    "{shown} {obj_name:?} has no status.{list_key} (yet); nothing is changed until it has"
                ))
            })?;
        let entries = entries.as_array().ok_or_else(|| {
            err(format!(
                "{shown} {obj_name:?}: status.{list_key} must be a list, not {}",
                remote::describe(entries)
            ))
        })?;
        for entry in entries {
            let Value::Object(fields) = entry else {
                return Err(err(format!(
                    "{shown} {obj_name:?}: each status.{list_key} entry must be an object, not {}",
                    remote::describe(entry)
                )));
            };
            let Some(wanted) = fields
                .get(&match_key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            else {
                tracing::warn!(resource = %obj_name, %match_key, "clusterDecisionResource: an entry has no matchKey; skipped");
                continue;
            };
            let Some((name, server)) = clusters.iter().find(|(n, _)| n == wanted) else {
                tracing::warn!(resource = %obj_name, cluster = %wanted, "clusterDecisionResource: the cluster is not registered with ferry; skipped");
                continue;
            };
            let mut p = Params::new();
            p.insert("name".into(), json!(name));
            p.insert("server".into(), json!(server));
            for (k, v) in fields {
                p.insert(k.clone(), v.clone());
            }
            if let Some(values) = &values {
                p.insert("values".into(), Value::Object(values.clone()));
            }
            out.push(p);
        }
    }
    Ok(out)
}

/// The resource `kind` (plural resource name or Kind) of `apiVersion`, through discovery.
async fn find_resource(
    ctx: &RemoteContext<'_>,
    api_version: &str,
    kind: &str,
) -> Result<(ApiResource, Scope), GeneratorError> {
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let gvk = GroupVersionKind::gvk(group, version, "");
    let found = discovery::pinned_group(
        ctx.kube,
        &gvk.api_version().parse().map_err(|e| {
            err(format!(
                "apiVersion {api_version:?} is not group/version: {e}"
            ))
        })?,
    )
    .await
    .map_err(|e| {
        err(format!(
            "the API {api_version} is not served by the cluster: {e}"
        ))
    })?;
    found
        .versioned_resources(version)
        .into_iter()
        .find(|(ar, _)| ar.plural == kind || ar.kind == kind || ar.kind.eq_ignore_ascii_case(kind))
        .map(|(ar, caps)| (ar, caps.scope))
        .ok_or_else(|| {
            err(format!(
                "the API {api_version} has no resource {kind:?} (give its plural name, as \
                 placementdecisions, or its Kind)"
            ))
        })
}

/// A label selector (`matchLabels`, `matchExpressions`) as the API's query string.
fn label_selector(selector: &Value) -> Result<String, GeneratorError> {
    let mut parts = Vec::new();
    if let Some(labels) = selector.get("matchLabels").and_then(Value::as_object) {
        for (k, v) in labels {
            let v = v
                .as_str()
                .ok_or_else(|| err(format!("labelSelector.matchLabels.{k} must be a string")))?;
            parts.push(format!("{k}={v}"));
        }
    }
    if let Some(exprs) = selector.get("matchExpressions").and_then(Value::as_array) {
        for (i, e) in exprs.iter().enumerate() {
            let key = e.get("key").and_then(Value::as_str).unwrap_or("");
            let op = e.get("operator").and_then(Value::as_str).unwrap_or("");
            let values: Vec<&str> = e
                .get("values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if key.is_empty() {
                return Err(err(format!(
                    "labelSelector.matchExpressions[{i}] has no key"
                )));
            }
            parts.push(match op {
                "In" => format!("{key} in ({})", values.join(",")),
                "NotIn" => format!("{key} notin ({})", values.join(",")),
                "Exists" => key.to_string(),
                "DoesNotExist" => format!("!{key}"),
                other => {
                    return Err(err(format!(
                        "labelSelector.matchExpressions[{i}].operator {other:?} is not In, NotIn, Exists or DoesNotExist"
                    )));
                }
            });
        }
    }
    Ok(parts.join(","))
}

/// `(name, server)` of every cluster ferry knows: the cluster Secrets of the namespace and
/// `in-cluster`.
async fn known_clusters(ctx: &RemoteContext<'_>) -> Result<Vec<(String, String)>, GeneratorError> {
    let api: Api<Secret> = Api::namespaced(ctx.kube.clone(), ctx.namespace);
    let secrets = api
        .list(&ListParams::default().labels(&format!("{SECRET_TYPE_LABEL}=cluster")))
        .await
        .map_err(|e| {
            err(format!(
                "listing the cluster Secrets of {}: {e}",
                ctx.namespace
            ))
        })?;
    let mut out = Vec::new();
    for s in &secrets.items {
        let field = |k: &str| -> Option<String> {
            s.data
                .as_ref()
                .and_then(|d| d.get(k))
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .or_else(|| s.string_data.as_ref().and_then(|d| d.get(k)).cloned())
        };
        let Some(server) = field("server") else {
            continue;
        };
        let name = field("name").unwrap_or_else(|| server.clone());
        out.push((name, server));
    }
    if !out.iter().any(|(_, s)| s == IN_CLUSTER.1) {
        out.push((IN_CLUSTER.0.to_string(), IN_CLUSTER.1.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_selectors_become_query_strings() {
        let s = label_selector(&json!({
            "matchLabels": {"a": "b"},
            "matchExpressions": [
                {"key": "env", "operator": "In", "values": ["x", "y"]},
                {"key": "gone", "operator": "DoesNotExist"},
            ],
        }))
        .unwrap();
        assert_eq!(s, "a=b,env in (x,y),!gone");
        assert!(
            label_selector(&json!({"matchExpressions": [{"key": "k", "operator": "Gt"}]})).is_err()
        );
    }
}
