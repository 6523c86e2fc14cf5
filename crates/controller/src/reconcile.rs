//! Reconciling one Application: admit → fetch → render → desired → compare → (sync) → status.
//!
//! [`Engine::reconcile`] reads as that list of steps; each lives in its own module (see
//! docs/architecture.md). It never prunes after a failed, partial or empty render, never
//! touches objects the app does not track, and writes what it found to the Application's status
//! in Argo CD's shape.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::application::{
    Application, ApplicationStatus, HealthStatusCode, Operation, OperationPhase, OperationState,
    RefreshType, SyncStatusCode,
};
use tracing::warn;

use crate::app_of_apps::AppView;
use crate::comparison::AppComparison;
use crate::conditions::{clear_conditions, condition, now, set_condition};
use crate::desired_state::Pins;
use crate::engine::Engine;
use crate::error::AppError;
use crate::memo::{Comparison, Seen, Skip, Skipped, content_hash};
use crate::status::requeue_for_health;
use crate::touched::Touched;

/// What one reconcile is asked to do, from the app as it was read.
pub(crate) struct Look {
    /// A refresh the app asks for (the `argocd.argoproj.io/refresh` annotation).
    pub(crate) refresh: Option<RefreshType>,
    /// How old a fetch may be: a poll interval; for a refresh, no older than the request.
    pub(crate) fetch_max_age: Duration,
    /// The operation the app asks for (`.operation`).
    pub(crate) operation: Option<Operation>,
    /// That operation, or a sync that was running when ferry stopped (automated syncs leave
    /// no `.operation`).
    pub(crate) effective_operation: Option<Operation>,
    /// A sync started by an earlier reconcile and not finished: it goes on.
    pub(crate) under_way: Option<OperationState>,
    /// The revisions this look is pinned to (see [`Pins`]).
    pub(crate) pins: Pins,
    /// Which comparisons may be skipped.
    pub(crate) skip: Skip,
}

/// The app's sync that an earlier reconcile started and that has not finished.
pub(crate) fn under_way(app: &Application) -> Option<&OperationState> {
    app.status
        .as_ref()
        .and_then(|s| s.operation_state.as_ref())
        .filter(|o| o.phase == OperationPhase::Running && o.sync_result.is_some())
}

impl Engine {
    /// Reconciles the Application `name`. Returns when to look again, if sooner than the next
    /// event or poll.
    pub async fn reconcile(self: &Arc<Self>, name: &str) -> Result<Option<Duration>, kube::Error> {
        let Some(app) = self.read_app(name).await? else {
            self.forget(name);
            return Ok(None);
        };
        // With several replicas, another may own the app's destination cluster.
        if !self.owns_app(&app).await? {
            return Ok(None);
        }
        if app.metadata.deletion_timestamp.is_some() {
            return self.finalize(&app).await;
        }
        let look = self.look_at(&app);
        let mut status = app.status.clone().unwrap_or_default();
        status.reconciled_at = Some(now());
        status.observed_at = status.reconciled_at.clone();

        let compared = self
            .compare_app(
                &app,
                look.refresh,
                look.fetch_max_age,
                &look.pins,
                look.skip,
            )
            .await;
        let found = match compared {
            Ok(Comparison::Done(found)) => *found,
            Ok(Comparison::Unchanged) => return self.unchanged(&app, status).await,
            Ok(Comparison::RevisionMoved(revision)) => {
                status.sync.revision = Some(revision);
                self.write_status(&app, &status, look.refresh.is_some())
                    .await?;
                return Ok(self.next_look(&app));
            }
            Err(error) => return self.comparison_failed(&app, status, &error, &look).await,
        };
        let view = self.show_comparison(&app, &mut status, &found).await?;

        let mut requeue = requeue_for_health(&status);
        let request = self.sync_request(&app, &status, &found, &look, &mut requeue);
        // A sync already under way finishes, as in Argo CD: windows gate starting one.
        let gated = request.as_ref().filter(|_| look.under_way.is_none());
        if let Some(reason) = self.held_by_window(&app, &mut status, gated).await {
            return self
                .hold(&app, status, &look, request.as_ref(), &reason)
                .await;
        }
        if let Some(request) = request {
            requeue = self
                .run_operation(&app, &mut status, found, &view, &request, &look)
                .await?;
        }
        // A sync that goes on at the next reconcile keeps its operation.
        let running = status
            .operation_state
            .as_ref()
            .is_some_and(|o| o.phase == OperationPhase::Running);
        self.write_status_clearing(
            &app,
            &status,
            look.operation.is_some() && !running,
            look.refresh.is_some(),
        )
        .await?;
        Ok(requeue.or(self.next_look(&app)))
    }

