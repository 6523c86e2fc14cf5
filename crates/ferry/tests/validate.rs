//! `ferry validate` through the real binary: output formats and exit codes (0 clean, 1
//! findings, 2 could not run), on the fixtures of `crates/pipeline/tests/fixtures/validate`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../pipeline/tests/fixtures/validate")
        .join(name)
}

fn ferry(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .current_dir(fixture(""))
        .env("FERRY_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("running ferry")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn clean_manifests_exit_0() {
    let out = ferry(&["validate", "valid-multi.yaml"], &[]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert_eq!(stdout, "");
    assert!(
        stderr.contains("validated 8 object(s) in 1 file(s): no problems"),
        "{stderr}"
    );
}

#[test]
fn findings_exit_1_one_per_line() {
    let out = ferry(
        &["validate", "wrong-type.yaml", "missing-required.yaml"],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "missing-required.yaml:1:1: Deployment/web: duplicate object: Deployment web is also defined at wrong-type.yaml:2\n\
         missing-required.yaml:6:3: Deployment/web: .spec: missing required field \"selector\"\n\
         missing-required.yaml:12:11: Deployment/web: .spec.template.spec.containers[0]: missing required field \"name\"\n\
         wrong-type.yaml:7:13: Deployment/web: .spec.replicas: expected integer, got string \"3\"\n\
         wrong-type.yaml:18:30: Deployment/web: .spec.template.spec.containers[0].ports[0].containerPort: expected integer, got string \"http\"\n"
    );
    assert!(
        stderr.contains("5 problem(s) in 2 object(s) in 2 file(s)"),
        "{stderr}"
    );
}

#[test]
fn json_output_is_an_array_of_findings() {
    let out = ferry(&["validate", "-o", "json", "app-no-destination.yaml"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        findings,
        serde_json::json!([{
            "file": "app-no-destination.yaml",
            "line": 7,
            "column": 3,
            "object": "Application/shop",
            "path": ".spec",
            "message": "missing required field \"destination\" (with server or name)",
        }])
    );
    let clean = ferry(&["validate", "-o", "json", "valid-multi.yaml"], &[]);
    assert_eq!(clean.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&clean.stdout).trim(), "[]");
}

#[test]
fn crd_flag_and_ignore_missing_schemas() {
    let missing = ferry(&["validate", "crd/widgets.yaml"], &[]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        text(&missing)
            .0
            .contains("no schema for example.com/v1 Widget")
    );
    let ignored = ferry(
        &["validate", "--ignore-missing-schemas", "crd/widgets.yaml"],
        &[],
    );
    assert_eq!(ignored.status.code(), Some(0), "{:?}", text(&ignored));
    let with_crd = ferry(
        &[
            "validate",
            "--crd",
            "crd/widgets-crd.yaml",
            "crd/widgets.yaml",
        ],
        &[],
    );
    let (stdout, _) = text(&with_crd);
    assert_eq!(with_crd.status.code(), Some(1));
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
}

#[test]
fn could_not_run_exits_2() {
    for (args, expected) in [
        (
            vec!["validate", "does-not-exist.yaml"],
            "does-not-exist.yaml: no such file or directory",
        ),
        (
            vec![
                "validate",
                "--kubernetes-version",
                "1.31",
                "valid-multi.yaml",
            ],
            "no schemas for Kubernetes 1.31 are bundled with this ferry; bundled: 1.36",
        ),
        (
            vec!["validate", "--no-such-flag", "valid-multi.yaml"],
            "unexpected argument",
        ),
        (vec!["validate"], "required"),
        (
            vec!["validate", "--crd", "nope.yaml", "valid-multi.yaml"],
            "nope.yaml",
        ),
    ] {
        let out = ferry(&args, &[]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stdout}{stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn kubernetes_version_accepts_the_bundled_one() {
    for version in ["1.36", "v1.36", "1.36.3"] {
        let out = ferry(
            &[
                "validate",
                "--kubernetes-version",
                version,
                "valid-multi.yaml",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{version}");
    }
}

/// A Kustomize directory is built with the real kustomize (scripts/install-tools.sh puts it in
/// target/tools/bin); findings point at the object's line in the build output.
#[test]
fn kustomize_directories_are_built_first() {
    let kustomize = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/bin/kustomize");
    if !kustomize.is_file() {
        eprintln!(
            "skipped: {} is missing (scripts/install-tools.sh)",
            kustomize.display()
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(
        app.join("kustomization.yaml"),
        "resources: [cm.yaml]\nnamePrefix: prod-\n",
    )
    .unwrap();
    std::fs::write(
        app.join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  retries: 3\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["validate", "app"])
        .current_dir(dir.path())
        .env("FERRY_KUSTOMIZE", &kustomize)
        .output()
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
    assert_eq!(
        stdout,
        "app/kustomization.yaml:1: ConfigMap/prod-settings: .data.retries: expected string, got integer 3\n"
    );
    // Without the tool, ferry cannot run.
    let out = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["validate", "app"])
        .current_dir(dir.path())
        .env("FERRY_KUSTOMIZE", dir.path().join("no-kustomize"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}
