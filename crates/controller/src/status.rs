//! What a reconcile writes: the app's status (sync, health, resources, conditions), the
//! Application itself, and Kubernetes Events.

use std::collections::{BTreeMap, BTreeSet};

use ferry_cluster::ObjectRef;
use ferry_core::application::{
    Application, ApplicationStatus, HealthStatus, HealthStatusCode, OperationPhase, ResourceStatus,
    SyncStatus, SyncStatusCode,
};
use ferry_core::tracking::ResourceKey;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use std::time::Duration;
use tracing::warn;

use crate::app_of_apps::AppView;
use crate::compare::{Compared, Prunable};
use crate::conditions::{clear_conditions, condition, set_condition};
use crate::desired_state::Desired;
use crate::engine::Engine;

impl Engine {
    /// Publishes a Kubernetes Event on the Application for a finished sync, as Argo CD does
    /// (`kubectl describe application` shows them).
    pub(crate) async fn record_event(
        &self,
        app: &Application,
        phase: OperationPhase,
        message: &str,
        revision: &str,
    ) {
        use kube::Resource as _;
        use kube::runtime::events::{Event, EventType};
        let ok = phase == OperationPhase::Succeeded;
        let event = Event {
            type_: if ok {
                EventType::Normal
            } else {
                EventType::Warning
            },
            reason: "OperationCompleted".into(),
            note: Some(ferry_core::redact::redact_urls_in_text(&format!(
                "Sync operation to {} {}: {message}",
                short(revision),
                if ok { "succeeded" } else { "failed" }
            ))),
            action: "Sync".into(),
            secondary: None,
        };
        if let Err(e) = self.events.publish(&event, &app.object_ref(&())).await {
            warn!(
                app = app.metadata.name.as_deref().unwrap_or_default(),
                "recording an Event: {e}"
            );
        }
    }

    /// Writes `status` to the Application, clearing its `operation` and refresh annotation when
    /// asked.
    pub(crate) async fn write_status(
        &self,
        app: &Application,
        status: &ApplicationStatus,
        clear_requests: bool,
    ) -> Result<(), kube::Error> {
        self.write_status_clearing(app, status, clear_requests, clear_requests)
            .await
    }

