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
    assert_eq!(
        e.in_field("generators[0].clusters").field,
        "generators[0].clusters.values"
    );
}

fn go(options: &[&str]) -> TemplateOptions {
    TemplateOptions {
        go_template: true,
        go_template_options: options.iter().map(|s| s.to_string()).collect(),
    }
}

#[test]
fn go_template_renders_strings_with_nested_params() {
    let template = json!({
        "metadata": {"name": "{{ .cluster.name | normalize }}-{{ .app }}", "labels": {"env": "{{ .cluster.env }}"}},
        "spec": {"source": {"path": "apps/{{ .app }}", "targetRevision": "HEAD"}, "revisionHistoryLimit": 5}
    });
    let p = params(json!({"cluster": {"name": "Prod_EU", "env": "prod"}, "app": "web"}));
    let out = render_application(&template, None, &p, &go(&[])).unwrap();
    assert_eq!(out["metadata"]["name"], "prod-eu-web");
    assert_eq!(out["metadata"]["labels"]["env"], "prod");
    assert_eq!(out["spec"]["source"]["path"], "apps/web");
    assert_eq!(out["spec"]["revisionHistoryLimit"], 5);
}

#[test]
fn go_template_error_names_the_field_the_position_and_the_key() {
    let template = json!({"spec": {"sources": [{"path": "ok"}, {"path": "apps/{{ .nope }}"}]}});
    let p = params(json!({"app": "web"}));
    let err = render_application(&template, None, &p, &go(&["missingkey=error"])).unwrap_err();
    assert_eq!(err.field, "spec.sources[1].path");
    assert_eq!(err.kind, TemplateErrorKind::MissingKey);
    let text = err.to_string();
    assert!(text.contains("spec.sources[1].path"), "{text}");
    assert!(text.contains("1:9"), "{text}");
    assert!(text.contains("\"nope\""), "{text}");
}

#[test]
fn go_template_errors_say_what_kind_they_are() {
    let p = params(json!({"a": "x"}));
    let cases = [
        (
            "{{ nope .a }}",
            TemplateErrorKind::UnknownFunction,
            "function \"nope\" not defined",
        ),
        (
            "{{ env \"HOME\" }}",
            TemplateErrorKind::UnknownFunction,
            "Argo CD removes it",
        ),
        (
            "{{ now }}",
            TemplateErrorKind::UnknownFunction,
            "ferry does not offer",
        ),
        ("{{ if .a }}", TemplateErrorKind::Parse, "has no end"),
        (
            "a\n  {{ .a",
            TemplateErrorKind::Parse,
            "2:3: unclosed action",
        ),
        ("{{ fail \"stop\" }}", TemplateErrorKind::Exec, "stop"),
    ];
    for (text, kind, message) in cases {
        let err = render_string(text, &p, &go(&[])).unwrap_err();
        assert_eq!(err.kind, kind, "{text}: {err}");
        assert!(err.message.contains(message), "{text}: {err}");
    }
}

#[test]
fn a_map_key_that_fails_is_named_as_the_key() {
    let template = json!({"metadata": {"labels": {"{{ fail \"no\" }}": "x"}}});
    let p = params(json!({"a": "x"}));
    let err = render_application(&template, None, &p, &go(&[])).unwrap_err();
    assert_eq!(
        err.field,
        "metadata.labels[\"{{ fail \\\"no\\\" }}\"] (the key)"
    );
}

#[test]
fn template_patch_is_rendered_read_as_yaml_and_merged() {
    let template = json!({
        "metadata": {"name": "{{ .name }}"},
        "spec": {"project": "default", "source": {"path": "p"}}
    });
    let patch = r#"
spec:
  source:
    helm:
      valueFiles:
      {{- range .files }}
      - {{ . }}
      {{- end }}
  {{- if .autoSync }}
  syncPolicy:
    automated:
      prune: {{ .prune }}
  {{- end }}
"#;
    let p = params(
        json!({"name": "web", "files": ["a.yaml", "b.yaml"], "autoSync": true, "prune": true}),
    );
    let out = render_application(&template, Some(patch), &p, &go(&[])).unwrap();
    assert_eq!(
        out,
        json!({
            "metadata": {"name": "web"},
            "spec": {
                "project": "default",
                "source": {"path": "p", "helm": {"valueFiles": ["a.yaml", "b.yaml"]}},
                "syncPolicy": {"automated": {"prune": true}}
            }
        })
    );
}

