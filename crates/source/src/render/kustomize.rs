//! Rendering Kustomize directories with the real `kustomize` (Argo CD's "Kustomize" source type).
//!
//! [`render_kustomize`] runs `kustomize build --load-restrictor LoadRestrictionsRootOnly` on a
//! directory holding `kustomization.yaml`, `kustomization.yml` or `Kustomization`, and parses the
//! output into [`Manifest`]s (each named `<path>/<kustomization file>`, with its line in the
//! build output).
//!
//! **Overrides.** The Application's `spec.source.kustomize` ([`KustomizeOptions`]) is applied the
//! way Argo CD applies it: with `kustomize edit` commands run on the kustomization file, in
//! this order: `edit set nameprefix`, `edit set namesuffix`, `edit set image` (`nginx=nginx:1.2`,
//! `name=newname:tag`, `name@sha256:…`), `edit set replicas name=count`, `edit add label`
//! (`commonLabels`; `--force` with `forceCommonLabels`, `--without-selector` with
//! `labelWithoutSelector`, `--include-templates` with `labelIncludeTemplates`),
//! `edit add annotation` (`commonAnnotations`, `--force` with `forceCommonAnnotations`),
//! `edit set namespace`, `edit add patch` (each of `patches`: inline `patch` or a `path`,
//! with its `target`) and `edit add component` (`components`). Edits never touch the cached
//! checkout: the checkout is copied to a private temporary directory first, and the copy is
//! built. Without overrides the checkout is built in place (kustomize only reads).
//!
//! **Safety.** Local `resources`, `bases` and `components` of every kustomization reached from
//! the app's directory must stay inside the checkout (no `..` out, no absolute paths, no
//! symlinks out): [`RenderError::PathEscapes`] otherwise. Files are kept inside each
//! kustomization's directory by kustomize's own `LoadRestrictionsRootOnly`.
//!
//! The app's own `kustomize.components` and patch `path`s are checked the same way, and so are
//! `generators`, `transformers` and `validators` entries that name directories.
//!
//! **Remote bases** (`github.com/org/repo//path?ref=v1`, `https://…`) are fetched by kustomize
//! itself with `git`, inside the command's private `HOME` and `TMPDIR`, without credentials,
//! and only over the protocols the operator allows ([`RenderTools::with_remote_protocols`],
//! default `https` and `ssh`): kustomize's git runs with `GIT_ALLOW_PROTOCOL` set to that list,
//! and an entry over another protocol is [`RenderError::RemoteBaseRefused`] before kustomize
//! runs. `file://` is never allowed: it would read other repositories' mirrors in ferry's cache.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::tools::{
    self, RenderTools, check_symlinks_inside, copy_tree, display_relative, prepare_home,
    split_failure,
};
use super::{Manifest, RenderError, push_rendered, resolve_app_dir, resolve_inside};
use crate::command::run_command;

/// The names kustomize accepts for a kustomization file, in the order it looks for them.
pub const KUSTOMIZATION_FILES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// Argo CD's `spec.source.kustomize`. Unknown fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KustomizeOptions {
    /// Prefix for every resource name.
    pub name_prefix: Option<String>,
    /// Suffix for every resource name.
    pub name_suffix: Option<String>,
    /// Image overrides (`nginx=nginx:1.2`, `name=newname:tag`, `name@sha256:…`).
    pub images: Vec<String>,
    /// Labels added to every resource (and selectors, unless `labelWithoutSelector`).
    pub common_labels: BTreeMap<String, String>,
    /// Annotations added to every resource.
    pub common_annotations: BTreeMap<String, String>,
    /// Overwrite labels the kustomization already sets.
    pub force_common_labels: bool,
    /// Overwrite annotations the kustomization already sets.
    pub force_common_annotations: bool,
    /// Add `commonLabels` without touching selectors.
    pub label_without_selector: bool,
    /// With `labelWithoutSelector`, also label pod templates.
    pub label_include_templates: bool,
    /// Namespace for every namespaced resource.
    pub namespace: Option<String>,
    /// Replica counts by resource name.
    pub replicas: Vec<KustomizeReplica>,
    /// Patches added to the kustomization.
    pub patches: Vec<KustomizePatch>,
    /// Components added to the kustomization (paths relative to the app's directory).
    pub components: Vec<String>,
    /// The kustomize version (Argo CD picks a binary by it); ferry has one kustomize and
    /// ignores it.
    pub version: Option<String>,
}

