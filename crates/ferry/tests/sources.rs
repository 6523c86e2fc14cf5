//! Helm charts, Kustomize overlays and multiple sources through the engine: the real `ferry`
//! binary renders them with the real `helm` and `kustomize` (scripts/install-tools.sh puts them
//! in target/tools/bin, which `make test` adds to PATH).

mod common;

use common::*;
use ferry_testsupport::GitRepo;
use serde_json::Value;

const CHART: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\n";
const CHART_VALUES: &str = "# defaults\nimage: registry.example/web\ntag: \"1.0\"\nreplicas: 1\n";
const CHART_DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    team: {{ required "values.team is required" .Values.team }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels: {app: {{ .Release.Name }}}
  template:
    metadata:
      labels: {app: {{ .Release.Name }}}
    spec:
      containers:
      - name: web
        image: "{{ .Values.image }}:{{ .Values.tag }}"
"#;
const CHART_HOOK: &str = r#"apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-migrate
  annotations:
    helm.sh/hook: pre-install,pre-upgrade
    helm.sh/hook-delete-policy: hook-succeeded
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers: [{name: migrate, image: registry.example/migrate:1}]
"#;

fn write_chart(repo: &GitRepo) {
    repo.write("charts/web/Chart.yaml", CHART)
        .write("charts/web/values.yaml", CHART_VALUES)
        .write("charts/web/templates/deployment.yaml", CHART_DEPLOYMENT)
        .write("charts/web/templates/migrate.yaml", CHART_HOOK);
}

fn deployment_field<'a>(d: Option<&'a Value>, pointer: &str) -> Option<&'a Value> {
    d?.pointer(pointer)
}

#[tokio::test]
async fn a_helm_chart_with_values_from_another_source_syncs() {
    let w = World::start("helm-multi-source").await;
    let ns = w.ns.name();
    let charts = GitRepo::new();
    write_chart(&charts);
    charts.commit("the web chart");
    let config = GitRepo::new();
    config.write(
        "envs/prod/values.yaml",
        "team: payments\nreplicas: 3\ntag: \"2.5\"\n",
    );
    config.commit("prod values");
    w.apply(&format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: shop
spec:
  project: default
  sources:
  - repoURL: {charts}
    path: charts/web
    targetRevision: main
    helm:
      releaseName: shop-web
      valueFiles: [$config/envs/prod/values.yaml]
      parameters:
      - name: image
        value: registry.example/shop
  - repoURL: {config}
    targetRevision: main
    ref: config
  destination:
    server: https://kubernetes.default.svc
    namespace: {ns}
{AUTOMATED}"#,
        charts = charts.url(),
        config = config.url(),
    ));
    let app = w.wait_synced_healthy("shop").await;
    assert_eq!(
        app.pointer("/status/sourceType").and_then(Value::as_str),
        Some("Helm")
    );
    let d = w
        .wait_object(&["deployment/shop-web"], "the chart's Deployment", |d| {
            d.is_some()
        })
        .await;
    assert_eq!(
        deployment_field(d.as_ref(), "/spec/replicas"),
        Some(&Value::from(3))
    );
    assert_eq!(
        deployment_field(d.as_ref(), "/spec/template/spec/containers/0/image"),
        Some(&Value::from("registry.example/shop:2.5"))
    );
    // The Helm pre-install hook ran as a PreSync hook and was deleted after it succeeded.
    let results = app["status"]["operationState"]["syncResult"]["resources"]
        .as_array()
        .unwrap()
        .clone();
    let hook = results
        .iter()
        .find(|r| r["kind"] == "Job")
        .expect("the hook's result");
    assert_eq!(hook["hookType"], "PreSync");
    assert_eq!(hook["hookPhase"], "Succeeded");
    w.wait_object(
        &["job/shop-web-migrate"],
        "the hook deleted (hook-succeeded)",
        |j| j.is_none(),
    )
    .await;

    // A values change in the other repository is picked up like any commit.
    config.write(
        "envs/prod/values.yaml",
        "team: payments\nreplicas: 4\ntag: \"2.6\"\n",
    );
    config.commit("prod: 2.6");
    w.wait_object(&["deployment/shop-web"], "the new tag", |d| {
        deployment_field(d, "/spec/template/spec/containers/0/image")
            == Some(&Value::from("registry.example/shop:2.6"))
    })
    .await;
}

#[tokio::test]
async fn a_helm_template_error_names_the_value_and_prunes_nothing() {
    let w = World::start("helm-error").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    write_chart(&repo);
    repo.write(
        "charts/web/values.yaml",
        &format!("{CHART_VALUES}team: web\n"),
    );
    repo.commit("chart with a team");
    w.apply(&application(
        "web",
        &repo.url(),
        "charts/web",
        ns,
        AUTOMATED,
    ));
    w.wait_synced_healthy("web").await;

    repo.write("charts/web/values.yaml", CHART_VALUES);
    repo.commit("forget the team");
    let app = w
        .wait_app("web", "a ComparisonError naming the value", |a| {
            conditions(a)
                .iter()
                .any(|c| c.starts_with("ComparisonError") && c.contains("values.team is required"))
        })
        .await;
    assert!(
        w.kubectl().try_run(&["get", "deployment", "web"]).is_ok(),
        "nothing pruned: {}",
        summary(&app)
    );
}

#[tokio::test]
async fn a_kustomize_overlay_with_application_overrides_syncs() {
    let w = World::start("kustomize").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("base/kustomization.yaml", "resources: [deployment.yaml]\n")
        .write(
            "base/deployment.yaml",
            &deployment("api", "registry.example/api:1.0", 1),
        )
        .write(
            "overlays/prod/kustomization.yaml",
            "resources: [../../base]\nnamePrefix: prod-\n",
        );
    repo.commit("base and overlay");
    let spec = "    kustomize:\n      images: [registry.example/api=registry.example/api:3.1]\n      commonLabels: {tier: backend}\n";
    let app = application("api", &repo.url(), "overlays/prod", ns, AUTOMATED).replace(
        "    targetRevision: main\n",
        &format!("    targetRevision: main\n{spec}"),
    );
    w.apply(&app);
    let status = w.wait_synced_healthy("api").await;
    assert_eq!(
        status.pointer("/status/sourceType").and_then(Value::as_str),
        Some("Kustomize")
    );
    let d = w
        .wait_object(&["deployment/prod-api"], "the overlay's Deployment", |d| {
            d.is_some()
        })
        .await;
    assert_eq!(
        deployment_field(d.as_ref(), "/spec/template/spec/containers/0/image"),
        Some(&Value::from("registry.example/api:3.1"))
    );
    assert_eq!(
        deployment_field(d.as_ref(), "/metadata/labels/tier"),
        Some(&Value::from("backend"))
    );

    // A broken overlay: a condition names the folder, nothing is pruned.
    repo.write(
        "overlays/prod/kustomization.yaml",
        "resources: [../../missing]\n",
    );
    repo.commit("break the overlay");
    w.wait_app("api", "a ComparisonError naming the overlay", |a| {
        conditions(a)
            .iter()
            .any(|c| c.starts_with("ComparisonError") && c.contains("overlays/prod"))
    })
    .await;
    assert!(
        w.kubectl()
            .try_run(&["get", "deployment", "prod-api"])
            .is_ok()
    );
}
