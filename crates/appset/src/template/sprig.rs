//! The Sprig functions (github.com/Masterminds/sprig v3) ferry offers to Go templates, with
//! Sprig's own argument conversions (`toString`, `int64` of anything) and Go's type checks where
//! Sprig's parameters are typed (`upper` takes a string; `upper 3` is an error, as in Go).

use super::funcs::{FResult, arity, int_arg, int_value, quote, str_arg, wrong_type};
use super::go::value::{go_float, is_int, sprint, type_name};
use base64::Engine;
use serde_json::{Map, Value};

/// Sprig functions ferry offers.
pub(crate) const NAMES: &[&str] = &[
    // strings
    "upper",
    "lower",
    "title",
    "untitle",
    "trim",
    "trimAll",
    "trimall",
    "trimPrefix",
    "trimSuffix",
    "replace",
    "contains",
    "hasPrefix",
    "hasSuffix",
    "splitList",
    "split",
    "splitn",
    "join",
    "quote",
    "squote",
    "cat",
    "indent",
    "nindent",
    "trunc",
    "substr",
    "repeat",
    "nospace",
    "abbrev",
    "plural",
    "regexMatch",
    "mustRegexMatch",
    "regexFind",
    "mustRegexFind",
    "regexFindAll",
    "mustRegexFindAll",
    "regexReplaceAll",
    "mustRegexReplaceAll",
    "regexReplaceAllLiteral",
    "mustRegexReplaceAllLiteral",
    "regexSplit",
    "mustRegexSplit",
    "regexQuoteMeta",
    "b64enc",
    "b64dec",
    "sha256sum",
    "toString",
    "toStrings",
    // paths
    "base",
    "dir",
    "ext",
    "clean",
    "isAbs",
    // lists
    "list",
    "tuple",
    "first",
    "mustFirst",
    "last",
    "mustLast",
    "rest",
    "mustRest",
    "initial",
    "mustInitial",
    "append",
    "mustAppend",
    "push",
    "mustPush",
    "prepend",
    "mustPrepend",
    "has",
    "mustHas",
    "uniq",
    "mustUniq",
    "without",
    "mustWithout",
    "sortAlpha",
    "compact",
    "mustCompact",
    "concat",
    "reverse",
    "mustReverse",
    "slice",
    "mustSlice",
    "until",
    "seq",
    "chunk",
    "mustChunk",
    // dicts
    "dict",
    "get",
    "set",
    "unset",
    "hasKey",
    "keys",
    "values",
    "merge",
    "mustMerge",
    "mergeOverwrite",
    "mustMergeOverwrite",
    "pick",
    "omit",
    "dig",
    "pluck",
    "deepCopy",
    "mustDeepCopy",
    // defaults, flow, types
    "default",
    "empty",
    "coalesce",
    "all",
    "any",
    "ternary",
    "fail",
    "typeOf",
    "kindOf",
    "kindIs",
    "typeIs",
    "deepEqual",
    "fromJson",
    "mustFromJson",
    "toJson",
    "mustToJson",
    "toPrettyJson",
    "mustToPrettyJson",
    "toRawJson",
    "mustToRawJson",
    // numbers
    "add",
    "add1",
    "sub",
    "mul",
    "div",
    "mod",
    "max",
    "biggest",
    "min",
    "int",
    "int64",
    "atoi",
    "float64",
    "floor",
    "ceil",
    "round",
    "addf",
    "add1f",
    "subf",
    "mulf",
    "divf",
    "maxf",
    "minf",
];