/// One entry of `kustomize.replicas`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KustomizeReplica {
    /// The resource name (Deployment, StatefulSet, …).
    pub name: String,
    /// The count: a number or a string holding one.
    pub count: Value,
}

/// One entry of `kustomize.patches`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KustomizePatch {
    /// A patch file, relative to the app's directory.
    pub path: Option<String>,
    /// An inline patch (strategic merge or JSON 6902, in YAML or JSON).
    pub patch: Option<String>,
    /// Which resources the patch applies to.
    pub target: Option<KustomizeSelector>,
}

/// A patch target.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KustomizeSelector {
    /// API group.
    pub group: Option<String>,
    /// API version.
    pub version: Option<String>,
    /// Kind.
    pub kind: Option<String>,
    /// Name (a regular expression for kustomize).
    pub name: Option<String>,
    /// Namespace.
    pub namespace: Option<String>,
    /// Label selector.
    pub label_selector: Option<String>,
    /// Annotation selector.
    pub annotation_selector: Option<String>,
}

impl KustomizeOptions {
    /// Reads `spec.source.kustomize` (absent: the defaults).
    pub fn from_json(value: Option<&Value>) -> Result<Self, RenderError> {
        match value {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(v) => Self::deserialize(v).map_err(|e| RenderError::InvalidOptions {
                field: "kustomize".to_owned(),
                message: e.to_string(),
            }),
        }
    }

    /// The `kustomize edit` commands (arguments after `kustomize`) that apply these options.
    fn edits(&self) -> Result<Vec<Vec<String>>, RenderError> {
        let mut edits: Vec<Vec<String>> = Vec::new();
        let cmd = |parts: &[&str]| parts.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        if let Some(prefix) = self.name_prefix.as_deref().filter(|s| !s.is_empty()) {
            edits.push(cmd(&["edit", "set", "nameprefix", "--", prefix]));
        }
        if let Some(suffix) = self.name_suffix.as_deref().filter(|s| !s.is_empty()) {
            edits.push(cmd(&["edit", "set", "namesuffix", "--", suffix]));
        }
        if !self.images.is_empty() {
            let mut e = cmd(&["edit", "set", "image", "--"]);
            e.extend(self.images.iter().cloned());
            edits.push(e);
        }
        if !self.replicas.is_empty() {
            let mut e = cmd(&["edit", "set", "replicas", "--"]);
            for (i, r) in self.replicas.iter().enumerate() {
                let count = match &r.count {
                    Value::Number(n) if n.is_u64() => n.to_string(),
                    Value::String(s) if s.trim().parse::<u64>().is_ok() => s.trim().to_owned(),
                    other => {
                        return Err(RenderError::InvalidOptions {
                            field: format!("kustomize.replicas[{i}].count"),
                            message: format!("{other} is not a replica count"),
                        });
                    }
                };
                if r.name.is_empty() {
                    return Err(RenderError::InvalidOptions {
                        field: format!("kustomize.replicas[{i}].name"),
                        message: "is empty".into(),
                    });
                }
                e.push(format!("{}={count}", r.name));
            }
            edits.push(e);
        }
        if !self.common_labels.is_empty() {
            let mut e = cmd(&["edit", "add", "label"]);
            if self.force_common_labels {
                e.push("--force".into());
            }
            if self.label_without_selector {
                e.push("--without-selector".into());
                if self.label_include_templates {
                    e.push("--include-templates".into());
                }
            }
            e.push("--".into());
            e.extend(self.common_labels.iter().map(|(k, v)| format!("{k}:{v}")));
            edits.push(e);
        }
        if !self.common_annotations.is_empty() {
            let mut e = cmd(&["edit", "add", "annotation"]);
            if self.force_common_annotations {
                e.push("--force".into());
            }
            e.push("--".into());
            e.extend(
                self.common_annotations
                    .iter()
                    .map(|(k, v)| format!("{k}:{v}")),
            );
            edits.push(e);
        }
        if let Some(ns) = self.namespace.as_deref().filter(|s| !s.is_empty()) {
            edits.push(cmd(&["edit", "set", "namespace", "--", ns]));
        }
        for (i, p) in self.patches.iter().enumerate() {
            let mut e = cmd(&["edit", "add", "patch"]);
            match (p.patch.as_deref(), p.path.as_deref()) {
                (Some(patch), None) if !patch.trim().is_empty() => {
                    e.push(format!("--patch={patch}"));
                }
                (None, Some(path)) if !path.trim().is_empty() => {
                    e.push(format!("--path={path}"));
                }
                _ => {
                    return Err(RenderError::InvalidOptions {
                        field: format!("kustomize.patches[{i}]"),
                        message: "needs exactly one of `patch` and `path`".into(),
                    });
                }
            }
            if let Some(t) = &p.target {
                let flags = [
                    ("--group", &t.group),
                    ("--version", &t.version),
                    ("--kind", &t.kind),
                    ("--name", &t.name),
                    ("--namespace", &t.namespace),
                    ("--label-selector", &t.label_selector),
                    ("--annotation-selector", &t.annotation_selector),
                ];
                for (flag, value) in flags {
                    if let Some(v) = value.as_deref().filter(|v| !v.is_empty()) {
                        e.push(format!("{flag}={v}"));
                    }
                }
            }
            edits.push(e);
        }
        if !self.components.is_empty() {
            let mut e = cmd(&["edit", "add", "component", "--"]);
            e.extend(self.components.iter().cloned());
            edits.push(e);
        }
        Ok(edits)
    }
}

