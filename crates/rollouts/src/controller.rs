//! The rollout controller's loop: a watch on Rollouts queues each one that changes; a queued
//! Rollout is reconciled ([`crate::reconcile::reconcile_rollout`]) and queued again when its
//! plan says (a pause's end, the next measurement, a few seconds while pods start).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt as _;
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use tokio::sync::Notify;
use tokio::time::Instant;
use tracing::{Instrument as _, info, info_span, warn};

use crate::kube_util::ROLLOUT;
use crate::reconcile::{Context, reconcile_rollout};

/// Which Rollouts a controller manages.
#[derive(Clone, Default)]
pub struct RolloutsConfig {
    /// The namespaces whose Rollouts are managed; empty: every namespace.
    pub namespaces: Vec<String>,
    /// How many Rollouts are reconciled at once.
    pub workers: usize,
    /// Whether this process may work on the Rollout (namespace, name) now; `None`: always.
    /// With controller replicas exactly one live replica may (see docs/scale-out.md).
    pub owns: Option<Gate>,
}

/// See [`RolloutsConfig::owns`].
pub type Gate = Arc<dyn Fn(&str, &str) -> bool + Send + Sync>;

impl std::fmt::Debug for RolloutsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RolloutsConfig")
            .field("namespaces", &self.namespaces)
            .field("workers", &self.workers)
            .field("gated", &self.owns.is_some())
            .finish()
    }
}

/// How often a Rollout this replica does not own is looked at again.
const NOT_OWNED_RECHECK: Duration = Duration::from_secs(5);

type Key = (String, String);

#[derive(Default)]
struct Queue {
    due: Mutex<HashMap<Key, Instant>>,
    active: Mutex<HashSet<Key>>,
    notify: Notify,
}

impl Queue {
    fn add_after(&self, key: Key, after: Duration) {
        let at = Instant::now() + after;
        let mut due = self.due.lock().expect("queue lock");
        let e = due.entry(key).or_insert(at);
        if at < *e {
            *e = at;
        }
        drop(due);
        self.notify.notify_one();
    }

    async fn next(&self) -> Key {
        loop {
            let notified = self.notify.notified();
            let wait = {
                let mut due = self.due.lock().expect("queue lock");
                let active = self.active.lock().expect("queue lock");
                let now = Instant::now();
                let ready = due
                    .iter()
                    .filter(|(k, _)| !active.contains(*k))
                    .min_by_key(|(_, t)| **t)
                    .map(|(k, t)| (k.clone(), *t));
                drop(active);
                match ready {
                    Some((k, t)) if t <= now => {
                        due.remove(&k);
                        self.active.lock().expect("queue lock").insert(k.clone());
                        return k;
                    }
                    Some((_, t)) => Some(t),
                    None => None,
                }
            };
            match wait {
                Some(t) => {
                    tokio::select! {
                        () = notified => {}
                        () = tokio::time::sleep_until(t) => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    fn done(&self, key: &Key) {
        self.active.lock().expect("queue lock").remove(key);
        self.notify.notify_waiters();
    }
}

/// Runs the rollout controller until the process ends.
pub async fn run_rollouts(ctx: Context, config: RolloutsConfig) {
    info!(namespaces = ?config.namespaces, "rollout controller starting");
    let queue = Arc::new(Queue::default());
    for i in 0..config.workers.max(1) {
        let queue = queue.clone();
        let ctx = ctx.clone();
        let owns = config.owns.clone();
        tokio::spawn(async move {
            loop {
                let key = queue.next().await;
                if let Some(owns) = &owns
                    && !owns(&key.0, &key.1)
                {
                    queue.add_after(key.clone(), NOT_OWNED_RECHECK);
                    queue.done(&key);
                    continue;
                }
                let span =
                    info_span!("rollout", rollout = %format!("{}/{}", key.0, key.1), worker = i);
                let result = reconcile_rollout(&ctx, &key.0, &key.1)
                    .instrument(span)
                    .await;
                match result {
                    Ok(Some(after)) => queue.add_after(key.clone(), after),
                    Ok(None) => {}
                    Err(e) => {
                        warn!(rollout = %format!("{}/{}", key.0, key.1), "reconcile failed, retrying: {e}");
                        queue.add_after(key.clone(), Duration::from_secs(3));
                    }
                }
                queue.done(&key);
            }
        });
    }
    let apis: Vec<Api<DynamicObject>> = if config.namespaces.is_empty() {
        vec![Api::all_with(ctx.client.clone(), &ROLLOUT.resource())]
    } else {
        config
            .namespaces
            .iter()
            .map(|ns| ROLLOUT.api(&ctx.client, ns))
            .collect()
    };
    let streams = apis.into_iter().map(|api| {
        watcher::watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed()
    });
    let mut events = futures::stream::select_all(streams);
    while let Some(event) = events.next().await {
        match event {
            Ok(Event::Apply(o) | Event::InitApply(o)) => {
                let ns = o.metadata.namespace.clone().unwrap_or_default();
                let name = o.metadata.name.clone().unwrap_or_default();
                queue.add_after((ns, name), Duration::ZERO);
            }
            Ok(_) => {}
            Err(e) => warn!(
                "watching Rollouts: {e} (is the Rollout CRD installed? ferry install adds it)"
            ),
        }
    }
}
