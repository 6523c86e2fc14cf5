//! Object identity ([`ResourceKey`]) and Argo CD's annotation-based resource tracking
//! ([`TrackingId`]).
//!
//! Argo CD marks every object it applies with the annotation
//! `argocd.argoproj.io/tracking-id: <app>:<group>/<Kind>:<namespace>/<name>`. An object belongs to
//! an app only when that annotation names the app *and* describes the object itself: an annotation
//! copied onto another object (by `kubectl get -o yaml | kubectl apply`, or by an operator that
//! clones metadata) does not make the copy part of the app, so ferry neither compares nor prunes it.

use std::fmt;
use std::str::FromStr;

use serde_json::Value;

/// The annotation that records which app manages an object, in Argo CD's format.
pub const TRACKING_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";

/// The annotation that tells apart several Argo CD (or ferry) installations sharing a cluster.
pub const INSTALLATION_ID_ANNOTATION: &str = "argocd.argoproj.io/installation-id";

/// The identity of a Kubernetes object: API group, kind, namespace and name.
///
/// The version is deliberately left out: `apps/v1` and `apps/v1beta2` Deployments with the same
/// name are the same object. `group` is empty for the core group (`v1`), `namespace` is empty for
/// cluster-scoped objects.
///
/// Displayed as `apps/Deployment:ns/name`, `Service:ns/name` (core group) or
/// `rbac.authorization.k8s.io/ClusterRole:name` (cluster-scoped).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ResourceKey {
    /// API group, empty for the core group.
    pub group: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl ResourceKey {
    /// Builds a key from its four parts.
    pub fn new(
        group: impl Into<String>,
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            group: group.into(),
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// Reads the key of a Kubernetes object in JSON form (`apiVersion`, `kind`,
    /// `metadata.namespace`, `metadata.name`).
    ///
    /// Returns `None` when `apiVersion`, `kind` or `metadata.name` is missing or not a string. An
    /// object with only `metadata.generateName` has no key yet.
    pub fn from_object(obj: &Value) -> Option<Self> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        let metadata = obj.get("metadata")?;
        let name = metadata.get("name")?.as_str()?;
        let namespace = metadata
            .get("namespace")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Some(Self::new(group_of(api_version), kind, namespace, name))
    }

    /// Whether the key has no namespace, i.e. names a cluster-scoped object.
    pub fn is_cluster_scoped(&self) -> bool {
        self.namespace.is_empty()
    }
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.group.is_empty() {
            write!(f, "{}/", self.group)?;
        }
        write!(f, "{}:", self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, "{}/", self.namespace)?;
        }
        f.write_str(&self.name)
    }
}

/// The API group of an `apiVersion`: `apps` for `apps/v1`, empty for `v1`.
pub fn group_of(api_version: &str) -> &str {
    api_version
        .rsplit_once('/')
        .map(|(group, _)| group)
        .unwrap_or_default()
}

/// The value of Argo CD's tracking annotation, parsed:
/// `<app>:<group>/<Kind>:<namespace>/<name>`.
///
/// `group` is empty for core kinds (`my-app:/Service:default/web`) and `namespace` is empty for
/// cluster-scoped objects (`my-app:rbac.authorization.k8s.io/ClusterRole:/reader`). Object names
/// may contain `:` (ClusterRoles such as `system:aggregate-to-view` do), app names and kinds may
/// not.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct TrackingId {
    /// The app's name (Argo CD prefixes it with `<namespace>_` for apps outside its own namespace).
    pub app: String,
    /// API group, empty for the core group.
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace, empty for cluster-scoped objects.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl TrackingId {
    /// The tracking id that marks the object `key` as managed by `app`.
    pub fn new(app: impl Into<String>, key: &ResourceKey) -> Self {
        Self {
            app: app.into(),
            group: key.group.clone(),
            kind: key.kind.clone(),
            namespace: key.namespace.clone(),
            name: key.name.clone(),
        }
    }

    /// The object this id describes.
    pub fn key(&self) -> ResourceKey {
        ResourceKey::new(&self.group, &self.kind, &self.namespace, &self.name)
    }

    /// Whether this id names `app` and describes exactly the object `key`.
    pub fn points_at(&self, app: &str, key: &ResourceKey) -> bool {
        self.app == app
            && self.group == key.group
            && self.kind == key.kind
            && self.namespace == key.namespace
            && self.name == key.name
    }
}

