//! Property tests of webhook payload parsing: anyone who can reach the webhook endpoint controls
//! the body (the secret is optional, as in Argo CD), so no payload may panic the server, and a
//! well-formed push always names its repository and ref.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::{Provider, app_follows_push, parse_push};

const PROVIDERS: [Provider; 5] = [
    Provider::GitHub,
    Provider::GitLab,
    Provider::Gitea,
    Provider::Gogs,
    Provider::Bitbucket,
];

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[-:/@a-zA-Z0-9_.~ ]{0,40}",
        Just(String::new()),
    ]
}

/// Arbitrary JSON whose keys are often the ones the parsers look for.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any_text().prop_map(Value::from),
    ];
    let key = prop_oneof![
        any_text(),
        prop::sample::select(vec![
            "repository",
            "project",
            "ref",
            "push",
            "changes",
            "new",
            "name",
            "type",
            "full_name",
            "links",
            "html",
            "href",
            "mainbranch",
            "default_branch",
            "html_url",
            "clone_url",
            "ssh_url",
            "git_url",
            "url",
            "web_url",
            "git_http_url",
            "git_ssh_url",
            "homepage",
        ])
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(5, 96, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map(key.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn app(url: &str) -> ferry_core::application::Application {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {"name": "a"},
        "spec": {"source": {"repoURL": url, "path": "."}, "destination": {"name": "in-cluster"}}
    }))
    .expect("an application")
}

proptest! {
    /// No payload panics any provider's parser, and whatever it reads can be matched against an
    /// app without panicking.
    #[test]
    fn arbitrary_payloads_never_panic(payload in any_json(), url in any_text()) {
        for provider in PROVIDERS {
            if let Some(pushes) = parse_push(provider, &payload) {
                for push in &pushes {
                    let _ = app_follows_push(&app(&url), push);
                }
            }
        }
    }

    /// A GitHub-style push of branch `branch` to `https://HOST/ORG/REPO` refreshes the app that
    /// follows that repository and branch, however the app spells the URL's case and `.git`.
    #[test]
    fn a_push_reaches_the_app_that_follows_it(
        host in "[a-z]{1,10}\\.[a-z]{2,5}",
        org in "[a-zA-Z0-9_-]{1,12}",
        repo in "[a-zA-Z0-9_-]{1,12}",
        branch in "[a-z0-9][a-z0-9/_-]{0,15}",
        dot_git in any::<bool>(),
    ) {
        let url = format!("https://{host}/{org}/{repo}");
        let payload = json!({
            "ref": format!("refs/heads/{branch}"),
            "repository": {"html_url": url, "clone_url": format!("{url}.git"), "default_branch": "main"}
        });
        for provider in [Provider::GitHub, Provider::Gitea, Provider::Gogs] {
            let pushes = parse_push(provider, &payload).expect("a push");
            prop_assert_eq!(pushes.len(), 1);
            // Hosts compare without case; a trailing `.git` does not matter.
            let upper_host = format!("https://{}/{org}/{repo}", host.to_uppercase());
            let followed = if dot_git { format!("{upper_host}.git") } else { upper_host };
            let mut app = app(&followed);
            app.spec.source.as_mut().expect("a source").target_revision = Some(branch.clone());
            prop_assert!(app_follows_push(&app, &pushes[0]));
            app.spec.source.as_mut().expect("a source").target_revision = Some(format!("{branch}-other"));
            prop_assert!(!app_follows_push(&app, &pushes[0]));
        }
    }
}
