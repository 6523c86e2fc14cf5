//! Reconciling one Application: fetch → render → prepare → compare → (sync) → status.
//!
//! [`Engine::reconcile`] is the whole of it. It never prunes after a failed, partial or empty
//! render, never touches objects the app does not track, and writes what it found to the
//! Application's status in Argo CD's shape.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferry_cluster::{ClusterClient, ObjectRef};
use ferry_core::application::{
    Application, ApplicationCondition, ApplicationSource, ApplicationStatus, HealthStatus,
    HealthStatusCode, Operation, OperationInitiator, OperationPhase, OperationState, RefreshType,
    ResourceStatus, SyncOperation, SyncStatus, SyncStatusCode,
};
use ferry_core::project::AppProject;
use ferry_core::tracking::ResourceKey;
use ferry_source::git::{CommitInfo, RepoCache};
use ferry_source::render::{RenderTools, RenderedSource};
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::app_of_apps::AppView;
use crate::compare::{Compared, Prunable, compare_all};
use crate::credentials::RepoCredentials;
use crate::desired::{DesiredObject, prepare_desired};
use crate::destinations::Destinations;
use crate::queue::WorkQueue;
use crate::sops_keys::SopsKeys;
use crate::sync::{SyncInputs, SyncOutcome, SyncRequest, run_sync};
use crate::watches::WatchHub;

/// Condition types ferry sets, as Argo CD names them.
pub mod condition {
    /// The desired state could not be worked out (repo, render, kinds).
    pub const COMPARISON_ERROR: &str = "ComparisonError";
    /// The Application's spec is invalid or not permitted by its project.
    pub const INVALID_SPEC_ERROR: &str = "InvalidSpecError";
    /// The last sync failed.
    pub const SYNC_ERROR: &str = "SyncError";
    /// A resource is tracked by another app.
    pub const SHARED_RESOURCE_WARNING: &str = "SharedResourceWarning";
    /// A sync is due but a sync window of the app's project holds it back.
    pub const SYNC_WINDOW_BLOCKED: &str = "SyncWindowBlocked";
    /// A sync window of the app's project does not parse (and holds back the app's syncs).
    pub const SYNC_WINDOW_ERROR: &str = "SyncWindowError";
    /// A health check from `argocd-cm` failed (its resource's health is Unknown).
    pub const HEALTH_CHECK_ERROR: &str = "HealthCheckError";
    /// An `ignoreDifferences` jq expression (of the app or of `argocd-cm`) does not parse.
    pub const IGNORE_DIFFERENCES_ERROR: &str = "IgnoreDifferencesError";
    /// Git declares objects that `argocd-cm`'s resource exclusions leave alone.
    pub const EXCLUDED_RESOURCE_WARNING: &str = "ExcludedResourceWarning";
}

/// The controller's settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The namespace holding Applications, AppProjects and ferry's Secrets.
    pub namespace: String,
    /// The field manager of ferry's server-side applies.
    pub field_manager: String,
    /// How often repositories are checked for new commits.
    pub poll_interval: Duration,
    /// Where repository mirrors and checkouts are kept.
    pub cache_dir: PathBuf,
    /// How many API requests one app makes at once while comparing or applying.
    pub per_app_concurrency: usize,
    /// Allow `repoURL: file://…` and local paths (tests and demos; off in production: a local
    /// URL reads any repository the process can read).
    pub allow_file_repos: bool,
    /// The protocols kustomize may fetch remote bases with (default `https`, `ssh`; `file`
    /// is never allowed).
    pub kustomize_remote_protocols: Vec<String>,
    /// Refuse to adopt existing objects that no app tracks (ferry's older behaviour), unless an
    /// app says `FailOnUntrackedResource=false`. Off by default: they are adopted, as Argo CD
    /// adopts them.
    pub fail_on_untracked_resource: bool,
    /// Whether a wave waits for the child Applications in it to be healthy (the default), or
    /// counts them Healthy once they exist, as Argo CD does; a parent's `ferry.dev/child-health`
    /// annotation overrides it.
    pub child_health: crate::app_of_apps::ChildHealth,
}

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

/// When to try again after `failures` failed comparisons in a row of the kind `kind`. A
/// ComparisonError may be passing (a Git or chart server that is down): 5 s, doubling, at most
/// a poll interval. An InvalidSpecError waits for the next poll (a spec change queues the app
/// at once anyway).
fn retry_after_failure(kind: &str, failures: u32, poll: Duration) -> Duration {
    if kind != condition::COMPARISON_ERROR {
        return poll;
    }
    let exponent = failures.saturating_sub(1).min(10);
    (Duration::from_secs(5) * 2u32.pow(exponent)).min(poll)
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
    unchanged: bool,
    /// Only the revision moved: the new commit leaves the app's objects as they were.
    moved: bool,
}

/// Who compares, which decides whether the comparison is remembered.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Comparer {
    /// A reconcile: its comparison is remembered, so the next one can be skipped when nothing
    /// changed, and it gathers the watch events that follow it.
    Reconcile(Skip),
    /// A user's diff (UI, API, CLI): a look that changes nothing the controller relies on. Were
    /// it remembered, a diff between a drift event and the reconcile it queued would make that
    /// reconcile skip the app, leaving the drift unreported and unhealed.
    Look,
}

