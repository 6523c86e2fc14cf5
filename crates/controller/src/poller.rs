//! The poller: one fetch per repository per poll interval, shared by every app of that
//! repository, and a reconcile only for the apps whose revision it moved.
//!
//! Without it every app would be looked at once per poll interval to learn whether its branch
//! moved: N reconciles per poll. With it a quiet poll costs one `git fetch` per repository and
//! no API request at all. Apps are still looked at in full every `timeout.reconciliation` of
//! `argocd-cm` (see [`crate::Engine::next_look`]), as in Argo CD, and at once on a watch event,
//! a spec change or a refresh.
//!
//! A failed fetch is reported by the apps of the repository (their reconcile sees the shared
//! failure and shows a ComparisonError); they are queued when the repository starts failing
//! and when it recovers.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use ferry_core::application::{Application, ApplicationSource};

use crate::engine::Engine;
use crate::metrics::PollLabels;
use crate::touched::Touched;

/// What the poller remembers between polls.
#[derive(Debug, Default)]
pub(crate) struct PollState {
    /// Per (app, repository): the commits its Git sources of that repository resolved to at
    /// the last poll.
    seen: HashMap<(String, String), Vec<Option<String>>>,
    /// Repositories whose last poll failed.
    failing: std::collections::HashSet<String>,
}

/// An app of a repository, as the poller sees it.
#[derive(Debug, PartialEq, Eq)]
struct RepoUser {
    /// The app's name.
    name: String,
    /// The revisions its Git sources of that repository ask for.
    revisions: Vec<String>,
    /// The commits its status says it was compared at (`status.sync.revision(s)`).
    compared: Vec<String>,
}

