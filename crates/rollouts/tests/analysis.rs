//! Analysis against the real parts: Debian's Prometheus scraping series the test sets, and the
//! local control plane holding the templates and runs. Each test drives its run as the Rollout
//! controller does: `ensure_run`, then `advance` whenever the last call said the next
//! measurement is due, until the run ends.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ferry_rollouts::analysis::{
    self, AnalysisError, AnalysisRun, Arg, RunOutcome, RunPhase, RunRequest, TemplateRef,
};
use ferry_testsupport::prometheus::Prometheus;
use ferry_testsupport::{Cluster, TestNamespace};
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;

const CRDS: [&str; 3] = [
    "crd/analysistemplates.argoproj.io",
    "crd/clusteranalysistemplates.argoproj.io",
    "crd/analysisruns.argoproj.io",
];

fn install_crds() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let crds = ferry_testsupport::repo_root().join("manifests/crds");
        let kubectl = Cluster::shared().kubectl();
        kubectl.run(&[
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            crds.to_str().expect("utf-8 path"),
        ]);
        let mut args = vec!["wait", "--for=condition=Established"];
        args.extend(CRDS);
        kubectl.run(&args);
    });
}

async fn namespace(prefix: &str) -> TestNamespace {
    ferry_testsupport::install_crypto_provider();
    install_crds();
    Cluster::shared().namespace(prefix).await
}

fn http() -> ferry_http::Client {
    ferry_http::Client::new(ferry_http::Options {
        timeout: Duration::from_secs(10),
        ..ferry_http::Options::default()
    })
    .expect("an HTTP client")
}

/// A ConfigMap standing in for the Rollout that owns the run.
async fn owner(ns: &TestNamespace) -> OwnerReference {
    ns.kubectl()
        .apply("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: owner\ndata:\n  a: b\n");
    let cm = ns.api::<ConfigMap>().get("owner").await.expect("the owner");
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: "owner".into(),
        uid: cm.metadata.uid.expect("a uid"),
        ..OwnerReference::default()
    }
}

async fn request(
    ns: &TestNamespace,
    name: &str,
    templates: &[&str],
    args: &[(&str, &str)],
) -> RunRequest {
    RunRequest {
        namespace: ns.name().into(),
        name: name.into(),
        owner: owner(ns).await,
        templates: templates
            .iter()
            .map(|t| TemplateRef {
                template_name: t.to_string(),
                cluster_scope: false,
            })
            .collect(),
        args: args
            .iter()
            .map(|(n, v)| Arg {
                name: n.to_string(),
                value: v.to_string(),
            })
            .collect(),
        labels: BTreeMap::from([("rollout-type".to_string(), "Step".to_string())]),
    }
}

/// A template with one Prometheus metric; `fields` are the metric's other fields (YAML flow).
fn template(ns: &TestNamespace, name: &str, address: &str, query: &str, fields: &str) {
    ns.kubectl().apply(&format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: {name}\n\
         spec:\n  args:\n    - name: service\n  metrics:\n    - name: errors\n      {fields}\n      \
         provider:\n        prometheus:\n          address: {address}\n          query: '{query}'\n"
    ));
}

/// Advances the run until it ends, waiting between calls as long as `advance` says.
async fn drive(ns: &TestNamespace, name: &str) -> RunOutcome {
    let kube = ns.client();
    let http = http();
    let start = Instant::now();
    loop {
        let outcome = match analysis::advance(&kube, &http, ns.name(), name).await {
            Ok(o) => o,
            Err(e) if e.is_conflict() => continue,
            Err(e) => panic!("advancing {name}: {e}"),
        };
        if outcome.phase.is_completed() {
            return outcome;
        }
        let run = run(ns, name).await;
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "run {name} did not end within 90 s: {:?}",
            run.status
        );
        let wait = outcome
            .next_in
            .expect("a running run says when to come back");
        tokio::time::sleep(wait.max(Duration::from_millis(20))).await;
    }
}

