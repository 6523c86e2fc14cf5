//! What a reconcile remembers about an app between runs, so that a look at an app where
//! nothing changed costs no comparison.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Instant;

use crate::comparison::AppComparison;
use crate::desired::DesiredObject;

/// What a reconcile remembers about an app between runs, to skip work when nothing changed.
#[derive(Debug, Clone, Default)]
struct AppMemo {
    /// What the last full comparison saw.
    compared: Option<Seen>,
    /// While the app is being deleted: its PreDelete and PostDelete hooks, rendered once.
    delete_hooks: Option<Arc<Vec<DesiredObject>>>,
    /// The revisions the app was last found untouched at (new commits that changed none of
    /// its inputs), so each is counted once.
    untouched_at: Option<String>,
    /// Comparisons that failed in a row (an unreachable repository, a render error): the next
    /// try backs off exponentially from this count.
    failures: u32,
}

/// The inputs of a comparison: when none changed, neither would its result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Every source's commit (or chart version).
    pub(crate) revisions: String,
    /// Each source's revision, in the spec's order (what a new commit is compared against to
    /// tell whether it touched the app).
    pub(crate) source_revisions: Vec<String>,
    /// A hash of the desired objects and hooks, as they would be applied.
    pub(crate) content: u64,
    /// The app's spec (and the `argocd-cm` version).
    pub(crate) spec: String,
    /// The change count of the app's live resources (see
    /// [`WatchHub::epoch`](crate::watches::WatchHub::epoch)).
    pub(crate) epoch: u64,
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
    /// The new commits changed none of the app's inputs: not even rendered again.
    pub(crate) untouched: bool,
}

/// What a reconcile's comparison did.
pub(crate) enum Comparison {
    /// Nothing changed since the last comparison: skipped.
    Unchanged,
    /// A new revision with the same objects: skipped; the result stands, at this revision.
    RevisionMoved(String),
    /// Compared.
    Done(Box<AppComparison>),
}

/// A hash of the desired objects (stable within the process, which is all the memo needs).
pub(crate) fn content_hash(objects: &[DesiredObject], hooks: &[DesiredObject]) -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for o in objects.iter().chain(hooks) {
        o.object.to_string().hash(&mut h);
        o.hooks.len().hash(&mut h);
    }
    objects.len().hash(&mut h);
    h.finish()
}

/// What is remembered about every app, by name.
#[derive(Debug, Default)]
pub(crate) struct Memos(Mutex<HashMap<String, AppMemo>>);

/// Whether a comparison may be skipped.
pub(crate) enum Skipped {
    /// Nothing changed since the last comparison.
    Unchanged,
    /// Only the revision moved (now remembered).
    RevisionMoved,
}

impl Memos {
    fn with<T>(&self, name: &str, f: impl FnOnce(&mut AppMemo) -> T) -> T {
        let mut memos = self.0.lock().expect("memo lock");
        f(memos.entry(name.to_string()).or_default())
    }

    /// Whether a comparison of `name` whose inputs are `seen` may be skipped as `skip` allows.
    pub(crate) fn may_skip(&self, name: &str, seen: &Seen, skip: Skip) -> Option<Skipped> {
        let mut memos = self.0.lock().expect("memo lock");
        let last = memos.get_mut(name)?.compared.as_mut()?;
        if !last.same_content(seen) {
            return None;
        }
        if last.revisions == seen.revisions {
            skip.unchanged.then_some(Skipped::Unchanged)
        } else if skip.moved {
            last.revisions.clone_from(&seen.revisions);
            last.source_revisions.clone_from(&seen.source_revisions);
            Some(Skipped::RevisionMoved)
        } else {
            None
        }
    }

    /// The source revisions of the last comparison of `name`, when nothing else it depended
    /// on changed since: the same `spec` (and settings) and live resources (`epoch`).
    pub(crate) fn last_revisions(&self, name: &str, spec: &str, epoch: u64) -> Option<Vec<String>> {
        let memos = self.0.lock().expect("memo lock");
        let last = memos.get(name)?.compared.as_ref()?;
        (last.spec == spec && last.epoch == epoch).then(|| last.source_revisions.clone())
    }

