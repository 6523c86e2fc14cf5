//! Traffic weights: ingress-nginx (a canary Ingress cloned from the stable one, with nginx's
//! `canary` and `canary-weight` annotations) and the Gateway API (the weights of an
//! `HTTPRoute`'s backendRefs to the stable and canary Services).

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::kube_util::{self, HTTP_ROUTE, INGRESS};
use crate::spec::{GatewayApi, Nginx};

/// Why weights could not be set. The message names the object and says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum TrafficError {
    /// The stable Ingress or the HTTPRoute is missing or does not route to the stable Service.
    #[error("{0}")]
    Invalid(String),
    /// The API server refused or failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
}

fn kube_err(what: String) -> impl FnOnce(kube::Error) -> TrafficError {
    move |source| TrafficError::Kube { what, source }
}

/// The canary Ingress's name, as Argo Rollouts names it.
pub fn canary_ingress_name(rollout: &str, stable_ingress: &str) -> String {
    let name = format!("{rollout}-{stable_ingress}-canary");
    // Object names are at most 253 characters; Argo Rollouts trims the same way.
    name.chars().take(253).collect()
}

/// The canary Ingress for `weight`: the stable Ingress's rules with every backend of the stable
/// Service sent to the canary Service, and nginx's canary annotations.
pub fn canary_ingress(
    stable: &Value,
    nginx: &Nginx,
    rollout: &Value,
    stable_service: &str,
    canary_service: &str,
    weight: i64,
) -> Result<Value, String> {
    let rollout_name = rollout["metadata"]["name"].as_str().unwrap_or_default();
    let ingress_name = stable["metadata"]["name"].as_str().unwrap_or_default();
    let mut spec = stable.get("spec").cloned().unwrap_or(json!({}));
    let mut replaced = 0;
    replace_backends(&mut spec, stable_service, canary_service, &mut replaced);
    if replaced == 0 {
        return Err(format!(
            "Ingress {ingress_name:?} (trafficRouting.nginx.stableIngress) has no backend with the stable Service {stable_service:?}: route it to the stableService"
        ));
    }
    // The canary Ingress must not repeat a TLS or class default: nginx takes those from the stable one.
    if let Some(o) = spec.as_object_mut() {
        o.remove("defaultBackend");
    }
    let prefix = &nginx.annotation_prefix;
    let mut annotations = BTreeMap::new();
    annotations.insert(format!("{prefix}/canary"), "true".to_owned());
    annotations.insert(format!("{prefix}/canary-weight"), weight.to_string());
    for (k, v) in &nginx.additional_annotations {
        annotations.insert(format!("{prefix}/{k}"), v.clone());
    }
    Ok(json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": canary_ingress_name(rollout_name, ingress_name),
            "namespace": stable["metadata"]["namespace"],
            "annotations": annotations,
            "labels": { "app.kubernetes.io/managed-by": "ferry-rollouts" },
            "ownerReferences": [owner_reference(rollout)],
        },
        "spec": spec,
    }))
}

fn replace_backends(v: &mut Value, from: &str, to: &str, count: &mut usize) {
    match v {
        Value::Object(m) => {
            if let Some(svc) = m.get_mut("service")
                && svc.get("name").and_then(Value::as_str) == Some(from)
            {
                svc["name"] = to.into();
                *count += 1;
            }
            for (_, child) in m.iter_mut() {
                replace_backends(child, from, to, count);
            }
        }
        Value::Array(a) => a
            .iter_mut()
            .for_each(|c| replace_backends(c, from, to, count)),
        _ => {}
    }
}