#[test]
fn template_patch_that_is_not_yaml_or_not_a_map_is_an_error() {
    let template = json!({"metadata": {"name": "a"}});
    let p = params(json!({"x": "1"}));
    let err = render_application(&template, Some("spec: [{{ .x }}"), &p, &go(&[])).unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.kind),
        ("templatePatch", TemplateErrorKind::Patch)
    );
    assert!(err.message.contains("not YAML"), "{err}");
    let err = render_application(&template, Some("- {{ .x }}"), &p, &go(&[])).unwrap_err();
    assert!(err.message.contains("not a list"), "{err}");
    let err = render_application(&template, Some("{{ .y.z | upper }}"), &p, &go(&[])).unwrap_err();
    assert_eq!(
        (err.field.as_str(), err.kind),
        ("templatePatch", TemplateErrorKind::Exec)
    );
}

#[test]
fn a_template_that_calls_itself_or_loops_for_ever_is_stopped() {
    let p = params(json!({"a": "x"}));
    let err = render_string(
        "{{ define \"x\" }}{{ template \"x\" . }}{{ end }}{{ template \"x\" . }}",
        &p,
        &go(&[]),
    )
    .unwrap_err();
    assert!(err.message.contains("levels deep"), "{err}");
    let err = render_string(
        "{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}",
        &p,
        &go(&[]),
    )
    .unwrap_err();
    assert!(err.message.contains("steps"), "{err}");
    let deep = format!("{}1{}", "(".repeat(500), ")".repeat(500));
    let err = render_string(&format!("{{{{ {deep} }}}}"), &p, &go(&[])).unwrap_err();
    assert_eq!(err.kind, TemplateErrorKind::Parse);
    let nested = format!(
        "{}x{}",
        "{{ if true }}".repeat(500),
        "{{ end }}".repeat(500)
    );
    let err = render_string(&nested, &p, &go(&[])).unwrap_err();
    assert!(err.message.contains("nest"), "{err}");
}

#[test]
fn render_string_serves_generator_fields_and_tpl() {
    let p = params(json!({"name": "in-cluster", "values": {"suffix": "x"}}));
    assert_eq!(
        render_string("{{ .name }}-{{ .values.suffix }}", &p, &go(&[])).unwrap(),
        "in-cluster-x"
    );
    assert_eq!(
        render_string(
            "{{ tpl \"<{{ .a }}{{ .b }}>\" (dict \"a\" .name) }}",
            &p,
            &go(&[])
        )
        .unwrap(),
        "<in-cluster>"
    );
    assert_eq!(
        render_string("{{name}}", &p, &legacy()).unwrap(),
        "in-cluster"
    );
}

#[test]
fn helm_values_objects_are_kept_as_they_are_written() {
    let template = json!({
        "metadata": {"name": "{{ .name }}"},
        "spec": {
            "source": {"helm": {"valuesObject": {"image": "{{ .Values.tag }}"}, "values": "x: {{ .name }}"}},
            "sources": [{"helm": {"valuesObject": {"a": "{{ .Release.Name }}"}}}]
        }
    });
    let p = params(json!({"name": "web"}));
    let out = render_application(&template, None, &p, &go(&["missingkey=error"])).unwrap();
    assert_eq!(out["metadata"]["name"], "web");
    assert_eq!(out["spec"]["source"]["helm"]["values"], "x: web");
    assert_eq!(
        out["spec"]["source"]["helm"]["valuesObject"]["image"],
        "{{ .Values.tag }}"
    );
    assert_eq!(
        out["spec"]["sources"][0]["helm"]["valuesObject"]["a"],
        "{{ .Release.Name }}"
    );
}
