//! Canary Rollouts end to end: the real `ferry run` (its rollout controller) against the local
//! control plane, whose simulated node makes the ReplicaSets' pods Ready. Each test has its own
//! namespace, and its controller runs only the Rollouts there (`--rollout-namespaces`).

mod common;
mod ui_support;

use std::time::Duration;

use common::{Controller, STEP, ferry, ferry_ok};
use ferry_testsupport::{Cluster, Probe, TestNamespace, wait_until};
use serde_json::Value;
use ui_support::{UiServer, request};

/// A test's namespace with ferry installed and a controller running its Rollouts.
struct Canary {
    ns: TestNamespace,
    controller: Controller,
}

impl Canary {
    async fn start(test: &str) -> Canary {
        let cluster = Cluster::shared();
        let ns = cluster.namespace(test).await;
        ferry_ok(cluster.kubeconfig(), &["install", "--namespace", ns.name()]);
        let controller = Controller::start_command(
            cluster.kubeconfig(),
            &[
                "run",
                "--namespace",
                ns.name(),
                "--poll-interval",
                "1s",
                "--listen",
                "127.0.0.1:0",
                "--rollout-namespaces",
                ns.name(),
            ],
        );
        Canary { ns, controller }
    }

    fn apply(&self, manifest: &str) {
        self.ns.kubectl().apply(manifest);
    }

    fn rollout(&self, name: &str) -> Option<Value> {
        self.ns
            .kubectl()
            .try_run(&["get", "rollout", name, "-o", "json"])
            .ok()
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    fn json(&self, args: &[&str]) -> Value {
        let mut all = vec!["get"];
        all.extend_from_slice(args);
        all.extend(["-o", "json"]);
        serde_json::from_str(&self.ns.kubectl().run(&all)).unwrap()
    }

    /// `ferry rollout ARGS -n <ns>`.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["rollout"];
        all.extend_from_slice(args);
        all.extend(["--namespace", self.ns.name()]);
        ferry(Cluster::shared().kubeconfig(), &all)
    }

    fn cli_ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "ferry rollout {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn wait_rollout(&self, name: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        wait_until(&format!("rollout {name}: {what}"), STEP, || async {
            match self.rollout(name) {
                Some(r) if check(&r) => Probe::Done(r),
                Some(r) => Probe::pending(format!("{:.600}", r["status"].to_string())),
                None => Probe::pending("no such rollout"),
            }
        })
        .await
    }

    /// `spec.replicas` and available replicas of the ReplicaSet of `hash`.
    fn replica_set(&self, hash: &str) -> (i64, i64) {
        let list = self.json(&[
            "replicasets",
            "-l",
            &format!("rollouts-pod-template-hash={hash}"),
        ]);
        let rs = &list["items"][0];
        (
            rs.pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(-1),
            rs.pointer("/status/availableReplicas")
                .and_then(Value::as_i64)
                .unwrap_or(0),
        )
    }

    async fn wait_replicas(&self, hash: &str, desired: i64, available: i64) {
        wait_until(
            &format!("ReplicaSet of {hash}: {desired} replicas, {available} available"),
            STEP,
            || async {
                let got = self.replica_set(hash);
                if got == (desired, available) {
                    Probe::Done(())
                } else {
                    Probe::pending(format!("{got:?}"))
                }
            },
        )
        .await
    }

    fn events(&self, reason: &str) -> Vec<String> {
        let list = self.json(&["events", "--field-selector", &format!("reason={reason}")]);
        list["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["message"].as_str().unwrap_or("").to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn status_str<'a>(r: &'a Value, field: &str) -> &'a str {
    r["status"][field].as_str().unwrap_or("")
}

fn step(r: &Value) -> i64 {
    r["status"]["currentStepIndex"].as_i64().unwrap_or(-1)
}

fn weight(r: &Value) -> i64 {
    r.pointer("/status/canary/weights/canary/weight")
        .and_then(Value::as_i64)
        .unwrap_or(-1)
}

/// The stable and canary Services of the Rollout `web`.
const SERVICES: &str = r#"apiVersion: v1
kind: Service
metadata: {name: web-stable}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 9898}]
---
apiVersion: v1
kind: Service
metadata: {name: web-canary}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 9898}]
"#;

