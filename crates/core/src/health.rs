//! Built-in health rules, after Argo CD's, over the JSON of a live object.
//!
//! [`assess_health`] looks at `apiVersion` and `kind` and applies the matching rule; kinds without
//! a rule are Healthy once they exist. An object that should exist but does not is
//! [`HealthStatusCode::Missing`]; deciding that is the caller's job (there is no object to pass).
//! The app's health is the [`worst`] of its resources'.

use serde_json::Value;

use crate::application::HealthStatus;
pub use crate::application::HealthStatusCode;
use crate::tracking::group_of;

/// The health of one object: a status code and, usually, a message saying why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// The status code.
    pub status: HealthStatusCode,
    /// Why, in words.
    pub message: Option<String>,
}

impl Health {
    /// A health with a message (none when the message is empty).
    pub fn new(status: HealthStatusCode, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            status,
            message: (!message.is_empty()).then_some(message),
        }
    }

    /// A health without a message.
    pub fn bare(status: HealthStatusCode) -> Self {
        Self {
            status,
            message: None,
        }
    }
}

impl From<Health> for HealthStatus {
    fn from(health: Health) -> Self {
        Self {
            status: health.status,
            message: health.message,
        }
    }
}

/// The worst of several health codes (`Healthy < Suspended < Progressing < Missing < Degraded <
/// Unknown`); `Healthy` when there are none.
pub fn worst<I: IntoIterator<Item = HealthStatusCode>>(codes: I) -> HealthStatusCode {
    codes.into_iter().max().unwrap_or(HealthStatusCode::Healthy)
}

/// Whether ferry has a specific health rule for `group`/`kind`. Argo CD shows no health for
/// kinds without one (a ConfigMap, say); [`assess_health`] calls them Healthy.
pub fn has_health_rule(group: &str, kind: &str) -> bool {
    rule_for(group, kind).is_some()
}

type Rule = fn(&Value) -> Health;

fn rule_for(group: &str, kind: &str) -> Option<Rule> {
    let rule: Rule = match (group, kind) {
        ("apps" | "extensions", "Deployment") => deployment,
        ("apps", "StatefulSet") => stateful_set,
        ("apps" | "extensions", "DaemonSet") => daemon_set,
        ("apps" | "extensions", "ReplicaSet") => replica_set,
        ("", "Pod") => pod,
        ("", "Service") => service,
        ("", "PersistentVolumeClaim") => persistent_volume_claim,
        ("batch", "Job") => job,
        ("batch", "CronJob") => cron_job,
        ("networking.k8s.io" | "extensions", "Ingress") => ingress,
        ("argoproj.io", "Application") => application,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => custom_resource_definition,
        ("autoscaling", "HorizontalPodAutoscaler") => horizontal_pod_autoscaler,
        ("apiregistration.k8s.io", "APIService") => api_service,
        ("cert-manager.io", "Certificate") => crate::health_crds::certificate,
        ("cert-manager.io", "Issuer" | "ClusterIssuer") => crate::health_crds::issuer,
        ("tekton.dev", "PipelineRun" | "TaskRun") => crate::health_crds::tekton_run,
        ("argoproj.io", "Rollout") => crate::health_crds::rollout,
        ("monitoring.coreos.com", "Prometheus" | "Alertmanager") => {
            crate::health_crds::prometheus_operator
        }
        _ => return None,
    };
    Some(rule)
}

/// Assesses the health of a live object given as JSON.
///
/// Returns `None` only when `obj` has no string `apiVersion` and `kind` (it is not a Kubernetes
/// object). An object being deleted is Progressing ("Pending deletion"); kinds with a rule (see
/// [`has_health_rule`]) are assessed by it; all other kinds are Healthy.
pub fn assess_health(obj: &Value) -> Option<Health> {
    let api_version = obj.get("apiVersion")?.as_str()?;
    let kind = obj.get("kind")?.as_str()?;
    if obj
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return Some(Health::new(
            HealthStatusCode::Progressing,
            "Pending deletion",
        ));
    }
    Some(match rule_for(group_of(api_version), kind) {
        Some(rule) => rule(obj),
        None => Health::bare(HealthStatusCode::Healthy),
    })
}

// ---- field access helpers -------------------------------------------------------------------

fn int(obj: &Value, pointer: &str) -> Option<i64> {
    obj.pointer(pointer).and_then(Value::as_i64)
}

/// An integer field, 0 when absent (as Kubernetes omits zero counts).
fn count(obj: &Value, pointer: &str) -> i64 {
    int(obj, pointer).unwrap_or(0)
}

fn string<'a>(obj: &'a Value, pointer: &str) -> Option<&'a str> {
    obj.pointer(pointer).and_then(Value::as_str)
}

fn is_true(obj: &Value, pointer: &str) -> bool {
    obj.pointer(pointer).and_then(Value::as_bool) == Some(true)
}

