//! The [`Differ`]: works out an app's desired state from Git and compares it with its cluster.
//! The controller's [`Engine`](crate::Engine) reconciles through one; `ferry server` and
//! `ferry app diff` build one of their own to show diffs, with no controller behind it.

use std::collections::HashMap;
use std::sync::Mutex;

use ferry_core::application::{Application, RefreshType};
use ferry_core::project::AppProject;
use ferry_core::tracking::ResourceKey;
use ferry_source::git::RepoCache;
use ferry_source::render::RenderTools;
use kube::api::Api;
use serde_json::Value;
use tracing::warn;

use crate::config::EngineConfig;
use crate::credentials::RepoCredentials;
use crate::destinations::Destinations;
use crate::sops_keys::SopsKeys;

/// Everything a comparison reads: projects, clusters, repositories and their credentials,
/// renders, `argocd-cm`'s settings. It keeps caches (checkouts, renders, projects) but no memory
/// of earlier comparisons: a diff through it changes nothing the controller relies on.
pub struct Differ {
    pub(crate) cfg: EngineConfig,
    pub(crate) apps: Api<Application>,
    projects: Api<AppProject>,
    /// AppProjects as a watch keeps them (read by every reconcile; a miss asks the API).
    project_store: kube::runtime::reflector::Store<AppProject>,
    /// The writer of `project_store`, until the watch that feeds it starts.
    project_writer: Mutex<Option<kube::runtime::reflector::store::Writer<AppProject>>>,
    pub(crate) destinations: Destinations,
    pub(crate) repos: RepoCache,
    pub(crate) credentials: RepoCredentials,
    /// The age keys of each AppProject, for SOPS-encrypted files.
    pub(crate) sops_keys: SopsKeys,
    /// The latest render of each app's source (by app, repository, path and chart), with the
    /// keys it was made for: one entry per source, so renders of old commits do not pile up.
    pub(crate) renders: Mutex<HashMap<String, crate::render::KeptRender>>,
    pub(crate) tools: RenderTools,
    /// Argo CD's `argocd-cm` settings, kept current.
    pub(crate) settings: crate::settings::SettingsWatch,
    /// Git and render durations and errors.
    pub(crate) metrics: crate::metrics::ControllerMetrics,
}

impl std::fmt::Debug for Differ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Differ")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

/// One object's two sides, for `ferry app diff` and the API: normalized (server-maintained
/// fields dropped) and with Secret values masked, so they can be shown as they are.
#[derive(Debug, Clone)]
pub struct ResourceDiff {
    /// The object.
    pub key: ResourceKey,
    /// As it is in the cluster.
    pub live: Option<Value>,
    /// As applying would make it (absent for objects that would be pruned).
    pub desired: Option<Value>,
    /// Tracked, but no longer in Git.
    pub prune: bool,
}

impl Differ {
    /// A differ for `client` (the cluster ferry runs against).
    pub fn new(client: kube::Client, cfg: EngineConfig) -> Self {
        let local = ferry_cluster::ClusterClient::new(client.clone());
        let (project_store, project_writer) = kube::runtime::reflector::store();
        Differ {
            apps: Api::namespaced(client.clone(), &cfg.namespace),
            projects: Api::namespaced(client.clone(), &cfg.namespace),
            project_store,
            project_writer: Mutex::new(Some(project_writer)),
            destinations: Destinations::new(local, &cfg.namespace),
            repos: RepoCache::new(cfg.cache_dir.join("repos"))
                .with_file_repos(cfg.allow_file_repos),
            credentials: RepoCredentials::new(client.clone(), &cfg.namespace),
            sops_keys: SopsKeys::new(client.clone(), &cfg.namespace),
            renders: Mutex::default(),
            tools: {
                let tools = RenderTools::new(cfg.cache_dir.join("charts"))
                    .with_remote_protocols(cfg.kustomize_remote_protocols.clone());
                // Decrypted SOPS inputs a killed process left in its private directories.
                if let Err(e) = tools.remove_stale_decrypted() {
                    warn!("removing leftover decrypted files under the cache: {e}");
                }
                tools
            },
            settings: crate::settings::SettingsWatch::new(client, &cfg.namespace),
            metrics: crate::metrics::ControllerMetrics::default(),
            cfg,
        }
    }

