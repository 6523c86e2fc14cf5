//! ApplicationSets end to end: the real `ferry run` against the local control plane generates
//! Applications from list, git, clusters, matrix and merge generators, the engine syncs them,
//! and the controller fails closed (a Git outage, a mass deletion, bad input change nothing).

mod common;

use common::*;
use ferry_testsupport::{Cluster, GitRepo, Probe, wait_until};
use serde_json::Value;

/// An ApplicationSet manifest with `generators` and `extra` spec lines (both YAML, indented
/// for `spec:`), whose template deploys `path` of `repo` into the test's namespace.
fn appset(name: &str, generators: &str, template: &str, extra: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: {name}\nspec:\n  generators:\n{generators}\n  template:\n{template}\n{extra}"
    )
}

/// A legacy (`{{param}}`) template: app `{name}`, source `repo` at `{path}`, into `ns`.
fn template(name: &str, repo: &str, path: &str, ns: &str, automated: bool) -> String {
    format!(
        "    metadata:\n      name: '{name}'\n    spec:\n      project: default\n      source:\n        repoURL: {repo}\n        targetRevision: main\n        path: '{path}'\n      destination:\n        server: https://kubernetes.default.svc\n        namespace: {ns}\n{}",
        if automated {
            "      syncPolicy:\n        automated:\n          prune: true\n"
        } else {
            ""
        }
    )
}

impl World {
    /// The ApplicationSet `name` as JSON.
    fn appset(&self, name: &str) -> Option<Value> {
        self.kubectl()
            .try_run(&["get", "applicationset", name, "-o", "json"])
            .ok()
            .map(|s| serde_json::from_str(&s).unwrap())
    }

    /// Waits until the set's condition `type_` has status `status` and a message containing
    /// `text`; returns the set.
    async fn wait_condition(&self, name: &str, type_: &str, status: &str, text: &str) -> Value {
        wait_until(
            &format!("ApplicationSet {name}: {type_}={status} with {text:?}"),
            STEP,
            || async {
                let Some(set) = self.appset(name) else {
                    return Probe::pending("no such ApplicationSet");
                };
                let conds = set
                    .pointer("/status/conditions")
                    .cloned()
                    .unwrap_or(Value::Null);
                let hit = conds.as_array().into_iter().flatten().any(|c| {
                    c["type"] == type_
                        && c["status"] == status
                        && c["message"].as_str().unwrap_or("").contains(text)
                });
                if hit {
                    Probe::Done(set)
                } else {
                    Probe::pending(conds.to_string())
                }
            },
        )
        .await
    }

    /// The names of the Applications owned by ApplicationSet `set`, sorted.
    fn owned_apps(&self, set: &str) -> Vec<String> {
        let out = self.kubectl().run(&["get", "applications", "-o", "json"]);
        let list: Value = serde_json::from_str(&out).unwrap();
        let mut names: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| {
                a.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|r| {
                        r.iter()
                            .any(|o| o["kind"] == "ApplicationSet" && o["name"] == set)
                    })
            })
            .map(|a| a["metadata"]["name"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    }

    /// Waits until set `set` owns exactly `want`.
    async fn wait_owned(&self, set: &str, want: &[&str]) {
        wait_until(&format!("{set} owns {want:?}"), STEP, || async {
            let have = self.owned_apps(set);
            if have == want {
                Probe::Done(())
            } else {
                Probe::pending(format!("{have:?}"))
            }
        })
        .await
    }
}

fn list_elements(items: &[(&str, &str)]) -> String {
    let mut s = String::from("  - list:\n      elements:\n");
    for (name, env) in items {
        s.push_str(&format!("      - name: {name}\n        env: {env}\n"));
    }
    s
}

fn repo_with_dirs(dirs: &[&str]) -> GitRepo {
    let repo = GitRepo::new();
    for d in dirs {
        let base = d.rsplit('/').next().unwrap();
        repo.write(
            &format!("{d}/cm.yaml"),
            &configmap(&format!("cm-{base}"), base),
        );
    }
    repo.commit("apps");
    repo
}

