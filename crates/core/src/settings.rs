//! Argo CD's settings ConfigMap `argocd-cm`, read from ferry's namespace: the keys a real Argo CD
//! installation carries that change how apps are compared and tracked.
//!
//! [`ArgoSettings::from_config_map_data`] reads
//! - `application.resourceTrackingMethod`: `annotation` (ferry's and Argo CD 3's default),
//!   `label` (Argo CD 2's default: `app.kubernetes.io/instance: <app>`) or `annotation+label`;
//! - `resource.customizations.health.<group>_<kind>`: a Lua health check;
//! - `resource.customizations.ignoreDifferences.<group>_<kind>` and `...ignoreDifferences.all`:
//!   fields to leave out of comparisons (`jsonPointers`, `jqPathExpressions`,
//!   `managedFieldsManagers`);
//! - the older combined `resource.customizations` key (a YAML map of `group/Kind` to
//!   `health.lua` and `ignoreDifferences`);
//! - `resource.exclusions` / `resource.inclusions`: kinds ferry leaves alone;
//! - `timeout.reconciliation` (default 180s; `0` turns the periodic look off) and
//!   `timeout.reconciliation.jitter` (default 60s): how often every app is looked at in full
//!   even when no commit, event or spec change asked for it.
//!
//! `<group>_<kind>` is written `<kind>` alone for the core group, as in Argo CD; group and kind
//! may be globs (`*.crossplane.io_*`). A key that does not parse is reported in
//! [`ArgoSettings::errors`] and left out; the rest still applies.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::application::null_as_default;
use crate::glob::glob_match;

/// The label Argo CD's label tracking puts on every object of an app (the app's name).
pub const INSTANCE_LABEL: &str = "app.kubernetes.io/instance";

/// The key of the tracking method in `argocd-cm`.
pub const TRACKING_METHOD_KEY: &str = "application.resourceTrackingMethod";

/// How an object says which app it belongs to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TrackingMethod {
    /// The annotation `argocd.argoproj.io/tracking-id` (Argo CD 3's default).
    #[default]
    Annotation,
    /// The label `app.kubernetes.io/instance: <app>` (Argo CD 2's default).
    Label,
    /// The annotation decides; the label is written too, for tools that select by it.
    AnnotationAndLabel,
}

impl TrackingMethod {
    /// Whether objects get the `app.kubernetes.io/instance` label.
    pub fn writes_label(self) -> bool {
        matches!(self, Self::Label | Self::AnnotationAndLabel)
    }
}

/// Fields to leave out of comparisons, from a customization.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IgnoreCustomization {
    /// JSON pointers (RFC 6901).
    #[serde(default, deserialize_with = "null_as_default")]
    pub json_pointers: Vec<String>,
    /// jq path expressions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub jq_path_expressions: Vec<String>,
    /// Field managers whose fields are ignored.
    #[serde(default, deserialize_with = "null_as_default")]
    pub managed_fields_managers: Vec<String>,
}

impl IgnoreCustomization {
    fn extend(&mut self, other: &IgnoreCustomization) {
        self.json_pointers
            .extend(other.json_pointers.iter().cloned());
        self.jq_path_expressions
            .extend(other.jq_path_expressions.iter().cloned());
        self.managed_fields_managers
            .extend(other.managed_fields_managers.iter().cloned());
    }
}

/// One entry of `resource.exclusions` / `resource.inclusions`: globs, an empty list matching
/// everything.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceFilter {
    /// API group globs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub api_groups: Vec<String>,
    /// Kind globs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub kinds: Vec<String>,
    /// Cluster server URL globs.
    #[serde(default, deserialize_with = "null_as_default")]
    pub clusters: Vec<String>,
}

impl ResourceFilter {
    /// Whether the filter matches `group`/`kind` on the cluster at `server`.
    pub fn matches(&self, group: &str, kind: &str, server: &str) -> bool {
        let any = |patterns: &[String], value: &str| {
            patterns.is_empty() || patterns.iter().any(|p| glob_match(p, value, None))
        };
        any(&self.api_groups, group) && any(&self.kinds, kind) && any(&self.clusters, server)
    }
}

/// A customization keyed by group and kind globs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Keyed<T> {
    /// The group glob (empty for the core group).
    pub group: String,
    /// The kind glob.
    pub kind: String,
    /// The `argocd-cm` key it came from, for messages.
    pub setting: String,
    /// The customization.
    pub value: T,
}

