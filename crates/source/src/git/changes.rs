//! Which files changed between two commits of a fetched repository: what lets a push refresh
//! only the apps whose inputs it touched. One `git diff-tree` per pair of commits, cached.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::url::{check_revision, is_full_sha};
use super::{Credentials, GitError, RepoCache, redact_url};

/// The changed files of this many pairs of commits are kept (the oldest pair is dropped first).
pub const CHANGE_CACHE_PAIRS: usize = 64;

/// A pair of commits of a mirror: the mirror's path, the older and the newer SHA.
type PairKey = (PathBuf, String, String);

/// Changed files by pair of commits, oldest first, at most [`CHANGE_CACHE_PAIRS`].
#[derive(Debug, Default)]
pub(crate) struct ChangeCache(Mutex<Vec<(PairKey, Arc<Vec<String>>)>>);

impl ChangeCache {
    fn get(&self, key: &PairKey) -> Option<Arc<Vec<String>>> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn put(&self, key: PairKey, paths: Arc<Vec<String>>) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if all.iter().any(|(k, _)| *k == key) {
            return;
        }
        if all.len() >= CHANGE_CACHE_PAIRS {
            all.remove(0);
        }
        all.push((key, paths));
    }

    /// How many pairs are kept.
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl RepoCache {
    /// The files (paths from the repository root, `/`-separated) that differ between commits
    /// `old` and `new` of the fetched `url`, added, modified, deleted or renamed (a rename is
    /// both its old and its new path). Both must be full commit SHAs (anything else is refused,
    /// so neither can be read as an option); a commit the mirror lacks (a force push, a
    /// repository recreated) is an error, and callers treat it as "everything changed".
    pub async fn changed_paths(
        &self,
        url: &str,
        old: &str,
        new: &str,
    ) -> Result<Arc<Vec<String>>, GitError> {
        for sha in [old, new] {
            check_revision(url, sha)?;
            if !is_full_sha(sha) {
                return Err(GitError::InvalidRevision {
                    url: redact_url(url),
                    revision: sha.to_owned(),
                });
            }
        }
        if old == new {
            return Ok(Arc::new(Vec::new()));
        }
        let mirror = self.mirror_dir(url);
        let key = (mirror.clone(), old.to_owned(), new.to_owned());
        if let Some(paths) = self.changes.get(&key) {
            return Ok(paths);
        }
        let git_dir = format!("--git-dir={}", mirror.to_string_lossy());
        let out = self
            .git()
            .run(
                &mirror,
                &[
                    &git_dir,
                    "diff-tree",
                    "-r",
                    "-z",
                    "--name-only",
                    "--no-renames",
                    "--no-commit-id",
                    old,
                    new,
                    "--",
                ],
                &Credentials::none(),
            )
            .await?
            .map_err(|source| GitError::Local {
                action: format!("listing the files changed between {old} and {new}"),
                url: redact_url(url),
                source: Box::new(source),
            })?;
        let paths = Arc::new(parse_name_list(&out));
        self.changes.put(key, paths.clone());
        Ok(paths)
    }

    /// How many pairs of commits have their changed files cached (at most
    /// [`CHANGE_CACHE_PAIRS`]).
    pub fn changed_paths_cached(&self) -> usize {
        self.changes.len()
    }
}

/// The paths of `git diff-tree -z --name-only` output (NUL-separated).
fn parse_name_list(out: &str) -> Vec<String> {
    out.split('\0')
        .map(str::trim_end)
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_lists_split_on_nul() {
        assert_eq!(
            parse_name_list("apps/a/cm.yaml\0shared/values.yaml\0"),
            vec!["apps/a/cm.yaml", "shared/values.yaml"]
        );
        assert!(parse_name_list("").is_empty());
    }

    #[test]
    fn the_cache_keeps_the_newest_pairs() {
        let cache = ChangeCache::default();
        for i in 0..CHANGE_CACHE_PAIRS + 3 {
            cache.put(
                (PathBuf::from("m"), i.to_string(), "new".into()),
                Arc::new(vec![format!("f{i}")]),
            );
        }
        assert_eq!(cache.len(), CHANGE_CACHE_PAIRS);
        assert!(
            cache
                .get(&(PathBuf::from("m"), "0".into(), "new".into()))
                .is_none()
        );
        let last = (CHANGE_CACHE_PAIRS + 2).to_string();
        assert_eq!(
            cache
                .get(&(PathBuf::from("m"), last.clone(), "new".into()))
                .map(|p| p[0].clone()),
            Some(format!("f{last}"))
        );
    }
}