/// Sprig functions ferry does not offer: random, clock, crypto and key generation, network,
/// and a few rarely used text functions. Argo CD's `env`, `expandenv` and `getHostByName` are
/// refused separately.
pub(crate) const NOT_OFFERED: &[&str] = &[
    "abbrevboth",
    "adler32sum",
    "ago",
    "b32dec",
    "b32enc",
    "bcrypt",
    "buildCustomCert",
    "camelcase",
    "date",
    "dateInZone",
    "dateModify",
    "date_in_zone",
    "date_modify",
    "decryptAES",
    "derivePassword",
    "duration",
    "durationRound",
    "encryptAES",
    "genCA",
    "genCAWithKey",
    "genPrivateKey",
    "genSelfSignedCert",
    "genSelfSignedCertWithKey",
    "genSignedCert",
    "genSignedCertWithKey",
    "hello",
    "htmlDate",
    "htmlDateInZone",
    "htpasswd",
    "initials",
    "kebabcase",
    "mustDateModify",
    "mustToDate",
    "must_date_modify",
    "now",
    "osBase",
    "osClean",
    "osDir",
    "osExt",
    "osIsAbs",
    "randAlpha",
    "randAlphaNum",
    "randAscii",
    "randBytes",
    "randInt",
    "randNumeric",
    "semver",
    "semverCompare",
    "sha1sum",
    "sha512sum",
    "shuffle",
    "snakecase",
    "swapcase",
    "toDate",
    "toDecimal",
    "typeIsLike",
    "unixEpoch",
    "untilStep",
    "urlJoin",
    "urlParse",
    "uuidv4",
    "wrap",
    "wrapWith",
    "required",
];

fn s(v: &Value) -> String {
    sprint(v)
}

/// Sprig's `empty`.
pub(crate) fn empty(v: &Value) -> bool {
    !super::go::value::truth(v)
}

/// Sprig's `toInt64` (spf13/cast): numbers truncate, numeric strings parse, booleans are 0/1,
/// anything else is 0.
fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        Value::String(t) => t.trim().parse::<i64>().unwrap_or(0),
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(t) => t.trim().parse::<f64>().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

fn float_value(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Sprig's `strslice`: a list's elements as strings (nils dropped), or the value alone.
fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter(|x| !x.is_null()).map(s).collect(),
        Value::Null => Vec::new(),
        other => vec![s(other)],
    }
}

fn list_arg<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(format!("Cannot {what} on type {}", type_name(other))),
    }
}

fn dict_arg(v: &Value) -> Result<&Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| wrong_type(v, "map[string]interface {}"))
}

fn at_least(a: &[Value], n: usize) -> Result<(), String> {
    if a.len() >= n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args: want at least {n} got {}",
            a.len()
        ))
    }
}

fn regex(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| format!("regexp: Compile({}): {e}", quote(pattern)))
}

fn string(t: impl Into<String>) -> FResult {
    Ok(Value::String(t.into()))
}

fn strings(v: Vec<String>) -> FResult {
    Ok(Value::Array(v.into_iter().map(Value::String).collect()))
}