    /// Remembers that `name` was found untouched by commits up to `revisions`; whether that
    /// is new (the first look at them).
    pub(crate) fn untouched_at(&self, name: &str, revisions: String) -> bool {
        self.with(name, |m| {
            let new = m.untouched_at.as_deref() != Some(revisions.as_str());
            m.untouched_at = Some(revisions);
            new
        })
    }

    /// Remembers that new commits (now at `revisions`) left `name` untouched, when its last
    /// comparison was at `old`; whether that is new. `None` when no comparison at `old` is
    /// remembered (after a restart, say): then only a look can tell.
    pub(crate) fn untouched_since(
        &self,
        name: &str,
        old: &[String],
        revisions: String,
    ) -> Option<bool> {
        let mut memos = self.0.lock().expect("memo lock");
        let memo = memos.get_mut(name)?;
        if memo.compared.as_ref()?.source_revisions != old {
            return None;
        }
        let new = memo.untouched_at.as_deref() != Some(revisions.as_str());
        memo.untouched_at = Some(revisions);
        Some(new)
    }

    /// Remembers a comparison of `name` (only when every watch it relies on is running: while
    /// a watch is still listing, a change may give no event) and clears its failures.
    pub(crate) fn compared(&self, name: &str, seen: Seen, watching: bool) {
        self.with(name, |m| {
            m.compared = watching.then_some(seen);
            m.failures = 0;
        });
    }

    /// Counts one more failed comparison of `name` in a row; returns the count.
    pub(crate) fn count_failure(&self, name: &str) -> u32 {
        self.with(name, |m| {
            m.failures = m.failures.saturating_add(1);
            m.failures
        })
    }

    /// Forgets everything about `name`, so the next look compares again.
    pub(crate) fn forget(&self, name: &str) {
        self.0.lock().expect("memo lock").remove(name);
    }

    /// The delete hooks of `name` rendered earlier, while it is being deleted.
    pub(crate) fn delete_hooks(&self, name: &str) -> Option<Arc<Vec<DesiredObject>>> {
        self.with(name, |m| m.delete_hooks.clone())
    }

    /// Remembers (or, with `None`, forgets) the delete hooks of `name`.
    pub(crate) fn set_delete_hooks(&self, name: &str, hooks: Option<Arc<Vec<DesiredObject>>>) {
        self.with(name, |m| m.delete_hooks = hooks);
    }
}

/// When each running sync (by its run id) first looked at each of its waves, for the wave's
/// health deadline across sync steps. In memory only: after a restart of ferry a wave's wait
/// starts again, which only ever waits longer.
#[derive(Debug, Default)]
pub(crate) struct WaveWaits(Mutex<HashMap<(String, i64), Instant>>);

impl WaveWaits {
    /// When sync `run_id` first looked at `wave` (now, if it never did).
    pub(crate) fn since(&self, run_id: &str, wave: i64) -> Instant {
        *self
            .0
            .lock()
            .expect("wave waits lock")
            .entry((run_id.to_string(), wave))
            .or_insert_with(Instant::now)
    }

    /// Forgets sync `run_id` (it ended).
    pub(crate) fn forget(&self, run_id: &str) {
        self.0
            .lock()
            .expect("wave waits lock")
            .retain(|(id, _), _| id != run_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(revision: &str) -> Seen {
        Seen {
            revisions: revision.into(),
            source_revisions: vec![revision.into()],
            content: 1,
            spec: "spec".into(),
            epoch: 0,
        }
    }

    #[test]
    fn untouched_commits_are_noted_once_and_only_against_the_remembered_comparison() {
        let memos = Memos::default();
        let at = |r: &str| vec![r.to_string()];
        assert_eq!(
            memos.untouched_since("web", &at("c1"), "c2".into()),
            None,
            "nothing remembered: only a look can tell"
        );
        memos.compared("web", seen("c1"), true);
        assert_eq!(
            memos.untouched_since("web", &at("c1"), "c2".into()),
            Some(true)
        );
        assert_eq!(
            memos.untouched_since("web", &at("c1"), "c2".into()),
            Some(false),
            "counted once per commit"
        );
        assert_eq!(
            memos.untouched_since("web", &at("c1"), "c3".into()),
            Some(true)
        );
        assert_eq!(
            memos.untouched_since("web", &at("c0"), "c3".into()),
            None,
            "the status says another commit than the memo"
        );
        // The look that follows renders at the remembered commit instead of skipping.
        assert!(!memos.untouched_at("web", "c3".into()));
    }
}
