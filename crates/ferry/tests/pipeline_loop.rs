//! The whole pipeline loop the workshop teaches, with the real binaries: clone the repository,
//! validate the manifests, bump the image tag, commit and push; the engine then syncs the new
//! tag into the local control plane without any other step.

mod common;

use common::*;
use ferry_testsupport::GitRepo;
use serde_json::Value;

#[tokio::test]
async fn clone_validate_bump_push_and_the_engine_syncs_the_new_tag() {
    let w = World::start("pipeline-loop").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let manifest = format!(
        "# the web tier\n{}",
        deployment("web", "registry.example/web:1.0", 1)
    );
    repo.write("web/deployment.yaml", &manifest);
    repo.commit("web 1.0");
    w.apply(&application("web", &repo.url(), "web", ns, AUTOMATED));
    w.wait_synced_healthy("web").await;

    let work = tempfile::Builder::new()
        .prefix("ferry-pipeline-")
        .tempdir()
        .unwrap();
    let checkout = work.path().join("repo");
    let checkout = checkout.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = ferry(w.kubeconfig(), args);
        assert!(
            out.status.success(),
            "ferry {} failed:\n{}\n{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["git", "clone", &repo.url(), checkout, "--revision", "main"]);
    let dir = format!("{checkout}/web");
    run(&["validate", &dir]);
    let changed = run(&[
        "image",
        "set",
        &dir,
        "--image",
        "registry.example/web=registry.example/web:2.0",
    ]);
    assert!(
        changed.contains("1.0") && changed.contains("2.0"),
        "{changed}"
    );
    run(&[
        "git",
        "commit-push",
        "--dir",
        checkout,
        "-m",
        "web: 2.0",
        "--author",
        "Pipeline Bot <bot@example.test>",
    ]);

    // The push is the only trigger; the engine picks it up by polling.
    w.wait_object(&["deployment/web"], "the new tag rolled out", |d| {
        d.and_then(|d| d.pointer("/spec/template/spec/containers/0/image"))
            == Some(&Value::from("registry.example/web:2.0"))
    })
    .await;
    let app = w.wait_synced_healthy("web").await;
    let history = app["status"]["history"].as_array().unwrap();
    let last = history.last().unwrap();
    assert_eq!(last["commit"]["subject"], "web: 2.0");
    assert_eq!(last["commit"]["author"], "Pipeline Bot <bot@example.test>");
    // Only the tag changed in the file: the comment and everything else stayed.
    repo.git(&["pull", "--quiet", "origin", "main"]);
    let after = std::fs::read_to_string(repo.work_dir().join("web/deployment.yaml")).unwrap();
    assert_eq!(after, manifest.replace("web:1.0", "web:2.0"));
}
