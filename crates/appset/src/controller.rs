//! The ApplicationSet controller loop: it watches the ApplicationSets of ferry's namespace (and
//! the Applications they own), and for each set, one pass at a time ([`AppSetController::reconcile`]):
//! generate → render → plan → apply (create, update, delete owned Applications) → RollingSync
//! step → status. The generated Applications are ordinary Applications: the engine admits them
//! against their AppProject and syncs them like any other.
//!
//! Every failure before "apply" changes nothing; see [`crate::plan`] for the deletion hold.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ferry_controller::Differ;
use futures::StreamExt as _;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use serde_json::{Value, json};
use tracing::{Instrument as _, info, info_span, warn};

use crate::desired::{Desired, Failure, desired_applications};
use crate::generators::RemoteContext;
use crate::generators::git::{Checkout, RepoCheckouts};
use crate::plan::{Plan, is_owned_by, plan_changes};
use crate::rollout::{AppState, advance_rollout};
use crate::types::{
    ApplicationSet, ApplicationSetCondition, ApplicationSetStatus, CONFIRM_DELETION_ANNOTATION,
    REFRESH_ANNOTATION, ResourceHealth, ResourceStatus, condition_reason, condition_type,
};

/// The controller's settings.
#[derive(Debug, Clone)]
pub struct AppSetConfig {
    /// The namespace whose ApplicationSets (and Applications) ferry manages.
    pub namespace: String,
    /// How often each set is generated again when nothing else asks for it.
    pub poll_interval: Duration,
    /// The share of a set's Applications (percent) one pass may delete without confirmation.
    pub max_deletion_percent: u32,
    /// How many sets are worked on at once.
    pub workers: usize,
}

/// How soon a set looks again after only the status of one of its apps changed.
const STATUS_REFRESH: Duration = Duration::from_secs(15);

/// The user name on syncs that RollingSync asks for.
pub const ROLLOUT_USER: &str = "applicationset-controller";

/// Git checkouts through the engine's [`Differ`] (its repository cache, credentials and URL rules).
pub struct DifferRepos(pub Arc<Differ>);

impl RepoCheckouts for DifferRepos {
    fn checkout<'a>(
        &'a self,
        repo_url: &'a str,
        revision: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Checkout, String>> {
        Box::pin(async move {
            let (sha, root) = self.0.checkout_repo(repo_url, revision).await?;
            Ok(Checkout { sha, root })
        })
    }
}

/// The ApplicationSet controller.
pub struct AppSetController {
    cfg: AppSetConfig,
    client: kube::Client,
    sets: Api<ApplicationSet>,
    apps: Api<DynamicObject>,
    typed_apps: Api<ferry_core::application::Application>,
    repos: DifferRepos,
    http: ferry_http::Client,
    queue: Queue,
    owns: Gate,
}

/// Whether this process may work on an ApplicationSet now (with controller replicas, exactly
/// one live replica may; see docs/scale-out.md).
pub type Gate = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// How often a set this replica does not own is looked at again.
const NOT_OWNED_RECHECK: Duration = Duration::from_secs(5);

impl std::fmt::Debug for AppSetController {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppSetController")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// The Application resource, for untyped access (generated apps are kept as JSON).
pub fn application_resource() -> kube::api::ApiResource {
    kube::api::ApiResource::erase::<ferry_core::application::Application>(&())
}

impl AppSetController {
    /// A controller for `client`, reading repositories through `differ`.
    pub fn new(
        client: kube::Client,
        cfg: AppSetConfig,
        differ: Arc<Differ>,
    ) -> Result<Self, ferry_http::HttpError> {
        Ok(AppSetController {
            sets: Api::namespaced(client.clone(), &cfg.namespace),
            apps: Api::namespaced_with(client.clone(), &cfg.namespace, &application_resource()),
            typed_apps: Api::namespaced(client.clone(), &cfg.namespace),
            repos: DifferRepos(differ),
            http: ferry_http::Client::new(ferry_http::Options::default())?,
            queue: Queue::default(),
            owns: Arc::new(|_| true),
            client,
            cfg,
        })
    }

