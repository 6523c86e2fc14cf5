//! A second cluster, registered as an Argo CD cluster Secret, receives its app.

mod common;

use base64::Engine as _;
use common::*;
use ferry_testsupport::{Cluster, GitRepo};
use serde_json::Value;

#[tokio::test]
async fn a_cluster_registered_by_secret_receives_its_app() {
    let w = World::start("multi-cluster").await;
    let remote = Cluster::start_own("remote");

    // The remote cluster's address, CA and admin token, from its kubeconfig.
    let view = remote
        .kubectl()
        .run(&["config", "view", "--raw", "-o", "json"]);
    let kc: Value = serde_json::from_str(&view).unwrap();
    let server = kc
        .pointer("/clusters/0/cluster/server")
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    let ca = kc
        .pointer("/clusters/0/cluster/certificate-authority-data")
        .and_then(Value::as_str)
        .unwrap();
    let token = kc
        .pointer("/users/0/user/token")
        .and_then(Value::as_str)
        .unwrap();
    let config =
        serde_json::json!({"bearerToken": token, "tlsClientConfig": {"caData": ca}}).to_string();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    w.apply(&format!(
        r#"apiVersion: v1
kind: Secret
metadata:
  name: remote-cluster
  labels:
    argocd.argoproj.io/secret-type: cluster
data:
  name: {}
  server: {}
  config: {}
"#,
        b64("remote"),
        b64(&server),
        b64(&config)
    ));
    remote.kubectl().run(&["create", "namespace", "shop"]);

    let repo = GitRepo::new();
    repo.write("shop/c.yaml", &configmap("only-remote", "1"));
    repo.commit("shop");
    w.apply(
        &application("shop", &repo.url(), "shop", "shop", AUTOMATED).replace(
            "server: https://kubernetes.default.svc",
            &format!("server: {server}"),
        ),
    );
    w.wait_synced_healthy("shop").await;
    remote
        .kubectl()
        .run(&["get", "configmap", "only-remote", "-n", "shop"]);
    assert!(
        Cluster::shared()
            .kubectl()
            .try_run(&["get", "configmap", "only-remote", "-n", "shop"])
            .is_err(),
        "not on the local cluster"
    );

    // Drift on the remote cluster is seen and reverted too.
    remote
        .kubectl()
        .run(&["delete", "configmap", "only-remote", "-n", "shop"]);
    ferry_testsupport::wait_until(
        "only-remote re-created on the remote cluster",
        STEP,
        || async {
            match remote
                .kubectl()
                .try_run(&["get", "configmap", "only-remote", "-n", "shop"])
            {
                Ok(_) => ferry_testsupport::Probe::Done(()),
                Err(e) => ferry_testsupport::Probe::Pending(e),
            }
        },
    )
    .await;
}
