//! Go's `fmt.Sprintf` for template values: verbs `%v %s %d %q %x %X %o %b %c %f %F %e %E %g %G
//! %t %T %%`, flags `- + # 0 space`, width and precision (also `*`), and Go's `%!verb(type=value)`
//! complaints for a value of the wrong type, a missing or an extra argument.

use super::go::value::{go_float, go_quote, is_int, sprint, type_name};
use serde_json::Value;

#[derive(Default, Clone, Copy)]
struct Spec {
    minus: bool,
    plus: bool,
    sharp: bool,
    zero: bool,
    space: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

pub(crate) fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut next = 0;
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = Spec::default();
        while let Some(&f) = chars.peek() {
            match f {
                '-' => spec.minus = true,
                '+' => spec.plus = true,
                '#' => spec.sharp = true,
                '0' => spec.zero = true,
                ' ' => spec.space = true,
                _ => break,
            }
            chars.next();
        }
        spec.width = number(&mut chars, args, &mut next);
        if chars.peek() == Some(&'.') {
            chars.next();
            spec.prec = Some(number(&mut chars, args, &mut next).unwrap_or(0));
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        let Some(arg) = args.get(next) else {
            out.push_str(&format!("%!{verb}(MISSING)"));
            continue;
        };
        next += 1;
        out.push_str(&format_one(verb, spec, arg));
    }
    if next < args.len() {
        out.push_str("%!(EXTRA ");
        let extra: Vec<String> = args[next..]
            .iter()
            .map(|a| match a {
                Value::Null => "<nil>".to_string(),
                a => format!("{}={}", type_name(a), sprint(a)),
            })
            .collect();
        out.push_str(&extra.join(", "));
        out.push(')');
    }
    out
}

fn number(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    args: &[Value],
    next: &mut usize,
) -> Option<usize> {
    if chars.peek() == Some(&'*') {
        chars.next();
        let n = args
            .get(*next)
            .and_then(Value::as_i64)
            .map(|n| n.max(0) as usize);
        *next += 1;
        return n;
    }
    let mut n: Option<usize> = None;
    while let Some(d) = chars.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0) * 10 + d as usize);
        chars.next();
    }
    n
}

fn bad(verb: char, v: &Value) -> String {
    match v {
        Value::Null => format!("%!{verb}(<nil>)"),
        v => format!("%!{verb}({}={})", type_name(v), sprint(v)),
    }
}

fn format_one(verb: char, spec: Spec, v: &Value) -> String {
    // Lists and maps: the verb applies to each element.
    match v {
        Value::Array(items) if verb != 'T' => {
            let parts: Vec<String> = items
                .iter()
                .map(|x| {
                    format_one(
                        verb,
                        Spec {
                            width: None,
                            ..spec
                        },
                        x,
                    )
                })
                .collect();
            return pad(format!("[{}]", parts.join(" ")), spec, false);
        }
        Value::Object(m) if verb != 'T' => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, x)| {
                    format!(
                        "{}:{}",
                        format_one(verb, Spec::default(), &Value::String(k.clone())),
                        format_one(verb, Spec::default(), x)
                    )
                })
                .collect();
            return pad(format!("map[{}]", parts.join(" ")), spec, false);
        }
        _ => {}
    }
    let text = match verb {
        'v' => match v {
            Value::Null => "<nil>".to_string(),
            Value::Number(n) if !is_int(n) => float(n.as_f64().unwrap_or(0.0), 'g', spec),
            Value::Number(n) => int(n.as_i64().unwrap_or(0), 10, false, spec),
            Value::String(s) if spec.sharp => go_quote(s),
            other => sprint(other),
        },
        'T' => type_name(v).to_string(),
        's' => match v {
            Value::String(s) => truncate(s, spec.prec),
            other => return bad(verb, other),
        },
        'q' => match v {
            Value::String(s) if spec.sharp && !s.contains('`') => format!("`{s}`"),
            Value::String(s) => go_quote(&truncate(s, spec.prec)),
            Value::Number(n) if is_int(n) => {
                let c = n
                    .as_i64()
                    .and_then(|i| u32::try_from(i).ok())
                    .and_then(char::from_u32)
                    .unwrap_or('\u{fffd}');
                let q = go_quote(&c.to_string());
                format!(
                    "'{}'",
                    &q[1..q.len() - 1].replace("\\\"", "\"").replace('\'', "\\'")
                )
            }
            other => return bad(verb, other),
        },
        'd' | 'b' | 'o' | 'x' | 'X' | 'c' => match v {
            Value::Number(n) if is_int(n) => {
                let i = n.as_i64().unwrap_or(0);
                match verb {
                    'd' => int(i, 10, false, spec),
                    'b' => int(i, 2, false, spec),
                    'o' => int(i, 8, false, spec),
                    'x' => int(i, 16, false, spec),
                    'X' => int(i, 16, true, spec),
                    _ => u32::try_from(i)
                        .ok()
                        .and_then(char::from_u32)
                        .unwrap_or('\u{fffd}')
                        .to_string(),
                }
            }
            Value::String(s) if verb == 'x' || verb == 'X' => {
                let hex: String = s.bytes().map(|b| format!("{b:02x}")).collect();
                if verb == 'X' { hex.to_uppercase() } else { hex }
            }
            other => return bad(verb, other),
        },
        'f' | 'F' | 'e' | 'E' | 'g' | 'G' => match v {
            Value::Number(n) if !is_int(n) => float(n.as_f64().unwrap_or(0.0), verb, spec),
            other => return bad(verb, other),
        },
        't' => match v {
            Value::Bool(b) => b.to_string(),
            other => return bad(verb, other),
        },
        other => return bad(other, v),
    };
    let numeric = matches!(v, Value::Number(_)) && verb != 'T' && verb != 'c' && verb != 'q';
    pad(text, spec, numeric)
}

