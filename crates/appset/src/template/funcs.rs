//! The functions Go templates can call: Go's own (`eq`, `len`, `index`, `printf`, ...), and
//! Argo CD's (`normalize`, `slugify`, `toYaml`, `fromYaml`, `fromYamlArray`). Sprig's are in
//! `sprig.rs`; `and`, `or` and `tpl` are run by the evaluator itself.

use super::go::value::{go_quote, is_int, sprint, truth, type_name};
use super::{printf, sprig, yaml};
use serde_json::{Number, Value};
use std::cmp::Ordering;

/// One function call: its name and evaluated arguments (the piped value last).
pub(crate) struct Call<'a> {
    pub(crate) name: &'a str,
    pub(crate) args: Vec<Value>,
}

pub(crate) type FResult = Result<Value, String>;

const BUILTINS: &[&str] = &[
    "and",
    "or",
    "not",
    "len",
    "index",
    "print",
    "printf",
    "println",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "html",
    "urlquery",
    "tpl",
    "normalize",
    "slugify",
    "toYaml",
    "fromYaml",
    "fromYamlArray",
];

/// Whether a template may call `name`.
pub(crate) fn exists(name: &str) -> bool {
    BUILTINS.contains(&name) || sprig::NAMES.contains(&name)
}

/// Why `name` cannot be called, for the parse error.
pub(crate) fn why_missing(name: &str) -> String {
    if matches!(name, "env" | "expandenv" | "getHostByName") {
        format!(
            "function {name:?} not defined (Argo CD removes it from Sprig: templates must not read the controller's environment)"
        )
    } else if sprig::NOT_OFFERED.contains(&name) {
        format!(
            "function {name:?} not defined (a Sprig function ferry does not offer: it is random, reads the clock, or is rarely used; see docs/applicationsets.md)"
        )
    } else {
        format!("function {name:?} not defined")
    }
}

/// Runs a function (not `and`, `or`, `tpl`).
pub(crate) fn call(c: Call<'_>) -> FResult {
    let a = &c.args;
    match c.name {
        "not" => {
            arity(a, 1)?;
            Ok(Value::Bool(!truth(&a[0])))
        }
        "len" => {
            arity(a, 1)?;
            match &a[0] {
                Value::String(s) => Ok(Value::from(s.len())),
                Value::Array(x) => Ok(Value::from(x.len())),
                Value::Object(m) => Ok(Value::from(m.len())),
                Value::Null => Err("len of nil pointer".into()),
                other => Err(format!("len of type {}", type_name(other))),
            }
        }
        "index" => index(a),
        "print" => Ok(Value::String(print(a))),
        "println" => {
            let parts: Vec<String> = a.iter().map(sprint).collect();
            Ok(Value::String(parts.join(" ") + "\n"))
        }
        "printf" => {
            let Some(Value::String(format)) = a.first() else {
                return Err(match a.first() {
                    None => "wrong number of args for printf: want at least 1 got 0".into(),
                    Some(v) => wrong_type(v, "string"),
                });
            };
            Ok(Value::String(printf::sprintf(format, &a[1..])))
        }
        "eq" => {
            if a.len() < 2 {
                return Err("missing argument for comparison".into());
            }
            for b in &a[1..] {
                if equal(&a[0], b)? {
                    return Ok(Value::Bool(true));
                }
            }
            Ok(Value::Bool(false))
        }
        "ne" => {
            arity(a, 2)?;
            Ok(Value::Bool(!equal(&a[0], &a[1])?))
        }
        "lt" | "le" | "gt" | "ge" => {
            arity(a, 2)?;
            let ord = order(&a[0], &a[1])?;
            Ok(Value::Bool(match c.name {
                "lt" => ord == Ordering::Less,
                "le" => ord != Ordering::Greater,
                "gt" => ord == Ordering::Greater,
                _ => ord != Ordering::Less,
            }))
        }
        "html" => Ok(Value::String(
            print(a)
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&#34;")
                .replace('\'', "&#39;"),
        )),
        "urlquery" => Ok(Value::String(form_escape(&print(a)))),
        "normalize" => {
            arity(a, 1)?;
            Ok(Value::String(normalize(str_arg(&a[0])?)))
        }
        "slugify" => slugify(a),
        "toYaml" => {
            arity(a, 1)?;
            Ok(Value::String(yaml::to_yaml(&a[0])))
        }
        "fromYaml" | "fromYamlArray" => {
            arity(a, 1)?;
            let v = yaml::parse(str_arg(&a[0])?)
                .map_err(|e| format!("error converting YAML to JSON: {e}"))?;
            match (c.name, v) {
                ("fromYaml", Value::Null) => Ok(Value::Object(Default::default())),
                ("fromYamlArray", Value::Null) => Ok(Value::Array(Vec::new())),
                ("fromYaml", v @ Value::Object(_)) | ("fromYamlArray", v @ Value::Array(_)) => {
                    Ok(v)
                }
                (name, v) => Err(format!(
                    "{name}: the YAML is {}, not {}",
                    type_name(&v),
                    if name == "fromYaml" {
                        "a map"
                    } else {
                        "a list"
                    }
                )),
            }
        }
        other => sprig::call(other, a),
    }
}

