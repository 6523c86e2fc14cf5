//! The controller's [`Engine`]: the shared state of every reconcile (the app API, the
//! [`Differ`], what each app's last look saw, the watches and the queue), and its settings.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_core::application::Application;
use ferry_core::tracking::ResourceKey;
use kube::api::Api;
use serde_json::Value;

pub use crate::config::EngineConfig;
use crate::differ::Differ;
use crate::memo::Memos;
use crate::queue::WorkQueue;
use crate::watches::WatchHub;

/// Shared state of the controller: the app API, the differ, memories of earlier looks, the
/// watches and the queue.
pub struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) apps: Api<Application>,
    /// Works out desired states and compares them (with its caches of checkouts and renders).
    pub(crate) differ: Arc<Differ>,
    pub(crate) memos: Memos,
    /// When the controller first saw each pending refresh request: a fetch that started after
    /// that is fresh enough for it (one fetch serves every app a webhook push refreshes).
    pub(crate) refresh_seen: Mutex<HashMap<String, std::time::Instant>>,
    pub(crate) watches: WatchHub,
    pub(crate) queue: WorkQueue,
    pub(crate) events: kube::runtime::events::Recorder,
    /// When running syncs began waiting for each wave (see [`crate::memo::WaveWaits`]).
    pub(crate) wave_waits: crate::memo::WaveWaits,
    /// Sync results and durations; registered into the server's registry by the binary.
    pub metrics: crate::metrics::ControllerMetrics,
    /// Which destination clusters this replica owns (all of them, with one replica).
    pub(crate) shards: crate::shard::Shards,
    /// The Applications as the controller's watch keeps them (see [`Engine::read_app`]).
    pub(crate) app_store: kube::runtime::reflector::Store<Application>,
    /// The writer of `app_store`, until the watch that feeds it starts.
    pub(crate) app_writer: Mutex<Option<kube::runtime::reflector::store::Writer<Application>>>,
    /// Whether the watch has listed every Application once (until then, reads ask the API).
    pub(crate) apps_listed: std::sync::atomic::AtomicBool,
    /// The resourceVersion of ferry's last write of each Application, until the watch has it.
    pub(crate) own_writes: Mutex<HashMap<String, String>>,
    /// Whether the poller runs (see [`crate::poller`]): then a settled app is looked at in full
    /// every `timeout.reconciliation` instead of every poll.
    pub(crate) polling: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// Builds the engine for `client` (the cluster ferry runs against).
    pub fn new(client: kube::Client, cfg: EngineConfig) -> Self {
        let queue = WorkQueue::default();
        let metrics = crate::metrics::ControllerMetrics::default();
        let (app_store, app_writer) = kube::runtime::reflector::store();
        Engine {
            app_store: app_store.clone(),
            app_writer: Mutex::new(Some(app_writer)),
            apps_listed: Default::default(),
            own_writes: Mutex::default(),
            polling: Default::default(),
            apps: Api::namespaced(client.clone(), &cfg.namespace),
            differ: Arc::new(
                Differ::new(client.clone(), cfg.clone()).with_metrics(metrics.clone()),
            ),
            metrics,
            memos: Memos::default(),
            refresh_seen: Mutex::default(),
            wave_waits: Default::default(),
            watches: WatchHub::new(queue.clone(), Arc::default())
                .with_home_apps(&cfg.namespace)
                .with_field_manager(&cfg.field_manager)
                .with_known_apps(app_store.clone(), &cfg.namespace),
            queue,
            events: kube::runtime::events::Recorder::new(
                client,
                kube::runtime::events::Reporter {
                    controller: "ferry".into(),
                    instance: std::env::var("HOSTNAME").ok(),
                },
            ),
            cfg,
            shards: crate::shard::Shards::single(),
        }
    }

    /// The engine as one of several replicas that share the destination clusters.
    pub fn with_shards(mut self, shards: crate::shard::Shards) -> Self {
        self.shards = shards;
        self
    }

    /// The engine's differ: in `ferry run`, the UI and API show diffs through it and so share
    /// its checkouts and renders (and remember nothing the controller relies on).
    pub fn differ(&self) -> Arc<Differ> {
        self.differ.clone()
    }

    /// Whether the controller's Application watch has listed every Application once.
    pub(crate) fn apps_listed(&self) -> bool {
        self.apps_listed.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The Applications as the controller's watch has them (no request), or `None` until it
    /// has listed them once.
    pub fn applications(&self) -> Option<Vec<Arc<Application>>> {
        self.apps_listed().then(|| self.app_store.state())
    }

    /// `argocd-cm`'s settings, kept current.
    pub(crate) fn settings(&self) -> &crate::settings::SettingsWatch {
        &self.differ.settings
    }

    /// How many changes the watches have seen to `app`'s live resources (ferry's own writes
    /// aside) since the process started: a new value means something else touched them.
    pub fn live_change_count(&self, app: &str) -> u64 {
        self.watches.epoch(app)
    }

    /// When to look at `app` again for new commits: just after the next fetch of its
    /// repositories falls due (so every app of a repository shares that fetch, and a commit is
    /// seen within one poll interval), at most one poll interval from now.
    pub(crate) fn next_poll(&self, app: &Application) -> Duration {
        const AFTER_DUE: Duration = Duration::from_millis(50);
        app.spec
            .effective_sources()
            .iter()
            .filter(|s| s.chart.is_none())
            .filter_map(|s| {
                self.differ
                    .repos
                    .fetch_due_in(&s.repo_url, self.cfg.poll_interval)
            })
            .map(|due| due + AFTER_DUE)
            .min()
            .unwrap_or(self.cfg.poll_interval)
            .min(self.cfg.poll_interval)
    }

    /// Whether `live` (the object `key`) belongs to `app`, under the tracking method of
    /// `argocd-cm`.
    pub(crate) fn tracks(&self, live: &Value, app: &str, key: &ResourceKey) -> bool {
        self.differ.tracks(live, app, key)
    }

    /// The Application `name`, from the watch's store: no request, unless the watch has not
    /// listed yet or has not yet seen ferry's own last write of it (then a GET, so a reconcile
    /// never acts on a status older than the one it wrote).
    pub(crate) async fn read_app(&self, name: &str) -> Result<Option<Application>, kube::Error> {
        if self.apps_listed() {
            let key = kube::runtime::reflector::ObjectRef::new(name).within(&self.cfg.namespace);
            let cached = self.app_store.get(&key);
            let mut own = self.own_writes.lock().expect("own writes lock");
            let current = match (&cached, own.get(name)) {
                (_, None) => true,
                (Some(app), Some(rv)) => app.metadata.resource_version.as_ref() == Some(rv),
                (None, Some(_)) => false,
            };
            if current {
                own.remove(name);
                self.metrics
                    .app_reads
                    .get_or_create(&crate::metrics::ReadLabels { from: "watch" })
                    .inc();
                return Ok(cached.map(|a| (*a).clone()));
            }
        }
        self.metrics
            .app_reads
            .get_or_create(&crate::metrics::ReadLabels { from: "api" })
            .inc();
        let app = self.apps.get_opt(name).await?;
        // The store is current again once it has what this read saw.
        match &app {
            Some(a) => self.wrote_app(a),
            None => {
                self.own_writes
                    .lock()
                    .expect("own writes lock")
                    .remove(name);
            }
        }
        Ok(app)
    }

    /// Remembers ferry's write of an Application (its answer), for [`Engine::read_app`].
    pub(crate) fn wrote_app(&self, written: &Application) {
        if let (Some(name), Some(rv)) = (&written.metadata.name, &written.metadata.resource_version)
        {
            self.own_writes
                .lock()
                .expect("own writes lock")
                .insert(name.clone(), rv.clone());
        }
    }

    /// Forgets everything about the app `name` (it was deleted).
    pub(crate) fn forget(&self, name: &str) {
        self.memos.forget(name);
        self.own_writes
            .lock()
            .expect("own writes lock")
            .remove(name);
        self.queue.forget(name);
        self.watches.forget(name);
        self.shards.forget(name);
        self.differ.forget_renders(name);
    }
}

