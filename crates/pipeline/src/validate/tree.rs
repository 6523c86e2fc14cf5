//! Reading a repository tree the way the engine would render its parts.
//!
//! [`plan_tree`] walks a directory and splits it into render units:
//!
//! - a directory below the top that holds a kustomization file is a **Kustomize root**: it is
//!   built with the real `kustomize`, and nothing under it is read as plain manifests (a Grafana
//!   dashboard `.json` packed by a `configMapGenerator`, patches, the kustomization itself);
//! - a directory below the top that holds a `Chart.yaml` is a **Helm chart**, rendered with its
//!   default values, and nothing under it is read as plain manifests (`values.yaml`,
//!   `templates/`);
//! - every other `.yaml`, `.yml` and `.json` file is a **plain manifest**, checked as the
//!   directory source type reads it, except Helm value files (`values.yaml`, `values-*.yaml`,
//!   `*-values.yaml`, `*.values.yaml`, `.yml` too) that declare no `apiVersion` and `kind`:
//!   Applications point at them with `helm.valueFiles`; the engine never reads them as objects.
//!
//! A Kustomize root whose kustomization (or a local base it builds on) names a remote resource
//! (`https://…`, `git@…`, `github.com/…`) is not built: `ferry validate` works offline. It is
//! reported as a note, never passed silently.
//!
//! [`kustomize_inputs`] lists what a kustomization reads (local files and directories,
//! followed through local bases; remote URLs apart): the same walk serves the remote check here
//! and the preview's "did this app's inputs change" test.

use std::collections::BTreeSet;
use std::path::{Component, Path, PathBuf};

use ferry_source::render::kustomize::kustomization_file;

use ferry_source::render::{DirectoryOptions, RenderError, render_directory};

use super::{
    Inputs, ValidateError, display_join, literal_glob, manifest_problem, push_plain,
    push_render_error, read_rendered,
};
use crate::yaml::{Node, parse_documents};

/// One part of a tree, rendered on its own.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Unit {
    /// Plain manifest files of one directory (`dir` relative to the top, `""` for the top).
    Plain {
        /// The directory.
        dir: String,
        /// Its manifest files (names only), in byte order.
        files: Vec<String>,
        /// Helm value files left alone (names only).
        left_alone: Vec<String>,
    },
    /// A directory built with `kustomize`.
    Kustomize(String),
    /// A directory rendered with `helm template` and its default values.
    Helm(String),
    /// A Kustomize root that needs the network, with the remote resources it names.
    Remote(String, Vec<String>),
}

fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// Whether `name` is named like a Helm value file.
fn is_values_name(name: &str) -> bool {
    let Some(stem) = name
        .strip_suffix(".yaml")
        .or_else(|| name.strip_suffix(".yml"))
    else {
        return false;
    };
    stem == "values"
        || stem.starts_with("values-")
        || stem.starts_with("values.")
        || stem.ends_with("-values")
        || stem.ends_with(".values")
        || stem.ends_with("_values")
}

/// Whether a YAML file has a top-level `apiVersion` or `kind` in some document.
fn declares_kubernetes_type(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return true; // let the reader report it
    };
    text.lines()
        .any(|l| l.starts_with("apiVersion:") || l.starts_with("kind:"))
}

/// Splits the tree under `top` into render units, in the order of a depth-first walk with names
/// in byte order (hidden entries and symbolic links to directories skipped).
pub(crate) fn plan_tree(top: &Path) -> std::io::Result<Vec<Unit>> {
    let mut units = Vec::new();
    walk(top, "", true, &mut units)?;
    Ok(units)
}

fn join_rel(rel: &str, name: &str) -> String {
    if rel.is_empty() {
        name.to_owned()
    } else {
        format!("{rel}/{name}")
    }
}

fn walk(top: &Path, rel: &str, is_top: bool, units: &mut Vec<Unit>) -> std::io::Result<()> {
    let dir = if rel.is_empty() {
        top.to_path_buf()
    } else {
        top.join(rel)
    };
    if !is_top {
        if kustomization_file(&dir).is_some() {
            let inputs = kustomize_inputs(&dir);
            units.push(if inputs.remote.is_empty() {
                Unit::Kustomize(rel.to_owned())
            } else {
                Unit::Remote(rel.to_owned(), inputs.remote)
            });
            return Ok(());
        }
        if dir.join("Chart.yaml").is_file() {
            units.push(Unit::Helm(rel.to_owned()));
            return Ok(());
        }
    }
    let mut entries: Vec<_> = std::fs::read_dir(&dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    let (mut files, mut left_alone, mut subdirs) = (Vec::new(), Vec::new(), Vec::new());
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        if kind.is_dir() {
            subdirs.push(name);
        } else if kind.is_symlink() && entry.path().is_dir() {
            continue;
        } else if is_manifest_name(&name) {
            if is_values_name(&name) && !declares_kubernetes_type(&entry.path()) {
                left_alone.push(name);
            } else {
                files.push(name);
            }
        }
    }
    if !files.is_empty() || !left_alone.is_empty() {
        units.push(Unit::Plain {
            dir: rel.to_owned(),
            files,
            left_alone,
        });
    }
    for name in subdirs {
        walk(top, &join_rel(rel, &name), false, units)?;
    }
    Ok(())
}

