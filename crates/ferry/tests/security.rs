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
    w.apply(&format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata:
  name: dev-only
spec:
  sourceRepos: ["*"]
  destinations:
  - name: dev
    namespace: "*"
"#
    ));
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