    /// Works only on the sets `owns` says this process owns (controller replicas); the others
    /// are looked at again every few seconds, in case their owner goes away.
    pub fn with_gate(mut self, owns: Gate) -> Self {
        self.owns = owns;
        self
    }

    /// Runs until the process ends: watches and workers.
    pub async fn run(self: Arc<Self>) {
        info!(namespace = %self.cfg.namespace, "ApplicationSet controller starting");
        let workers = Arc::new(tokio::sync::Semaphore::new(self.cfg.workers.max(1)));
        let running: Arc<Mutex<HashSet<String>>> = Arc::default();
        let me = self.clone();
        let dispatch = async move {
            loop {
                let name = me.queue.next().await;
                if !running.lock().expect("running lock").insert(name.clone()) {
                    me.queue.add_after(&name, Duration::from_millis(500));
                    continue;
                }
                let permit = workers
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore open");
                let me = me.clone();
                let running = running.clone();
                tokio::spawn(async move {
                    let span = info_span!("appset", set = %name);
                    let next = match me.reconcile(&name).instrument(span).await {
                        Ok(next) => next,
                        Err(e) => {
                            warn!(set = %name, "ApplicationSet pass failed, retrying: {e}");
                            Some(Duration::from_secs(5))
                        }
                    };
                    if let Some(after) = next {
                        me.queue.add_after(&name, after);
                    }
                    running.lock().expect("running lock").remove(&name);
                    drop(permit);
                });
            }
        };
        let sets_watch = {
            let me = self.clone();
            async move {
                let mut seen: BTreeMap<String, String> = BTreeMap::new();
                let mut events = watcher::watcher(me.sets.clone(), watcher::Config::default())
                    .default_backoff()
                    .boxed();
                while let Some(event) = events.next().await {
                    match event {
                        Ok(Event::Apply(set) | Event::InitApply(set)) => {
                            let name = set.name().to_string();
                            let fp = json!([set.spec, set.metadata.annotations, set.metadata.uid])
                                .to_string();
                            if seen.get(&name) != Some(&fp) {
                                seen.insert(name.clone(), fp);
                                me.queue.add(&name);
                            }
                        }
                        Ok(Event::Delete(set)) => {
                            seen.remove(set.name());
                            me.queue.forget(set.name());
                        }
                        Ok(_) => {}
                        Err(e) => warn!("watching ApplicationSets: {e}"),
                    }
                }
            }
        };
        let apps_watch = {
            let me = self.clone();
            async move {
                // What the set manages of each app: a change there (someone edited or deleted a
                // generated app) brings its set back soon; a status change only refreshes the
                // set's status.resources a little later (a sync writes its status many times,
                // and generators that call other services should not run for each write).
                let mut seen: BTreeMap<String, String> = BTreeMap::new();
                let mut events = watcher::watcher(me.apps.clone(), watcher::Config::default())
                    .default_backoff()
                    .boxed();
                while let Some(event) = events.next().await {
                    let (app, deleted) = match event {
                        Ok(Event::Apply(app) | Event::InitApply(app)) => (app, false),
                        Ok(Event::Delete(app)) => (app, true),
                        Ok(_) => continue,
                        Err(e) => {
                            warn!("watching Applications for ApplicationSets: {e}");
                            continue;
                        }
                    };
                    let name = app.metadata.name.clone().unwrap_or_default();
                    let fp = json!([
                        app.data.get("spec"),
                        app.metadata.labels,
                        app.metadata.annotations,
                        app.metadata.finalizers,
                        app.metadata.deletion_timestamp,
                    ])
                    .to_string();
                    let managed_changed = deleted || seen.get(&name) != Some(&fp);
                    if deleted {
                        seen.remove(&name);
                    } else {
                        seen.insert(name, fp);
                    }
                    let after = if managed_changed {
                        Duration::from_millis(500)
                    } else {
                        STATUS_REFRESH
                    };
                    for owner in app.metadata.owner_references.iter().flatten() {
                        if owner.kind == crate::types::KIND {
                            me.queue.add_after(&owner.name, after);
                        }
                    }
                }
            }
        };
        let clusters_watch = {
            let me = self.clone();
            async move {
                // A cluster registered, changed or removed: every set looks again (the clusters
                // generator reads them; the others are cheap or cached).
                // Metadata only: the watch never holds Secret data.
                let secrets: Api<
                    kube::core::PartialObjectMeta<k8s_openapi::api::core::v1::Secret>,
                > = Api::namespaced(me.client.clone(), &me.cfg.namespace);
                let config = watcher::Config::default().labels(&format!(
                    "{}=cluster",
                    crate::generators::clusters::SECRET_TYPE_LABEL
                ));
                let mut events = watcher::watcher(secrets, config).default_backoff().boxed();
                let mut ready = false;
                while let Some(event) = events.next().await {
                    match event {
                        Ok(Event::InitDone) => ready = true,
                        Ok(Event::Apply(_) | Event::Delete(_)) if ready => {
                            for name in me.queue.known() {
                                me.queue.add_after(&name, Duration::from_secs(1));
                            }
                        }
                        Ok(_) => {}
                        Err(e) => warn!("watching cluster Secrets for ApplicationSets: {e}"),
                    }
                }
            }
        };
        tokio::join!(dispatch, sets_watch, apps_watch, clusters_watch);
    }

