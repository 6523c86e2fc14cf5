//! Whether new commits touched an app: a push changes only the apps whose inputs it changed.
//!
//! For each Git source whose branch moved since the revisions an app was last compared at, the
//! files changed between the two commits (one `git diff-tree` per repository and pair of
//! commits, cached in [`RepoCache`](ferry_source::git::RepoCache)) are matched against the
//! app's inputs ([`ferry_core::inputs`]): its path, Helm value files, `$ref` files, the
//! `manifest-generate-paths` annotation, and what its Kustomize files and local Helm chart
//! dependencies reach in the checkout. A commit that changed none of them leaves the app as it
//! is: no render, no comparison, no status write (its `status.sync.revision` stays at the last
//! commit that changed it). Whenever something cannot be told (a commit the mirror lacks, a
//! file that does not parse, a path through a symlink), the app counts as touched.

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::time::Duration;

use ferry_core::application::Application;
use ferry_core::inputs::{
    InputPath, chart_file_dependencies, join_repo_path, kustomization_references, spec_inputs,
    touches,
};
use ferry_core::repo_url::normalize_repo_url;

use crate::differ::Differ;

/// What new commits did to an app's inputs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Touched {
    /// No source moved.
    Same,
    /// Sources moved (to these revisions, joined), but no changed file is an input of the app.
    Untouched(String),
    /// A changed file is an input, or it cannot be told.
    Touched,
}

/// At most this many folders are read to find what an app's Kustomize files and charts reach;
/// beyond that the whole repository is an input.
const MAX_FOLDERS_READ: usize = 64;

const KUSTOMIZATION_FILES: [&str; 3] = ["kustomization.yaml", "kustomization.yml", "Kustomization"];

impl Differ {
    /// Whether anything `app` is made from may have changed since its sources were at
    /// `old` (one revision per source, in the spec's order, as its last comparison saw them):
    /// a source moved to a commit that changed one of its inputs, or that cannot be told.
    /// Fetches as a reconcile does (`fetch_max_age`).
    pub async fn touched_since(
        &self,
        app: &Application,
        old: &[String],
        fetch_max_age: Duration,
    ) -> Touched {
        let sources = app.spec.effective_sources();
        if old.len() != sources.len() {
            return Touched::Touched;
        }
        let mut moved = false;
        let mut now = Vec::new();
        let inputs = spec_inputs(app);
        for (source, old) in sources.iter().zip(old) {
            if source.chart.is_some() {
                if Some(old.as_str()) != source.target_revision.as_deref() {
                    return Touched::Touched;
                }
                now.push(old.clone());
                continue;
            }
            let Ok(new) = self.resolve_source(source, fetch_max_age, None).await else {
                return Touched::Touched;
            };
            now.push(new.clone());
            if new == *old {
                continue;
            }
            moved = true;
            let url = &source.repo_url;
            let Ok(changed) = self.repos.changed_paths(url, old, &new).await else {
                return Touched::Touched;
            };
            let repo = normalize_repo_url(url);
            let mut repo_inputs: Vec<InputPath> = inputs
                .iter()
                .filter(|(r, _)| *r == repo)
                .map(|(_, i)| i.clone())
                .collect();
            if touches(&changed, &repo_inputs) {
                return Touched::Touched;
            }
            // What Kustomize files and local charts of the sources in this repository reach
            // outside their folders, as the new commit has them. A plain directory of
            // manifests (no Kustomize file, chart or symlink; told by the commit's tree
            // listing) reaches nothing, and needs no checkout to tell.
            let mut root = None;
            for s in sources.iter().filter(|s| {
                s.chart.is_none() && s.path.is_some() && normalize_repo_url(&s.repo_url) == repo
            }) {
                let path = s.path.as_deref().unwrap_or(".");
                if matches!(self.repos.tree_id(url, &new, path).await, Ok(Some(_))) {
                    continue;
                }
                let checkout = match root.take() {
                    Some(checkout) => checkout,
                    None => match self.repos.checkout(url, &new).await {
                        Ok(checkout) => checkout,
                        Err(_) => return Touched::Touched,
                    },
                };
                repo_inputs.extend(reached_from(&checkout, path));
                root = Some(checkout);
            }
            if touches(&changed, &repo_inputs) {
                return Touched::Touched;
            }
        }
        if moved {
            Touched::Untouched(now.join(","))
        } else {
            Touched::Same
        }
    }
}

