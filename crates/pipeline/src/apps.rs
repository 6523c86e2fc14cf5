//! Argo CD Applications in a repository, rendered exactly as the engine renders them: what
//! `ferry validate --apps` checks and what `ferry preview` compares.
//!
//! - [`find_applications`] reads the plain manifest files under a folder of a checkout (the
//!   tree rules of `validate::tree`: Kustomize roots and charts are not read as plain files),
//!   builds its Kustomize folders, and returns every `argoproj.io` `Application` with its file
//!   and line.
//! - [`AppRenderer`] renders an app's sources with the engine's code: the request is built by
//!   [`ferry_source::render::application::source_render`] (as the controller builds it) and
//!   rendered by [`ferry_source::render::render_source`]. A source whose `repoURL` is *this*
//!   repository ([`ThisRepo`]) is rendered from the given checkout, whatever its
//!   `targetRevision`; another Git repository is fetched through a [`RepoCache`] at its
//!   `targetRevision`; a chart repository is pulled by `helm`, as the engine does.
//! - [`AppRenderer::inputs_key`] says what an app's render depends on (its spec and the content
//!   of the files it reads), so that an app whose inputs are the same at two revisions is
//!   rendered once.

use std::collections::{BTreeMap, HashMap};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ferry_core::RepoUrl;
use ferry_core::application::{Application, ApplicationSource};
use ferry_source::git::{Credentials, RepoCache};
use ferry_source::render::application::{is_ref_only, source_render};
use ferry_source::render::source::detect_source_type;
use ferry_source::render::{
    DirectoryOptions, HelmOptions, Manifest, RenderTools, SourceType, render_directory,
    render_source,
};
use futures::StreamExt;
use serde_json::Value;

use crate::git::query_repo;
use crate::validate::literal_glob;
use crate::validate::tree::{Unit, kustomize_inputs, lexical_join, plan_tree};

/// An Application found in a repository.
#[derive(Clone, Debug)]
pub struct FoundApp {
    /// `metadata.name`.
    pub name: String,
    /// Where it is defined: a file relative to the repository root, or for a child of an
    /// App-of-Apps, `rendered by APP (file)`.
    pub origin: String,
    /// The line its document starts on (0 for a rendered child).
    pub line: usize,
    /// The Application.
    pub app: Application,
}

/// Why apps could not be found or rendered.
#[derive(Debug, thiserror::Error)]
pub enum AppsError {
    /// A file could not be read as manifests.
    #[error("{0}")]
    Read(String),
    /// An Application does not have the shape of one.
    #[error("{origin}: Application {name:?} cannot be read: {message}")]
    Malformed {
        /// Where it is.
        origin: String,
        /// Its name.
        name: String,
        /// What serde said.
        message: String,
    },
    /// A source could not be fetched or rendered.
    #[error("app {app}: {message}")]
    Render {
        /// The app.
        app: String,
        /// What went wrong, naming the source and the file where known.
        message: String,
    },
}

/// Whether `object` is an Argo CD Application.
pub fn is_application(object: &Value) -> bool {
    object.get("kind").and_then(Value::as_str) == Some("Application")
        && object
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v.starts_with("argoproj.io/"))
}

/// Reads an Application object found at `origin`.
pub fn read_application(object: &Value, origin: &str, line: usize) -> Result<FoundApp, AppsError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let app: Application =
        serde_json::from_value(object.clone()).map_err(|e| AppsError::Malformed {
            origin: origin.to_owned(),
            name: name.clone(),
            message: e.to_string(),
        })?;
    Ok(FoundApp {
        name,
        origin: origin.to_owned(),
        line,
        app,
    })
}

