//! Hooks within a sync: each run once per sync operation (marked with the operation's run id,
//! see [`super::HOOK_RUN_ANNOTATION`]), looked at once per sync step, recorded as they start and
//! finish, and deleted as their policies say.

use ferry_cluster::{ObjectRef, Propagation};
use ferry_core::application::{OperationPhase, ResourceResult, ResultCode};
use ferry_core::order::{HookDeletePolicy, Phase, hook_delete_policies, kind_rank, sync_wave};
use serde_json::{Value, json};
use tracing::{info, warn};

use super::wait::{HookState, delete_and_wait, hook_state, wait_hook};
use super::{
    HOOK_RUN_ANNOTATION, Halt, SyncRun, generated_hook_name, hook_run_id, merge_results, result_for,
};
use crate::desired::DesiredObject;

impl SyncRun<'_> {
    /// Whether an earlier step of this operation started the hook `hook_ref` of `phase` (and saw
    /// it running).
    fn started_before(&self, phase: Phase, hook_ref: &ObjectRef) -> bool {
        self.inputs.resumed.iter().any(|r| {
            r.hook_type.as_deref() == Some(phase.as_str())
                && r.hook_phase == Some(OperationPhase::Running)
                && r.kind == hook_ref.kind
                && r.namespace == hook_ref.namespace
                && r.name == hook_ref.name
        })
    }

    /// Runs the hooks of one phase and wave, in kind order, one at a time.
    pub(super) async fn run_hooks(
        &mut self,
        phase: Phase,
        hooks: &[&DesiredObject],
    ) -> Result<(), Halt> {
        let mut ordered = hooks.to_vec();
        ordered.sort_by_key(|h| (kind_rank(&h.key.group, &h.key.kind), h.key.name.clone()));
        for hook in ordered {
            self.run_hook(phase, hook).await?;
        }
        Ok(())
    }

    /// A previous, interrupted run's result for this hook, when it succeeded there.
    fn succeeded_before(&self, phase: Phase, hook: &DesiredObject) -> Option<ResourceResult> {
        self.inputs
            .resumed
            .iter()
            .find(|r| {
                r.hook_type.as_deref() == Some(phase.as_str())
                    && r.hook_phase == Some(OperationPhase::Succeeded)
                    && r.kind == hook.key.kind
                    && r.namespace == hook.key.namespace
                    && if hook.generate_name {
                        r.name.starts_with(&hook.key.name)
                    } else {
                        r.name == hook.key.name
                    }
            })
            .cloned()
    }

    async fn run_hook(&mut self, phase: Phase, hook: &DesiredObject) -> Result<(), Halt> {
        let cluster = self.inputs.cluster;
        let mut result = ResourceResult {
            hook_type: Some(phase.as_str().into()),
            sync_phase: Some(phase.as_str().into()),
            ..result_for(&hook.key, hook.api_version(), ResultCode::Synced, "")
        };
        if let Some(done) = self.succeeded_before(phase, hook) {
            info!(app = self.app_name(), hook = %hook.key, "hook already succeeded before a restart; not run again");
            self.results.push(done);
            return Ok(());
        }
        if self.request.dry_run {
            result.message = Some("would run (dry run)".into());
            self.results.push(result);
            return Ok(());
        }
        let policies = hook_delete_policies(&hook.object);
        let opts = self.apply_options();
        let object = self.hook_for_this_run(phase, hook);
        let hook_ref = ObjectRef::of(&object).map_err(|e| e.to_string())?;
        result.name = hook_ref.name.clone();
        let live = match cluster.get(&hook_ref).await {
            Ok(live) => live,
            // A failed read (the API server restarting) is no verdict on the hook: failing here
            // would fail the sync, and its retry would run the hook a second time.
            // (No result is recorded: whether it was started is not known from here; an
            // earlier step's record of it stays.)
            Err(e) if self.stepwise => {
                return Err(Halt::Waiting(format!(
                    "waiting for {phase:?} hook {hook_ref} (reading it failed: {e})"
                )));
            }
            Err(e) => return Err(Halt::Failed(e.to_string())),
        };
        if live.is_none() && self.started_before(phase, &hook_ref) {
            // Started earlier in this operation and gone before it was seen to finish (deleted,
            // or a Job's TTL): never created a second time.
            let why = format!("{hook_ref} disappeared before it finished");
            result.hook_phase = Some(OperationPhase::Failed);
            result.status = Some(ResultCode::SyncFailed);
            result.message = Some(why.clone());
            self.persist(&result).await;
            self.results.push(result);
            return Err(Halt::Failed(format!(
                "{phase:?} hook {hook_ref} failed: {why}"
            )));
        }
        let run_id = object["metadata"]["annotations"][HOOK_RUN_ANNOTATION].as_str();
        let started_by_this_run = live.as_ref().is_some_and(|l| {
            l.pointer("/metadata/annotations")
                .and_then(|a| a.get(HOOK_RUN_ANNOTATION))
                .and_then(Value::as_str)
                == run_id
        });
        if started_by_this_run {
            // An earlier step (or a ferry that stopped) started this hook: wait for that run.
            tracing::debug!(app = self.app_name(), hook = %hook_ref, "hook started earlier in this sync; not run again");
        } else {
            if live.is_some() {
                // A named hook's earlier run goes before the new one (BeforeHookCreation, and
                // the only way to run a finished Job again).
                delete_and_wait(cluster, &hook_ref).await?;
            }
            cluster
                .create_or_replace(&object, false, &opts)
                .await
                .map_err(|e| format!("{phase:?} hook {} ({}): {e}", hook.key, hook.origin))?;
        }

        result.hook_phase = Some(OperationPhase::Running);
        if !started_by_this_run || !self.stepwise {
            // Recorded before anything waits: a restart must find the hook started.
            self.persist(&result).await;
        }

        let outcome = if self.stepwise {
            match hook_state(cluster, &hook_ref).await {
                HookState::Running(what) => {
                    result.message = Some(format!("{phase:?} hook running"));
                    self.results.push(result);
                    return Err(Halt::Waiting(format!(
                        "waiting for {phase:?} hook {hook_ref}{what}"
                    )));
                }
                HookState::Succeeded => Ok(()),
                HookState::Failed(why) => Err(why),
            }
        } else {
            wait_hook(cluster, &hook_ref).await
        };
        let succeeded = outcome.is_ok();
        // The result is recorded before the hook may be deleted: a restart in between must find
        // it done, not gone.
        let returned = match outcome {
            Ok(()) => {
                result.hook_phase = Some(OperationPhase::Succeeded);
                result.message = Some(format!("{phase:?} hook succeeded"));
                Ok(())
            }
            Err(why) => {
                result.hook_phase = Some(OperationPhase::Failed);
                result.status = Some(ResultCode::SyncFailed);
                result.message = Some(why.clone());
                Err(Halt::Failed(format!(
                    "{phase:?} hook {hook_ref} failed: {why}"
                )))
            }
        };
        self.persist(&result).await;
        self.results.push(result);
        let delete = (succeeded && policies.contains(&HookDeletePolicy::HookSucceeded))
            || (!succeeded && policies.contains(&HookDeletePolicy::HookFailed));
        if delete && let Err(e) = cluster.delete(&hook_ref, Propagation::Background).await {
            warn!(app = self.app_name(), "deleting hook {hook_ref}: {e}");
        }
        returned
    }

    /// The hook as this sync operation creates it: marked with the operation's run id and, for
    /// a `generateName` hook, with the name this operation gives it.
    fn hook_for_this_run(&self, phase: Phase, hook: &DesiredObject) -> Value {
        let run_id = self.run_id();
        let mut object = hook.object.clone();
        let meta = object["metadata"]
            .as_object_mut()
            .expect("a desired object has metadata");
        if hook.generate_name {
            let prefix = meta
                .remove("generateName")
                .and_then(|g| g.as_str().map(str::to_string))
                .unwrap_or_default();
            meta.insert(
                "name".into(),
                generated_hook_name(&prefix, &run_id, phase, &hook.key).into(),
            );
        }
        let annotations = meta.entry("annotations").or_insert_with(|| json!({}));
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations[HOOK_RUN_ANNOTATION] = run_id.into();
        object
    }

    /// The identity of this sync operation (see [`hook_run_id`]).
    pub(super) fn run_id(&self) -> String {
        let op = self.status.operation_state.as_ref();
        let revision = op
            .and_then(|o| o.sync_result.as_ref())
            .map_or(self.request.revision.as_str(), |r| r.revision.as_str());
        let started_at = op.and_then(|o| o.started_at.as_deref()).unwrap_or_default();
        hook_run_id(self.app_name(), revision, started_at)
    }

    /// SyncFail hooks, after a failure; their own failures are only logged.
    pub(super) async fn run_sync_fail_hooks(&mut self) {
        let mut fail_hooks: Vec<&DesiredObject> = self
            .inputs
            .hooks
            .iter()
            .filter(|h| h.hooks.iter().any(|t| t.phase() == Some(Phase::SyncFail)))
            .collect();
        fail_hooks.sort_by_key(|h| sync_wave(&h.object).unwrap_or(0));
        for hook in fail_hooks {
            if let Err(e) = self.run_hook(Phase::SyncFail, hook).await {
                warn!(app = self.app_name(), "{}", e.message());
            }
        }
    }

    /// Writes the results so far (with this one) into the running operation's status.
    pub(super) async fn persist(&mut self, latest: &ResourceResult) {
        let Some(op) = self.status.operation_state.as_mut() else {
            return;
        };
        let sync_result = op.sync_result.get_or_insert_with(Default::default);
        // A later result of the same hook or object replaces the earlier one (a hook that
        // succeeded before a restart is listed once).
        let mut so_far = self.results.clone();
        so_far.push(latest.clone());
        sync_result.resources = merge_results(self.inputs.resumed, &so_far);
        self.env.progress.record(self.status).await;
    }
}
