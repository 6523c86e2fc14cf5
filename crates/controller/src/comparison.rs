//! An app's comparison: its desired state against its destination cluster, object by object,
//! and what it tracked before that Git no longer declares.

use std::collections::{BTreeSet, HashSet};

use ferry_cluster::ClusterClient;
use ferry_core::application::Application;
use ferry_core::tracking::ResourceKey;

use crate::app_of_apps::AppView;
use crate::compare::{Compared, Keep, Prunable, compare_all_keeping};
use crate::status::{resource_key, resource_ref};

/// An app's desired state compared with its cluster.
pub(crate) struct AppComparison {
    /// What Git declares, but its objects: they are in `compared`, one comparison each.
    pub(crate) desired: crate::desired_state::Desired,
    /// Each desired object against its live counterpart.
    pub(crate) compared: Vec<Compared>,
    /// Tracked objects Git no longer declares.
    pub(crate) prunable: Vec<Prunable>,
    /// The destination cluster.
    pub(crate) cluster: ClusterClient,
}

impl crate::differ::Differ {
    /// Compares `desired` with the cluster of `target`: every object by a server-side dry run,
    /// and what the app tracked before that Git no longer declares. Refuses a render with no
    /// objects that would prune everything (unless the app allows empty). The objects in
    /// `absent` are known not to exist (from the watches): they are not read.
    pub(crate) async fn compare(
        &self,
        app: &Application,
        target: crate::admit::Target,
        desired: crate::desired_state::Desired,
        absent: &HashSet<ResourceKey>,
    ) -> Result<AppComparison, crate::error::AppError> {
        self.compare_keeping(app, target, desired, Keep::Live, absent)
            .await
    }

    /// [`Differ::compare`], keeping the dry run's answers too (to show a diff).
    pub(crate) async fn compare_for_diff(
        &self,
        app: &Application,
        target: crate::admit::Target,
        desired: crate::desired_state::Desired,
    ) -> Result<AppComparison, crate::error::AppError> {
        self.compare_keeping(app, target, desired, Keep::Predicted, &HashSet::new())
            .await
    }

    async fn compare_keeping(
        &self,
        app: &Application,
        target: crate::admit::Target,
        mut desired: crate::desired_state::Desired,
        keep: Keep,
        absent: &HashSet<ResourceKey>,
    ) -> Result<AppComparison, crate::error::AppError> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let settings = self.settings.current().await;
        let cluster = target.cluster;
        let ignore = |key: &ResourceKey| ignore_rules(app, &settings, key);
        let prunable = self.find_prunable(app, &cluster, &desired.objects).await;
        // The objects move into their comparisons (one copy of each, not two).
        let mut compared = compare_all_keeping(
            &cluster,
            name,
            &self.cfg.field_manager,
            std::mem::take(&mut desired.objects),
            &ignore,
            app.spec.sync_options(),
            self.cfg.per_app_concurrency,
            keep,
            absent,
        )
        .await;
        crate::settings::mark_label_owners(&mut compared, name, &settings);
        let empty_allowed = app
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.automated.as_ref())
            .is_some_and(|a| a.allow_empty);
        if compared.is_empty() && !empty_allowed && !prunable.is_empty() {
            // An empty render that would delete everything: almost always a mistake.
            return Err(crate::error::AppError::source(format!(
                "the source rendered no objects, which would prune all {} resources of the app; refusing. \
                 Set syncPolicy.automated.allowEmpty: true if an empty app is intended",
                prunable.len()
            )));
        }
        Ok(AppComparison {
            desired,
            compared,
            prunable,
            cluster,
        })
    }

    /// Objects this app tracked before (from its status) that are no longer desired, still
    /// exist, and still carry this app's tracking annotation pointing at themselves.
    async fn find_prunable(
        &self,
        app: &Application,
        cluster: &ClusterClient,
        desired: &[crate::desired::DesiredObject],
    ) -> Vec<Prunable> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let settings = self.settings.last();
        let server = crate::admit::cluster_server(&app.spec);
        let wanted: BTreeSet<&ResourceKey> = desired.iter().map(|d| &d.key).collect();
        // An app never prunes itself or its project, whatever Git says.
        let (view, _) = AppView::of(app, &self.cfg.namespace, self.cfg.child_health);
        let mut out = Vec::new();
        for r in app.status.iter().flat_map(|s| &s.resources) {
            let key = resource_key(r);
            if wanted.contains(&key)
                || r.hook == Some(true)
                || view.protects(&key)
                || settings.is_excluded(&key.group, &key.kind, &server)
            {
                continue;
            }
            let target = resource_ref(r);
            if let Ok(Some(live)) = cluster.get(&target).await
                && self.tracks(&live, name, &key)
                && live.pointer("/metadata/deletionTimestamp").is_none()
            {
                out.push(Prunable { key, target, live });
            }
        }
        out
    }
}

/// The `ignoreDifferences` rules that apply to one object (`kind: "*"` matches every kind): the
/// app's own and the `argocd-cm` customizations for its kind.
pub fn ignore_rules(
    app: &Application,
    settings: &ferry_core::settings::ArgoSettings,
    key: &ResourceKey,
) -> crate::compare::Ignore {
    let custom = settings.ignore_for(&key.group, &key.kind);
    let mut out = crate::compare::Ignore {
        pointers: custom.json_pointers,
        managers: custom.managed_fields_managers,
        jq: custom.jq_path_expressions,
    };
    for d in &app.spec.ignore_differences {
        let matches = d.group == key.group
            && (d.kind == key.kind || d.kind == "*")
            && d.name
                .as_deref()
                .is_none_or(|n| n.is_empty() || n == key.name)
            && d.namespace
                .as_deref()
                .is_none_or(|n| n.is_empty() || n == key.namespace);
        if matches {
            out.pointers.extend(d.json_pointers.iter().cloned());
            out.managers
                .extend(d.managed_fields_managers.iter().cloned());
            out.jq.extend(d.jq_path_expressions.iter().cloned());
        }
    }
    out
}