    /// What `app` asks of this reconcile, and which comparisons it may skip.
    fn look_at(&self, app: &Application) -> Look {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let refresh = app.refresh_requested();
        let refresh_seen = self.refresh_seen.lock().expect("refresh lock").remove(name);
        let fetch_max_age = match refresh {
            None => self.cfg.poll_interval,
            Some(_) => refresh_seen.map_or(Duration::ZERO, |seen| seen.elapsed()),
        };
        let operation = app.operation.clone();
        // A sync that was running when ferry stopped is resumed, whatever the app's sync status
        // says now.
        let resumed_operation = app
            .status
            .as_ref()
            .and_then(|s| s.operation_state.as_ref())
            .filter(|o| operation.is_none() && o.phase == OperationPhase::Running)
            .map(|o| o.operation.clone());
        let effective_operation = operation.clone().or(resumed_operation);
        // A sync under way keeps the revisions it started with (recorded in its state), so a
        // branch that moves meanwhile neither restarts it nor mixes two commits.
        let under_way = under_way(app).cloned();
        let pins = match &under_way {
            Some(state) => Pins::of(state.operation.sync.as_ref()),
            None => Pins::of(effective_operation.as_ref().and_then(|o| o.sync.as_ref())),
        };
        // With nothing new (same commit, spec and resources) and an app that is Synced and
        // settled, skip the work. Apps out of sync are compared every time: a retry or a sync
        // may be due.
        // A new commit that leaves this app's objects as they were needs no new comparison
        // either (a normal refresh of the same commit does compare again, a hard one always).
        let quiet = quiet(app);
        // An app in sync whose health is still on its way (Progressing) hears of every change
        // of its resources through the watches, and of its children's status through the
        // Application watch: with nothing new, it has nothing to compare either.
        let in_sync = effective_operation.is_none()
            && app
                .status
                .as_ref()
                .is_some_and(|s| s.sync.status == SyncStatusCode::Synced);
        Look {
            skip: Skip {
                unchanged: in_sync && refresh.is_none(),
                moved: quiet && refresh != Some(RefreshType::Hard),
                untouched: quiet && refresh.is_none(),
            },
            refresh,
            fetch_max_age,
            operation,
            effective_operation,
            under_way,
            pins,
        }
    }

    /// Nothing changed since the last comparison. A sync window of the project may have become
    /// malformed (or been fixed) meanwhile, though.
    async fn unchanged(
        &self,
        app: &Application,
        mut status: ApplicationStatus,
    ) -> Result<Option<Duration>, kube::Error> {
        let project = self.differ.project(&app.spec.project).await.ok().flatten();
        let before = status.conditions.clone();
        crate::windows::gate_sync(&mut status, app, project.as_ref(), None);
        let name = app.metadata.name.as_deref().unwrap_or_default();
        // Children that changed only their status: the health shown for them follows.
        let children = self.watches.take_children_stale(name) && {
            let (view, _) = AppView::of(app, &self.cfg.namespace, self.cfg.child_health);
            crate::status::refresh_children(&mut status, &view, &self.cfg.namespace, |child| {
                let key =
                    kube::runtime::reflector::ObjectRef::new(child).within(&self.cfg.namespace);
                self.app_store
                    .get(&key)
                    .and_then(|a| serde_json::to_value(&*a).ok())
            })
        };
        if children || status.conditions != before {
            self.write_status(app, &status, false).await?;
        }
        Ok(self.next_look(app))
    }

