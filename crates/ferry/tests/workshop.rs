//! The "GitOps in Practice" workshop (`workshop/`), checked as far as CI can without the VM and
//! the internet:
//!
//! 1. every manifest of the starting tree passes `ferry validate` (with `workshop/crds`);
//! 2. the root app syncs the offline part of the finished workshop (what `make demo` deploys)
//!    to Synced and Healthy;
//! 3. exercises 02 and 05 run from the `sh step` / `sh verify` blocks of their guides, against
//!    a real git server, with the pipeline's steps read from the Tekton Task and run as plain
//!    processes;
//! 4. each solution applies on top of the ones before it, and each state validates;
//! 5. `solution-branches.sh` makes one branch per solution on a scratch clone.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;
use ferry_testsupport::{Cluster, GitRepo, Kubectl, Probe, repo_root, wait_until};
use serde_json::Value;

/// The repository URL the workshop's files carry until `use-my-fork.sh` replaces it.
const PLACEHOLDER_URL: &str = "https://github.com/YOUR-GITHUB-USER/ferry.git";
const GIT_USER: &str = "workshop-participant";
const GIT_PASSWORD: &str = "fine-grained-T0ken-for-the-fork";

fn workshop() -> PathBuf {
    repo_root().join("workshop")
}

/// `workshop/solutions/NN-name` directories, in order.
fn solutions() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(workshop().join("solutions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.is_dir()
                && p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                    n.len() > 3 && n.as_bytes()[..2].iter().all(u8::is_ascii_digit)
                })
        })
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 5, "solutions 02..06 exist: {dirs:?}");
    dirs
}

/// Every file under `dir`, relative to it.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                out.push(path.strip_prefix(base).unwrap().to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Copies the contents of `from` into `to` (merging, overwriting files).
fn overlay(from: &Path, to: &Path) {
    for rel in files_under(from) {
        let dest = to.join(&rel);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(from.join(&rel), &dest).unwrap();
    }
}

/// A copy of the workshop tree (the starting state) in a temporary directory, as
/// `<tmp>/workshop`, without VM state.
fn copy_of_workshop() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::Builder::new()
        .prefix("ferry-workshop-")
        .tempdir()
        .unwrap();
    let dest = tmp.path().join("workshop");
    for rel in files_under(&workshop()) {
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        if first == ".vagrant" || first == ".kube" {
            continue;
        }
        let to = dest.join(&rel);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(workshop().join(&rel), &to).unwrap();
    }
    (tmp, dest)
}

