//! Health rules for the custom resources the workshop installs, following the checks Argo CD
//! bundles for them: cert-manager (`Certificate`, `Issuer`, `ClusterIssuer`), Tekton
//! (`PipelineRun`, `TaskRun`), the Prometheus operator (`Prometheus`, `Alertmanager`) and Argo
//! Rollouts (`Rollout`, which ferry runs itself).

use serde_json::Value;

use crate::application::HealthStatusCode::{self, Degraded, Healthy, Progressing, Suspended};
use crate::health::Health;

fn conditions(obj: &Value) -> &[Value] {
    obj.pointer("/status/conditions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn field<'a>(c: &'a Value, name: &str) -> &'a str {
    c.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn with_message(status: HealthStatusCode, message: &str) -> Health {
    Health {
        status,
        message: (!message.is_empty()).then(|| message.to_owned()),
    }
}

/// Argo Rollouts `Rollout`, as Argo CD's bundled check reads it: a status for an older
/// generation → Progressing; `status.phase` `Paused` → Suspended, `Degraded` → Degraded,
/// `Healthy` → Healthy, `Progressing` → Progressing, each with `status.message`; no phase yet →
/// Progressing.
pub(crate) fn rollout(obj: &Value) -> Health {
    let generation = obj.pointer("/metadata/generation").map(|g| match g {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let observed = obj.pointer("/status/observedGeneration").map(|g| match g {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    if let (Some(g), Some(o)) = (&generation, &observed)
        && g != o
    {
        return with_message(
            Progressing,
            "Waiting for rollout spec update to be observed",
        );
    }
    let message = obj
        .pointer("/status/message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match obj.pointer("/status/phase").and_then(Value::as_str) {
        Some("Healthy") => with_message(Healthy, message),
        Some("Paused") => with_message(
            Suspended,
            if message.is_empty() {
                "Rollout is paused"
            } else {
                message
            },
        ),
        Some("Degraded") => with_message(Degraded, message),
        Some(_) => with_message(Progressing, message),
        None => with_message(Progressing, "Waiting for rollout to be observed"),
    }
}

/// cert-manager `Certificate`: issuing → Progressing; Ready False → Degraded; Ready True →
/// Healthy; otherwise Progressing ("Waiting for certificate").
pub(crate) fn certificate(obj: &Value) -> Health {
    let conds = conditions(obj);
    if let Some(c) = conds
        .iter()
        .find(|c| field(c, "type") == "Issuing" && field(c, "status") == "True")
    {
        return with_message(Progressing, field(c, "message"));
    }
    for c in conds.iter().filter(|c| field(c, "type") == "Ready") {
        match field(c, "status") {
            "False" => return with_message(Degraded, field(c, "message")),
            "True" => return with_message(Healthy, field(c, "message")),
            _ => {}
        }
    }
    with_message(Progressing, "Waiting for certificate")
}

/// cert-manager `Issuer` / `ClusterIssuer`: Ready True → Healthy, False → Degraded, otherwise
/// Progressing ("Initializing issuer").
pub(crate) fn issuer(obj: &Value) -> Health {
    for c in conditions(obj)
        .iter()
        .filter(|c| field(c, "type") == "Ready")
    {
        match field(c, "status") {
            "True" => return with_message(Healthy, field(c, "message")),
            "False" => return with_message(Degraded, field(c, "message")),
            _ => {}
        }
    }
    with_message(Progressing, "Initializing issuer")
}

/// Tekton `PipelineRun` / `TaskRun`: the `Succeeded` condition — True → Healthy, False →
/// Degraded (cancelled runs too), Unknown or absent → Progressing.
pub(crate) fn tekton_run(obj: &Value) -> Health {
    match conditions(obj)
        .iter()
        .find(|c| field(c, "type") == "Succeeded")
    {
        Some(c) => {
            let message = match field(c, "message") {
                "" => field(c, "reason"),
                m => m,
            };
            match field(c, "status") {
                "True" => with_message(Healthy, message),
                "False" => with_message(Degraded, message),
                _ => with_message(Progressing, message),
            }
        }
        None => with_message(Progressing, "Waiting for the run to start"),
    }
}

/// Prometheus operator `Prometheus` / `Alertmanager`: the `Available` condition — True →
/// Healthy, otherwise Progressing while some pods are not ready (`SomePodsNotReady`) and
/// Degraded for any other reason; no condition yet → Progressing.
pub(crate) fn prometheus_operator(obj: &Value) -> Health {
    match conditions(obj)
        .iter()
        .find(|c| field(c, "type") == "Available")
    {
        Some(c) if field(c, "status") == "True" => {
            with_message(Healthy, "All instances are available")
        }
        Some(c) => {
            let message = match field(c, "message") {
                "" => field(c, "reason"),
                m => m,
            };
            let status = if field(c, "reason") == "SomePodsNotReady" {
                Progressing
            } else {
                Degraded
            };
            with_message(status, message)
        }
        None => with_message(Progressing, "Waiting for initialization"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::health::assess_health;
    use serde_json::json;

    fn obj(api_version: &str, kind: &str, conditions: Value) -> Value {
        json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"},
            "status": {"conditions": conditions}})
    }

    fn status_of(o: &Value) -> HealthStatusCode {
        assess_health(o).unwrap().status
    }

    #[test]
    fn argo_rollouts_rollouts() {
        let ro = |phase: Option<&str>, generation: i64, observed: &str| {
            let mut o = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": {"name": "web", "generation": generation},
                "status": {"observedGeneration": observed, "message": "m"}});
            if let Some(p) = phase {
                o["status"]["phase"] = p.into();
            }
            o
        };
        assert_eq!(status_of(&ro(Some("Healthy"), 2, "2")), Healthy);
        assert_eq!(status_of(&ro(Some("Paused"), 2, "2")), Suspended);
        assert_eq!(status_of(&ro(Some("Degraded"), 2, "2")), Degraded);
        assert_eq!(status_of(&ro(Some("Progressing"), 2, "2")), Progressing);
        assert_eq!(status_of(&ro(None, 2, "2")), Progressing);
        // A status written for an older spec is not trusted yet.
        assert_eq!(status_of(&ro(Some("Healthy"), 3, "2")), Progressing);
        let h = assess_health(&ro(Some("Degraded"), 1, "1")).unwrap();
        assert_eq!(h.message.as_deref(), Some("m"));
    }

    #[test]
    fn cert_manager_certificates_and_issuers() {
        let cert = |c: Value| obj("cert-manager.io/v1", "Certificate", c);
        assert_eq!(
            status_of(&cert(json!([{"type": "Ready", "status": "True"}]))),
            Healthy
        );
        let h = assess_health(&cert(json!([
            {"type": "Ready", "status": "False", "message": "issuer not found"}
        ])))
        .unwrap();
        assert_eq!(
            (h.status, h.message.as_deref()),
            (Degraded, Some("issuer not found"))
        );
        // Issuing wins over a stale Ready.
        assert_eq!(
            status_of(&cert(json!([
                {"type": "Ready", "status": "False"},
                {"type": "Issuing", "status": "True", "message": "renewing"}
            ]))),
            Progressing
        );
        assert_eq!(status_of(&cert(json!([]))), Progressing);
        for kind in ["Issuer", "ClusterIssuer"] {
            let issuer = |c: Value| obj("cert-manager.io/v1", kind, c);
            assert_eq!(
                status_of(&issuer(json!([{"type": "Ready", "status": "True"}]))),
                Healthy
            );
            assert_eq!(
                status_of(&issuer(json!([{"type": "Ready", "status": "False"}]))),
                Degraded
            );
            assert_eq!(status_of(&issuer(json!(null))), Progressing);
        }
    }

    #[test]
    fn tekton_runs() {
        for kind in ["PipelineRun", "TaskRun"] {
            let run = |c: Value| obj("tekton.dev/v1", kind, c);
            assert_eq!(
                status_of(&run(json!([{"type": "Succeeded", "status": "True"}]))),
                Healthy
            );
            let h = assess_health(&run(json!([
                {"type": "Succeeded", "status": "False", "reason": "Failed", "message": "step build failed"}
            ])))
            .unwrap();
            assert_eq!(
                (h.status, h.message.as_deref()),
                (Degraded, Some("step build failed"))
            );
            assert_eq!(
                status_of(&run(
                    json!([{"type": "Succeeded", "status": "Unknown", "reason": "Running"}])
                )),
                Progressing
            );
            assert_eq!(status_of(&run(json!(null))), Progressing);
        }
    }

    #[test]
    fn prometheus_operator_objects() {
        for kind in ["Prometheus", "Alertmanager"] {
            let o = |c: Value| obj("monitoring.coreos.com/v1", kind, c);
            assert_eq!(
                status_of(&o(json!([{"type": "Available", "status": "True"}]))),
                Healthy
            );
            assert_eq!(
                status_of(&o(
                    json!([{"type": "Available", "status": "Degraded", "reason": "SomePodsNotReady"}])
                )),
                Progressing
            );
            let h = assess_health(&o(json!([
                {"type": "Available", "status": "False", "reason": "NoPodReady", "message": "0/1 ready"}
            ])))
            .unwrap();
            assert_eq!(
                (h.status, h.message.as_deref()),
                (Degraded, Some("0/1 ready"))
            );
            assert_eq!(status_of(&o(json!(null))), Progressing);
        }
    }
}