/// A Rollout `web` of 5 replicas running `image`, with `canary` (YAML indented for
/// `spec.strategy.canary`).
fn rollout(image: &str, canary: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata: {{name: web}}
spec:
  replicas: 5
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: podinfo
        image: {image}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
{canary}"#
    )
}

const MANUAL_STEPS: &str = r#"      abortScaleDownDelaySeconds: 2
      steps:
      - setWeight: 20
      - pause: {}
      - setWeight: 50
      - pause: {duration: 1s}
"#;

/// Deploys the first revision and waits until it is the stable one.
async fn first_revision(c: &Canary, canary: &str) -> String {
    c.apply(SERVICES);
    c.apply(&rollout("podinfo:6.0.0", canary));
    let r = c
        .wait_rollout("web", "Healthy on its first revision", |r| {
            status_str(r, "phase") == "Healthy"
        })
        .await;
    let stable = status_str(&r, "stableRS").to_owned();
    assert_eq!(status_str(&r, "currentPodHash"), stable);
    assert_eq!(c.replica_set(&stable), (5, 5));
    stable
}

#[tokio::test]
async fn a_good_canary_goes_through_20_and_50_percent_to_100() {
    let c = Canary::start("ro-good").await;
    let stable = first_revision(&c, MANUAL_STEPS).await;

    c.apply(&rollout("podinfo:6.0.1", MANUAL_STEPS));
    let r = c
        .wait_rollout("web", "paused at step 1 with 20 % on the canary", |r| {
            status_str(r, "phase") == "Paused" && step(r) == 1
        })
        .await;
    let canary = status_str(&r, "currentPodHash").to_owned();
    assert_ne!(canary, stable);
    assert_eq!(weight(&r), 20);
    assert_eq!(
        r["status"]["pauseConditions"][0]["reason"],
        "CanaryPauseStep"
    );
    // 20 % of 5 replicas: one canary pod, four stable ones; each Service selects its side.
    assert_eq!(c.replica_set(&canary), (1, 1));
    assert_eq!(c.replica_set(&stable).0, 4);
    let svc = c.json(&["service", "web-canary"]);
    assert_eq!(
        svc["spec"]["selector"]["rollouts-pod-template-hash"],
        canary.as_str()
    );
    let svc = c.json(&["service", "web-stable"]);
    assert_eq!(
        svc["spec"]["selector"]["rollouts-pod-template-hash"],
        stable.as_str()
    );
    // The Rollout's health, as the app shows it: Suspended while paused.
    let got = c.cli_ok(&["get", "web"]);
    assert!(
        got.contains("Paused") && got.contains("canary 20 %"),
        "{got}"
    );

    // The pause without a duration waits for a promote.
    c.cli_ok(&["promote", "web"]);
    c.wait_rollout("web", "at 50 % (steps 2 and 3)", |r| {
        step(r) >= 3 && weight(r) == 50
    })
    .await;
    let r = c
        .wait_rollout("web", "promoted: the canary is the stable", |r| {
            status_str(r, "phase") == "Healthy" && status_str(r, "stableRS") == canary
        })
        .await;
    assert_eq!(step(&r), 4);
    c.wait_replicas(&canary, 5, 5).await;
    c.wait_replicas(&stable, 0, 0).await;
    let svc = c.json(&["service", "web-stable"]);
    assert_eq!(
        svc["spec"]["selector"]["rollouts-pod-template-hash"],
        canary.as_str()
    );
    assert!(!c.events("RolloutCompleted").is_empty());
    drop(c.controller);
}