    /// The same, reporting Git and render figures to `metrics`.
    pub(crate) fn with_metrics(mut self, metrics: crate::metrics::ControllerMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Whether `live` (the object `key`) belongs to `app`, under the tracking method of
    /// `argocd-cm`.
    pub(crate) fn tracks(&self, live: &Value, app: &str, key: &ResourceKey) -> bool {
        ferry_core::tracking::tracks(self.settings.tracking_method(), live, app, key)
    }

    /// Each AppProject's resourceVersion, as the watch has them; `None` until the watch has
    /// listed them once (it starts with the first reconcile).
    pub(crate) fn project_versions(&self) -> Option<HashMap<String, String>> {
        futures::FutureExt::now_or_never(self.project_store.wait_until_ready())?.ok()?;
        Some(
            self.project_store
                .state()
                .iter()
                .map(|p| {
                    (
                        p.metadata.name.clone().unwrap_or_default(),
                        p.metadata.resource_version.clone().unwrap_or_default(),
                    )
                })
                .collect(),
        )
    }

    /// The AppProject `name`: from the watch-fed store, or (not there yet: just created, or the
    /// watch is still listing) from the API.
    pub(crate) async fn project(&self, name: &str) -> Result<Option<AppProject>, kube::Error> {
        use futures::StreamExt as _;
        use kube::runtime::WatchStreamExt as _;
        let writer = self.project_writer.lock().expect("project lock").take();
        if let Some(writer) = writer {
            let stream = kube::runtime::reflector::reflector(
                writer,
                kube::runtime::watcher::watcher(
                    self.projects.clone(),
                    kube::runtime::watcher::Config::default(),
                )
                .modify(crate::watches::drop_managed_fields_of),
            )
            .default_backoff();
            tokio::spawn(stream.for_each(|_| std::future::ready(())));
        }
        let key = kube::runtime::reflector::ObjectRef::new(name).within(&self.cfg.namespace);
        if let Some(project) = self.project_store.get(&key) {
            return Ok(Some((*project).clone()));
        }
        self.projects.get_opt(name).await
    }

    /// The repository cache: checkouts, tree listings and fetches, counted.
    pub fn repo_cache(&self) -> &RepoCache {
        &self.repos
    }

    /// Compares the app `name` with Git without syncing or writing anything: each object's
    /// live and desired sides.
    pub async fn diff_app(&self, name: &str) -> Result<Vec<ResourceDiff>, String> {
        let app = self
            .apps
            .get(name)
            .await
            .map_err(|e| format!("reading application {name}: {e}"))?;
        let failed = |e: crate::error::AppError| format!("{}: {e}", e.condition());
        let target = self.admit(&app).await.map_err(failed)?;
        let desired = self
            .desired(
                &app,
                &target,
                Some(RefreshType::Hard),
                std::time::Duration::ZERO,
                &crate::desired_state::Pins::default(),
            )
            .await
            .map_err(failed)?;
        let found = self
            .compare_for_diff(&app, target, desired)
            .await
            .map_err(failed)?;
        let mut out: Vec<ResourceDiff> = found
            .compared
            .into_iter()
            .map(|c| {
                let desired = c.predicted.unwrap_or(c.desired.object);
                masked_diff(c.desired.key, c.live, Some(desired), false)
            })
            .collect();
        for p in found.prunable {
            out.push(masked_diff(p.key, Some(p.live), None, true));
        }
        Ok(out)
    }
}

/// Both sides of a diff, normalized, with Secret values masked: live values all get the same
/// mask, a desired value that differs gets another, so a change shows without either value.
fn masked_diff(
    key: ResourceKey,
    live: Option<Value>,
    desired: Option<Value>,
    prune: bool,
) -> ResourceDiff {
    let mut live_side = live.as_ref().map(crate::normalize::normalize);
    let mut desired_side = desired.as_ref().map(crate::normalize::normalize);
    if let Some(l) = live_side.as_mut() {
        crate::normalize::mask_secret(l, None);
    }
    if let Some(d) = desired_side.as_mut() {
        crate::normalize::mask_secret(d, live.as_ref());
    }
    ResourceDiff {
        key,
        live: live_side,
        desired: desired_side,
        prune,
    }
}
