//! What a change to a GitOps repository would do: every Application under a folder rendered at
//! two revisions and compared object by object (`ferry preview --base REV --head REV [PATH]`).
//!
//! [`preview`] works in a clone, with no cluster:
//!
//! 1. `base` and `head` are resolved to commits in the clone and checked out read-only through
//!    the engine's [`RepoCache`](ferry_source::git::RepoCache) (the clone serves as the
//!    remote; the clone itself is not touched).
//! 2. At each revision the Applications under PATH are found (in its plain manifest files and
//!    what its Kustomize folders build: [`crate::apps::find_applications`]) and rendered as the engine renders them
//!    ([`crate::apps::AppRenderer`]). Rendered Applications (App-of-Apps) are rendered in turn.
//!    A source whose `repoURL` names this repository (a remote URL of the clone, or one given
//!    with `--repo-url`) is rendered from the revision being previewed, whatever its
//!    `targetRevision`.
//! 3. An app whose inputs (spec, and the content of the files it reads) are the same at both
//!    revisions is rendered once.
//! 4. Per app: objects created, changed and deleted; apps added and removed; apps whose render
//!    fails at `head` are errors (the message names the file).
//!
//! [`write_text`], [`write_markdown`] and [`write_json`] print a [`Preview`]; Secret values
//! are masked by the function the caller passes (the engine's masking).

mod report;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ferry_core::RepoUrl;
use ferry_core::tracking::ResourceKey;
use ferry_source::git::{Credentials, RepoCache};
use ferry_source::render::{Manifest, RenderTools};
use serde_json::Value;

use crate::apps::{AppRenderer, ReachedApp, ThisRepo, remote_urls, render_reachable};
use crate::git::query_repo;

pub use report::{Mask, write_json, write_markdown, write_text};

/// What to preview.
#[derive(Clone, Debug)]
pub struct PreviewOptions {
    /// The root of the clone.
    pub repo_root: PathBuf,
    /// The revision before the change.
    pub base: String,
    /// The revision after it.
    pub head: String,
    /// The folder whose Applications are previewed, relative to the repository root (`.`).
    pub path: String,
    /// More URLs that name this repository (beyond the clone's remotes).
    pub repo_urls: Vec<String>,
    /// Where checkouts and pulled charts are kept.
    pub cache_dir: PathBuf,
}

/// What happens to one object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Only at head.
    Create,
    /// At both, different.
    Change,
    /// Only at base.
    Delete,
}

/// One object that differs.
#[derive(Clone, Debug)]
pub struct ObjectChange {
    /// `group/Kind:namespace/name`.
    pub key: String,
    /// What happens to it.
    pub action: Action,
    /// It at base.
    pub base: Option<Value>,
    /// It at head.
    pub head: Option<Value>,
}

/// What happens to one app.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AppStatus {
    /// Only at head.
    Added,
    /// Only at base.
    Removed,
    /// Its objects differ.
    Changed,
    /// Nothing differs.
    Unchanged,
    /// It does not render at head.
    Error,
}

/// One app at both revisions.
#[derive(Clone, Debug)]
pub struct AppPreview {
    /// Its name.
    pub name: String,
    /// Where it is defined (at head, else at base).
    pub origin: String,
    /// What happens to it.
    pub status: AppStatus,
    /// Objects that differ, in key order.
    pub objects: Vec<ObjectChange>,
    /// Why it does not render at head.
    pub error: Option<String>,
    /// Why it did not render at base (its base side is then taken as empty).
    pub base_error: Option<String>,
}

/// The whole preview.
#[derive(Clone, Debug)]
pub struct Preview {
    /// The base revision as given.
    pub base: String,
    /// The head revision as given.
    pub head: String,
    /// Every app, by name.
    pub apps: Vec<AppPreview>,
    /// Problems outside any one app (a file under PATH that does not parse at head).
    pub errors: Vec<String>,
    /// How many sources were rendered, both revisions together.
    pub renders: usize,
}

impl Preview {
    /// 2 when something failed at head, 1 when something changes, else 0.
    pub fn exit_code(&self) -> i32 {
        if !self.errors.is_empty() || self.apps.iter().any(|a| a.status == AppStatus::Error) {
            2
        } else if self.apps.iter().any(|a| a.status != AppStatus::Unchanged) {
            1
        } else {
            0
        }
    }
}

/// Why the preview could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// A revision does not name a commit of the clone.
    #[error("--{which} {revision:?} is not a commit of the repository at {repo}: {message}")]
    Revision {
        /// `base` or `head`.
        which: &'static str,
        /// As given.
        revision: String,
        /// The clone.
        repo: String,
        /// What git said.
        message: String,
    },
    /// A checkout failed.
    #[error("checking out {revision} of {repo}: {message}")]
    Checkout {
        /// As given.
        revision: String,
        /// The clone.
        repo: String,
        /// What went wrong.
        message: String,
    },
}