/// Everything [`render_kustomize`] needs.
#[derive(Clone, Debug)]
pub struct KustomizeRender {
    /// The checkout root.
    pub checkout_root: PathBuf,
    /// The app's directory, relative to the root.
    pub path: String,
    /// `spec.source.kustomize`.
    pub options: KustomizeOptions,
    /// The age keys SOPS-encrypted `secretGenerator` inputs and output objects are decrypted
    /// with.
    pub keys: ferry_secrets::KeyRing,
}

/// The kustomization file in `dir`, if there is one.
pub fn kustomization_file(dir: &Path) -> Option<&'static str> {
    KUSTOMIZATION_FILES
        .into_iter()
        .find(|name| dir.join(name).is_file())
}

/// Builds a Kustomize directory with `kustomize build`. See the [module docs](self).
pub async fn render_kustomize(
    tools: &RenderTools,
    req: &KustomizeRender,
) -> Result<Vec<Manifest>, RenderError> {
    let (root, dir) = resolve_app_dir(&req.checkout_root, &req.path)?;
    let rel = display_relative(&root, &dir);
    let file_name = kustomization_file(&dir).ok_or_else(|| RenderError::Kustomize {
        path: rel.clone(),
        action: "build".into(),
        message: format!(
            "no kustomization file ({}) in this directory",
            KUSTOMIZATION_FILES.join(", ")
        ),
    })?;
    let allowed = tools.remote_protocols();
    let mut seen = BTreeSet::new();
    let mut sops_inputs = Vec::new();
    check_kustomization_tree(&root, &dir, allowed, &mut seen, &mut sops_inputs)?;
    check_option_paths(
        &root,
        &dir,
        &req.options,
        allowed,
        &mut seen,
        &mut sops_inputs,
    )?;
    let edits = req.options.edits()?;

    // A render that decrypts inputs marks its directory, so a crashed process's leftovers can
    // be found and removed at the next start.
    let work = tools.private_dir(if sops_inputs.is_empty() {
        "kustomize-"
    } else {
        "sops-kustomize-"
    })?;
    let home = work.path().join("home");
    prepare_home(&home)?;
    let copy = work.path().join("checkout");
    // kustomize names files by absolute path: show them relative to the checkout.
    // Clear values of decrypted SOPS inputs, masked in kustomize's messages.
    let mut clear_values = Vec::new();
    let relative_paths = |message: String, clear: &[String]| {
        super::sops::redact_clear(
            &message
                .replace(&format!("{}/", copy.display()), "")
                .replace(&format!("{}/", root.display()), ""),
            clear,
        )
    };
    let build_dir = if edits.is_empty() && sops_inputs.is_empty() {
        dir.clone()
    } else {
        copy_tree(&root, &copy)?;
        let copied = copy.join(dir.strip_prefix(&root).unwrap_or(Path::new("")));
        // SOPS-encrypted secretGenerator inputs, decrypted in the private copy only (removed
        // with it when this render ends).
        for (input, text) in &sops_inputs {
            let rel = input.strip_prefix(&root).unwrap_or(input);
            let shown = display_relative(&root, input);
            clear_values.extend(super::sops::write_decrypted(
                &shown,
                text,
                &copy.join(rel),
                &req.keys,
            )?);
        }
        for edit in edits {
            let action = edit[..3.min(edit.len())].join(" ");
            let spec = tools.kustomize_command(&home, &copied, edit);
            run_command(spec).await.map_err(|err| {
                match split_failure(err, "kustomize", tools::KUSTOMIZE_ENV) {
                    Ok(message) => RenderError::Kustomize {
                        path: rel.clone(),
                        action,
                        message: relative_paths(message, &clear_values),
                    },
                    Err(e) => e,
                }
            })?;
        }
        copied
    };

    let spec = tools.kustomize_command(
        &home,
        &build_dir,
        vec![
            "build".into(),
            build_dir.to_string_lossy().into_owned(),
            "--load-restrictor".into(),
            "LoadRestrictionsRootOnly".into(),
        ],
    );
    let out = match run_command(spec).await {
        Ok(out) => out,
        Err(err) => {
            let message = split_failure(err, "kustomize", tools::KUSTOMIZE_ENV)?;
            return Err(RenderError::Kustomize {
                path: rel,
                action: "build".into(),
                message: relative_paths(message, &clear_values),
            });
        }
    };
    if out.stdout_truncated {
        return Err(RenderError::OutputTooLarge {
            tool: "kustomize build",
            what: rel,
            limit: tools.max_output(),
        });
    }
    let file = if rel == "." {
        file_name.to_owned()
    } else {
        format!("{rel}/{file_name}")
    };
    let mut manifests = Vec::new();
    push_rendered(&file, &out.stdout_text(), &req.keys, &mut manifests)?;
    Ok(manifests)
}

