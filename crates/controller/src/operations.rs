//! Requests to the controller about one Application, made through the Kubernetes API only (no
//! [`crate::Engine`]): sync, refresh, rollback, and waiting for their result. `ferry app`, the
//! JSON API, the UI's forms and the webhook receiver all go through here, so they behave alike.
//!
//! As in Argo CD, a sync (or rollback) is requested by setting the Application's `.operation`
//! field, and a refresh by its `argocd.argoproj.io/refresh` annotation; the controller carries
//! them out and clears them.
//!
//! A sync request never overwrites another pending operation: it is refused with
//! [`OperationError::OperationPending`] when one is there, and its patch carries the
//! resourceVersion it was checked against, so a request that raced another one loses with a 409
//! instead of replacing it. When the 409 came from some other change (the controller writing
//! the status), the app is read again and, still without an operation, asked again.

use std::time::Duration;

pub use ferry_core::application::RefreshType;
use ferry_core::application::{
    Application, ApplicationStatus, HealthStatusCode, OperationPhase, OperationState,
    REFRESH_ANNOTATION, REQUEST_INFO, SyncStatusCode, sync_request_operation,
};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};

/// How often a sync request is tried when the app keeps changing under it (409 each time).
pub const SYNC_ATTEMPTS: usize = 5;

/// How often the waits read the app again.
const POLL: Duration = Duration::from_millis(500);

/// Why a request or a wait did not succeed. Each names the application.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// There is no such Application (any more).
    #[error("application {name} not found in namespace {namespace}")]
    NotFound {
        /// The application's name.
        name: String,
        /// Where it was looked for.
        namespace: String,
    },
    /// Another operation is pending; it is left alone.
    #[error(
        "application {name} already has an operation pending or running; wait for it or try again later"
    )]
    OperationPending {
        /// The application's name.
        name: String,
    },
    /// The guarded patch lost with a 409 on every attempt (the app kept changing meanwhile).
    #[error(
        "application {name} kept changing while the sync was requested ({attempts} attempts); \
         try again"
    )]
    Conflict {
        /// The application's name.
        name: String,
        /// How often it was tried.
        attempts: usize,
    },
    /// A rollback named a history entry the app does not have.
    #[error("application {name} has no history entry {id} (entries: {entries})")]
    NoHistoryEntry {
        /// The application's name.
        name: String,
        /// The id asked for.
        id: i64,
        /// The ids there are, comma-separated.
        entries: String,
    },
    /// A wait's deadline passed.
    #[error(
        "timed out after {}s waiting for {waiting_for}; last seen: {last_seen}",
        waited.as_secs()
    )]
    Timeout {
        /// The application's name.
        name: String,
        /// What was waited for, e.g. "the sync of web to finish".
        waiting_for: String,
        /// How long was waited.
        waited: Duration,
        /// What the app looked like at the last read.
        last_seen: String,
    },
    /// The Kubernetes API failed `doing` something.
    #[error("{doing} of application {name}: {error}")]
    Kube {
        /// The application's name.
        name: String,
        /// What was being done, e.g. "requesting a sync".
        doing: &'static str,
        /// The API's error (in the message already, so not a `source` to print twice).
        error: kube::Error,
    },
}

impl OperationError {
    /// The application the error is about.
    pub fn app_name(&self) -> &str {
        match self {
            Self::NotFound { name, .. }
            | Self::OperationPending { name }
            | Self::Conflict { name, .. }
            | Self::NoHistoryEntry { name, .. }
            | Self::Timeout { name, .. }
            | Self::Kube { name, .. } => name,
        }
    }

    fn kube(apps: &Api<Application>, name: &str, doing: &'static str, error: kube::Error) -> Self {
        match &error {
            kube::Error::Api(e) if e.code == 404 => Self::NotFound {
                name: name.to_string(),
                namespace: namespace_of(apps),
            },
            _ => Self::Kube {
                name: name.to_string(),
                doing,
                error,
            },
        }
    }
}

