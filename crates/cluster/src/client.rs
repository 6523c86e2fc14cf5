use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PropagationPolicy,
};
use kube::core::GroupVersionKind;
use kube::discovery::{ApiResource, Scope};
use serde_json::Value;

/// Errors from talking to a cluster. Messages name the object and say what to do.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The API server does not serve this kind (for a custom resource: its CRD is missing).
    #[error(
        "the cluster has no kind {kind} in {api_version}: if it is a custom resource, install its \
         CustomResourceDefinition first (or sync it in the same app)"
    )]
    UnknownKind {
        /// The object's apiVersion.
        api_version: String,
        /// The object's kind.
        kind: String,
    },
    /// The object lacks `apiVersion`, `kind` or `metadata.name`.
    #[error("object is missing {field}: every manifest needs apiVersion, kind and metadata.name")]
    Malformed {
        /// The missing field.
        field: &'static str,
    },
    /// The API server refused the request for this object.
    #[error("{verb} {object}: {message}")]
    Rejected {
        /// What was being done (apply, dry-run apply, delete, get).
        verb: &'static str,
        /// `group/Kind namespace/name`.
        object: String,
        /// The API server's message.
        message: String,
        /// The HTTP status code.
        code: u16,
        /// The underlying error.
        #[source]
        source: Box<kube::Error>,
    },
    /// Something did not happen within its deadline.
    #[error("{what} did not happen within {seconds}s")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The deadline.
        seconds: u64,
    },
    /// Any other client error (connection, discovery).
    #[error("{what}: {source}")]
    Client {
        /// What was being done.
        what: String,
        /// The underlying error.
        #[source]
        source: Box<kube::Error>,
    },
}

impl ClusterError {
    /// The API server's status code, when it answered with one.
    pub fn code(&self) -> Option<u16> {
        match self {
            ClusterError::Rejected { code, .. } => Some(*code),
            _ => None,
        }
    }
}

/// Where the objects of one kind live: the API resource and whether it is namespaced.
#[derive(Debug, Clone)]
pub struct ApiTarget {
    /// Group, version, kind and plural.
    pub resource: ApiResource,
    /// Whether objects of this kind live in namespaces.
    pub namespaced: bool,
}

/// A reference to one object: enough to address it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectRef {
    /// `apiVersion`, e.g. `apps/v1`.
    pub api_version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace; empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ObjectRef {
    /// The reference of a JSON object (namespace empty when absent).
    pub fn of(obj: &Value) -> Result<ObjectRef, ClusterError> {
        let s = |ptr: &str| obj.pointer(ptr).and_then(Value::as_str).map(str::to_string);
        Ok(ObjectRef {
            api_version: s("/apiVersion").ok_or(ClusterError::Malformed {
                field: "apiVersion",
            })?,
            kind: s("/kind").ok_or(ClusterError::Malformed { field: "kind" })?,
            namespace: s("/metadata/namespace").unwrap_or_default(),
            name: s("/metadata/name").ok_or(ClusterError::Malformed {
                field: "metadata.name",
            })?,
        })
    }

    /// The API group (empty for core kinds).
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map(|(g, _)| g)
            .unwrap_or("")
    }
}

impl std::fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let group = self.group();
        if !group.is_empty() {
            write!(f, "{group}/")?;
        }
        write!(f, "{}", self.kind)?;
        if self.namespace.is_empty() {
            write!(f, " {}", self.name)
        } else {
            write!(f, " {}/{}", self.namespace, self.name)
        }
    }
}

/// How a server-side apply is done.
#[derive(Debug, Clone)]
pub struct ApplyOptions {
    /// The field manager recorded in `managedFields`.
    pub field_manager: String,
    /// Take over fields other managers own (ferry's default, as `kubectl apply --force-conflicts`).
    pub force: bool,
    /// Only ask the API server what the result would be.
    pub dry_run: bool,
}

impl ApplyOptions {
    /// A forced apply by `field_manager`.
    pub fn new(field_manager: &str) -> Self {
        ApplyOptions {
            field_manager: field_manager.to_string(),
            force: true,
            dry_run: false,
        }
    }

    /// The same options, as a dry run.
    pub fn dry_run(mut self) -> Self {
        self.dry_run = true;
        self
    }
}

/// Deletion propagation, as `PrunePropagationPolicy` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Propagation {
    /// Dependents first, then the owner (ferry's and Argo CD's default).
    #[default]
    Foreground,
    /// The owner now, dependents later by the garbage collector.
    Background,
    /// Leave dependents in place.
    Orphan,
}

/// A cluster, with discovery cached per kind. Cheap to clone.
#[derive(Clone)]
pub struct ClusterClient {
    client: kube::Client,
    name: Arc<str>,
    targets: Arc<RwLock<HashMap<(String, String), ApiTarget>>>,
}