#[tokio::test]
async fn an_aborted_canary_goes_back_to_the_stable_and_a_revert_makes_it_healthy() {
    let c = Canary::start("ro-abort").await;
    let stable = first_revision(&c, MANUAL_STEPS).await;
    c.apply(&rollout("podinfo:bad", MANUAL_STEPS));
    let r = c
        .wait_rollout("web", "paused at step 1", |r| {
            status_str(r, "phase") == "Paused" && step(r) == 1
        })
        .await;
    let canary = status_str(&r, "currentPodHash").to_owned();

    c.cli_ok(&["abort", "web"]);
    let r = c
        .wait_rollout("web", "Degraded after the abort", |r| {
            status_str(r, "phase") == "Degraded"
        })
        .await;
    assert_eq!(r["status"]["abort"], true);
    assert_eq!(weight(&r), 0);
    assert!(
        status_str(&r, "message").starts_with("RolloutAborted"),
        "{r}"
    );
    // The canary goes after abortScaleDownDelaySeconds (2 s); the stable runs every replica.
    c.wait_replicas(&canary, 0, 0).await;
    c.wait_replicas(&stable, 5, 5).await;
    assert!(!c.events("RolloutAborted").is_empty());
    // A promote is refused while aborted; it names what to do.
    let out = c.cli(&["promote", "web"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("retry"));

    // The GitOps way back: the previous template again (a revert commit).
    c.apply(&rollout("podinfo:6.0.0", MANUAL_STEPS));
    let r = c
        .wait_rollout("web", "Healthy on the stable again", |r| {
            status_str(r, "phase") == "Healthy"
        })
        .await;
    assert_eq!(status_str(&r, "stableRS"), stable);
    assert_eq!(r["status"].get("abort"), None);
}

#[tokio::test]
async fn a_retry_after_an_abort_starts_again_at_step_zero() {
    let c = Canary::start("ro-retry").await;
    first_revision(&c, MANUAL_STEPS).await;
    c.apply(&rollout("podinfo:6.0.1", MANUAL_STEPS));
    c.wait_rollout("web", "paused at step 1", |r| {
        status_str(r, "phase") == "Paused"
    })
    .await;
    c.cli_ok(&["abort", "web"]);
    c.wait_rollout("web", "Degraded", |r| status_str(r, "phase") == "Degraded")
        .await;
    c.cli_ok(&["retry", "web"]);
    let r = c
        .wait_rollout("web", "paused at step 1 again", |r| {
            status_str(r, "phase") == "Paused" && step(r) == 1
        })
        .await;
    assert_eq!(weight(&r), 20);
    assert_eq!(r["status"]["attempt"], 1);
}

#[tokio::test]
async fn a_killed_ferry_resumes_the_rollout_at_the_same_step() {
    let mut c = Canary::start("ro-restart").await;
    let steps = r#"      steps:
      - setWeight: 20
      - pause: {duration: 5s}
      - setWeight: 40
      - pause: {}
"#;
    first_revision(&c, steps).await;
    c.apply(&rollout("podinfo:6.0.1", steps));
    let r = c
        .wait_rollout("web", "in the timed pause at step 1", |r| {
            step(r) == 1 && status_str(r, "phase") == "Paused"
        })
        .await;
    let started = r["status"]["pauseConditions"][0]["startTime"].clone();
    c.controller.kill();
    // Nothing moves while ferry is down.
    let r = c.rollout("web").unwrap();
    assert_eq!(step(&r), 1);
    c.controller.restart();
    // The pause counts from its stored start: it ends and the rollout goes on to step 3.
    let r = c
        .wait_rollout("web", "past the timed pause, waiting at step 3", |r| {
            step(r) == 3 && status_str(r, "phase") == "Paused"
        })
        .await;
    assert_eq!(weight(&r), 40);
    assert_ne!(r["status"]["pauseConditions"][0]["startTime"], started);
    let log = c.controller.log();
    assert!(log.contains("rollout controller starting"), "{log}");
}

#[tokio::test]
async fn bad_input_is_reported_and_never_promoted() {
    let c = Canary::start("ro-bad").await;
    // An unknown step type.
    c.apply(SERVICES);
    c.apply(&rollout(
        "podinfo:6.0.0",
        "      steps:\n      - setWeight: 20\n      - setWieght: 50\n",
    ));
    let r = c
        .wait_rollout("web", "Degraded with InvalidSpec", |r| {
            status_str(r, "phase") == "Degraded"
        })
        .await;
    let msg = status_str(&r, "message");
    assert!(
        msg.contains("InvalidSpec") && msg.contains("steps[1].setWieght"),
        "{msg}"
    );
    let cond = r["status"]["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "InvalidSpec")
        .cloned()
        .unwrap();
    assert_eq!(cond["status"], "True");
    assert!(r["status"].get("stableRS").is_none());
    assert_eq!(
        c.json(&["replicasets"])["items"].as_array().unwrap().len(),
        0
    );
    assert!(!c.events("InvalidSpec").is_empty());

    // Fixed, it deploys; then a canary whose canaryService does not exist stops with a message.
    let steps = "      steps:\n      - setWeight: 20\n      - pause: {}\n";
    c.apply(&rollout("podinfo:6.0.0", steps));
    let r = c
        .wait_rollout("web", "Healthy once fixed", |r| {
            status_str(r, "phase") == "Healthy"
        })
        .await;
    let stable = status_str(&r, "stableRS").to_owned();
    let missing = rollout("podinfo:6.0.1", steps)
        .replace("canaryService: web-canary", "canaryService: web-nope");
    c.apply(&missing);
    let r = c
        .wait_rollout("web", "Degraded naming the missing Service", |r| {
            status_str(r, "message").contains("web-nope")
        })
        .await;
    assert_eq!(status_str(&r, "phase"), "Degraded");
    assert!(status_str(&r, "message").contains("canaryService"), "{r}");
    assert_eq!(status_str(&r, "stableRS"), stable);
    let sets = c.json(&["replicasets"]);
    assert_eq!(
        sets["items"].as_array().unwrap().len(),
        1,
        "no canary ReplicaSet: {sets}"
    );
}

#[tokio::test]
async fn nginx_gets_a_canary_ingress_with_the_weight_and_header_routing() {
    let c = Canary::start("ro-nginx").await;
    c.apply(
        r#"apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  ingressClassName: nginx
  rules:
  - host: web.local
    http:
      paths:
      - path: /
        pathType: Prefix
        backend: {service: {name: web-stable, port: {number: 80}}}
"#,
    );
    let canary = r#"      trafficRouting:
        nginx:
          stableIngress: web
          additionalIngressAnnotations:
            canary-by-header: X-Canary
      steps:
      - setWeight: 20
      - pause: {}
"#;
    first_revision(&c, canary).await;
    c.apply(&rollout("podinfo:6.0.1", canary));
    let r = c
        .wait_rollout("web", "paused at 20 %", |r| {
            status_str(r, "phase") == "Paused"
        })
        .await;
    assert_eq!(weight(&r), 20);
    let hash = status_str(&r, "currentPodHash").to_owned();
    let ing = c.json(&["ingress", "web-web-canary"]);
    let a = &ing["metadata"]["annotations"];
    assert_eq!(a["nginx.ingress.kubernetes.io/canary"], "true");
    assert_eq!(a["nginx.ingress.kubernetes.io/canary-weight"], "20");
    assert_eq!(
        a["nginx.ingress.kubernetes.io/canary-by-header"],
        "X-Canary"
    );
    assert_eq!(
        ing.pointer("/spec/rules/0/http/paths/0/backend/service/name"),
        Some(&Value::from("web-canary"))
    );
    // With traffic routing the stable keeps all its replicas.
    assert_eq!(c.replica_set(&hash), (1, 1));
    c.cli_ok(&["promote", "web"]);
    c.wait_rollout("web", "Healthy", |r| status_str(r, "phase") == "Healthy")
        .await;
    let ing = c.json(&["ingress", "web-web-canary"]);
    assert_eq!(
        ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/canary-weight"],
        "0"
    );
}

/// A minimal HTTPRoute CRD (open schema) for the Gateway API test; the real one has a schema,
/// ferry only reads and writes `spec.rules[].backendRefs[].weight`.
const HTTP_ROUTE_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: httproutes.gateway.networking.k8s.io
  # The API server protects *.k8s.io groups; the Gateway API's own CRDs carry this annotation.
  annotations: {api-approved.kubernetes.io: "https://github.com/kubernetes-sigs/gateway-api/pull/2466"}
spec:
  group: gateway.networking.k8s.io
  names: {kind: HTTPRoute, listKind: HTTPRouteList, plural: httproutes, singular: httproute}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
"#;

#[tokio::test]
async fn the_gateway_api_route_gets_the_weights() {
    let c = Canary::start("ro-gateway").await;
    Cluster::shared().kubectl().apply(HTTP_ROUTE_CRD);
    wait_until(
        "the HTTPRoute CRD is served",
        Duration::from_secs(60),
        || async {
            match c.ns.kubectl().try_run(&["get", "httproutes"]) {
                Ok(_) => Probe::Done(()),
                Err(e) => Probe::Pending(e),
            }
        },
    )
    .await;
    c.apply(
        r#"apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata: {name: web}
spec:
  parentRefs: [{name: gateway}]
  rules:
  - backendRefs:
    - {name: web-stable, port: 80}
    - {name: web-canary, port: 80, weight: 0}
"#,
    );
    let canary = r#"      trafficRouting:
        plugins:
          argoproj-labs/gatewayAPI:
            httpRoute: web
      steps:
      - setWeight: 30
      - pause: {}
"#;
    first_revision(&c, canary).await;
    c.apply(&rollout("podinfo:6.0.1", canary));
    c.wait_rollout("web", "paused at 30 %", |r| {
        status_str(r, "phase") == "Paused" && weight(r) == 30
    })
    .await;
    let route = c.json(&["httproute", "web"]);
    let refs = &route["spec"]["rules"][0]["backendRefs"];
    assert_eq!(refs[0]["weight"], 70);
    assert_eq!(refs[1]["weight"], 30);
    c.cli_ok(&["abort", "web"]);
    c.wait_rollout("web", "Degraded", |r| status_str(r, "phase") == "Degraded")
        .await;
    let route = c.json(&["httproute", "web"]);
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][1]["weight"], 0);
    assert_eq!(route["spec"]["rules"][0]["backendRefs"][0]["weight"], 100);
}

