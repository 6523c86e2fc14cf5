//! `validate_paths` on the fixtures in `tests/fixtures/validate/`: every kind of finding with
//! its exact line and column, and the inputs that give none.

use std::path::{Path, PathBuf};

use ferry_pipeline::{Finding, ValidateError, ValidateOptions, validate_paths};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/validate")
        .join(name)
}

async fn findings_with(names: &[&str], options: &ValidateOptions) -> Vec<Finding> {
    let paths: Vec<PathBuf> = names.iter().map(|n| fixture(n)).collect();
    validate_paths(&paths, options).await.unwrap().findings
}

async fn findings(names: &[&str]) -> Vec<Finding> {
    findings_with(names, &ValidateOptions::default()).await
}

/// `file-name:line:column: object: path: message`, the file name without its directory.
fn short(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .map(|f| {
            let mut f = f.clone();
            let base = fixture("");
            f.file = f
                .file
                .strip_prefix(base.to_str().unwrap())
                .unwrap_or(&f.file)
                .to_owned();
            f.to_string()
        })
        .collect()
}

#[tokio::test]
async fn wrong_types_point_at_the_value() {
    assert_eq!(
        short(&findings(&["wrong-type.yaml"]).await),
        [
            r#"wrong-type.yaml:7:13: Deployment/web: .spec.replicas: expected integer, got string "3""#,
            r#"wrong-type.yaml:18:30: Deployment/web: .spec.template.spec.containers[0].ports[0].containerPort: expected integer, got string "http""#,
        ]
    );
}

#[tokio::test]
async fn unknown_fields_point_at_the_key_and_suggest_a_name() {
    assert_eq!(
        short(&findings(&["unknown-field.yaml"]).await),
        [
            r#"unknown-field.yaml:5:3: ConfigMap/settings: .metadata.lables: unknown field "lables" (did you mean "labels"?)"#,
            r#"unknown-field.yaml:19:7: Service/web: .spec.ports[0].protocl: unknown field "protocl" (did you mean "protocol"?)"#,
        ]
    );
}

#[tokio::test]
async fn missing_required_fields_point_at_the_mapping_that_lacks_them() {
    assert_eq!(
        short(&findings(&["missing-required.yaml"]).await),
        [
            r#"missing-required.yaml:6:3: Deployment/web: .spec: missing required field "selector""#,
            r#"missing-required.yaml:12:11: Deployment/web: .spec.template.spec.containers[0]: missing required field "name""#,
        ]
    );
}

#[tokio::test]
async fn a_valid_multi_document_file_has_no_findings() {
    let paths = [fixture("valid-multi.yaml")];
    let report = validate_paths(&paths, &ValidateOptions::default())
        .await
        .unwrap();
    assert_eq!(report.findings, []);
    // Namespace, ConfigMap, Deployment, Service, ClusterRole, two List items, Application.
    assert_eq!((report.files, report.objects), (1, 8));
}

#[tokio::test]
async fn crds_among_the_inputs_validate_custom_resources() {
    assert_eq!(
        short(&findings(&["crd"]).await),
        [
            r#"crd/widgets.yaml:15:3: Widget/bad: .spec: missing required field "size""#,
            r#"crd/widgets.yaml:15:10: Widget/bad: .spec.color: expected one of "red", "green", "blue", got string "purple""#,
            r#"crd/widgets.yaml:16:3: Widget/bad: .spec.weight: unknown field "weight""#,
        ]
    );
}

