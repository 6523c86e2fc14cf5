//! `render_helm` with the real `helm` (scripts/install-tools.sh): the fixture charts in
//! `tests/fixtures/helm` from a checkout, and packaged into a chart repository served over HTTP
//! by a small static file server in this file.

mod tools_support;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use ferry_source::git::Credentials;
use ferry_source::render::{
    ChartSource, HelmOptions, HelmRender, Manifest, RenderError, render_helm,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tools_support::{checkout, find, fixtures, kinds_and_names, snapshot, tool, tools};

// ---------------------------------------------------------------------------------------------
// A static HTTP/1.1 file server (GET only, one request per connection, optional Basic auth).

struct StaticServer {
    url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_dir(root: PathBuf, auth: Option<(&str, &str)>) -> StaticServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let expected = auth.map(|(u, p)| {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        format!("Basic {token}")
    });
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (root, expected) = (root.clone(), expected.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream);
                let mut request = String::new();
                let mut authorization = None;
                reader.read_line(&mut request).await.ok()?;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).await.ok()?;
                    if line.trim().is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("authorization")
                    {
                        authorization = Some(v.trim().to_owned());
                    }
                }
                let path = request.split_whitespace().nth(1).unwrap_or("/");
                let path = path
                    .split('?')
                    .next()
                    .unwrap_or_default()
                    .trim_start_matches('/');
                let file = (!path.split('/').any(|c| c == ".." || c.is_empty()))
                    .then(|| std::fs::read(root.join(path)).ok())
                    .flatten();
                let (status, body) = match (&expected, file) {
                    (Some(want), _) if authorization.as_ref() != Some(want) => {
                        ("401 Unauthorized", Vec::new())
                    }
                    (_, Some(body)) if request.starts_with("GET ") => ("200 OK", body),
                    _ => ("404 Not Found", Vec::new()),
                };
                let head = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let mut stream = reader.into_inner();
                stream.write_all(head.as_bytes()).await.ok()?;
                stream.write_all(&body).await.ok()?;
                stream.shutdown().await.ok()
            });
        }
    });
    StaticServer { url, task }
}

// ---------------------------------------------------------------------------------------------

/// Runs the pinned helm with a private HOME (for packaging fixtures); panics on failure.
fn helm(home: &Path, args: &[&str]) {
    let out = Command::new(tool("helm"))
        .args(args)
        .env_clear()
        .env("HOME", home)
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "helm {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A chart repository directory holding webapp 1.0.0, 1.1.0 and 2.0.0, with its index.
fn chart_repository() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let chart = fixtures().join("helm/webapp");
    for version in ["1.0.0", "1.1.0", "2.0.0"] {
        helm(
            dir.path(),
            &[
                "package",
                chart.to_str().unwrap(),
                "--version",
                version,
                "--destination",
                repo.to_str().unwrap(),
            ],
        );
    }
    helm(dir.path(), &["repo", "index", repo.to_str().unwrap()]);
    dir
}

fn from_checkout(root: &Path, path: &str, options: Value) -> HelmRender {
    HelmRender {
        app_name: "shop".into(),
        namespace: "apps".into(),
        chart: ChartSource::Checkout {
            root: root.to_owned(),
            path: path.into(),
        },
        options: HelmOptions::from_json(Some(&options)).unwrap(),
        value_refs: BTreeMap::new(),
        keys: Default::default(),
    }
}

fn from_repository(url: &str, chart: &str, version: &str, options: Value) -> HelmRender {
    HelmRender {
        app_name: "shop".into(),
        namespace: "apps".into(),
        chart: ChartSource::Repository {
            repo_url: url.into(),
            chart: chart.into(),
            version: version.into(),
            credentials: Credentials::none(),
        },
        options: HelmOptions::from_json(Some(&options)).unwrap(),
        value_refs: BTreeMap::new(),
        keys: Default::default(),
    }
}

fn data<'a>(manifests: &'a [Manifest], name: &str) -> &'a Value {
    &find(manifests, "ConfigMap", name).object["data"]
}