/// What a kustomization reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KustomizeInputs {
    /// Local files and directories it reads (its own directory included), absolute and
    /// lexically normalized, sorted.
    pub local: BTreeSet<PathBuf>,
    /// Remote resources (`https://…`, `git@…`, `github.com/…`), as written.
    pub remote: Vec<String>,
    /// Entries that could not be followed (a kustomization that does not parse): whoever
    /// needs the full set of inputs must assume anything may be read.
    pub unknown: bool,
}

/// Whether a kustomization entry names a remote resource.
pub(crate) fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("github.com/")
        || entry.starts_with("gitlab.com/")
        || entry.starts_with("bitbucket.org/")
        || entry.contains("?ref=")
}

/// `base` joined with `rel`, `.` and `..` resolved lexically.
pub(crate) fn lexical_join(base: &Path, rel: &str) -> PathBuf {
    let mut out = base.to_path_buf();
    for component in Path::new(rel).components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::Normal(part) => out.push(part),
            Component::RootDir => out = PathBuf::from("/"),
            Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Every local file and directory the kustomization in `dir` reads, following local bases and
/// components, and every remote resource it names. See [`KustomizeInputs`].
pub fn kustomize_inputs(dir: &Path) -> KustomizeInputs {
    let mut out = KustomizeInputs::default();
    let mut seen = BTreeSet::new();
    let absolute = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let start = lexical_join(Path::new("/"), &absolute.to_string_lossy());
    collect_kustomize(&start, &mut seen, &mut out);
    out
}

fn strings_of(node: Option<&Node>) -> Vec<String> {
    match node {
        Some(Node::Seq(items)) => items
            .iter()
            .filter_map(Node::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Node::Scalar(s)) => vec![s.value.clone()],
        _ => Vec::new(),
    }
}

fn collect_kustomize(dir: &Path, seen: &mut BTreeSet<PathBuf>, out: &mut KustomizeInputs) {
    if !seen.insert(dir.to_path_buf()) {
        return;
    }
    out.local.insert(dir.to_path_buf());
    let Some(file) = kustomization_file(dir) else {
        return;
    };
    let Some(doc) = std::fs::read_to_string(dir.join(file))
        .ok()
        .and_then(|text| parse_documents(&text).ok())
        .and_then(|docs| docs.into_iter().next())
    else {
        out.unknown = true;
        return;
    };
    let mut entries: Vec<String> = Vec::new();
    for key in [
        "resources",
        "bases",
        "components",
        "crds",
        "patchesStrategicMerge",
        "transformers",
        "generators",
        "validators",
        "configurations",
    ] {
        entries.extend(strings_of(doc.get(key)));
    }
    for key in ["patches", "patchesJson6902", "replacements"] {
        if let Some(Node::Seq(items)) = doc.get(key) {
            entries.extend(items.iter().flat_map(|i| strings_of(i.get("path"))));
        }
    }
    if let Some(path) = doc.get("openapi").and_then(|o| o.get("path")) {
        entries.extend(strings_of(Some(path)));
    }
    for key in ["configMapGenerator", "secretGenerator"] {
        if let Some(Node::Seq(items)) = doc.get(key) {
            for item in items {
                for f in strings_of(item.get("files")) {
                    // `key=path` or `path`
                    entries.push(f.split_once('=').map_or(f.clone(), |(_, p)| p.to_owned()));
                }
                entries.extend(strings_of(item.get("envs")));
                entries.extend(strings_of(item.get("env")));
            }
        }
    }
    if doc.get("helmCharts").is_some() || doc.get("helmGlobals").is_some() {
        // Charts pulled by kustomize itself: outside what ferry can follow.
        out.unknown = true;
    }
    for entry in entries {
        if entry.contains('\n') || entry.trim().is_empty() {
            continue; // an inline patch or transformer
        }
        if is_remote(&entry) {
            out.remote.push(entry);
            continue;
        }
        let path = lexical_join(dir, &entry);
        if path.is_dir() {
            collect_kustomize(&path, seen, out);
        } else {
            out.local.insert(path);
        }
    }
}

/// A directory read as a tree into `inputs`: see the [module docs](self) for which parts are
/// plain files, Kustomize roots and Helm charts.
pub(super) async fn read_tree(top: &Path, inputs: &mut Inputs) -> Result<(), ValidateError> {
    let shown = top.display().to_string();
    let units = plan_tree(top).map_err(|source| ValidateError::Render {
        path: shown.clone(),
        source: Box::new(RenderError::Io {
            path: shown.clone(),
            source,
        }),
    })?;
    for unit in units {
        let at = |dir: &str| {
            if dir.is_empty() {
                top.to_path_buf()
            } else {
                top.join(dir)
            }
        };
        match unit {
            Unit::Plain {
                dir,
                files,
                left_alone,
            } => {
                let dir = at(&dir);
                for name in &left_alone {
                    inputs.notes.push(format!(
                        "{}: left alone: a Helm value file (no apiVersion or kind), not a manifest",
                        display_join(&dir, name)
                    ));
                }
                read_plain_files(&dir, &files, &left_alone, inputs)?;
            }
            Unit::Kustomize(dir) | Unit::Helm(dir) => read_rendered(&at(&dir), inputs).await?,
            Unit::Remote(dir, urls) => inputs.notes.push(format!(
                "{}: not built: its kustomization names remote resources ({}) and ferry validate works offline; \
                 check what they render where the network is reachable",
                at(&dir).display(),
                urls.join(", ")
            )),
        }
    }
    Ok(())
}

/// The plain manifest `files` of one directory (not its subdirectories). When a file does not
/// parse, every file is read on its own so that one broken file does not hide the problems of
/// the others.
fn read_plain_files(
    dir: &Path,
    files: &[String],
    left_alone: &[String],
    inputs: &mut Inputs,
) -> Result<(), ValidateError> {
    if files.is_empty() {
        return Ok(());
    }
    let shown = dir.display().to_string();
    let exclude = match left_alone {
        [] => None,
        names => Some(format!(
            "{{{}}}",
            names
                .iter()
                .map(|n| literal_glob(n))
                .collect::<Vec<_>>()
                .join(",")
        )),
    };
    let options = DirectoryOptions {
        recurse: false,
        include: None,
        exclude,
    };
    match render_directory(dir, ".", &options) {
        Ok(manifests) => {
            inputs.files += files.len();
            push_plain(inputs, dir, None, manifests);
            return Ok(());
        }
        Err(e) if manifest_problem(&e).is_none() => {
            return Err(ValidateError::Render {
                path: shown,
                source: Box::new(e),
            });
        }
        Err(_) => {}
    }
    for name in files {
        let options = DirectoryOptions {
            recurse: false,
            include: Some(literal_glob(name)),
            exclude: None,
        };
        inputs.files += 1;
        match render_directory(dir, ".", &options) {
            Ok(manifests) => push_plain(inputs, dir, None, manifests),
            Err(e) => push_render_error(inputs, dir, &shown, e)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_names_and_remote_entries() {
        for yes in [
            "values.yaml",
            "values-prod.yaml",
            "prod-values.yml",
            "a.values.yaml",
        ] {
            assert!(is_values_name(yes), "{yes}");
        }
        for no in ["deploy.yaml", "values.json", "myvalues.yaml"] {
            assert!(!is_values_name(no), "{no}");
        }
        assert!(is_remote("https://example.com/release.yaml"));
        assert!(is_remote("github.com/org/repo//deploy?ref=v1"));
        assert!(!is_remote("../base"));
        assert_eq!(
            lexical_join(Path::new("/r/a/b"), "../c/./d.yaml"),
            PathBuf::from("/r/a/c/d.yaml")
        );
    }

    #[test]
    fn a_tree_splits_into_plain_files_and_roots() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write("apps/a.yaml", "apiVersion: v1\nkind: ConfigMap\n");
        write("apps/values.yaml", "replicas: 2\n");
        write("base/kustomization.yaml", "resources: [cm.yaml]\n");
        write("base/cm.yaml", "apiVersion: v1\nkind: ConfigMap\n");
        write(
            "overlay/kustomization.yaml",
            "resources:\n  - ../base\n  - https://example.com/r.yaml\nconfigMapGenerator:\n  - name: d\n    files: [dash=dashboards/d.json]\n",
        );
        write("chart/Chart.yaml", "name: c\n");
        write("chart/templates/x.yaml", "kind: {{ .Values.kind }}\n");
        let units = plan_tree(root).unwrap();
        assert_eq!(
            units,
            [
                Unit::Plain {
                    dir: "apps".into(),
                    files: vec!["a.yaml".into()],
                    left_alone: vec!["values.yaml".into()],
                },
                Unit::Kustomize("base".into()),
                Unit::Helm("chart".into()),
                Unit::Remote("overlay".into(), vec!["https://example.com/r.yaml".into()]),
            ]
        );
        let inputs = kustomize_inputs(&root.join("overlay"));
        let root = lexical_join(Path::new("/"), &root.to_string_lossy());
        assert!(inputs.local.contains(&root.join("base/cm.yaml")));
        assert!(
            inputs
                .local
                .contains(&root.join("overlay/dashboards/d.json"))
        );
        assert!(!inputs.unknown);
    }
}
