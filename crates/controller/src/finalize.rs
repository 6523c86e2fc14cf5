//! Deleting an Application, with Argo CD's finalizers: `pre-delete-finalizer.argocd.argoproj.io`
//! (its PreDelete hooks run, and must succeed, first), `resources-finalizer.argocd.argoproj.io`
//! (what it tracks is deleted), `post-delete-finalizer.argocd.argoproj.io` (its PostDelete hooks
//! run once the resources are gone); then the finalizers are removed. As Argo CD does, ferry adds
//! the two hook finalizers to an app whose source has such hooks (and removes them when it has
//! none), so that only apps with delete hooks need their source when they are deleted.

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
use crate::conditions::set_condition;
use crate::desired::DesiredObject;
use crate::engine::Engine;
use crate::status::{resource_key, resource_ref};
use crate::sync::run_deletion_hooks;

impl Engine {
    /// An Application being deleted: with the resources finalizer, delete what it tracks, then
    /// drop the finalizer; without, leave everything.
    pub(crate) async fn finalize(
        self: &Arc<Self>,
        app: &Application,
    ) -> Result<Option<Duration>, kube::Error> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let policy = app.resources_finalizer();
        let has = |f: &str| {
            app.metadata
                .finalizers
                .as_ref()
                .is_some_and(|all| all.iter().any(|x| x == f))
        };
        let (pre, post) = (has(PRE_DELETE_FINALIZER), has(POST_DELETE_FINALIZER));
        if policy.is_none() && !pre && !post {
            return Ok(None);
        }
        let Ok(cluster) = self
            .differ
            .destinations
            .resolve(
                app.spec.destination.server.as_deref(),
                app.spec.destination.name.as_deref(),
            )
            .await
        else {
            return Ok(Some(Duration::from_secs(10)));
        };
        let hooks = match self.deletion_hooks(app, pre || post).await {
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
        let writer = self.status_writer(app);
        let env = self.sync_env(app, &writer);
        if pre && !hooks.is_empty() {
            begin_deletion(&mut status);
            if let Err(why) =
                run_deletion_hooks(&env, app, &mut status, &cluster, &hooks, Phase::PreDelete).await
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
        // What the app tracks depends on argocd-cm's tracking method: read it first.
        self.settings().current().await;
        let mut remaining = 0;
        for r in resources.into_iter().filter(|_| policy.is_some()) {
            let key = resource_key(&r);
            if view.protects(&key) {
                continue;
            }
            let obj_ref = resource_ref(&r);
            if let Ok(Some(live)) = cluster.get(&obj_ref).await
                && self.tracks(&live, name, &key)
                // `Delete=false` (or `confirm`): the resource outlives its app.
                && ferry_core::order::sync_options(&live).delete
                && !ferry_core::order::sync_options(&live).delete_confirm
            {
                remaining += 1;
                if live.pointer("/metadata/deletionTimestamp").is_none() {
                    let propagation = match policy.unwrap_or_default() {
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
        if post && !hooks.is_empty() {
            begin_deletion(&mut status);
        }
        if post
            && !hooks.is_empty()
            && let Err(why) =
                run_deletion_hooks(&env, app, &mut status, &cluster, &hooks, Phase::PostDelete)
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
            .filter(|f| {
                !f.starts_with(ferry_core::application::RESOURCES_FINALIZER)
                    && f != PRE_DELETE_FINALIZER
                    && f != POST_DELETE_FINALIZER
            })
            .collect();
        let patch = json!({"metadata": {"finalizers": finalizers}});
        match self
            .apps
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => {
                self.wrote_app(&written);
                Ok(None)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The app's PreDelete and PostDelete hooks, rendered from its source once per deletion
    /// (none, without rendering, unless `wanted`).
    async fn deletion_hooks(
        self: &Arc<Self>,
        app: &Application,
        wanted: bool,
    ) -> Result<Arc<Vec<DesiredObject>>, String> {
        if !wanted {
            return Ok(Arc::default());
        }
        let name = app.metadata.name.as_deref().unwrap_or_default();
        if let Some(hooks) = self.memos.delete_hooks(name) {
            return Ok(hooks);
        }
        // Only the hooks are needed: the source is rendered, nothing is compared.
        let failed = |e: crate::error::AppError| format!("{}: {e}", e.condition());
        let target = self.differ.admit(app).await.map_err(failed)?;
        let desired = self
            .differ
            .desired(
                app,
                &target,
                None,
                self.cfg.poll_interval,
                &crate::desired_state::Pins::default(),
            )
            .await
            .map_err(failed)?;
        let hooks = Arc::new(desired.delete_hooks);
        self.memos.set_delete_hooks(name, Some(hooks.clone()));
        Ok(hooks)
    }

    /// Adds Argo CD's pre- and post-delete finalizers to an app whose source has such hooks,
    /// and removes them when it has none.
    pub(crate) async fn keep_hook_finalizers(
        &self,
        app: &Application,
        hooks: &[DesiredObject],
    ) -> Result<(), kube::Error> {
        let Some(finalizers) = finalizers_for_hooks(app, hooks) else {
            return Ok(());
        };
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let patch = json!({"metadata": {"finalizers": finalizers}});
        match self
            .apps
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => {
                self.wrote_app(&written);
                Ok(())
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(e),
        }
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
        self.memos.set_delete_hooks(name, None);
        Ok(Some(self.cfg.poll_interval))
    }
}

/// The condition of a deletion that cannot go on.
pub(crate) const DELETION_ERROR: &str = "DeletionError";
/// Argo CD's finalizer of an app with PreDelete hooks.
pub(crate) const PRE_DELETE_FINALIZER: &str = "pre-delete-finalizer.argocd.argoproj.io";
/// Argo CD's finalizer of an app with PostDelete hooks.
pub(crate) const POST_DELETE_FINALIZER: &str = "post-delete-finalizer.argocd.argoproj.io";

/// The finalizers `app` should have given its delete hooks: its own, with the hook finalizers
/// added or removed; `None` when they are right already.
pub(crate) fn finalizers_for_hooks(
    app: &Application,
    hooks: &[DesiredObject],
) -> Option<Vec<String>> {
    let has_phase = |phase: Phase| {
        hooks
            .iter()
            .any(|h| h.hooks.iter().any(|t| t.deletion_phase() == Some(phase)))
    };
    let current = app.metadata.finalizers.clone().unwrap_or_default();
    let mut wanted: Vec<String> = current
        .iter()
        .filter(|f| *f != PRE_DELETE_FINALIZER && *f != POST_DELETE_FINALIZER)
        .cloned()
        .collect();
    for (phase, finalizer) in [
        (Phase::PreDelete, PRE_DELETE_FINALIZER),
        (Phase::PostDelete, POST_DELETE_FINALIZER),
    ] {
        if has_phase(phase) {
            wanted.push(finalizer.to_string());
        }
    }
    let same = wanted.len() == current.len() && wanted.iter().all(|f| current.contains(f));
    (!same).then_some(wanted)
}

/// Makes `status` hold the deletion's operation (keeping the results of delete hooks recorded
/// by an earlier step of it).
fn begin_deletion(status: &mut ApplicationStatus) {
    let recorded = crate::sync::recorded_deletion_hooks(status);
    // The same attempt, resumed (ferry stopped, or the resources are still going): its start,
    // so its hooks keep their run id. After a failed attempt, a new one with a new run id, so
    // a failed hook runs again.
    let started = status
        .operation_state
        .as_ref()
        .filter(|o| !recorded.is_empty() && o.phase == OperationPhase::Running)
        .and_then(|o| o.started_at.clone())
        .unwrap_or_else(crate::conditions::now);
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

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::order::HookType;
    use ferry_core::tracking::ResourceKey;

    fn app(finalizers: &[&str]) -> Application {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "a", "finalizers": finalizers},
            "spec": {"destination": {}}
        }))
        .unwrap()
    }

    fn hook(types: Vec<HookType>) -> DesiredObject {
        DesiredObject {
            key: ResourceKey::new("batch", "Job", "ns", "h"),
            object: json!({}),
            origin: "h.yaml:1".into(),
            hooks: types,
            generate_name: false,
        }
    }

    #[test]
    fn hook_finalizers_follow_the_hooks_the_source_has() {
        let resources = ferry_core::application::RESOURCES_FINALIZER;
        // PreDelete hooks: the pre-delete finalizer is added, others kept.
        assert_eq!(
            finalizers_for_hooks(&app(&[resources]), &[hook(vec![HookType::PreDelete])]),
            Some(vec![
                resources.to_string(),
                PRE_DELETE_FINALIZER.to_string()
            ])
        );
        // Both, already there: nothing to change.
        let both = [hook(vec![HookType::PreDelete, HookType::PostDelete])];
        assert_eq!(
            finalizers_for_hooks(&app(&[POST_DELETE_FINALIZER, PRE_DELETE_FINALIZER]), &both),
            None
        );
        // No delete hooks any more: they go.
        assert_eq!(
            finalizers_for_hooks(
                &app(&[PRE_DELETE_FINALIZER, resources]),
                &[hook(vec![HookType::PreSync])]
            ),
            Some(vec![resources.to_string()])
        );
        assert_eq!(finalizers_for_hooks(&app(&[]), &[]), None);
    }
}
