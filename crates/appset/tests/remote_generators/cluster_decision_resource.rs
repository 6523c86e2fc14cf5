use std::time::Duration;

use ferry_appset::generators::cluster_decision_resource as cdr;
use ferry_testsupport::{Cluster, Probe, wait_until};
use serde_json::json;

use crate::{Env, text};

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: placementdecisions.cluster.open-cluster-management.io
spec:
  group: cluster.open-cluster-management.io
  scope: Namespaced
  names:
    kind: PlacementDecision
    plural: placementdecisions
    singular: placementdecision
    listKind: PlacementDecisionList
  versions:
  - name: v1beta1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

async fn cdr_env(test: &str) -> Env {
    let env = Env::new(test).await;
    // Every test of this file installs the CRD on the shared cluster at the same time; a
    // client-side apply that loses the race to create it fails with AlreadyExists, so it is
    // applied server-side and tried again until one apply holds.
    let shared = Cluster::shared().kubectl();
    wait_until(
        "the PlacementDecision CRD is applied",
        Duration::from_secs(60),
        || async {
            match shared.try_run_with_stdin(
                &["apply", "--server-side", "--force-conflicts", "-f", "-"],
                Some(CRD),
            ) {
                Ok(_) => Probe::Done(()),
                Err(e) => Probe::Pending(e),
            }
        },
    )
    .await;
    let kubectl = env.ns.kubectl();
    wait_until(
        "the PlacementDecision CRD is served",
        Duration::from_secs(60),
        || async {
            match kubectl.try_run(&[
                "get",
                "placementdecisions.cluster.open-cluster-management.io",
            ]) {
                Ok(_) => Probe::Done(()),
                Err(e) => Probe::Pending(e),
            }
        },
    )
    .await;
    env.config_map(
        "ocm-placement",
        &[
            ("apiVersion", "cluster.open-cluster-management.io/v1beta1"),
            ("kind", "placementdecisions"),
            ("statusListKey", "decisions"),
            ("matchKey", "clusterName"),
        ],
    );
    kubectl.apply(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: prod-cluster\n  labels:\n    argocd.argoproj.io/secret-type: cluster\nstringData:\n  name: prod\n  server: https://prod.example:6443\n  config: '{}'\n",
    );
    env
}

fn decision(name: &str, labels: &str, decisions: serde_json::Value) -> String {
    format!(
        "apiVersion: cluster.open-cluster-management.io/v1beta1\nkind: PlacementDecision\nmetadata:\n  name: {name}\n  labels: {labels}\nstatus:\n  decisions: {decisions}\n"
    )
}

#[tokio::test]
async fn cluster_decision_resource_matches_decisions_to_known_clusters() {
    let env = cdr_env("cdr-match").await;
    env.ns.kubectl().apply(&decision(
        "placement-a",
        "{placement: a}",
        json!([
            {"clusterName": "prod", "reason": "picked"},
            {"clusterName": "in-cluster", "reason": "local"},
            {"clusterName": "unknown", "reason": "not registered"},
        ]),
    ));
    env.ns.kubectl().apply(&decision(
        "placement-b",
        "{placement: b}",
        json!([{"clusterName": "prod", "reason": "again"}]),
    ));

    let spec =
        json!({"configMapRef": "ocm-placement", "name": "placement-a", "values": {"tier": "1"}});
    let params = cdr::generate(&spec, &env.ctx()).await.expect("parameters");
    assert_eq!(
        params.len(),
        2,
        "the unknown cluster is skipped: {params:?}"
    );
    assert_eq!(text(&params[0], "name"), "prod");
    assert_eq!(text(&params[0], "server"), "https://prod.example:6443");
    assert_eq!(text(&params[0], "clusterName"), "prod");
    assert_eq!(text(&params[0], "reason"), "picked");
    assert_eq!(params[0]["values"], json!({"tier": "1"}));
    assert_eq!(text(&params[1], "server"), "https://kubernetes.default.svc");

    let spec = json!({"configMapRef": "ocm-placement", "labelSelector": {"matchExpressions": [{"key": "placement", "operator": "In", "values": ["a", "b"]}]}});
    let params = cdr::generate(&spec, &env.ctx()).await.expect("parameters");
    let mut reasons: Vec<&str> = params.iter().map(|p| text(p, "reason")).collect();
    reasons.sort();
    assert_eq!(reasons, ["again", "local", "picked"]);

    // The Kind instead of the plural resource name works as well.
    env.config_map(
        "by-kind",
        &[
            ("apiVersion", "cluster.open-cluster-management.io/v1beta1"),
            ("kind", "PlacementDecision"),
            ("statusListKey", "decisions"),
            ("matchKey", "clusterName"),
        ],
    );
    let spec =
        json!({"configMapRef": "by-kind", "labelSelector": {"matchLabels": {"placement": "b"}}});
    let params = cdr::generate(&spec, &env.ctx()).await.expect("parameters");
    assert_eq!(params.len(), 1);

    // An empty decision list is a legitimate empty result.
    env.ns
        .kubectl()
        .apply(&decision("placement-empty", "{placement: none}", json!([])));
    let spec = json!({"configMapRef": "ocm-placement", "name": "placement-empty"});
    assert!(
        cdr::generate(&spec, &env.ctx())
            .await
            .expect("empty")
            .is_empty()
    );
}

#[tokio::test]
async fn cluster_decision_resource_fails_closed_on_missing_pieces() {
    let env = cdr_env("cdr-errors").await;
    env.ns.kubectl().apply(
        "apiVersion: cluster.open-cluster-management.io/v1beta1\nkind: PlacementDecision\nmetadata:\n  name: no-status\n",
    );
    env.config_map(
        "no-match-key",
        &[
            ("apiVersion", "v1"),
            ("kind", "configmaps"),
            ("statusListKey", "x"),
        ],
    );
    env.config_map(
        "bad-api",
        &[
            ("apiVersion", "nothing.example/v1"),
            ("kind", "things"),
            ("statusListKey", "x"),
            ("matchKey", "y"),
        ],
    );
    for (spec, what) in [
        (
            json!({"configMapRef": "ocm-placement", "name": "no-status"}),
            "has no status.decisions",
        ),
        (
            json!({"configMapRef": "ocm-placement", "name": "absent"}),
            "\"absent\" does not exist",
        ),
        (
            json!({"configMapRef": "ocm-placement", "labelSelector": {"matchLabels": {"none": "x"}}}),
            "matches the labels",
        ),
        (
            json!({"configMapRef": "ocm-placement"}),
            "name or labelSelector",
        ),
        (
            json!({"configMapRef": "absent-cm", "name": "x"}),
            "absent-cm does not exist",
        ),
        (
            json!({"configMapRef": "no-match-key", "name": "x"}),
            "has no matchKey",
        ),
        (
            json!({"configMapRef": "bad-api", "name": "x"}),
            "nothing.example/v1",
        ),
        (json!({}), "configMapRef is required"),
    ] {
        let e = cdr::generate(&spec, &env.ctx()).await.expect_err(what);
        assert_eq!(e.generator, "clusterDecisionResource");
        assert!(e.to_string().contains(what), "{spec}: {e}");
    }
}
