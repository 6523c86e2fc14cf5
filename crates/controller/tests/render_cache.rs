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
    let ns = cluster.namespace("render-cache").await;
    let name = ns.name().to_string();
    ns.kubectl().apply(
        "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: default\nspec:\n  \
         sourceRepos: ['*']\n  destinations: [{server: '*', namespace: '*'}]\n",
    );

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
    let app = |app: &str, sha: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {app}\n\
             spec:\n  project: default\n  \
             source: {{repoURL: '{}', path: app, targetRevision: '{sha}'}}\n  \
             destination: {{server: https://kubernetes.default.svc, namespace: {name}}}\n",
            repo.url()
        )
    };
    ns.kubectl().apply(&app("web", &first));
    for (i, sha) in later.iter().enumerate() {
        ns.kubectl().apply(&app(&format!("look-{i}"), sha));
    }

    let cache = tempfile::tempdir().expect("a cache directory");
    let engine = Arc::new(Engine::new(
        ns.client(),
        EngineConfig {
            poll_interval: Duration::from_secs(3600),
            per_app_concurrency: 4,
            // The test's repository is a local one.
            allow_file_repos: true,
            ..EngineConfig::new(name.clone(), cache.path().to_path_buf())
        },
    ));
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
