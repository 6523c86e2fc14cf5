//! Validating manifests offline against the Kubernetes schemas bundled into ferry: the
//! pipeline's "validate manifests" step (`ferry validate PATH...`).
//!
//! [`validate_paths`] renders every path the way the engine would, checks each object and
//! returns a [`ValidateReport`] of [`Finding`]s, each with its file, line and column:
//!
//! - **Inputs.** A file (`.yaml`, `.yml`, `.json`) is read like a one-file directory. A
//!   directory is rendered by its source type, picked as Argo CD picks it
//!   ([`ferry_source::render::source::detect_source_type`]): a kustomization file makes it
//!   Kustomize, a `Chart.yaml` Helm (both need the real tools), anything else a plain directory,
//!   read with subdirectories ([`render_directory`] with `recurse`). Findings in plain files
//!   point at the offending key or value (for a missing field: the mapping that lacks it);
//!   findings in Kustomize or Helm output point at the object's line in the rendered output of
//!   `Manifest::source_file`, with column 0. A file that does not parse is a finding, and the
//!   other files are still checked.
//! - **Schemas.** Each object's schema is found by its `x-kubernetes-group-version-kind` in the
//!   bundled OpenAPI v3 documents of one Kubernetes version ([`BUNDLED_KUBERNETES_VERSIONS`];
//!   regenerate them with `scripts/update-schemas.sh`). CustomResourceDefinitions among the
//!   inputs or given in [`ValidateOptions::crd_files`] add the schemas of their versions. Argo
//!   CD's `Application` and `AppProject` have ferry's own schema (see the `argo` module). What
//!   the schema check covers is in the `schema` module.
//! - **Beyond the schema.** `metadata.name` (or `generateName`) and the name rule of each kind,
//!   namespace, label and annotation syntax (the `names` module), an Application's source and
//!   destination, and the same object (group, kind, namespace, name) defined twice.
//! - **Kinds without a schema** are a finding that says how to provide one, unless
//!   [`ValidateOptions::ignore_missing_schemas`]; a known kind in a version Kubernetes does not
//!   serve (`apps/v1beta1`) is always a finding.

mod argo;
mod by_app;
mod locate;
mod names;
mod schema;
pub mod tree;

pub use by_app::validate_apps;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use ferry_source::render::source::detect_source_type;
use ferry_source::render::{
    DirectoryOptions, Manifest, RenderError, RenderTools, SourceRender, SourceType,
    render_directory, render_source,
};
use serde_json::Value;

use self::locate::FileSpans;
use self::schema::{Gvk, Issue, SchemaSet, Target, display_path};

/// The Kubernetes versions (`major.minor`) whose schemas ferry bundles.
pub const BUNDLED_KUBERNETES_VERSIONS: &[&str] = &["1.36"];

/// The Kubernetes version validated against when none is asked for.
pub const DEFAULT_KUBERNETES_VERSION: &str = "1.36";

const SCHEMAS_1_36: &str = include_str!("../schemas/kubernetes-v1.36/schemas.json");

/// What to validate against.
#[derive(Clone, Debug, Default)]
pub struct ValidateOptions {
    /// `1.36`, `v1.36` or `1.36.3`; empty for [`DEFAULT_KUBERNETES_VERSION`].
    pub kubernetes_version: String,
    /// Files or directories holding CustomResourceDefinitions for custom resources.
    pub crd_files: Vec<PathBuf>,
    /// Skip objects whose kind has no schema instead of reporting them.
    pub ignore_missing_schemas: bool,
}

