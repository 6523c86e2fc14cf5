//! Checking a JSON value against the OpenAPI v3 schemas Kubernetes publishes.
//!
//! [`SchemaSet`] holds the bundled `components.schemas` of one Kubernetes version (indexed by
//! `x-kubernetes-group-version-kind`) and the `openAPIV3Schema`s of CustomResourceDefinitions.
//! [`SchemaSet::check`] walks an object along its schema and returns every [`Issue`].
//!
//! What is checked, and how the two kinds of schema differ:
//!
//! | rule | built-in kinds | custom resources (CRD schemas) |
//! | --- | --- | --- |
//! | `type` (`string`, `integer`, `number`, `boolean`, `array`, `object`) | yes | yes |
//! | `null` | always accepted (the API server decodes it as the zero value) | only with `nullable: true` |
//! | `x-kubernetes-int-or-string`, `oneOf`/`anyOf` of types (IntOrString, Quantity) | yes | yes |
//! | `required`, `enum`, `format: int32` range | yes | yes |
//! | unknown fields | reported where the schema lists `properties`; an `object` without `properties` or `additionalProperties` (RawExtension, FieldsV1) is free-form | reported unless `x-kubernetes-preserve-unknown-fields`; an `object` without `properties` accepts nothing (the API server would prune it) |
//! | `$ref: #/components/schemas/…`, `allOf` | followed | followed |
//!
//! The root `metadata` of every object is checked against ObjectMeta, whatever its schema says
//! (CRDs declare it as a bare `object`, as the API server expects).

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_json::{Map, Value};

/// The schema of ObjectMeta in the bundled documents.
pub(crate) const OBJECT_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";
const REF_PREFIX: &str = "#/components/schemas/";

/// One step of a path into an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A mapping key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// Writes `segments` the way `kubectl explain` and error messages do:
/// `.spec.containers[0].name`, `.metadata.labels["app.kubernetes.io/name"]`.
pub(crate) fn display_path(segments: &[Segment]) -> String {
    let mut out = String::new();
    for segment in segments {
        match segment {
            Segment::Key(k)
                if !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') =>
            {
                out.push('.');
                out.push_str(k);
            }
            Segment::Key(k) => {
                let _ = write!(out, "[{}]", Value::String(k.clone()));
            }
            Segment::Index(i) => {
                let _ = write!(out, "[{i}]");
            }
        }
    }
    out
}

/// Which part of the source an [`Issue`] points at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The key of the last path segment (an unknown field).
    Key,
    /// The value at the path (a wrong type; for a missing field, the mapping that lacks it).
    Value,
}

/// One problem in an object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Issue {
    /// Where in the object.
    pub(crate) path: Vec<Segment>,
    /// What in the source to point at.
    pub(crate) target: Target,
    /// What is wrong, saying what was expected.
    pub(crate) message: String,
}

impl Issue {
    pub(crate) fn new(path: &[Segment], target: Target, message: impl Into<String>) -> Self {
        Self {
            path: path.to_vec(),
            target,
            message: message.into(),
        }
    }
}

/// A group, version and kind.
pub(crate) type Gvk = (String, String, String);

/// Where an object's schema comes from.
#[derive(Clone, Debug)]
pub(crate) enum Source {
    /// A bundled schema, by name.
    Builtin(String),
    /// A CRD's `openAPIV3Schema` (or ferry's own schema of an Argo CD kind).
    Custom(Value),
}

/// The schemas of one Kubernetes version plus the custom resources known so far.
#[derive(Debug, Default)]
pub(crate) struct SchemaSet {
    components: Map<String, Value>,
    by_gvk: HashMap<Gvk, Source>,
}

