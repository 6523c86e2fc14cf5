//! Which files of a repository an app's manifests are made from, and whether a push touched
//! them: what lets a new commit refresh only the apps it changes.
//!
//! An app's inputs in one repository are its source path, its Helm value files and file
//! parameters (relative to the path, or `$ref/...` from the root of the `ref` source's
//! repository), whatever its Kustomize files and Helm chart reach with `../` (found by the
//! controller in the checkout, see [`kustomization_references`] and
//! [`chart_file_dependencies`]), and the paths of Argo CD's
//! `argocd.argoproj.io/manifest-generate-paths` annotation (semicolon-separated; relative to
//! the source's path, or absolute from the repository root with a leading `/`; glob patterns
//! allowed, where `*` stops at `/`). Unlike Argo CD, where the annotation *replaces* the
//! default (refresh on every commit), ferry adds it to the inputs it knows: the annotation
//! can widen what refreshes an app, never narrow it. When in doubt (a config management
//! plugin, a path that leaves the repository) the whole repository is an input.

use serde_json::Value;

use crate::application::{Application, ApplicationSource};
use crate::repo_url::normalize_repo_url;

/// Argo CD's annotation listing the paths an app's manifests are generated from.
pub const MANIFEST_GENERATE_PATHS: &str = "argocd.argoproj.io/manifest-generate-paths";

/// One input of an app in a repository.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum InputPath {
    /// A file or folder (from the repository root, `/`-separated, no `.` or `..`); a change
    /// to it or to anything below it is a change. The empty path is the whole repository.
    Under(String),
    /// A glob pattern from the repository root (`*`, `?`, `[...]`; `*` does not cross `/`).
    Glob(String),
}

impl InputPath {
    /// The whole repository.
    pub fn everything() -> Self {
        InputPath::Under(String::new())
    }

    /// Whether a change to `changed` (a path from the repository root) changes this input.
    pub fn is_touched_by(&self, changed: &str) -> bool {
        match self {
            InputPath::Under(p) => {
                p.is_empty()
                    || changed == p
                    || changed
                        .strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
            }
            InputPath::Glob(pattern) => {
                crate::glob::glob_match(pattern, changed, Some('/'))
                    // A pattern that names a folder covers what is inside it.
                    || changed
                        .char_indices()
                        .filter(|(_, c)| *c == '/')
                        .any(|(i, _)| crate::glob::glob_match(pattern, &changed[..i], Some('/')))
            }
        }
    }
}

/// Whether any of `changed` (paths from the repository root) touches any of `inputs`.
pub fn touches(changed: &[String], inputs: &[InputPath]) -> bool {
    changed
        .iter()
        .any(|c| inputs.iter().any(|i| i.is_touched_by(c)))
}

/// `rel` joined to the folder `base` (both from the repository root; `rel` may hold `.` and
/// `..`; a leading `/` makes it absolute from the root), normalized. `None` when it leaves the
/// repository.
pub fn join_repo_path(base: &str, rel: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    let start = if rel.starts_with('/') { "" } else { base };
    for part in start.split('/').chain(rel.split('/')) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// An input at `rel` from folder `base`: a glob when it has glob characters, the whole
/// repository when it leaves it.
fn input_at(base: &str, rel: &str) -> InputPath {
    match join_repo_path(base, rel) {
        Some(p) if p.contains(['*', '?', '[']) => InputPath::Glob(p),
        Some(p) => InputPath::Under(p),
        None => InputPath::everything(),
    }
}

/// The paths of the `manifest-generate-paths` annotation `value` for a source at `app_path`.
pub fn annotation_inputs(value: &str, app_path: &str) -> Vec<InputPath> {
    value
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| input_at(app_path, p))
        .collect()
}

