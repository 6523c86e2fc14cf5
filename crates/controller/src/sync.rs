//! Running a sync, in Argo CD's order: PreSync hooks, then the Sync phase wave by wave (in a
//! wave, resources kind by kind, each kind's objects in parallel, then the wave's Sync hooks;
//! the next wave starts when this one is healthy), pruning, then PostSync hooks once everything
//! is healthy. A failure stops the sync and runs the SyncFail hooks.
//!
//! A sync runs in steps. Where it would wait (for a hook to finish, for a wave to become
//! healthy) it stops instead, with its results so far in the operation state, and the next
//! reconcile of the app goes on from there: nothing already applied is applied again, no hook
//! that ran is run again. So no worker waits on a sync, and a sync that was interrupted (ferry
//! killed) resumes the same way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use ferry_cluster::{ApplyOptions, ClusterClient, ObjectRef, Propagation};
use ferry_core::application::{
    Application, ApplicationStatus, Operation, OperationPhase, ResourceResult, ResultCode,
    SyncOperation,
};
use ferry_core::order::{
    Phase, PlannedObject, PropagationPolicy, SyncOptions, plan_stages, prune_order,
    resource_sync_option_entries, sync_wave,
};
use ferry_core::tracking::ResourceKey;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::app_of_apps::AppView;
use crate::compare::{Compared, Prunable};
use crate::desired::DesiredObject;
use crate::memo::WaveWaits;

mod delete_hooks;
mod hooks;
mod wait;
pub(crate) use delete_hooks::{recorded_deletion_hooks, run_deletion_hooks};

/// Why a sync stopped before its end.
#[derive(Debug)]
pub(crate) enum Halt {
    /// It failed: the SyncFail hooks run and the operation fails.
    Failed(String),
    /// It waits (for a hook to finish, for a wave to become healthy): the operation stays
    /// Running, and the next reconcile goes on from here.
    Waiting(String),
}

impl From<String> for Halt {
    fn from(message: String) -> Self {
        Halt::Failed(message)
    }
}

impl Halt {
    /// What it says.
    pub(crate) fn message(self) -> String {
        match self {
            Halt::Failed(m) | Halt::Waiting(m) => m,
        }
    }
}

/// How long a wave may take to become healthy before the sync fails.
const WAVE_HEALTH_TIMEOUT: Duration = Duration::from_secs(300);
/// How long a hook may run before the sync fails.
const HOOK_TIMEOUT: Duration = Duration::from_secs(600);

/// Marks each hook object with the sync operation that created it (see [`hook_run_id`]): after
/// a restart, the resumed operation finds the hooks it started and waits for them instead of
/// running them a second time.
pub(crate) const HOOK_RUN_ANNOTATION: &str = "ferry.dev/hook-run";

/// The identity of one sync operation, stable across restarts of ferry: the app, the revision
/// and the operation's `startedAt` (kept when an interrupted operation is resumed). FNV-1a, so
/// the value does not change between builds of ferry.
fn hook_run_id(app: &str, revision: &str, started_at: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in [app, revision, started_at].join("\n").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// The name of a `generateName` hook in the operation `run_id`: the prefix and five characters
/// derived from the run and the hook, so each operation gets a fresh name (as with a name the
/// API server generates) but a resumed operation finds the same one again.
fn generated_hook_name(prefix: &str, run_id: &str, phase: Phase, key: &ResourceKey) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash = u64::from_str_radix(run_id, 16).unwrap_or_default();
    for byte in format!("{}/{key}", phase.as_str()).bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let suffix: String = (0..5)
        .map(|i| ALPHABET[((hash >> (i * 8)) % ALPHABET.len() as u64) as usize] as char)
        .collect();
    format!("{prefix}{suffix}")
}

/// What to sync.
#[derive(Debug, Clone)]
pub(crate) struct SyncRequest {
    /// The revision being synced (a commit SHA).
    pub revision: String,
    /// Delete tracked objects that left the desired set.
    pub prune: bool,
    /// Only report what would be done.
    pub dry_run: bool,
    /// Started by automated sync rather than by a user.
    pub automated: bool,
    /// Sync options of this sync (`CreateNamespace=true`, ...).
    pub sync_options: Vec<String>,
    /// Which retry of a failed sync this is (0: not a retry).
    pub retry_count: i64,
    /// Which self-heal of the same revision in a row this is (0: not a self-heal).
    pub self_heal_attempts: i64,
}

