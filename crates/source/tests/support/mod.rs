//! Real git repositories for the integration tests: a working repository with commits by a fixed
//! author, pushed to a bare repository that tests fetch from over `file://` (or HTTP, see
//! `ferry_testsupport::git_http`).

#![allow(dead_code, unreachable_pub)] // each test binary uses a different part of this module

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// The author (and committer) of every test commit.
pub const AUTHOR_NAME: &str = "Ada Lovelace";
/// Their e-mail.
pub const AUTHOR_EMAIL: &str = "ada@example.com";
/// The date of every test commit.
pub const AUTHOR_DATE: &str = "2024-05-01T12:00:00+02:00";

/// Runs `git` in `dir` with a fixed identity and no user configuration; panics on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", AUTHOR_NAME)
        .env("GIT_AUTHOR_EMAIL", AUTHOR_EMAIL)
        .env("GIT_AUTHOR_DATE", AUTHOR_DATE)
        .env("GIT_COMMITTER_NAME", AUTHOR_NAME)
        .env("GIT_COMMITTER_EMAIL", AUTHOR_EMAIL)
        .env("GIT_COMMITTER_DATE", AUTHOR_DATE)
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} in {} failed: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A working repository and the bare repository it pushes to.
pub struct TestRepo {
    /// Holds both directories.
    pub dir: TempDir,
    /// The working repository.
    pub work: PathBuf,
    /// The bare repository (`<dir>/remote/repo.git`), the "server".
    pub bare: PathBuf,
}

impl TestRepo {
    /// An empty working repository on branch `main` and an empty bare repository.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        let bare = dir.path().join("remote").join("repo.git");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::create_dir_all(&bare).unwrap();
        git(&work, &["init", "-q", "-b", "main"]);
        git(&bare, &["init", "-q", "--bare", "-b", "main"]);
        git(&work, &["remote", "add", "origin", bare.to_str().unwrap()]);
        Self { dir, work, bare }
    }

    /// The bare repository's `file://` URL.
    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// Writes a file (creating directories) in the working repository.
    pub fn write(&self, path: &str, content: &str) {
        let path = self.work.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Commits everything and returns the commit SHA.
    pub fn commit(&self, message: &str) -> String {
        git(&self.work, &["add", "-A"]);
        git(
            &self.work,
            &["commit", "-q", "--allow-empty", "-m", message],
        );
        git(&self.work, &["rev-parse", "HEAD"])
    }

    /// Runs git in the working repository.
    pub fn git(&self, args: &[&str]) -> String {
        git(&self.work, args)
    }

    /// Pushes all branches and tags to the bare repository.
    pub fn push(&self) {
        git(
            &self.work,
            &[
                "push",
                "-q",
                "--force",
                "origin",
                "refs/heads/*:refs/heads/*",
            ],
        );
        git(
            &self.work,
            &["push", "-q", "--force", "origin", "refs/tags/*:refs/tags/*"],
        );
    }
}
