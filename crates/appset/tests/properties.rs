//! Property tests for the template renderer: whoever writes an ApplicationSet (or a generator's
//! source, a Git file, an SCM answer) controls the template text and the parameters, so no
//! input may panic, hang or blow up, and `toYaml` must write YAML that reads back as itself.
//!
//! `make test` runs the default number of cases (256 per property); `make fuzz` runs many more
//! (`PROPTEST_CASES`).

use ferry_appset::params::Params;
use ferry_appset::template::{TemplateOptions, render_application, render_string};
use proptest::prelude::*;
use serde_json::{Value, json};

fn go() -> TemplateOptions {
    TemplateOptions {
        go_template: true,
        go_template_options: vec![],
    }
}

/// Pieces of Go template syntax, so random texts reach the parser and evaluator's corners.
fn template_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("{{- ".to_string()),
        Just(" -}}".to_string()),
        Just("{{/* c */}}".to_string()),
        Just(" ".to_string()),
        Just("\n".to_string()),
        Just(".".to_string()),
        Just(".a".to_string()),
        Just(".l".to_string()),
        Just(".m.k".to_string()),
        Just("$".to_string()),
        Just("$x".to_string()),
        Just(":=".to_string()),
        Just("=".to_string()),
        Just(",".to_string()),
        Just("|".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("if".to_string()),
        Just("else".to_string()),
        Just("end".to_string()),
        Just("range".to_string()),
        Just("with".to_string()),
        Just("break".to_string()),
        Just("define \"t\"".to_string()),
        Just("template \"t\"".to_string()),
        Just("\"s\"".to_string()),
        Just("`r`".to_string()),
        Just("'c'".to_string()),
        Just("-3".to_string()),
        Just("1.5".to_string()),
        Just("true".to_string()),
        Just("nil".to_string()),
        prop::sample::select(vec![
            "printf \"%d %s %v\"",
            "index",
            "len",
            "eq",
            "lt",
            "and",
            "or",
            "not",
            "default",
            "upper",
            "trunc 3",
            "repeat 2",
            "list",
            "dict",
            "toJson",
            "toYaml",
            "fromYaml",
            "regexFind",
            "split",
            "until 3",
            "tpl",
            "merge",
            "set",
            "normalize",
            "slugify",
        ])
        .prop_map(str::to_string),
        "[a-z0-9%]{0,3}",
    ];
    prop::collection::vec(piece, 0..24).prop_map(|p| p.concat())
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e9f64..1e9).prop_map(Value::from),
        any::<String>().prop_map(Value::from),
        "[-:#'\" a-z0-9.{}\\[\\]|>&*!%@`]{0,12}".prop_map(Value::from),
        "[ a#:\n\t-]{0,10}".prop_map(Value::from),
        prop::sample::select(vec![
            "yes", "no", "true", "null", "~", "0644", "1e3", "0x1f", "- a", "a: b", "", " x", "x ",
            "#c", "on"
        ])
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::from),
            prop::collection::btree_map("[a-z:. -]{0,6}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn params() -> impl Strategy<Value = Params> {
    (any_json(), any_json(), any_json()).prop_map(|(a, l, m)| {
        let mut p = Params::new();
        p.insert("a".into(), a);
        p.insert("l".into(), l);
        p.insert("m".into(), json!({"k": m}));
        p
    })
}

proptest! {
    #[test]
    fn go_templates_never_panic(text in template_text(), p in params()) {
        let _ = render_string(&text, &p, &go());
        let _ = render_string(&text, &p, &TemplateOptions { go_template: true, go_template_options: vec!["missingkey=error".into()] });
    }

    #[test]
    fn any_text_never_panics(text in any::<String>(), p in params()) {
        let _ = render_string(&text, &p, &go());
        let _ = render_string(&text, &p, &TemplateOptions::default());
    }

    #[test]
    fn text_without_braces_is_kept(text in "[^{}]{0,40}", p in params()) {
        prop_assert_eq!(render_string(&text, &p, &TemplateOptions::default()).unwrap(), text.clone());
        prop_assert_eq!(render_string(&text, &p, &go()).unwrap(), text);
    }

    #[test]
    fn rendering_keeps_the_shape_of_the_template(template in any_json(), p in params()) {
        let template = json!({"spec": template});
        if let Ok(out) = render_application(&template, None, &p, &TemplateOptions::default()) {
            prop_assert!(same_shape(&template, &out), "{template} → {out}");
        }
    }

    #[test]
    fn to_yaml_reads_back_as_itself(v in any_json()) {
        let p: Params = [("v".to_string(), json!({"x": v}))].into_iter().collect();
        let direct = render_string("{{ toJson .v }}", &p, &go()).unwrap();
        let text = render_string("{{ toYaml .v }}", &p, &go()).unwrap();
        let round = render_string("{{ toYaml .v | fromYaml | toJson }}", &p, &go());
        prop_assert_eq!(round.as_ref().ok(), Some(&direct), "YAML was:\n{}", text);
    }
}

/// Same lists lengths, same map sizes, same non-string leaves.
fn same_shape(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(_), Value::String(_)) => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_shape(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            y.len() <= x.len() && x.values().zip(y.values()).count() == y.len()
        }
        (x, y) => x == y,
    }
}
