//! Normalizing objects before comparing them, so that only differences a user cares about show
//! up as drift: fields the API server maintains are dropped, `ignoreDifferences` are applied,
//! and Secret values are masked before anything is shown.

use serde_json::{Map, Value};

/// Metadata fields the API server or other controllers maintain.
const SERVER_METADATA: [&str; 7] = [
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
    "deletionGracePeriodSeconds",
];

/// Annotations that record history or a passing request rather than intent. A refresh request
/// on a child Application (set by a webhook push, removed when done) comes and goes while its
/// App-of-Apps root compares it: it must not make the root OutOfSync.
const NOISE_ANNOTATIONS: [&str; 3] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "deployment.kubernetes.io/revision",
    "argocd.argoproj.io/refresh",
];

/// The annotation a rollout controller (ferry's or Argo Rollouts') puts on a Service whose
/// selector it points at one ReplicaSet's pods.
const ROLLOUTS_MANAGED_BY: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";
/// The selector key that rollout controller sets.
const ROLLOUTS_HASH: &str = "rollouts-pod-template-hash";

/// Keeps a rollout controller's pod-template hash in a Service's selector. A Service's selector
/// is an atomic map, so applying it from Git would drop the key the rollout controller added
/// (every pod behind both the stable and the canary Service) and show the Service OutOfSync;
/// with the live value carried over, neither happens. Argo CD, applying client-side, never sees
/// the key at all.
pub(crate) fn keep_rollouts_selector(desired: &mut Value, live: &Value) {
    if desired.get("kind").and_then(Value::as_str) != Some("Service")
        || desired.get("apiVersion").and_then(Value::as_str) != Some("v1")
    {
        return;
    }
    let managed = live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(ROLLOUTS_MANAGED_BY))
        .is_some();
    let Some(hash) = live
        .pointer("/spec/selector")
        .and_then(|s| s.get(ROLLOUTS_HASH))
        .cloned()
    else {
        return;
    };
    if !managed {
        return;
    }
    if let Some(sel) = desired
        .pointer_mut("/spec/selector")
        .and_then(Value::as_object_mut)
    {
        sel.entry(ROLLOUTS_HASH).or_insert(hash);
    }
}

/// Strips what the server maintains from an object: `status`, server-owned metadata and noisy
/// annotations. The result of a server-side-apply dry run and the live object are equal after
/// this exactly when applying would change nothing a user declared.
pub fn normalize(obj: &Value) -> Value {
    let mut out = obj.clone();
    if let Some(map) = out.as_object_mut() {
        // A CRD's status holds its acceptance; an Application's status is ferry's output. Both
        // are the server's business, like every other kind's.
        map.remove("status");
        // A child Application's requested sync is a passing request too, not its desired state.
        if map.get("kind").and_then(Value::as_str) == Some("Application")
            && map
                .get("apiVersion")
                .and_then(Value::as_str)
                .is_some_and(|v| v.starts_with("argoproj.io/"))
        {
            map.remove("operation");
        }
        if let Some(meta) = map.get_mut("metadata").and_then(Value::as_object_mut) {
            for field in SERVER_METADATA {
                meta.remove(field);
            }
            let empty_annotations = match meta.get_mut("annotations").and_then(Value::as_object_mut)
            {
                Some(annotations) => {
                    for a in NOISE_ANNOTATIONS {
                        annotations.remove(a);
                    }
                    annotations.is_empty()
                }
                None => false,
            };
            if empty_annotations {
                meta.remove("annotations");
            }
        }
    }
    out
}

/// Removes the value at each JSON pointer (RFC 6901) — `ignoreDifferences.jsonPointers`.
/// Pointers that lead nowhere are ignored.
pub fn remove_pointers(obj: &mut Value, pointers: &[String]) {
    for pointer in pointers {
        remove_pointer(obj, pointer);
    }
}

