//! The local control plane is real Kubernetes: upstream kube-apiserver and controllers, driven
//! by the image's kubectl (a client nobody here wrote) and by kube-rs. Each test works in its
//! own namespace of the shared cluster, or in a cluster of its own.

use std::time::Duration;

use ferry_testsupport::{Cluster, Probe, repo_root, wait_until};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service};
use kube::api::{Api, ListParams, Patch, PatchParams, WatchEvent, WatchParams};

const DEADLINE: Duration = Duration::from_secs(120);

/// The version pinned in testenv/go.mod, read from the file rather than repeated here.
fn pinned_kubernetes_version() -> String {
    let gomod = std::fs::read_to_string(repo_root().join("testenv/go.mod")).unwrap();
    gomod
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("k8s.io/kubernetes v"))
        .map(|v| format!("v{}", v.split_whitespace().next().unwrap()))
        .expect("testenv/go.mod requires k8s.io/kubernetes")
}

fn deployment(name: &str, replicas: u32, image: &str) -> String {
    format!(
        r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: web
        image: {image}
"#
    )
}

#[tokio::test]
async fn the_server_is_the_pinned_upstream_release() {
    let out = Cluster::shared().kubectl().run(&["version", "-o", "json"]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["serverVersion"]["gitVersion"],
        pinned_kubernetes_version().as_str(),
        "{out}"
    );
}

#[tokio::test]
async fn kubectl_apply_of_a_deployment_reaches_three_available_replicas() {
    let ns = Cluster::shared().namespace("deployment-available").await;
    ns.kubectl()
        .apply(&deployment("web", 3, "registry.example/web:1.0"));
    let deployments = ns.api::<Deployment>();
    wait_until(
        "deployment web to have 3 available replicas",
        DEADLINE,
        || async {
            match deployments.get("web").await {
                Ok(d) => match d.status.as_ref().and_then(|s| s.available_replicas) {
                    Some(3) => Probe::Done(()),
                    other => Probe::pending(format!("availableReplicas {other:?}")),
                },
                Err(e) => Probe::pending(e),
            }
        },
    )
    .await;
}

#[tokio::test]
async fn kubectl_set_image_rolls_out_a_new_replicaset() {
    let ns = Cluster::shared().namespace("set-image").await;
    ns.kubectl()
        .apply(&deployment("web", 2, "registry.example/web:1.0"));
    ns.kubectl()
        .run(&["rollout", "status", "deployment/web", "--timeout=120s"]);
    ns.kubectl().run(&[
        "set",
        "image",
        "deployment/web",
        "web=registry.example/web:2.0",
    ]);
    ns.kubectl()
        .run(&["rollout", "status", "deployment/web", "--timeout=120s"]);

    let sets = ns
        .api::<ReplicaSet>()
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(sets.items.len(), 2, "one ReplicaSet per image");
    let images: Vec<(String, i32)> = sets
        .items
        .iter()
        .map(|rs| {
            let spec = rs.spec.as_ref().unwrap();
            let image = spec
                .template
                .as_ref()
                .unwrap()
                .spec
                .as_ref()
                .unwrap()
                .containers[0]
                .image
                .clone()
                .unwrap();
            (image, spec.replicas.unwrap())
        })
        .collect();
    assert!(
        images.contains(&("registry.example/web:2.0".into(), 2)),
        "{images:?}"
    );
    assert!(
        images.contains(&("registry.example/web:1.0".into(), 0)),
        "{images:?}"
    );
}

