//! Sync windows in the reconcile: may the sync about to run start now, and the conditions that
//! say why not (see [`ferry_core::sync_window`] for the rules).

use ferry_core::application::{Application, ApplicationStatus};
use ferry_core::project::AppProject;
use ferry_core::sync_window::evaluate_for_app;

use crate::reconcile::{clear_conditions, condition, set_condition};
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
