//! Attack tests: what someone who may write an Application, or commit to a repository an
//! Application uses, tries in order to reach beyond their project. Each runs the real `ferry`
//! against the local control plane with the real `helm`, `kustomize` and `git`, and checks that
//! the attempt is refused with a condition that names the cause, and that nothing was applied.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use common::*;
use ferry_testsupport::GitRepo;
use serde_json::Value;

/// Whether the app has a condition of `kind` whose message contains every one of `parts`.
fn has_condition(app: &Value, kind: &str, parts: &[&str]) -> bool {
    conditions(app)
        .iter()
        .any(|c| c.starts_with(&format!("{kind}: ")) && parts.iter().all(|p| c.contains(p)))
}

/// The full path of a program on `PATH`.
fn which(program: &str) -> String {
    let out = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .expect("running sh");
    let path = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        !path.is_empty(),
        "{program} is not on PATH (scripts/install-tools.sh puts it in target/tools/bin)"
    );
    path
}

fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

const CHART: &str = "apiVersion: v2\nname: web\nversion: 0.1.0\n";
const CHART_CM: &str = r#"apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cm
data:
  value: {{ .Values.value | quote }}
"#;

// (a) ------------------------------------------------------------------------------------------

/// `helm.releaseName: --post-renderer=<program>` made `helm template` run a program of the
/// attacker's choice inside ferry. A helm wrapper records every argv ferry gives helm: the
/// injected release name never reaches helm, the program never runs, the app has a condition
/// naming `helm.releaseName`; and for a chart whose values look like options, every value
/// reaches helm inside a `--flag=value` argument or after `--`.
#[tokio::test]
async fn a_helm_release_name_cannot_inject_options() {
    let tools = tempfile::tempdir().unwrap();
    let argv_log = tools.path().join("helm-argv.log");
    let marker = tools.path().join("post-renderer-ran");
    let real_helm = which("helm");
    let wrapper = tools.path().join("helm");
    write_executable(
        &wrapper,
        &format!(
            "#!/bin/sh\n# Records its arguments (one per line, then a separator), then runs the real helm.\n\
             for a in \"$@\"; do printf '%s\\n' \"$a\" >> '{log}'; done\nprintf -- '-----\\n' >> '{log}'\n\
             exec '{real_helm}' \"$@\"\n",
            log = argv_log.display()
        ),
    );
    // What `--post-renderer` would run: leaves a marker, passes the manifests through.
    let evil = tools.path().join("evil.sh");
    write_executable(
        &evil,
        &format!("#!/bin/sh\ntouch '{}'\ncat\n", marker.display()),
    );

    let cluster = ferry_testsupport::Cluster::shared();
    let ns = cluster.namespace("sec-helm").await;
    ferry_ok(cluster.kubeconfig(), &["install", "--namespace", ns.name()]);
    let wrapper_str = wrapper.display().to_string();
    let _controller = Controller::start_command_with_env(
        cluster.kubeconfig(),
        &[
            "run",
            "--namespace",
            ns.name(),
            "--poll-interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
        ],
        &[("FERRY_HELM", &wrapper_str)],
    );
    let w = World {
        ns,
        controller: _controller,
    };

    let repo = GitRepo::new();
    repo.write("chart/Chart.yaml", CHART)
        .write("chart/values.yaml", "value: default\n")
        .write("chart/templates/cm.yaml", CHART_CM)
        .commit("a chart");
    let helm_app = |name: &str, helm: &str| {
        application(name, &repo.url(), "chart", w.ns.name(), AUTOMATED).replace(
            "    targetRevision: main\n",
            &format!("    targetRevision: main\n    helm:\n{helm}"),
        )
    };
    w.apply(&helm_app(
        "evil",
        &format!("      releaseName: --post-renderer={}\n", evil.display()),
    ));
    // Values that look like options, in every field that reaches helm's argv.
    w.apply(&helm_app(
        "tricky",
        "      releaseName: tricky\n      parameters:\n      - name: value\n        value: --post-renderer=sh\n      \
         kubeVersion: 1.30.0\n      apiVersions: [\"example.com/v1\"]\n",
    ));

    let app = w
        .wait_app("evil", "a condition naming helm.releaseName", |a| {
            has_condition(a, "ComparisonError", &["helm.releaseName", "release name"])
        })
        .await;
    assert_ne!(sync_status(&app), "Synced", "{}", summary(&app));
    w.wait_synced_healthy("tricky").await;
    let cm = w.kubectl().run(&[
        "get",
        "configmap",
        "tricky-cm",
        "-o",
        "jsonpath={.data.value}",
    ]);
    assert_eq!(cm, "--post-renderer=sh", "the value is data, not an option");

    assert!(
        !marker.exists(),
        "the post-renderer ran: ferry passed the release name to helm as an option"
    );
    let log = std::fs::read_to_string(&argv_log).unwrap_or_default();
    assert!(
        !log.contains("--post-renderer=/"),
        "the injected option reached helm:\n{log}"
    );
    let mut templates = 0;
    for call in log.split("-----\n").filter(|c| !c.trim().is_empty()) {
        let args: Vec<&str> = call.lines().collect();
        if args.first() != Some(&"template") {
            continue;
        }
        templates += 1;
        // Before `--`: only `--flag=value` or one of the switches ferry sets; after: release
        // and chart.
        let dash = args
            .iter()
            .position(|a| *a == "--")
            .unwrap_or_else(|| panic!("no `--` before the release name: {args:?}"));
        for arg in &args[1..dash] {
            let switch = [
                "--include-crds",
                "--skip-crds",
                "--skip-tests",
                "--skip-schema-validation",
            ]
            .contains(arg);
            assert!(
                switch || (arg.starts_with("--") && arg.contains('=')),
                "helm argument {arg:?} is neither a switch nor --flag=value: {args:?}"
            );
        }
        assert_eq!(
            args.len(),
            dash + 3,
            "release and chart after `--`: {args:?}"
        );
        assert!(!args[dash + 1].starts_with('-'), "{args:?}");
    }
    assert!(templates > 0, "helm template never ran:\n{log}");
    // Nothing of the refused app was applied: the only chart ConfigMap is the other app's.
    let objects = w.kubectl().run(&["get", "configmaps", "-o", "name"]);
    let rendered: Vec<&str> = objects.lines().filter(|l| l.ends_with("-cm")).collect();
    assert_eq!(rendered, ["configmap/tricky-cm"], "{objects}");
}