    /// One pass over the set `name`; returns when to look again.
    pub async fn reconcile(&self, name: &str) -> Result<Option<Duration>, kube::Error> {
        if !(self.owns)(name) {
            return Ok(Some(NOT_OWNED_RECHECK));
        }
        let Some(set) = self.sets.get_opt(name).await? else {
            return Ok(None);
        };
        if set.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let uid = set.metadata.uid.clone().unwrap_or_default();
        let remote = RemoteContext {
            kube: &self.client,
            namespace: &self.cfg.namespace,
            appset: name,
            http: &self.http,
        };
        let mut status = set.status.clone().unwrap_or_default();
        let previous = status.clone();
        let now = now();
        let all_apps: Vec<Value> = self
            .apps
            .list(&ListParams::default())
            .await?
            .items
            .into_iter()
            .filter_map(|o| serde_json::to_value(o).ok())
            .collect();
        let owned: Vec<Value> = all_apps
            .iter()
            .filter(|a| is_owned_by(a, &uid))
            .cloned()
            .collect();
        let outcome = desired_applications(&set, remote, &self.repos).await;
        let mut next = self.cfg.poll_interval;
        let desired = match outcome {
            Ok(d) => d,
            Err(failure) => {
                warn!(set = name, "{}", failure.message);
                set_failure(&mut status, &failure, &now);
                status.resources = resources_of(&owned, &self.cfg.namespace);
                self.write_status(&set, &previous, status).await?;
                return Ok(Some(next));
            }
        };
        if let Some(r) = desired.requeue_after {
            next = next.min(r.max(Duration::from_secs(1)));
        }
        // A generated name that some other Application (not this set's) already has.
        if let Some(failure) = foreign_conflict(&set, &desired, &all_apps, &uid) {
            set_failure(&mut status, &failure, &now);
            status.resources = resources_of(&owned, &self.cfg.namespace);
            self.write_status(&set, &previous, status).await?;
            return Ok(Some(next));
        }
        let plan = plan_changes(
            &set,
            &desired.applications,
            &owned,
            self.cfg.max_deletion_percent,
        );
        if let Some(hold) = &plan.held {
            let failure = Failure {
                reason: condition_reason::DELETION_HELD,
                message: hold.message(name),
            };
            warn!(set = name, "{}", failure.message);
            set_failure(&mut status, &failure, &now);
            set_condition(
                &mut status,
                condition_type::PARAMETERS_GENERATED,
                "True",
                condition_reason::PARAMETERS_GENERATED,
                "Successfully generated parameters for all Applications",
                &now,
            );
            status.resources = resources_of(&owned, &self.cfg.namespace);
            self.write_status(&set, &previous, status).await?;
            return Ok(Some(next));
        }
        let applied = self.apply_plan(&set, &plan).await;
        let changed: BTreeSet<String> = plan
            .create
            .iter()
            .chain(&plan.update)
            .filter_map(|a| a["metadata"]["name"].as_str().map(String::from))
            .collect();
        if plan.confirmed && applied.is_ok() {
            let patch = json!({"metadata": {"annotations": {CONFIRM_DELETION_ANNOTATION: null}}});
            self.sets
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        // The apps as they are now.
        let owned_now: Vec<Value> = if plan.is_empty() {
            owned
        } else {
            self.apps
                .list(&ListParams::default())
                .await?
                .items
                .into_iter()
                .filter_map(|o| serde_json::to_value(o).ok())
                .filter(|a| is_owned_by(a, &uid))
                .collect()
        };
        set_generated(&mut status, &desired, &now);
        match &applied {
            Ok(()) => {
                let mut msg = "All applications have been generated successfully".to_string();
                if !plan.skipped_by_policy.is_empty() {
                    msg = format!(
                        "{msg}; applicationsSync {:?} left alone: {}",
                        set.spec.applications_sync(),
                        plan.skipped_by_policy.join(", ")
                    );
                }
                set_condition(
                    &mut status,
                    condition_type::RESOURCES_UP_TO_DATE,
                    "True",
                    condition_reason::UP_TO_DATE,
                    &msg,
                    &now,
                );
                set_condition(
                    &mut status,
                    condition_type::ERROR_OCCURRED,
                    "False",
                    condition_reason::UP_TO_DATE,
                    "Successfully generated parameters for all Applications",
                    &now,
                );
            }
            Err(message) => {
                let failure = Failure {
                    reason: condition_reason::UPDATE_ERROR,
                    message: message.clone(),
                };
                set_failure(&mut status, &failure, &now);
                set_condition(
                    &mut status,
                    condition_type::PARAMETERS_GENERATED,
                    "True",
                    condition_reason::PARAMETERS_GENERATED,
                    "Successfully generated parameters for all Applications",
                    &now,
                );
            }
        }
        // RollingSync.
        match set.spec.rolling_sync_steps() {
            Some(steps) => {
                let states: Vec<AppState> = owned_now.iter().map(AppState::of).collect();
                match advance_rollout(steps, &states, &status.application_status, &changed, &now) {
                    Ok(decision) => {
                        for app in &decision.to_sync {
                            self.request_rollout_sync(app).await;
                        }
                        status.application_status = decision.statuses;
                        if decision.progressing {
                            next = next.min(Duration::from_secs(3));
                            set_condition(
                                &mut status,
                                condition_type::ROLLOUT_PROGRESSING,
                                "True",
                                condition_reason::ROLLOUT_PROGRESSING,
                                &format!(
                                    "ApplicationSet is performing a RollingSync through step {}",
                                    decision.current_step.unwrap_or(0)
                                ),
                                &now,
                            );
                        } else {
                            set_condition(
                                &mut status,
                                condition_type::ROLLOUT_PROGRESSING,
                                "False",
                                condition_reason::ROLLOUT_COMPLETE,
                                "ApplicationSet RollingSync is complete",
                                &now,
                            );
                        }
                    }
                    Err(m) => {
                        let failure = Failure {
                            reason: condition_reason::VALIDATION_ERROR,
                            message: format!("ApplicationSet {name}: {m}"),
                        };
                        set_failure(&mut status, &failure, &now);
                    }
                }
            }
            None => {
                status.application_status.clear();
                status
                    .conditions
                    .retain(|c| c.type_ != condition_type::ROLLOUT_PROGRESSING);
            }
        }
        status.resources = resources_of(&owned_now, &self.cfg.namespace);
        self.write_status(&set, &previous, status).await?;
        if set.annotation(REFRESH_ANNOTATION).is_some() {
            let patch = json!({"metadata": {"annotations": {REFRESH_ANNOTATION: null}}});
            self.sets
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await?;
        }
        Ok(Some(next))
    }

    /// Creates, replaces and deletes Applications as planned. Goes on after a failure (each
    /// app is independent) and reports every failure.
    async fn apply_plan(&self, set: &ApplicationSet, plan: &Plan) -> Result<(), String> {
        let mut errors = Vec::new();
        for app in &plan.create {
            let name = app["metadata"]["name"].as_str().unwrap_or_default();
            match serde_json::from_value::<DynamicObject>(app.clone()) {
                Ok(obj) => match self.apps.create(&PostParams::default(), &obj).await {
                    Ok(_) => info!(set = set.name(), app = name, "created Application"),
                    Err(e) => errors.push(format!("creating Application {name}: {e}")),
                },
                Err(e) => errors.push(format!("Application {name}: {e}")),
            }
        }
        for app in &plan.update {
            let name = app["metadata"]["name"].as_str().unwrap_or_default();
            match serde_json::from_value::<DynamicObject>(app.clone()) {
                Ok(obj) => match self.apps.replace(name, &PostParams::default(), &obj).await {
                    Ok(_) => info!(set = set.name(), app = name, "updated Application"),
                    Err(e) => errors.push(format!("updating Application {name}: {e}")),
                },
                Err(e) => errors.push(format!("Application {name}: {e}")),
            }
        }
        for name in &plan.delete {
            if set.spec.preserve_resources_on_deletion() {
                // Its workloads stay: no resources finalizer when it goes.
                let patch = json!({"metadata": {"finalizers": null}});
                if let Err(e) = self
                    .apps
                    .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    errors.push(format!(
                        "removing the finalizers of Application {name}: {e}"
                    ));
                    continue;
                }
            }
            match self.apps.delete(name, &DeleteParams::default()).await {
                Ok(_) => info!(set = set.name(), app = name, "deleted Application"),
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(e) => errors.push(format!("deleting Application {name}: {e}")),
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "ApplicationSet {}: {}",
                set.name(),
                errors.join("; ")
            ))
        }
    }

