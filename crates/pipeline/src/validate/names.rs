//! The ObjectMeta rules the API server applies whatever the kind's schema says: a name (or
//! `generateName`), the name's syntax for the kind, the namespace's syntax, and label and
//! annotation keys and values.
//!
//! Which name rule applies to which kind (checked against kube-apiserver v1.36.3 with
//! `kubectl create --dry-run=server`):
//!
//! | rule | kinds |
//! | --- | --- |
//! | DNS-1123 label: at most 63 of `a-z0-9-`, starting and ending alphanumeric | `Namespace`, `Service` (1.36 accepts a leading digit), `StatefulSet` |
//! | DNS-1123 subdomain of at most 52 characters (the CronJob controller appends 11) | `CronJob` |
//! | DNS-1123 subdomain of at most 63 characters (it becomes a label value) | `Job` |
//! | path segment: anything but `.`, `..`, and names containing `/` or `%` | `Role`, `ClusterRole`, `RoleBinding`, `ClusterRoleBinding`, `PodDisruptionBudget`, `Event` |
//! | `<spec.names.plural>.<spec.group>` | `CustomResourceDefinition` |
//! | DNS-1123 subdomain: at most 253 of `a-z0-9-.`, dot-separated labels | every other kind, custom resources included |

use serde_json::Value;

use super::schema::{Issue, Segment, Target};

/// The name rule of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum NameRule {
    Label,
    Subdomain(usize),
    PathSegment,
}

fn name_rule(group: &str, kind: &str) -> NameRule {
    match (group, kind) {
        ("", "Namespace" | "Service") | ("apps", "StatefulSet") => NameRule::Label,
        ("batch", "CronJob") => NameRule::Subdomain(52),
        ("batch", "Job") => NameRule::Subdomain(63),
        (
            "rbac.authorization.k8s.io",
            "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
        )
        | ("policy", "PodDisruptionBudget")
        | ("" | "events.k8s.io", "Event") => NameRule::PathSegment,
        _ => NameRule::Subdomain(253),
    }
}

/// Whether `s` is a DNS-1123 label (`[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63).
pub(crate) fn is_dns1123_label(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0] != b'-'
        && bytes[bytes.len() - 1] != b'-'
}

/// Whether `s` is a DNS-1123 subdomain of at most `max` characters.
pub(crate) fn is_dns1123_subdomain(s: &str, max: usize) -> bool {
    !s.is_empty() && s.len() <= max && s.split('.').all(is_dns1123_label)
}

/// A label value, or the name part of a qualified name (`[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`).
fn is_qualified_part(s: &str) -> bool {
    let bytes = s.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 63
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

/// Why `key` is not a valid label or annotation key (`[prefix/]name`), if it is not.
fn qualified_name_problem(key: &str) -> Option<&'static str> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if prefix.is_some_and(|p| !is_dns1123_subdomain(p, 253)) {
        return Some("its prefix (before '/') must be a DNS-1123 subdomain (`example.com`)");
    }
    if !is_qualified_part(name) {
        return Some(
            "its name must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit",
        );
    }
    None
}

fn describe_rule(rule: NameRule) -> String {
    match rule {
        NameRule::Label => "a DNS-1123 label: at most 63 lowercase letters, digits and '-', \
                            starting and ending with a letter or digit"
            .into(),
        NameRule::Subdomain(max) => format!(
            "a DNS-1123 subdomain: at most {max} lowercase letters, digits, '-' and '.', \
             each dot-separated part starting and ending with a letter or digit"
        ),
        NameRule::PathSegment => "a path segment: not `.` or `..`, without '/' or '%'".into(),
    }
}

fn name_ok(rule: NameRule, name: &str) -> bool {
    match rule {
        NameRule::Label => is_dns1123_label(name),
        NameRule::Subdomain(max) => is_dns1123_subdomain(name, max),
        NameRule::PathSegment => {
            !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '%'])
        }
    }
}

fn key(name: &str) -> Segment {
    Segment::Key(name.into())
}

