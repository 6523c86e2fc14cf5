//! Rendering: one source of an app (a directory, a Kustomize folder or a Helm chart, from Git or
//! from a chart repository) into manifests, cached by what the output depends on.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_core::application::{Application, ApplicationSource, RefreshType};
use ferry_source::git::CommitInfo;
use ferry_source::render::{Manifest, RenderedSource};

use crate::differ::Differ;
use crate::error::AppError;

/// The latest render of one app's source, and what it was made from.
pub(crate) struct KeptRender {
    /// The render key with the commit SHA (or chart version) in it.
    by_revision: String,
    /// The render key with the directory's Git tree id instead, for plain directories.
    by_content: Option<String>,
    /// The recipients of the SOPS keys it decrypted with (empty when it decrypted nothing).
    fingerprint: String,
    render: Arc<KeptManifests>,
}

/// A render as the cache keeps it: each object as its JSON text, a fraction of the size of
/// the parsed tree (an App-of-Apps root keeps a thousand children). Each use parses it again
/// into objects of its own, so the caller moves them instead of copying.
pub(crate) struct KeptManifests {
    source_type: ferry_source::render::SourceType,
    manifests: Vec<(Arc<str>, usize, Box<str>)>,
}

impl KeptManifests {
    fn keep(render: &RenderedSource) -> Self {
        let mut files: Option<Arc<str>> = None;
        let manifests = render
            .manifests
            .iter()
            .map(|m| {
                // Objects of one file share its name.
                let file = match &files {
                    Some(f) if **f == *m.source_file => f.clone(),
                    _ => files.insert(Arc::from(m.source_file.as_str())).clone(),
                };
                (file, m.line, m.object.to_string().into_boxed_str())
            })
            .collect();
        Self {
            source_type: render.source_type,
            manifests,
        }
    }

