//! Runs an ApplicationSet's `spec.generators`: each block goes to its generator, nested
//! `matrix` and `merge` blocks combine their children (two levels, as Argo CD allows), `values`
//! are rendered with each parameter set, and a block's `selector` keeps the sets it selects.
//! The results of the blocks are concatenated, each set with its block's `template` override.
//!
//! Any error of any block fails the whole run: the caller then changes nothing.

use std::time::Duration;

use futures::future::BoxFuture;
use serde_json::Value;

use super::RemoteContext;
use super::git::RepoCheckouts;
use crate::params::{GeneratorError, Params};
use crate::selector;
use crate::types::LabelSelector;

/// Renders one templated string with a parameter set (the ApplicationSet's template language).
pub type RenderString<'a> = dyn Fn(&str, &Params) -> Result<String, String> + Send + Sync + 'a;

/// What the generators need.
pub struct GenerateContext<'a> {
    /// The cluster (cluster Secrets, ConfigMaps) and the HTTP client.
    pub remote: RemoteContext<'a>,
    /// Repository checkouts for the `git` generator.
    pub repos: &'a dyn RepoCheckouts,
    /// `goTemplate`: nested parameters for Go templates, flattened text for `{{param}}`.
    pub go_template: bool,
    /// How `values` and a matrix's second child are rendered with a parameter set.
    pub render: &'a RenderString<'a>,
}

/// One generated parameter set, with the `template` of the generator block that made it
/// (merged over the spec's template by the caller).
#[derive(Debug, Clone, PartialEq)]
pub struct Generated {
    /// The parameters.
    pub params: Params,
    /// The block's `template`, if it has one.
    pub template: Option<Value>,
}

/// What a run of all generators gave.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Generation {
    /// Every parameter set, in the order of the blocks.
    pub sets: Vec<Generated>,
    /// The shortest `requeueAfterSeconds` of the blocks, if any set one.
    pub requeue_after: Option<Duration>,
}

/// The generator kinds Argo CD defines.
pub const GENERATOR_KINDS: [&str; 9] = [
    "list",
    "clusters",
    "git",
    "matrix",
    "merge",
    "scmProvider",
    "pullRequest",
    "clusterDecisionResource",
    "plugin",
];

/// Runs every block of `generators`.
pub async fn generate_all(
    generators: &[Value],
    ctx: &GenerateContext<'_>,
) -> Result<Generation, GeneratorError> {
    let mut out = Generation::default();
    for (i, block) in generators.iter().enumerate() {
        let at = format!("generators[{i}]");
        let sets = generate_block(block, ctx, at.clone(), 0).await?;
        let template = block.get("template").filter(|t| !t.is_null()).cloned();
        if let Some(secs) = requeue_of(block) {
            let d = Duration::from_secs(secs);
            out.requeue_after = Some(out.requeue_after.map_or(d, |r| r.min(d)));
        }
        out.sets.extend(sets.into_iter().map(|params| Generated {
            params,
            template: template.clone(),
        }));
    }
    Ok(out)
}

/// The `requeueAfterSeconds` of a block (or of any block nested in it).
fn requeue_of(block: &Value) -> Option<u64> {
    let Value::Object(map) = block else {
        return None;
    };
    let mut best: Option<u64> = None;
    for (k, v) in map {
        let own = v.get("requeueAfterSeconds").and_then(Value::as_u64);
        let nested = if k == "matrix" || k == "merge" {
            v.get("generators")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(requeue_of)
                .min()
        } else {
            None
        };
        for s in [own, nested].into_iter().flatten() {
            best = Some(best.map_or(s, |b: u64| b.min(s)));
        }
    }
    best
}

/// The kind of a block: its one key among [`GENERATOR_KINDS`].
fn kind_of_block<'v>(block: &'v Value, at: &str) -> Result<(&'v str, &'v Value), GeneratorError> {
    let Value::Object(map) = block else {
        return Err(GeneratorError::new(
            at,
            "a generator must be an object such as {list: {...}}",
        ));
    };
    let kinds: Vec<(&str, &Value)> = map
        .iter()
        .filter(|(k, _)| GENERATOR_KINDS.contains(&k.as_str()))
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    match kinds.as_slice() {
        [one] => Ok(*one),
        [] => {
            let keys: Vec<&str> = map
                .keys()
                .map(String::as_str)
                .filter(|k| !matches!(*k, "selector" | "template" | "values"))
                .collect();
            Err(GeneratorError::new(
                at,
                format!(
                    "unknown generator {}: use one of {}",
                    if keys.is_empty() {
                        "(none given)".to_string()
                    } else {
                        keys.join(", ")
                    },
                    GENERATOR_KINDS.join(", ")
                ),
            ))
        }
        many => Err(GeneratorError::new(
            at,
            format!(
                "one generator per entry, this one has {}: split them into separate entries",
                many.iter()
                    .map(|(k, _)| *k)
                    .collect::<Vec<_>>()
                    .join(" and ")
            ),
        )),
    }
}

