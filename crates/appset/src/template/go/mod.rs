//! Go's `text/template`, as Argo CD runs it for `goTemplate: true`: a lexer and parser
//! ([`parse`]) and an evaluator ([`exec`]) over JSON data, with Go's rules for truth, printing,
//! comparison and missing keys.

mod exec;
mod lex;
mod parse;
pub(crate) mod value;

use super::{TemplateError, TemplateErrorKind};
use serde_json::Value;

/// What to do when a template reads a key the data lacks (`missingkey=`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissingKey {
    /// `missingkey=default` (or `invalid`, or `zero`, which are the same for parameter maps):
    /// the value is empty and prints as `<no value>`.
    #[default]
    Default,
    /// `missingkey=error`: rendering fails and names the key.
    Error,
}

/// The parsed `goTemplateOptions`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// `missingkey=`.
    pub missing_key: MissingKey,
}

impl Options {
    /// Reads `goTemplateOptions` as Go's `Template.Option` does; an unknown option is an error.
    pub fn parse(options: &[String]) -> Result<Options, TemplateError> {
        let mut out = Options::default();
        for opt in options {
            out.missing_key = match opt.as_str() {
                "missingkey=default" | "missingkey=invalid" | "missingkey=zero" => {
                    MissingKey::Default
                }
                "missingkey=error" => MissingKey::Error,
                other => {
                    return Err(TemplateError::new(
                        TemplateErrorKind::Option,
                        format!(
                            "unknown option {other:?}; Go templates take missingkey=default, missingkey=zero or missingkey=error"
                        ),
                    ));
                }
            };
        }
        Ok(out)
    }
}

/// Renders `text` as a Go template with `data` (the parameters as a JSON map) as `.`.
pub(crate) fn render(text: &str, data: &Value, options: &Options) -> Result<String, TemplateError> {
    if !text.contains("{{") {
        // No action: Go prints the text as it is.
        return Ok(text.to_string());
    }
    let tree = parse::parse(text, &super::funcs::exists)?;
    let mut exec = exec::Exec::new(text, &tree, options);
    exec.run(data)?;
    Ok(exec.out)
}