#[tokio::test]
async fn jobs_complete_and_the_failure_annotation_fails_them() {
    let ns = Cluster::shared().namespace("jobs").await;
    let job = |name: &str, annotations: &str| {
        format!(
            r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
  backoffLimit: 0
  template:
    metadata:
      annotations: {{{annotations}}}
    spec:
      restartPolicy: Never
      containers:
      - name: run
        image: registry.example/task:1
"#
        )
    };
    ns.kubectl().apply(&job("succeeds", ""));
    ns.kubectl()
        .apply(&job("fails", r#""testenv.ferry.dev/fail": "true""#));

    let jobs = ns.api::<Job>();
    for (name, condition) in [("succeeds", "Complete"), ("fails", "Failed")] {
        let jobs = jobs.clone();
        wait_until(
            &format!("job {name} to be {condition}"),
            DEADLINE,
            || async {
                let job = match jobs.get(name).await {
                    Ok(j) => j,
                    Err(e) => return Probe::pending(e),
                };
                let conditions = job.status.and_then(|s| s.conditions).unwrap_or_default();
                if conditions
                    .iter()
                    .any(|c| c.type_ == condition && c.status == "True")
                {
                    Probe::Done(())
                } else {
                    Probe::pending(format!(
                        "conditions {:?}",
                        conditions
                            .iter()
                            .map(|c| (&c.type_, &c.status))
                            .collect::<Vec<_>>()
                    ))
                }
            },
        )
        .await;
    }
    // The other outcome never shows up on either Job.
    let ok = jobs.get("succeeds").await.unwrap().status.unwrap();
    assert_eq!(ok.succeeded, Some(1));
    assert_eq!(ok.failed.unwrap_or(0), 0);
    let bad = jobs.get("fails").await.unwrap().status.unwrap();
    assert_eq!(bad.failed, Some(1));
    assert_eq!(bad.succeeded.unwrap_or(0), 0);
}

#[tokio::test]
async fn a_loadbalancer_service_gets_an_address_from_the_pool() {
    let ns = Cluster::shared().namespace("loadbalancer").await;
    ns.kubectl().apply(
        r#"apiVersion: v1
kind: Service
metadata:
  name: front
spec:
  type: LoadBalancer
  selector: {app: front}
  ports: [{port: 80, targetPort: 8080}]
"#,
    );
    let services = ns.api::<Service>();
    let ip = wait_until(
        "service front to get a load-balancer address",
        DEADLINE,
        || async {
            let svc = match services.get("front").await {
                Ok(s) => s,
                Err(e) => return Probe::pending(e),
            };
            let ingress = svc
                .status
                .and_then(|s| s.load_balancer)
                .and_then(|lb| lb.ingress);
            match ingress.as_deref() {
                Some([first, ..]) if first.ip.is_some() => Probe::Done(first.ip.clone().unwrap()),
                other => Probe::pending(format!("ingress {other:?}")),
            }
        },
    )
    .await;
    let addr: std::net::Ipv4Addr = ip.parse().expect("an IPv4 address");
    assert!(
        addr.is_loopback(),
        "{addr} is in the default pool 127.0.0.0/8"
    );
    assert_ne!(
        addr,
        std::net::Ipv4Addr::LOCALHOST,
        "127.0.0.1 is the host's own"
    );
}

#[tokio::test]
async fn deleting_a_namespace_with_objects_in_it_finishes() {
    let cluster = Cluster::shared();
    let name = format!("doomed-{}", std::process::id());
    let kubectl = cluster.kubectl();
    kubectl.run(&["create", "namespace", &name]);
    let in_ns = kubectl.clone().in_namespace(&name);
    in_ns.apply(&deployment("web", 2, "registry.example/web:1.0"));
    in_ns.run(&["create", "configmap", "settings", "--from-literal=a=b"]);
    in_ns.run(&["create", "service", "clusterip", "web", "--tcp=80:8080"]);
    in_ns.run(&["rollout", "status", "deployment/web", "--timeout=120s"]);

    kubectl.run(&["delete", "namespace", &name, "--wait=false"]);
    let namespaces: Api<Namespace> = Api::all(cluster.client().await);
    wait_until(
        &format!("namespace {name} to be gone"),
        DEADLINE,
        || async {
            match namespaces.get_opt(&name).await {
                Ok(None) => Probe::Done(()),
                Ok(Some(ns)) => Probe::pending(format!(
                    "phase {:?}, conditions {:?}",
                    ns.status.as_ref().and_then(|s| s.phase.clone()),
                    ns.status
                        .and_then(|s| s.conditions)
                        .unwrap_or_default()
                        .into_iter()
                        .filter(|c| c.status == "True")
                        .map(|c| c.message.unwrap_or_default())
                        .collect::<Vec<_>>()
                )),
                Err(e) => Probe::pending(e),
            }
        },
    )
    .await;
}

#[tokio::test]
async fn two_control_planes_run_side_by_side_independently() {
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Cluster::start_own("side-a"));
        let b = s.spawn(|| Cluster::start_own("side-b"));
        (a.join().unwrap(), b.join().unwrap())
    });
    let server = |c: &Cluster| {
        c.kubectl().run(&[
            "config",
            "view",
            "--minify",
            "-o",
            "jsonpath={.clusters[0].cluster.server}",
        ])
    };
    assert_ne!(server(&a), server(&b));

    a.kubectl()
        .run(&["create", "configmap", "only-in-a", "-n", "default"]);
    let b_maps: Api<ConfigMap> = Api::namespaced(b.client().await, "default");
    assert!(
        b_maps.get_opt("only-in-a").await.unwrap().is_none(),
        "b must not see a's object"
    );
    let a_maps: Api<ConfigMap> = Api::namespaced(a.client().await, "default");
    assert!(a_maps.get_opt("only-in-a").await.unwrap().is_some());

    // Stopping one leaves the other serving.
    a.stop();
    assert!(
        a.kubectl()
            .try_run(&["get", "namespaces", "--request-timeout=5s"])
            .is_err()
    );
    b.kubectl()
        .run(&["create", "configmap", "b-still-serves", "-n", "default"]);
}

