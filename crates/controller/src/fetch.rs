//! Fetching: a Git source's checkout at the revision the app asks for, with the repository's
//! credentials and (for SSH) the operator's known hosts.

use std::path::PathBuf;
use std::time::Duration;

use ferry_core::application::ApplicationSource;

use crate::differ::Differ;
use crate::error::AppError;

impl Differ {
    /// Fetches (once per repo per poll) and checks out a Git source at its target revision (or
    /// `revision_override`): the commit SHA and the checkout's root.
    pub(crate) async fn checkout_source(
        &self,
        source: &ApplicationSource,
        max_age: Duration,
        revision_override: Option<&str>,
    ) -> Result<(String, PathBuf), AppError> {
        let started = std::time::Instant::now();
        let sha = self
            .resolve_source(source, max_age, revision_override)
            .await?;
        let root = self
            .checkout_commit(&source.repo_url, &sha, None, started)
            .await?;
        Ok((sha, root))
    }

    /// Checks out commit `sha` of a fetched `url`: only directory `plain_directory` when that
    /// is given and the commit has a plain directory of manifests there (a render of it reads
    /// nothing else), the whole commit otherwise. `started` is when the work on the revision
    /// began (for `ferry_git_seconds`).
    pub(crate) async fn checkout_commit(
        &self,
        url: &str,
        sha: &str,
        plain_directory: Option<&str>,
        started: std::time::Instant,
    ) -> Result<PathBuf, AppError> {
        let repo = crate::metrics::RepoLabels::of(url);
        let directory = match plain_directory {
            Some(path) => self
                .repos
                .checkout_directory(url, sha, path)
                .await
                .map_err(|e| self.git_failed(&repo, e))?,
            None => None,
        };
        let root = match directory {
            Some(root) => root,
            None => self
                .repos
                .checkout(url, sha)
                .await
                .map_err(|e| self.git_failed(&repo, e))?,
        };
        self.observe_git(&repo, started);
        Ok(root)
    }

    /// Records in `ferry_git_seconds` the time since `started` spent making a revision of
    /// repository `repo` available (fetched when due, resolved, checked out when rendered).
    pub(crate) fn observe_git(
        &self,
        repo: &crate::metrics::RepoLabels,
        started: std::time::Instant,
    ) {
        self.metrics
            .git_seconds
            .get_or_create(repo)
            .observe(started.elapsed().as_secs_f64());
    }

    fn git_failed(&self, repo: &crate::metrics::RepoLabels, e: ferry_source::GitError) -> AppError {
        self.metrics.git_errors.get_or_create(repo).inc();
        let message = self.credentials.explain_host_key(e.to_string());
        AppError::git(&e, message)
    }

    /// Fetches (once per repo per poll) and resolves a Git source's target revision (or
    /// `revision_override`) to a commit SHA, without checking it out.
    pub(crate) async fn resolve_source(
        &self,
        source: &ApplicationSource,
        max_age: Duration,
        revision_override: Option<&str>,
    ) -> Result<String, AppError> {
        let url = &source.repo_url;
        let revision = revision_override
            .filter(|r| !r.is_empty())
            .unwrap_or_else(|| source.target_revision_or_head());
        // Credentials are read (a LIST of Secrets) only when git will talk to the remote: a
        // fetch is due, or a commit or ref that may be missing from the mirror is asked for.
        // Otherwise the fetch below is skipped (a slack second covers the time until it checks).
        let may_fetch_one = revision.starts_with("refs/")
            || (revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit()));
        let (creds, max_age) = if self.repos.fetch_due(url, max_age) || may_fetch_one {
            let creds = self
                .credentials
                .for_url(url)
                .await
                .map_err(AppError::unavailable)?;
            (creds, max_age)
        } else {
            (
                ferry_source::git::Credentials::none(),
                max_age + Duration::from_secs(1),
            )
        };
        let repo = crate::metrics::RepoLabels::of(url);
        let git_failed = |e: ferry_source::GitError| self.git_failed(&repo, e);
        // SSH checks host keys strictly, against the operator's ConfigMap.
        if ferry_source::git::url_protocol(url) == "ssh" && self.repos.fetch_due(url, max_age) {
            let known_hosts = self
                .credentials
                .known_hosts()
                .await
                .map_err(AppError::unavailable)?;
            self.repos
                .set_known_hosts(&known_hosts)
                .map_err(|e| AppError::unavailable(e.to_string()))?;
        }
        let sha = self
            .repos
            .resolve_fresh(url, &creds, revision, max_age)
            .await
            .map_err(git_failed)?;
        Ok(sha)
    }
}

impl Differ {
    /// Fetches (at most once per poll interval, shared with the apps of the same repository)
    /// and checks out `repo_url` at `revision`, with the repository's credentials and the
    /// engine's URL rules: the commit SHA and the read-only checkout's root. For the
    /// ApplicationSet `git` generator; the error is the message an app's condition would show.
    pub async fn checkout_repo(
        &self,
        repo_url: &str,
        revision: &str,
    ) -> Result<(String, PathBuf), String> {
        let source = ApplicationSource {
            repo_url: repo_url.to_string(),
            target_revision: Some(revision.to_string()),
            ..ApplicationSource::default()
        };
        self.checkout_source(&source, self.cfg.poll_interval, None)
            .await
            .map_err(|e| e.to_string())
    }
}