impl SchemaSet {
    /// Reads a bundled schema document (`{"schemas": {NAME: SCHEMA}}`, see
    /// `scripts/update-schemas.sh`).
    pub(crate) fn from_bundle(text: &str) -> Result<Self, String> {
        let mut doc: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let Some(Value::Object(components)) = doc.get_mut("schemas").map(Value::take) else {
            return Err("the document has no `schemas` object".into());
        };
        let mut by_gvk = HashMap::new();
        for (name, schema) in &components {
            let Some(Value::Array(gvks)) = schema.get("x-kubernetes-group-version-kind") else {
                continue;
            };
            // Schemas that many group-versions share (DeleteOptions, WatchEvent) are not kinds
            // anyone writes into a manifest; the kind's own schema wins where both list it.
            for gvk in gvks {
                let field = |f: &str| gvk.get(f).and_then(Value::as_str).unwrap_or_default();
                let key = (
                    field("group").to_owned(),
                    field("version").to_owned(),
                    field("kind").to_owned(),
                );
                let own = gvks.len() == 1;
                if own || !by_gvk.contains_key(&key) {
                    by_gvk.insert(key, Source::Builtin(name.clone()));
                }
            }
        }
        Ok(Self { components, by_gvk })
    }

    /// Adds (or replaces) the schema of a custom resource.
    pub(crate) fn add_custom(&mut self, gvk: Gvk, schema: Value) {
        self.by_gvk.insert(gvk, Source::Custom(schema));
    }

    /// The schema source of `gvk`.
    pub(crate) fn lookup(&self, gvk: &Gvk) -> Option<&Source> {
        self.by_gvk.get(gvk)
    }

    /// The versions with a schema for `group` and `kind`, sorted.
    pub(crate) fn versions_of(&self, group: &str, kind: &str) -> Vec<String> {
        let mut versions: Vec<String> = self
            .by_gvk
            .keys()
            .filter(|(g, _, k)| g == group && k == kind)
            .map(|(_, v, _)| v.clone())
            .collect();
        versions.sort();
        versions
    }

    /// Checks `object` against the schema of `gvk` (which must exist).
    pub(crate) fn check(&self, gvk: &Gvk, object: &Value) -> Vec<Issue> {
        let Some(source) = self.by_gvk.get(gvk) else {
            return Vec::new();
        };
        let (schema, custom) = match source {
            Source::Builtin(name) => match self.components.get(name) {
                Some(schema) => (schema, false),
                None => return Vec::new(),
            },
            Source::Custom(schema) => (schema, true),
        };
        let mut walk = Walk {
            set: self,
            custom,
            path: Vec::new(),
            issues: Vec::new(),
        };
        walk.check_root(schema, object);
        walk.issues
    }

    fn component(&self, reference: &str) -> Option<&Value> {
        reference
            .strip_prefix(REF_PREFIX)
            .and_then(|name| self.components.get(name))
    }
}

struct Walk<'a> {
    set: &'a SchemaSet,
    /// Custom resource semantics (see the module docs).
    custom: bool,
    path: Vec<Segment>,
    issues: Vec<Issue>,
}

fn flag(schema: &Value, name: &str) -> bool {
    schema.get(name).and_then(Value::as_bool) == Some(true)
}

/// `integer 3`, `string "3"`, `boolean true`, `null`, `array`, `object`.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) if n.is_f64() => format!("number {n}"),
        Value::Number(n) => format!("integer {n}"),
        Value::String(s) => {
            let mut shown: String = s.chars().take(60).collect();
            if shown.len() < s.len() {
                shown.push('…');
            }
            format!("string {}", Value::String(shown))
        }
        Value::Array(_) => "array".into(),
        Value::Object(_) => "object".into(),
    }
}

fn has_type(value: &Value, ty: &str) -> bool {
    match ty {
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => true,
    }
}

/// The plain type names of a `oneOf`/`anyOf` whose alternatives are only `{type: T}`.
fn type_alternatives(alternatives: &[Value]) -> Option<Vec<&str>> {
    alternatives
        .iter()
        .map(|a| match a.as_object() {
            Some(m) if m.len() == 1 => m.get("type").and_then(Value::as_str),
            _ => None,
        })
        .collect()
}

impl<'a> Walk<'a> {
    fn issue(&mut self, target: Target, message: impl Into<String>) {
        self.issues.push(Issue::new(&self.path, target, message));
    }

