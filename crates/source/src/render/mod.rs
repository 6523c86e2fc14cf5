//! Rendering an app's source into Kubernetes objects: plain directories, Kustomize overlays and
//! Helm charts (Argo CD's three built-in source types).
//!
//! Start with [`render_source`] ([`source`]): it picks the source type the way Argo CD does
//! and calls [`render_directory`], [`kustomize::render_kustomize`] or [`helm::render_helm`].
//! Kustomize and Helm run the real `kustomize` and `helm` binaries ([`RenderTools`] finds them)
//! through [`run_command`](crate::command::run_command); their output is parsed by the same YAML
//! reader as a directory's files, so every source type yields the same [`Manifest`]s.
//!
//! # Directories
//!
//! [`render_directory`] reads the `.yaml`, `.yml` and `.json` files of an app's `path` inside a
//! checkout and returns every Kubernetes object in them as a [`Manifest`], remembering the file
//! and line it came from. The rules, following Argo CD where it has one:
//!
//! - **Files.** Only names ending in `.yaml`, `.yml` or `.json` (case-sensitive) are read; files
//!   and directories whose name starts with `.` are skipped. Subdirectories are read only with
//!   [`DirectoryOptions::recurse`]. Order is deterministic: at each level, entries in byte order
//!   of their names, directories visited where they sort (like Go's `filepath.Walk`).
//! - **include / exclude.** Glob patterns matched against a file's path relative to the app path
//!   (`base/deploy.yaml`), with `*` also matching `/` (as Argo CD's `glob.Match` does), `?`,
//!   `[abc]` and `{a.yaml,b/*}` alternatives. A file is read when it matches `include` (or
//!   `include` is unset or empty) and does not match `exclude`. Patterns apply to files only.
//! - **Documents.** A YAML file may hold several documents separated by `---`; empty documents
//!   (and `null`) are skipped. A `.json` file holds one object. An object of kind `List` (or any
//!   `…List` kind with an `items` array) is replaced by its items. Every object must be a
//!   mapping with non-empty string `apiVersion` and `kind`.
//! - **YAML dialect.** Scalars are read the way `kubectl` and Argo CD read them (go-yaml v2,
//!   YAML 1.1): `yes`/`no`/`on`/`off`/`y`/`n` (any case) are booleans, `0755` is octal (493),
//!   `0x1F` hex; a plain `2024-01-01` stays a string. Quote a value to keep it a string.
//!   Duplicate keys in one mapping are an error (kubectl would silently keep the last one);
//!   `.inf` and `.nan` are an error (JSON has no such numbers).
//! - **Safety.** The app path must stay inside the checkout: `..` that climbs out, an absolute
//!   path, or a symlink (the path itself, a directory or a file under it) that resolves outside
//!   gives [`RenderError::PathEscapes`], and nothing outside is read. Symlinks to directories
//!   inside the checkout are not followed. Files larger than [`MAX_FILE_BYTES`] are refused.

use std::path::{Component, Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};
use serde_json::Value;
use serde_saphyr::Spanned;

use crate::command::CommandError;

pub mod application;
pub mod helm;
pub mod kustomize;
pub mod sops;
pub mod source;
mod tools;

pub use ferry_secrets::KeyRing;
pub use helm::{ChartSource, HelmOptions, HelmRender, check_release_name, render_helm};
pub use kustomize::{KustomizeOptions, KustomizeRender, render_kustomize};
pub use source::{RenderedSource, SourceRender, SourceType, render_source};
pub use tools::{
    DEFAULT_MAX_RENDER_BYTES, DEFAULT_REMOTE_BASE_PROTOCOLS, DEFAULT_TOOL_TIMEOUT, HELM_ENV,
    KUSTOMIZE_ENV, RenderTools,
};

/// Which files of a directory source to read (Argo CD's `spec.source.directory`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DirectoryOptions {
    /// Read subdirectories too.
    pub recurse: bool,
    /// Only read files whose path (relative to the app path) matches this glob.
    pub include: Option<String>,
    /// Skip files whose path (relative to the app path) matches this glob.
    pub exclude: Option<String>,
}

