//! `ferry preview` on a repository written here, with golden output: a changed image tag, an
//! added and a removed file, a new child Application under an App-of-Apps root, a Helm values
//! change, a Kustomize overlay change (and a Secret whose value changes, masked), and a render
//! error at head. Real git, helm and kustomize; no cluster — except `--kubeconfig`, which
//! compares the head render with the local control plane.
//!
//! The expected output is in `tests/golden/preview/`. After an intended change of the output,
//! regenerate it with `FERRY_UPDATE_GOLDEN=1 cargo test -p ferry --test preview` and review
//! the diff.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{AUTOMATED, World, application, configmap as cm, ferry_bin};
use ferry_testsupport::{GitRepo, repo_root};

const REPO_URL: &str = "https://git.example/org/gitops.git";

fn tool_path() -> String {
    format!(
        "{}:{}",
        repo_root().join("target/tools/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn preview(repo: &GitRepo, args: &[&str]) -> Output {
    Command::new(ferry_bin())
        .arg("preview")
        .args(["--repo-url", REPO_URL])
        .args(args)
        .current_dir(repo.work_dir())
        .env("PATH", tool_path())
        .env("FERRY_LOG", "warn")
        .env("KUBECONFIG", "/nonexistent/ferry-test/kubeconfig")
        .output()
        .expect("running ferry preview")
}

/// Compares `actual` with the golden file `name`, or rewrites it with `FERRY_UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &str) {
    let path: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/preview")
        .join(name);
    if std::env::var_os("FERRY_UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run with FERRY_UPDATE_GOLDEN=1 to write it",
            path.display()
        )
    });
    assert!(
        actual == expected,
        "{name} differs from the golden file {} (FERRY_UPDATE_GOLDEN=1 rewrites it):\n--- actual\n{actual}",
        path.display()
    );
}

fn app(name: &str, path: &str, extra: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  project: default\n  source:\n    repoURL: {REPO_URL}\n    targetRevision: main\n    path: {path}\n{extra}  destination:\n    server: https://kubernetes.default.svc\n    namespace: {name}\n"
    )
}

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: {name}\n          image: {image}\n"
    )
}

fn configmap(name: &str, value: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  value: {value}\n")
}

/// The repository at its base revision (tagged `base`).
fn base_repository() -> GitRepo {
    let repo = GitRepo::new();
    // An App-of-Apps root whose children live in children/.
    repo.write("apps/root.yaml", &app("root", "children", ""));
    repo.write("children/site.yaml", &app("site", "site", ""));
    repo.write("apps/shop.yaml", &app("shop", "shop/overlays/prod", ""));
    repo.write(
        "apps/chart.yaml",
        &app(
            "chart",
            "charts/api",
            "    helm:\n      valueFiles: [../../env/api-prod.yaml]\n",
        ),
    );
    repo.write("apps/static.yaml", &app("static", "static", ""));
    // A plain directory: a file removed and one added at head, a Secret changed.
    repo.write("site/web.yaml", &deployment("web", "example/web:1.0.0"));
    repo.write("site/old.yaml", &configmap("old", "gone-at-head"));
    repo.write(
        "site/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: s3cret-base\n",
    );
    // A Kustomize base and overlay.
    repo.write(
        "shop/base/kustomization.yaml",
        "resources: [deployment.yaml]\n",
    );
    repo.write(
        "shop/base/deployment.yaml",
        &deployment("shop", "example/shop:2.0"),
    );
    repo.write(
        "shop/overlays/prod/kustomization.yaml",
        "resources: [../../base]\nnamePrefix: prod-\npatches:\n  - path: replicas.yaml\n",
    );
    repo.write(
        "shop/overlays/prod/replicas.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  replicas: 2\n",
    );
    // A chart with a values file per environment.
    repo.write(
        "charts/api/Chart.yaml",
        "apiVersion: v2\nname: api\nversion: 0.1.0\n",
    );
    repo.write("charts/api/values.yaml", "replicas: 1\nlogLevel: info\n");
    // The values file lives outside the chart: its change is an input of the app all the same.
    repo.write("env/api-prod.yaml", "replicas: 3\n");
    repo.write(
        "charts/api/templates/configmap.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  replicas: {{ .Values.replicas | quote }}\n  logLevel: {{ .Values.logLevel | quote }}\n",
    );
    // An app nothing touches: rendered once.
    repo.write("static/cm.yaml", &configmap("static", "same"));
    repo.commit("base");
    repo.tag("base");
    repo
}

