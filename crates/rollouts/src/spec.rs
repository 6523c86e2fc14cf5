//! The `Rollout` spec ferry reads: Argo Rollouts' canary strategy, parsed from the object's JSON
//! into checked types. Every field outside the supported subset that would change behaviour is
//! refused with an error naming the field, so that a Rollout never silently does less than its
//! author asked for (docs/rollouts.md lists the subset).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

/// The API group, version and kind of a Rollout.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";
/// The kind.
pub const KIND: &str = "Rollout";
/// The label that carries a ReplicaSet's pod-template hash (as Argo Rollouts names it).
pub const HASH_LABEL: &str = "rollouts-pod-template-hash";
/// The default `abortScaleDownDelaySeconds`.
pub const DEFAULT_ABORT_SCALE_DOWN_DELAY: Duration = Duration::from_secs(30);
/// The plugin name of Argo Rollouts' Gateway API traffic router.
pub const GATEWAY_API_PLUGIN: &str = "argoproj-labs/gatewayAPI";

/// A Rollout's spec that ferry can act on.
#[derive(Clone, Debug, PartialEq)]
pub struct RolloutSpec {
    /// `spec.replicas` (default 1).
    pub replicas: i64,
    /// `spec.selector` (or the referenced Deployment's), as JSON.
    pub selector: Option<Value>,
    /// `spec.template`, as JSON (absent with `workloadRef`).
    pub template: Option<Value>,
    /// `spec.workloadRef`.
    pub workload_ref: Option<WorkloadRef>,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.revisionHistoryLimit` (default 10).
    pub revision_history_limit: i64,
    /// `spec.strategy.canary`.
    pub canary: Canary,
}

/// `spec.workloadRef`: a Deployment whose pod template the Rollout runs.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// `apiVersion` (apps/v1).
    #[serde(default)]
    pub api_version: String,
    /// `kind` (Deployment).
    pub kind: String,
    /// The Deployment's name.
    pub name: String,
    /// `scaleDown`: `never` (default), `onsuccess` or `progressively`.
    #[serde(default)]
    pub scale_down: Option<String>,
}

/// `spec.strategy.canary`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Canary {
    /// `canaryService`.
    pub canary_service: Option<String>,
    /// `stableService`.
    pub stable_service: Option<String>,
    /// `steps`.
    pub steps: Vec<Step>,
    /// `analysis`: the background analysis.
    pub analysis: Option<AnalysisRef>,
    /// `abortScaleDownDelaySeconds`.
    pub abort_scale_down_delay: Duration,
    /// `trafficRouting`.
    pub traffic: Option<TrafficRouting>,
}

/// One canary step.
#[derive(Clone, Debug, PartialEq)]
pub enum Step {
    /// `setWeight: N`.
    SetWeight(i64),
    /// `pause: {}` or `pause: {duration: …}`.
    Pause(Option<Duration>),
    /// `analysis: {templates, args}`.
    Analysis(AnalysisRef),
    /// `setCanaryScale: {weight | replicas | matchTrafficWeight}`.
    SetCanaryScale(CanaryScale),
}

/// `setCanaryScale`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CanaryScale {
    /// `replicas: N`.
    Replicas(i64),
    /// `weight: N` (percent of `spec.replicas`).
    Weight(i64),
    /// `matchTrafficWeight: true`.
    MatchTrafficWeight,
}

/// `analysis` of a step or of the canary (background): templates and arguments, kept as Argo
/// Rollouts writes them and handed to the analysis module unchanged.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisRef {
    /// `templates`: `[{templateName, clusterScope}]`.
    #[serde(default)]
    pub templates: Vec<Value>,
    /// `args`: `[{name, value | valueFrom}]`.
    #[serde(default)]
    pub args: Vec<Value>,
    /// `startingStep` (background analysis only).
    #[serde(default)]
    pub starting_step: Option<i64>,
}

/// `trafficRouting`: ingress-nginx or the Gateway API.
#[derive(Clone, Debug, PartialEq)]
pub enum TrafficRouting {
    /// `nginx`.
    Nginx(Nginx),
    /// `plugins["argoproj-labs/gatewayAPI"]`.
    GatewayApi(GatewayApi),
}

/// `trafficRouting.nginx`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Nginx {
    /// `stableIngress`.
    pub stable_ingress: String,
    /// `annotationPrefix` (default `nginx.ingress.kubernetes.io`).
    pub annotation_prefix: String,
    /// `additionalIngressAnnotations` (e.g. `canary-by-header`), prefixed when applied.
    pub additional_annotations: BTreeMap<String, String>,
}

/// `trafficRouting.plugins["argoproj-labs/gatewayAPI"]`.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct GatewayApi {
    /// `httpRoute` (or each `httpRoutes[].name`).
    pub http_routes: Vec<String>,
    /// `namespace` (default: the Rollout's).
    pub namespace: Option<String>,
}

/// Why a Rollout's spec cannot be acted on. The message names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field}: {reason}")]
pub struct InvalidSpec {
    /// The field, from `spec.` on (e.g. `strategy.canary.steps[2]`).
    pub field: String,
    /// What is wrong and what to do.
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        field: field.into(),
        reason: reason.into(),
    }
}

fn int(v: &Value, field: &str) -> Result<i64, InvalidSpec> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| invalid(field, format!("{n} is not a whole number"))),
        // Argo Rollouts accepts intstr in a few places; a quoted number is read as a number.
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| invalid(field, format!("{s:?} is not a whole number"))),
        other => Err(invalid(field, format!("{other} is not a whole number"))),
    }
}

/// Parses a pause duration as Argo Rollouts does: a number of seconds, or a string with a unit
/// (`30s`, `5m`, `1h`, `1h30m`; a bare string number means seconds).
pub fn parse_duration(v: &Value, field: &str) -> Result<Duration, InvalidSpec> {
    let s = match v {
        Value::Number(_) => return Ok(Duration::from_secs(int(v, field)?.max(0) as u64)),
        Value::String(s) => s.trim(),
        other => {
            return Err(invalid(
                field,
                format!("{other} is not a duration like 30s"),
            ));
        }
    };
    if let Ok(n) = s.parse::<u64>() {
        return Ok(Duration::from_secs(n));
    }
    let bad = || invalid(field, format!("{s:?} is not a duration like 30s, 5m or 1h"));
    let mut total = Duration::ZERO;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        total += match unit {
            "ms" => Duration::from_millis(n),
            "s" => Duration::from_secs(n),
            "m" => Duration::from_secs(n * 60),
            "h" => Duration::from_secs(n * 3600),
            _ => return Err(bad()),
        };
    }
    Ok(total)
}

fn string_field(obj: &Value, key: &str, field: &str) -> Result<Option<String>, InvalidSpec> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(invalid(
            format!("{field}.{key}"),
            format!("{other} is not a string"),
        )),
    }
}

fn parse_analysis(v: &Value, field: &str) -> Result<AnalysisRef, InvalidSpec> {
    let a: AnalysisRef = serde_json::from_value(v.clone())
        .map_err(|e| invalid(field, format!("not an analysis: {e}")))?;
    if a.templates.is_empty() {
        return Err(invalid(
            format!("{field}.templates"),
            "no templates: name at least one AnalysisTemplate (templateName)",
        ));
    }
    for (i, t) in a.templates.iter().enumerate() {
        if t.get("templateName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
        {
            return Err(invalid(
                format!("{field}.templates[{i}].templateName"),
                "missing: name the AnalysisTemplate to run",
            ));
        }
    }
    Ok(a)
}

/// Parses one step (`steps[i]`).
pub fn parse_step(v: &Value, field: &str) -> Result<Step, InvalidSpec> {
    let Some(obj) = v.as_object() else {
        return Err(invalid(field, format!("{v} is not a step object")));
    };
    let keys: Vec<&String> = obj.keys().collect();
    let [key] = keys.as_slice() else {
        return Err(invalid(
            field,
            format!(
                "a step has exactly one of setWeight, pause, analysis, setCanaryScale; this one has {}",
                if keys.is_empty() {
                    "none".to_owned()
                } else {
                    keys.iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        ));
    };
    let value = &obj[key.as_str()];
    let field = format!("{field}.{key}");
    match key.as_str() {
        "setWeight" => {
            let w = int(value, &field)?;
            if !(0..=100).contains(&w) {
                return Err(invalid(field, format!("{w} is not a weight from 0 to 100")));
            }
            Ok(Step::SetWeight(w))
        }
        "pause" => match value.get("duration") {
            None | Some(Value::Null) => Ok(Step::Pause(None)),
            Some(d) => Ok(Step::Pause(Some(parse_duration(
                d,
                &format!("{field}.duration"),
            )?))),
        },
        "analysis" => Ok(Step::Analysis(parse_analysis(value, &field)?)),
        "setCanaryScale" => {
            if value.get("matchTrafficWeight").and_then(Value::as_bool) == Some(true) {
                Ok(Step::SetCanaryScale(CanaryScale::MatchTrafficWeight))
            } else if let Some(r) = value.get("replicas") {
                Ok(Step::SetCanaryScale(CanaryScale::Replicas(
                    int(r, &format!("{field}.replicas"))?.max(0),
                )))
            } else if let Some(w) = value.get("weight") {
                let w = int(w, &format!("{field}.weight"))?;
                if !(0..=100).contains(&w) {
                    return Err(invalid(field, format!("weight {w} is not from 0 to 100")));
                }
                Ok(Step::SetCanaryScale(CanaryScale::Weight(w)))
            } else {
                Err(invalid(
                    field,
                    "set one of replicas, weight or matchTrafficWeight: true",
                ))
            }
        }
        "experiment" | "setHeaderRoute" | "setMirrorRoute" | "plugin" => Err(invalid(
            field,
            "this step type of Argo Rollouts is not supported by ferry (supported: setWeight, pause, analysis, setCanaryScale)",
        )),
        other => Err(invalid(
            field,
            format!(
                "unknown step type {other:?} (supported: setWeight, pause, analysis, setCanaryScale)"
            ),
        )),
    }
}

fn parse_traffic(v: &Value) -> Result<Option<TrafficRouting>, InvalidSpec> {
    const F: &str = "strategy.canary.trafficRouting";
    let Some(obj) = v.as_object() else {
        return Ok(None);
    };
    let mut found = Vec::new();
    if let Some(n) = obj.get("nginx") {
        let field = format!("{F}.nginx");
        let stable_ingress = match string_field(n, "stableIngress", &field)? {
            Some(s) => s,
            None => {
                return Err(invalid(
                    format!("{field}.stableIngress"),
                    "missing: name the Ingress that serves the stable Service (stableIngresses is not supported)",
                ));
            }
        };
        let annotation_prefix = string_field(n, "annotationPrefix", &field)?
            .unwrap_or_else(|| "nginx.ingress.kubernetes.io".to_owned());
        let mut additional_annotations = BTreeMap::new();
        if let Some(a) = n
            .get("additionalIngressAnnotations")
            .and_then(Value::as_object)
        {
            for (k, v) in a {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                additional_annotations.insert(k.clone(), v);
            }
        }
        found.push(TrafficRouting::Nginx(Nginx {
            stable_ingress,
            annotation_prefix,
            additional_annotations,
        }));
    }
    if let Some(plugins) = obj.get("plugins").and_then(Value::as_object) {
        for (name, p) in plugins {
            let field = format!("{F}.plugins[{name:?}]");
            if name != GATEWAY_API_PLUGIN {
                return Err(invalid(
                    field,
                    format!(
                        "ferry routes traffic with the plugin {GATEWAY_API_PLUGIN:?} only (or nginx)"
                    ),
                ));
            }
            let mut http_routes = Vec::new();
            if let Some(r) = string_field(p, "httpRoute", &field)? {
                http_routes.push(r);
            }
            if let Some(rs) = p.get("httpRoutes").and_then(Value::as_array) {
                for (i, r) in rs.iter().enumerate() {
                    match r.get("name").and_then(Value::as_str) {
                        Some(n) if !n.is_empty() => http_routes.push(n.to_owned()),
                        _ => {
                            return Err(invalid(
                                format!("{field}.httpRoutes[{i}].name"),
                                "missing: name the HTTPRoute",
                            ));
                        }
                    }
                }
            }
            if http_routes.is_empty() {
                return Err(invalid(
                    format!("{field}.httpRoute"),
                    "missing: name the HTTPRoute whose backendRefs carry the weights",
                ));
            }
            found.push(TrafficRouting::GatewayApi(GatewayApi {
                http_routes,
                namespace: string_field(p, "namespace", &field)?,
            }));
        }
    }
    for other in obj.keys() {
        if !matches!(other.as_str(), "nginx" | "plugins" | "managedRoutes") {
            return Err(invalid(
                format!("{F}.{other}"),
                "not supported by ferry: use nginx or the plugin argoproj-labs/gatewayAPI",
            ));
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(invalid(F, "set one traffic router, not several")),
    }
}

impl RolloutSpec {
    /// Reads and checks a Rollout's `spec` (the whole object's JSON).
    pub fn parse(rollout: &Value) -> Result<Self, InvalidSpec> {
        let spec = rollout.get("spec").cloned().unwrap_or(Value::Null);
        let replicas = match spec.get("replicas") {
            None | Some(Value::Null) => 1,
            Some(r) => int(r, "replicas")?,
        };
        if replicas < 0 {
            return Err(invalid("replicas", format!("{replicas} is negative")));
        }
        let template = spec.get("template").filter(|t| !t.is_null()).cloned();
        let workload_ref = match spec.get("workloadRef").filter(|w| !w.is_null()) {
            None => None,
            Some(w) => {
                let w: WorkloadRef = serde_json::from_value(w.clone()).map_err(|e| {
                    invalid("workloadRef", format!("not a workload reference: {e}"))
                })?;
                if w.kind != "Deployment" {
                    return Err(invalid(
                        "workloadRef.kind",
                        format!("{:?} is not supported: refer to a Deployment", w.kind),
                    ));
                }
                if let Some(s) = &w.scale_down
                    && !matches!(s.as_str(), "never" | "onsuccess" | "progressively")
                {
                    return Err(invalid(
                        "workloadRef.scaleDown",
                        format!("{s:?} is not one of never, onsuccess, progressively"),
                    ));
                }
                Some(w)
            }
        };
        match (&template, &workload_ref) {
            (None, None) => {
                return Err(invalid(
                    "template",
                    "missing: give a pod template, or a workloadRef to a Deployment",
                ));
            }
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "workloadRef",
                    "set either template or workloadRef, not both",
                ));
            }
            _ => {}
        }
        let selector = spec.get("selector").filter(|s| !s.is_null()).cloned();
        if selector.is_none() && workload_ref.is_none() {
            return Err(invalid(
                "selector",
                "missing: give the pods' label selector",
            ));
        }
        let strategy = spec.get("strategy").cloned().unwrap_or(Value::Null);
        if strategy.get("blueGreen").is_some_and(|b| !b.is_null()) {
            return Err(invalid(
                "strategy.blueGreen",
                "the blue-green strategy is not supported by ferry: use strategy.canary",
            ));
        }
        let Some(c) = strategy.get("canary").filter(|c| c.is_object()) else {
            return Err(invalid(
                "strategy.canary",
                "missing: ferry runs the canary strategy (strategy.canary)",
            ));
        };
        const F: &str = "strategy.canary";
        let mut steps = Vec::new();
        if let Some(list) = c.get("steps").filter(|s| !s.is_null()) {
            let Some(list) = list.as_array() else {
                return Err(invalid(format!("{F}.steps"), "is not a list"));
            };
            for (i, s) in list.iter().enumerate() {
                steps.push(parse_step(s, &format!("{F}.steps[{i}]"))?);
            }
        }
        let analysis = match c.get("analysis").filter(|a| !a.is_null()) {
            None => None,
            Some(a) => Some(parse_analysis(a, &format!("{F}.analysis"))?),
        };
        let abort_scale_down_delay = match c.get("abortScaleDownDelaySeconds") {
            None | Some(Value::Null) => DEFAULT_ABORT_SCALE_DOWN_DELAY,
            Some(v) => Duration::from_secs(
                int(v, &format!("{F}.abortScaleDownDelaySeconds"))?.max(0) as u64,
            ),
        };
        let traffic = match c.get("trafficRouting") {
            None | Some(Value::Null) => None,
            Some(t) => parse_traffic(t)?,
        };
        let canary_service = string_field(c, "canaryService", F)?;
        let stable_service = string_field(c, "stableService", F)?;
        if traffic.is_some() && (canary_service.is_none() || stable_service.is_none()) {
            return Err(invalid(
                format!("{F}.trafficRouting"),
                "traffic routing needs both canaryService and stableService",
            ));
        }
        if canary_service.is_some() && canary_service == stable_service {
            return Err(invalid(
                format!("{F}.canaryService"),
                "must differ from stableService",
            ));
        }
        Ok(Self {
            replicas,
            selector,
            template,
            workload_ref,
            paused: spec.get("paused").and_then(Value::as_bool) == Some(true),
            revision_history_limit: spec
                .get("revisionHistoryLimit")
                .and_then(Value::as_i64)
                .unwrap_or(10)
                .max(0),
            canary: Canary {
                canary_service,
                stable_service,
                steps,
                analysis,
                abort_scale_down_delay,
                traffic,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(canary: Value) -> Value {
        json!({"spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}},
            "strategy": {"canary": canary}
        }})
    }

    #[test]
    fn the_canary_subset_parses() {
        let s = RolloutSpec::parse(&rollout(json!({
            "canaryService": "web-canary", "stableService": "web-stable",
            "abortScaleDownDelaySeconds": 5,
            "analysis": {"templates": [{"templateName": "bg"}], "startingStep": 1},
            "trafficRouting": {"nginx": {"stableIngress": "web", "additionalIngressAnnotations": {"canary-by-header": "X-Canary"}}},
            "steps": [
                {"setWeight": 20}, {"pause": {"duration": "1m30s"}}, {"pause": {}},
                {"analysis": {"templates": [{"templateName": "error-rate"}], "args": [{"name": "svc", "value": "web"}]}},
                {"setCanaryScale": {"replicas": 2}}
            ]
        })))
        .unwrap();
        assert_eq!(s.replicas, 3);
        assert_eq!(s.canary.abort_scale_down_delay, Duration::from_secs(5));
        assert_eq!(s.canary.steps[0], Step::SetWeight(20));
        assert_eq!(
            s.canary.steps[1],
            Step::Pause(Some(Duration::from_secs(90)))
        );
        assert_eq!(s.canary.steps[2], Step::Pause(None));
        assert!(matches!(&s.canary.steps[3], Step::Analysis(a) if a.args.len() == 1));
        assert_eq!(
            s.canary.steps[4],
            Step::SetCanaryScale(CanaryScale::Replicas(2))
        );
        assert!(
            matches!(&s.canary.traffic, Some(TrafficRouting::Nginx(n)) if n.additional_annotations["canary-by-header"] == "X-Canary")
        );
        assert_eq!(s.canary.analysis.unwrap().starting_step, Some(1));
    }

    #[test]
    fn the_gateway_api_plugin_parses() {
        let s = RolloutSpec::parse(&rollout(json!({
            "canaryService": "c", "stableService": "s",
            "trafficRouting": {"plugins": {"argoproj-labs/gatewayAPI": {"httpRoute": "web", "namespace": "shop"}}}
        })))
        .unwrap();
        assert_eq!(
            s.canary.traffic,
            Some(TrafficRouting::GatewayApi(GatewayApi {
                http_routes: vec!["web".into()],
                namespace: Some("shop".into())
            }))
        );
    }

    #[test]
    fn bad_input_names_the_field() {
        let e = RolloutSpec::parse(&rollout(
            json!({"steps": [{"setWeight": 20}, {"setWieght": 50}]}),
        ))
        .unwrap_err();
        assert_eq!(e.field, "strategy.canary.steps[1].setWieght");
        assert!(e.reason.contains("unknown step type"), "{e}");
        let e = RolloutSpec::parse(&rollout(json!({"steps": [{"setWeight": 120}]}))).unwrap_err();
        assert!(e.to_string().contains("steps[0].setWeight"), "{e}");
        let e = RolloutSpec::parse(&rollout(
            json!({"steps": [{"pause": {"duration": "soon"}}]}),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("pause.duration"), "{e}");
        let e = RolloutSpec::parse(&rollout(json!({"steps": [{"experiment": {}}]}))).unwrap_err();
        assert!(e.reason.contains("not supported"), "{e}");
        let e = RolloutSpec::parse(&rollout(
            json!({"steps": [{"analysis": {"templates": []}}]}),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("templates"), "{e}");
        let e = RolloutSpec::parse(&rollout(
            json!({"trafficRouting": {"nginx": {"stableIngress": "w"}}}),
        ))
        .unwrap_err();
        assert!(e.reason.contains("canaryService"), "{e}");
        let e = RolloutSpec::parse(
            &json!({"spec": {"strategy": {"blueGreen": {}}, "template": {}, "selector": {}}}),
        )
        .unwrap_err();
        assert!(e.field.contains("blueGreen"), "{e}");
        let e = RolloutSpec::parse(&rollout(
            json!({"trafficRouting": {"istio": {}}, "canaryService": "c", "stableService": "s"}),
        ))
        .unwrap_err();
        assert!(e.field.contains("istio"), "{e}");
    }

    #[test]
    fn durations_parse_as_argo_rollouts_writes_them() {
        let d = |v: Value| parse_duration(&v, "d");
        assert_eq!(d(json!(30)).unwrap(), Duration::from_secs(30));
        assert_eq!(d(json!("30")).unwrap(), Duration::from_secs(30));
        assert_eq!(d(json!("5m")).unwrap(), Duration::from_secs(300));
        assert_eq!(d(json!("1h30m")).unwrap(), Duration::from_secs(5400));
        assert!(d(json!("")).is_err());
        assert!(d(json!("m")).is_err());
        assert!(d(json!("5x")).is_err());
    }
}
