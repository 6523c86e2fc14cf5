//! Watches on managed resources: one metadata-only watch per kind per cluster, shared by every
//! app. An event on an object carrying a tracking annotation marks that app's resources as
//! changed and queues the app, which is how drift (`kubectl scale`, `kubectl delete`, ...) is
//! seen within seconds.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_cluster::ClusterClient;
use ferry_core::tracking::{TRACKING_ANNOTATION, TrackingId};
use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::core::PartialObjectMeta;
use kube::discovery::ApiResource;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use tracing::debug;

use crate::queue::WorkQueue;

/// Drops `metadata.managedFields` from an object a watch keeps in a store (the Applications,
/// AppProjects and `argocd-cm`): nothing ferry does reads them from there, and they are often
/// the larger part of an object's metadata. An update that leaves them out keeps them on the
/// API server, so an object read from a store can still be written back.
pub(crate) fn drop_managed_fields_of<K: kube::Resource>(object: &mut K) {
    object.meta_mut().managed_fields = None;
}

/// The set of running watches, and where their events go.
#[derive(Clone, Default)]
pub(crate) struct WatchHub {
    started: Arc<Mutex<HashSet<String>>>,
    queue: WorkQueue,
    epochs: Arc<Mutex<HashMap<String, u64>>>,
    /// Writes ferry made itself (uid, resourceVersion): their events change nothing ferry does
    /// not know already, so they neither bump the epoch nor queue the app.
    own_writes: Arc<Mutex<HashSet<(String, String)>>>,
    /// Watches whose initial listing is done: from then on, every change is an event. (A
    /// change made while a watch is still listing, such as an object created and deleted at
    /// once, may give no event at all.)
    ready: Arc<Mutex<HashSet<String>>>,
    /// When each app's live resources were last compared: events that follow a comparison
    /// closely are gathered into one comparison (an App-of-Apps root sees an event for every
    /// child status change while its children sync).
    compared_at: Arc<Mutex<HashMap<String, Instant>>>,
    /// The namespace of the Applications ferry reconciles, in the cluster it runs in: their
    /// changes come from the controller's own Application watch ([`WatchHub::app_changed`]),
    /// not from a metadata watch, so a child's status write is told from a change of what
    /// its parent manages.
    home_apps: Option<String>,
    /// Parents whose child Applications changed only their status since the parent's last
    /// look: their next look refreshes the children's health from the watch, no comparison.
    children_stale: Arc<Mutex<HashSet<String>>>,
    /// ferry's field manager: an event whose newest write is ferry's own apply is no drift
    /// (see [`written_last_by`]).
    field_manager: Option<String>,
    /// The Applications this controller has (its watch's store) and their namespace: an event
    /// for an object tracked by an app it does not have (another ferry's, on the same cluster)
    /// queues nothing.
    known_apps: Option<(
        kube::runtime::reflector::Store<ferry_core::application::Application>,
        String,
    )>,
}

/// Events within this time after a comparison wait until it has passed, and then queue the app
/// once.
const COALESCE: Duration = Duration::from_secs(1);

/// Own writes remembered at most; an event that never comes (the watch was restarting) leaves
/// an entry behind, so the set starts over when it is this full.
const OWN_WRITES_LIMIT: usize = 100_000;

impl std::fmt::Debug for WatchHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHub")
            .field("watches", &self.started.lock().expect("watch lock").len())
            .finish()
    }
}

impl WatchHub {
    /// A hub that queues apps on `queue` and bumps their entries in `epochs`.
    pub(crate) fn new(queue: WorkQueue, epochs: Arc<Mutex<HashMap<String, u64>>>) -> Self {
        WatchHub {
            started: Arc::default(),
            queue,
            epochs,
            own_writes: Arc::default(),
            ready: Arc::default(),
            compared_at: Arc::default(),
            home_apps: None,
            children_stale: Arc::default(),
            field_manager: None,
            known_apps: None,
        }
    }

    /// Events for objects tracked by apps that are not in `store` (Applications of
    /// `namespace`) are left alone once the store has listed them.
    pub(crate) fn with_known_apps(
        mut self,
        store: kube::runtime::reflector::Store<ferry_core::application::Application>,
        namespace: &str,
    ) -> Self {
        self.known_apps = Some((store, namespace.to_string()));
        self
    }