impl SyncRequest {
    /// The request a user made through `.operation.sync`.
    pub(crate) fn manual(op: &Operation, sync: &SyncOperation) -> Self {
        SyncRequest {
            revision: sync.revision.clone().unwrap_or_default(),
            prune: sync.prune,
            dry_run: sync.dry_run,
            automated: op.initiated_by.as_ref().is_some_and(|i| i.automated),
            sync_options: sync.sync_options.clone(),
            retry_count: 0,
            self_heal_attempts: 0,
        }
    }
}

/// What a sync needs from around it: how to write to the cluster, the settings it reads, and
/// where it reports progress. Not the controller's Engine: a sync knows nothing of queues, memos
/// or watches.
pub(crate) struct SyncEnv<'a> {
    /// The field manager of every apply.
    pub(crate) field_manager: &'a str,
    /// How many objects of one stage are applied at once.
    pub(crate) concurrency: usize,
    /// Strict mode: refuse untracked objects unless a resource says otherwise.
    pub(crate) fail_on_untracked_resource: bool,
    /// `argocd-cm`'s settings (ignore rules, Lua health checks).
    pub(crate) settings: std::sync::Arc<ferry_core::settings::ArgoSettings>,
    /// How the app sees itself and its children.
    pub(crate) view: AppView,
    /// When this sync's waves began waiting, across sync steps.
    pub(crate) wave_waits: &'a WaveWaits,
    /// Writes the app's status as the sync goes (hooks started and finished, what it waits for).
    pub(crate) progress: &'a dyn Progress,
}

/// Where a sync writes its progress.
pub(crate) trait Progress: Sync {
    /// Writes `status` (the app's, with the running operation). A failure is the writer's to
    /// log: the sync goes on, and its outcome is written at its end.
    fn record<'a>(&'a self, status: &'a ApplicationStatus) -> futures::future::BoxFuture<'a, ()>;
}

/// What a sync works on.
#[derive(Clone, Copy)]
pub(crate) struct SyncInputs<'a> {
    /// The destination cluster.
    pub cluster: &'a ClusterClient,
    /// The hooks.
    pub hooks: &'a [DesiredObject],
    /// The desired resources, each compared with the cluster.
    pub compared: &'a [Compared],
    /// Tracked leftovers.
    pub prunable: &'a [Prunable],
    /// Results of an interrupted run of this sync: hooks that succeeded there are not rerun.
    pub resumed: &'a [ResourceResult],
}

/// How a sync ended, or where it stopped to wait.
#[derive(Debug)]
pub(crate) struct SyncOutcome {
    /// Succeeded or Failed; Running when it waits, to go on at the next reconcile.
    pub phase: OperationPhase,
    /// A one-line summary.
    pub message: String,
    /// One entry per resource or hook touched.
    pub results: Vec<ResourceResult>,
    /// The objects as the API server answered each (non-dry-run) apply: what is live now.
    pub applied: Vec<(ResourceKey, Value)>,
    /// Objects that existed untracked and were applied with this app's tracking id.
    pub adopted: Vec<crate::adoption::Adopted>,
}

fn result_for(
    key: &ResourceKey,
    api_version: &str,
    status: ResultCode,
    message: impl Into<String>,
) -> ResourceResult {
    ResourceResult {
        group: key.group.clone(),
        version: api_version
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        kind: key.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        status: Some(status),
        message: Some(message.into()),
        sync_phase: Some(Phase::Sync.as_str().into()),
        ..Default::default()
    }
}

/// An object as the API server answered its apply.
type AppliedObject = (ResourceKey, Value);

/// One sync in progress.
struct SyncRun<'a> {
    env: &'a SyncEnv<'a>,
    app: &'a Application,
    status: &'a mut ApplicationStatus,
    inputs: SyncInputs<'a>,
    request: &'a SyncRequest,
    app_options: Vec<String>,
    results: Vec<ResourceResult>,
    applied: Vec<AppliedObject>,
    /// Objects that existed untracked and were applied with this app's tracking id.
    adopted: Vec<crate::adoption::Adopted>,
    /// Stop where the sync would wait (a sync step), rather than wait (deletion hooks,
    /// SyncFail hooks).
    stepwise: bool,
}