/// One problem, where it is and what was expected.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The file, as reached from the path given (`deploy/web.yaml`).
    pub file: String,
    /// 1-based line (0 when unknown).
    pub line: usize,
    /// 1-based column (0 when unknown: objects rendered by Kustomize or Helm).
    pub column: usize,
    /// `Kind/name` of the object (empty for a file that does not parse).
    pub object: String,
    /// Where in the object (`.spec.replicas`; empty for the object as a whole).
    pub path: String,
    /// What is wrong.
    pub message: String,
    /// The Application whose render holds the object (`ferry validate --apps`), else empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub app: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if self.line > 0 {
            write!(f, ":{}", self.line)?;
            if self.column > 0 {
                write!(f, ":{}", self.column)?;
            }
        }
        f.write_str(": ")?;
        if !self.app.is_empty() {
            write!(f, "app {}: ", self.app)?;
        }
        if !self.object.is_empty() {
            write!(f, "{}: ", self.object)?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// The result of [`validate_paths`].
#[derive(Clone, Debug, Default)]
pub struct ValidateReport {
    /// Every problem, ordered by file, line and column.
    pub findings: Vec<Finding>,
    /// How many files were read.
    pub files: usize,
    /// How many objects were checked (skipped ones included).
    pub objects: usize,
    /// Objects skipped for want of a schema (with `ignore_missing_schemas`), as `group/version Kind`.
    pub skipped: Vec<String>,
    /// What was left alone or not built, and why (a Kustomize root that needs the network, Helm
    /// value files): shown to the user, never a silent pass.
    pub notes: Vec<String>,
}

/// Why validation could not run (as opposed to finding problems).
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// The Kubernetes version asked for is not bundled.
    #[error(
        "no schemas for Kubernetes {asked} are bundled with this ferry; bundled: {}; pass --kubernetes-version with one of them",
        bundled.join(", ")
    )]
    UnknownKubernetesVersion {
        /// The version asked for.
        asked: String,
        /// The bundled versions.
        bundled: Vec<String>,
    },
    /// A path given does not exist.
    #[error("{path}: no such file or directory")]
    PathNotFound {
        /// The path.
        path: String,
    },
    /// A file given is not a manifest file.
    #[error(
        "{path}: not a manifest file; ferry validates .yaml, .yml and .json files and directories"
    )]
    NotAManifestFile {
        /// The path.
        path: String,
    },
    /// A CRD file could not be read.
    #[error("reading CRDs from {path}: {message}")]
    CrdFile {
        /// The file or directory given with `--crd`.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A path could not be rendered for a reason that is not a problem in its manifests
    /// (`helm` or `kustomize` missing, a directory that cannot be read).
    #[error("rendering {path}")]
    Render {
        /// The path given.
        path: String,
        /// What the renderer said.
        #[source]
        source: Box<RenderError>,
    },
    /// The bundled schemas do not parse (a broken build).
    #[error("the bundled Kubernetes {version} schemas are broken: {message}")]
    BundledSchemas {
        /// The version.
        version: String,
        /// What is wrong.
        message: String,
    },
}

/// The `major.minor` of a version written `1.36`, `v1.36` or `1.36.3`.
fn major_minor(version: &str) -> String {
    let v = version.trim().trim_start_matches('v');
    let mut parts = v.split('.');
    match (parts.next(), parts.next()) {
        (Some(major), Some(minor)) => format!("{major}.{minor}"),
        _ => v.to_owned(),
    }
}

/// The bundled schema document of `version`.
fn bundled_schemas(version: &str) -> Result<(&'static str, String), ValidateError> {
    let asked = if version.trim().is_empty() {
        DEFAULT_KUBERNETES_VERSION.to_owned()
    } else {
        major_minor(version)
    };
    match asked.as_str() {
        "1.36" => Ok((SCHEMAS_1_36, asked)),
        _ => Err(ValidateError::UnknownKubernetesVersion {
            asked: version.trim().to_owned(),
            bundled: BUNDLED_KUBERNETES_VERSIONS
                .iter()
                .map(|v| (*v).to_owned())
                .collect(),
        }),
    }
}

/// Checks that `version` is bundled, before any work starts.
pub fn check_kubernetes_version(version: &str) -> Result<(), ValidateError> {
    bundled_schemas(version).map(|_| ())
}

/// One object to check.
struct Object {
    /// The file shown in findings.
    file: String,
    /// The file on disk when its span tree can be read (plain files).
    disk: Option<PathBuf>,
    /// Its index among the objects of `file`.
    index: usize,
    /// The line its document starts on.
    line: usize,
    /// What it was rendered with (a directory of plain files, a Kustomize root, a chart): the
    /// same object twice is a problem within one unit only.
    unit: String,
    /// The app that rendered it (`--apps`), else empty.
    app: String,
    value: Value,
}