fn chart_version(manifests: &[Manifest]) -> String {
    let deploy = find(manifests, "Deployment", "shop");
    deploy.object["metadata"]["labels"]["helm.sh/chart"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn renders_a_chart_with_value_files_crds_and_hooks() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let got = render_helm(
        &tools(cache.path()),
        &from_checkout(
            repo.path(),
            "helm/webapp",
            json!({"valueFiles": ["values-prod.yaml"]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(
        kinds_and_names(&got),
        [
            "CustomResourceDefinition/widgets.example.ferry.dev",
            "ConfigMap/shop-config",
            "Deployment/shop",
            "Job/shop-migrate"
        ]
    );
    let crd = &got[0];
    assert_eq!(crd.source_file, "webapp/crds/widgets.yaml");
    let cm = find(&got, "ConfigMap", "shop-config");
    assert_eq!(cm.source_file, "webapp/templates/configmap.yaml");
    assert_eq!(cm.line, 2, "the line in the rendered template");
    assert_eq!(cm.object["metadata"]["namespace"], "apps");
    assert_eq!(cm.object["data"]["greeting"], "hello from prod");
    assert_eq!(cm.object["data"]["color"], "red");
    assert_eq!(
        find(&got, "Deployment", "shop").object["spec"]["replicas"],
        3
    );
    // Hooks are rendered through; what to do with them is the sync's business.
    let job = find(&got, "Job", "shop-migrate");
    assert_eq!(
        job.object["metadata"]["annotations"]["helm.sh/hook"],
        "pre-install,pre-upgrade"
    );
}

#[tokio::test]
async fn a_missing_required_value_shows_helms_message() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let err = render_helm(
        &tools(cache.path()),
        &from_checkout(repo.path(), "helm/webapp", json!({})),
    )
    .await
    .unwrap_err();
    let RenderError::HelmTemplate { chart, message } = &err else {
        panic!("{err}")
    };
    assert_eq!(chart, "helm/webapp");
    assert!(message.contains("greeting is required"), "{message}");
    assert!(
        message.contains("webapp/templates/configmap.yaml"),
        "{message}"
    );
    assert!(!message.contains("--debug"), "{message}");
}

#[tokio::test]
async fn inline_values_parameters_and_file_parameters() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let tools = tools(cache.path());
    let render = |options: Value| {
        let req = from_checkout(repo.path(), "helm/webapp", options);
        let tools = &tools;
        async move { render_helm(tools, &req).await.unwrap() }
    };

    // `values` is a YAML string; `valuesObject` wins over it; both win over value files.
    let got = render(json!({
        "valueFiles": ["values-prod.yaml"],
        "values": "greeting: from values\nextra: also from values\n",
    }))
    .await;
    assert_eq!(data(&got, "shop-config")["greeting"], "from values");
    assert_eq!(data(&got, "shop-config")["extra"], "also from values");
    let got = render(json!({
        "values": "greeting: from values\n",
        "valuesObject": {"greeting": "from valuesObject", "color": "green"},
    }))
    .await;
    assert_eq!(data(&got, "shop-config")["greeting"], "from valuesObject");
    assert_eq!(data(&got, "shop-config")["color"], "green");

    // Parameters win over values; `--set` makes `42` a number and forceString keeps it a
    // string; commas stay in one value.
    let got = render(json!({
        "valuesObject": {"greeting": "hi"},
        "parameters": [
            {"name": "greeting", "value": "from a parameter"},
            {"name": "image.tag", "value": "42"},
            {"name": "extra", "value": "a,b,c"},
        ],
    }))
    .await;
    let cm = data(&got, "shop-config");
    assert_eq!(cm["greeting"], "from a parameter");
    assert_eq!(cm["tagKind"], "int64");
    assert_eq!(cm["tag"], "42");
    assert_eq!(cm["extra"], "a,b,c");
    let got = render(json!({
        "valuesObject": {"greeting": "hi"},
        "parameters": [{"name": "image.tag", "value": "42", "forceString": true}],
    }))
    .await;
    assert_eq!(data(&got, "shop-config")["tagKind"], "string");
    assert_eq!(data(&got, "shop-config")["tag"], "42");

    let got = render(json!({
        "valuesObject": {"greeting": "hi"},
        "fileParameters": [{"name": "motd", "path": "files/motd.txt"}],
    }))
    .await;
    assert_eq!(data(&got, "shop-config")["motd"], "Welcome to ferry\n");
}

#[tokio::test]
async fn release_name_namespace_skip_crds_and_capabilities() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let tools = tools(cache.path());
    let got = render_helm(
        &tools,
        &from_checkout(
            repo.path(),
            "helm/webapp",
            json!({
                "valuesObject": {"greeting": "hi"},
                "releaseName": "storefront",
                "namespace": "shop-ns",
                "skipCrds": true,
                "kubeVersion": "1.29.4",
                "apiVersions": ["monitoring.coreos.com/v1/ServiceMonitor"],
            }),
        ),
    )
    .await
    .unwrap();
    let cm = find(&got, "ConfigMap", "storefront-config");
    assert_eq!(cm.object["metadata"]["namespace"], "shop-ns");
    assert_eq!(cm.object["data"]["kubeVersion"], "v1.29.4");
    assert!(
        got.iter()
            .all(|m| m.object["kind"] != "CustomResourceDefinition"),
        "skipCrds: {:?}",
        kinds_and_names(&got)
    );
    find(&got, "ServiceMonitor", "storefront");

    // Without apiVersions the chart does not see the ServiceMonitor API.
    let got = render_helm(
        &tools,
        &from_checkout(
            repo.path(),
            "helm/webapp",
            json!({"valuesObject": {"greeting": "hi"}}),
        ),
    )
    .await
    .unwrap();
    assert!(got.iter().all(|m| m.object["kind"] != "ServiceMonitor"));
}

#[tokio::test]
async fn value_files_missing_escaping_and_from_other_sources() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let tools = tools(cache.path());
    let values = |files: Value, ignore: bool| {
        from_checkout(
            repo.path(),
            "helm/webapp",
            json!({"valueFiles": files, "ignoreMissingValueFiles": ignore}),
        )
    };

    let err = render_helm(
        &tools,
        &values(json!(["values-prod.yaml", "values-nope.yaml"]), false),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, RenderError::ValueFileNotFound { file, .. } if file == "values-nope.yaml"),
        "{err}"
    );
    assert!(err.to_string().contains("ignoreMissingValueFiles"), "{err}");
    let got = render_helm(
        &tools,
        &values(json!(["values-prod.yaml", "values-nope.yaml"]), true),
    )
    .await
    .unwrap();
    assert_eq!(data(&got, "shop-config")["greeting"], "hello from prod");

    // Inside the checkout but outside the chart is fine; outside the checkout is not.
    let got = render_helm(
        &tools,
        &values(json!(["../webapp/values-prod.yaml"]), false),
    )
    .await
    .unwrap();
    assert_eq!(data(&got, "shop-config")["color"], "red");
    for bad in ["../../../../etc/hostname", "/etc/hostname"] {
        let err = render_helm(&tools, &values(json!([bad]), true))
            .await
            .unwrap_err();
        assert!(
            matches!(err, RenderError::PathEscapes { .. }),
            "{bad}: {err}"
        );
    }

    // `$ref/path` reads another source's checkout; that checkout is a boundary too.
    let other = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(other.path().join("envs")).unwrap();
    std::fs::write(
        other.path().join("envs/prod.yaml"),
        "greeting: from the values repo\n",
    )
    .unwrap();
    std::os::unix::fs::symlink("/etc/hostname", other.path().join("envs/leak.yaml")).unwrap();
    let mut req = values(json!(["values-prod.yaml", "$values/envs/prod.yaml"]), false);
    req.value_refs
        .insert("values".into(), other.path().to_owned());
    let got = render_helm(&tools, &req).await.unwrap();
    assert_eq!(
        data(&got, "shop-config")["greeting"],
        "from the values repo"
    );
    assert_eq!(data(&got, "shop-config")["color"], "red");

    req.options.value_files = vec!["$values/envs/leak.yaml".into()];
    let err = render_helm(&tools, &req).await.unwrap_err();
    assert!(
        matches!(&err, RenderError::PathEscapes { path } if path == "$values/envs/leak.yaml"),
        "{err}"
    );
    req.options.value_files = vec!["$other/prod.yaml".into()];
    let err = render_helm(&tools, &req).await.unwrap_err();
    assert!(
        matches!(&err, RenderError::UnknownValuesRef { reference, .. } if reference == "other"),
        "{err}"
    );
}