#[tokio::test]
async fn git_directories_generate_apps_that_the_engine_syncs() {
    let w = World::start("appset-git").await;
    let ns = w.ns.name().to_string();
    let repo = repo_with_dirs(&["apps/web", "apps/api", "apps/skip"]);
    w.apply(&appset(
        "dirs",
        &format!(
            "  - git:\n      repoURL: {}\n      revision: main\n      directories:\n      - path: apps/*\n      - path: apps/skip\n        exclude: true",
            repo.url()
        ),
        &template("{{path.basename}}", &repo.url(), "{{path}}", &ns, true),
        "",
    ));
    w.wait_owned("dirs", &["api", "web"]).await;
    w.wait_synced_healthy("web").await;
    w.wait_synced_healthy("api").await;
    w.kubectl().run(&["get", "configmap", "cm-web"]);
    w.kubectl().run(&["get", "configmap", "cm-api"]);
    assert!(
        w.kubectl()
            .try_run(&["get", "configmap", "cm-skip"])
            .is_err()
    );
    let set = w
        .wait_condition("dirs", "ResourcesUpToDate", "True", "")
        .await;
    w.wait_condition("dirs", "ErrorOccurred", "False", "").await;
    assert_eq!(
        set["status"]["resources"].as_array().map(Vec::len),
        Some(2),
        "{set}"
    );

    // A new directory in Git becomes an app; a removed one goes.
    repo.write("apps/db/cm.yaml", &configmap("cm-db", "db"));
    repo.remove("apps/api/cm.yaml");
    repo.commit("db in, api out");
    w.wait_owned("dirs", &["db", "web"]).await;
    w.wait_synced_healthy("db").await;

    // `preview` shows what a changed set would do, and changes nothing.
    let same = w.ferry(&["appset", "preview", "dirs"]);
    let same_out = String::from_utf8_lossy(&same.stdout).to_string();
    assert_eq!(same.status.code(), Some(0), "{same_out}");
    assert!(same_out.contains("same    web"), "{same_out}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        file.path(),
        appset(
            "dirs",
            &format!(
                "  - git:\n      repoURL: {}\n      revision: main\n      directories:\n      - path: apps/*\n      - path: apps/skip\n        exclude: true\n      - path: apps/db\n        exclude: true",
                repo.url()
            ),
            &template("{{path.basename}}", &repo.url(), "{{path}}", &ns, true),
            "",
        ),
    )
    .unwrap();
    let changed = w.ferry(&["appset", "preview", "-f", file.path().to_str().unwrap()]);
    let changed_out = String::from_utf8_lossy(&changed.stdout).to_string();
    assert_eq!(changed.status.code(), Some(1), "{changed_out}");
    assert!(changed_out.contains("delete  db"), "{changed_out}");
    assert_eq!(
        w.owned_apps("dirs"),
        ["db", "web"],
        "preview changes nothing"
    );

    // `ferry appset list` and `get` show it.
    let listed = w.ferry(&["appset", "list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).contains("dirs"));
    let got = w.ferry(&["appset", "get", "dirs"]);
    let got = String::from_utf8_lossy(&got.stdout).to_string();
    assert!(
        got.contains("ResourcesUpToDate") && got.contains("web"),
        "{got}"
    );

    // A Git outage: the repository disappears. Nothing is deleted, a condition names it.
    let moved = repo.bare_dir().with_extension("away");
    std::fs::rename(repo.bare_dir(), &moved).unwrap();
    let set = w
        .wait_condition("dirs", "ErrorOccurred", "True", "generators[0].git")
        .await;
    let msg = set.to_string();
    assert!(msg.contains("ApplicationSet dirs"), "{msg}");
    assert!(
        msg.contains("nothing was created, updated or deleted"),
        "{msg}"
    );
    assert_eq!(
        w.owned_apps("dirs"),
        ["db", "web"],
        "nothing deleted during the outage"
    );
    std::fs::rename(&moved, repo.bare_dir()).unwrap();
    w.wait_condition("dirs", "ErrorOccurred", "False", "").await;
    assert_eq!(w.owned_apps("dirs"), ["db", "web"]);
}

#[tokio::test]
async fn a_mass_deletion_is_held_until_confirmed() {
    let w = World::start("appset-hold").await;
    let ns = w.ns.name().to_string();
    let repo = repo_with_dirs(&["one"]);
    let set = |items: &[(&str, &str)]| {
        appset(
            "fleet",
            &list_elements(items),
            &template("{{name}}", &repo.url(), "one", &ns, false),
            "",
        )
    };
    w.apply(&set(&[("a", "x"), ("b", "x"), ("c", "x")]));
    w.wait_owned("fleet", &["a", "b", "c"]).await;

    // Two of three would go: held, nothing deleted, the condition lists them.
    w.apply(&set(&[("a", "x")]));
    let held = w
        .wait_condition("fleet", "ErrorOccurred", "True", "b, c")
        .await;
    assert!(held.to_string().contains("DeletionHeld"), "{held}");
    assert_eq!(w.owned_apps("fleet"), ["a", "b", "c"]);

    // Confirmed for exactly that set: they go, and the confirmation is used up.
    let out = w.ferry(&["appset", "confirm", "fleet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    w.wait_owned("fleet", &["a"]).await;
    w.wait_condition("fleet", "ErrorOccurred", "False", "")
        .await;
    wait_until("the confirmation annotation is removed", STEP, || async {
        let set = w.appset("fleet").unwrap();
        match set.pointer("/metadata/annotations/ferry.dev~1confirm-deletion") {
            None => Probe::Done(()),
            Some(v) => Probe::pending(v.to_string()),
        }
    })
    .await;

    // An empty result (all of them) is held too.
    w.apply(&set(&[]).replace("      elements:\n", "      elements: []\n"));
    w.wait_condition("fleet", "ErrorOccurred", "True", "(all of them)")
        .await;
    assert_eq!(w.owned_apps("fleet"), ["a"]);
}

#[tokio::test]
async fn bad_input_sets_a_condition_and_leaves_other_sets_alone() {
    let w = World::start("appset-bad").await;
    let ns = w.ns.name().to_string();
    let repo = repo_with_dirs(&["one"]);
    let tpl = template("{{name}}", &repo.url(), "one", &ns, false);
    w.apply(&appset(
        "good",
        &list_elements(&[("good-a", "x")]),
        &tpl,
        "",
    ));
    w.apply(&appset(
        "victim",
        &list_elements(&[("victim-a", "x")]),
        &tpl,
        "",
    ));
    w.wait_owned("good", &["good-a"]).await;
    w.wait_owned("victim", &["victim-a"]).await;

    // An unknown generator on a set that had apps: a condition, nothing deleted.
    w.apply(&appset("victim", "  - lsit:\n      elements: []", &tpl, ""));
    w.wait_condition("victim", "ErrorOccurred", "True", "unknown generator lsit")
        .await;
    assert_eq!(w.owned_apps("victim"), ["victim-a"]);

    // Two parameter sets giving one name.
    w.apply(&appset(
        "dup",
        &list_elements(&[("same", "x"), ("same", "y")]),
        &tpl,
        "",
    ));
    w.wait_condition("dup", "ErrorOccurred", "True", "Application name same")
        .await;
    // A template that fails (Go template, missing key).
    w.apply(&appset(
        "broken",
        &list_elements(&[("b1", "x")]),
        &tpl.replace("'{{name}}'", "'{{ .nope }}'"),
        "  goTemplate: true\n  goTemplateOptions: [\"missingkey=error\"]\n",
    ));
    let broken = w
        .wait_condition("broken", "ErrorOccurred", "True", "ApplicationSet broken")
        .await;
    assert!(
        broken.to_string().contains("RenderTemplateParamsError"),
        "{broken}"
    );
    assert!(w.owned_apps("dup").is_empty() && w.owned_apps("broken").is_empty());

    // The good set goes on: a new element still becomes an app.
    w.apply(&appset(
        "good",
        &list_elements(&[("good-a", "x"), ("good-b", "x")]),
        &tpl,
        "",
    ));
    w.wait_owned("good", &["good-a", "good-b"]).await;
    w.wait_condition("good", "ErrorOccurred", "False", "").await;
}

#[tokio::test]
async fn applications_sync_policies_limit_what_changes() {
    let w = World::start("appset-policy").await;
    let ns = w.ns.name().to_string();
    let repo = repo_with_dirs(&["one", "two"]);
    let set = |name: &str, policy: &str, items: &[(&str, &str)], path: &str| {
        appset(
            name,
            &list_elements(items),
            &template("{{name}}", &repo.url(), path, &ns, false),
            &format!(
                "  syncPolicy:\n    applicationsSync: {policy}\n    preserveResourcesOnDeletion: true\n"
            ),
        )
    };
    let path_of = |app: &str| {
        w.app(app).unwrap()["spec"]["source"]["path"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (name, policy) in [
        ("co", "create-only"),
        ("cu", "create-update"),
        ("cd", "create-delete"),
    ] {
        w.apply(&set(
            name,
            policy,
            &[(&format!("{name}-1"), "x"), (&format!("{name}-2"), "x")],
            "one",
        ));
        w.wait_owned(name, &[&format!("{name}-1"), &format!("{name}-2")])
            .await;
        let app = w.app(&format!("{name}-1")).unwrap();
        assert!(
            app.pointer("/metadata/finalizers").is_none(),
            "preserveResourcesOnDeletion: no resources finalizer: {app}"
        );
        // Drop one element and change the path of the other.
        w.apply(&set(name, policy, &[(&format!("{name}-1"), "x")], "two"));
        w.wait_condition(name, "ResourcesUpToDate", "True", "")
            .await;
    }
    // create-update: updated, nothing deleted.
    wait_until("cu-1 updated", STEP, || async {
        if path_of("cu-1") == "two" {
            Probe::Done(())
        } else {
            Probe::pending(path_of("cu-1"))
        }
    })
    .await;
    assert_eq!(w.owned_apps("cu"), ["cu-1", "cu-2"]);
    // create-delete: deleted, not updated.
    w.wait_owned("cd", &["cd-1"]).await;
    assert_eq!(path_of("cd-1"), "one");
    // create-only: neither.
    w.wait_condition("co", "ResourcesUpToDate", "True", "left alone")
        .await;
    assert_eq!(w.owned_apps("co"), ["co-1", "co-2"]);
    assert_eq!(path_of("co-1"), "one");
}

#[tokio::test]
async fn matrix_and_merge_combine_generators() {
    let w = World::start("appset-matrix").await;
    let ns = w.ns.name().to_string();
    let repo = repo_with_dirs(&["apps/web", "apps/api"]);
    let generators = format!(
        "  - matrix:\n      generators:\n      - git:\n          repoURL: {url}\n          revision: main\n          directories:\n          - path: apps/*\n      - list:\n          elements:\n          - env: dev\n          - env: prod\n  - merge:\n      mergeKeys: [env]\n      generators:\n      - list:\n          elements:\n          - {{env: qa, path: apps/web, path.basename: web}}\n          - {{env: stage, path: apps/api, path.basename: api}}\n      - list:\n          elements:\n          - {{env: stage, path: apps/web, path.basename: webx}}",
        url = repo.url()
    );
    w.apply(&appset(
        "combo",
        &generators,
        &template(
            "{{env}}-{{path.basename}}",
            &repo.url(),
            "{{path}}",
            &ns,
            false,
        ),
        "",
    ));
    // matrix: 2 dirs × 2 envs; merge: qa as it is, stage overridden by the second list.
    w.wait_owned(
        "combo",
        &[
            "dev-api",
            "dev-web",
            "prod-api",
            "prod-web",
            "qa-web",
            "stage-webx",
        ],
    )
    .await;
    let stage = w.app("stage-webx").unwrap();
    assert_eq!(
        stage["spec"]["source"]["path"], "apps/web",
        "the merge overrides stage's path"
    );
    let dev = w.app("dev-api").unwrap();
    assert_eq!(dev["spec"]["source"]["path"], "apps/api");
}

#[tokio::test]
async fn rolling_sync_goes_step_by_step() {
    let w = World::start("appset-rolling").await;
    let ns = w.ns.name().to_string();
    let repo = repo_with_dirs(&["dev", "prod"]);
    w.apply(&appset(
        "rollout",
        &list_elements(&[("r-dev", "dev"), ("r-prod", "prod"), ("r-qa", "qa")]),
        &template("{{name}}", &repo.url(), "{{env}}", &ns, true).replace(
            "      name: '{{name}}'\n",
            "      name: '{{name}}'\n      labels:\n        env: '{{env}}'\n",
        ),
        "  strategy:\n    type: RollingSync\n    rollingSync:\n      steps:\n      - matchExpressions:\n        - {key: env, operator: In, values: [dev]}\n      - matchExpressions:\n        - {key: env, operator: In, values: [prod]}\n        maxUpdate: 1\n",
    ));
    let dev = w.wait_synced_healthy("r-dev").await;
    let prod = w.wait_synced_healthy("r-prod").await;
    // Automated sync is off for apps in steps: the rollout synced them, in order.
    assert!(dev.pointer("/spec/syncPolicy/automated").is_none(), "{dev}");
    let t = |a: &Value, f: &str| {
        a.pointer(&format!("/status/operationState/{f}"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    assert!(!t(&dev, "finishedAt").is_empty() && !t(&prod, "startedAt").is_empty());
    assert!(
        t(&prod, "startedAt") >= t(&dev, "finishedAt"),
        "prod started {} before dev finished {}",
        t(&prod, "startedAt"),
        t(&dev, "finishedAt")
    );
    assert_eq!(
        prod.pointer("/status/operationState/operation/initiatedBy/username")
            .and_then(Value::as_str),
        Some("applicationset-controller")
    );
    w.wait_condition("rollout", "RolloutProgressing", "False", "complete")
        .await;
    // The app outside every step keeps its template's automated sync and is not in the rollout.
    let qa = w.app("r-qa").unwrap();
    assert!(qa.pointer("/spec/syncPolicy/automated").is_some(), "{qa}");
    let set = w.appset("rollout").unwrap();
    let statuses = set["status"]["applicationStatus"].as_array().unwrap();
    assert!(statuses.iter().all(|s| s["application"] != "r-qa"), "{set}");
}

#[tokio::test]
async fn clusters_generator_targets_a_registered_cluster() {
    use base64::Engine as _;
    let w = World::start("appset-clusters").await;
    let ns = w.ns.name().to_string();
    let remote = Cluster::start_own("appset-remote");
    let view = remote
        .kubectl()
        .run(&["config", "view", "--raw", "-o", "json"]);
    let kc: Value = serde_json::from_str(&view).unwrap();
    let server = kc
        .pointer("/clusters/0/cluster/server")
        .and_then(Value::as_str)
        .unwrap()
        .to_string();
    let ca = kc
        .pointer("/clusters/0/cluster/certificate-authority-data")
        .and_then(Value::as_str)
        .unwrap();
    let token = kc
        .pointer("/users/0/user/token")
        .and_then(Value::as_str)
        .unwrap();
    let config =
        serde_json::json!({"bearerToken": token, "tlsClientConfig": {"caData": ca}}).to_string();
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    w.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: remote-cluster\n  labels:\n    argocd.argoproj.io/secret-type: cluster\n    env: remote\ndata:\n  name: {}\n  server: {}\n  config: {}\n",
        b64("Remote_One"), b64(&server), b64(&config)
    ));
    remote.kubectl().run(&["create", "namespace", &ns]);
    let repo = repo_with_dirs(&["one"]);
    let tpl = format!(
        "    metadata:\n      name: 'c-{{{{nameNormalized}}}}'\n    spec:\n      project: default\n      source:\n        repoURL: {}\n        targetRevision: main\n        path: one\n      destination:\n        server: '{{{{server}}}}'\n        namespace: {ns}\n      syncPolicy:\n        automated: {{}}\n",
        repo.url()
    );
    w.apply(&appset("all-clusters", "  - clusters: {}", &tpl, ""));
    w.apply(&appset(
        "selected",
        "  - clusters:\n      selector:\n        matchLabels:\n          env: remote\n      values:\n        label: 'on-{{name}}'",
        // (Not synced: the same ConfigMap would then belong to two apps.)
        &tpl.replace("'c-{{nameNormalized}}'", "'s-{{nameNormalized}}'\n      annotations:\n        where: '{{values.label}}'")
            .replace("      syncPolicy:\n        automated: {}\n", ""),
        "",
    ));
    w.wait_owned("all-clusters", &["c-in-cluster", "c-remote-one"])
        .await;
    w.wait_owned("selected", &["s-remote-one"]).await;
    let s = w.app("s-remote-one").unwrap();
    assert_eq!(
        s["metadata"]["annotations"]["where"], "on-Remote_One",
        "{s}"
    );
    w.wait_synced_healthy("c-remote-one").await;
    remote
        .kubectl()
        .run(&["get", "configmap", "cm-one", "-n", &ns]);
}

#[tokio::test]
async fn a_plugin_answering_500_or_html_deletes_nothing() {
    use ferry_testsupport::scm_server::{Fault, ScmData, ScmServer};
    let w = World::start("appset-plugin").await;
    let ns = w.ns.name().to_string();
    let repo = repo_with_dirs(&["one"]);
    let server = ScmServer::start(ScmData {
        token: Some("s3cret-token".into()),
        plugin_answer: serde_json::json!({"output": {"parameters": [
            {"name": "p-a", "env": "x"}, {"name": "p-b", "env": "x"}
        ]}}),
        ..ScmData::default()
    })
    .await;
    w.apply(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: plugin-token\n  labels:\n    app.kubernetes.io/part-of: argocd\nstringData:\n  token: s3cret-token\n",
    );
    w.apply(&format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: my-plugin\ndata:\n  token: $plugin-token:token\n  baseUrl: {}\n",
        server.url
    ));
    w.apply(&appset(
        "plugged",
        "  - plugin:\n      configMapRef:\n        name: my-plugin",
        &template("{{name}}", &repo.url(), "one", &ns, false),
        "",
    ));
    w.wait_owned("plugged", &["p-a", "p-b"]).await;
    for (fault, says) in [(Fault::Status500, "500"), (Fault::Html200, "text/html")] {
        server.set_fault(fault, None);
        let set = w
            .wait_condition("plugged", "ErrorOccurred", "True", "generators[0].plugin")
            .await;
        let text = set.to_string();
        assert!(text.contains(says), "{says}: {text}");
        assert!(
            !text.contains("s3cret-token"),
            "the token never shows: {text}"
        );
        assert_eq!(w.owned_apps("plugged"), ["p-a", "p-b"], "nothing deleted");
        server.clear_fault();
        w.wait_condition("plugged", "ErrorOccurred", "False", "")
            .await;
    }
    // A well-formed empty answer would delete everything: held.
    server.update(|d| d.plugin_answer = serde_json::json!({"output": {"parameters": []}}));
    w.wait_condition("plugged", "ErrorOccurred", "True", "(all of them)")
        .await;
    assert_eq!(w.owned_apps("plugged"), ["p-a", "p-b"]);
}
