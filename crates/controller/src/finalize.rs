//! Deleting an Application: with the resources finalizer, what it tracks is deleted with it,
//! then the finalizer is removed; without it, everything stays.

use std::time::Duration;

use ferry_cluster::Propagation;
use ferry_core::application::Application;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tracing::warn;

use crate::app_of_apps::AppView;
use crate::reconcile::{Engine, resource_key, resource_ref, tracked_by};

impl Engine {
    /// An Application being deleted: with the resources finalizer, delete what it tracks, then
    /// drop the finalizer; without, leave everything.
    pub(crate) async fn finalize(
        &self,
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
}