/// Checks the metadata of an object of `group` and `kind`.
pub(crate) fn check_metadata(group: &str, kind: &str, object: &Value) -> Vec<Issue> {
    let mut issues = Vec::new();
    let meta_path = [key("metadata")];
    let Some(meta) = object.get("metadata").filter(|m| !m.is_null()) else {
        issues.push(Issue::new(
            &[],
            Target::Value,
            "missing required field \"metadata\" (with a name)",
        ));
        return issues;
    };
    let Some(meta) = meta.as_object() else {
        return issues; // the schema check reports the type
    };
    match meta.get("name") {
        None | Some(Value::Null) => {
            let generated = meta
                .get("generateName")
                .and_then(Value::as_str)
                .is_some_and(|g| !g.is_empty());
            if !generated {
                issues.push(Issue::new(
                    &meta_path,
                    Target::Value,
                    "missing required field \"name\" (or generateName)",
                ));
            }
        }
        Some(Value::String(name)) => {
            let path = [key("metadata"), key("name")];
            if kind == "CustomResourceDefinition" && group == "apiextensions.k8s.io" {
                let field = |f: &str| {
                    object
                        .pointer(f)
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                };
                let expected = format!("{}.{}", field("/spec/names/plural"), field("/spec/group"));
                if *name != expected {
                    issues.push(Issue::new(
                        &path,
                        Target::Value,
                        format!(
                            "invalid name {}: a CustomResourceDefinition must be named <spec.names.plural>.<spec.group>, here {}",
                            Value::String(name.clone()),
                            Value::String(expected)
                        ),
                    ));
                }
            } else {
                let rule = name_rule(group, kind);
                if !name_ok(rule, name) {
                    issues.push(Issue::new(
                        &path,
                        Target::Value,
                        format!(
                            "invalid name {}: a {kind} name must be {}",
                            Value::String(name.clone()),
                            describe_rule(rule)
                        ),
                    ));
                }
            }
        }
        Some(_) => {} // the schema check reports the type
    }
    if let Some(Value::String(namespace)) = meta.get("namespace")
        && !is_dns1123_label(namespace)
    {
        issues.push(Issue::new(
            &[key("metadata"), key("namespace")],
            Target::Value,
            format!(
                "invalid namespace {}: must be {}",
                Value::String(namespace.clone()),
                describe_rule(NameRule::Label)
            ),
        ));
    }
    for field in ["labels", "annotations"] {
        let Some(Value::Object(entries)) = meta.get(field) else {
            continue;
        };
        for (k, v) in entries {
            let path = [key("metadata"), key(field), key(k)];
            if let Some(problem) = qualified_name_problem(k) {
                let what = &field[..field.len() - 1];
                issues.push(Issue::new(
                    &path,
                    Target::Key,
                    format!("invalid {what} key {}: {problem}", Value::String(k.clone())),
                ));
            }
            if field == "labels"
                && let Value::String(value) = v
                && !value.is_empty()
                && !is_qualified_part(value)
            {
                issues.push(Issue::new(
                    &path,
                    Target::Value,
                    format!(
                        "invalid label value {}: at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit (or empty)",
                        Value::String(value.clone())
                    ),
                ));
            }
        }
    }
    issues
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn messages(group: &str, kind: &str, object: &Value) -> Vec<String> {
        check_metadata(group, kind, object)
            .into_iter()
            .map(|i| i.message)
            .collect()
    }

    #[test]
    fn dns_names() {
        assert!(is_dns1123_label("web-1"));
        assert!(is_dns1123_label("1web"));
        assert!(!is_dns1123_label("Web"));
        assert!(!is_dns1123_label("web-"));
        assert!(!is_dns1123_label("a.b"));
        assert!(!is_dns1123_label(&"a".repeat(64)));
        assert!(is_dns1123_subdomain("a.b-c.d", 253));
        assert!(!is_dns1123_subdomain("a..b", 253));
        assert!(!is_dns1123_subdomain("a_b", 253));
    }

    #[test]
    fn rules_per_kind() {
        let named = |n: &str| json!({"metadata": {"name": n}});
        assert!(messages("", "ConfigMap", &named("a.b")).is_empty());
        assert_eq!(
            messages("", "Service", &named("a.b"))[0],
            "invalid name \"a.b\": a Service name must be a DNS-1123 label: at most 63 lowercase \
             letters, digits and '-', starting and ending with a letter or digit"
        );
        assert_eq!(messages("apps", "StatefulSet", &named("a.b")).len(), 1);
        assert!(
            messages(
                "rbac.authorization.k8s.io",
                "ClusterRole",
                &named("system:x")
            )
            .is_empty()
        );
        assert_eq!(
            messages("rbac.authorization.k8s.io", "Role", &named("a/b")).len(),
            1
        );
        assert_eq!(
            messages("batch", "CronJob", &named(&"a".repeat(53))).len(),
            1
        );
        assert_eq!(messages("", "ConfigMap", &named("My_Config")).len(), 1);
    }

    #[test]
    fn name_or_generate_name() {
        assert_eq!(
            messages("", "Pod", &json!({"metadata": {}})),
            ["missing required field \"name\" (or generateName)"]
        );
        assert!(messages("", "Pod", &json!({"metadata": {"generateName": "p-"}})).is_empty());
        assert_eq!(messages("", "Pod", &json!({})).len(), 1);
    }

    #[test]
    fn crd_names_labels_and_namespaces() {
        let crd = json!({"metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"plural": "widget"}}});
        assert_eq!(
            messages("apiextensions.k8s.io", "CustomResourceDefinition", &crd).len(),
            1
        );
        let object = json!({"metadata": {"name": "a", "namespace": "Prod",
            "labels": {"app.kubernetes.io/name": "web app", "-x": "1", "ok": ""},
            "annotations": {"example.com/note": "any text at all"}}});
        let got = messages("", "ConfigMap", &object);
        assert_eq!(got.len(), 3, "{got:?}");
        assert!(got[0].starts_with("invalid namespace \"Prod\""));
    }
}