#[tokio::test]
async fn crds_given_apart_validate_and_missing_schemas_are_reported_or_skipped() {
    let alone = short(&findings(&["crd/widgets.yaml"]).await);
    assert_eq!(
        alone,
        [
            "crd/widgets.yaml:1:1: Widget/good: no schema for example.com/v1 Widget: pass --crd FILE or --ignore-missing-schemas",
            "crd/widgets.yaml:10:1: Widget/bad: no schema for example.com/v1 Widget: pass --crd FILE or --ignore-missing-schemas",
        ]
    );
    let with_crd = ValidateOptions {
        crd_files: vec![fixture("crd/widgets-crd.yaml")],
        ..ValidateOptions::default()
    };
    assert_eq!(
        findings_with(&["crd/widgets.yaml"], &with_crd).await.len(),
        3
    );
    let ignoring = ValidateOptions {
        ignore_missing_schemas: true,
        ..ValidateOptions::default()
    };
    let paths = [fixture("crd/widgets.yaml")];
    let report = validate_paths(&paths, &ignoring).await.unwrap();
    assert_eq!(report.findings, []);
    assert_eq!(
        report.skipped,
        ["example.com/v1 Widget", "example.com/v1 Widget"]
    );
}

#[tokio::test]
async fn an_application_needs_a_destination() {
    assert_eq!(
        short(&findings(&["app-no-destination.yaml"]).await),
        [
            r#"app-no-destination.yaml:7:3: Application/shop: .spec: missing required field "destination" (with server or name)"#
        ]
    );
}

#[tokio::test]
async fn the_same_object_twice_is_reported_where_it_repeats() {
    let got = short(&findings(&["duplicate"]).await);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        got[0].starts_with(
            "duplicate/b.yaml:2:1: ConfigMap/settings: duplicate object: ConfigMap shop/settings is also defined at "
        ),
        "{got:?}"
    );
    assert!(got[0].ends_with("duplicate/a.yaml:1"), "{got:?}");
}

