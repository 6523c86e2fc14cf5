//! Template values (JSON values) seen the way Go's templates see `map[string]interface{}` data:
//! truthiness, type names, and printing as `fmt.Sprint` does.

use serde_json::{Number, Value};

/// Go's truth of a value: false for `nil`, `false`, zero, and empty strings, lists and maps.
pub(crate) fn truth(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// The Go type the value would have.
pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(n) if is_int(n) => "int",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

pub(crate) fn is_int(n: &Number) -> bool {
    n.is_i64() || n.is_u64()
}

/// A float as Go's `%v` prints it: shortest digits, exponent form below 1e-4 and from 1e6 (`%g`).
pub(crate) fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    let exp = f.abs().log10().floor() as i32;
    if !(-4..6).contains(&exp) {
        // Rust: 1.5e22; Go: 1.5e+22.
        let s = format!("{f:e}");
        let (mantissa, e) = s.split_once('e').expect("exponent form");
        let e: i32 = e.parse().expect("exponent");
        let sign = if e < 0 { '-' } else { '+' };
        format!("{mantissa}e{sign}{:02}", e.abs())
    } else {
        format!("{f}")
    }
}

/// A number as `%v` prints it.
pub(crate) fn number_text(n: &Number) -> String {
    if is_int(n) {
        n.to_string()
    } else {
        go_float(n.as_f64().unwrap_or(0.0))
    }
}

/// `fmt.Sprint(v)` for one value: maps as `map[k:v]` (keys sorted), lists as `[a b]`,
/// `nil` as `<nil>`.
pub(crate) fn sprint(v: &Value) -> String {
    let mut out = String::new();
    write_v(&mut out, v);
    out
}

fn write_v(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("<nil>"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number_text(n)),
        Value::String(s) => out.push_str(s),
        Value::Array(a) => {
            out.push('[');
            for (i, item) in a.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write_v(out, item);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push_str("map[");
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                out.push_str(k);
                out.push(':');
                write_v(out, item);
            }
            out.push(']');
        }
    }
}

/// What an action prints for a value: like `sprint`, but `nil` is `<no value>`.
pub(crate) fn print_action(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        other => sprint(other),
    }
}

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\x07' => out.push_str("\\a"),
            '\x08' => out.push_str("\\b"),
            '\x0c' => out.push_str("\\f"),
            '\x0b' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
