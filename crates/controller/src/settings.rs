//! Argo CD's `argocd-cm` ConfigMap in ferry's namespace, kept current by a watch and parsed once
//! per change (see [`ferry_core::settings`] for what is read from it).

use std::sync::{Arc, Mutex};

use ferry_core::settings::ArgoSettings;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::Api;
use kube::runtime::reflector::{self, Store, store::Writer};

/// The ConfigMap's name, as Argo CD names it.
pub(crate) const ARGOCD_CM: &str = "argocd-cm";

/// The current settings from `argocd-cm` (defaults when it does not exist).
pub(crate) struct SettingsWatch {
    api: Api<ConfigMap>,
    namespace: String,
    store: Store<ConfigMap>,
    writer: Mutex<Option<Writer<ConfigMap>>>,
    /// The parse of the last version seen, by resourceVersion.
    parsed: Mutex<Option<(String, Arc<ArgoSettings>)>>,
}

impl SettingsWatch {
    pub(crate) fn new(client: kube::Client, namespace: &str) -> Self {
        let (store, writer) = reflector::store();
        SettingsWatch {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_owned(),
            store,
            writer: Mutex::new(Some(writer)),
            parsed: Mutex::default(),
        }
    }

    /// The settings as they are now. The first call starts the watch; until its first listing
    /// arrives, the ConfigMap is read from the API.
    pub(crate) async fn current(&self) -> Arc<ArgoSettings> {
        use futures::StreamExt as _;
        use kube::runtime::WatchStreamExt as _;
        let writer = self.writer.lock().expect("settings lock").take();
        if let Some(writer) = writer {
            let config = kube::runtime::watcher::Config::default()
                .fields(&format!("metadata.name={ARGOCD_CM}"));
            let stream = reflector::reflector(
                writer,
                kube::runtime::watcher::watcher(self.api.clone(), config)
                    .modify(crate::watches::drop_managed_fields_of),
            )
            .default_backoff();
            tokio::spawn(stream.for_each(|_| std::future::ready(())));
        }
        let listed = futures::FutureExt::now_or_never(self.store.wait_until_ready())
            .is_some_and(|r| r.is_ok());
        let cm = if listed {
            let key = reflector::ObjectRef::new(ARGOCD_CM).within(&self.namespace);
            self.store.get(&key).map(|c| (*c).clone())
        } else {
            match self.api.get_opt(ARGOCD_CM).await {
                Ok(cm) => cm,
                Err(e) => {
                    tracing::warn!(
                        "reading ConfigMap {ARGOCD_CM}: {e}; using the last settings read"
                    );
                    None
                }
            }
        };
        self.parse(cm)
    }

    /// The settings last read (defaults before any).
    pub(crate) fn last(&self) -> Arc<ArgoSettings> {
        self.parsed
            .lock()
            .expect("settings lock")
            .as_ref()
            .map(|(_, s)| s.clone())
            .unwrap_or_default()
    }

    /// The resourceVersion of the ConfigMap last read (empty when there is none): a change means
    /// comparisons may come out differently.
    pub(crate) fn version(&self) -> String {
        self.parsed
            .lock()
            .expect("settings lock")
            .as_ref()
            .map(|(v, _)| v.clone())
            .unwrap_or_default()
    }

    /// The tracking method of the settings last read (annotation before any).
    pub(crate) fn tracking_method(&self) -> ferry_core::settings::TrackingMethod {
        self.parsed
            .lock()
            .expect("settings lock")
            .as_ref()
            .map(|(_, s)| s.tracking_method)
            .unwrap_or_default()
    }

    fn parse(&self, cm: Option<ConfigMap>) -> Arc<ArgoSettings> {
        let version = cm
            .as_ref()
            .and_then(|c| c.metadata.resource_version.clone())
            .unwrap_or_default();
        let mut parsed = self.parsed.lock().expect("settings lock");
        if let Some((v, s)) = parsed.as_ref()
            && *v == version
        {
            return s.clone();
        }
        let data = cm.and_then(|c| c.data).unwrap_or_default();
        let settings = Arc::new(ArgoSettings::from_config_map_data(&data));
        for e in &settings.errors {
            tracing::warn!("ConfigMap {}/{ARGOCD_CM}: {e}", self.namespace);
        }
        *parsed = Some((version, settings.clone()));
        settings
    }
}

/// Label tracking (and `annotation+label`): puts `app.kubernetes.io/instance: <app>` on every
/// desired object, as Argo CD does. Names longer than a label value may be (63 characters) get
/// no label; the tracking annotation still marks their objects.
pub(crate) fn add_tracking_label(
    objects: &mut [crate::desired::DesiredObject],
    app: &str,
    settings: &ArgoSettings,
) {
    if !settings.tracking_method.writes_label() || app.len() > 63 {
        return;
    }
    for o in objects {
        let meta = &mut o.object["metadata"];
        if !meta["labels"].is_object() {
            meta["labels"] = serde_json::json!({});
        }
        meta["labels"][ferry_core::settings::INSTANCE_LABEL] = serde_json::json!(app);
    }
}

/// Label tracking: a live object with no tracking annotation whose instance label names another
/// app belongs to that app, and is refused like one with the other app's annotation.
pub(crate) fn mark_label_owners(
    compared: &mut [crate::compare::Compared],
    app: &str,
    settings: &ArgoSettings,
) {
    for c in compared.iter_mut().filter(|c| c.foreign_owner.is_none()) {
        if let Some(owner) = c
            .live
            .as_ref()
            .and_then(|l| ferry_core::tracking::label_owner(settings.tracking_method, l))
            .filter(|owner| *owner != app)
        {
            c.foreign_owner = Some(format!(
                "{owner} (label {})",
                ferry_core::settings::INSTANCE_LABEL
            ));
        }
    }
}