// (b) ------------------------------------------------------------------------------------------

/// A kustomization that names another repository's mirror in ferry's cache through `file://`
/// would render that repository's private manifests. Even with the path known exactly (the test
/// reads ferry's cache) and local repositories allowed for `repoURL`, kustomize remote bases
/// over `file` are refused with a condition, and nothing is applied.
#[tokio::test]
async fn a_kustomize_remote_base_cannot_read_another_repository_by_file_url() {
    let w = World::start("sec-kustomize-file").await;
    let private = GitRepo::new();
    private
        .write("app/kustomization.yaml", "resources: [private.yaml]\n")
        .write(
            "app/private.yaml",
            &configmap("private-data", "team-a-only"),
        )
        .commit("team A's private manifests");
    w.apply(&application(
        "team-a",
        &private.url(),
        "app",
        w.ns.name(),
        AUTOMATED,
    ));
    w.wait_synced_healthy("team-a").await;

    // The mirror of team A's repository, as ferry keeps it.
    let mirrors = w.controller.cache_dir().join("repos/mirrors");
    let mirror = std::fs::read_dir(&mirrors)
        .unwrap_or_else(|e| panic!("reading {}: {e}", mirrors.display()))
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("HEAD").exists())
        .expect("team A's mirror");
    let attacker = GitRepo::new();
    attacker
        .write(
            "steal/kustomization.yaml",
            &format!(
                "namePrefix: stolen-\nresources:\n- file://{}//app?ref=main\n",
                mirror.display()
            ),
        )
        .commit("borrow team A's manifests");
    w.apply(&application(
        "team-b",
        &attacker.url(),
        "steal",
        w.ns.name(),
        AUTOMATED,
    ));
    let app = w
        .wait_app("team-b", "a condition refusing the file:// base", |a| {
            has_condition(a, "ComparisonError", &["resources", "file", "not allowed"])
        })
        .await;
    assert_ne!(sync_status(&app), "Synced", "{}", summary(&app));
    let stolen = w.kubectl().run(&[
        "get",
        "configmap",
        "stolen-private-data",
        "--ignore-not-found",
        "-o",
        "name",
    ]);
    assert!(stolen.trim().is_empty(), "applied: {stolen}");
    // The mirror's directory name is keyed by a secret of the cache: not derivable from the URL.
    let name = mirror.file_name().unwrap().to_string_lossy().into_owned();
    assert!(name.starts_with("repo-"), "{name}");
    assert_eq!(name.len(), "repo-".len() + 32, "{name}");
}

