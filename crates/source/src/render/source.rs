//! One entry point for every source type: [`render_source`].
//!
//! The source type is chosen the way Argo CD chooses it ([`detect_source_type`]):
//!
//! 1. `chart` is set: **Helm**, from the chart repository `repoURL` (no checkout involved).
//! 2. Explicit options: `helm` set: **Helm**; `kustomize` set: **Kustomize**; `directory` set:
//!    **Directory**. More than one of them is an error ([`RenderError::InvalidOptions`]), as in
//!    Argo CD.
//! 3. Otherwise the files directly in the app's `path` decide: a kustomization file
//!    (`kustomization.yaml`, `kustomization.yml`, `Kustomization`): **Kustomize**; else a
//!    `Chart.yaml`: **Helm**; else **Directory**. A directory holding both a kustomization and a
//!    `Chart.yaml` is Kustomize, as in Argo CD (its discovery sees the kustomization last).

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde_json::Value;

use super::helm::{ChartSource, HelmOptions, HelmRender, render_helm};
use super::kustomize::{KustomizeOptions, KustomizeRender, kustomization_file, render_kustomize};
use super::{DirectoryOptions, Manifest, RenderError, RenderTools, resolve_app_dir};
use crate::git::Credentials;

/// Argo CD's source types (`status.sourceType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum SourceType {
    /// Plain manifests.
    Directory,
    /// A Kustomize directory.
    Kustomize,
    /// A Helm chart.
    Helm,
}

impl SourceType {
    /// `Directory`, `Kustomize` or `Helm`, as Argo CD writes it in `status.sourceType`.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceType::Directory => "Directory",
            SourceType::Kustomize => "Kustomize",
            SourceType::Helm => "Helm",
        }
    }
}

impl fmt::Display for SourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One source of an app, ready to render.
#[derive(Clone, Debug, Default)]
pub struct SourceRender {
    /// The app's name (Helm's default release name).
    pub app_name: String,
    /// The destination namespace (Helm's default `--namespace`).
    pub namespace: String,
    /// `repoURL`: a Git repository, or a chart repository when `chart` is set.
    pub repo_url: String,
    /// The checkout of `repoURL` at the resolved revision; `None` when `chart` is set.
    pub checkout_root: Option<PathBuf>,
    /// `path` (`""` or `.`: the checkout root).
    pub path: String,
    /// `chart`: the chart name in the chart repository `repoURL`.
    pub chart: Option<String>,
    /// `targetRevision`: for a chart, its version or range.
    pub target_revision: String,
    /// `directory`, when the app sets it.
    pub directory: Option<DirectoryOptions>,
    /// `helm`, as the Application holds it.
    pub helm: Option<Value>,
    /// `kustomize`, as the Application holds it.
    pub kustomize: Option<Value>,
    /// Credentials for the chart repository (Git credentials are the repo cache's business).
    pub credentials: Credentials,
    /// Checkouts of the app's other sources by `ref` name, for Helm's `$ref/…` value files.
    pub value_refs: BTreeMap<String, PathBuf>,
    /// The age keys the app's project may use for SOPS-encrypted files ([`super::sops`]).
    pub keys: ferry_secrets::KeyRing,
}

/// What [`render_source`] produced.
#[derive(Clone, Debug)]
pub struct RenderedSource {
    /// How it was rendered.
    pub source_type: SourceType,
    /// The objects.
    pub manifests: Vec<Manifest>,
}

fn set(value: &Option<Value>) -> bool {
    !matches!(value, None | Some(Value::Null))
}

/// The source type of `req`, by the rule in the [module docs](self).
pub fn detect_source_type(req: &SourceRender) -> Result<SourceType, RenderError> {
    if req.chart.as_deref().is_some_and(|c| !c.is_empty()) {
        return Ok(SourceType::Helm);
    }
    let explicit: Vec<SourceType> = [
        (set(&req.helm), SourceType::Helm),
        (set(&req.kustomize), SourceType::Kustomize),
        (req.directory.is_some(), SourceType::Directory),
    ]
    .into_iter()
    .filter_map(|(on, t)| on.then_some(t))
    .collect();
    match explicit.as_slice() {
        [one] => return Ok(*one),
        [] => {}
        many => {
            let names: Vec<String> = many.iter().map(|t| t.as_str().to_lowercase()).collect();
            return Err(RenderError::InvalidOptions {
                field: "source".into(),
                message: format!(
                    "sets options for more than one source type ({}); keep one",
                    names.join(", ")
                ),
            });
        }
    }
    let root = req
        .checkout_root
        .as_ref()
        .ok_or_else(|| RenderError::InvalidOptions {
            field: "source".into(),
            message: "has neither a chart nor a Git checkout".into(),
        })?;
    let (_, dir) = resolve_app_dir(root, &req.path)?;
    Ok(if kustomization_file(&dir).is_some() {
        SourceType::Kustomize
    } else if dir.join("Chart.yaml").is_file() {
        SourceType::Helm
    } else {
        SourceType::Directory
    })
}

/// Renders one source with the type [`detect_source_type`] picks: [`super::render_directory`] (on a
/// blocking thread), [`render_kustomize`] or [`render_helm`].
pub async fn render_source(
    tools: &RenderTools,
    req: &SourceRender,
) -> Result<RenderedSource, RenderError> {
    let source_type = detect_source_type(req)?;
    let checkout = || {
        req.checkout_root
            .clone()
            .ok_or_else(|| RenderError::InvalidOptions {
                field: "source".into(),
                message: "has no Git checkout to render".into(),
            })
    };
    let manifests = match source_type {
        SourceType::Directory => {
            let root = checkout()?;
            let path = req.path.clone();
            let opts = req.directory.clone().unwrap_or_default();
            let keys = req.keys.clone();
            tokio::task::spawn_blocking(move || {
                super::render_directory_with_keys(&root, &path, &opts, &keys)
            })
            .await
            .map_err(|e| RenderError::Io {
                path: req.path.clone(),
                source: std::io::Error::other(format!("rendering was interrupted: {e}")),
            })??
        }
        SourceType::Kustomize => {
            let render = KustomizeRender {
                checkout_root: checkout()?,
                path: req.path.clone(),
                options: KustomizeOptions::from_json(req.kustomize.as_ref())?,
                keys: req.keys.clone(),
            };
            render_kustomize(tools, &render).await?
        }
        SourceType::Helm => {
            let chart = match req.chart.as_deref().filter(|c| !c.is_empty()) {
                Some(chart) => ChartSource::Repository {
                    repo_url: req.repo_url.clone(),
                    chart: chart.to_owned(),
                    version: req.target_revision.clone(),
                    credentials: req.credentials.clone(),
                },
                None => ChartSource::Checkout {
                    root: checkout()?,
                    path: req.path.clone(),
                },
            };
            let render = HelmRender {
                app_name: req.app_name.clone(),
                namespace: req.namespace.clone(),
                chart,
                options: HelmOptions::from_json(req.helm.as_ref())?,
                value_refs: req.value_refs.clone(),
                keys: req.keys.clone(),
            };
            render_helm(tools, &render).await?
        }
    };
    Ok(RenderedSource {
        source_type,
        manifests,
    })
}