    /// Asks for a sync of `app` (as `ferry app sync` does), for a RollingSync step.
    async fn request_rollout_sync(&self, app: &str) {
        let result = async {
            let current = ferry_controller::operations::get(&self.typed_apps, app).await?;
            ferry_controller::operations::request_sync(
                &self.typed_apps,
                &current,
                &ferry_controller::operations::SyncParams::default(),
                ROLLOUT_USER,
            )
            .await
        }
        .await;
        match result {
            Ok(_) => info!(app, "RollingSync: sync requested"),
            Err(e) => warn!(app, "RollingSync: requesting a sync: {e}"),
        }
    }

    /// Writes `status` when it differs from `previous` (times aside).
    async fn write_status(
        &self,
        set: &ApplicationSet,
        previous: &ApplicationSetStatus,
        status: ApplicationSetStatus,
    ) -> Result<(), kube::Error> {
        if same_status(previous, &status) {
            return Ok(());
        }
        let patch = json!({"status": status});
        self.sets
            .patch_status(set.name(), &PatchParams::default(), &Patch::Merge(&patch))
            .await?;
        Ok(())
    }
}

/// Whether two statuses say the same (transition times aside).
fn same_status(a: &ApplicationSetStatus, b: &ApplicationSetStatus) -> bool {
    let strip = |s: &ApplicationSetStatus| {
        let mut s = s.clone();
        for c in &mut s.conditions {
            c.last_transition_time = None;
        }
        for a in &mut s.application_status {
            a.last_transition_time = None;
        }
        s
    };
    strip(a) == strip(b)
}

