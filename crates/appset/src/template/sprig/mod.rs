//! The Sprig functions (github.com/Masterminds/sprig v3) ferry offers to Go templates, with
//! Sprig's own argument conversions (`toString`, `int64` of anything) and Go's type checks where
//! Sprig's parameters are typed (`upper` takes a string; `upper 3` is an error, as in Go).

use super::funcs::{FResult, arity, int_arg, quote, str_arg, wrong_type};
use super::go::value::{sprint, type_name};
use base64::Engine;

mod collections;
mod numbers;
use serde_json::{Map, Value};

/// Sprig functions ferry offers.
#[rustfmt::skip]
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
#[rustfmt::skip]
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

pub(super) fn s(v: &Value) -> String {
    sprint(v)
}

/// Sprig's `empty`.
pub(crate) fn empty(v: &Value) -> bool {
    !super::go::value::truth(v)
}

/// Sprig's `toInt64` (spf13/cast): numbers truncate, numeric strings parse, booleans are 0/1,
/// anything else is 0.
pub(super) fn to_i64(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .unwrap_or_else(|| n.as_f64().unwrap_or(0.0) as i64),
        Value::String(t) => t.trim().parse::<i64>().unwrap_or(0),
        Value::Bool(b) => i64::from(*b),
        _ => 0,
    }
}

pub(super) fn to_f64(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap_or(0.0),
        Value::String(t) => t.trim().parse::<f64>().unwrap_or(0.0),
        Value::Bool(b) => f64::from(u8::from(*b)),
        _ => 0.0,
    }
}

pub(super) fn float_value(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
}

/// Sprig's `strslice`: a list's elements as strings (nils dropped), or the value alone.
pub(super) fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a.iter().filter(|x| !x.is_null()).map(s).collect(),
        Value::Null => Vec::new(),
        other => vec![s(other)],
    }
}

pub(super) fn list_arg<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    match v {
        Value::Array(a) => Ok(a),
        other => Err(format!("Cannot {what} on type {}", type_name(other))),
    }
}

pub(super) fn dict_arg(v: &Value) -> Result<&Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| wrong_type(v, "map[string]interface {}"))
}

pub(super) fn at_least(a: &[Value], n: usize) -> Result<(), String> {
    if a.len() >= n {
        Ok(())
    } else {
        Err(format!(
            "wrong number of args: want at least {n} got {}",
            a.len()
        ))
    }
}

pub(super) fn compile(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(pattern).map_err(|e| format!("regexp: Compile({}): {e}", quote(pattern)))
}

pub(super) fn string(t: impl Into<String>) -> FResult {
    Ok(Value::String(t.into()))
}

pub(super) fn strings(v: Vec<String>) -> FResult {
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
                _ => string(compile(x)?.find(t).map_or("", |m| m.as_str())),
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
                "regexReplaceAll" => string(compile(x)?.replace_all(y, z).into_owned()),
                _ => string(compile(x)?.replace_all(y, regex::NoExpand(z)).into_owned()),
            }
        }
        "regexFindAll" | "regexSplit" => {
            arity(a, 3)?;
            let (x, t, n) = (str_arg(&a[0])?, str_arg(&a[1])?, int_arg(&a[2])?);
            let r = compile(x)?;
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
        _ => collections::call(name, a),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every name in Sprig v3.3.0's GenericFuncMap.
    const SPRIG: &str = "abbrev abbrevboth add add1 add1f addf adler32sum ago all any append atoi b32dec b32enc b64dec b64enc base bcrypt biggest buildCustomCert camelcase cat ceil chunk clean coalesce compact concat contains date dateInZone dateModify date_in_zone date_modify decryptAES deepCopy deepEqual default derivePassword dict dig dir div divf duration durationRound empty encryptAES env expandenv ext fail first float64 floor fromJson genCA genCAWithKey genPrivateKey genSelfSignedCert genSelfSignedCertWithKey genSignedCert genSignedCertWithKey get getHostByName has hasKey hasPrefix hasSuffix hello htmlDate htmlDateInZone htpasswd indent initial initials int int64 isAbs join kebabcase keys kindIs kindOf last list lower max maxf merge mergeOverwrite min minf mod mul mulf mustAppend mustChunk mustCompact mustDateModify mustDeepCopy mustFirst mustFromJson mustHas mustInitial mustLast mustMerge mustMergeOverwrite mustPrepend mustPush mustRegexFind mustRegexFindAll mustRegexMatch mustRegexReplaceAll mustRegexReplaceAllLiteral mustRegexSplit mustRest mustReverse mustSlice mustToDate mustToJson mustToPrettyJson mustToRawJson mustUniq mustWithout must_date_modify nindent nospace now omit osBase osClean osDir osExt osIsAbs pick pluck plural prepend push quote randAlpha randAlphaNum randAscii randBytes randInt randNumeric regexFind regexFindAll regexMatch regexQuoteMeta regexReplaceAll regexReplaceAllLiteral regexSplit repeat replace rest reverse round semver semverCompare seq set sha1sum sha256sum sha512sum shuffle slice snakecase sortAlpha split splitList splitn squote sub subf substr swapcase ternary title toDate toDecimal toJson toPrettyJson toRawJson toString toStrings trim trimAll trimPrefix trimSuffix trimall trunc tuple typeIs typeIsLike typeOf uniq unixEpoch unset until untilStep untitle upper urlJoin urlParse uuidv4 values without wrap wrapWith";

    #[test]
    fn every_sprig_function_is_offered_or_listed_as_not_offered() {
        for name in SPRIG.split(' ') {
            let offered = NAMES.contains(&name);
            let refused = NOT_OFFERED.contains(&name)
                || matches!(name, "env" | "expandenv" | "getHostByName");
            assert!(
                offered != refused,
                "{name}: offered {offered}, refused {refused}"
            );
        }
        for name in NAMES {
            assert!(
                SPRIG.split(' ').any(|s| s == *name),
                "{name} is not a Sprig function"
            );
        }
    }

    #[test]
    fn every_offered_function_has_an_implementation() {
        for name in NAMES {
            // Called with no arguments, a function complains about its arguments (or returns
            // a value), never that it does not exist.
            if let Err(e) = call(name, &[]) {
                assert!(!e.contains("is not available"), "{name}: {e}");
            }
        }
    }

    #[test]
    fn go_string_helpers() {
        assert_eq!(title("hello wide_world-x"), "Hello Wide_world-X");
        assert_eq!(untitle("Hello World"), "hello world");
        assert_eq!(go_split("abc", ""), vec!["a", "b", "c"]);
        assert_eq!(path_clean("a/../../b/./c/"), "../b/c");
        assert_eq!(path_clean("/../a"), "/a");
        assert_eq!(path_base("a/b/"), "b");
        assert_eq!(path_dir("a/b/c"), "a/b");
        assert_eq!(path_dir("c"), ".");
    }
}