impl<T> Keyed<T> {
    fn matches(&self, group: &str, kind: &str) -> bool {
        glob_match(&self.group, group, None) && glob_match(&self.kind, kind, None)
    }
}

/// What ferry takes from `argocd-cm`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArgoSettings {
    /// `application.resourceTrackingMethod`.
    pub tracking_method: TrackingMethod,
    /// Lua health checks.
    pub health_checks: Vec<Keyed<String>>,
    /// ignoreDifferences customizations (`all` is group `*`, kind `*`).
    pub ignore_differences: Vec<Keyed<IgnoreCustomization>>,
    /// `resource.exclusions`.
    pub exclusions: Vec<ResourceFilter>,
    /// `resource.inclusions` (empty: everything is included).
    pub inclusions: Vec<ResourceFilter>,
    /// `timeout.reconciliation`, when set (see [`ArgoSettings::reconciliation`]).
    pub reconciliation_timeout: Option<std::time::Duration>,
    /// `timeout.reconciliation.jitter`, when set.
    pub reconciliation_jitter: Option<std::time::Duration>,
    /// Keys that did not parse, each as `key: what is wrong`.
    pub errors: Vec<String>,
}

/// `timeout.reconciliation` when `argocd-cm` does not set it (Argo CD's default).
pub const DEFAULT_RECONCILIATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);
/// `timeout.reconciliation.jitter` when `argocd-cm` does not set it (Argo CD's default).
pub const DEFAULT_RECONCILIATION_JITTER: std::time::Duration = std::time::Duration::from_secs(60);

/// Reads a duration as Go's `time.ParseDuration` writes them (`180s`, `3m`, `1h30m`, `1.5s`,
/// `500ms`), or a bare number of seconds (`180`), as `argocd-cm` carries them.
pub fn parse_go_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty; write a duration such as 180s or 3m".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(number_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let value: f64 = number
            .parse()
            .map_err(|_| format!("{text:?} is not a duration (such as 180s, 3m or 1h30m)"))?;
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => {
                return Err(format!(
                    "{text:?} is not a duration: unit {unit:?} is not one of h, m, s, ms, us, ns"
                ));
            }
        };
        total += value * scale;
        rest = after;
    }
    std::time::Duration::try_from_secs_f64(total).map_err(|e| format!("{text:?}: {e}"))
}

const HEALTH_PREFIX: &str = "resource.customizations.health.";
const IGNORE_PREFIX: &str = "resource.customizations.ignoreDifferences.";

/// The old combined form: `group/Kind` → customization.
#[derive(Debug, Default, Deserialize)]
struct CombinedOverride {
    #[serde(default, rename = "health.lua")]
    health_lua: Option<String>,
    /// A YAML document (in a string) or a map.
    #[serde(default, rename = "ignoreDifferences")]
    ignore_differences: Option<serde_json::Value>,
}

/// Splits `group_kind` (or `kind` for the core group) as Argo CD does.
fn split_group_kind(text: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = text.split('_').collect();
    match parts.as_slice() {
        [group, kind] if !kind.is_empty() => Some(((*group).to_owned(), (*kind).to_owned())),
        [kind] if !kind.is_empty() => Some((String::new(), (*kind).to_owned())),
        _ => None,
    }
}

fn parse_ignore(text: &str) -> Result<IgnoreCustomization, String> {
    if text.trim().is_empty() {
        return Ok(IgnoreCustomization::default());
    }
    serde_saphyr::from_str(text).map_err(|e| {
        format!("not a map of jsonPointers / jqPathExpressions / managedFieldsManagers: {e}")
    })
}