/// One Kubernetes object read from a file.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// The file, relative to the checkout root, with `/` separators (`apps/web/deploy.yaml`).
    pub source_file: String,
    /// 1-based line where the object's document starts (for `List` items: where the list starts).
    pub line: usize,
    /// The object.
    pub object: Value,
}

/// The largest manifest file ferry reads.
pub const MAX_FILE_BYTES: u64 = 32 << 20;

/// Why a directory could not be rendered. Paths are relative to the checkout root.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The path, or a symlink under it, leads outside the checkout.
    #[error(
        "path {path:?} leads outside the repository (via '..', an absolute path or a symlink); \
         use a path inside the repository"
    )]
    PathEscapes {
        /// The offending path, as given or relative to the checkout root.
        path: String,
    },
    /// A kustomization names a remote base over a protocol the operator does not allow
    /// (`file://` never).
    #[error(
        "{file}: {field} entry {entry:?} is fetched over {protocol}, which is not allowed for remote bases \
         (allowed: {allowed}); use a path inside the repository, or ask the operator to allow the protocol \
         with --kustomize-remote-protocols (file is never allowed)"
    )]
    RemoteBaseRefused {
        /// The kustomization file, relative to the checkout.
        file: String,
        /// `resources`, `bases`, `components`, … or `kustomize.components` of the app.
        field: String,
        /// The entry.
        entry: String,
        /// The protocol it would be fetched with.
        protocol: String,
        /// The protocols allowed, comma-separated.
        allowed: String,
    },
    /// The app path does not exist at this revision.
    #[error(
        "path {path:?} does not exist in the repository at this revision; check the app's source path and targetRevision"
    )]
    PathNotFound {
        /// The path as given.
        path: String,
    },
    /// The app path is a file, not a directory.
    #[error("path {path:?} is a file, not a directory; set the app's source path to its directory")]
    NotADirectory {
        /// The path as given.
        path: String,
    },
    /// `include` or `exclude` is not a valid glob.
    #[error("directory.{field} pattern {pattern:?} is not a valid glob: {source}")]
    InvalidPattern {
        /// `include` or `exclude`.
        field: &'static str,
        /// The pattern.
        pattern: String,
        /// What is wrong with it.
        #[source]
        source: globset::Error,
    },
    /// A YAML file does not parse.
    #[error("{file}:{line}:{column}: invalid YAML: {message}")]
    Yaml {
        /// The file.
        file: String,
        /// 1-based line of the problem (0 when unknown).
        line: u64,
        /// 1-based column of the problem (0 when unknown).
        column: u64,
        /// What the parser said.
        message: String,
    },
    /// A JSON file does not parse.
    #[error("{file}:{line}:{column}: invalid JSON: {source}")]
    Json {
        /// The file.
        file: String,
        /// 1-based line of the problem.
        line: usize,
        /// 1-based column of the problem.
        column: usize,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// A document is not a mapping (a list or a scalar at the top level).
    #[error(
        "{file}:{line}: {what} is {found}, not a Kubernetes object (a mapping with apiVersion and kind)"
    )]
    NotAnObject {
        /// The file.
        file: String,
        /// 1-based line where the document starts.
        line: usize,
        /// `the document` or `item 3 of the list`.
        what: String,
        /// What it is instead (`a list`, `a string`, …).
        found: &'static str,
    },
    /// An object lacks `apiVersion` or `kind`.
    #[error(
        "{file}:{line}: {what} has no {missing}; every Kubernetes object needs apiVersion and kind"
    )]
    MissingTypeInfo {
        /// The file.
        file: String,
        /// 1-based line where the document starts.
        line: usize,
        /// `the document` or `item 3 of the list`.
        what: String,
        /// `apiVersion`, `kind` or `apiVersion and kind`.
        missing: &'static str,
    },
    /// A file is larger than [`MAX_FILE_BYTES`].
    #[error(
        "{file} is {size} bytes, more than the {limit} bytes ferry reads from one manifest file; split it"
    )]
    FileTooLarge {
        /// The file.
        file: String,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// A file or directory could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A field of `spec.source.helm` or `spec.source.kustomize` is malformed.
    #[error("{field}: {message}")]
    InvalidOptions {
        /// The field (`helm.parameters[0].name`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// `helm` or `kustomize` could not run: not installed, killed by its timeout, I/O.
    #[error("{tool}: {source}; ferry runs the binary named by ${env_var}, else `{tool}` on PATH")]
    Tool {
        /// `helm` or `kustomize`.
        tool: &'static str,
        /// The variable naming the binary (`FERRY_HELM`).
        env_var: &'static str,
        /// What the command runner said.
        #[source]
        source: CommandError,
    },
    /// The output of `helm template` or `kustomize build` is larger than ferry keeps.
    #[error(
        "the output of {tool} for {what} is larger than {limit} bytes; ferry does not use a partial render"
    )]
    OutputTooLarge {
        /// `helm template` or `kustomize build`.
        tool: &'static str,
        /// The chart or directory.
        what: String,
        /// The limit.
        limit: usize,
    },
    /// `helm template` failed: a template error, a `required` value, a values file helm rejects.
    #[error("helm template of chart {chart:?} failed: {message}")]
    HelmTemplate {
        /// The chart (its path in the repository, or its name in a chart repository).
        chart: String,
        /// What helm said.
        message: String,
    },
    /// `helm dependency build` failed for a chart whose `charts/` lacks its dependencies.
    #[error(
        "building the dependencies of chart {chart:?} (helm dependency build) failed: {message}"
    )]
    HelmDependencies {
        /// The chart.
        chart: String,
        /// What helm said.
        message: String,
    },
    /// The chart repository did not answer or is not a Helm chart repository.
    #[error(
        "chart repository {repo_url} (for chart {chart:?}) could not be reached or has no valid index.yaml: {message}"
    )]
    ChartRepositoryUnreachable {
        /// The repository URL (credentials removed).
        repo_url: String,
        /// The chart.
        chart: String,
        /// What helm said.
        message: String,
    },
    /// No version of the chart matches `targetRevision`.
    #[error(
        "chart {chart:?} has no version matching {version:?} in {repo_url}; check the app's targetRevision: {message}"
    )]
    ChartVersionNotFound {
        /// The repository URL (credentials removed).
        repo_url: String,
        /// The chart.
        chart: String,
        /// The version or range asked for.
        version: String,
        /// What helm said.
        message: String,
    },
    /// Pulling a chart failed otherwise (authentication, an OCI registry, a broken archive).
    #[error("pulling chart {chart:?} version {version:?} from {repo_url} failed: {message}")]
    ChartPull {
        /// The repository URL (credentials removed).
        repo_url: String,
        /// The chart.
        chart: String,
        /// The version or range asked for.
        version: String,
        /// What helm said.
        message: String,
    },
    /// A values file (`helm.valueFiles`) does not exist.
    #[error(
        "values file {file:?} of chart {chart:?} does not exist; fix helm.valueFiles or set helm.ignoreMissingValueFiles"
    )]
    ValueFileNotFound {
        /// The chart.
        chart: String,
        /// The values file as written in the app.
        file: String,
    },
    /// A `$name/…` values file names a source the app does not have.
    #[error(
        "values file {file:?} refers to ${reference}, but no source of the app has `ref: {reference}`"
    )]
    UnknownValuesRef {
        /// The values file as written in the app.
        file: String,
        /// The ref name.
        reference: String,
    },
    /// A SOPS-encrypted file could not be decrypted: no allowed key opens it, its MAC does not
    /// verify, a value is tampered with, or it uses keys ferry does not support.
    #[error(transparent)]
    Sops(#[from] ferry_secrets::SopsError),
    /// `kustomize build` or one of the `kustomize edit` commands that apply overrides failed.
    #[error("kustomize {action} in {path:?} failed: {message}")]
    Kustomize {
        /// The app's directory, relative to the checkout root.
        path: String,
        /// `build`, or the edit (`edit set image`).
        action: String,
        /// What kustomize said.
        message: String,
    },
}

