use ferry_appset::generators::pull_request;
use ferry_testsupport::scm_server::{Fault, Pull, Repo, ScmData, ScmServer};
use serde_json::json;

use crate::scm_provider::{PROVIDERS, provider, second_page};
use crate::{Env, FAULTS, TOKEN, assert_fails_closed, text};

fn pull(number: u64, repo: &str, branch: &str, target: &str, labels: &[&str]) -> Pull {
    Pull {
        org: "org".into(),
        repo: repo.into(),
        number,
        title: format!("Change {number}"),
        branch: branch.into(),
        target: target.into(),
        sha: format!("{number}abcdef0123456789"),
        labels: labels.iter().map(|l| l.to_string()).collect(),
        author: "alice".into(),
    }
}

async fn pr_env(test: &str) -> (Env, ScmServer) {
    let env = Env::new(test).await;
    env.secret("scm-token", "token", TOKEN, false);
    let server = ScmServer::start(ScmData {
        repos: vec![
            Repo::new("org", "app", 1, "0000000000000000"),
            Repo::new("org", "quiet", 2, "1111111111111111"),
        ],
        pulls: vec![
            pull(11, "app", "feature/Login_Page", "main", &["preview"]),
            pull(12, "app", "fix-typo", "main", &[]),
            pull(13, "app", "feature/api", "release-1", &["preview", "big"]),
            pull(14, "other", "x", "main", &["preview"]),
        ],
        token: Some(TOKEN.into()),
        ..ScmData::default()
    })
    .await;
    (env, server)
}

fn numbers(params: &[ferry_appset::params::Params]) -> Vec<String> {
    let mut v: Vec<String> = params
        .iter()
        .map(|p| text(p, "number").to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn pull_request_lists_open_requests_across_pages_for_every_provider() {
    let (env, server) = pr_env("pr-list").await;
    for kind in PROVIDERS {
        let spec = json!({ kind: provider(kind, &server.url, "org", Some("app")), "values": {"env": "pr"} });
        let params = pull_request::generate(&spec, &env.ctx())
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(numbers(&params), ["11", "12", "13"], "{kind}");
        let p = params.iter().find(|p| text(p, "number") == "11").unwrap();
        assert_eq!(text(p, "branch"), "feature/Login_Page", "{kind}");
        assert_eq!(text(p, "branch_slug"), "feature-login-page", "{kind}");
        assert_eq!(text(p, "target_branch"), "main", "{kind}");
        assert_eq!(text(p, "target_branch_slug"), "main", "{kind}");
        assert_eq!(text(p, "head_sha"), "11abcdef0123456789", "{kind}");
        assert_eq!(text(p, "head_short_sha"), "11abcdef", "{kind}");
        assert_eq!(text(p, "head_short_sha_7"), "11abcde", "{kind}");
        assert_eq!(text(p, "title"), "Change 11", "{kind}");
        assert_eq!(text(p, "author"), "alice", "{kind}");
        assert_eq!(p["values"], json!({"env": "pr"}));
        if kind != "bitbucketServer" {
            assert_eq!(p["labels"], json!(["preview"]), "{kind}");
        }
        // Three requests, pages of two: the second page was asked for.
        assert!(
            server
                .seen()
                .iter()
                .any(|s| s.target.contains(second_page(kind))),
            "{kind}: a second page"
        );
    }
    // A repository without open pull requests is a legitimate empty list.
    for kind in PROVIDERS {
        let spec = json!({ kind: provider(kind, &server.url, "org", Some("quiet")) });
        let params = pull_request::generate(&spec, &env.ctx())
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(params.is_empty(), "{kind}");
    }
}

#[tokio::test]
async fn pull_request_filters_by_labels_and_branches() {
    let (env, server) = pr_env("pr-filters").await;
    for kind in PROVIDERS {
        let spec = json!({
            kind: provider(kind, &server.url, "org", Some("app")),
            "filters": [{"branchMatch": "^feature/", "targetBranchMatch": "^main$"}, {"branchMatch": "typo"}],
        });
        let params = pull_request::generate(&spec, &env.ctx())
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(numbers(&params), ["11", "12"], "{kind}");
        if kind == "bitbucketServer" {
            continue; // Bitbucket Server pull requests have no labels.
        }
        let mut p = provider(kind, &server.url, "org", Some("app"));
        p["labels"] = json!(["preview", "big"]);
        let params = pull_request::generate(&json!({ kind: p }), &env.ctx())
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(
            numbers(&params),
            ["13"],
            "{kind}: every label must be present"
        );
    }
}

#[tokio::test]
async fn pull_request_every_fault_is_an_error_never_an_empty_or_partial_list() {
    let (env, server) = pr_env("pr-faults").await;
    for kind in PROVIDERS {
        let spec = json!({ kind: provider(kind, &server.url, "org", Some("app")) });
        for fault in FAULTS {
            server.set_fault(fault.clone(), None);
            let result = pull_request::generate(&spec, &env.ctx()).await;
            assert_fails_closed(result, "pullRequest", &server.url, &fault);
        }
        for fault in [Fault::Status500, Fault::WrongShape, Fault::Html200] {
            server.set_fault(fault.clone(), Some(second_page(kind)));
            let result = pull_request::generate(&spec, &env.ctx()).await;
            assert_fails_closed(result, "pullRequest", &server.url, &fault);
        }
        server.clear_fault();
    }
    // A repository that does not exist is an error, not an empty list.
    let spec = json!({ "github": provider("github", &server.url, "org", Some("absent")) });
    let e = pull_request::generate(&spec, &env.ctx()).await.unwrap_err();
    assert!(e.to_string().contains("HTTP 404"), "{e}");
}