fn items<'a>(obj: &'a Value, pointer: &str) -> &'a [Value] {
    obj.pointer(pointer)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The condition of `type_` in `status.conditions`.
fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    items(obj, "/status/conditions")
        .iter()
        .find(|c| c.get("type").and_then(Value::as_str) == Some(type_))
}

fn condition_status<'a>(obj: &'a Value, type_: &str) -> Option<&'a str> {
    condition(obj, type_)?.get("status")?.as_str()
}

fn condition_message(cond: &Value) -> String {
    cond.get("message")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// Whether the controller has seen the latest spec (`metadata.generation` <=
/// `status.observedGeneration`).
fn generation_observed(obj: &Value) -> bool {
    count(obj, "/metadata/generation") <= count(obj, "/status/observedGeneration")
}

fn name(obj: &Value) -> &str {
    string(obj, "/metadata/name").unwrap_or_default()
}

fn has_lb_ingress(obj: &Value) -> bool {
    !items(obj, "/status/loadBalancer/ingress").is_empty()
}

use HealthStatusCode::{Degraded, Healthy, Progressing, Suspended, Unknown};

// ---- rules ------------------------------------------------------------------------------------

fn deployment(obj: &Value) -> Health {
    if is_true(obj, "/spec/paused") {
        return Health::new(Suspended, "Deployment is paused");
    }
    if !generation_observed(obj) {
        return Health::new(
            Progressing,
            "Waiting for rollout to finish: the controller has not seen the latest spec yet",
        );
    }
    if condition(obj, "Progressing")
        .and_then(|c| c.get("reason"))
        .and_then(Value::as_str)
        == Some("ProgressDeadlineExceeded")
    {
        return Health::new(
            Degraded,
            format!(
                "Deployment {:?} did not finish its rollout in time",
                name(obj)
            ),
        );
    }
    let desired = int(obj, "/spec/replicas").unwrap_or(1);
    let updated = count(obj, "/status/updatedReplicas");
    let total = count(obj, "/status/replicas");
    let available = count(obj, "/status/availableReplicas");
    if updated < desired {
        return Health::new(
            Progressing,
            format!("Waiting for rollout to finish: {updated} of {desired} replicas updated"),
        );
    }
    if total > updated {
        return Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {} old replicas still terminating",
                total - updated
            ),
        );
    }
    if available < updated {
        return Health::new(
            Progressing,
            format!(
                "Waiting for rollout to finish: {available} of {updated} updated replicas available"
            ),
        );
    }
    Health::bare(Healthy)
}

fn stateful_set(obj: &Value) -> Health {
    let observed = count(obj, "/status/observedGeneration");
    if observed == 0 || !generation_observed(obj) {
        return Health::new(
            Progressing,
            "Waiting for the controller to observe the StatefulSet's latest spec",
        );
    }
    let desired = int(obj, "/spec/replicas").unwrap_or(1);
    let ready = count(obj, "/status/readyReplicas");
    if ready < desired {
        return Health::new(
            Progressing,
            format!("Waiting for pods to be ready: {ready} of {desired}"),
        );
    }
    let strategy = string(obj, "/spec/updateStrategy/type").unwrap_or("RollingUpdate");
    if strategy == "RollingUpdate"
        && let Some(partition) = int(obj, "/spec/updateStrategy/rollingUpdate/partition")
    {
        let updated = count(obj, "/status/updatedReplicas");
        let expected = (desired - partition).max(0);
        if updated < expected {
            return Health::new(
                Progressing,
                format!("Waiting for partitioned rollout: {updated} of {expected} pods updated"),
            );
        }
        return Health::new(
            Healthy,
            format!("Partitioned rollout complete: {updated} pods updated"),
        );
    }
    if strategy == "OnDelete" {
        return Health::new(Healthy, format!("{ready} pods ready (OnDelete updates)"));
    }
    let current = string(obj, "/status/currentRevision");
    let update = string(obj, "/status/updateRevision");
    if update.is_some() && current != update {
        return Health::new(
            Progressing,
            format!(
                "Waiting for rolling update to finish: {} pods at revision {}",
                count(obj, "/status/updatedReplicas"),
                update.unwrap_or_default()
            ),
        );
    }
    Health::new(
        Healthy,
        format!("Rolling update complete: {ready} pods at the current revision"),
    )
}

fn daemon_set(obj: &Value) -> Health {
    if !generation_observed(obj) {
        return Health::new(
            Progressing,
            "Waiting for rollout to finish: the controller has not seen the latest spec yet",
        );
    }
    let desired = count(obj, "/status/desiredNumberScheduled");
    let updated = count(obj, "/status/updatedNumberScheduled");
    let available = count(obj, "/status/numberAvailable");
    if string(obj, "/spec/updateStrategy/type") == Some("OnDelete") {
        return Health::new(
            Healthy,
            format!("{updated} of {desired} pods updated (OnDelete updates)"),
        );
    }
    if updated < desired {
        return Health::new(
            Progressing,
            format!("Waiting for rollout to finish: {updated} of {desired} pods updated"),
        );
    }
    if available < desired {
        return Health::new(
            Progressing,
            format!("Waiting for rollout to finish: {available} of {desired} pods available"),
        );
    }
    Health::bare(Healthy)
}

