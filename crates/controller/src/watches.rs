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
        }
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
        tokio::spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = events.next().await {
                let meta = match event {
                    Ok(Event::Apply(o)) => {
                        let own = (
                            o.metadata.uid.clone().unwrap_or_default(),
                            o.metadata.resource_version.clone().unwrap_or_default(),
                        );
                        if own_writes.lock().expect("own writes lock").remove(&own) {
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
                let Some(app) = meta
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(TRACKING_ANNOTATION))
                    .and_then(|v| v.parse::<TrackingId>().ok())
                    .map(|id| id.app)
                else {
                    continue;
                };
                *epochs
                    .lock()
                    .expect("epoch lock")
                    .entry(app.clone())
                    .or_default() += 1;
                let since = compared_at
                    .lock()
                    .expect("compared lock")
                    .get(&app)
                    .map(Instant::elapsed);
                match since {
                    Some(since) if since < COALESCE => {
                        queue.add_urgent_after(&app, COALESCE - since)
                    }
                    _ => queue.add(&app),
                }
            }
        });
        false
    }
}

#[cfg(test)]
mod tests {
    use ferry_core::application::Application;
    use serde_json::json;

    use super::drop_managed_fields_of;

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