/// A failure that changes nothing: ErrorOccurred True, ResourcesUpToDate False, and
/// ParametersGenerated False when the generators failed.
pub fn set_failure(status: &mut ApplicationSetStatus, failure: &Failure, now: &str) {
    set_condition(
        status,
        condition_type::ERROR_OCCURRED,
        "True",
        failure.reason,
        &failure.message,
        now,
    );
    set_condition(
        status,
        condition_type::RESOURCES_UP_TO_DATE,
        "False",
        failure.reason,
        &failure.message,
        now,
    );
    if failure.reason == condition_reason::GENERATION_ERROR {
        set_condition(
            status,
            condition_type::PARAMETERS_GENERATED,
            "False",
            failure.reason,
            &failure.message,
            now,
        );
    } else if failure.reason != condition_reason::UPDATE_ERROR {
        set_condition(
            status,
            condition_type::PARAMETERS_GENERATED,
            "True",
            condition_reason::PARAMETERS_GENERATED,
            "Successfully generated parameters for all Applications",
            now,
        );
    }
}

fn set_generated(status: &mut ApplicationSetStatus, _desired: &Desired, now: &str) {
    set_condition(
        status,
        condition_type::PARAMETERS_GENERATED,
        "True",
        condition_reason::PARAMETERS_GENERATED,
        "Successfully generated parameters for all Applications",
        now,
    );
}