fn namespace_of(apps: &Api<Application>) -> String {
    apps.namespace().unwrap_or_default().to_string()
}

/// What a sync should do; the fields of Argo CD's `SyncOperation` that ferry's clients set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncParams {
    /// Branch, tag or commit to sync to; `None`: the app's target revision.
    pub revision: Option<String>,
    /// Delete tracked resources no longer in Git.
    pub prune: bool,
    /// Only report what would be done.
    pub dry_run: bool,
    /// Sync options for this sync only (`CreateNamespace=true`, ...), on top of the app's.
    pub sync_options: Vec<String>,
}

impl SyncParams {
    /// The `.operation.sync` object.
    pub fn body(&self) -> Value {
        let mut sync = json!({"prune": self.prune, "dryRun": self.dry_run});
        if let Some(r) = &self.revision {
            sync["revision"] = json!(r);
        }
        if !self.sync_options.is_empty() {
            sync["syncOptions"] = json!(self.sync_options);
        }
        sync
    }
}

/// The `.operation.sync` object of a rollback to `revision`.
pub fn rollback_body(revision: &str, prune: bool) -> Value {
    json!({"revision": revision, "prune": prune})
}

/// The merge patch that sets `operation`, guarded by the `resource_version` it was checked
/// against (the API server answers 409 when the app changed since).
pub fn guarded_operation_patch(operation: &Value, resource_version: Option<&str>) -> Value {
    json!({
        "metadata": {"resourceVersion": resource_version},
        "operation": operation,
    })
}

/// The merge patch that turns automated sync off (before a rollback).
pub fn automation_off_patch() -> Value {
    json!({"spec": {"syncPolicy": {"automated": null}}})
}

/// The merge patch that asks for a refresh.
pub fn refresh_patch(kind: RefreshType) -> Value {
    json!({"metadata": {"annotations": {REFRESH_ANNOTATION: kind.as_str()}}})
}

/// Reads app `name`; [`OperationError::NotFound`] when there is none.
pub async fn get(apps: &Api<Application>, name: &str) -> Result<Application, OperationError> {
    apps.get_opt(name)
        .await
        .map_err(|e| OperationError::kube(apps, name, "reading", e))?
        .ok_or_else(|| OperationError::NotFound {
            name: name.to_string(),
            namespace: namespace_of(apps),
        })
}

/// Refuses when an operation is asked for (`.operation`) or still running (an automated sync
/// leaves no `.operation`), as Argo CD refuses: "another operation is already in progress".
fn refuse_if_pending(app: &Application, name: &str) -> Result<(), OperationError> {
    let running = app
        .status
        .as_ref()
        .and_then(|s| s.operation_state.as_ref())
        .is_some_and(|o| o.phase == OperationPhase::Running);
    if app.operation.is_some() || running {
        return Err(OperationError::OperationPending {
            name: name.to_string(),
        });
    }
    Ok(())
}

/// Requests a sync of `app` (as read by the caller) for user `username`; returns the request
/// id (the operation's [`REQUEST_INFO`] entry, by which [`wait_for_operation`] knows its
/// result). Refuses when an operation is pending; see the module's documentation for the 409s.
/// When the app moved to another project between the caller's read and a retry, the request
/// is not made ([`OperationError::Conflict`]): the caller's permission was for the old one.
pub async fn request_sync(
    apps: &Api<Application>,
    app: &Application,
    params: &SyncParams,
    username: &str,
) -> Result<String, OperationError> {
    request_operation(apps, app, params.body(), username).await
}

