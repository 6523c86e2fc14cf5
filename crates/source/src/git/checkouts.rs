//! Checkouts: read-only working trees of whole commits, and of single plain directories, made
//! once and shared by every caller that asks for the same files.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use super::cache::{COMMIT_INFO_CACHE_LIMIT, DIRECTORY_CHECKOUTS_PER_COMMIT, RepoCache};
use super::url::*;
use super::{Credentials, GitError};
use crate::command::run_command;

impl RepoCache {
    /// A read-only working tree of commit `sha` of `url`, created on first request and reused.
    ///
    /// `sha` must be a full SHA (from [`RepoCache::resolve_revision`]) of a fetched repository.
    /// Files are made read-only; callers must not write into the tree. Submodules and Git LFS
    /// files are not materialized.
    pub async fn checkout(&self, url: &str, sha: &str) -> Result<PathBuf, GitError> {
        if !is_full_sha(sha) {
            return Err(GitError::InvalidRevision {
                url: redact_url(url),
                revision: sha.into(),
            });
        }
        let target = self.checkouts_dir(url).join(sha);
        self.checkout_once(url, sha, &target, sha, "").await
    }

    /// A checkout of only directory `path` of commit `sha` of a fetched `url`, when that is a
    /// plain directory of manifests (see [`RepoCache::tree_id`]): a render of it reads nothing
    /// else. The files sit at `path` under the returned root, as in a whole checkout, and the
    /// checkout is shared by every commit with the same files there. A commit to one app of a
    /// repository of thousands writes that app's files, not the repository's.
    ///
    /// `None` (check out the whole commit instead) when the directory is not plain, when the
    /// whole commit is checked out already, and after [`DIRECTORY_CHECKOUTS_PER_COMMIT`]
    /// directories of the commit (many apps rendering at one commit share one checkout).
    pub async fn checkout_directory(
        &self,
        url: &str,
        sha: &str,
        path: &str,
    ) -> Result<Option<PathBuf>, GitError> {
        // Once the whole commit is checked out, or many of its directories were asked for
        // (the first sync of many apps), one checkout of everything serves them all.
        let whole = self.checkouts_dir(url).join(sha);
        if whole.is_dir() {
            return Ok(None);
        }
        let Some(tree) = self.tree_id(url, sha, path).await? else {
            return Ok(None);
        };
        // The path is one `ls-tree` listed as a directory of the commit, so it has no `..`
        // and is not absolute; the check only guards that reasoning.
        let path = super::trees::normalize_tree_path(path);
        if path.split('/').any(|part| part == "..") || !is_full_sha(&tree) {
            return Ok(None);
        }
        // The repository's root is the whole commit.
        if path.is_empty() {
            return Ok(None);
        }
        let name = {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(path.as_bytes());
            let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
            format!("{tree}-{hex}")
        };
        let target = self.checkouts_dir(url).join("directories").join(name);
        if !target.is_dir() {
            let mut counts = self
                .directories_per_commit
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if counts.len() >= COMMIT_INFO_CACHE_LIMIT {
                counts.clear();
            }
            let count = counts.entry(whole).or_default();
            if *count >= DIRECTORY_CHECKOUTS_PER_COMMIT {
                return Ok(None);
            }
            *count += 1;
        }
        self.checkout_once(url, sha, &target, &tree, &path)
            .await
            .map(Some)
    }

    /// Makes `target` (unless it exists) with the files of tree-ish `what` (a commit, or a
    /// directory's tree) at `path` under it. Callers that ask for the same target meanwhile wait
    /// for it instead of each writing the files again (a push seen by the poller, the webhook
    /// and every app's look at once).
    async fn checkout_once(
        &self,
        url: &str,
        sha: &str,
        target: &Path,
        what: &str,
        path: &str,
    ) -> Result<PathBuf, GitError> {
        if target.is_dir() {
            return Ok(target.to_path_buf());
        }
        let gate = self
            .checkouts_running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(target.to_path_buf())
            .or_default()
            .clone();
        let made = {
            let _one_at_a_time = gate.lock().await;
            if target.is_dir() {
                return Ok(target.to_path_buf());
            }
            self.checkout_new(url, sha, target, what, path).await
        };
        // Later callers find the directory; those waiting on the gate see it too.
        self.checkouts_running
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(target);
        made
    }

    /// Writes the files of tree-ish `what` of `url` (at commit `sha`) to `path` under `target`,
    /// through a temporary directory beside it.
    async fn checkout_new(
        &self,
        url: &str,
        sha: &str,
        target: &Path,
        what: &str,
        path: &str,
    ) -> Result<PathBuf, GitError> {
        self.checkouts.fetch_add(1, Ordering::SeqCst);
        if !path.is_empty() {
            self.directory_checkouts.fetch_add(1, Ordering::SeqCst);
        }
        let mirror = self.mirror_dir(url);
        if !mirror.join("HEAD").exists() {
            return Err(GitError::NotFetched {
                url: redact_url(url),
            });
        }
        let dir = target.parent().unwrap_or(target);
        std::fs::create_dir_all(dir).map_err(GitError::io("creating", dir))?;
        let tmp = tempfile::Builder::new()
            .prefix(".checkout-")
            .tempdir_in(dir)
            .map_err(GitError::io("creating a temporary directory in", dir))?;
        let tree = tmp.path().join("tree");
        let files = if path.is_empty() {
            tree.clone()
        } else {
            tree.join(path)
        };
        std::fs::create_dir_all(&files).map_err(GitError::io("creating", &files))?;
        let (mut spec, _files) = self.git.command(
            &files,
            &[
                &format!("--git-dir={}", mirror.to_string_lossy()),
                &format!("--work-tree={}", files.to_string_lossy()),
                "-c",
                "core.hooksPath=/dev/null",
                "checkout",
                "--quiet",
                "--force",
                what,
                "--",
                ".",
            ],
            &Credentials::none(),
        )?;
        spec = spec.with_env("GIT_INDEX_FILE", tmp.path().join("index").to_string_lossy());
        let action = if path.is_empty() {
            format!("checking out {sha}")
        } else {
            format!("checking out {path} of {sha}")
        };
        run_command(spec).await.map_err(|source| GitError::Local {
            action,
            url: redact_url(url),
            source: Box::new(source),
        })?;
        make_read_only(&tree).map_err(GitError::io("making the checkout read-only:", &tree))?;
        match std::fs::rename(&tree, target) {
            Ok(()) => Ok(target.to_path_buf()),
            // Another process (or cache) finished the same checkout first: use theirs.
            Err(_) if target.is_dir() => Ok(target.to_path_buf()),
            Err(e) => Err(GitError::io("moving the checkout to", target)(e)),
        }
    }
}

/// Marks every regular file under `dir` read-only (symlinks are left alone).
pub(crate) fn make_read_only(dir: &Path) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            make_read_only(&entry.path())?;
        } else if kind.is_file() {
            let mut perms = entry.metadata()?.permissions();
            perms.set_readonly(true);
            std::fs::set_permissions(entry.path(), perms)?;
        }
    }
    Ok(())
}