impl std::fmt::Debug for ClusterClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterClient")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ClusterClient {
    /// Wraps a kube client for the cluster ferry runs against (named `in-cluster`).
    pub fn new(client: kube::Client) -> Self {
        ClusterClient::named(client, "in-cluster")
    }

    /// Wraps a kube client for a cluster known as `name` (its server URL, or its registered
    /// name): the name keeps per-cluster state such as watches apart.
    pub fn named(client: kube::Client, name: &str) -> Self {
        ClusterClient {
            client,
            name: name.into(),
            targets: Arc::default(),
        }
    }

    /// The cluster's name, as given to [`ClusterClient::named`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The underlying kube client.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Resolves `apiVersion` + `kind` to an API endpoint, asking discovery on a cache miss.
    pub async fn resolve(&self, api_version: &str, kind: &str) -> Result<ApiTarget, ClusterError> {
        let key = (api_version.to_string(), kind.to_string());
        if let Some(t) = self.targets.read().expect("discovery cache lock").get(&key) {
            return Ok(t.clone());
        }
        let (group, version) = match api_version.split_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        let unknown = || ClusterError::UnknownKind {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        };
        let (resource, caps) = match kube::discovery::pinned_kind(&self.client, &gvk).await {
            Ok(found) => found,
            Err(kube::Error::Api(s)) if s.code == 404 => return Err(unknown()),
            Err(kube::Error::Discovery(_)) => return Err(unknown()),
            Err(source) => {
                return Err(ClusterError::Client {
                    what: format!("discovering {kind} in {api_version}"),
                    source: Box::new(source),
                });
            }
        };
        let target = ApiTarget {
            resource,
            namespaced: caps.scope == Scope::Namespaced,
        };
        self.targets
            .write()
            .expect("discovery cache lock")
            .insert(key, target.clone());
        Ok(target)
    }

    fn api(&self, target: &ApiTarget, namespace: &str) -> Api<DynamicObject> {
        if target.namespaced {
            Api::namespaced_with(self.client.clone(), namespace, &target.resource)
        } else {
            Api::all_with(self.client.clone(), &target.resource)
        }
    }

    /// Server-side applies `obj` (or dry-runs it) and returns the object as the API server has
    /// it, or would have it, afterwards.
    pub async fn apply(&self, obj: &Value, opts: &ApplyOptions) -> Result<Value, ClusterError> {
        let r = ObjectRef::of(obj)?;
        let target = self.resolve(&r.api_version, &r.kind).await?;
        let api = self.api(&target, &r.namespace);
        let mut params = PatchParams::apply(&opts.field_manager);
        params.force = opts.force;
        params.dry_run = opts.dry_run;
        let verb = if opts.dry_run {
            "dry-run apply"
        } else {
            "apply"
        };
        let applied = api
            .patch(&r.name, &params, &Patch::Apply(obj))
            .await
            .map_err(|e| rejected(verb, &r, e))?;
        Ok(serde_json::to_value(applied).expect("a DynamicObject serializes"))
    }

    /// Creates an object with a plain POST (it may use `metadata.generateName`), or replaces
    /// the existing one with a PUT when `replace` is set and it exists (`Replace=true`).
    /// Returns the object as stored.
    pub async fn create_or_replace(
        &self,
        obj: &Value,
        replace: bool,
        opts: &ApplyOptions,
    ) -> Result<Value, ClusterError> {
        let s = |ptr: &str| {
            obj.pointer(ptr)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let r = ObjectRef {
            api_version: s("/apiVersion"),
            kind: s("/kind"),
            namespace: s("/metadata/namespace"),
            name: s("/metadata/name"),
        };
        let target = self.resolve(&r.api_version, &r.kind).await?;
        let api = self.api(&target, &r.namespace);
        let mut object: DynamicObject = serde_json::from_value(obj.clone())
            .map_err(|_| ClusterError::Malformed { field: "metadata" })?;
        let params = kube::api::PostParams {
            dry_run: opts.dry_run,
            field_manager: Some(opts.field_manager.clone()),
        };
        if replace
            && !r.name.is_empty()
            && let Some(live) = api
                .get_opt(&r.name)
                .await
                .map_err(|e| rejected("get", &r, e))?
        {
            object.metadata.resource_version = live.metadata.resource_version;
            let stored = api
                .replace(&r.name, &params, &object)
                .await
                .map_err(|e| rejected("replace", &r, e))?;
            return Ok(serde_json::to_value(stored).expect("a DynamicObject serializes"));
        }
        let stored = api
            .create(&params, &object)
            .await
            .map_err(|e| rejected("create", &r, e))?;
        Ok(serde_json::to_value(stored).expect("a DynamicObject serializes"))
    }

    /// Reads one object; `None` when it does not exist.
    pub async fn get(&self, r: &ObjectRef) -> Result<Option<Value>, ClusterError> {
        let target = self.resolve(&r.api_version, &r.kind).await?;
        let found = self
            .api(&target, &r.namespace)
            .get_opt(&r.name)
            .await
            .map_err(|e| rejected("get", r, e))?;
        Ok(found.map(|o| serde_json::to_value(o).expect("a DynamicObject serializes")))
    }

    /// Lists the objects of one kind, in one namespace or (empty `namespace`) everywhere,
    /// optionally filtered by a label selector.
    pub async fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        label_selector: Option<&str>,
    ) -> Result<Vec<Value>, ClusterError> {
        let target = self.resolve(api_version, kind).await?;
        let api = if target.namespaced && !namespace.is_empty() {
            Api::namespaced_with(self.client.clone(), namespace, &target.resource)
        } else {
            Api::<DynamicObject>::all_with(self.client.clone(), &target.resource)
        };
        let mut params = ListParams::default();
        if let Some(sel) = label_selector {
            params = params.labels(sel);
        }
        let list = api
            .list(&params)
            .await
            .map_err(|source| ClusterError::Client {
                what: format!("listing {kind} in {api_version}"),
                source: Box::new(source),
            })?;
        Ok(list
            .items
            .into_iter()
            .map(|o| {
                let mut v = serde_json::to_value(o).expect("a DynamicObject serializes");
                // List items come without type information; put it back.
                v["apiVersion"] = Value::String(api_version.to_string());
                v["kind"] = Value::String(kind.to_string());
                v
            })
            .collect())
    }

    /// Deletes one object; deleting one that is already gone is not an error. Returns whether
    /// a deletion was requested.
    pub async fn delete(
        &self,
        r: &ObjectRef,
        propagation: Propagation,
    ) -> Result<bool, ClusterError> {
        let target = self.resolve(&r.api_version, &r.kind).await?;
        let params = DeleteParams {
            propagation_policy: Some(match propagation {
                Propagation::Foreground => PropagationPolicy::Foreground,
                Propagation::Background => PropagationPolicy::Background,
                Propagation::Orphan => PropagationPolicy::Orphan,
            }),
            ..DeleteParams::default()
        };
        match self
            .api(&target, &r.namespace)
            .delete(&r.name, &params)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(rejected("delete", r, e)),
        }
    }

    /// Waits until the CustomResourceDefinition `name` reports `Established`, so objects of its
    /// kind can be created, then forgets cached discovery so the new kind resolves.
    pub async fn wait_established(
        &self,
        name: &str,
        timeout: std::time::Duration,
    ) -> Result<(), ClusterError> {
        let r = ObjectRef {
            api_version: "apiextensions.k8s.io/v1".into(),
            kind: "CustomResourceDefinition".into(),
            namespace: String::new(),
            name: name.to_string(),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let crd = self.get(&r).await?;
            let established = crd
                .as_ref()
                .and_then(|c| c.pointer("/status/conditions"))
                .and_then(Value::as_array)
                .is_some_and(|cs| {
                    cs.iter()
                        .any(|c| c["type"] == "Established" && c["status"] == "True")
                });
            // Established is not yet served: the API server's discovery picks the new kind up
            // a moment later (longer on a busy machine). Wait until it resolves too, or a
            // resource of the kind applied next fails with "no kind".
            if established && self.served_by_discovery(crd.as_ref()).await {
                self.forget_discovery();
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ClusterError::Timeout {
                    what: format!("CustomResourceDefinition {name} being established"),
                    seconds: timeout.as_secs(),
                });
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Whether discovery serves the kind of the CustomResourceDefinition `crd` (its group, its
    /// first served version); true when the definition does not say (nothing to wait for).
    async fn served_by_discovery(&self, crd: Option<&Value>) -> bool {
        let Some(crd) = crd else { return false };
        let group = crd.pointer("/spec/group").and_then(Value::as_str);
        let kind = crd.pointer("/spec/names/kind").and_then(Value::as_str);
        let version = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .and_then(|vs| vs.iter().find(|v| v["served"] == true))
            .and_then(|v| v["name"].as_str());
        let (Some(group), Some(kind), Some(version)) = (group, kind, version) else {
            return true;
        };
        let gvk = GroupVersionKind::gvk(group, version, kind);
        kube::discovery::pinned_kind(&self.client, &gvk)
            .await
            .is_ok()
    }

    /// Forgets what discovery said about every kind, e.g. after CRDs changed.
    pub fn forget_discovery(&self) {
        self.targets.write().expect("discovery cache lock").clear();
    }
}

fn rejected(verb: &'static str, r: &ObjectRef, e: kube::Error) -> ClusterError {
    let (message, code) = match &e {
        kube::Error::Api(s) => (s.message.clone(), s.code),
        other => (other.to_string(), 0),
    };
    ClusterError::Rejected {
        verb,
        object: r.to_string(),
        message,
        code,
        source: Box::new(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn object_refs_name_group_kind_namespace_and_name() {
        let r = ObjectRef::of(&json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"}
        }))
        .unwrap();
        assert_eq!(r.group(), "apps");
        assert_eq!(r.to_string(), "apps/Deployment shop/web");
        let ns = ObjectRef::of(
            &json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        )
        .unwrap();
        assert_eq!(ns.group(), "");
        assert_eq!(ns.to_string(), "Namespace shop");
    }

    #[test]
    fn a_manifest_without_a_name_is_malformed() {
        let err = ObjectRef::of(&json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {}}))
            .unwrap_err();
        assert!(err.to_string().contains("metadata.name"), "{err}");
    }
}
