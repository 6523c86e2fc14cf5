//! Waiting within a sync: for a wave to become healthy (naming what it waits for, a child
//! Application with its own state), for a hook to finish, for an old hook to be gone. A sync
//! step looks once and stops ([`Halt::Waiting`]) where it would wait; deletion and SyncFail
//! hooks are waited for.

use std::time::Duration;

use ferry_cluster::{ClusterClient, ObjectRef, Propagation};
use ferry_core::application::HealthStatusCode;
use ferry_core::health::{Health, assess_health};
use tracing::warn;

use super::{HOOK_TIMEOUT, Halt, SyncRun, WAVE_HEALTH_TIMEOUT};
use crate::app_of_apps::describe;
use crate::desired::DesiredObject;

impl SyncRun<'_> {
    /// Waits until every object of a wave is healthy (the app itself excepted: it would wait for
    /// itself). What it waits for is written to the operation's message as it changes, so
    /// `kubectl get application` shows which child blocks; a Degraded object fails the wave.
    pub(super) async fn wait_wave_healthy(
        &mut self,
        wave: i64,
        objects: &[&DesiredObject],
    ) -> Result<(), Halt> {
        let cluster = self.inputs.cluster;
        let failed = |m: String| Halt::Failed(format!("wave {wave}: {m}"));
        // A sync step's wait began at its first look at this wave (after a restart of ferry,
        // at the first look since).
        let deadline = if self.stepwise {
            let since = self.env.wave_waits.since(&self.run_id(), wave);
            tokio::time::Instant::from_std(since + WAVE_HEALTH_TIMEOUT)
        } else {
            tokio::time::Instant::now() + WAVE_HEALTH_TIMEOUT
        };
        let mut delay = Duration::from_millis(100);
        let mut said = String::new();
        let settings = self.env.settings.clone();
        loop {
            let mut waiting = None;
            for d in objects {
                if self.env.view.is_self(&d.key) {
                    continue;
                }
                let r = ObjectRef::of(&d.object).map_err(|e| failed(e.to_string()))?;
                let live = match cluster.get(&r).await {
                    Ok(live) => live,
                    // A failed read (the API server restarting) is no verdict on the wave.
                    Err(e) if self.stepwise => {
                        waiting = Some(format!("{} (reading it failed: {e})", d.key));
                        continue;
                    }
                    Err(e) => return Err(failed(e.to_string())),
                };
                let Some(live) = live else {
                    waiting = Some(format!("{} (Missing)", d.key));
                    continue;
                };
                // A child Application as the parent's child-health setting says; anything else
                // by the built-in rules or argocd-cm's Lua checks, which gate waves as in Argo CD.
                let health = if self.env.view.is_self(&d.key) {
                    Health::bare(HealthStatusCode::Healthy)
                } else if d.key.group == "argoproj.io" && d.key.kind == "Application" {
                    self.env
                        .view
                        .health(&d.key, &live)
                        .unwrap_or_else(|| Health::bare(HealthStatusCode::Healthy))
                } else {
                    crate::settings::resource_health(&settings, &live, &d.key, &mut Vec::new())
                };
                match health.status {
                    HealthStatusCode::Degraded => {
                        return Err(failed(format!(
                            "Degraded: {}",
                            describe(&d.key, &live, &health)
                        )));
                    }
                    HealthStatusCode::Healthy | HealthStatusCode::Suspended => {}
                    _ => waiting = Some(describe(&d.key, &live, &health)),
                }
            }
            let Some(what) = waiting else { return Ok(()) };
            if tokio::time::Instant::now() >= deadline {
                return Err(failed(format!(
                    "not healthy within {}s: waiting for {what}",
                    WAVE_HEALTH_TIMEOUT.as_secs()
                )));
            }
            let now_said = format!("wave {wave}: waiting for {what}");
            if self.stepwise {
                return Err(Halt::Waiting(now_said));
            }
            if now_said != said {
                self.report_progress(&now_said).await;
                said = now_said;
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// Writes `message` as the running operation's message.
    async fn report_progress(&mut self, message: &str) {
        let Some(op) = self.status.operation_state.as_mut() else {
            return;
        };
        op.message = Some(message.to_string());
        self.env.progress.record(self.status).await;
    }
}

pub(super) async fn delete_and_wait(cluster: &ClusterClient, r: &ObjectRef) -> Result<(), String> {
    if !cluster
        .delete(r, Propagation::Background)
        .await
        .map_err(|e| e.to_string())?
    {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while cluster.get(r).await.map_err(|e| e.to_string())?.is_some() {
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "{r} from an earlier run was not deleted within 120s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// Waits for a hook to finish: Healthy (a Job complete, a Pod succeeded, anything else present)
/// is success, Degraded is failure. A failed read (the API server restarting) is no verdict on
/// the hook: it is read again until the deadline. Failing the hook there would run its delete
/// policy and, on the retry, run it a second time.
pub(super) async fn wait_hook(cluster: &ClusterClient, r: &ObjectRef) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + HOOK_TIMEOUT;
    let mut delay = Duration::from_millis(100);
    loop {
        let live = match cluster.get(r).await {
            Ok(live) => live,
            Err(e) if tokio::time::Instant::now() < deadline => {
                warn!(hook = %r, "reading the hook failed, reading again: {e}");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
                continue;
            }
            Err(e) => return Err(e.to_string()),
        };
        let Some(live) = live else {
            return Err(format!("{r} disappeared before it finished"));
        };
        if let Some(h) = assess_health(&live) {
            match h.status {
                HealthStatusCode::Healthy => return Ok(()),
                HealthStatusCode::Degraded => {
                    return Err(h.message.unwrap_or_else(|| "it failed".into()));
                }
                _ => {}
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("did not finish within {}s", HOOK_TIMEOUT.as_secs()));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// What a look at a running hook found.
pub(super) enum HookState {
    /// Still running (with what to add to "waiting for …", e.g. a failed read).
    Running(String),
    /// Finished well.
    Succeeded,
    /// Failed, or ran longer than it may.
    Failed(String),
}

/// One look at a hook: Healthy (a Job complete, a Pod succeeded, anything else present) is
/// success, Degraded is failure. It may run [`HOOK_TIMEOUT`] from its creation (kept by the
/// cluster, so a restart of ferry does not reset it). A failed read is no verdict on the hook.
pub(super) async fn hook_state(cluster: &ClusterClient, r: &ObjectRef) -> HookState {
    let live = match cluster.get(r).await {
        Ok(live) => live,
        Err(e) => {
            warn!(hook = %r, "reading the hook failed, looking again later: {e}");
            return HookState::Running(format!(" (reading it failed: {e})"));
        }
    };
    let Some(live) = live else {
        return HookState::Failed(format!("{r} disappeared before it finished"));
    };
    if let Some(h) = assess_health(&live) {
        match h.status {
            HealthStatusCode::Healthy => return HookState::Succeeded,
            HealthStatusCode::Degraded => {
                return HookState::Failed(h.message.unwrap_or_else(|| "it failed".into()));
            }
            _ => {}
        }
    }
    let ran_for = live
        .pointer("/metadata/creationTimestamp")
        .and_then(serde_json::Value::as_str)
        .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| {
            k8s_openapi::jiff::Timestamp::now()
                .duration_since(t)
                .unsigned_abs()
        });
    if ran_for.is_some_and(|d| d >= HOOK_TIMEOUT) {
        return HookState::Failed(format!("did not finish within {}s", HOOK_TIMEOUT.as_secs()));
    }
    HookState::Running(String::new())
}
