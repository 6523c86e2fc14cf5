//! The web UI's HTML routes, end to end: the real `ferry run` and `ferry server`, a real Git
//! repository and the local control plane. The browser-driven scenario is in `ui_browser.rs`.

mod common;
mod ui_support;

use base64::Engine as _;
use common::*;
use ferry_testsupport::{GitRepo, Probe, wait_until};
use ui_support::*;

fn assert_no_secret(page: &str, values: &[&str], what: &str) {
    for v in values {
        let b64 = base64::engine::general_purpose::STANDARD.encode(v);
        assert!(
            !page.contains(v),
            "{what} shows a Secret value in clear:\n{page}"
        );
        assert!(
            !page.contains(&b64),
            "{what} shows a Secret value in base64:\n{page}"
        );
    }
}

#[tokio::test]
async fn pages_show_the_apps_their_tree_history_and_masked_secrets() {
    let w = World::start("ui-pages").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    start_fixture(&w, &repo, "root", "web").await;
    let ui = UiServer::start(w.kubeconfig(), ns, true).await;

    // The list.
    let list = ui.get("/");
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(
        list.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let body = &list.body;
    assert!(body.contains("<html lang=\"en\">") && body.contains("<title>Applications"));
    assert!(body.contains("<main") && body.contains("<header") && body.contains("<nav"));
    assert!(
        body.contains("id=\"insecure-banner\""),
        "no insecure banner"
    );
    assert!(
        body.contains("data-app=\"root\"") && body.contains("data-app=\"web\""),
        "{body}"
    );
    assert!(
        body.contains(&repo.head()[..7]),
        "the revision is not listed"
    );

    // Filters are query parameters.
    let rows = |path: &str| {
        let page = ui.get(path);
        assert_eq!(page.status, 200, "{path}: {}", page.body);
        ["root", "web"]
            .into_iter()
            .filter(|n| page.body.contains(&format!("data-app=\"{n}\"")))
            .collect::<Vec<_>>()
    };
    assert_eq!(rows("/?name=WE"), ["web"]);
    assert_eq!(
        rows("/?project=default&sync=Synced&health=Healthy"),
        ["root", "web"]
    );
    assert!(rows("/?sync=OutOfSync").is_empty());
    assert!(rows("/?project=other").is_empty());
    assert!(
        ui.get("/?health=Degraded")
            .body
            .contains("No application matches")
    );

    // The app page: tree, history, actions.
    let page = ui.get("/applications/web");
    assert_eq!(page.status, 200, "{}", page.body);
    let b = &page.body;
    for kind in [
        "Application",
        "Deployment",
        "ReplicaSet",
        "Pod",
        "Service",
        "Secret",
    ] {
        assert!(
            b.contains(&format!("data-kind=\"{kind}\"")),
            "no {kind} node:\n{b}"
        );
    }
    assert_eq!(b.matches("data-kind=\"Pod\"").count(), 2, "two pods:\n{b}");
    assert!(
        b.contains("web 1.0 with a Secret"),
        "no commit subject in the history"
    );
    assert!(b.contains("Ada Fixture"), "no commit author in the history");
    assert!(b.contains(&repo.head()[..7]));
    assert!(
        b.contains("id=\"sync-button\""),
        "an admin sees the Sync button"
    );
    assert!(b.contains("action=\"/applications/web/sync\"") && b.contains("name=\"_csrf\""));
    assert_no_secret(b, &[SECRET_VALUE], "the app page");

    // App-of-Apps: the child is a node linking to its page.
    let root = ui.get("/applications/root");
    assert!(
        root.body
            .contains("data-kind=\"Application\" data-name=\"web\"")
            && root.body.contains("href=\"/applications/web\""),
        "{}",
        root.body
    );

    // A Secret's live manifest is masked; objects outside the app are refused.
    let secret = ui.get(&format!(
        "/applications/web/resource?group=&version=v1&kind=Secret&namespace={ns}&name=web-secret"
    ));
    assert_eq!(secret.status, 200, "{}", secret.body);
    assert!(secret.body.contains("++++++++"), "{}", secret.body);
    assert_no_secret(&secret.body, &[SECRET_VALUE], "the Secret's page");
    let json = ui.get(&format!(
        "/applications/web/resource?group=&version=v1&kind=Secret&namespace={ns}&name=web-secret&format=json"
    ));
    assert_eq!(json.status, 200);
    assert_no_secret(&json.body, &[SECRET_VALUE], "the Secret's page as JSON");
    let deploy = ui.get(&format!(
        "/applications/web/resource?group=apps&version=v1&kind=Deployment&namespace={ns}&name=web"
    ));
    assert!(deploy.body.contains("replicas: 2"), "{}", deploy.body);
    let outside = ui.get(&format!(
        "/applications/web/resource?group=&version=v1&kind=Secret&namespace={ns}&name=ferry-initial-admin-secret"
    ));
    assert_eq!(outside.status, 404, "{}", outside.body);
    assert!(
        outside
            .body
            .contains("is not a resource of application web")
    );

    // Drift on the Secret (no selfHeal): the diff shows a change, masked.
    w.kubectl().run(&[
        "patch",
        "secret",
        "web-secret",
        "--type=merge",
        "-p",
        r#"{"stringData":{"password":"changed-in-the-cluster"}}"#,
    ]);
    w.wait_app("web", "OutOfSync after the Secret changed", |a| {
        sync_status(a) == "OutOfSync"
    })
    .await;
    let diff = ui.get("/applications/web/diff");
    assert_eq!(diff.status, 200, "{}", diff.body);
    assert!(
        diff.body.contains("Secret:") || diff.body.contains("/Secret"),
        "{}",
        diff.body
    );
    assert!(diff.body.contains("++++++++"), "{}", diff.body);
    assert_no_secret(
        &diff.body,
        &[SECRET_VALUE, "changed-in-the-cluster"],
        "the diff page",
    );

    // Errors are pages with a status.
    let missing = ui.get("/applications/no-such-app");
    assert_eq!(missing.status, 404);
    assert!(
        missing
            .header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(missing.body.contains("application no-such-app not found"));
    let bad = ui.get("/applications/web/resource?kind=Pod");
    assert_eq!(bad.status, 400, "{}", bad.body);

    // Static files and the login page.
    let js = ui.get("/static/ferry.js");
    assert_eq!(js.status, 200);
    assert!(
        js.header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    assert!(js.header("cache-control").unwrap().contains("max-age"));
    assert!(js.body.contains("EventSource"));
    assert_eq!(ui.get("/static/ferry.css").status, 200);
    assert_eq!(ui.get("/static/nope.js").status, 404);
    let login = ui.get("/login?error=invalid&next=/applications/web");
    assert_eq!(login.status, 200);
    assert!(login.body.contains("Wrong username or password"));
    assert!(
        login
            .body
            .contains("name=\"next\" value=\"/applications/web\"")
    );
    assert!(login.body.contains("<label for=\"password\">"));
    let locked = ui.get("/login?error=locked&next=//evil.example");
    assert!(locked.body.contains("Too many failed attempts"));
    assert!(locked.body.contains("name=\"next\" value=\"/\""));
}

#[tokio::test]
async fn events_follow_changes_and_form_posts_sync() {
    let w = World::start("ui-events").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    start_fixture(&w, &repo, "root", "web").await;
    let ui = UiServer::start(w.kubeconfig(), ns, true).await;

    // Drift shows on the event stream.
    let mut events = EventStream::open(ui.addr, &[]);
    w.kubectl()
        .run(&["scale", "deployment/web", "--replicas=3"]);
    let data = events.next_event(
        "app",
        |d| d.contains("\"name\":\"web\"") && d.contains("\"sync\":\"OutOfSync\""),
        STEP,
    );
    let event: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(event["project"], "default");

    // The HTML form's sync: a 303 back to the page, then Synced, seen on the stream too.
    // (409 while another operation runs, which the controller may have started meanwhile.)
    let posted = wait_until("the form's sync is accepted", STEP, || async {
        let r = ui.post_form("/applications/web/sync", "prune=on&dryRun=&_csrf=", &[]);
        match r.status {
            303 => Probe::Done(r),
            409 => Probe::pending(r.body),
            other => panic!("POST /applications/web/sync answered {other}: {}", r.body),
        }
    })
    .await;
    let location = posted.header("location").unwrap();
    assert_eq!(location, "/applications/web?done=sync", "{posted:?}");
    assert!(ui.get(location).body.contains("Sync requested"));
    events.next_event(
        "app",
        |d| d.contains("\"name\":\"web\"") && d.contains("\"sync\":\"Synced\""),
        STEP,
    );
    let app = w
        .wait_app("web", "synced by the form's request", |a| {
            sync_status(a) == "Synced"
                && a.pointer("/status/operationState/operation/initiatedBy/username")
                    .is_some()
        })
        .await;
    assert_eq!(
        app.pointer("/status/operationState/operation/sync/prune"),
        Some(&serde_json::json!(true)),
        "{app}"
    );
    w.wait_object(&["deployment/web"], "back to 2 replicas", |d| {
        d.and_then(|d| d.pointer("/spec/replicas"))
            .and_then(serde_json::Value::as_i64)
            == Some(2)
    })
    .await;

    // Refresh and rollback forms; bad input is a 400 page.
    let refresh = ui.post_form("/applications/web/refresh", "hard=on", &[]);
    assert_eq!(refresh.status, 303, "{}", refresh.body);
    let bad = ui.post_form("/applications/web/rollback", "id=latest", &[]);
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("history entry"), "{}", bad.body);
    let unknown = ui.post_form("/applications/web/rollback", "id=999", &[]);
    assert_eq!(unknown.status, 404, "{}", unknown.body);
    assert!(
        unknown.body.contains("no history entry 999"),
        "{}",
        unknown.body
    );
    let missing = ui.post_form("/applications/nope/sync", "", &[]);
    assert_eq!(missing.status, 404, "{}", missing.body);

    // A rollback to history entry 0 from the form: automated sync goes off, the revision of
    // entry 0 is synced. (On the root app: the root would turn its child's automated sync back
    // on, as Argo CD's App-of-Apps does.)
    let root = w.app("root").unwrap();
    let first = root
        .pointer("/status/history/0/revision")
        .and_then(serde_json::Value::as_str)
        .unwrap()
        .to_string();
    let rolled = ui.post_form("/applications/root/rollback", "id=0", &[]);
    assert_eq!(rolled.status, 303, "{}", rolled.body);
    assert_eq!(
        rolled.header("location"),
        Some("/applications/root?done=rollback")
    );
    w.wait_app("root", "rolled back to entry 0, automated sync off", |a| {
        // Until now only automated syncs ran on root: a user's operation is the rollback.
        a.pointer("/spec/syncPolicy/automated").is_none()
            && a.pointer("/status/operationState/operation/initiatedBy/username")
                .is_some()
            && a.pointer("/status/operationState/operation/sync/revision")
                .and_then(serde_json::Value::as_str)
                == Some(first.as_str())
            && a.pointer("/status/operationState/phase")
                .and_then(serde_json::Value::as_str)
                == Some("Succeeded")
    })
    .await;
    let page = ui.get("/applications/root");
    assert!(
        page.body.contains("Automated sync</dt><dd>off"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn with_authentication_pages_need_a_login_and_readonly_users_cannot_sync() {
    let w = World::start("ui-auth").await;
    let ns = w.ns.name();
    let repo = GitRepo::new();
    start_fixture(&w, &repo, "root", "web").await;
    let ui = UiServer::start(w.kubeconfig(), ns, false).await;

    // Pages send strangers to the login page; static files and the login page are public.
    let anonymous = ui.get("/applications/web");
    assert_eq!(anonymous.status, 303, "{}", anonymous.body);
    assert_eq!(
        anonymous.header("location"),
        Some("/login?next=%2Fapplications%2Fweb")
    );
    assert_eq!(ui.get("/static/ferry.css").status, 200);
    let login = ui.get("/login?next=%2Fapplications%2Fweb");
    assert_eq!(login.status, 200);
    assert!(!login.body.contains("insecure-banner"));

    // A readonly account reads everything, but has no actions, and a sync is refused.
    create_account(&w, "viewer", "readonly", &[], "viewer-pass-1");
    let viewer = ui.login("viewer", "viewer-pass-1").await;
    let page = ui.get_as(&viewer, "/applications/web");
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("id=\"user-name\">viewer<"),
        "{}",
        page.body
    );
    assert!(page.body.contains("(readonly)"));
    assert!(page.body.contains("data-kind=\"Deployment\""));
    assert!(
        !page.body.contains("id=\"sync-button\""),
        "a readonly user sees Sync"
    );
    assert!(!page.body.contains("id=\"actions\""));
    assert!(page.body.contains("action=\"/logout\""));
    assert!(!page.body.contains("insecure-banner"));
    let refused = ui.post_form(
        "/applications/web/sync",
        &format!("_csrf={}", urlencode(&viewer.csrf)),
        &[("Cookie", &viewer.cookie)],
    );
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.body.contains("may not"), "{}", refused.body);

    // An account limited to another project does not see the apps at all.
    create_account(
        &w,
        "outsider",
        "sync",
        &["--projects", "other"],
        "outsider-pass-1",
    );
    let outsider = ui.login("outsider", "outsider-pass-1").await;
    let list = ui.get_as(&outsider, "/");
    assert!(!list.body.contains("data-app=\"web\""), "{}", list.body);
    assert!(list.body.contains("0 applications"), "{}", list.body);
    let hidden = ui.get_as(&outsider, "/applications/web");
    assert_eq!(hidden.status, 404, "{}", hidden.body);
    let hidden = ui.get_as(&outsider, "/applications/web/diff");
    assert_eq!(hidden.status, 404, "{}", hidden.body);

    // An admin (the initial password) sees the actions; a form post needs the CSRF token.
    let password = initial_admin_password(&w).await;
    let admin = ui.login("admin", &password).await;
    let page = ui.get_as(&admin, "/applications/web");
    assert!(page.body.contains("id=\"sync-button\""), "{}", page.body);
    assert!(
        page.body
            .contains(&format!("name=\"_csrf\" value=\"{}\"", admin.csrf))
    );
    let no_csrf = ui.post_form(
        "/applications/web/refresh",
        "",
        &[("Cookie", &admin.cookie)],
    );
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    let refreshed = ui.post_form(
        "/applications/web/refresh",
        &format!("_csrf={}", urlencode(&admin.csrf)),
        &[("Cookie", &admin.cookie)],
    );
    assert_eq!(refreshed.status, 303, "{}", refreshed.body);

    // The event stream needs the session too.
    let mut events = EventStream::open(ui.addr, &[("Cookie", &admin.cookie)]);
    w.kubectl()
        .run(&["scale", "deployment/web", "--replicas=3"]);
    events.next_event(
        "app",
        |d| d.contains("\"name\":\"web\"") && d.contains("OutOfSync"),
        STEP,
    );
}

/// An ApplicationSet `fleet` with a list generator of `names`, each app deploying `one/` of
/// `repo` into `ns` (no automated sync).
fn fleet(names: &[&str], repo: &str, ns: &str) -> String {
    let elements = if names.is_empty() {
        "      elements: []\n".to_string()
    } else {
        let mut s = String::from("      elements:\n");
        for n in names {
            s.push_str(&format!("      - name: {n}\n"));
        }
        s
    };
    format!(
        "apiVersion: argoproj.io/v1alpha1\nkind: ApplicationSet\nmetadata:\n  name: fleet\nspec:\n  generators:\n  - list:\n{elements}  template:\n    metadata:\n      name: '{{{{name}}}}'\n    spec:\n      project: default\n      source:\n        repoURL: {repo}\n        targetRevision: main\n        path: one\n      destination:\n        server: https://kubernetes.default.svc\n        namespace: {ns}\n"
    )
}

#[tokio::test]
async fn applicationset_pages_show_generated_apps_and_confirm_a_held_deletion() {
    let w = World::start("ui-appsets").await;
    let ns = w.ns.name().to_string();
    let repo = GitRepo::new();
    repo.write("one/cm.yaml", &configmap("cm-one", "one"));
    repo.commit("one");
    w.apply(&fleet(&["alpha", "beta", "gamma"], &repo.url(), &ns));
    let ui = UiServer::start(w.kubeconfig(), &ns, true).await;

    // The list and the set's page show the generated apps once the controller made them.
    let page = wait_until("the set's page lists its three apps", STEP, || async {
        let page = ui.get("/applicationsets/fleet");
        // The controller creates the apps, then writes the set's status.
        if page.status == 200
            && page.body.contains("data-condition=\"ParametersGenerated\"")
            && ["alpha", "beta", "gamma"]
                .iter()
                .all(|a| page.body.contains(&format!("data-app=\"{a}\"")))
        {
            Probe::Done(page)
        } else {
            Probe::pending(format!("{} {}", page.status, page.body))
        }
    })
    .await;
    assert!(
        page.body.contains("href=\"/applications/alpha\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("id=\"held\""), "{}", page.body);
    let list = ui.get("/applicationsets");
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("data-set=\"fleet\""), "{}", list.body);

    // Two of three would go: held; the page lists them and offers the confirmation.
    w.apply(&fleet(&["alpha"], &repo.url(), &ns));
    let page = wait_until("the held deletion shows", STEP, || async {
        let page = ui.get("/applicationsets/fleet");
        if page.body.contains("id=\"confirm-button\"") {
            Probe::Done(page)
        } else {
            Probe::pending(page.body)
        }
    })
    .await;
    assert!(
        page.body.contains("data-held=\"beta\"") && page.body.contains("data-held=\"gamma\""),
        "{}",
        page.body
    );
    assert!(!page.body.contains("data-held=\"alpha\""), "{}", page.body);
    assert!(
        ui.get("/applicationsets")
            .body
            .contains("Deletion of 2 held")
    );

    // Confirmed from the page: the controller deletes exactly those two.
    let done = ui.post_form("/applicationsets/fleet/confirm", "", &[]);
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.header("location"),
        Some("/applicationsets/fleet?done=confirm")
    );
    wait_until("beta and gamma are gone", STEP, || async {
        let page = ui.get("/applicationsets/fleet");
        if page.body.contains("data-app=\"alpha\"")
            && !page.body.contains("data-app=\"beta\"")
            && !page.body.contains("data-app=\"gamma\"")
            && !page.body.contains("id=\"held\"")
        {
            Probe::Done(())
        } else {
            Probe::pending(page.body)
        }
    })
    .await;
}