impl fmt::Display for TrackingId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}:{}/{}",
            self.app, self.group, self.kind, self.namespace, self.name
        )
    }
}

/// A tracking annotation value that is not in the `<app>:<group>/<Kind>:<namespace>/<name>` form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid tracking id {value:?}: {reason}; expected <app>:<group>/<Kind>:<namespace>/<name>"
)]
pub struct TrackingIdError {
    /// The annotation value as found.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl FromStr for TrackingId {
    type Err = TrackingIdError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let fail = |reason| TrackingIdError {
            value: value.to_owned(),
            reason,
        };
        let (app, rest) = value.split_once(':').ok_or_else(|| fail("no ':' found"))?;
        let (group_kind, namespace_name) = rest
            .split_once(':')
            .ok_or_else(|| fail("missing ':' between kind and namespace"))?;
        let (group, kind) = group_kind
            .split_once('/')
            .ok_or_else(|| fail("missing '/' between group and kind"))?;
        let (namespace, name) = namespace_name
            .split_once('/')
            .ok_or_else(|| fail("missing '/' between namespace and name"))?;
        if app.is_empty() {
            return Err(fail("empty app name"));
        }
        if kind.is_empty() {
            return Err(fail("empty kind"));
        }
        if name.is_empty() {
            return Err(fail("empty object name"));
        }
        if name.contains('/') {
            return Err(fail("object name contains '/'"));
        }
        Ok(Self {
            app: app.to_owned(),
            group: group.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })
    }
}

/// Whether an object whose tracking annotation holds `annotation_value` belongs to `app`.
///
/// True only when the value parses and points at the object itself (same group, kind, namespace
/// and name): a tracking annotation copied onto another object does not count. An unparsable
/// value counts as not tracked.
pub fn is_tracked_by(
    annotation_value: &str,
    app: &str,
    group: &str,
    kind: &str,
    namespace: &str,
    name: &str,
) -> bool {
    annotation_value.parse::<TrackingId>().is_ok_and(|id| {
        id.app == app
            && id.group == group
            && id.kind == kind
            && id.namespace == namespace
            && id.name == name
    })
}

/// Whether `live` (the object `key`) belongs to `app` under the tracking `method`.
///
/// The tracking annotation decides whenever it is present. Without one, label tracking (Argo CD
/// 2's default) takes the label `app.kubernetes.io/instance: <app>` as the mark, except on
/// objects that another object owns (`ownerReferences`: ReplicaSets and Pods that copied a
/// Deployment's labels), which Argo CD does not count as the app's either.
pub fn tracks(
    method: crate::settings::TrackingMethod,
    live: &Value,
    app: &str,
    key: &ResourceKey,
) -> bool {
    match live
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(TRACKING_ANNOTATION))
        .and_then(Value::as_str)
    {
        Some(value) => is_tracked_by(value, app, &key.group, &key.kind, &key.namespace, &key.name),
        None => label_owner(method, live) == Some(app),
    }
}

/// Under label tracking, the app an object without a tracking annotation belongs to: its
/// `app.kubernetes.io/instance` label (objects owned by another object excepted). `None` under
/// the other methods.
pub fn label_owner(method: crate::settings::TrackingMethod, live: &Value) -> Option<&str> {
    if method != crate::settings::TrackingMethod::Label {
        return None;
    }
    let meta = live.get("metadata")?;
    if meta
        .get("annotations")
        .and_then(|a| a.get(TRACKING_ANNOTATION))
        .is_some()
        || meta
            .get("ownerReferences")
            .and_then(Value::as_array)
            .is_some_and(|o| !o.is_empty())
    {
        return None;
    }
    meta.get("labels")?
        .get(crate::settings::INSTANCE_LABEL)?
        .as_str()
        .filter(|v| !v.is_empty())
}