/// What reading the inputs produced.
#[derive(Default)]
struct Inputs {
    objects: Vec<Object>,
    /// Files that did not parse, as findings.
    findings: Vec<Finding>,
    files: usize,
    /// See [`ValidateReport::notes`].
    notes: Vec<String>,
    /// A temporary cache for helm and kustomize, made when first needed.
    tools: Option<(tempfile::TempDir, RenderTools)>,
}

/// Validates every path (files or directories): see the [module docs](self).
pub async fn validate_paths(
    paths: &[PathBuf],
    options: &ValidateOptions,
) -> Result<ValidateReport, ValidateError> {
    let (set, crds, version) = load_schemas(options).await?;
    let mut inputs = Inputs::default();
    for path in paths {
        read_path(path, &mut inputs).await?;
    }
    Ok(check_inputs(set, &crds, inputs, &version, options))
}

/// The bundled schemas of the version asked for, Argo CD's, and the CRDs given apart.
async fn load_schemas(
    options: &ValidateOptions,
) -> Result<(SchemaSet, Inputs, String), ValidateError> {
    let (bundle, version) = bundled_schemas(&options.kubernetes_version)?;
    let mut set =
        SchemaSet::from_bundle(bundle).map_err(|message| ValidateError::BundledSchemas {
            version: version.clone(),
            message,
        })?;
    for (gvk, schema) in argo::schemas() {
        set.add_custom(gvk, schema);
    }

    let mut crds = Inputs::default();
    for path in &options.crd_files {
        read_path(path, &mut crds)
            .await
            .map_err(|e| ValidateError::CrdFile {
                path: path.display().to_string(),
                message: e.to_string(),
            })?;
        if let Some(problem) = crds.findings.first() {
            return Err(ValidateError::CrdFile {
                path: path.display().to_string(),
                message: problem.to_string(),
            });
        }
    }
    Ok((set, crds, version))
}

/// Checks every object read into `inputs`.
fn check_inputs(
    mut set: SchemaSet,
    crds: &Inputs,
    mut inputs: Inputs,
    kubernetes_version: &str,
    options: &ValidateOptions,
) -> ValidateReport {
    for object in crds.objects.iter().chain(&inputs.objects) {
        add_crd(&mut set, &object.value);
    }

    let mut report = ValidateReport {
        files: inputs.files,
        objects: inputs.objects.len(),
        notes: std::mem::take(&mut inputs.notes),
        ..ValidateReport::default()
    };
    let mut issues: Vec<(usize, Issue)> = Vec::new();
    let mut seen: HashMap<(&str, String, String, String, String), usize> = HashMap::new();
    for (i, object) in inputs.objects.iter().enumerate() {
        let value = &object.value;
        let api_version = value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (group, version) = match api_version.rsplit_once('/') {
            Some((g, v)) => (g, v),
            None => ("", api_version),
        };
        let gvk: Gvk = (group.to_owned(), version.to_owned(), kind.to_owned());
        if set.lookup(&gvk).is_none() {
            let served = set.versions_of(group, kind);
            let message = if !served.is_empty() {
                let with_group = |v: &str| {
                    if group.is_empty() {
                        v.to_owned()
                    } else {
                        format!("{group}/{v}")
                    }
                };
                let served: Vec<String> = served.iter().map(|v| with_group(v)).collect();
                format!(
                    "{api_version} {kind} is not served by Kubernetes {kubernetes_version}; use {}",
                    served.join(" or ")
                )
            } else if options.ignore_missing_schemas {
                report.skipped.push(format!("{api_version} {kind}"));
                continue;
            } else {
                format!(
                    "no schema for {api_version} {kind}: pass --crd FILE or --ignore-missing-schemas"
                )
            };
            issues.push((i, Issue::new(&[], Target::Value, message)));
            continue;
        }
        issues.extend(set.check(&gvk, value).into_iter().map(|issue| (i, issue)));
        issues.extend(
            names::check_metadata(group, kind, value)
                .into_iter()
                .map(|issue| (i, issue)),
        );
        if group == argo::GROUP && kind == "Application" {
            issues.extend(
                argo::check_application(value)
                    .into_iter()
                    .map(|issue| (i, issue)),
            );
        }
        if let Some(name) = value.pointer("/metadata/name").and_then(Value::as_str) {
            let namespace = value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let key = (
                object.unit.as_str(),
                group.to_owned(),
                kind.to_owned(),
                namespace.to_owned(),
                name.to_owned(),
            );
            if let Some(&first) = seen.get(&key) {
                let other = &inputs.objects[first];
                let message = format!(
                    "duplicate object: {kind} {}{name} is also defined at {}:{}",
                    if namespace.is_empty() {
                        String::new()
                    } else {
                        format!("{namespace}/")
                    },
                    other.file,
                    other.line
                );
                issues.push((i, Issue::new(&[], Target::Value, message)));
            } else {
                seen.insert(key, i);
            }
        }
    }

    report.findings = locate_findings(&inputs.objects, issues);
    report.findings.extend(inputs.findings);
    report.findings.sort_by(|a, b| {
        (&a.file, a.line, a.column, &a.path, &a.message)
            .cmp(&(&b.file, b.line, b.column, &b.path, &b.message))
    });
    report.findings.dedup();
    report
}