async fn run(ns: &TestNamespace, name: &str) -> AnalysisRun {
    ns.api::<AnalysisRun>().get(name).await.expect("the run")
}

#[tokio::test]
async fn a_good_metric_is_successful_after_count_measurements() {
    let prom = Prometheus::start().await;
    prom.set("error_ratio{service=\"good\"}", 0.01);
    prom.wait_for_value("error_ratio{service=\"good\"}", 0.01)
        .await;
    let ns = namespace("analysis-good").await;
    template(
        &ns,
        "error-rate",
        prom.url(),
        "error_ratio{service=\"{{args.service}}\"}",
        "interval: 1s\n      count: 3\n      successCondition: result[0] < 0.05",
    );
    let req = request(&ns, "canary-1", &["error-rate"], &[("service", "good")]).await;
    let kube = ns.client();
    analysis::ensure_run(&kube, &req)
        .await
        .expect("the run is created");
    analysis::ensure_run(&kube, &req)
        .await
        .expect("a second call leaves it as it is");

    let outcome = drive(&ns, "canary-1").await;
    assert_eq!(outcome.phase, RunPhase::Successful, "{outcome:?}");
    assert_eq!(outcome.next_in, None);
    let run = run(&ns, "canary-1").await;
    assert_eq!(
        run.metadata.labels.as_ref().unwrap()["rollout-type"],
        "Step"
    );
    assert_eq!(
        run.metadata.owner_references.as_ref().unwrap()[0].name,
        "owner"
    );
    assert_eq!(run.spec.args[0].value.as_deref(), Some("good"));
    let status = run.status.expect("a status");
    assert_eq!(status.phase, Some(RunPhase::Successful));
    let result = &status.metric_results[0];
    assert_eq!((result.count, result.successful, result.failed), (3, 3, 0));
    assert_eq!(result.measurements.len(), 3);
    for m in &result.measurements {
        assert_eq!(m.phase, RunPhase::Successful, "{m:?}");
        assert_eq!(m.value.as_deref(), Some("[0.01]"));
        assert!(m.started_at.is_some() && m.finished_at.is_some(), "{m:?}");
    }
    assert_eq!(
        result.metadata.as_ref().unwrap()["ResolvedPrometheusQuery"],
        "error_ratio{service=\"good\"}"
    );
    // Measurements are an interval apart.
    let first = result.measurements[0].finished_at.as_ref().unwrap().0;
    let second = result.measurements[1].started_at.as_ref().unwrap().0;
    assert!(
        second.duration_since(first).as_secs_f64() >= 0.99,
        "{first} → {second}"
    );
    // A run that ended stays ended.
    let again = analysis::advance(&kube, &http(), ns.name(), "canary-1")
        .await
        .unwrap();
    assert_eq!(again.phase, RunPhase::Successful);
}

#[tokio::test]
async fn a_bad_metric_fails_at_the_first_measurement_beyond_the_failure_limit() {
    let prom = Prometheus::start().await;
    prom.set("error_ratio{service=\"bad\"}", 0.5);
    prom.wait_for_value("error_ratio{service=\"bad\"}", 0.5)
        .await;
    let ns = namespace("analysis-bad").await;
    template(
        &ns,
        "error-rate",
        prom.url(),
        "error_ratio{service=\"{{args.service}}\"}",
        "interval: 1s\n      count: 5\n      failureLimit: 1\n      successCondition: result[0] < 0.05",
    );
    let req = request(&ns, "canary-1", &["error-rate"], &[("service", "bad")]).await;
    analysis::ensure_run(&ns.client(), &req).await.unwrap();
    let outcome = drive(&ns, "canary-1").await;
    assert_eq!(outcome.phase, RunPhase::Failed, "{outcome:?}");
    assert_eq!(
        outcome.message.as_deref(),
        Some("Metric \"errors\" assessed Failed due to failed (2) > failureLimit (1)")
    );
    let status = run(&ns, "canary-1").await.status.unwrap();
    let result = &status.metric_results[0];
    assert_eq!(result.phase, RunPhase::Failed);
    assert_eq!(
        result.measurements.len(),
        2,
        "no measurement after the limit"
    );
    assert!(
        result
            .measurements
            .iter()
            .all(|m| m.phase == RunPhase::Failed && m.value.as_deref() == Some("[0.5]"))
    );
    assert_eq!(status.message, outcome.message);
}