#[tokio::test]
async fn the_restricted_user_is_held_to_its_role() {
    let cluster = Cluster::shared();
    let restricted = ferry_testsupport::Kubectl::new(cluster.restricted_kubeconfig());
    let can_i = |verb: &str, resource: &str, ns: &str| {
        // `auth can-i` answers on stdout and exits 1 for "no".
        let out = restricted.output(&["auth", "can-i", verb, resource, "-n", ns]);
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    assert_eq!(can_i("create", "configmaps", "kube-system"), "no");
    assert_eq!(can_i("create", "configmaps", "restricted"), "yes");

    let name = format!("allowed-{}", std::process::id());
    let denied = restricted
        .try_run(&["create", "configmap", &name, "-n", "kube-system"])
        .expect_err("creating in kube-system must be refused");
    assert!(denied.contains("forbidden"), "{denied}");
    restricted.run(&["create", "configmap", &name, "-n", "restricted"]);
    restricted.run(&["delete", "configmap", &name, "-n", "restricted"]);

    // The same holds for a kube-rs client.
    let client = cluster.restricted_client().await;
    let err = Api::<ConfigMap>::namespaced(client.clone(), "kube-system")
        .list(&ListParams::default())
        .await
        .expect_err("listing kube-system must be refused");
    assert!(
        matches!(err, kube::Error::Api(ref s) if s.code == 403),
        "{err:?}"
    );
    Api::<ConfigMap>::namespaced(client, "restricted")
        .list(&ListParams::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn kube_rs_lists_watches_and_server_side_applies() {
    let ns = Cluster::shared().namespace("kube-rs").await;
    let maps = ns.api::<ConfigMap>();
    let ssa = PatchParams::apply("ferry-test").force();
    let desired = |value: &str| {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": { "name": "settings" },
            "data": { "colour": value },
        })
    };
    let applied = maps
        .patch("settings", &ssa, &Patch::Apply(desired("blue")))
        .await
        .unwrap();
    let managers: Vec<_> = applied
        .metadata
        .managed_fields
        .unwrap_or_default()
        .into_iter()
        .map(|m| {
            (
                m.manager.unwrap_or_default(),
                m.operation.unwrap_or_default(),
            )
        })
        .collect();
    assert!(
        managers.contains(&("ferry-test".into(), "Apply".into())),
        "{managers:?}"
    );

    let listed = maps.list(&ListParams::default()).await.unwrap();
    let names: Vec<_> = listed
        .items
        .iter()
        .filter_map(|c| c.metadata.name.clone())
        .collect();
    assert!(names.contains(&"settings".to_string()), "{names:?}");

    let version = listed.metadata.resource_version.unwrap();
    let mut events = maps
        .watch(&WatchParams::default().timeout(60), &version)
        .await
        .unwrap()
        .boxed();
    maps.patch("settings", &ssa, &Patch::Apply(desired("green")))
        .await
        .unwrap();
    let seen = tokio::time::timeout(DEADLINE, async {
        while let Some(event) = events.try_next().await.unwrap() {
            if let WatchEvent::Modified(cm) = event {
                return cm.data.unwrap_or_default().get("colour").cloned();
            }
        }
        None
    })
    .await
    .expect("a Modified event within the deadline");
    assert_eq!(seen.as_deref(), Some("green"));

    // A dry-run apply reports the result without persisting it.
    let dry = PatchParams::apply("ferry-test").force().dry_run();
    let preview = maps
        .patch("settings", &dry, &Patch::Apply(desired("red")))
        .await
        .unwrap();
    assert_eq!(preview.data.unwrap()["colour"], "red");
    assert_eq!(
        maps.get("settings").await.unwrap().data.unwrap()["colour"],
        "green"
    );
}
