//! Sync windows in the reconcile: may the sync about to run start now, and the conditions that
//! say why not (see [`ferry_core::sync_window`] for the rules).

use ferry_core::application::{Application, ApplicationStatus};
use ferry_core::project::AppProject;
use ferry_core::sync_window::evaluate_for_app;

use crate::conditions::{clear_conditions, condition, set_condition};
use crate::sync::SyncRequest;

/// Checks `request` against the sync windows of `project`; returns why it may not run now, if
/// so. Sets `SyncWindowError` while a window that applies to the app does not parse (naming the
/// app, the project and the window), and `SyncWindowBlocked` while a wanted sync waits for a
/// window. Dry runs change nothing and are never held back.
pub(crate) fn gate_sync(
    status: &mut ApplicationStatus,
    app: &Application,
    project: Option<&AppProject>,
    request: Option<&SyncRequest>,
) -> Option<String> {
    let manual = request.is_some_and(|r| !r.automated);
    let Some(verdict) =
        project.map(|p| evaluate_for_app(app, p, k8s_openapi::jiff::Timestamp::now(), manual))
    else {
        clear_conditions(
            status,
            &[condition::SYNC_WINDOW_ERROR, condition::SYNC_WINDOW_BLOCKED],
        );
        return None;
    };
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let project_name = project
        .and_then(|p| p.metadata.name.as_deref())
        .unwrap_or_default();
    let errors = verdict.errors();
    if errors.is_empty() {
        clear_conditions(status, &[condition::SYNC_WINDOW_ERROR]);
    } else {
        set_condition(
            status,
            condition::SYNC_WINDOW_ERROR,
            &format!(
                "Application {name}: AppProject {project_name} has sync windows that cannot be evaluated, and they hold back this app's syncs: {}; fix them in the project",
                errors.join("; ")
            ),
        );
    }
    let blocked = request
        .filter(|r| !r.dry_run)
        .and_then(|_| verdict.reason.clone())
        .filter(|_| !verdict.allowed);
    match &blocked {
        Some(reason) if errors.is_empty() => {
            set_condition(status, condition::SYNC_WINDOW_BLOCKED, reason);
        }
        _ => clear_conditions(status, &[condition::SYNC_WINDOW_BLOCKED]),
    }
    blocked
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::project::AppProjectSpec;
    use ferry_core::sync_window::SyncWindow;

    fn app() -> Application {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "web"},
            "spec": {"project": "shop", "destination": {"server": "https://k", "namespace": "web"}}
        }))
        .unwrap()
    }

    fn project(windows: Vec<SyncWindow>) -> AppProject {
        AppProject::new(
            "shop",
            AppProjectSpec {
                sync_windows: windows,
                ..Default::default()
            },
        )
    }

    fn window(schedule: &str, manual_sync: bool) -> SyncWindow {
        SyncWindow {
            kind: "deny".into(),
            schedule: schedule.into(),
            duration: "24h".into(),
            applications: vec!["*".into()],
            manual_sync,
            ..Default::default()
        }
    }

    fn request(automated: bool, dry_run: bool) -> SyncRequest {
        SyncRequest {
            revision: "abc".into(),
            prune: false,
            dry_run,
            automated,
            sync_options: Vec::new(),
            retry_count: 0,
            self_heal_attempts: 0,
        }
    }

    fn types(status: &ApplicationStatus) -> Vec<&str> {
        status.conditions.iter().map(|c| c.type_.as_str()).collect()
    }

    #[test]
    fn an_open_deny_window_holds_syncs_back_but_not_dry_runs() {
        let p = project(vec![window("* * * * *", false)]);
        let mut status = ApplicationStatus::default();
        let reason = gate_sync(&mut status, &app(), Some(&p), Some(&request(true, false)));
        assert!(reason.unwrap().contains("automated sync of web blocked"));
        assert_eq!(types(&status), [condition::SYNC_WINDOW_BLOCKED]);
        // A dry run goes through, and the condition goes.
        assert_eq!(
            gate_sync(&mut status, &app(), Some(&p), Some(&request(false, true))),
            None
        );
        assert!(status.conditions.is_empty());
        // manualSync: true lets a manual sync through, not an automated one.
        let p = project(vec![window("* * * * *", true)]);
        assert_eq!(
            gate_sync(&mut status, &app(), Some(&p), Some(&request(false, false))),
            None
        );
        assert!(gate_sync(&mut status, &app(), Some(&p), Some(&request(true, false))).is_some());
    }

    #[test]
    fn a_malformed_window_is_reported_even_with_nothing_to_sync() {
        let p = project(vec![window("0 25 * * *", false)]);
        let mut status = ApplicationStatus::default();
        assert_eq!(gate_sync(&mut status, &app(), Some(&p), None), None);
        assert_eq!(types(&status), [condition::SYNC_WINDOW_ERROR]);
        let message = &status.conditions[0].message;
        assert!(
            message.starts_with("Application web: AppProject shop"),
            "{message}"
        );
        assert!(message.contains("syncWindows[0]"), "{message}");
        // A sync is held back, under the error condition only.
        assert!(gate_sync(&mut status, &app(), Some(&p), Some(&request(true, false))).is_some());
        assert_eq!(types(&status), [condition::SYNC_WINDOW_ERROR]);
        // Fixed: both conditions go.
        let p = project(Vec::new());
        assert_eq!(
            gate_sync(&mut status, &app(), Some(&p), Some(&request(true, false))),
            None
        );
        assert!(status.conditions.is_empty());
    }
}