/// Adds the schemas of every version of `object` if it is a CustomResourceDefinition.
fn add_crd(set: &mut SchemaSet, object: &Value) {
    let is_crd = object.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
        && object
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("apiextensions.k8s.io/"));
    if !is_crd {
        return;
    }
    let text = |p: &str| {
        object
            .pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (group, kind) = (text("/spec/group"), text("/spec/names/kind"));
    let Some(Value::Array(versions)) = object.pointer("/spec/versions") else {
        return;
    };
    for version in versions {
        let Some(name) = version.get("name").and_then(Value::as_str) else {
            continue;
        };
        let schema = version
            .pointer("/schema/openAPIV3Schema")
            .cloned()
            // A version without a schema accepts anything.
            .unwrap_or_else(
                || serde_json::json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
            );
        set.add_custom((group.to_owned(), name.to_owned(), kind.to_owned()), schema);
    }
}

/// `Kind/name` of an object.
fn object_label(value: &Value) -> String {
    let kind = value
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let meta = |f: &str| {
        value
            .get("metadata")
            .and_then(|m| m.get(f))
            .and_then(Value::as_str)
    };
    match (meta("name"), meta("generateName")) {
        (Some(name), _) => format!("{kind}/{name}"),
        (None, Some(prefix)) => format!("{kind}/{prefix}*"),
        (None, None) => kind.to_owned(),
    }
}

/// Gives every issue its file, line and column (parsing a file's span tree only when it has
/// findings).
fn locate_findings(objects: &[Object], issues: Vec<(usize, Issue)>) -> Vec<Finding> {
    let mut spans: HashMap<&Path, Option<FileSpans>> = HashMap::new();
    let mut findings = Vec::with_capacity(issues.len());
    for (i, issue) in issues {
        let object = &objects[i];
        let position = object.disk.as_deref().and_then(|disk| {
            spans
                .entry(disk)
                .or_insert_with(|| {
                    std::fs::read_to_string(disk)
                        .ok()
                        .and_then(FileSpans::parse)
                })
                .as_ref()
                .and_then(|s| s.position(object.index, &issue.path, issue.target))
        });
        let (line, column) = match (position, &object.disk) {
            (Some(p), _) => p,
            (None, Some(_)) => (object.line, 1),
            (None, None) => (object.line, 0),
        };
        findings.push(Finding {
            file: object.file.clone(),
            line,
            column,
            object: object_label(&object.value),
            path: display_path(&issue.path),
            message: issue.message,
            app: object.app.clone(),
        });
    }
    findings
}

fn is_manifest_name(name: &str) -> bool {
    [".yaml", ".yml", ".json"]
        .iter()
        .any(|ext| name.ends_with(ext))
}

/// A glob matching exactly `name`.
pub(crate) fn literal_glob(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if "*?[]{}\\!".contains(c) {
            out.push('[');
            out.push(c);
            out.push(']');
        } else {
            out.push(c);
        }
    }
    out
}

/// `base` joined with a `/`-separated relative file, shown without a leading `./`.
fn display_join(base: &Path, rel: &str) -> String {
    let joined = base.join(rel);
    let shown = joined.display().to_string();
    shown.strip_prefix("./").map(str::to_owned).unwrap_or(shown)
}

