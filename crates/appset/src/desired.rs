//! From an ApplicationSet to the Applications it should have: run the generators, render the
//! template once per parameter set, check the result. Shared by the controller and
//! `ferry appset preview`; it reads (cluster Secrets, repositories) but writes nothing.

use std::time::Duration;

use serde_json::Value;

use crate::generators::RemoteContext;
use crate::generators::generate::{GenerateContext, generate_all};
use crate::generators::git::RepoCheckouts;
use crate::params::Params;
use crate::template::{TemplateOptions, render_application, render_string};
use crate::types::{ApplicationSet, condition_reason};

/// Why an ApplicationSet gave no Applications this time. The controller then changes nothing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// A [`condition_reason`] constant.
    pub reason: &'static str,
    /// The cause, naming the ApplicationSet, the generator or field, and what to do.
    pub message: String,
}

/// The Applications an ApplicationSet should have.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    /// Full Application objects, in the order the generators gave them.
    pub applications: Vec<Value>,
    /// How many parameter sets the generators gave.
    pub parameter_sets: usize,
    /// The shortest `requeueAfterSeconds` a generator asked for.
    pub requeue_after: Option<Duration>,
}

/// Runs the generators of `set` and renders its template for each parameter set.
pub async fn desired_applications(
    set: &ApplicationSet,
    remote: RemoteContext<'_>,
    repos: &dyn RepoCheckouts,
) -> Result<Desired, Failure> {
    let name = set.name();
    let opts = TemplateOptions {
        go_template: set.spec.go_template,
        go_template_options: set.spec.go_template_options.clone(),
    };
    let render = |text: &str, params: &Params| -> Result<String, String> {
        render_string(text, params, &opts).map_err(|e| e.to_string())
    };
    let ctx = GenerateContext {
        remote,
        repos,
        go_template: set.spec.go_template,
        render: &render,
    };
    if set.spec.generators.is_empty() {
        return Err(Failure {
            reason: condition_reason::GENERATION_ERROR,
            message: format!(
                "ApplicationSet {name}: spec.generators is empty: add a generator; nothing was created, updated or deleted"
            ),
        });
    }
    let generation = generate_all(&set.spec.generators, &ctx)
        .await
        .map_err(|e| Failure {
            reason: condition_reason::GENERATION_ERROR,
            message: format!("ApplicationSet {name}: {e}; nothing was created, updated or deleted"),
        })?;
    let mut applications = Vec::with_capacity(generation.sets.len());
    for (i, g) in generation.sets.iter().enumerate() {
        let template = match &g.template {
            Some(over) => {
                let mut t = set.spec.template.clone();
                merge_template(&mut t, over);
                t
            }
            None => set.spec.template.clone(),
        };
        let rendered = render_application(
            &template,
            set.spec.template_patch.as_deref(),
            &g.params,
            &opts,
        )
        .map_err(|e| Failure {
            reason: condition_reason::RENDER_ERROR,
            message: format!(
                "ApplicationSet {name}: rendering the template with parameter set {i} ({}): {e}; nothing was created, updated or deleted",
                summarize(&g.params)
            ),
        })?;
        let app = crate::plan::desired_application(set, &rendered).map_err(|e| Failure {
            reason: condition_reason::VALIDATION_ERROR,
            message: format!(
                "ApplicationSet {name}: parameter set {i} ({}): {e}; nothing was created, updated or deleted",
                summarize(&g.params)
            ),
        })?;
        applications.push(app);
    }
    let dups = crate::plan::duplicate_names(&applications);
    if !dups.is_empty() {
        return Err(Failure {
            reason: condition_reason::VALIDATION_ERROR,
            message: format!(
                "ApplicationSet {name}: more than one parameter set gives the Application name {}: make the template's metadata.name unique per parameter set; nothing was created, updated or deleted",
                dups.join(", ")
            ),
        });
    }
    Ok(Desired {
        applications,
        parameter_sets: generation.sets.len(),
        requeue_after: generation.requeue_after,
    })
}

/// A generator block's `template` over the spec's: maps merged key by key, the rest replaced
/// (empty strings and empty maps of the block leave the spec's value, as in Argo CD).
fn merge_template(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                let empty = match v {
                    Value::String(s) => s.is_empty(),
                    Value::Object(m) => m.is_empty(),
                    Value::Null => true,
                    _ => false,
                };
                match b.get_mut(k) {
                    Some(existing) if empty => {
                        let _ = existing;
                    }
                    Some(existing) => merge_template(existing, v),
                    None if empty => {}
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

/// A short description of a parameter set for messages (first few flattened pairs).
fn summarize(params: &Params) -> String {
    let flat = crate::selector::flatten(params);
    let mut parts: Vec<String> = flat
        .iter()
        .take(4)
        .map(|(k, v)| format!("{k}={v:.40}"))
        .collect();
    if flat.len() > 4 {
        parts.push("...".into());
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_templates_override_the_spec_template() {
        let mut base = json!({"metadata": {"name": "{{x}}"}, "spec": {"project": "default", "source": {"path": "a", "repoURL": "r"}}});
        merge_template(
            &mut base,
            &json!({"metadata": {}, "spec": {"project": "", "source": {"path": "b"}}}),
        );
        assert_eq!(base["metadata"]["name"], "{{x}}");
        assert_eq!(base["spec"]["project"], "default");
        assert_eq!(base["spec"]["source"], json!({"path": "b", "repoURL": "r"}));
    }
}
