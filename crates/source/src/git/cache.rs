//! [`RepoCache`]: a bare mirror per repository (fetched at most once per poll, concurrent
//! callers sharing one fetch) and a read-only checkout per commit.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::runner::Git;
use super::trees::CommitTrees;
use super::url::*;
use super::{CommitInfo, Credentials, GitError, LowSpeedLimit};
use crate::command::CommandError;

/// Per-repository fetch bookkeeping, behind that repository's async mutex.
#[derive(Default)]
pub(crate) struct RepoState {
    /// When the last successful fetch started.
    last_success_started: Option<Instant>,
    /// When the last fetch (successful or not) ended, and its result.
    last_completed: Option<(Instant, Result<(), Arc<GitError>>)>,
}

/// How long a failed fetch answers for its repository (see [`RepoCache::fetch_if_older`]).
pub const FAILURE_SHARED_FOR: Duration = Duration::from_secs(5);

/// A cache of bare mirrors (one per repository URL) and of checkouts (one per commit).
///
/// Layout under the root: `home/` (git's private HOME), `mirrors/<name>-<hash>/` (bare
/// repositories), `checkouts/<name>-<hash>/<sha>/` (read-only working trees),
/// `checkouts/<name>-<hash>/directories/<tree>-<hash>/` (one plain directory of a commit,
/// at its path; see [`RepoCache::checkout_directory`]). Each repository
/// has its own async mutex, held only while that repository is fetched; other repositories
/// never wait for it. Checkouts are not evicted: remove `checkouts/` while ferry is stopped to
/// reclaim space. Two processes must not share one root.
pub struct RepoCache {
    root: PathBuf,
    key: Vec<u8>,
    pub(super) git: Git,
    repos: Mutex<HashMap<RepoUrl, Arc<tokio::sync::Mutex<RepoState>>>>,
    fetches: AtomicUsize,
    pub(super) checkouts: AtomicUsize,
    pub(super) directory_checkouts: AtomicUsize,
    pub(super) tree_listings: AtomicUsize,
    /// Revisions already resolved in a mirror, valid until the mirror's refs change: keyed by
    /// mirror path and revision; each entry remembers the mirror's generation it was read at.
    resolved: Mutex<HashMap<(PathBuf, String), (u64, String)>>,
    /// Bumped for a mirror whenever a fetch may have moved its refs.
    generations: Mutex<HashMap<PathBuf, u64>>,
    /// Commit metadata by mirror and SHA (commits never change).
    commits: Mutex<HashMap<(PathBuf, String), CommitInfo>>,
    /// The directories of the latest commits looked at, by mirror and SHA.
    pub(super) trees: Mutex<Vec<(CommitKey, Arc<CommitTrees>)>>,
    /// The files changed between pairs of commits (see [`RepoCache::changed_paths`]).
    pub(super) changes: super::changes::ChangeCache,
    /// One gate per checkout being made: callers that ask for the same commit meanwhile wait
    /// for it instead of each checking out the whole tree again (a push seen by the poller, the
    /// webhook and every app's look at once).
    pub(super) checkouts_running: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    /// How many directories of each commit (by its whole checkout's path) were checked out
    /// on their own.
    pub(super) directories_per_commit: Mutex<HashMap<PathBuf, usize>>,
}

/// A commit of a mirror: the mirror's path and the commit's SHA.
pub(crate) type CommitKey = (PathBuf, String);

/// Directories of one commit checked out on their own (see [`RepoCache::checkout_directory`])
/// before the whole commit is checked out instead.
pub const DIRECTORY_CHECKOUTS_PER_COMMIT: usize = 8;

/// At most this many commits' metadata are kept; the cache starts over when full.
pub(crate) const COMMIT_INFO_CACHE_LIMIT: usize = 10_000;

impl fmt::Debug for RepoCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepoCache")
            .field("root", &self.root)
            .field("fetches", &self.fetch_count())
            .finish_non_exhaustive()
    }
}

/// Default timeout of one git command (a fetch of a large repository can take a while).
pub const DEFAULT_GIT_TIMEOUT: Duration = Duration::from_secs(180);

/// The ref in each mirror that holds the commit the remote's `HEAD` pointed at.
pub(crate) const REMOTE_HEAD_REF: &str = "refs/ferry/remote-head";

