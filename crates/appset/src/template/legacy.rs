//! The legacy template form (Argo CD's fasttemplate): `{{name}}` is replaced by the parameter
//! `name` (spaces inside the braces are ignored). Names are the flattened ones (`path.basename`,
//! `metadata.labels.env`); ferry also follows a dotted name into nested parameters when no
//! flattened one exists. An unknown name, an empty tag or a value that is not a string, number
//! or boolean leaves the tag as it is written.
//!
//! As in Argo CD, a string is a template only when one of its lines holds `{{` and then `}}`;
//! such a string with a `{{` that is never closed is an error.

use super::{TemplateError, TemplateErrorKind};
use crate::params::Params;
use serde_json::Value;

/// Replaces every known `{{name}}` in `text`.
pub(crate) fn render(text: &str, params: &Params) -> Result<String, TemplateError> {
    let is_template = text.lines().any(|line| {
        line.find("{{")
            .is_some_and(|i| line[i + 2..].contains("}}"))
    });
    if !is_template {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(TemplateError::new(
                TemplateErrorKind::Parse,
                format!(
                    "invalid template: the {{{{ at byte {} is never closed with }}}}",
                    text.len() - rest.len() + start
                ),
            ));
        };
        out.push_str(&rest[..start]);
        let tag = &after[..end];
        match lookup(params, tag.trim()) {
            Some(value) => out.push_str(&value),
            None => {
                out.push_str("{{");
                out.push_str(tag);
                out.push_str("}}");
            }
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The text of parameter `name`: the flattened key first, then the dotted path into nested maps.
fn lookup(params: &Params, name: &str) -> Option<String> {
    if name.is_empty() {
        return None;
    }
    if let Some(v) = params.get(name) {
        return scalar_text(v);
    }
    let mut parts = name.split('.');
    let mut current = params.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    scalar_text(current)
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn params(v: Value) -> Params {
        v.as_object().unwrap().clone()
    }

    fn render(text: &str, params: &Params) -> String {
        super::render(text, params).unwrap()
    }

    #[test]
    fn replaces_known_names_with_and_without_spaces() {
        let p = params(json!({"cluster": "prod", "path.basename": "guestbook", "n": 3}));
        assert_eq!(
            render("{{cluster}}-{{ path.basename }}", &p),
            "prod-guestbook"
        );
        assert_eq!(render("x{{n}}y", &p), "x3y");
    }

    #[test]
    fn leaves_unknown_and_empty_tags_and_unclosed_braces() {
        let p = params(json!({"a": "A"}));
        assert_eq!(render("{{ b }}/{{a}}", &p), "{{ b }}/A");
        assert_eq!(render("{{}} {{  }}", &p), "{{}} {{  }}");
        assert_eq!(render("{{a", &p), "{{a");
        assert_eq!(render("{{a\n}}", &p), "{{a\n}}");
        assert_eq!(render("{{{a}}}", &p), "{{{a}}}");
        assert_eq!(render("no tags", &p), "no tags");
    }

    #[test]
    fn an_unclosed_tag_in_a_template_string_is_an_error() {
        let p = params(json!({"a": "A"}));
        let err = super::render("{{a}} {{a", &p).unwrap_err();
        assert_eq!(err.kind, TemplateErrorKind::Parse);
        assert!(err.message.contains("byte 6"), "{}", err.message);
    }

    #[test]
    fn follows_dotted_names_into_nested_params_for_scalars_only() {
        let p = params(json!({"metadata": {"labels": {"env": "dev"}}, "list": ["x"]}));
        assert_eq!(render("{{metadata.labels.env}}", &p), "dev");
        assert_eq!(render("{{metadata.labels}}", &p), "{{metadata.labels}}");
        assert_eq!(render("{{list}}", &p), "{{list}}");
    }

    #[test]
    fn replacement_text_is_not_rendered_again() {
        let p = params(json!({"a": "{{b}}", "b": "B"}));
        assert_eq!(render("{{a}}", &p), "{{b}}");
    }
}