/// Sets a condition, keeping its transition time while its status stays the same.
pub fn set_condition(
    status: &mut ApplicationSetStatus,
    type_: &str,
    value: &str,
    reason: &str,
    message: &str,
    now: &str,
) {
    let new = ApplicationSetCondition {
        type_: type_.to_string(),
        status: value.to_string(),
        reason: reason.to_string(),
        message: message.to_string(),
        last_transition_time: Some(now.to_string()),
    };
    match status.conditions.iter_mut().find(|c| c.type_ == type_) {
        Some(c) => {
            let keep_time = c.status == new.status;
            let time = c.last_transition_time.clone();
            *c = new;
            if keep_time && time.is_some() {
                c.last_transition_time = time;
            }
        }
        None => status.conditions.push(new),
    }
    status.conditions.sort_by(|a, b| a.type_.cmp(&b.type_));
}

/// A desired name already taken by an Application this set does not own.
fn foreign_conflict(
    set: &ApplicationSet,
    desired: &Desired,
    all_apps: &[Value],
    uid: &str,
) -> Option<Failure> {
    let foreign: BTreeSet<&str> = all_apps
        .iter()
        .filter(|a| !is_owned_by(a, uid))
        .filter_map(|a| a["metadata"]["name"].as_str())
        .collect();
    let clash: Vec<&str> = desired
        .applications
        .iter()
        .filter_map(|a| a["metadata"]["name"].as_str())
        .filter(|n| foreign.contains(n))
        .collect();
    (!clash.is_empty()).then(|| Failure {
        reason: condition_reason::VALIDATION_ERROR,
        message: format!(
            "ApplicationSet {}: Application {} already exists and is not owned by this ApplicationSet: rename it in the template or delete the existing one; nothing was created, updated or deleted",
            set.name(),
            clash.join(", ")
        ),
    })
}