/// What the Kustomize files and Helm charts at folder `path` of the checkout `root` reach
/// outside it (following the folders they name); the whole repository when that cannot be told.
pub(crate) fn reached_from(root: &Path, path: &str) -> Vec<InputPath> {
    let everything = vec![InputPath::everything()];
    let Some(start) = join_repo_path("", path) else {
        return everything;
    };
    let Ok(real_root) = root.canonicalize() else {
        return everything;
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::from([start.clone()]);
    let mut queue = VecDeque::from([start]);
    while let Some(dir) = queue.pop_front() {
        if seen.len() > MAX_FOLDERS_READ {
            return everything;
        }
        let Some(folder) = inside(&real_root, &dir) else {
            return everything;
        };
        let mut named = Vec::new();
        for file in KUSTOMIZATION_FILES {
            let f = folder.join(file);
            if f.is_file() {
                match std::fs::read_to_string(&f)
                    .ok()
                    .as_deref()
                    .and_then(kustomization_references)
                {
                    Some(refs) => named.extend(refs),
                    None => return everything,
                }
            }
        }
        let chart = folder.join("Chart.yaml");
        if chart.is_file() {
            match std::fs::read_to_string(&chart)
                .ok()
                .as_deref()
                .and_then(chart_file_dependencies)
            {
                Some(deps) => named.extend(deps),
                None => return everything,
            }
        }
        for name in named {
            let Some(target) = join_repo_path(&dir, &name) else {
                return everything;
            };
            if inside(&real_root, &target).is_some_and(|p| p.is_dir())
                && seen.insert(target.clone())
            {
                queue.push_back(target.clone());
            }
            out.push(InputPath::Under(target));
        }
    }
    out
}

/// The folder or file `rel` of the checkout at `real_root`, when it resolves inside it (a
/// symlink out of the checkout does not); a path that does not exist resolves to itself.
fn inside(real_root: &Path, rel: &str) -> Option<std::path::PathBuf> {
    let p = real_root.join(rel);
    match p.canonicalize() {
        Ok(real) => real.starts_with(real_root).then_some(real),
        Err(_) => Some(p),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn kustomize_overlays_reach_their_bases_and_what_the_bases_reach() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "envs/prod/kustomization.yaml",
            "resources: [../../base, local.yaml]\npatches:\n  - path: ../shared/patch.yaml\n",
        );
        write(root, "envs/prod/local.yaml", "kind: ConfigMap\n");
        write(
            root,
            "base/kustomization.yaml",
            "resources: [../components/web]\n",
        );
        write(
            root,
            "components/web/kustomization.yaml",
            "resources: [cm.yaml]\n",
        );
        let reached = reached_from(root, "envs/prod");
        for want in ["base", "envs/shared/patch.yaml", "components/web"] {
            assert!(
                reached.contains(&InputPath::Under(want.into())),
                "{want} in {reached:?}"
            );
        }
        assert!(!reached.contains(&InputPath::everything()), "{reached:?}");
        assert!(
            !reached
                .iter()
                .any(|i| *i == InputPath::Under("apps".into()))
        );
    }

    #[test]
    fn plain_folders_reach_nothing_and_charts_reach_their_file_dependencies() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "manifests/a/cm.yaml", "kind: ConfigMap\n");
        assert!(reached_from(root, "manifests/a").is_empty());
        write(
            root,
            "charts/web/Chart.yaml",
            "name: web\ndependencies:\n  - name: lib\n    repository: file://../lib\n",
        );
        write(root, "charts/lib/Chart.yaml", "name: lib\n");
        assert_eq!(
            reached_from(root, "charts/web"),
            vec![InputPath::Under("charts/lib".into())]
        );
    }

    #[test]
    fn what_cannot_be_told_is_the_whole_repository() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(
            root,
            "a/kustomization.yaml",
            "resources: [../../../outside]\n",
        );
        assert_eq!(reached_from(root, "a"), vec![InputPath::everything()]);
        write(root, "b/kustomization.yaml", "resources: [\n");
        assert_eq!(reached_from(root, "b"), vec![InputPath::everything()]);
        let outside = tempfile::tempdir().unwrap();
        write(outside.path(), "kustomization.yaml", "resources: [x]\n");
        std::os::unix::fs::symlink(outside.path(), root.join("link")).unwrap();
        assert_eq!(reached_from(root, "link"), vec![InputPath::everything()]);
    }
}