#[test]
fn a_branch_previews_app_by_app_with_golden_output() {
    let repo = base_repository();
    // The change under review.
    repo.write("site/web.yaml", &deployment("web", "example/web:1.1.0"));
    repo.remove("site/old.yaml");
    repo.write("site/new.yaml", &configmap("new", "added-at-head"));
    repo.write(
        "site/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: s3cret-head\n",
    );
    repo.write("children/extra.yaml", &app("extra", "extra", ""));
    repo.write("extra/cm.yaml", &configmap("extra", "from-a-new-child"));
    repo.write(
        "shop/overlays/prod/replicas.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: shop\nspec:\n  replicas: 4\n",
    );
    repo.write("env/api-prod.yaml", "replicas: 3\nlogLevel: debug\n");
    repo.commit("the change");

    let text = preview(&repo, &["--base", "base", "--head", "HEAD", "apps"]);
    let stdout = String::from_utf8_lossy(&text.stdout);
    assert_eq!(
        text.status.code(),
        Some(1),
        "changes exit 1:\n{stdout}\n{}",
        String::from_utf8_lossy(&text.stderr)
    );
    assert!(
        !stdout.contains("s3cret"),
        "Secret values are masked:\n{stdout}"
    );
    assert!(
        !stdout.contains(repo.work_dir().to_str().unwrap()),
        "no temporary paths in the output:\n{stdout}"
    );
    golden("changes.txt", &stdout);

    let markdown = preview(
        &repo,
        &["--base", "base", "--head", "HEAD", "apps", "-o", "markdown"],
    );
    assert_eq!(markdown.status.code(), Some(1));
    golden("changes.md", &String::from_utf8_lossy(&markdown.stdout));

    let json = preview(
        &repo,
        &["--base", "base", "--head", "HEAD", "apps", "-o", "json"],
    );
    assert_eq!(json.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    // 6 apps at head or base; every app rendered at each revision where its inputs differ,
    // once where they are equal (root's children/ changed; static did not).
    assert_eq!(doc["apps"].as_array().unwrap().len(), 6, "{doc:#}");
    let status = |name: &str| {
        doc["apps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["name"] == name)
            .map(|a| a["status"].as_str().unwrap().to_owned())
    };
    assert_eq!(status("extra").as_deref(), Some("added"));
    assert_eq!(status("static").as_deref(), Some("unchanged"));
    assert_eq!(status("shop").as_deref(), Some("changed"));
    golden("changes.json", &String::from_utf8_lossy(&json.stdout));

    // Nothing between a revision and itself: exit 0, and each app rendered once.
    let same = preview(
        &repo,
        &["--base", "HEAD", "--head", "HEAD", "apps", "-o", "json"],
    );
    assert_eq!(same.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&same.stdout).unwrap();
    assert_eq!(doc["renders"], 6, "one render per app: {doc:#}");
}

#[test]
fn a_render_error_at_head_exits_2_naming_the_file() {
    let repo = base_repository();
    repo.write(
        "site/web.yaml",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: [unclosed\n",
    );
    repo.commit("broken");
    let out = preview(&repo, &["--base", "base", "--head", "HEAD", "apps"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("site/web.yaml"),
        "the message names the file:\n{stdout}"
    );
    golden("error.txt", &stdout);

    // A revision that is not a commit: exit 2 with a message that names it.
    let out = preview(&repo, &["--base", "no-such-branch", "apps"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--base \"no-such-branch\""), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_kubeconfig_head_is_compared_with_the_live_cluster() {
    let w = World::start("preview-live").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let app = application("web", &repo.url(), "web", ns, AUTOMATED);
    repo.write("apps/web.yaml", &app)
        .write("web/settings.yaml", &cm("settings", "one"))
        .write("web/gone.yaml", &cm("gone", "soon"))
        .write(
            "web/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: s3cret-live\n",
        );
    repo.commit("web");
    w.apply(&app);
    w.wait_synced_healthy("web").await;

    // A change committed in the clone, not pushed: the cluster still runs the old commit.
    repo.write("web/settings.yaml", &cm("settings", "two"))
        .remove("web/gone.yaml")
        .write("web/new.yaml", &cm("new", "hello"))
        .write(
            "web/secret.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: s3cret-next\n",
        );
    repo.git(&["add", "--all"]);
    repo.git(&["commit", "--quiet", "-m", "the change"]);

    let out = preview_live(&repo, w.kubeconfig(), ns, &repo.url());
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        &format!("preview of live ({ns}) -> HEAD"),
        "app web (apps/web.yaml): changed, 1 to create, 2 to change, 1 to delete",
        &format!("+ ConfigMap:{ns}/new"),
        &format!("~ ConfigMap:{ns}/settings"),
        "-  value: one",
        "+  value: two",
        &format!("- ConfigMap:{ns}/gone"),
        &format!("~ Secret:{ns}/creds"),
    ] {
        assert!(stdout.contains(want), "{want:?} missing from:\n{stdout}");
    }
    assert!(
        !stdout.contains("s3cret"),
        "Secret values are masked:\n{stdout}"
    );
    // What the cluster adds (uid, managedFields, status) is not a change.
    assert!(
        !stdout.contains("managedFields") && !stdout.contains("resourceVersion"),
        "{stdout}"
    );

    // At the commit the cluster runs, nothing differs.
    repo.git(&["reset", "--quiet", "--hard", "HEAD~1"]);
    let out = preview_live(&repo, w.kubeconfig(), ns, &repo.url());
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn preview_live(repo: &GitRepo, kubeconfig: &Path, ns: &str, url: &str) -> Output {
    Command::new(ferry_bin())
        .args(["preview", "--head", "HEAD", "--repo-url", url, "-n", ns])
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .arg("apps")
        .current_dir(repo.work_dir())
        .env("PATH", tool_path())
        .env("FERRY_LOG", "warn")
        .output()
        .expect("running ferry preview")
}