fn truncate(s: &str, prec: Option<usize>) -> String {
    match prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_string(),
    }
}

fn int(i: i64, radix: u32, upper: bool, spec: Spec) -> String {
    let digits = match radix {
        2 => format!("{:b}", i.unsigned_abs()),
        8 => format!("{:o}", i.unsigned_abs()),
        16 if upper => format!("{:X}", i.unsigned_abs()),
        16 => format!("{:x}", i.unsigned_abs()),
        _ => i.unsigned_abs().to_string(),
    };
    let digits = match spec.prec {
        Some(p) if digits.len() < p => format!("{}{digits}", "0".repeat(p - digits.len())),
        _ => digits,
    };
    let prefix = match (spec.sharp, radix) {
        (true, 16) if upper => "0X",
        (true, 16) => "0x",
        (true, 8) => "0",
        (true, 2) => "0b",
        _ => "",
    };
    format!("{}{prefix}{digits}", sign(i < 0, spec))
}

fn sign(negative: bool, spec: Spec) -> &'static str {
    if negative {
        "-"
    } else if spec.plus {
        "+"
    } else if spec.space {
        " "
    } else {
        ""
    }
}

fn float(f: f64, verb: char, spec: Spec) -> String {
    let body = match verb {
        'f' | 'F' => format!("{:.*}", spec.prec.unwrap_or(6), f.abs()),
        'e' | 'E' => {
            let s = format!("{:.*e}", spec.prec.unwrap_or(6), f.abs());
            let (m, e) = s.split_once('e').expect("exponent form");
            let e: i32 = e.parse().unwrap_or(0);
            let s = format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs());
            if verb == 'E' { s.to_uppercase() } else { s }
        }
        _ => {
            let s = match spec.prec {
                None => go_float(f.abs()),
                Some(p) => {
                    let p = p.max(1);
                    let exp = if f == 0.0 {
                        0
                    } else {
                        f.abs().log10().floor() as i32
                    };
                    if exp < -4 || exp >= p as i32 {
                        let s = format!("{:.*e}", p - 1, f.abs());
                        let (m, e) = s.split_once('e').expect("exponent form");
                        let m = if m.contains('.') {
                            m.trim_end_matches('0').trim_end_matches('.')
                        } else {
                            m
                        };
                        let e: i32 = e.parse().unwrap_or(0);
                        format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
                    } else {
                        let decimals = (p as i32 - 1 - exp).max(0) as usize;
                        let s = format!("{:.*}", decimals, f.abs());
                        if s.contains('.') {
                            s.trim_end_matches('0').trim_end_matches('.').to_string()
                        } else {
                            s
                        }
                    }
                }
            };
            if verb == 'G' { s.to_uppercase() } else { s }
        }
    };
    format!("{}{body}", sign(f.is_sign_negative() && f != 0.0, spec))
}

fn pad(s: String, spec: Spec, numeric: bool) -> String {
    let Some(width) = spec.width else { return s };
    let len = s.chars().count();
    if len >= width {
        return s;
    }
    let fill = width - len;
    if spec.minus {
        format!("{s}{}", " ".repeat(fill))
    } else if spec.zero && numeric {
        let (sign, rest) = match s.chars().next() {
            Some(c @ ('-' | '+' | ' ')) => (c.to_string(), s[1..].to_string()),
            _ => (String::new(), s),
        };
        format!("{sign}{}{rest}", "0".repeat(fill))
    } else if spec.zero {
        format!("{}{s}", "0".repeat(fill))
    } else {
        format!("{}{s}", " ".repeat(fill))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn verbs_widths_and_complaints() {
        let f = |fmt: &str, args: Value| sprintf(fmt, args.as_array().unwrap());
        assert_eq!(
            f("%s-%d-%v-%q", json!(["a", 3, true, "b\"c"])),
            "a-3-true-\"b\\\"c\""
        );
        assert_eq!(
            f("%5d|%-5s|%05d|%x|%X", json!([42, "ab", -42, 255, "hi"])),
            "   42|ab   |-0042|ff|6869"
        );
        assert_eq!(
            f("%.2f %e %g", json!([1.23456, 1234.5, 0.5])),
            "1.23 1.234500e+03 0.5"
        );
        assert_eq!(f("%d", json!(["x"])), "%!d(string=x)");
        assert_eq!(f("%s %s", json!(["x"])), "x %!s(MISSING)");
        assert_eq!(f("%s", json!(["x", 1])), "x%!(EXTRA int=1)");
        assert_eq!(f("%v %s", json!([null, null])), "<nil> %!s(<nil>)");
        assert_eq!(
            f("%v %d", json!([[1, 2], [3, "a"]])),
            "[1 2] [3 %!d(string=a)]"
        );
        assert_eq!(f("100%%", json!([])), "100%");
        assert_eq!(f("%T %T", json!([1, 1.5])), "int float64");
        assert_eq!(f("%q", json!([65])), "'A'");
    }
}
