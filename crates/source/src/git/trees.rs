//! Which commits leave a directory's files as they are: each directory's Git tree id, from one
//! `git ls-tree` per commit, kept for the most recently used commits.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::cache::RepoCache;
use super::url::*;
use super::{Credentials, GitError};

/// The directories of one commit: each one's Git tree id, and whether everything under it is a
/// plain file or directory.
#[derive(Debug, Default)]
pub(crate) struct CommitTrees {
    pub(crate) dirs: HashMap<String, (String, bool)>,
}

/// The tree listings of this many commits are kept.
pub const TREE_CACHE_COMMITS: usize = 8;

impl RepoCache {
    /// What identifies the files under directory `path` (relative to the repository root, `.`
    /// for the root) of commit `sha` of a fetched `url`, when it is a plain directory of
    /// manifests: the directory's Git tree id, the same in every commit that leaves those files
    /// as they are. `None` when the path is not a directory of that commit, holds a symlink or a
    /// submodule somewhere below (their content is not part of the tree id), or is a Kustomize
    /// or Helm source (which may read files outside it). One `git ls-tree` per commit, cached.
    pub async fn tree_id(
        &self,
        url: &str,
        sha: &str,
        path: &str,
    ) -> Result<Option<String>, GitError> {
        check_revision(url, sha)?;
        if !is_full_sha(sha) {
            return Ok(None);
        }
        let mirror = self.mirror_dir(url);
        let key = (mirror.clone(), sha.to_owned());
        let cached = {
            // Least recently used first: a hit moves to the end.
            let mut all = self.trees.lock().unwrap_or_else(|e| e.into_inner());
            let at = all.iter().position(|(k, _)| *k == key);
            at.map(|at| {
                let hit = all.remove(at);
                let trees = hit.1.clone();
                all.push(hit);
                trees
            })
        };
        let trees = match cached {
            Some(t) => t,
            None => {
                self.tree_listings.fetch_add(1, Ordering::SeqCst);
                let trees = Arc::new(self.list_trees(url, &mirror, sha).await?);
                let mut all = self.trees.lock().unwrap_or_else(|e| e.into_inner());
                if all.len() >= TREE_CACHE_COMMITS {
                    all.remove(0);
                }
                all.push((key, trees.clone()));
                trees
            }
        };
        let path = normalize_tree_path(path);
        Ok(trees
            .dirs
            .get(&path)
            .filter(|(_, plain)| *plain)
            .map(|(id, _)| id.clone()))
    }

    async fn list_trees(
        &self,
        url: &str,
        mirror: &Path,
        sha: &str,
    ) -> Result<CommitTrees, GitError> {
        let git_dir = format!("--git-dir={}", mirror.to_string_lossy());
        let tree_spec = format!("{sha}^{{tree}}");
        let root = self
            .git
            .run(
                mirror,
                &[&git_dir, "rev-parse", "--verify", "--quiet", &tree_spec],
                &Credentials::none(),
            )
            .await?
            .map_err(|source| GitError::Local {
                action: format!("reading the tree of {sha}"),
                url: redact_url(url),
                source: Box::new(source),
            })?;
        let out = self
            .git
            .run(
                mirror,
                &[&git_dir, "ls-tree", "-r", "-t", "-z", "--full-tree", sha],
                &Credentials::none(),
            )
            .await?
            .map_err(|source| GitError::Local {
                action: format!("listing the files of {sha}"),
                url: redact_url(url),
                source: Box::new(source),
            })?;
        Ok(parse_trees(root.trim(), &out))
    }
}

/// A repository path as `ls-tree` names directories: no `./`, no trailing `/`, `""` the root.
pub(crate) fn normalize_tree_path(path: &str) -> String {
    let parts: Vec<&str> = path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

/// Files that make a directory a Kustomize or Helm source, whose output may depend on files
/// outside the directory.
pub(crate) const RENDERED_BY_TOOLS: [&str; 4] = [
    "kustomization.yaml",
    "kustomization.yml",
    "Kustomization",
    "Chart.yaml",
];

/// Reads `git ls-tree -r -t -z` output (`<mode> <type> <id>\t<path>\0`) of a commit whose root
/// tree is `root`: every directory's id, and whether anything below it is a symlink (mode
/// 120000) or a submodule (type commit).
pub(crate) fn parse_trees(root: &str, out: &str) -> CommitTrees {
    let mut dirs: HashMap<String, (String, bool)> = HashMap::new();
    dirs.insert(String::new(), (root.to_owned(), true));
    let mut special = Vec::new();
    let mut tool_dirs = Vec::new();
    for entry in out.split('\0').filter(|e| !e.is_empty()) {
        let Some((meta, path)) = entry.split_once('\t') else {
            continue;
        };
        let mut fields = meta.split(' ');
        let (Some(mode), Some(kind), Some(id)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        if kind == "tree" {
            dirs.insert(path.to_owned(), (id.to_owned(), true));
        } else if mode == "120000" || kind == "commit" {
            special.push(path.to_owned());
        } else if let Some((dir, name)) = path.rsplit_once('/').or(Some(("", path)))
            && RENDERED_BY_TOOLS.contains(&name)
        {
            tool_dirs.push(dir.to_owned());
        }
    }
    for dir in tool_dirs {
        if let Some(entry) = dirs.get_mut(&dir) {
            entry.1 = false;
        }
    }
    for path in special {
        // Every directory above a symlink or submodule is not plain.
        let mut dir = path.as_str();
        loop {
            dir = dir.rsplit_once('/').map_or("", |(d, _)| d);
            if let Some(entry) = dirs.get_mut(dir) {
                entry.1 = false;
            }
            if dir.is_empty() {
                break;
            }
        }
    }
    CommitTrees { dirs }
}
