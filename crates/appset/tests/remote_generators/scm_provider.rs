use ferry_appset::generators::scm_provider;
use ferry_testsupport::scm_server::{Fault, Repo, ScmData, ScmServer};
use serde_json::{Value, json};

use crate::{Env, FAULTS, TOKEN, assert_fails_closed, text};

pub(crate) const PROVIDERS: [&str; 4] = ["github", "gitlab", "gitea", "bitbucketServer"];

/// The generator's provider object for `kind`, reading the token from Secret `scm-token`.
pub(crate) fn provider(kind: &str, url: &str, org: &str, repo: Option<&str>) -> Value {
    let token_ref = json!({"secretName": "scm-token", "key": "token"});
    let mut p = match kind {
        "github" => json!({"organization": org, "owner": org, "api": url, "tokenRef": token_ref}),
        "gitlab" => json!({"group": org, "api": url, "tokenRef": token_ref}),
        "gitea" => json!({"owner": org, "api": url, "tokenRef": token_ref}),
        "bitbucketServer" => json!({
            "project": org, "api": url,
            "basicAuth": {"username": "ferry", "passwordRef": token_ref},
        }),
        _ => unreachable!(),
    };
    if let Some(repo) = repo {
        if kind == "gitlab" {
            p["project"] = json!(format!("{org}/{repo}"));
        } else {
            p["repo"] = json!(repo);
        }
    }
    p
}

/// The page query that only a second page carries.
pub(crate) fn second_page(kind: &str) -> &'static str {
    if kind == "bitbucketServer" {
        "start=2"
    } else {
        "page=2"
    }
}

fn repos() -> Vec<Repo> {
    let mut out: Vec<Repo> = (1..=5)
        .map(|i| {
            Repo::new(
                "org",
                &format!("app-{i}"),
                i,
                &format!("{i}0123456789abcdef"),
            )
        })
        .collect();
    out[2].labels = vec!["deploy".into(), "team-a".into()];
    out[2].files = vec!["kustomize/base/kustomization.yaml".into()];
    out[3]
        .branches
        .push(("feature/X_1".into(), "feedfacecafebeef".into()));
    out[3].files = vec!["helm/Chart.yaml".into()];
    out[4].default_branch = None;
    out[4].branches.clear();
    out.push(Repo::new("other", "elsewhere", 9, "9999999999999999"));
    out
}

async fn scm_env(test: &str) -> (Env, ScmServer) {
    let env = Env::new(test).await;
    env.secret("scm-token", "token", TOKEN, false);
    let server = ScmServer::start(ScmData {
        repos: repos(),
        token: Some(TOKEN.into()),
        ..ScmData::default()
    })
    .await;
    (env, server)
}

