//! What the generators that call other services share: reading their ConfigMaps and token
//! Secrets, turning HTTP errors into [`GeneratorError`]s, and checking the shape of JSON answers.
//!
//! No message made here contains a token: Secrets are read by name and key, HTTP errors name the
//! URL without its query, and answers are quoted only by their first bytes.

use std::collections::BTreeMap;

use ferry_http::{HttpError, JsonResponse};
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use serde_json::Value;

use super::RemoteContext;
use crate::params::GeneratorError;

/// The label Argo CD requires on a Secret that a `$secret:key` reference may read.
pub(crate) const PART_OF_LABEL: &str = "app.kubernetes.io/part-of";
/// Argo CD's own Secret, where `$key` references (without a Secret name) are looked up.
pub(crate) const ARGOCD_SECRET: &str = "argocd-secret";

/// The data of ConfigMap `name` in the ApplicationSet's namespace.
pub(crate) async fn config_map(
    ctx: &RemoteContext<'_>,
    generator: &str,
    name: &str,
) -> Result<BTreeMap<String, String>, GeneratorError> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.kube.clone(), ctx.namespace);
    match api.get_opt(name).await {
        Ok(Some(cm)) => Ok(cm.data.unwrap_or_default()),
        Ok(None) => Err(GeneratorError::new(
            generator,
            format!(
                "ConfigMap {}/{name} does not exist: create it in the ApplicationSet's namespace",
                ctx.namespace
            ),
        )),
        Err(e) => Err(GeneratorError::new(
            generator,
            format!("reading ConfigMap {}/{name}: {e}", ctx.namespace),
        )),
    }
}

/// The data of ConfigMap `name`, or `None` when it does not exist.
pub(crate) async fn optional_config_map(
    ctx: &RemoteContext<'_>,
    generator: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, String>>, GeneratorError> {
    let api: Api<ConfigMap> = Api::namespaced(ctx.kube.clone(), ctx.namespace);
    api.get_opt(name)
        .await
        .map(|cm| cm.map(|cm| cm.data.unwrap_or_default()))
        .map_err(|e| {
            GeneratorError::new(
                generator,
                format!("reading ConfigMap {}/{name}: {e}", ctx.namespace),
            )
        })
}

/// Key `key` of Secret `name` in the ApplicationSet's namespace, as text. With
/// `require_part_of`, the Secret must be labelled `app.kubernetes.io/part-of: argocd`, as Argo CD
/// requires for Secrets named from a ConfigMap.
pub(crate) async fn secret_key(
    ctx: &RemoteContext<'_>,
    generator: &str,
    name: &str,
    key: &str,
    require_part_of: bool,
) -> Result<String, GeneratorError> {
    let where_ = format!("Secret {}/{name}", ctx.namespace);
    let api: Api<Secret> = Api::namespaced(ctx.kube.clone(), ctx.namespace);
    let secret = match api.get_opt(name).await {
        Ok(Some(s)) => s,
        Ok(None) => {
            return Err(GeneratorError::new(
                generator,
                format!("{where_} does not exist: create it with the key {key:?}"),
            ));
        }
        Err(e) => {
            return Err(GeneratorError::new(
                generator,
                format!("reading {where_}: {e}"),
            ));
        }
    };
    if require_part_of {
        let labelled = secret
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(PART_OF_LABEL))
            .is_some_and(|v| v == "argocd");
        if !labelled {
            return Err(GeneratorError::new(
                generator,
                format!(
                    "{where_} is not labelled {PART_OF_LABEL}=argocd; Argo CD (and ferry) read \
                     only Secrets with that label through a ConfigMap reference: add the label"
                ),
            ));
        }
    }
    let from_data = secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|b| String::from_utf8(b.0.clone()));
    let value = match from_data {
        Some(Ok(v)) => v,
        Some(Err(_)) => {
            return Err(GeneratorError::new(
                generator,
                format!("{where_}: key {key:?} is not UTF-8 text"),
            ));
        }
        None => match secret.string_data.as_ref().and_then(|d| d.get(key)) {
            Some(v) => v.clone(),
            None => {
                return Err(GeneratorError::new(
                    generator,
                    format!("{where_} has no key {key:?}: add it, or fix the reference"),
                ));
            }
        },
    };
    Ok(value.trim().to_string())
}

/// An HTTP error as a generator error (the message names the URL, never a header).
pub(crate) fn http_error(generator: &str, e: HttpError) -> GeneratorError {
    GeneratorError::new(generator, e.to_string())
}