#[tokio::test]
async fn a_query_prometheus_rejects_gives_error_measurements_with_its_message() {
    let prom = Prometheus::start().await;
    let ns = namespace("analysis-rejected").await;
    template(
        &ns,
        "broken",
        prom.url(),
        "sum(rate(error_ratio{service=\"{{args.service}}\"}[1m])",
        "interval: 1s\n      consecutiveErrorLimit: 1\n      successCondition: result[0] < 0.05",
    );
    let req = request(&ns, "canary-1", &["broken"], &[("service", "x")]).await;
    analysis::ensure_run(&ns.client(), &req).await.unwrap();
    let outcome = drive(&ns, "canary-1").await;
    assert_eq!(outcome.phase, RunPhase::Error, "{outcome:?}");
    let message = outcome.message.unwrap();
    assert!(
        message.starts_with("Metric \"errors\" assessed Error due to consecutiveErrors (2) > consecutiveErrorLimit (1)"),
        "{message}"
    );
    assert!(
        message.contains("rejected the query: bad_data"),
        "{message}"
    );
    assert!(message.contains("parse error"), "{message}");
    let status = run(&ns, "canary-1").await.status.unwrap();
    let result = &status.metric_results[0];
    assert_eq!(
        (result.error, result.consecutive_error, result.count),
        (2, 2, 0)
    );
    for m in &result.measurements {
        assert_eq!(m.phase, RunPhase::Error);
        let text = m.message.as_deref().unwrap();
        assert!(
            text.contains(prom.url()) && text.contains("parse error"),
            "{text}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_prometheus_gives_an_error_naming_the_address() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = format!("http://{}", free.local_addr().unwrap());
    drop(free);
    let ns = namespace("analysis-unreachable").await;
    template(
        &ns,
        "error-rate",
        &address,
        "error_ratio",
        "interval: 1s\n      consecutiveErrorLimit: 0\n      successCondition: result[0] < 0.05",
    );
    let req = request(&ns, "canary-1", &["error-rate"], &[("service", "x")]).await;
    analysis::ensure_run(&ns.client(), &req).await.unwrap();
    let outcome = drive(&ns, "canary-1").await;
    assert_eq!(outcome.phase, RunPhase::Error, "{outcome:?}");
    let message = outcome.message.unwrap();
    assert!(
        message.contains(&address) && message.contains("no answer"),
        "{message}"
    );
}

#[tokio::test]
async fn a_value_between_the_conditions_is_inconclusive_and_an_empty_vector_an_error() {
    let prom = Prometheus::start().await;
    prom.set("error_ratio{service=\"meh\"}", 0.07);
    prom.wait_for_value("error_ratio{service=\"meh\"}", 0.07)
        .await;
    let ns = namespace("analysis-inconclusive").await;
    template(
        &ns,
        "error-rate",
        prom.url(),
        "error_ratio{service=\"{{args.service}}\"}",
        "successCondition: result[0] < 0.05\n      failureCondition: result[0] > 0.1",
    );
    let kube = ns.client();
    let req = request(&ns, "meh", &["error-rate"], &[("service", "meh")]).await;
    analysis::ensure_run(&kube, &req).await.unwrap();
    let outcome = drive(&ns, "meh").await;
    assert_eq!(outcome.phase, RunPhase::Inconclusive, "{outcome:?}");
    assert_eq!(
        outcome.message.as_deref(),
        Some(
            "Metric \"errors\" assessed Inconclusive due to inconclusive (1) > inconclusiveLimit (0)"
        )
    );

    // No series for this service: result[0] does not exist, and the measurement says so.
    let req = request(&ns, "nothing", &["error-rate"], &[("service", "nobody")]).await;
    analysis::ensure_run(&kube, &req).await.unwrap();
    let first = analysis::advance(&kube, &http(), ns.name(), "nothing")
        .await
        .unwrap();
    assert_eq!(
        first.phase,
        RunPhase::Running,
        "one error is within the limit: {first:?}"
    );
    let status = run(&ns, "nothing").await.status.unwrap();
    let m = &status.metric_results[0].measurements[0];
    assert_eq!(m.phase, RunPhase::Error);
    assert_eq!(m.value.as_deref(), Some("[]"));
    assert!(
        m.message
            .as_deref()
            .unwrap()
            .contains("index 0 is out of range"),
        "{m:?}"
    );
}

#[tokio::test]
async fn templates_merge_with_a_cluster_template_and_a_terminated_run_ends() {
    let prom = Prometheus::start().await;
    prom.set("latency_seconds{service=\"web\"}", 0.2);
    prom.set("error_ratio{service=\"web\"}", 0.0);
    prom.wait_for_value("latency_seconds{service=\"web\"}", 0.2)
        .await;
    let ns = namespace("analysis-merge").await;
    template(
        &ns,
        "error-rate",
        prom.url(),
        "error_ratio{service=\"{{args.service}}\"}",
        "interval: 1s\n      successCondition: result[0] < 0.05",
    );
    let cluster_template = format!("{}-latency", ns.name());
    Cluster::shared().kubectl().apply(&format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: ClusterAnalysisTemplate\nmetadata:\n  name: {cluster_template}\n\
         spec:\n  args:\n    - name: service\n    - name: threshold\n      value: '0.5'\n  metrics:\n    - name: latency\n      \
         successCondition: 'all(result, {{# < {{{{args.threshold}}}}}})'\n      provider:\n        prometheus:\n          \
         address: {}\n          query: 'latency_seconds{{service=\"{{{{args.service}}}}\"}}'\n",
        prom.url()
    ));
    let mut req = request(&ns, "merged", &["error-rate"], &[("service", "web")]).await;
    req.templates.push(TemplateRef {
        template_name: cluster_template.clone(),
        cluster_scope: true,
    });
    let kube = ns.client();
    analysis::ensure_run(&kube, &req).await.unwrap();
    let created = run(&ns, "merged").await;
    let names: Vec<_> = created
        .spec
        .metrics
        .iter()
        .map(|m| m.name.as_str())
        .collect();
    assert_eq!(names, ["errors", "latency"]);

    // errors has an interval and no count: it runs until the run is terminated.
    let kube2 = kube.clone();
    let name = ns.name().to_string();
    ferry_testsupport::wait_until("both metrics measured", Duration::from_secs(60), || {
        let kube = kube2.clone();
        let name = name.clone();
        async move {
            match analysis::advance(&kube, &http(), &name, "merged").await {
                Ok(o) if o.phase == RunPhase::Running => {}
                other => return ferry_testsupport::Probe::pending(format!("{other:?}")),
            }
            let api: Api<AnalysisRun> = Api::namespaced(kube, &name);
            let status = api.get("merged").await.unwrap().status.unwrap_or_default();
            let done: Vec<_> = status
                .metric_results
                .iter()
                .filter(|r| r.count >= 1)
                .map(|r| (r.name.clone(), r.phase))
                .collect();
            if done.len() == 2 {
                ferry_testsupport::Probe::Done(())
            } else {
                ferry_testsupport::Probe::pending(format!("{done:?}"))
            }
        }
    })
    .await;
    analysis::terminate(&kube, ns.name(), "merged")
        .await
        .unwrap();
    let status = run(&ns, "merged").await.status.unwrap();
    assert_eq!(status.phase, Some(RunPhase::Successful));
    assert_eq!(status.message.as_deref(), Some("Run Terminated"));
    let latency = status
        .metric_results
        .iter()
        .find(|r| r.name == "latency")
        .unwrap();
    assert_eq!(
        (latency.phase, latency.measurements[0].value.as_deref()),
        (RunPhase::Successful, Some("[0.2]"))
    );
    Cluster::shared()
        .kubectl()
        .run(&["delete", "clusteranalysistemplate", &cluster_template]);
}

#[tokio::test]
async fn an_unknown_template_or_a_missing_arg_is_named() {
    let ns = namespace("analysis-refused").await;
    let kube = ns.client();
    let req = request(&ns, "r", &["nope"], &[]).await;
    let e = analysis::ensure_run(&kube, &req).await.unwrap_err();
    assert!(matches!(e, AnalysisError::TemplateNotFound { .. }), "{e}");
    assert!(
        e.to_string()
            .contains("AnalysisTemplate \"nope\" not found"),
        "{e}"
    );

    template(
        &ns,
        "needs-service",
        "http://127.0.0.1:1",
        "up{service=\"{{args.service}}\"}",
        "count: 1",
    );
    let req = request(&ns, "r", &["needs-service"], &[]).await;
    let e = analysis::ensure_run(&kube, &req).await.unwrap_err();
    assert!(
        matches!(&e, AnalysisError::MissingArg { arg, .. } if arg == "service"),
        "{e}"
    );
    assert!(
        ns.api::<AnalysisRun>()
            .get_opt("r")
            .await
            .unwrap()
            .is_none(),
        "no run is created"
    );
}

#[tokio::test]
async fn an_arg_from_a_secret_is_read_at_each_measurement_and_never_shown() {
    let prom = Prometheus::start().await;
    prom.set("error_ratio{service=\"s3cret-svc\"}", 0.0);
    prom.wait_for_value("error_ratio{service=\"s3cret-svc\"}", 0.0)
        .await;
    let ns = namespace("analysis-secret").await;
    ns.kubectl().run(&[
        "create",
        "secret",
        "generic",
        "analysis",
        "--from-literal=service=s3cret-svc",
    ]);
    let manifest = |name: &str, secret: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: AnalysisTemplate\nmetadata:\n  name: {name}\n\
             spec:\n  args:\n    - name: service\n      valueFrom:\n        secretKeyRef: {{name: {secret}, key: service}}\n  \
             metrics:\n    - name: errors\n      successCondition: result[0] == 0\n      provider:\n        \
             prometheus:\n          address: {}\n          query: 'error_ratio{{service=\"{{{{args.service}}}}\"}}'\n",
            prom.url()
        )
    };
    ns.kubectl().apply(&manifest("from-secret", "analysis"));
    ns.kubectl()
        .apply(&manifest("from-missing-secret", "missing"));
    let kube = ns.client();

    analysis::ensure_run(&kube, &request(&ns, "ok", &["from-secret"], &[]).await)
        .await
        .unwrap();
    let created = run(&ns, "ok").await;
    assert_eq!(created.spec.args[0].value, None, "the value is not stored");
    let outcome = drive(&ns, "ok").await;
    assert_eq!(outcome.phase, RunPhase::Successful, "{outcome:?}");
    let status = run(&ns, "ok").await.status.unwrap();
    let query = &status.metric_results[0].metadata.as_ref().unwrap()["ResolvedPrometheusQuery"];
    assert_eq!(query, "error_ratio{service=\"*****\"}");

    let req = request(&ns, "missing", &["from-missing-secret"], &[]).await;
    analysis::ensure_run(&kube, &req).await.unwrap();
    let outcome = drive(&ns, "missing").await;
    assert_eq!(outcome.phase, RunPhase::Error, "{outcome:?}");
    let message = outcome.message.unwrap();
    assert!(
        message.starts_with("Unable to resolve metric arguments")
            && message.contains(&format!("Secret {}/missing not found", ns.name())),
        "{message}"
    );
}
