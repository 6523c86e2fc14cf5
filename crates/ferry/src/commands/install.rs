//! `ferry install`: put ferry's CRDs (Application, AppProject, and Argo Rollouts' Rollout) and the `default` AppProject into a cluster, and with
//! `--with-controller` ferry's own Deployment, ServiceAccount and RBAC.

use std::time::Duration;

use anyhow::Context as _;
use ferry_cluster::{ApplyOptions, ClusterClient, ObjectRef};
use serde_json::{Value, json};

use super::kube::KubeArgs;

/// The CRDs, as committed in `manifests/crds/`.
const CRDS: [(&str, &str); 6] = [
    (
        "applications.argoproj.io",
        include_str!("../../../../manifests/crds/applications.argoproj.io.yaml"),
    ),
    (
        "appprojects.argoproj.io",
        include_str!("../../../../manifests/crds/appprojects.argoproj.io.yaml"),
    ),
    (
        "rollouts.argoproj.io",
        include_str!("../../../../manifests/crds/rollouts.argoproj.io.yaml"),
    ),
    // Argo Rollouts' analysis (crates/rollouts): templates and the runs made from them.
    (
        "analysistemplates.argoproj.io",
        include_str!("../../../../manifests/crds/analysistemplates.argoproj.io.yaml"),
    ),
    (
        "clusteranalysistemplates.argoproj.io",
        include_str!("../../../../manifests/crds/clusteranalysistemplates.argoproj.io.yaml"),
    ),
    (
        "analysisruns.argoproj.io",
        include_str!("../../../../manifests/crds/analysisruns.argoproj.io.yaml"),
    ),
];

/// The field manager of objects that `ferry install` owns.
const FIELD_MANAGER: &str = "ferry-install";

/// Arguments of `ferry install`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    kube: KubeArgs,

    /// The namespace ferry works in (its Applications and AppProjects, Secrets for repositories
    /// and clusters). Use `argocd` to take over an Argo CD layout unchanged.
    #[arg(long, short = 'n', default_value = "ferry")]
    namespace: String,

    /// Also install ferry's controller: a Deployment, its ServiceAccount and RBAC.
    #[arg(long)]
    with_controller: bool,

    /// The controller's image, with `--with-controller`.
    #[arg(long, default_value = concat!("ferry:", env!("CARGO_PKG_VERSION")))]
    image: String,

    /// Print the objects as JSON instead of applying them.
    #[arg(long)]
    dry_run: bool,
}

/// Applies the CRDs, waits until they are established, then the namespace, the `default`
/// AppProject and (optionally) the controller.
pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let objects = install_objects(args)?;
    if args.dry_run {
        for o in &objects {
            println!("{}", serde_json::to_string_pretty(o)?);
        }
        return Ok(());
    }
    let cluster = ClusterClient::new(args.kube.client().await?);
    let opts = ApplyOptions::new(FIELD_MANAGER);
    for crd in objects
        .iter()
        .filter(|o| o["kind"] == "CustomResourceDefinition")
    {
        cluster.apply(crd, &opts).await?;
        println!("applied {}", ObjectRef::of(crd)?);
    }
    for (name, _) in CRDS {
        cluster
            .wait_established(name, Duration::from_secs(60))
            .await?;
    }
    for obj in objects
        .iter()
        .filter(|o| o["kind"] != "CustomResourceDefinition")
    {
        cluster
            .apply(obj, &opts)
            .await
            .with_context(|| format!("installing {}", ObjectRef::of(obj).unwrap()))?;
        println!("applied {}", ObjectRef::of(obj)?);
    }
    Ok(())
}

fn install_objects(args: &Args) -> anyhow::Result<Vec<Value>> {
    let mut objects = Vec::new();
    for (name, text) in CRDS {
        let crd: Value = serde_saphyr::from_str(text)
            .with_context(|| format!("parsing the bundled CRD {name}"))?;
        objects.push(crd);
    }
    let ns = &args.namespace;
    objects.push(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": { "name": ns, "labels": { "app.kubernetes.io/part-of": "ferry" } }
    }));
    objects.push(default_project(ns));
    if args.with_controller {
        objects.extend(controller_objects(ns, &args.image));
    }
    Ok(objects)
}

/// The `default` AppProject: any repository, any destination, any kind — as Argo CD's.
fn default_project(namespace: &str) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": { "name": "default", "namespace": namespace },
        "spec": {
            "sourceRepos": ["*"],
            "destinations": [{ "server": "*", "name": "*", "namespace": "*" }],
            "clusterResourceWhitelist": [{ "group": "*", "kind": "*" }]
        }
    })
}

/// ferry's own Deployment, Service, ServiceAccount and RBAC for running in the cluster. The controller
/// applies whatever Git holds, so its ClusterRole is broad, as Argo CD's application controller's.
fn controller_objects(namespace: &str, image: &str) -> Vec<Value> {
    let labels = json!({ "app.kubernetes.io/name": "ferry", "app.kubernetes.io/part-of": "ferry" });
    vec![
        json!({
            "apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": { "name": "ferry", "namespace": namespace, "labels": labels }
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": { "name": format!("ferry-{namespace}"), "labels": labels },
            "rules": [
                { "apiGroups": ["*"], "resources": ["*"], "verbs": ["*"] },
                { "nonResourceURLs": ["*"], "verbs": ["*"] }
            ]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": { "name": format!("ferry-{namespace}"), "labels": labels },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("ferry-{namespace}") },
            "subjects": [{ "kind": "ServiceAccount", "name": "ferry", "namespace": namespace }]
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "ferry", "namespace": namespace, "labels": labels },
            "spec": {
                "replicas": 1,
                "strategy": { "type": "Recreate" },
                "selector": { "matchLabels": { "app.kubernetes.io/name": "ferry" } },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": {
                        "serviceAccountName": "ferry",
                        "containers": [{
                            "name": "ferry",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            // The UI and API on every interface of the pod; the Service below
                            // (and an Ingress of your own) reach it. /metrics without sign-in
                            // on its own port, for Prometheus inside the cluster.
                            "args": ["run", "--namespace", namespace, "--cache-dir", "/var/cache/ferry", "--listen", "0.0.0.0:8080", "--metrics-listen", "0.0.0.0:8082"],
                            "ports": [{ "name": "http", "containerPort": 8080 }, { "name": "metrics", "containerPort": 8082 }],
                            "readinessProbe": { "httpGet": { "path": "/readyz", "port": "http" }, "periodSeconds": 10 },
                            "livenessProbe": { "httpGet": { "path": "/healthz", "port": "http" }, "periodSeconds": 20 },
                            "volumeMounts": [{ "name": "cache", "mountPath": "/var/cache/ferry" }],
                            "securityContext": {
                                "allowPrivilegeEscalation": false,
                                "readOnlyRootFilesystem": true,
                                "runAsNonRoot": true,
                                "capabilities": { "drop": ["ALL"] }
                            }
                        }],
                        "volumes": [{ "name": "cache", "emptyDir": {} }]
                    }
                }
            }
        }),
        json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": { "name": "ferry", "namespace": namespace, "labels": labels },
            "spec": {
                "selector": { "app.kubernetes.io/name": "ferry" },
                "ports": [
                    { "name": "http", "port": 80, "targetPort": "http" },
                    { "name": "metrics", "port": 8082, "targetPort": "metrics" }
                ]
            }
        }),
    ]
}