/// `fmt.Sprint`: spaces between operands when neither is a string.
pub(crate) fn print(a: &[Value]) -> String {
    let mut out = String::new();
    for (i, v) in a.iter().enumerate() {
        if i > 0 && !a[i - 1].is_string() && !v.is_string() {
            out.push(' ');
        }
        out.push_str(&sprint(v));
    }
    out
}

fn form_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

fn index(a: &[Value]) -> FResult {
    let Some(first) = a.first() else {
        return Err("wrong number of args for index: want at least 1 got 0".into());
    };
    let mut current = first.clone();
    for key in &a[1..] {
        current = match (&current, key) {
            (Value::Object(m), Value::String(k)) => m.get(k).cloned().unwrap_or(Value::Null),
            (Value::Object(_), other) => {
                return Err(format!(
                    "value has type {}; should be string",
                    type_name(other)
                ));
            }
            (Value::Array(x), Value::Number(n)) if is_int(n) => {
                let i = n.as_i64().unwrap_or(-1);
                if i < 0 || i as usize >= x.len() {
                    return Err(format!("error calling index: index out of range: {i}"));
                }
                x[i as usize].clone()
            }
            (Value::String(s), Value::Number(n)) if is_int(n) => {
                let i = n.as_i64().unwrap_or(-1);
                match s.as_bytes().get(usize::try_from(i).unwrap_or(usize::MAX)) {
                    Some(b) => Value::from(*b),
                    None => return Err(format!("error calling index: index out of range: {i}")),
                }
            }
            (Value::Array(_) | Value::String(_), other) => {
                return Err(format!(
                    "cannot index slice/array with type {}",
                    type_name(other)
                ));
            }
            (Value::Null, _) => return Err("index of untyped nil".into()),
            (other, _) => return Err(format!("can't index item of type {}", type_name(other))),
        };
    }
    Ok(current)
}

#[derive(PartialEq, Eq, Clone, Copy)]
enum Kind {
    Bool,
    Int,
    Float,
    String,
    Other,
    Nil,
}

fn kind(v: &Value) -> Kind {
    match v {
        Value::Null => Kind::Nil,
        Value::Bool(_) => Kind::Bool,
        Value::Number(n) if is_int(n) => Kind::Int,
        Value::Number(_) => Kind::Float,
        Value::String(_) => Kind::String,
        _ => Kind::Other,
    }
}

/// Go's `eq` for two values.
fn equal(x: &Value, y: &Value) -> Result<bool, String> {
    let (kx, ky) = (kind(x), kind(y));
    if kx != ky {
        if kx == Kind::Nil || ky == Kind::Nil {
            return Ok(false);
        }
        return Err("incompatible types for comparison".into());
    }
    match kx {
        Kind::Other => Err(format!(
            "non-comparable type {}: {}",
            sprint(x),
            type_name(x)
        )),
        Kind::Int => Ok(num_i128(x) == num_i128(y)),
        Kind::Float => Ok(x.as_f64() == y.as_f64()),
        _ => Ok(x == y),
    }
}

