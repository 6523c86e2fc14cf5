//! SOPS secrets end to end: files encrypted by the real `sops` (target/tools/bin/sops, from
//! `scripts/install-tools.sh`) in a real Git repository, decrypted at render by the real
//! `ferry run` with age keys per AppProject, applied to the local control plane; broken files
//! refused with a condition, nothing pruned; and a canary value that must appear in the applied
//! Secret and nowhere else (log, API, UI, Events, /metrics, cache directory).

mod common;
mod ui_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine as _;
use common::*;
use ferry_testsupport::GitRepo;
use serde_json::Value;
use ui_support::*;

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn sops_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/bin/sops");
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/install-tools.sh",
        bin.display()
    );
    bin
}

/// An age key pair: the identity file text and the public key.
struct AgeKey {
    secret: String,
    public: String,
}

fn age_key() -> AgeKey {
    let (secret, public) = ferry_secrets::generate_identity();
    AgeKey { secret, public }
}

/// `sops encrypt` of `text` (named `name`, which picks the format) for `key`, with extra flags.
fn sops_encrypt(key: &AgeKey, name: &str, text: &str, flags: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(name), text).unwrap();
    let mut args = vec!["encrypt", "--age", key.public.as_str()];
    args.extend_from_slice(flags);
    args.push(name);
    let out = Command::new(sops_bin())
        .args(&args)
        .current_dir(dir.path())
        .env_clear()
        .env("SOPS_DISABLE_VERSION_CHECK", "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "sops {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A Secret holding `key` for the given projects, labelled as ferry's SOPS keys.
fn key_secret(name: &str, projects: &str, key: &AgeKey) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  labels:\n    ferry.dev/sops-keys: \"true\"\n  annotations:\n    ferry.dev/sops-projects: \"{projects}\"\ndata:\n  {name}.agekey: {}\n",
        b64(&format!("# a test key\n{}\n", key.secret))
    )
}

fn project(name: &str, ns: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: AppProject\nmetadata:\n  name: {name}\nspec:\n  sourceRepos: [\"*\"]\n  destinations:\n  - server: https://kubernetes.default.svc\n    namespace: {ns}\n  clusterResourceWhitelist: []\n"
    )
}

fn app_in(project: &str, name: &str, repo: &GitRepo, path: &str, ns: &str) -> String {
    application(name, &repo.url(), path, ns, AUTOMATED)
        .replace("project: default", &format!("project: {project}"))
}

fn secret_yaml(name: &str, canary: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\ntype: Opaque\nstringData:\n  password: {canary}\ndata:\n  token: {}\n",
        b64("token-value")
    )
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            out.extend(files_containing(&path, needle));
        } else if kind.is_file()
            && let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            out.push(path);
        }
    }
    out
}

fn secret_value(w: &World, name: &str, key: &str) -> Option<String> {
    let out = w
        .kubectl()
        .try_run(&["get", "secret", name, "-o", "json"])
        .ok()?;
    let obj: Value = serde_json::from_str(&out).unwrap();
    let v = obj.pointer(&format!("/data/{key}"))?.as_str()?;
    Some(String::from_utf8(base64::engine::general_purpose::STANDARD.decode(v).unwrap()).unwrap())
}

