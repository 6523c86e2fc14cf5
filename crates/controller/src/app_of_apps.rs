//! App-of-Apps: how a parent sees the Applications (and AppProjects) in its own output.
//!
//! - **Itself.** A root Application commonly lists its own manifest (`apps/root.yaml` inside
//!   `path: apps`) and the AppProject it belongs to. It applies them like anything else, but it
//!   never waits for its own health (it would wait for itself), shows no health for itself, and
//!   never prunes or deletes itself or its project.
//! - **Its children.** A wave that holds child Applications waits until they are healthy (ferry's
//!   default, so App-of-Apps waves mean something); [`ChildHealth::Ignore`] (the flag
//!   `--child-health ignore`, or the annotation `ferry.dev/child-health: ignore` on the parent)
//!   counts a child Healthy once it exists, as Argo CD does.

use ferry_core::application::Application;
use ferry_core::health::{Health, HealthStatusCode, assess_health};
use ferry_core::tracking::ResourceKey;
use serde_json::Value;

/// The annotation on a parent Application that overrides the installation's [`ChildHealth`].
pub const CHILD_HEALTH_ANNOTATION: &str = "ferry.dev/child-health";

/// Whether child Applications gate a parent's waves and count in its health.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChildHealth {
    /// A child's health is the health in its own status (ferry's default).
    #[default]
    Wait,
    /// A child is Healthy once it exists (Argo CD's default).
    Ignore,
}

impl std::str::FromStr for ChildHealth {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "wait" => Ok(ChildHealth::Wait),
            "ignore" => Ok(ChildHealth::Ignore),
            other => Err(format!(
                "{other:?} is not a child-health setting: use wait (children gate waves) or ignore (a child is Healthy once it exists, as in Argo CD)"
            )),
        }
    }
}

/// What an app has to know about the objects in its own output.
#[derive(Debug, Clone)]
pub struct AppView {
    /// The namespace of Applications and AppProjects.
    namespace: String,
    /// The app's name.
    name: String,
    /// The app's project.
    project: String,
    /// How its children's health counts.
    pub child_health: ChildHealth,
}

impl AppView {
    /// The view of `app` (in `namespace`), with the installation's `default` child health
    /// unless the app's annotation says otherwise. A malformed annotation is reported in
    /// `Err` together with the view that uses the default.
    pub fn of(app: &Application, namespace: &str, default: ChildHealth) -> (Self, Option<String>) {
        let annotation = app
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(CHILD_HEALTH_ANNOTATION));
        let (child_health, problem) = match annotation.map(|v| v.parse::<ChildHealth>()) {
            None => (default, None),
            Some(Ok(mode)) => (mode, None),
            Some(Err(e)) => (
                default,
                Some(format!("annotation {CHILD_HEALTH_ANNOTATION}: {e}")),
            ),
        };
        let project = if app.spec.project.is_empty() {
            "default".to_string()
        } else {
            app.spec.project.clone()
        };
        let view = AppView {
            namespace: namespace.to_string(),
            name: app.metadata.name.clone().unwrap_or_default(),
            project,
            child_health,
        };
        (view, problem)
    }

    /// Whether `key` is the app's own Application object.
    pub fn is_self(&self, key: &ResourceKey) -> bool {
        key.group == "argoproj.io"
            && key.kind == "Application"
            && key.namespace == self.namespace
            && key.name == self.name
    }

    /// Whether `key` is the AppProject the app belongs to.
    pub fn is_own_project(&self, key: &ResourceKey) -> bool {
        key.group == "argoproj.io"
            && key.kind == "AppProject"
            && key.namespace == self.namespace
            && key.name == self.project
    }

    /// Objects the app never prunes or deletes: itself and its project.
    pub fn protects(&self, key: &ResourceKey) -> bool {
        self.is_self(key) || self.is_own_project(key)
    }

    /// The health of `live` as this app counts it: none for itself, Healthy for a child
    /// Application when children are ignored, else the built-in rules.
    pub fn health(&self, key: &ResourceKey, live: &Value) -> Option<Health> {
        if self.is_self(key) {
            return None;
        }
        if is_application(key) && self.child_health == ChildHealth::Ignore {
            return Some(Health::new(
                HealthStatusCode::Healthy,
                "a child Application counts as Healthy once it exists",
            ));
        }
        assess_health(live)
    }
}

fn is_application(key: &ResourceKey) -> bool {
    key.group == "argoproj.io" && key.kind == "Application"
}