fn replica_set(obj: &Value) -> Health {
    if !generation_observed(obj) {
        return Health::new(
            Progressing,
            "Waiting for rollout to finish: the controller has not seen the latest spec yet",
        );
    }
    if let Some(failure) = condition(obj, "ReplicaFailure")
        .filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
    {
        return Health::new(Degraded, condition_message(failure));
    }
    let desired = int(obj, "/spec/replicas").unwrap_or(1);
    let available = count(obj, "/status/availableReplicas");
    if available < desired {
        return Health::new(
            Progressing,
            format!("Waiting for rollout to finish: {available} of {desired} replicas available"),
        );
    }
    Health::bare(Healthy)
}

fn pod(obj: &Value) -> Health {
    let restart_policy = string(obj, "/spec/restartPolicy").unwrap_or("Always");
    let statuses = || {
        items(obj, "/status/initContainerStatuses")
            .iter()
            .chain(items(obj, "/status/containerStatuses"))
    };
    let message = string(obj, "/status/message").unwrap_or_default();
    if restart_policy == "Always" {
        // Containers stuck in crash loops or image pull errors will not recover by themselves.
        let stuck: Vec<String> = statuses()
            .filter_map(|s| s.pointer("/state/waiting"))
            .filter(|w| {
                let reason = w.get("reason").and_then(Value::as_str).unwrap_or_default();
                reason.starts_with("Err")
                    || reason.ends_with("Error")
                    || reason.ends_with("BackOff")
            })
            .map(|w| {
                let reason = w.get("reason").and_then(Value::as_str).unwrap_or_default();
                match w.get("message").and_then(Value::as_str) {
                    Some(m) if !m.is_empty() => format!("{reason}: {m}"),
                    _ => reason.to_owned(),
                }
            })
            .collect();
        if !stuck.is_empty() {
            return Health::new(Degraded, stuck.join(", "));
        }
    }
    match string(obj, "/status/phase").unwrap_or_default() {
        "Pending" => Health::new(Progressing, message),
        "Succeeded" => Health::new(Healthy, message),
        "Failed" => {
            if !message.is_empty() {
                return Health::new(Degraded, message);
            }
            let failed = statuses().find_map(|s| {
                let code = s.pointer("/state/terminated/exitCode")?.as_i64()?;
                (code != 0).then(|| {
                    let container = s.get("name").and_then(Value::as_str).unwrap_or_default();
                    format!("container {container:?} exited with code {code}")
                })
            });
            Health::new(Degraded, failed.unwrap_or_default())
        }
        "Running" if restart_policy == "Always" => {
            if condition_status(obj, "Ready") == Some("True") {
                return Health::new(Healthy, message);
            }
            if statuses().any(|s| s.pointer("/lastState/terminated").is_some()) {
                return Health::new(Degraded, "a container restarted and the pod is not ready");
            }
            Health::new(Progressing, "Waiting for the pod to be ready")
        }
        // Pods that run to completion (hooks, Job pods) are Progressing while they run.
        "Running" => Health::new(Progressing, "Running"),
        _ => Health::new(Unknown, message),
    }
}

fn service(obj: &Value) -> Health {
    if string(obj, "/spec/type") == Some("LoadBalancer") && !has_lb_ingress(obj) {
        return Health::new(
            Progressing,
            "Waiting for the load balancer to get an address",
        );
    }
    Health::bare(Healthy)
}

fn ingress(obj: &Value) -> Health {
    if has_lb_ingress(obj) {
        Health::bare(Healthy)
    } else {
        Health::new(
            Progressing,
            "Waiting for the ingress controller to assign an address",
        )
    }
}

fn persistent_volume_claim(obj: &Value) -> Health {
    match string(obj, "/status/phase") {
        Some("Bound") => Health::bare(Healthy),
        Some("Pending") => Health::new(Progressing, "Waiting for the claim to be bound"),
        Some("Lost") => Health::new(Degraded, "The claim lost its volume"),
        other => Health::new(
            Unknown,
            format!("Unexpected claim phase {:?}", other.unwrap_or_default()),
        ),
    }
}

fn job(obj: &Value) -> Health {
    let true_condition = |type_| {
        condition(obj, type_).filter(|c| c.get("status").and_then(Value::as_str) == Some("True"))
    };
    if let Some(failed) = true_condition("Failed") {
        return Health::new(Degraded, condition_message(failed));
    }
    if let Some(complete) = true_condition("Complete") {
        return Health::new(Healthy, condition_message(complete));
    }
    if let Some(suspended) = true_condition("Suspended") {
        return Health::new(Suspended, condition_message(suspended));
    }
    Health::new(Progressing, "Job is running")
}

