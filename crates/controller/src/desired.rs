//! Turning rendered manifests into the objects ferry applies: each resolved against the
//! destination cluster's API (namespaced or not), put into the destination namespace when it
//! names none, and marked with Argo CD's tracking annotation.

use std::collections::{BTreeMap, HashMap};

use ferry_cluster::{ClusterClient, ClusterError};
use ferry_core::order::{HookType, hook_types};
use ferry_core::tracking::{ResourceKey, TRACKING_ANNOTATION, TrackingId, group_of};
use ferry_source::render::Manifest;
use serde_json::{Value, json};

/// One object the app wants in the cluster.
#[derive(Debug, Clone)]
pub struct DesiredObject {
    /// Its identity.
    pub key: ResourceKey,
    /// The manifest, ready to apply: namespace set, tracking annotation added.
    pub object: Value,
    /// The file it came from, relative to the repository root, and the line it starts on.
    pub origin: String,
    /// Its hook types; empty for an ordinary resource.
    pub hooks: Vec<HookType>,
    /// A hook named by `metadata.generateName`: each run creates a new object, and `key.name`
    /// holds the prefix.
    pub generate_name: bool,
}

impl DesiredObject {
    /// Whether this is a hook rather than an ordinary resource.
    pub fn is_hook(&self) -> bool {
        !self.hooks.is_empty()
    }
}

impl DesiredObject {
    /// The object's `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.object["apiVersion"].as_str().unwrap_or_default()
    }
}

/// Why the desired objects could not be worked out; nothing is applied or pruned then.
#[derive(Debug, thiserror::Error)]
pub enum DesiredError {
    /// The same object appears twice.
    #[error("{key} is defined twice: in {first} and in {second}; keep one")]
    Duplicate {
        /// The object.
        key: ResourceKey,
        /// Where it is first defined.
        first: String,
        /// Where it is defined again.
        second: String,
    },
    /// The cluster does not know the kind, and no CRD in the app defines it.
    #[error("{origin}: {source}")]
    UnknownKind {
        /// Where the object is defined.
        origin: String,
        /// The cluster's answer.
        #[source]
        source: ClusterError,
    },
    /// An object lacks apiVersion, kind or metadata.name.
    #[error("{origin}: the object has no {field}")]
    Malformed {
        /// Where the object is defined.
        origin: String,
        /// What is missing.
        field: &'static str,
    },
}

/// Resolves, namespaces and annotates `manifests` for app `app` whose destination namespace is
/// `namespace`.
pub async fn prepare_desired(
    manifests: Vec<Manifest>,
    app: &str,
    namespace: &str,
    cluster: &ClusterClient,
) -> Result<Vec<DesiredObject>, DesiredError> {
    // Kinds defined by CRDs in this same app: known before the CRD exists in the cluster.
    let crd_scopes: HashMap<(String, String), bool> = manifests
        .iter()
        .filter(|m| m.object["kind"] == "CustomResourceDefinition")
        .filter_map(|m| {
            let spec = m.object.get("spec")?;
            let group = spec.get("group")?.as_str()?.to_string();
            let kind = spec.pointer("/names/kind")?.as_str()?.to_string();
            Some((
                (group, kind),
                spec.get("scope").and_then(Value::as_str) != Some("Cluster"),
            ))
        })
        .collect();

    let mut out: Vec<DesiredObject> = Vec::with_capacity(manifests.len());
    let mut seen: BTreeMap<ResourceKey, String> = BTreeMap::new();
    for m in manifests {
        let origin = format!("{}:{}", m.source_file, m.line);
        let mut object = m.object;
        let malformed = |field| DesiredError::Malformed {
            origin: origin.clone(),
            field,
        };
        let api_version = object["apiVersion"]
            .as_str()
            .ok_or_else(|| malformed("apiVersion"))?
            .to_string();
        let kind = object["kind"]
            .as_str()
            .ok_or_else(|| malformed("kind"))?
            .to_string();
        let hooks = hook_types(&object);
        let generate_name = match object.pointer("/metadata/name").and_then(Value::as_str) {
            Some(_) => false,
            // Hooks may be named by generateName, a fresh name per run.
            None if !hooks.is_empty()
                && object
                    .pointer("/metadata/generateName")
                    .and_then(Value::as_str)
                    .is_some() =>
            {
                true
            }
            None => return Err(malformed("metadata.name")),
        };
        let group = group_of(&api_version).to_string();
        let namespaced = match cluster.resolve(&api_version, &kind).await {
            Ok(target) => target.namespaced,
            Err(e @ ClusterError::UnknownKind { .. }) => {
                match crd_scopes.get(&(group.clone(), kind.clone())) {
                    Some(namespaced) => *namespaced,
                    None => return Err(DesiredError::UnknownKind { origin, source: e }),
                }
            }
            Err(e) => return Err(DesiredError::UnknownKind { origin, source: e }),
        };
        let meta = object["metadata"]
            .as_object_mut()
            .expect("metadata.name was found above");
        if namespaced {
            let has_ns = meta
                .get("namespace")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty());
            if !has_ns {
                meta.insert(
                    "namespace".into(),
                    json!(if namespace.is_empty() {
                        "default"
                    } else {
                        namespace
                    }),
                );
            }
        } else {
            meta.remove("namespace");
        }
        let key = if generate_name {
            ResourceKey::new(
                &group,
                &kind,
                object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                object["metadata"]["generateName"]
                    .as_str()
                    .unwrap_or_default(),
            )
        } else {
            ResourceKey::from_object(&object).expect("apiVersion, kind and name were checked")
        };
        if let Some(first) = seen.get(&key) {
            return Err(DesiredError::Duplicate {
                key,
                first: first.clone(),
                second: origin,
            });
        }
        seen.insert(key.clone(), origin.clone());
        let annotations = object["metadata"]
            .as_object_mut()
            .expect("metadata is an object")
            .entry("annotations")
            .or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations[TRACKING_ANNOTATION] = json!(TrackingId::new(app, &key).to_string());
        out.push(DesiredObject {
            key,
            object,
            origin,
            hooks,
            generate_name,
        });
    }
    Ok(out)
}
