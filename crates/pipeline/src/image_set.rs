//! `ferry image set`: point every reference to an image at a new tag or digest, changing
//! nothing else in the files.
//!
//! [`set_images`] walks files and directories; [`set_images_in_source`] does one file's text.
//! Three kinds of files are understood, by name:
//!
//! - `kustomization.yaml`, `kustomization.yml`, `Kustomization`: the `images:` entries, as
//!   `kustomize edit set image` writes them (`newName`, `newTag`, `digest`; a stale `newTag` or
//!   `digest` is removed, a missing one added). An entry matches by `name` or by `newName`;
//! - `values*.yaml` / `values*.yml` (Helm values): at any depth, a mapping with `repository`
//!   (and optionally `registry`) and `tag` / `digest`, and `image: "repo:tag"` strings; or, with
//!   [`ImageSetOptions::values_path`], exactly the scalar at that dotted path;
//! - any other `.yaml` / `.yml`: the `containers`, `initContainers` and `ephemeralContainers`
//!   of Pods, Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs,
//!   CronJobs, PodTemplates and Argo Rollouts, also inside a `List`'s `items`.
//!
//! Only the bytes of the changed scalars change: each target scalar's byte span comes from the
//! YAML parser and the new text is spliced into the original. The new value keeps the
//! original's quoting (plain, single, double); a plain value is double-quoted only when plain
//! text would read as something else (`1.27` would be a number).

use std::path::{Path, PathBuf};

use crate::image::{ImageRef, ImageUpdate, normalize_name};
use crate::yaml::{
    Edit, MapNode, Node, Scalar, apply_edits, insert_entry, parse_documents, remove_entry,
    render_scalar,
};

/// What to change and how.
#[derive(Clone, Debug, Default)]
pub struct ImageSetOptions {
    /// The images to update; no two may name the same image.
    pub updates: Vec<ImageUpdate>,
    /// In Helm values files, update exactly this dotted path (`image.tag`, `a.b.tag`) instead of
    /// looking for `repository`/`tag` pairs. Needs exactly one update.
    pub values_path: Option<String>,
    /// Compute and report the changes without writing any file.
    pub dry_run: bool,
}

/// One changed (or added, or removed) field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageChange {
    /// The file.
    pub file: PathBuf,
    /// Where in the file: `spec.template.spec.containers[0].image`, prefixed by
    /// `(document N) ` in a file of several documents.
    pub field: String,
    /// The old value (`(none)` when the field was added).
    pub old: String,
    /// The new value (`(removed)` when the field was removed).
    pub new: String,
}

impl std::fmt::Display for ImageChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: {} {} → {}",
            self.file.display(),
            self.field,
            self.old,
            self.new
        )
    }
}

/// The outcome of one file's text.
#[derive(Clone, Debug, Default)]
pub struct FileUpdate {
    /// The new text (equal to the old one when nothing changed).
    pub text: String,
    /// The changes, in file order.
    pub changes: Vec<ImageChange>,
    /// For each of [`ImageSetOptions::updates`], whether some reference matched it (even if it
    /// already had the new value).
    pub matched: Vec<bool>,
}

/// The outcome of [`set_images`].
#[derive(Clone, Debug, Default)]
pub struct ImageSetReport {
    /// Every change, file by file.
    pub changes: Vec<ImageChange>,
    /// The files written (none on a dry run).
    pub files_written: Vec<PathBuf>,
    /// The names of the updates that matched nothing in any file.
    pub unmatched: Vec<String>,
    /// Files of a directory walk that were skipped (not YAML that parses, e.g. Helm templates),
    /// with why.
    pub skipped: Vec<(PathBuf, String)>,
}