/// One block: its generator, its `values`, its `selector`. `depth` is how deep in matrix/merge
/// nesting the block is (0 at the top).
fn generate_block<'a>(
    block: &'a Value,
    ctx: &'a GenerateContext<'a>,
    at: String,
    depth: u8,
) -> BoxFuture<'a, Result<Vec<Params>, GeneratorError>> {
    Box::pin(async move {
        let (kind, spec) = kind_of_block(block, &at)?;
        let here = format!("{at}.{kind}");
        let sets = match kind {
            "list" => super::list::generate(spec, ctx.go_template, &at)?,
            "clusters" => {
                let clusters = list_clusters(ctx)
                    .await
                    .map_err(|m| GeneratorError::new(&here, m))?;
                super::clusters::params_for_clusters(spec, &clusters, ctx.go_template, &at)?
            }
            "git" => super::git::generate(spec, ctx.repos, ctx.go_template, &at).await?,
            "matrix" | "merge" => {
                if depth >= 2 {
                    return Err(GeneratorError::new(
                        &here,
                        "matrix and merge nest two levels deep at most (as in Argo CD): a nested matrix or merge may only hold plain generators",
                    ));
                }
                if kind == "matrix" {
                    matrix(spec, ctx, &here, depth).await?
                } else {
                    merge(spec, ctx, &here, depth).await?
                }
            }
            other => remote_generator(other, spec, ctx, &here).await?,
        };
        let sets = add_values(sets, spec, ctx, &here)?;
        match block.get("selector").filter(|s| !s.is_null()) {
            None => Ok(sets),
            Some(sel) => {
                let sel: LabelSelector = serde_json::from_value(sel.clone()).map_err(|e| {
                    GeneratorError::new(&at, format!("selector is not a label selector: {e}"))
                })?;
                selector::filter_params(&sel, sets)
                    .map_err(|m| GeneratorError::new(&at, format!("selector: {m}")))
            }
        }
    })
}

/// The generators that call other services (`scmProvider`, `pullRequest`,
/// `clusterDecisionResource`, `plugin`). Their `values` are rendered here like every other
/// generator's, and legacy templates get their parameters flattened.
async fn remote_generator(
    kind: &str,
    spec: &Value,
    ctx: &GenerateContext<'_>,
    here: &str,
) -> Result<Vec<Params>, GeneratorError> {
    let result = match kind {
        "scmProvider" => super::scm_provider::generate(spec, &ctx.remote).await,
        "pullRequest" => super::pull_request::generate(spec, &ctx.remote).await,
        "clusterDecisionResource" => {
            super::cluster_decision_resource::generate(spec, &ctx.remote).await
        }
        "plugin" => super::plugin::generate(spec, &ctx.remote).await,
        other => Err(GeneratorError::new(
            here,
            format!("the {other} generator is not supported; nothing was changed"),
        )),
    };
    let sets = result.map_err(|e| GeneratorError::new(here, e.message))?;
    Ok(sets
        .into_iter()
        .map(|mut set| {
            // Rendered by `add_values` with the set's parameters.
            set.remove("values");
            if ctx.go_template {
                set
            } else {
                super::list::flatten_legacy(&set)
            }
        })
        .collect())
}

/// The registered clusters (cluster Secrets in ferry's namespace).
async fn list_clusters(
    ctx: &GenerateContext<'_>,
) -> Result<Vec<super::clusters::ClusterEntry>, String> {
    let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
        kube::Api::namespaced(ctx.remote.kube.clone(), ctx.remote.namespace);
    let list = secrets
        .list(
            &kube::api::ListParams::default()
                .labels(&format!("{}=cluster", super::clusters::SECRET_TYPE_LABEL)),
        )
        .await
        .map_err(|e| {
            format!(
                "listing cluster Secrets in namespace {}: {e}",
                ctx.remote.namespace
            )
        })?;
    super::clusters::clusters_of_secrets(&list.items)
}