/// The apps of each repository, by repository URL.
fn apps_by_repo(apps: &[Arc<Application>]) -> BTreeMap<String, Vec<RepoUser>> {
    let mut by_repo: BTreeMap<String, Vec<RepoUser>> = BTreeMap::new();
    for app in apps {
        if app.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let Some(name) = app.metadata.name.clone() else {
            continue;
        };
        let mut revisions: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for source in app.spec.effective_sources() {
            if source.chart.is_some() || source.repo_url.is_empty() {
                continue; // Helm repositories are looked at with the app's periodic look
            }
            revisions
                .entry(source.repo_url.as_str())
                .or_default()
                .push(source.target_revision_or_head().to_string());
        }
        let compared: Vec<String> = app
            .status
            .as_ref()
            .map(|s| {
                s.sync
                    .revision
                    .iter()
                    .chain(&s.sync.revisions)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for (url, revs) in revisions {
            by_repo.entry(url.to_string()).or_default().push(RepoUser {
                name: name.clone(),
                revisions: revs,
                compared: compared.clone(),
            });
        }
    }
    by_repo
}

impl PollState {
    /// Records what the apps of `repo` resolve to now (`now`: each app, the commits it
    /// resolves to, the commits its status was compared at); returns the apps to queue: those
    /// whose commits differ from the last poll's, and, for an app seen for the first time,
    /// those whose status was compared at other commits (a commit may have come between the
    /// app's last look and this poll).
    fn moved(
        &mut self,
        repo: &str,
        now: Vec<(String, Vec<Option<String>>, Vec<String>)>,
    ) -> Vec<String> {
        let mut queue = Vec::new();
        for (app, commits, compared) in now {
            let key = (app.clone(), repo.to_string());
            let moved = match self.seen.insert(key, commits.clone()) {
                Some(before) => before != commits,
                None => commits.iter().flatten().any(|c| !compared.contains(c)),
            };
            if moved {
                queue.push(app);
            }
        }
        queue
    }

    /// Drops what is remembered of apps that no longer use a repository.
    fn retain(&mut self, by_repo: &BTreeMap<String, Vec<RepoUser>>) {
        // A set, not a scan of each repository's apps per entry: that was quadratic, 10^8
        // name comparisons per poll at 10,000 apps of one repository.
        let users: std::collections::HashSet<(&str, &str)> = by_repo
            .iter()
            .flat_map(|(repo, users)| users.iter().map(|u| (repo.as_str(), u.name.as_str())))
            .collect();
        self.seen
            .retain(|(app, repo), _| users.contains(&(repo.as_str(), app.as_str())));
        self.failing.retain(|repo| by_repo.contains_key(repo));
    }
}

impl Engine {
    /// When to look at `app` in full again with nothing else asking: after `argocd-cm`'s
    /// `timeout.reconciliation` plus a random share of its jitter (so the apps of one
    /// installation spread out instead of all looking at once); never when it is `0`. Without
    /// the poller (a reconcile run on its own), after the next poll, as before.
    pub(crate) fn next_look(&self, app: &Application) -> Option<Duration> {
        if !self.polling.load(std::sync::atomic::Ordering::Acquire) {
            return Some(self.next_poll(app));
        }
        let (timeout, jitter) = self.settings().last().reconciliation()?;
        Some(timeout + jitter.mul_f64(random_fraction()))
    }

    /// One poll: a fetch per repository of the apps in the watch's store, then a reconcile for
    /// each app whose revision moved.
    async fn poll_once(&self, state: &mut PollState) {
        let apps = self.app_store.state();
        let by_repo = apps_by_repo(&apps);
        state.retain(&by_repo);
        // Half a poll interval: a fetch a webhook refresh made just before is recent enough.
        let max_age = self.cfg.poll_interval / 2;
        for (repo, users) in by_repo {
            let source = ApplicationSource {
                repo_url: repo.clone(),
                target_revision: Some("HEAD".into()),
                ..ApplicationSource::default()
            };
            let labels = |result| PollLabels {
                repo: ferry_core::redact::redact_url(&repo),
                result,
            };
            let fetched = self.differ.resolve_source(&source, max_age, None).await;
            if let Err(e) = fetched {
                tracing::debug!(repo = %ferry_core::redact::redact_url(&repo), "poll failed: {e}");
                self.metrics.polls.get_or_create(&labels("error")).inc();
                // The apps show the failure once it starts (their own look sees it).
                if state.failing.insert(repo.clone()) {
                    for user in &users {
                        self.queue.add(&user.name);
                    }
                }
                continue;
            }
            let recovered = state.failing.remove(&repo);
            let mut now = Vec::with_capacity(users.len());
            for user in &users {
                let mut commits = Vec::with_capacity(user.revisions.len());
                for revision in &user.revisions {
                    commits.push(self.differ.repos.resolve_cached(&repo, revision).await);
                }
                now.push((user.name.clone(), commits, user.compared.clone()));
            }
            let moved = state.moved(&repo, now);
            tracing::debug!(repo = %ferry_core::redact::redact_url(&repo), apps = users.len(), ?moved, "polled");
            let result = if moved.is_empty() { "same" } else { "moved" };
            self.metrics.polls.get_or_create(&labels(result)).inc();
            if recovered {
                for user in &users {
                    self.queue.add(&user.name);
                }
            } else {
                self.queue_moved(&apps, &moved, max_age).await;
            }
        }
    }

    /// Queues the apps whose revision moved and whose inputs the new commits changed. An app
    /// the commits left untouched is only noted (and counted) when it is settled and its last
    /// comparison is remembered: its look would do no more. The others are queued after the
    /// touched ones, so a commit to one app of a repository with ten thousand is applied
    /// without waiting for, or sharing the cores with, the other looks.
    async fn queue_moved(&self, apps: &[Arc<Application>], moved: &[String], max_age: Duration) {
        let by_name: HashMap<&str, &Arc<Application>> = apps
            .iter()
            .filter_map(|a| Some((a.metadata.name.as_deref()?, a)))
            .collect();
        let mut later = Vec::new();
        for name in moved {
            let Some(app) = by_name.get(name.as_str()) else {
                self.queue.add(name);
                continue;
            };
            let Some(old) = compared_single(app) else {
                self.queue.add(name);
                continue;
            };
            let Touched::Untouched(now) = self.differ.touched_since(app, &old, max_age).await
            else {
                self.queue.add(name);
                continue;
            };
            if !crate::reconcile::quiet(app) {
                later.push(name);
                continue;
            }
            match self.memos.untouched_since(name, &old, now) {
                Some(true) => {
                    self.metrics.untouched.inc();
                }
                Some(false) => {}
                None => later.push(name),
            }
        }
        for name in later {
            self.queue.add_after(name, Duration::ZERO);
        }
    }
}

/// The commit a single-source app's status was compared at; `None` for several sources or
/// before its first comparison (then it counts as touched).
fn compared_single(app: &Application) -> Option<Vec<String>> {
    if app.spec.effective_sources().len() != 1 {
        return None;
    }
    let revision = app.status.as_ref()?.sync.revision.clone()?;
    (!revision.is_empty()).then(|| vec![revision])
}

/// A number in [0, 1), different at every call (std's randomly keyed hasher over the time:
/// enough to spread the apps' looks apart).
fn random_fraction() -> f64 {
    use std::hash::BuildHasher as _;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let bits = std::collections::hash_map::RandomState::new().hash_one(seed);
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// Runs the poller until the process ends: once the Application watch has listed, a poll
/// every poll interval.
pub(crate) async fn run_poller(engine: Arc<Engine>) {
    let mut state = PollState::default();
    let mut tick = tokio::time::interval(engine.cfg.poll_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !engine.apps_listed() {
            continue;
        }
        engine.poll_once(&mut state).await;
    }
}

/// Runs until the process ends: when `argocd-cm` changes (a health check, an
/// ignoreDifferences rule, the tracking method), every app is queued, and when an AppProject
/// changes (its permissions, sync windows, keys), every app of that project, as their
/// comparisons may come out differently now. Checked every second against the watches'
/// copies: no request.
pub(crate) async fn run_settings_follower(engine: Arc<Engine>) {
    let mut last_settings: Option<String> = None;
    let mut last_projects: Option<HashMap<String, String>> = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !engine.apps_listed() {
            continue;
        }
        engine.settings().current().await;
        let version = engine.settings().version();
        let settings_changed = last_settings.as_ref().is_some_and(|v| *v != version);
        last_settings = Some(version);
        let projects = engine.differ.project_versions();
        let changed_projects = match (&last_projects, &projects) {
            (Some(before), Some(now)) => changed_keys(before, now),
            _ => Vec::new(),
        };
        if projects.is_some() {
            last_projects = projects;
        }
        if !settings_changed && changed_projects.is_empty() {
            continue;
        }
        if settings_changed {
            tracing::info!(
                "{} changed: looking at every app",
                crate::settings::ARGOCD_CM
            );
        } else {
            tracing::info!(projects = ?changed_projects, "AppProjects changed: looking at their apps");
        }
        for app in engine.app_store.state() {
            if (settings_changed || changed_projects.contains(&app.spec.project))
                && let Some(name) = &app.metadata.name
            {
                engine.queue.add(name);
            }
        }
    }
}

/// The keys added, removed or with another value in `now` than in `before`.
fn changed_keys(before: &HashMap<String, String>, now: &HashMap<String, String>) -> Vec<String> {
    let mut changed: Vec<String> = now
        .iter()
        .filter(|(k, v)| before.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .chain(before.keys().filter(|k| !now.contains_key(*k)).cloned())
        .collect();
    changed.sort();
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str, sources: serde_json::Value) -> Arc<Application> {
        Arc::new(
            serde_json::from_value(serde_json::json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {"name": name},
                "spec": {
                    "project": "default",
                    "destination": {"server": "https://kubernetes.default.svc"},
                    "sources": sources,
                }
            }))
            .expect("an Application"),
        )
    }

    #[test]
    fn apps_are_grouped_by_repository_and_helm_repositories_are_left_out() {
        let apps = vec![
            app(
                "a",
                serde_json::json!([
                    {"repoURL": "https://git.example/one.git", "path": "a", "targetRevision": "main"},
                    {"repoURL": "https://git.example/one.git", "ref": "values"},
                    {"repoURL": "https://charts.example", "chart": "podinfo", "targetRevision": "6.7.0"},
                ]),
            ),
            app(
                "b",
                serde_json::json!([
                    {"repoURL": "https://git.example/two.git", "path": "b"},
                ]),
            ),
        ];
        let by_repo = apps_by_repo(&apps);
        assert_eq!(
            by_repo.keys().collect::<Vec<_>>(),
            ["https://git.example/one.git", "https://git.example/two.git"]
        );
        assert_eq!(
            by_repo["https://git.example/one.git"],
            [RepoUser {
                name: "a".into(),
                revisions: vec!["main".into(), "HEAD".into()],
                compared: vec![],
            }]
        );
        assert_eq!(
            by_repo["https://git.example/two.git"][0].revisions,
            ["HEAD"]
        );
    }

    #[test]
    fn only_apps_whose_commits_moved_are_queued() {
        let mut state = PollState::default();
        let c = |s: &str| Some(s.to_string());
        let at = |s: &str| vec![s.to_string()];
        let first = state.moved(
            "r",
            vec![
                ("a".into(), vec![c("1")], at("1")),
                ("b".into(), vec![c("2")], at("1")),
                ("new".into(), vec![None], vec![]),
            ],
        );
        assert_eq!(
            first,
            ["b"],
            "first sight: only an app whose status is at another commit"
        );
        let second = state.moved(
            "r",
            vec![
                ("a".into(), vec![c("2")], at("1")),
                ("b".into(), vec![c("2")], at("1")),
            ],
        );
        assert_eq!(second, ["a"], "b was queued for commit 2 already");
        let third = state.moved("r", vec![("b".into(), vec![None], at("2"))]);
        assert_eq!(
            third,
            ["b"],
            "a revision that no longer resolves is a change too"
        );

        let mut by_repo = BTreeMap::new();
        by_repo.insert(
            "r".to_string(),
            vec![RepoUser {
                name: "b".into(),
                revisions: vec![],
                compared: vec![],
            }],
        );
        state.failing.insert("gone".into());
        state.retain(&by_repo);
        assert_eq!(state.seen.len(), 1);
        assert!(state.seen.contains_key(&("b".to_string(), "r".to_string())));
        assert!(state.failing.is_empty());
    }

    #[test]
    fn changed_projects_are_the_added_removed_and_rewritten_ones() {
        let map = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .collect()
        };
        let before = map(&[("a", "1"), ("b", "1"), ("gone", "3")]);
        let now = map(&[("a", "1"), ("b", "2"), ("new", "1")]);
        assert_eq!(changed_keys(&before, &now), ["b", "gone", "new"]);
        assert!(changed_keys(&now, &now).is_empty());
    }

    #[test]
    fn random_fractions_stay_in_range() {
        for _ in 0..1000 {
            let f = random_fraction();
            assert!((0.0..1.0).contains(&f), "{f}");
        }
    }
}
