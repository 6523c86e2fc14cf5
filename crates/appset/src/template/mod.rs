//! Rendering an ApplicationSet's `template` for one parameter set, as Argo CD does.
//!
//! Two template languages, chosen by the ApplicationSet's `goTemplate`:
//! - the legacy form (`goTemplate: false`, the default): `{{name}}` (spaces inside the braces
//!   allowed) is replaced by the parameter of that flattened name (`path.basename`); an unknown
//!   name is left as it is written (details in `legacy.rs`);
//! - Go's `text/template` (`goTemplate: true`) with the nested parameters as `.`, the Sprig
//!   functions Argo CD offers and `goTemplateOptions` (`missingkey=error`). ferry has its own
//!   interpreter of that language ([`go`]); where it differs from Go is written in
//!   docs/applicationsets.md.
//!
//! Each string in the template (values and map keys, at any depth) is rendered on its own;
//! numbers, booleans and nulls are kept, and so is a source's `helm.valuesObject`, which Argo CD
//! does not render either. `templatePatch` is rendered as one string with the same
//! parameters, read as YAML and merged into the rendered Application (maps merged key by key,
//! lists and scalars replaced, `null` removes a key).

mod funcs;
pub mod go;
mod legacy;
mod patch;
mod printf;
mod sprig;
mod yaml;

use crate::params::Params;
use serde_json::Value;

/// How to render: the ApplicationSet's `goTemplate` and `goTemplateOptions`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateOptions {
    /// `goTemplate: true`: Go's text/template instead of the legacy `{{param}}` form.
    pub go_template: bool,
    /// `goTemplateOptions`, as Go's `Template.Option` takes them: `missingkey=default`,
    /// `missingkey=invalid`, `missingkey=zero`, `missingkey=error`.
    pub go_template_options: Vec<String>,
}

/// What went wrong, by kind, so callers and tests can tell the causes apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateErrorKind {
    /// The text is not a valid template (an unclosed action, a bad token, ...).
    Parse,
    /// The template calls a function that does not exist (or that Argo CD removes, like `env`).
    UnknownFunction,
    /// `missingkey=error` and the template reads a key the parameters lack.
    MissingKey,
    /// Running the template failed: a function returned an error (`fail`, `required`, a bad
    /// argument), a wrong type, an index out of range.
    Exec,
    /// `goTemplateOptions` holds an option Go does not know.
    Option,
    /// `templatePatch` did not render to a YAML map, or the result is not an Application.
    Patch,
}

/// A template could not be rendered. Names the field of the template (`spec.source.path`),
/// where in that field's text (when known) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    /// The field in the template, as a path: `metadata.name`, `spec.sources[1].path`,
    /// `metadata.labels["app.kubernetes.io/name"]`, `templatePatch`. Empty for
    /// [`render_string`] (its caller knows the field; see [`TemplateError::in_field`]).
    pub field: String,
    /// The kind of failure.
    pub kind: TemplateErrorKind,
    /// The cause in words, with the position in the field's text (`1:14`, line and column)
    /// where it is known.
    pub message: String,
}

impl TemplateError {
    pub(crate) fn new(kind: TemplateErrorKind, message: impl Into<String>) -> Self {
        TemplateError {
            field: String::new(),
            kind,
            message: message.into(),
        }
    }

    /// The same error, said of `field` (which prefixes a field already named:
    /// `generators[0].clusters.values` + `env` → `generators[0].clusters.values.env`).
    pub fn in_field(mut self, field: &str) -> Self {
        self.field = match (field.is_empty(), self.field.is_empty()) {
            (true, _) => self.field,
            (false, true) => field.to_string(),
            (false, false) if self.field.starts_with('[') => format!("{field}{}", self.field),
            (false, false) => format!("{field}.{}", self.field),
        };
        self
    }
}