/// Whether a render error is a problem in the manifests (a finding) rather than a reason the
/// command cannot run.
fn manifest_problem(error: &RenderError) -> Option<(String, usize, usize)> {
    match error {
        RenderError::Yaml {
            file, line, column, ..
        } => Some((
            file.clone(),
            usize::try_from(*line).unwrap_or(0),
            usize::try_from(*column).unwrap_or(0),
        )),
        RenderError::Json {
            file, line, column, ..
        } => Some((file.clone(), *line, *column)),
        RenderError::NotAnObject { file, line, .. }
        | RenderError::MissingTypeInfo { file, line, .. } => Some((file.clone(), *line, 1)),
        RenderError::FileTooLarge { file, .. } => Some((file.clone(), 0, 0)),
        _ => None,
    }
}

/// The message of a render error without the `file:line:column: ` it starts with.
fn render_message(error: &RenderError, file: &str) -> String {
    let text = error.to_string();
    let Some(rest) = text.strip_prefix(file) else {
        return text;
    };
    let rest = rest.trim_start_matches(|c: char| c == ':' || c.is_ascii_digit());
    rest.trim_start().to_owned()
}

/// Reads one path given on the command line into `inputs`.
async fn read_path(path: &Path, inputs: &mut Inputs) -> Result<(), ValidateError> {
    let shown = path.display().to_string();
    let metadata = std::fs::metadata(path).map_err(|_| ValidateError::PathNotFound {
        path: shown.clone(),
    })?;
    if metadata.is_file() {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if !is_manifest_name(&name) {
            return Err(ValidateError::NotAManifestFile { path: shown });
        }
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let options = DirectoryOptions {
            recurse: false,
            include: Some(literal_glob(&name)),
            exclude: None,
        };
        inputs.files += 1;
        match render_directory(&parent, ".", &options) {
            Ok(manifests) => push_plain(inputs, &parent, Some(path), manifests),
            Err(e) => push_render_error(inputs, &parent, &shown, e)?,
        }
        return Ok(());
    }
    let probe = SourceRender {
        checkout_root: Some(path.to_path_buf()),
        path: ".".into(),
        ..SourceRender::default()
    };
    let source_type = detect_source_type(&probe).map_err(|source| ValidateError::Render {
        path: shown.clone(),
        source: Box::new(source),
    })?;
    match source_type {
        SourceType::Directory => tree::read_tree(path, inputs).await,
        SourceType::Kustomize | SourceType::Helm => read_rendered(path, inputs).await,
    }
}

/// Appends the manifests of plain files read from `root`. `file` is the path given when one
/// file was named.
fn push_plain(inputs: &mut Inputs, root: &Path, file: Option<&Path>, manifests: Vec<Manifest>) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for manifest in manifests {
        let (shown, disk) = match file {
            Some(f) => (f.display().to_string(), f.to_path_buf()),
            None => (
                display_join(root, &manifest.source_file),
                root.join(&manifest.source_file),
            ),
        };
        let index = counts.entry(shown.clone()).or_default();
        inputs.objects.push(Object {
            file: shown,
            disk: Some(disk),
            index: *index,
            line: manifest.line,
            unit: root.display().to_string(),
            app: String::new(),
            value: manifest.object,
        });
        *index += 1;
    }
}

/// Records a render error of plain files as a finding, or returns it when it is not one.
fn push_render_error(
    inputs: &mut Inputs,
    root: &Path,
    shown_path: &str,
    error: RenderError,
) -> Result<(), ValidateError> {
    match manifest_problem(&error) {
        Some((file, line, column)) => {
            inputs.findings.push(Finding {
                file: display_join(root, &file),
                line,
                column,
                object: String::new(),
                path: String::new(),
                message: render_message(&error, &file),
                app: String::new(),
            });
            Ok(())
        }
        None => Err(ValidateError::Render {
            path: shown_path.to_owned(),
            source: Box::new(error),
        }),
    }
}

/// The nearest enclosing Git checkout of `dir` (so Kustomize bases in `../base` resolve), or
/// `dir` itself; and `dir` relative to it.
fn checkout_of(dir: &Path) -> (PathBuf, String) {
    let Ok(full) = dir.canonicalize() else {
        return (dir.to_path_buf(), ".".into());
    };
    for ancestor in full.ancestors() {
        if ancestor.join(".git").exists() {
            let rel = full
                .strip_prefix(ancestor)
                .map(|r| r.to_string_lossy().into_owned())
                .unwrap_or_default();
            let rel = if rel.is_empty() { ".".into() } else { rel };
            return (ancestor.to_path_buf(), rel);
        }
    }
    (full, ".".into())
}