/// Runs one sync of `app`. `status` is the app's status with the running operation; finished
/// hooks are written into it (and to the cluster) as they finish.
pub(crate) async fn run_sync(
    env: &SyncEnv<'_>,
    app: &Application,
    status: &mut ApplicationStatus,
    inputs: SyncInputs<'_>,
    request: &SyncRequest,
) -> SyncOutcome {
    let app_options: Vec<String> = app
        .spec
        .sync_options()
        .iter()
        .chain(&request.sync_options)
        .cloned()
        .collect();
    let mut run = SyncRun {
        env,
        app,
        status,
        inputs,
        request,
        app_options,
        results: Vec::new(),
        applied: Vec::new(),
        adopted: Vec::new(),
        stepwise: true,
    };
    let executed = run.execute().await;
    let (phase, message) = match executed {
        Ok(message) => (OperationPhase::Succeeded, message),
        Err(Halt::Waiting(message)) => (OperationPhase::Running, message),
        Err(Halt::Failed(message)) => {
            if !request.dry_run {
                run.stepwise = false;
                run.run_sync_fail_hooks().await;
            }
            (OperationPhase::Failed, message)
        }
    };
    if phase != OperationPhase::Running {
        env.wave_waits.forget(&run.run_id());
    }
    SyncOutcome {
        phase,
        message,
        results: merge_results(run.inputs.resumed, &run.results),
        applied: run.applied,
        adopted: run.adopted,
    }
}

/// The results of earlier steps of a sync with those of this one: a later result of the same
/// hook or object replaces the earlier one in its place, so the list stays in the order things
/// were first done.
fn merge_results(earlier: &[ResourceResult], later: &[ResourceResult]) -> Vec<ResourceResult> {
    let mut all: Vec<ResourceResult> = Vec::new();
    for r in earlier.iter().chain(later) {
        let same = |o: &ResourceResult| {
            (&o.hook_type, &o.group, &o.kind, &o.namespace, &o.name)
                == (&r.hook_type, &r.group, &r.kind, &r.namespace, &r.name)
        };
        match all.iter_mut().find(|o| same(o)) {
            Some(found) => *found = r.clone(),
            None => all.push(r.clone()),
        }
    }
    all
}