    /// Writes `status`, clearing the app's `operation` and its refresh annotation as asked (a
    /// sync that goes on in the next reconcile keeps its operation, but its refresh is done).
    pub(crate) async fn write_status_clearing(
        &self,
        app: &Application,
        status: &ApplicationStatus,
        clear_operation: bool,
        clear_refresh: bool,
    ) -> Result<(), kube::Error> {
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let clears_operation = clear_operation && app.operation.is_some();
        let clears_refresh = clear_refresh && app.refresh_requested().is_some();
        // Nothing but the time of this look changed: no write.
        if !clears_operation && !clears_refresh && same_but_times(app.status.as_ref(), status) {
            return Ok(());
        }
        let mut ops = vec![json!({"op": "add", "path": "/status", "value": status})];
        if clears_operation {
            ops.push(json!({"op": "remove", "path": "/operation"}));
        }
        if clears_refresh {
            ops.push(
                json!({"op": "remove", "path": "/metadata/annotations/argocd.argoproj.io~1refresh"}),
            );
        }
        let patch: json_patch::Patch =
            serde_json::from_value(Value::Array(ops)).expect("a well-formed JSON patch");
        match self
            .apps
            .patch(name, &PatchParams::default(), &Patch::Json::<()>(patch))
            .await
        {
            Ok(written) => {
                self.wrote_app(&written);
                // An app that manages itself watches itself: the event of this write is its own
                // and is no drift (else every status write would start another comparison).
                let (view, _) = AppView::of(app, &self.cfg.namespace, self.cfg.child_health);
                if status
                    .resources
                    .iter()
                    .any(|r| view.is_self(&resource_key(r)))
                    && let Ok(written) = serde_json::to_value(&written)
                {
                    self.watches.expect_own_write(&written, None);
                }
                Ok(())
            }
            // Deleted meanwhile, or the operation was already cleared: the next look sorts it out.
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 422 => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// The first seven characters of a commit SHA.
pub(crate) fn short(sha: &str) -> &str {
    &sha[..sha.len().min(7)]
}

/// The identity of a resource listed in an app's status.
pub(crate) fn resource_key(r: &ResourceStatus) -> ResourceKey {
    ResourceKey::new(&r.group, &r.kind, &r.namespace, &r.name)
}

/// Where a resource listed in an app's status lives.
pub(crate) fn resource_ref(r: &ResourceStatus) -> ObjectRef {
    let api_version = if r.group.is_empty() {
        r.version.clone()
    } else {
        format!("{}/{}", r.group, r.version)
    };
    ObjectRef {
        api_version,
        kind: r.kind.clone(),
        namespace: r.namespace.clone(),
        name: r.name.clone(),
    }
}

/// Fills sync status, resources, health and images from a comparison.
pub(crate) fn fill_comparison(
    status: &mut ApplicationStatus,
    app: &Application,
    view: &AppView,
    desired: &Desired,
    compared: &[Compared],
    prunable: &[Prunable],
    settings: &ferry_core::settings::ArgoSettings,
) {
    let mut health_errors = Vec::new();
    let mut resources = Vec::new();
    let mut images = BTreeSet::new();
    let mut shared = Vec::new();
    for c in compared {
        let version = c
            .desired
            .api_version()
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        // An app shows no health for itself (it would be its own health, and never settle).
        let own = view.is_self(&c.desired.key);
        let health = match &c.live {
            None => Some(HealthStatus {
                status: HealthStatusCode::Missing,
                message: None,
            }),
            Some(_) if own => None,
            // A child Application as the parent's child-health setting says; anything else by
            // the built-in rules or argocd-cm's Lua checks.
            Some(live)
                if c.desired.key.group == "argoproj.io" && c.desired.key.kind == "Application" =>
            {
                Some(match view.health(&c.desired.key, live) {
                    Some(h) => h.into(),
                    None => HealthStatus {
                        status: HealthStatusCode::Healthy,
                        message: None,
                    },
                })
            }
            Some(live) => {
                let h = crate::settings::resource_health(
                    settings,
                    live,
                    &c.desired.key,
                    &mut health_errors,
                );
                Some(HealthStatus {
                    status: h.status,
                    message: h.message,
                })
            }
        };
        if let Some(owner) = &c.foreign_owner {
            shared.push(format!("{} is tracked by {owner}", c.desired.key));
        }
        collect_images(&c.desired.object, &mut images);
        resources.push(ResourceStatus {
            group: c.desired.key.group.clone(),
            version,
            kind: c.desired.key.kind.clone(),
            namespace: c.desired.key.namespace.clone(),
            name: c.desired.key.name.clone(),
            status: Some(if c.in_sync {
                SyncStatusCode::Synced
            } else {
                SyncStatusCode::OutOfSync
            }),
            health,
            ..Default::default()
        });
    }
    let previous: BTreeMap<ResourceKey, ResourceStatus> = status
        .resources
        .iter()
        .map(|r| {
            (
                ResourceKey::new(&r.group, &r.kind, &r.namespace, &r.name),
                r.clone(),
            )
        })
        .collect();
    for p in prunable {
        let mut r = previous.get(&p.key).cloned().unwrap_or_default();
        r.status = Some(SyncStatusCode::OutOfSync);
        r.requires_pruning = Some(true);
        r.health = None;
        resources.push(r);
    }
    resources.sort_by(|a, b| {
        (&a.group, &a.kind, &a.namespace, &a.name).cmp(&(&b.group, &b.kind, &b.namespace, &b.name))
    });
    let in_sync = compared.iter().all(|c| c.in_sync) && prunable.is_empty();
    status.sync = SyncStatus {
        status: if in_sync {
            SyncStatusCode::Synced
        } else {
            SyncStatusCode::OutOfSync
        },
        revision: Some(desired.revision.clone()),
        compared_to: Some(ferry_core::application::ComparedTo {
            source: app.spec.source.clone(),
            sources: app.spec.sources.clone().unwrap_or_default(),
            destination: app.spec.destination.clone(),
            ignore_differences: app.spec.ignore_differences.clone(),
        }),
        ..Default::default()
    };
    let errors: Vec<String> = compared
        .iter()
        .filter_map(|c| {
            c.error
                .as_ref()
                .map(|e| format!("{} ({}): {e}", c.desired.key, c.desired.origin))
        })
        .collect();
    if !errors.is_empty() {
        set_condition(status, condition::COMPARISON_ERROR, &errors.join("; "));
    }
    let app_name = app.metadata.name.as_deref().unwrap_or_default();
    if health_errors.is_empty() {
        clear_conditions(status, &[condition::HEALTH_CHECK_ERROR]);
    } else {
        set_condition(
            status,
            condition::HEALTH_CHECK_ERROR,
            &format!("Application {app_name}: {}", health_errors.join("; ")),
        );
    }
    if shared.is_empty() {
        clear_conditions(status, &[condition::SHARED_RESOURCE_WARNING]);
    } else {
        set_condition(
            status,
            condition::SHARED_RESOURCE_WARNING,
            &shared.join("; "),
        );
    }
    status.health = overall_health(&resources);
    status.resources = resources;
    status.summary.images = images.into_iter().collect();
    status.source_type = desired.source_types.first().cloned();
    status.source_types = if desired.source_types.len() > 1 {
        desired.source_types.clone()
    } else {
        Vec::new()
    };
}

/// An app's health from its resources': the worst of them, with the first such resource's
/// message (none for Healthy).
fn overall_health(resources: &[ResourceStatus]) -> HealthStatus {
    let worst = ferry_core::health::worst(
        resources
            .iter()
            .filter_map(|r| r.health.as_ref().map(|h| h.status)),
    );
    let message = resources
        .iter()
        .filter(|r| {
            r.health
                .as_ref()
                .is_some_and(|h| h.status == worst && h.status != HealthStatusCode::Healthy)
        })
        .map(|r| {
            format!(
                "{}/{}: {}",
                r.kind,
                r.name,
                r.health
                    .as_ref()
                    .and_then(|h| h.message.clone())
                    .unwrap_or_else(|| format!("{worst:?}"))
            )
        })
        .next();
    HealthStatus {
        status: worst,
        message,
    }
}

/// Refreshes the health `status` shows for the app's child Applications from `child` (the
/// children as the Application watch has them now; `None` for one it does not have), and the
/// app's health with them. Returns whether anything changed. Nothing is compared: a child's
/// status is no part of what its parent declares.
pub(crate) fn refresh_children(
    status: &mut ApplicationStatus,
    view: &AppView,
    namespace: &str,
    child: impl Fn(&str) -> Option<Value>,
) -> bool {
    let mut changed = false;
    for r in &mut status.resources {
        let key = resource_key(r);
        if r.group != "argoproj.io"
            || r.kind != "Application"
            || r.health.is_none()
            || r.requires_pruning == Some(true)
            || (!r.namespace.is_empty() && r.namespace != namespace)
            || view.is_self(&key)
        {
            continue;
        }
        let Some(live) = child(&r.name) else {
            continue; // deleted: its Delete event makes the parent compare
        };
        let health = match view.health(&key, &live) {
            Some(h) => h.into(),
            None => HealthStatus {
                status: HealthStatusCode::Healthy,
                message: None,
            },
        };
        if r.health.as_ref() != Some(&health) {
            r.health = Some(health);
            changed = true;
        }
    }
    if changed {
        status.health = overall_health(&status.resources);
    }
    changed
}

fn collect_images(obj: &Value, out: &mut BTreeSet<String>) {
    match obj {
        Value::Object(map) => {
            for (k, v) in map {
                if (k == "containers" || k == "initContainers")
                    && let Some(list) = v.as_array()
                {
                    for c in list {
                        if let Some(image) = c.get("image").and_then(Value::as_str) {
                            out.insert(image.to_string());
                        }
                    }
                } else {
                    collect_images(v, out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_images(v, out)),
        _ => {}
    }
}

/// While something is progressing, look again soon.
pub(crate) fn requeue_for_health(status: &ApplicationStatus) -> Option<Duration> {
    match status.health.status {
        HealthStatusCode::Progressing | HealthStatusCode::Missing | HealthStatusCode::Unknown => {
            Some(Duration::from_secs(2))
        }
        _ => None,
    }
}

/// Whether `new` says what `old` said, apart from when it was looked at (`reconciledAt`,
/// `observedAt`): then writing it would only cost a request (and an event to every watcher).
fn same_but_times(old: Option<&ApplicationStatus>, new: &ApplicationStatus) -> bool {
    let Some(old) = old else {
        return false;
    };
    let untimed = |s: &ApplicationStatus| {
        let mut s = s.clone();
        s.reconciled_at = None;
        s.observed_at = None;
        s
    };
    untimed(old) == untimed(new)
}

#[cfg(test)]
mod write_tests {
    use super::*;

    #[test]
    fn a_status_that_differs_only_in_its_times_is_the_same() {
        let mut old = ApplicationStatus {
            reconciled_at: Some("2026-01-01T00:00:00Z".into()),
            ..Default::default()
        };
        old.sync.revision = Some("a".into());
        let mut new = old.clone();
        new.reconciled_at = Some("2026-01-01T00:05:00Z".into());
        new.observed_at = Some("2026-01-01T00:05:00Z".into());
        assert!(same_but_times(Some(&old), &new));
        new.sync.revision = Some("b".into());
        assert!(!same_but_times(Some(&old), &new));
        assert!(!same_but_times(None, &new));
    }
}