/// Writes a sync's progress into its app's status.
pub(crate) struct StatusWriter<'a> {
    engine: &'a Engine,
    app: &'a Application,
}

impl crate::sync::Progress for StatusWriter<'_> {
    fn record<'a>(
        &'a self,
        status: &'a ferry_core::application::ApplicationStatus,
    ) -> futures::future::BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.engine.write_status(self.app, status, false).await {
                let name = self.app.metadata.name.as_deref().unwrap_or_default();
                tracing::warn!(app = name, "recording sync progress: {e}");
            }
        })
    }
}

impl Engine {
    /// What a sync of `app` needs from the engine, with `progress` as the status writer.
    pub(crate) fn sync_env<'a>(
        &'a self,
        app: &Application,
        progress: &'a StatusWriter<'a>,
    ) -> crate::sync::SyncEnv<'a> {
        crate::sync::SyncEnv {
            field_manager: &self.cfg.field_manager,
            concurrency: self.cfg.per_app_concurrency,
            fail_on_untracked_resource: self.cfg.fail_on_untracked_resource,
            settings: self.settings().last(),
            view: crate::app_of_apps::AppView::of(app, &self.cfg.namespace, self.cfg.child_health)
                .0,
            wave_waits: &self.wave_waits,
            progress,
        }
    }

    /// A status writer for the syncs of `app`.
    pub(crate) fn status_writer<'a>(&'a self, app: &'a Application) -> StatusWriter<'a> {
        StatusWriter { engine: self, app }
    }
}
