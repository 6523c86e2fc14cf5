//! Turning rendered manifests into the objects ferry applies: each resolved against the
//! destination cluster's API (namespaced or not), put into the destination namespace when it
//! names none, and marked with Argo CD's tracking annotation.

use std::collections::{BTreeMap, HashMap};

use ferry_cluster::{ClusterClient, ClusterError};
use ferry_core::order::{HookType, hook_types};
use ferry_core::tracking::{ResourceKey, TRACKING_ANNOTATION, TrackingId, group_of};
use ferry_source::render::Manifest;
use std::time::Duration;

use ferry_core::application::{Application, RefreshType};

use crate::error::AppError;
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

/// The result of working out an app's desired state.
pub(crate) struct Desired {
    /// The revision of the first rendered source (the app's revision).
    pub(crate) revision: String,
    /// Every source's revision, joined: a new commit in any of them is a change.
    pub(crate) revisions: String,
    /// The first rendered source's commit.
    pub(crate) commit: Option<ferry_source::git::CommitInfo>,
    /// Ordinary resources: compared, applied, pruned.
    pub(crate) objects: Vec<DesiredObject>,
    /// Hooks that run in a sync phase (PreSync, Sync, PostSync, SyncFail); never compared.
    pub(crate) hooks: Vec<DesiredObject>,
    /// Hooks that run when the app is deleted (PreDelete, PostDelete).
    pub(crate) delete_hooks: Vec<DesiredObject>,
    /// Directory, Kustomize or Helm, per rendered source.
    pub(crate) source_types: Vec<String>,
    /// Objects Git declares that `argocd-cm`'s resource exclusions/inclusions leave alone.
    pub(crate) excluded: Vec<String>,
}

impl crate::differ::Differ {
    /// Fetches and renders every source of `app` (admitted to `target`) and prepares the
    /// objects: tracked, filtered by `argocd-cm`'s exclusions, checked against the project,
    /// hooks apart. One failure stops everything: nothing is applied, nothing pruned.
    pub(crate) async fn desired(
        &self,
        app: &Application,
        target: &crate::admit::Target,
        refresh: Option<RefreshType>,
        fetch_max_age: Duration,
        revision_override: Option<&str>,
    ) -> Result<Desired, AppError> {
        let sources = app.spec.effective_sources();
        // Sources with `ref` lend their checkout to the others' Helm value files (`$ref/...`).
        let mut value_refs = BTreeMap::new();
        // Every source's revision: a new commit in any of them is a change.
        let mut all_revisions = Vec::new();
        for source in sources.iter().filter(|s| s.ref_.is_some()) {
            let (sha, root) = self.checkout_source(source, fetch_max_age, None).await?;
            all_revisions.push(sha);
            value_refs.insert(source.ref_.clone().unwrap_or_default(), root);
        }
        // Render every source; one failure stops everything (nothing applied, nothing pruned).
        let mut manifests = Vec::new();
        let mut revision = String::new();
        let mut commit = None;
        let mut source_types = Vec::new();
        for source in &sources {
            if ferry_source::render::application::is_ref_only(source) {
                continue; // a `ref` source only lends its files to others
            }
            let rendered = self
                .render_source(
                    app,
                    source,
                    &value_refs,
                    refresh,
                    fetch_max_age,
                    revision_override,
                )
                .await?;
            all_revisions.push(rendered.revision.clone());
            if revision.is_empty() {
                revision = rendered.revision;
                commit = rendered.commit;
            }
            source_types.push(rendered.source_type);
            manifests.extend(rendered.output.manifests.iter().cloned());
        }
        let settings = self.settings.current().await;
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let mut objects = prepare_desired(manifests, name, &target.namespace, &target.cluster)
            .await
            .map_err(|e| AppError::unavailable(e.to_string()))?;
        crate::settings::add_tracking_label(&mut objects, name, &settings);
        let server = crate::admit::cluster_server(&app.spec);
        let (excluded, kept): (Vec<DesiredObject>, Vec<DesiredObject>) = objects
            .into_iter()
            .partition(|o| settings.is_excluded(&o.key.group, &o.key.kind, &server));
        let objects = kept;
        let excluded: Vec<String> = excluded
            .iter()
            .map(|o| format!("{} ({})", o.key, o.origin))
            .collect();
        for o in &objects {
            target.admit_object(o)?;
        }

        // PreDelete and PostDelete hooks run when the app is deleted (see `finalize`).
        let delete_hooks: Vec<DesiredObject> = objects
            .iter()
            .filter(|o| o.hooks.iter().any(|h| h.deletion_phase().is_some()))
            .cloned()
            .collect();
        // Hooks run during syncs only; `Skip` and the delete hooks leave the object out of the
        // sync altogether.
        let (hooks, objects): (Vec<DesiredObject>, Vec<DesiredObject>) = objects
            .into_iter()
            .filter(|o| !o.is_hook() || o.hooks.iter().any(|h| h.phase().is_some()))
            .partition(DesiredObject::is_hook);
        Ok(Desired {
            revision,
            revisions: all_revisions.join(","),
            commit,
            objects,
            hooks,
            delete_hooks,
            source_types,
            excluded,
        })
    }
}
