//! The reconcile's sync step: whether a sync is due (requested, or automated as Argo CD decides),
//! whether a sync window holds it back, and the sync itself with its record in the status
//! (operation state, history, Events, metrics).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use ferry_core::application::{
    Application, ApplicationStatus, Operation, OperationInitiator, OperationPhase, OperationState,
    SyncOperation,
};
use ferry_core::tracking::ResourceKey;
use serde_json::Value;
use tracing::info;

use crate::app_of_apps::AppView;
use crate::auto_sync::{AutoSync, PendingWork, auto_sync_request};
use crate::compare::{Compared, Prunable};
use crate::comparison::AppComparison;
use crate::conditions::{clear_conditions, condition, now, set_condition};
use crate::desired::DesiredObject;
use crate::engine::Engine;
use crate::reconcile::Look;
use crate::status::requeue_for_health;
use crate::sync::{SyncInputs, SyncOutcome, SyncRequest, run_sync};

impl Engine {
    /// The sync to run now, if any: the one the app asks for, or an automated one. A retry
    /// that is due later lowers `requeue` to then.
    pub(crate) fn sync_request(
        &self,
        app: &Application,
        status: &ApplicationStatus,
        found: &AppComparison,
        look: &Look,
        requeue: &mut Option<Duration>,
    ) -> Option<SyncRequest> {
        match &look.effective_operation {
            // A sync that goes on from an earlier reconcile keeps its retry and self-heal
            // counts.
            Some(op) if look.operation.is_none() => op.sync.as_ref().map(|s| SyncRequest {
                retry_count: status
                    .operation_state
                    .as_ref()
                    .and_then(|o| o.retry_count)
                    .unwrap_or(0),
                self_heal_attempts: s.self_heal_attempts_count,
                ..SyncRequest::manual(op, s)
            }),
            Some(op) => op.sync.as_ref().map(|s| SyncRequest::manual(op, s)),
            None => match auto_sync_request(
                app,
                status,
                &found.desired.revision,
                &PendingWork::of(&found.compared, &found.prunable),
            ) {
                AutoSync::Run(r) => Some(r),
                AutoSync::RetryIn(after) => {
                    *requeue = Some(requeue.map_or(after, |r| r.min(after)));
                    None
                }
                AutoSync::No => None,
            },
        }
    }

    /// Why a sync window of the app's project holds `request` back, if one does (the
    /// conditions about windows are set on `status` either way).
    pub(crate) async fn held_by_window(
        &self,
        app: &Application,
        status: &mut ApplicationStatus,
        request: Option<&SyncRequest>,
    ) -> Option<String> {
        let project = self.differ.project(&app.spec.project).await.ok().flatten();
        crate::windows::gate_sync(status, app, project.as_ref(), request)
    }