/// What [`Engine::compare_app`] did.
pub(crate) enum Comparison {
    /// Nothing changed since the last comparison: skipped.
    Unchanged,
    /// A new revision with the same objects: skipped; the result stands, at this revision.
    RevisionMoved(String),
    /// Compared.
    Done(Box<Compared3>),
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

/// Shared state of the controller: clients, caches, the queue.
pub struct Engine {
    pub(crate) cfg: EngineConfig,
    pub(crate) apps: Api<Application>,
    projects: Api<AppProject>,
    /// AppProjects as a watch keeps them (read by every reconcile; a miss asks the API).
    project_store: kube::runtime::reflector::Store<AppProject>,
    /// The writer of `project_store`, until the watch that feeds it starts.
    project_writer: Mutex<Option<kube::runtime::reflector::store::Writer<AppProject>>>,
    pub(crate) destinations: Destinations,
    repos: RepoCache,
    credentials: RepoCredentials,
    /// The age keys of each AppProject, for SOPS-encrypted files.
    sops_keys: SopsKeys,
    /// The latest render of each app's source (by app, repository, path and chart), with the
    /// key it was made for: one entry per source, so renders of old commits do not pile up.
    renders: Mutex<HashMap<String, (String, Arc<RenderedSource>)>>,
    tools: RenderTools,
    pub(crate) memos: Mutex<HashMap<String, AppMemo>>,
    /// When the controller first saw each pending refresh request: a fetch that started after
    /// that is fresh enough for it (one fetch serves every app a webhook push refreshes).
    pub(crate) refresh_seen: Mutex<HashMap<String, std::time::Instant>>,
    pub(crate) watches: WatchHub,
    pub(crate) queue: WorkQueue,
    /// Argo CD's `argocd-cm` settings, kept current.
    pub(crate) settings: crate::settings::SettingsWatch,
    pub(crate) events: kube::runtime::events::Recorder,
    /// Sync results and durations; registered into the server's registry by the binary.
    pub metrics: crate::metrics::ControllerMetrics,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// One rendered source.
struct RenderedOne {
    revision: String,
    commit: Option<CommitInfo>,
    source_type: String,
    output: Arc<RenderedSource>,
}

/// Desired state, the comparison, what to prune, and the destination cluster.
pub(crate) type Compared3 = (Desired, Vec<Compared>, Vec<Prunable>, ClusterClient);

/// One object's two sides, for `ferry app diff` and the API: normalized (server-maintained
/// fields dropped) and with Secret values masked, so they can be shown as they are.
#[derive(Debug, Clone)]
pub struct ResourceDiff {
    /// The object.
    pub key: ResourceKey,
    /// As it is in the cluster.
    pub live: Option<Value>,
    /// As applying would make it (absent for objects that would be pruned).
    pub desired: Option<Value>,
    /// Tracked, but no longer in Git.
    pub prune: bool,
}

/// The result of working out an app's desired state.
pub(crate) struct Desired {
    revision: String,
    commit: Option<CommitInfo>,
    /// Ordinary resources: compared, applied, pruned.
    objects: Vec<DesiredObject>,
    /// Hooks that run in a sync phase (PreSync, Sync, PostSync, SyncFail); never compared.
    hooks: Vec<DesiredObject>,
    /// Hooks that run when the app is deleted (PreDelete, PostDelete).
    pub(crate) delete_hooks: Vec<DesiredObject>,
    /// Directory, Kustomize or Helm, per rendered source.
    source_types: Vec<String>,
    /// Objects Git declares that `argocd-cm`'s resource exclusions/inclusions leave alone.
    excluded: Vec<String>,
}

/// A failure that becomes a condition on the app.
pub(crate) struct Problem {
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl Problem {
    fn new(kind: &'static str, message: impl Into<String>) -> Self {
        // Conditions, logs and Events all show this message: no credentials in URLs.
        Problem {
            kind,
            message: ferry_core::redact::redact_urls_in_text(&message.into()),
        }
    }
}

pub(crate) fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

impl Engine {
    /// Builds the engine for `client` (the cluster ferry runs against).
    pub fn new(client: kube::Client, cfg: EngineConfig) -> Self {
        let local = ClusterClient::new(client.clone());
        let queue = WorkQueue::default();
        let (project_store, project_writer) = kube::runtime::reflector::store();
        Engine {
            apps: Api::namespaced(client.clone(), &cfg.namespace),
            projects: Api::namespaced(client.clone(), &cfg.namespace),
            project_store,
            project_writer: Mutex::new(Some(project_writer)),
            destinations: Destinations::new(local, &cfg.namespace),
            repos: RepoCache::new(cfg.cache_dir.join("repos"))
                .with_file_repos(cfg.allow_file_repos),
            credentials: RepoCredentials::new(client.clone(), &cfg.namespace),
            sops_keys: SopsKeys::new(client.clone(), &cfg.namespace),
            renders: Mutex::default(),
            tools: {
                let tools = RenderTools::new(cfg.cache_dir.join("charts"))
                    .with_remote_protocols(cfg.kustomize_remote_protocols.clone());
                // Decrypted SOPS inputs a killed process left in its private directories.
                if let Err(e) = tools.remove_stale_decrypted() {
                    warn!("removing leftover decrypted files under the cache: {e}");
                }
                tools
            },
            metrics: crate::metrics::ControllerMetrics::default(),
            memos: Mutex::default(),
            refresh_seen: Mutex::default(),
            watches: WatchHub::new(queue.clone(), Arc::default()),
            queue,
            settings: crate::settings::SettingsWatch::new(client.clone(), &cfg.namespace),
            events: kube::runtime::events::Recorder::new(
                client.clone(),
                kube::runtime::events::Reporter {
                    controller: "ferry".into(),
                    instance: std::env::var("HOSTNAME").ok(),
                },
            ),
            cfg,
        }
    }