fn names(params: &[ferry_appset::params::Params]) -> Vec<String> {
    let mut v: Vec<String> = params
        .iter()
        .map(|p| format!("{}@{}", text(p, "repository"), text(p, "branch")))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn scm_provider_lists_every_repository_across_pages_for_every_provider() {
    let (env, server) = scm_env("scm-list").await;
    for kind in PROVIDERS {
        let spec = json!({ kind: provider(kind, &server.url, "org", None), "values": {"x": "y"} });
        let params = scm_provider::generate(&spec, &env.ctx())
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        // app-5 is empty (no default branch): no parameters, as in Argo CD.
        assert_eq!(
            names(&params),
            ["app-1@main", "app-2@main", "app-3@main", "app-4@main"],
            "{kind}"
        );
        let p = params
            .iter()
            .find(|p| text(p, "repository") == "app-3")
            .unwrap();
        assert_eq!(text(p, "organization"), "org", "{kind}");
        assert_eq!(text(p, "sha"), "30123456789abcdef", "{kind}");
        assert_eq!(text(p, "short_sha"), "30123456", "{kind}");
        assert_eq!(text(p, "short_sha_7"), "3012345", "{kind}");
        assert_eq!(text(p, "labels"), "deploy,team-a", "{kind}");
        assert_eq!(text(p, "branchNormalized"), "main", "{kind}");
        assert_eq!(text(p, "repository_id"), "3", "{kind}");
        assert!(
            text(p, "url").contains("app-3") && text(p, "url").contains("git@"),
            "{kind}: ssh by default: {p:?}"
        );
        assert_eq!(p["values"], json!({"x": "y"}));
    }
    let seen = server.seen();
    // Three pages of two for the five repositories, on each provider.
    for (kind, third_page) in [
        ("github", "/api/v3/orgs/org/repos?per_page=100&page=3"),
        (
            "gitlab",
            "/api/v4/groups/org/projects?include_subgroups=false&with_shared=true&per_page=100&page=3",
        ),
        ("gitea", "/api/v1/orgs/org/repos?page=3&limit=50"),
        (
            "bitbucketServer",
            "/rest/api/1.0/projects/org/repos?start=4&limit=100",
        ),
    ] {
        assert!(
            seen.iter().any(|s| s.target == third_page),
            "{kind}: {third_page} was asked for"
        );
    }
    let auth = |prefix: &str| {
        seen.iter()
            .find(|s| s.target.starts_with(prefix))
            .unwrap()
            .clone()
    };
    assert_eq!(
        auth("/api/v3/").header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(auth("/api/v4/").header("private-token"), Some(TOKEN));
    assert_eq!(
        auth("/api/v1/").header("authorization"),
        Some(format!("token {TOKEN}").as_str())
    );
    assert!(
        auth("/rest/")
            .header("authorization")
            .unwrap()
            .starts_with("Basic ")
    );
}

#[tokio::test]
async fn scm_provider_filters_branches_and_clone_protocol_for_every_provider() {
    let (env, server) = scm_env("scm-filters").await;
    for kind in PROVIDERS {
        let run = |filters: Value, extra: Value| {
            let mut p = provider(kind, &server.url, "org", None);
            for (k, v) in extra.as_object().unwrap() {
                p[k] = v.clone();
            }
            let spec = json!({ kind: p, "filters": filters, "cloneProtocol": "https" });
            let ctx = env.ctx();
            async move {
                scm_provider::generate(&spec, &ctx)
                    .await
                    .unwrap_or_else(|e| panic!("{kind}: {e}"))
            }
        };
        let by_label = run(json!([{"labelMatch": "^deploy$"}]), json!({})).await;
        assert_eq!(names(&by_label), ["app-3@main"], "{kind}: labelMatch");

        let by_path = run(json!([{"pathsExist": ["kustomize/base/"]}]), json!({})).await;
        assert_eq!(names(&by_path), ["app-3@main"], "{kind}: pathsExist");

        let without = run(
            json!([{"repositoryMatch": "^app-[1-4]", "pathsDoNotExist": ["kustomize"]}]),
            json!({}),
        )
        .await;
        assert_eq!(
            names(&without),
            ["app-1@main", "app-2@main", "app-4@main"],
            "{kind}: pathsDoNotExist"
        );

        let any_of = run(
            json!([{"repositoryMatch": "1$"}, {"labelMatch": "team"}]),
            json!({}),
        )
        .await;
        assert_eq!(
            names(&any_of),
            ["app-1@main", "app-3@main"],
            "{kind}: any filter"
        );

        let branches = run(
            json!([{"branchMatch": "^feature/"}]),
            json!({"allBranches": true}),
        )
        .await;
        assert_eq!(
            names(&branches),
            ["app-4@feature/X_1"],
            "{kind}: allBranches + branchMatch"
        );
        let p = &branches[0];
        assert_eq!(text(p, "branchNormalized"), "feature-x-1");
        assert_eq!(text(p, "sha"), "feedfacecafebeef");
        assert!(
            text(p, "url").starts_with("https://"),
            "{kind}: cloneProtocol https: {p:?}"
        );

        let all = run(json!([]), json!({"allBranches": true})).await;
        assert_eq!(
            all.len(),
            5,
            "{kind}: every branch of every repository: {:?}",
            names(&all)
        );
    }
}

#[tokio::test]
async fn scm_provider_every_fault_is_an_error_never_an_empty_or_partial_list() {
    let (env, server) = scm_env("scm-faults").await;
    for kind in PROVIDERS {
        let spec = json!({ kind: provider(kind, &server.url, "org", None) });
        for fault in FAULTS {
            server.set_fault(fault.clone(), None);
            let result = scm_provider::generate(&spec, &env.ctx()).await;
            assert_fails_closed(result, "scmProvider", &server.url, &fault);
        }
        // A failure on the second page only: the first page is not returned on its own.
        for fault in [Fault::Status500, Fault::WrongShape, Fault::Html200] {
            server.set_fault(fault.clone(), Some(second_page(kind)));
            let result = scm_provider::generate(&spec, &env.ctx()).await;
            assert_fails_closed(result, "scmProvider", &server.url, &fault);
        }
        server.clear_fault();
    }
    // An organization without repositories is a legitimate empty list.
    for kind in PROVIDERS {
        let spec = json!({ kind: provider(kind, &server.url, "nobody", None) });
        let params = scm_provider::generate(&spec, &env.ctx())
            .await
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(params.is_empty(), "{kind}");
    }
}

#[tokio::test]
async fn scm_provider_honours_argo_cd_allow_list_and_refuses_what_it_cannot_do() {
    let (env, server) = scm_env("scm-allowed").await;
    let spec = json!({ "gitea": provider("gitea", &server.url, "org", None) });
    env.config_map(
        "argocd-cmd-params-cm",
        &[(
            "applicationsetcontroller.allowed.scm.providers",
            "https://gitea.example.com/, https://other.example",
        )],
    );
    let before = server.seen().len();
    let e = scm_provider::generate(&spec, &env.ctx()).await.unwrap_err();
    assert!(e.to_string().contains("is not allowed"), "{e}");
    assert!(e.to_string().contains(&server.url), "{e}");
    assert_eq!(
        server.seen().len(),
        before,
        "nothing is asked of a server that is not allowed"
    );

    env.config_map(
        "argocd-cmd-params-cm",
        &[(
            "applicationsetcontroller.allowed.scm.providers",
            &format!("https://gitea.example.com,{}/", server.url),
        )],
    );
    let params = scm_provider::generate(&spec, &env.ctx())
        .await
        .expect("allowed");
    assert_eq!(params.len(), 4);

    env.config_map(
        "argocd-cmd-params-cm",
        &[("applicationsetcontroller.enable.scm.providers", "false")],
    );
    let e = scm_provider::generate(&spec, &env.ctx()).await.unwrap_err();
    assert!(e.to_string().contains("turned off"), "{e}");

    env.ns
        .kubectl()
        .run(&["delete", "configmap", "argocd-cmd-params-cm"]);
    for (spec, what) in [
        (
            json!({"azureDevOps": {"organization": "o"}}),
            "not supported by ferry",
        ),
        (json!({}), "no provider given"),
        (
            json!({"gitea": provider("gitea", &server.url, "org", None), "github": {}}),
            "more than one",
        ),
        (
            json!({"gitlab": {"group": "org", "api": server.url, "insecure": true}}),
            "insecure is not supported",
        ),
        (
            json!({"gitea": provider("gitea", &server.url, "org", None), "cloneProtocol": "ftp"}),
            "cloneProtocol",
        ),
        (
            json!({"gitea": {"owner": "org", "api": server.url, "tokenRef": {"secretName": "absent", "key": "token"}}}),
            "absent does not exist",
        ),
        (
            json!({"gitea": provider("gitea", &server.url, "org", None), "filters": [{"repositoryMatch": "(("}]}),
            "filters[0].repositoryMatch",
        ),
    ] {
        let e = scm_provider::generate(&spec, &env.ctx())
            .await
            .expect_err(what);
        assert_eq!(e.generator, "scmProvider");
        assert!(e.to_string().contains(what), "{spec}: {e}");
    }
}
