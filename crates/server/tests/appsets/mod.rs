//! ApplicationSets in the API and the UI: list, get with generated Applications and
//! conditions, and the held-deletion confirmation (admins only), with the Application rules for
//! who sees what. The controller does not run: the tests write the ApplicationSets' status and
//! the generated Applications (owned by ownerReference) themselves.

use ferry_server::WebhookSecretSource;
use ferry_server::auth::Role;
use ferry_server::auth::accounts::AccountStore;
use ferry_testsupport::{Cluster, TestNamespace};
use serde_json::json;

use super::{
    app_manifest, default_project, http, http_full, install_crds, json_of, log_in, secret_value,
    start,
};

const HELD: &str = "ApplicationSet held-set: deleting 2 of its 2 Applications (gen-a, gen-b) is more than 50% (all of them); nothing was created, updated or deleted. If this is intended, run `ferry appset confirm held-set` or set annotation ferry.dev/confirm-deletion=gen-a,gen-b";

fn appset(name: &str, project: &str) -> String {
    format!(
        r#"apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: {name}
spec:
  generators:
  - list:
      elements: []
  template:
    metadata:
      name: "{{{{name}}}}"
    spec:
      project: "{project}"
      source:
        repoURL: https://example.test/repo.git
        path: apps
      destination:
        server: https://kubernetes.default.svc
        namespace: default
"#
    )
}

/// Writes `status.conditions` of set `name` (the status subresource, as the controller does).
fn set_status(ns: &TestNamespace, name: &str, conditions: serde_json::Value) {
    let patch = json!({"status": {"conditions": conditions}}).to_string();
    ns.kubectl().run(&[
        "patch",
        "applicationset",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        &patch,
    ]);
}

/// An Application owned by set `owner`.
fn generated_app(ns: &TestNamespace, name: &str, owner: &str, project: &str) {
    let uid = ns.kubectl().run(&[
        "get",
        "applicationset",
        owner,
        "-o",
        "jsonpath={.metadata.uid}",
    ]);
    let manifest = app_manifest(name, ns.name(), "https://example.test/repo.git", "main", name)
        .replace("project: default", &format!("project: {project}"))
        .replace(
            &format!("  name: {name}\n"),
            &format!(
                "  name: {name}\n  ownerReferences:\n  - apiVersion: argoproj.io/v1alpha1\n    kind: ApplicationSet\n    name: {owner}\n    uid: {}\n",
                uid.trim()
            ),
        );
    ns.kubectl().apply(&manifest);
}