    fn check_root(&mut self, schema: &'a Value, object: &Value) {
        let schema = self.resolve(schema);
        let Value::Object(fields) = object else {
            self.issue(
                Target::Value,
                format!("expected object, got {}", describe(object)),
            );
            return;
        };
        // metadata is ObjectMeta for every kind; the rest follows the kind's schema.
        if let Some(meta) = fields.get("metadata")
            && let Some(meta_schema) = self.set.components.get(OBJECT_META)
        {
            let custom = std::mem::replace(&mut self.custom, false);
            self.path.push(Segment::Key("metadata".into()));
            self.check(meta_schema, meta);
            self.path.pop();
            self.custom = custom;
        }
        // The API server accepts these at the root whatever the schema lists.
        self.check_object(schema, fields, &["metadata", "apiVersion", "kind"]);
    }

    /// Follows `$ref` (its siblings are ignored, as OpenAPI 3.0 says).
    fn resolve(&self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..32 {
            match schema.get("$ref").and_then(Value::as_str) {
                Some(r) => match self.set.component(r) {
                    Some(target) => schema = target,
                    None => return &Value::Null,
                },
                None => break,
            }
        }
        schema
    }

    fn check(&mut self, schema: &'a Value, value: &Value) {
        let schema = self.resolve(schema);
        if value.is_null() {
            if !self.custom || flag(schema, "nullable") {
                return;
            }
            if let Some(ty) = schema.get("type").and_then(Value::as_str) {
                self.issue(Target::Value, format!("expected {ty}, got null"));
                return;
            }
        }
        if let Some(Value::Array(parts)) = schema.get("allOf") {
            for part in parts {
                self.check(part, value);
            }
        }
        if flag(schema, "x-kubernetes-int-or-string")
            || schema.get("format").and_then(Value::as_str) == Some("int-or-string")
        {
            if !(has_type(value, "integer") || value.is_string()) {
                self.issue(
                    Target::Value,
                    format!("expected integer or string, got {}", describe(value)),
                );
            }
            return;
        }
        for key in ["oneOf", "anyOf"] {
            if let Some(Value::Array(alternatives)) = schema.get(key)
                && !self.check_alternatives(alternatives, value)
            {
                return;
            }
        }
        let ty = schema.get("type").and_then(Value::as_str);
        if let Some(ty) = ty
            && !has_type(value, ty)
        {
            let got = describe(value);
            let message = if ty == "integer" && value.is_number() {
                format!("expected integer, got {got} (a whole number without a fraction)")
            } else {
                format!("expected {ty}, got {got}")
            };
            self.issue(Target::Value, message);
            return;
        }
        if let Some(Value::Array(allowed)) = schema.get("enum")
            && !allowed.contains(value)
        {
            let list: Vec<String> = allowed.iter().map(Value::to_string).collect();
            self.issue(
                Target::Value,
                format!(
                    "expected one of {}, got {}",
                    list.join(", "),
                    describe(value)
                ),
            );
        }
        match value {
            Value::Number(n)
                if schema.get("format").and_then(Value::as_str) == Some("int32")
                    && n.as_i64().is_none_or(|i| i32::try_from(i).is_err()) =>
            {
                self.issue(
                    Target::Value,
                    format!("expected a 32-bit integer, got {}", describe(value)),
                );
            }
            Value::Object(fields)
                if ty == Some("object")
                    || schema.get("properties").is_some()
                    || schema.get("additionalProperties").is_some() =>
            {
                self.check_object(schema, fields, &[]);
            }
            Value::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.path.push(Segment::Index(i));
                        self.check(item_schema, item);
                        self.path.pop();
                    }
                }
            }
            _ => {}
        }
    }

    /// `oneOf`/`anyOf`: the value must match one alternative. Returns whether to go on with the
    /// schema's other keywords.
    fn check_alternatives(&mut self, alternatives: &'a [Value], value: &Value) -> bool {
        if let Some(types) = type_alternatives(alternatives) {
            if types.iter().any(|t| has_type(value, t)) {
                return true;
            }
            self.issue(
                Target::Value,
                format!("expected {}, got {}", types.join(" or "), describe(value)),
            );
            return false;
        }
        let mut best: Option<Vec<Issue>> = None;
        for alternative in alternatives {
            let mut walk = Walk {
                set: self.set,
                custom: self.custom,
                path: self.path.clone(),
                issues: Vec::new(),
            };
            walk.check(alternative, value);
            if walk.issues.is_empty() {
                return true;
            }
            if best.as_ref().is_none_or(|b| walk.issues.len() < b.len()) {
                best = Some(walk.issues);
            }
        }
        self.issues.extend(best.unwrap_or_default());
        false
    }

    fn check_object(&mut self, schema: &'a Value, fields: &Map<String, Value>, skip: &[&str]) {
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !fields.contains_key(name) && !skip.contains(&name) {
                    self.issue(
                        Target::Value,
                        format!("missing required field {}", Value::String(name.into())),
                    );
                }
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        let preserve = flag(schema, "x-kubernetes-preserve-unknown-fields");
        let embedded = flag(schema, "x-kubernetes-embedded-resource");
        let free_form = !self.custom && properties.is_none() && additional.is_none();
        for (key, value) in fields {
            if skip.contains(&key.as_str()) {
                continue;
            }
            self.path.push(Segment::Key(key.clone()));
            if let Some(property) = properties.and_then(|p| p.get(key)) {
                self.check(property, value);
            } else if embedded && key == "metadata" {
                if let Some(meta) = self.set.components.get(OBJECT_META) {
                    let custom = std::mem::replace(&mut self.custom, false);
                    self.check(meta, value);
                    self.custom = custom;
                }
            } else if embedded && (key == "apiVersion" || key == "kind") {
                if !value.is_string() {
                    self.issue(
                        Target::Value,
                        format!("expected string, got {}", describe(value)),
                    );
                }
            } else {
                match additional {
                    Some(Value::Object(_)) => {
                        let additional = additional.unwrap_or(&Value::Null);
                        self.check(additional, value);
                    }
                    Some(Value::Bool(true)) => {}
                    _ if preserve || free_form => {}
                    _ => {
                        let hint = properties
                            .and_then(|p| suggest(key, p.keys().map(String::as_str)))
                            .map(|s| format!(" (did you mean {}?)", Value::String(s.into())))
                            .unwrap_or_default();
                        self.issue(
                            Target::Key,
                            format!("unknown field {}{hint}", Value::String(key.clone())),
                        );
                    }
                }
            }
            self.path.pop();
        }
    }
}

