//! A look at an app that stays at the commit it was last rendered at reuses that render without
//! reading the commit's tree again. At 10,000 apps pinned at a dozen commits, the periodic looks
//! evicted each other's trees from the small tree cache, and every look listed the whole
//! repository (`git ls-tree -r`).

use std::sync::Arc;
use std::time::Duration;

use ferry_controller::{Engine, EngineConfig};
use ferry_core::application::Application;
use ferry_testsupport::{Cluster, GitRepo};

const CONFIGMAP: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  \
                         mode: calm\n";

#[tokio::test]
async fn a_look_at_the_same_commit_reads_no_tree_even_after_it_left_the_tree_cache() {
    let (ns, name) = namespace_with_project("render-cache").await;

    // One commit for the app under test, then more commits than the tree cache keeps, each
    // changing a file outside the app's directory.
    let repo = GitRepo::new();
    repo.write("app/settings.yaml", CONFIGMAP);
    repo.write("other/n.yaml", "# 0\n");
    let first = repo.commit("settings");
    let later: Vec<String> = (1..=ferry_source::git::TREE_CACHE_COMMITS + 1)
        .map(|i| {
            repo.write("other/n.yaml", &format!("# {i}\n"));
            repo.commit(&format!("other {i}"))
        })
        .collect();
    let app = |app: &str, sha: &str| application(app, &repo, "app", sha, &name);
    ns.kubectl().apply(&app("web", &first));
    for (i, sha) in later.iter().enumerate() {
        ns.kubectl().apply(&app(&format!("look-{i}"), sha));
    }

    let cache = tempfile::tempdir().expect("a cache directory");
    let engine = engine(&ns, cache.path());
    let apps: kube::Api<Application> = ns.api();
    let look = |app: String| {
        let engine = engine.clone();
        let apps = apps.clone();
        async move {
            engine.reconcile(&app).await.expect("a reconcile");
            let status = apps.get(&app).await.expect("reading the app").status;
            status.and_then(|s| s.sync.revision).unwrap_or_default()
        }
    };
    let listings = || engine.differ().repo_cache().tree_listing_count();

    assert_eq!(
        look("web".into()).await,
        first,
        "web is compared at its commit"
    );
    assert_eq!(listings(), 1, "the first render lists its commit's tree");

    // The other apps' renders, one per later commit, push web's commit out of the tree cache.
    for (i, sha) in later.iter().enumerate() {
        assert_eq!(&look(format!("look-{i}")).await, sha);
    }
    let listed = listings();
    assert_eq!(listed, 1 + later.len(), "each later commit is listed once");

    // web is still at its commit: a look (as the periodic one) finds its render by the
    // commit, with no listing.
    assert_eq!(look("web".into()).await, first);
    assert_eq!(
        listings(),
        listed,
        "a look at the commit of the kept render must not list the tree again"
    );
}

/// A namespace of the shared control plane with the Argo CD CRDs and a `default` project.
async fn namespace_with_project(prefix: &str) -> (ferry_testsupport::TestNamespace, String) {
    ferry_testsupport::install_crypto_provider();
    let cluster = Cluster::shared();
    let root = ferry_testsupport::repo_root();
    for crd in [
        "applications.argoproj.io.yaml",
        "appprojects.argoproj.io.yaml",
    ] {
        let path = root.join("manifests/crds").join(crd);
        cluster.kubectl().run(&[
            "apply",
            "--server-side",
            "-f",
            path.to_str().expect("utf-8 path"),
        ]);
    }
    let ns = cluster.namespace(prefix).await;
    let name = ns.name().to_string();
    ns.kubectl().apply(
        "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: default\nspec:\n  \
         sourceRepos: ['*']\n  destinations: [{server: '*', namespace: '*'}]\n",
    );
    (ns, name)
}

