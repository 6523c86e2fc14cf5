//! `render_directory` on real directory trees (symlinks included).

use std::path::Path;

use ferry_source::render::{DirectoryOptions, Manifest, RenderError, render_directory};
use tempfile::TempDir;

fn tree(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }
    dir
}

fn cm(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n")
}

fn names(manifests: &[Manifest]) -> Vec<String> {
    manifests
        .iter()
        .map(|m| {
            m.object["metadata"]["name"]
                .as_str()
                .unwrap_or("?")
                .to_owned()
        })
        .collect()
}

fn render(root: &Path, path: &str, opts: &DirectoryOptions) -> Result<Vec<Manifest>, RenderError> {
    render_directory(root, path, opts)
}

fn nested() -> TempDir {
    tree(&[
        ("app/a.yaml", &cm("a")),
        ("app/b.yml", &cm("b")),
        (
            "app/c.json",
            r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}"#,
        ),
        ("app/README.md", "not a manifest"),
        ("app/values.txt", "key: value"),
        ("app/.hidden.yaml", &cm("hidden")),
        ("app/.github/ci.yaml", "on: push"),
        ("app/sub/d.yaml", &cm("d")),
        ("app/sub/deeper/e.yaml", &cm("e")),
        ("app/zz/f.yaml", &cm("f")),
        ("other/g.yaml", &cm("g")),
    ])
}

#[test]
fn reads_only_the_top_level_without_recurse() {
    let dir = nested();
    let got = render(dir.path(), "app", &DirectoryOptions::default()).unwrap();
    assert_eq!(names(&got), ["a", "b", "c"]);
    assert_eq!(got[0].source_file, "app/a.yaml");
    assert_eq!(got[2].source_file, "app/c.json");
    assert!(got.iter().all(|m| m.line == 1));
}

#[test]
fn recurse_reads_subdirectories_in_a_stable_order() {
    let dir = nested();
    let opts = DirectoryOptions {
        recurse: true,
        ..Default::default()
    };
    let got = render(dir.path(), "app", &opts).unwrap();
    assert_eq!(names(&got), ["a", "b", "c", "d", "e", "f"]);
    assert_eq!(got[4].source_file, "app/sub/deeper/e.yaml");
    assert_eq!(
        render(dir.path(), "./app/", &opts).unwrap(),
        got,
        "same path, same result"
    );
    let all = render(dir.path(), ".", &opts).unwrap();
    assert_eq!(names(&all), ["a", "b", "c", "d", "e", "f", "g"]);
}

#[test]
fn include_and_exclude_match_paths_relative_to_the_app() {
    let dir = nested();
    let with = |include: Option<&str>, exclude: Option<&str>| {
        let opts = DirectoryOptions {
            recurse: true,
            include: include.map(str::to_owned),
            exclude: exclude.map(str::to_owned),
        };
        names(&render(dir.path(), "app", &opts).unwrap())
    };
    assert_eq!(
        with(Some("*.yaml"), None),
        ["a", "d", "e", "f"],
        "`*` crosses directories"
    );
    assert_eq!(with(Some("{a.yaml,sub/*}"), None), ["a", "d", "e"]);
    assert_eq!(with(None, Some("sub/*")), ["a", "b", "c", "f"]);
    assert_eq!(with(Some("*.y*ml"), Some("{b.yml,zz/*}")), ["a", "d", "e"]);
    assert_eq!(
        with(Some(""), Some("")),
        ["a", "b", "c", "d", "e", "f"],
        "empty means unset"
    );
    let bad = DirectoryOptions {
        include: Some("{a".into()),
        ..Default::default()
    };
    let err = render(dir.path(), "app", &bad).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("directory.include pattern \"{a\""),
        "{err}"
    );
}

#[test]
fn multi_document_yaml_keeps_lines_and_skips_empty_documents() {
    let text = format!(
        "# leading comment\n---\n{}---\n---\n# only a comment\n---\n{}",
        cm("one"),
        cm("two")
    );
    let dir = tree(&[("all.yaml", &text)]);
    let got = render(dir.path(), "", &DirectoryOptions::default()).unwrap();
    assert_eq!(names(&got), ["one", "two"]);
    assert_eq!(got.iter().map(|m| m.line).collect::<Vec<_>>(), [3, 11]);
}

#[test]
fn lists_are_flattened() {
    let list = "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {name: x}\n- apiVersion: v1\n  kind: Secret\n  metadata: {name: why}\n";
    let typed = r#"{"apiVersion": "v1", "kind": "ConfigMapList", "items": [{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "z"}}]}"#;
    let dir = tree(&[
        ("a.yaml", list),
        ("b.json", typed),
        ("c.yaml", "apiVersion: v1\nkind: List\nitems: []\n"),
    ]);
    let got = render(dir.path(), ".", &DirectoryOptions::default()).unwrap();
    assert_eq!(names(&got), ["x", "why", "z"]);
    assert_eq!(got[1].object["kind"], "Secret");
}