    /// Records a sync held back by a window: a requested sync stays pending (running, as in
    /// Argo CD) until a window lets it through; a refresh is done.
    pub(crate) async fn hold(
        &self,
        app: &Application,
        mut status: ApplicationStatus,
        look: &Look,
        request: Option<&SyncRequest>,
        reason: &str,
    ) -> Result<Option<Duration>, kube::Error> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        info!(app = name, "sync held back: {reason}");
        let manual = request.is_some_and(|r| !r.automated);
        if let (Some(op), true) = (&look.effective_operation, manual) {
            let started = status
                .operation_state
                .as_ref()
                .filter(|o| o.phase == OperationPhase::Running)
                .and_then(|o| o.started_at.clone())
                .unwrap_or_else(now);
            status.operation_state = Some(OperationState {
                operation: op.clone(),
                phase: OperationPhase::Running,
                message: Some(format!("Sync operation blocked by sync window: {reason}")),
                sync_result: None,
                started_at: Some(started),
                finished_at: None,
                retry_count: None,
            });
        }
        self.write_status(app, &status, !manual && look.refresh.is_some())
            .await?;
        Ok(Some(self.next_poll(app)))
    }

    /// Runs the sync `request` and records it in `status`. Returns when to look again. The
    /// comparison is used up: after a simple sync its objects and the apply answers become the
    /// status's comparison without a copy.
    pub(crate) async fn run_operation(
        self: &Arc<Self>,
        app: &Application,
        status: &mut ApplicationStatus,
        found: AppComparison,
        view: &AppView,
        request: &SyncRequest,
        look: &Look,
    ) -> Result<Option<Duration>, kube::Error> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let requeue;
        // A sync of this revision that an earlier reconcile started (or that was running when
        // ferry stopped) goes on where it stopped: its finished hooks are not run again, and
        // it keeps its start time, which with the revision identifies the operation and so the
        // hooks it already started (see `sync::HOOK_RUN_ANNOTATION`).
        let under_way = look.under_way.as_ref().filter(|o| {
            o.sync_result
                .as_ref()
                .is_some_and(|r| r.revision == found.desired.revision)
                && o.started_at.is_some()
        });
        let resumed: Vec<ferry_core::application::ResourceResult> = under_way
            .and_then(|o| o.sync_result.as_ref())
            .map(|r| r.resources.clone())
            .unwrap_or_default();
        let started = under_way
            .and_then(|o| o.started_at.clone())
            .unwrap_or_else(now);
        let continuing = under_way.is_some();
        if !continuing {
            info!(app = name, revision = %found.desired.revision, automated = request.automated, "syncing");
        }
        // Record that a sync is running, so the next reconcile (or a restart) goes on with it:
        // the operation as recorded when it started, or the one asked for (or an automated one)
        // pinned to the revisions resolved now.
        let recorded = under_way.map(|state| state.operation.clone());
        let mut op = recorded
            .or_else(|| look.effective_operation.clone())
            .unwrap_or_else(|| Operation {
                sync: Some(SyncOperation {
                    revision: Some(found.desired.revision.clone()),
                    prune: request.prune,
                    self_heal_attempts_count: request.self_heal_attempts,
                    ..Default::default()
                }),
                initiated_by: Some(OperationInitiator {
                    username: None,
                    automated: true,
                }),
                ..Default::default()
            });
        if let Some(sync) = op.sync.as_mut() {
            if sync.revision.as_deref().is_none_or(str::is_empty) {
                sync.revision = Some(found.desired.revision.clone());
            }
            if sync.revisions.is_empty() && found.desired.source_revisions.len() > 1 {
                sync.revisions.clone_from(&found.desired.source_revisions);
            }
        }
        status.operation_state = Some(OperationState {
            operation: op.clone(),
            phase: OperationPhase::Running,
            message: Some("syncing".into()),
            sync_result: Some(ferry_core::application::SyncOperationResult {
                resources: resumed.clone(),
                revision: found.desired.revision.clone(),
                ..Default::default()
            }),
            started_at: Some(started.clone()),
            finished_at: None,
            retry_count: (request.retry_count > 0).then_some(request.retry_count),
        });
        // An automated sync without hooks needs no record before it starts: were ferry to stop
        // in the middle, the next comparison would find the same difference and sync again
        // (applying is idempotent). A requested sync, or one with hooks (which must not run
        // twice), is recorded first.
        let needs_record = look.effective_operation.is_some()
            || !request.automated
            || !found.desired.hooks.is_empty();
        if !continuing && needs_record {
            self.write_status(app, status, false).await?;
        }

        let writer = self.status_writer(app);
        let env = self.sync_env(app, &writer);
        let SyncOutcome {
            phase,
            message,
            results,
            applied,
            adopted,
        } = run_sync(
            &env,
            app,
            status,
            SyncInputs {
                cluster: &found.cluster,
                hooks: &found.desired.hooks,
                compared: &found.compared,
                prunable: &found.prunable,
                resumed: &resumed,
            },
            request,
        )
        .await;
        self.record_adoptions(app, &adopted).await;
        if phase == OperationPhase::Running {
            // It waits: recorded with its results so far, it goes on at the next reconcile (or
            // sooner, when a watch sees one of its objects change).
            if let Some(state) = status.operation_state.as_mut() {
                state.message = Some(message);
                if let Some(result) = state.sync_result.as_mut() {
                    result.resources = results;
                }
            }
            return Ok(Some(step_delay(&started)));
        }
        let finished = now();
        status.operation_state = Some(OperationState {
            operation: op.clone(),
            phase,
            message: Some(message.clone()),
            sync_result: Some(ferry_core::application::SyncOperationResult {
                resources: results,
                revision: found.desired.revision.clone(),
                source: app.spec.effective_sources().first().map(|s| (*s).clone()),
                ..Default::default()
            }),
            started_at: Some(started.clone()),
            finished_at: Some(finished.clone()),
            retry_count: (request.retry_count > 0).then_some(request.retry_count),
        });
        self.metrics
            .syncs
            .get_or_create(&crate::metrics::SyncLabels {
                name: name.to_string(),
                phase: format!("{phase:?}"),
            })
            .inc();
        self.record_event(app, phase, &message, &found.desired.revision)
            .await;
        if phase == OperationPhase::Succeeded && !request.dry_run {
            clear_conditions(status, &[condition::SYNC_ERROR]);
            crate::history::record(
                status,
                app,
                &found.desired.revision,
                found.desired.commit.as_ref(),
                &started,
                &finished,
                op.initiated_by.clone(),
            );
        } else if phase != OperationPhase::Succeeded {
            set_condition(status, condition::SYNC_ERROR, &message);
        }
        // When the sync applied every object that differed and nothing else was to do (no
        // hooks, nothing to prune), the apply answers are the live objects: the status is
        // filled from them, with no second comparison. Their watch events are ferry's own
        // and are ignored; anything else that changes them still queues the app.
        let settled_by_sync = phase == OperationPhase::Succeeded
            && !request.dry_run
            && settled_by_sync(
                &found.compared,
                &found.prunable,
                &found.desired.hooks,
                &applied,
            );
        if settled_by_sync {
            let before: HashMap<&ResourceKey, &Value> = found
                .compared
                .iter()
                .filter_map(|c| Some((&c.desired.key, c.live.as_ref()?)))
                .collect();
            for (key, live) in &applied {
                self.watches
                    .expect_own_write(live, before.get(key).copied());
            }
            let AppComparison {
                desired, compared, ..
            } = found;
            let after = compared_after_sync(compared, applied);
            crate::status::fill_comparison(
                status,
                app,
                view,
                &desired,
                &after,
                &[],
                &*self.settings().current().await,
            );
            requeue = requeue_for_health(status);
        } else {
            // Look again right away: health moves on, and status should show the result; a
            // failed automated sync comes back when its retry is due.
            self.memos.forget(name);
            requeue = Some(Duration::from_millis(500));
        }
        Ok(requeue)
    }
}

