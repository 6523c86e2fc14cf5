//! Progressive syncs (`strategy.type: RollingSync`): the generated Applications are grouped into
//! steps by their labels (the first step whose `matchExpressions` all match); a step's apps are
//! synced, at most `maxUpdate` at a time, and the next step starts only when every app of the
//! earlier steps is Synced and Healthy. Apps outside every step are left alone.
//!
//! [`advance_rollout`] is the pure decision of one pass: each app's rollout status
//! (`Waiting`, `Pending`, `Progressing`, `Healthy`, as Argo CD writes them in
//! `status.applicationStatus`) and which apps to sync now.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::types::{ApplicationSetApplicationStatus, RollingSyncStep};

/// The step (0-based) whose `matchExpressions` match `labels` first; a step without
/// expressions matches no app.
pub fn step_of(steps: &[RollingSyncStep], labels: &BTreeMap<String, String>) -> Option<usize> {
    steps.iter().position(|s| {
        !s.match_expressions.is_empty()
            && crate::selector::expressions_match(&s.match_expressions, labels).unwrap_or(false)
    })
}

/// How many of a step's `size` apps may sync at once: `maxUpdate` as a number, or a percentage
/// of the step (rounded down, at least one); unset: all of them.
pub fn max_update(value: Option<&Value>, size: usize) -> Result<usize, String> {
    let n = match value {
        None | Some(Value::Null) => return Ok(size.max(1)),
        Some(Value::Number(n)) => n
            .as_u64()
            .ok_or_else(|| format!("maxUpdate {n} must be a whole number"))?
            as usize,
        Some(Value::String(s)) => {
            if let Some(p) = s.trim().strip_suffix('%') {
                let p: usize = p
                    .trim()
                    .parse()
                    .map_err(|_| format!("maxUpdate {s:?} is not a percentage like 25%"))?;
                (size * p.min(100)) / 100
            } else {
                s.trim()
                    .parse()
                    .map_err(|_| format!("maxUpdate {s:?} is neither a number nor a percentage"))?
            }
        }
        Some(other) => {
            return Err(format!(
                "maxUpdate {other} is neither a number nor a percentage"
            ));
        }
    };
    Ok(n.max(1))
}

/// What the rollout needs to know of one generated Application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppState {
    /// Its name.
    pub name: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// `status.sync.status == Synced`.
    pub synced: bool,
    /// `status.health.status == Healthy`.
    pub healthy: bool,
    /// A sync was asked for and not yet picked up (`.operation` is set).
    pub operation_requested: bool,
    /// `status.operationState.phase`.
    pub operation_phase: Option<String>,
    /// `status.operationState.message`.
    pub operation_message: String,
}

