//! Sprig's number functions, and JSON written as Go's encoding/json writes it.

use super::{at_least, float_value, to_f64, to_i64};
use crate::template::funcs::{FResult, arity, int_value, str_arg};
use crate::template::go::value::{go_float, is_int};
use serde_json::Value;

/// Runs Sprig number function `name`.
pub(super) fn call(name: &str, a: &[Value]) -> FResult {
    match name {
        "add" => Ok(int_value(
            a.iter().map(to_i64).fold(0i64, i64::wrapping_add),
        )),
        "add1" => {
            arity(a, 1)?;
            Ok(int_value(to_i64(&a[0]).wrapping_add(1)))
        }
        "sub" | "div" | "mod" => {
            arity(a, 2)?;
            let (x, y) = (to_i64(&a[0]), to_i64(&a[1]));
            match name {
                "sub" => Ok(int_value(x.wrapping_sub(y))),
                _ if y == 0 => Err("runtime error: integer divide by zero".into()),
                "div" => Ok(int_value(x.wrapping_div(y))),
                _ => Ok(int_value(x.wrapping_rem(y))),
            }
        }
        "mul" => {
            at_least(a, 1)?;
            Ok(int_value(
                a.iter().map(to_i64).fold(1i64, i64::wrapping_mul),
            ))
        }
        "max" | "biggest" | "min" => {
            at_least(a, 1)?;
            let it = a.iter().map(to_i64);
            Ok(int_value(
                if name == "min" { it.min() } else { it.max() }.unwrap_or(0),
            ))
        }
        "int" | "int64" => {
            arity(a, 1)?;
            Ok(int_value(to_i64(&a[0])))
        }
        "atoi" => {
            arity(a, 1)?;
            Ok(int_value(str_arg(&a[0])?.parse::<i64>().unwrap_or(0)))
        }
        "float64" => {
            arity(a, 1)?;
            Ok(float_value(to_f64(&a[0])))
        }
        "floor" | "ceil" => {
            arity(a, 1)?;
            let f = to_f64(&a[0]);
            Ok(float_value(if name == "floor" {
                f.floor()
            } else {
                f.ceil()
            }))
        }
        "round" => {
            at_least(a, 2)?;
            let (f, places) = (to_f64(&a[0]), to_i64(&a[1]));
            let p = 10f64.powi(places as i32);
            let x = f * p;
            let r = if x.fract().abs() >= 0.5 {
                x.trunc() + x.signum()
            } else {
                x.trunc()
            };
            Ok(float_value(r / p))
        }
        "addf" | "add1f" | "subf" | "mulf" | "divf" | "maxf" | "minf" => {
            at_least(a, 1)?;
            let fs: Vec<f64> = a.iter().map(to_f64).collect();
            let r = match name {
                "addf" => fs.iter().sum(),
                "add1f" => fs[0] + 1.0,
                "subf" => fs[1..].iter().fold(fs[0], |x, y| x - y),
                "mulf" => fs.iter().product(),
                "divf" => fs[1..].iter().fold(fs[0], |x, y| x / y),
                "maxf" => fs.iter().copied().fold(f64::MIN, f64::max),
                _ => fs.iter().copied().fold(f64::MAX, f64::min),
            };
            Ok(float_value(r))
        }
        other => Err(format!("function {other:?} is not available")),
    }
}

/// JSON as Go's encoding/json writes it: keys sorted, `<`, `>`, `&` escaped unless `raw`,
/// integral floats without a fraction; `indent` for `toPrettyJson`.
pub(super) fn write_json(out: &mut String, v: &Value, escape_html: bool, indent: Option<usize>) {
    let newline = |out: &mut String, level: usize| {
        if indent.is_some() {
            out.push('\n');
            out.push_str(&"  ".repeat(level));
        }
    };
    let level = indent.unwrap_or(0);
    match v {
        Value::Null | Value::Bool(_) => out.push_str(&v.to_string()),
        Value::Number(n) if is_int(n) => out.push_str(&n.to_string()),
        Value::Number(n) => {
            let f = n.as_f64().unwrap_or(0.0);
            let abs = f.abs();
            if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
                out.push_str(&go_float(f).replace("e-0", "e-"));
            } else {
                out.push_str(&format!("{f}"));
            }
        }
        Value::String(t) => {
            let encoded = Value::String(t.clone()).to_string();
            if escape_html {
                out.push_str(
                    &encoded
                        .replace('<', "\\u003c")
                        .replace('>', "\\u003e")
                        .replace('&', "\\u0026"),
                );
            } else {
                out.push_str(&encoded);
            }
        }
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                write_json(out, item, escape_html, indent.map(|l| l + 1));
            }
            newline(out, level);
            out.push(']');
        }
        Value::Object(m) => {
            if m.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push('{');
            for (i, (k, item)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                newline(out, level + 1);
                write_json(out, &Value::String(k.clone()), escape_html, None);
                out.push(':');
                if indent.is_some() {
                    out.push(' ');
                }
                write_json(out, item, escape_html, indent.map(|l| l + 1));
            }
            newline(out, level);
            out.push('}');
        }
    }
}