    /// Reconciles the Application `name`. Returns when to look again, if sooner than the next
    /// event or poll.
    pub async fn reconcile(self: &Arc<Self>, name: &str) -> Result<Option<Duration>, kube::Error> {
        let Some(app) = self.apps.get_opt(name).await? else {
            self.memos.lock().expect("memo lock").remove(name);
            self.queue.forget(name);
            self.watches.forget(name);
            return Ok(None);
        };
        if app.metadata.deletion_timestamp.is_some() {
            return self.finalize(&app).await;
        }
        let refresh = app.refresh_requested();
        let refresh_seen = self.refresh_seen.lock().expect("refresh lock").remove(name);
        // How old a fetch may be: a poll interval; for a refresh, no older than the request.
        let fetch_max_age = match refresh {
            None => self.cfg.poll_interval,
            Some(_) => refresh_seen.map_or(Duration::ZERO, |seen| seen.elapsed()),
        };
        let operation = app.operation.clone();

        let mut status = app.status.clone().unwrap_or_default();
        status.reconciled_at = Some(now());
        status.observed_at = status.reconciled_at.clone();

        // A sync that was running when ferry stopped (automated syncs leave no `.operation`)
        // is resumed, whatever the app's sync status says now.
        let resumed_operation = app
            .status
            .as_ref()
            .and_then(|s| s.operation_state.as_ref())
            .filter(|o| operation.is_none() && o.phase == OperationPhase::Running)
            .map(|o| o.operation.clone());
        let effective_operation = operation.clone().or(resumed_operation);
        let revision_override = effective_operation
            .as_ref()
            .and_then(|o| o.sync.as_ref())
            .and_then(|s| s.revision.clone());
        // With nothing new (same commit, spec and resources) and an app that is Synced and
        // settled, skip the work. Apps out of sync are compared every time: a retry or a
        // sync may be due.
        let settled = app.status.as_ref().is_some_and(|s| {
            s.sync.status == SyncStatusCode::Synced
                && matches!(
                    s.health.status,
                    HealthStatusCode::Healthy
                        | HealthStatusCode::Suspended
                        | HealthStatusCode::Degraded
                )
        });
        // A new commit that leaves this app's objects as they were needs no new comparison
        // either (a normal refresh of the same commit does compare again, a hard one always).
        let quiet = effective_operation.is_none() && settled;
        let skip = Skip {
            unchanged: quiet && refresh.is_none(),
            moved: quiet && refresh != Some(RefreshType::Hard),
        };
        let outcome = self
            .compare_app(
                &app,
                refresh,
                fetch_max_age,
                revision_override.as_deref(),
                Comparer::Reconcile(skip),
            )
            .await;
        let (desired, compared, prunable, cluster) = match outcome {
            Ok(Comparison::Done(found)) => *found,
            Ok(Comparison::Unchanged) => {
                // Nothing to sync, but a sync window of the project may have become malformed
                // (or been fixed) meanwhile.
                let project = self.project(&app.spec.project).await.ok().flatten();
                let before = status.conditions.clone();
                crate::windows::gate_sync(&mut status, &app, project.as_ref(), None);
                if status.conditions != before {
                    self.write_status(&app, &status, false).await?;
                }
                return Ok(Some(self.next_poll(&app)));
            }
            Ok(Comparison::RevisionMoved(revision)) => {
                status.sync.revision = Some(revision);
                self.write_status(&app, &status, refresh.is_some()).await?;
                return Ok(Some(self.next_poll(&app)));
            }
            Err(problem) => {
                let failures = {
                    let mut memos = self.memos.lock().expect("memo lock");
                    let memo = memos.entry(name.to_string()).or_default();
                    memo.failures = memo.failures.saturating_add(1);
                    memo.failures
                };
                let retry = retry_after_failure(problem.kind, failures, self.cfg.poll_interval);
                warn!(app = name, failures, retry_in = ?retry, "{}", problem.message);
                set_condition(&mut status, problem.kind, &problem.message);
                status.sync.status = SyncStatusCode::Unknown;
                if let Some(op) = operation {
                    // A requested sync cannot run: record why, and clear the request.
                    status.operation_state = Some(OperationState {
                        operation: op,
                        phase: OperationPhase::Error,
                        message: Some(problem.message.clone()),
                        sync_result: None,
                        started_at: Some(now()),
                        finished_at: Some(now()),
                        retry_count: None,
                    });
                    self.write_status(&app, &status, true).await?;
                } else {
                    // A refresh is done once compared, even when the comparison failed.
                    self.write_status(&app, &status, refresh.is_some()).await?;
                }
                return Ok(Some(retry));
            }
        };
        clear_conditions(
            &mut status,
            &[condition::COMPARISON_ERROR, condition::INVALID_SPEC_ERROR],
        );
        let settings = self.settings.current().await;
        let (view, view_problem) = AppView::of(&app, &self.cfg.namespace, self.cfg.child_health);
        fill_comparison(
            &mut status,
            &app,
            &view,
            &desired,
            &compared,
            &prunable,
            &settings,
        );
        crate::settings::report_settings_problems(&mut status, &app, &settings, &desired.excluded);
        self.keep_hook_finalizers(&app, &desired.delete_hooks)
            .await?;
        if let Some(problem) = view_problem {
            set_condition(&mut status, condition::INVALID_SPEC_ERROR, &problem);
        }

        // Decide whether to sync.
        let mut requeue = requeue_for_health(&status);
        let request = match &effective_operation {
            Some(op) => op.sync.as_ref().map(|s| SyncRequest::manual(op, s)),
            None => match auto_sync_request(
                &app,
                &status,
                &desired.revision,
                &PendingWork::of(&compared, &prunable),
            ) {
                AutoSync::Run(r) => Some(r),
                AutoSync::RetryIn(after) => {
                    requeue = Some(requeue.map_or(after, |r| r.min(after)));
                    None
                }
                AutoSync::No => None,
            },
        };
        // Sync windows of the app's project may hold the sync back.
        let project = self.project(&app.spec.project).await.ok().flatten();
        if let Some(reason) =
            crate::windows::gate_sync(&mut status, &app, project.as_ref(), request.as_ref())
        {
            info!(app = name, "sync held back: {reason}");
            let manual = request.as_ref().is_some_and(|r| !r.automated);
            if let (Some(op), true) = (&effective_operation, manual) {
                // A requested sync stays pending (running, as in Argo CD) until a window lets
                // it through.
                let started = status
                    .operation_state
                    .as_ref()
                    .filter(|o| o.phase == OperationPhase::Running)
                    .and_then(|o| o.started_at.clone())
                    .unwrap_or_else(now);
                status.operation_state = Some(OperationState {
                    operation: op.clone(),
                    phase: OperationPhase::Running,
                    message: Some(format!("Sync operation blocked by sync window: {reason}")),
                    sync_result: None,
                    started_at: Some(started),
                    finished_at: None,
                    retry_count: None,
                });
            }
            // A requested sync stays requested; a refresh is done.
            self.write_status(&app, &status, !manual && refresh.is_some())
                .await?;
            return Ok(Some(self.next_poll(&app)));
        }
        if let Some(request) = request {
            // A sync of this revision that was running when ferry stopped: its finished hooks
            // are not run again.
            let resumed: Vec<ferry_core::application::ResourceResult> = app
                .status
                .as_ref()
                .and_then(|s| s.operation_state.as_ref())
                .filter(|o| o.phase == OperationPhase::Running)
                .and_then(|o| o.sync_result.as_ref())
                .filter(|r| r.revision == desired.revision)
                .map(|r| r.resources.clone())
                .unwrap_or_default();
            // A resumed operation keeps its start time: with the revision it identifies the
            // operation, and so the hooks it already started (see `sync::HOOK_RUN_ANNOTATION`).
            let started = app
                .status
                .as_ref()
                .and_then(|s| s.operation_state.as_ref())
                .filter(|o| o.phase == OperationPhase::Running)
                .filter(|o| {
                    o.sync_result
                        .as_ref()
                        .is_some_and(|r| r.revision == desired.revision)
                })
                .and_then(|o| o.started_at.clone())
                .unwrap_or_else(now);
            info!(app = name, revision = %desired.revision, automated = request.automated, "syncing");
            // Record that a sync is running, so a restart picks it up again.
            let op = effective_operation.clone().unwrap_or_else(|| Operation {
                sync: Some(SyncOperation {
                    revision: Some(desired.revision.clone()),
                    prune: request.prune,
                    self_heal_attempts_count: request.self_heal_attempts,
                    ..Default::default()
                }),
                initiated_by: Some(OperationInitiator {
                    username: None,
                    automated: true,
                }),
                ..Default::default()
            });
            status.operation_state = Some(OperationState {
                operation: op.clone(),
                phase: OperationPhase::Running,
                message: Some("syncing".into()),
                sync_result: Some(ferry_core::application::SyncOperationResult {
                    resources: resumed.clone(),
                    revision: desired.revision.clone(),
                    ..Default::default()
                }),
                started_at: Some(started.clone()),
                finished_at: None,
                retry_count: None,
            });
            self.write_status(&app, &status, false).await?;

            let SyncOutcome {
                phase,
                message,
                results,
                applied,
            } = run_sync(
                self,
                &app,
                &mut status,
                SyncInputs {
                    cluster: &cluster,
                    objects: &desired.objects,
                    hooks: &desired.hooks,
                    compared: &compared,
                    prunable: &prunable,
                    resumed: &resumed,
                },
                &request,
            )
            .await;
            let finished = now();
            status.operation_state = Some(OperationState {
                operation: op.clone(),
                phase,
                message: Some(message.clone()),
                sync_result: Some(ferry_core::application::SyncOperationResult {
                    resources: results,
                    revision: desired.revision.clone(),
                    source: app.spec.effective_sources().first().map(|s| (*s).clone()),
                    ..Default::default()
                }),
                started_at: Some(started.clone()),
                finished_at: Some(finished.clone()),
                retry_count: (request.retry_count > 0).then_some(request.retry_count),
            });
            self.metrics
                .syncs
                .get_or_create(&crate::metrics::SyncLabels {
                    name: name.to_string(),
                    phase: format!("{phase:?}"),
                })
                .inc();
            self.record_event(&app, phase, &message, &desired.revision)
                .await;
            if phase == OperationPhase::Succeeded && !request.dry_run {
                clear_conditions(&mut status, &[condition::SYNC_ERROR]);
                crate::history::record(
                    &mut status,
                    &app,
                    &desired.revision,
                    desired.commit.as_ref(),
                    &started,
                    &finished,
                    op.initiated_by.clone(),
                );
            } else if phase != OperationPhase::Succeeded {
                set_condition(&mut status, condition::SYNC_ERROR, &message);
            }
            // When the sync applied every object that differed and nothing else was to do (no
            // hooks, nothing to prune), the apply answers are the live objects: the status is
            // filled from them, with no second comparison. Their watch events are ferry's own
            // and are ignored; anything else that changes them still queues the app.
            let settled_by_sync = (phase == OperationPhase::Succeeded && !request.dry_run)
                .then(|| compared_after_sync(&compared, &prunable, &desired.hooks, &applied))
                .flatten();
            if let Some(after) = settled_by_sync {
                for (key, live) in &applied {
                    let before = compared
                        .iter()
                        .find(|c| &c.desired.key == key)
                        .and_then(|c| c.live.as_ref());
                    self.watches.expect_own_write(live, before);
                }
                fill_comparison(
                    &mut status,
                    &app,
                    &view,
                    &desired,
                    &after,
                    &[],
                    &*self.settings.current().await,
                );
                requeue = requeue_for_health(&status);
            } else {
                // Look again right away: health moves on, and status should show the result; a
                // failed automated sync comes back when its retry is due.
                self.memos.lock().expect("memo lock").remove(name);
                requeue = Some(Duration::from_millis(500));
            }
        }
        self.write_status(&app, &status, operation.is_some() || refresh.is_some())
            .await?;
        Ok(requeue.or_else(|| Some(self.next_poll(&app))))
    }