fn cron_job(obj: &Value) -> Health {
    if is_true(obj, "/spec/suspend") {
        return Health::new(Suspended, "CronJob is suspended");
    }
    let active = items(obj, "/status/active").len();
    if active > 0 {
        return Health::new(Healthy, format!("{active} job(s) running"));
    }
    // Kubernetes writes these timestamps in one RFC 3339 form (second precision, UTC), so they
    // compare correctly as strings.
    match (
        string(obj, "/status/lastScheduleTime"),
        string(obj, "/status/lastSuccessfulTime"),
    ) {
        (Some(scheduled), success) if success.is_none_or(|s| s < scheduled) => Health::new(
            Degraded,
            "The last scheduled job did not complete successfully",
        ),
        (Some(_), _) => Health::new(Healthy, "The last scheduled job completed successfully"),
        (None, _) => Health::new(Healthy, "No job scheduled yet"),
    }
}

fn application(obj: &Value) -> Health {
    // ferry-specific: a child Application that is syncing is not done yet.
    let operation_running = obj.get("operation").is_some_and(|o| !o.is_null())
        || matches!(
            string(obj, "/status/operationState/phase"),
            Some("Running" | "Terminating")
        );
    if operation_running {
        return Health::new(Progressing, "The application is syncing");
    }
    // ferry-specific: a child whose desired state could not be worked out is not on its way
    // to anything; its health says so rather than "Progressing".
    for type_ in ["InvalidSpecError", "ComparisonError"] {
        if let Some(c) = condition(obj, type_) {
            return Health::new(
                Unknown,
                format!(
                    "{type_}: {}",
                    c.get("message").and_then(Value::as_str).unwrap_or_default()
                ),
            );
        }
    }
    match obj.pointer("/status/health") {
        Some(health) if health.get("status").and_then(Value::as_str).is_some() => {
            let status: HealthStatus = serde_json::from_value(health.clone()).unwrap_or_default();
            Health {
                status: status.status,
                message: status.message,
            }
        }
        _ => Health::new(Progressing, "Waiting for the application to be reconciled"),
    }
}

fn custom_resource_definition(obj: &Value) -> Health {
    if condition_status(obj, "NamesAccepted") == Some("False") {
        let message = condition(obj, "NamesAccepted").map(condition_message);
        return Health::new(Degraded, message.unwrap_or_default());
    }
    if condition_status(obj, "NonStructuralSchema") == Some("True") {
        let message = condition(obj, "NonStructuralSchema").map(condition_message);
        return Health::new(Degraded, message.unwrap_or_default());
    }
    if condition_status(obj, "Established") == Some("True") {
        return Health::bare(Healthy);
    }
    Health::new(Progressing, "Waiting for the CRD to be established")
}

fn horizontal_pod_autoscaler(obj: &Value) -> Health {
    const DEGRADED: [(&str, &str); 4] = [
        ("AbleToScale", "FailedGetScale"),
        ("AbleToScale", "FailedUpdateScale"),
        ("ScalingActive", "FailedGetResourceMetric"),
        ("ScalingActive", "InvalidSelector"),
    ];
    const HEALTHY: [(&str, &str); 4] = [
        ("AbleToScale", "SucceededRescale"),
        ("ScalingLimited", "DesiredWithinRange"),
        ("ScalingLimited", "TooFewReplicas"),
        ("ScalingLimited", "TooManyReplicas"),
    ];
    let conditions = items(obj, "/status/conditions");
    if conditions.is_empty() {
        return Health::new(Healthy, "No conditions reported");
    }
    for c in conditions {
        let type_ = c.get("type").and_then(Value::as_str).unwrap_or_default();
        let reason = c.get("reason").and_then(Value::as_str).unwrap_or_default();
        let status = c.get("status").and_then(Value::as_str).unwrap_or_default();
        if DEGRADED.contains(&(type_, reason)) {
            return Health::new(Degraded, condition_message(c));
        }
        if status == "True" && HEALTHY.contains(&(type_, reason)) {
            return Health::new(Healthy, condition_message(c));
        }
    }
    Health::new(Progressing, "Waiting for the autoscaler to become active")
}

