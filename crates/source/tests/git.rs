//! `RepoCache` and `Git` against real git repositories served over `file://`.

mod support;

use std::time::Duration;

use ferry_source::git::{Credentials, GitError, RepoCache};
use support::{AUTHOR_DATE, AUTHOR_EMAIL, AUTHOR_NAME, TestRepo};

/// A repository with: c1 (tags `v1`, annotated `v1-annotated`), c2 on `main`, c3 on `dev`.
struct History {
    repo: TestRepo,
    c1: String,
    c2: String,
    c3: String,
}

fn history() -> History {
    let repo = TestRepo::new();
    repo.write("app/config.yaml", "version: 1\n");
    let c1 = repo.commit("first version");
    repo.git(&["tag", "v1"]);
    repo.git(&["tag", "-a", "-m", "release one", "v1-annotated"]);
    repo.write("app/config.yaml", "version: 2\n");
    let c2 = repo.commit("feat: second version\n\nWith a body that is not the subject.");
    repo.git(&["checkout", "-q", "-b", "dev"]);
    repo.write("app/config.yaml", "version: 3\n");
    let c3 = repo.commit("dev version");
    repo.git(&["checkout", "-q", "main"]);
    repo.push();
    History { repo, c1, c2, c3 }
}

fn cache() -> (tempfile::TempDir, RepoCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = RepoCache::with_timeout(dir.path().join("cache"), Duration::from_secs(60))
        .with_file_repos(true);
    (dir, cache)
}

#[tokio::test]
async fn resolves_and_checks_out_branches_tags_shas_and_head() {
    let h = history();
    let (_dir, cache) = cache();
    let url = h.repo.url();
    let none = Credentials::none();
    cache.fetch(&url, &none).await.unwrap();

    let cases = [
        ("main", &h.c2, "version: 2\n"),
        ("HEAD", &h.c2, "version: 2\n"),
        ("", &h.c2, "version: 2\n"),
        ("dev", &h.c3, "version: 3\n"),
        ("v1", &h.c1, "version: 1\n"),
        ("v1-annotated", &h.c1, "version: 1\n"),
        ("refs/heads/dev", &h.c3, "version: 3\n"),
        (h.c1.as_str(), &h.c1, "version: 1\n"),
        (&h.c3[..8], &h.c3, "version: 3\n"),
    ];
    for (revision, want, content) in cases {
        let sha = cache.resolve_revision(&url, &none, revision).await.unwrap();
        assert_eq!(&sha, want, "revision {revision:?}");
        let tree = cache.checkout(&url, &sha).await.unwrap();
        let file = tree.join("app/config.yaml");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap(),
            content,
            "revision {revision:?}"
        );
        assert!(std::fs::metadata(&file).unwrap().permissions().readonly());
        assert!(!tree.join(".git").exists(), "a checkout has no .git");
    }
    assert_eq!(cache.fetch_count(), 1);
}

#[tokio::test]
async fn checkouts_are_created_once_per_commit() {
    let h = history();
    let (_dir, cache) = cache();
    let url = h.repo.url();
    cache.fetch(&url, &Credentials::none()).await.unwrap();
    let first = cache.checkout(&url, &h.c2).await.unwrap();
    // A marker that only survives if the directory is reused rather than recreated.
    let marker = first.join("marker");
    std::fs::write(&marker, "x").unwrap();
    let (a, b) = tokio::join!(cache.checkout(&url, &h.c2), cache.checkout(&url, &h.c2));
    assert_eq!(a.unwrap(), first);
    assert_eq!(b.unwrap(), first);
    assert!(marker.exists());
    let other = cache.checkout(&url, &h.c1).await.unwrap();
    assert_ne!(other, first);
    assert_eq!(cache.checkout_count(), 2, "one checkout per commit");
}

#[tokio::test]
async fn callers_asking_for_a_new_commit_at_once_share_one_checkout() {
    let h = history();
    let (_dir, cache) = cache();
    let url = h.repo.url();
    cache.fetch(&url, &Credentials::none()).await.unwrap();
    // The poller, a webhook and several apps' looks ask for a new commit together.
    let (a, b, c, d) = tokio::join!(
        cache.checkout(&url, &h.c3),
        cache.checkout(&url, &h.c3),
        cache.checkout(&url, &h.c3),
        cache.checkout(&url, &h.c3)
    );
    let first = a.unwrap();
    for other in [b, c, d] {
        assert_eq!(other.unwrap(), first);
    }
    assert_eq!(
        cache.checkout_count(),
        1,
        "the callers waited for one checkout instead of each making their own"
    );
    assert!(first.join("app/config.yaml").is_file());
}