/// Runs `ferry validate --crd workshop/crds PATH` as a participant would, on a whole tree or one
/// folder of it: Kustomization folders below PATH are built, the rest read as manifests.
/// Returns the number of objects checked and the notes ferry printed, or panics with the
/// findings. A Kustomization that fetches a remote file is not built offline (a note says so);
/// it must pin its version.
fn validate_folder(path: &Path, crds: &Path, what: &str) -> (usize, Vec<String>) {
    let out = run_ferry_offline(&[
        "validate".into(),
        "--crd".into(),
        crds.display().to_string(),
        path.display().to_string(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{what}: ferry validate found problems:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    let notes: Vec<String> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("note: "))
        .map(str::to_owned)
        .collect();
    for note in notes.iter().filter(|n| n.contains("not built")) {
        assert!(
            note.contains("/previous/v"),
            "{what}: a remote file without a pinned version: {note}"
        );
    }
    let objects = stderr
        .split_whitespace()
        .skip_while(|w| *w != "validated")
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no object count in {stderr:?}"));
    (objects, notes)
}

/// Validates a whole workshop tree (the solutions in it included); returns the objects checked.
fn validate_tree(tree: &Path, what: &str) -> usize {
    validate_folder(tree, &tree.join("crds"), what).0
}

/// `PATH` with ferry's binary and the pinned helm and kustomize first.
fn tool_path() -> String {
    let bin = Path::new(ferry_bin()).parent().unwrap().to_path_buf();
    let tools = repo_root().join("target/tools/bin");
    format!(
        "{}:{}:{}",
        bin.display(),
        tools.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Runs ferry without any cluster.
fn run_ferry_offline(args: &[String]) -> Output {
    Command::new(ferry_bin())
        .args(args)
        .env("PATH", tool_path())
        .env("FERRY_LOG", "warn")
        .env("KUBECONFIG", "/nonexistent/ferry-test/kubeconfig")
        .output()
        .expect("running ferry")
}

/// Runs a shell script (`bash -euo pipefail`) in `dir` with `env`; returns its output.
fn bash(dir: &Path, script: &str, env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .env("PATH", tool_path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        // The workshop scripts run ferry on local (file://) repositories.
        .env("FERRY_ALLOW_FILE_REPOS", "true")
        .env("FERRY_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("running bash")
}

fn bash_ok(dir: &Path, script: &str, env: &[(&str, String)]) -> String {
    let out = bash(dir, script, env);
    assert!(
        out.status.success(),
        "this failed ({}):\n{script}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// 1 -------------------------------------------------------------------------------------------

#[test]
fn every_workshop_manifest_validates() {
    // Each solution folder as a participant gives it: no false findings.
    for solution in solutions() {
        let what = solution.display().to_string();
        let (objects, notes) = validate_folder(&solution, &workshop().join("crds"), &what);
        assert!(objects >= 1, "{what}: nothing checked");
        if what.ends_with("04-pipeline") {
            assert!(
                notes
                    .iter()
                    .any(|n| n.contains("platform/tekton: not built")),
                "{what}: Tekton's remote release file is named in a note: {notes:?}"
            );
        }
    }
    let objects = validate_tree(&workshop(), "the starting tree");
    // The AppProject, the ferry and root apps, ferry's four objects and Service, and the CRDs.
    assert!(objects >= 15, "only {objects} objects were checked");

    // The CRDs in workshop/crds really check the custom resources: a misspelt field of the
    // pipeline's Task is a finding that names it.
    let tmp = tempfile::tempdir().unwrap();
    let task = std::fs::read_to_string(
        workshop().join("solutions/04-pipeline/pipelines/task-bump-image.yaml"),
    )
    .unwrap();
    let broken = tmp.path().join("task.yaml");
    std::fs::write(
        &broken,
        task.replacen("      script: |", "      scipt: |", 1),
    )
    .unwrap();
    let out = run_ferry_offline(&[
        "validate".into(),
        "--crd".into(),
        workshop().join("crds").display().to_string(),
        broken.display().to_string(),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("task.yaml:") && stdout.contains("Task/bump-image: .spec.steps[0].scipt"),
        "{stdout}"
    );
}

/// The `ferry` app takes over what `ferry install --with-controller` created during the
/// bootstrap (`Adopt=true`): the same objects, names, rules, selector and image, so that
/// adopting changes only what the workshop means to change (the server's flags).
#[test]
fn the_ferry_app_adopts_what_ferry_install_creates() {
    let out = run_ferry_offline(&[
        "install".into(),
        "--dry-run".into(),
        "--with-controller".into(),
        "--namespace".into(),
        "ferry".into(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let installed: Vec<Value> = serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter::<Value>()
        .map(Result::unwrap)
        .collect();
    let mut in_git: Vec<Value> = Vec::new();
    for rel in files_under(&workshop().join("platform/ferry")) {
        let text = std::fs::read_to_string(workshop().join("platform/ferry").join(rel)).unwrap();
        for doc in text.split("\n---\n") {
            in_git.push(serde_saphyr::from_str(doc).unwrap());
        }
    }
    let key = |o: &Value| {
        format!(
            "{}/{}/{}",
            o["kind"].as_str().unwrap_or(""),
            o.pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or(""),
            o["metadata"]["name"].as_str().unwrap_or("")
        )
    };
    let mut adopted = 0;
    for want in &installed {
        let kind = want["kind"].as_str().unwrap();
        if ["CustomResourceDefinition", "Namespace", "AppProject"].contains(&kind) {
            // Those stay with `ferry install` (see workshop/apps/ferry.yaml).
            assert!(
                in_git.iter().all(|o| o["kind"] != kind),
                "{kind} is in the ferry app"
            );
            continue;
        }
        let got = in_git
            .iter()
            .find(|o| key(o) == key(want))
            .unwrap_or_else(|| panic!("{} is not in workshop/platform/ferry", key(want)));
        for pointer in [
            "/rules",
            "/roleRef",
            "/subjects",
            "/metadata/labels",
            "/spec/selector",
            "/spec/strategy",
            "/spec/template/metadata/labels",
            "/spec/template/spec/serviceAccountName",
            "/spec/template/spec/containers/0/image",
            "/spec/template/spec/containers/0/imagePullPolicy",
            "/spec/template/spec/containers/0/securityContext",
            "/spec/template/spec/containers/0/ports",
            "/spec/template/spec/containers/0/readinessProbe",
            "/spec/template/spec/containers/0/livenessProbe",
            "/spec/ports",
        ] {
            // What install sets, Git sets the same; Git may add fields install leaves out.
            if let Some(want_value) = want.pointer(pointer) {
                assert_eq!(
                    got.pointer(pointer),
                    Some(want_value),
                    "{} {pointer}",
                    key(want)
                );
            }
        }
        if kind == "Deployment" {
            // Git adds server flags to the arguments install gives; it removes none.
            let args = |o: &Value| -> Vec<String> {
                o.pointer("/spec/template/spec/containers/0/args")
                    .and_then(Value::as_array)
                    .unwrap()
                    .iter()
                    .map(|a| a.as_str().unwrap().to_string())
                    .collect()
            };
            let (git_args, install_args) = (args(got), args(want));
            assert_eq!(git_args[..install_args.len()], install_args[..]);
            // The bootstrap builds and imports exactly this image.
            let image = want
                .pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str)
                .unwrap();
            let bootstrap = std::fs::read_to_string(workshop().join("vm/bootstrap.sh")).unwrap();
            assert!(
                bootstrap.contains(&format!("image={image}\n")),
                "vm/bootstrap.sh builds {image}"
            );
            let task = std::fs::read_to_string(
                workshop().join("solutions/04-pipeline/pipelines/task-bump-image.yaml"),
            )
            .unwrap();
            assert!(
                task.contains(&format!("image: {image}\n")),
                "the pipeline's steps run {image}"
            );
        }
        adopted += 1;
    }
    // ServiceAccount, ClusterRole, ClusterRoleBinding, Deployment (and the Service, once
    // `ferry install` creates one).
    assert!(adopted >= 4, "only {adopted} objects compared");
}

// 4 -------------------------------------------------------------------------------------------

#[test]
fn each_solution_applies_on_top_of_the_ones_before_and_validates() {
    let (_tmp, tree) = copy_of_workshop();
    let mut previous = validate_tree(&tree, "the starting tree");
    for solution in solutions() {
        let name = solution.file_name().unwrap().to_string_lossy().into_owned();
        let files = files_under(&solution);
        assert!(!files.is_empty(), "{name} is empty");
        for rel in &files {
            let new = std::fs::read(solution.join(rel)).unwrap();
            if let Ok(old) = std::fs::read(tree.join(rel)) {
                assert_ne!(
                    old,
                    new,
                    "{name}/{} changes nothing: a solution holds only what its exercise adds or changes",
                    rel.display()
                );
            }
        }
        overlay(&solution, &tree);
        let objects = validate_tree(&tree, &format!("the tree after {name}"));
        assert!(
            objects >= previous,
            "{name}: {objects} < {previous} objects"
        );
        previous = objects;

        // Every Application that syncs a folder of the repository finds it.
        for app in std::fs::read_dir(tree.join("apps")).unwrap() {
            let app = app.unwrap().path();
            let text = std::fs::read_to_string(&app).unwrap();
            for line in text.lines() {
                if let Some(path) = line.trim().strip_prefix("path: ") {
                    if path.contains("{{") {
                        continue; // an ApplicationSet's template: its generator finds the folders
                    }
                    let in_tree = path.strip_prefix("workshop/").unwrap_or_else(|| {
                        panic!("{}: path {path} is outside workshop/", app.display())
                    });
                    assert!(
                        tree.join(in_tree).is_dir(),
                        "after {name}: {} syncs {path}, which does not exist",
                        app.display()
                    );
                }
            }
        }
    }
    // The finished tree has every app of the workshop, in its waves.
    for app in [
        "project",
        "ferry",
        "podinfo",
        "metallb",
        "metallb-config",
        "ingress-nginx",
        "ingresses",
        "tekton",
        "pipelines",
        "monitoring",
        "monitoring-config",
    ] {
        assert!(tree.join(format!("apps/{app}.yaml")).is_file(), "{app}");
    }
    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(tree.join("platform/monitoring/dashboards/ferry.json")).unwrap(),
    )
    .unwrap();
    let text = dashboard.to_string();
    for metric in [
        "ferry_app_info",
        "ferry_app_sync_total",
        "ferry_app_reconcile_seconds_bucket",
        "ferry_git_seconds_bucket",
        "ferry_git_errors_total",
        "ferry_render_seconds_bucket",
        "ferry_kube_requests_total",
        "ferry_kube_request_seconds_bucket",
        "ferry_webhook_requests_total",
    ] {
        assert!(
            text.contains(metric),
            "the dashboard has no panel on {metric}"
        );
    }
    assert_eq!(
        dashboard.pointer("/templating/list/0/type"),
        Some(&Value::from("datasource"))
    );
    for panel in dashboard["panels"].as_array().unwrap() {
        if let Some(uid) = panel.pointer("/datasource/uid") {
            assert_eq!(uid, "${datasource}", "panel {}", panel["title"]);
        }
    }
}

/// The README's stack table and the files that pin each version agree.
#[test]
fn the_readme_names_the_versions_the_files_pin() {
    let readme = std::fs::read_to_string(workshop().join("README.md")).unwrap();
    let mut rows = 0;
    for line in readme
        .lines()
        .skip_while(|l| !l.starts_with("## The stack"))
    {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        // | component | version | `file` | installed by |
        let [_, component, version, file, _, _] = cells[..] else {
            continue;
        };
        let Some(file) = file.strip_prefix('`').and_then(|f| f.strip_suffix('`')) else {
            continue;
        };
        let pinned = version
            .split_whitespace()
            .find(|w| w.chars().any(|c| c.is_ascii_digit()))
            .unwrap()
            .trim_end_matches(',');
        let mut places = vec![workshop().join(file)];
        places.extend(solutions().iter().map(|s| s.join(file)));
        assert!(
            places
                .iter()
                .any(|p| std::fs::read_to_string(p).is_ok_and(|t| t.contains(pinned))),
            "README: {component} {pinned} is not what {file} pins"
        );
        rows += 1;
    }
    assert_eq!(rows, 8, "the stack table's rows");
}

// 5 -------------------------------------------------------------------------------------------

#[test]
fn solution_branches_script_makes_one_branch_per_solution() {
    let (tmp, _) = copy_of_workshop();
    let clone = tmp.path();
    let env = [
        ("GIT_AUTHOR_NAME", "Participant".to_string()),
        ("GIT_AUTHOR_EMAIL", "p@example.test".to_string()),
        ("GIT_COMMITTER_NAME", "Participant".to_string()),
        ("GIT_COMMITTER_EMAIL", "p@example.test".to_string()),
        ("GIT_CONFIG_GLOBAL", "/dev/null".to_string()),
    ];
    let remote = tempfile::tempdir().unwrap();
    bash_ok(
        clone,
        &format!(
            "git init --quiet --initial-branch=main . && git add --all && git commit --quiet -m start\n\
             git init --quiet --bare --initial-branch=main {remote} && git remote add origin {remote}",
            remote = remote.path().display()
        ),
        &env,
    );
    let out = bash_ok(
        clone,
        "workshop/scripts/solution-branches.sh --push origin",
        &env,
    );
    assert_eq!(
        bash_ok(clone, "git rev-parse --abbrev-ref HEAD", &env).trim(),
        "main",
        "the script returns to the branch it started on"
    );

    let mut previous = "main".to_string();
    for solution in solutions() {
        let name = solution.file_name().unwrap().to_string_lossy().into_owned();
        let branch = format!("solution/{name}");
        assert!(out.contains(&format!("pushed {branch} to origin")), "{out}");
        let changed = bash_ok(
            clone,
            &format!("git diff --name-only {previous} {branch}"),
            &env,
        );
        let mut changed: Vec<&str> = changed.lines().collect();
        changed.sort();
        let expected: Vec<String> = files_under(&solution)
            .iter()
            .map(|rel| format!("workshop/{}", rel.display()))
            .collect();
        assert_eq!(
            changed, expected,
            "{branch} changes exactly the solution's files"
        );
        assert_eq!(
            bash_ok(
                clone,
                &format!("git rev-list --count {previous}..{branch}"),
                &env
            )
            .trim(),
            "1",
            "{branch} is one commit on top of {previous}"
        );
        // The branch on the remote is the same commit.
        let local = bash_ok(clone, &format!("git rev-parse {branch}"), &env);
        let pushed = bash_ok(remote.path(), &format!("git rev-parse {branch}"), &env);
        assert_eq!(local, pushed, "{branch} on the remote");
        previous = branch;
    }
    // The last branch holds the finished tree: the starting tree with every solution on top.
    let (_expected, tree) = copy_of_workshop();
    for solution in solutions() {
        overlay(&solution, &tree);
    }
    bash_ok(clone, &format!("git checkout --quiet {previous}"), &env);
    for rel in files_under(&tree) {
        let in_branch = std::fs::read(clone.join("workshop").join(&rel)).unwrap();
        assert_eq!(
            in_branch,
            std::fs::read(tree.join(&rel)).unwrap(),
            "{}",
            rel.display()
        );
    }

    // A dirty working tree is refused, with a reason.
    std::fs::write(clone.join("workshop/README.md"), "changed").unwrap();
    let refused = bash(clone, "workshop/scripts/solution-branches.sh", &env);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("commit or stash"),
        "{refused:?}"
    );
}

// 2 -------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_root_app_syncs_the_offline_workshop_to_synced_and_healthy() {
    let w = World::start("workshop-offline").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    let out = bash_ok(
        &repo_root(),
        &format!(
            "workshop/scripts/offline-repo.sh {} {}",
            repo.work_dir().display(),
            repo.url()
        ),
        &[],
    );
    assert!(out.contains("offline apps: podinfo project"), "{out}");
    repo.commit("the workshop's offline apps");

    // The workshop's own root app, in this test's namespace instead of `ferry`.
    let root = std::fs::read_to_string(repo.work_dir().join("workshop/bootstrap/root-app.yaml"))
        .unwrap()
        .replace("namespace: ferry", &format!("namespace: {ns}"));
    assert!(root.contains(&repo.url()), "{root}");
    w.apply(&root);

    let root = w.wait_synced_healthy("root").await;
    let mut children: Vec<String> = root["status"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["kind"].as_str().unwrap(),
                r["name"].as_str().unwrap()
            )
        })
        .collect();
    children.sort();
    assert_eq!(
        children,
        ["AppProject/workshop", "Application/podinfo"],
        "{root}"
    );
    // ferry gives child apps health, so a Healthy root means a Healthy podinfo app.
    let podinfo = w.wait_synced_healthy("podinfo").await;
    assert_eq!(podinfo["spec"]["project"], "workshop");
    let deployment = Kubectl::new(w.kubeconfig()).in_namespace("podinfo").run(&[
        "get",
        "deployment",
        "podinfo",
        "-o",
        "json",
    ]);
    let deployment: Value = serde_json::from_str(&deployment).unwrap();
    assert_eq!(
        deployment.pointer("/spec/template/spec/containers/0/image"),
        Some(&Value::from("ghcr.io/stefanprodan/podinfo:6.9.0")),
        "the finished workshop runs the release of exercise 05"
    );
    assert_eq!(
        deployment.pointer("/status/readyReplicas"),
        Some(&Value::from(2))
    );

    // Deleting the root app takes everything with it (both carry the resources finalizer), so
    // the shared cluster is left as it was.
    w.kubectl()
        .run(&["delete", "application", "root", "--wait=false"]);
    let kubectl = Kubectl::new(w.kubeconfig());
    wait_until(
        "podinfo's Deployment deleted with the root app",
        STEP,
        || async {
            match kubectl.try_run(&[
                "get",
                "deployment",
                "podinfo",
                "-n",
                "podinfo",
                "--ignore-not-found",
                "-o",
                "name",
            ]) {
                Ok(s) if s.trim().is_empty() => Probe::Done(()),
                Ok(s) => Probe::pending(s),
                Err(e) => Probe::pending(e),
            }
        },
    )
    .await;
}

// 3 -------------------------------------------------------------------------------------------

/// A fenced block of a guide: its info string (`sh verify`) and its text.
#[derive(Debug)]
struct Block {
    info: String,
    text: String,
    line: usize,
}

/// The fenced code blocks of a Markdown file, indentation (of list items) removed.
fn fenced_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, String, usize, Vec<String>)> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some((indent, info.trim().to_string(), i + 1, Vec::new()));
                }
            }
            Some((ind, info, start, lines)) => {
                if trimmed == "```" {
                    blocks.push(Block {
                        info: std::mem::take(info),
                        text: lines.join("\n"),
                        line: *start,
                    });
                    open = None;
                } else {
                    let cut = line.len().min(*ind);
                    lines.push(line[cut..].to_string());
                }
            }
        }
    }
    assert!(open.is_none(), "an unterminated code block");
    blocks
}

