//! The web UI in a real headless Chromium: this test sets up the cluster state (ferry
//! installed, a Git repository with an App-of-Apps, `ferry run`, `ferry server`) and runs
//! `tests/e2e/ui_scenario.mjs` (playwright-core driving Debian's `/usr/bin/chromium`), which
//! logs in as admin, opens the apps, follows drift and a sync live, and checks keyboard use and narrow
//! and wide viewports. Screenshots go to `target/e2e-screenshots/`.
//!
//! Needs `chromium` (apt) and `npm ci` in `tests/e2e/`; `make test` installs both. Their absence
//! fails the test with a message saying what to install: a test that cannot run never passes.

mod common;
mod ui_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use ferry_testsupport::GitRepo;
use ui_support::*;

const CHROMIUM: &str = "/usr/bin/chromium";

/// What is missing to run the browser, if anything.
fn missing_prerequisites(e2e: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!("{CHROMIUM} (apt-get install chromium)"));
    }
    if !e2e
        .join("node_modules/playwright-core/package.json")
        .exists()
    {
        missing.push(format!(
            "playwright-core (cd {} && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci)",
            e2e.display()
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        missing.push("node (apt-get install nodejs)".into());
    }
    missing
}

#[tokio::test]
async fn the_ui_in_headless_chromium() {
    let root_dir = ferry_testsupport::repo_root();
    let e2e = root_dir.join("tests/e2e");
    let missing = missing_prerequisites(&e2e);
    if !missing.is_empty() {
        panic!(
            "the browser test cannot run; it needs: {} (`make test` installs these)",
            missing.join("; ")
        );
    }

    let w = World::start("ui-browser").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    start_fixture(&w, &repo, "root", "web").await;
    // Authentication on: the browser logs in as admin with the initial password, which the
    // server puts into Secret ferry-initial-admin-secret at its first start.
    let ui = UiServer::start(w.kubeconfig(), ns, false).await;
    let password = initial_admin_password(&w).await;

    let shots: PathBuf = root_dir.join("target/e2e-screenshots");
    let out = Command::new("node")
        .arg(e2e.join("ui_scenario.mjs"))
        .current_dir(&e2e)
        .env("FERRY_UI_URL", ui.url())
        .env("FERRY_UI_USER", "admin")
        .env("FERRY_UI_PASSWORD", &password)
        .env("FERRY_UI_APP", "web")
        .env("FERRY_UI_PARENT", "root")
        .env("FERRY_UI_NAMESPACE", ns)
        .env("FERRY_UI_DEPLOYMENT", "web")
        .env("FERRY_UI_SECRET_VALUE", SECRET_VALUE)
        .env("FERRY_UI_SCREENSHOTS", &shots)
        .env("KUBECONFIG", w.kubeconfig())
        .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
        .output()
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(
        out.status.success(),
        "the browser scenario failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    assert!(stdout.contains("all steps passed"), "{stdout}");
    println!("screenshots: {}", shots.display());
}