/// Every Application under `under` (relative to `root`, `.` for all), in file order: in its
/// plain manifest files, and in what its Kustomize folders build (`under` itself included, as
/// with an `apps/kustomization.yaml` that lists the app files). Charts are not rendered for
/// this; a Kustomization with remote resources is not built (it needs the network).
pub async fn find_applications(
    tools: &RenderTools,
    root: &Path,
    under: &str,
) -> Result<Vec<FoundApp>, AppsError> {
    let under = under.trim_matches('/');
    let under = if under.is_empty() || under == "." {
        ""
    } else {
        under
    };
    let top = if under.is_empty() {
        root.to_path_buf()
    } else {
        root.join(under)
    };
    let units = if ferry_source::render::kustomize::kustomization_file(&top).is_some() {
        vec![Unit::Kustomize(String::new())]
    } else {
        plan_tree(&top).map_err(|e| AppsError::Read(format!("reading {under}: {e}")))?
    };
    let rel_of = |dir: &str| match (under, dir) {
        ("", "") => ".".to_owned(),
        ("", d) => d.to_owned(),
        (u, "") => u.to_owned(),
        (u, d) => format!("{u}/{d}"),
    };
    let mut out = Vec::new();
    for unit in units {
        match unit {
            Unit::Plain {
                dir, left_alone, ..
            } => {
                let exclude = (!left_alone.is_empty()).then(|| {
                    let names: Vec<String> = left_alone.iter().map(|n| literal_glob(n)).collect();
                    format!("{{{}}}", names.join(","))
                });
                let options = DirectoryOptions {
                    recurse: false,
                    include: None,
                    exclude,
                };
                let manifests = render_directory(root, &rel_of(&dir), &options)
                    .map_err(|e| AppsError::Read(e.to_string()))?;
                for m in manifests.iter().filter(|m| is_application(&m.object)) {
                    out.push(read_application(&m.object, &m.source_file, m.line)?);
                }
            }
            Unit::Kustomize(dir) => {
                let rel = rel_of(&dir);
                let request = ferry_source::render::SourceRender {
                    checkout_root: Some(root.to_path_buf()),
                    path: rel.clone(),
                    kustomize: None,
                    ..Default::default()
                };
                let rendered = render_source(tools, &request)
                    .await
                    .map_err(|e| AppsError::Read(format!("building {rel} with kustomize: {e}")))?;
                for m in rendered
                    .manifests
                    .iter()
                    .filter(|m| is_application(&m.object))
                {
                    let origin = format!("{rel} (kustomize build)");
                    out.push(read_application(&m.object, &origin, m.line)?);
                }
            }
            Unit::Helm(_) | Unit::Remote(..) => {}
        }
    }
    Ok(out)
}

/// The repository being worked on, checked out at one revision.
#[derive(Clone, Debug)]
pub struct ThisRepo {
    /// The URLs that name this repository.
    pub urls: Vec<RepoUrl>,
    /// The checkout.
    pub root: PathBuf,
}

impl ThisRepo {
    /// Whether `repo_url` names this repository.
    pub fn is(&self, repo_url: &str) -> bool {
        let url = RepoUrl::new(repo_url);
        self.urls.contains(&url)
    }
}

/// The URLs of the clone's remotes, normalized.
pub async fn remote_urls(root: &Path) -> Vec<RepoUrl> {
    query_repo(root, &["config", "--get-regexp", r"^remote\..*\.url$"])
        .await
        .map(|out| {
            out.lines()
                .filter_map(|l| l.split_once(' ').map(|(_, url)| RepoUrl::new(url)))
                .collect()
        })
        .unwrap_or_default()
}

/// What one app rendered: its manifests, and the source type each came from.
#[derive(Clone, Debug, Default)]
pub struct Rendered {
    /// The objects of all its sources.
    pub manifests: Vec<Manifest>,
    /// The source type of each manifest (same order).
    pub source_types: Vec<SourceType>,
}

/// What one app rendered, or why it did not.
pub type RenderResult = Result<Arc<Rendered>, String>;

/// Why an app was not rendered offline (a note, not a finding).
pub const OFFLINE_PREFIX: &str = "not rendered offline: ";

/// Renders apps with the engine's code, each distinct set of inputs once.
pub struct AppRenderer {
    tools: RenderTools,
    repos: RepoCache,
    renders: AtomicUsize,
    cache: tokio::sync::Mutex<HashMap<String, RenderResult>>,
    offline: bool,
}

/// A source ready to render: its checkout (for Git) and revision.
struct Located<'a> {
    source: &'a ApplicationSource,
    checkout: Option<PathBuf>,
    revision: String,
    this_repo: bool,
}

