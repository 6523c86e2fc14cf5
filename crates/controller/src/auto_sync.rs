//! Whether an automated sync is due, as Argo CD decides it.

use std::time::Duration;

use ferry_core::application::{Application, ApplicationStatus, OperationPhase, SyncStatusCode};

use crate::compare::{Compared, Prunable};
use crate::sync::SyncRequest;

/// What a sync would have to do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PendingWork {
    /// Some desired object differs from live.
    apply: bool,
    /// Some tracked leftover may be pruned (it does not say `Prune=false`).
    prune: bool,
}

impl PendingWork {
    pub(crate) fn of(compared: &[Compared], prunable: &[Prunable]) -> Self {
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
pub(crate) enum AutoSync {
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
pub(crate) fn auto_sync_request(
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