#[tokio::test]
async fn head_is_the_remote_default_branch() {
    let h = history();
    support::git(&h.repo.bare, &["symbolic-ref", "HEAD", "refs/heads/dev"]);
    let (_dir, cache) = cache();
    let sha = cache
        .resolve_fresh(&h.repo.url(), &Credentials::none(), "HEAD", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(sha, h.c3);
}

#[tokio::test]
async fn concurrent_callers_share_one_fetch() {
    let h = history();
    let (_dir, cache) = cache();
    let url = h.repo.url();
    let none = Credentials::none();
    let (a, b, c, d, e) = tokio::join!(
        cache.fetch(&url, &none),
        cache.fetch(&url, &none),
        cache.resolve_fresh(&url, &none, "main", Duration::ZERO),
        cache.resolve_fresh(&url, &none, "dev", Duration::ZERO),
        cache.resolve_fresh(&url, &none, "v1", Duration::ZERO),
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(c.unwrap(), h.c2);
    assert_eq!(d.unwrap(), h.c3);
    assert_eq!(e.unwrap(), h.c1);
    assert_eq!(cache.fetch_count(), 1, "five concurrent callers, one fetch");

    // Within the poll interval: no new fetch. Asked for fresh data: one more.
    cache
        .resolve_fresh(&url, &none, "main", Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(cache.fetch_count(), 1);
    cache
        .resolve_fresh(&url, &none, "main", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(cache.fetch_count(), 2);
}

#[tokio::test]
async fn a_new_commit_is_seen_after_the_next_fetch() {
    let h = history();
    let (_dir, cache) = cache();
    let url = h.repo.url();
    let none = Credentials::none();
    assert_eq!(
        cache
            .resolve_fresh(&url, &none, "main", Duration::ZERO)
            .await
            .unwrap(),
        h.c2
    );
    h.repo.write("app/config.yaml", "version: 4\n");
    let c4 = h.repo.commit("fourth");
    h.repo.git(&["push", "-q", "origin", "main"]);
    h.repo.git(&["push", "-q", "origin", ":dev"]); // deleted branches are pruned
    assert_eq!(
        cache
            .resolve_fresh(&url, &none, "main", Duration::ZERO)
            .await
            .unwrap(),
        c4
    );
    let err = cache
        .resolve_revision(&url, &none, "dev")
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::RevisionNotFound { .. }), "{err}");
}

#[tokio::test]
async fn a_missing_revision_names_the_repository_and_the_revision() {
    let h = history();
    let (_dir, cache) = cache();
    let url = h.repo.url();
    let none = Credentials::none();
    for revision in [
        "no-such-branch",
        "0123456789abcdef0123456789abcdef01234567",
        "refs/pull/1/head",
    ] {
        let err = cache
            .resolve_fresh(&url, &none, revision, Duration::ZERO)
            .await
            .unwrap_err();
        let msg = err.to_string();
        assert!(
            matches!(err, GitError::RevisionNotFound { .. }),
            "{revision}: {msg}"
        );
        assert!(msg.contains(&url), "{msg}");
        assert!(msg.contains(revision), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
    }
}

#[tokio::test]
async fn a_commit_on_no_branch_is_fetched_by_sha() {
    let h = history();
    // A commit that only a non-branch ref (like a pull request head) points at.
    h.repo.git(&["checkout", "-q", "--detach", "main"]);
    h.repo.write("app/config.yaml", "version: pr\n");
    let pr = h.repo.commit("pull request");
    h.repo
        .git(&["push", "-q", "origin", "HEAD:refs/pull/7/head"]);
    let (_dir, cache) = cache();
    let url = h.repo.url();
    let none = Credentials::none();
    cache.fetch(&url, &none).await.unwrap();
    assert_eq!(
        cache
            .resolve_revision(&url, &none, "refs/pull/7/head")
            .await
            .unwrap(),
        pr
    );
    let tree = cache.checkout(&url, &pr).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(tree.join("app/config.yaml")).unwrap(),
        "version: pr\n"
    );
}

#[tokio::test]
async fn commit_info_reports_author_date_and_subject() {
    let h = history();
    let (_dir, cache) = cache();
    let url = h.repo.url();
    cache.fetch(&url, &Credentials::none()).await.unwrap();
    let info = cache.commit_info(&url, &h.c2).await.unwrap();
    assert_eq!(info.sha, h.c2);
    assert_eq!(info.author_name, AUTHOR_NAME);
    assert_eq!(info.author_email, AUTHOR_EMAIL);
    assert_eq!(info.date, AUTHOR_DATE);
    assert_eq!(info.subject, "feat: second version");
}

#[tokio::test]
async fn ls_remote_lists_head_branches_and_tags() {
    let h = history();
    let (_dir, cache) = cache();
    let url = h.repo.url();
    let none = Credentials::none();
    let refs = cache.git().ls_remote(&url, &none).await.unwrap();
    let find = |name: &str| refs.iter().find(|r| r.name == name).map(|r| r.sha.as_str());
    assert_eq!(find("HEAD"), Some(h.c2.as_str()));
    assert_eq!(find("refs/heads/dev"), Some(h.c3.as_str()));
    assert_eq!(find("refs/tags/v1-annotated^{}"), Some(h.c1.as_str()));
    let git = cache.git();
    assert_eq!(
        git.resolve_advertised(&url, &none, "v1-annotated")
            .await
            .unwrap(),
        Some(h.c1)
    );
    assert_eq!(
        git.resolve_advertised(&url, &none, &h.c3[..7])
            .await
            .unwrap(),
        None
    );
    assert_eq!(cache.fetch_count(), 0, "ls-remote does not fetch");
}

#[tokio::test]
async fn an_unreachable_repository_is_a_fetch_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let (_cache_dir, cache) = cache();
    let url = format!("file://{}/missing.git", dir.path().display());
    let err = cache.fetch(&url, &Credentials::none()).await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&format!("fetching {url} failed")), "{msg}");
    assert_eq!(cache.fetch_count(), 1);
    // A failure answers for the repository for a few seconds (the apps a failed poll queues
    // share it), even for a caller content with an old fetch: the mirror is out of date.
    let shared = cache
        .fetch_if_older(&url, &Credentials::none(), Duration::from_secs(3600))
        .await
        .unwrap_err();
    assert!(shared.to_string().contains(&url), "{shared}");
    assert_eq!(cache.fetch_count(), 1);
    // Then (after `FAILURE_SHARED_FOR`) the next call tries again.
    ferry_testsupport::wait_until(
        "a call after the shared failure to fetch again",
        ferry_source::git::FAILURE_SHARED_FOR * 6,
        || async {
            cache
                .fetch_if_older(&url, &Credentials::none(), Duration::from_secs(3600))
                .await
                .unwrap_err();
            match cache.fetch_count() {
                1 => ferry_testsupport::Probe::pending("the failure is still shared"),
                n => ferry_testsupport::Probe::Done(n),
            }
        },
    )
    .await;
    assert_eq!(cache.fetch_count(), 2);
}

