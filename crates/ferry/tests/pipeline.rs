//! The pipeline commands through the real `ferry` binary: `ferry image set` on a corpus of
//! files, and `ferry git clone` → `ferry image set` → `ferry git commit-push` against bare
//! repositories served over `file://` and over HTTP with Basic authentication.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_testsupport::GitRepo;

const USER: &str = "pipeline";
const PASSWORD: &str = "cli-S3cret-pw";
const AUTHOR: &str = "CI Bot <ci@example.test>";

/// Runs `ferry ARGS` in `cwd` with `env` and no git credentials inherited from the caller.
fn ferry(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    cmd.args(args).current_dir(cwd).env("FERRY_LOG", "warn");
    for name in [
        "FERRY_GIT_USERNAME",
        "FERRY_GIT_PASSWORD",
        "GIT_USERNAME",
        "GIT_PASSWORD",
    ] {
        cmd.env_remove(name);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("running ferry")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

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

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../pipeline/tests/fixtures/image-set")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

const DEPLOYMENT: &str = "\
# the web app
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: 'ghcr.io/acme/web:1.0'   # bumped by CI
";

#[test]
fn image_set_on_the_corpus() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&fixtures(), dir.path());
    let root = dir.path().to_str().unwrap();

    // A dry run prints the changes and writes nothing.
    let out = ferry(
        dir.path(),
        &[
            "image",
            "set",
            root,
            "--image",
            "nginx=nginx:1.27.0",
            "--dry-run",
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains(
            "deployment.yaml: spec.template.spec.containers[0].image nginx:1.25.3 → nginx:1.27.0"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("dry run"), "{stdout}");
    let same = |file: &str| {
        std::fs::read(dir.path().join(file)).unwrap()
            == std::fs::read(fixtures().join(file)).unwrap()
    };
    assert!(same("deployment.yaml"));

    // A digest for a Helm values image without a `digest` field: exit 1, nothing written.
    let deployment = dir.path().join("deployment.yaml");
    let values = dir.path().join("values.yaml");
    let (deployment_s, values_s) = (deployment.to_str().unwrap(), values.to_str().unwrap());
    let out = ferry(
        dir.path(),
        &[
            "image",
            "set",
            deployment_s,
            values_s,
            "--image",
            "nginx:1.27.0",
            "--image",
            "ghcr.io/acme/app@sha256:abcd",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out).1.contains("--values-path"), "{out:?}");
    assert!(
        same("deployment.yaml") && same("values.yaml"),
        "an error writes nothing"
    );

    // For real, on two files named explicitly.
    let out = ferry(
        dir.path(),
        &[
            "image",
            "set",
            deployment_s,
            values_s,
            "--image",
            "nginx:1.27.0",
            "--image",
            "ghcr.io/acme/app=ghcr.io/acme/app:2.0.0",
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 5, "{stdout}");
    let after = std::fs::read_to_string(&deployment).unwrap();
    let before = std::fs::read_to_string(fixtures().join("deployment.yaml")).unwrap();
    assert_eq!(after, before.replace("nginx:1.25.3", "nginx:1.27.0"));
    assert!(same("statefulset.yaml"), "files not named are untouched");

    // An image that matches nothing: exit 1, unless --allow-no-match.
    let args = ["image", "set", root, "--image", "quay.io/none/such:1"];
    let out = ferry(dir.path(), &args, &[]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(text(&out).1.contains("quay.io/none/such"), "{out:?}");
    let out = ferry(
        dir.path(),
        &[&args[..], &["--allow-no-match"]].concat(),
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // A malformed --image: could not run.
    let out = ferry(dir.path(), &["image", "set", root, "--image", "nginx"], &[]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[test]
fn clone_image_set_commit_push_over_file() {
    let repo = GitRepo::new();
    repo.write("apps/web/deployment.yaml", DEPLOYMENT);
    let seeded = repo.commit("seed");
    let work = tempfile::tempdir().unwrap();
    let checkout = work.path().join("checkout");
    let checkout_s = checkout.to_str().unwrap();

    let out = ferry(
        work.path(),
        &[
            "git",
            "clone",
            &repo.url(),
            checkout_s,
            "--revision",
            "main",
            "--depth",
            "1",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out).0.contains(&seeded), "{out:?}");

    let out = ferry(
        &checkout,
        &["image", "set", "apps", "--image", "ghcr.io/acme/web:1.1"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let out = ferry(
        work.path(),
        &[
            "git",
            "commit-push",
            "--dir",
            checkout_s,
            "-m",
            "web 1.1",
            "--author",
            AUTHOR,
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("pushed") && stdout.contains("origin/main"),
        "{stdout}"
    );
    let landed = git_in(repo.bare_dir(), &["show", "main:apps/web/deployment.yaml"]);
    assert_eq!(landed, DEPLOYMENT.replace("web:1.0'", "web:1.1'"));
    let who = git_in(
        repo.bare_dir(),
        &["log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", "main"],
    );
    assert_eq!(who, format!("{AUTHOR}|{AUTHOR}|web 1.1\n"));

    // Run again: nothing to commit, exit 0.
    let out = ferry(
        work.path(),
        &[
            "git",
            "commit-push",
            "--dir",
            checkout_s,
            "-m",
            "again",
            "--author",
            AUTHOR,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(text(&out).0.contains("nothing to commit"), "{out:?}");
}

#[test]
fn a_conflict_fails_with_the_file_named_and_the_remote_untouched() {
    let repo = GitRepo::new();
    repo.write("apps/web/deployment.yaml", DEPLOYMENT);
    repo.commit("seed");
    let work = tempfile::tempdir().unwrap();
    let checkout = work.path().join("checkout");
    let out = ferry(
        work.path(),
        &["git", "clone", &repo.url(), checkout.to_str().unwrap()],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    // Someone else bumps the same line first.
    repo.write(
        "apps/web/deployment.yaml",
        &DEPLOYMENT.replace("web:1.0", "web:1.5"),
    );
    let winner = repo.commit("web 1.5 by hand");

    let out = ferry(
        &checkout,
        &["image", "set", ".", "--image", "ghcr.io/acme/web:1.1"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = ferry(
        &checkout,
        &["git", "commit-push", "-m", "web 1.1", "--author", AUTHOR],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("conflict") && stderr.contains("apps/web/deployment.yaml"),
        "{stderr}"
    );
    assert_eq!(
        git_in(repo.bare_dir(), &["rev-parse", "main"]).trim(),
        winner
    );
}

#[tokio::test]
async fn over_http_credentials_never_show() {
    let repo = GitRepo::new();
    repo.write("apps/web/deployment.yaml", DEPLOYMENT);
    repo.commit("seed");
    let server = ferry_testsupport::git_http::serve(
        repo.bare_dir().parent().unwrap().to_owned(),
        USER,
        PASSWORD,
    )
    .await;
    let url = format!("{}/repo.git", server.base_url);
    let work = tempfile::tempdir().unwrap();
    let wd = work.path().to_owned();
    let url2 = url.clone();
    // The server runs on this test's runtime: run the binary off it.
    let run = move |args: Vec<String>, env: Vec<(&'static str, String)>| {
        let wd = wd.clone();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            ferry(&wd, &args, &env)
        })
    };
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();

    // A wrong password: exit 1, and the password is nowhere in the output.
    let out = run(
        s(&["git", "clone", &url2, "bad"]),
        vec![
            ("FERRY_GIT_USERNAME", USER.into()),
            ("FERRY_GIT_PASSWORD", "WRONG-pw-123".into()),
        ],
    )
    .await
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains("WRONG-pw-123") && !stderr.contains("WRONG-pw-123"),
        "{stderr}"
    );

    // A URL with credentials: refused (exit 2) without repeating them.
    let with_creds = url.replace("http://", &format!("http://{USER}:{PASSWORD}@"));
    let out = run(s(&["git", "clone", &with_creds, "u"]), vec![])
        .await
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}\n{stderr}");
    assert!(
        !stdout.contains(PASSWORD) && !stderr.contains(PASSWORD),
        "{stderr}"
    );
    assert!(stderr.contains("credentials"), "{stderr}");

    // The chain, with the credentials in files (a mounted Secret) for clone and GIT_* env
    // for the push.
    std::fs::write(work.path().join("username"), format!("{USER}\n")).unwrap();
    std::fs::write(work.path().join("password"), format!("{PASSWORD}\n")).unwrap();
    let out = run(
        s(&[
            "git",
            "clone",
            &url,
            "checkout",
            "--username-file",
            "username",
            "--password-file",
            "password",
        ]),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let checkout = work.path().join("checkout");
    let out = run(
        s(&[
            "image",
            "set",
            checkout.to_str().unwrap(),
            "--image",
            "ghcr.io/acme/web=ghcr.io/acme/web:2.0",
        ]),
        vec![],
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = run(
        s(&[
            "git",
            "commit-push",
            "--dir",
            "checkout",
            "-m",
            "web 2.0",
            "--author",
            AUTHOR,
        ]),
        vec![
            ("GIT_USERNAME", USER.into()),
            ("GIT_PASSWORD", PASSWORD.into()),
        ],
    )
    .await
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));
    let landed = git_in(repo.bare_dir(), &["show", "main:apps/web/deployment.yaml"]);
    assert!(
        landed.contains("image: 'ghcr.io/acme/web:2.0'   # bumped by CI"),
        "{landed}"
    );
    let config = std::fs::read_to_string(checkout.join(".git/config")).unwrap();
    assert!(!config.contains(PASSWORD), "{config}");
}
