//! `render_kustomize` and `render_source` with the real `kustomize` (scripts/install-tools.sh)
//! on the overlays in `tests/fixtures/kustomize`.

mod tools_support;

use ferry_source::render::{
    KustomizeOptions, KustomizeRender, RenderError, SourceRender, SourceType, render_kustomize,
    render_source,
};
use serde_json::{Value, json};
use tools_support::{checkout, find, kinds_and_names, snapshot, tools};

fn request(root: &std::path::Path, path: &str, options: Value) -> KustomizeRender {
    KustomizeRender {
        checkout_root: root.to_owned(),
        path: path.into(),
        options: KustomizeOptions::from_json(Some(&options)).unwrap(),
        keys: Default::default(),
    }
}

#[tokio::test]
async fn builds_a_base_and_an_overlay() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let tools = tools(cache.path());

    let base = render_kustomize(&tools, &request(repo.path(), "kustomize/base", json!({})))
        .await
        .unwrap();
    assert_eq!(kinds_and_names(&base), ["Service/web", "Deployment/web"]);
    assert_eq!(base[0].source_file, "kustomize/base/kustomization.yaml");

    let prod = render_kustomize(
        &tools,
        &request(repo.path(), "kustomize/overlays/prod", json!({})),
    )
    .await
    .unwrap();
    let deploy = find(&prod, "Deployment", "prod-web");
    assert_eq!(deploy.object["spec"]["replicas"], 2);
    assert_eq!(
        deploy.source_file,
        "kustomize/overlays/prod/kustomization.yaml"
    );
    find(&prod, "Service", "prod-web");
}

#[tokio::test]
async fn applies_every_override_in_a_copy_and_leaves_the_checkout_alone() {
    let repo = checkout();
    let before = snapshot(repo.path());
    let cache = tempfile::tempdir().unwrap();
    let tools = tools(cache.path());
    let digest = format!("sha256:{}", "a".repeat(64));
    let options = json!({
        "namePrefix": "shop-",
        "nameSuffix": "-v2",
        "images": ["nginx=registry.example/nginx:1.27", format!("busybox@{digest}")],
        "commonLabels": {"team": "payments"},
        "commonAnnotations": {"docs": "https://docs.example/web"},
        "namespace": "shop",
        "replicas": [{"name": "web", "count": 5}],
        "patches": [
            {
                "target": {"kind": "Deployment", "name": "web"},
                "patch": "- op: add\n  path: /metadata/annotations/patched\n  value: inline\n"
            },
            {"path": "add-env.yaml", "target": {"group": "apps", "version": "v1", "kind": "Deployment"}}
        ],
        "components": ["../../components/monitoring"],
        "someFutureField": true
    });
    let got = render_kustomize(
        &tools,
        &request(repo.path(), "kustomize/overlays/prod", options),
    )
    .await
    .unwrap();

    let deploy = find(&got, "Deployment", "shop-web-v2");
    let obj = &deploy.object;
    assert_eq!(obj["metadata"]["namespace"], "shop");
    assert_eq!(obj["metadata"]["labels"]["team"], "payments");
    assert_eq!(obj["spec"]["selector"]["matchLabels"]["team"], "payments");
    assert_eq!(
        obj["metadata"]["annotations"]["docs"],
        "https://docs.example/web"
    );
    assert_eq!(obj["metadata"]["annotations"]["patched"], "inline");
    assert_eq!(obj["spec"]["replicas"], 5);
    let containers = &obj["spec"]["template"]["spec"]["containers"];
    assert_eq!(containers[0]["image"], "registry.example/nginx:1.27");
    assert_eq!(containers[1]["image"], format!("busybox@{digest}"));
    assert_eq!(containers[0]["env"][0]["value"], "from-a-patch-file");
    // The component's ConfigMap, with the overlay's prefix and the overrides.
    let cm = find(&got, "ConfigMap", "shop-monitoring-v2");
    assert_eq!(cm.object["metadata"]["namespace"], "shop");
    find(&got, "Service", "shop-web-v2");

    assert_eq!(
        snapshot(repo.path()),
        before,
        "the cached checkout must not change"
    );
    // The private copy is gone too.
    let tmp = cache.path().join("tmp");
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "{tmp:?}");
}

