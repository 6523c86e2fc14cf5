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
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
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
    /// The watches started, and when.
    started: Arc<Mutex<HashMap<String, Instant>>>,
    /// Told whenever a watch becomes ready.
    ready_changed: Arc<tokio::sync::Notify>,
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
    /// Per watch (as `started` names it), the objects it has seen and not seen deleted, as
    /// `namespace/name`: an object a ready watch does not know does not exist, so comparing
    /// it needs no GET (as Argo CD reads live state from its cluster cache).
    present: Arc<Mutex<HashMap<String, HashSet<String>>>>,
}

/// Events within this time after a comparison wait until it has passed, and then queue the app
/// once.
const COALESCE: Duration = Duration::from_secs(1);

/// How long after a watch's start [`WatchHub::ensure_ready`] waits for its listing.
const LISTING_WAIT: Duration = Duration::from_secs(5);

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
            ready_changed: Arc::default(),
            queue,
            epochs,
            own_writes: Arc::default(),
            ready: Arc::default(),
            compared_at: Arc::default(),
            home_apps: None,
            children_stale: Arc::default(),
            field_manager: None,
            known_apps: None,
            present: Arc::default(),
        }
    }

    /// Whether the object `namespace/name` of `resource` in `cluster` does not exist, as far as
    /// a ready watch knows: false when no watch of it has listed yet. (A watch lags the API
    /// server by the time an event takes to arrive, so an object created that instant may be
    /// taken for absent: the sync's apply then meets it, as Argo CD's does from its cache.)
    pub(crate) fn known_absent(
        &self,
        cluster: &ClusterClient,
        resource: &ApiResource,
        namespace: &str,
        name: &str,
    ) -> bool {
        let key = watch_key(cluster, resource);
        if !self.ready.lock().expect("ready lock").contains(&key) {
            return false;
        }
        self.present
            .lock()
            .expect("present lock")
            .get(&key)
            .is_none_or(|objects| !objects.contains(&format!("{namespace}/{name}")))
    }

    /// Objects the watches know to exist, over all watches (for `/metrics`).
    pub(crate) fn known_objects(&self) -> usize {
        self.present
            .lock()
            .expect("present lock")
            .values()
            .map(HashSet::len)
            .sum()
    }

    /// Called for every Application the controller's watch delivers, before its managedFields
    /// are dropped: when its newest write is ferry's own apply (a parent's sync, seen before
    /// that sync could say so), [`WatchHub::app_changed`] takes it for ferry's own.
    pub(crate) fn note_own_apply(&self, meta: &ObjectMeta) {
        if self
            .field_manager
            .as_deref()
            .is_some_and(|m| written_last_by(meta, m))
        {
            let mut own = self.own_writes.lock().expect("own writes lock");
            if own.len() >= OWN_WRITES_LIMIT {
                own.clear();
            }
            own.insert(write_id(meta));
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
        // Forgotten either way (a status write noted by `note_own_apply` is no managed change).
        let own = self
            .own_writes
            .lock()
            .expect("own writes lock")
            .remove(&write_id(&app.metadata));
        if managed && own {
            return;
        }
        if managed {
            debug!(
                app = %parent,
                child = app.metadata.name.as_deref().unwrap_or_default(),
                resource_version = app.metadata.resource_version.as_deref().unwrap_or_default(),
                "a child Application changed"
            );
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

    /// [`WatchHub::ensure`], and when the watch was started just now, waits for its listing (up
    /// to [`LISTING_WAIT`] after its start): a comparison made meanwhile could not tell absent
    /// objects without a request, and would have to be made again once the watch is ready.
    /// Listing a kind's metadata takes a fraction of that; a watch the API server refuses
    /// makes each caller wait only within that time of its start.
    pub(crate) async fn ensure_ready(
        &self,
        cluster: &ClusterClient,
        resource: &ApiResource,
    ) -> bool {
        if self.ensure(cluster, resource) {
            return true;
        }
        let key = watch_key(cluster, resource);
        let Some(deadline) = self
            .started
            .lock()
            .expect("watch lock")
            .get(&key)
            .map(|at| *at + LISTING_WAIT)
        else {
            return false;
        };
        loop {
            let notified = self.ready_changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.ready.lock().expect("ready lock").contains(&key) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tokio::time::timeout(left, notified).await.is_err() {
                return self.ready.lock().expect("ready lock").contains(&key);
            }
        }
    }

    /// Starts a watch on `resource` in `cluster` unless one runs already. Returns whether the
    /// watch is ready (its initial listing done), so that no change can go unseen.
    pub(crate) fn ensure(&self, cluster: &ClusterClient, resource: &ApiResource) -> bool {
        let key = watch_key(cluster, resource);
        {
            let mut started = self.started.lock().expect("watch lock");
            if started.contains_key(&key) {
                drop(started);
                return self.ready.lock().expect("ready lock").contains(&key);
            }
            started.insert(key.clone(), Instant::now());
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
        let present = self.present.clone();
        let ready_changed = self.ready_changed.clone();
        // Applications of ferry's own namespace are told apart by the Application watch.
        let skip_namespace = self
            .home_apps
            .clone()
            .filter(|_| cluster.name() == "in-cluster" && is_application(resource));
        tokio::spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            // A listing's objects, gathered until it is done (a relisting after a broken watch
            // replaces what the watch knew, deletions meanwhile included).
            let mut listing: Option<HashSet<String>> = None;
            while let Some(event) = events.next().await {
                let meta = match event {
                    Ok(Event::Init) => {
                        listing = Some(HashSet::new());
                        continue;
                    }
                    Ok(Event::InitApply(o)) => {
                        if let Some(l) = listing.as_mut() {
                            l.insert(object_key(&o.metadata));
                        }
                        continue;
                    }
                    Ok(Event::Apply(o)) => {
                        present
                            .lock()
                            .expect("present lock")
                            .entry(key.clone())
                            .or_default()
                            .insert(object_key(&o.metadata));
                        flowing_again(&ready, &ready_changed, &key);
                        // Told apart by the Application watch, which also owns their entries
                        // in `own_writes` (taking one here would make its event drift there).
                        if skip_namespace.is_some() && o.metadata.namespace == skip_namespace {
                            continue;
                        }
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
                    Ok(Event::Delete(o)) => {
                        if let Some(objects) = present.lock().expect("present lock").get_mut(&key) {
                            objects.remove(&object_key(&o.metadata));
                        }
                        flowing_again(&ready, &ready_changed, &key);
                        o.metadata
                    }
                    Ok(Event::InitDone) => {
                        if let Some(l) = listing.take() {
                            present.lock().expect("present lock").insert(key.clone(), l);
                        }
                        ready.lock().expect("ready lock").insert(key.clone());
                        ready_changed.notify_waiters();
                        continue;
                    }
                    Err(e) => {
                        debug!(watch = %key, "watch error (retrying): {e}");
                        // Until it delivers again (or lists again), objects created meanwhile
                        // are not in `present`: none of them may be taken for absent, and a
                        // comparison now is not remembered (a change may give no event).
                        ready.lock().expect("ready lock").remove(&key);
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
                debug!(
                    app = %app,
                    watch = %key,
                    object = meta.name.as_deref().unwrap_or_default(),
                    "a tracked object changed"
                );
                changed(&epochs, &compared_at, &queue, &app);
            }
        });
        false
    }
}

/// How [`WatchHub`] names the watch of `resource` in `cluster`.
fn watch_key(cluster: &ClusterClient, resource: &ApiResource) -> String {
    format!(
        "{}|{}|{}",
        cluster.name(),
        resource.api_version,
        resource.kind
    )
}

/// `namespace/name` of an object (empty namespace for cluster-scoped ones).
fn object_key(meta: &ObjectMeta) -> String {
    format!(
        "{}/{}",
        meta.namespace.as_deref().unwrap_or_default(),
        meta.name.as_deref().unwrap_or_default()
    )
}

/// The app whose tracking annotation the object `meta` describes carries.
fn tracking_app(meta: &ObjectMeta) -> Option<String> {
    meta.annotations
        .as_ref()?
        .get(TRACKING_ANNOTATION)?
        .parse::<TrackingId>()
        .ok()
        .map(|id| id.app)
}

/// One write of an object, as [`WatchHub::expect_own_write`] remembers it: (uid,
/// resourceVersion).
fn write_id(meta: &ObjectMeta) -> (String, String) {
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
pub(crate) fn written_last_by(meta: &ObjectMeta, manager: &str) -> bool {
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

/// A watch that broke is ready again at its first event after the break: events come in order,
/// so everything that happened before that event has been delivered. (After a relisting it is
/// ready again at the listing's end instead.)
fn flowing_again(ready: &Mutex<HashSet<String>>, ready_changed: &tokio::sync::Notify, key: &str) {
    if ready.lock().expect("ready lock").insert(key.to_owned()) {
        ready_changed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use ferry_core::application::Application;
    use serde_json::json;

    use super::{WatchHub, drop_managed_fields_of, written_last_by};

    fn meta(
        entries: serde_json::Value,
    ) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        serde_json::from_value(json!({"name": "web", "managedFields": entries})).unwrap()
    }

    fn entry(manager: &str, operation: &str, time: &str) -> serde_json::Value {
        json!({"manager": manager, "operation": operation, "time": time,
               "fieldsType": "FieldsV1", "fieldsV1": {}})
    }

    /// A child Application `name` tracked by `parent`, last written as `entries` say.
    fn child(name: &str, parent: &str, rv: &str, entries: serde_json::Value) -> Application {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {
                "name": name, "namespace": "ferry", "uid": format!("uid-{name}"),
                "resourceVersion": rv,
                "annotations": {"argocd.argoproj.io/tracking-id":
                    format!("{parent}:argoproj.io/Application:ferry/{name}")},
                "managedFields": entries,
            },
            "spec": {"destination": {}, "project": "default"},
        }))
        .unwrap()
    }

    #[test]
    fn a_parents_own_apply_of_a_child_is_no_drift_of_the_parent() {
        let hub = WatchHub::new(Default::default(), Default::default()).with_field_manager("ferry");
        let t = "2026-12-03T10:00:01Z";
        // Created by the root's sync; the watch delivers it before the sync says so.
        let mut created = child("c1", "root", "10", json!([entry("ferry", "Apply", t)]));
        hub.note_own_apply(&created.metadata);
        drop_managed_fields_of(&mut created);
        hub.app_changed(&created, true);
        assert_eq!(hub.epoch("root"), 0, "ferry's own apply is no change");
        // Someone edits the child's spec afterwards: drift of the root.
        let mut edited = child(
            "c1",
            "root",
            "11",
            json!([
                entry("ferry", "Apply", t),
                entry("kubectl-edit", "Update", "2026-12-03T10:00:09Z")
            ]),
        );
        hub.note_own_apply(&edited.metadata);
        drop_managed_fields_of(&mut edited);
        hub.app_changed(&edited, true);
        assert_eq!(hub.epoch("root"), 1, "an edit after ferry's apply is drift");
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