/// `repoURL: file://…` is refused unless the operator allows local repositories.
#[tokio::test]
async fn a_file_repo_url_needs_the_operator_flag() {
    let cluster = ferry_testsupport::Cluster::shared();
    let ns = cluster.namespace("sec-file-repo").await;
    ferry_ok(cluster.kubeconfig(), &["install", "--namespace", ns.name()]);
    let controller = Controller::start_command_with_env(
        cluster.kubeconfig(),
        &[
            "run",
            "--namespace",
            ns.name(),
            "--poll-interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
        ],
        // The tests' default turns them on; an operator's ferry has them off.
        &[("FERRY_ALLOW_FILE_REPOS", "false")],
    );
    let w = World { ns, controller };
    let repo = GitRepo::new();
    repo.write("app/cm.yaml", &configmap("local", "x"))
        .commit("a ConfigMap");
    w.apply(&application(
        "local",
        &repo.url(),
        "app",
        w.ns.name(),
        AUTOMATED,
    ));
    w.wait_app("local", "a condition naming the flag", |a| {
        conditions(a)
            .iter()
            .any(|c| c.contains("file protocol") && c.contains("--allow-file-repos"))
    })
    .await;
    let cm = w.kubectl().run(&[
        "get",
        "configmap",
        "local",
        "--ignore-not-found",
        "-o",
        "name",
    ]);
    assert!(cm.trim().is_empty(), "applied: {cm}");
}

// (c) ------------------------------------------------------------------------------------------

/// A project that allows only the cluster named `dev`; an Application that names `dev` *and*
/// gives the in-cluster server. ferry used to check the name and connect to the server. Now the
/// app gets InvalidSpecError (as in Argo CD) and nothing lands in the in-cluster namespace.
#[tokio::test]
async fn a_destination_with_server_and_name_cannot_bypass_the_project() {
    let w = World::start("sec-destination").await;
    w.apply(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: dev-only
spec:
  sourceRepos: ["*"]
  destinations:
  - name: dev
    namespace: "*"
"#,
    );
    let repo = GitRepo::new();
    repo.write("app/cm.yaml", &configmap("escaped", "in-cluster"))
        .commit("a ConfigMap");
    let both = application("both", &repo.url(), "app", w.ns.name(), AUTOMATED)
        .replace("  project: default\n", "  project: dev-only\n")
        .replace(
            "    server: https://kubernetes.default.svc\n",
            "    server: https://kubernetes.default.svc\n    name: dev\n",
        );
    w.apply(&both);
    // The name alone for the in-cluster cluster is checked as (server, in-cluster): refused.
    let by_name = application("by-name", &repo.url(), "app", w.ns.name(), AUTOMATED)
        .replace("  project: default\n", "  project: dev-only\n")
        .replace(
            "    server: https://kubernetes.default.svc\n",
            "    name: in-cluster\n",
        );
    w.apply(&by_name);
    let app = w
        .wait_app("both", "InvalidSpecError for server and name", |a| {
            has_condition(a, "InvalidSpecError", &["both server", "name (dev)"])
        })
        .await;
    assert_ne!(sync_status(&app), "Synced", "{}", summary(&app));
    w.wait_app("by-name", "InvalidSpecError: not permitted", |a| {
        has_condition(
            a,
            "InvalidSpecError",
            &["not permitted in project dev-only"],
        )
    })
    .await;
    let cm = w.kubectl().run(&[
        "get",
        "configmap",
        "escaped",
        "--ignore-not-found",
        "-o",
        "name",
    ]);
    assert!(cm.trim().is_empty(), "applied: {cm}");
}

// (d) and the canary -------------------------------------------------------------------------

/// An HTTP GET with an optional bearer token; returns (status, body).
fn get(addr: &str, path: &str, token: Option<&str>) -> (u16, String) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .as_deref()
        .map(|b| vec![("Authorization", b)])
        .unwrap_or_default();
    let reply = ferry_testsupport::http::request(addr.parse().unwrap(), "GET", path, &headers, b"");
    (reply.status, reply.body)
}