#[test]
fn yaml_scalars_are_read_like_kubectl_reads_them() {
    let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: s}\nimmutable: yes\ndata:\n  mode: 0644\n  quoted: \"yes\"\n";
    let dir = tree(&[("s.yaml", text)]);
    let got = render(dir.path(), ".", &DirectoryOptions::default()).unwrap();
    assert_eq!(got[0].object["immutable"], true);
    assert_eq!(got[0].object["data"]["mode"], 420);
    assert_eq!(got[0].object["data"]["quoted"], "yes");
}

#[test]
fn malformed_yaml_names_file_line_and_column() {
    let dir = tree(&[("app/bad.yaml", &format!("{}---\nkind: [oops\n", cm("ok")))]);
    let err = render(dir.path(), "app", &DirectoryOptions::default()).unwrap_err();
    let RenderError::Yaml {
        file, line, column, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(file, "app/bad.yaml");
    assert_eq!((*line, *column), (6, 7));
    assert!(
        err.to_string()
            .starts_with("app/bad.yaml:6:7: invalid YAML: "),
        "{err}"
    );
}

#[test]
fn malformed_json_names_file_line_and_column() {
    let dir = tree(&[("x.json", "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \n}")]);
    let err = render(dir.path(), ".", &DirectoryOptions::default()).unwrap_err();
    assert!(
        err.to_string().starts_with("x.json:4:1: invalid JSON"),
        "{err}"
    );
}

#[test]
fn objects_without_api_version_or_kind_are_errors() {
    let dir = tree(&[(
        "m.yaml",
        &format!("{}---\nkind: ConfigMap\nmetadata: {{name: b}}\n", cm("a")),
    )]);
    let err = render(dir.path(), ".", &DirectoryOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "m.yaml:6: the document has no apiVersion; every Kubernetes object needs apiVersion and kind"
    );
    let dir = tree(&[("l.yaml", "- a\n- b\n")]);
    let err = render(dir.path(), ".", &DirectoryOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            RenderError::NotAnObject {
                found: "a list",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn paths_that_climb_out_are_refused() {
    let dir = nested();
    for path in ["../..", "app/../..", "/etc", "../other"] {
        let err = render(&dir.path().join("app"), path, &DirectoryOptions::default()).unwrap_err();
        assert!(
            matches!(err, RenderError::PathEscapes { .. }),
            "{path}: {err}"
        );
        assert!(err.to_string().contains("outside the repository"), "{err}");
    }
    // `..` that stays inside is fine.
    let got = render(dir.path(), "other/../app", &DirectoryOptions::default()).unwrap();
    assert_eq!(names(&got), ["a", "b", "c"]);
}

#[cfg(unix)]
#[test]
fn symlinks_that_lead_outside_are_refused() {
    use std::os::unix::fs::symlink;
    let outside = tree(&[("secret.yaml", &cm("secret")), ("dir/x.yaml", &cm("x"))]);
    let repo = tree(&[("app/a.yaml", &cm("a")), ("shared/s.yaml", &cm("s"))]);
    let root = repo.path();
    let opts = DirectoryOptions {
        recurse: true,
        ..Default::default()
    };

    // A symlinked file inside the checkout is read; a symlinked directory is not followed.
    symlink("../shared/s.yaml", root.join("app/link.yaml")).unwrap();
    symlink("../shared", root.join("app/shared-dir")).unwrap();
    assert_eq!(names(&render(root, "app", &opts).unwrap()), ["a", "s"]);

    let cases: [(&str, &Path); 3] = [
        ("app/escape.yaml", &outside.path().join("secret.yaml")),
        ("app/escape-dir", &outside.path().join("dir")),
        ("app/dangling.yaml", Path::new("/nonexistent/x.yaml")),
    ];
    for (link, target) in cases {
        symlink(target, root.join(link)).unwrap();
        let err = render(root, "app", &opts).unwrap_err();
        assert!(
            matches!(&err, RenderError::PathEscapes { path } if path == link),
            "{link}: {err}"
        );
        std::fs::remove_file(root.join(link)).unwrap();
    }

    // The app path itself as a symlink to outside.
    symlink(outside.path(), root.join("evil")).unwrap();
    let err = render(root, "evil", &opts).unwrap_err();
    assert!(matches!(err, RenderError::PathEscapes { .. }), "{err}");
}

#[test]
fn a_missing_path_is_named() {
    let dir = nested();
    let err = render(dir.path(), "apps/nope", &DirectoryOptions::default()).unwrap_err();
    assert!(
        matches!(&err, RenderError::PathNotFound { path } if path == "apps/nope"),
        "{err}"
    );
    assert!(
        err.to_string().contains("\"apps/nope\" does not exist"),
        "{err}"
    );
    let err = render(dir.path(), "app/a.yaml", &DirectoryOptions::default()).unwrap_err();
    assert!(matches!(err, RenderError::NotADirectory { .. }), "{err}");
}

#[test]
fn an_empty_directory_renders_nothing() {
    let dir = tree(&[("empty/README.md", "nothing")]);
    assert!(
        render(dir.path(), "empty", &DirectoryOptions::default())
            .unwrap()
            .is_empty()
    );
}