/// A Kustomize or Helm directory, rendered with the real tools.
async fn read_rendered(dir: &Path, inputs: &mut Inputs) -> Result<(), ValidateError> {
    let shown = dir.display().to_string();
    if inputs.tools.is_none() {
        let cache = tempfile::tempdir().map_err(|source| ValidateError::Render {
            path: shown.clone(),
            source: Box::new(RenderError::Io {
                path: "a temporary directory".into(),
                source,
            }),
        })?;
        let tools = RenderTools::new(cache.path());
        inputs.tools = Some((cache, tools));
    }
    let Some((_, tools)) = inputs.tools.as_ref() else {
        return Ok(());
    };
    let (root, app_path) = checkout_of(dir);
    let name = dir
        .canonicalize()
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "release".into());
    let request = SourceRender {
        app_name: name,
        namespace: "default".into(),
        checkout_root: Some(root.clone()),
        path: app_path.clone(),
        ..SourceRender::default()
    };
    let rendered = match render_source(tools, &request).await {
        Ok(rendered) => rendered,
        Err(e @ (RenderError::Tool { .. } | RenderError::Io { .. })) => {
            return Err(ValidateError::Render {
                path: shown,
                source: Box::new(e),
            });
        }
        Err(e) => {
            inputs.findings.push(Finding {
                file: shown,
                line: 0,
                column: 0,
                object: String::new(),
                path: String::new(),
                message: e.to_string(),
                app: String::new(),
            });
            return Ok(());
        }
    };
    // Files are shown relative to the path given: the renderer names them relative to the
    // checkout (Kustomize) or the chart (Helm).
    let prefix = if app_path == "." {
        String::new()
    } else {
        format!("{app_path}/")
    };
    let mut files: BTreeMap<String, usize> = BTreeMap::new();
    for manifest in rendered.manifests {
        let rel = manifest
            .source_file
            .strip_prefix(&prefix)
            .unwrap_or(&manifest.source_file);
        let file = match rendered.source_type {
            SourceType::Helm => {
                let in_chart = rel.split_once('/').map_or(rel, |(_, r)| r);
                display_join(dir, in_chart)
            }
            _ => display_join(dir, rel),
        };
        let index = files.entry(file.clone()).or_default();
        inputs.objects.push(Object {
            file,
            disk: None,
            index: *index,
            line: manifest.line,
            unit: shown.clone(),
            app: String::new(),
            value: manifest.object,
        });
        *index += 1;
    }
    inputs.files += files.len();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_globs() {
        assert_eq!(major_minor("v1.36.3"), "1.36");
        assert!(check_kubernetes_version("1.36").is_ok());
        assert!(check_kubernetes_version("").is_ok());
        let err = check_kubernetes_version("1.30").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no schemas for Kubernetes 1.30 are bundled with this ferry; bundled: 1.36; pass --kubernetes-version with one of them"
        );
        assert_eq!(literal_glob("a[1]*.yaml"), "a[[]1[]][*].yaml");
    }

    #[test]
    fn the_bundle_parses_and_knows_core_kinds() {
        let set = SchemaSet::from_bundle(SCHEMAS_1_36).unwrap();
        for (g, v, k) in [
            ("", "v1", "ConfigMap"),
            ("apps", "v1", "Deployment"),
            ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"),
        ] {
            assert!(set.lookup(&(g.into(), v.into(), k.into())).is_some(), "{k}");
        }
        assert_eq!(set.versions_of("apps", "Deployment"), ["v1"]);
    }

    #[test]
    fn findings_print_like_compilers() {
        let finding = Finding {
            file: "a.yaml".into(),
            line: 3,
            column: 5,
            object: "Deployment/web".into(),
            path: ".spec.replicas".into(),
            message: "expected integer, got string \"3\"".into(),
            app: String::new(),
        };
        assert_eq!(
            finding.to_string(),
            "a.yaml:3:5: Deployment/web: .spec.replicas: expected integer, got string \"3\""
        );
    }
}
