use super::*;
use serde_json::json;

fn params(v: Value) -> Params {
    v.as_object().unwrap().clone()
}

fn legacy() -> TemplateOptions {
    TemplateOptions::default()
}

#[test]
fn legacy_renders_every_string_field_and_keys_and_keeps_other_values() {
    let template = json!({
        "metadata": {"name": "{{cluster}}-app", "labels": {"{{ label }}": "{{cluster}}"}},
        "spec": {
            "project": "default",
            "sources": [{"path": "apps/{{path.basename}}", "helm": {"parameters": [{"name": "x", "value": "{{unknown}}"}]}}],
            "syncPolicy": {"automated": {"prune": true}},
            "revisionHistoryLimit": 3
        }
    });
    let p = params(json!({"cluster": "prod", "label": "env", "path.basename": "guestbook"}));
    let out = render_application(&template, None, &p, &legacy()).unwrap();
    assert_eq!(
        out,
        json!({
            "metadata": {"name": "prod-app", "labels": {"env": "prod"}},
            "spec": {
                "project": "default",
                "sources": [{"path": "apps/guestbook", "helm": {"parameters": [{"name": "x", "value": "{{unknown}}"}]}}],
                "syncPolicy": {"automated": {"prune": true}},
                "revisionHistoryLimit": 3
            }
        })
    );
}

#[test]
fn empty_params_leave_the_template_as_it_is() {
    let template = json!({"metadata": {"name": "{{x}}"}});
    let out = render_application(&template, None, &Params::new(), &legacy()).unwrap();
    assert_eq!(out, template);
}

#[test]
fn template_patch_needs_go_templates() {
    let template = json!({"metadata": {"name": "a"}});
    let p = params(json!({"x": "1"}));
    let err = render_application(&template, Some("spec: {}"), &p, &legacy()).unwrap_err();
    assert_eq!(err.field, "templatePatch");
    assert_eq!(err.kind, TemplateErrorKind::Patch);
}

#[test]
fn unknown_go_template_option_names_the_field() {
    let opts = TemplateOptions {
        go_template: true,
        go_template_options: vec!["missingkey=explode".into()],
    };
    let err = render_string("x", &Params::new(), &opts).unwrap_err();
    assert_eq!(err.field, "goTemplateOptions");
    assert_eq!(err.kind, TemplateErrorKind::Option);
    assert!(err.to_string().contains("missingkey=explode"), "{err}");
}

#[test]
fn field_paths_name_list_positions_and_odd_keys() {
    let mut path = String::from("metadata");
    push_key(&mut path, "labels");
    push_key(&mut path, "app.kubernetes.io/name");
    assert_eq!(path, "metadata.labels[\"app.kubernetes.io/name\"]");
    let e = TemplateError::new(TemplateErrorKind::Exec, "x").in_field("values");
    assert_eq!(e.in_field("generators[0].clusters").field, "generators[0].clusters.values");
}