/// Whether a sync was simple enough that its apply answers are the live side of a comparison
/// where all is in sync: no hooks, nothing prunable, and every object that differed applied
/// and answered.
fn settled_by_sync(
    compared: &[Compared],
    prunable: &[Prunable],
    hooks: &[DesiredObject],
    applied: &[(ResourceKey, Value)],
) -> bool {
    if !prunable.is_empty() || !hooks.is_empty() {
        return false;
    }
    let applied: HashSet<&ResourceKey> = applied.iter().map(|(k, _)| k).collect();
    compared.iter().all(|c| {
        c.error.is_none()
            && c.foreign_owner.is_none()
            && (c.in_sync || applied.contains(&c.desired.key))
    })
}

/// The comparison after a sync that [settled](settled_by_sync) it: each applied object's
/// answer becomes its live side (moved, not copied), and all is in sync.
fn compared_after_sync(
    compared: Vec<Compared>,
    applied: Vec<(ResourceKey, Value)>,
) -> Vec<Compared> {
    let mut applied: HashMap<ResourceKey, Value> = applied.into_iter().collect();
    compared
        .into_iter()
        .map(|mut c| {
            if let Some(mut live) = applied.remove(&c.desired.key) {
                crate::compare::drop_managed_fields(&mut live);
                // Only the live side, as the reconcile's comparisons keep (`Keep::Live`): a
                // second copy of every answer would only raise the peak (an App-of-Apps
                // root's answers are its children, status and all).
                c.live = Some(live);
                c.predicted = None;
                c.in_sync = true;
            }
            c
        })
        .collect()
}

/// How soon a sync that waits looks again: every second at first, then less often as its wait
/// goes on (a watch event on its objects queues it sooner anyway).
fn step_delay(started: &str) -> Duration {
    match crate::auto_sync::since(Some(started)) {
        Some(d) if d < Duration::from_secs(10) => Duration::from_secs(1),
        Some(d) if d < Duration::from_secs(60) => Duration::from_secs(2),
        _ => Duration::from_secs(5),
    }
}