/// Runs Sprig function `name`.
pub(crate) fn call(name: &str, a: &[Value]) -> FResult {
    // `mustX` is `x` returning errors where Sprig's `x` would panic; ferry's `x` already
    // returns them, except for `regexMatch` and `fromJson`, which swallow them.
    let owned;
    let name = match name {
        "mustRegexMatch" => "regexMatch!",
        "mustFromJson" => "fromJson!",
        n if n.starts_with("must") && n.len() > 4 => {
            let rest = &n[4..];
            owned = rest[..1].to_lowercase() + &rest[1..];
            owned.as_str()
        }
        n => n,
    };
    match name {
        "upper" | "lower" | "title" | "untitle" | "trim" | "nospace" | "b64enc" | "b64dec"
        | "sha256sum" | "regexQuoteMeta" | "base" | "dir" | "ext" | "clean" | "isAbs" => {
            arity(a, 1)?;
            let t = str_arg(&a[0])?;
            match name {
                "upper" => string(t.to_uppercase()),
                "lower" => string(t.to_lowercase()),
                "title" => string(title(t)),
                "untitle" => string(untitle(t)),
                "trim" => string(t.trim()),
                "nospace" => string(t.chars().filter(|c| !c.is_whitespace()).collect::<String>()),
                "b64enc" => string(base64::engine::general_purpose::STANDARD.encode(t)),
                "b64dec" => string(match base64::engine::general_purpose::STANDARD.decode(t) {
                    Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
                    Err(e) => e.to_string(),
                }),
                "sha256sum" => {
                    use sha2::Digest;
                    string(
                        sha2::Sha256::digest(t.as_bytes())
                            .iter()
                            .map(|b| format!("{b:02x}"))
                            .collect::<String>(),
                    )
                }
                "regexQuoteMeta" => string(regex::escape(t)),
                "base" => string(path_base(t)),
                "dir" => string(path_dir(t)),
                "ext" => string(
                    path_base(t)
                        .rfind('.')
                        .map_or(String::new(), |i| path_base(t)[i..].to_string()),
                ),
                "clean" => string(path_clean(t)),
                _ => Ok(Value::Bool(t.starts_with('/'))),
            }
        }
        "trimAll" | "trimall" | "trimPrefix" | "trimSuffix" | "contains" | "hasPrefix"
        | "hasSuffix" | "splitList" | "split" | "regexMatch" | "regexFind" => {
            arity(a, 2)?;
            let (x, t) = (str_arg(&a[0])?, str_arg(&a[1])?);
            match name {
                "trimAll" | "trimall" => string(t.trim_matches(|c| x.contains(c))),
                "trimPrefix" => string(t.strip_prefix(x).unwrap_or(t)),
                "trimSuffix" => string(t.strip_suffix(x).unwrap_or(t)),
                "contains" => Ok(Value::Bool(t.contains(x))),
                "hasPrefix" => Ok(Value::Bool(t.starts_with(x))),
                "hasSuffix" => Ok(Value::Bool(t.ends_with(x))),
                "splitList" => strings(go_split(t, x)),
                "split" => Ok(Value::Object(
                    go_split(t, x)
                        .into_iter()
                        .enumerate()
                        .map(|(i, p)| (format!("_{i}"), Value::String(p)))
                        .collect(),
                )),
                "regexMatch" => Ok(Value::Bool(
                    regex::Regex::new(x).is_ok_and(|r| r.is_match(t)),
                )),
                _ => string(regex(x)?.find(t).map_or("", |m| m.as_str())),
            }
        }
        "splitn" => {
            arity(a, 3)?;
            let (sep, n, t) = (str_arg(&a[0])?, int_arg(&a[1])?, str_arg(&a[2])?);
            let parts: Vec<&str> = if n < 0 {
                t.split(sep).collect()
            } else {
                t.splitn(n as usize, sep).collect()
            };
            Ok(Value::Object(
                parts
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| (format!("_{i}"), Value::String(p.into())))
                    .collect(),
            ))
        }
        "replace" | "regexReplaceAll" | "regexReplaceAllLiteral" => {
            arity(a, 3)?;
            let (x, y, z) = (str_arg(&a[0])?, str_arg(&a[1])?, str_arg(&a[2])?);
            match name {
                "replace" => string(z.replace(x, y)),
                "regexReplaceAll" => string(regex(x)?.replace_all(y, z).into_owned()),
                _ => string(regex(x)?.replace_all(y, regex::NoExpand(z)).into_owned()),
            }
        }
        "regexFindAll" | "regexSplit" => {
            arity(a, 3)?;
            let (x, t, n) = (str_arg(&a[0])?, str_arg(&a[1])?, int_arg(&a[2])?);
            let r = regex(x)?;
            let limit = if n < 0 { usize::MAX } else { n as usize };
            if name == "regexFindAll" {
                strings(
                    r.find_iter(t)
                        .take(limit)
                        .map(|m| m.as_str().to_string())
                        .collect(),
                )
            } else if n == 0 {
                strings(Vec::new())
            } else {
                strings(r.splitn(t, limit).map(str::to_string).collect())
            }
        }
        "join" => {
            arity(a, 2)?;
            string(strslice(&a[1]).join(str_arg(&a[0])?))
        }
        "quote" => string(
            a.iter()
                .filter(|v| !v.is_null())
                .map(|v| quote(&s(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "squote" => string(
            a.iter()
                .filter(|v| !v.is_null())
                .map(|v| format!("'{}'", s(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "cat" => string(
            a.iter()
                .filter(|v| !v.is_null())
                .map(s)
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "indent" | "nindent" => {
            arity(a, 2)?;
            let pad = " ".repeat(int_arg(&a[0])?.max(0) as usize);
            let t = str_arg(&a[1])?;
            let body = format!("{pad}{}", t.replace('\n', &format!("\n{pad}")));
            string(if name == "nindent" {
                format!("\n{body}")
            } else {
                body
            })
        }
        "trunc" => {
            arity(a, 2)?;
            let (c, t) = (int_arg(&a[0])?, str_arg(&a[1])?);
            let len = t.len() as i64;
            let cut = |i: i64| -> usize {
                let mut i = i as usize;
                while !t.is_char_boundary(i) {
                    i -= 1;
                }
                i
            };
            string(if c < 0 && len + c > 0 {
                &t[cut(len + c)..]
            } else if c >= 0 && len > c {
                &t[..cut(c)]
            } else {
                t
            })
        }
        "substr" => {
            arity(a, 3)?;
            let (start, end, t) = (int_arg(&a[0])?, int_arg(&a[1])?, str_arg(&a[2])?);
            let len = t.len() as i64;
            let (from, to) = if start < 0 {
                (0, end)
            } else if end < 0 || end > len {
                (start, len)
            } else {
                (start, end)
            };
            t.get(from.clamp(0, len) as usize..to.clamp(0, len) as usize)
                .map(|x| Value::String(x.to_string()))
                .ok_or_else(|| format!("slice bounds out of range [{from}:{to}]"))
        }
        "repeat" => {
            arity(a, 2)?;
            let (n, t) = (int_arg(&a[0])?, str_arg(&a[1])?);
            if n < 0 {
                return Err("strings: negative Repeat count".into());
            }
            if t.len().saturating_mul(n as usize) > 1 << 20 {
                return Err("repeat: the result would be larger than 1 MiB".into());
            }
            string(t.repeat(n as usize))
        }
        "abbrev" => {
            arity(a, 2)?;
            let (w, t) = (int_arg(&a[0])?, str_arg(&a[1])?);
            if w < 4 || t.chars().count() as i64 <= w {
                return string(t);
            }
            string(format!(
                "{}...",
                t.chars().take(w as usize - 3).collect::<String>()
            ))
        }
        "plural" => {
            arity(a, 3)?;
            let (one, many, n) = (str_arg(&a[0])?, str_arg(&a[1])?, int_arg(&a[2])?);
            string(if n == 1 { one } else { many })
        }
        "toString" => {
            arity(a, 1)?;
            string(s(&a[0]))
        }
        "toStrings" => {
            arity(a, 1)?;
            strings(strslice(&a[0]))
        }
        _ => lists_dicts_numbers(name, a),
    }
}

fn lists_dicts_numbers(name: &str, a: &[Value]) -> FResult {
    match name {
        "regexMatch!" => {
            arity(a, 2)?;
            Ok(Value::Bool(
                regex(str_arg(&a[0])?)?.is_match(str_arg(&a[1])?),
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
            let mut l = list_arg(&a[0], &format!("{name}"))?.clone();
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
            write_json(
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
        _ => numbers(name, a),
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

fn numbers(name: &str, a: &[Value]) -> FResult {
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

/// Go's `strings.Split`: an empty separator splits into characters.
fn go_split(t: &str, sep: &str) -> Vec<String> {
    if sep.is_empty() {
        return t.chars().map(String::from).collect();
    }
    t.split(sep).map(str::to_string).collect()
}

/// Go's `strings.Title`: upper-cases the first letter of each word.
fn title(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut prev_sep = true;
    for c in t.chars() {
        if prev_sep {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        prev_sep = !(c.is_alphanumeric() || c == '_');
    }
    out
}

fn untitle(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    let mut prev_space = true;
    for c in t.chars() {
        if prev_space {
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        prev_space = c.is_whitespace();
    }
    out
}

fn path_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            s => parts.push(s),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".into(),
        (false, false) => body,
    }
}

fn path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".into();
    }
    let t = p.trim_end_matches('/');
    if t.is_empty() {
        return "/".into();
    }
    t.rsplit('/').next().unwrap_or(t).to_string()
}

fn path_dir(p: &str) -> String {
    let cut = p.rfind('/').map_or(0, |i| i + 1);
    path_clean(&p[..cut])
}

/// JSON as Go's encoding/json writes it: keys sorted, `<`, `>`, `&` escaped unless `raw`,
/// integral floats without a fraction; `indent` for `toPrettyJson`.
fn write_json(out: &mut String, v: &Value, escape_html: bool, indent: Option<usize>) {
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