/// What a wave waits for, in words: the object and its health; for a child Application, the
/// child with its own sync status, health, conditions and sync, e.g. `Application
/// argocd/metallb (OutOfSync, Degraded: ...; SyncError: ...)`.
pub fn describe(key: &ResourceKey, live: &Value, health: &Health) -> String {
    let health_said = match &health.message {
        Some(m) => format!("{:?}: {m}", health.status),
        None => format!("{:?}", health.status),
    };
    if !is_application(key) {
        return format!("{key} ({health_said})");
    }
    let mut first = Vec::new();
    if let Some(sync) = live.pointer("/status/sync/status").and_then(Value::as_str) {
        first.push(sync.to_string());
    }
    first.push(health_said);
    let mut details = vec![first.join(", ")];
    let conditions = live
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    for c in conditions {
        let type_ = c.get("type").and_then(Value::as_str).unwrap_or_default();
        let message = c.get("message").and_then(Value::as_str).unwrap_or_default();
        // The health message already carries a comparison failure.
        if !health
            .message
            .as_deref()
            .is_some_and(|m| m.starts_with(type_))
        {
            details.push(format!("{type_}: {message}"));
        }
    }
    if let Some(op) = live.pointer("/status/operationState")
        && let Some(phase) = op.get("phase").and_then(Value::as_str)
        && phase != "Succeeded"
    {
        let message = op
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default();
        details.push(format!("sync {phase}: {message}"));
    }
    format!(
        "Application {}/{} ({})",
        key.namespace,
        key.name,
        details.join("; ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(annotations: Value, project: &str) -> Application {
        serde_json::from_value(json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "root", "namespace": "argocd", "annotations": annotations},
            "spec": {"project": project, "destination": {}}
        }))
        .unwrap()
    }

    fn key(kind: &str, ns: &str, name: &str) -> ResourceKey {
        ResourceKey::new("argoproj.io", kind, ns, name)
    }

    #[test]
    fn an_app_knows_itself_and_its_project() {
        let (view, problem) = AppView::of(&app(json!({}), "workshop"), "argocd", ChildHealth::Wait);
        assert!(problem.is_none());
        assert!(view.is_self(&key("Application", "argocd", "root")));
        assert!(!view.is_self(&key("Application", "other", "root")));
        assert!(!view.is_self(&key("Application", "argocd", "child")));
        assert!(view.protects(&key("AppProject", "argocd", "workshop")));
        assert!(!view.protects(&key("AppProject", "argocd", "default")));
        assert!(!view.protects(&ResourceKey::new("", "ConfigMap", "argocd", "root")));
        // An empty project is `default`.
        let (view, _) = AppView::of(&app(json!({}), ""), "argocd", ChildHealth::Wait);
        assert!(view.is_own_project(&key("AppProject", "argocd", "default")));
    }

    #[test]
    fn an_app_has_no_health_of_its_own_and_children_follow_the_setting() {
        let degraded = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "child"}, "status": {"health": {"status": "Degraded"}}});
        let child = key("Application", "argocd", "child");
        let (wait, _) = AppView::of(&app(json!({}), ""), "argocd", ChildHealth::Wait);
        assert!(
            wait.health(&key("Application", "argocd", "root"), &degraded)
                .is_none()
        );
        assert_eq!(
            wait.health(&child, &degraded).unwrap().status,
            HealthStatusCode::Degraded
        );
        // Per parent, the annotation overrides the installation's setting, both ways.
        let (ignore, _) = AppView::of(
            &app(json!({CHILD_HEALTH_ANNOTATION: "ignore"}), ""),
            "argocd",
            ChildHealth::Wait,
        );
        assert_eq!(
            ignore.health(&child, &degraded).unwrap().status,
            HealthStatusCode::Healthy
        );
        let (wait, _) = AppView::of(
            &app(json!({CHILD_HEALTH_ANNOTATION: "wait"}), ""),
            "argocd",
            ChildHealth::Ignore,
        );
        assert_eq!(wait.child_health, ChildHealth::Wait);
        let (fallback, problem) = AppView::of(
            &app(json!({CHILD_HEALTH_ANNOTATION: "sometimes"}), ""),
            "argocd",
            ChildHealth::Ignore,
        );
        assert_eq!(fallback.child_health, ChildHealth::Ignore);
        let problem = problem.unwrap();
        assert!(problem.contains(CHILD_HEALTH_ANNOTATION) && problem.contains("sometimes"));
    }

    #[test]
    fn a_blocking_child_is_named_with_its_own_state() {
        let live = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "metallb", "namespace": "argocd"},
            "status": {"sync": {"status": "OutOfSync"},
                       "health": {"status": "Degraded", "message": "Deployment/controller: crash"},
                       "conditions": [{"type": "SyncError", "message": "wave 1 failed"}],
                       "operationState": {"phase": "Failed", "message": "wave 1 failed"}}});
        let health = assess_health(&live).unwrap();
        let said = describe(&key("Application", "argocd", "metallb"), &live, &health);
        assert_eq!(
            said,
            "Application argocd/metallb (OutOfSync, Degraded: Deployment/controller: crash; \
             SyncError: wave 1 failed; sync Failed: wave 1 failed)"
        );
        // A comparison failure is said once, as such.
        let live = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "podinfo", "namespace": "argocd"},
            "status": {"sync": {"status": "Unknown"}, "health": {"status": "Healthy"},
                       "conditions": [{"type": "ComparisonError", "message": "no such path"}]}});
        let health = assess_health(&live).unwrap();
        let said = describe(&key("Application", "argocd", "podinfo"), &live, &health);
        assert_eq!(
            said,
            "Application argocd/podinfo (Unknown, Unknown: ComparisonError: no such path)"
        );
        let cm = ResourceKey::new("apps", "Deployment", "web", "api");
        let said = describe(
            &cm,
            &json!({}),
            &Health::new(HealthStatusCode::Progressing, "1 of 2 updated"),
        );
        assert_eq!(
            said,
            "apps/Deployment:web/api (Progressing: 1 of 2 updated)"
        );
    }
}