#[tokio::test]
async fn sops_files_are_decrypted_with_the_projects_keys_and_the_canary_stays_in_the_secret() {
    let w = World::start("sops").await;
    let ns = w.ns.name();
    let canary = format!("canary-{}", &ferry_secrets::generate_identity().1[4..24]);
    let team_a = age_key();
    let team_b = age_key();
    let nobody = age_key();
    w.apply(&key_secret("team-a-keys", "team-a", &team_a));
    w.apply(&key_secret("team-b-keys", "team-b", &team_b));
    w.apply(&project("team-a", ns));
    w.apply(&project("team-b", ns));

    let repo = GitRepo::new();
    // A Secret with data and stringData, everything encrypted.
    repo.write(
        "plain/secret.yaml",
        &sops_encrypt(&team_a, "secret.yaml", &secret_yaml("db", &canary), &[]),
    );
    // A ConfigMap with only `data` encrypted.
    repo.write(
        "plain/config.yaml",
        &sops_encrypt(
            &team_a,
            "config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  url: https://db.example\n",
            &["--encrypted-regex", "^data$"],
        ),
    );
    // Kustomize: a secretGenerator reading a SOPS dotenv, and a SOPS resource.
    repo.write(
        "kust/kustomization.yaml",
        "resources:\n- api.yaml\nsecretGenerator:\n- name: from-env\n  envs:\n  - app.env\ngeneratorOptions:\n  disableNameSuffixHash: true\n",
    )
    .write(
        "kust/app.env",
        &sops_encrypt(&team_a, "app.env", &format!("API_USER=me\nAPI_KEY={canary}-env\n"), &[]),
    )
    .write(
        "kust/api.yaml",
        &sops_encrypt(&team_a, "api.yaml", &secret_yaml("api", &format!("{canary}-kust")), &[]),
    );
    // Helm: a chart whose values file is encrypted.
    repo.write(
        "chart/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\n",
    )
    .write(
        "chart/templates/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: helm-secret\nstringData:\n  password: {{ .Values.password | quote }}\n",
    )
    .write("chart/values.yaml", "password: unset\n")
    .write(
        "chart/secrets.yaml",
        &sops_encrypt(&team_a, "secrets.yaml", &format!("password: {canary}-helm\n"), &[]),
    );
    // An app that syncs once, then gets a tampered file and loses a plain one.
    let good = sops_encrypt(
        &team_a,
        "secret.yaml",
        &secret_yaml("flip", "flip-value"),
        &[],
    );
    repo.write("flip/keep.yaml", &configmap("keep", "1"))
        .write("flip/secret.yaml", &good);
    // Refused: encrypted for a key no Secret holds, and for another project's key.
    repo.write(
        "wrong-key/secret.yaml",
        &sops_encrypt(&nobody, "secret.yaml", &secret_yaml("wrong", "x"), &[]),
    )
    .write(
        "other-project/secret.yaml",
        &sops_encrypt(&team_b, "secret.yaml", &secret_yaml("other", "y"), &[]),
    );
    repo.commit("encrypted files");

    for (name, path) in [
        ("plain", "plain"),
        ("kust", "kust"),
        ("flip", "flip"),
        ("wrong-key", "wrong-key"),
        ("other-project", "other-project"),
    ] {
        w.apply(&app_in("team-a", name, &repo, path, ns));
    }
    w.apply(&app_in("team-a", "helm", &repo, "chart", ns).replace(
        "    targetRevision: main\n",
        "    targetRevision: main\n    helm:\n      valueFiles: [secrets.yaml]\n",
    ));
    // The same files for team-b: team-a's file is not theirs to open.
    w.apply(&app_in("team-b", "b-reads-a", &repo, "plain", ns));

    for app in ["plain", "kust", "helm", "flip"] {
        w.wait_synced_healthy(app).await;
    }
    assert_eq!(
        secret_value(&w, "db", "password").as_deref(),
        Some(canary.as_str())
    );
    assert_eq!(
        secret_value(&w, "db", "token").as_deref(),
        Some("token-value")
    );
    let cm = w
        .kubectl()
        .run(&["get", "configmap", "settings", "-o", "json"]);
    let cm: Value = serde_json::from_str(&cm).unwrap();
    assert_eq!(cm["data"]["url"], "https://db.example");
    assert!(cm.get("sops").is_none(), "the sops block is not applied");
    assert_eq!(
        secret_value(&w, "from-env", "API_KEY").as_deref(),
        Some(format!("{canary}-env").as_str())
    );
    assert_eq!(
        secret_value(&w, "api", "password").as_deref(),
        Some(format!("{canary}-kust").as_str())
    );
    assert_eq!(
        secret_value(&w, "helm-secret", "password").as_deref(),
        Some(format!("{canary}-helm").as_str())
    );

    // Refused with a condition naming the file and its recipients; nothing applied.
    for (app, file, recipient) in [
        ("wrong-key", "wrong-key/secret.yaml", &nobody.public),
        ("other-project", "other-project/secret.yaml", &team_b.public),
        ("b-reads-a", "plain/config.yaml", &team_a.public),
    ] {
        let a = w
            .wait_app(app, "a ComparisonError", |a| {
                conditions(a)
                    .iter()
                    .any(|c| c.starts_with("ComparisonError"))
            })
            .await;
        let text = conditions(&a).join("\n");
        assert!(
            text.contains(file) && text.contains(recipient.as_str()),
            "{app}: {text}"
        );
        assert!(text.contains("ferry.dev/sops-projects"), "{app}: {text}");
    }
    assert!(secret_value(&w, "wrong", "password").is_none());
    assert!(secret_value(&w, "other", "password").is_none());

    // A tampered value and a tampered MAC: refused whole, nothing pruned, others unaffected.
    let flip = |line_start: &str| {
        let line = good
            .lines()
            .find(|l| l.trim_start().starts_with(line_start))
            .unwrap();
        let at = line.find("data:").unwrap() + 5;
        let mut bad = line.to_owned();
        let swap = if &line[at..=at] == "A" { "B" } else { "A" };
        bad.replace_range(at..=at, swap);
        good.replace(line, &bad)
    };
    for (what, text, expected) in [
        ("value", flip("password:"), "stringData:password:"),
        ("mac", flip("mac:"), "MAC does not verify"),
    ] {
        repo.write("flip/secret.yaml", &text)
            .remove("flip/keep.yaml");
        repo.commit(&format!("tampered {what}"));
        let a = w
            .wait_app("flip", &format!("refusing the tampered {what}"), |a| {
                conditions(a).iter().any(|c| c.contains(expected))
            })
            .await;
        let text = conditions(&a).join("\n");
        assert!(text.contains("flip/secret.yaml"), "{text}");
        assert!(
            w.kubectl().try_run(&["get", "configmap", "keep"]).is_ok(),
            "nothing may be pruned after a refused render"
        );
        assert_eq!(
            secret_value(&w, "flip", "password").as_deref(),
            Some("flip-value")
        );
        repo.write("flip/keep.yaml", &configmap("keep", "1"));
    }
    let plain = w.app("plain").unwrap();
    assert_eq!(sync_status(&plain), "Synced", "{}", summary(&plain));

    // The canary (also in the kustomize and helm inputs, decrypted into private copies during
    // their renders) is nowhere but in the Secrets.
    let needles = [canary.clone(), b64(&canary)];
    let ui = UiServer::start(w.kubeconfig(), ns, true).await;
    let mut seen = Vec::new();
    for path in [
        "/",
        "/applications/plain",
        &format!(
            "/applications/plain/resource?group=&version=v1&kind=Secret&namespace={ns}&name=db"
        ),
        "/applications/plain/diff",
        "/api/v1/applications",
        "/api/v1/applications/plain",
        "/api/v1/applications/plain/diff",
        "/api/v1/applications/plain/history",
        "/applications/kust",
        "/applications/helm",
        "/api/v1/applications/kust/diff",
        "/api/v1/applications/helm/diff",
        "/metrics",
    ] {
        let reply = ui.get(path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        seen.push((path.to_owned(), reply.body));
    }
    // The controller's own /metrics, on the listener Prometheus scrapes (no sign-in there).
    let addr = w
        .controller
        .logged_address("serving /metrics")
        .parse()
        .unwrap();
    let metrics = ferry_testsupport::http::request(addr, "GET", "/metrics", &[], b"");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains("ferry_app_info{"), "{}", metrics.body);
    seen.push(("controller /metrics".into(), metrics.body));
    let diff = w.ferry(&["app", "diff", "plain"]);
    seen.push((
        "ferry app diff".into(),
        String::from_utf8_lossy(&diff.stdout).into_owned(),
    ));
    let app = w.ferry(&["app", "get", "plain", "-o", "json"]);
    seen.push((
        "ferry app get".into(),
        String::from_utf8_lossy(&app.stdout).into_owned(),
    ));
    seen.push((
        "events".into(),
        w.kubectl().run(&["get", "events", "-o", "json"]),
    ));
    seen.push(("controller log".into(), w.controller.log()));
    seen.push(("server log".into(), ui.log()));
    for (what, text) in &seen {
        for needle in &needles {
            assert!(
                !text.contains(needle.as_str()),
                "{what} holds the canary in clear"
            );
        }
    }
    for needle in &needles {
        let found = files_containing(&w.controller.cache_dir(), needle.as_bytes());
        assert!(found.is_empty(), "the cache holds the canary: {found:?}");
    }

    // A key taken away from the project stops its apps at their next look (the cached render
    // is not reused), and nothing is pruned. Nothing in Git changes, so that look is the
    // periodic one: `timeout.reconciliation` of argocd-cm, 2 s here (180 s by default).
    w.apply(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-cm\ndata:\n  timeout.reconciliation: 2s\n  timeout.reconciliation.jitter: 1s\n",
    );
    w.kubectl().run(&[
        "annotate",
        "secret",
        "team-a-keys",
        "--overwrite",
        "ferry.dev/sops-projects=someone-else",
    ]);
    let a = w
        .wait_app("plain", "refusing after the key was revoked", |a| {
            conditions(a).iter().any(|c| c.contains("no age key"))
        })
        .await;
    assert!(
        conditions(&a).join("\n").contains("plain/"),
        "{}",
        summary(&a)
    );
    assert_eq!(
        secret_value(&w, "db", "password").as_deref(),
        Some(canary.as_str())
    );
}