/// The app's health of its Rollout `web` (from `status.resources`).
fn app_rollout_health(app: &Value) -> (String, String) {
    app["status"]["resources"]
        .as_array()
        .and_then(|rs| rs.iter().find(|r| r["kind"] == "Rollout"))
        .map(|r| {
            (
                r["health"]["status"].as_str().unwrap_or("").to_owned(),
                r["health"]["message"].as_str().unwrap_or("").to_owned(),
            )
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn in_an_app_an_abort_shows_degraded_and_a_revert_commit_rolls_back() {
    let c = Canary::start("ro-app").await;
    let repo = ferry_testsupport::GitRepo::new();
    repo.write("web/services.yaml", SERVICES)
        .write("web/rollout.yaml", &rollout("podinfo:6.0.0", MANUAL_STEPS));
    repo.commit("web 6.0.0");
    c.apply(&common::application(
        "web",
        &repo.url(),
        "web",
        c.ns.name(),
        common::AUTOMATED,
    ));
    let app = |c: &Canary| -> Option<Value> {
        c.ns.kubectl()
            .try_run(&["get", "application", "web", "-o", "json"])
            .ok()
            .map(|s| serde_json::from_str(&s).unwrap())
    };
    let wait_app = |what: &'static str, check: fn(&Value) -> bool| {
        let c = &c;
        async move {
            wait_until(&format!("app web: {what}"), STEP, || async {
                match app(c) {
                    Some(a) if check(&a) => Probe::Done(a),
                    Some(a) => Probe::pending(format!(
                        "{:.800}",
                        a["status"]["health"].to_string() + &a["status"]["sync"].to_string()
                    )),
                    None => Probe::pending("no app"),
                }
            })
            .await
        }
    };
    wait_app("Synced and Healthy", |a| {
        common::sync_status(a) == "Synced" && common::health_status(a) == "Healthy"
    })
    .await;

    repo.write(
        "web/rollout.yaml",
        &rollout("podinfo:6.0.1-bad", MANUAL_STEPS),
    );
    repo.commit("web 6.0.1-bad");
    let a = wait_app("Suspended at the pause", |a| {
        common::health_status(a) == "Suspended"
    })
    .await;
    assert_eq!(app_rollout_health(&a).0, "Suspended");

    // The UI's page of the app's Rollout, and the abort through the API (the server here runs
    // without sign-in; the routes take the app's read and sync rights otherwise).
    let ui = UiServer::start(Cluster::shared().kubeconfig(), c.ns.name(), true).await;
    let page = ui.get("/applications/web/rollouts/web");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("setWeight: 20") && page.body.contains("canary 20 %"),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("data-state=\"current\""),
        "{}",
        page.body
    );
    let got = request(
        ui.addr,
        "GET",
        "/api/v1/applications/web/rollouts/web",
        &[],
        b"",
    );
    assert_eq!(got.status, 200, "{}", got.body);
    let view: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(view["rollout"]["phase"], "Paused");
    assert_eq!(view["rollout"]["canaryWeight"], 20);
    let missing = request(
        ui.addr,
        "GET",
        "/api/v1/applications/web/rollouts/nope",
        &[],
        b"",
    );
    assert_eq!(missing.status, 404, "{}", missing.body);
    let aborted = request(
        ui.addr,
        "POST",
        "/api/v1/applications/web/rollouts/web/abort",
        &[],
        b"",
    );
    assert_eq!(aborted.status, 202, "{}", aborted.body);
    let a = wait_app("Degraded after the abort", |a| {
        common::health_status(a) == "Degraded"
    })
    .await;
    let (health, message) = app_rollout_health(&a);
    assert_eq!(health, "Degraded");
    assert!(message.contains("RolloutAborted"), "{message}");
    // Still Synced: Git asks for the bad revision, and the Rollout's spec has it.
    assert_eq!(
        common::sync_status(&a),
        "Synced",
        "{}",
        a["status"]["resources"]
    );

    // The GitOps rollback: a revert commit; ferry syncs it and the Rollout is on the stable again.
    repo.git(&["revert", "--no-edit", "HEAD"]);
    repo.git(&["push", "--quiet", "origin", "HEAD:main"]);
    let a = wait_app("Healthy after the revert", |a| {
        common::sync_status(a) == "Synced" && common::health_status(a) == "Healthy"
    })
    .await;
    let r = c.rollout("web").unwrap();
    assert_eq!(status_str(&r, "phase"), "Healthy");
    assert_eq!(status_str(&r, "stableRS"), status_str(&r, "currentPodHash"));
    let history = a["status"]["history"].as_array().map(Vec::len).unwrap_or(0);
    assert!(
        history >= 3,
        "three syncs in the app's history: {}",
        a["status"]["history"]
    );
}

/// An AnalysisTemplate `error-rate` over the series `http_error_ratio{service="<arg>"}` of the
/// test's Prometheus: three measurements a second apart, each must be at most 5 %; one failure
/// fails the run.
fn error_rate_template(prometheus: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AnalysisTemplate
metadata: {{name: error-rate}}
spec:
  args:
  - name: service
  metrics:
  - name: error-ratio
    interval: 1s
    count: 3
    failureLimit: 0
    successCondition: result[0] <= 0.05
    provider:
      prometheus:
        address: {prometheus}
        query: 'http_error_ratio{{service="{{{{args.service}}}}"}}'
"#
    )
}