fn remove_pointer(obj: &mut Value, pointer: &str) {
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = unescape(last);
    let target = if parent.is_empty() {
        Some(obj)
    } else {
        obj.pointer_mut(parent)
    };
    match target {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Ok(i) = last.parse::<usize>()
                && i < items.len()
            {
                items.remove(i);
            }
        }
        _ => {}
    }
}

/// JSON pointers to the fields that `managers` own in `live` (from `metadata.managedFields`),
/// for `ignoreDifferences.managedFieldsManagers`. Fields inside list items (`k:`, `v:`, `i:`
/// keys) are reported as their whole list, the finest level a pointer can name reliably.
pub fn managed_field_pointers(live: &Value, managers: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    if managers.is_empty() {
        return out;
    }
    let entries = live
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for entry in entries {
        let manager = entry
            .get("manager")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !managers.iter().any(|m| m == manager) {
            continue;
        }
        if let Some(fields) = entry.get("fieldsV1") {
            collect_field_pointers(fields, String::new(), &mut out);
        }
    }
    out.sort();
    out.dedup();
    out
}

fn collect_field_pointers(fields: &Value, prefix: String, out: &mut Vec<String>) {
    let Some(map) = fields.as_object() else {
        return;
    };
    for (key, child) in map {
        if key == "." {
            continue;
        }
        if let Some(name) = key.strip_prefix("f:") {
            let path = format!("{prefix}/{}", name.replace('~', "~0").replace('/', "~1"));
            let has_children = child
                .as_object()
                .is_some_and(|m| m.keys().any(|k| k != "."));
            if has_children {
                collect_field_pointers(child, path, out);
            } else {
                out.push(path);
            }
        } else if !prefix.is_empty() {
            // A list item: ignore the whole list.
            out.push(prefix.clone());
            return;
        }
    }
}