impl ArgoSettings {
    /// Reads the `data` of ConfigMap `argocd-cm`. Never fails: keys that do not parse land in
    /// [`Self::errors`].
    pub fn from_config_map_data(data: &BTreeMap<String, String>) -> Self {
        let mut out = ArgoSettings::default();
        for (key, value) in data {
            if key == TRACKING_METHOD_KEY {
                out.tracking_method = match value.trim() {
                    "" | "annotation" => TrackingMethod::Annotation,
                    "label" => TrackingMethod::Label,
                    "annotation+label" => TrackingMethod::AnnotationAndLabel,
                    other => {
                        out.errors.push(format!(
                            "{key}: {other:?} is not one of label, annotation, annotation+label; using annotation"
                        ));
                        TrackingMethod::Annotation
                    }
                };
            } else if let Some(group_kind) = key.strip_prefix(HEALTH_PREFIX) {
                match split_group_kind(group_kind) {
                    Some((group, kind)) => out.health_checks.push(Keyed {
                        group,
                        kind,
                        setting: key.clone(),
                        value: value.clone(),
                    }),
                    None => out.errors.push(format!(
                        "{key}: expected resource.customizations.health.<group>_<kind> (or .<kind> for the core group)"
                    )),
                }
            } else if let Some(group_kind) = key.strip_prefix(IGNORE_PREFIX) {
                let target = if group_kind == "all" {
                    Some(("*".to_owned(), "*".to_owned()))
                } else {
                    split_group_kind(group_kind)
                };
                match (target, parse_ignore(value)) {
                    (Some((group, kind)), Ok(ignore)) => out.ignore_differences.push(Keyed {
                        group,
                        kind,
                        setting: key.clone(),
                        value: ignore,
                    }),
                    (None, _) => out.errors.push(format!(
                        "{key}: expected resource.customizations.ignoreDifferences.<group>_<kind>, .<kind> or .all"
                    )),
                    (_, Err(e)) => out.errors.push(format!("{key}: {e}")),
                }
            } else if key == "timeout.reconciliation" || key == "timeout.reconciliation.jitter" {
                match parse_go_duration(value) {
                    Ok(d) if key == "timeout.reconciliation" => {
                        out.reconciliation_timeout = Some(d)
                    }
                    Ok(d) => out.reconciliation_jitter = Some(d),
                    Err(e) => out.errors.push(format!("{key}: {e}; using the default")),
                }
            } else if key == "resource.customizations" {
                out.read_combined(key, value);
            } else if key == "resource.exclusions" || key == "resource.inclusions" {
                match serde_saphyr::from_str::<Option<Vec<ResourceFilter>>>(value) {
                    Ok(list) => {
                        let list = list.unwrap_or_default();
                        if key == "resource.exclusions" {
                            out.exclusions = list;
                        } else {
                            out.inclusions = list;
                        }
                    }
                    Err(e) => out.errors.push(format!(
                        "{key}: not a list of {{apiGroups, kinds, clusters}}: {e}"
                    )),
                }
            }
        }
        out
    }

    /// How often every app is looked at in full (`timeout.reconciliation`, 180 s by default;
    /// `None` when it is `0`, which turns the periodic look off as in Argo CD), and the jitter
    /// spread over it (`timeout.reconciliation.jitter`, 60 s by default, at most the timeout).
    pub fn reconciliation(&self) -> Option<(std::time::Duration, std::time::Duration)> {
        let timeout = self
            .reconciliation_timeout
            .unwrap_or(DEFAULT_RECONCILIATION_TIMEOUT);
        if timeout.is_zero() {
            return None;
        }
        let jitter = self
            .reconciliation_jitter
            .unwrap_or(DEFAULT_RECONCILIATION_JITTER)
            .min(timeout);
        Some((timeout, jitter))
    }

    fn read_combined(&mut self, key: &str, value: &str) {
        let map: BTreeMap<String, CombinedOverride> = match serde_saphyr::from_str(value) {
            Ok(Some(map)) => map,
            Ok(None) => return,
            Err(e) => {
                self.errors.push(format!(
                    "{key}: not a map of group/Kind to customizations: {e}"
                ));
                return;
            }
        };
        for (group_kind, custom) in map {
            let (group, kind) = match group_kind.split_once('/') {
                Some((g, k)) => (g.to_owned(), k.to_owned()),
                None => (String::new(), group_kind.clone()),
            };
            let setting = format!("{key} ({group_kind})");
            if let Some(lua) = custom.health_lua {
                self.health_checks.push(Keyed {
                    group: group.clone(),
                    kind: kind.clone(),
                    setting: setting.clone(),
                    value: lua,
                });
            }
            let ignore = match custom.ignore_differences {
                None => continue,
                Some(serde_json::Value::String(text)) => parse_ignore(&text),
                Some(v) => serde_json::from_value(v).map_err(|e| e.to_string()),
            };
            match ignore {
                Ok(value) => self.ignore_differences.push(Keyed {
                    group,
                    kind,
                    setting,
                    value,
                }),
                Err(e) => self
                    .errors
                    .push(format!("{setting}: ignoreDifferences: {e}")),
            }
        }
    }

    /// The Lua health check for `group`/`kind`, if any: the first whose globs match, exact keys
    /// before globs.
    pub fn health_check(&self, group: &str, kind: &str) -> Option<&Keyed<String>> {
        self.health_checks
            .iter()
            .find(|k| k.group == group && k.kind == kind)
            .or_else(|| self.health_checks.iter().find(|k| k.matches(group, kind)))
    }

