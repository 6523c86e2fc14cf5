//! `ignoreDifferences.jqPathExpressions`: the fields a jq path expression selects are left out
//! of a comparison, as Argo CD does (it runs `del(<expression>)` on both sides).
//!
//! The language is jq's core (paths, `select`, comparisons, `..`, `map`, string functions such
//! as `startswith`, `ascii_downcase`, `length`), without jq's date, regular-expression and
//! formatting functions, which path expressions do not need.

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Compiler, Ctx, Vars, data, unwrap_valr};
use jaq_json::Val;
use serde_json::Value;

/// Checks that `expression` parses as a jq path expression; the error says why not.
pub(crate) fn check_expression(expression: &str) -> Result<(), String> {
    compile_delete(expression).map(|_| ())
}

type Filter = jaq_core::compile::Filter<jaq_core::Native<data::JustLut<Val>>>;

fn compile_delete(expression: &str) -> Result<Filter, String> {
    if expression.trim().is_empty() {
        return Err("the expression is empty".into());
    }
    let code = format!("del({expression})");
    let defs = jaq_core::defs();
    let funs = jaq_core::funs()
        .chain(jaq_std::base_funs())
        .chain(jaq_json::funs());
    let loader = Loader::new(defs);
    let arena = Arena::default();
    let modules = loader
        .load(
            &arena,
            File {
                code: code.as_str(),
                path: (),
            },
        )
        .map_err(|errors| {
            let n = errors.len();
            format!(
                "it does not parse as jq ({n} error{})",
                if n == 1 { "" } else { "s" }
            )
        })?;
    Compiler::default()
        .with_funs(funs)
        .compile(modules)
        .map_err(|errors| {
            let names: Vec<String> = errors
                .into_iter()
                .flat_map(|(_, errs)| errs.into_iter().map(|(name, _)| name.to_string()))
                .collect();
            format!("it does not compile as jq (unknown: {})", names.join(", "))
        })
}

/// Removes from `value` what each expression selects. Expressions that do not parse are
/// skipped (the caller reports them, see [`check_expression`]); an expression that fails on this
/// value (a path through a field of the wrong type) leaves it as it is, as in Argo CD.
pub(crate) fn delete_paths(value: &mut Value, expressions: &[String]) {
    for expression in expressions {
        let Ok(filter) = compile_delete(expression) else {
            continue;
        };
        let Ok(input) = jaq_json::read::parse_single(value.to_string().as_bytes()) else {
            return;
        };
        let ctx = Ctx::<data::JustLut<Val>>::new(&filter.lut, Vars::new([]));
        let mut out = filter.id.run((ctx, input)).map(unwrap_valr);
        if let Some(Ok(result)) = out.next()
            && let Ok(result) = serde_json::from_str::<Value>(&result.to_string())
        {
            *value = result;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deleted(value: Value, expressions: &[&str]) -> Value {
        let mut v = value;
        let exprs: Vec<String> = expressions.iter().map(|s| (*s).to_owned()).collect();
        delete_paths(&mut v, &exprs);
        v
    }

    #[test]
    fn fields_and_list_items_selected_by_an_expression_are_removed() {
        let webhook = json!({"webhooks": [
            {"name": "a", "clientConfig": {"caBundle": "x", "url": "u"}},
            {"name": "b", "clientConfig": {"caBundle": "y"}}
        ]});
        assert_eq!(
            deleted(webhook, &[".webhooks[]?.clientConfig.caBundle"]),
            json!({"webhooks": [
                {"name": "a", "clientConfig": {"url": "u"}},
                {"name": "b", "clientConfig": {}}
            ]})
        );
        let deploy = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "main", "image": "a", "env": [{"name": "X"}]},
            {"name": "sidecar", "image": "b"}
        ]}}}});
        assert_eq!(
            deleted(
                deploy,
                &[".spec.template.spec.containers[] | select(.name == \"sidecar\")"]
            ),
            json!({"spec": {"template": {"spec": {"containers": [
                {"name": "main", "image": "a", "env": [{"name": "X"}]}
            ]}}}})
        );
        // Several expressions, one after the other; numbers stay numbers.
        assert_eq!(
            deleted(json!({"a": 1, "b": 2.5, "c": 3}), &[".a", ".c"]),
            json!({"b": 2.5})
        );
    }

    #[test]
    fn paths_that_lead_nowhere_change_nothing() {
        let v = json!({"metadata": {"name": "x"}, "spec": {"replicas": 3}});
        assert_eq!(deleted(v.clone(), &[".status.foo"]), v);
        assert_eq!(deleted(v.clone(), &[".spec.replicas[]?"]), v);
        // An expression that fails on this value (indexing a number) leaves it as it is.
        assert_eq!(deleted(v.clone(), &[".spec.replicas.x"]), v);
    }

    #[test]
    fn expressions_that_do_not_parse_are_reported_and_skipped() {
        assert_eq!(check_expression(".spec.replicas"), Ok(()));
        assert_eq!(
            check_expression(".spec.containers[] | select(.name | startswith(\"istio\"))"),
            Ok(())
        );
        assert!(check_expression(".webhooks[]?.clientConfig.caBundle").is_ok());
        let err = check_expression(".spec[").unwrap_err();
        assert!(err.contains("does not parse"), "{err}");
        let err = check_expression("nosuchfunction(1)").unwrap_err();
        assert!(err.contains("nosuchfunction"), "{err}");
        assert!(check_expression("  ").is_err());
        let v = json!({"spec": {"replicas": 3}});
        assert_eq!(
            deleted(v.clone(), &[".spec[", ".spec.replicas"]),
            json!({"spec": {}})
        );
    }
}
