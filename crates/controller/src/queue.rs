//! The work queue: each Application at most once in the queue and at most once in work; an app
//! that changes while it is being reconciled is queued again when that reconcile ends.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

#[derive(Default)]
struct State {
    /// Apps queued because something happened (an event, a change, a request): served first.
    urgent: VecDeque<String>,
    /// Apps whose delayed re-queue (the next poll, a retry) came due.
    pending: VecDeque<String>,
    /// Each queued app, and whether it is urgent. A lane may hold stale names (an app moved
    /// to the urgent lane, or taken already); `next` skips them.
    queued: HashMap<String, bool>,
    active: HashSet<String>,
    dirty: HashSet<String>,
    /// Delayed re-queues: the latest deadline per app wins over earlier ones only if sooner.
    delayed: HashMap<String, tokio::time::Instant>,
}

/// A de-duplicating queue of Application names. Cheap to clone.
#[derive(Clone, Default)]
pub(crate) struct WorkQueue {
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
    /// Queues `name` now, ahead of apps that are only due for their next poll: something
    /// happened to it (drift, a change of the app, a refresh or sync request).
    pub(crate) fn add(&self, name: &str) {
        self.push(name, true);
    }

    fn push(&self, name: &str, urgent: bool) {
        let mut s = self.state.lock().expect("queue lock");
        if s.active.contains(name) {
            s.dirty.insert(name.to_string());
            return;
        }
        match s.queued.get(name).copied() {
            Some(true) => return,
            Some(false) if !urgent => return,
            _ => {}
        }
        s.queued.insert(name.to_string(), urgent);
        if urgent {
            s.urgent.push_back(name.to_string());
        } else {
            s.pending.push_back(name.to_string());
        }
        drop(s);
        self.notify.notify_one();
    }

    /// Queues `name` after `delay`, unless an earlier delayed add is already due sooner.
    pub(crate) fn add_after(&self, name: &str, delay: Duration) {
        self.schedule(name, delay, false);
    }

    /// Queues `name` after `delay` as [`WorkQueue::add`] does (ahead of due polls), unless an
    /// earlier delayed add is already due sooner.
    pub(crate) fn add_urgent_after(&self, name: &str, delay: Duration) {
        self.schedule(name, delay, true);
    }

    fn schedule(&self, name: &str, delay: Duration, urgent: bool) {
        if delay.is_zero() {
            return self.push(name, urgent);
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
                queue.push(&name, urgent);
            }
        });
    }

    /// Waits for the next name and marks it active.
    pub(crate) async fn next(&self) -> String {
        loop {
            let notified = self.notify.notified();
            {
                let mut s = self.state.lock().expect("queue lock");
                loop {
                    let (name, urgent) = match s.urgent.pop_front() {
                        Some(name) => (name, true),
                        None => match s.pending.pop_front() {
                            Some(name) => (name, false),
                            None => break,
                        },
                    };
                    // Taken only from the lane it is queued in now.
                    if s.queued.get(&name) == Some(&urgent) {
                        s.queued.remove(&name);
                        s.active.insert(name.clone());
                        return name;
                    }
                }
            }
            notified.await;
        }
    }

    /// Marks `name` done; queues it again if it was added while active.
    pub(crate) fn done(&self, name: &str) {
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
    pub(crate) fn forget(&self, name: &str) {
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
        assert!(s.pending.is_empty() && s.urgent.is_empty());
    }

    #[tokio::test]
    async fn urgent_adds_go_before_due_polls() {
        let q = WorkQueue::default();
        q.push("poll-1", false);
        q.push("poll-2", false);
        q.add("drifted");
        q.add("poll-2"); // an event for an app already waiting for its poll: moves up
        assert_eq!(q.next().await, "drifted");
        assert_eq!(q.next().await, "poll-2");
        assert_eq!(q.next().await, "poll-1");
        assert!(
            q.state.lock().unwrap().queued.is_empty(),
            "the stale entry of poll-2 is not served again"
        );
        q.done("poll-2");
        q.push("poll-2", false);
        assert_eq!(q.next().await, "poll-2");
    }

    #[tokio::test]
    async fn an_add_during_work_requeues_after_done() {
        let q = WorkQueue::default();
        q.add("a");
        let name = q.next().await;
        q.add("a");
        assert!(
            q.state.lock().unwrap().urgent.is_empty(),
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