impl std::fmt::Display for TemplateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.field.is_empty() {
            write!(f, "template: {}", self.message)
        } else {
            write!(f, "template field {}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for TemplateError {}

/// Renders an ApplicationSet's `template` (the Application's `metadata` and `spec` as JSON) for
/// one parameter set, then applies `templatePatch` (a string template rendered with the same
/// parameters, read as YAML and merged into the result) when given.
///
/// As in Argo CD, an empty parameter set leaves the template as it is, and `templatePatch`
/// needs `goTemplate: true`.
pub fn render_application(
    template: &Value,
    template_patch: Option<&str>,
    params: &Params,
    opts: &TemplateOptions,
) -> Result<Value, TemplateError> {
    let renderer = Renderer::new(params, opts)?;
    let mut rendered = if params.is_empty() {
        template.clone()
    } else {
        let mut path = String::new();
        renderer.render_value(template, &mut path)?
    };
    if let Some(patch_text) = template_patch.filter(|p| !p.trim().is_empty()) {
        if !opts.go_template {
            return Err(TemplateError::new(
                TemplateErrorKind::Patch,
                "templatePatch works only with goTemplate: true (as in Argo CD); set goTemplate: true or move the patch into the template",
            )
            .in_field("templatePatch"));
        }
        let text = renderer
            .render_text(patch_text)
            .map_err(|e| e.in_field("templatePatch"))?;
        let patch = yaml::parse(&text).map_err(|e| {
            TemplateError::new(
                TemplateErrorKind::Patch,
                format!("the rendered patch is not YAML: {e}; rendered text:\n{text}"),
            )
            .in_field("templatePatch")
        })?;
        patch::merge_patch(&mut rendered, patch).map_err(|m| {
            TemplateError::new(TemplateErrorKind::Patch, m).in_field("templatePatch")
        })?;
    }
    Ok(rendered)
}

/// Renders one string (for generator fields that are templated, e.g. a cluster generator's
/// `values`). The error names no field: add it with [`TemplateError::in_field`].
pub fn render_string(
    text: &str,
    params: &Params,
    opts: &TemplateOptions,
) -> Result<String, TemplateError> {
    Renderer::new(params, opts)?.render_text(text)
}

/// One parameter set with its options, ready to render many strings.
struct Renderer<'a> {
    params: &'a Params,
    /// For Go templates: the options, and the parameters as one JSON map (`.`).
    go: Option<(go::Options, Value)>,
}

impl<'a> Renderer<'a> {
    fn new(params: &'a Params, opts: &TemplateOptions) -> Result<Self, TemplateError> {
        let go = if opts.go_template {
            let options = go::Options::parse(&opts.go_template_options)
                .map_err(|e| e.in_field("goTemplateOptions"))?;
            Some((options, Value::Object(params.clone())))
        } else {
            None
        };
        Ok(Renderer { params, go })
    }

    fn render_text(&self, text: &str) -> Result<String, TemplateError> {
        match &self.go {
            None => legacy::render(text, self.params),
            Some((options, data)) => go::render(text, data, options),
        }
    }

    /// Renders every string of `value`, `path` being its field path (kept for errors).
    fn render_value(&self, value: &Value, path: &mut String) -> Result<Value, TemplateError> {
        if is_helm_values_object(path) {
            return Ok(value.clone());
        }
        Ok(match value {
            Value::String(s) => Value::String(self.render_text(s).map_err(|e| TemplateError {
                field: path.clone(),
                ..e
            })?),
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    out.push(self.render_value(item, path)?);
                    path.truncate(len);
                }
                Value::Array(out)
            }
            Value::Object(map) => {
                let mut out = serde_json::Map::with_capacity(map.len());
                for (key, item) in map {
                    let len = path.len();
                    push_key(path, key);
                    let new_key = self.render_text(key).map_err(|e| TemplateError {
                        field: format!("{path} (the key)"),
                        ..e
                    })?;
                    out.insert(new_key, self.render_value(item, path)?);
                    path.truncate(len);
                }
                Value::Object(out)
            }
            other => other.clone(),
        })
    }
}

/// Whether `path` is a source's `helm.valuesObject`: Argo CD keeps it as raw JSON and never
/// renders the strings in it (they are often templates meant for the chart itself).
fn is_helm_values_object(path: &str) -> bool {
    let Some(source) = path.strip_suffix(".helm.valuesObject") else {
        return false;
    };
    source == "spec.source"
        || source
            .strip_prefix("spec.sources[")
            .and_then(|rest| rest.strip_suffix(']'))
            .is_some_and(|i| i.parse::<usize>().is_ok())
}

/// Appends `key` to a field path: `.name`, or `["app.kubernetes.io/name"]` for keys that are
/// not plain words.
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        if !path.is_empty() {
            path.push('.');
        }
        path.push_str(key);
    } else {
        path.push_str(&format!("[{}]", Value::String(key.to_string())));
    }
}

#[cfg(test)]
mod tests;