    /// Events whose newest write is `field_manager`'s own server-side apply are ferry's own
    /// (see [`written_last_by`]).
    pub(crate) fn with_field_manager(mut self, field_manager: &str) -> Self {
        self.field_manager = Some(field_manager.to_string());
        self
    }

    /// The hub of a controller whose Applications live in `namespace` of the cluster it runs
    /// in (see [`WatchHub::app_changed`]).
    pub(crate) fn with_home_apps(mut self, namespace: &str) -> Self {
        self.home_apps = Some(namespace.to_string());
        self
    }

    /// An Application in ferry's namespace changed (`managed`: in what its parent declares,
    /// or it was deleted; else only its status or ferry's own annotations). A parent that
    /// tracks it hears of it: a managed change is drift (compared at its next look), a status
    /// change only refreshes the health it shows for the child.
    pub(crate) fn app_changed(&self, app: &ferry_core::application::Application, managed: bool) {
        let Some(parent) = tracking_app(&app.metadata) else {
            return;
        };
        if app.metadata.name.as_deref() == Some(parent.as_str()) {
            return; // an app that manages itself: its own changes queue it anyway
        }
        if managed
            && self
                .own_writes
                .lock()
                .expect("own writes lock")
                .remove(&write_id(&app.metadata))
        {
            return;
        }
        if managed {
            changed(&self.epochs, &self.compared_at, &self.queue, &parent);
        } else {
            self.children_stale
                .lock()
                .expect("children lock")
                .insert(parent.clone());
            queue_coalesced(&self.compared_at, &self.queue, &parent);
        }
    }

    /// Whether `app`'s children changed their status since this was last asked (and forgets
    /// it).
    pub(crate) fn take_children_stale(&self, app: &str) -> bool {
        self.children_stale
            .lock()
            .expect("children lock")
            .remove(app)
    }

    /// Notes that `app`'s live resources are being compared now.
    pub(crate) fn compared(&self, app: &str) {
        self.compared_at
            .lock()
            .expect("compared lock")
            .insert(app.to_string(), Instant::now());
    }

    /// Forgets `app` (deleted).
    pub(crate) fn forget(&self, app: &str) {
        self.compared_at.lock().expect("compared lock").remove(app);
        self.children_stale
            .lock()
            .expect("children lock")
            .remove(app);
    }

    /// Remembers that ferry itself wrote `live` (an apply's answer) when it changed the object
    /// (its resourceVersion differs from `before`'s): the watch event of that write is ignored.
    pub(crate) fn expect_own_write(
        &self,
        live: &serde_json::Value,
        before: Option<&serde_json::Value>,
    ) {
        let field = |v: &serde_json::Value, f: &str| {
            v.pointer(&format!("/metadata/{f}"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        };
        let (Some(uid), Some(rv)) = (field(live, "uid"), field(live, "resourceVersion")) else {
            return;
        };
        if before.and_then(|b| field(b, "resourceVersion")).as_deref() == Some(rv.as_str()) {
            return; // nothing changed: no event will come
        }
        let mut own = self.own_writes.lock().expect("own writes lock");
        if own.len() >= OWN_WRITES_LIMIT {
            own.clear();
        }
        own.insert((uid, rv));
    }

    /// The current change count of `app`'s resources.
    pub(crate) fn epoch(&self, app: &str) -> u64 {
        self.epochs
            .lock()
            .expect("epoch lock")
            .get(app)
            .copied()
            .unwrap_or_default()
    }

    /// Starts a watch on `resource` in `cluster` unless one runs already. Returns whether the
    /// watch is ready (its initial listing done), so that no change can go unseen.
    pub(crate) fn ensure(&self, cluster: &ClusterClient, resource: &ApiResource) -> bool {
        let key = format!(
            "{}|{}|{}",
            cluster.name(),
            resource.api_version,
            resource.kind
        );
        if !self.started.lock().expect("watch lock").insert(key.clone()) {
            return self.ready.lock().expect("ready lock").contains(&key);
        }
        let ready = self.ready.clone();
        debug!(watch = %key, "starting a watch");
        // An Api of PartialObjectMeta asks for metadata only: a fraction of the memory and bytes.
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(cluster.client().clone(), resource);
        let queue = self.queue.clone();
        let epochs = self.epochs.clone();
        let own_writes = self.own_writes.clone();
        let compared_at = self.compared_at.clone();
        let field_manager = self.field_manager.clone();
        let known_apps = self.known_apps.clone();
        // Applications of ferry's own namespace are told apart by the Application watch.
        let skip_namespace = self
            .home_apps
            .clone()
            .filter(|_| cluster.name() == "in-cluster" && is_application(resource));
        tokio::spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = events.next().await {
                let meta = match event {
                    Ok(Event::Apply(o)) => {
                        if own_writes
                            .lock()
                            .expect("own writes lock")
                            .remove(&write_id(&o.metadata))
                        {
                            continue;
                        }
                        // ferry's apply, seen before the sync that made it could say so.
                        if field_manager
                            .as_deref()
                            .is_some_and(|m| written_last_by(&o.metadata, m))
                        {
                            continue;
                        }
                        o.metadata
                    }
                    Ok(Event::Delete(o)) => o.metadata,
                    Ok(Event::InitDone) => {
                        ready.lock().expect("ready lock").insert(key.clone());
                        continue;
                    }
                    Ok(_) => continue, // the initial listing: nothing changed
                    Err(e) => {
                        debug!(watch = %key, "watch error (retrying): {e}");
                        continue;
                    }
                };
                if skip_namespace.is_some() && meta.namespace == skip_namespace {
                    continue;
                }
                let Some(app) = tracking_app(&meta) else {
                    continue;
                };
                // Another ferry's app (several on one cluster watch the same objects).
                if let Some((store, namespace)) = &known_apps
                    && !store.is_empty()
                    && store
                        .get(&kube::runtime::reflector::ObjectRef::new(&app).within(namespace))
                        .is_none()
                {
                    continue;
                }
                changed(&epochs, &compared_at, &queue, &app);
            }
        });
        false
    }
}

