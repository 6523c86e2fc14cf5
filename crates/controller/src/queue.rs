//! The work queue: each Application at most once in the queue and at most once in work; an app
//! that changes while it is being reconciled is queued again when that reconcile ends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    pending: VecDeque<String>,
    queued: HashSet<String>,
    active: HashSet<String>,
    dirty: HashSet<String>,
    /// Delayed re-queues: the latest deadline per app wins over earlier ones only if sooner.
    delayed: HashMap<String, tokio::time::Instant>,
}

/// A de-duplicating queue of Application names. Cheap to clone.
#[derive(Clone, Default)]
pub struct WorkQueue {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl std::fmt::Debug for WorkQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.state.lock().expect("queue lock");
        f.debug_struct("WorkQueue")
            .field("pending", &s.pending.len())
            .field("active", &s.active.len())
            .finish()
    }
}

impl WorkQueue {
    /// Queues `name` now.
    pub fn add(&self, name: &str) {
        let mut s = self.state.lock().expect("queue lock");
        if s.active.contains(name) {
            s.dirty.insert(name.to_string());
            return;
        }
        if s.queued.insert(name.to_string()) {
            s.pending.push_back(name.to_string());
            drop(s);
            self.notify.notify_one();
        }
    }

    /// Queues `name` after `delay`, unless an earlier delayed add is already due sooner.
    pub fn add_after(&self, name: &str, delay: Duration) {
        if delay.is_zero() {
            return self.add(name);
        }
        let due = tokio::time::Instant::now() + delay;
        {
            let mut s = self.state.lock().expect("queue lock");
            match s.delayed.get(name) {
                Some(existing) if *existing <= due => return,
                _ => {
                    s.delayed.insert(name.to_string(), due);
                }
            }
        }
        let queue = self.clone();
        let name = name.to_string();
        tokio::spawn(async move {
            tokio::time::sleep_until(due).await;
            let still_due = {
                let mut s = queue.state.lock().expect("queue lock");
                if s.delayed.get(&name) == Some(&due) {
                    s.delayed.remove(&name);
                    true
                } else {
                    false
                }
            };
            if still_due {
                queue.add(&name);
            }
        });
    }

    /// Waits for the next name and marks it active.
    pub async fn next(&self) -> String {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock().expect("queue lock");
                if let Some(name) = s.pending.pop_front() {
                    s.queued.remove(&name);
                    s.active.insert(name.clone());
                    return name;
                }
            }
            notified.await;
        }
    }

    /// Marks `name` done; queues it again if it was added while active.
    pub fn done(&self, name: &str) {
        let again = {
            let mut s = self.state.lock().expect("queue lock");
            s.active.remove(name);
            s.dirty.remove(name)
        };
        if again {
            self.add(name);
        }
    }

    /// Drops any delayed re-queue of `name` (e.g. the app was deleted).
    pub fn forget(&self, name: &str) {
        self.state.lock().expect("queue lock").delayed.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn names_are_deduplicated_while_queued() {
        let q = WorkQueue::default();
        q.add("a");
        q.add("a");
        q.add("b");
        assert_eq!(q.next().await, "a");
        assert_eq!(q.next().await, "b");
        let s = q.state.lock().unwrap();
        assert!(s.pending.is_empty());
    }

    #[tokio::test]
    async fn an_add_during_work_requeues_after_done() {
        let q = WorkQueue::default();
        q.add("a");
        let name = q.next().await;
        q.add("a");
        assert!(
            q.state.lock().unwrap().pending.is_empty(),
            "not queued twice while active"
        );
        q.done(&name);
        assert_eq!(q.next().await, "a");
    }

    #[tokio::test(start_paused = true)]
    async fn delayed_adds_arrive_after_the_delay() {
        let q = WorkQueue::default();
        q.add_after("a", Duration::from_secs(10));
        q.add_after("a", Duration::from_secs(30)); // later: ignored
        let start = tokio::time::Instant::now();
        assert_eq!(q.next().await, "a");
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }
}