fn unescape(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The mask shown instead of a Secret's values.
pub const MASK: &str = "++++++++";

/// Replaces every value under a Secret's `data` and `stringData` with a mask, so diffs, the UI
/// and the API never show Secret contents. Two different values get masks of different lengths,
/// so a changed value still shows as a change; equal values get equal masks.
pub fn mask_secret(obj: &mut Value, other: Option<&Value>) {
    if obj.get("kind").and_then(Value::as_str) != Some("Secret")
        || obj.get("apiVersion") != Some(&Value::from("v1"))
    {
        return;
    }
    for field in ["data", "stringData"] {
        let theirs = other
            .and_then(|o| o.get(field))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(values) = obj.get_mut(field).and_then(Value::as_object_mut) {
            mask_values(values, &theirs);
        }
    }
    if let Some(annotations) = obj
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        // kubectl's last-applied annotation would carry the values in clear.
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

fn mask_values(values: &mut Map<String, Value>, theirs: &Map<String, Value>) {
    for (key, value) in values.iter_mut() {
        let same = theirs.get(key) == Some(value);
        *value = Value::String(if same || theirs.is_empty() {
            MASK.to_string()
        } else {
            format!("{MASK}++")
        });
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_rollouts_hash_in_a_service_selector_is_kept() {
        let live = serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web-stable", "annotations": {"argo-rollouts.argoproj.io/managed-by-rollouts": "web"}},
            "spec": {"selector": {"app": "web", "rollouts-pod-template-hash": "abc"}}});
        let mut desired = serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web-stable"}, "spec": {"selector": {"app": "web"}}});
        keep_rollouts_selector(&mut desired, &live);
        assert_eq!(
            desired["spec"]["selector"]["rollouts-pod-template-hash"],
            "abc"
        );
        assert_eq!(desired["spec"]["selector"]["app"], "web");
        // Without the rollout controller's annotation, the selector is Git's alone.
        let mut unmanaged = live.clone();
        unmanaged["metadata"]["annotations"] = serde_json::json!({});
        let mut desired = serde_json::json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "web-stable"}, "spec": {"selector": {"app": "web"}}});
        keep_rollouts_selector(&mut desired, &unmanaged);
        assert!(
            desired["spec"]["selector"]
                .get("rollouts-pod-template-hash")
                .is_none()
        );
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn requests_on_child_applications_go() {
        let app = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "a", "annotations": {"argocd.argoproj.io/refresh": "normal"}},
            "spec": {"project": "default"},
            "operation": {"sync": {}}
        });
        assert_eq!(
            normalize(&app),
            json!({
                "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": "a"}, "spec": {"project": "default"}
            })
        );
    }

    #[test]
    fn server_fields_and_status_go() {
        let live = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": "c", "namespace": "n", "uid": "1", "resourceVersion": "9", "generation": 2,
                "creationTimestamp": "2026-01-01T00:00:00Z", "managedFields": [{"manager": "x"}],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{}"},
                "labels": {"a": "b"}
            },
            "data": {"k": "v"},
            "status": {"x": 1}
        });
        assert_eq!(
            normalize(&live),
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "n", "labels": {"a": "b"}},
                "data": {"k": "v"}
            })
        );
    }

    #[test]
    fn user_annotations_stay() {
        let obj = json!({"metadata": {"annotations": {"team": "web", "deployment.kubernetes.io/revision": "3"}}});
        assert_eq!(
            normalize(&obj),
            json!({"metadata": {"annotations": {"team": "web"}}})
        );
    }

    #[test]
    fn json_pointers_remove_fields_and_array_items() {
        let mut obj = json!({"spec": {"replicas": 3, "template": {"a/b": 1, "list": [1, 2, 3]}}});
        remove_pointers(
            &mut obj,
            &[
                "/spec/replicas".into(),
                "/spec/template/a~1b".into(),
                "/spec/template/list/1".into(),
                "/nope/x".into(),
            ],
        );
        assert_eq!(obj, json!({"spec": {"template": {"list": [1, 3]}}}));
    }

    #[test]
    fn secrets_are_masked_and_changes_still_show() {
        let live =
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "c2VjcmV0", "b": "eA=="}});
        let mut desired =
            json!({"apiVersion": "v1", "kind": "Secret", "data": {"a": "c2VjcmV0", "b": "eQ=="}});
        let mut live_masked = live.clone();
        mask_secret(&mut desired, Some(&live));
        mask_secret(&mut live_masked, None);
        assert_eq!(
            desired["data"]["a"], live_masked["data"]["a"],
            "equal values, equal masks"
        );
        assert_ne!(
            desired["data"]["b"], live_masked["data"]["b"],
            "a changed value shows as changed"
        );
        let text = format!("{desired}{live_masked}");
        assert!(
            !text.contains("c2VjcmV0") && !text.contains("eA==") && !text.contains("eQ=="),
            "{text}"
        );
    }

    #[test]
    fn fields_of_named_managers_become_pointers() {
        let live = json!({"metadata": {"managedFields": [
            {"manager": "hpa", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "ferry", "fieldsV1": {"f:spec": {"f:template": {"f:spec": {"f:containers": {"k:{\"name\":\"web\"}": {".": {}, "f:image": {}}}}}}}},
            {"manager": "istio", "fieldsV1": {"f:metadata": {"f:annotations": {"f:sidecar.istio.io/status": {}}}}}
        ]}});
        assert_eq!(
            managed_field_pointers(&live, &["hpa".into()]),
            ["/spec/replicas"]
        );
        assert_eq!(
            managed_field_pointers(&live, &["ferry".into()]),
            ["/spec/template/spec/containers"]
        );
        assert_eq!(
            managed_field_pointers(&live, &["istio".into()]),
            ["/metadata/annotations/sidecar.istio.io~1status"]
        );
        assert!(managed_field_pointers(&live, &[]).is_empty());
    }

    #[test]
    fn other_kinds_are_not_masked() {
        let mut cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"a": "visible"}});
        mask_secret(&mut cm, None);
        assert_eq!(cm["data"]["a"], "visible");
    }
}
