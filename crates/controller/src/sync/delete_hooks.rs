//! PreDelete and PostDelete hooks, run as the sync runs its hooks (wave by wave, in kind order,
//! each recorded in the Application's `operationState` as it finishes, so a restart does not
//! run a hook that already succeeded).

use std::collections::BTreeMap;

use ferry_cluster::ClusterClient;
use ferry_core::application::{Application, ApplicationStatus, ResourceResult};
use ferry_core::order::{Phase, sync_wave};

use super::{SyncInputs, SyncRequest, SyncRun};
use crate::desired::DesiredObject;

/// The results of deletion hooks recorded in `status` (by an earlier, interrupted or failed,
/// step of the same deletion).
pub(crate) fn recorded_deletion_hooks(status: &ApplicationStatus) -> Vec<ResourceResult> {
    status
        .operation_state
        .iter()
        .filter_map(|o| o.sync_result.as_ref())
        .flat_map(|r| &r.resources)
        .filter(|r| {
            matches!(
                r.hook_type.as_deref(),
                Some(t) if t == Phase::PreDelete.as_str() || t == Phase::PostDelete.as_str()
            )
        })
        .cloned()
        .collect()
}

/// Runs the hooks of `phase` (`PreDelete` or `PostDelete`) among `hooks`, lowest wave first;
/// hooks that succeeded earlier in this deletion are not run again. `status` must hold the
/// deletion's operation state: each hook's result is written there as it finishes. Returns the
/// first failure.
pub(crate) async fn run_deletion_hooks(
    env: &super::SyncEnv<'_>,
    app: &Application,
    status: &mut ApplicationStatus,
    cluster: &ClusterClient,
    hooks: &[DesiredObject],
    phase: Phase,
) -> Result<(), String> {
    let mut waves: BTreeMap<i64, Vec<&DesiredObject>> = BTreeMap::new();
    for h in hooks
        .iter()
        .filter(|h| h.hooks.iter().any(|t| t.deletion_phase() == Some(phase)))
    {
        let wave = sync_wave(&h.object).map_err(|e| format!("{}: {e}", h.origin))?;
        waves.entry(wave).or_default().push(h);
    }
    if waves.is_empty() {
        return Ok(());
    }
    let resumed = recorded_deletion_hooks(status);
    let request = SyncRequest {
        revision: String::new(),
        prune: false,
        dry_run: false,
        automated: true,
        sync_options: Vec::new(),
        retry_count: 0,
        self_heal_attempts: 0,
    };
    let mut run = SyncRun {
        env,
        app,
        status,
        inputs: SyncInputs {
            cluster,
            hooks,
            compared: &[],
            prunable: &[],
            resumed: &resumed,
        },
        request: &request,
        app_options: app.spec.sync_options().to_vec(),
        results: Vec::new(),
        applied: Vec::new(),
        adopted: Vec::new(),
        // An app being deleted has no sync to go on with: its hooks are waited for.
        stepwise: false,
    };
    for in_wave in waves.values() {
        run.run_hooks(phase, in_wave)
            .await
            .map_err(super::Halt::message)?;
    }
    Ok(())
}