/// What `app`'s spec says it reads, by repository (normalized URL): see the module docs. The
/// controller adds what Kustomize files and Helm charts reach in the checkout.
pub fn spec_inputs(app: &Application) -> Vec<(String, InputPath)> {
    let sources = app.spec.effective_sources();
    let annotation = app
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(MANIFEST_GENERATE_PATHS));
    let mut out = Vec::new();
    for source in &sources {
        let repo = normalize_repo_url(&source.repo_url);
        let path = source.path.as_deref().unwrap_or(".");
        let from_git = source.chart.is_none();
        for file in helm_files(source) {
            match file.strip_prefix('$') {
                Some(rest) => {
                    let (name, rel) = rest.split_once('/').unwrap_or((rest, ""));
                    match sources.iter().find(|s| s.ref_.as_deref() == Some(name)) {
                        Some(r) => out.push((normalize_repo_url(&r.repo_url), input_at("", rel))),
                        // An unknown ref fails the render; any change may fix it.
                        None => out.push((repo.clone(), InputPath::everything())),
                    }
                }
                None if file.contains("://") || !from_git => {} // not in a repository
                None => out.push((repo.clone(), input_at(path, &file))),
            }
        }
        if !from_git || !is_rendered(source) {
            // A chart repository (its version is the input) or a `ref` source (only the files
            // others name are inputs).
            continue;
        }
        out.push((repo.clone(), input_at(path, ".")));
        if source.plugin.is_some() {
            out.push((repo.clone(), InputPath::everything()));
        }
        if let Some(value) = annotation {
            out.extend(
                annotation_inputs(value, path)
                    .into_iter()
                    .map(|i| (repo.clone(), i)),
            );
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Whether `source` is rendered (not only a `ref` that lends its files to others).
fn is_rendered(source: &ApplicationSource) -> bool {
    source.ref_.is_none() || source.path.is_some() || source.chart.is_some()
}

/// The Helm value files and file parameters of `source`, as written.
fn helm_files(source: &ApplicationSource) -> Vec<String> {
    let Some(helm) = &source.helm else {
        return Vec::new();
    };
    let mut files: Vec<String> = helm
        .get("valueFiles")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    files.extend(
        helm.get("fileParameters")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|p| p.get("path").and_then(Value::as_str))
            .map(str::to_owned),
    );
    files
}

/// The local files and folders a kustomization (`text`, the file's YAML) may name, relative
/// to its folder: every string in it that is not a remote URL (`resources`, `components`,
/// `patches[].path`, generator files as `key=../file`, ...). Conservative: the controller keeps
/// those that leave the source's folder (`../`) as inputs and follows those that are folders;
/// a string that only looks like a path makes the app refresh more often, never less. `None`
/// when the YAML does not parse (then the app refreshes).
pub fn kustomization_references(text: &str) -> Option<Vec<String>> {
    let doc: Value = serde_saphyr::from_str(text).ok()?;
    let mut out = Vec::new();
    collect_local_paths(&doc, &mut out);
    out.sort();
    out.dedup();
    Some(out)
}

fn collect_local_paths(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            let s = s.rsplit_once('=').map_or(s.as_str(), |(_, p)| p).trim();
            let remote = s.contains("://")
                || s.starts_with("github.com/")
                || s.starts_with("gitlab.com/")
                || s.starts_with("git@");
            if !remote && !s.is_empty() {
                out.push(s.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_local_paths(i, out)),
        Value::Object(map) => map.values().for_each(|i| collect_local_paths(i, out)),
        _ => {}
    }
}

/// The local charts a `Chart.yaml` (`text`) depends on (`repository: file://../common`), as
/// paths relative to the chart's folder. `None` when the YAML does not parse (refresh).
pub fn chart_file_dependencies(text: &str) -> Option<Vec<String>> {
    let doc: Value = serde_saphyr::from_str(text).ok()?;
    Some(
        doc.get("dependencies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|d| d.get("repository").and_then(Value::as_str))
            .filter_map(|r| r.strip_prefix("file://"))
            .map(str::to_owned)
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn under(p: &str) -> InputPath {
        InputPath::Under(p.into())
    }

    fn paths(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_folder_is_touched_by_its_files_and_not_by_its_neighbours() {
        let a = under("apps/a");
        assert!(a.is_touched_by("apps/a/cm.yaml"));
        assert!(a.is_touched_by("apps/a/deep/x.yaml"));
        assert!(a.is_touched_by("apps/a"));
        assert!(
            !a.is_touched_by("apps/ab/cm.yaml"),
            "a prefix of a name is not the folder"
        );
        assert!(!a.is_touched_by("apps/b/cm.yaml"));
        assert!(!a.is_touched_by("apps"));
        assert!(InputPath::everything().is_touched_by("README.md"));
        assert!(under("values.yaml").is_touched_by("values.yaml"));
    }

    #[test]
    fn globs_stop_at_slashes_and_cover_folders_they_name() {
        let g = InputPath::Glob("shared/*-secret.yaml".into());
        assert!(g.is_touched_by("shared/db-secret.yaml"));
        assert!(!g.is_touched_by("shared/db-config.yaml"));
        assert!(!g.is_touched_by("shared/x/db-secret.yaml"));
        let dirs = InputPath::Glob("envs/*/common".into());
        assert!(dirs.is_touched_by("envs/prod/common/values.yaml"));
        assert!(!dirs.is_touched_by("envs/prod/app/values.yaml"));
    }

    #[test]
    fn paths_join_and_normalize_and_may_not_leave_the_repository() {
        assert_eq!(join_repo_path("apps/a", ".").as_deref(), Some("apps/a"));
        assert_eq!(
            join_repo_path("apps/a", "../shared").as_deref(),
            Some("apps/shared")
        );
        assert_eq!(
            join_repo_path("apps/a", "/guestbook").as_deref(),
            Some("guestbook")
        );
        assert_eq!(join_repo_path(".", "./x/../y").as_deref(), Some("y"));
        assert_eq!(join_repo_path("", "").as_deref(), Some(""));
        assert_eq!(join_repo_path("apps", "../../etc"), None);
    }

    #[test]
    fn the_annotation_is_semicolon_separated_relative_or_absolute() {
        assert_eq!(
            annotation_inputs(".;../shared; /common/values.yaml ;;", "my-app"),
            vec![
                under("my-app"),
                under("shared"),
                under("common/values.yaml")
            ]
        );
        assert_eq!(
            annotation_inputs("/shared/*-secret.yaml", "guestbook"),
            vec![InputPath::Glob("shared/*-secret.yaml".into())]
        );
        assert_eq!(
            annotation_inputs("../../..", "a"),
            vec![InputPath::everything()]
        );
    }

    fn app(yaml: &str) -> Application {
        serde_saphyr::from_str(yaml).expect("Application parses")
    }

    #[test]
    fn spec_inputs_cover_path_value_files_refs_and_the_annotation() {
        let a = app(r#"
metadata:
  name: a
  annotations:
    argocd.argoproj.io/manifest-generate-paths: ".;/shared"
spec:
  destination: {server: "https://kubernetes.default.svc"}
  sources:
    - repoURL: https://example.com/charts.git
      path: charts/web
      helm:
        valueFiles: [values-prod.yaml, ../common/values.yaml, $values/envs/prod.yaml]
        fileParameters: [{name: cfg, path: files/cfg.txt}]
    - repoURL: https://example.com/config.git
      ref: values
    - repoURL: https://charts.example.com
      chart: redis
      targetRevision: 1.0.0
      helm:
        valueFiles: [$values/redis.yaml, redis-defaults.yaml]
"#);
        let charts = "https://example.com/charts".to_string();
        let config = "https://example.com/config".to_string();
        let got = spec_inputs(&a);
        let want = [
            (charts.clone(), under("charts/common/values.yaml")),
            (charts.clone(), under("charts/web")),
            (charts.clone(), under("charts/web/files/cfg.txt")),
            (charts.clone(), under("charts/web/values-prod.yaml")),
            (charts.clone(), under("shared")),
            (config.clone(), under("envs/prod.yaml")),
            (config.clone(), under("redis.yaml")),
        ];
        assert_eq!(got, want.to_vec(), "{got:#?}");
        // The ref source's own repository is not an input beyond the files it lends.
        assert!(!got.iter().any(|(r, i)| *r == config && *i == under("")));
    }

    #[test]
    fn a_change_outside_every_input_touches_nothing() {
        let inputs = vec![under("manifests/app-1"), under("shared/values.yaml")];
        assert!(!touches(
            &paths(&["manifests/app-2/cm.yaml", "README.md"]),
            &inputs
        ));
        assert!(touches(
            &paths(&["README.md", "manifests/app-1/cm.yaml"]),
            &inputs
        ));
        assert!(touches(&paths(&["shared/values.yaml"]), &inputs));
        assert!(!touches(&[], &inputs));
    }

    #[test]
    fn kustomizations_reach_parent_folders_but_not_urls() {
        let refs = kustomization_references(
            r#"
resources:
  - deployment.yaml
  - ../../base
  - https://github.com/org/repo//deploy?ref=v1
  - github.com/org/repo/deploy
components: [../components/tls]
patches:
  - path: ../patches/replicas.yaml
configMapGenerator:
  - name: cfg
    files: [app.properties=../config/app.properties]
"#,
        )
        .unwrap();
        for want in [
            "../../base",
            "../components/tls",
            "../config/app.properties",
            "../patches/replicas.yaml",
            "deployment.yaml",
        ] {
            assert!(refs.contains(&want.to_string()), "{want} in {refs:?}");
        }
        assert!(!refs.iter().any(|r| r.contains("github.com")), "{refs:?}");
        assert_eq!(kustomization_references(": : not yaml ["), None);
    }

    #[test]
    fn charts_depend_on_local_charts_by_file_urls() {
        let deps = chart_file_dependencies(
            "apiVersion: v2\nname: web\ndependencies:\n  - name: common\n    repository: file://../common\n  - name: redis\n    repository: https://charts.example.com\n",
        )
        .unwrap();
        assert_eq!(deps, paths(&["../common"]));
        assert_eq!(
            chart_file_dependencies("name: x\n").unwrap(),
            Vec::<String>::new()
        );
    }
}
