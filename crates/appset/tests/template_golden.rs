//! The golden table of Go template cases (tests/golden/go_templates.yaml), each with the
//! output Go's text/template + Sprig gives (checked with tests/golden/gocheck), run through
//! ferry's renderer. Cases where ferry differs on purpose say so (`ferry_want`/`ferry_error`
//! and `differs`).

use ferry_appset::params::Params;
use ferry_appset::template::{TemplateErrorKind, TemplateOptions, render_string};
use serde::Deserialize;

#[derive(Deserialize)]
struct Case {
    name: String,
    template: String,
    #[serde(default)]
    params: Params,
    #[serde(default)]
    options: Vec<String>,
    want: Option<String>,
    error: Option<String>,
    ferry_want: Option<String>,
    ferry_error: Option<String>,
    differs: Option<String>,
}

fn kind_name(kind: TemplateErrorKind) -> &'static str {
    match kind {
        TemplateErrorKind::Parse => "parse",
        TemplateErrorKind::UnknownFunction => "unknown_function",
        TemplateErrorKind::MissingKey => "missing_key",
        TemplateErrorKind::Exec => "exec",
        TemplateErrorKind::Option => "option",
        TemplateErrorKind::Patch => "patch",
    }
}

#[test]
fn go_template_golden_table() {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/go_templates.yaml"
    ))
    .expect("the golden table is readable");
    let cases: Vec<Case> = serde_saphyr::from_str(&text).expect("the golden table parses");
    assert!(cases.len() >= 60, "the table has {} cases", cases.len());
    let mut failures = Vec::new();
    let mut differing = 0;
    for case in &cases {
        let (want, error) = if case.ferry_want.is_some() || case.ferry_error.is_some() {
            assert!(
                case.differs.is_some(),
                "{}: a ferry_ result needs a `differs` note",
                case.name
            );
            differing += 1;
            (case.ferry_want.clone(), case.ferry_error.clone())
        } else {
            (case.want.clone(), case.error.clone())
        };
        assert!(
            want.is_some() != error.is_some(),
            "{}: give exactly one of want and error",
            case.name
        );
        let opts = TemplateOptions {
            go_template: true,
            go_template_options: case.options.clone(),
        };
        let got = render_string(&case.template, &case.params, &opts);
        match (&want, &error, got) {
            (Some(w), _, Ok(out)) if *w == out => {}
            (_, Some(e), Err(err)) if e == kind_name(err.kind) => {
                assert!(
                    !err.message.is_empty(),
                    "{}: an error without a message",
                    case.name
                );
            }
            (_, _, got) => failures.push(format!(
                "{}: template {:?}\n  want {:?} / error {:?}\n  got  {:?}",
                case.name, case.template, want, error, got
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases fail:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    assert!(
        differing < cases.len() / 10,
        "too many cases differ from Go: {differing}"
    );
}