/// `values` of a block, rendered with each set's parameters: `values.K` (legacy) or `values`
/// as a map (Go templates).
fn add_values(
    sets: Vec<Params>,
    spec: &Value,
    ctx: &GenerateContext<'_>,
    here: &str,
) -> Result<Vec<Params>, GeneratorError> {
    let Some(values) = spec.get("values").filter(|v| !v.is_null()) else {
        return Ok(sets);
    };
    let Value::Object(values) = values else {
        return Err(GeneratorError::new(
            here,
            "values must be a map of names to strings",
        ));
    };
    sets.into_iter()
        .map(|mut set| {
            let mut rendered = serde_json::Map::new();
            for (k, v) in values {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => selector::scalar_text(other),
                };
                let out = (ctx.render)(&text, &set)
                    .map_err(|m| GeneratorError::new(here, format!("values.{k}: {m}")))?;
                rendered.insert(k.clone(), Value::String(out));
            }
            if ctx.go_template {
                set.insert("values".into(), Value::Object(rendered));
            } else {
                for (k, v) in rendered {
                    set.insert(format!("values.{k}"), v);
                }
            }
            Ok(set)
        })
        .collect()
}

/// The children of a matrix or merge block.
fn children<'v>(spec: &'v Value, here: &str) -> Result<&'v [Value], GeneratorError> {
    spec.get("generators")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .ok_or_else(|| {
            GeneratorError::new(
                here,
                "generators is missing: list the generators to combine",
            )
        })
}

/// `matrix`: every combination of the sets of its two children. The second child is rendered
/// with each set of the first, so it can use the first's parameters.
async fn matrix(
    spec: &Value,
    ctx: &GenerateContext<'_>,
    here: &str,
    depth: u8,
) -> Result<Vec<Params>, GeneratorError> {
    let kids = children(spec, here)?;
    if kids.len() != 2 {
        return Err(GeneratorError::new(
            here,
            format!(
                "a matrix combines exactly two generators, this one has {}",
                kids.len()
            ),
        ));
    }
    let first = generate_block(&kids[0], ctx, format!("{here}.generators[0]"), depth + 1).await?;
    let second_at = format!("{here}.generators[1]");
    let templated = kids[1].to_string().contains("{{");
    let fixed = if templated {
        None
    } else {
        Some(generate_block(&kids[1], ctx, second_at.clone(), depth + 1).await?)
    };
    let mut out = Vec::new();
    for a in &first {
        let seconds = match &fixed {
            Some(s) => s.clone(),
            None => {
                let child = interpolate(&kids[1], a, ctx)
                    .map_err(|m| GeneratorError::new(&second_at, m))?;
                generate_block(&child, ctx, second_at.clone(), depth + 1).await?
            }
        };
        for b in &seconds {
            out.push(combine(a, b, ctx.go_template).map_err(|m| GeneratorError::new(here, m))?);
        }
    }
    Ok(out)
}

