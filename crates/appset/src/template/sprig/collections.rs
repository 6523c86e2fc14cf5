//! Sprig's list, dict, default and type functions.

use super::{at_least, compile, dict_arg, empty, list_arg, s, string, strings, strslice, to_i64};
use crate::template::funcs::{FResult, arity, int_arg, int_value, str_arg, wrong_type};
use crate::template::go::value::{is_int, type_name};
use serde_json::{Map, Value};

/// Runs Sprig function `name` (not a string function).
pub(super) fn call(name: &str, a: &[Value]) -> FResult {
    match name {
        "regexMatch!" => {
            arity(a, 2)?;
            Ok(Value::Bool(
                compile(str_arg(&a[0])?)?.is_match(str_arg(&a[1])?),
            ))
        }
        "list" | "tuple" => Ok(Value::Array(a.to_vec())),
        "first" | "last" | "rest" | "initial" | "reverse" | "uniq" | "compact" => {
            arity(a, 1)?;
            let l = list_arg(&a[0], &format!("find {name}"))?;
            Ok(match name {
                "first" => l.first().cloned().unwrap_or(Value::Null),
                "last" => l.last().cloned().unwrap_or(Value::Null),
                "rest" if l.is_empty() => Value::Null,
                "rest" => Value::Array(l[1..].to_vec()),
                "initial" if l.is_empty() => Value::Null,
                "initial" => Value::Array(l[..l.len() - 1].to_vec()),
                "reverse" => Value::Array(l.iter().rev().cloned().collect()),
                "uniq" => {
                    let mut out: Vec<Value> = Vec::new();
                    for x in l {
                        if !out.contains(x) {
                            out.push(x.clone());
                        }
                    }
                    Value::Array(out)
                }
                _ => Value::Array(l.iter().filter(|x| !empty(x)).cloned().collect()),
            })
        }
        "append" | "push" | "prepend" => {
            arity(a, 2)?;
            let mut l = list_arg(&a[0], name)?.clone();
            if name == "prepend" {
                l.insert(0, a[1].clone());
            } else {
                l.push(a[1].clone());
            }
            Ok(Value::Array(l))
        }
        "has" => {
            arity(a, 2)?;
            match &a[1] {
                Value::Null => Ok(Value::Bool(false)),
                other => Ok(Value::Bool(list_arg(other, "find has")?.contains(&a[0]))),
            }
        }
        "without" => {
            at_least(a, 1)?;
            let l = list_arg(&a[0], "find without")?;
            Ok(Value::Array(
                l.iter().filter(|x| !a[1..].contains(x)).cloned().collect(),
            ))
        }
        "sortAlpha" => {
            arity(a, 1)?;
            let mut l = strslice(&a[0]);
            l.sort();
            strings(l)
        }
        "concat" => {
            let mut out = Vec::new();
            for l in a {
                out.extend(list_arg(l, "concat type")?.iter().cloned());
            }
            Ok(Value::Array(out))
        }
        "slice" => {
            at_least(a, 1)?;
            let l = list_arg(&a[0], "slice")?;
            let from = a.get(1).map_or(0, to_i64);
            let to = a.get(2).map_or(l.len() as i64, to_i64);
            if from < 0 || to < from || to > l.len() as i64 {
                return Err(format!(
                    "slice bounds out of range [{from}:{to}] with length {}",
                    l.len()
                ));
            }
            Ok(Value::Array(l[from as usize..to as usize].to_vec()))
        }
        "chunk" => {
            arity(a, 2)?;
            let size = int_arg(&a[0])?;
            let l = list_arg(&a[1], "chunk")?;
            if size <= 0 {
                return Err("chunk: size must be positive".into());
            }
            Ok(Value::Array(
                l.chunks(size as usize)
                    .map(|c| Value::Array(c.to_vec()))
                    .collect(),
            ))
        }
        "until" | "seq" => until(name, a),
        "dict" => {
            let mut m = Map::new();
            for pair in a.chunks(2) {
                m.insert(
                    s(&pair[0]),
                    pair.get(1).cloned().unwrap_or(Value::String(String::new())),
                );
            }
            Ok(Value::Object(m))
        }
        "get" | "hasKey" | "unset" => {
            arity(a, 2)?;
            let (d, k) = (dict_arg(&a[0])?, str_arg(&a[1])?);
            Ok(match name {
                "get" => d.get(k).cloned().unwrap_or(Value::String(String::new())),
                "hasKey" => Value::Bool(d.contains_key(k)),
                _ => {
                    let mut d = d.clone();
                    d.remove(k);
                    Value::Object(d)
                }
            })
        }
        "set" => {
            arity(a, 3)?;
            let mut d = dict_arg(&a[0])?.clone();
            d.insert(str_arg(&a[1])?.to_string(), a[2].clone());
            Ok(Value::Object(d))
        }
        "keys" => {
            let mut out = Vec::new();
            for d in a {
                out.extend(dict_arg(d)?.keys().cloned());
            }
            strings(out)
        }
        "values" => {
            arity(a, 1)?;
            Ok(Value::Array(dict_arg(&a[0])?.values().cloned().collect()))
        }
        "pick" | "omit" => {
            at_least(a, 1)?;
            let d = dict_arg(&a[0])?;
            let names: Vec<String> = a[1..]
                .iter()
                .map(|k| str_arg(k).map(str::to_string))
                .collect::<Result<_, _>>()?;
            Ok(Value::Object(
                d.iter()
                    .filter(|(k, _)| names.contains(k) == (name == "pick"))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
            ))
        }
        "merge" | "mergeOverwrite" => {
            at_least(a, 1)?;
            let mut dst = Value::Object(dict_arg(&a[0])?.clone());
            for src in &a[1..] {
                merge(&mut dst, dict_arg(src)?, name == "mergeOverwrite");
            }
            Ok(dst)
        }
        "dig" => {
            at_least(a, 3)?;
            let dict = dict_arg(&a[a.len() - 1])?;
            let default = &a[a.len() - 2];
            let mut current = Value::Object(dict.clone());
            for k in &a[..a.len() - 2] {
                let k = str_arg(k)?;
                match current.as_object().and_then(|m| m.get(k)) {
                    Some(v) => current = v.clone(),
                    None => return Ok(default.clone()),
                }
            }
            Ok(current)
        }
        "pluck" => {
            at_least(a, 1)?;
            let k = str_arg(&a[0])?;
            let mut out = Vec::new();
            for d in &a[1..] {
                if let Some(v) = dict_arg(d)?.get(k) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        "deepCopy" => {
            arity(a, 1)?;
            Ok(a[0].clone())
        }
        "default" => {
            at_least(a, 1)?;
            Ok(match a.get(1) {
                Some(given) if !empty(given) => given.clone(),
                _ => a[0].clone(),
            })
        }
        "empty" => {
            arity(a, 1)?;
            Ok(Value::Bool(empty(&a[0])))
        }
        "coalesce" => Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Null)),
        "all" => Ok(Value::Bool(a.iter().all(|v| !empty(v)))),
        "any" => Ok(Value::Bool(a.iter().any(|v| !empty(v)))),
        "ternary" => {
            arity(a, 3)?;
            match &a[2] {
                Value::Bool(b) => Ok(if *b { a[0].clone() } else { a[1].clone() }),
                other => Err(wrong_type(other, "bool")),
            }
        }
        "fail" => {
            arity(a, 1)?;
            Err(str_arg(&a[0])?.to_string())
        }
        "typeOf" | "kindOf" => {
            arity(a, 1)?;
            string(if name == "typeOf" {
                type_name(&a[0]).to_string()
            } else {
                kind_name(&a[0]).to_string()
            })
        }
        "kindIs" | "typeIs" => {
            arity(a, 2)?;
            let want = str_arg(&a[0])?;
            let got = if name == "kindIs" {
                kind_name(&a[1])
            } else {
                type_name(&a[1])
            };
            Ok(Value::Bool(want == got))
        }
        "deepEqual" => {
            arity(a, 2)?;
            Ok(Value::Bool(a[0] == a[1]))
        }
        "fromJson" | "fromJson!" => {
            arity(a, 1)?;
            match serde_json::from_str::<Value>(str_arg(&a[0])?) {
                Ok(v) => Ok(v),
                Err(e) if name == "fromJson!" => Err(e.to_string()),
                Err(_) => Ok(Value::Null),
            }
        }
        "toJson" | "toPrettyJson" | "toRawJson" => {
            arity(a, 1)?;
            let mut out = String::new();
            super::numbers::write_json(
                &mut out,
                &a[0],
                name != "toRawJson",
                if name == "toPrettyJson" {
                    Some(0)
                } else {
                    None
                },
            );
            string(out)
        }
        _ => super::numbers::call(name, a),
    }
}

