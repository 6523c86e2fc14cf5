//! Credentials over HTTP against a real `git http-backend` behind Basic authentication: the
//! right password works, and a wrong one never shows up in errors.

mod support;

use std::time::Duration;

use ferry_source::git::{Credentials, GitError, LowSpeedLimit, RepoCache};
use ferry_testsupport::git_http::Fault;
use support::TestRepo;

const USER: &str = "ferry";
const PASSWORD: &str = "correct-Horse-battery-9";
const WRONG: &str = "wrong-Secret-4711";

/// A pushed repository served at `<base>/repo.git` (and its tip).
async fn served() -> (TestRepo, ferry_testsupport::git_http::GitHttpServer, String) {
    let repo = TestRepo::new();
    repo.write("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\n");
    let sha = repo.commit("first");
    repo.push();
    let server =
        ferry_testsupport::git_http::serve(repo.bare.parent().unwrap().to_owned(), USER, PASSWORD)
            .await;
    (repo, server, sha)
}

fn cache() -> (tempfile::TempDir, RepoCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = RepoCache::with_timeout(dir.path().join("cache"), Duration::from_secs(60));
    (dir, cache)
}

/// The error's message, its `Debug`, and every message in its source chain.
fn everything_said(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = format!("{err}\n{err:?}\n");
    let mut source = err.source();
    while let Some(e) = source {
        text.push_str(&format!("{e}\n{e:?}\n"));
        source = e.source();
    }
    text
}

#[tokio::test]
async fn the_right_password_fetches() {
    let (_repo, server, sha) = served().await;
    let (_dir, cache) = cache();
    let url = format!("{}/repo.git", server.base_url);
    let creds = Credentials::basic(USER, PASSWORD);
    let resolved = cache
        .resolve_fresh(&url, &creds, "main", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(resolved, sha);
    let refs = cache.git().ls_remote(&url, &creds).await.unwrap();
    assert!(
        refs.iter()
            .any(|r| r.name == "refs/heads/main" && r.sha == sha)
    );
    let tree = cache.checkout(&url, &sha).await.unwrap();
    assert!(tree.join("app/cm.yaml").is_file());
}

#[tokio::test]
async fn a_wrong_password_never_appears_in_errors() {
    let (_repo, server, _sha) = served().await;
    let (_dir, cache) = cache();
    let url = format!("{}/repo.git", server.base_url);
    let creds = Credentials::basic(USER, WRONG);

    let err = cache.fetch(&url, &creds).await.unwrap_err();
    let said = everything_said(&err);
    assert!(!said.contains(WRONG), "{said}");
    assert!(
        said.contains(&url),
        "the error names the repository: {said}"
    );
    assert!(said.contains("Authentication failed"), "{said}");

    let err = cache.git().ls_remote(&url, &creds).await.unwrap_err();
    let said = everything_said(&err);
    assert!(!said.contains(WRONG), "{said}");
    assert!(said.contains("listing the refs of"), "{said}");
}

#[tokio::test]
async fn no_credentials_fail_at_once_instead_of_prompting() {
    let (_repo, server, _sha) = served().await;
    let (_dir, cache) = cache();
    let url = format!("{}/repo.git", server.base_url);
    let err = cache.fetch(&url, &Credentials::none()).await.unwrap_err();
    let said = everything_said(&err);
    assert!(said.contains("terminal prompts disabled"), "{said}");
}

#[tokio::test]
async fn a_password_written_into_the_url_is_masked() {
    let (_repo, server, _sha) = served().await;
    let (_dir, cache) = cache();
    let url = format!(
        "{}/repo.git",
        server
            .base_url
            .replace("http://", &format!("http://{USER}:{WRONG}@"))
    );
    let err = cache.fetch(&url, &Credentials::none()).await.unwrap_err();
    let said = everything_said(&err);
    assert!(!said.contains(WRONG), "{said}");
    assert!(said.contains("http://***@"), "{said}");
}

/// A cache whose low-speed limit gives up after 1 s without data (30 s by default), and whose
/// timeout is long enough that only the low-speed limit can end a stalled transfer.
fn impatient_cache() -> (tempfile::TempDir, RepoCache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = RepoCache::with_timeout(dir.path().join("cache"), Duration::from_secs(170))
        .with_low_speed_limit(Some(LowSpeedLimit {
            bytes_per_second: 1,
            seconds: 1,
        }));
    (dir, cache)
}

/// A server that accepts the request and then sends nothing (`fault`) makes fetch and
/// ls-remote fail with [`GitError::Stalled`], naming the repository (never the password) and
/// saying the server stopped sending; once the server answers again, the next fetch works.
async fn a_stalled_server_fails_the_transfer_and_then_recovers(fault: Fault) {
    let (_repo, server, sha) = served().await;
    let (_dir, cache) = impatient_cache();
    let url = format!("{}/repo.git", server.base_url);
    let creds = Credentials::basic(USER, PASSWORD);

    server.set_fault(fault);
    let err = cache.fetch(&url, &creds).await.unwrap_err();
    let said = everything_said(&err);
    assert!(
        err.is_stalled(),
        "{fault:?}: not reported as stalled: {said}"
    );
    assert!(
        err.to_string().contains(&format!("fetching {url} failed")),
        "{said}"
    );
    assert!(
        err.to_string()
            .contains("the Git server stopped sending data"),
        "{said}"
    );
    assert!(!said.contains(PASSWORD), "{said}");

    let err = cache.git().ls_remote(&url, &creds).await.unwrap_err();
    let said = everything_said(&err);
    assert!(matches!(err, GitError::Stalled { .. }), "{fault:?}: {said}");
    assert!(
        err.to_string()
            .contains(&format!("listing the refs of {url}")),
        "{said}"
    );

    server.set_fault(Fault::None);
    let resolved = cache
        .resolve_fresh(&url, &creds, "main", Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(resolved, sha);
}

#[tokio::test]
async fn a_server_that_never_answers_fails_at_the_low_speed_limit() {
    a_stalled_server_fails_the_transfer_and_then_recovers(Fault::Hang).await;
}

#[tokio::test]
async fn a_server_that_stops_mid_answer_fails_at_the_low_speed_limit() {
    a_stalled_server_fails_the_transfer_and_then_recovers(Fault::Stall).await;
}