    /// How many changes the watches have seen to `app`'s live resources (ferry's own writes
    /// aside) since the process started: a new value means something else touched them.
    pub fn live_change_count(&self, app: &str) -> u64 {
        self.watches.epoch(app)
    }

    /// When to look at `app` again for new commits: just after the next fetch of its
    /// repositories falls due (so every app of a repository shares that fetch, and a commit is
    /// seen within one poll interval), at most one poll interval from now.
    fn next_poll(&self, app: &Application) -> Duration {
        const AFTER_DUE: Duration = Duration::from_millis(50);
        app.spec
            .effective_sources()
            .iter()
            .filter(|s| s.chart.is_none())
            .filter_map(|s| self.repos.fetch_due_in(&s.repo_url, self.cfg.poll_interval))
            .map(|due| due + AFTER_DUE)
            .min()
            .unwrap_or(self.cfg.poll_interval)
            .min(self.cfg.poll_interval)
    }

    /// Whether `live` (the object `key`) belongs to `app`, under the tracking method of
    /// `argocd-cm`.
    pub(crate) fn tracks(&self, live: &Value, app: &str, key: &ResourceKey) -> bool {
        ferry_core::tracking::tracks(self.settings.tracking_method(), live, app, key)
    }

    /// The AppProject `name`: from the watch-fed store, or (not there yet: just created, or the
    /// watch is still listing) from the API.
    async fn project(&self, name: &str) -> Result<Option<AppProject>, kube::Error> {
        use futures::StreamExt as _;
        use kube::runtime::WatchStreamExt as _;
        let writer = self.project_writer.lock().expect("project lock").take();
        if let Some(writer) = writer {
            let stream = kube::runtime::reflector::reflector(
                writer,
                kube::runtime::watcher::watcher(
                    self.projects.clone(),
                    kube::runtime::watcher::Config::default(),
                ),
            )
            .default_backoff();
            tokio::spawn(stream.for_each(|_| std::future::ready(())));
        }
        let key = kube::runtime::reflector::ObjectRef::new(name).within(&self.cfg.namespace);
        if let Some(project) = self.project_store.get(&key) {
            return Ok(Some((*project).clone()));
        }
        self.projects.get_opt(name).await
    }

    /// Works out the desired state and compares it with the cluster.
    pub(crate) async fn compare_app(
        self: &Arc<Self>,
        app: &Application,
        refresh: Option<RefreshType>,
        fetch_max_age: Duration,
        revision_override: Option<&str>,
        comparer: Comparer,
    ) -> Result<Comparison, Problem> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let spec = &app.spec;
        let dest_ns = spec.destination.namespace.clone().unwrap_or_default();
        if spec
            .destination
            .server
            .as_deref()
            .unwrap_or_default()
            .is_empty()
            && spec
                .destination
                .name
                .as_deref()
                .unwrap_or_default()
                .is_empty()
        {
            return Err(Problem::new(
                condition::INVALID_SPEC_ERROR,
                "spec.destination names no cluster: set destination.server (e.g. https://kubernetes.default.svc) or destination.name",
            ));
        }
        if let (Some(server), Some(cluster_name)) = (
            spec.destination.server.as_deref().filter(|s| !s.is_empty()),
            spec.destination.name.as_deref().filter(|n| !n.is_empty()),
        ) {
            // As Argo CD: one field or the other. Checking one and connecting to the other would
            // let an app past its project's rules.
            return Err(Problem::new(
                condition::INVALID_SPEC_ERROR,
                format!(
                    "spec.destination sets both server ({server}) and name ({cluster_name}): set only one of them"
                ),
            ));
        }
        let sources = spec.effective_sources();
        if sources.is_empty() {
            return Err(Problem::new(
                condition::INVALID_SPEC_ERROR,
                "spec.source (or spec.sources) is missing: name a repoURL and a path",
            ));
        }
        let project_name = if spec.project.is_empty() {
            "default"
        } else {
            spec.project.as_str()
        };
        let project = self
            .project(project_name)
            .await
            .map_err(|e| Problem::new(condition::COMPARISON_ERROR, format!("reading AppProject {project_name}: {e}")))?
            .ok_or_else(|| {
                Problem::new(
                    condition::INVALID_SPEC_ERROR,
                    format!("AppProject {project_name} does not exist in namespace {}: create it or use project default", self.cfg.namespace),
                )
            })?;
        for source in &sources {
            if !project.spec.permits_source(&source.repo_url) {
                return Err(Problem::new(
                    condition::INVALID_SPEC_ERROR,
                    format!(
                        "repository {} is not permitted in project {project_name}: add it to the project's sourceRepos",
                        source.repo_url
                    ),
                ));
            }
        }
        // The project is checked against the cluster the destination resolves to (its server
        // URL and its name), so that neither field can slip past a rule about the other.
        let resolved = self
            .destinations
            .resolve_destination(
                spec.destination.server.as_deref(),
                spec.destination.name.as_deref(),
            )
            .await
            .map_err(|e| Problem::new(condition::INVALID_SPEC_ERROR, e.to_string()))?;
        let dest_server = Some(resolved.server.as_str());
        let dest_name = resolved.name.as_deref();
        if !project
            .spec
            .permits_destination(dest_server, dest_name, &dest_ns)
        {
            return Err(Problem::new(
                condition::INVALID_SPEC_ERROR,
                format!(
                    "destination {}{} namespace {dest_ns:?} is not permitted in project {project_name}: add it to the project's destinations",
                    resolved.server,
                    dest_name
                        .map(|n| format!(" (cluster {n})"))
                        .unwrap_or_default(),
                ),
            ));
        }
        let cluster = resolved.client;

        // Sources with `ref` lend their checkout to the others' Helm value files (`$ref/...`).
        let mut value_refs = BTreeMap::new();
        // Every source's revision: a new commit in any of them is a change.
        let mut all_revisions = Vec::new();
        for source in sources.iter().filter(|s| s.ref_.is_some()) {
            let (sha, root) = self.checkout_source(source, fetch_max_age, None).await?;
            all_revisions.push(sha);
            value_refs.insert(source.ref_.clone().unwrap_or_default(), root);
        }
        // Render every source; one failure stops everything (nothing applied, nothing pruned).
        let mut manifests = Vec::new();
        let mut revision = String::new();
        let mut commit = None;
        let mut source_types = Vec::new();
        for source in &sources {
            if ferry_source::render::application::is_ref_only(source) {
                continue; // a `ref` source only lends its files to others
            }
            let rendered = self
                .render_source(
                    app,
                    source,
                    &value_refs,
                    refresh,
                    fetch_max_age,
                    revision_override,
                )
                .await?;
            all_revisions.push(rendered.revision.clone());
            if revision.is_empty() {
                revision = rendered.revision;
                commit = rendered.commit;
            }
            source_types.push(rendered.source_type);
            manifests.extend(rendered.output.manifests.iter().cloned());
        }
        let empty_allowed = spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.automated.as_ref())
            .is_some_and(|a| a.allow_empty);
        let settings = self.settings.current().await;
        let mut objects = prepare_desired(manifests, name, &dest_ns, &cluster)
            .await
            .map_err(|e| Problem::new(condition::COMPARISON_ERROR, e.to_string()))?;
        crate::settings::add_tracking_label(&mut objects, name, &settings);
        let server = cluster_server(spec);
        let (excluded, kept): (Vec<DesiredObject>, Vec<DesiredObject>) = objects
            .into_iter()
            .partition(|o| settings.is_excluded(&o.key.group, &o.key.kind, &server));
        let objects = kept;
        let excluded: Vec<String> = excluded
            .iter()
            .map(|o| format!("{} ({})", o.key, o.origin))
            .collect();
        for o in &objects {
            let namespaced = !o.key.namespace.is_empty();
            if !project
                .spec
                .permits_resource(&o.key.group, &o.key.kind, namespaced)
            {
                return Err(Problem::new(
                    condition::INVALID_SPEC_ERROR,
                    format!(
                        "{} ({}) is not permitted in project {project_name}: allow its kind in the project's resource whitelist",
                        o.key, o.origin
                    ),
                ));
            }
            if namespaced
                && !project
                    .spec
                    .permits_destination(dest_server, dest_name, &o.key.namespace)
            {
                return Err(Problem::new(
                    condition::INVALID_SPEC_ERROR,
                    format!(
                        "{} ({}) is in namespace {}, which project {project_name} does not permit",
                        o.key, o.origin, o.key.namespace
                    ),
                ));
            }
        }

