//! YAML for templates: reading (`templatePatch`, `fromYaml`) and writing (`toYaml`) in the
//! style Argo CD's `toYaml` (sigs.k8s.io/yaml over go-yaml v2) writes: keys sorted, lists not
//! indented under their key, strings quoted only when they would read as something else.

use serde_json::Value;

/// Reads one YAML document into JSON values; empty text is `null`.
pub(crate) fn parse(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string())
}

/// Writes `value` as YAML, without the final newline (as Argo CD's `toYaml`).
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_list(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out.truncate(out.trim_end_matches('\n').len());
    out
}

fn write_map(out: &mut String, map: &serde_json::Map<String, Value>, indent: usize) {
    let mut first = true;
    for (key, value) in map {
        if !first || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        first = false;
        out.push_str(&string(key));
        out.push(':');
        write_child(out, value, indent, false);
    }
}

fn write_list(out: &mut String, list: &[Value], indent: usize) {
    let mut first = true;
    for item in list {
        if !first || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        first = false;
        out.push('-');
        write_child(out, item, indent, true);
    }
}

/// Writes the value after `key:` or `-`.
fn write_child(out: &mut String, value: &Value, indent: usize, in_list: bool) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            if in_list {
                out.push(' ');
                write_map(out, m, indent + 2);
            } else {
                out.push('\n');
                write_map(out, m, indent + 2);
            }
        }
        Value::Array(a) if !a.is_empty() => {
            if in_list {
                out.push(' ');
                write_list(out, a, indent + 2);
            } else {
                out.push('\n');
                write_list(out, a, indent);
            }
        }
        Value::String(s) if literal_block_fits(s) => {
            let chomp = if s.ends_with('\n') { "" } else { "-" };
            out.push_str(&format!(" |{chomp}\n"));
            let body = s.strip_suffix('\n').unwrap_or(s);
            for line in body.split('\n') {
                if !line.is_empty() {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

/// Whether `s` can be written as a `|` block and read back the same: several lines, no
/// control characters but newlines, no space at the start or at the end of a line, at most one
/// newline at the end. Other strings are double-quoted.
fn literal_block_fits(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && !s.ends_with("\n\n")
        && !s.chars().any(|c| c != '\n' && c.is_control())
        && !s.split('\n').any(|line| line.ends_with(' '))
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s),
        Value::Array(_) => "[]".to_string(),
        Value::Object(_) => "{}".to_string(),
    }
}

/// A string as go-yaml v2 writes it: plain when it reads back as the same string, single-quoted
/// when only its characters are in the way, double-quoted when it would read as another type.
fn string(s: &str) -> String {
    if s.is_empty() || reads_as_other_type(s) {
        return Value::String(s.to_string()).to_string();
    }
    if s.chars().any(|c| c.is_control()) {
        return Value::String(s.to_string()).to_string();
    }
    if plain_allowed(s) {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "''"))
    }
}

fn reads_as_other_type(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True", "TRUE", "false",
        "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", "null", "Null", "NULL", "~",
        ".inf", ".Inf", ".INF", "-.inf", "-.Inf", "-.INF", "+.inf", ".nan", ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let t = s.replace('_', "");
    let digits = t.strip_prefix(['-', '+']).unwrap_or(&t);
    if digits.is_empty() {
        return false;
    }
    let numeric = digits.parse::<f64>().is_ok()
        && digits
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | 'e' | 'E' | '-' | '+'));
    let radix = ["0x", "0o", "0b"]
        .iter()
        .any(|p| digits.starts_with(p) && digits.len() > 2);
    numeric || radix
}

fn plain_allowed(s: &str) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    if matches!(
        first,
        '-' | '?'
            | ':'
            | ','
            | '['
            | ']'
            | '{'
            | '}'
            | '#'
            | '&'
            | '*'
            | '!'
            | '|'
            | '>'
            | '\''
            | '"'
            | '%'
            | '@'
            | '`'
            | ' '
    ) {
        let followed_by_space = s.chars().nth(1).is_none_or(|c| c == ' ');
        if !matches!(first, '-' | '?' | ':') || followed_by_space {
            return false;
        }
    }
    if s.ends_with(' ') || s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn writes_maps_lists_and_scalars_as_go_yaml_v2() {
        let v = json!({"b": [1, "x", {"k": "v", "l": [true]}], "a": {"c": null, "d": ""}, "e": []});
        assert_eq!(
            to_yaml(&v),
            "a:\n  c: null\n  d: \"\"\nb:\n- 1\n- x\n- k: v\n  l:\n  - true\ne: []"
        );
    }

    #[test]
    fn quotes_strings_that_would_read_as_other_things() {
        assert_eq!(string("true"), "\"true\"");
        assert_eq!(string("123"), "\"123\"");
        assert_eq!(string("1.5"), "\"1.5\"");
        assert_eq!(string("a: b"), "'a: b'");
        assert_eq!(string("- x"), "'- x'");
        assert_eq!(string("-x"), "-x");
        assert_eq!(string("it's"), "it's");
        assert_eq!(string("v1.2.3"), "v1.2.3");
    }

    #[test]
    fn multi_line_strings_are_literal_blocks() {
        assert_eq!(to_yaml(&json!({"s": "a\nb"})), "s: |-\n  a\n  b");
        assert_eq!(to_yaml(&json!({"s": "a\n"})), "s: |\n  a");
        assert_eq!(to_yaml(&json!({"s": " a\nb"})), "s: \" a\\nb\"");
        assert_eq!(to_yaml(&json!({"s": "a \nb"})), "s: \"a \\nb\"");
        assert_eq!(to_yaml(&json!({"s": "a\n\n"})), "s: \"a\\n\\n\"");
    }

    #[test]
    fn reads_yaml_and_empty_text() {
        assert_eq!(parse("a: [1, x]\n").unwrap(), json!({"a": [1, "x"]}));
        assert_eq!(parse("  \n").unwrap(), Value::Null);
        assert!(parse("a: [").is_err());
    }
}
