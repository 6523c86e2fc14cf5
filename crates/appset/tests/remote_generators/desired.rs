//! The remote generators through `desired_applications`, as the controller and
//! `ferry appset preview` run them: `values` rendered, legacy parameters flattened, errors named
//! by the block's place, and a failing server leaving no Applications.

use ferry_appset::desired::desired_applications;
use ferry_appset::generators::git::{Checkout, RepoCheckouts};
use ferry_appset::types::{ApplicationSet, condition_reason};
use ferry_testsupport::scm_server::{Fault, Pull, Repo, ScmData, ScmServer};
use futures::future::BoxFuture;
use serde_json::{Value, json};

use crate::scm_provider::provider;
use crate::{Env, TOKEN};

struct NoRepos;

impl RepoCheckouts for NoRepos {
    fn checkout<'a>(
        &'a self,
        repo_url: &'a str,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Checkout, String>> {
        Box::pin(async move { Err(format!("no repository {repo_url} in this test")) })
    }
}

fn appset(go_template: bool, generator: Value, name: &str) -> ApplicationSet {
    serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": "remote", "namespace": "argocd"},
        "spec": {
            "goTemplate": go_template,
            "generators": [generator],
            "template": {
                "metadata": {"name": name, "labels": {"team": if go_template { "{{ .values.team }}" } else { "{{values.team}}" }}},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": "https://git.example/apps.git", "path": "apps", "targetRevision": "HEAD"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": "default"},
                },
            },
        },
    }))
    .expect("an ApplicationSet")
}

fn names(apps: &[Value]) -> Vec<String> {
    let mut v: Vec<String> = apps
        .iter()
        .map(|a| a["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn remote_generators_render_through_the_template_with_values() {
    let env = Env::new("remote-desired").await;
    env.secret("plugin-token", "token", TOKEN, true);
    env.secret("scm-token", "token", TOKEN, false);
    let server = ScmServer::start(ScmData {
        repos: vec![Repo::new("org", "app-a", 1, "aaaaaaaaaaaaaaaa"), Repo::new("org", "app-b", 2, "bbbbbbbbbbbbbbbb")],
        pulls: vec![Pull {
            org: "org".into(),
            repo: "app-a".into(),
            number: 7,
            title: "Try".into(),
            branch: "feature/Try_It".into(),
            target: "main".into(),
            sha: "cccccccccccccccc".into(),
            labels: vec!["preview".into()],
            author: "bob".into(),
        }],
        plugin_answer: json!({"output": {"parameters": [{"cluster": "east", "meta": {"zone": "1"}}]}}),
        token: Some(TOKEN.into()),
        ..ScmData::default()
    })
    .await;
    env.config_map(
        "my-plugin",
        &[("token", "$plugin-token:token"), ("baseUrl", &server.url)],
    );

    // Legacy templates: nested plugin output flattened, values rendered with each set.
    let set = appset(
        false,
        json!({"plugin": {"configMapRef": {"name": "my-plugin"}, "values": {"team": "t-{{meta.zone}}"}}}),
        "{{cluster}}-{{generator.input.parameters.x}}",
    );
    let mut set = set;
    set.spec.generators[0]["plugin"]["input"] = json!({"parameters": {"x": "y"}});
    let desired = desired_applications(&set, env.ctx(), &NoRepos)
        .await
        .expect("applications");
    assert_eq!(names(&desired.applications), ["east-y"]);
    assert_eq!(desired.applications[0]["metadata"]["labels"]["team"], "t-1");

    // Go templates: SCM parameters by their Argo CD names.
    let set = appset(
        true,
        json!({"scmProvider": {"gitea": provider("gitea", &server.url, "org", None), "values": {"team": "{{ .organization }}"}}}),
        "{{ .repository }}-{{ .short_sha_7 }}",
    );
    let desired = desired_applications(&set, env.ctx(), &NoRepos)
        .await
        .expect("applications");
    assert_eq!(
        names(&desired.applications),
        ["app-a-aaaaaaa", "app-b-bbbbbbb"]
    );
    assert_eq!(desired.applications[0]["metadata"]["labels"]["team"], "org");

    // Pull requests in a matrix with the plugin (Go templates): the slug makes a valid name,
    // and the labels are a list.
    let set = appset(
        true,
        json!({"matrix": {"generators": [
            {"pullRequest": {"github": provider("github", &server.url, "org", Some("app-a"))}},
            {"plugin": {"configMapRef": {"name": "my-plugin"}}},
        ]}}),
        "pr-{{ .number }}-{{ .branch_slug }}-{{ .cluster }}",
    );
    let mut set = set;
    set.spec.template["metadata"]["labels"] =
        json!({"author": "{{ .author }}", "first-label": "{{ index .labels 0 }}"});
    let desired = desired_applications(&set, env.ctx(), &NoRepos)
        .await
        .expect("applications");
    assert_eq!(names(&desired.applications), ["pr-7-feature-try-it-east"]);
    assert_eq!(
        desired.applications[0]["metadata"]["labels"]["author"],
        "bob"
    );
    assert_eq!(
        desired.applications[0]["metadata"]["labels"]["first-label"],
        "preview"
    );

    // The server fails: no Applications, and the condition names the block and the server.
    server.set_fault(Fault::Html200, None);
    let failure = desired_applications(&set, env.ctx(), &NoRepos)
        .await
        .expect_err("a failure");
    assert_eq!(failure.reason, condition_reason::GENERATION_ERROR);
    assert!(
        failure.message.contains("generators[0].matrix"),
        "{}",
        failure.message
    );
    assert!(
        failure.message.contains("pullRequest"),
        "{}",
        failure.message
    );
    assert!(failure.message.contains(&server.url), "{}", failure.message);
    assert!(
        failure
            .message
            .contains("nothing was created, updated or deleted"),
        "{}",
        failure.message
    );
    assert!(!failure.message.contains(TOKEN));
}