impl SyncRun<'_> {
    fn app_name(&self) -> &str {
        self.app.metadata.name.as_deref().unwrap_or_default()
    }

    /// The sync options of one object: the app's, then its own.
    fn options_for(&self, obj: &Value) -> SyncOptions {
        SyncOptions::merged(
            self.app_options.iter().map(String::as_str),
            resource_sync_option_entries(obj),
        )
    }

    fn apply_options(&self) -> ApplyOptions {
        ApplyOptions {
            dry_run: self.request.dry_run,
            ..ApplyOptions::new(self.env.field_manager)
        }
    }

    async fn execute(&mut self) -> Result<String, Halt> {
        crate::adoption::check_ownership(
            self.app_name(),
            self.inputs.compared,
            |obj| self.options_for(obj),
            self.env.fail_on_untracked_resource,
        )?;
        let cluster = self.inputs.cluster;
        let app_options = SyncOptions::parse(self.app_options.iter().map(String::as_str));
        if app_options.create_namespace && !self.request.dry_run {
            self.ensure_namespace(cluster).await?;
        }

        // The plan: resources in stages of one wave and kind rank each (core's `plan_stages`),
        // hooks by phase and wave. A malformed wave stops the sync before anything is applied.
        let mut planned = Vec::new();
        let mut by_key: BTreeMap<&ResourceKey, &DesiredObject> = BTreeMap::new();
        for d in self.inputs.compared.iter().map(|c| &c.desired) {
            let wave = sync_wave(&d.object).map_err(|e| format!("{}: {e}", d.origin))?;
            planned.push(PlannedObject {
                key: d.key.clone(),
                wave,
                phase: Phase::Sync,
            });
            by_key.insert(&d.key, d);
        }
        let stages = plan_stages(&planned);
        let mut hooks: BTreeMap<(Phase, i64), Vec<&DesiredObject>> = BTreeMap::new();
        for h in self.inputs.hooks {
            let wave = sync_wave(&h.object).map_err(|e| format!("{}: {e}", h.origin))?;
            for phase in h.hooks.iter().filter_map(|t| t.phase()) {
                hooks.entry((phase, wave)).or_default().push(h);
            }
        }
        let hook_waves = |phase: Phase| -> Vec<i64> {
            hooks
                .keys()
                .filter(|(p, _)| *p == phase)
                .map(|(_, w)| *w)
                .collect()
        };

        // PreSync hooks.
        for wave in hook_waves(Phase::PreSync) {
            self.run_hooks(Phase::PreSync, &hooks[&(Phase::PreSync, wave)])
                .await?;
        }

        // The Sync phase, wave by wave.
        let sync_waves: BTreeSet<i64> = stages
            .iter()
            .map(|s| s.wave)
            .chain(hook_waves(Phase::Sync))
            .collect();
        let last_wave = sync_waves.iter().next_back().copied();
        let has_post_sync = !hook_waves(Phase::PostSync).is_empty();
        for wave in &sync_waves {
            let mut in_wave = Vec::new();
            for stage in stages.iter().filter(|s| s.wave == *wave) {
                let objects: Vec<&DesiredObject> = stage
                    .objects
                    .iter()
                    .filter_map(|k| by_key.get(k).copied())
                    .collect();
                self.apply_stage(&objects).await?;
                in_wave.extend(objects);
            }
            if let Some(wave_hooks) = hooks.get(&(Phase::Sync, *wave)) {
                self.run_hooks(Phase::Sync, wave_hooks).await?;
            }
            let more_follows = Some(*wave) != last_wave || has_post_sync;
            if more_follows && !self.request.dry_run {
                self.wait_wave_healthy(*wave, &in_wave).await?;
            }
        }

        let prune_last = app_options.prune_last;
        if !prune_last {
            self.prune().await?;
        }
        // PostSync hooks run once everything is applied and healthy.
        for wave in hook_waves(Phase::PostSync) {
            self.run_hooks(Phase::PostSync, &hooks[&(Phase::PostSync, wave)])
                .await?;
        }
        if prune_last {
            self.prune().await?;
        }

        let count = |code: ResultCode| {
            self.results
                .iter()
                .filter(|r| r.status == Some(code))
                .count()
        };
        let hooks_run = self
            .results
            .iter()
            .filter(|r| r.hook_type.is_some())
            .count();
        Ok(if self.request.dry_run {
            format!(
                "dry run: {} objects would be applied, {} pruned",
                count(ResultCode::Synced),
                count(ResultCode::Pruned)
            )
        } else {
            format!(
                "successfully synced (applied {}, pruned {}, hooks {hooks_run})",
                count(ResultCode::Synced),
                count(ResultCode::Pruned)
            )
        })
    }

    /// `CreateNamespace=true`: the destination namespace, with `managedNamespaceMetadata`.
    async fn ensure_namespace(&self, cluster: &ClusterClient) -> Result<(), String> {
        let Some(ns) = self
            .app
            .spec
            .destination
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
        else {
            return Ok(());
        };
        let metadata = self
            .app
            .spec
            .sync_policy
            .as_ref()
            .and_then(|p| p.managed_namespace_metadata.clone());
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        let r = ObjectRef::of(&namespace).expect("a namespace reference");
        let exists = cluster.get(&r).await.map_err(|e| e.to_string())?.is_some();
        if exists && metadata.is_none() {
            return Ok(());
        }
        let mut desired = namespace;
        if let Some(m) = metadata {
            desired["metadata"]["labels"] = json!(m.labels);
            desired["metadata"]["annotations"] = json!(m.annotations);
        }
        // Its own field manager: the labels it sets are the app's, not those of anyone else.
        let opts = ApplyOptions::new(&format!("{}-namespace", self.env.field_manager));
        cluster
            .apply(&desired, &opts)
            .await
            .map_err(|e| format!("creating namespace {ns}: {e}"))?;
        if !exists {
            info!(
                app = self.app_name(),
                namespace = ns,
                "created the destination namespace"
            );
        }
        Ok(())
    }

    /// Applies one stage (one kind in one wave) in parallel.
    async fn apply_stage(&mut self, stage: &[&DesiredObject]) -> Result<(), String> {
        let cluster = self.inputs.cluster;
        let out_of_sync_only =
            SyncOptions::parse(self.app_options.iter().map(String::as_str)).apply_out_of_sync_only;
        let compared_by_key: HashMap<&ResourceKey, usize> = self
            .inputs
            .compared
            .iter()
            .enumerate()
            .map(|(i, c)| (&c.desired.key, i))
            .collect();
        // Indices (into `stage`, and into the comparisons): the applies below borrow nothing
        // per item, which keeps their future `Send` for any lifetime.
        let mut todo: Vec<(usize, Option<usize>)> = Vec::new();
        for (i, d) in stage.iter().enumerate() {
            // Applied by an earlier step of this sync: not again.
            if let Some(done) = self.applied_before(d) {
                self.results.push(done);
                continue;
            }
            let compared = compared_by_key.get(&d.key).copied();
            if out_of_sync_only && compared.is_some_and(|c| self.inputs.compared[c].in_sync) {
                continue;
            }
            todo.push((i, compared));
        }
        // Each object is prepared when its apply starts, so at most `concurrency` copies exist
        // at once (an App-of-Apps root applies a thousand children in one stage).
        let this = &*self;
        let applied: Vec<(ResourceResult, Option<AppliedObject>, bool)> =
            futures::stream::iter(todo)
                .map(|(i, compared)| async move {
                    let d = stage[i];
                    let compared = compared.map(|c| &this.inputs.compared[c]);
                    let adopts = compared.is_some_and(Compared::untracked);
                    let options = this.options_for(&d.object);
                    let mut object = d.object.clone();
                    if let Some(live) = compared.and_then(|c| c.live.as_ref()) {
                        crate::normalize::keep_rollouts_selector(&mut object, live);
                    }
                    if options.respect_ignore_differences
                        && let Some(live) = compared.and_then(|c| c.live.as_ref())
                    {
                        keep_ignored_fields(
                            &mut object,
                            live,
                            &crate::comparison::ignore_rules(this.app, &this.env.settings, &d.key)
                                .pointers,
                        );
                    }
                    // `Validate=false` needs a plain write too: server-side apply refuses unknown
                    // fields whatever it is told.
                    let replace = options.replace || !options.validate;
                    let opts = this.apply_options();
                    let applied = if replace {
                        cluster.create_or_replace(&object, true, &opts).await
                    } else {
                        cluster.apply(&object, &opts).await
                    };
                    drop(object);
                    match applied {
                        Ok(mut live) => {
                            let done = match (opts.dry_run, adopts) {
                                (true, false) => "would apply (dry run)",
                                (true, true) => {
                                    "would adopt (dry run): it exists with no tracking id"
                                }
                                (false, false) => "applied",
                                (false, true) => "adopted: it existed with no tracking id",
                            };
                            // The answer is kept as the live object; its managedFields (often the
                            // larger part of it) are not needed.
                            crate::compare::drop_managed_fields(&mut live);
                            let live = (!opts.dry_run).then(|| (d.key.clone(), live));
                            (
                                result_for(&d.key, d.api_version(), ResultCode::Synced, done),
                                live,
                                true,
                            )
                        }
                        Err(e) => {
                            let why = format!("{} ({}): {e}", d.key, d.origin);
                            (
                                result_for(&d.key, d.api_version(), ResultCode::SyncFailed, why),
                                None,
                                false,
                            )
                        }
                    }
                })
                .buffer_unordered(this.env.concurrency.max(1))
                .collect()
                .await;
        let failed: Vec<String> = applied
            .iter()
            .filter(|(_, _, ok)| !ok)
            .filter_map(|(r, _, _)| r.message.clone())
            .collect();
        let crds: Vec<String> = applied
            .iter()
            .filter(|(r, _, ok)| *ok && r.kind == "CustomResourceDefinition")
            .map(|(r, _, _)| r.name.clone())
            .collect();
        for (result, live, _) in applied {
            if let Some((key, _)) = &live
                && result
                    .message
                    .as_deref()
                    .is_some_and(|m| m.starts_with("adopted"))
                && let Some(d) = stage.iter().find(|d| &d.key == key)
            {
                self.adopted.push(crate::adoption::Adopted {
                    said: format!("{key} ({})", d.origin),
                    api_version: d.api_version().to_string(),
                    key: key.clone(),
                });
            }
            self.results.push(result);
            self.applied.extend(live);
        }
        if !failed.is_empty() {
            return Err(format!(
                "one or more objects failed to apply: {}",
                failed.join("; ")
            ));
        }
        if !crds.is_empty() && !self.request.dry_run {
            for crd in &crds {
                cluster
                    .wait_established(crd, Duration::from_secs(60))
                    .await
                    .map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }

    /// Deletes tracked leftovers, highest wave first (as Argo CD does).
    async fn prune(&mut self) -> Result<(), String> {
        let cluster = self.inputs.cluster;
        let waves: Vec<(ResourceKey, i64)> = self
            .inputs
            .prunable
            .iter()
            .map(|p| (p.key.clone(), sync_wave(&p.live).unwrap_or(0)))
            .collect();
        let ordered: Vec<&Prunable> = prune_order(&waves)
            .into_iter()
            .flatten()
            .filter_map(|k| self.inputs.prunable.iter().find(|p| p.key == k))
            .collect();
        for p in ordered {
            let (key, r, api_version) = (&p.key, &p.target, &p.target.api_version);
            let options = self.options_for(&p.live);
            // `Prune=confirm` waits for a person in Argo CD; ferry leaves such resources alone.
            let allowed = options.prune && !options.prune_confirm;
            if !self.request.prune || !allowed {
                let why = if allowed {
                    "ignored (requires pruning)"
                } else {
                    "pruning disabled for this resource (Prune=false or Prune=confirm)"
                };
                self.results
                    .push(result_for(key, api_version, ResultCode::PruneSkipped, why));
                continue;
            }
            if self.request.dry_run {
                self.results.push(result_for(
                    key,
                    api_version,
                    ResultCode::Pruned,
                    "would prune (dry run)",
                ));
                continue;
            }
            let propagation = match options.prune_propagation_policy {
                PropagationPolicy::Foreground => Propagation::Foreground,
                PropagationPolicy::Background => Propagation::Background,
                PropagationPolicy::Orphan => Propagation::Orphan,
            };
            match cluster.delete(r, propagation).await {
                Ok(_) => {
                    self.results
                        .push(result_for(key, api_version, ResultCode::Pruned, "pruned"))
                }
                Err(e) => {
                    warn!(app = self.app_name(), "pruning {r}: {e}");
                    self.results.push(result_for(
                        key,
                        api_version,
                        ResultCode::SyncFailed,
                        format!("pruning {r}: {e}"),
                    ));
                    return Err(format!("pruning {r} failed: {e}"));
                }
            }
        }
        Ok(())
    }

    /// An earlier step's result for this object, when it applied it.
    fn applied_before(&self, d: &DesiredObject) -> Option<ResourceResult> {
        self.inputs
            .resumed
            .iter()
            .find(|r| {
                r.hook_type.is_none()
                    && r.status == Some(ResultCode::Synced)
                    && ResourceKey::new(&r.group, &r.kind, &r.namespace, &r.name) == d.key
            })
            .cloned()
    }
}

/// `RespectIgnoreDifferences=true`: the live values of ignored fields replace the desired ones,
/// so a sync does not overwrite them.
fn keep_ignored_fields(object: &mut Value, live: &Value, pointers: &[String]) {
    for pointer in pointers {
        let Some(value) = live.pointer(pointer).cloned() else {
            continue;
        };
        let Some((parent, last)) = pointer.rsplit_once('/') else {
            continue;
        };
        let last = last.replace("~1", "/").replace("~0", "~");
        if let Some(Value::Object(map)) = object.pointer_mut(parent) {
            map.insert(last, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sync_operation_keeps_its_hook_names_and_the_next_one_gets_fresh_ones() {
        let key = ResourceKey::new("batch", "Job", "shop", "migrate-");
        let run = hook_run_id("web", "abc123", "2026-12-02T10:00:00Z");
        assert_eq!(run, hook_run_id("web", "abc123", "2026-12-02T10:00:00Z"));
        assert_eq!(run.len(), 16);
        let name = generated_hook_name("migrate-", &run, Phase::PreSync, &key);
        assert_eq!(
            name,
            generated_hook_name("migrate-", &run, Phase::PreSync, &key)
        );
        assert!(
            name.starts_with("migrate-") && name.len() == "migrate-".len() + 5,
            "{name}"
        );
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        );
        // Another operation (a later start, another revision, another app) or another phase.
        for other in [
            hook_run_id("web", "abc123", "2026-12-02T10:05:00Z"),
            hook_run_id("web", "def456", "2026-12-02T10:00:00Z"),
            hook_run_id("api", "abc123", "2026-12-02T10:00:00Z"),
        ] {
            assert_ne!(other, run);
            assert_ne!(
                generated_hook_name("migrate-", &other, Phase::PreSync, &key),
                name
            );
        }
        assert_ne!(
            generated_hook_name("migrate-", &run, Phase::PostSync, &key),
            name
        );
    }

    #[test]
    fn ignored_fields_keep_their_live_values() {
        let mut desired = json!({"spec": {"replicas": 2, "template": {"x": 1}}});
        let live = json!({"spec": {"replicas": 7, "template": {"x": 1}}});
        keep_ignored_fields(
            &mut desired,
            &live,
            &["/spec/replicas".into(), "/spec/absent".into()],
        );
        assert_eq!(
            desired,
            json!({"spec": {"replicas": 7, "template": {"x": 1}}})
        );
    }
}