/// Reads the manifests of `app_path` (relative to `checkout_root`; `""` or `.` is the root).
///
/// See the [module docs](self) for the rules.
pub fn render_directory(
    checkout_root: &Path,
    app_path: &str,
    opts: &DirectoryOptions,
) -> Result<Vec<Manifest>, RenderError> {
    render_directory_with_keys(checkout_root, app_path, opts, &KeyRing::new())
}

/// [`render_directory`], decrypting SOPS-encrypted files with `keys` ([`sops`]).
pub fn render_directory_with_keys(
    checkout_root: &Path,
    app_path: &str,
    opts: &DirectoryOptions,
    keys: &KeyRing,
) -> Result<Vec<Manifest>, RenderError> {
    let (root, resolved) = resolve_app_dir(checkout_root, app_path)?;
    let walker = Walker {
        keys,
        root: &root,
        recurse: opts.recurse,
        include: compile_pattern("include", opts.include.as_deref())?,
        exclude: compile_pattern("exclude", opts.exclude.as_deref())?,
    };
    let mut manifests = Vec::new();
    walker.walk(&resolved, "", &mut manifests)?;
    Ok(manifests)
}

/// Canonicalizes `checkout_root` and the app directory `app_path` inside it, checking that the
/// directory exists and stays inside the checkout (no `..` out, no absolute path, no symlink out).
pub(crate) fn resolve_app_dir(
    checkout_root: &Path,
    app_path: &str,
) -> Result<(PathBuf, PathBuf), RenderError> {
    let root = checkout_root
        .canonicalize()
        .map_err(|source| RenderError::Io {
            path: checkout_root.display().to_string(),
            source,
        })?;
    let resolved = resolve_inside(&root, Path::new(""), app_path)?.ok_or_else(|| {
        RenderError::PathNotFound {
            path: app_path.to_owned(),
        }
    })?;
    if !resolved.is_dir() {
        return Err(RenderError::NotADirectory {
            path: app_path.to_owned(),
        });
    }
    Ok((root, resolved))
}

