//! Who may change an existing object: an object another app tracks is refused; one that no app
//! tracks is adopted (applied with this app's tracking id), as Argo CD adopts it, unless strict
//! mode (`FailOnUntrackedResource=true`, or `--fail-on-untracked-resource` for the whole
//! installation) says to refuse it. Each adoption is recorded: in the sync result's message for
//! the object and as an Event on the Application.

use ferry_core::application::Application;
use ferry_core::order::SyncOptions;
use ferry_core::tracking::{ResourceKey, TRACKING_ANNOTATION};
use serde_json::Value;
use tracing::{info, warn};

use crate::compare::Compared;
use crate::engine::Engine;

/// The sync option that turns strict mode on (`true`) or off (`false`) for one app or object.
pub(crate) const STRICT_OPTION: &str = "FailOnUntrackedResource";

/// Refuses, before anything is applied, objects another app tracks, and (in strict mode)
/// objects nobody tracks. `options_for` gives an object's sync options (the app's, then its
/// own); `strict_default` is the installation's setting.
pub(crate) fn check_ownership(
    app_name: &str,
    compared: &[Compared],
    options_for: impl Fn(&Value) -> SyncOptions,
    strict_default: bool,
) -> Result<(), String> {
    for c in compared {
        if let Some(owner) = &c.foreign_owner {
            return Err(format!(
                "{} ({}) already exists and is tracked by {owner}; ferry does not take objects from another app",
                c.desired.key, c.desired.origin
            ));
        }
        let strict = options_for(&c.desired.object)
            .fail_on_untracked_resource
            .unwrap_or(strict_default);
        if strict && c.untracked() {
            let id = c.desired.object["metadata"]["annotations"][TRACKING_ANNOTATION]
                .as_str()
                .unwrap_or_default();
            let ns = if c.desired.key.namespace.is_empty() {
                String::new()
            } else {
                format!(" -n {}", c.desired.key.namespace)
            };
            return Err(format!(
                "{} ({}) already exists and is not managed by any app, and adoption is off \
                 ({STRICT_OPTION}=true or --fail-on-untracked-resource); to let {app_name} adopt it, \
                 add the sync option {STRICT_OPTION}=false or annotate it: \
                 kubectl annotate {} {}{ns} {TRACKING_ANNOTATION}={id}",
                c.desired.key,
                c.desired.origin,
                c.desired.key.kind.to_lowercase(),
                c.desired.key.name,
            ));
        }
    }
    Ok(())
}

/// An object a sync adopted.
#[derive(Debug, Clone)]
pub(crate) struct Adopted {
    /// The object and the file it comes from, in words.
    pub said: String,
    /// Its `apiVersion`.
    pub api_version: String,
    /// Its identity.
    pub key: ResourceKey,
}

impl Engine {
    /// Publishes one Event on the Application per adopted object, naming the object as its
    /// related object (`kubectl describe application` shows them).
    pub(crate) async fn record_adoptions(&self, app: &Application, adopted: &[Adopted]) {
        use kube::Resource as _;
        use kube::runtime::events::{Event, EventType};
        let name = app.metadata.name.as_deref().unwrap_or_default();
        for Adopted {
            said: what,
            api_version,
            key,
        } in adopted
        {
            info!(app = name, "adopted {what}");
            let related = k8s_openapi::api::core::v1::ObjectReference {
                api_version: Some(api_version.clone()),
                kind: Some(key.kind.clone()),
                namespace: (!key.namespace.is_empty()).then(|| key.namespace.clone()),
                name: Some(key.name.clone()),
                ..Default::default()
            };
            let event = Event {
                type_: EventType::Normal,
                reason: "ResourceAdopted".into(),
                note: Some(format!(
                    "adopted {what}: it existed with no tracking id and is now tracked by {name}"
                )),
                action: "Sync".into(),
                // One Event per object (Events with the same related object are merged).
                secondary: Some(related),
            };
            if let Err(e) = self.events.publish(&event, &app.object_ref(&())).await {
                warn!(app = name, "recording an Event: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::desired::DesiredObject;
    use serde_json::json;

    fn compared(live_annotations: Option<Value>, foreign: Option<&str>) -> Compared {
        let key = ResourceKey::new("", "ConfigMap", "web", "settings");
        let id = "app:/ConfigMap:web/settings";
        Compared {
            desired: DesiredObject {
                key,
                object: json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "settings", "namespace": "web",
                                 "annotations": {TRACKING_ANNOTATION: id}}}),
                origin: "cm.yaml:1".into(),
                hooks: Vec::new(),
                generate_name: false,
            },
            live: live_annotations.map(|a| {
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "settings", "namespace": "web", "annotations": a}})
            }),
            predicted: None,
            in_sync: false,
            error: None,
            foreign_owner: foreign.map(str::to_string),
        }
    }

    fn check(c: &Compared, app_options: &[&str], strict_default: bool) -> Result<(), String> {
        check_ownership(
            "app",
            std::slice::from_ref(c),
            |obj| {
                SyncOptions::merged(
                    app_options.iter().copied(),
                    ferry_core::order::resource_sync_option_entries(obj),
                )
            },
            strict_default,
        )
    }

    #[test]
    fn untracked_objects_are_adopted_unless_strict() {
        let untracked = compared(Some(json!({})), None);
        assert!(untracked.untracked());
        assert_eq!(check(&untracked, &[], false), Ok(()));
        let refused = check(&untracked, &["FailOnUntrackedResource=true"], false).unwrap_err();
        assert!(
            refused.contains("ConfigMap:web/settings (cm.yaml:1)")
                && refused.contains("FailOnUntrackedResource=false")
                && refused.contains(&format!(
                    "kubectl annotate configmap settings -n web {TRACKING_ANNOTATION}=app:/ConfigMap:web/settings"
                )),
            "{refused}"
        );
        // The installation's strict mode, and an app that allows adoption anyway.
        assert!(check(&untracked, &[], true).is_err());
        assert_eq!(
            check(&untracked, &["FailOnUntrackedResource=false"], true),
            Ok(())
        );
        assert_eq!(check(&untracked, &["Adopt=true"], true), Ok(()));
        // Missing or already ours: nothing to adopt, strict or not.
        assert!(!compared(None, None).untracked());
        assert_eq!(check(&compared(None, None), &[], true), Ok(()));
        let ours = compared(
            Some(json!({TRACKING_ANNOTATION: "app:/ConfigMap:web/settings"})),
            None,
        );
        assert_eq!(check(&ours, &[], true), Ok(()));
    }

    #[test]
    fn another_apps_objects_are_refused_always() {
        let theirs = compared(
            Some(json!({TRACKING_ANNOTATION: "other:/ConfigMap:web/settings"})),
            Some("other"),
        );
        let refused = check(&theirs, &["Adopt=true"], false).unwrap_err();
        assert!(refused.contains("tracked by other"), "{refused}");
    }
}