/// Whether a kustomization entry names something remote (fetched by kustomize with git or HTTP).
fn is_remote(entry: &str) -> bool {
    entry.contains("://")
        || entry.starts_with("git@")
        || entry.starts_with("git::")
        || ["github.com/", "gitlab.com/", "bitbucket.org/"]
            .iter()
            .any(|host| entry.starts_with(host))
}

/// The protocol kustomize would fetch a remote entry with: its scheme (after an optional
/// `git::`), `ssh` for `git@host:…`, `https` for `github.com/…` and the like.
fn remote_protocol(entry: &str) -> String {
    let entry = entry.strip_prefix("git::").unwrap_or(entry);
    if let Some((scheme, _)) = entry.split_once("://") {
        return match scheme.to_ascii_lowercase().as_str() {
            "git+ssh" | "ssh+git" => "ssh".to_owned(),
            other => other.to_owned(),
        };
    }
    if entry.contains('@') && entry.split('/').next().is_some_and(|h| h.contains(':')) {
        return "ssh".to_owned();
    }
    "https".to_owned()
}

/// Refuses a remote entry whose protocol is not in `allowed` (`file` never is).
fn check_remote(
    file: &str,
    field: &str,
    entry: &str,
    allowed: &[String],
) -> Result<(), RenderError> {
    let protocol = remote_protocol(entry);
    if protocol == "file" || !allowed.contains(&protocol) {
        return Err(RenderError::RemoteBaseRefused {
            file: file.to_owned(),
            field: field.to_owned(),
            entry: entry.to_owned(),
            protocol,
            allowed: if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            },
        });
    }
    Ok(())
}