/// Every string of `value` that holds a template, rendered with `params`.
fn interpolate(value: &Value, params: &Params, ctx: &GenerateContext<'_>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) if s.contains("{{") => Value::String((ctx.render)(s, params)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| interpolate(v, params, ctx))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), interpolate(v, params, ctx)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// One set of a matrix: the union of `a` and `b`. A name in both with different values is an
/// error in legacy templates; Go templates merge maps deeply and `a` wins (as Argo CD does).
pub fn combine(a: &Params, b: &Params, go_template: bool) -> Result<Params, String> {
    let mut out = b.clone();
    for (k, v) in a {
        match out.get_mut(k) {
            None => {
                out.insert(k.clone(), v.clone());
            }
            Some(existing) if existing == v => {}
            Some(existing) if go_template => deep_merge(existing, v),
            Some(existing) => {
                return Err(format!(
                    "both generators give parameter {k:?}, with different values ({} and {}): rename one",
                    selector::scalar_text(v),
                    selector::scalar_text(existing)
                ));
            }
        }
    }
    Ok(out)
}

/// Merges `over` into `base`: maps key by key, anything else replaced.
fn deep_merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(existing) => deep_merge(existing, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// `merge`: the sets of the first child, each overridden by the sets of later children that
/// have the same values of `mergeKeys`. Sets of later children that match no base set are
/// dropped (as in Argo CD).
async fn merge(
    spec: &Value,
    ctx: &GenerateContext<'_>,
    here: &str,
    depth: u8,
) -> Result<Vec<Params>, GeneratorError> {
    let kids = children(spec, here)?;
    if kids.len() < 2 {
        return Err(GeneratorError::new(
            here,
            "a merge needs at least two generators",
        ));
    }
    let keys: Vec<String> = spec
        .get("mergeKeys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(String::from)
                .collect()
        })
        .unwrap_or_default();
    if keys.is_empty() {
        return Err(GeneratorError::new(
            here,
            "mergeKeys is missing: name the parameters that pair up sets",
        ));
    }
    let mut base =
        generate_block(&kids[0], ctx, format!("{here}.generators[0]"), depth + 1).await?;
    for (i, kid) in kids.iter().enumerate().skip(1) {
        let at = format!("{here}.generators[{i}]");
        let sets = generate_block(kid, ctx, at.clone(), depth + 1).await?;
        let mut by_key: std::collections::BTreeMap<Vec<String>, Params> = Default::default();
        for set in sets {
            let key = merge_key(&set, &keys);
            if by_key.insert(key.clone(), set).is_some() {
                return Err(GeneratorError::new(
                    &at,
                    format!(
                        "two parameter sets have the same merge keys {keys:?} = {key:?}: merge keys must be unique"
                    ),
                ));
            }
        }
        for b in &mut base {
            if let Some(over) = by_key.get(&merge_key(b, &keys)) {
                for (k, v) in over {
                    match b.get_mut(k) {
                        Some(existing) if ctx.go_template => deep_merge(existing, v),
                        _ => {
                            b.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
    }
    Ok(base)
}

fn merge_key(set: &Params, keys: &[String]) -> Vec<String> {
    let flat = selector::flatten(set);
    keys.iter()
        .map(|k| flat.get(k).cloned().unwrap_or_default())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(v: Value) -> Params {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn matrix_sets_combine_and_conflicts_are_errors() {
        let a = p(json!({"cluster": "dev", "url": "u"}));
        let b = p(json!({"path": "apps/web"}));
        let c = combine(&a, &b, false).unwrap();
        assert_eq!(c["cluster"], "dev");
        assert_eq!(c["path"], "apps/web");
        let e = combine(&a, &p(json!({"cluster": "prod"})), false).unwrap_err();
        assert!(e.contains("\"cluster\""), "{e}");
        let go = combine(
            &p(json!({"values": {"a": "1"}})),
            &p(json!({"values": {"b": "2"}})),
            true,
        )
        .unwrap();
        assert_eq!(go["values"], json!({"a": "1", "b": "2"}));
    }

    #[test]
    fn blocks_name_their_kind_or_fail() {
        let e = kind_of_block(&json!({"lsit": {}}), "generators[0]").unwrap_err();
        assert!(e.message.contains("unknown generator lsit"), "{e}");
        let e = kind_of_block(&json!({"list": {}, "git": {}}), "generators[0]").unwrap_err();
        assert!(e.message.contains("one generator per entry"), "{e}");
        let block = json!({"list": {}, "selector": {}});
        let (k, _) = kind_of_block(&block, "g").unwrap();
        assert_eq!(k, "list");
    }

    #[test]
    fn requeue_is_the_shortest_asked_for() {
        let b = json!({"matrix": {"generators": [
            {"git": {"requeueAfterSeconds": 30}},
            {"list": {}}
        ]}});
        assert_eq!(requeue_of(&b), Some(30));
        assert_eq!(requeue_of(&json!({"list": {}})), None);
    }

    /// A repository "checkout" that is a plain directory.
    struct Dir(std::path::PathBuf);

    impl RepoCheckouts for Dir {
        fn checkout<'a>(
            &'a self,
            _repo_url: &'a str,
            _revision: &'a str,
        ) -> BoxFuture<'a, Result<super::super::git::Checkout, String>> {
            Box::pin(async move {
                Ok(super::super::git::Checkout {
                    sha: "0".repeat(40),
                    root: self.0.clone(),
                })
            })
        }
    }

    /// Runs `generators` (no cluster is asked: list, git, matrix and merge only).
    async fn run(generators: Value, go: bool) -> Result<Generation, GeneratorError> {
        let dir = tempfile::tempdir().unwrap();
        for d in ["apps/web", "apps/api"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        let http = ferry_http::Client::new(ferry_http::Options::default()).unwrap();
        let opts = crate::template::TemplateOptions {
            go_template: go,
            go_template_options: vec![],
        };
        let render = |t: &str, p: &Params| {
            crate::template::render_string(t, p, &opts).map_err(|e| e.to_string())
        };
        let repos = Dir(dir.path().to_path_buf());
        let ctx = GenerateContext {
            remote: RemoteContext {
                kube: &client,
                namespace: "ferry",
                appset: "test",
                http: &http,
            },
            repos: &repos,
            go_template: go,
            render: &render,
        };
        let generators: Vec<Value> = serde_json::from_value(generators).unwrap();
        generate_all(&generators, &ctx).await
    }

    fn names(g: &Generation, key: &str) -> Vec<String> {
        g.sets
            .iter()
            .map(|s| selector::flatten(&s.params)[key].clone())
            .collect()
    }

    #[tokio::test]
    async fn a_matrix_child_uses_the_first_childs_parameters() {
        let g = run(
            json!([{"matrix": {"generators": [
                {"git": {"repoURL": "r", "directories": [{"path": "apps/*"}]}},
                {"list": {"elements": [{"app": "{{path.basename}}-svc"}]}}
            ]}}]),
            false,
        )
        .await
        .unwrap();
        assert_eq!(names(&g, "app"), ["api-svc", "web-svc"]);
        assert_eq!(names(&g, "path"), ["apps/api", "apps/web"]);
    }

    #[tokio::test]
    async fn merge_overrides_by_key_and_drops_unmatched() {
        let g = run(
            json!([{"merge": {"mergeKeys": ["path.basename"], "generators": [
                {"git": {"repoURL": "r", "directories": [{"path": "apps/*"}]}},
                {"list": {"elements": [
                    {"path.basename": "web", "replicas": "3"},
                    {"path.basename": "nowhere", "replicas": "9"}
                ]}}
            ]}}]),
            false,
        )
        .await
        .unwrap();
        let replicas: Vec<Option<&Value>> =
            g.sets.iter().map(|s| s.params.get("replicas")).collect();
        assert_eq!(replicas, [None, Some(&json!("3"))]);
    }

    #[tokio::test]
    async fn nesting_deeper_than_two_levels_is_an_error() {
        let inner = json!({"matrix": {"generators": [{"list": {"elements": [{"a": "1"}]}}, {"list": {"elements": [{"b": "1"}]}}]}});
        let mid = json!({"matrix": {"generators": [inner, {"list": {"elements": [{"c": "1"}]}}]}});
        // Two levels: fine.
        let g = run(json!([mid.clone()]), false).await.unwrap();
        assert_eq!(g.sets.len(), 1);
        let top = json!([{"matrix": {"generators": [mid, {"list": {"elements": [{"d": "1"}]}}]}}]);
        let e = run(top, false).await.unwrap_err();
        assert!(e.message.contains("two levels"), "{e}");
        assert!(
            e.generator
                .starts_with("generators[0].matrix.generators[0]"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn values_are_rendered_and_selectors_filter() {
        let g = run(
            json!([{
                "git": {"repoURL": "r", "directories": [{"path": "apps/*"}],
                        "values": {"ns": "team-{{path.basename}}"}},
                "selector": {"matchLabels": {"values.ns": "team-web"}}
            }]),
            false,
        )
        .await
        .unwrap();
        assert_eq!(names(&g, "values.ns"), ["team-web"]);
        let go = run(
            json!([{"git": {"repoURL": "r", "directories": [{"path": "apps/*"}],
                            "values": {"ns": "team-{{.path.basename}}"}}}]),
            true,
        )
        .await
        .unwrap();
        assert_eq!(go.sets[0].params["values"]["ns"], "team-api");
    }

    #[tokio::test]
    async fn an_unknown_generator_fails_the_whole_run() {
        let e = run(
            json!([{"list": {"elements": [{"a": "1"}]}}, {"gti": {}}]),
            false,
        )
        .await
        .unwrap_err();
        assert_eq!(e.generator, "generators[1]");
        assert!(e.message.contains("unknown generator gti"), "{e}");
    }
}
