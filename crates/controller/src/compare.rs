//! Comparing desired and live state: a server-side-apply dry run of each desired object,
//! normalized, against the live object, normalized the same way.

use std::collections::HashSet;

use ferry_cluster::{ApplyOptions, ClusterClient, ObjectRef};
use ferry_core::order::{SyncOptions, resource_sync_option_entries};
use ferry_core::tracking::{ResourceKey, is_tracked_by};
use futures::StreamExt as _;
use serde_json::Value;

use crate::desired::DesiredObject;
use crate::normalize::{normalize, remove_pointers};

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
    /// What the object would be after applying (the dry run), if the API server accepted it
    /// and the comparison was asked to keep it (a diff; the controller does not).
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
/// Each [`Compared`] holds its desired object (moved, not copied).
pub async fn compare_all(
    cluster: &ClusterClient,
    app: &str,
    field_manager: &str,
    desired: Vec<DesiredObject>,
    ignore: &IgnoreFor<'_>,
    app_options: &[String],
    concurrency: usize,
) -> Vec<Compared> {
    compare_all_keeping(
        cluster,
        app,
        field_manager,
        desired,
        ignore,
        app_options,
        concurrency,
        Keep::Predicted,
        &HashSet::new(),
    )
    .await
}

/// What a comparison keeps of each object beyond whether it is in sync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// The dry run's answer too, to show a diff.
    Predicted,
    /// Only the live object: the controller decides, applies and assesses health without the
    /// dry run's answer, and an App-of-Apps root would otherwise hold a second copy of every
    /// child Application (status included) while it compares them.
    Live,
}

/// [`compare_all`], keeping what `keep` says; the objects in `absent` are known not to exist
/// (from the watches) and are not read.
#[allow(clippy::too_many_arguments)] // compare_all's arguments and two more; a struct would only rename them
pub(crate) async fn compare_all_keeping(
    cluster: &ClusterClient,
    app: &str,
    field_manager: &str,
    desired: Vec<DesiredObject>,
    ignore: &IgnoreFor<'_>,
    app_options: &[String],
    concurrency: usize,
    keep: Keep,
    absent: &HashSet<ResourceKey>,
) -> Vec<Compared> {
    let comparisons: Vec<_> = desired
        .into_iter()
        .map(|d| {
            let known_absent = absent.contains(&d.key);
            compare_one(
                cluster,
                app,
                field_manager,
                d,
                ignore,
                app_options,
                keep,
                known_absent,
            )
        })
        .collect();
    futures::stream::iter(comparisons)
        .buffered(concurrency.max(1))
        .collect()
        .await
}

#[allow(clippy::too_many_arguments)] // one per thing the comparison of one object depends on
async fn compare_one(
    cluster: &ClusterClient,
    app: &str,
    field_manager: &str,
    desired: DesiredObject,
    ignore: &IgnoreFor<'_>,
    app_options: &[String],
    keep: Keep,
    known_absent: bool,
) -> Compared {
    let r = ObjectRef::of(&desired.object).expect("desired objects have apiVersion, kind and name");
    let live = if known_absent {
        Ok(None)
    } else {
        cluster.get(&r).await
    };
    let live = match live {
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
    // An object that does not exist yet is out of sync whatever a dry run would say: the sync
    // creates it (and reports what the API server refuses). No request for it here.
    if live.is_none() {
        return Compared {
            desired,
            live: None,
            predicted: None,
            in_sync: false,
            error: None,
            foreign_owner: None,
        };
    }
    let foreign_owner = live
        .as_ref()
        .and_then(|l| foreign_tracking(l, app, &desired.key));
    let mut desired = desired;
    if let Some(l) = &live {
        crate::normalize::keep_rollouts_selector(&mut desired.object, l);
    }
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
        predicted: (keep == Keep::Predicted).then_some(predicted),
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