/// Resolves `path` (relative to `base`, itself relative to the canonical `root`) to a canonical
/// path inside `root`. `Ok(None)` when nothing is there; [`RenderError::PathEscapes`] when the
/// path climbs out with `..`, is absolute, or is (or passes through) a symlink leading outside.
pub(crate) fn resolve_inside(
    root: &Path,
    base: &Path,
    path: &str,
) -> Result<Option<PathBuf>, RenderError> {
    let escapes = || RenderError::PathEscapes {
        path: path.to_owned(),
    };
    if Path::new(path.trim()).is_absolute() {
        return Err(escapes());
    }
    let joined = base.join(path.trim());
    let relative = normalize_app_path(&joined.to_string_lossy()).ok_or_else(escapes)?;
    let full = root.join(&relative);
    match full.canonicalize() {
        Ok(p) if p.starts_with(root) => Ok(Some(p)),
        Ok(_) => Err(escapes()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A dangling symlink whose target is outside is still an escape.
            if full.symlink_metadata().is_ok() && !symlink_stays_inside(&full, root) {
                return Err(escapes());
            }
            Ok(None)
        }
        Err(source) => Err(RenderError::Io {
            path: path.to_owned(),
            source,
        }),
    }
}

/// Parses the multi-document YAML output of a tool (`kustomize build`, one rendered template of
/// `helm template`) and appends its objects, named `file` in the [`Manifest`]s and in errors.
pub(crate) fn push_rendered(
    file: &str,
    text: &str,
    keys: &KeyRing,
    out: &mut Vec<Manifest>,
) -> Result<(), RenderError> {
    let mut docs = parse_yaml(file, text)?;
    sops::decrypt_output_documents(file, text, &mut docs, keys)?;
    for (line, value) in docs {
        push_objects(file, line, value, "the document".to_owned(), out)?;
    }
    Ok(())
}