    /// Everything the customizations say to ignore for `group`/`kind` (the `all` key included).
    pub fn ignore_for(&self, group: &str, kind: &str) -> IgnoreCustomization {
        let mut out = IgnoreCustomization::default();
        for k in self
            .ignore_differences
            .iter()
            .filter(|k| k.matches(group, kind))
        {
            out.extend(&k.value);
        }
        out
    }

    /// The customization keys that apply to `group`/`kind`, with their jq expressions (for
    /// naming the setting when an expression does not parse).
    pub fn ignore_settings_for(&self, group: &str, kind: &str) -> Vec<&Keyed<IgnoreCustomization>> {
        self.ignore_differences
            .iter()
            .filter(|k| k.matches(group, kind))
            .collect()
    }

    /// Whether ferry leaves `group`/`kind` on the cluster at `server` alone: it matches an
    /// exclusion, or inclusions are set and none matches.
    pub fn is_excluded(&self, group: &str, kind: &str, server: &str) -> bool {
        self.exclusions
            .iter()
            .any(|f| f.matches(group, kind, server))
            || (!self.inclusions.is_empty()
                && !self
                    .inclusions
                    .iter()
                    .any(|f| f.matches(group, kind, server)))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_reconciliation_timeout_reads_go_durations_and_zero_turns_it_off() {
        use std::time::Duration;
        let read = |pairs: &[(&str, &str)]| {
            let data = pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            super::ArgoSettings::from_config_map_data(&data)
        };
        let default = read(&[]);
        assert_eq!(
            default.reconciliation(),
            Some((Duration::from_secs(180), Duration::from_secs(60)))
        );
        let set = read(&[
            ("timeout.reconciliation", "1h30m"),
            ("timeout.reconciliation.jitter", "1.5s"),
        ]);
        assert_eq!(
            set.reconciliation(),
            Some((Duration::from_secs(5400), Duration::from_millis(1500)))
        );
        assert_eq!(
            read(&[
                ("timeout.reconciliation", "2"),
                ("timeout.reconciliation.jitter", "10s")
            ])
            .reconciliation(),
            Some((Duration::from_secs(2), Duration::from_secs(2))),
            "a bare number is seconds; the jitter is at most the timeout"
        );
        assert_eq!(
            read(&[("timeout.reconciliation", "0s")]).reconciliation(),
            None
        );
        let bad = read(&[("timeout.reconciliation", "3 minutes")]);
        assert_eq!(bad.reconciliation(), default.reconciliation());
        assert!(
            bad.errors[0].starts_with("timeout.reconciliation: \"3 minutes\""),
            "{:?}",
            bad.errors
        );
    }

    use super::*;

    fn data(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn tracking_methods() {
        let method = |v: &str| {
            ArgoSettings::from_config_map_data(&data(&[(TRACKING_METHOD_KEY, v)])).tracking_method
        };
        assert_eq!(method("label"), TrackingMethod::Label);
        assert_eq!(method("annotation"), TrackingMethod::Annotation);
        assert_eq!(
            method("annotation+label"),
            TrackingMethod::AnnotationAndLabel
        );
        assert_eq!(
            ArgoSettings::from_config_map_data(&BTreeMap::new()).tracking_method,
            TrackingMethod::Annotation
        );
        let s = ArgoSettings::from_config_map_data(&data(&[(TRACKING_METHOD_KEY, "labels")]));
        assert_eq!(s.tracking_method, TrackingMethod::Annotation);
        assert!(
            s.errors[0].contains("\"labels\" is not one of"),
            "{:?}",
            s.errors
        );
        assert!(TrackingMethod::Label.writes_label());
        assert!(TrackingMethod::AnnotationAndLabel.writes_label());
        assert!(!TrackingMethod::Annotation.writes_label());
    }

    #[test]
    fn health_checks_by_group_and_kind() {
        let s = ArgoSettings::from_config_map_data(&data(&[
            (
                "resource.customizations.health.cert-manager.io_Certificate",
                "return {}",
            ),
            (
                "resource.customizations.health.ConfigMap",
                "return {status='Healthy'}",
            ),
            (
                "resource.customizations.health.*.crossplane.io_*",
                "return {status='Degraded'}",
            ),
            ("resource.customizations.health.a_b_c", "x"),
            (
                "resource.customizations.useOpenLibs.cert-manager.io_Certificate",
                "true",
            ),
            ("url", "https://argo.example.com"),
        ]));
        assert_eq!(s.health_checks.len(), 3);
        assert_eq!(
            s.health_check("cert-manager.io", "Certificate")
                .unwrap()
                .value,
            "return {}"
        );
        assert_eq!(
            s.health_check("", "ConfigMap").unwrap().setting,
            "resource.customizations.health.ConfigMap"
        );
        assert!(s.health_check("apps", "ConfigMap").is_none());
        assert!(s.health_check("", "Secret").is_none());
        assert_eq!(
            s.health_check("s3.aws.crossplane.io", "Bucket")
                .unwrap()
                .value,
            "return {status='Degraded'}"
        );
        assert_eq!(s.errors.len(), 1);
        assert!(s.errors[0].starts_with("resource.customizations.health.a_b_c:"));
    }

    #[test]
    fn ignore_differences_per_kind_and_for_all() {
        let s = ArgoSettings::from_config_map_data(&data(&[
            (
                "resource.customizations.ignoreDifferences.admissionregistration.k8s.io_MutatingWebhookConfiguration",
                "jqPathExpressions:\n- '.webhooks[]?.clientConfig.caBundle'\n",
            ),
            (
                "resource.customizations.ignoreDifferences.all",
                "managedFieldsManagers:\n- kube-controller-manager\njsonPointers:\n- /spec/replicas\n",
            ),
            (
                "resource.customizations.ignoreDifferences.apps_Deployment",
                "jsonPointers: [/spec/x]",
            ),
            (
                "resource.customizations.ignoreDifferences.Service",
                "- not a map",
            ),
        ]));
        let webhook = s.ignore_for(
            "admissionregistration.k8s.io",
            "MutatingWebhookConfiguration",
        );
        assert_eq!(
            webhook.jq_path_expressions,
            [".webhooks[]?.clientConfig.caBundle"]
        );
        assert_eq!(webhook.json_pointers, ["/spec/replicas"]);
        assert_eq!(webhook.managed_fields_managers, ["kube-controller-manager"]);
        let deploy = s.ignore_for("apps", "Deployment");
        assert_eq!(deploy.json_pointers.len(), 2);
        assert!(deploy.json_pointers.contains(&"/spec/x".to_owned()));
        assert_eq!(s.ignore_settings_for("apps", "Deployment").len(), 2);
        assert_eq!(s.errors.len(), 1);
        assert!(s.errors[0].starts_with("resource.customizations.ignoreDifferences.Service:"));
    }

    #[test]
    fn the_older_combined_key() {
        let s = ArgoSettings::from_config_map_data(&data(&[(
            "resource.customizations",
            r#"
cert-manager.io/Certificate:
  health.lua: |
    return {status = "Healthy"}
apps/Deployment:
  ignoreDifferences: |
    jsonPointers:
    - /spec/replicas
ConfigMap:
  ignoreDifferences:
    jqPathExpressions: ['.data.x']
"#,
        )]));
        assert!(s.errors.is_empty(), "{:?}", s.errors);
        assert!(
            s.health_check("cert-manager.io", "Certificate")
                .unwrap()
                .value
                .contains("Healthy")
        );
        assert_eq!(
            s.ignore_for("apps", "Deployment").json_pointers,
            ["/spec/replicas"]
        );
        assert_eq!(
            s.ignore_for("", "ConfigMap").jq_path_expressions,
            [".data.x"]
        );
    }

    #[test]
    fn exclusions_and_inclusions() {
        let s = ArgoSettings::from_config_map_data(&data(&[(
            "resource.exclusions",
            r#"
- apiGroups: ["*.example.com"]
  kinds: ["*"]
  clusters: ["*"]
- apiGroups: [""]
  kinds: [Event]
"#,
        )]));
        assert!(s.is_excluded("db.example.com", "Database", "https://k"));
        assert!(s.is_excluded("", "Event", "https://k"));
        assert!(!s.is_excluded("", "ConfigMap", "https://k"));
        let s = ArgoSettings::from_config_map_data(&data(&[(
            "resource.inclusions",
            "- apiGroups: [\"\", apps]\n  clusters: [https://kubernetes.default.svc]\n",
        )]));
        assert!(!s.is_excluded("apps", "Deployment", "https://kubernetes.default.svc"));
        assert!(s.is_excluded("batch", "Job", "https://kubernetes.default.svc"));
        assert!(s.is_excluded("apps", "Deployment", "https://other"));
        let s = ArgoSettings::from_config_map_data(&data(&[("resource.exclusions", "{a: b}")]));
        assert!(s.errors[0].starts_with("resource.exclusions: not a list"));
    }
}