/// Why `ferry image set` could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum ImageSetError {
    /// The options do not make sense together.
    #[error("{0}")]
    InvalidOptions(String),
    /// A path given on the command line does not exist or cannot be read.
    #[error("reading {path}: {source}; check the path")]
    Read {
        /// The path.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// A file named on the command line is not valid YAML.
    #[error("{path} is not valid YAML: {message}; fix the file or leave it out")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A matching field could not be changed in place.
    #[error("{path}: cannot update {field}: {message}")]
    Edit {
        /// The file.
        path: PathBuf,
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
    /// Writing the new file failed.
    #[error("writing {path}: {source}; check that it is writable")]
    Write {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
}

/// How a file is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A Kustomization (`images:` entries).
    Kustomization,
    /// Helm values.
    HelmValues,
    /// Kubernetes manifests.
    Manifests,
}

impl FileKind {
    /// The kind of a file, by its name; `None` when it is not YAML ferry edits.
    pub fn of(path: &Path) -> Option<FileKind> {
        let name = path.file_name()?.to_str()?;
        if matches!(
            name,
            "kustomization.yaml" | "kustomization.yml" | "Kustomization"
        ) {
            return Some(FileKind::Kustomization);
        }
        let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
        if !yaml {
            return None;
        }
        if name.starts_with("values") {
            Some(FileKind::HelmValues)
        } else {
            Some(FileKind::Manifests)
        }
    }
}

/// Updates the image references in `paths` (files, or directories walked recursively, skipping
/// hidden entries and symbolic links) and writes the files that changed, unless
/// [`ImageSetOptions::dry_run`].
///
/// A file named explicitly that is not valid YAML is an error; one found by walking a directory
/// is skipped and listed in [`ImageSetReport::skipped`] (a Helm chart's templates are not YAML).
/// Files are written only after every file was worked out, so an error writes nothing.
pub fn set_images(
    paths: &[PathBuf],
    options: &ImageSetOptions,
) -> Result<ImageSetReport, ImageSetError> {
    check_options(options)?;
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::symlink_metadata(path).map_err(|source| ImageSetError::Read {
            path: path.clone(),
            source,
        })?;
        if meta.is_dir() {
            walk(path, &mut files).map_err(|source| ImageSetError::Read {
                path: path.clone(),
                source,
            })?;
        } else {
            files.push((path.clone(), true));
        }
    }
    let mut report = ImageSetReport::default();
    let mut matched = vec![false; options.updates.len()];
    let mut pending = Vec::new();
    for (path, explicit) in files {
        let source = match std::fs::read_to_string(&path) {
            Ok(s) => s,
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::InvalidData => {
                report.skipped.push((path, "not UTF-8 text".into()));
                continue;
            }
            Err(source) => return Err(ImageSetError::Read { path, source }),
        };
        let update = match set_images_in_source(&path, &source, options) {
            Ok(u) => u,
            Err(ImageSetError::Parse { message, .. }) if !explicit => {
                tracing::debug!(path = %path.display(), %message, "skipping a file that is not YAML");
                report.skipped.push((path, message));
                continue;
            }
            Err(e) => return Err(e),
        };
        for (m, found) in matched.iter_mut().zip(&update.matched) {
            *m |= *found;
        }
        if update.text != source {
            pending.push((path, update.text));
        }
        report.changes.extend(update.changes);
    }
    // Write only once every file has been worked out: an error leaves all files as they were.
    if !options.dry_run {
        for (path, text) in pending {
            write_file(&path, &text)?;
            report.files_written.push(path);
        }
    }
    report.unmatched = options
        .updates
        .iter()
        .zip(&matched)
        .filter(|(_, m)| !**m)
        .map(|(u, _)| u.name.clone())
        .collect();
    Ok(report)
}

fn check_options(options: &ImageSetOptions) -> Result<(), ImageSetError> {
    if options.updates.is_empty() {
        return Err(ImageSetError::InvalidOptions(
            "no --image given: name at least one image to update".into(),
        ));
    }
    for (i, a) in options.updates.iter().enumerate() {
        if let Some(b) = options.updates[..i]
            .iter()
            .find(|b| normalize_name(&b.name) == normalize_name(&a.name))
        {
            return Err(ImageSetError::InvalidOptions(format!(
                "--image {} and --image {} name the same image; give each image once",
                b.name, a.name
            )));
        }
    }
    if let Some(path) = &options.values_path {
        if options.updates.len() != 1 {
            return Err(ImageSetError::InvalidOptions(
                "--values-path needs exactly one --image (it says where that image's tag is)"
                    .into(),
            ));
        }
        if path.is_empty() || path.split('.').any(str::is_empty) {
            return Err(ImageSetError::InvalidOptions(format!(
                "--values-path {path:?} is not a dotted path such as image.tag"
            )));
        }
    }
    Ok(())
}