/// Where the guide's commands run: the participant's clone and the cluster.
struct Participant {
    clone: PathBuf,
    env: Vec<(&'static str, String)>,
    repo_url: String,
}

impl Participant {
    /// Runs the blocks of `guide` that CI runs, in order, checking expected output.
    fn run_guide(&self, guide: &str) {
        let path = workshop().join("docs").join(guide);
        let blocks = fenced_blocks(&std::fs::read_to_string(&path).unwrap());
        let mut ran = 0;
        let mut checked = 0;
        for (i, block) in blocks.iter().enumerate() {
            let at = format!("{guide}:{}", block.line);
            match block.info.as_str() {
                "sh step" => {
                    bash_ok(&self.clone, &block.text, &self.env);
                }
                "sh verify" => {
                    let out = bash(&self.clone, &block.text, &self.env);
                    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                    assert!(
                        out.status.success(),
                        "{at}: the verification failed ({}):\n{}\n--- stdout\n{stdout}\n--- stderr\n{}",
                        out.status,
                        block.text,
                        String::from_utf8_lossy(&out.stderr)
                    );
                    if let Some(next) = blocks.get(i + 1).filter(|b| b.info == "text") {
                        expect_lines(&at, &block.text, &stdout, &next.text);
                        checked += 1;
                    }
                }
                "sh pipeline" => self.run_pipeline(&at, &block.text),
                _ => continue,
            }
            ran += 1;
        }
        assert!(
            ran >= 5 && checked >= 3,
            "{guide}: only {ran} blocks ran, {checked} checked"
        );
    }