/// The app whose tracking annotation the object `meta` describes carries.
fn tracking_app(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
) -> Option<String> {
    meta.annotations
        .as_ref()?
        .get(TRACKING_ANNOTATION)?
        .parse::<TrackingId>()
        .ok()
        .map(|id| id.app)
}

/// One write of an object, as [`WatchHub::expect_own_write`] remembers it: (uid,
/// resourceVersion).
fn write_id(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> (String, String) {
    (
        meta.uid.clone().unwrap_or_default(),
        meta.resource_version.clone().unwrap_or_default(),
    )
}

/// Whether the newest write of the object `meta` describes was `manager`'s server-side apply:
/// its entry in `managedFields` is newer than every other writer's. The API server stamps an
/// entry whenever its writer changes a value, adds or removes a field, to the second; a write
/// by anyone else in the same second counts as theirs (the event is drift), so a change by
/// someone else is never taken for ferry's.
pub(crate) fn written_last_by(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    manager: &str,
) -> bool {
    let Some(entries) = &meta.managed_fields else {
        return false;
    };
    let is_ours = |e: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry| {
        e.manager.as_deref() == Some(manager)
            && e.operation.as_deref() == Some("Apply")
            && e.subresource.as_deref().unwrap_or_default().is_empty()
    };
    let Some(ours) = entries
        .iter()
        .filter(|e| is_ours(e))
        .filter_map(|e| e.time.as_ref())
        .max_by_key(|t| t.0)
    else {
        return false;
    };
    entries
        .iter()
        .filter(|e| !is_ours(e))
        .all(|e| e.time.as_ref().is_some_and(|t| t.0 < ours.0))
}

/// Whether `resource` is Argo CD's Application.
fn is_application(resource: &ApiResource) -> bool {
    resource.group == "argoproj.io" && resource.kind == "Application"
}

/// `app`'s live resources changed: its epoch moves and it is queued.
fn changed(
    epochs: &Mutex<HashMap<String, u64>>,
    compared_at: &Mutex<HashMap<String, Instant>>,
    queue: &WorkQueue,
    app: &str,
) {
    *epochs
        .lock()
        .expect("epoch lock")
        .entry(app.to_string())
        .or_default() += 1;
    queue_coalesced(compared_at, queue, app);
}

/// Queues `app`, after the rest of [`COALESCE`] when it was compared just now.
fn queue_coalesced(compared_at: &Mutex<HashMap<String, Instant>>, queue: &WorkQueue, app: &str) {
    let since = compared_at
        .lock()
        .expect("compared lock")
        .get(app)
        .map(Instant::elapsed);
    match since {
        Some(since) if since < COALESCE => queue.add_urgent_after(app, COALESCE - since),
        _ => queue.add(app),
    }
}

#[cfg(test)]
mod tests {
    use ferry_core::application::Application;
    use serde_json::json;

    use super::{drop_managed_fields_of, written_last_by};

    fn meta(
        entries: serde_json::Value,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        serde_json::from_value(json!({"name": "web", "managedFields": entries})).unwrap()
    }

    fn entry(manager: &str, operation: &str, time: &str) -> serde_json::Value {
        json!({"manager": manager, "operation": operation, "time": time,
               "fieldsType": "FieldsV1", "fieldsV1": {}})
    }

    #[test]
    fn only_an_apply_newer_than_every_other_write_is_ferrys_own() {
        let at = |s: u32| format!("2026-12-03T10:00:{s:02}Z");
        // Created by ferry: nobody else wrote.
        assert!(written_last_by(
            &meta(json!([entry("ferry", "Apply", &at(1))])),
            "ferry"
        ));
        // ferry applied after the Deployment controller's status write.
        let mut status = entry("kube-controller-manager", "Update", &at(1));
        status["subresource"] = json!("status");
        assert!(written_last_by(
            &meta(json!([entry("ferry", "Apply", &at(2)), status.clone()])),
            "ferry"
        ));
        // A status write after ferry's apply, and one in the same second: not ferry's.
        status["time"] = json!(at(3));
        assert!(!written_last_by(
            &meta(json!([entry("ferry", "Apply", &at(2)), status.clone()])),
            "ferry"
        ));
        status["time"] = json!(at(2));
        assert!(!written_last_by(
            &meta(json!([entry("ferry", "Apply", &at(2)), status])),
            "ferry"
        ));
        // kubectl scale (the scale subresource) or edit after the apply: drift.
        let mut scale = entry("kubectl", "Update", &at(5));
        scale["subresource"] = json!("scale");
        assert!(!written_last_by(
            &meta(json!([entry("ferry", "Apply", &at(4)), scale])),
            "ferry"
        ));
        // Someone else's apply, an update under ferry's name, an entry without a time, or no
        // managedFields at all: not ferry's apply.
        assert!(!written_last_by(
            &meta(json!([
                entry("ferry", "Apply", &at(1)),
                entry("helm", "Apply", &at(2))
            ])),
            "ferry"
        ));
        assert!(!written_last_by(
            &meta(json!([entry("ferry", "Update", &at(1))])),
            "ferry"
        ));
        assert!(!written_last_by(
            &meta(
                json!([entry("ferry", "Apply", &at(1)), {"manager": "x", "operation": "Update"}])
            ),
            "ferry"
        ));
        assert!(!written_last_by(
            &serde_json::from_value(json!({"name": "web"})).unwrap(),
            "ferry"
        ));
    }

    #[test]
    fn a_stored_application_keeps_everything_but_its_managed_fields() {
        let full = json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {
                "name": "web", "namespace": "argocd", "uid": "u1", "resourceVersion": "7",
                "generation": 3,
                "annotations": {"argocd.argoproj.io/refresh": "normal"},
                "labels": {"team": "a"},
                "finalizers": ["resources-finalizer.argocd.argoproj.io"],
                "managedFields": [{"manager": "ferry", "operation": "Apply",
                                   "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {}}}],
            },
            "spec": {
                "project": "default",
                "source": {"repoURL": "https://example.com/r.git", "path": "web"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
            },
            "operation": {"sync": {"revision": "abc"}},
            "status": {
                "sync": {"status": "Synced", "revision": "abc"},
                "health": {"status": "Healthy"},
                "resources": [{"version": "v1", "kind": "ConfigMap", "namespace": "web", "name": "c"}],
            },
        });
        let mut app: Application = serde_json::from_value(full.clone()).unwrap();
        assert!(app.metadata.managed_fields.is_some());
        let before = serde_json::to_value(&app).unwrap();
        drop_managed_fields_of(&mut app);
        let after = serde_json::to_value(&app).unwrap();
        let mut expected = before;
        expected["metadata"]
            .as_object_mut()
            .unwrap()
            .remove("managedFields");
        assert_eq!(after, expected);
        assert_eq!(after["status"]["sync"], full["status"]["sync"]);
        assert_eq!(after["status"]["resources"], full["status"]["resources"]);
        assert_eq!(
            after["metadata"]["annotations"],
            full["metadata"]["annotations"]
        );
        assert_eq!(after["spec"]["source"], full["spec"]["source"]);
        assert!(after["metadata"].get("managedFields").is_none());
    }
}
