//! The rules an Application's spec must follow before anything can be fetched or rendered, as
//! Argo CD checks them. One home for the three places that need them: the controller (an
//! `InvalidSpecError` condition), `ferry validate` (a finding at the field) and `ferry preview`.

use std::fmt;

use super::ApplicationSpec;

/// The part of the spec a rule is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecField {
    /// The spec as a whole (no source at all).
    Spec,
    /// `spec.source`.
    Source,
    /// `spec.sources[i]`.
    Sources(usize),
    /// `spec.destination`.
    Destination,
}

impl SpecField {
    /// The field's path, as users write it (`spec.sources[1]`).
    pub fn path(&self) -> String {
        match self {
            SpecField::Spec => "spec".into(),
            SpecField::Source => "spec.source".into(),
            SpecField::Sources(i) => format!("spec.sources[{i}]"),
            SpecField::Destination => "spec.destination".into(),
        }
    }
}

/// A broken rule: where, and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecProblem {
    /// Where.
    pub field: SpecField,
    /// What is wrong and what to do, without the path.
    pub message: String,
}

impl fmt::Display for SpecProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field.path(), self.message)
    }
}

/// A field's value, when it is set to something other than white space.
fn set(value: &Option<String>) -> Option<&str> {
    value.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Every rule `spec` breaks: it needs a source (`spec.source`, or `spec.sources` with at least
/// one entry), every source a `repoURL`, and a destination with `server` or `name`, not both.
pub fn spec_problems(spec: &ApplicationSpec) -> Vec<SpecProblem> {
    let mut problems = Vec::new();
    let listed = spec.sources.as_ref().filter(|s| !s.is_empty());
    let sources: Vec<(SpecField, _)> = match (listed, &spec.source) {
        (Some(list), _) => list
            .iter()
            .enumerate()
            .map(|(i, s)| (SpecField::Sources(i), s))
            .collect(),
        (None, Some(s)) => vec![(SpecField::Source, s)],
        (None, None) => {
            problems.push(SpecProblem {
                field: SpecField::Spec,
                message: "missing source: set spec.source, or spec.sources with at least one entry"
                    .into(),
            });
            Vec::new()
        }
    };
    for (field, source) in sources {
        if source.repo_url.trim().is_empty() {
            problems.push(SpecProblem {
                field,
                message: "missing required field \"repoURL\"".into(),
            });
        }
    }
    match (set(&spec.destination.server), set(&spec.destination.name)) {
        (None, None) => problems.push(SpecProblem {
            field: SpecField::Destination,
            message: "names no cluster: set server (an API server URL, e.g. \
                      https://kubernetes.default.svc) or name (a cluster name)"
                .into(),
        }),
        // As Argo CD: one field or the other. Checking one and connecting to the other would
        // let an app past its project's rules.
        (Some(server), Some(name)) => problems.push(SpecProblem {
            field: SpecField::Destination,
            message: format!("sets both server ({server}) and name ({name}): keep one"),
        }),
        _ => {}
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn problems(spec: serde_json::Value) -> Vec<String> {
        let spec: ApplicationSpec = serde_json::from_value(spec).expect("a spec");
        spec_problems(&spec)
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_spec_needs_a_source_with_a_url_and_one_destination() {
        assert!(
            problems(json!({"source": {"repoURL": "https://g/r.git"},
                "destination": {"server": "https://kubernetes.default.svc"}}))
            .is_empty()
        );
        assert_eq!(
            problems(json!({"sources": [{"repoURL": "r"}, {"path": "p"}],
                "destination": {"name": "in-cluster"}})),
            ["spec.sources[1]: missing required field \"repoURL\""]
        );
        let bare = problems(json!({"project": "default"}));
        assert_eq!(bare.len(), 2, "{bare:?}");
        assert!(bare[0].starts_with("spec: missing source"), "{bare:?}");
        assert!(
            bare[1].starts_with("spec.destination: names no cluster"),
            "{bare:?}"
        );
        assert_eq!(
            problems(json!({"source": {"repoURL": "r"},
                "destination": {"server": "s", "name": "n"}})),
            ["spec.destination: sets both server (s) and name (n): keep one"]
        );
        // An empty list of sources falls back to spec.source, as Argo CD reads it.
        assert!(
            problems(json!({"sources": [], "source": {"repoURL": "r"},
                "destination": {"server": "s"}}))
            .is_empty()
        );
    }
}