/// Sets `.operation.sync` to `sync` on `app`, refusing when an operation is pending, retrying
/// (re-read, re-check) when the guarded patch loses to another change.
async fn request_operation(
    apps: &Api<Application>,
    app: &Application,
    sync: Value,
    username: &str,
) -> Result<String, OperationError> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let project = app.spec.project.clone();
    let (operation, request) = sync_request_operation(sync, username);
    let mut app = app.clone();
    let mut attempt = 1;
    loop {
        refuse_if_pending(&app, &name)?;
        // The caller's permission was checked against the project read first.
        if app.spec.project != project {
            return Err(OperationError::Conflict {
                name,
                attempts: attempt,
            });
        }
        let patch = guarded_operation_patch(&operation, app.metadata.resource_version.as_deref());
        match apps
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(request),
            Err(kube::Error::Api(e)) if e.code == 409 => {
                if attempt == SYNC_ATTEMPTS {
                    return Err(OperationError::Conflict {
                        name,
                        attempts: attempt,
                    });
                }
                attempt += 1;
                app = get(apps, &name).await?;
            }
            Err(e) => return Err(OperationError::kube(apps, &name, "requesting a sync", e)),
        }
    }
}

/// What [`rollback`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollback {
    /// The request id of the sync operation.
    pub request: String,
    /// The revision of the history entry, synced to.
    pub revision: String,
    /// Whether automated sync was on and has been turned off.
    pub automation_turned_off: bool,
}

/// Rolls `app` back to history entry `id`: syncs to its revision, turning automated sync off
/// first as Argo CD does (an automated sync would undo the rollback at once). Refuses before
/// touching the sync policy when an operation is pending.
pub async fn rollback(
    apps: &Api<Application>,
    app: &Application,
    id: i64,
    prune: bool,
    username: &str,
) -> Result<Rollback, OperationError> {
    let name = app.metadata.name.clone().unwrap_or_default();
    let history = app
        .status
        .as_ref()
        .map(|s| s.history.as_slice())
        .unwrap_or_default();
    let Some(entry) = history.iter().find(|h| h.id == id) else {
        let ids: Vec<String> = history.iter().map(|h| h.id.to_string()).collect();
        return Err(OperationError::NoHistoryEntry {
            name,
            id,
            entries: ids.join(", "),
        });
    };
    let revision = entry.revision.clone().unwrap_or_default();
    refuse_if_pending(app, &name)?;
    let automation_turned_off = app.spec.is_automated();
    let app = if automation_turned_off {
        apps.patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(&automation_off_patch()),
        )
        .await
        .map_err(|e| OperationError::kube(apps, &name, "turning automated sync off", e))?
    } else {
        app.clone()
    };
    let request = request_operation(apps, &app, rollback_body(&revision, prune), username).await?;
    Ok(Rollback {
        request,
        revision,
        automation_turned_off,
    })
}

/// Asks the controller to compare app `name` with Git again.
pub async fn request_refresh(
    apps: &Api<Application>,
    name: &str,
    kind: RefreshType,
) -> Result<(), OperationError> {
    apps.patch(
        name,
        &PatchParams::default(),
        &Patch::Merge(&refresh_patch(kind)),
    )
    .await
    .map_err(|e| OperationError::kube(apps, name, "requesting a refresh", e))?;
    Ok(())
}

/// The state of the operation with request id `request`, once it has finished (the app's
/// `.operation` is gone and its `operationState` is that request's, completed).
pub fn finished_operation<'a>(app: &'a Application, request: &str) -> Option<&'a OperationState> {
    if app.operation.is_some() {
        return None;
    }
    app.status
        .as_ref()
        .and_then(|s| s.operation_state.as_ref())
        .filter(|op| {
            op.phase.is_completed()
                && op
                    .operation
                    .info
                    .iter()
                    .any(|i| i.name == REQUEST_INFO && i.value == request)
        })
}

/// What an app's operation looks like, for a timeout's message.
fn describe_operation(app: &Application, request: &str) -> String {
    if app.operation.is_some() {
        return "the operation is still pending (not yet taken up by the controller)".into();
    }
    match app.status.as_ref().and_then(|s| s.operation_state.as_ref()) {
        None => "no operation state yet".into(),
        Some(op) => {
            let ours = op
                .operation
                .info
                .iter()
                .any(|i| i.name == REQUEST_INFO && i.value == request);
            format!(
                "{} operation {:?}: {}",
                if ours { "this" } else { "another" },
                op.phase,
                op.message.as_deref().unwrap_or_default()
            )
        }
    }
}