impl AppRenderer {
    /// A renderer with `tools` and a repository cache under `cache_dir` for sources of other
    /// repositories.
    pub fn new(tools: RenderTools, cache_dir: &Path) -> Self {
        Self {
            tools,
            repos: RepoCache::with_timeout(cache_dir.join("repos"), Duration::from_secs(120)),
            renders: AtomicUsize::new(0),
            cache: tokio::sync::Mutex::new(HashMap::new()),
            offline: false,
        }
    }

    /// Renders nothing that needs the network: a source of another repository, a chart
    /// repository or a Kustomization with remote resources gives an error starting with
    /// [`OFFLINE_PREFIX`] instead.
    pub fn offline(mut self) -> Self {
        self.offline = true;
        self
    }

    /// How many times a source was rendered.
    pub fn render_count(&self) -> usize {
        self.renders.load(Ordering::SeqCst)
    }

    async fn locate<'a>(
        &self,
        app: &FoundApp,
        source: &'a ApplicationSource,
        repo: &ThisRepo,
    ) -> Result<Located<'a>, AppsError> {
        let fail = |message: String| AppsError::Render {
            app: app.name.clone(),
            message,
        };
        if self.offline && !repo.is(&source.repo_url) {
            return Err(fail(format!(
                "{OFFLINE_PREFIX}its source {} is not this repository (give --repo-url if it is)",
                source.repo_url
            )));
        }
        if source.chart.as_deref().is_some_and(|c| !c.is_empty()) {
            return Ok(Located {
                source,
                checkout: None,
                revision: source.target_revision.clone().unwrap_or_default(),
                this_repo: false,
            });
        }
        if repo.is(&source.repo_url) {
            return Ok(Located {
                source,
                checkout: Some(repo.root.clone()),
                revision: String::new(),
                this_repo: true,
            });
        }
        let url = &source.repo_url;
        let sha = self
            .repos
            .resolve_fresh(
                url,
                &Credentials::none(),
                source.target_revision_or_head(),
                Duration::from_secs(3600),
            )
            .await
            .map_err(|e| fail(format!("fetching {url}: {e}")))?;
        let root = self
            .repos
            .checkout(url, &sha)
            .await
            .map_err(|e| fail(format!("checking out {url}: {e}")))?;
        Ok(Located {
            source,
            checkout: Some(root),
            revision: sha,
            this_repo: false,
        })
    }

    async fn locate_all<'a>(
        &self,
        app: &'a FoundApp,
        repo: &ThisRepo,
    ) -> Result<(Vec<Located<'a>>, BTreeMap<String, PathBuf>), AppsError> {
        // The engine's rules about sources (core's spec rules); the destination does not matter
        // for rendering.
        let problems: Vec<String> = ferry_core::application::spec_problems(&app.app.spec)
            .iter()
            .filter(|p| p.field != ferry_core::application::SpecField::Destination)
            .map(ToString::to_string)
            .collect();
        if !problems.is_empty() {
            return Err(AppsError::Render {
                app: app.name.clone(),
                message: format!("{}: {}", app.origin, problems.join("; ")),
            });
        }
        let sources = app.app.spec.effective_sources();
        let mut value_refs = BTreeMap::new();
        let mut located = Vec::new();
        for source in sources {
            let l = self.locate(app, source, repo).await?;
            if let (Some(name), Some(root)) = (&source.ref_, &l.checkout) {
                value_refs.insert(name.clone(), root.clone());
            }
            located.push(l);
        }
        Ok((located, value_refs))
    }

    /// What the render of `app` depends on, as a string: equal keys render equally. Its spec,
    /// and for each source of this repository the content of what it reads (a directory's
    /// files; a Kustomization's files and bases; a chart and the value files of its `ref`
    /// sources, that is the whole checkout); for another repository its commit.
    pub async fn inputs_key(&self, app: &FoundApp, repo: &ThisRepo) -> Result<String, AppsError> {
        let (located, value_refs) = self.locate_all(app, repo).await?;
        let mut hasher = DefaultHasher::new();
        let spec = serde_json::to_string(&app.app.spec).unwrap_or_default();
        (app.name.as_str(), spec.as_str()).hash(&mut hasher);
        for l in &located {
            l.revision.hash(&mut hasher);
            let Some(root) = l.checkout.as_ref().filter(|_| l.this_repo) else {
                continue;
            };
            let request = source_render(
                &app.app,
                l.source,
                Some(root.clone()),
                "",
                &value_refs,
                Credentials::none(),
            );
            let path = request.path.trim_matches('/').to_owned();
            let dir = if path.is_empty() || path == "." {
                root.clone()
            } else {
                root.join(&path)
            };
            match detect_source_type(&request) {
                Ok(SourceType::Directory) => hash_path(root, &dir, &mut hasher),
                Ok(SourceType::Kustomize) => {
                    let inputs = kustomize_inputs(&dir);
                    let abs_root = std::path::absolute(root).unwrap_or_else(|_| root.clone());
                    let inside = inputs.local.iter().all(|p| p.starts_with(&abs_root));
                    if inputs.unknown || !inside {
                        hash_path(root, root, &mut hasher);
                    } else {
                        for p in &inputs.local {
                            hash_path(&abs_root, p, &mut hasher);
                        }
                    }
                    inputs.remote.hash(&mut hasher);
                }
                Ok(SourceType::Helm) => {
                    // The chart folder, and the value files and file parameters it is given
                    // (relative to the chart; `$ref/…` ones in a checkout: all of it counts).
                    hash_path(root, &dir, &mut hasher);
                    let options =
                        HelmOptions::from_json(l.source.helm.as_ref()).unwrap_or_default();
                    let files = options
                        .value_files
                        .iter()
                        .chain(options.file_parameters.iter().map(|p| &p.path));
                    for file in files {
                        if file.starts_with('$') {
                            for ref_root in value_refs.values() {
                                hash_path(ref_root, ref_root, &mut hasher);
                            }
                        } else if !file.contains("://") {
                            hash_path(root, &lexical_join(&dir, file), &mut hasher);
                        }
                    }
                }
                // Value files of other sources, or a render that will fail: everything counts.
                _ => hash_path(root, root, &mut hasher),
            }
        }
        Ok(format!("{}:{:016x}", app.name, hasher.finish()))
    }

    /// Renders every source of `app` (once per distinct [`inputs_key`](Self::inputs_key)):
    /// the manifests of all sources, or what went wrong.
    pub async fn render(
        &self,
        app: &FoundApp,
        repo: &ThisRepo,
    ) -> Result<Arc<Rendered>, AppsError> {
        let key = self.inputs_key(app, repo).await?;
        if let Some(done) = self.cache.lock().await.get(&key) {
            return done.clone().map_err(|message| AppsError::Render {
                app: app.name.clone(),
                message,
            });
        }
        let result = self.render_now(app, repo).await;
        self.cache.lock().await.insert(key, result.clone());
        result.map_err(|message| AppsError::Render {
            app: app.name.clone(),
            message,
        })
    }

    async fn render_now(&self, app: &FoundApp, repo: &ThisRepo) -> RenderResult {
        let (located, value_refs) = self.locate_all(app, repo).await.map_err(|e| match e {
            AppsError::Render { message, .. } => message,
            other => other.to_string(),
        })?;
        let mut out = Rendered::default();
        for l in located {
            if is_ref_only(l.source) {
                continue;
            }
            if self.offline
                && let Some(root) = &l.checkout
            {
                let path = l.source.path.as_deref().unwrap_or(".");
                let remote = kustomize_inputs(&root.join(path)).remote;
                if ferry_source::render::kustomize::kustomization_file(&root.join(path)).is_some()
                    && !remote.is_empty()
                {
                    return Err(format!(
                        "{OFFLINE_PREFIX}{path}: its kustomization names remote resources ({})",
                        remote.join(", ")
                    ));
                }
            }
            let request = source_render(
                &app.app,
                l.source,
                l.checkout,
                &l.revision,
                &value_refs,
                Credentials::none(),
            );
            self.renders.fetch_add(1, Ordering::SeqCst);
            let rendered = render_source(&self.tools, &request).await.map_err(|e| {
                let path = l.source.path.as_deref().unwrap_or(".");
                let what = match &l.source.chart {
                    Some(chart) => format!("chart {chart} of {}", l.source.repo_url),
                    None if l.this_repo => format!("path {path}"),
                    None => format!("{} path {path}", l.source.repo_url),
                };
                format!("{} ({what}): {e}", app.origin)
            })?;
            out.source_types
                .extend(rendered.manifests.iter().map(|_| rendered.source_type));
            out.manifests.extend(rendered.manifests);
        }
        Ok(Arc::new(out))
    }
}