fn api_service(obj: &Value) -> Health {
    match condition(obj, "Available") {
        Some(c) if c.get("status").and_then(Value::as_str) == Some("True") => {
            Health::new(Healthy, condition_message(c))
        }
        Some(c) => Health::new(Progressing, condition_message(c)),
        None => Health::new(
            Progressing,
            "Waiting for the API service to become available",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Asserts the status (and, when given, a part of the message) for each case.
    fn check(cases: &[(&str, Value, HealthStatusCode, &str)]) {
        for (label, obj, want, message_part) in cases {
            let got = assess_health(obj).unwrap_or_else(|| panic!("{label}: no health"));
            assert_eq!(got.status, *want, "{label}: {got:?}");
            let message = got.message.unwrap_or_default();
            assert!(
                message.contains(message_part),
                "{label}: message {message:?} lacks {message_part:?}"
            );
        }
    }

    fn deploy(spec: Value, status: Value, generation: i64) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "generation": generation},
               "spec": spec, "status": status})
    }

    #[test]
    fn deployment_rules() {
        let ok = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3,
                        "availableReplicas": 3});
        check(&[
            (
                "healthy",
                deploy(json!({"replicas": 3}), ok.clone(), 2),
                Healthy,
                "",
            ),
            (
                "paused",
                deploy(json!({"replicas": 3, "paused": true}), ok.clone(), 2),
                Suspended,
                "paused",
            ),
            (
                "new generation",
                deploy(json!({"replicas": 3}), ok, 3),
                Progressing,
                "latest spec",
            ),
            (
                "deadline",
                deploy(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 1, "conditions": [
                        {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}
                    ]}),
                    1,
                ),
                Degraded,
                "in time",
            ),
            (
                "updating",
                deploy(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 1, "replicas": 3,
                    "updatedReplicas": 1, "availableReplicas": 3}),
                    1,
                ),
                Progressing,
                "1 of 3 replicas updated",
            ),
            (
                "old replicas",
                deploy(
                    json!({"replicas": 2}),
                    json!({"observedGeneration": 1, "replicas": 3,
                    "updatedReplicas": 2, "availableReplicas": 2}),
                    1,
                ),
                Progressing,
                "1 old replicas",
            ),
            (
                "not available",
                deploy(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 1, "replicas": 3,
                    "updatedReplicas": 3, "availableReplicas": 1}),
                    1,
                ),
                Progressing,
                "1 of 3 updated replicas available",
            ),
            (
                "scaled to zero",
                deploy(json!({"replicas": 0}), json!({"observedGeneration": 1}), 1),
                Healthy,
                "",
            ),
        ]);
    }

    fn sts(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
               "metadata": {"name": "db", "generation": 1}, "spec": spec, "status": status})
    }

    #[test]
    fn stateful_set_rules() {
        check(&[
            (
                "healthy",
                sts(
                    json!({"replicas": 2}),
                    json!({"observedGeneration": 1, "readyReplicas": 2,
                    "currentRevision": "db-1", "updateRevision": "db-1"}),
                ),
                Healthy,
                "complete",
            ),
            (
                "not observed",
                sts(json!({"replicas": 2}), json!({"readyReplicas": 2})),
                Progressing,
                "observe",
            ),
            (
                "not ready",
                sts(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 1, "readyReplicas": 1}),
                ),
                Progressing,
                "1 of 3",
            ),
            (
                "partition pending",
                sts(
                    json!({"replicas": 4, "updateStrategy": {"type": "RollingUpdate",
                           "rollingUpdate": {"partition": 2}}}),
                    json!({"observedGeneration": 1, "readyReplicas": 4, "updatedReplicas": 1}),
                ),
                Progressing,
                "1 of 2",
            ),
            (
                "partition done",
                sts(
                    json!({"replicas": 4, "updateStrategy": {"type": "RollingUpdate",
                           "rollingUpdate": {"partition": 2}}}),
                    json!({"observedGeneration": 1, "readyReplicas": 4, "updatedReplicas": 2,
                           "currentRevision": "a", "updateRevision": "b"}),
                ),
                Healthy,
                "Partitioned",
            ),
            (
                "on delete",
                sts(
                    json!({"replicas": 1, "updateStrategy": {"type": "OnDelete"}}),
                    json!({"observedGeneration": 1, "readyReplicas": 1,
                           "currentRevision": "a", "updateRevision": "b"}),
                ),
                Healthy,
                "OnDelete",
            ),
            (
                "revision differs",
                sts(
                    json!({"replicas": 1}),
                    json!({"observedGeneration": 1, "readyReplicas": 1,
                    "currentRevision": "db-1", "updateRevision": "db-2"}),
                ),
                Progressing,
                "db-2",
            ),
        ]);
    }

    fn ds(generation: i64, strategy: &str, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
               "metadata": {"name": "agent", "generation": generation},
               "spec": {"updateStrategy": {"type": strategy}}, "status": status})
    }

    #[test]
    fn daemon_set_rules() {
        let full = json!({"observedGeneration": 1, "desiredNumberScheduled": 3,
                          "updatedNumberScheduled": 3, "numberAvailable": 3});
        check(&[
            ("healthy", ds(1, "RollingUpdate", full.clone()), Healthy, ""),
            (
                "new generation",
                ds(2, "RollingUpdate", full),
                Progressing,
                "latest spec",
            ),
            (
                "updating",
                ds(
                    1,
                    "RollingUpdate",
                    json!({"observedGeneration": 1, "desiredNumberScheduled": 3,
                    "updatedNumberScheduled": 1, "numberAvailable": 3}),
                ),
                Progressing,
                "1 of 3 pods updated",
            ),
            (
                "unavailable",
                ds(
                    1,
                    "RollingUpdate",
                    json!({"observedGeneration": 1, "desiredNumberScheduled": 3,
                    "updatedNumberScheduled": 3, "numberAvailable": 2}),
                ),
                Progressing,
                "2 of 3 pods available",
            ),
            (
                "on delete",
                ds(
                    1,
                    "OnDelete",
                    json!({"observedGeneration": 1, "desiredNumberScheduled": 3,
                    "updatedNumberScheduled": 0, "numberAvailable": 3}),
                ),
                Healthy,
                "OnDelete",
            ),
        ]);
    }

    fn rs(status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
               "metadata": {"name": "web-abc", "generation": 1},
               "spec": {"replicas": 2}, "status": status})
    }

    #[test]
    fn replica_set_rules() {
        check(&[
            (
                "healthy",
                rs(json!({"observedGeneration": 1, "availableReplicas": 2})),
                Healthy,
                "",
            ),
            (
                "waiting",
                rs(json!({"observedGeneration": 1, "availableReplicas": 1})),
                Progressing,
                "1 of 2",
            ),
            (
                "not observed",
                rs(json!({"availableReplicas": 2})),
                Progressing,
                "latest spec",
            ),
            (
                "failure",
                rs(
                    json!({"observedGeneration": 1, "conditions": [{"type": "ReplicaFailure",
                    "status": "True", "message": "pods \"web\" is forbidden: exceeded quota"}]}),
                ),
                Degraded,
                "exceeded quota",
            ),
        ]);
    }

    fn pod_obj(restart: &str, status: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
               "spec": {"restartPolicy": restart}, "status": status})
    }

    #[test]
    fn pod_rules() {
        check(&[
            (
                "pending",
                pod_obj("Always", json!({"phase": "Pending"})),
                Progressing,
                "",
            ),
            (
                "succeeded",
                pod_obj("Never", json!({"phase": "Succeeded"})),
                Healthy,
                "",
            ),
            (
                "failed with message",
                pod_obj("Never", json!({"phase": "Failed", "message": "evicted"})),
                Degraded,
                "evicted",
            ),
            (
                "failed exit code",
                pod_obj(
                    "Never",
                    json!({"phase": "Failed", "containerStatuses": [
                    {"name": "main", "state": {"terminated": {"exitCode": 1}}}]}),
                ),
                Degraded,
                "code 1",
            ),
            (
                "running ready",
                pod_obj(
                    "Always",
                    json!({"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "True"}]}),
                ),
                Healthy,
                "",
            ),
            (
                "running not ready",
                pod_obj(
                    "Always",
                    json!({"phase": "Running",
                    "conditions": [{"type": "Ready", "status": "False"}]}),
                ),
                Progressing,
                "ready",
            ),
            (
                "restarted and not ready",
                pod_obj(
                    "Always",
                    json!({"phase": "Running", "containerStatuses": [
                    {"name": "main", "lastState": {"terminated": {"exitCode": 2}}}]}),
                ),
                Degraded,
                "restarted",
            ),
            (
                "crash loop",
                pod_obj(
                    "Always",
                    json!({"phase": "Running", "containerStatuses": [
                    {"name": "main", "state": {"waiting": {"reason": "CrashLoopBackOff",
                     "message": "back-off 5m0s"}}}]}),
                ),
                Degraded,
                "CrashLoopBackOff: back-off",
            ),
            (
                "image pull error while pending",
                pod_obj(
                    "Always",
                    json!({"phase": "Pending", "containerStatuses": [
                    {"name": "main", "state": {"waiting": {"reason": "ErrImagePull"}}}]}),
                ),
                Degraded,
                "ErrImagePull",
            ),
            (
                "hook pod running",
                pod_obj(
                    "Never",
                    json!({"phase": "Running", "containerStatuses": [
                    {"name": "main", "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}),
                ),
                Progressing,
                "",
            ),
            (
                "unknown phase",
                pod_obj("Always", json!({"phase": "Unknown"})),
                Unknown,
                "",
            ),
        ]);
    }

    #[test]
    fn pod_without_restart_policy_defaults_to_always() {
        let obj = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        assert_eq!(assess_health(&obj).unwrap().status, Healthy);
    }

    fn svc(type_: &str, status: Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"type": type_}, "status": status})
    }

    #[test]
    fn service_rules() {
        check(&[
            ("cluster ip", svc("ClusterIP", json!({})), Healthy, ""),
            (
                "lb waiting",
                svc("LoadBalancer", json!({"loadBalancer": {}})),
                Progressing,
                "load balancer",
            ),
            (
                "lb empty ingress",
                svc("LoadBalancer", json!({"loadBalancer": {"ingress": []}})),
                Progressing,
                "",
            ),
            (
                "lb ready",
                svc(
                    "LoadBalancer",
                    json!({"loadBalancer": {"ingress": [{"ip": "127.0.0.2"}]}}),
                ),
                Healthy,
                "",
            ),
        ]);
    }

    #[test]
    fn ingress_rules() {
        let ing = |status: Value| {
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                   "metadata": {"name": "i"}, "status": status})
        };
        check(&[
            ("no status", ing(json!({})), Progressing, "address"),
            (
                "empty",
                ing(json!({"loadBalancer": {"ingress": []}})),
                Progressing,
                "",
            ),
            (
                "ready",
                ing(json!({"loadBalancer": {"ingress": [{"hostname": "lb"}]}})),
                Healthy,
                "",
            ),
        ]);
    }

    #[test]
    fn pvc_rules() {
        let pvc = |phase: &str| {
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                   "metadata": {"name": "data"}, "status": {"phase": phase}})
        };
        check(&[
            ("bound", pvc("Bound"), Healthy, ""),
            ("pending", pvc("Pending"), Progressing, "bound"),
            ("lost", pvc("Lost"), Degraded, "lost"),
            ("odd", pvc("Weird"), Unknown, "Weird"),
        ]);
    }

    fn job_obj(conditions: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
               "status": {"conditions": conditions}})
    }

    #[test]
    fn job_rules() {
        check(&[
            ("running", job_obj(json!([])), Progressing, "running"),
            (
                "complete",
                job_obj(json!([{"type": "Complete", "status": "True", "message": "done"}])),
                Healthy,
                "done",
            ),
            (
                "failed",
                job_obj(json!([{"type": "Failed", "status": "True",
                                "message": "Job has reached the specified backoff limit"}])),
                Degraded,
                "backoff limit",
            ),
            (
                "suspended",
                job_obj(json!([{"type": "Suspended", "status": "True", "message": "paused"}])),
                Suspended,
                "paused",
            ),
            (
                "resumed",
                job_obj(json!([{"type": "Suspended", "status": "False"}])),
                Progressing,
                "",
            ),
        ]);
    }

    fn cron(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
               "spec": spec, "status": status})
    }

    #[test]
    fn cron_job_rules() {
        check(&[
            ("never ran", cron(json!({}), json!({})), Healthy, "No job"),
            (
                "suspended",
                cron(json!({"suspend": true}), json!({})),
                Suspended,
                "suspended",
            ),
            (
                "last succeeded",
                cron(
                    json!({}),
                    json!({"lastScheduleTime": "2025-01-01T10:00:00Z",
                    "lastSuccessfulTime": "2025-01-01T10:00:30Z"}),
                ),
                Healthy,
                "successfully",
            ),
            (
                "last failed",
                cron(
                    json!({}),
                    json!({"lastScheduleTime": "2025-01-01T11:00:00Z",
                    "lastSuccessfulTime": "2025-01-01T10:00:30Z"}),
                ),
                Degraded,
                "did not complete",
            ),
            (
                "never succeeded",
                cron(
                    json!({}),
                    json!({"lastScheduleTime": "2025-01-01T11:00:00Z"}),
                ),
                Degraded,
                "",
            ),
            (
                "running",
                cron(
                    json!({}),
                    json!({"lastScheduleTime": "2025-01-01T11:00:00Z",
                    "active": [{"name": "c-1"}]}),
                ),
                Healthy,
                "running",
            ),
        ]);
    }

    fn app(extra: Value) -> Value {
        let mut obj = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                             "metadata": {"name": "child"}, "spec": {}});
        for (k, v) in extra.as_object().unwrap() {
            obj[k] = v.clone();
        }
        obj
    }

    #[test]
    fn child_application_rules() {
        check(&[
            ("no status", app(json!({})), Progressing, "reconciled"),
            (
                "healthy",
                app(json!({"status": {"health": {"status": "Healthy"}}})),
                Healthy,
                "",
            ),
            (
                "degraded",
                app(json!({"status": {"health": {"status": "Degraded", "message": "boom"}}})),
                Degraded,
                "boom",
            ),
            (
                "missing",
                app(json!({"status": {"health": {"status": "Missing"}}})),
                HealthStatusCode::Missing,
                "",
            ),
            (
                "syncing",
                app(json!({"status": {"health": {"status": "Healthy"},
                                      "operationState": {"phase": "Running"}}})),
                Progressing,
                "syncing",
            ),
            (
                "operation requested",
                app(
                    json!({"operation": {"sync": {}}, "status": {"health": {"status": "Healthy"}}}),
                ),
                Progressing,
                "syncing",
            ),
            (
                "sync finished",
                app(json!({"status": {"health": {"status": "Healthy"},
                                      "operationState": {"phase": "Succeeded"}}})),
                Healthy,
                "",
            ),
            (
                "comparison failed",
                app(json!({"status": {"health": {"status": "Healthy"},
                                      "sync": {"status": "Unknown"},
                                      "conditions": [{"type": "ComparisonError",
                                                      "message": "repo unreachable"}]}})),
                Unknown,
                "ComparisonError: repo unreachable",
            ),
        ]);
    }

    #[test]
    fn crd_rules() {
        let crd = |conditions: Value| {
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                   "metadata": {"name": "widgets.example.com"}, "status": {"conditions": conditions}})
        };
        check(&[
            (
                "established",
                crd(json!([{"type": "Established", "status": "True"}])),
                Healthy,
                "",
            ),
            (
                "not yet",
                crd(json!([{"type": "Established", "status": "False"}])),
                Progressing,
                "established",
            ),
            ("no conditions", crd(json!([])), Progressing, ""),
            (
                "name conflict",
                crd(
                    json!([{"type": "NamesAccepted", "status": "False", "message": "plural taken"},
                           {"type": "Established", "status": "False"}]),
                ),
                Degraded,
                "plural taken",
            ),
        ]);
    }

    #[test]
    fn hpa_rules() {
        let hpa = |conditions: Value| {
            json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                   "metadata": {"name": "h"}, "status": {"conditions": conditions}})
        };
        check(&[
            ("no conditions", hpa(json!([])), Healthy, ""),
            (
                "metrics missing",
                hpa(json!([{"type": "ScalingActive", "status": "False",
                            "reason": "FailedGetResourceMetric", "message": "no metrics"}])),
                Degraded,
                "no metrics",
            ),
            (
                "within range",
                hpa(json!([{"type": "ScalingLimited", "status": "True",
                            "reason": "DesiredWithinRange", "message": "ok"}])),
                Healthy,
                "ok",
            ),
            (
                "other",
                hpa(
                    json!([{"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"}]),
                ),
                Progressing,
                "",
            ),
        ]);
    }

    #[test]
    fn api_service_rules() {
        let svc = |conditions: Value| {
            json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
                   "metadata": {"name": "v1beta1.metrics.k8s.io"}, "status": {"conditions": conditions}})
        };
        check(&[
            (
                "available",
                svc(json!([{"type": "Available", "status": "True", "message": "all good"}])),
                Healthy,
                "all good",
            ),
            (
                "unavailable",
                svc(
                    json!([{"type": "Available", "status": "False", "message": "endpoints missing"}]),
                ),
                Progressing,
                "endpoints",
            ),
            ("no conditions", svc(json!([])), Progressing, "available"),
        ]);
    }

    #[test]
    fn deletion_timestamp_wins() {
        let obj = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "deletionTimestamp": "2025-01-01T00:00:00Z"}});
        check(&[("deleting", obj, Progressing, "Pending deletion")]);
        let job = json!({"apiVersion": "batch/v1", "kind": "Job",
            "metadata": {"name": "j", "deletionTimestamp": "2025-01-01T00:00:00Z"},
            "status": {"conditions": [{"type": "Failed", "status": "True"}]}});
        assert_eq!(assess_health(&job).unwrap().status, Progressing);
    }

    #[test]
    fn other_kinds_are_healthy_and_non_objects_have_no_health() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(assess_health(&cm), Some(Health::bare(Healthy)));
        let cr =
            json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}});
        assert_eq!(assess_health(&cr).unwrap().status, Healthy);
        // A custom kind named like a core one is not judged by the core rule.
        let knative = json!({"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "s"}, "spec": {"type": "LoadBalancer"}});
        assert_eq!(assess_health(&knative).unwrap().status, Healthy);
        assert_eq!(assess_health(&json!({"kind": "Pod"})), None);
        assert_eq!(assess_health(&json!("not an object")), None);
    }

    #[test]
    fn health_rule_lookup() {
        assert!(has_health_rule("apps", "Deployment"));
        assert!(has_health_rule("", "Pod"));
        assert!(has_health_rule("argoproj.io", "Application"));
        assert!(!has_health_rule("", "ConfigMap"));
        assert!(!has_health_rule("example.com", "Deployment"));
    }

    #[test]
    fn worst_of_codes() {
        use HealthStatusCode::Missing;
        assert_eq!(worst([]), Healthy);
        assert_eq!(worst([Healthy, Healthy]), Healthy);
        assert_eq!(worst([Healthy, Suspended]), Suspended);
        assert_eq!(worst([Suspended, Progressing, Healthy]), Progressing);
        assert_eq!(worst([Progressing, Missing]), Missing);
        assert_eq!(worst([Degraded, Missing, Progressing]), Degraded);
        assert_eq!(worst([Degraded, Unknown]), Unknown);
    }

    #[test]
    fn health_converts_to_status() {
        let status: HealthStatus = Health::new(Degraded, "x").into();
        assert_eq!(status.status, Degraded);
        assert_eq!(status.message.as_deref(), Some("x"));
    }
}