/// Waits until the operation with request id `request` on app `name` has finished, at most
/// `timeout`; returns its final state (which may say it failed).
pub async fn wait_for_operation(
    apps: &Api<Application>,
    name: &str,
    request: &str,
    timeout: Duration,
) -> Result<OperationState, OperationError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let app = get(apps, name).await?;
        if let Some(op) = finished_operation(&app, request) {
            return Ok(op.clone());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(OperationError::Timeout {
                name: name.to_string(),
                waiting_for: format!("the sync of {name} to finish"),
                waited: timeout,
                last_seen: describe_operation(&app, request),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// What [`wait_for_status`] waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WantedStatus {
    /// The app is Synced.
    pub synced: bool,
    /// The app is Healthy.
    pub healthy: bool,
    /// No operation is running (a sync goes on while its hooks run, with the app's resources
    /// already Synced and Healthy).
    pub settled: bool,
}

impl WantedStatus {
    /// Whether `app` is as wanted.
    pub fn is_met(self, app: &Application) -> bool {
        let default = ApplicationStatus::default();
        let status = app.status.as_ref().unwrap_or(&default);
        // An operation asked for and not picked up yet counts as running.
        let running = app.operation.is_some()
            || status
                .operation_state
                .as_ref()
                .is_some_and(|o| o.phase == OperationPhase::Running);
        (!self.synced || status.sync.status == SyncStatusCode::Synced)
            && (!self.healthy || status.health.status == HealthStatusCode::Healthy)
            && (!self.settled || !running)
    }

    fn describe(self) -> &'static str {
        match (self.synced, self.healthy, self.settled) {
            (true, true, true) => "Synced and Healthy with no operation running",
            (true, true, false) => "Synced and Healthy",
            (true, false, true) => "Synced with no operation running",
            (true, false, false) => "Synced",
            (false, true, true) => "Healthy with no operation running",
            (false, true, false) => "Healthy",
            (false, false, true) => "without a running operation",
            (false, false, false) => "present",
        }
    }
}

/// Waits until app `name` is as `wanted`, at most `timeout`; returns its status then.
pub async fn wait_for_status(
    apps: &Api<Application>,
    name: &str,
    wanted: WantedStatus,
    timeout: Duration,
) -> Result<ApplicationStatus, OperationError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let app = get(apps, name).await?;
        let met = wanted.is_met(&app);
        let status = app.status.unwrap_or_default();
        if met {
            return Ok(status);
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(OperationError::Timeout {
                name: name.to_string(),
                waiting_for: format!("{name} to be {}", wanted.describe()),
                waited: timeout,
                last_seen: format!(
                    "{name} is {:?} and {:?}",
                    status.sync.status, status.health.status
                ),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sync_bodies() {
        assert_eq!(
            SyncParams::default().body(),
            json!({"prune": false, "dryRun": false})
        );
        let all = SyncParams {
            revision: Some("v1".into()),
            prune: true,
            dry_run: true,
            sync_options: vec!["CreateNamespace=true".into()],
        };
        assert_eq!(
            all.body(),
            json!({"revision": "v1", "prune": true, "dryRun": true,
                "syncOptions": ["CreateNamespace=true"]})
        );
        assert_eq!(
            rollback_body("abc123", true),
            json!({"revision": "abc123", "prune": true})
        );
    }

    #[test]
    fn patches() {
        let op = json!({"sync": {"prune": false}});
        assert_eq!(
            guarded_operation_patch(&op, Some("42")),
            json!({"metadata": {"resourceVersion": "42"}, "operation": op})
        );
        assert_eq!(
            automation_off_patch(),
            json!({"spec": {"syncPolicy": {"automated": null}}})
        );
        assert_eq!(
            refresh_patch(RefreshType::hard_if(true)),
            json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "hard"}}})
        );
        assert_eq!(
            refresh_patch(RefreshType::hard_if(false)),
            json!({"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}})
        );
        // The controller reads back what was asked for.
        for kind in [RefreshType::Normal, RefreshType::Hard] {
            let mut v = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                "metadata": {"name": "web"}, "spec": {}});
            v["metadata"]["annotations"] = refresh_patch(kind)["metadata"]["annotations"].clone();
            assert_eq!(app(v).refresh_requested(), Some(kind));
        }
    }

    fn app(v: Value) -> Application {
        serde_json::from_value(v).expect("an Application")
    }

    fn with_state(phase: &str, request: &str, pending: bool) -> Application {
        let mut v = json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "web"},
            "spec": {"destination": {}, "source": {"repoURL": "r"}},
            "status": {"operationState": {
                "operation": {"sync": {}, "info": [{"name": REQUEST_INFO, "value": request}]},
                "phase": phase, "message": "done"}},
        });
        if pending {
            v["operation"] = json!({"sync": {}});
        }
        app(v)
    }

    #[test]
    fn an_operation_is_finished_when_its_own_state_is_completed() {
        let done = with_state("Succeeded", "r1", false);
        assert!(finished_operation(&done, "r1").is_some());
        assert!(finished_operation(&done, "r2").is_none(), "another request");
        assert!(finished_operation(&with_state("Running", "r1", false), "r1").is_none());
        assert!(finished_operation(&with_state("Failed", "r1", true), "r1").is_none());
        assert!(finished_operation(&with_state("Failed", "r1", false), "r1").is_some());
        assert_eq!(
            describe_operation(&with_state("Running", "r1", false), "r1"),
            "this operation Running: done"
        );
        assert_eq!(
            describe_operation(&with_state("Succeeded", "r0", false), "r1"),
            "another operation Succeeded: done"
        );
    }

    #[test]
    fn wanted_status() {
        let app_with = |status: Value| -> Application {
            serde_json::from_value(
                json!({"metadata": {"name": "web"}, "spec": {}, "status": status}),
            )
            .expect("an app")
        };
        let status =
            app_with(json!({"sync": {"status": "Synced"}, "health": {"status": "Progressing"}}));
        let want = |synced, healthy| WantedStatus {
            synced,
            healthy,
            settled: false,
        };
        assert!(want(true, false).is_met(&status));
        assert!(!want(false, true).is_met(&status));
        assert!(!want(true, true).is_met(&status));
        assert!(want(false, false).is_met(&status));

        // Synced and Healthy while a PostSync hook still runs: settled only once it ends.
        let running = app_with(json!({
            "sync": {"status": "Synced"}, "health": {"status": "Healthy"},
            "operationState": {"operation": {"sync": {}}, "phase": "Running"}
        }));
        let all = WantedStatus {
            synced: true,
            healthy: true,
            settled: true,
        };
        assert!(want(true, true).is_met(&running));
        assert!(!all.is_met(&running));
        let mut done = running.clone();
        let state = done
            .status
            .as_mut()
            .and_then(|s| s.operation_state.as_mut());
        state.expect("a state").phase = OperationPhase::Succeeded;
        assert!(all.is_met(&done));
        // A sync asked for and not picked up yet: not settled either.
        let mut asked = done.clone();
        asked.operation = Some(Default::default());
        assert!(!all.is_met(&asked));
        assert!(want(true, true).is_met(&asked));
    }

    #[test]
    fn errors_name_the_app() {
        let e = OperationError::OperationPending { name: "web".into() };
        assert_eq!(e.app_name(), "web");
        assert!(e.to_string().contains("application web already has"), "{e}");
        let e = OperationError::Timeout {
            name: "web".into(),
            waiting_for: "web to be Synced".into(),
            waited: Duration::from_secs(2),
            last_seen: "web is OutOfSync and Healthy".into(),
        };
        assert_eq!(
            e.to_string(),
            "timed out after 2s waiting for web to be Synced; last seen: web is OutOfSync and \
             Healthy"
        );
    }
}
