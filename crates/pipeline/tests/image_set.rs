//! `set_images` on a corpus of files written in many styles: for each file, the bytes after
//! equal the bytes before with exactly the expected values replaced, nothing else.

use std::path::{Path, PathBuf};

use ferry_pipeline::{ImageSetOptions, ImageUpdate, set_images, set_images_in_source};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/image-set")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

fn options(images: &[&str]) -> ImageSetOptions {
    ImageSetOptions {
        updates: images
            .iter()
            .map(|s| ImageUpdate::parse(s).unwrap())
            .collect(),
        ..ImageSetOptions::default()
    }
}

/// `before` with each `(old, new)` replaced in order, each searched after the previous one:
/// what the file must be, byte for byte, when only those spans changed.
fn expected(before: &str, replacements: &[(&str, &str)]) -> String {
    let mut out = String::new();
    let mut at = 0;
    for (old, new) in replacements {
        let found = before[at..]
            .find(old)
            .unwrap_or_else(|| panic!("{old:?} not in the fixture after byte {at}"));
        out.push_str(&before[at..at + found]);
        out.push_str(new);
        at += found + old.len();
    }
    out.push_str(&before[at..]);
    out
}

const DIGEST1: &str = "sha256:1111111111111111111111111111111111111111111111111111111111111111";

#[test]
fn only_the_changed_values_change_in_every_file() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures(), dir.path());
    let opts = options(&[
        "nginx=nginx:1.27.0",
        "ghcr.io/acme/app=ghcr.io/acme/app:2.0.0",
    ]);
    let report = set_images(&[dir.path().to_owned()], &opts).unwrap();
    assert!(report.unmatched.is_empty(), "{:?}", report.unmatched);

    let app_digest = format!("ghcr.io/acme/app@{DIGEST1}");
    let kustomize_digest = format!("    digest: {DIGEST1}\n");
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "deployment.yaml",
            vec![
                (
                    "docker.io/library/nginx:1.25.3",
                    "docker.io/library/nginx:1.27.0",
                ),
                ("nginx:1.25.3", "nginx:1.27.0"),
            ],
        ),
        (
            "statefulset.yaml",
            vec![
                ("'ghcr.io/acme/app:1.0'", "'ghcr.io/acme/app:2.0.0'"),
                ("\"nginx:1.25.3\"", "\"nginx:1.27.0\""),
            ],
        ),
        (
            "multi-doc-crlf.yaml",
            vec![
                ("ghcr.io/acme/app:1.0", "ghcr.io/acme/app:2.0.0"),
                (
                    "\"index.docker.io/library/nginx:1.25.3\"",
                    "\"index.docker.io/library/nginx:1.27.0\"",
                ),
            ],
        ),
        (
            "list.yaml",
            vec![
                ("'ghcr.io/acme/app:1.0'", "'ghcr.io/acme/app:2.0.0'"),
                ("nginx:1.25.3", "nginx:1.27.0"),
                (&app_digest, "ghcr.io/acme/app:2.0.0"),
            ],
        ),
        (
            "kustomization.yaml",
            vec![
                ("\"1.25.3\"", "\"1.27.0\""),
                (&kustomize_digest, "    newTag: \"2.0.0\"\n"),
            ],
        ),
        (
            "values.yaml",
            vec![
                ("tag: 1.25.3", "tag: \"1.27.0\""),
                ("\"1.0\"", "\"2.0.0\""),
                ("'ghcr.io/acme/app:1.0'", "'ghcr.io/acme/app:2.0.0'"),
            ],
        ),
        ("values-prod.yaml", vec![]),
        ("configmap.yaml", vec![]),
        ("chart/templates/deployment.yaml", vec![]),
    ];
    let mut total = 0;
    for (file, replacements) in &cases {
        let before = std::fs::read_to_string(fixtures().join(file)).unwrap();
        let after = std::fs::read_to_string(dir.path().join(file)).unwrap();
        assert_eq!(
            after,
            expected(&before, replacements),
            "{file}: only the listed values may change"
        );
        let written = report.files_written.contains(&dir.path().join(file));
        assert_eq!(written, !replacements.is_empty(), "{file} written?");
        total += replacements.len();
    }
    // The kustomization's digest removal and newTag insertion are two changes in one span.
    assert_eq!(report.changes.len(), total + 1, "{:#?}", report.changes);
    let crlf = std::fs::read(dir.path().join("multi-doc-crlf.yaml")).unwrap();
    assert_eq!(
        crlf.windows(2).filter(|w| w == b"\r\n").count(),
        crlf.iter().filter(|b| **b == b'\n').count(),
        "CRLF line endings stay"
    );

    // What is printed names the file, the field, the old and the new value.
    let lines: Vec<String> = report.changes.iter().map(ToString::to_string).collect();
    let deployment = dir.path().join("deployment.yaml");
    assert!(
        lines.contains(&format!(
            "{}: spec.template.spec.containers[0].image nginx:1.25.3 → nginx:1.27.0",
            deployment.display()
        )),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l
                .contains("(document 2) spec.jobTemplate.spec.template.spec.containers[0].image")),
        "{lines:#?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.ends_with(&format!("images[1].digest {DIGEST1} → (removed)"))),
        "{lines:#?}"
    );

    // A second run finds everything up to date and writes nothing.
    let again = set_images(&[dir.path().to_owned()], &opts).unwrap();
    assert!(again.changes.is_empty(), "{:#?}", again.changes);
    assert!(again.files_written.is_empty());
    assert!(again.unmatched.is_empty());
}