/// Joins the components of a relative path, resolving `.` and `..` lexically. `None` when the
/// path is absolute or climbs above its start.
pub(crate) fn normalize_app_path(path: &str) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in Path::new(path.trim()).components() {
        match component {
            Component::Normal(c) => out.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// For a dangling symlink: whether its (lexical) target stays inside `root`.
pub(crate) fn symlink_stays_inside(link: &Path, root: &Path) -> bool {
    let Ok(target) = std::fs::read_link(link) else {
        return false;
    };
    if target.is_absolute() {
        return target.starts_with(root);
    }
    let parent = link.parent().unwrap_or(root);
    let Ok(rel_parent) = parent.strip_prefix(root) else {
        return false;
    };
    let joined = rel_parent.join(target);
    normalize_app_path(&joined.to_string_lossy()).is_some()
}

fn compile_pattern(
    field: &'static str,
    pattern: Option<&str>,
) -> Result<Option<GlobMatcher>, RenderError> {
    match pattern.map(str::trim) {
        None | Some("") => Ok(None),
        Some(p) => GlobBuilder::new(p)
            .literal_separator(false)
            .build()
            .map(|g| Some(g.compile_matcher()))
            .map_err(|source| RenderError::InvalidPattern {
                field,
                pattern: p.to_owned(),
                source,
            }),
    }
}

fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

struct Walker<'a> {
    keys: &'a KeyRing,
    root: &'a Path,
    recurse: bool,
    include: Option<GlobMatcher>,
    exclude: Option<GlobMatcher>,
}

impl Walker<'_> {
    /// Reads `dir` (canonical, inside the root); `rel` is its path relative to the app path.
    fn walk(&self, dir: &Path, rel: &str, out: &mut Vec<Manifest>) -> Result<(), RenderError> {
        let display = |p: &Path| self.display(p);
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .and_then(|it| it.collect::<Result<Vec<_>, _>>())
            .map_err(|source| RenderError::Io {
                path: display(dir),
                source,
            })?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            let rel_path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type().map_err(|source| RenderError::Io {
                path: display(&path),
                source,
            })?;
            let file = if kind.is_symlink() {
                match path.canonicalize() {
                    Ok(target) if !target.starts_with(self.root) => {
                        return Err(RenderError::PathEscapes {
                            path: display(&path),
                        });
                    }
                    Ok(target) if target.is_dir() => continue, // not followed, like Argo CD
                    Ok(target) => target,
                    Err(_) if !symlink_stays_inside(&path, self.root) => {
                        return Err(RenderError::PathEscapes {
                            path: display(&path),
                        });
                    }
                    Err(source) if is_manifest_name(&name) => {
                        return Err(RenderError::Io {
                            path: display(&path),
                            source,
                        });
                    }
                    Err(_) => continue, // a dangling link ferry would not read anyway
                }
            } else if kind.is_dir() {
                if self.recurse {
                    self.walk(&path, &rel_path, out)?;
                }
                continue;
            } else {
                path.clone()
            };
            if !is_manifest_name(&name) || !self.selected(&rel_path) {
                continue;
            }
            self.read_file(&file, &display(&path), &name, out)?;
        }
        Ok(())
    }

    fn selected(&self, rel_path: &str) -> bool {
        if self.exclude.as_ref().is_some_and(|g| g.is_match(rel_path)) {
            return false;
        }
        self.include.as_ref().is_none_or(|g| g.is_match(rel_path))
    }

    fn display(&self, path: &Path) -> String {
        let rel = path.strip_prefix(self.root).unwrap_or(path);
        rel.components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/")
    }

    fn read_file(
        &self,
        path: &Path,
        file: &str,
        name: &str,
        out: &mut Vec<Manifest>,
    ) -> Result<(), RenderError> {
        let io = |source| RenderError::Io {
            path: file.to_owned(),
            source,
        };
        let size = std::fs::metadata(path).map_err(io)?.len();
        if size > MAX_FILE_BYTES {
            return Err(RenderError::FileTooLarge {
                file: file.to_owned(),
                size,
                limit: MAX_FILE_BYTES,
            });
        }
        let bytes = std::fs::read(path).map_err(io)?;
        let text = String::from_utf8(bytes).map_err(|e| {
            io(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("not UTF-8: {e}"),
            ))
        })?;
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        let documents = if let Some(clear) = sops::decrypt_manifest_file(file, text, self.keys)? {
            clear
        } else if name.ends_with(".json") {
            parse_json(file, text)?
        } else {
            parse_yaml(file, text)?
        };
        for (line, value) in documents {
            push_objects(file, line, value, "the document".to_owned(), out)?;
        }
        Ok(())
    }
}

