//! The conditions ferry sets on an Application, named as Argo CD names them.

use ferry_core::application::{ApplicationCondition, ApplicationStatus};

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

/// The time now, as Kubernetes writes it.
pub(crate) fn now() -> String {
    k8s_openapi::jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
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