/// An owner reference to the Rollout, so its canary objects go with it.
pub fn owner_reference(rollout: &Value) -> Value {
    json!({
        "apiVersion": crate::spec::API_VERSION,
        "kind": crate::spec::KIND,
        "name": rollout["metadata"]["name"],
        "uid": rollout["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Sets the weights of `route`'s backendRefs to the stable and canary Services. Returns whether
/// anything changed. Every rule that routes to both Services gets the weights; a route with
/// no such rule is an error.
pub fn set_route_weights(
    route: &mut Value,
    stable_service: &str,
    canary_service: &str,
    weight: i64,
) -> Result<bool, String> {
    let name = route["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let mut found = 0;
    let mut changed = false;
    if let Some(rules) = route
        .pointer_mut("/spec/rules")
        .and_then(Value::as_array_mut)
    {
        for rule in rules {
            let Some(refs) = rule.get_mut("backendRefs").and_then(Value::as_array_mut) else {
                continue;
            };
            let has = |n: &str| {
                refs.iter()
                    .any(|r| r.get("name").and_then(Value::as_str) == Some(n))
            };
            if !(has(stable_service) && has(canary_service)) {
                continue;
            }
            found += 1;
            for r in refs.iter_mut() {
                let w = match r.get("name").and_then(Value::as_str) {
                    Some(n) if n == stable_service => 100 - weight,
                    Some(n) if n == canary_service => weight,
                    _ => continue,
                };
                if r.get("weight").and_then(Value::as_i64) != Some(w) {
                    r["weight"] = w.into();
                    changed = true;
                }
            }
        }
    }
    if found == 0 {
        return Err(format!(
            "HTTPRoute {name:?} has no rule with backendRefs to both {stable_service:?} and {canary_service:?}: list both Services in the rule's backendRefs"
        ));
    }
    Ok(changed)
}

/// Sets the canary weight through ingress-nginx.
pub async fn set_nginx_weight(
    client: &kube::Client,
    namespace: &str,
    rollout: &Value,
    nginx: &Nginx,
    stable_service: &str,
    canary_service: &str,
    weight: i64,
) -> Result<(), TrafficError> {
    let stable = kube_util::get(client, INGRESS, namespace, &nginx.stable_ingress)
        .await
        .map_err(kube_err(format!("reading Ingress {namespace}/{}", nginx.stable_ingress)))?
        .ok_or_else(|| {
            TrafficError::Invalid(format!(
                "spec.strategy.canary.trafficRouting.nginx.stableIngress: Ingress {:?} not found in namespace {namespace:?}: create it or fix the name",
                nginx.stable_ingress
            ))
        })?;
    let canary = canary_ingress(
        &stable,
        nginx,
        rollout,
        stable_service,
        canary_service,
        weight,
    )
    .map_err(TrafficError::Invalid)?;
    let name = canary["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    kube_util::apply(client, INGRESS, namespace, &canary)
        .await
        .map_err(kube_err(format!(
            "applying the canary Ingress {namespace}/{name}"
        )))
}

/// Checks that the traffic router's objects exist and route to the stable Service, without
/// changing anything.
pub async fn check_router(
    client: &kube::Client,
    namespace: &str,
    traffic: &crate::spec::TrafficRouting,
    stable_service: &str,
    canary_service: &str,
) -> Result<(), TrafficError> {
    match traffic {
        crate::spec::TrafficRouting::Nginx(nginx) => {
            let stable = kube_util::get(client, INGRESS, namespace, &nginx.stable_ingress)
                .await
                .map_err(kube_err(format!("reading Ingress {namespace}/{}", nginx.stable_ingress)))?
                .ok_or_else(|| {
                    TrafficError::Invalid(format!(
                        "spec.strategy.canary.trafficRouting.nginx.stableIngress: Ingress {:?} not found in namespace {namespace:?}: create it or fix the name",
                        nginx.stable_ingress
                    ))
                })?;
            let fake = json!({"metadata": {"name": "x", "uid": "x"}});
            canary_ingress(&stable, nginx, &fake, stable_service, canary_service, 0)
                .map(|_| ())
                .map_err(TrafficError::Invalid)
        }
        crate::spec::TrafficRouting::GatewayApi(g) => {
            let ns = g.namespace.as_deref().unwrap_or(namespace);
            for r in &g.http_routes {
                let mut route = read_route(client, ns, r).await?;
                set_route_weights(&mut route, stable_service, canary_service, 0)
                    .map_err(TrafficError::Invalid)?;
            }
            Ok(())
        }
    }
}

async fn read_route(client: &kube::Client, ns: &str, name: &str) -> Result<Value, TrafficError> {
    // Without the Gateway API's CRDs the route reads as missing too: the message says both.
    kube_util::get(client, HTTP_ROUTE, ns, name)
        .await
        .map_err(kube_err(format!("reading HTTPRoute {ns}/{name}")))?
        .ok_or_else(|| {
            TrafficError::Invalid(format!(
                "trafficRouting.plugins[\"argoproj-labs/gatewayAPI\"].httpRoute: HTTPRoute {name:?} not found in namespace {ns:?}: create it or fix the name (and install the Gateway API CRDs if the kind is missing)"
            ))
        })
}

/// Sets the canary weight through the Gateway API.
pub async fn set_gateway_weight(
    client: &kube::Client,
    namespace: &str,
    g: &GatewayApi,
    stable_service: &str,
    canary_service: &str,
    weight: i64,
) -> Result<(), TrafficError> {
    let ns = g.namespace.as_deref().unwrap_or(namespace);
    for r in &g.http_routes {
        let mut route = read_route(client, ns, r).await?;
        if set_route_weights(&mut route, stable_service, canary_service, weight)
            .map_err(TrafficError::Invalid)?
        {
            kube_util::replace(client, HTTP_ROUTE, ns, &route)
                .await
                .map_err(kube_err(format!(
                    "setting the weights of HTTPRoute {ns}/{r}"
                )))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout() -> Value {
        json!({"metadata": {"name": "web", "uid": "u1"}})
    }

    #[test]
    fn canary_ingress_sends_the_stable_backends_to_the_canary() {
        let stable = json!({
            "metadata": {"name": "web", "namespace": "shop", "annotations": {"kubernetes.io/ingress.class": "nginx"}},
            "spec": {"ingressClassName": "nginx", "rules": [{"host": "web.local", "http": {"paths": [
                {"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "web-stable", "port": {"number": 80}}}},
                {"path": "/other", "pathType": "Prefix", "backend": {"service": {"name": "other", "port": {"number": 80}}}}
            ]}}]}
        });
        let nginx = Nginx {
            stable_ingress: "web".into(),
            annotation_prefix: "nginx.ingress.kubernetes.io".into(),
            additional_annotations: [("canary-by-header".to_owned(), "X-Canary".to_owned())].into(),
        };
        let c =
            canary_ingress(&stable, &nginx, &rollout(), "web-stable", "web-canary", 20).unwrap();
        assert_eq!(c["metadata"]["name"], "web-web-canary");
        assert_eq!(c["metadata"]["namespace"], "shop");
        let a = &c["metadata"]["annotations"];
        assert_eq!(a["nginx.ingress.kubernetes.io/canary"], "true");
        assert_eq!(a["nginx.ingress.kubernetes.io/canary-weight"], "20");
        assert_eq!(
            a["nginx.ingress.kubernetes.io/canary-by-header"],
            "X-Canary"
        );
        let paths = &c["spec"]["rules"][0]["http"]["paths"];
        assert_eq!(paths[0]["backend"]["service"]["name"], "web-canary");
        assert_eq!(paths[1]["backend"]["service"]["name"], "other");
        assert_eq!(c["metadata"]["ownerReferences"][0]["uid"], "u1");

        let err =
            canary_ingress(&stable, &nginx, &rollout(), "nope", "web-canary", 20).unwrap_err();
        assert!(err.contains("\"nope\""), "{err}");
    }

    #[test]
    fn route_weights_are_set_on_rules_with_both_services() {
        let mut route = json!({"metadata": {"name": "web"}, "spec": {"rules": [
            {"backendRefs": [{"name": "web-stable", "port": 80, "weight": 100}, {"name": "web-canary", "port": 80, "weight": 0}]},
            {"backendRefs": [{"name": "other", "port": 80}]}
        ]}});
        assert!(set_route_weights(&mut route, "web-stable", "web-canary", 30).unwrap());
        assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["weight"], 70);
        assert_eq!(route["spec"]["rules"][0]["backendRefs"][1]["weight"], 30);
        assert!(
            route["spec"]["rules"][1]["backendRefs"][0]
                .get("weight")
                .is_none()
        );
        assert!(!set_route_weights(&mut route, "web-stable", "web-canary", 30).unwrap());
        let err = set_route_weights(&mut route, "web-stable", "missing", 30).unwrap_err();
        assert!(
            err.contains("\"missing\"") && err.contains("HTTPRoute \"web\""),
            "{err}"
        );
    }
}
