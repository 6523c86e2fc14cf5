//! Small typed-less helpers over kube's dynamic API: the kinds a rollout touches, read and
//! written as JSON.

use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::Value;

/// The field manager of everything the rollout controller writes.
pub const FIELD_MANAGER: &str = "ferry-rollouts";

/// A kind ferry's rollouts read or write.
#[derive(Clone, Copy, Debug)]
pub struct Kind {
    /// The group ("" for the core group).
    pub group: &'static str,
    /// The version.
    pub version: &'static str,
    /// The kind.
    pub kind: &'static str,
    /// The plural resource name.
    pub plural: &'static str,
}

/// `argoproj.io/v1alpha1 Rollout`.
pub const ROLLOUT: Kind = Kind {
    group: "argoproj.io",
    version: "v1alpha1",
    kind: "Rollout",
    plural: "rollouts",
};
/// `apps/v1 ReplicaSet`.
pub const REPLICA_SET: Kind = Kind {
    group: "apps",
    version: "v1",
    kind: "ReplicaSet",
    plural: "replicasets",
};
/// `apps/v1 Deployment`.
pub const DEPLOYMENT: Kind = Kind {
    group: "apps",
    version: "v1",
    kind: "Deployment",
    plural: "deployments",
};
/// `v1 Service`.
pub const SERVICE: Kind = Kind {
    group: "",
    version: "v1",
    kind: "Service",
    plural: "services",
};
/// `networking.k8s.io/v1 Ingress`.
pub const INGRESS: Kind = Kind {
    group: "networking.k8s.io",
    version: "v1",
    kind: "Ingress",
    plural: "ingresses",
};
/// `gateway.networking.k8s.io/v1 HTTPRoute`.
pub const HTTP_ROUTE: Kind = Kind {
    group: "gateway.networking.k8s.io",
    version: "v1",
    kind: "HTTPRoute",
    plural: "httproutes",
};

impl Kind {
    /// The API resource.
    pub fn resource(&self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(self.group, self.version, self.kind),
            self.plural,
        )
    }

    /// The namespaced API.
    pub fn api(&self, client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), namespace, &self.resource())
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.to_owned()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// Reads an object as JSON; `None` when it does not exist.
pub async fn get(
    client: &kube::Client,
    kind: Kind,
    namespace: &str,
    name: &str,
) -> Result<Option<Value>, kube::Error> {
    match kind.api(client, namespace).get_opt(name).await? {
        Some(o) => Ok(Some(to_json(kind, o))),
        None => Ok(None),
    }
}

/// Lists the objects of a kind in a namespace, as JSON.
pub async fn list(
    client: &kube::Client,
    kind: Kind,
    namespace: &str,
) -> Result<Vec<Value>, kube::Error> {
    let list = kind
        .api(client, namespace)
        .list(&Default::default())
        .await?;
    Ok(list.items.into_iter().map(|o| to_json(kind, o)).collect())
}

fn to_json(kind: Kind, o: DynamicObject) -> Value {
    let mut v = serde_json::to_value(o).unwrap_or(Value::Null);
    // Lists leave apiVersion and kind out of their items.
    v["apiVersion"] = kind.api_version().into();
    v["kind"] = kind.kind.into();
    v
}

/// A JSON merge patch.
pub async fn merge_patch(
    client: &kube::Client,
    kind: Kind,
    namespace: &str,
    name: &str,
    patch: &Value,
) -> Result<(), kube::Error> {
    kind.api(client, namespace)
        .patch(
            name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(patch),
        )
        .await?;
    Ok(())
}

/// Creates an object.
pub async fn create(
    client: &kube::Client,
    kind: Kind,
    namespace: &str,
    obj: &Value,
) -> Result<(), kube::Error> {
    let obj: DynamicObject =
        serde_json::from_value(obj.clone()).map_err(kube::Error::SerdeError)?;
    kind.api(client, namespace)
        .create(
            &PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &obj,
        )
        .await?;
    Ok(())
}

/// Replaces an object (its `metadata.resourceVersion` guards against lost updates).
pub async fn replace(
    client: &kube::Client,
    kind: Kind,
    namespace: &str,
    obj: &Value,
) -> Result<(), kube::Error> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let obj: DynamicObject =
        serde_json::from_value(obj.clone()).map_err(kube::Error::SerdeError)?;
    kind.api(client, namespace)
        .replace(
            &name,
            &PostParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &obj,
        )
        .await?;
    Ok(())
}

/// Server-side apply, owned by the rollout controller.
pub async fn apply(
    client: &kube::Client,
    kind: Kind,
    namespace: &str,
    obj: &Value,
) -> Result<(), kube::Error> {
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    kind.api(client, namespace)
        .patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(obj),
        )
        .await?;
    Ok(())
}

/// Whether an error is "not found".
pub fn is_not_found(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 404)
}

/// Whether an error is a conflict (someone else wrote first).
pub fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409 || s.code == 422 && s.message.contains("test"))
}

/// `argoproj.io/v1alpha1 AnalysisRun`.
pub const ANALYSIS_RUN: Kind = Kind {
    group: "argoproj.io",
    version: "v1alpha1",
    kind: "AnalysisRun",
    plural: "analysisruns",
};