/// Checks the app's own `kustomize.components` and patch `path`s like the kustomization's
/// entries: inside the checkout, and each component's tree too.
fn check_option_paths(
    root: &Path,
    dir: &Path,
    options: &KustomizeOptions,
    allowed: &[String],
    seen: &mut BTreeSet<PathBuf>,
    sops_inputs: &mut Vec<(PathBuf, String)>,
) -> Result<(), RenderError> {
    let base = dir
        .strip_prefix(root)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    let mut entries: Vec<(String, &str)> = options
        .components
        .iter()
        .enumerate()
        .map(|(i, c)| (format!("kustomize.components[{i}]"), c.as_str()))
        .collect();
    for (i, p) in options.patches.iter().enumerate() {
        if let Some(path) = p.path.as_deref() {
            entries.push((format!("kustomize.patches[{i}].path"), path));
        }
    }
    for (field, entry) in entries {
        if is_remote(entry) {
            check_remote("spec.source", &field, entry, allowed)?;
            continue;
        }
        match resolve_inside(root, &base, entry) {
            Ok(Some(target)) if target.is_dir() => {
                check_kustomization_tree(root, &target, allowed, seen, sops_inputs)?;
            }
            Ok(_) => {}
            Err(RenderError::PathEscapes { .. }) => {
                return Err(RenderError::PathEscapes {
                    path: format!("{field}: {entry}"),
                });
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Checks the kustomization in `dir` (canonical) and, recursively, every local directory it
/// uses as a resource, base or component: all inside `root`, no symlink leading out. Collects
/// the resource files and `secretGenerator` inputs (`files`, `envs`) that are SOPS-encrypted,
/// with their text.
fn check_kustomization_tree(
    root: &Path,
    dir: &Path,
    allowed: &[String],
    seen: &mut BTreeSet<PathBuf>,
    sops_inputs: &mut Vec<(PathBuf, String)>,
) -> Result<(), RenderError> {
    if !seen.insert(dir.to_path_buf()) {
        return Ok(());
    }
    check_symlinks_inside(root, dir)?;
    let Some(name) = kustomization_file(dir) else {
        return Ok(()); // kustomize reports the missing file
    };
    let path = dir.join(name);
    let shown = display_relative(root, &path);
    let text = std::fs::read_to_string(&path).map_err(|source| RenderError::Io {
        path: shown.clone(),
        source,
    })?;
    let Some((_, doc)) = super::parse_yaml(&shown, &text)?.into_iter().next() else {
        return Ok(());
    };
    let base = dir
        .strip_prefix(root)
        .unwrap_or(Path::new(""))
        .to_path_buf();
    // Generators, transformers and validators may name kustomization directories too.
    let fields = [
        "resources",
        "bases",
        "components",
        "generators",
        "transformers",
        "validators",
    ];
    for field in fields {
        let entries = doc.get(field).and_then(Value::as_array);
        for entry in entries.into_iter().flatten().filter_map(Value::as_str) {
            if is_remote(entry) {
                check_remote(&shown, field, entry, allowed)?;
                continue;
            }
            let escapes = || RenderError::PathEscapes {
                path: format!("{shown}: {field} entry {entry}"),
            };
            match resolve_inside(root, &base, entry) {
                Ok(Some(target)) if target.is_dir() => {
                    check_kustomization_tree(root, &target, allowed, seen, sops_inputs)?;
                }
                // A SOPS-encrypted resource file is decrypted before the build: kustomize
                // reorders fields, which would break the MAC over the file's values.
                Ok(Some(target))
                    if target.is_file() && !sops_inputs.iter().any(|(p, _)| *p == target) =>
                {
                    let shown = display_relative(root, &target);
                    if let Some(text) = super::sops::read_if_encrypted(&target, &shown)? {
                        sops_inputs.push((target, text));
                    }
                }
                Ok(_) => {}
                Err(RenderError::PathEscapes { .. }) => return Err(escapes()),
                Err(e) => return Err(e),
            }
        }
    }
    for generator in doc
        .get("secretGenerator")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let files = generator.get("files").and_then(Value::as_array);
        let envs = generator.get("envs").and_then(Value::as_array);
        let env = generator.get("env").into_iter();
        let entries = files
            .into_iter()
            .flatten()
            .chain(envs.into_iter().flatten())
            .chain(env);
        for entry in entries.filter_map(Value::as_str) {
            // `key=path` or `path`.
            let file = entry.split_once('=').map_or(entry, |(_, path)| path);
            if let Ok(Some(target)) = resolve_inside(root, &base, file)
                && target.is_file()
                && !sops_inputs.iter().any(|(p, _)| *p == target)
                && let Some(text) =
                    super::sops::read_if_encrypted(&target, &display_relative(root, &target))?
            {
                sops_inputs.push((target, text));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_become_edits_in_argo_cd_order() {
        let opts = KustomizeOptions::from_json(Some(&json!({
            "namePrefix": "p-",
            "images": ["nginx=nginx:1.2"],
            "replicas": [{"name": "web", "count": "3"}],
            "commonLabels": {"team": "a"},
            "forceCommonLabels": true,
            "namespace": "ns",
            "patches": [{"patch": "[]", "target": {"kind": "Deployment"}}],
            "components": ["../c"],
            "unknownField": 1,
        })))
        .unwrap();
        let edits = opts.edits().unwrap();
        let heads: Vec<String> = edits.iter().map(|e| e[..3].join(" ")).collect();
        assert_eq!(
            heads,
            [
                "edit set nameprefix",
                "edit set image",
                "edit set replicas",
                "edit add label",
                "edit set namespace",
                "edit add patch",
                "edit add component"
            ]
        );
        assert_eq!(edits[2][3..], ["--", "web=3"]);
        assert_eq!(edits[3][3..], ["--force", "--", "team:a"]);
        assert_eq!(edits[5][3..], ["--patch=[]", "--kind=Deployment"]);
        assert_eq!(edits[6][3..], ["--", "../c"]);
        assert!(KustomizeOptions::default().edits().unwrap().is_empty());
    }

    #[test]
    fn bad_options_are_named() {
        let opts = KustomizeOptions::from_json(Some(
            &json!({"replicas": [{"name": "web", "count": "many"}]}),
        ))
        .unwrap();
        let err = opts.edits().unwrap_err();
        assert!(
            err.to_string().starts_with("kustomize.replicas[0].count:"),
            "{err}"
        );
        let opts = KustomizeOptions::from_json(Some(&json!({"patches": [{}]}))).unwrap();
        assert!(opts.edits().is_err());
    }

    #[test]
    fn remote_entries_are_recognized() {
        assert!(is_remote("https://github.com/org/repo//base?ref=v1"));
        assert!(is_remote("github.com/org/repo/base?ref=v1"));
        assert!(is_remote("git@github.com:org/repo.git"));
        assert!(!is_remote("../base"));
    }

    #[test]
    fn remote_protocols_are_checked() {
        let allowed = vec!["https".to_owned(), "ssh".to_owned()];
        assert_eq!(remote_protocol("file:///var/cache/ferry/mirrors/x"), "file");
        assert_eq!(remote_protocol("git::file:///x"), "file");
        assert_eq!(remote_protocol("git@github.com:org/r.git"), "ssh");
        assert_eq!(remote_protocol("github.com/org/r/base?ref=v1"), "https");
        assert_eq!(remote_protocol("HTTP://127.0.0.1:8080/r.git"), "http");
        assert!(check_remote("k", "resources", "https://github.com/o/r//b", &allowed).is_ok());
        let err = check_remote("k", "resources", "file:///tmp/m", &allowed).unwrap_err();
        assert!(err.to_string().contains("file"), "{err}");
        assert!(check_remote("k", "resources", "http://127.0.0.1/r", &allowed).is_err());
        let all = vec!["https".to_owned(), "http".to_owned(), "file".to_owned()];
        assert!(check_remote("k", "resources", "http://127.0.0.1/r", &all).is_ok());
        // `file` is refused even when listed.
        assert!(check_remote("k", "resources", "file:///tmp/m", &all).is_err());
    }
}