#[tokio::test]
async fn using_a_repository_before_fetching_it_says_so() {
    let h = history();
    let (_dir, cache) = cache();
    let url = h.repo.url();
    let err = cache.checkout(&url, &h.c1).await.unwrap_err();
    assert!(matches!(err, GitError::NotFetched { .. }), "{err}");
    let err = cache
        .resolve_revision(&url, &Credentials::none(), "main")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("has not been fetched yet"),
        "{err}"
    );
}

#[tokio::test]
async fn option_like_urls_and_revisions_are_refused() {
    let h = history();
    let (_dir, cache) = cache();
    let none = Credentials::none();
    let err = cache
        .fetch("--upload-pack=touch /tmp/owned", &none)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::InvalidUrl { .. }), "{err}");
    let err = cache
        .resolve_fresh(&h.repo.url(), &none, "--output=/tmp/owned", Duration::ZERO)
        .await
        .unwrap_err();
    assert!(matches!(err, GitError::InvalidRevision { .. }), "{err}");
    assert_eq!(cache.fetch_count(), 0);
}

#[tokio::test]
async fn changed_paths_lists_the_files_between_two_commits_once() {
    let repo = TestRepo::new();
    repo.write("apps/a/cm.yaml", "a: 1\n");
    repo.write("apps/b/cm.yaml", "b: 1\n");
    repo.write("shared/values.yaml", "x: 1\n");
    let c1 = repo.commit("first");
    repo.write("apps/a/cm.yaml", "a: 2\n");
    repo.git(&["mv", "shared/values.yaml", "shared/renamed.yaml"]);
    let c2 = repo.commit("second");
    repo.push();
    let (_dir, cache) = cache();
    let url = repo.url();
    cache.fetch(&url, &Credentials::none()).await.unwrap();

    let mut changed = (*cache.changed_paths(&url, &c1, &c2).await.unwrap()).clone();
    changed.sort();
    assert_eq!(
        changed,
        vec![
            "apps/a/cm.yaml",
            "shared/renamed.yaml",
            "shared/values.yaml"
        ]
    );
    assert!(
        cache
            .changed_paths(&url, &c2, &c2)
            .await
            .unwrap()
            .is_empty()
    );
    cache.changed_paths(&url, &c1, &c2).await.unwrap();
    assert_eq!(
        cache.changed_paths_cached(),
        1,
        "one diff per pair of commits"
    );

    // Only full SHAs reach git: nothing that could be read as an option.
    for bad in ["--output=/tmp/x", "main", &c1[..8]] {
        let err = cache.changed_paths(&url, bad, &c2).await.unwrap_err();
        assert!(
            matches!(err, GitError::InvalidRevision { .. }),
            "{bad}: {err}"
        );
    }
    // A commit the mirror lacks is an error (callers then refresh).
    let missing = "0".repeat(40);
    assert!(cache.changed_paths(&url, &missing, &c2).await.is_err());
}