        // PreDelete and PostDelete hooks run when the app is deleted (see `finalize`).
        let delete_hooks: Vec<DesiredObject> = objects
            .iter()
            .filter(|o| o.hooks.iter().any(|h| h.deletion_phase().is_some()))
            .cloned()
            .collect();
        // Hooks run during syncs only; `Skip` and the delete hooks leave the object out of the
        // sync altogether.
        let (hooks, objects): (Vec<DesiredObject>, Vec<DesiredObject>) = objects
            .into_iter()
            .filter(|o| !o.is_hook() || o.hooks.iter().any(|h| h.phase().is_some()))
            .partition(DesiredObject::is_hook);

        // Skip the comparison when nothing that could change its result changed.
        let fingerprint = Seen {
            revisions: all_revisions.join(","),
            content: content_hash(&objects, &hooks),
            spec: format!(
                "{}|{}",
                serde_json::to_string(&app.spec).unwrap_or_default(),
                self.settings.version()
            ),
            epoch: self.watches.epoch(name),
        };
        if let Comparer::Reconcile(skip) = comparer {
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
                    return Ok(Comparison::RevisionMoved(revision));
                }
            }
        }

        // While a watch is still listing, a change may give no event: such a comparison is
        // not remembered, so the next look compares again rather than skipping.
        let mut watching = true;
        for o in &objects {
            if let Ok(target) = cluster.resolve(o.api_version(), &o.key.kind).await {
                watching &= self.watches.ensure(&cluster, &target.resource);
            }
        }
        if matches!(comparer, Comparer::Reconcile(_)) {
            self.watches.compared(name);
        }
        let ignore = |key: &ResourceKey| ignore_rules(app, &settings, key);
        let mut compared = compare_all(
            &cluster,
            name,
            &self.cfg.field_manager,
            &objects,
            &ignore,
            app.spec.sync_options(),
            self.cfg.per_app_concurrency,
        )
        .await;
        crate::settings::mark_label_owners(&mut compared, name, &settings);
        let prunable = self.find_prunable(app, &cluster, &objects).await;
        if objects.is_empty() && !empty_allowed && !prunable.is_empty() {
            // An empty render that would delete everything: almost always a mistake.
            return Err(Problem::new(
                condition::COMPARISON_ERROR,
                format!(
                    "the source rendered no objects, which would prune all {} resources of the app; refusing. \
                     Set syncPolicy.automated.allowEmpty: true if an empty app is intended",
                    prunable.len()
                ),
            ));
        }
        if matches!(comparer, Comparer::Reconcile(_)) {
            // While a watch is still listing, a change may give no event: such a comparison
            // is not remembered, so the next look compares again rather than skipping.
            let mut memos = self.memos.lock().expect("memo lock");
            let memo = memos.entry(name.to_string()).or_default();
            memo.compared = watching.then_some(fingerprint);
            memo.failures = 0;
        }
        Ok(Comparison::Done(Box::new((
            Desired {
                revision,
                commit,
                objects,
                hooks,
                delete_hooks,
                source_types,
                excluded,
            },
            compared,
            prunable,
            cluster,
        ))))
    }

    /// Compares the app `name` with Git without syncing or writing anything: each object's
    /// live and desired sides.
    pub async fn diff_app(self: &Arc<Self>, name: &str) -> Result<Vec<ResourceDiff>, String> {
        let app = self
            .apps
            .get(name)
            .await
            .map_err(|e| format!("reading application {name}: {e}"))?;
        let Comparison::Done(found) = self
            .compare_app(
                &app,
                Some(RefreshType::Hard),
                Duration::ZERO,
                None,
                Comparer::Look,
            )
            .await
            .map_err(|p| format!("{}: {}", p.kind, p.message))?
        else {
            unreachable!("a comparison that may not be skipped");
        };
        let (_, compared, prunable, _) = *found;
        let mut out: Vec<ResourceDiff> = compared
            .into_iter()
            .map(|c| {
                let desired = c.predicted.unwrap_or(c.desired.object);
                masked_diff(c.desired.key, c.live, Some(desired), false)
            })
            .collect();
        for p in prunable {
            out.push(masked_diff(p.key, Some(p.live), None, true));
        }
        Ok(out)
    }

    /// Fetches (once per repo per poll) and checks out a Git source at its target revision (or
    /// `revision_override`): the commit SHA and the checkout's root.
    async fn checkout_source(
        &self,
        source: &ApplicationSource,
        max_age: Duration,
        revision_override: Option<&str>,
    ) -> Result<(String, PathBuf), Problem> {
        let url = &source.repo_url;
        let revision = revision_override
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| source.target_revision_or_head());
        // Credentials are read (a LIST of Secrets) only when git will talk to the remote: a
        // fetch is due, or a commit or ref that may be missing from the mirror is asked for.
        // Otherwise the fetch below is skipped (a slack second covers the time until it checks).
        let may_fetch_one = revision.starts_with("refs/")
            || (revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()));
        let (creds, max_age) = if self.repos.fetch_due(url, max_age) || may_fetch_one {
            let creds = self
                .credentials
                .for_url(url)
                .await
                .map_err(|e| Problem::new(condition::COMPARISON_ERROR, e))?;
            (creds, max_age)
        } else {
            (
                ferry_source::git::Credentials::none(),
                max_age + Duration::from_secs(1),
            )
        };
        let started = std::time::Instant::now();
        let repo = crate::metrics::RepoLabels {
            repo: ferry_core::redact::redact_url(url),
        };
        let git_failed = |e: ferry_source::GitError| {
            self.metrics.git_errors.get_or_create(&repo).inc();
            let message = self.credentials.explain_host_key(e.to_string());
            Problem::new(condition::COMPARISON_ERROR, message)
        };
        // SSH checks host keys strictly, against the operator's ConfigMap.
        if ferry_source::git::url_protocol(url) == "ssh" && self.repos.fetch_due(url, max_age) {
            let known_hosts = self
                .credentials
                .known_hosts()
                .await
                .map_err(|e| Problem::new(condition::COMPARISON_ERROR, e))?;
            self.repos
                .set_known_hosts(&known_hosts)
                .map_err(|e| Problem::new(condition::COMPARISON_ERROR, e.to_string()))?;
        }
        let sha = self
            .repos
            .resolve_fresh(url, &creds, revision, max_age)
            .await
            .map_err(git_failed)?;
        let root = self.repos.checkout(url, &sha).await.map_err(git_failed)?;
        self.metrics
            .git_seconds
            .get_or_create(&repo)
            .observe(started.elapsed().as_secs_f64());
        Ok((sha, root))
    }

    /// Renders one source (a directory, a Kustomize folder or a Helm chart from Git or from a
    /// chart repository), cached by commit (or chart version), path and options.
    async fn render_source(
        &self,
        app: &Application,
        source: &ApplicationSource,
        value_refs: &BTreeMap<String, PathBuf>,
        refresh: Option<RefreshType>,
        fetch_max_age: Duration,
        revision_override: Option<&str>,
    ) -> Result<RenderedOne, Problem> {
        let url = &source.repo_url;
        let from_chart_repo = source.chart.is_some();
        let (revision, checkout_root, commit) = if from_chart_repo {
            // A chart repository: the revision is the chart version (or range).
            let version = revision_override
                .filter(|r| !r.is_empty())
                .or(source.target_revision.as_deref())
                .unwrap_or_default()
                .to_string();
            (version, None, None)
        } else {
            let (sha, root) = self
                .checkout_source(source, fetch_max_age, revision_override)
                .await?;
            let info = self.repos.commit_info(url, &sha).await.ok();
            (sha, Some(root), info)
        };
        let app_name = app.metadata.name.clone().unwrap_or_default();
        let namespace = app.spec.destination.namespace.clone().unwrap_or_default();
        // A plain directory renders the same from every commit that leaves its files alone:
        // keyed by its Git tree id, a commit elsewhere in the repository renders nothing again.
        let plain_directory = !from_chart_repo
            && source.helm.is_none()
            && source.kustomize.is_none()
            && value_refs.is_empty();
        let content_id = if plain_directory {
            let path = source.path.as_deref().unwrap_or(".");
            self.repos
                .tree_id(url, &revision, path)
                .await
                .ok()
                .flatten()
                .map(|tree| format!("tree:{tree}"))
        } else {
            None
        };
        let key = serde_json::json!([
            url,
            content_id.as_deref().unwrap_or(&revision),
            source.path,
            source.chart,
            source.directory,
            source.helm,
            source.kustomize,
            app_name,
            namespace,
            value_refs,
        ])
        .to_string();
        let slot = serde_json::json!([app_name, url, source.path, source.chart]).to_string();
        if refresh == Some(RefreshType::Hard) {
            self.renders
                .lock()
                .expect("render cache lock")
                .remove(&slot);
        }
        // The keys the app's project may use are part of the key: a render that decrypted SOPS
        // files is reused only while the same keys are allowed (a revoked key stops working at
        // the next reconcile).
        let project = if app.spec.project.is_empty() {
            "default"
        } else {
            app.spec.project.as_str()
        };
        let cached = self
            .renders
            .lock()
            .expect("render cache lock")
            .get(&slot)
            .and_then(|(made_for, r)| {
                let fingerprint = made_for.strip_prefix(&key)?.strip_prefix('|')?;
                Some((fingerprint.to_owned(), r.clone()))
            });
        let mut keys = None;
        let cached = match cached {
            Some((fingerprint, r)) if fingerprint.is_empty() => Some(r),
            Some((fingerprint, r)) => {
                let ring = self.project_keys(project).await?;
                let same = ring.recipients().join(",") == fingerprint;
                keys = Some(ring);
                same.then_some(r)
            }
            None => None,
        };
        let rendered = match cached {
            Some(r) => r,
            None => {
                let credentials = if from_chart_repo {
                    self.credentials
                        .for_url(url)
                        .await
                        .map_err(|e| Problem::new(condition::COMPARISON_ERROR, e))?
                } else {
                    Default::default()
                };
                let keys = match keys {
                    Some(k) => k,
                    None => self.project_keys(project).await?,
                };
                let used_keys = keys.clone();
                let mut request = ferry_source::render::application::source_render(
                    app,
                    source,
                    checkout_root,
                    &revision,
                    value_refs,
                    credentials,
                );
                request.keys = keys;
                let started = std::time::Instant::now();
                let out = ferry_source::render::render_source(&self.tools, &request)
                    .await
                    .inspect(|_| {
                        self.metrics
                            .render_seconds
                            .get_or_create(&crate::metrics::RepoLabels {
                                repo: ferry_core::redact::redact_url(url),
                            })
                            .observe(started.elapsed().as_secs_f64());
                    })
                    .map_err(|e| {
                        let at = if from_chart_repo {
                            revision.clone()
                        } else {
                            short(&revision).to_string()
                        };
                        // Where an app's SOPS keys come from, when none of them fits.
                        let hint = match &e {
                            ferry_source::RenderError::Sops(
                                ferry_secrets::SopsError::NoMatchingKey { .. },
                            ) => format!(
                                " (project {project}'s keys are the *.agekey entries of Secrets \
                                 labelled {}=true whose annotation {} names it)",
                                crate::sops_keys::SOPS_KEYS_LABEL,
                                crate::sops_keys::SOPS_PROJECTS_ANNOTATION
                            ),
                            _ => String::new(),
                        };
                        Problem::new(
                            condition::COMPARISON_ERROR,
                            format!("{url} at {at}: {e}{hint}"),
                        )
                    })?;
                // A render that decrypted something is reused only while the project's keys
                // stay the same (checked on each reuse); one that did not needs no check.
                let fingerprint = if used_keys.was_used() {
                    used_keys.recipients().join(",")
                } else {
                    String::new()
                };
                let rendered = Arc::new(out);
                self.renders
                    .lock()
                    .expect("render cache lock")
                    .insert(slot, (format!("{key}|{fingerprint}"), rendered.clone()));
                rendered
            }
        };
        Ok(RenderedOne {
            revision,
            commit,
            source_type: rendered.source_type.to_string(),
            output: rendered.clone(),
        })
    }

    /// The age keys AppProject `project` may use for SOPS files.
    async fn project_keys(&self, project: &str) -> Result<ferry_source::render::KeyRing, Problem> {
        self.sops_keys
            .for_project(project)
            .await
            .map_err(|e| Problem::new(condition::COMPARISON_ERROR, e))
    }

    /// Objects this app tracked before (from its status) that are no longer desired, still
    /// exist, and still carry this app's tracking annotation pointing at themselves.
    async fn find_prunable(
        &self,
        app: &Application,
        cluster: &ClusterClient,
        desired: &[DesiredObject],
    ) -> Vec<Prunable> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let settings = self.settings.last();
        let server = cluster_server(&app.spec);
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

    /// Publishes a Kubernetes Event on the Application for a finished sync, as Argo CD does
    /// (`kubectl describe application` shows them).
    async fn record_event(
        &self,
        app: &Application,
        phase: OperationPhase,
        message: &str,
        revision: &str,
    ) {
        use kube::Resource as _;
        use kube::runtime::events::{Event, EventType};
        let ok = phase == OperationPhase::Succeeded;
        let event = Event {
            type_: if ok {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: "OperationCompleted".into(),
            note: Some(ferry_core::redact::redact_urls_in_text(&format!(
                "Sync operation to {} {}: {message}",
                short(revision),
                if ok { "succeeded" } else { "failed" }
            ))),
            action: "Sync".into(),
            secondary: None,
        };
        if let Err(e) = self.events.publish(&event, &app.object_ref(&())).await {
            warn!(
                app = app.metadata.name.as_deref().unwrap_or_default(),
                "recording an Event: {e}"
            );
        }
    }

    /// Writes `status` to the Application, clearing its `operation` and refresh annotation when
    /// asked.
    pub(crate) async fn write_status(
        &self,
        app: &Application,
        status: &ApplicationStatus,
        clear_requests: bool,
    ) -> Result<(), kube::Error> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let mut ops = vec![json!({"op": "add", "path": "/status", "value": status})];
        if clear_requests {
            if app.operation.is_some() {
                ops.push(json!({"op": "remove", "path": "/operation"}));
            }
            if app.refresh_requested().is_some() {
                ops.push(json!({"op": "remove", "path": "/metadata/annotations/argocd.argoproj.io~1refresh"}));
            }
        }
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(ops)).expect("a well-formed JSON patch");
        match self
            .apps
            .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(written) => {
                // An app that manages itself watches itself: the event of this write is its own
                // and is no drift (else every status write would start another comparison).
                let (view, _) = AppView::of(app, &self.cfg.namespace, self.cfg.child_health);
                if status
                    .resources
                    .iter()
                    .any(|r| view.is_self(&resource_key(r)))
                    && let Ok(written) = serde_json::to_value(&written)
                {
                    self.watches.expect_own_write(&written, None);
                }
                Ok(())
            }
            // Deleted meanwhile, or the operation was already cleared: the next look sorts it out.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// Both sides of a diff, normalized, with Secret values masked: live values all get the same