/// The health of `live` (the object `key`): by the Lua check `argocd-cm` has for its kind, else
/// by ferry's built-in rules (Healthy when there is none). A check that fails leaves the health
/// Unknown and adds to `errors` a line naming the setting and the object.
pub(crate) fn resource_health(
    settings: &ArgoSettings,
    live: &serde_json::Value,
    key: &ferry_core::tracking::ResourceKey,
    errors: &mut Vec<String>,
) -> ferry_core::health::Health {
    use ferry_core::application::HealthStatusCode;
    use ferry_core::health::{Health, assess_health};
    let deleting = live
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    if !deleting && let Some(check) = settings.health_check(&key.group, &key.kind) {
        return match crate::lua_health::run_health_script(&check.value, live) {
            Ok(h) => h,
            Err(e) => {
                let line = format!(
                    "the Lua health check {} failed on {key}: {e}; its health is Unknown",
                    check.setting
                );
                errors.push(line.clone());
                Health {
                    status: HealthStatusCode::Unknown,
                    message: Some(line),
                }
            }
        };
    }
    assess_health(live).unwrap_or(Health {
        status: HealthStatusCode::Healthy,
        message: None,
    })
}

/// Sets (or clears) the conditions about settings that do not work for `app`: jq expressions
/// of its `ignoreDifferences` or of the `argocd-cm` customizations that do not parse (each named
/// with where it is written), and objects Git declares that resource exclusions leave alone.
pub(crate) fn report_settings_problems(
    status: &mut ferry_core::application::ApplicationStatus,
    app: &ferry_core::application::Application,
    settings: &ArgoSettings,
    excluded: &[String],
) {
    use crate::conditions::{clear_conditions, condition, set_condition};
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let mut bad = Vec::new();
    for (i, d) in app.spec.ignore_differences.iter().enumerate() {
        for (j, expr) in d.jq_path_expressions.iter().enumerate() {
            if let Err(e) = crate::jq::check_expression(expr) {
                bad.push(format!(
                    "spec.ignoreDifferences[{i}].jqPathExpressions[{j}] {expr:?}: {e}"
                ));
            }
        }
    }
    for k in &settings.ignore_differences {
        for expr in &k.value.jq_path_expressions {
            if let Err(e) = crate::jq::check_expression(expr) {
                bad.push(format!(
                    "{ARGOCD_CM} {}: jq expression {expr:?}: {e}",
                    k.setting
                ));
            }
        }
    }
    if bad.is_empty() {
        clear_conditions(status, &[condition::IGNORE_DIFFERENCES_ERROR]);
    } else {
        set_condition(
            status,
            condition::IGNORE_DIFFERENCES_ERROR,
            &format!(
                "Application {name}: these ignoreDifferences expressions do not parse and are skipped: {}",
                bad.join("; ")
            ),
        );
    }
    if excluded.is_empty() {
        clear_conditions(status, &[condition::EXCLUDED_RESOURCE_WARNING]);
    } else {
        set_condition(
            status,
            condition::EXCLUDED_RESOURCE_WARNING,
            &format!(
                "{} left alone: resource.exclusions/inclusions in {ARGOCD_CM} exclude their kind: {}",
                excluded.len(),
                excluded.join(", ")
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_core::application::HealthStatusCode;
    use ferry_core::tracking::ResourceKey;
    use serde_json::json;
    use std::collections::BTreeMap;

    fn settings(pairs: &[(&str, &str)]) -> ArgoSettings {
        let data: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        ArgoSettings::from_config_map_data(&data)
    }

    #[test]
    fn lua_checks_come_first_and_a_failing_one_leaves_health_unknown() {
        let s = settings(&[
            (
                "resource.customizations.health.apps_Deployment",
                "return {status = 'Suspended', message = 'by Lua'}",
            ),
            (
                "resource.customizations.health.ConfigMap",
                "error('broken')",
            ),
        ]);
        let deploy = json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "x"}, "spec": {"replicas": 1}});
        let key = ResourceKey::new("apps", "Deployment", "x", "web");
        let mut errors = Vec::new();
        let h = resource_health(&s, &deploy, &key, &mut errors);
        assert_eq!(
            (h.status, h.message.as_deref()),
            (HealthStatusCode::Suspended, Some("by Lua"))
        );
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        let key = ResourceKey::new("", "ConfigMap", "x", "c");
        let h = resource_health(&s, &cm, &key, &mut errors);
        assert_eq!(h.status, HealthStatusCode::Unknown);
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("the Lua health check resource.customizations.health.ConfigMap failed on ConfigMap:x/c"),
            "{errors:?}"
        );
        assert!(errors[0].contains("broken"), "{errors:?}");
        // Objects being deleted keep Argo CD's built-in answer; kinds without a check, theirs.
        let mut deleting = cm.clone();
        deleting["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        let h = resource_health(&s, &deleting, &key, &mut errors);
        assert_eq!(h.status, HealthStatusCode::Progressing);
        let svc =
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {}});
        let h = resource_health(
            &s,
            &svc,
            &ResourceKey::new("", "Service", "x", "s"),
            &mut errors,
        );
        assert_eq!(h.status, HealthStatusCode::Healthy);
        assert_eq!(errors.len(), 1);
    }
}