    /// Instead of `workshop/scripts/run-pipeline.sh IMAGE TAG` (a PipelineRun on Tekton), runs
    /// the steps of the `bump-image` Task as plain processes, with the Task's parameters and
    /// the PipelineRun's values substituted as Tekton does.
    fn run_pipeline(&self, at: &str, command: &str) {
        let words: Vec<&str> = command.split_whitespace().collect();
        let [script, image, tag] = words[..] else {
            panic!("{at}: expected `workshop/scripts/run-pipeline.sh IMAGE TAG`, got {command:?}")
        };
        assert_eq!(script, "workshop/scripts/run-pipeline.sh", "{at}");
        // The folder run-pipeline.sh passes when none is given.
        let run_script =
            std::fs::read_to_string(workshop().join("scripts/run-pipeline.sh")).unwrap();
        let path = run_script
            .split("path=${3:-")
            .nth(1)
            .and_then(|rest| rest.split('}').next())
            .expect("run-pipeline.sh has a default path");

        let task_file = workshop().join("solutions/04-pipeline/pipelines/task-bump-image.yaml");
        let task: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&task_file).unwrap()).unwrap();
        let pipeline: Value = serde_saphyr::from_str(
            &std::fs::read_to_string(
                workshop().join("solutions/04-pipeline/pipelines/pipeline-bump-image.yaml"),
            )
            .unwrap(),
        )
        .unwrap();
        // The Pipeline hands every parameter of the Task through, and the run gives the Pipeline
        // every parameter without a default.
        let names = |v: &Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            names(&task["spec"]["params"]),
            names(&pipeline["spec"]["tasks"][0]["params"])
        );
        for p in pipeline["spec"]["params"].as_array().unwrap() {
            let name = p["name"].as_str().unwrap();
            assert!(
                p.get("default").is_some() || run_script.contains(&format!("{{name: {name},")),
                "run-pipeline.sh does not pass the pipeline parameter {name}"
            );
        }

        let workspace = tempfile::Builder::new()
            .prefix("ferry-pipeline-")
            .tempdir()
            .unwrap();
        let home = workspace.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let mut values: Vec<(String, String)> = vec![
            ("params.repo-url".into(), self.repo_url.clone()),
            ("params.path".into(), path.to_string()),
            ("params.image".into(), image.to_string()),
            ("params.tag".into(), tag.to_string()),
            (
                "workspaces.source.path".into(),
                workspace.path().join("ws").display().to_string(),
            ),
        ];
        for p in task["spec"]["params"].as_array().unwrap() {
            let key = format!("params.{}", p["name"].as_str().unwrap());
            if let Some(default) = p["default"].as_str()
                && !values.iter().any(|(k, _)| *k == key)
            {
                values.push((key, default.to_string()));
            }
        }
        std::fs::create_dir_all(workspace.path().join("ws")).unwrap();
        // The step environment: the token from the git-push Secret, HOME as the Task sets it.
        let mut env: Vec<(&str, String)> = vec![
            ("HOME", home.display().to_string()),
            ("GIT_CONFIG_GLOBAL", "/dev/null".into()),
        ];
        for e in task["spec"]["stepTemplate"]["env"].as_array().unwrap() {
            match (
                e["name"].as_str().unwrap(),
                e.pointer("/valueFrom/secretKeyRef/key"),
            ) {
                ("FERRY_GIT_USERNAME", Some(k)) if k == "username" => {
                    env.push(("FERRY_GIT_USERNAME", GIT_USER.into()));
                }
                ("FERRY_GIT_PASSWORD", Some(k)) if k == "password" => {
                    env.push(("FERRY_GIT_PASSWORD", GIT_PASSWORD.into()));
                }
                ("HOME", _) => {}
                (other, _) => panic!(
                    "{}: an env var the test does not know: {other}",
                    task_file.display()
                ),
            }
        }
        let steps = task["spec"]["steps"].as_array().unwrap();
        let step_names: Vec<&str> = steps.iter().map(|s| s["name"].as_str().unwrap()).collect();
        assert_eq!(
            step_names,
            ["clone", "validate", "set-image", "commit-push", "preview"]
        );
        for step in steps {
            let mut script = step["script"].as_str().unwrap().to_string();
            for (key, value) in &values {
                script = script.replace(&format!("$({key})"), value);
            }
            assert!(
                !script.contains("$("),
                "{at}: unsubstituted Tekton variable in {script}"
            );
            let out = bash(workspace.path(), &script, &env);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(
                out.status.success(),
                "{at}: step {} failed:\n{script}\n--- stdout\n{}\n--- stderr\n{stderr}",
                step["name"],
                String::from_utf8_lossy(&out.stdout)
            );
            assert!(
                !stderr.contains(GIT_PASSWORD)
                    && !String::from_utf8_lossy(&out.stdout).contains(GIT_PASSWORD),
                "step {} printed the token",
                step["name"]
            );
            if step["name"] == "preview" {
                // The last commit changed what the podinfo app renders.
                let stdout = String::from_utf8_lossy(&out.stdout);
                assert!(
                    stdout.contains("app podinfo (workshop/apps/podinfo.yaml): ")
                        && stdout.contains("render(s)"),
                    "{at}: the preview shows the changed app:\n{stdout}"
                );
            }
        }
    }
}

