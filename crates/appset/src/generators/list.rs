//! The `list` generator: one parameter set per element of `elements` (and of `elementsYaml`,
//! a YAML list in a string, usually produced by a template in a matrix).

use serde_json::Value;

use crate::params::{GeneratorError, Params};

/// The parameter sets of a `list` generator block. In legacy templates each element's values
/// are flattened to text (`{{cluster}}`, `{{values.region}}`); Go templates see them as written.
pub fn generate(spec: &Value, go_template: bool, at: &str) -> Result<Vec<Params>, GeneratorError> {
    let err = |m: String| GeneratorError::new(format!("{at}.list"), m);
    let mut elements: Vec<Value> = match spec.get("elements") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(other) => {
            return Err(err(format!(
                "elements must be a list of objects, not {}",
                kind_of(other)
            )));
        }
    };
    match spec.get("elementsYaml") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) if text.trim().is_empty() => {}
        Some(Value::String(text)) => {
            let parsed: Value = serde_saphyr::from_str(text)
                .map_err(|e| err(format!("elementsYaml is not YAML: {e}")))?;
            match parsed {
                Value::Array(items) => elements.extend(items),
                Value::Null => {}
                other => {
                    return Err(err(format!(
                        "elementsYaml must be a YAML list of objects, not {}",
                        kind_of(&other)
                    )));
                }
            }
        }
        Some(other) => {
            return Err(err(format!(
                "elementsYaml must be a string, not {}",
                kind_of(other)
            )));
        }
    }
    elements
        .into_iter()
        .enumerate()
        .map(|(i, element)| match element {
            Value::Object(map) if go_template => Ok(map),
            Value::Object(map) => Ok(flatten_legacy(&map)),
            other => Err(err(format!(
                "element {i} must be an object of parameters, not {}",
                kind_of(&other)
            ))),
        })
        .collect()
}

/// Legacy (`{{param}}`) parameters: nested objects flattened to `a.b`, every value as text.
pub fn flatten_legacy(map: &Params) -> Params {
    crate::selector::flatten(map)
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect()
}

/// A JSON value's kind, for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn elements_and_elements_yaml_both_count() {
        let spec = json!({
            "elements": [{"cluster": "dev", "values": {"region": "eu"}}],
            "elementsYaml": "- cluster: prod\n  replicas: 3\n"
        });
        let legacy = generate(&spec, false, "generators[0]").unwrap();
        assert_eq!(legacy.len(), 2);
        assert_eq!(legacy[0]["values.region"], "eu");
        assert_eq!(legacy[1]["replicas"], "3");
        let go = generate(&spec, true, "generators[0]").unwrap();
        assert_eq!(go[0]["values"]["region"], "eu");
        assert_eq!(go[1]["replicas"], 3);
    }

    #[test]
    fn malformed_input_is_an_error_not_an_empty_list() {
        let e = generate(&json!({"elements": "x"}), false, "generators[0]").unwrap_err();
        assert_eq!(e.generator, "generators[0].list");
        assert!(e.message.contains("elements must be a list"), "{e}");
        let e = generate(&json!({"elementsYaml": "a: ["}), true, "g").unwrap_err();
        assert!(e.message.contains("not YAML"), "{e}");
        let e = generate(&json!({"elementsYaml": "a: 1"}), true, "g").unwrap_err();
        assert!(e.message.contains("YAML list"), "{e}");
        let e = generate(&json!({"elements": [1]}), true, "g").unwrap_err();
        assert!(e.message.contains("element 0"), "{e}");
        assert!(generate(&json!({}), true, "g").unwrap().is_empty());
    }
}