#[tokio::test]
async fn a_file_dependency_is_built_in_a_private_copy() {
    let repo = checkout();
    let before = snapshot(repo.path());
    let cache = tempfile::tempdir().unwrap();
    let got = render_helm(
        &tools(cache.path()),
        &from_checkout(repo.path(), "helm/umbrella", json!({})),
    )
    .await
    .unwrap();
    assert_eq!(
        data(&got, "shop-umbrella")["chart"],
        "umbrella",
        "{:?}",
        kinds_and_names(&got)
    );
    let sub = find(&got, "ConfigMap", "shop-sub");
    assert_eq!(sub.object["data"]["message"], "set by the umbrella");
    assert_eq!(
        sub.source_file,
        "umbrella/charts/subchart/templates/configmap.yaml"
    );
    assert_eq!(snapshot(repo.path()), before, "the checkout is untouched");
}

#[tokio::test]
async fn charts_from_a_repository_by_version_and_range_are_cached() {
    let charts = chart_repository();
    let server = serve_dir(charts.path().join("repo"), None).await;
    let cache = tempfile::tempdir().unwrap();
    let tools = tools(cache.path());
    let values = json!({"valuesObject": {"greeting": "hi"}});

    let got = render_helm(
        &tools,
        &from_repository(&server.url, "webapp", "1.0.0", values.clone()),
    )
    .await
    .unwrap();
    assert_eq!(chart_version(&got), "webapp-1.0.0");
    assert_eq!(
        find(&got, "ConfigMap", "shop-config").source_file,
        "webapp/templates/configmap.yaml"
    );
    assert_eq!(tools.helm_pull_count(), 1);

    // The same exact version again: from the cache, no pull.
    let again = render_helm(
        &tools,
        &from_repository(&server.url, "webapp", "1.0.0", values.clone()),
    )
    .await
    .unwrap();
    assert_eq!(again, got);
    assert_eq!(tools.helm_pull_count(), 1, "the archive is reused");

    // Ranges are resolved by helm against the index.
    for (range, want) in [
        ("1.*", "webapp-1.1.0"),
        ("^1.0.0", "webapp-1.1.0"),
        (">=1.0 <1.1", "webapp-1.0.0"),
        ("", "webapp-2.0.0"),
    ] {
        let got = render_helm(
            &tools,
            &from_repository(&server.url, "webapp", range, values.clone()),
        )
        .await
        .unwrap();
        assert_eq!(chart_version(&got), want, "range {range:?}");
    }
    // ... and the resolved version is cached: 1.1.0 exactly needs no pull now.
    let pulls = tools.helm_pull_count();
    render_helm(
        &tools,
        &from_repository(&server.url, "webapp", "1.1.0", values.clone()),
    )
    .await
    .unwrap();
    assert_eq!(tools.helm_pull_count(), pulls);

    // Value files of a repository chart are files inside the chart.
    let got = render_helm(
        &tools,
        &from_repository(
            &server.url,
            "webapp",
            "2.0.0",
            json!({"valueFiles": ["values-prod.yaml"]}),
        ),
    )
    .await
    .unwrap();
    assert_eq!(data(&got, "shop-config")["greeting"], "hello from prod");
}