fn objects_by_key(manifests: &[Manifest]) -> BTreeMap<String, Value> {
    manifests
        .iter()
        .map(|m| {
            let key = ResourceKey::from_object(&m.object)
                .map(|k| k.to_string())
                .unwrap_or_else(|| format!("{}:{}", m.source_file, m.line));
            (key, m.object.clone())
        })
        .collect()
}

fn compare(name: &str, base: Option<&ReachedApp>, head: Option<&ReachedApp>) -> AppPreview {
    let origin = head
        .or(base)
        .map(|s| s.found.origin.clone())
        .unwrap_or_default();
    let mut preview = AppPreview {
        name: name.to_owned(),
        origin,
        status: AppStatus::Unchanged,
        objects: Vec::new(),
        error: None,
        base_error: None,
    };
    let head_objects = match head.map(|h| &h.result) {
        Some(Ok(r)) => objects_by_key(&r.manifests),
        Some(Err(e)) => {
            preview.status = AppStatus::Error;
            preview.error = Some(e.clone());
            return preview;
        }
        None => BTreeMap::new(),
    };
    let base_objects = match base.map(|b| &b.result) {
        Some(Ok(r)) => objects_by_key(&r.manifests),
        Some(Err(e)) => {
            preview.base_error = Some(e.clone());
            BTreeMap::new()
        }
        None => BTreeMap::new(),
    };
    let keys: BTreeSet<&String> = head_objects.keys().chain(base_objects.keys()).collect();
    for key in keys {
        let (b, h) = (base_objects.get(key), head_objects.get(key));
        let action = match (b, h) {
            (None, Some(_)) => Action::Create,
            (Some(_), None) => Action::Delete,
            (Some(b), Some(h)) if b != h => Action::Change,
            _ => continue,
        };
        preview.objects.push(ObjectChange {
            key: key.clone(),
            action,
            base: b.cloned(),
            head: h.cloned(),
        });
    }
    preview.status = match (base, head) {
        (None, Some(_)) => AppStatus::Added,
        (Some(_), None) => AppStatus::Removed,
        _ if !preview.objects.is_empty() || preview.base_error.is_some() => AppStatus::Changed,
        _ => AppStatus::Unchanged,
    };
    preview
}

/// The commit `revision` names in the clone.
async fn resolve(root: &Path, which: &'static str, revision: &str) -> Result<String, PreviewError> {
    let fail = |message: String| PreviewError::Revision {
        which,
        revision: revision.to_owned(),
        repo: root.display().to_string(),
        message,
    };
    if revision.is_empty() || revision.starts_with('-') {
        return Err(fail("give a branch, tag or commit".into()));
    }
    let spec = format!("{revision}^{{commit}}");
    query_repo(
        root,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            &spec,
        ],
    )
    .await
    .map(|out| out.trim().to_owned())
    .map_err(|e| fail(e.to_string()))
}

