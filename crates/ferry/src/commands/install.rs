//! `ferry install`: put ferry's CRDs (Application, AppProject, and Argo Rollouts' Rollout) and the `default` AppProject into a cluster, and with
//! `--with-controller` ferry's own Deployment, ServiceAccount and RBAC.

use std::time::Duration;

use anyhow::Context as _;
use ferry_cluster::{ApplyOptions, ClusterClient, ObjectRef};
use serde_json::{Value, json};

use super::kube::KubeArgs;

/// The CRDs, as committed in `manifests/crds/`.
const CRDS: [(&str, &str); 7] = [
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
    (
        "applicationsets.argoproj.io",
        include_str!("../../../../manifests/crds/applicationsets.argoproj.io.yaml"),
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

    /// With `--with-controller`: how many controller replicas share the destination clusters.
    /// Above 1, the UI and API run in the `ferry` Deployment (`ferry server`) and the
    /// controller in a `ferry-controller` Deployment of this many pods that coordinate through
    /// Leases (docs/scale-out.md).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    replicas: u32,

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
        if args.replicas > 1 {
            let added = scale_out(&mut objects, ns, &args.image, args.replicas);
            objects.extend(added);
        }
        if args.replicas > 1 {
            scale_out(&mut objects, ns, &args.image, args.replicas);
        }
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

/// Turns the single `ferry run` Deployment into `ferry server` (UI and API, one pod) and adds
/// the `ferry-controller` Deployment of `replicas` pods, each with its pod name as its replica
/// identity, and the Role that lets them keep their Leases (the broad ClusterRole above covers
/// Leases too; the Role keeps them if that one is narrowed).
fn scale_out(objects: &mut [Value], namespace: &str, image: &str, replicas: u32) -> Vec<Value> {
    for o in objects.iter_mut() {
        if o["kind"] == "Deployment" && o["metadata"]["name"] == "ferry" {
            let container = &mut o["spec"]["template"]["spec"]["containers"][0];
            container["args"] = json!([
                "server",
                "--namespace",
                namespace,
                "--listen",
                "0.0.0.0:8080"
            ]);
            container["ports"] = json!([{ "name": "http", "containerPort": 8080 }]);
        }
        // Each controller replica serves its own /metrics, scraped per pod; the Service keeps
        // the UI and API.
        if o["kind"] == "Service" && o["metadata"]["name"] == "ferry" {
            o["spec"]["ports"] = json!([{ "name": "http", "port": 80, "targetPort": "http" }]);
        }
    }
    let labels = json!({ "app.kubernetes.io/name": "ferry-controller", "app.kubernetes.io/part-of": "ferry" });
    let args = [
        "controller",
        "--namespace",
        namespace,
        "--replicas",
        &replicas.to_string(),
        "--cache-dir",
        "/var/cache/ferry",
        "--metrics-listen",
        "0.0.0.0:8082",
    ];
    vec![
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": { "name": "ferry-controller-leases", "namespace": namespace, "labels": labels },
            "rules": [{
                "apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]
            }]
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": { "name": "ferry-controller-leases", "namespace": namespace, "labels": labels },
            "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "ferry-controller-leases" },
            "subjects": [{ "kind": "ServiceAccount", "name": "ferry", "namespace": namespace }]
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": { "name": "ferry-controller", "namespace": namespace, "labels": labels },
            "spec": {
                "replicas": replicas,
                "selector": { "matchLabels": { "app.kubernetes.io/name": "ferry-controller" } },
                "template": {
                    "metadata": { "labels": labels },
                    "spec": {
                        "serviceAccountName": "ferry",
                        "containers": [{
                            "name": "controller",
                            "image": image,
                            "imagePullPolicy": "IfNotPresent",
                            "args": args,
                            // Each replica's identity (and Lease name) is its pod's name.
                            "env": [{ "name": "POD_NAME", "valueFrom": { "fieldRef": { "fieldPath": "metadata.name" } } }],
                            "ports": [{ "name": "metrics", "containerPort": 8082 }],
                            "livenessProbe": { "httpGet": { "path": "/healthz", "port": "metrics" }, "periodSeconds": 20 },
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
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn objects(replicas: u32) -> Vec<Value> {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: Args,
        }
        let n = replicas.to_string();
        let cli = Cli::parse_from(["install", "--with-controller", "-n", "gx", "--replicas", &n]);
        install_objects(&cli.args).unwrap()
    }

    fn named<'a>(objects: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
        objects
            .iter()
            .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
    }

    #[test]
    fn one_replica_is_the_single_ferry_run_deployment() {
        let objects = objects(1);
        assert!(named(&objects, "Deployment", "ferry-controller").is_none());
        let d = named(&objects, "Deployment", "ferry").unwrap();
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["args"][0],
            "run"
        );
    }

    #[test]
    fn replicas_run_controllers_with_pod_names_and_lease_rights_beside_one_server() {
        let objects = objects(3);
        let server = named(&objects, "Deployment", "ferry").unwrap();
        assert_eq!(server["spec"]["replicas"], 1);
        assert_eq!(
            server["spec"]["template"]["spec"]["containers"][0]["args"][0],
            "server"
        );
        let c = named(&objects, "Deployment", "ferry-controller").unwrap();
        assert_eq!(c["spec"]["replicas"], 3);
        let container = &c["spec"]["template"]["spec"]["containers"][0];
        let args: Vec<&str> = container["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            args.windows(2).any(|p| p == ["--replicas", "3"]),
            "{args:?}"
        );
        assert!(
            args.windows(2).any(|p| p == ["--namespace", "gx"]),
            "{args:?}"
        );
        assert_eq!(container["env"][0]["name"], "POD_NAME");
        assert_eq!(
            container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"],
            "metadata.name"
        );
        let role = named(&objects, "Role", "ferry-controller-leases").unwrap();
        assert_eq!(role["rules"][0]["resources"][0], "leases");
        assert!(
            role["rules"][0]["verbs"]
                .as_array()
                .unwrap()
                .contains(&json!("update"))
        );
        let binding = named(&objects, "RoleBinding", "ferry-controller-leases").unwrap();
        assert_eq!(binding["subjects"][0]["name"], "ferry");
    }
}