fn walk(dir: &Path, files: &mut Vec<(PathBuf, bool)>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let kind = entry.file_type()?;
        let path = entry.path();
        if kind.is_dir() {
            walk(&path, files)?;
        } else if kind.is_file() && FileKind::of(&path).is_some() {
            files.push((path, false));
        }
    }
    Ok(())
}

/// Replaces the file through a temporary file in the same directory, keeping its permissions.
fn write_file(path: &Path, text: &str) -> Result<(), ImageSetError> {
    let err = |source| ImageSetError::Write {
        path: path.to_owned(),
        source,
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let perms = std::fs::metadata(path).map_err(err)?.permissions();
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(err)?;
    std::io::Write::write_all(&mut tmp, text.as_bytes()).map_err(err)?;
    std::fs::set_permissions(tmp.path(), perms).map_err(err)?;
    tmp.persist(path).map_err(|e| err(e.error))?;
    Ok(())
}

/// Updates the image references in one file's text. `path` decides how the file is read (see
/// [`FileKind::of`]; a name ferry does not know is read as manifests) and names the file in
/// the changes.
pub fn set_images_in_source(
    path: &Path,
    source: &str,
    options: &ImageSetOptions,
) -> Result<FileUpdate, ImageSetError> {
    check_options(options)?;
    let documents = parse_documents(source).map_err(|e| ImageSetError::Parse {
        path: path.to_owned(),
        message: e.0,
    })?;
    let mut c = Collector {
        path,
        source,
        options,
        edits: Vec::new(),
        changes: Vec::new(),
        matched: vec![false; options.updates.len()],
        prefix: String::new(),
    };
    let kind = FileKind::of(path).unwrap_or(FileKind::Manifests);
    for (i, doc) in documents.iter().enumerate() {
        c.prefix = if documents.len() > 1 {
            format!("(document {}) ", i + 1)
        } else {
            String::new()
        };
        match kind {
            FileKind::Kustomization => c.kustomization(doc)?,
            FileKind::HelmValues => match &options.values_path {
                Some(p) => c.values_path(doc, p)?,
                None => c.values(doc, "")?,
            },
            FileKind::Manifests => c.manifest(doc, "")?,
        }
    }
    let text = apply_edits(source, &c.edits).map_err(|message| ImageSetError::Edit {
        path: path.to_owned(),
        field: "the file".into(),
        message,
    })?;
    Ok(FileUpdate {
        text,
        changes: c.changes,
        matched: c.matched,
    })
}

/// Pod spec locations by kind.
fn pod_spec_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &["spec"],
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job"
        | "Rollout" => &["spec", "template", "spec"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template", "spec"],
        "PodTemplate" => &["template", "spec"],
        _ => return None,
    })
}

fn join_field(at: &str, key: &str) -> String {
    if at.is_empty() {
        key.to_owned()
    } else {
        format!("{at}.{key}")
    }
}

struct Collector<'a> {
    path: &'a Path,
    source: &'a str,
    options: &'a ImageSetOptions,
    edits: Vec<Edit>,
    changes: Vec<ImageChange>,
    matched: Vec<bool>,
    prefix: String,
}