impl AppState {
    /// The state of an Application (JSON).
    pub fn of(app: &Value) -> AppState {
        AppState {
            name: app["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            labels: crate::plan::labels_of(app.pointer("/metadata/labels")),
            synced: app.pointer("/status/sync/status") == Some(&Value::from("Synced")),
            healthy: app.pointer("/status/health/status") == Some(&Value::from("Healthy")),
            operation_requested: app.get("operation").is_some_and(|o| !o.is_null()),
            operation_phase: app
                .pointer("/status/operationState/phase")
                .and_then(Value::as_str)
                .map(String::from),
            operation_message: app
                .pointer("/status/operationState/message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
        }
    }
}

/// The outcome of one pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutDecision {
    /// Every app in a step, with its rollout status.
    pub statuses: Vec<ApplicationSetApplicationStatus>,
    /// Apps to sync now.
    pub to_sync: Vec<String>,
    /// Whether some app of some step is not Healthy yet.
    pub progressing: bool,
    /// The step under way (1-based), when progressing.
    pub current_step: Option<usize>,
}

/// Rollout statuses.
pub mod rollout_status {
    /// Its step has not reached it yet (or it changed and waits for its turn).
    pub const WAITING: &str = "Waiting";
    /// A sync was asked for.
    pub const PENDING: &str = "Pending";
    /// Its sync runs (or failed: the rollout stops there).
    pub const PROGRESSING: &str = "Progressing";
    /// Synced and Healthy.
    pub const HEALTHY: &str = "Healthy";
}

/// Works out the rollout: `apps` are the generated Applications as they are now, `previous`
/// the statuses of the last pass, `changed` the apps this pass created or updated.
pub fn advance_rollout(
    steps: &[RollingSyncStep],
    apps: &[AppState],
    previous: &[ApplicationSetApplicationStatus],
    changed: &BTreeSet<String>,
    now: &str,
) -> Result<RolloutDecision, String> {
    use rollout_status::*;
    let before: BTreeMap<&str, &ApplicationSetApplicationStatus> = previous
        .iter()
        .map(|s| (s.application.as_str(), s))
        .collect();
    // (step, app, status, message)
    let mut rows: Vec<(usize, &AppState, &'static str, String)> = Vec::new();
    for app in apps {
        let Some(step) = step_of(steps, &app.labels) else {
            continue;
        };
        let prev = before.get(app.name.as_str()).map(|s| s.status.as_str());
        let done = app.synced && app.healthy;
        let (status, message) = if changed.contains(&app.name) {
            (
                WAITING,
                "changed by the ApplicationSet, waiting for its step".to_string(),
            )
        } else {
            match prev {
                Some(PENDING) if app.operation_requested => (PENDING, "sync requested".into()),
                Some(PENDING | PROGRESSING) => match app.operation_phase.as_deref() {
                    Some("Succeeded") if done => (HEALTHY, "synced and healthy".into()),
                    Some("Failed" | "Error") => (
                        PROGRESSING,
                        format!(
                            "the sync failed, the rollout stops here until it is fixed: {}",
                            app.operation_message
                        ),
                    ),
                    _ => (
                        PROGRESSING,
                        "syncing, waiting until Synced and Healthy".into(),
                    ),
                },
                Some(HEALTHY) if app.synced => (HEALTHY, "synced and healthy".into()),
                _ if done => (HEALTHY, "synced and healthy".into()),
                _ => (WAITING, "out of sync, waiting for its step".into()),
            }
        };
        rows.push((step, app, status, message));
    }
    let current = rows.iter().filter(|r| r.2 != HEALTHY).map(|r| r.0).min();
    let mut to_sync = Vec::new();
    if let Some(cur) = current {
        let in_step: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].0 == cur).collect();
        let limit = max_update(steps[cur].max_update.as_ref(), in_step.len())
            .map_err(|m| format!("strategy.rollingSync.steps[{cur}]: {m}"))?;
        let in_flight = in_step
            .iter()
            .filter(|&&i| matches!(rows[i].2, PENDING | PROGRESSING))
            .count();
        let mut waiting: Vec<usize> = in_step
            .iter()
            .copied()
            .filter(|&i| rows[i].2 == WAITING)
            .collect();
        waiting.sort_by(|a, b| rows[*a].1.name.cmp(&rows[*b].1.name));
        for i in waiting.into_iter().take(limit.saturating_sub(in_flight)) {
            rows[i].2 = PENDING;
            rows[i].3 = "sync requested by the rollout".into();
            to_sync.push(rows[i].1.name.clone());
        }
    }
    let statuses = rows
        .iter()
        .map(|(step, app, status, message)| {
            let prev = before.get(app.name.as_str());
            let unchanged = prev.is_some_and(|p| p.status == *status);
            let message = match current {
                Some(cur) if *step > cur && *status == WAITING => {
                    format!("waiting for step {} to finish", cur + 1)
                }
                _ => message.clone(),
            };
            ApplicationSetApplicationStatus {
                application: app.name.clone(),
                status: (*status).to_string(),
                message,
                step: (step + 1).to_string(),
                last_transition_time: if unchanged {
                    prev.and_then(|p| p.last_transition_time.clone())
                } else {
                    Some(now.to_string())
                },
            }
        })
        .collect();
    Ok(RolloutDecision {
        statuses,
        to_sync,
        progressing: current.is_some(),
        current_step: current.map(|c| c + 1),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn steps() -> Vec<RollingSyncStep> {
        serde_json::from_value(json!([
            {"matchExpressions": [{"key": "env", "operator": "In", "values": ["dev"]}]},
            {"matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}], "maxUpdate": 1}
        ]))
        .unwrap()
    }

    fn app(name: &str, env: &str, synced: bool, healthy: bool) -> AppState {
        AppState {
            name: name.into(),
            labels: [("env".to_string(), env.to_string())].into(),
            synced,
            healthy,
            ..Default::default()
        }
    }

    #[test]
    fn max_update_reads_numbers_and_percentages() {
        assert_eq!(max_update(None, 4), Ok(4));
        assert_eq!(max_update(Some(&json!(2)), 4), Ok(2));
        assert_eq!(max_update(Some(&json!("50%")), 4), Ok(2));
        assert_eq!(max_update(Some(&json!("10%")), 4), Ok(1), "at least one");
        assert_eq!(max_update(Some(&json!("3")), 4), Ok(3));
        assert!(max_update(Some(&json!("x%")), 4).is_err());
    }

    #[test]
    fn steps_go_in_order_and_wait_for_health() {
        let s = steps();
        let apps = vec![
            app("dev-a", "dev", false, false),
            app("prod-a", "prod", false, false),
            app("prod-b", "prod", false, false),
            app("other", "qa", false, false),
        ];
        let d = advance_rollout(&s, &apps, &[], &BTreeSet::new(), "t0").unwrap();
        assert_eq!(d.to_sync, ["dev-a"], "step 1 first");
        assert_eq!(d.current_step, Some(1));
        assert!(
            d.statuses.iter().all(|s| s.application != "other"),
            "outside every step"
        );
        let prod = d
            .statuses
            .iter()
            .find(|s| s.application == "prod-a")
            .unwrap();
        assert_eq!(prod.status, "Waiting");
        assert_eq!(prod.message, "waiting for step 1 to finish");

        // dev-a picked up and syncing: nothing new.
        let mut apps2 = apps.clone();
        apps2[0].operation_phase = Some("Running".into());
        let d2 = advance_rollout(&s, &apps2, &d.statuses, &BTreeSet::new(), "t1").unwrap();
        assert!(d2.to_sync.is_empty());
        assert_eq!(d2.statuses[0].status, "Progressing");

        // dev-a done: step 2, one at a time.
        let mut apps3 = apps2.clone();
        apps3[0] = AppState {
            operation_phase: Some("Succeeded".into()),
            ..app("dev-a", "dev", true, true)
        };
        let d3 = advance_rollout(&s, &apps3, &d2.statuses, &BTreeSet::new(), "t2").unwrap();
        assert_eq!(d3.to_sync, ["prod-a"]);
        assert_eq!(d3.current_step, Some(2));
        let d4 = advance_rollout(&s, &apps3, &d3.statuses, &BTreeSet::new(), "t3").unwrap();
        assert!(
            d4.to_sync.is_empty(),
            "maxUpdate 1: prod-b waits for prod-a"
        );
    }

    #[test]
    fn a_failed_sync_stops_the_rollout() {
        let s = steps();
        let mut a = app("dev-a", "dev", false, false);
        a.operation_phase = Some("Failed".into());
        a.operation_message = "boom".into();
        let prev = vec![ApplicationSetApplicationStatus {
            application: "dev-a".into(),
            status: "Progressing".into(),
            ..Default::default()
        }];
        let apps = vec![a, app("prod-a", "prod", false, false)];
        let d = advance_rollout(&s, &apps, &prev, &BTreeSet::new(), "t").unwrap();
        assert!(d.to_sync.is_empty());
        assert!(d.statuses[0].message.contains("boom"));
    }

    #[test]
    fn a_changed_app_waits_again_and_done_apps_complete_the_rollout() {
        let s = steps();
        let apps = vec![
            app("dev-a", "dev", true, true),
            app("prod-a", "prod", true, true),
        ];
        let d = advance_rollout(&s, &apps, &[], &BTreeSet::new(), "t").unwrap();
        assert!(!d.progressing);
        let changed: BTreeSet<String> = ["prod-a".to_string()].into();
        let d = advance_rollout(&s, &apps, &d.statuses, &changed, "t").unwrap();
        assert_eq!(d.current_step, Some(2));
        assert_eq!(d.to_sync, ["prod-a"]);
    }
}