/// An engine for hand-driven reconciles in `ns`, with its repository cache in `cache`.
fn engine(ns: &ferry_testsupport::TestNamespace, cache: &std::path::Path) -> Arc<Engine> {
    Arc::new(Engine::new(
        ns.client(),
        EngineConfig {
            poll_interval: Duration::from_secs(3600),
            per_app_concurrency: 4,
            // The test's repository is a local one.
            allow_file_repos: true,
            ..EngineConfig::new(ns.name().to_string(), cache.to_path_buf())
        },
    ))
}

/// An Application of `repo` at `path` and commit `sha`, deploying to namespace `ns`.
fn application(app: &str, repo: &GitRepo, path: &str, sha: &str, ns: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {app}\n\
         spec:\n  project: default\n  \
         source: {{repoURL: '{}', path: {path}, targetRevision: '{sha}'}}\n  \
         destination: {{server: https://kubernetes.default.svc, namespace: {ns}}}\n",
        repo.url()
    )
}

#[tokio::test]
async fn a_commit_to_one_plain_directory_checks_out_that_directory_not_the_repository() {
    let (ns, name) = namespace_with_project("dir-checkout").await;
    let repo = GitRepo::new();
    let configmap = |n: &str, mode: &str| {
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {n}\ndata:\n  mode: {mode}\n")
    };
    repo.write("apps/web/cm.yaml", &configmap("web", "calm"));
    repo.write("apps/api/cm.yaml", &configmap("api", "calm"));
    repo.write("tooled/cm.yaml", &configmap("tooled", "calm"));
    repo.write("tooled/kustomization.yaml", "resources: [cm.yaml]\n");
    let first = repo.commit("three apps");
    repo.write("apps/web/cm.yaml", &configmap("web", "busy"));
    let second = repo.commit("web gets busy");
    let synced = |app: &str, path: &str, sha: &str| {
        format!(
            "{}  syncPolicy: {{automated: {{}}}}\n",
            application(app, &repo, path, sha, &name)
        )
    };
    ns.kubectl().apply(&synced("web", "apps/web", &first));
    ns.kubectl().apply(&synced("api", "apps/api", &first));

    let cache = tempfile::tempdir().expect("a cache directory");
    let engine = engine(&ns, cache.path());
    let counts = || {
        let differ = engine.differ();
        let repos = differ.repo_cache();
        (repos.checkout_count(), repos.directory_checkout_count())
    };
    let configmaps: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = ns.api();
    let mode = async |cm: &str| {
        let cm = configmaps.get(cm).await.expect("reading the ConfigMap");
        cm.data
            .and_then(|d| d.get("mode").cloned())
            .unwrap_or_default()
    };

    for app in ["web", "api"] {
        engine.reconcile(app).await.expect("a reconcile");
    }
    assert_eq!(
        counts(),
        (2, 2),
        "each plain directory is checked out on its own"
    );
    assert_eq!(mode("web").await, "calm");

    // The new commit changes web only: its directory is checked out again, nothing else.
    ns.kubectl().apply(&synced("web", "apps/web", &second));
    engine.reconcile("web").await.expect("a reconcile");
    assert_eq!(
        counts(),
        (3, 3),
        "only web's directory of the new commit is written"
    );
    assert_eq!(
        mode("web").await,
        "busy",
        "rendered from the directory's checkout"
    );
    let repo_checkouts = std::fs::read_dir(cache.path().join("repos/checkouts"))
        .expect("the checkouts")
        .map(|e| e.expect("an entry").path())
        .collect::<Vec<_>>();
    assert_eq!(repo_checkouts.len(), 1, "one repository");
    let whole_commits = std::fs::read_dir(&repo_checkouts[0])
        .expect("the repository's checkouts")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().len() == 40)
        })
        .count();
    assert_eq!(whole_commits, 0, "no commit was checked out whole");

    // A Kustomize folder may reach outside itself: its render gets the whole commit.
    ns.kubectl().apply(&synced("tooled", "tooled", &second));
    engine.reconcile("tooled").await.expect("a reconcile");
    assert_eq!(counts(), (4, 3));
    assert_eq!(mode("tooled").await, "calm");
}