/// mask, a desired value that differs gets another, so a change shows without either value.
fn masked_diff(
    key: ResourceKey,
    live: Option<Value>,
    desired: Option<Value>,
    prune: bool,
) -> ResourceDiff {
    let mut live_side = live.as_ref().map(crate::normalize::normalize);
    let mut desired_side = desired.as_ref().map(crate::normalize::normalize);
    if let Some(l) = live_side.as_mut() {
        crate::normalize::mask_secret(l, None);
    }
    if let Some(d) = desired_side.as_mut() {
        crate::normalize::mask_secret(d, live.as_ref());
    }
    ResourceDiff {
        key,
        live: live_side,
        desired: desired_side,
        prune,
    }
}

/// The identity of a resource listed in an app's status.
pub(crate) fn resource_key(r: &ResourceStatus) -> ResourceKey {
    ResourceKey::new(&r.group, &r.kind, &r.namespace, &r.name)
}

/// Where a resource listed in an app's status lives.
pub(crate) fn resource_ref(r: &ResourceStatus) -> ObjectRef {
    let api_version = if r.group.is_empty() {
        r.version.clone()
    } else {
        format!("{}/{}", r.group, r.version)
    };
    ObjectRef {
        api_version,
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
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

/// The destination's server URL as exclusions match it (the cluster's name when given by name).
fn cluster_server(spec: &ferry_core::application::ApplicationSpec) -> String {
    spec.destination
        .server
        .clone()
        .or_else(|| spec.destination.name.clone())
        .unwrap_or_default()
}

/// Sets or updates a condition of `kind`.
pub(crate) fn set_condition(status: &mut ApplicationStatus, kind: &str, message: &str) {
    let redacted = ferry_core::redact::redact_urls_in_text(message);
    let message = redacted.as_str();
    if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == kind) {
        if c.message != message {
            c.message = message.to_string();
            c.last_transition_time = Some(now());
        }
        return;
    }
    status.conditions.push(ApplicationCondition {
        type_: kind.to_string(),
        message: message.to_string(),
        last_transition_time: Some(now()),
    });
}

pub(crate) fn clear_conditions(status: &mut ApplicationStatus, kinds: &[&str]) {
    status
        .conditions
        .retain(|c| !kinds.contains(&c.type_.as_str()));
}

/// Fills sync status, resources, health and images from a comparison.
fn fill_comparison(
    status: &mut ApplicationStatus,
    app: &Application,
    view: &AppView,
    desired: &Desired,
    compared: &[Compared],
    prunable: &[Prunable],
    settings: &ferry_core::settings::ArgoSettings,
) {
    let mut health_errors = Vec::new();
    let mut resources = Vec::new();
    let mut images = BTreeSet::new();
    let mut worst = HealthStatusCode::Healthy;
    let mut shared = Vec::new();
    for c in compared {
        let version = c
            .desired
            .api_version()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        // An app shows no health for itself (it would be its own health, and never settle).
        let own = view.is_self(&c.desired.key);
        let health = match &c.live {
            None => Some(HealthStatus {
                status: HealthStatusCode::Missing,
                message: None,
            }),
            Some(_) if own => None,
            // A child Application as the parent's child-health setting says; anything else by
            // the built-in rules or argocd-cm's Lua checks.
            Some(live)
                if c.desired.key.group == "argoproj.io" && c.desired.key.kind == "Application" =>
            {
                Some(match view.health(&c.desired.key, live) {
                    Some(h) => h.into(),
                    None => HealthStatus {
                        status: HealthStatusCode::Healthy,
                        message: None,
                    },
                })
            }
            Some(live) => {
                let h = crate::settings::resource_health(
                    settings,
                    live,
                    &c.desired.key,
                    &mut health_errors,
                );
                Some(HealthStatus {
                    status: h.status,
                    message: h.message,
                })
            }
        };
        if let Some(owner) = &c.foreign_owner {
            shared.push(format!("{} is tracked by {owner}", c.desired.key));
        }
        if let Some(h) = &health {
            worst = worst.max(h.status);
        }
        collect_images(&c.desired.object, &mut images);
        resources.push(ResourceStatus {
            group: c.desired.key.group.clone(),
            version,
            kind: c.desired.key.kind.clone(),
            namespace: c.desired.key.namespace.clone(),
            name: c.desired.key.name.clone(),
            status: Some(if c.in_sync {
                SyncStatusCode::Synced
            } else {
                SyncStatusCode::OutOfSync
            }),
            health,
            ..Default::default()
        });
    }
    let previous: BTreeMap<ResourceKey, ResourceStatus> = status
        .resources
        .iter()
        .map(|r| {
            (
                ResourceKey::new(&r.group, &r.kind, &r.namespace, &r.name),
                r.clone(),
            )
        })
        .collect();
    for p in prunable {
        let mut r = previous.get(&p.key).cloned().unwrap_or_default();
        r.status = Some(SyncStatusCode::OutOfSync);
        r.requires_pruning = Some(true);
        r.health = None;
        resources.push(r);
    }
    resources.sort_by(|a, b| {
        (&a.group, &a.kind, &a.namespace, &a.name).cmp(&(&b.group, &b.kind, &b.namespace, &b.name))
    });
    let in_sync = compared.iter().all(|c| c.in_sync) && prunable.is_empty();
    status.sync = SyncStatus {
        status: if in_sync {
            SyncStatusCode::Synced
        } else {
            SyncStatusCode::OutOfSync
        },
        revision: Some(desired.revision.clone()),
        compared_to: Some(ferry_core::application::ComparedTo {
            source: app.spec.source.clone(),
            sources: app.spec.sources.clone().unwrap_or_default(),
            destination: app.spec.destination.clone(),
            ignore_differences: app.spec.ignore_differences.clone(),
        }),
        ..Default::default()
    };
    let errors: Vec<String> = compared
        .iter()
        .filter_map(|c| {
            c.error
                .as_ref()
                .map(|e| format!("{} ({}): {e}", c.desired.key, c.desired.origin))
        })
        .collect();
    if !errors.is_empty() {
        set_condition(status, condition::COMPARISON_ERROR, &errors.join("; "));
    }
    let app_name = app.metadata.name.as_deref().unwrap_or_default();
    if health_errors.is_empty() {
        clear_conditions(status, &[condition::HEALTH_CHECK_ERROR]);
    } else {
        set_condition(
            status,
            condition::HEALTH_CHECK_ERROR,
            &format!("Application {app_name}: {}", health_errors.join("; ")),
        );
    }
    if shared.is_empty() {
        clear_conditions(status, &[condition::SHARED_RESOURCE_WARNING]);
    } else {
        set_condition(
            status,
            condition::SHARED_RESOURCE_WARNING,
            &shared.join("; "),
        );
    }
    let message = resources
        .iter()
        .filter(|r| {
            r.health
                .as_ref()
                .is_some_and(|h| h.status == worst && h.status != HealthStatusCode::Healthy)
        })
        .map(|r| {
            format!(
                "{}/{}: {}",
                r.kind,
                r.name,
                r.health
                    .as_ref()
                    .and_then(|h| h.message.clone())
                    .unwrap_or_else(|| format!("{worst:?}"))
            )
        })
        .next();
    status.health = HealthStatus {
        status: worst,
        message,
    };
    status.resources = resources;
    status.summary.images = images.into_iter().collect();
    status.source_type = desired.source_types.first().cloned();
    status.source_types = if desired.source_types.len() > 1 {
        desired.source_types.clone()
    } else {
        Vec::new()
    };
}

fn collect_images(obj: &Value, out: &mut BTreeSet<String>) {
    match obj {
        Value::Object(map) => {
            for (k, v) in map {
                if (k == "containers" || k == "initContainers")
                    && let Some(list) = v.as_array()
                {
                    for c in list {
                        if let Some(image) = c.get("image").and_then(Value::as_str) {
                            out.insert(image.to_string());
                        }
                    }
                } else {
                    collect_images(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_images(v, out)),
        _ => {}
    }
}

/// What a sync would have to do.
#[derive(Debug, Clone, Copy)]
struct PendingWork {
    /// Some desired object differs from live.
    apply: bool,
    /// Some tracked leftover may be pruned (it does not say `Prune=false`).
    prune: bool,
}

impl PendingWork {
    fn of(compared: &[Compared], prunable: &[Prunable]) -> Self {
        PendingWork {
            apply: compared.iter().any(|c| !c.in_sync),
            prune: prunable.iter().any(|p| {
                let o = ferry_core::order::sync_options(&p.live);
                o.prune && !o.prune_confirm
            }),
        }
    }
}

/// What automated sync decides.
#[derive(Debug)]
enum AutoSync {
    /// Sync now.
    Run(SyncRequest),
    /// A retry is due later.
    RetryIn(Duration),
    /// Nothing to do.
    No,
}

/// Whether an automated sync should run now, following Argo CD: only when out of sync, once per
/// revision unless self-heal is on, and after a failure at the same revision only as
/// `syncPolicy.retry` allows.
fn auto_sync_request(
    app: &Application,
    status: &ApplicationStatus,
    revision: &str,
    work: &PendingWork,
) -> AutoSync {
    let Some(policy) = app.spec.sync_policy.as_ref().filter(|p| p.is_automated()) else {
        return AutoSync::No;
    };
    let automated = policy.automated.clone().unwrap_or_default();
    if status.sync.status != SyncStatusCode::OutOfSync {
        return AutoSync::No;
    }
    if !(work.apply || (work.prune && automated.prune)) {
        // Only pruning is left, and prune is off (or the resources say Prune=false): the app
        // stays OutOfSync, and syncing again would change nothing.
        return AutoSync::No;
    }
    let mut retry_count = 0;
    let mut self_heal_attempts = 0;
    if let Some(last) = &status.operation_state {
        let same_revision = last
            .sync_result
            .as_ref()
            .is_none_or(|r| r.revision == revision);
        let failed = matches!(last.phase, OperationPhase::Failed | OperationPhase::Error);
        if same_revision && failed {
            let attempt = last.retry_count.unwrap_or(0) + 1;
            if !crate::retry::may_retry(policy.retry.as_ref(), attempt) {
                return AutoSync::No; // failed at this revision; a new commit or a manual sync is needed
            }
            let wait = crate::retry::backoff(policy.retry.as_ref(), attempt);
            let elapsed = since(last.finished_at.as_deref()).unwrap_or(wait);
            if elapsed < wait {
                return AutoSync::RetryIn(wait - elapsed);
            }
            retry_count = attempt;
        } else if same_revision && !automated.self_heal && last.phase == OperationPhase::Succeeded {
            return AutoSync::No; // synced this revision once; drift shows as OutOfSync
        } else if same_revision && last.phase == OperationPhase::Succeeded {
            // Self-heal: each one in a row waits longer than the one before.
            let previous = last
                .operation
                .sync
                .as_ref()
                .map_or(0, |s| s.self_heal_attempts_count);
            let elapsed = since(last.finished_at.as_deref()).unwrap_or(Duration::MAX);
            let previous = if crate::retry::self_heal_run_over(previous, elapsed) {
                0
            } else {
                previous
            };
            let wait = crate::retry::self_heal_delay(previous);
            if elapsed < wait {
                return AutoSync::RetryIn(wait - elapsed);
            }
            self_heal_attempts = previous + 1;
        }
    }
    AutoSync::Run(SyncRequest {
        revision: revision.to_string(),
        prune: automated.prune,
        dry_run: false,
        automated: true,
        sync_options: policy.sync_options.clone(),
        retry_count,
        self_heal_attempts,
    })
}

/// How long ago the RFC 3339 time `at` was.
fn since(at: Option<&str>) -> Option<Duration> {
    let t = at?.parse::<k8s_openapi::jiff::Timestamp>().ok()?;
    Some(
        k8s_openapi::jiff::Timestamp::now()
            .duration_since(t)
            .unsigned_abs(),
    )
}

/// The comparison as it stands after a sync that applied every object that was out of sync:
/// `None` unless that sync was that simple (no hooks, nothing prunable, every differing object
/// applied and answered), in which case the answers are the live side and all is in sync.
fn compared_after_sync(
    compared: &[Compared],
    prunable: &[Prunable],
    hooks: &[DesiredObject],
    applied: &[(ResourceKey, Value)],
) -> Option<Vec<Compared>> {
    if !prunable.is_empty() || !hooks.is_empty() {
        return None;
    }
    let applied: HashMap<&ResourceKey, &Value> = applied.iter().map(|(k, v)| (k, v)).collect();
    compared
        .iter()
        .map(|c| {
            if c.error.is_some() || c.foreign_owner.is_some() {
                return None;
            }
            match applied.get(&c.desired.key) {
                Some(live) => {
                    let mut live = (*live).clone();
                    crate::compare::drop_managed_fields(&mut live);
                    Some(Compared {
                        live: Some(live.clone()),
                        predicted: Some(live),
                        in_sync: true,
                        ..c.clone()
                    })
                }
                None if c.in_sync => Some(c.clone()),
                None => None,
            }
        })
        .collect()
}

/// While something is progressing, look again soon.
fn requeue_for_health(status: &ApplicationStatus) -> Option<Duration> {
    match status.health.status {
        HealthStatusCode::Progressing | HealthStatusCode::Missing | HealthStatusCode::Unknown => {
            Some(Duration::from_secs(2))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_failures_back_off_exponentially_up_to_a_poll_and_spec_errors_wait_a_poll() {
        let poll = Duration::from_secs(180);
        let after = |n| retry_after_failure(condition::COMPARISON_ERROR, n, poll).as_secs();
        assert_eq!([after(1), after(2), after(3), after(4)], [5, 10, 20, 40]);
        assert_eq!(after(6), 160);
        assert_eq!(after(7), 180);
        assert_eq!(after(u32::MAX), 180);
        let short = retry_after_failure(condition::COMPARISON_ERROR, 3, Duration::from_secs(1));
        assert_eq!(
            short,
            Duration::from_secs(1),
            "never later than the poll interval"
        );
        let spec = retry_after_failure(condition::INVALID_SPEC_ERROR, 1, poll);
        assert_eq!(spec, poll);
    }
}