/// The tracking id in an object's annotations, if it has a valid one.
///
/// `None` when the annotation is absent; `Some(Err(_))` when it is present but malformed.
pub fn tracking_id_of(obj: &Value) -> Option<Result<TrackingId, TrackingIdError>> {
    obj.pointer("/metadata/annotations")?
        .get(TRACKING_ANNOTATION)?
        .as_str()
        .map(str::parse)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_tracking_counts_the_instance_label_when_no_annotation_decides() {
        use crate::settings::TrackingMethod::{Annotation, AnnotationAndLabel, Label};
        let key = ResourceKey::new("", "ConfigMap", "shop", "web-config");
        let labelled = |app: &str| {
            json!({"metadata": {"name": "web-config", "namespace": "shop",
                "labels": {"app.kubernetes.io/instance": app}}})
        };
        assert!(tracks(Label, &labelled("web"), "web", &key));
        assert!(!tracks(Label, &labelled("other"), "web", &key));
        assert_eq!(label_owner(Label, &labelled("other")), Some("other"));
        // Under the annotation methods the label alone means nothing.
        assert!(!tracks(Annotation, &labelled("web"), "web", &key));
        assert!(!tracks(AnnotationAndLabel, &labelled("web"), "web", &key));
        assert_eq!(label_owner(AnnotationAndLabel, &labelled("web")), None);
        // An annotation decides, whatever the label says.
        let mut both = labelled("web");
        both["metadata"]["annotations"] =
            json!({TRACKING_ANNOTATION: "other:/ConfigMap:shop/web-config"});
        assert!(!tracks(Label, &both, "web", &key));
        assert!(tracks(Label, &both, "other", &key));
        assert_eq!(label_owner(Label, &both), None);
        // Objects owned by another object are not the app's, label or not.
        let mut owned = labelled("web");
        owned["metadata"]["ownerReferences"] = json!([{"kind": "Deployment", "name": "web"}]);
        assert!(!tracks(Label, &owned, "web", &key));
        // No label, no annotation: nobody's.
        let bare = json!({"metadata": {"name": "web-config"}});
        assert!(!tracks(Label, &bare, "web", &key));
        assert_eq!(label_owner(Label, &bare), None);
    }

    #[test]
    fn display_tracking_id_for_namespaced_and_core_and_cluster_scoped() {
        let deploy = TrackingId::new(
            "guestbook",
            &ResourceKey::new("apps", "Deployment", "web", "ui"),
        );
        assert_eq!(deploy.to_string(), "guestbook:apps/Deployment:web/ui");
        let svc = TrackingId::new("guestbook", &ResourceKey::new("", "Service", "web", "ui"));
        assert_eq!(svc.to_string(), "guestbook:/Service:web/ui");
        let ns = TrackingId::new("guestbook", &ResourceKey::new("", "Namespace", "", "web"));
        assert_eq!(ns.to_string(), "guestbook:/Namespace:/web");
    }

    #[test]
    fn parse_round_trips_display() {
        for text in [
            "guestbook:apps/Deployment:web/ui",
            "guestbook:/Service:web/ui",
            "guestbook:/Namespace:/web",
            "argocd_root:argoproj.io/Application:argocd/child",
        ] {
            let id: TrackingId = text.parse().unwrap();
            assert_eq!(id.to_string(), text);
        }
    }

    #[test]
    fn parse_splits_fields() {
        let id: TrackingId = "app:apps/Deployment:ns/name".parse().unwrap();
        assert_eq!(
            id,
            TrackingId {
                app: "app".into(),
                group: "apps".into(),
                kind: "Deployment".into(),
                namespace: "ns".into(),
                name: "name".into(),
            }
        );
        assert_eq!(
            id.key(),
            ResourceKey::new("apps", "Deployment", "ns", "name")
        );
    }

    #[test]
    fn parse_accepts_colons_in_object_names() {
        let id: TrackingId = "rbac:rbac.authorization.k8s.io/ClusterRole:/system:aggregate-to-view"
            .parse()
            .unwrap();
        assert_eq!(id.name, "system:aggregate-to-view");
        assert_eq!(id.namespace, "");
        assert_eq!(id.kind, "ClusterRole");
    }

    #[test]
    fn parse_rejects_malformed_values_and_names_them() {
        for bad in [
            "",
            "just-an-app",
            "app:apps/Deployment",
            "app:Deployment:ns/name",
            "app:apps/Deployment:name",
            ":apps/Deployment:ns/name",
            "app:apps/:ns/name",
            "app:apps/Deployment:ns/",
        ] {
            let err = bad.parse::<TrackingId>().unwrap_err();
            assert_eq!(err.value, bad);
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn tracked_only_when_annotation_points_at_the_object_itself() {
        let value = "guestbook:apps/Deployment:web/ui";
        assert!(is_tracked_by(
            value,
            "guestbook",
            "apps",
            "Deployment",
            "web",
            "ui"
        ));
        // Other app.
        assert!(!is_tracked_by(
            value,
            "other",
            "apps",
            "Deployment",
            "web",
            "ui"
        ));
        // Annotation copied onto another object: other name, namespace, kind or group.
        assert!(!is_tracked_by(
            value,
            "guestbook",
            "apps",
            "Deployment",
            "web",
            "ui-copy"
        ));
        assert!(!is_tracked_by(
            value,
            "guestbook",
            "apps",
            "Deployment",
            "prod",
            "ui"
        ));
        assert!(!is_tracked_by(
            value,
            "guestbook",
            "apps",
            "StatefulSet",
            "web",
            "ui"
        ));
        assert!(!is_tracked_by(
            value,
            "guestbook",
            "",
            "Deployment",
            "web",
            "ui"
        ));
        // Garbage never tracks.
        assert!(!is_tracked_by(
            "guestbook",
            "guestbook",
            "apps",
            "Deployment",
            "web",
            "ui"
        ));
    }

    #[test]
    fn points_at_compares_app_and_key() {
        let key = ResourceKey::new("", "ConfigMap", "ns", "cfg");
        let id = TrackingId::new("a", &key);
        assert!(id.points_at("a", &key));
        assert!(!id.points_at("b", &key));
        assert!(!id.points_at("a", &ResourceKey::new("", "ConfigMap", "ns", "other")));
    }

    #[test]
    fn resource_key_display() {
        assert_eq!(
            ResourceKey::new("apps", "Deployment", "ns", "name").to_string(),
            "apps/Deployment:ns/name"
        );
        assert_eq!(
            ResourceKey::new("", "Service", "ns", "web").to_string(),
            "Service:ns/web"
        );
        assert_eq!(
            ResourceKey::new("rbac.authorization.k8s.io", "ClusterRole", "", "view").to_string(),
            "rbac.authorization.k8s.io/ClusterRole:view"
        );
    }

    #[test]
    fn resource_key_orders_by_group_kind_namespace_name() {
        let mut keys = [
            ResourceKey::new("apps", "Deployment", "b", "x"),
            ResourceKey::new("", "Service", "a", "y"),
            ResourceKey::new("apps", "Deployment", "a", "z"),
            ResourceKey::new("apps", "DaemonSet", "z", "z"),
        ];
        keys.sort();
        let shown: Vec<String> = keys.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "Service:a/y",
                "apps/DaemonSet:z/z",
                "apps/Deployment:a/z",
                "apps/Deployment:b/x"
            ]
        );
    }

    #[test]
    fn resource_key_from_object() {
        let obj = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"}
        });
        assert_eq!(
            ResourceKey::from_object(&obj),
            Some(ResourceKey::new("apps", "Deployment", "shop", "web"))
        );
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        let key = ResourceKey::from_object(&ns).unwrap();
        assert_eq!(key, ResourceKey::new("", "Namespace", "", "shop"));
        assert!(key.is_cluster_scoped());
        let unnamed = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"generateName": "migrate-"}});
        assert_eq!(ResourceKey::from_object(&unnamed), None);
        assert_eq!(ResourceKey::from_object(&json!({"kind": "Pod"})), None);
    }

    #[test]
    fn tracking_id_of_reads_the_annotation() {
        let obj = json!({"metadata": {"annotations": {TRACKING_ANNOTATION: "a:/ConfigMap:ns/c"}}});
        assert_eq!(
            tracking_id_of(&obj).unwrap().unwrap().key(),
            ResourceKey::new("", "ConfigMap", "ns", "c")
        );
        let bad = json!({"metadata": {"annotations": {TRACKING_ANNOTATION: "nonsense"}}});
        assert!(tracking_id_of(&bad).unwrap().is_err());
        assert!(tracking_id_of(&json!({"metadata": {}})).is_none());
    }

    #[test]
    fn group_of_api_versions() {
        assert_eq!(group_of("v1"), "");
        assert_eq!(group_of("apps/v1"), "apps");
        assert_eq!(group_of("argoproj.io/v1alpha1"), "argoproj.io");
    }
}