const ANALYSIS_STEPS: &str = r#"      steps:
      - setWeight: 20
      - analysis:
          templates:
          - templateName: error-rate
          args:
          - name: service
            value: web-canary
      - setWeight: 50
      - pause: {duration: 1s}
"#;

#[tokio::test]
async fn a_canary_with_a_passing_analysis_is_promoted_to_100() {
    let prom = ferry_testsupport::prometheus::Prometheus::start().await;
    prom.set("http_error_ratio{service=\"web-canary\"}", 0.01);
    prom.wait_for_value("http_error_ratio{service=\"web-canary\"}", 0.01)
        .await;
    let c = Canary::start("ro-analysis-good").await;
    c.apply(&error_rate_template(prom.url()));
    let stable = first_revision(&c, ANALYSIS_STEPS).await;
    c.apply(&rollout("podinfo:6.0.1", ANALYSIS_STEPS));
    let r = c
        .wait_rollout("web", "analysis under way at step 1", |r| {
            step(r) == 1
                && r.pointer("/status/canary/currentStepAnalysisRunStatus/name")
                    .is_some()
        })
        .await;
    assert_eq!(weight(&r), 20);
    let canary = status_str(&r, "currentPodHash").to_owned();
    let run_name = format!("web-{canary}-1");
    let r = c
        .wait_rollout("web", "promoted after the analysis", |r| {
            status_str(r, "phase") == "Healthy" && status_str(r, "stableRS") == canary
        })
        .await;
    assert_ne!(status_str(&r, "stableRS"), stable);
    let run = c.json(&["analysisrun", &run_name]);
    assert_eq!(run["status"]["phase"], "Successful", "{run}");
    let measured = run
        .pointer("/status/metricResults/0/measurements")
        .and_then(Value::as_array)
        .map(Vec::len)
        .unwrap_or(0);
    assert_eq!(measured, 3, "{run}");
    assert_eq!(run["metadata"]["ownerReferences"][0]["kind"], "Rollout");
}

