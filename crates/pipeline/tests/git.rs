//! `clone_repo` and `commit_and_push` against real git: bare repositories over `file://` and
//! over HTTP with Basic authentication.

use std::path::{Path, PathBuf};
use std::process::Command;

use ferry_pipeline::git::DEFAULT_TIMEOUT;
use ferry_pipeline::{
    CloneOptions, CommitPushOptions, CommitPushOutcome, Identity, PipelineGitError, clone_repo,
    commit_and_push,
};
use ferry_source::Credentials;
use ferry_testsupport::GitRepo;

const USER: &str = "pipeline";
const PASSWORD: &str = "s3cret-Pa55word";

fn git_in(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

fn remote_head(repo: &GitRepo) -> String {
    git_in(repo.bare_dir(), &["rev-parse", "refs/heads/main"])
        .trim()
        .to_owned()
}

fn clone_opts(url: &str, dir: PathBuf) -> CloneOptions {
    CloneOptions {
        url: url.to_owned(),
        dir,
        revision: None,
        depth: None,
        timeout: DEFAULT_TIMEOUT,
    }
}

fn push_opts(dir: &Path, message: &str) -> CommitPushOptions {
    CommitPushOptions {
        dir: dir.to_owned(),
        message: message.to_owned(),
        author: Identity::parse("CI Bot <ci@example.test>").unwrap(),
        branch: None,
        retries: 5,
        allow_empty: false,
        timeout: DEFAULT_TIMEOUT,
    }
}

fn seeded_repo() -> GitRepo {
    let repo = GitRepo::new();
    repo.write("apps/web.yaml", "image: nginx:1.0\n")
        .write("apps/api.yaml", "image: api:1.0\n");
    repo.commit("seed");
    repo
}

async fn clone(url: &str, root: &Path, name: &str) -> PathBuf {
    let dir = root.join(name);
    let cloned = clone_repo(&clone_opts(url, dir.clone()), &Credentials::none())
        .await
        .unwrap();
    assert_eq!(cloned.branch.as_deref(), Some("main"));
    dir
}

#[tokio::test]
async fn clone_checks_out_a_branch_a_tag_or_a_commit() {
    let repo = seeded_repo();
    let first = repo.head();
    repo.tag("v1");
    repo.write("apps/web.yaml", "image: nginx:2.0\n");
    let second = repo.commit("bump");
    let root = tempfile::tempdir().unwrap();

    let mut opts = clone_opts(&repo.url(), root.path().join("shallow"));
    opts.depth = Some(1);
    opts.revision = Some("main".into());
    let cloned = clone_repo(&opts, &Credentials::none()).await.unwrap();
    assert_eq!(cloned.commit, second);
    assert_eq!(cloned.branch.as_deref(), Some("main"));
    let count = git_in(&opts.dir, &["rev-list", "--count", "HEAD"]);
    assert_eq!(count.trim(), "1", "--depth 1 is shallow");

    let mut opts = clone_opts(&repo.url(), root.path().join("tag"));
    opts.revision = Some("v1".into());
    let cloned = clone_repo(&opts, &Credentials::none()).await.unwrap();
    assert_eq!(
        (cloned.commit.as_str(), cloned.branch),
        (first.as_str(), None)
    );

    let mut opts = clone_opts(&repo.url(), root.path().join("sha"));
    opts.revision = Some(first[..12].to_owned());
    let cloned = clone_repo(&opts, &Credentials::none()).await.unwrap();
    assert_eq!(cloned.commit, first);
    let web = std::fs::read_to_string(opts.dir.join("apps/web.yaml")).unwrap();
    assert_eq!(web, "image: nginx:1.0\n");

    let mut opts = clone_opts(&repo.url(), root.path().join("missing"));
    opts.revision = Some("no-such-branch".into());
    let err = clone_repo(&opts, &Credentials::none()).await.unwrap_err();
    assert!(err.to_string().contains("no-such-branch"), "{err}");
}

#[tokio::test]
async fn a_pipeline_behind_the_remote_rebases_and_lands() {
    let repo = seeded_repo();
    let root = tempfile::tempdir().unwrap();
    let a = clone(&repo.url(), root.path(), "a").await;
    let b = clone(&repo.url(), root.path(), "b").await;

    std::fs::write(a.join("apps/web.yaml"), "image: nginx:1.1\n").unwrap();
    let pushed_a = commit_and_push(&push_opts(&a, "web 1.1"), &Credentials::none())
        .await
        .unwrap();
    assert!(matches!(
        pushed_a,
        CommitPushOutcome::Pushed { rebases: 0, .. }
    ));

    std::fs::write(b.join("apps/api.yaml"), "image: api:1.1\n").unwrap();
    let pushed_b = commit_and_push(&push_opts(&b, "api 1.1"), &Credentials::none())
        .await
        .unwrap();
    let CommitPushOutcome::Pushed {
        commit, rebases, ..
    } = pushed_b
    else {
        panic!("{pushed_b:?}")
    };
    assert_eq!(rebases, 1);
    assert_eq!(remote_head(&repo), commit);
    let bare = repo.bare_dir();
    assert_eq!(git_in(bare, &["log", "--merges", "--oneline", "main"]), "");
    let subjects = git_in(bare, &["log", "--format=%s|%an|%ae|%cn", "-3", "main"]);
    assert_eq!(
        subjects,
        "api 1.1|CI Bot|ci@example.test|CI Bot\nweb 1.1|CI Bot|ci@example.test|CI Bot\nseed|Ada Fixture|ada@example.test|Ada Fixture\n"
    );
}

#[tokio::test]
async fn two_pipelines_pushing_at_once_both_land_in_a_linear_history() {
    let repo = seeded_repo();
    let root = tempfile::tempdir().unwrap();
    let a = clone(&repo.url(), root.path(), "a").await;
    let b = clone(&repo.url(), root.path(), "b").await;
    std::fs::write(a.join("apps/web.yaml"), "image: nginx:1.1\n").unwrap();
    std::fs::write(b.join("apps/api.yaml"), "image: api:1.1\n").unwrap();
    let (oa, ob) = (push_opts(&a, "web 1.1"), push_opts(&b, "api 1.1"));
    let creds = Credentials::none();
    let (ra, rb) = tokio::join!(commit_and_push(&oa, &creds), commit_and_push(&ob, &creds));
    ra.unwrap();
    rb.unwrap();
    let bare = repo.bare_dir();
    assert_eq!(git_in(bare, &["log", "--merges", "--oneline", "main"]), "");
    let log = git_in(bare, &["log", "--format=%s", "main"]);
    assert!(
        log.contains("web 1.1\n") && log.contains("api 1.1\n"),
        "{log}"
    );
    let tree = git_in(bare, &["show", "main:apps/web.yaml"])
        + &git_in(bare, &["show", "main:apps/api.yaml"]);
    assert_eq!(tree, "image: nginx:1.1\nimage: api:1.1\n");
}

#[tokio::test]
async fn a_real_conflict_fails_cleanly_and_leaves_the_remote_alone() {
    let repo = seeded_repo();
    let root = tempfile::tempdir().unwrap();
    let a = clone(&repo.url(), root.path(), "a").await;
    let b = clone(&repo.url(), root.path(), "b").await;
    std::fs::write(a.join("apps/web.yaml"), "image: nginx:1.1\n").unwrap();
    commit_and_push(&push_opts(&a, "web 1.1"), &Credentials::none())
        .await
        .unwrap();
    let winner = remote_head(&repo);

    std::fs::write(b.join("apps/web.yaml"), "image: nginx:9.9\n").unwrap();
    let err = commit_and_push(&push_opts(&b, "web 9.9"), &Credentials::none())
        .await
        .unwrap_err();
    let PipelineGitError::Conflict { files, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(files, &["apps/web.yaml"]);
    let msg = err.to_string();
    assert!(
        msg.contains("apps/web.yaml") && msg.contains("aborted"),
        "{msg}"
    );
    assert_eq!(
        remote_head(&repo),
        winner,
        "the loser did not touch the remote"
    );
    // The rebase was aborted: no rebase in progress, the local commit is still there.
    assert!(!b.join(".git/rebase-merge").exists() && !b.join(".git/rebase-apply").exists());
    assert_eq!(git_in(&b, &["log", "-1", "--format=%s"]), "web 9.9\n");
}

#[tokio::test]
async fn nothing_to_commit_is_not_an_error_and_allow_empty_pushes() {
    let repo = seeded_repo();
    let root = tempfile::tempdir().unwrap();
    let a = clone(&repo.url(), root.path(), "a").await;
    let before = remote_head(&repo);
    let out = commit_and_push(&push_opts(&a, "nothing"), &Credentials::none())
        .await
        .unwrap();
    assert_eq!(out, CommitPushOutcome::NothingToCommit);
    assert_eq!(remote_head(&repo), before);

    let mut opts = push_opts(&a, "empty on purpose");
    opts.allow_empty = true;
    commit_and_push(&opts, &Credentials::none()).await.unwrap();
    assert_ne!(remote_head(&repo), before);
}

#[tokio::test]
async fn a_detached_head_needs_a_branch() {
    let repo = seeded_repo();
    repo.tag("v1");
    let root = tempfile::tempdir().unwrap();
    let mut opts = clone_opts(&repo.url(), root.path().join("t"));
    opts.revision = Some("v1".into());
    clone_repo(&opts, &Credentials::none()).await.unwrap();
    std::fs::write(opts.dir.join("new.yaml"), "a: 1\n").unwrap();
    let err = commit_and_push(&push_opts(&opts.dir, "x"), &Credentials::none())
        .await
        .unwrap_err();
    assert!(
        matches!(err, PipelineGitError::NoTargetBranch { .. }),
        "{err}"
    );
    let mut push = push_opts(&opts.dir, "from a tag");
    push.branch = Some("main".into());
    commit_and_push(&push, &Credentials::none()).await.unwrap();
    assert_eq!(
        git_in(repo.bare_dir(), &["log", "-1", "--format=%s", "main"]),
        "from a tag\n"
    );
}

#[tokio::test]
async fn over_http_with_basic_auth() {
    let repo = seeded_repo();
    let server = ferry_testsupport::git_http::serve(
        repo.bare_dir().parent().unwrap().to_owned(),
        USER,
        PASSWORD,
    )
    .await;
    let url = format!("{}/repo.git", server.base_url);
    let root = tempfile::tempdir().unwrap();
    let good = Credentials::basic(USER, PASSWORD);

    // A wrong password fails, and nothing says the password.
    let bad = Credentials::basic(USER, "wrong-Pa55word");
    let err = clone_repo(&clone_opts(&url, root.path().join("bad")), &bad)
        .await
        .unwrap_err();
    let msg = format!("{err} {err:?}");
    assert!(!msg.contains("wrong-Pa55word"), "{msg}");
    assert!(!err.is_usage_error());

    // Credentials in the URL are refused without being repeated.
    let with_creds = url.replace("http://", &format!("http://{USER}:{PASSWORD}@"));
    let err = clone_repo(&clone_opts(&with_creds, root.path().join("u")), &good)
        .await
        .unwrap_err();
    assert!(matches!(err, PipelineGitError::UrlHasCredentials { .. }));
    assert!(!err.to_string().contains(PASSWORD), "{err}");

    let a = root.path().join("a");
    let b = root.path().join("b");
    clone_repo(&clone_opts(&url, a.clone()), &good)
        .await
        .unwrap();
    clone_repo(&clone_opts(&url, b.clone()), &good)
        .await
        .unwrap();
    // The password is not stored anywhere in the clone.
    let config = std::fs::read_to_string(a.join(".git/config")).unwrap();
    assert!(!config.contains(PASSWORD), "{config}");

    std::fs::write(a.join("apps/web.yaml"), "image: nginx:1.1\n").unwrap();
    std::fs::write(b.join("apps/api.yaml"), "image: api:1.1\n").unwrap();
    let (oa, ob) = (push_opts(&a, "web 1.1"), push_opts(&b, "api 1.1"));
    let (ra, rb) = tokio::join!(commit_and_push(&oa, &good), commit_and_push(&ob, &good));
    ra.unwrap();
    rb.unwrap();
    let bare = repo.bare_dir();
    assert_eq!(git_in(bare, &["log", "--merges", "--oneline", "main"]), "");
    let log = git_in(bare, &["log", "--format=%s", "main"]);
    assert!(
        log.contains("web 1.1\n") && log.contains("api 1.1\n"),
        "{log}"
    );

    // Pushing with a wrong password fails without saying it, and the remote is unchanged.
    let head = remote_head(&repo);
    std::fs::write(a.join("apps/web.yaml"), "image: nginx:1.2\n").unwrap();
    let err = commit_and_push(&push_opts(&a, "web 1.2"), &bad)
        .await
        .unwrap_err();
    let msg = format!("{err} {err:?}");
    assert!(!msg.contains("wrong-Pa55word"), "{msg}");
    assert_eq!(remote_head(&repo), head);
}
