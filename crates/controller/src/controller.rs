//! The controller's loops: a watch on Applications that queues the ones whose spec, operation,
//! annotations or finalizers changed, and workers that reconcile queued apps, each app at most
//! once at a time, requeued after `timeout.reconciliation` (or sooner while something
//! progresses); the poller ([`crate::poller`]) queues the apps a new commit moved.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::application::Application;
use futures::StreamExt as _;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use tracing::{Instrument as _, info, info_span, warn};

use crate::engine::Engine;

/// What of an Application makes it worth reconciling again when it changes (not its status,
/// which ferry itself writes), as a hash: one number per app is remembered, not a copy of its
/// spec.
fn fingerprint(app: &Application) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::json!([
        app.spec,
        app.operation,
        app.metadata.annotations,
        app.metadata.deletion_timestamp,
        app.metadata.finalizers,
    ])
    .to_string()
    .hash(&mut h);
    h.finish()
}

/// What a parent App-of-Apps declares of a child Application (spec, labels, annotations
/// other than the refresh request, finalizers) and whether it is being deleted, as a hash: a
/// change of it is drift for the parent; a change of anything else (the child's status) is not.
fn child_fingerprint(app: &Application) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let annotations: Option<std::collections::BTreeMap<&String, &String>> =
        app.metadata.annotations.as_ref().map(|a| {
            a.iter()
                .filter(|(k, _)| {
                    k.as_str() != ferry_core::application::REFRESH_ANNOTATION
                        && k.as_str() != "kubectl.kubernetes.io/last-applied-configuration"
                })
                .collect()
        });
    serde_json::json!([
        app.spec,
        app.metadata.labels,
        annotations,
        app.metadata.deletion_timestamp,
        app.metadata.finalizers,
    ])
    .to_string()
    .hash(&mut h);
    h.finish()
}

/// Runs the controller until the process ends: the Application watch and `workers` workers.
pub async fn run_controller(engine: Arc<Engine>, workers: usize) {
    info!(namespace = %engine.cfg.namespace, workers, "controller starting");
    tokio::spawn(crate::lease::run_leases(engine.clone()));
    engine
        .polling
        .store(true, std::sync::atomic::Ordering::Release);
    tokio::spawn(crate::poller::run_poller(engine.clone()));
    tokio::spawn(crate::poller::run_settings_follower(engine.clone()));
    for i in 0..workers.max(1) {
        let engine = engine.clone();
        tokio::spawn(async move {
            loop {
                let name = engine.queue.next().await;
                let span = info_span!("reconcile", app = %name, worker = i);
                let started = std::time::Instant::now();
                let result = engine.reconcile_owned(&name).instrument(span.clone()).await;
                span.in_scope(
                    || tracing::debug!(result = ?result.as_ref().map_err(|_| ()), "looked"),
                );
                engine
                    .metrics
                    .reconcile_seconds
                    .observe(started.elapsed().as_secs_f64());
                match result {
                    Ok(Some(after)) => engine.queue.add_after(&name, after),
                    Ok(None) => {}
                    Err(e) => {
                        warn!(app = %name, "reconcile failed, retrying: {e}");
                        engine.queue.add_after(&name, Duration::from_secs(5));
                    }
                }
                engine.queue.done(&name);
            }
        });
    }

    let mut seen: HashMap<String, u64> = HashMap::new();
    // What parents declare of each Application (see `child_fingerprint`).
    let mut declared: HashMap<String, u64> = HashMap::new();
    // The watch feeds the store reconciles read Applications from (no GET per reconcile).
    let writer = engine
        .app_writer
        .lock()
        .expect("app writer lock")
        .take()
        .expect("the controller runs once per engine");
    let mut events = watcher::watcher(engine.apps.clone(), watcher::Config::default())
        .default_backoff()
        .modify({
            // A parent's apply of its child, seen before that sync could say so, is its own.
            let hub = engine.watches.clone();
            move |app: &mut Application| {
                hub.note_own_apply(&app.metadata);
                crate::watches::drop_managed_fields_of(app);
            }
        })
        .reflect(writer)
        .boxed();
    while let Some(event) = events.next().await {
        match event {
            Ok(event @ (Event::Apply(_) | Event::InitApply(_))) => {
                let (initial, app) = match event {
                    Event::InitApply(app) => (true, app),
                    Event::Apply(app) => (false, app),
                    _ => unreachable!("matched above"),
                };
                let name = app.metadata.name.clone().unwrap_or_default();
                let child_fp = child_fingerprint(&app);
                let before = declared.insert(name.clone(), child_fp);
                let managed = before != Some(child_fp);
                // A relisting after a broken watch tells of what changed meanwhile, too.
                if !initial || (managed && before.is_some()) {
                    engine.watches.app_changed(&app, managed);
                }
                if app.refresh_requested().is_some() {
                    engine
                        .refresh_seen
                        .lock()
                        .expect("refresh lock")
                        .entry(name.clone())
                        .or_insert_with(std::time::Instant::now);
                }
                let fp = fingerprint(&app);
                if seen.get(&name) != Some(&fp) {
                    seen.insert(name.clone(), fp);
                    engine.queue.add(&name);
                }
            }
            Ok(Event::Delete(app)) => {
                let name = app.metadata.name.clone().unwrap_or_default();
                seen.remove(&name);
                declared.remove(&name);
                engine.watches.app_changed(&app, true);
                engine.queue.add(&name);
            }
            Ok(Event::InitDone) => engine
                .apps_listed
                .store(true, std::sync::atomic::Ordering::Release),
            Ok(Event::Init) => {}
            Err(e) => warn!("watching Applications: {e}"),
        }
    }
}
