//! What a reconcile remembers about an app between runs, so that a look at an app where
//! nothing changed costs no comparison.

use std::sync::Arc;
use std::time::Duration;

use ferry_core::application::{Application, RefreshType};

use crate::compare::AppComparison;
use crate::desired::DesiredObject;
use crate::engine::Engine;
use crate::error::AppError;

/// What a reconcile remembers about an app between runs, to skip work when nothing changed.
#[derive(Debug, Clone, Default)]
pub(crate) struct AppMemo {
    /// What the last full comparison saw.
    compared: Option<Seen>,
    /// While the app is being deleted: its PreDelete and PostDelete hooks, rendered once.
    pub(crate) delete_hooks: Option<Arc<Vec<DesiredObject>>>,
    /// Comparisons that failed in a row (an unreachable repository, a render error): the next
    /// try backs off exponentially from this count.
    failures: u32,
}

/// The inputs of a comparison: when none changed, neither would its result.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    /// Every source's commit (or chart version).
    revisions: String,
    /// A hash of the desired objects and hooks, as they would be applied.
    content: u64,
    /// The app's spec.
    spec: String,
    /// The change count of the app's live resources (see [`WatchHub::epoch`]).
    epoch: u64,
}

impl Seen {
    /// Same objects, spec and live resources; the revision may differ.
    fn same_content(&self, other: &Seen) -> bool {
        self.content == other.content && self.spec == other.spec && self.epoch == other.epoch
    }
}

/// Which comparisons may be skipped.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Skip {
    /// Nothing changed since the last comparison.
    pub(crate) unchanged: bool,
    /// Only the revision moved: the new commit leaves the app's objects as they were.
    pub(crate) moved: bool,
}

/// What [`Engine::compare_app`] did.
pub(crate) enum Comparison {
    /// Nothing changed since the last comparison: skipped.
    Unchanged,
    /// A new revision with the same objects: skipped; the result stands, at this revision.
    RevisionMoved(String),
    /// Compared.
    Done(Box<AppComparison>),
}

/// A hash of the desired objects (stable within the process, which is all the memo needs).
fn content_hash(objects: &[DesiredObject], hooks: &[DesiredObject]) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for o in objects.iter().chain(hooks) {
        o.object.to_string().hash(&mut h);
        o.hooks.len().hash(&mut h);
    }
    objects.len().hash(&mut h);
    h.finish()
}

impl Engine {
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
        revision_override: Option<&str>,
        skip: Skip,
    ) -> Result<Comparison, AppError> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let differ = &self.differ;
        let target = differ.admit(app).await?;
        let desired = differ
            .desired(app, &target, refresh, fetch_max_age, revision_override)
            .await?;

        // Skip the comparison when nothing that could change its result changed.
        let fingerprint = Seen {
            revisions: desired.revisions.clone(),
            content: content_hash(&desired.objects, &desired.hooks),
            spec: format!(
                "{}|{}",
                serde_json::to_string(&app.spec).unwrap_or_default(),
                differ.settings.version()
            ),
            epoch: self.watches.epoch(name),
        };
        {
            let mut memos = self.memos.lock().expect("memo lock");
            if let Some(seen) = memos.get_mut(name).and_then(|m| m.compared.as_mut())
                && seen.same_content(&fingerprint)
            {
                if seen.revisions == fingerprint.revisions {
                    if skip.unchanged {
                        return Ok(Comparison::Unchanged);
                    }
                } else if skip.moved {
                    seen.revisions = fingerprint.revisions;
                    return Ok(Comparison::RevisionMoved(desired.revision));
                }
            }
        }

        // While a watch is still listing, a change may give no event: such a comparison is
        // not remembered, so the next look compares again rather than skipping.
        let mut watching = true;
        for o in &desired.objects {
            if let Ok(resolved) = target.cluster.resolve(o.api_version(), &o.key.kind).await {
                watching &= self.watches.ensure(&target.cluster, &resolved.resource);
            }
        }
        self.watches.compared(name);
        let found = differ.compare(app, target, desired).await?;
        let mut memos = self.memos.lock().expect("memo lock");
        let memo = memos.entry(name.to_string()).or_default();
        memo.compared = watching.then_some(fingerprint);
        memo.failures = 0;
        Ok(Comparison::Done(Box::new(found)))
    }

    /// Counts one more failed comparison of `name` in a row; returns the count.
    pub(crate) fn count_failure(&self, name: &str) -> u32 {
        let mut memos = self.memos.lock().expect("memo lock");
        let memo = memos.entry(name.to_string()).or_default();
        memo.failures = memo.failures.saturating_add(1);
        memo.failures
    }

    /// Forgets what the last comparison of `name` saw, so the next look compares again.
    pub(crate) fn forget_comparison(&self, name: &str) {
        self.memos.lock().expect("memo lock").remove(name);
    }
}
