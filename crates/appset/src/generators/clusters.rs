//! The `clusters` generator: one parameter set per cluster registered as a Secret labelled
//! `argocd.argoproj.io/secret-type: cluster` in ferry's namespace, and the local cluster
//! (`in-cluster`, `https://kubernetes.default.svc`) as Argo CD includes it: when the generator
//! has no `selector` and no Secret registers it already.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use crate::params::{GeneratorError, Params};
use crate::types::LabelSelector;

/// The label that marks cluster Secrets.
pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";
/// The local cluster's server URL, as Argo CD names it.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
/// The local cluster's name, as Argo CD names it.
pub const IN_CLUSTER_NAME: &str = "in-cluster";

/// A registered cluster, as the generator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterEntry {
    /// `name` (the Secret's `name` key; the server URL when it has none).
    pub name: String,
    /// `server`.
    pub server: String,
    /// `project` (empty: none).
    pub project: String,
    /// The Secret's labels.
    pub labels: BTreeMap<String, String>,
    /// The Secret's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// The clusters of cluster Secrets (each Secret's `name`, `server`, `project` keys). A Secret
/// without `server` is an error naming it: a half-registered cluster is not silently skipped.
pub fn clusters_of_secrets(secrets: &[Secret]) -> Result<Vec<ClusterEntry>, String> {
    let mut out = Vec::new();
    for s in secrets {
        let secret_name = s.metadata.name.clone().unwrap_or_default();
        let field = |k: &str| -> Option<String> {
            s.data
                .as_ref()
                .and_then(|d| d.get(k))
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .or_else(|| s.string_data.as_ref().and_then(|d| d.get(k)).cloned())
        };
        let server = field("server")
            .map(|s| s.trim().trim_end_matches('/').to_string())
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                format!(
                    "cluster Secret {secret_name} has no `server` key: add the cluster's API URL"
                )
            })?;
        out.push(ClusterEntry {
            name: field("name")
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| server.clone()),
            server,
            project: field("project").unwrap_or_default(),
            labels: s.metadata.labels.clone().unwrap_or_default(),
            annotations: s.metadata.annotations.clone().unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The parameter sets of a `clusters` block, given the registered clusters. `selector` picks
/// Secrets by their labels; without one the local cluster is added unless a Secret registers it.
/// `values` are returned unrendered (as `values.K` / `values: {K}`); the caller renders them
/// with each set's parameters.
pub fn params_for_clusters(
    spec: &Value,
    clusters: &[ClusterEntry],
    go_template: bool,
    at: &str,
) -> Result<Vec<Params>, GeneratorError> {
    let err = |m: String| GeneratorError::new(format!("{at}.clusters"), m);
    let selector: LabelSelector = match spec.get("selector") {
        None | Some(Value::Null) => LabelSelector::default(),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| err(format!("selector is not a label selector: {e}")))?,
    };
    let mut entries: Vec<ClusterEntry> = Vec::new();
    for c in clusters {
        if crate::selector::selector_matches(&selector, &c.labels)
            .map_err(|m| err(format!("selector: {m}")))?
        {
            entries.push(c.clone());
        }
    }
    let registered_local = clusters.iter().any(|c| c.server == IN_CLUSTER_SERVER);
    if selector.is_empty() && !registered_local {
        entries.insert(
            0,
            ClusterEntry {
                name: IN_CLUSTER_NAME.into(),
                server: IN_CLUSTER_SERVER.into(),
                project: String::new(),
                labels: BTreeMap::new(),
                annotations: BTreeMap::new(),
            },
        );
    }
    Ok(entries
        .into_iter()
        .map(|c| cluster_params(&c, go_template))
        .collect())
}

