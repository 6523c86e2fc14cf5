use ferry_appset::generators::plugin;
use ferry_testsupport::scm_server::{Fault, ScmData, ScmServer};
use serde_json::json;

use crate::{Env, FAULTS, TOKEN, assert_fails_closed, text};

async fn plugin_env(test: &str) -> (Env, ScmServer) {
    let env = Env::new(test).await;
    let server = ScmServer::start(ScmData {
        token: Some(TOKEN.into()),
        plugin_answer: json!({"output": {"parameters": [
            {"cluster": "a", "nested": {"x": 1}},
            {"cluster": "b", "nested": {"x": 2}},
        ]}}),
        ..ScmData::default()
    })
    .await;
    env.secret("plugin-token", "token", TOKEN, true);
    env.config_map(
        "my-plugin",
        &[
            ("token", "$plugin-token:token"),
            ("baseUrl", &format!("{}/", server.url)),
        ],
    );
    (env, server)
}

fn spec() -> serde_json::Value {
    json!({
        "configMapRef": {"name": "my-plugin"},
        "input": {"parameters": {"env": "prod", "list": [1, 2]}},
        "values": {"team": "blue"},
    })
}

#[tokio::test]
async fn plugin_posts_the_input_with_the_bearer_token_and_returns_its_parameters() {
    let (env, server) = plugin_env("plugin-ok").await;
    let params = plugin::generate(&spec(), &env.ctx())
        .await
        .expect("parameters");
    assert_eq!(params.len(), 2);
    assert_eq!(text(&params[0], "cluster"), "a");
    assert_eq!(params[1]["nested"], json!({"x": 2}));
    assert_eq!(
        params[0]["generator"],
        json!({"input": {"parameters": {"env": "prod", "list": [1, 2]}}})
    );
    assert_eq!(params[0]["values"], json!({"team": "blue"}));

    let seen = server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, "/api/v1/getparams.execute");
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let body: serde_json::Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(
        body,
        json!({"applicationSetName": "my-appset", "input": {"parameters": {"env": "prod", "list": [1, 2]}}})
    );
}

#[tokio::test]
async fn plugin_reads_a_dollar_key_token_from_argocd_secret() {
    let (env, server) = plugin_env("plugin-argocd-secret").await;
    env.secret("argocd-secret", "plugin.myplugin.token", TOKEN, false);
    env.config_map(
        "my-plugin",
        &[
            ("token", "$plugin.myplugin.token"),
            ("baseUrl", &server.url),
        ],
    );
    let params = plugin::generate(&spec(), &env.ctx())
        .await
        .expect("parameters");
    assert_eq!(params.len(), 2);
}

#[tokio::test]
async fn plugin_an_empty_well_formed_answer_is_an_empty_list() {
    let (env, server) = plugin_env("plugin-empty").await;
    server.update(|d| d.plugin_answer = json!({"output": {"parameters": []}}));
    let params = plugin::generate(&spec(), &env.ctx())
        .await
        .expect("an empty list");
    assert!(params.is_empty());
}

#[tokio::test]
async fn plugin_every_fault_is_an_error_never_an_empty_list() {
    let (env, server) = plugin_env("plugin-faults").await;
    for fault in FAULTS {
        server.set_fault(fault.clone(), None);
        let result = plugin::generate(&spec(), &env.ctx()).await;
        assert_fails_closed(result, "plugin", &server.url, &fault);
    }
    server.clear_fault();
    for (answer, what) in [
        (json!({"output": {}}), "output"),
        (json!({"output": {"parameters": {"a": 1}}}), "an object"),
        (
            json!({"output": {"parameters": ["x"]}}),
            "output.parameters[0]",
        ),
        (json!([]), "a list"),
    ] {
        server.update(|d| d.plugin_answer = answer.clone());
        let e = plugin::generate(&spec(), &env.ctx())
            .await
            .expect_err("wrong shape");
        assert!(e.to_string().contains(what), "{answer} -> {e}");
        assert!(e.to_string().contains(&server.url), "{e}");
    }
}

#[tokio::test]
async fn plugin_request_timeout_from_the_config_map_limits_the_call() {
    let (env, server) = plugin_env("plugin-timeout").await;
    env.config_map(
        "my-plugin",
        &[
            ("token", "$plugin-token:token"),
            ("baseUrl", &server.url),
            ("requestTimeout", "1"),
        ],
    );
    server.set_fault(Fault::Hang, None);
    let e = plugin::generate(&spec(), &env.ctx())
        .await
        .expect_err("timeout");
    assert!(e.to_string().contains("requestTimeout of 1 s"), "{e}");
}

#[tokio::test]
async fn plugin_configuration_errors_name_the_object_and_never_the_token() {
    let (env, server) = plugin_env("plugin-config").await;
    // A token Secret without Argo CD's label is refused.
    env.secret("unlabelled", "token", TOKEN, false);
    env.config_map(
        "my-plugin",
        &[("token", "$unlabelled:token"), ("baseUrl", &server.url)],
    );
    let e = plugin::generate(&spec(), &env.ctx()).await.unwrap_err();
    assert!(
        e.to_string().contains("app.kubernetes.io/part-of=argocd"),
        "{e}"
    );
    assert!(!e.to_string().contains(TOKEN));

    // A wrong token: the server answers 401, and the error does not repeat the token.
    env.secret("wrong", "token", "not-the-token", true);
    env.config_map(
        "my-plugin",
        &[("token", "$wrong:token"), ("baseUrl", &server.url)],
    );
    let e = plugin::generate(&spec(), &env.ctx()).await.unwrap_err();
    assert!(e.to_string().contains("HTTP 401"), "{e}");
    assert!(!e.to_string().contains("not-the-token"), "{e}");

    // A missing key, a missing ConfigMap, a ConfigMap without baseUrl.
    env.config_map(
        "my-plugin",
        &[("token", "$plugin-token:nokey"), ("baseUrl", &server.url)],
    );
    let e = plugin::generate(&spec(), &env.ctx()).await.unwrap_err();
    assert!(
        e.to_string().contains("plugin-token has no key \"nokey\""),
        "{e}"
    );
    let e = plugin::generate(&json!({"configMapRef": {"name": "absent"}}), &env.ctx())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("absent does not exist"), "{e}");
    env.config_map("no-url", &[("token", "$plugin-token:token")]);
    let e = plugin::generate(&json!({"configMapRef": {"name": "no-url"}}), &env.ctx())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("has no baseUrl"), "{e}");
}