#[tokio::test]
async fn a_kustomize_error_names_the_directory() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let err = render_kustomize(
        &tools(cache.path()),
        &request(repo.path(), "kustomize/broken", json!({})),
    )
    .await
    .unwrap_err();
    let RenderError::Kustomize {
        path,
        action,
        message,
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(path, "kustomize/broken");
    assert_eq!(action, "build");
    assert!(message.contains("does-not-exist.yaml"), "{message}");
    assert!(
        !message.contains(&repo.path().display().to_string()),
        "paths are shown relative to the checkout: {message}"
    );
}

#[tokio::test]
async fn a_failing_override_names_its_edit() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let err = render_kustomize(
        &tools(cache.path()),
        &request(
            repo.path(),
            "kustomize/overlays/prod",
            json!({"components": ["../../no-such-component"]}),
        ),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, RenderError::Kustomize { action, message, .. }
            if action == "edit add component" && message.contains("no-such-component") && !message.contains("Usage")),
        "{err}"
    );
    let err = render_kustomize(
        &tools(cache.path()),
        &request(
            repo.path(),
            "kustomize/base",
            json!({"replicas": [{"name": "web", "count": "many"}]}),
        ),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, RenderError::InvalidOptions { field, .. } if field == "kustomize.replicas[0].count"),
        "{err}"
    );
}

#[tokio::test]
async fn bases_outside_the_checkout_are_refused() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let err = render_kustomize(
        &tools(cache.path()),
        &request(repo.path(), "kustomize/escape", json!({})),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RenderError::PathEscapes { .. }), "{err}");
    assert!(err.to_string().contains("../../../outside"), "{err}");
}

#[tokio::test]
async fn a_missing_binary_says_how_ferry_finds_it() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let tools = tools(cache.path()).with_kustomize("/nonexistent/kustomize");
    let err = render_kustomize(&tools, &request(repo.path(), "kustomize/base", json!({})))
        .await
        .unwrap_err();
    assert!(matches!(err, RenderError::Tool { .. }), "{err}");
    assert!(err.to_string().contains("FERRY_KUSTOMIZE"), "{err}");
}

#[tokio::test]
async fn render_source_picks_the_type_like_argo_cd() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let tools = tools(cache.path());
    let source = |path: &str| SourceRender {
        app_name: "web".into(),
        namespace: "apps".into(),
        checkout_root: Some(repo.path().to_owned()),
        path: path.into(),
        ..Default::default()
    };

    let got = render_source(&tools, &source("kustomize/overlays/prod"))
        .await
        .unwrap();
    assert_eq!(got.source_type, SourceType::Kustomize);
    find(&got.manifests, "Deployment", "prod-web");

    let mut helm = source("helm/webapp");
    helm.helm = Some(json!({"values": "greeting: hi\n"}));
    let got = render_source(&tools, &helm).await.unwrap();
    assert_eq!(got.source_type, SourceType::Helm);
    assert_eq!(got.source_type.to_string(), "Helm");
    find(&got.manifests, "ConfigMap", "web-config");

    // Chart.yaml alone makes it Helm too (here it fails on the `required` value: it ran helm).
    let err = render_source(&tools, &source("helm/webapp"))
        .await
        .unwrap_err();
    assert!(matches!(err, RenderError::HelmTemplate { .. }), "{err}");

    let got = render_source(&tools, &source("kustomize/base/..")).await;
    assert!(
        got.is_ok_and(|g| g.source_type == SourceType::Directory && g.manifests.is_empty()),
        "a directory without manifests is a Directory source"
    );
    let got = render_source(&tools, &source("kustomize/overlays/prod/"))
        .await
        .unwrap();
    assert_eq!(got.source_type, SourceType::Kustomize);

    // Explicit directory options win over discovery: the kustomization file is not a manifest.
    let mut dir = source("kustomize/base");
    dir.directory = Some(Default::default());
    let got = render_source(&tools, &dir).await.unwrap();
    assert_eq!(got.source_type, SourceType::Directory);
    assert_eq!(
        kinds_and_names(&got.manifests),
        ["Deployment/web", "Kustomization/?", "Service/web"]
    );

    let mut both = source("kustomize/base");
    both.helm = Some(json!({}));
    both.kustomize = Some(json!({}));
    let err = render_source(&tools, &both).await.unwrap_err();
    assert!(matches!(err, RenderError::InvalidOptions { .. }), "{err}");
}