/// The known name closest to `unknown` (same letters in another case, or at most two edits
/// away for names of five letters or more).
fn suggest<'n>(unknown: &str, known: impl Iterator<Item = &'n str>) -> Option<&'n str> {
    let lower = unknown.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for name in known {
        let distance = if name.to_ascii_lowercase() == lower {
            0
        } else {
            edit_distance(&lower, &name.to_ascii_lowercase())
        };
        let limit = if unknown.len() >= 5 { 2 } else { 1 };
        if distance <= limit && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, name));
        }
    }
    best.map(|(_, name)| name)
}

fn edit_distance(a: &str, b: &str) -> usize {
    // Optimal string alignment: insertions, deletions, substitutions and swaps of neighbours.
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set() -> SchemaSet {
        let bundle = json!({"schemas": {
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "labels": {"type": "object", "additionalProperties": {"type": "string"}}}
            },
            "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"format": "int-or-string", "oneOf": [{"type": "integer"}, {"type": "string"}]},
            "x.Thing": {
                "type": "object",
                "required": ["spec"],
                "x-kubernetes-group-version-kind": [{"group": "x", "version": "v1", "kind": "Thing"}],
                "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}]},
                    "spec": {"allOf": [{"$ref": "#/components/schemas/x.Spec"}], "default": {}}
                }
            },
            "x.Spec": {
                "type": "object",
                "required": ["name"],
                "properties": {
                    "name": {"type": "string"},
                    "replicas": {"type": "integer", "format": "int32"},
                    "port": {"allOf": [{"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString"}]},
                    "mode": {"type": "string", "enum": ["A", "B"]},
                    "raw": {"type": "object"},
                    "items": {"type": "array", "items": {"type": "string"}}
                }
            }
        }});
        SchemaSet::from_bundle(&bundle.to_string()).unwrap()
    }

    fn gvk() -> Gvk {
        ("x".into(), "v1".into(), "Thing".into())
    }

    fn messages(issues: &[Issue]) -> Vec<String> {
        let mut out: Vec<String> = issues
            .iter()
            .map(|i| format!("{}: {}", display_path(&i.path), i.message))
            .collect();
        out.sort();
        out
    }

    #[test]
    fn reports_types_unknown_fields_required_and_enums() {
        let object = json!({
            "apiVersion": "x/v1", "kind": "Thing",
            "metadata": {"name": "a", "labels": {"app.kubernetes.io/name": 1}, "nmae": "x"},
            "spec": {"replicas": "3", "port": true, "mode": "C", "raw": {"any": 1},
                     "items": ["a", 2], "replica": 1}
        });
        let got = messages(&set().check(&gvk(), &object));
        assert_eq!(
            got,
            [
                r#".metadata.labels["app.kubernetes.io/name"]: expected string, got integer 1"#,
                r#".metadata.nmae: unknown field "nmae" (did you mean "name"?)"#,
                r#".spec.items[1]: expected string, got integer 2"#,
                r#".spec.mode: expected one of "A", "B", got string "C""#,
                r#".spec.port: expected integer or string, got boolean true"#,
                r#".spec.replica: unknown field "replica" (did you mean "replicas"?)"#,
                r#".spec.replicas: expected integer, got string "3""#,
                r#".spec: missing required field "name""#,
            ]
        );
    }

    #[test]
    fn custom_schemas_are_strict_about_null_and_bare_objects() {
        let mut set = set();
        let crd_gvk = ("x".into(), "v1".into(), "Widget".into());
        set.add_custom(
            crd_gvk.clone(),
            json!({"type": "object", "properties": {
                "spec": {"type": "object", "properties": {
                    "size": {"type": "integer"},
                    "opt": {"type": "string", "nullable": true},
                    "bare": {"type": "object"},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    "port": {"x-kubernetes-int-or-string": true}
                }}
            }}),
        );
        let object = json!({"apiVersion": "x/v1", "kind": "Widget", "metadata": {"name": "w"},
            "spec": {"size": null, "opt": null, "bare": {"a": 1}, "free": {"b": {"c": 1}}, "port": "80"}});
        assert_eq!(
            messages(&set.check(&crd_gvk, &object)),
            [
                r#".spec.bare.a: unknown field "a""#,
                ".spec.size: expected integer, got null"
            ]
        );
        assert!(matches!(set.lookup(&crd_gvk), Some(Source::Custom(_))));
    }

    #[test]
    fn int32_range_and_whole_numbers() {
        let object = json!({"spec": {"name": "n", "replicas": 3_000_000_000u64}});
        assert_eq!(
            messages(&set().check(&gvk(), &object)),
            [".spec.replicas: expected a 32-bit integer, got integer 3000000000"]
        );
        let object = json!({"spec": {"name": "n", "replicas": 1.5}});
        assert_eq!(
            messages(&set().check(&gvk(), &object)),
            [
                ".spec.replicas: expected integer, got number 1.5 (a whole number without a fraction)"
            ]
        );
    }

    #[test]
    fn paths_and_suggestions() {
        let path = [
            Segment::Key("spec".into()),
            Segment::Key("containers".into()),
            Segment::Index(0),
            Segment::Key("a/b".into()),
        ];
        assert_eq!(display_path(&path), r#".spec.containers[0]["a/b"]"#);
        assert_eq!(
            suggest("Replicas", ["replicas", "selector"].into_iter()),
            Some("replicas")
        );
        assert_eq!(suggest("zzz", ["replicas"].into_iter()), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("nmae", "name"), 1);
    }
}
