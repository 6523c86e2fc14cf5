//! Comparing desired and live state: a server-side-apply dry run of each desired object,
//! normalized, against the live object, normalized the same way.

use ferry_cluster::{ApplyOptions, ClusterClient, ObjectRef};
use ferry_core::order::{SyncOptions, resource_sync_option_entries};
use ferry_core::tracking::{ResourceKey, is_tracked_by};
use futures::StreamExt as _;
use serde_json::Value;

use std::collections::BTreeSet;

use ferry_core::application::Application;

use crate::app_of_apps::AppView;
use crate::desired::DesiredObject;
use crate::normalize::{normalize, remove_pointers};
use crate::status::{resource_key, resource_ref};

/// A tracked object that left the desired set and still exists: pruning would delete it.
#[derive(Debug, Clone)]
pub struct Prunable {
    /// Its identity.
    pub key: ResourceKey,
    /// Where it lives.
    pub target: ObjectRef,
    /// The live object.
    pub live: Value,
}

/// What comparing one desired object found.
#[derive(Debug, Clone)]
pub struct Compared {
    /// The desired object.
    pub desired: DesiredObject,
    /// The live object, if it exists.
    pub live: Option<Value>,
    /// What the object would be after applying (the dry run), if the API server accepted it.
    pub predicted: Option<Value>,
    /// Whether live already matches what applying would produce.
    pub in_sync: bool,
    /// Why the comparison could not be made (the API server refused the dry run).
    pub error: Option<String>,
    /// Live exists and is tracked by another app: not ours to change.
    pub foreign_owner: Option<String>,
}

impl Compared {
    /// Whether the object exists but no app tracks it (no tracking id): syncing adopts it.
    pub fn untracked(&self) -> bool {
        self.live.as_ref().is_some_and(|live| {
            live.pointer("/metadata/annotations")
                .and_then(|a| a.get(ferry_core::tracking::TRACKING_ANNOTATION))
                .is_none()
        })
    }
}

/// What `ignoreDifferences` says about one object: JSON pointers, and field managers whose
/// fields are ignored.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    /// `jsonPointers`.
    pub pointers: Vec<String>,
    /// `managedFieldsManagers`.
    pub managers: Vec<String>,
    /// `jqPathExpressions`.
    pub jq: Vec<String>,
}

/// The ignore rules for one object.
pub type IgnoreFor<'a> = dyn Fn(&ResourceKey) -> Ignore + Sync + 'a;

/// Compares every desired object with the cluster, `concurrency` at a time, in input order.
pub async fn compare_all(
    cluster: &ClusterClient,
    app: &str,
    field_manager: &str,
    desired: &[DesiredObject],
    ignore: &IgnoreFor<'_>,
    app_options: &[String],
    concurrency: usize,
) -> Vec<Compared> {
    let comparisons: Vec<_> = desired
        .iter()
        .map(|d| compare_one(cluster, app, field_manager, d.clone(), ignore, app_options))
        .collect();
    futures::stream::iter(comparisons)
        .buffered(concurrency.max(1))
        .collect()
        .await
}

async fn compare_one(
    cluster: &ClusterClient,
    app: &str,
    field_manager: &str,
    desired: DesiredObject,
    ignore: &IgnoreFor<'_>,
    app_options: &[String],
) -> Compared {
    let r = ObjectRef::of(&desired.object).expect("desired objects have apiVersion, kind and name");
    let live = match cluster.get(&r).await {
        Ok(l) => l,
        Err(e) => {
            return Compared {
                desired,
                live: None,
                predicted: None,
                in_sync: false,
                error: Some(e.to_string()),
                foreign_owner: None,
            };
        }
    };
    let foreign_owner = live
        .as_ref()
        .and_then(|l| foreign_tracking(l, app, &desired.key));
    // `Validate=false`: server-side apply refuses unknown fields whatever it is told, so such
    // objects are written (and dry-run) with a plain create or replace, which drops them.
    let lenient = !SyncOptions::merged(
        app_options.iter().map(String::as_str),
        resource_sync_option_entries(&desired.object),
    )
    .validate;
    let opts = ApplyOptions::new(field_manager).dry_run();
    let predicted = if lenient {
        cluster
            .create_or_replace(&desired.object, true, &opts)
            .await
    } else {
        cluster.apply(&desired.object, &opts).await
    };
    let predicted = match predicted {
        Ok(p) => p,
        Err(e) => {
            return Compared {
                desired,
                live,
                predicted: None,
                in_sync: false,
                error: Some(e.to_string()),
                foreign_owner,
            };
        }
    };
    let in_sync = match &live {
        Some(l) => {
            let rules = ignore(&desired.key);
            let mut pointers = rules.pointers;
            pointers.extend(crate::normalize::managed_field_pointers(l, &rules.managers));
            let mut a = normalize(l);
            let mut b = normalize(&predicted);
            remove_pointers(&mut a, &pointers);
            remove_pointers(&mut b, &pointers);
            crate::jq::delete_paths(&mut a, &rules.jq);
            crate::jq::delete_paths(&mut b, &rules.jq);
            a == b
        }
        None => false,
    };
    // Kept for health, diffs and the sync; their managedFields (often the larger part of an
    // object, and of memory when an App-of-Apps compares a thousand children) are not needed.
    let mut live = live;
    let mut predicted = predicted;
    if let Some(l) = live.as_mut() {
        drop_managed_fields(l);
    }
    drop_managed_fields(&mut predicted);
    Compared {
        desired,
        live,
        predicted: Some(predicted),
        in_sync,
        error: None,
        foreign_owner,
    }
}

/// Removes `metadata.managedFields`.
pub(crate) fn drop_managed_fields(obj: &mut Value) {
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
}

/// When a live object carries a tracking annotation that points to another app, that app's
/// name (an object with no annotation is free to adopt, as Argo CD adopts it).
fn foreign_tracking(live: &Value, app: &str, key: &ResourceKey) -> Option<String> {
    let value = live
        .pointer("/metadata/annotations")?
        .get(ferry_core::tracking::TRACKING_ANNOTATION)?
        .as_str()?;
    if is_tracked_by(value, app, &key.group, &key.kind, &key.namespace, &key.name) {
        return None;
    }
    Some(value.split(':').next().unwrap_or(value).to_string())
}

/// An app's desired state compared with its cluster.
pub(crate) struct AppComparison {
    /// What Git declares.
    pub(crate) desired: crate::desired::Desired,
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
    /// objects that would prune everything (unless the app allows empty).
    pub(crate) async fn compare(
        &self,
        app: &Application,
        target: crate::admit::Target,
        desired: crate::desired::Desired,
    ) -> Result<AppComparison, crate::error::AppError> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let settings = self.settings.current().await;
        let cluster = target.cluster;
        let ignore = |key: &ResourceKey| ignore_rules(app, &settings, key);
        let mut compared = compare_all(
            &cluster,
            name,
            &self.cfg.field_manager,
            &desired.objects,
            &ignore,
            app.spec.sync_options(),
            self.cfg.per_app_concurrency,
        )
        .await;
        crate::settings::mark_label_owners(&mut compared, name, &settings);
        let prunable = self.find_prunable(app, &cluster, &desired.objects).await;
        let empty_allowed = app
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.automated.as_ref())
            .is_some_and(|a| a.allow_empty);
        if desired.objects.is_empty() && !empty_allowed && !prunable.is_empty() {
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