impl Collector<'_> {
    fn field(&self, field: &str) -> String {
        format!("{}{field}", self.prefix)
    }

    fn edit_error(&self, field: &str, message: String) -> ImageSetError {
        ImageSetError::Edit {
            path: self.path.to_owned(),
            field: self.field(field),
            message,
        }
    }

    fn record(&mut self, field: &str, old: &str, new: &str) {
        self.changes.push(ImageChange {
            file: self.path.to_owned(),
            field: self.field(field),
            old: old.to_owned(),
            new: new.to_owned(),
        });
    }

    /// Sets `scalar` to `value` (when it differs), keeping its quoting style.
    fn set_scalar(
        &mut self,
        field: &str,
        scalar: &Scalar,
        value: &str,
    ) -> Result<(), ImageSetError> {
        if scalar.value == value {
            return Ok(());
        }
        let text = render_scalar(scalar, value).map_err(|m| self.edit_error(field, m))?;
        self.edits.push(Edit {
            range: scalar.span.clone(),
            text,
        });
        let old = scalar.value.clone();
        self.record(field, &old, value);
        Ok(())
    }

    /// The update that matches `name`, marking it matched.
    fn find_update(&mut self, name: &str) -> Option<&'_ ImageUpdate> {
        let i = self.options.updates.iter().position(|u| u.matches(name))?;
        self.matched[i] = true;
        Some(&self.options.updates[i])
    }

    /// An `image: name:tag` scalar.
    fn image_string(&mut self, field: &str, node: &Node) -> Result<(), ImageSetError> {
        let Node::Scalar(scalar) = node else {
            return Ok(());
        };
        let Some(old) = ImageRef::parse(&scalar.value) else {
            return Ok(());
        };
        let Some(update) = self.find_update(&old.name) else {
            return Ok(());
        };
        let new = update.rewrite(&old).to_string();
        self.set_scalar(field, scalar, &new)
    }

    fn manifest(&mut self, doc: &Node, at: &str) -> Result<(), ImageSetError> {
        let Some(kind) = doc.get("kind").and_then(Node::as_str) else {
            return Ok(());
        };
        if kind == "List" || kind.ends_with("List") {
            if let Some(Node::Seq(items)) = doc.get("items") {
                for (i, item) in items.iter().enumerate() {
                    self.manifest(item, &format!("{at}items[{i}]."))?;
                }
            }
            return Ok(());
        }
        let Some(path) = pod_spec_path(kind) else {
            return Ok(());
        };
        let mut spec = doc;
        for key in path {
            match spec.get(key) {
                Some(next) => spec = next,
                None => return Ok(()),
            }
        }
        let base = format!("{at}{}", path.join("."));
        for list in ["initContainers", "containers", "ephemeralContainers"] {
            let Some(Node::Seq(containers)) = spec.get(list) else {
                continue;
            };
            for (i, container) in containers.iter().enumerate() {
                if let Some(image) = container.get("image") {
                    self.image_string(&format!("{base}.{list}[{i}].image"), image)?;
                }
            }
        }
        Ok(())
    }

    fn kustomization(&mut self, doc: &Node) -> Result<(), ImageSetError> {
        let Some(Node::Seq(images)) = doc.get("images") else {
            return Ok(());
        };
        for (i, entry) in images.iter().enumerate() {
            let Node::Map(map) = entry else { continue };
            let field = format!("images[{i}]");
            let name = map.get("name").and_then(Node::as_str).unwrap_or_default();
            let new_name = map.get("newName").and_then(Node::as_str);
            let Some(index) = self
                .options
                .updates
                .iter()
                .position(|u| u.matches(name) || new_name.is_some_and(|n| u.matches(n)))
            else {
                continue;
            };
            self.matched[index] = true;
            let update = self.options.updates[index].clone();
            let current = new_name.unwrap_or(name);
            if normalize_name(&update.new.name) != normalize_name(current) {
                self.set_or_insert(map, &field, "newName", &update.new.name)?;
            }
            match &update.new.tag {
                Some(tag) => self.set_or_insert(map, &field, "newTag", tag)?,
                None => self.remove(map, &field, "newTag")?,
            }
            match &update.new.digest {
                Some(digest) => self.set_or_insert(map, &field, "digest", digest)?,
                None => self.remove(map, &field, "digest")?,
            }
        }
        Ok(())
    }

    fn set_or_insert(
        &mut self,
        map: &MapNode,
        at: &str,
        key: &str,
        value: &str,
    ) -> Result<(), ImageSetError> {
        let field = join_field(at, key);
        match map.get(key) {
            Some(Node::Scalar(s)) => self.set_scalar(&field, s, value),
            Some(_) => Err(self.edit_error(&field, "it is not a scalar".into())),
            None => {
                let edit = insert_entry(self.source, map, key, value)
                    .map_err(|m| self.edit_error(&field, m))?;
                self.edits.push(edit);
                self.record(&field, "(none)", value);
                Ok(())
            }
        }
    }

    fn remove(&mut self, map: &MapNode, at: &str, key: &str) -> Result<(), ImageSetError> {
        let Some((key_scalar, value)) = map.entry(key) else {
            return Ok(());
        };
        let field = join_field(at, key);
        let edit = remove_entry(self.source, map, key_scalar, value)
            .map_err(|m| self.edit_error(&field, m))?;
        self.edits.push(edit);
        let old = value.as_str().unwrap_or("…").to_owned();
        self.record(&field, &old, "(removed)");
        Ok(())
    }

    /// Helm values: `repository`/`tag` pairs and `image: repo:tag` strings at any depth.
    fn values(&mut self, node: &Node, at: &str) -> Result<(), ImageSetError> {
        match node {
            Node::Scalar(_) => Ok(()),
            Node::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.values(item, &format!("{at}[{i}]"))?;
                }
                Ok(())
            }
            Node::Map(map) => {
                let dot = if at.is_empty() { "" } else { "." };
                if let Some(Node::Scalar(repository)) = map.get("repository") {
                    self.values_repository(map, repository, at)?;
                }
                for (key, value) in &map.entries {
                    let Some(key) = key.as_str() else { continue };
                    let field = format!("{at}{dot}{key}");
                    if key == "image" && matches!(value, Node::Scalar(_)) {
                        self.image_string(&field, value)?;
                    } else {
                        self.values(value, &field)?;
                    }
                }
                Ok(())
            }
        }
    }

    fn values_repository(
        &mut self,
        map: &MapNode,
        repository: &Scalar,
        at: &str,
    ) -> Result<(), ImageSetError> {
        let registry = match map.get("registry") {
            Some(Node::Scalar(r)) if !r.value.is_empty() => Some(r),
            _ => None,
        };
        let name = match registry {
            Some(r) => format!("{}/{}", r.value, repository.value),
            None => repository.value.clone(),
        };
        if ImageRef::parse(&name).is_none_or(|r| r.tag.is_some() || r.digest.is_some()) {
            return Ok(());
        }
        let Some(update) = self.find_update(&name).cloned() else {
            return Ok(());
        };
        let dot = if at.is_empty() { "" } else { "." };
        if update.renames() {
            match registry {
                Some(registry) => {
                    let (host, path) = update
                        .new
                        .name
                        .split_once('/')
                        .filter(|(h, _)| h.contains(['.', ':']) || *h == "localhost")
                        .unwrap_or(("docker.io", &update.new.name));
                    self.set_scalar(&format!("{at}{dot}registry"), registry, host)?;
                    self.set_scalar(&format!("{at}{dot}repository"), repository, path)?;
                }
                None => self.set_scalar(
                    &format!("{at}{dot}repository"),
                    repository,
                    &update.new.name,
                )?,
            }
        }
        if let Some(tag) = &update.new.tag {
            self.set_or_insert(map, at, "tag", tag)?;
        }
        if let Some(digest) = &update.new.digest {
            match map.get("digest") {
                Some(Node::Scalar(s)) => {
                    self.set_scalar(&format!("{at}{dot}digest"), s, digest)?;
                }
                _ if update.new.tag.is_some() => {
                    tracing::warn!(
                        file = %self.path.display(),
                        field = at,
                        "no `digest` next to `repository`: only the tag was set"
                    );
                }
                _ => {
                    return Err(self.edit_error(
                        at,
                        "there is no `digest` field next to `repository`; \
                         use --values-path to say where the digest goes"
                            .into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Helm values with an explicit `--values-path`.
    fn values_path(&mut self, doc: &Node, path: &str) -> Result<(), ImageSetError> {
        let keys: Vec<&str> = path.split('.').collect();
        let (last, parents) = keys.split_last().expect("checked non-empty");
        let mut parent = doc;
        for key in parents {
            match parent.get(key) {
                Some(next) => parent = next,
                None => return Ok(()),
            }
        }
        let Some(Node::Scalar(target)) = parent.get(last) else {
            return Ok(());
        };
        let update = self.options.updates[0].clone();
        // When the value sits next to a `repository`, that must be the image.
        if let Some(repository) = parent.get("repository").and_then(Node::as_str)
            && !update.matches(repository)
        {
            return Ok(());
        }
        self.matched[0] = true;
        let value = update
            .new
            .tag
            .clone()
            .or_else(|| update.new.digest.clone())
            .unwrap_or_default();
        self.set_scalar(path, target, &value)
    }
}
