//! Merging a rendered `templatePatch` into the rendered Application. Argo CD uses a strategic
//! merge patch on its Application type, which declares no list merge keys, so it behaves as a
//! JSON merge patch (RFC 7386): maps merge key by key, `null` removes a key, anything else
//! (lists included) replaces.

use serde_json::Value;

/// Merges `patch` into `target`. The patch must be a map (or empty).
pub(crate) fn merge_patch(target: &mut Value, patch: Value) -> Result<(), String> {
    match patch {
        Value::Null => Ok(()),
        Value::Object(_) => {
            merge(target, patch);
            Ok(())
        }
        other => Err(format!(
            "the rendered patch must be a YAML map of Application fields (metadata, spec), not {}",
            kind(&other)
        )),
    }
}

fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(entries) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            let map = target.as_object_mut().expect("made an object above");
            for (key, value) in entries {
                if value.is_null() {
                    map.remove(&key);
                } else {
                    merge(map.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other,
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn merges_maps_replaces_lists_and_removes_nulls() {
        let mut app = json!({
            "metadata": {"name": "a", "labels": {"x": "1", "y": "2"}},
            "spec": {"sources": [{"path": "p"}], "project": "default"}
        });
        merge_patch(
            &mut app,
            json!({
                "metadata": {"labels": {"y": null, "z": "3"}},
                "spec": {"sources": [{"path": "q"}], "syncPolicy": {"automated": {"prune": true}}}
            }),
        )
        .unwrap();
        assert_eq!(
            app,
            json!({
                "metadata": {"name": "a", "labels": {"x": "1", "z": "3"}},
                "spec": {"sources": [{"path": "q"}], "project": "default",
                         "syncPolicy": {"automated": {"prune": true}}}
            })
        );
    }

    #[test]
    fn an_empty_patch_changes_nothing_and_a_list_patch_is_refused() {
        let mut app = json!({"metadata": {"name": "a"}});
        merge_patch(&mut app, Value::Null).unwrap();
        assert_eq!(app, json!({"metadata": {"name": "a"}}));
        let err = merge_patch(&mut app, json!(["x"])).unwrap_err();
        assert!(err.contains("not a list"), "{err}");
    }
}