#[test]
fn dry_run_writes_nothing_and_unmatched_images_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures(), dir.path());
    let mut opts = options(&["nginx:1.27.0", "quay.io/nobody/nothing:1"]);
    opts.dry_run = true;
    let report = set_images(&[dir.path().to_owned()], &opts).unwrap();
    assert!(!report.changes.is_empty());
    assert!(report.files_written.is_empty());
    assert_eq!(report.unmatched, ["quay.io/nobody/nothing"]);
    for file in ["deployment.yaml", "values.yaml", "multi-doc-crlf.yaml"] {
        assert_eq!(
            std::fs::read(dir.path().join(file)).unwrap(),
            std::fs::read(fixtures().join(file)).unwrap(),
            "{file} untouched by a dry run"
        );
    }
}

#[test]
fn digests_renames_and_values_paths() {
    let kustomization = std::fs::read_to_string(fixtures().join("kustomization.yaml")).unwrap();
    let digest = "sha256:2222222222222222222222222222222222222222222222222222222222222222";
    // A digest replaces the tag; a rename adds newName in the flow entry's own style.
    let opts = options(&[
        &format!("nginx=nginx@{digest}"),
        "redis=quay.io/mirror/redis:7.2",
    ]);
    let out = set_images_in_source(Path::new("kustomization.yaml"), &kustomization, &opts).unwrap();
    assert_eq!(
        out.text,
        expected(
            &kustomization,
            &[
                (
                    "    newTag: \"1.25.3\" # pinned by CI\n",
                    &format!("    digest: {digest}\n")
                ),
                (
                    "{name: redis, newTag: '7.0'}",
                    "{name: redis, newTag: '7.2', newName: quay.io/mirror/redis}"
                ),
            ]
        )
    );

    // Renaming an image in a manifest keeps everything but the value.
    let deployment = std::fs::read_to_string(fixtures().join("deployment.yaml")).unwrap();
    let opts = options(&["nginx=registry.example.com/web/nginx:2"]);
    let out = set_images_in_source(Path::new("deployment.yaml"), &deployment, &opts).unwrap();
    assert_eq!(
        out.text,
        expected(
            &deployment,
            &[
                (
                    "docker.io/library/nginx:1.25.3",
                    "registry.example.com/web/nginx:2"
                ),
                ("nginx:1.25.3", "registry.example.com/web/nginx:2"),
            ]
        )
    );

    // --values-path: exactly that scalar, re-quoted because `2.0.0` would not read as text.
    let values = std::fs::read_to_string(fixtures().join("values-prod.yaml")).unwrap();
    let mut opts = options(&["ghcr.io/acme/app:2.0.0"]);
    opts.values_path = Some("app.container.version".into());
    let out = set_images_in_source(Path::new("values-prod.yaml"), &values, &opts).unwrap();
    assert_eq!(
        out.text,
        expected(&values, &[("version: 1.0", "version: \"2.0.0\"")])
    );
    assert_eq!(out.matched, [true]);
    assert_eq!(out.changes[0].field, "app.container.version");
}

#[test]
fn a_block_scalar_image_is_a_clear_error() {
    let source = std::fs::read_to_string(fixtures().join("statefulset.yaml")).unwrap();
    let err = set_images_in_source(
        Path::new("statefulset.yaml"),
        &source,
        &options(&["busybox:1.37"]),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("initContainers[0].image"), "{msg}");
    assert!(msg.contains("block scalar"), "{msg}");
}

#[test]
fn explicit_files_must_parse_but_walked_ones_are_skipped() {
    let template = fixtures().join("chart/templates/deployment.yaml");
    let source = std::fs::read_to_string(&template).unwrap();
    let parsed = set_images_in_source(&template, &source, &options(&["nginx:1"]));
    if let Ok(update) = parsed {
        // If the template happens to be valid YAML, nothing in it is an image reference.
        assert_eq!(update.text, source);
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yaml"), "a: [\n").unwrap();
    std::fs::write(
        dir.path().join("pod.yaml"),
        "kind: Pod\nspec:\n  containers:\n  - image: nginx:1\n",
    )
    .unwrap();
    let report = set_images(&[dir.path().to_owned()], &options(&["nginx:2"])).unwrap();
    assert_eq!(report.skipped.len(), 1);
    assert_eq!(report.changes.len(), 1);
    let err = set_images(&[dir.path().join("broken.yaml")], &options(&["nginx:2"])).unwrap_err();
    assert!(err.to_string().contains("not valid YAML"), "{err}");
}

#[test]
fn the_same_image_twice_is_refused() {
    let err = set_images(
        &[fixtures()],
        &options(&["nginx:1", "docker.io/library/nginx:2"]),
    )
    .unwrap_err();
    assert!(err.to_string().contains("same image"), "{err}");
}
