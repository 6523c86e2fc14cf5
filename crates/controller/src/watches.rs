//! Watches on managed resources: one metadata-only watch per kind per cluster, shared by every
//! app. An event on an object carrying a tracking annotation marks that app's resources as
//! changed and queues the app, which is how drift (`kubectl scale`, `kubectl delete`, ...) is
//! seen within seconds.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

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

/// The set of running watches, and where their events go.
#[derive(Clone, Default)]
pub struct WatchHub {
    started: Arc<Mutex<HashSet<String>>>,
    queue: WorkQueue,
    epochs: Arc<Mutex<HashMap<String, u64>>>,
}

impl std::fmt::Debug for WatchHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchHub")
            .field("watches", &self.started.lock().expect("watch lock").len())
            .finish()
    }
}

impl WatchHub {
    /// A hub that queues apps on `queue` and bumps their entries in `epochs`.
    pub fn new(queue: WorkQueue, epochs: Arc<Mutex<HashMap<String, u64>>>) -> Self {
        WatchHub {
            started: Arc::default(),
            queue,
            epochs,
        }
    }

    /// How many watches run.
    pub fn len(&self) -> usize {
        self.started.lock().expect("watch lock").len()
    }

    /// Whether no watch runs yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The current change count of `app`'s resources.
    pub fn epoch(&self, app: &str) -> u64 {
        self.epochs
            .lock()
            .expect("epoch lock")
            .get(app)
            .copied()
            .unwrap_or_default()
    }

    /// Starts a watch on `resource` in `cluster` unless one runs already.
    pub fn ensure(&self, cluster: &ClusterClient, resource: &ApiResource) {
        let key = format!(
            "{}|{}|{}",
            cluster.name(),
            resource.api_version,
            resource.kind
        );
        if !self.started.lock().expect("watch lock").insert(key.clone()) {
            return;
        }
        debug!(watch = %key, "starting a watch");
        // An Api of PartialObjectMeta asks for metadata only: a fraction of the memory and bytes.
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(cluster.client().clone(), resource);
        let queue = self.queue.clone();
        let epochs = self.epochs.clone();
        tokio::spawn(async move {
            let mut events = watcher::watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = events.next().await {
                let meta = match event {
                    Ok(Event::Apply(o) | Event::Delete(o)) => o.metadata,
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
                queue.add(&app);
            }
        });
    }
}