fn until(name: &str, a: &[Value]) -> FResult {
    let (start, end, step) = match (name, a) {
        ("until", [n]) => (0, int_arg(n)?, None),
        ("seq", [n]) => (1, to_i64(n), None),
        ("seq", [x, y]) => (to_i64(x), to_i64(y), None),
        ("seq", [x, st, y]) => (to_i64(x), to_i64(y), Some(to_i64(st))),
        _ => return Err(format!("wrong number of args for {name}")),
    };
    let step = step.unwrap_or(if end >= start { 1 } else { -1 });
    if step == 0 || (end - start).unsigned_abs() / step.unsigned_abs() > 100_000 {
        return Err(format!("{name}: too many elements or a zero step"));
    }
    let mut out = Vec::new();
    let mut i = start;
    let inclusive = name == "seq";
    while (step > 0 && (i < end || (inclusive && i == end)))
        || (step < 0 && (i > end || (inclusive && i == end)))
    {
        out.push(i);
        i += step;
    }
    if name == "seq" {
        return string(out.iter().map(i64::to_string).collect::<Vec<_>>().join(" "));
    }
    Ok(Value::Array(out.into_iter().map(int_value).collect()))
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(n) if is_int(n) => "int",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// mergo's Merge (`overwrite` false: fill what `dst` lacks or has empty) and Merge with
/// WithOverride (`overwrite` true: non-empty `src` values win); maps merge deeply.
fn merge(dst: &mut Value, src: &Map<String, Value>, overwrite: bool) {
    let Value::Object(d) = dst else { return };
    for (k, sv) in src {
        match d.get_mut(k) {
            Some(dv @ Value::Object(_)) if sv.is_object() => {
                merge(dv, sv.as_object().expect("checked"), overwrite)
            }
            Some(dv) => {
                if (overwrite && !empty(sv)) || (!overwrite && empty(dv)) {
                    *dv = sv.clone();
                }
            }
            None => {
                d.insert(k.clone(), sv.clone());
            }
        }
    }
}