#[tokio::test]
async fn a_canary_with_a_high_error_rate_is_aborted_at_its_first_analysis() {
    let prom = ferry_testsupport::prometheus::Prometheus::start().await;
    prom.set("http_error_ratio{service=\"web-canary\"}", 0.4);
    prom.wait_for_value("http_error_ratio{service=\"web-canary\"}", 0.4)
        .await;
    let c = Canary::start("ro-analysis-bad").await;
    c.apply(&error_rate_template(prom.url()));
    let stable = first_revision(
        &c,
        &format!("      abortScaleDownDelaySeconds: 1\n{ANALYSIS_STEPS}"),
    )
    .await;
    c.apply(&rollout(
        "podinfo:6.0.1-bad",
        &format!("      abortScaleDownDelaySeconds: 1\n{ANALYSIS_STEPS}"),
    ));
    let r = c
        .wait_rollout("web", "aborted by the analysis", |r| {
            status_str(r, "phase") == "Degraded"
        })
        .await;
    let canary = status_str(&r, "currentPodHash").to_owned();
    assert_eq!(r["status"]["abort"], true);
    assert_eq!(step(&r), 1, "aborted at its first analysis, step 1");
    assert_eq!(weight(&r), 0);
    let message = status_str(&r, "message");
    assert!(
        message.starts_with("RolloutAborted") && message.contains("Failed"),
        "{message}"
    );
    assert_eq!(status_str(&r, "stableRS"), stable, "never promoted");
    let run = c.json(&["analysisrun", &format!("web-{canary}-1")]);
    assert_eq!(run["status"]["phase"], "Failed", "{run}");
    c.wait_replicas(&canary, 0, 0).await;
    c.wait_replicas(&stable, 5, 5).await;
    let events = c.events("RolloutAborted");
    assert!(events.iter().any(|e| e.contains("analysis")), "{events:?}");
}