/// The options ferry parses YAML with: see "YAML dialect" in the module docs.
fn yaml_options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        strict_booleans: false,
    }
}

/// Parses every non-empty document of a YAML file, with the line each starts on.
fn parse_yaml(file: &str, text: &str) -> Result<Vec<(usize, Value)>, RenderError> {
    let docs: Vec<Spanned<Value>> = serde_saphyr::from_multiple_with_options(text, yaml_options())
        .map_err(|e| {
            let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
            let message = e.without_snippet().to_string();
            let suffix = format!(" at line {line}, column {column}");
            let message = message.strip_suffix(&suffix).unwrap_or(&message).to_owned();
            RenderError::Yaml {
                file: file.to_owned(),
                line,
                column,
                message,
            }
        })?;
    Ok(docs
        .into_iter()
        .filter(|d| !d.value.is_null())
        .map(|d| {
            (
                usize::try_from(d.referenced.line()).unwrap_or(0).max(1),
                d.value,
            )
        })
        .collect())
}

/// Parses a JSON file (one value) and the line its first token is on.
fn parse_json(file: &str, text: &str) -> Result<Vec<(usize, Value)>, RenderError> {
    let value: Value = serde_json::from_str(text).map_err(|source| RenderError::Json {
        file: file.to_owned(),
        line: source.line(),
        column: source.column(),
        source,
    })?;
    let leading = &text[..text.len() - text.trim_start().len()];
    Ok(vec![(1 + leading.matches('\n').count(), value)])
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// Checks one document and appends its objects (the items, for a list).
fn push_objects(
    file: &str,
    line: usize,
    value: Value,
    what: String,
    out: &mut Vec<Manifest>,
) -> Result<(), RenderError> {
    let Value::Object(mut map) = value else {
        return Err(RenderError::NotAnObject {
            file: file.to_owned(),
            line,
            what,
            found: type_name(&value),
        });
    };
    let has = |key: &str| {
        map.get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty())
    };
    let missing = match (has("apiVersion"), has("kind")) {
        (true, true) => None,
        (false, true) => Some("apiVersion"),
        (true, false) => Some("kind"),
        (false, false) => Some("apiVersion and kind"),
    };
    if let Some(missing) = missing {
        return Err(RenderError::MissingTypeInfo {
            file: file.to_owned(),
            line,
            what,
            missing,
        });
    }
    let kind = map
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let is_list = kind.ends_with("List")
        && match map.get("items") {
            Some(Value::Array(_)) => true,
            Some(Value::Null) | None => kind == "List",
            Some(_) => false,
        };
    if !is_list {
        out.push(Manifest {
            source_file: file.to_owned(),
            line,
            object: Value::Object(map),
        });
        return Ok(());
    }
    let items = match map.remove("items") {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    };
    for (i, item) in items.into_iter().enumerate() {
        push_objects(
            file,
            line,
            item,
            format!("item {} of the {kind}", i + 1),
            out,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalizes_app_paths() {
        assert_eq!(normalize_app_path("."), Some(PathBuf::new()));
        assert_eq!(normalize_app_path(""), Some(PathBuf::new()));
        assert_eq!(
            normalize_app_path("a/./b/../c/"),
            Some(PathBuf::from("a/c"))
        );
        assert_eq!(normalize_app_path("a/../.."), None);
        assert_eq!(normalize_app_path("/etc"), None);
    }

    #[test]
    fn yaml_alias_bombs_are_refused() {
        // `ferry validate` and every render read manifests here: aliases of aliases must not
        // expand without bound (serde-saphyr's default budget refuses them).
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        assert!(parse_yaml("bomb.yaml", &bomb).is_err());
    }

    #[test]
    fn yaml_reads_scalars_like_kubectl() {
        let docs = parse_yaml(
            "f.yaml",
            "a: yes\nb: Off\nc: 0755\nd: 0x1F\ne: 2024-01-01\nf: \"yes\"\ng: 1.5\nh: ~\n",
        )
        .unwrap();
        assert_eq!(
            docs[0].1,
            json!({"a": true, "b": false, "c": 493, "d": 31, "e": "2024-01-01", "f": "yes", "g": 1.5, "h": null})
        );
    }

    #[test]
    fn yaml_documents_know_their_lines_and_skip_empty_ones() {
        let docs = parse_yaml(
            "f.yaml",
            "# head\n---\na: 1\n---\n---\n# nothing\n---\n\nb: 2\n",
        )
        .unwrap();
        let lines: Vec<usize> = docs.iter().map(|d| d.0).collect();
        assert_eq!(lines, vec![3, 9]);
        assert!(parse_yaml("f.yaml", "").unwrap().is_empty());
    }

    #[test]
    fn yaml_errors_carry_position_without_repeating_it() {
        let err = parse_yaml("f.yaml", "a: 1\nb: [1, 2\n").unwrap_err();
        let RenderError::Yaml {
            line,
            column,
            message,
            ..
        } = &err
        else {
            panic!("{err}")
        };
        assert_eq!((*line, *column), (2, 4));
        assert!(!message.contains("at line"), "{message}");
        assert!(
            err.to_string().starts_with("f.yaml:2:4: invalid YAML: "),
            "{err}"
        );
    }

    #[test]
    fn duplicate_keys_are_an_error() {
        let err = parse_yaml("f.yaml", "a: 1\na: 2\n").unwrap_err();
        assert!(err.to_string().contains("duplicate"), "{err}");
    }

    #[test]
    fn json_line_is_the_first_token() {
        let docs = parse_json("f.json", "\n\n  {\"a\": 1}").unwrap();
        assert_eq!(docs[0].0, 3);
    }

    #[test]
    fn lists_are_flattened_and_items_checked() {
        let mut out = Vec::new();
        let list = json!({"apiVersion": "v1", "kind": "ConfigMapList", "items": [
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}},
            {"apiVersion": "v1", "kind": "List", "items": [{"apiVersion": "v1", "kind": "Secret"}]},
        ]});
        push_objects("f", 4, list, "the document".into(), &mut out).unwrap();
        let kinds: Vec<&str> = out
            .iter()
            .map(|m| m.object["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["ConfigMap", "Secret"]);
        assert!(out.iter().all(|m| m.line == 4));

        let bad = json!({"apiVersion": "v1", "kind": "List", "items": [{"kind": "X"}]});
        let err = push_objects("f", 1, bad, "the document".into(), &mut out).unwrap_err();
        assert_eq!(
            err.to_string(),
            "f:1: item 1 of the List has no apiVersion; every Kubernetes object needs apiVersion and kind"
        );
        // A `…List` kind without an items array is an ordinary object.
        let crd = json!({"apiVersion": "x/v1", "kind": "AllowList", "spec": {}});
        push_objects("f", 1, crd, "the document".into(), &mut out).unwrap();
        assert_eq!(out.last().unwrap().object["kind"], "AllowList");
    }

    #[test]
    fn patterns_match_across_slashes_like_argo_cd() {
        let m = compile_pattern("include", Some("*.yaml")).unwrap().unwrap();
        assert!(m.is_match("a/b/c.yaml"));
        let m = compile_pattern("include", Some("{a.yaml,sub/*}"))
            .unwrap()
            .unwrap();
        assert!(m.is_match("a.yaml") && m.is_match("sub/x/y.json") && !m.is_match("b.yaml"));
        assert!(compile_pattern("exclude", Some("")).unwrap().is_none());
        assert!(compile_pattern("exclude", Some("{a")).is_err());
    }
}