#[tokio::test]
async fn names_follow_the_rule_of_their_kind() {
    let got = short(&findings(&["invalid-name.yaml"]).await);
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(
        got[0].starts_with(
            r#"invalid-name.yaml:4:9: ConfigMap/My_Settings: .metadata.name: invalid name "My_Settings": a ConfigMap name must be a DNS-1123 subdomain"#
        ),
        "{got:?}"
    );
    assert!(
        got[1].starts_with(
            r#"invalid-name.yaml:9:9: Namespace/team.a: .metadata.name: invalid name "team.a": a Namespace name must be a DNS-1123 label"#
        ),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_file_that_does_not_parse_does_not_hide_the_others() {
    assert_eq!(
        short(&findings(&["broken"]).await),
        [
            "broken/a-bad.yaml:5:7: invalid YAML: unclosed bracket '['",
            "broken/b-other.yaml:6:12: ConfigMap/other: .data.retries: expected string, got integer 3",
        ]
    );
}

#[tokio::test]
async fn bad_inputs_are_errors_not_findings() {
    let options = ValidateOptions::default();
    let err = validate_paths(&[fixture("nope.yaml")], &options)
        .await
        .unwrap_err();
    assert!(matches!(err, ValidateError::PathNotFound { .. }), "{err}");
    let err = validate_paths(&[fixture("../../validate.rs")], &options)
        .await
        .unwrap_err();
    assert!(
        matches!(err, ValidateError::NotAManifestFile { .. }),
        "{err}"
    );
    let old = ValidateOptions {
        kubernetes_version: "1.29".into(),
        ..ValidateOptions::default()
    };
    let err = validate_paths(&[fixture("valid-multi.yaml")], &old)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("bundled: 1.36"), "{err}");
}

#[tokio::test]
async fn a_repository_tree_is_read_as_the_engine_renders_it() {
    // A nested Kustomization is built (its dashboard JSON and kustomization are not manifests),
    // the chart is rendered with its default values, the Helm value file next to the apps is
    // left alone, and the Kustomization that needs the network is a note.
    let report = validate_paths(&[fixture("tree")], &ValidateOptions::default())
        .await
        .unwrap();
    assert_eq!(
        short(&report.findings),
        [
            // Kustomize output is located in what `kustomize build` printed.
            "tree/platform/monitoring/kustomization.yaml:10: Deployment/exporter: .spec.template.spec.containers[0].imagePullPolicyy: unknown field \"imagePullPolicyy\" (did you mean \"imagePullPolicy\"?)"
        ]
    );
    let notes: Vec<String> = report
        .notes
        .iter()
        .map(|n| n.replace(fixture("").to_str().unwrap(), ""))
        .collect();
    assert_eq!(
        notes,
        [
            "tree/apps/values.yaml: left alone: a Helm value file (no apiVersion or kind), not a manifest",
            "tree/platform/remote: not built: its kustomization names remote resources (https://example.invalid/releases/v1/release.yaml) and ferry validate works offline; check what they render where the network is reachable",
        ]
    );
    // The app, the chart's Deployment, the kustomization's Deployment and ConfigMap.
    assert_eq!(report.objects, 4);
}

#[tokio::test]
async fn apps_mode_validates_what_each_application_renders() {
    use ferry_pipeline::validate::validate_apps;
    use ferry_testsupport::GitRepo;
    const URL: &str = "https://git.example/org/gitops.git";
    let app = |name: &str, source: &str| {
        format!(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: {name}\nspec:\n  source:\n{source}  destination:\n    server: https://kubernetes.default.svc\n    namespace: {name}\n"
        )
    };
    let repo = GitRepo::new();
    // An App-of-Apps root; its child renders a folder with a misspelt field.
    repo.write(
        "apps/root.yaml",
        &app("root", &format!("    repoURL: {URL}\n    path: children\n")),
    );
    repo.write(
        "children/web.yaml",
        &app("web", &format!("    repoURL: {URL}\n    path: web\n")),
    );
    repo.write(
        "web/deploy.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: b\nbinaryDate: {}\n",
    );
    // A chart from a chart repository: not fetched offline, a note.
    repo.write(
        "apps/remote.yaml",
        &app(
            "remote",
            "    repoURL: https://charts.example\n    chart: thing\n    targetRevision: 1.0.0\n",
        ),
    );
    let report = validate_apps(
        &repo.work_dir().join("apps"),
        &[URL.to_owned()],
        &ValidateOptions::default(),
    )
    .await
    .unwrap();
    let got: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "web/deploy.yaml:7:1: app web: ConfigMap/web: .binaryDate: unknown field \"binaryDate\" (did you mean \"binaryData\"?)"
        ]
    );
    assert_eq!(
        report.notes,
        [
            "app remote (apps/remote.yaml): not rendered offline: its source https://charts.example is not this repository (give --repo-url if it is)"
        ]
    );
    // The root's render (the child Application) and the child's ConfigMap.
    assert_eq!(report.objects, 2);

    // Without the URL that names this repository, nothing of it is rendered: notes, no pass
    // that would hide it.
    let report = validate_apps(
        &repo.work_dir().join("apps"),
        &[],
        &ValidateOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.findings.is_empty());
    assert_eq!(report.notes.len(), 2, "{:?}", report.notes);

    // A folder of Applications that is itself a Kustomization (without apiVersion, as they
    // often are) is built to find them, not read as plain manifests.
    repo.write("more/kustomization.yaml", "resources: [extra.yaml]\n");
    repo.write(
        "more/extra.yaml",
        &app("extra", &format!("    repoURL: {URL}\n    path: web\n")),
    );
    let report = validate_apps(
        &repo.work_dir().join("more"),
        &[URL.to_owned()],
        &ValidateOptions::default(),
    )
    .await
    .unwrap();
    let got: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
    assert_eq!(
        got,
        [
            "web/deploy.yaml:7:1: app extra: ConfigMap/web: .binaryDate: unknown field \"binaryDate\" (did you mean \"binaryData\"?)"
        ]
    );
}

#[tokio::test]
async fn application_sets_validate_without_a_crd() {
    let found = short(&findings(&["applicationset.yaml"]).await);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("ApplicationSet/typo") && found[0].contains("goTemplate"),
        "{found:?}"
    );
}