impl RepoCache {
    /// A cache under `root` (created on first use) with [`DEFAULT_GIT_TIMEOUT`].
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::with_timeout(root, DEFAULT_GIT_TIMEOUT)
    }

    /// A cache under `root` whose git commands time out after `timeout`.
    pub fn with_timeout(root: impl Into<PathBuf>, timeout: Duration) -> Self {
        let root = root.into();
        Self {
            git: Git::new(root.join("home"), timeout),
            key: cache_key(&root),
            root,
            repos: Mutex::new(HashMap::new()),
            fetches: AtomicUsize::new(0),
            checkouts: AtomicUsize::new(0),
            directory_checkouts: AtomicUsize::new(0),
            tree_listings: AtomicUsize::new(0),
            resolved: Mutex::default(),
            generations: Mutex::default(),
            commits: Mutex::default(),
            trees: Mutex::default(),
            changes: Default::default(),
            checkouts_running: Mutex::default(),
            directories_per_commit: Mutex::default(),
        }
    }

    /// Replaces the SSH known hosts; see [`Git::set_known_hosts`].
    pub fn set_known_hosts(&self, text: &str) -> Result<(), GitError> {
        self.git.set_known_hosts(text)
    }

    /// Allows (or refuses, the default) `file://` URLs and local paths; see
    /// [`Git::with_file_repos`].
    #[must_use]
    pub fn with_file_repos(mut self, allow: bool) -> Self {
        self.git.allow_file = allow;
        self
    }

    /// Replaces git's low-speed limit; see [`Git::with_low_speed_limit`].
    #[must_use]
    pub fn with_low_speed_limit(mut self, limit: Option<LowSpeedLimit>) -> Self {
        self.git.low_speed = limit;
        self
    }

    /// The git runner this cache uses (for [`Git::ls_remote`]).
    pub fn git(&self) -> &Git {
        &self.git
    }

    /// How many checkouts were made (successful or not) since this cache was created.
    pub fn checkout_count(&self) -> usize {
        self.checkouts.load(Ordering::SeqCst)
    }

    /// How many of those checkouts were of one directory ([`RepoCache::checkout_directory`]).
    pub fn directory_checkout_count(&self) -> usize {
        self.directory_checkouts.load(Ordering::SeqCst)
    }

    /// How many times a commit's whole tree was listed (a miss of the tree cache of
    /// [`RepoCache::tree_id`]) since this cache was created.
    pub fn tree_listing_count(&self) -> usize {
        self.tree_listings.load(Ordering::SeqCst)
    }

    /// How many fetches ran (successful or not) since this cache was created.
    pub fn fetch_count(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    /// The bare mirror of `url`.
    pub fn mirror_dir(&self, url: &str) -> PathBuf {
        self.root
            .join("mirrors")
            .join(repo_dir_name(&self.key, url))
    }

    /// The current ref generation of `mirror`.
    fn generation(&self, mirror: &Path) -> u64 {
        let generations = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        generations.get(mirror).copied().unwrap_or_default()
    }

    /// Forgets what was resolved in `mirror`: a fetch may move its refs.
    fn refs_may_change(&self, mirror: &Path) {
        *self
            .generations
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(mirror.to_path_buf())
            .or_default() += 1;
        self.resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(m, _), _| m != mirror);
    }

    pub(super) fn checkouts_dir(&self, url: &str) -> PathBuf {
        self.root
            .join("checkouts")
            .join(repo_dir_name(&self.key, url))
    }

    fn slot(&self, url: &str) -> Arc<tokio::sync::Mutex<RepoState>> {
        let mut repos = self.repos.lock().unwrap_or_else(|e| e.into_inner());
        repos.entry(RepoUrl::new(url)).or_default().clone()
    }

    /// Fetches all branches and tags of `url` into its mirror (creating it on first use).
    ///
    /// Callers that arrive while a fetch of the same repository is running wait for it and share
    /// its result instead of fetching again.
    pub async fn fetch(&self, url: &str, creds: &Credentials) -> Result<(), GitError> {
        self.fetch_if_older(url, creds, Duration::ZERO).await
    }

    /// Fetches `url` unless a successful fetch started at most `max_age` before this call (or
    /// one finished while this call waited for it). With `max_age` = the poll interval, every
    /// app of a poll round shares one fetch per repository.
    pub async fn fetch_if_older(
        &self,
        url: &str,
        creds: &Credentials,
        max_age: Duration,
    ) -> Result<(), GitError> {
        self.git.check_url(url)?;
        let requested = Instant::now();
        let slot = self.slot(url);
        let mut state = slot.lock().await;
        if let Some((completed, result)) = &state.last_completed
            && *completed >= requested
        {
            return result.clone().map_err(GitError::SharedFetch);
        }
        // A fetch that failed since the last success, moments ago, answers for the
        // repository: the server is down or refuses, and the mirror is out of date. Callers
        // report that (a ComparisonError) rather than the mirror's older commits, and the apps
        // a failed poll queues at once share that one failure instead of each asking the
        // server again. After `FAILURE_SHARED_FOR` the next call tries again.
        if let Some((completed, Err(e))) = &state.last_completed
            && state
                .last_success_started
                .is_none_or(|started| started < *completed)
            && requested.saturating_duration_since(*completed) <= max_age.min(FAILURE_SHARED_FOR)
        {
            return Err(GitError::SharedFetch(e.clone()));
        }
        if let Some(started) = state.last_success_started
            && requested.saturating_duration_since(started) <= max_age
        {
            return Ok(());
        }
        let started = Instant::now();
        self.fetches.fetch_add(1, Ordering::SeqCst);
        let mirror = self.mirror_dir(url);
        self.refs_may_change(&mirror);
        let result = self.fetch_now(url, creds).await;
        self.refs_may_change(&mirror);
        if result.is_ok() {
            state.last_success_started = Some(started);
        }
        let shared = result.map_err(Arc::new);
        state.last_completed = Some((Instant::now(), shared.clone()));
        shared.map_err(GitError::SharedFetch)
    }

    async fn ensure_mirror(&self, url: &str) -> Result<PathBuf, GitError> {
        let mirror = self.mirror_dir(url);
        if mirror.join("HEAD").exists() {
            return Ok(mirror);
        }
        let parent = mirror.parent().expect("mirror has a parent");
        std::fs::create_dir_all(parent).map_err(GitError::io("creating", parent))?;
        let tmp = tempfile::Builder::new()
            .prefix(".init-")
            .tempdir_in(parent)
            .map_err(GitError::io("creating a temporary directory in", parent))?;
        let tmp_str = tmp.path().to_string_lossy().into_owned();
        self.git
            .run(
                parent,
                &["init", "--bare", "-q", &tmp_str],
                &Credentials::none(),
            )
            .await?
            .map_err(|source| GitError::Local {
                action: "creating the mirror".into(),
                url: redact_url(url),
                source: Box::new(source),
            })?;
        std::fs::rename(tmp.path(), &mirror).map_err(GitError::io("creating mirror", &mirror))?;
        Ok(mirror)
    }

    async fn fetch_now(&self, url: &str, creds: &Credentials) -> Result<(), GitError> {
        let mirror = self.ensure_mirror(url).await?;
        let git_dir = format!("--git-dir={}", mirror.to_string_lossy());
        let head_spec = format!("+HEAD:{REMOTE_HEAD_REF}");
        let mut args = vec![
            git_dir.as_str(),
            "fetch",
            "--quiet",
            "--prune",
            "--force",
            url,
            "+refs/heads/*:refs/heads/*",
            "+refs/tags/*:refs/tags/*",
            head_spec.as_str(),
        ];
        tracing::debug!(url = %redact_url(url), "fetching repository");
        match self.git.run(&mirror, &args, creds).await? {
            Ok(_) => Ok(()),
            Err(e) if e.stderr_tail().contains("couldn't find remote ref HEAD") => {
                // An empty remote, or a HEAD pointing at a missing branch: fetch the rest.
                args.pop();
                self.git
                    .run(&mirror, &args, creds)
                    .await?
                    .map_err(|source| self.fetch_error(url, source))?;
                let _ = self
                    .git
                    .run(
                        &mirror,
                        &[&git_dir, "update-ref", "-d", REMOTE_HEAD_REF],
                        creds,
                    )
                    .await?;
                Ok(())
            }
            Err(source) => Err(self.fetch_error(url, source)),
        }
    }

    fn fetch_error(&self, url: &str, source: CommandError) -> GitError {
        GitError::transfer(
            "fetching",
            url,
            self.git.low_speed,
            source,
            |url, source| GitError::Fetch { url, source },
        )
    }

    /// Whether [`RepoCache::fetch_if_older`] with `max_age` would fetch `url` now: no successful
    /// fetch started within `max_age`, and none is running (callers of a running fetch share
    /// it). Callers use it to read credentials only when a fetch will need them.
    pub fn fetch_due(&self, url: &str, max_age: Duration) -> bool {
        let slot = self.slot(url);
        let Ok(state) = slot.try_lock() else {
            return false;
        };
        state
            .last_success_started
            .is_none_or(|started| started.elapsed() > max_age)
    }

    /// How long until a fetch of `url` with `max_age` falls due; `None` before the first
    /// successful fetch. Apps that are looked at again then share that one fetch.
    pub fn fetch_due_in(&self, url: &str, max_age: Duration) -> Option<Duration> {
        let slot = self.slot(url);
        let Ok(state) = slot.try_lock() else {
            return Some(max_age); // fetching now
        };
        state
            .last_success_started
            .map(|started| max_age.saturating_sub(started.elapsed()))
    }

    /// Fetches `url` if its last successful fetch is older than `max_age` (see
    /// [`RepoCache::fetch_if_older`]), then resolves `revision` to a commit SHA
    /// ([`RepoCache::resolve_revision`]).
    pub async fn resolve_fresh(
        &self,
        url: &str,
        creds: &Credentials,
        revision: &str,
        max_age: Duration,
    ) -> Result<String, GitError> {
        check_revision(url, revision)?;
        self.fetch_if_older(url, creds, max_age).await?;
        self.resolve_revision(url, creds, revision).await
    }

    /// Resolves `revision` in the fetched mirror of `url` to a full commit SHA.
    ///
    /// `HEAD` or empty is the remote's default branch; otherwise a branch, then a tag, then a
    /// (short or full) commit SHA; a full ref name (`refs/pull/1/head`) is also accepted. A full
    /// SHA or ref name the mirror lacks (a commit on no branch) is fetched on its own. A revision
    /// that names nothing gives [`GitError::RevisionNotFound`].
    pub async fn resolve_revision(
        &self,
        url: &str,
        creds: &Credentials,
        revision: &str,
    ) -> Result<String, GitError> {
        check_revision(url, revision)?;
        let mirror = self.mirror_dir(url);
        if !mirror.join("HEAD").exists() {
            return Err(GitError::NotFetched {
                url: redact_url(url),
            });
        }
        if let Some(sha) = self.resolve_local(&mirror, revision).await? {
            return Ok(sha);
        }
        if is_full_sha(revision) || revision.starts_with("refs/") {
            let slot = self.slot(url);
            let _state = slot.lock().await;
            let refspec = if revision.starts_with("refs/") {
                format!("+{revision}:{revision}")
            } else {
                format!("+{revision}:refs/ferry/commits/{revision}")
            };
            let git_dir = format!("--git-dir={}", mirror.to_string_lossy());
            self.fetches.fetch_add(1, Ordering::SeqCst);
            self.refs_may_change(&mirror);
            let fetched = self
                .git
                .run(
                    &mirror,
                    &[&git_dir, "fetch", "--quiet", url, &refspec],
                    creds,
                )
                .await?;
            self.refs_may_change(&mirror);
            match fetched {
                Ok(_) => {
                    if let Some(sha) = self.resolve_local(&mirror, revision).await? {
                        return Ok(sha);
                    }
                }
                Err(e) if !names_missing_revision(e.stderr_tail()) => {
                    return Err(GitError::Fetch {
                        url: redact_url(url),
                        source: Box::new(e),
                    });
                }
                Err(_) => {}
            }
        }
        Err(GitError::RevisionNotFound {
            url: redact_url(url),
            revision: revision.to_owned(),
        })
    }

    /// `revision` of `url` as the mirror has it now (no fetch, no network): `None` before the
    /// first fetch or when the mirror does not hold it. The poller uses it to see which apps a
    /// fetch moved.
    pub async fn resolve_cached(&self, url: &str, revision: &str) -> Option<String> {
        check_revision(url, revision).ok()?;
        let mirror = self.mirror_dir(url);
        if !mirror.join("HEAD").exists() {
            return None;
        }
        self.resolve_local(&mirror, revision).await.ok().flatten()
    }

    /// Looks `revision` up in the mirror only; answers from memory while no fetch has run since
    /// the last look-up (no `git` process per app and reconcile).
    async fn resolve_local(
        &self,
        mirror: &Path,
        revision: &str,
    ) -> Result<Option<String>, GitError> {
        let key = (mirror.to_path_buf(), revision.to_owned());
        let generation = self.generation(mirror);
        if let Some((g, sha)) = self
            .resolved
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            && *g == generation
        {
            return Ok(Some(sha.clone()));
        }
        let found = self.resolve_local_uncached(mirror, revision).await?;
        if let Some(sha) = &found {
            let mut resolved = self.resolved.lock().unwrap_or_else(|e| e.into_inner());
            // Only if no fetch started meanwhile (it may have moved the ref).
            if self.generation(mirror) == generation {
                resolved.insert(key, (generation, sha.clone()));
            }
        }
        Ok(found)
    }

    async fn resolve_local_uncached(
        &self,
        mirror: &Path,
        revision: &str,
    ) -> Result<Option<String>, GitError> {
        let candidates: Vec<String> = if is_head(revision) {
            vec![REMOTE_HEAD_REF.to_owned()]
        } else if revision.starts_with("refs/") {
            vec![revision.to_owned()]
        } else {
            let mut c = vec![
                format!("refs/heads/{revision}"),
                format!("refs/tags/{revision}"),
            ];
            if is_hex_prefix(revision) {
                c.push(revision.to_owned());
            }
            c
        };
        let git_dir = format!("--git-dir={}", mirror.to_string_lossy());
        for candidate in candidates {
            let spec = format!("{candidate}^{{commit}}");
            let out = self
                .git
                .run(
                    mirror,
                    &[&git_dir, "rev-parse", "--verify", "--quiet", &spec],
                    &Credentials::none(),
                )
                .await?;
            if let Ok(out) = out {
                let sha = out.trim();
                if is_full_sha(sha) {
                    return Ok(Some(sha.to_owned()));
                }
            }
        }
        Ok(None)
    }

    /// Author, date and subject of commit `sha` of a fetched `url`.
    pub async fn commit_info(&self, url: &str, sha: &str) -> Result<CommitInfo, GitError> {
        check_revision(url, sha)?;
        let mirror = self.mirror_dir(url);
        if !mirror.join("HEAD").exists() {
            return Err(GitError::NotFetched {
                url: redact_url(url),
            });
        }
        let key = (mirror.clone(), sha.to_owned());
        if let Some(info) = self
            .commits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
        {
            return Ok(info.clone());
        }
        let git_dir = format!("--git-dir={}", mirror.to_string_lossy());
        let spec = format!("{sha}^{{commit}}");
        let out = self
            .git
            .run(
                &mirror,
                &[
                    &git_dir,
                    "log",
                    "-1",
                    "--no-show-signature",
                    "--format=%H%x00%an%x00%ae%x00%aI%x00%s",
                    &spec,
                    "--",
                ],
                &Credentials::none(),
            )
            .await?
            .map_err(|source| GitError::Local {
                action: format!("reading commit {sha}"),
                url: redact_url(url),
                source: Box::new(source),
            })?;
        let info = parse_commit_info(&out).ok_or_else(|| GitError::UnexpectedOutput {
            action: format!("reading commit {sha}"),
            url: redact_url(url),
            output: out.chars().take(200).collect(),
        })?;
        // A full SHA names one commit forever; a short one may become ambiguous.
        if is_full_sha(sha) {
            let mut commits = self.commits.lock().unwrap_or_else(|e| e.into_inner());
            if commits.len() >= COMMIT_INFO_CACHE_LIMIT {
                commits.clear();
            }
            commits.insert(key, info.clone());
        }
        Ok(info)
    }
}

/// Whether git's stderr says the wanted revision does not exist on the remote.
pub(crate) fn names_missing_revision(stderr: &str) -> bool {
    [
        "couldn't find remote ref",
        "not our ref",
        "unadvertised object",
        "no such remote ref",
    ]
    .iter()
    .any(|needle| stderr.contains(needle))
}

pub(crate) fn parse_commit_info(out: &str) -> Option<CommitInfo> {
    let line = out.trim_end_matches('\n');
    let mut fields = line.splitn(5, '\0');
    let info = CommitInfo {
        sha: fields.next()?.to_owned(),
        author_name: fields.next()?.to_owned(),
        author_email: fields.next()?.to_owned(),
        date: fields.next()?.to_owned(),
        subject: fields.next()?.to_owned(),
    };
    is_full_sha(&info.sha).then_some(info)
}
