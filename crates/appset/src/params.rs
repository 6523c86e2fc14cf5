//! What generators produce: lists of parameter sets.

/// One parameter set: the names a template can use and their values. Legacy `{{param}}`
/// templates see the flattened form (`path.basename`); Go templates see the nested values.
pub type Params = serde_json::Map<String, serde_json::Value>;

/// A generator could not produce its parameters. The ApplicationSet controller then changes
/// nothing and shows this in a condition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{generator} generator: {message}")]
pub struct GeneratorError {
    /// Which generator, as the spec names it (`list`, `git`, `scmProvider`, ...), with its
    /// position when there are several (`generators[1].git`).
    pub generator: String,
    /// What went wrong and what to do about it.
    pub message: String,
}

impl GeneratorError {
    /// An error of `generator`.
    pub fn new(generator: impl Into<String>, message: impl Into<String>) -> Self {
        GeneratorError {
            generator: generator.into(),
            message: message.into(),
        }
    }
}