/// The HTTP status of an error, when the server answered.
pub(crate) fn http_status(e: &HttpError) -> Option<u16> {
    match e {
        HttpError::Status { status, .. } => Some(*status),
        _ => None,
    }
}

/// A short description of a JSON value, for "expected X, got Y" messages.
pub(crate) fn describe(value: &Value) -> String {
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    };
    let text = value.to_string();
    let shown: String = text.chars().take(200).collect();
    let more = if text.chars().count() > 200 {
        "…"
    } else {
        ""
    };
    format!("{kind}: {shown}{more}")
}

/// The error for an answer of the wrong shape.
pub(crate) fn wrong_shape(
    generator: &str,
    what: &str,
    url: &str,
    expected: &str,
    got: &Value,
) -> GeneratorError {
    GeneratorError::new(
        generator,
        format!(
            "{what} {}: expected {expected}, got {}; ferry changes nothing until the server \
             answers as documented",
            ferry_http::shown_url(url),
            describe(got)
        ),
    )
}

/// The answer's body as a list, or an error naming the URL.
pub(crate) fn expect_list<'v>(
    generator: &str,
    url: &str,
    what: &str,
    body: &'v Value,
) -> Result<&'v Vec<Value>, GeneratorError> {
    body.as_array().ok_or_else(|| {
        wrong_shape(
            generator,
            "GET",
            url,
            &format!("a JSON list of {what}"),
            body,
        )
    })
}

/// Field `path` (dot-separated) of `item` as text: strings as they are, numbers in decimal.
/// Missing or of another type is an error naming the URL and the field.
pub(crate) fn text_field(
    generator: &str,
    url: &str,
    item: &Value,
    path: &str,
) -> Result<String, GeneratorError> {
    let mut v = item;
    for part in path.split('.') {
        v = v.get(part).unwrap_or(&Value::Null);
    }
    match v {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(wrong_shape(
            generator,
            "GET",
            url,
            &format!("a field {path:?} with text in each item"),
            item,
        )),
    }
}

/// Field `path` of `item` as text, or "" when it is missing or null.
pub(crate) fn optional_text(item: &Value, path: &str) -> String {
    let mut v = item;
    for part in path.split('.') {
        v = v.get(part).unwrap_or(&Value::Null);
    }
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => String::new(),
    }
}

/// A header of a JSON answer as text.
pub(crate) fn header<'r>(answer: &'r JsonResponse, name: &str) -> Option<&'r str> {
    answer.headers.get(name).and_then(|v| v.to_str().ok())
}

/// Percent-encodes one path segment (or a query value): everything but unreserved characters.
pub(crate) fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes a path of several segments, keeping its slashes.
pub(crate) fn encode_path(path: &str) -> String {
    path.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// The generator's `values` as an object of strings (Argo CD's type), or an error.
pub(crate) fn values(
    generator: &str,
    spec: &Value,
) -> Result<Option<serde_json::Map<String, Value>>, GeneratorError> {
    match spec.get("values") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(other) => Err(GeneratorError::new(
            generator,
            format!(
                "values must be an object of strings, not {}",
                describe(other)
            ),
        )),
    }
}

/// A `requeueAfterSeconds` field, when given.
pub(crate) fn requeue_after_seconds(spec: &Value) -> Option<std::time::Duration> {
    spec.get("requeueAfterSeconds")
        .and_then(Value::as_u64)
        .map(std::time::Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn encode_keeps_unreserved_and_escapes_the_rest() {
        assert_eq!(encode("group/sub repo"), "group%2Fsub%20repo");
        assert_eq!(encode_path("a/b c/d.yaml"), "a/b%20c/d.yaml");
    }

    #[test]
    fn text_field_reads_nested_text_and_numbers() {
        let item = json!({"commit": {"sha": "abc"}, "id": 7});
        assert_eq!(
            text_field("g", "http://x/y", &item, "commit.sha").unwrap(),
            "abc"
        );
        assert_eq!(text_field("g", "http://x/y", &item, "id").unwrap(), "7");
        let e = text_field("g", "http://x/y?token=no", &item, "name").unwrap_err();
        assert!(e.message.contains("\"name\""), "{e}");
        assert!(!e.message.contains("token=no"), "{e}");
    }

    #[test]
    fn expect_list_refuses_an_object() {
        let body = json!({"message": "maintenance"});
        let e = expect_list("scmProvider", "http://h/api", "repositories", &body).unwrap_err();
        assert_eq!(e.generator, "scmProvider");
        assert!(e.message.contains("an object"), "{e}");
        assert!(e.message.contains("maintenance"), "{e}");
    }
}