/// How many apps [`render_reachable`] renders at a time.
pub const RENDER_CONCURRENCY: usize = 4;

/// One app found under a folder or rendered by another, and its render.
pub struct ReachedApp {
    /// The app.
    pub found: FoundApp,
    /// Its render, or why it failed.
    pub result: Result<Arc<Rendered>, String>,
}

/// Every app reachable from the Applications under `path` of `repo`: those found in its files
/// and, in turn, the Applications their renders produce (App-of-Apps). By name; the first app
/// of a name wins. Also returns problems outside any one app (a file that does not parse).
pub async fn render_reachable(
    renderer: &AppRenderer,
    repo: &ThisRepo,
    path: &str,
) -> (BTreeMap<String, ReachedApp>, Vec<String>) {
    let mut errors = Vec::new();
    let mut queue: std::collections::VecDeque<FoundApp> =
        match find_applications(&renderer.tools, &repo.root, path).await {
            Ok(found) => found.into(),
            Err(e) => {
                errors.push(e.to_string());
                Default::default()
            }
        };
    let mut out: BTreeMap<String, ReachedApp> = BTreeMap::new();
    // Wave by wave (the apps found, then the children their renders produced, ...), a few
    // renders at a time; results are taken in queue order, so the first app of a name wins.
    while !queue.is_empty() {
        let mut wave = Vec::new();
        let mut names = std::collections::BTreeSet::new();
        for found in queue.drain(..) {
            if !out.contains_key(&found.name) && names.insert(found.name.clone()) {
                wave.push(found);
            }
        }
        let results: Vec<(FoundApp, Result<Arc<Rendered>, AppsError>)> =
            futures::stream::iter(wave.into_iter().map(|found| async move {
                let result = renderer.render(&found, repo).await;
                (found, result)
            }))
            .buffered(RENDER_CONCURRENCY)
            .collect()
            .await;
        for (found, result) in results {
            let result = match result {
                Ok(rendered) => {
                    for m in rendered
                        .manifests
                        .iter()
                        .filter(|m| is_application(&m.object))
                    {
                        let origin = format!("{} (rendered by app {})", m.source_file, found.name);
                        match read_application(&m.object, &origin, m.line) {
                            Ok(child) => queue.push_back(child),
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                    Ok(rendered)
                }
                Err(AppsError::Render { message, .. }) => Err(message),
                Err(e) => Err(e.to_string()),
            };
            out.insert(found.name.clone(), ReachedApp { found, result });
        }
    }
    (out, errors)
}

/// Hashes the files at `path` (a file, or a directory with everything below it but `.git`),
/// with their paths relative to `root`.
fn hash_path(root: &Path, path: &Path, hasher: &mut DefaultHasher) {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.hash(hasher);
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        0u8.hash(hasher);
        return;
    };
    if meta.is_file() {
        std::fs::read(path).unwrap_or_default().hash(hasher);
    } else if meta.file_type().is_symlink() {
        std::fs::read_link(path).unwrap_or_default().hash(hasher);
    } else if meta.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        let mut names: Vec<_> = entries
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        names.sort();
        for name in names {
            if name == ".git" {
                continue;
            }
            hash_path(root, &path.join(name), hasher);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_repo_matches_normalized_urls() {
        let repo = ThisRepo {
            urls: vec![RepoUrl::new("https://git.example/Org/Repo.git")],
            root: PathBuf::from("/r"),
        };
        assert!(repo.is("https://git.example/Org/Repo"));
        assert!(repo.is("HTTPS://GIT.EXAMPLE/org/repo/"));
        assert!(!repo.is("https://git.example/Org/Other.git"));
    }
}