    /// The comparison failed: the error becomes the condition its kind names, a requested sync
    /// fails with it, and the next try is as the error's retry policy says.
    async fn comparison_failed(
        &self,
        app: &Application,
        mut status: ApplicationStatus,
        error: &AppError,
        look: &Look,
    ) -> Result<Option<Duration>, kube::Error> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let failures = self.memos.count_failure(name);
        let retry = error.retry_after(failures, self.cfg.poll_interval);
        warn!(app = name, failures, retry_in = ?retry, "{error}");
        let message = error.to_string();
        set_condition(&mut status, error.condition(), &message);
        status.sync.status = SyncStatusCode::Unknown;
        if look.under_way.is_some() {
            if matches!(error, AppError::Unavailable(_)) {
                // A sync under way waits out what may pass, and goes on afterwards.
                self.write_status_clearing(app, &status, false, look.refresh.is_some())
                    .await?;
                return Ok(Some(retry));
            }
            // What will not pass ends it, with what it did so far.
            if let Some(state) = status.operation_state.as_mut() {
                state.phase = OperationPhase::Error;
                state.message = Some(message);
                state.finished_at = Some(now());
            }
            self.write_status(app, &status, true).await?;
            return Ok(Some(retry));
        }
        if let Some(op) = &look.operation {
            // A requested sync cannot run: record why, and clear the request.
            status.operation_state = Some(OperationState {
                operation: op.clone(),
                phase: OperationPhase::Error,
                message: Some(message),
                sync_result: None,
                started_at: Some(now()),
                finished_at: Some(now()),
                retry_count: None,
            });
            self.write_status(app, &status, true).await?;
        } else {
            // A refresh is done once compared, even when the comparison failed.
            self.write_status(app, &status, look.refresh.is_some())
                .await?;
        }
        Ok(Some(retry))
    }

    /// Puts the comparison into `status`: sync status, resources, health, images, and the
    /// conditions that follow from them; keeps the app's delete-hook finalizers as its source
    /// says. Returns the app's view of itself (which children, which of them is itself).
    async fn show_comparison(
        &self,
        app: &Application,
        status: &mut ApplicationStatus,
        found: &AppComparison,
    ) -> Result<AppView, kube::Error> {
        clear_conditions(
            status,
            &[condition::COMPARISON_ERROR, condition::INVALID_SPEC_ERROR],
        );
        let settings = self.settings().current().await;
        let (view, view_problem) = AppView::of(app, &self.cfg.namespace, self.cfg.child_health);
        crate::status::fill_comparison(
            status,
            app,
            &view,
            &found.desired,
            &found.compared,
            &found.prunable,
            &settings,
        );
        crate::settings::report_settings_problems(status, app, &settings, &found.desired.excluded);
        self.keep_hook_finalizers(app, &found.desired.delete_hooks)
            .await?;
        if let Some(problem) = view_problem {
            set_condition(status, condition::INVALID_SPEC_ERROR, &problem);
        }
        Ok(view)
    }

    /// Works out `app`'s desired state and compares it with its cluster, as a reconcile does:
    /// the comparison is remembered, so the next one is skipped (as `skip` allows) when nothing
    /// that could change its result changed, and the app's resources are watched from now on.
    ///
    /// Diffs for users go through [`crate::Differ`] instead, and remember nothing: were they
    /// remembered, a diff between a drift event and the reconcile it queued would make that
    /// reconcile skip the app, leaving the drift unreported and unhealed.
    pub(crate) async fn compare_app(
        &self,
        app: &Application,
        refresh: Option<RefreshType>,
        fetch_max_age: Duration,
        pins: &Pins,
        skip: Skip,
    ) -> Result<Comparison, AppError> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let differ = &self.differ;
        let target = differ.admit(app).await?;
        let spec = format!(
            "{}|{}",
            serde_json::to_string(&app.spec).unwrap_or_default(),
            differ.settings.version()
        );
        // New commits that changed none of the app's inputs leave it as it is. The first look
        // at them skips the app outright; later looks render it at the commits it was last
        // compared at (a cached render, normally), so what Git does not hold (a revoked SOPS
        // key, the project's settings) still counts at every poll, as with no new commit.
        let mut at_last_compared = None;
        if skip.untouched
            && let Some(old) = self
                .memos
                .last_revisions(name, &spec, self.watches.epoch(name))
        {
            match differ.touched_since(app, &old, fetch_max_age).await {
                Touched::Untouched(now) => {
                    if self.memos.untouched_at(name, now) {
                        tracing::debug!("new commits changed none of the app's inputs");
                        self.metrics.untouched.inc();
                        return Ok(Comparison::Unchanged);
                    }
                    at_last_compared = Some(Pins::each(old));
                }
                Touched::Same | Touched::Touched => {}
            }
        }
        let pins = at_last_compared.as_ref().unwrap_or(pins);
        let desired = differ
            .desired(app, &target, refresh, fetch_max_age, pins)
            .await?;

        // Skip the comparison when nothing that could change its result changed.
        let fingerprint = Seen {
            revisions: desired.revisions.clone(),
            source_revisions: desired.source_revisions.clone(),
            content: content_hash(&desired.objects, &desired.hooks),
            spec,
            epoch: self.watches.epoch(name),
        };
        match self.memos.may_skip(name, &fingerprint, skip) {
            Some(Skipped::Unchanged) => return Ok(Comparison::Unchanged),
            Some(Skipped::RevisionMoved) => return Ok(Comparison::RevisionMoved(desired.revision)),
            None => tracing::debug!(
                app = name,
                epoch = fingerprint.epoch,
                unchanged = skip.unchanged,
                "comparing"
            ),
        }

        // While a watch is still listing, a change may give no event: such a comparison is
        // not remembered, so the next look compares again rather than skipping.
        let mut watching = true;
        // Objects a ready watch has never seen do not exist: no GET to find that out.
        let mut absent = HashSet::new();
        for o in &desired.objects {
            if let Ok(resolved) = target.cluster.resolve(o.api_version(), &o.key.kind).await {
                watching &= self
                    .watches
                    .ensure_ready(&target.cluster, &resolved.resource)
                    .await;
                let namespace = if resolved.namespaced {
                    o.object
                        .pointer("/metadata/namespace")
                        .and_then(serde_json::Value::as_str)
                        .filter(|n| !n.is_empty())
                } else {
                    Some("")
                };
                if let Some(namespace) = namespace
                    && !o.generate_name
                    && self.watches.known_absent(
                        &target.cluster,
                        &resolved.resource,
                        namespace,
                        &o.key.name,
                    )
                {
                    absent.insert(o.key.clone());
                }
            }
        }
        self.metrics
            .watched_objects
            .set(i64::try_from(self.watches.known_objects()).unwrap_or(i64::MAX));
        self.watches.compared(name);
        // This comparison reads the children as they are now.
        self.watches.take_children_stale(name);
        let found = differ.compare(app, target, desired, &absent).await?;
        self.memos.compared(name, fingerprint, watching);
        if !watching {
            // A change made while a watch lists may give no event: look again shortly, when
            // the watches are ready (nothing else would before the periodic look).
            self.queue.add_urgent_after(name, Duration::from_secs(1));
        }
        Ok(Comparison::Done(Box::new(found)))
    }
}

/// Synced, and healthy, suspended or degraded: nothing of the app is on its way.
fn settled(app: &Application) -> bool {
    app.status.as_ref().is_some_and(|s| {
        s.sync.status == SyncStatusCode::Synced
            && matches!(
                s.health.status,
                HealthStatusCode::Healthy
                    | HealthStatusCode::Suspended
                    | HealthStatusCode::Degraded
            )
    })
}

/// Settled, with no operation asked for or running: a new commit that changed none of its
/// inputs has nothing to do for it, not even a look.
pub(crate) fn quiet(app: &Application) -> bool {
    let running = app
        .status
        .as_ref()
        .and_then(|s| s.operation_state.as_ref())
        .is_some_and(|o| o.phase == OperationPhase::Running);
    app.operation.is_none() && !running && settled(app)
}