/// Each non-empty line of `expected` must appear, in order, within the lines of `output`.
fn expect_lines(at: &str, command: &str, output: &str, expected: &str) {
    let mut lines = output.lines();
    for want in expected.lines().map(str::trim).filter(|l| !l.is_empty()) {
        assert!(
            lines.any(|line| line.contains(want)),
            "{at}: the output of\n{command}\nlacks the line {want:?} (in order); it was:\n{output}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exercises_02_05_and_08_run_from_their_guides() {
    // A cluster of its own: the guides use the namespaces `ferry` and `podinfo` as they are.
    let cluster = Cluster::start_own("workshop-exercises");
    let kubeconfig = cluster.kubeconfig().to_path_buf();
    ferry_ok(&kubeconfig, &["install", "--namespace", "ferry"]);

    // The participant's fork: the repository with the workshop's starting tree, on a git server
    // that wants a token, pointed at itself with use-my-fork.sh as in exercise 01.
    let server_root = tempfile::Builder::new()
        .prefix("ferry-fork-")
        .tempdir()
        .unwrap();
    let server = ferry_testsupport::git_http::serve(
        server_root.path().to_path_buf(),
        GIT_USER,
        GIT_PASSWORD,
    )
    .await;
    let url = format!("{}/ferry.git", server.base_url);
    let (tmp, tree) = copy_of_workshop();
    let seed = tmp.path();
    let git_env = vec![
        ("GIT_AUTHOR_NAME", "Workshop Participant".to_string()),
        ("GIT_AUTHOR_EMAIL", "participant@example.test".to_string()),
        ("GIT_COMMITTER_NAME", "Workshop Participant".to_string()),
        (
            "GIT_COMMITTER_EMAIL",
            "participant@example.test".to_string(),
        ),
        ("GIT_CONFIG_GLOBAL", "/dev/null".to_string()),
    ];
    let fork_out = bash_ok(
        seed,
        &format!("workshop/scripts/use-my-fork.sh {url}"),
        &git_env,
    );
    assert!(fork_out.contains(&format!("with {url}")), "{fork_out}");
    let root_app = std::fs::read_to_string(tree.join("bootstrap/root-app.yaml")).unwrap();
    assert!(
        !root_app.contains(PLACEHOLDER_URL) && root_app.contains(&url),
        "{root_app}"
    );
    bash_ok(
        seed,
        &format!(
            "git init --quiet --initial-branch=main . && git add --all && git commit --quiet -m 'workshop: use my fork'\n\
             git init --quiet --bare --initial-branch=main {bare} && git push --quiet {bare} main",
            bare = server_root.path().join("ferry.git").display()
        ),
        &git_env,
    );

    // ferry reads the fork with the same token, from a repository Secret.
    let kubectl = Kubectl::new(&kubeconfig).in_namespace("ferry");
    kubectl.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: fork\n  labels:\n    argocd.argoproj.io/secret-type: repository\n\
         stringData:\n  url: {url}\n  username: {GIT_USER}\n  password: {GIT_PASSWORD}\n"
    ));
    let _controller = Controller::start(&kubeconfig, "ferry");

    // Exercise 01's bootstrap, minus the VM: apply the root app and wait for the starting tree
    // (the project, and ferry managing its own Deployment).
    kubectl.run(&[
        "apply",
        "-f",
        &tree.join("bootstrap/root-app.yaml").display().to_string(),
    ]);
    let app_status = |name: &str| {
        kubectl
            .try_run(&["get", "application", name, "-o", "json"])
            .ok()
            .map(|s| serde_json::from_str::<Value>(&s).unwrap())
    };
    wait_until("the root app Synced and Healthy", STEP, || async {
        match app_status("root") {
            Some(a) if sync_status(&a) == "Synced" && health_status(&a) == "Healthy" => {
                Probe::Done(())
            }
            Some(a) => Probe::pending(summary(&a)),
            None => Probe::pending("no root app"),
        }
    })
    .await;
    let ferry_app = app_status("ferry").expect("the ferry app exists");
    assert_eq!(
        (sync_status(&ferry_app), health_status(&ferry_app)),
        ("Synced", "Healthy"),
        "{}",
        summary(&ferry_app)
    );

    // The participant's clone, with the token in a credential helper.
    let home = tempfile::tempdir().unwrap();
    let clone = home.path().join("ferry");
    bash_ok(
        home.path(),
        &format!(
            "git clone --quiet -c credential.helper='!f() {{ echo username={GIT_USER}; echo password={GIT_PASSWORD}; }}; f' {url} ferry"
        ),
        &git_env,
    );
    let mut env = git_env.clone();
    env.push(("KUBECONFIG", kubeconfig.display().to_string()));
    env.push(("HOME", home.path().display().to_string()));
    let participant = Participant {
        clone,
        env,
        repo_url: url.clone(),
    };

    participant.run_guide("02-podinfo.md");

    // Exercise 04's first run: the tag podinfo already has. The pipeline succeeds and pushes
    // nothing.
    let head = || {
        bash_ok(
            &participant.clone,
            "git ls-remote origin main",
            &participant.env,
        )
    };
    let before = head();
    participant.run_pipeline(
        "04-pipeline.md",
        "workshop/scripts/run-pipeline.sh ghcr.io/stefanprodan/podinfo 6.8.0",
    );
    assert_eq!(head(), before, "a run with the current tag pushes nothing");

    participant.run_guide("05-upgrade-and-rollback.md");

    // After exercise 05 the fork holds the upgrade and the reverted mistake; the last commit
    // is the revert, and podinfo runs 6.9.0 with two replicas.
    let log = bash_ok(
        &participant.clone,
        "git log --format='%an | %s' -4",
        &participant.env,
    );
    let subjects: Vec<&str> = log.lines().collect();
    assert_eq!(
        subjects,
        [
            "Workshop Participant | Revert \"podinfo: scale to zero (a mistake)\"",
            "Workshop Participant | podinfo: scale to zero (a mistake)",
            "Workshop Pipeline | workshop/workloads/podinfo: ghcr.io/stefanprodan/podinfo:6.9.0",
            "Workshop Participant | podinfo: deploy 6.8.0 through Git",
        ]
    );
    // The fork's podinfo is exactly solution 05's.
    assert_eq!(
        std::fs::read_to_string(
            participant
                .clone
                .join("workshop/workloads/podinfo/deployment.yaml")
        )
        .unwrap(),
        std::fs::read_to_string(
            workshop().join("solutions/05-upgrade/workloads/podinfo/deployment.yaml")
        )
        .unwrap()
    );

    // Exercise 08: an ApplicationSet generates one app per environment folder.
    participant.run_guide("08-applicationsets.md");
    drop(server);
}
