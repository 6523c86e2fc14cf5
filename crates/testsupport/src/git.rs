use std::path::{Path, PathBuf};
use std::process::Command;

/// A Git repository for a test: a bare repository (what ferry fetches, over `file://`) and a
/// working clone to commit and push from, as a user would. Removed when dropped.
#[derive(Debug)]
pub struct GitRepo {
    _root: tempfile::TempDir,
    bare: PathBuf,
    work: PathBuf,
}

/// The author of fixture commits.
pub const FIXTURE_AUTHOR: (&str, &str) = ("Ada Fixture", "ada@example.test");

impl GitRepo {
    /// An empty repository whose default branch is `main`, with one empty commit.
    pub fn new() -> GitRepo {
        let root = tempfile::Builder::new()
            .prefix("ferry-git-")
            .tempdir()
            .expect("a temp dir");
        let bare = root.path().join("repo.git");
        let work = root.path().join("work");
        git(
            root.path(),
            &[
                "init",
                "--quiet",
                "--bare",
                "--initial-branch=main",
                path_str(&bare),
            ],
        );
        git(
            root.path(),
            &["clone", "--quiet", path_str(&bare), path_str(&work)],
        );
        let repo = GitRepo {
            _root: root,
            bare,
            work,
        };
        repo.git(&["checkout", "--quiet", "-B", "main"]);
        repo.git(&["commit", "--quiet", "--allow-empty", "-m", "initial commit"]);
        repo.git(&["push", "--quiet", "origin", "main"]);
        repo
    }

    /// The `file://` URL of the bare repository.
    pub fn url(&self) -> String {
        format!("file://{}", self.bare.display())
    }

    /// The bare repository's directory.
    pub fn bare_dir(&self) -> &Path {
        &self.bare
    }

    /// The working clone's directory.
    pub fn work_dir(&self) -> &Path {
        &self.work
    }

    /// Writes `content` to `path` (relative to the repository root), creating directories.
    pub fn write(&self, path: &str, content: &str) -> &Self {
        let file = self.work.join(path);
        std::fs::create_dir_all(file.parent().expect("a file has a parent"))
            .expect("creating directories");
        std::fs::write(&file, content)
            .unwrap_or_else(|e| panic!("writing {}: {e}", file.display()));
        self
    }

    /// Removes `path` (a file or a directory).
    pub fn remove(&self, path: &str) -> &Self {
        let p = self.work.join(path);
        if p.is_dir() {
            std::fs::remove_dir_all(&p).expect("removing a directory");
        } else {
            std::fs::remove_file(&p).expect("removing a file");
        }
        self
    }

    /// Commits everything with `message` as the fixture author, pushes to `main`, and returns
    /// the commit's SHA.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "--all"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.git(&["push", "--quiet", "origin", "HEAD:main"]);
        self.head()
    }

    /// The SHA of the working clone's HEAD.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"]).trim().to_string()
    }

    /// Creates and pushes a lightweight tag at HEAD.
    pub fn tag(&self, name: &str) {
        self.git(&["tag", name]);
        self.git(&["push", "--quiet", "origin", name]);
    }

    /// Runs git in the working clone with the fixture author and no user or system config.
    pub fn git(&self, args: &[&str]) -> String {
        git(&self.work, args)
    }
}

impl Default for GitRepo {
    fn default() -> Self {
        GitRepo::new()
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", FIXTURE_AUTHOR.0)
        .env("GIT_AUTHOR_EMAIL", FIXTURE_AUTHOR.1)
        .env("GIT_COMMITTER_NAME", FIXTURE_AUTHOR.0)
        .env("GIT_COMMITTER_EMAIL", FIXTURE_AUTHOR.1)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("running git");
    assert!(
        out.status.success(),
        "git {} in {} failed:\n{}",
        args.join(" "),
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