fn num_i128(v: &Value) -> i128 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .unwrap_or(0),
        _ => 0,
    }
}

/// Go's ordering for `lt`, `le`, `gt`, `ge`.
fn order(x: &Value, y: &Value) -> Result<Ordering, String> {
    let (kx, ky) = (kind(x), kind(y));
    if matches!(kx, Kind::Other | Kind::Nil | Kind::Bool)
        || matches!(ky, Kind::Other | Kind::Nil | Kind::Bool)
    {
        return Err("invalid type for comparison".into());
    }
    if kx != ky {
        return Err("incompatible types for comparison".into());
    }
    Ok(match kx {
        Kind::Int => num_i128(x).cmp(&num_i128(y)),
        Kind::Float => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        _ => x.as_str().cmp(&y.as_str()),
    })
}

/// The argument count must be `n`.
pub(crate) fn arity(a: &[Value], n: usize) -> Result<(), String> {
    if a.len() == n {
        Ok(())
    } else {
        Err(format!("wrong number of args: want {n} got {}", a.len()))
    }
}

/// Go's complaint when a value does not fit a typed parameter.
pub(crate) fn wrong_type(v: &Value, want: &str) -> String {
    match v {
        Value::Null => format!("invalid value; expected {want}"),
        other => format!(
            "wrong type for value; expected {want}; got {}",
            type_name(other)
        ),
    }
}

/// A parameter typed `string` in Go.
pub(crate) fn str_arg(v: &Value) -> Result<&str, String> {
    v.as_str().ok_or_else(|| wrong_type(v, "string"))
}

/// A parameter typed `int` in Go.
pub(crate) fn int_arg(v: &Value) -> Result<i64, String> {
    match v {
        Value::Number(n) if is_int(n) => {
            n.as_i64().ok_or_else(|| "integer out of range".to_string())
        }
        other => Err(wrong_type(other, "int")),
    }
}

/// A number as a JSON value: integral results stay integers.
pub(crate) fn int_value(n: i64) -> Value {
    Value::Number(Number::from(n))
}

/// Argo CD's `normalize`: lower case, characters other than `a-z0-9.-` become `-`, at most 253
/// bytes, no `-` or `.` at either end.
pub(crate) fn normalize(name: &str) -> String {
    let lower = name.to_lowercase();
    let mut out: String = lower
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if out.len() > 253 {
        let mut cut = 253;
        while !out.is_char_boundary(cut) {
            cut -= 1;
        }
        out.truncate(cut);
    }
    out.trim_matches(['-', '.']).to_string()
}

/// Argo CD's `slugify [MAX_SIZE [SMART_TRUNCATE]] NAME` (defaults 50 and true): the name is
/// normalized, then every run of characters other than `a-z0-9_-` becomes one `-`, with no `-`
/// or `_` at either end, and it is cut to MAX_SIZE bytes (at the last `-` when SMART_TRUNCATE).
fn slugify(a: &[Value]) -> FResult {
    let (max, smart, name) = match a {
        [name] => (50, true, name),
        [max, name] => (int_arg(max)?, true, name),
        [max, Value::Bool(smart), name] => (int_arg(max)?, *smart, name),
        [_, other, _] => return Err(wrong_type(other, "bool")),
        _ => {
            return Err(format!(
                "wrong number of args for slugify: want 1 to 3 got {}",
                a.len()
            ));
        }
    };
    let name = normalize(str_arg(name)?);
    let mut slug = String::new();
    for c in name.chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let mut slug = slug.trim_matches(['-', '_']).to_string();
    let max = usize::try_from(max).unwrap_or(0);
    if max > 0 && slug.len() > max {
        let cut = if smart {
            slug.as_bytes()[..=max]
                .iter()
                .rposition(|&b| b == b'-')
                .unwrap_or(max)
        } else {
            max
        };
        slug.truncate(cut);
    }
    Ok(Value::String(slug))
}

/// Go-quoted form of a string (for `%q` and Sprig's `quote`).
pub(crate) fn quote(s: &str) -> String {
    go_quote(s)
}