fn names(v: &serde_json::Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn applicationsets_are_listed_shown_and_held_deletions_confirmed_by_admins() {
    install_crds();
    Cluster::shared().kubectl().run(&[
        "wait",
        "--for=condition=Established",
        "crd/applicationsets.argoproj.io",
    ]);
    let ns = Cluster::shared().namespace("server-appsets").await;
    default_project(&ns);
    let n = ns.name().to_string();
    ns.kubectl().apply(&appset("held-set", "default"));
    ns.kubectl().apply(&appset("quiet-set", "default"));
    ns.kubectl().apply(&appset("any-project", "{{project}}"));
    set_status(
        &ns,
        "held-set",
        json!([
            {"type": "ErrorOccurred", "status": "True", "reason": "DeletionHeld", "message": HELD, "lastTransitionTime": "2026-12-02T10:00:00Z"},
            {"type": "ParametersGenerated", "status": "True", "reason": "ParametersGenerated", "message": "Successfully generated parameters for all Applications"},
        ]),
    );
    generated_app(&ns, "gen-a", "held-set", "default");
    generated_app(&ns, "gen-b", "held-set", "default");
    generated_app(&ns, "gen-other", "held-set", "other");
    ns.kubectl().apply(&app_manifest(
        "unowned",
        &n,
        "https://example.test/repo.git",
        "main",
        "x",
    ));

    let s = start(&ns, false, WebhookSecretSource::None).await;
    let password = secret_value(&ns, "ferry-initial-admin-secret", "password").await;
    let (admin, admin_csrf, _) = log_in(s.addr, "admin", &password).await;
    let store = AccountStore::new(ns.client(), &n);
    store
        .upsert_account("viewer", Role::ReadOnly, &[])
        .await
        .unwrap();
    store
        .set_password("viewer", "viewer-password")
        .await
        .unwrap();
    store
        .upsert_account("team", Role::Sync, &["default".into()])
        .await
        .unwrap();
    store.set_password("team", "team-password").await.unwrap();
    store
        .upsert_account("outsider", Role::Sync, &["other".into()])
        .await
        .unwrap();
    store
        .set_password("outsider", "outsider-password")
        .await
        .unwrap();
    let bearer = |t: &str| format!("Bearer {t}");
    let admin_b = bearer(&admin);
    let viewer_b = bearer(&log_in(s.addr, "viewer", "viewer-password").await.0);
    let team_b = bearer(&log_in(s.addr, "team", "team-password").await.0);
    let outsider_b = bearer(&log_in(s.addr, "outsider", "outsider-password").await.0);
    let get = |who: String, path: &'static str| {
        let addr = s.addr;
        async move { http(addr, "GET", path, &[("Authorization", &who)], b"").await }
    };

    // Without a login: 401.
    let (code, _) = http(s.addr, "GET", "/api/v1/applicationsets", &[], b"").await;
    assert_eq!(code, 401);

    // The list: by the template's project; a templated project only for all-project accounts.
    let (code, body) = get(admin_b.clone(), "/api/v1/applicationsets").await;
    assert_eq!(code, 200, "{body}");
    let list = json_of(&body);
    assert_eq!(names(&list), ["any-project", "held-set", "quiet-set"]);
    let held = &list["items"][1];
    assert_eq!(
        held["applications"], 3,
        "admin reads every generated app: {held}"
    );
    assert_eq!(held["heldDeletion"], json!(["gen-a", "gen-b"]));
    assert_eq!(held["generators"], json!(["list"]));
    assert_eq!(list["items"][2]["heldDeletion"], json!(null));
    let (_, body) = get(team_b.clone(), "/api/v1/applicationsets").await;
    let team_list = json_of(&body);
    assert_eq!(names(&team_list), ["held-set", "quiet-set"]);
    assert_eq!(
        team_list["items"][0]["applications"], 2,
        "gen-other is of project other"
    );
    let (_, body) = get(viewer_b.clone(), "/api/v1/applicationsets").await;
    assert_eq!(
        names(&json_of(&body)),
        ["any-project", "held-set", "quiet-set"]
    );
    let (_, body) = get(outsider_b.clone(), "/api/v1/applicationsets").await;
    assert!(names(&json_of(&body)).is_empty(), "{body}");

    // One set: generated apps, conditions, held deletion; hidden sets are 404.
    let (code, body) = get(team_b.clone(), "/api/v1/applicationsets/held-set").await;
    assert_eq!(code, 200, "{body}");
    let one = json_of(&body);
    assert_eq!(one["applicationSet"]["kind"], "ApplicationSet");
    assert!(one["applicationSet"]["metadata"]["managedFields"].is_null());
    let apps: Vec<&str> = one["applications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(apps, ["gen-a", "gen-b"]);
    assert_eq!(one["conditions"][0]["reason"], "DeletionHeld");
    assert_eq!(one["heldDeletion"], json!(["gen-a", "gen-b"]));
    let (code, _) = get(outsider_b.clone(), "/api/v1/applicationsets/held-set").await;
    assert_eq!(code, 404);
    let (code, _) = get(team_b.clone(), "/api/v1/applicationsets/any-project").await;
    assert_eq!(code, 404);
    let (code, _) = get(admin_b.clone(), "/api/v1/applicationsets/absent").await;
    assert_eq!(code, 404);
    let (code, _) = get(admin_b.clone(), "/api/v1/applicationsets/Bad..name").await;
    assert_eq!(code, 400);

    // The confirmation: admins only; 409 when nothing is held; sets the annotation.
    let confirm = "/api/v1/applicationsets/held-set/confirm-deletion";
    for (who, code_wanted) in [(&viewer_b, 403), (&team_b, 403), (&outsider_b, 404)] {
        let (code, body) = http(s.addr, "POST", confirm, &[("Authorization", who)], b"").await;
        assert_eq!(code, code_wanted, "{body}");
    }
    let annotation = || {
        ns.kubectl().run(&[
            "get",
            "applicationset",
            "held-set",
            "-o",
            "jsonpath={.metadata.annotations.ferry\\.dev/confirm-deletion}",
        ])
    };
    assert_eq!(
        annotation().trim(),
        "",
        "nothing confirmed by the refused requests"
    );
    let (code, body) = http(
        s.addr,
        "POST",
        "/api/v1/applicationsets/quiet-set/confirm-deletion",
        &[("Authorization", &admin_b)],
        b"",
    )
    .await;
    assert_eq!(code, 409, "{body}");
    assert_eq!(json_of(&body)["code"], "nothing_held");
    let (code, body) = http(s.addr, "POST", confirm, &[("Authorization", &admin_b)], b"").await;
    assert_eq!(code, 202, "{body}");
    assert_eq!(json_of(&body)["confirmed"], json!(["gen-a", "gen-b"]));
    assert_eq!(annotation().trim(), "gen-a,gen-b");

    // The UI: the list, the set's page, and the confirm button for admins only.
    let cookie = format!("ferry_session={admin}");
    let page = http_full(
        s.addr,
        "GET",
        "/applicationsets",
        &[("Cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    for set in ["held-set", "quiet-set", "any-project"] {
        assert!(
            page.body.contains(&format!("data-set=\"{set}\"")),
            "{set}: {}",
            page.body
        );
    }
    assert!(page.body.contains("Deletion of 2 held"), "{}", page.body);
    assert!(
        page.body.contains("href=\"/applicationsets\""),
        "the navigation links the list"
    );
    assert!(
        !page.body.contains("src=\"http") && !page.body.contains("href=\"http"),
        "no outside assets: {}",
        page.body
    );

    let page = http_full(
        s.addr,
        "GET",
        "/applicationsets/held-set",
        &[("Cookie", &cookie)],
        b"",
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    let body = &page.body;
    assert!(
        body.contains("data-app=\"gen-a\"") && body.contains("data-app=\"gen-other\""),
        "{body}"
    );
    assert!(!body.contains("data-app=\"unowned\""), "{body}");
    assert!(
        body.contains("data-condition=\"ErrorOccurred\"") && body.contains("DeletionHeld"),
        "{body}"
    );
    assert!(
        body.contains("data-held=\"gen-a\"") && body.contains("data-held=\"gen-b\""),
        "{body}"
    );
    assert!(body.contains("id=\"confirm-button\""), "{body}");
    assert!(
        body.contains(&format!("name=\"_csrf\" value=\"{admin_csrf}\"")),
        "{body}"
    );

    let (viewer_token, viewer_csrf, _) = log_in(s.addr, "viewer", "viewer-password").await;
    let viewer_cookie = format!("ferry_session={viewer_token}");
    let page = http_full(
        s.addr,
        "GET",
        "/applicationsets/held-set",
        &[("Cookie", &viewer_cookie)],
        b"",
    )
    .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("data-held=\"gen-a\""));
    assert!(
        !page.body.contains("id=\"confirm-button\""),
        "a readonly user sees Confirm"
    );
    let form = |csrf: &str| {
        format!(
            "_csrf={}",
            form_urlencoded::byte_serialize(csrf.as_bytes()).collect::<String>()
        )
    };
    let refused = http_full(
        s.addr,
        "POST",
        "/applicationsets/held-set/confirm",
        &[
            ("Cookie", &viewer_cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form(&viewer_csrf).as_bytes(),
    )
    .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    let page = http_full(
        s.addr,
        "GET",
        "/applicationsets/any-project",
        &[(
            "Cookie",
            &format!("ferry_session={}", team_b.trim_start_matches("Bearer ")),
        )],
        b"",
    )
    .await;
    assert_eq!(page.status, 404, "{}", page.body);

    // The admin's form post (after removing the earlier confirmation) and its CSRF check.
    ns.kubectl().run(&[
        "annotate",
        "applicationset",
        "held-set",
        "ferry.dev/confirm-deletion-",
    ]);
    let no_csrf = http_full(
        s.addr,
        "POST",
        "/applicationsets/held-set/confirm",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        b"",
    )
    .await;
    assert_eq!(no_csrf.status, 403, "{}", no_csrf.body);
    assert_eq!(annotation().trim(), "");
    let done = http_full(
        s.addr,
        "POST",
        "/applicationsets/held-set/confirm",
        &[
            ("Cookie", &cookie),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ],
        form(&admin_csrf).as_bytes(),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        done.header("location"),
        Some("/applicationsets/held-set?done=confirm")
    );
    assert_eq!(annotation().trim(), "gen-a,gen-b");
}