/// One cluster's parameters, as Argo CD names them.
pub fn cluster_params(c: &ClusterEntry, go_template: bool) -> Params {
    let normalized = normalize_name(&c.name);
    if go_template {
        let p = json!({
            "name": c.name,
            "nameNormalized": normalized,
            "server": c.server,
            "project": c.project,
            "metadata": {"labels": c.labels, "annotations": c.annotations},
        });
        return match p {
            Value::Object(m) => m,
            _ => Params::new(),
        };
    }
    let mut p = Params::new();
    p.insert("name".into(), c.name.clone().into());
    p.insert("nameNormalized".into(), normalized.into());
    p.insert("server".into(), c.server.clone().into());
    p.insert("project".into(), c.project.clone().into());
    for (k, v) in &c.labels {
        p.insert(format!("metadata.labels.{k}"), v.clone().into());
    }
    for (k, v) in &c.annotations {
        p.insert(format!("metadata.annotations.{k}"), v.clone().into());
    }
    p
}

/// A name made usable as a Kubernetes object name, as Argo CD's `SanitizeName` does: lower
/// case, every character other than `a-z`, `0-9`, `-` and `.` replaced by `-`, at most 253
/// characters, without leading or trailing `-`/`.`.
pub fn normalize_name(name: &str) -> String {
    let mapped: String = name
        .to_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(253)
        .collect();
    mapped.trim_matches(|c| c == '-' || c == '.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;

    fn secret(name: &str, server: &str, labels: &[(&str, &str)]) -> Secret {
        let mut s = Secret::default();
        s.metadata.name = Some(format!("{name}-secret"));
        s.metadata.labels = Some(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
                .chain([(SECRET_TYPE_LABEL.to_string(), "cluster".to_string())])
                .collect(),
        );
        s.data = Some(
            [
                ("name".to_string(), ByteString(name.as_bytes().to_vec())),
                ("server".to_string(), ByteString(server.as_bytes().to_vec())),
            ]
            .into(),
        );
        s
    }

    #[test]
    fn secrets_and_the_local_cluster_give_argo_cds_params() {
        let clusters = clusters_of_secrets(&[secret(
            "Prod_EU",
            "https://prod.example:6443/",
            &[("env", "prod")],
        )])
        .unwrap();
        let legacy = params_for_clusters(&json!({}), &clusters, false, "generators[0]").unwrap();
        assert_eq!(legacy.len(), 2, "the local cluster and the registered one");
        assert_eq!(legacy[0]["name"], "in-cluster");
        assert_eq!(legacy[0]["server"], IN_CLUSTER_SERVER);
        assert_eq!(legacy[1]["name"], "Prod_EU");
        assert_eq!(legacy[1]["nameNormalized"], "prod-eu");
        assert_eq!(legacy[1]["server"], "https://prod.example:6443");
        assert_eq!(legacy[1]["metadata.labels.env"], "prod");
        let go = params_for_clusters(&json!({}), &clusters, true, "g").unwrap();
        assert_eq!(go[1]["metadata"]["labels"]["env"], "prod");
    }

    #[test]
    fn a_selector_picks_secrets_and_leaves_the_local_cluster_out() {
        let clusters = clusters_of_secrets(&[
            secret("a", "https://a", &[("env", "prod")]),
            secret("b", "https://b", &[("env", "dev")]),
        ])
        .unwrap();
        let p = params_for_clusters(
            &json!({"selector": {"matchLabels": {"env": "prod"}}}),
            &clusters,
            false,
            "g",
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0]["name"], "a");
    }

    #[test]
    fn a_registered_local_cluster_is_not_listed_twice() {
        let clusters = clusters_of_secrets(&[secret("local", IN_CLUSTER_SERVER, &[])]).unwrap();
        let p = params_for_clusters(&json!({}), &clusters, false, "g").unwrap();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0]["name"], "local");
    }

    #[test]
    fn a_secret_without_server_is_an_error() {
        let mut s = secret("x", "", &[]);
        s.data.as_mut().unwrap().remove("server");
        let e = clusters_of_secrets(&[s]).unwrap_err();
        assert!(e.contains("x-secret") && e.contains("server"), "{e}");
    }

    #[test]
    fn names_normalize_as_argo_cd_does() {
        assert_eq!(normalize_name("My Cluster_1"), "my-cluster-1");
        assert_eq!(normalize_name("-a.b-"), "a.b");
    }
}