/// `status.resources`: each owned Application with its sync and health status.
pub fn resources_of(owned: &[Value], namespace: &str) -> Vec<ResourceStatus> {
    let mut out: Vec<ResourceStatus> = owned
        .iter()
        .map(|a| ResourceStatus {
            group: ferry_core::application::GROUP.into(),
            version: ferry_core::application::VERSION.into(),
            kind: "Application".into(),
            name: a["metadata"]["name"].as_str().unwrap_or_default().into(),
            namespace: namespace.into(),
            status: a
                .pointer("/status/sync/status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into(),
            health: a
                .pointer("/status/health/status")
                .and_then(Value::as_str)
                .map(|h| ResourceHealth {
                    status: h.into(),
                    message: a
                        .pointer("/status/health/message")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .into(),
                }),
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

/// Which sets to look at, and when.
#[derive(Default)]
struct Queue {
    due: Mutex<BTreeMap<String, Instant>>,
    /// Every set ever queued (sets are requeued after each pass, so this is the live ones and
    /// the recently deleted ones, which a pass then skips).
    names: Mutex<BTreeSet<String>>,
    wake: tokio::sync::Notify,
}

impl Queue {
    /// Forgets a deleted set.
    fn forget(&self, name: &str) {
        self.names.lock().expect("queue lock").remove(name);
        self.due.lock().expect("queue lock").remove(name);
    }

    /// The sets seen so far.
    fn known(&self) -> Vec<String> {
        self.names
            .lock()
            .expect("queue lock")
            .iter()
            .cloned()
            .collect()
    }

    fn add(&self, name: &str) {
        self.add_after(name, Duration::ZERO);
    }

    /// Queues `name` for `after` from now (an earlier time already queued stays).
    fn add_after(&self, name: &str, after: Duration) {
        let at = Instant::now() + after;
        self.names
            .lock()
            .expect("queue lock")
            .insert(name.to_string());
        let mut due = self.due.lock().expect("queue lock");
        let entry = due.entry(name.to_string()).or_insert(at);
        if at < *entry {
            *entry = at;
        }
        drop(due);
        self.wake.notify_one();
    }

    /// The next set whose time has come.
    async fn next(&self) -> String {
        loop {
            let wait = {
                let mut due = self.due.lock().expect("queue lock");
                let now = Instant::now();
                let first = due
                    .iter()
                    .min_by_key(|(_, at)| **at)
                    .map(|(n, at)| (n.clone(), *at));
                match first {
                    Some((name, at)) if at <= now => {
                        due.remove(&name);
                        return name;
                    }
                    Some((_, at)) => at - now,
                    None => Duration::from_secs(3600),
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = self.wake.notified() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_keep_their_time_while_unchanged() {
        let mut s = ApplicationSetStatus::default();
        set_condition(&mut s, "ErrorOccurred", "False", "r", "m", "t1");
        set_condition(&mut s, "ErrorOccurred", "False", "r", "m2", "t2");
        assert_eq!(s.conditions[0].last_transition_time.as_deref(), Some("t1"));
        assert_eq!(s.conditions[0].message, "m2");
        set_condition(&mut s, "ErrorOccurred", "True", "r", "m3", "t3");
        assert_eq!(s.conditions[0].last_transition_time.as_deref(), Some("t3"));
    }

    #[test]
    fn a_generator_failure_marks_parameters_not_generated() {
        let mut s = ApplicationSetStatus::default();
        let f = Failure {
            reason: condition_reason::GENERATION_ERROR,
            message: "ApplicationSet x: generators[0].git: unreachable".into(),
        };
        set_failure(&mut s, &f, "t");
        let c = s.condition(condition_type::ERROR_OCCURRED).unwrap();
        assert_eq!((c.status.as_str(), c.reason.as_str()), ("True", f.reason));
        assert_eq!(
            s.condition(condition_type::PARAMETERS_GENERATED)
                .unwrap()
                .status,
            "False"
        );
        assert_eq!(
            s.condition(condition_type::RESOURCES_UP_TO_DATE)
                .unwrap()
                .status,
            "False"
        );
    }

    #[tokio::test]
    async fn the_queue_gives_due_names_first() {
        let q = Queue::default();
        q.add_after("later", Duration::from_secs(60));
        q.add("now");
        assert_eq!(q.next().await, "now");
        q.add_after("later", Duration::ZERO);
        assert_eq!(
            q.next().await,
            "later",
            "an earlier time replaces a later one"
        );
    }
}
