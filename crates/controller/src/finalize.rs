//! Deleting an Application: with the resources finalizer, its PreDelete hooks run (and must
//! succeed), then what it tracks is deleted, then its PostDelete hooks run, then the finalizer
//! is removed; without the finalizer, nothing runs and everything stays.

use std::sync::Arc;
use std::time::Duration;

use ferry_cluster::Propagation;
use ferry_core::application::{
    Application, ApplicationStatus, Operation, OperationInitiator, OperationPhase, OperationState,
    SyncOperationResult,
};
use ferry_core::order::Phase;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tracing::warn;

use crate::app_of_apps::AppView;
use crate::desired::DesiredObject;
use crate::reconcile::{
    Comparison, Engine, Skip, resource_key, resource_ref, set_condition, tracked_by,
};
use crate::sync::run_deletion_hooks;

impl Engine {
    /// An Application being deleted: with the resources finalizer, delete what it tracks, then
    /// drop the finalizer; without, leave everything.
    pub(crate) async fn finalize(
        self: &Arc<Self>,
        app: &Application,
    ) -> Result<Option<Duration>, kube::Error> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let Some(policy) = app.resources_finalizer() else {
            return Ok(None);
        };
        let Ok(cluster) = self
            .destinations
            .resolve(
                app.spec.destination.server.as_deref(),
                app.spec.destination.name.as_deref(),
            )
            .await
        else {
            return Ok(Some(Duration::from_secs(10)));
        };
        let hooks = match self.deletion_hooks(app).await {
            Ok(hooks) => hooks,
            Err(why) => {
                let message = format!(
                    "the delete hooks could not be worked out, so the app's resources are kept: {why}; \
                     fix the source, or remove the finalizer to delete the app without its hooks"
                );
                return self.deletion_failed(app, message).await;
            }
        };
        let mut status = app.status.clone().unwrap_or_default();
        if !hooks.is_empty() {
            begin_deletion(&mut status);
            if let Err(why) =
                run_deletion_hooks(self, app, &mut status, &cluster, &hooks, Phase::PreDelete).await
            {
                let message = format!("{why}; the app's resources are kept until it succeeds");
                return self.deletion_failed_with(app, status, message).await;
            }
        }
        let resources = app
            .status
            .as_ref()
            .map(|s| s.resources.clone())
            .unwrap_or_default();
        // An app that manages itself (or its project) does not delete itself: it is going
        // already, and its project may hold other apps.
        let (view, _) = AppView::of(app, &self.cfg.namespace, self.cfg.child_health);
        let mut remaining = 0;
        for r in resources {
            let key = resource_key(&r);
            if view.protects(&key) {
                continue;
            }
            let obj_ref = resource_ref(&r);
            if let Ok(Some(live)) = cluster.get(&obj_ref).await
                && tracked_by(&live, name, &key)
                // `Delete=false` (or `confirm`): the resource outlives its app.
                && ferry_core::order::sync_options(&live).delete
                && !ferry_core::order::sync_options(&live).delete_confirm
            {
                remaining += 1;
                if live.pointer("/metadata/deletionTimestamp").is_none() {
                    let propagation = match policy {
                        ferry_core::order::PropagationPolicy::Background => Propagation::Background,
                        _ => Propagation::Foreground,
                    };
                    if let Err(e) = cluster.delete(&obj_ref, propagation).await {
                        warn!(app = name, "deleting {obj_ref}: {e}");
                    }
                }
            }
        }
        if remaining > 0 {
            return Ok(Some(Duration::from_secs(1)));
        }
        if !hooks.is_empty()
            && let Err(why) =
                run_deletion_hooks(self, app, &mut status, &cluster, &hooks, Phase::PostDelete)
                    .await
        {
            return self.deletion_failed_with(app, status, why).await;
        }
        let finalizers: Vec<String> = app
            .metadata
            .finalizers
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| !f.starts_with(ferry_core::application::RESOURCES_FINALIZER))
            .collect();
        let patch = json!({"metadata": {"finalizers": finalizers}});
        match self
            .apps
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => Ok(None),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The app's PreDelete and PostDelete hooks, rendered from its source once per deletion.
    async fn deletion_hooks(
        self: &Arc<Self>,
        app: &Application,
    ) -> Result<Arc<Vec<DesiredObject>>, String> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let known = self
            .memos
            .lock()
            .expect("memo lock")
            .get(name)
            .and_then(|m| m.delete_hooks.clone());
        if let Some(hooks) = known {
            return Ok(hooks);
        }
        let compared = self
            .compare_app(app, None, self.cfg.poll_interval, None, Skip::default())
            .await
            .map_err(|p| format!("{}: {}", p.kind, p.message))?;
        let Comparison::Done(found) = compared else {
            unreachable!("a comparison that may not be skipped");
        };
        let hooks = Arc::new(found.0.delete_hooks);
        self.memos
            .lock()
            .expect("memo lock")
            .entry(name.to_string())
            .or_default()
            .delete_hooks = Some(hooks.clone());
        Ok(hooks)
    }

    /// Records why the deletion cannot go on (a `DeletionError` condition, as Argo CD names
    /// it) and looks again after a poll interval.
    async fn deletion_failed(
        &self,
        app: &Application,
        message: String,
    ) -> Result<Option<Duration>, kube::Error> {
        let status = app.status.clone().unwrap_or_default();
        self.deletion_failed_with(app, status, message).await
    }

    async fn deletion_failed_with(
        &self,
        app: &Application,
        mut status: ApplicationStatus,
        message: String,
    ) -> Result<Option<Duration>, kube::Error> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        warn!(app = name, "deleting: {message}");
        if let Some(op) = status.operation_state.as_mut() {
            op.phase = OperationPhase::Failed;
            op.message = Some(message.clone());
        }
        set_condition(&mut status, DELETION_ERROR, &message);
        self.write_status(app, &status, false).await?;
        // The next attempt renders again: a fixed source is picked up.
        if let Some(m) = self.memos.lock().expect("memo lock").get_mut(name) {
            m.delete_hooks = None;
        }
        Ok(Some(self.cfg.poll_interval))
    }
}

/// The condition of a deletion that cannot go on.
pub const DELETION_ERROR: &str = "DeletionError";

/// Makes `status` hold the deletion's operation (keeping the results of delete hooks recorded
/// by an earlier step of it).
fn begin_deletion(status: &mut ApplicationStatus) {
    let recorded = crate::sync::recorded_deletion_hooks(status);
    let started = status
        .operation_state
        .as_ref()
        .filter(|_| !recorded.is_empty())
        .and_then(|o| o.started_at.clone())
        .unwrap_or_else(crate::reconcile::now);
    status.operation_state = Some(OperationState {
        operation: Operation {
            initiated_by: Some(OperationInitiator {
                username: None,
                automated: true,
            }),
            ..Default::default()
        },
        phase: OperationPhase::Running,
        message: Some("deleting the application: running its delete hooks".into()),
        sync_result: Some(SyncOperationResult {
            resources: recorded,
            ..Default::default()
        }),
        started_at: Some(started),
        finished_at: None,
        retry_count: None,
    });
}