/// Signs in as admin (the initial password from its Secret) and returns an API token.
fn admin_token(w: &World, addr: &str) -> String {
    let password = w.kubectl().run(&[
        "get",
        "secret",
        "ferry-initial-admin-secret",
        "-o",
        "jsonpath={.data.password}",
    ]);
    use base64::Engine as _;
    let password = String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(password.trim())
            .unwrap(),
    )
    .unwrap();
    let body = serde_json::json!({"username": "admin", "password": password}).to_string();
    let reply = ferry_testsupport::http::request(
        addr.parse().unwrap(),
        "POST",
        "/api/v1/session",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(reply.status, 200, "login: {}", reply.body);
    let v: Value = serde_json::from_str(&reply.body).unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// A unique string: a Secret's value in Git, the password of a repository Secret, and the
/// password in an Application's `repoURL` userinfo. After a full scenario (sync, refresh, diff,
/// a failing repository) it is searched for, plain and base64-encoded, in ferry's log, every API
/// answer, every UI page, the Events, and `/metrics` on both listeners: it must appear nowhere.
/// Anonymous `/metrics` on the UI/API port is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_canary_appears_in_no_output() {
    use base64::Engine as _;
    let canary = format!(
        "canary{:x}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let canary_b64 = base64::engine::general_purpose::STANDARD.encode(&canary);

    let cluster = ferry_testsupport::Cluster::shared();
    let ns = cluster.namespace("sec-canary").await;
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
            "--metrics-listen",
            "127.0.0.1:0",
        ],
    );
    let w = World { ns, controller };
    let ns = w.ns.name().to_owned();

    // A repository over HTTP whose password is the canary, and a Secret whose value is too.
    let repo = GitRepo::new();
    repo.write(
        "app/secret.yaml",
        &format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: canary\nstringData:\n  token: {canary}\n"
        ),
    )
    .write("app/cm.yaml", &configmap("plain", "1"))
    .commit("a Secret");
    let root = repo.bare_dir().parent().unwrap().to_path_buf();
    let server = ferry_testsupport::git_http::serve(root, "ci", &canary).await;
    let url = format!("{}/repo.git", server.base_url);
    w.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: repo\n  labels:\n    argocd.argoproj.io/secret-type: repository\n\
         stringData:\n  url: {url}\n  username: ci\n  password: {canary}\n"
    ));
    w.apply(&application("web", &url, "app", &ns, AUTOMATED));
    // Someone put credentials into a repoURL; the host does not answer.
    let leaky_url = format!("http://ci:{canary}@127.0.0.1:9/private.git");
    w.apply(&application("leaky", &leaky_url, "app", &ns, AUTOMATED));
    w.wait_synced_healthy("web").await;
    w.wait_app("leaky", "a ComparisonError", |a| {
        has_condition(a, "ComparisonError", &["127.0.0.1:9"])
    })
    .await;
    // Drift, then self-heal: another sync, with its Events and history.
    w.kubectl().run(&["delete", "configmap", "plain"]);
    w.wait_object(&["configmap", "plain"], "configmap plain back", |o| {
        o.is_some()
    })
    .await;
    w.wait_synced_healthy("web").await;

    let addr = w.controller.logged_address("serving the API");
    let metrics_addr = w.controller.logged_address("serving /metrics");
    // (d) anonymous /metrics on the UI/API port is refused.
    let (status, body) = get(&addr, "/metrics", None);
    assert!(
        status == 401 && !body.contains("ferry_app_info"),
        "anonymous /metrics on the UI port: {status} {body}"
    );
    let token = admin_token(&w, &addr);
    let t = Some(token.as_str());

    let mut outputs: Vec<(String, String)> = Vec::new();
    let resource = format!(
        "/applications/web/resource?group=&version=v1&kind=Secret&namespace={ns}&name=canary"
    );
    for path in [
        "/api/v1/applications",
        "/api/v1/applications/web",
        "/api/v1/applications/leaky",
        "/api/v1/applications/web/history",
        "/api/v1/applications/web/diff",
        "/api/v1/applications/leaky/diff",
        "/api/v1/session/userinfo",
        "/",
        "/applications/web",
        "/applications/leaky",
        "/applications/web/diff",
        "/applications/leaky/diff",
        resource.as_str(),
        "/metrics",
    ] {
        let (status, body) = get(&addr, path, t);
        assert!(
            status < 500 || path.contains("leaky"),
            "{path}: {status} {body}"
        );
        outputs.push((format!("GET {path} ({status})"), body));
    }
    // The Secret's page really is the Secret (so the search below means something).
    let secret_page = &outputs[12].1;
    assert!(secret_page.contains("canary"), "{secret_page}");
    let (_, metrics) = get(&metrics_addr, "/metrics", None);
    assert!(metrics.contains("ferry_app_info{"), "{metrics}");
    outputs.push(("metrics listener".into(), metrics));
    outputs.push((
        "Events".into(),
        w.kubectl().run(&["get", "events", "-o", "json"]),
    ));
    outputs.push(("ferry's log".into(), w.controller.log()));
    let leaky = w.app("leaky").unwrap();
    // Its conditions (the spec holds what its author wrote).
    outputs.push((
        "conditions of leaky".into(),
        leaky["status"]["conditions"].to_string(),
    ));

    for (what, text) in &outputs {
        for needle in [&canary, &canary_b64] {
            assert!(
                !text.contains(needle.as_str()),
                "the canary {needle} shows in {what}:\n{}",
                text.lines()
                    .filter(|l| l.contains(needle.as_str()))
                    .take(5)
                    .collect::<Vec<_>>()
                    .join("\n")
            );
        }
    }
}
