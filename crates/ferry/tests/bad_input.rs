//! Bad input: each case gives a clear condition on the app, nothing is pruned, other apps carry
//! on, and ferry does not crash.

mod common;

use common::*;
use ferry_testsupport::GitRepo;

/// Starts a healthy app `good` and a broken app `bad` whose files come from `setup`, and checks
/// that `bad` gets a condition containing `expected`, that `good` stays Synced, and that `bad`'s
/// earlier objects were not pruned.
async fn check_bad_input(
    test: &str,
    setup: impl FnOnce(&GitRepo),
    bad_app: impl FnOnce(&str, &str) -> String,
    expected: &[&str],
) {
    let w = World::start(test).await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("good/c.yaml", &configmap("good", "1"))
        .write("bad/keep.yaml", &configmap("bad-keep", "1"));
    repo.commit("healthy start");
    w.apply(&application("good", &repo.url(), "good", ns, AUTOMATED));
    w.apply(&bad_app(&repo.url(), ns));
    w.wait_synced_healthy("good").await;
    w.wait_app("bad", "first sync", |a| sync_status(a) == "Synced")
        .await;

    setup(&repo);
    repo.write("good/c.yaml", &configmap("good", "2"));
    repo.commit("break bad, change good");
    let app = w
        .wait_app("bad", &format!("a condition naming {expected:?}"), |a| {
            let text = conditions(a).join("\n");
            expected.iter().all(|e| text.contains(e))
        })
        .await;
    w.wait_object(&["configmap/good"], "good carries on", |o| {
        o.and_then(|o| o.pointer("/data/value"))
            .is_some_and(|v| v == "2")
    })
    .await;
    assert!(
        w.kubectl()
            .try_run(&["get", "configmap", "bad-keep"])
            .is_ok(),
        "nothing pruned after bad input: {}",
        summary(&app)
    );
    assert!(
        !w.controller.log().contains("panicked"),
        "ferry must not crash"
    );
}

fn plain(name: &'static str) -> impl FnOnce(&str, &str) -> String {
    move |repo, ns| application(name, repo, "bad", ns, AUTOMATED)
}

#[tokio::test]
async fn malformed_yaml_names_file_and_line() {
    check_bad_input(
        "malformed-yaml",
        |r| {
            r.write("bad/keep.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad-keep\ndata:\n  a: [unclosed\n");
        },
        plain("bad"),
        &["ComparisonError", "bad/keep.yaml:6", "invalid YAML"],
    )
    .await;
}

#[tokio::test]
async fn a_kind_without_crd_is_named() {
    check_bad_input(
        "missing-crd",
        |r| {
            r.write(
                "bad/widget.yaml",
                "apiVersion: example.test/v1\nkind: Widget\nmetadata:\n  name: w\n",
            );
        },
        plain("bad"),
        &[
            "ComparisonError",
            "Widget",
            "bad/widget.yaml",
            "CustomResourceDefinition",
        ],
    )
    .await;
}

#[tokio::test]
async fn an_object_the_api_server_rejects_is_named() {
    check_bad_input(
        "rejected",
        |r| {
            r.write("bad/svc.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n  - port: 99999\n");
        },
        plain("bad"),
        &["Service", "broken", "99999"],
    )
    .await;
}

#[tokio::test]
async fn the_same_object_twice_is_named() {
    check_bad_input(
        "duplicate",
        |r| {
            r.write("bad/again.yaml", &configmap("bad-keep", "2"));
        },
        plain("bad"),
        &[
            "ComparisonError",
            "defined twice",
            "bad/keep.yaml",
            "bad/again.yaml",
        ],
    )
    .await;
}

#[tokio::test]
async fn a_missing_path_is_named() {
    check_bad_input(
        "missing-path",
        |r| {
            r.remove("bad");
        },
        plain("bad"),
        &["ComparisonError", "bad"],
    )
    .await;
}

#[tokio::test]
async fn a_symlink_out_of_the_checkout_is_refused() {
    check_bad_input(
        "symlink",
        |r| {
            std::os::unix::fs::symlink("/etc/passwd", r.work_dir().join("bad/passwd.yaml"))
                .unwrap();
        },
        plain("bad"),
        &["ComparisonError", "passwd.yaml"],
    )
    .await;
}

#[tokio::test]
async fn path_dot_dot_is_refused() {
    let w = World::start("dotdot").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("c.yaml", &configmap("c", "1"));
    repo.commit("c");
    w.apply(&application("escape", &repo.url(), "../..", ns, AUTOMATED));
    let app = w
        .wait_app("escape", "a ComparisonError", |a| {
            conditions(a)
                .iter()
                .any(|c| c.starts_with("ComparisonError"))
        })
        .await;
    assert!(
        conditions(&app).join(" ").contains("../.."),
        "{}",
        summary(&app)
    );
}

#[tokio::test]
async fn an_unreachable_repo_and_a_missing_revision_are_named() {
    let w = World::start("unreachable").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    repo.write("c/c.yaml", &configmap("c", "1"));
    repo.commit("c");
    w.apply(&application(
        "gone",
        "file:///no/such/repo.git",
        "c",
        ns,
        AUTOMATED,
    ));
    w.apply(
        &application("norev", &repo.url(), "c", ns, AUTOMATED)
            .replace("targetRevision: main", "targetRevision: no-such-branch"),
    );
    w.apply(&application("fine", &repo.url(), "c", ns, AUTOMATED));
    let gone = w
        .wait_app("gone", "a ComparisonError", |a| {
            conditions(a)
                .iter()
                .any(|c| c.starts_with("ComparisonError"))
        })
        .await;
    assert!(
        conditions(&gone).join(" ").contains("/no/such/repo.git"),
        "{}",
        summary(&gone)
    );
    let norev = w
        .wait_app("norev", "a ComparisonError", |a| {
            conditions(a)
                .iter()
                .any(|c| c.starts_with("ComparisonError"))
        })
        .await;
    assert!(
        conditions(&norev).join(" ").contains("no-such-branch"),
        "{}",
        summary(&norev)
    );
    w.wait_synced_healthy("fine").await;
}

#[tokio::test]
async fn an_application_without_destination_gets_invalid_spec() {
    let w = World::start("no-dest").await;
    let repo = GitRepo::new();
    repo.write("c/c.yaml", &configmap("c", "1"));
    repo.commit("c");
    w.apply(&format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: nodest\nspec:\n  project: default\n  source:\n    repoURL: {}\n    path: c\n",
        repo.url()
    ));
    let app = w
        .wait_app("nodest", "an InvalidSpecError", |a| {
            conditions(a)
                .iter()
                .any(|c| c.starts_with("InvalidSpecError"))
        })
        .await;
    assert!(
        conditions(&app).join(" ").contains("destination"),
        "{}",
        summary(&app)
    );
}