/// The clone's revisions checked out read-only through the engine's repository cache (the
/// clone serves its commits; it is not touched), and the URLs that name this repository.
async fn check_out(
    options: &PreviewOptions,
    revisions: &[(&'static str, &str)],
) -> Result<(Vec<PathBuf>, Vec<RepoUrl>), PreviewError> {
    let root = &options.repo_root;
    let mut urls = remote_urls(root).await;
    urls.extend(options.repo_urls.iter().map(RepoUrl::from));
    // The clone the person running preview chose: read through a local URL. (Other
    // repositories that Applications name stay under the file-URL rule.)
    let repos = RepoCache::new(options.cache_dir.join("this-repo")).with_file_repos(true);
    let url = format!("file://{}", root.display());
    let mut checkouts = Vec::new();
    for (which, revision) in revisions {
        let sha = resolve(root, which, revision).await?;
        let fail = |e: ferry_source::GitError| PreviewError::Checkout {
            revision: (*revision).to_owned(),
            repo: root.display().to_string(),
            message: e.to_string(),
        };
        repos
            .resolve_fresh(
                &url,
                &Credentials::none(),
                &sha,
                std::time::Duration::from_secs(3600),
            )
            .await
            .map_err(fail)?;
        checkouts.push(repos.checkout(&url, &sha).await.map_err(fail)?);
    }
    Ok((checkouts, urls))
}

/// Every app reachable from the Applications under PATH at `options.head`, rendered (for a
/// comparison with a live cluster): the apps by name, problems outside any one app, and the
/// number of renders.
pub async fn render_head(
    options: &PreviewOptions,
    tools: RenderTools,
) -> Result<(BTreeMap<String, ReachedApp>, Vec<String>, usize), PreviewError> {
    let (checkouts, urls) = check_out(options, &[("head", &options.head)]).await?;
    let renderer = AppRenderer::new(tools, &options.cache_dir);
    let repo = ThisRepo {
        urls,
        root: checkouts[0].clone(),
    };
    let (apps, errors) = render_reachable(&renderer, &repo, &options.path).await;
    Ok((apps, errors, renderer.render_count()))
}

/// Runs the preview: see the [module docs](self).
pub async fn preview(
    options: &PreviewOptions,
    tools: RenderTools,
) -> Result<Preview, PreviewError> {
    let (checkouts, urls) =
        check_out(options, &[("base", &options.base), ("head", &options.head)]).await?;
    let renderer = AppRenderer::new(tools, &options.cache_dir);
    let side = |checkout: &PathBuf| ThisRepo {
        urls: urls.clone(),
        root: checkout.clone(),
    };
    let (base, _base_errors) =
        render_reachable(&renderer, &side(&checkouts[0]), &options.path).await;
    let (head, errors) = render_reachable(&renderer, &side(&checkouts[1]), &options.path).await;
    let names: BTreeSet<&String> = base.keys().chain(head.keys()).collect();
    let apps = names
        .into_iter()
        .map(|name| compare(name, base.get(name), head.get(name)))
        .collect();
    Ok(Preview {
        base: options.base.clone(),
        head: options.head.clone(),
        apps,
        errors,
        renders: renderer.render_count(),
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::apps::{Rendered, read_application};

    fn side(name: &str, objects: &[Value]) -> ReachedApp {
        let app = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": name}, "spec": {"destination": {"server": "s"}}});
        ReachedApp {
            found: read_application(&app, &format!("apps/{name}.yaml"), 1).unwrap(),
            result: Ok(Arc::new(Rendered {
                manifests: objects
                    .iter()
                    .map(|o| Manifest {
                        source_file: "f.yaml".into(),
                        line: 1,
                        object: o.clone(),
                    })
                    .collect(),
                source_types: Vec::new(),
            })),
        }
    }

    fn cm(name: &str, value: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
            "data": {"v": value}})
    }

    #[test]
    fn objects_and_apps_are_compared_by_identity() {
        let base = side("web", &[cm("a", "1"), cm("b", "1"), cm("c", "1")]);
        let head = side("web", &[cm("a", "2"), cm("b", "1"), cm("d", "1")]);
        let p = compare("web", Some(&base), Some(&head));
        assert_eq!(p.status, AppStatus::Changed);
        let got: Vec<(String, Action)> = p
            .objects
            .iter()
            .map(|o| (o.key.clone(), o.action))
            .collect();
        assert_eq!(
            got,
            [
                ("ConfigMap:a".to_owned(), Action::Change),
                ("ConfigMap:c".to_owned(), Action::Delete),
                ("ConfigMap:d".to_owned(), Action::Create),
            ]
        );
        assert_eq!(
            compare("web", Some(&base), Some(&base)).status,
            AppStatus::Unchanged
        );
        assert_eq!(compare("web", None, Some(&head)).status, AppStatus::Added);
        assert_eq!(compare("web", Some(&base), None).status, AppStatus::Removed);

        let broken = ReachedApp {
            result: Err("f.yaml:1:1: invalid YAML".into()),
            ..side("web", &[])
        };
        let p = compare("web", Some(&base), Some(&broken));
        assert_eq!(
            (p.status, p.error.as_deref()),
            (AppStatus::Error, Some("f.yaml:1:1: invalid YAML"))
        );
        // A base that did not render counts as empty: everything at head is created.
        let p = compare("web", Some(&broken), Some(&head));
        assert_eq!(p.status, AppStatus::Changed);
        assert!(p.base_error.is_some() && p.objects.iter().all(|o| o.action == Action::Create));
        // Preview exit codes follow the worst app.
        let preview = |apps: Vec<AppPreview>| Preview {
            base: "b".into(),
            head: "h".into(),
            apps,
            errors: Vec::new(),
            renders: 0,
        };
        assert_eq!(
            preview(vec![compare("web", Some(&base), Some(&base))]).exit_code(),
            0
        );
        assert_eq!(
            preview(vec![compare("web", None, Some(&head))]).exit_code(),
            1
        );
        assert_eq!(
            preview(vec![compare("web", Some(&base), Some(&broken))]).exit_code(),
            2
        );
    }
}