#[tokio::test]
async fn repository_errors_are_distinct() {
    let charts = chart_repository();
    let server = serve_dir(charts.path().join("repo"), None).await;
    let cache = tempfile::tempdir().unwrap();
    let tools = tools(cache.path());

    let err = render_helm(
        &tools,
        &from_repository(&server.url, "webapp", "9.9.9", json!({})),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, RenderError::ChartVersionNotFound { version, chart, .. } if version == "9.9.9" && chart == "webapp"),
        "{err}"
    );
    assert!(err.to_string().contains("targetRevision"), "{err}");
    assert!(!err.to_string().contains("helm repo update"), "{err}");

    let err = render_helm(
        &tools,
        &from_repository(&server.url, "no-such-chart", "1.0.0", json!({})),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, RenderError::ChartVersionNotFound { .. }),
        "{err}"
    );

    // A closed port on 127.0.0.1.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    let err = render_helm(
        &tools,
        &from_repository(&closed, "webapp", "1.0.0", json!({})),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, RenderError::ChartRepositoryUnreachable { repo_url, .. } if *repo_url == closed),
        "{err}"
    );
    assert!(err.to_string().contains("connection refused"), "{err}");
}

#[tokio::test]
async fn repository_credentials_go_through_stdin_and_stay_secret() {
    const USER: &str = "charts";
    const PASSWORD: &str = "s3cret-Chart-Pass";
    let charts = chart_repository();
    let server = serve_dir(charts.path().join("repo"), Some((USER, PASSWORD))).await;
    let cache = tempfile::tempdir().unwrap();
    let tools = tools(cache.path());
    let with = |creds: Credentials| {
        let mut req = from_repository(
            &server.url,
            "webapp",
            "1.1.0",
            json!({"valuesObject": {"greeting": "hi"}}),
        );
        if let ChartSource::Repository { credentials, .. } = &mut req.chart {
            *credentials = creds;
        }
        req
    };

    let err = render_helm(&tools, &with(Credentials::none()))
        .await
        .unwrap_err();
    assert!(
        matches!(err, RenderError::ChartRepositoryUnreachable { .. }),
        "{err}"
    );
    let err = render_helm(&tools, &with(Credentials::basic(USER, "wrong-Pass-123")))
        .await
        .unwrap_err();
    assert!(!err.to_string().contains("wrong-Pass-123"), "{err}");

    let got = render_helm(&tools, &with(Credentials::basic(USER, PASSWORD)))
        .await
        .unwrap();
    assert_eq!(chart_version(&got), "webapp-1.1.0");
    // Nothing of helm's private home (where the repositories file held the password) is left.
    let leftovers: HashMap<String, usize> = std::fs::read_dir(cache.path().join("tmp"))
        .unwrap()
        .map(|e| (e.unwrap().file_name().to_string_lossy().into_owned(), 1))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[tokio::test]
async fn a_missing_helm_says_how_ferry_finds_it() {
    let repo = checkout();
    let cache = tempfile::tempdir().unwrap();
    let tools = tools(cache.path()).with_helm("/nonexistent/helm");
    let err = render_helm(
        &tools,
        &from_checkout(repo.path(), "helm/webapp", json!({})),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, RenderError::Tool { .. }), "{err}");
    assert!(err.to_string().contains("FERRY_HELM"), "{err}");
}