#[tokio::test]
async fn a_plain_directory_is_checked_out_on_its_own_and_shared_by_commits_that_keep_it() {
    let repo = TestRepo::new();
    for i in 0..12 {
        repo.write(&format!("apps/app-{i}/cm.yaml"), &format!("n: {i}\n"));
    }
    repo.write("apps/app-0/nested/extra.yaml", "nested: true\n");
    repo.write("tooled/kustomization.yaml", "resources: [cm.yaml]\n");
    repo.write("tooled/cm.yaml", "k: 1\n");
    repo.write("README.md", "top\n");
    let c1 = repo.commit("first");
    repo.write("README.md", "changed elsewhere\n");
    let c2 = repo.commit("second");
    repo.write("apps/app-1/cm.yaml", "n: changed\n");
    let c3 = repo.commit("third");
    repo.push();
    let (_dir, cache) = cache();
    let url = repo.url();
    cache.fetch(&url, &Credentials::none()).await.unwrap();

    // Only the directory (and what is below it) is written, at its path under the root.
    let root = cache
        .checkout_directory(&url, &c1, "apps/app-0")
        .await
        .unwrap()
        .expect("a plain directory");
    assert_eq!(
        std::fs::read_to_string(root.join("apps/app-0/cm.yaml")).unwrap(),
        "n: 0\n"
    );
    assert!(root.join("apps/app-0/nested/extra.yaml").is_file());
    assert!(!root.join("README.md").exists(), "nothing outside it");
    assert!(!root.join("apps/app-1").exists(), "not even its siblings");
    assert!(
        std::fs::metadata(root.join("apps/app-0/cm.yaml"))
            .unwrap()
            .permissions()
            .readonly()
    );

    // A commit that leaves the directory alone reuses it; one that changes it does not.
    let same = cache
        .checkout_directory(&url, &c2, "./apps/app-0/")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(same, root);
    assert_eq!(cache.checkout_count(), 1);
    let before = cache
        .checkout_directory(&url, &c2, "apps/app-1")
        .await
        .unwrap()
        .unwrap();
    let after = cache
        .checkout_directory(&url, &c3, "apps/app-1")
        .await
        .unwrap()
        .unwrap();
    assert_ne!(before, after);
    assert_eq!(
        std::fs::read_to_string(after.join("apps/app-1/cm.yaml")).unwrap(),
        "n: changed\n"
    );
    assert_eq!(cache.directory_checkout_count(), 3);

    // A Kustomize folder may read outside itself, and a path that is not a directory of the
    // commit has nothing to check out: both need the whole commit, as does the root.
    for path in ["tooled", "apps/missing", "README.md", "../outside", ".", ""] {
        assert!(
            cache
                .checkout_directory(&url, &c3, path)
                .await
                .unwrap()
                .is_none(),
            "{path}"
        );
    }

    // Many directories of one commit (a first sync of many apps) share one whole checkout.
    let mut own = 0;
    for i in 2..12 {
        if cache
            .checkout_directory(&url, &c1, &format!("apps/app-{i}"))
            .await
            .unwrap()
            .is_some()
        {
            own += 1;
        }
    }
    assert_eq!(
        own,
        ferry_source::git::DIRECTORY_CHECKOUTS_PER_COMMIT - 1,
        "c1 had one directory checked out before"
    );
    cache.checkout(&url, &c3).await.unwrap();
    assert!(
        cache
            .checkout_directory(&url, &c3, "apps/app-5")
            .await
            .unwrap()
            .is_none(),
        "the whole commit is checked out already"
    );
}