    /// The render again, as [`ferry_source::render::render_source`] gave it; `None` when an
    /// object does not parse back (nested deeper than serde_json reads): render it again.
    fn render(&self) -> Option<RenderedSource> {
        let manifests = self
            .manifests
            .iter()
            .map(|(file, line, json)| {
                Some(Manifest {
                    source_file: file.to_string(),
                    line: *line,
                    object: serde_json::from_str(json).ok()?,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        Some(RenderedSource {
            source_type: self.source_type,
            manifests,
        })
    }
}

/// One rendered source.
pub(crate) struct RenderedOne {
    pub(crate) revision: String,
    pub(crate) commit: Option<CommitInfo>,
    pub(crate) source_type: String,
    pub(crate) output: RenderedSource,
}

impl Differ {
    /// Renders one source (a directory, a Kustomize folder or a Helm chart from Git or from a
    /// chart repository), cached by commit (or chart version), path and options.
    pub(crate) async fn render_source(
        &self,
        app: &Application,
        source: &ApplicationSource,
        value_refs: &BTreeMap<String, PathBuf>,
        refresh: Option<RefreshType>,
        fetch_max_age: Duration,
        revision_override: Option<&str>,
    ) -> Result<RenderedOne, AppError> {
        let url = &source.repo_url;
        let from_chart_repo = source.chart.is_some();
        // A Git source is checked out only when it is rendered (a render found in the cache
        // needs no files).
        let git_started = std::time::Instant::now();
        let (revision, commit) = if from_chart_repo {
            // A chart repository: the revision is the chart version (or range).
            let version = revision_override
                .filter(|r| !r.is_empty())
                .or(source.target_revision.as_deref())
                .unwrap_or_default()
                .to_string();
            (version, None)
        } else {
            let sha = self
                .resolve_source(source, fetch_max_age, revision_override)
                .await?;
            let info = self.repos.commit_info(url, &sha).await.ok();
            (sha, info)
        };
        let app_name = app.metadata.name.clone().unwrap_or_default();
        let namespace = app.spec.destination.namespace.clone().unwrap_or_default();
        // A plain directory renders the same from every commit that leaves its files alone:
        // keyed by its Git tree id too, a commit elsewhere in the repository renders nothing
        // again. The key with the commit itself is checked first, so a look at the commit the
        // last render was made at reads no tree (an untouched app stays at that commit).
        let plain_directory = !from_chart_repo
            && source.helm.is_none()
            && source.kustomize.is_none()
            && value_refs.is_empty();
        let key_for = |id: &str| {
            serde_json::json!([
                url,
                id,
                source.path,
                source.chart,
                source.directory,
                source.helm,
                source.kustomize,
                app_name,
                namespace,
                value_refs,
            ])
            .to_string()
        };
        let by_revision = key_for(&revision);
        let content_key = async || {
            if !plain_directory {
                return None;
            }
            let path = source.path.as_deref().unwrap_or(".");
            let tree = self.repos.tree_id(url, &revision, path).await.ok()??;
            Some(key_for(&format!("tree:{tree}")))
        };
        let slot = format!(
            "{}{}",
            render_slot_prefix(&app_name),
            serde_json::json!([url, source.path, source.chart])
        );
        if refresh == Some(RefreshType::Hard) {
            let mut renders = self.renders.lock().expect("render cache lock");
            if let Some(gone) = renders.remove(&slot) {
                self.count_render(&gone.render, -1);
            }
        }
        // The keys the app's project may use are part of the key: a render that decrypted SOPS
        // files is reused only while the same keys are allowed (a revoked key stops working at
        // the next reconcile).
        let project = if app.spec.project.is_empty() {
            "default"
        } else {
            app.spec.project.as_str()
        };
        // Found by the commit, or else by its tree when it has one (only then is the tree
        // read).
        let kept_by_tree = self
            .renders
            .lock()
            .expect("render cache lock")
            .get(&slot)
            .is_some_and(|k| k.by_revision != by_revision && k.by_content.is_some());
        let mut by_content = None;
        if kept_by_tree {
            by_content = content_key().await;
        }
        let cached = {
            let mut renders = self.renders.lock().expect("render cache lock");
            renders
                .get_mut(&slot)
                .filter(|k| {
                    k.by_revision == by_revision
                        || (by_content.is_some() && k.by_content == by_content)
                })
                .map(|kept| {
                    // Found through its tree at another commit: the next look at this
                    // commit finds it by the commit.
                    kept.by_revision.clone_from(&by_revision);
                    (kept.fingerprint.clone(), kept.render.clone())
                })
        };
        let mut keys = None;
        let cached = match cached {
            Some((fingerprint, r)) if fingerprint.is_empty() => Some(r),
            Some((fingerprint, r)) => {
                let ring = self.project_keys(project).await?;
                let same = ring.recipients().join(",") == fingerprint;
                keys = Some(ring);
                same.then_some(r)
            }
            None => None,
        };
        let cached = cached.and_then(|r| r.render());
        let rendered = match cached {
            Some(r) => {
                if !from_chart_repo {
                    self.observe_git(&crate::metrics::RepoLabels::of(url), git_started);
                }
                r
            }
            None => {
                let credentials = if from_chart_repo {
                    self.credentials
                        .for_url(url)
                        .await
                        .map_err(AppError::unavailable)?
                } else {
                    Default::default()
                };
                let keys = match keys {
                    Some(k) => k,
                    None => self.project_keys(project).await?,
                };
                let used_keys = keys.clone();
                // A plain directory needs only its own files checked out.
                let checkout_root = if from_chart_repo {
                    None
                } else {
                    let path = source.path.as_deref().unwrap_or(".");
                    let plain = plain_directory.then_some(path);
                    Some(
                        self.checkout_commit(url, &revision, plain, git_started)
                            .await?,
                    )
                };
                let mut request = ferry_source::render::application::source_render(
                    app,
                    source,
                    checkout_root,
                    &revision,
                    value_refs,
                    credentials,
                );
                request.keys = keys;
                let started = std::time::Instant::now();
                let out = ferry_source::render::render_source(&self.tools, &request)
                    .await
                    .inspect(|_| {
                        self.metrics
                            .render_seconds
                            .get_or_create(&crate::metrics::RepoLabels::of(url))
                            .observe(started.elapsed().as_secs_f64());
                    })
                    .map_err(|e| {
                        let at = if from_chart_repo {
                            revision.clone()
                        } else {
                            crate::status::short(&revision).to_string()
                        };
                        // Where an app's SOPS keys come from, when none of them fits.
                        let hint = match &e {
                            ferry_source::RenderError::Sops(
                                ferry_secrets::SopsError::NoMatchingKey { .. },
                            ) => format!(
                                " (project {project}'s keys are the *.agekey entries of Secrets \
                                 labelled {}=true whose annotation {} names it)",
                                crate::sops_keys::SOPS_KEYS_LABEL,
                                crate::sops_keys::SOPS_PROJECTS_ANNOTATION
                            ),
                            _ => String::new(),
                        };
                        AppError::render(&e, format!("{url} at {at}: {e}{hint}"))
                    })?;
                // A render that decrypted something is reused only while the project's keys
                // stay the same (checked on each reuse); one that did not needs no check.
                let fingerprint = if used_keys.was_used() {
                    used_keys.recipients().join(",")
                } else {
                    String::new()
                };
                if by_content.is_none() {
                    by_content = content_key().await;
                }
                let kept = Arc::new(KeptManifests::keep(&out));
                self.count_render(&kept, 1);
                let kept = KeptRender {
                    by_revision,
                    by_content,
                    fingerprint,
                    render: kept,
                };
                let mut renders = self.renders.lock().expect("render cache lock");
                if let Some(replaced) = renders.insert(slot, kept) {
                    self.count_render(&replaced.render, -1);
                }
                out
            }
        };
        Ok(RenderedOne {
            revision,
            commit,
            source_type: rendered.source_type.to_string(),
            output: rendered,
        })
    }

    /// Forgets the renders kept for the app `name` (deleted, or no longer this replica's).
    pub(crate) fn forget_renders(&self, name: &str) {
        let prefix = render_slot_prefix(name);
        let mut renders = self.renders.lock().expect("render cache lock");
        renders.retain(|slot, kept| {
            let keep = !slot.starts_with(&prefix);
            if !keep {
                self.count_render(&kept.render, -1);
            }
            keep
        });
    }

    /// Moves the render cache's gauges by one kept render (`sign` 1: kept, -1: dropped), so a
    /// render adds no walk over the whole cache.
    fn count_render(&self, render: &KeptManifests, sign: i64) {
        let manifests = i64::try_from(render.manifests.len()).unwrap_or(i64::MAX);
        self.metrics.render_cache_entries.inc_by(sign);
        self.metrics.render_cache_manifests.inc_by(sign * manifests);
    }

    /// The age keys AppProject `project` may use for SOPS files.
    async fn project_keys(&self, project: &str) -> Result<ferry_source::render::KeyRing, AppError> {
        self.sops_keys
            .for_project(project)
            .await
            .map_err(AppError::unavailable)
    }
}

/// How the render cache's slots of the app `name` begin: its name as a JSON string, then `|`
/// (a JSON string cannot contain a bare `|` after its closing quote, so no other app's slots
/// begin the same way).
fn render_slot_prefix(name: &str) -> String {
    format!("{}|", serde_json::Value::from(name))
}

#[cfg(test)]
mod tests {
    use super::{KeptManifests, Manifest, RenderedSource, render_slot_prefix};
    use ferry_source::render::SourceType;
    use serde_json::json;

    #[test]
    fn a_kept_render_gives_back_the_same_objects_as_fresh_copies() {
        let manifest = |file: &str, line, object| Manifest {
            source_file: file.into(),
            line,
            object,
        };
        let out = RenderedSource {
            source_type: SourceType::Directory,
            manifests: vec![
                manifest(
                    "apps/a.yaml",
                    1,
                    json!({"kind": "ConfigMap", "data": {"n": "1", "f": 1.5, "big": 18446744073709551615u64}}),
                ),
                manifest(
                    "apps/a.yaml",
                    9,
                    json!({"kind": "Secret", "b": [true, null, -3]}),
                ),
                manifest(
                    "apps/b.yaml",
                    1,
                    json!({"kind": "Service", "unicode": "é\u{0}"}),
                ),
            ],
        };
        let kept = KeptManifests::keep(&out);
        assert!(
            std::sync::Arc::ptr_eq(&kept.manifests[0].0, &kept.manifests[1].0),
            "objects of one file share its name"
        );
        let back = kept.render().expect("parses back");
        assert_eq!(back.source_type, out.source_type);
        assert_eq!(back.manifests, out.manifests);

        // Deeper than serde_json parses: not given back (rendered again instead).
        let mut deep = json!("leaf");
        for _ in 0..200 {
            deep = json!([deep]);
        }
        let kept = KeptManifests::keep(&RenderedSource {
            source_type: SourceType::Directory,
            manifests: vec![manifest(
                "deep.yaml",
                1,
                json!({"kind": "ConfigMap", "d": deep}),
            )],
        });
        assert!(kept.render().is_none());
    }

    #[test]
    fn an_apps_slot_prefix_matches_no_other_app() {
        let a = render_slot_prefix("web");
        for other in ["web2", "we", "web\"|", "\"web", ""] {
            let slot = format!("{}[\"repo\",\".\",null]", render_slot_prefix(other));
            assert!(!slot.starts_with(&a), "{other:?}: {slot}");
        }
        assert!(format!("{a}[\"repo\"]").starts_with(&a));
    }
}
