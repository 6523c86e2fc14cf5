//! Evaluation of a parsed condition.

use super::parse::{BinOp, Fail, Node};
use super::{Value, format_number, shown};

pub(super) struct Env<'a> {
    pub(super) result: &'a Value,
    pub(super) elements: Vec<Value>,
}

pub(super) fn eval(node: &Node, env: &mut Env<'_>) -> Result<Value, Fail> {
    match node {
        Node::Lit(v) => Ok(v.clone()),
        Node::Result => Ok(env.result.clone()),
        Node::Element(at) => env.elements.last().cloned().ok_or((
            *at,
            "# is only defined inside {...} of all, any or none".into(),
        )),
        Node::List(items) => Ok(Value::List(
            items
                .iter()
                .map(|i| eval(i, env))
                .collect::<Result<_, _>>()?,
        )),
        Node::Closure(_) => Err((
            0,
            "a {...} predicate is only allowed as the second argument of all, any or none".into(),
        )),
        Node::Not(inner, at) => match eval(inner, env)? {
            Value::Bool(b) => Ok(Value::Bool(!b)),
            other => Err((*at, format!("! needs a boolean, not {}", other.kind()))),
        },
        Node::Neg(inner, at) => match eval(inner, env)? {
            Value::Num(n) => Ok(Value::Num(-n)),
            other => Err((*at, format!("- needs a number, not {}", other.kind()))),
        },
        Node::Ternary(cond, yes, no, at) => match eval(cond, env)? {
            Value::Bool(true) => eval(yes, env),
            Value::Bool(false) => eval(no, env),
            other => Err((
                *at,
                format!("? needs a boolean before it, not {}", other.kind()),
            )),
        },
        Node::Index(list, index, at) => {
            let list = eval(list, env)?;
            let index = eval(index, env)?;
            index_value(&list, &index).map_err(|m| (*at, m))
        }
        Node::Binary(op, left, right, at) => binary(*op, left, right, *at, env),
        Node::Call(name, args, at) => call(name, args, *at, env),
    }
}

fn index_value(list: &Value, index: &Value) -> Result<Value, String> {
    let Value::List(items) = list else {
        return Err(format!(
            "only a list can be indexed, and this is {} ({})",
            list.kind(),
            shown(list)
        ));
    };
    let Value::Num(n) = index else {
        return Err(format!("an index must be a number, not {}", index.kind()));
    };
    if n.fract() != 0.0 {
        return Err(format!(
            "the index {} is not a whole number",
            format_number(*n)
        ));
    }
    let len = items.len() as i64;
    let i = *n as i64;
    let real = if i < 0 { len + i } else { i };
    if real < 0 || real >= len {
        return Err(format!(
            "index {i} is out of range: the list has {len} element{} (an empty Prometheus vector: the query matched no series)",
            if len == 1 { "" } else { "s" }
        ));
    }
    Ok(items[real as usize].clone())
}

fn binary(
    op: BinOp,
    left: &Node,
    right: &Node,
    at: usize,
    env: &mut Env<'_>,
) -> Result<Value, Fail> {
    let l = eval(left, env)?;
    if matches!(op, BinOp::And | BinOp::Or) {
        let Value::Bool(lb) = l else {
            return Err((
                at,
                format!(
                    "{} needs booleans, and its left side is {}",
                    op.shown(),
                    l.kind()
                ),
            ));
        };
        if (op == BinOp::And && !lb) || (op == BinOp::Or && lb) {
            return Ok(Value::Bool(lb));
        }
        return match eval(right, env)? {
            Value::Bool(rb) => Ok(Value::Bool(rb)),
            r => Err((
                at,
                format!(
                    "{} needs booleans, and its right side is {}",
                    op.shown(),
                    r.kind()
                ),
            )),
        };
    }
    let r = eval(right, env)?;
    let mismatch = |l: &Value, r: &Value| {
        let hint = if matches!(l, Value::List(_)) || matches!(r, Value::List(_)) {
            " (a Prometheus vector is a list: use result[0] for its first value)"
        } else {
            ""
        };
        (
            at,
            format!(
                "{} cannot be applied to {} and {}{hint}",
                op.shown(),
                l.kind(),
                r.kind()
            ),
        )
    };
    match op {
        BinOp::Eq => Ok(Value::Bool(l == r)),
        BinOp::Ne => Ok(Value::Bool(l != r)),
        BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => {
            let ord = match (&l, &r) {
                (Value::Num(a), Value::Num(b)) => a.partial_cmp(b),
                (Value::Str(a), Value::Str(b)) => Some(a.cmp(b)),
                _ => return Err(mismatch(&l, &r)),
            };
            // NaN compares false with everything, as in Go.
            let Some(ord) = ord else {
                return Ok(Value::Bool(false));
            };
            Ok(Value::Bool(match op {
                BinOp::Lt => ord.is_lt(),
                BinOp::Le => ord.is_le(),
                BinOp::Gt => ord.is_gt(),
                _ => ord.is_ge(),
            }))
        }
        BinOp::In => match &r {
            Value::List(items) => Ok(Value::Bool(items.contains(&l))),
            _ => Err((
                at,
                format!("in needs a list on its right, not {}", r.kind()),
            )),
        },
        BinOp::Add => match (&l, &r) {
            (Value::Num(a), Value::Num(b)) => Ok(Value::Num(a + b)),
            (Value::Str(a), Value::Str(b)) => Ok(Value::Str(format!("{a}{b}"))),
            _ => Err(mismatch(&l, &r)),
        },
        BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Rem => {
            let (Value::Num(a), Value::Num(b)) = (&l, &r) else {
                return Err(mismatch(&l, &r));
            };
            Ok(Value::Num(match op {
                BinOp::Sub => a - b,
                BinOp::Mul => a * b,
                BinOp::Div => a / b,
                _ => {
                    if a.fract() != 0.0 || b.fract() != 0.0 {
                        return Err((at, "% needs whole numbers".into()));
                    }
                    if *b == 0.0 {
                        return Err((at, "% by zero".into()));
                    }
                    a % b
                }
            }))
        }
        BinOp::And | BinOp::Or => unreachable!("handled above"),
    }
}

fn call(name: &str, args: &[Node], at: usize, env: &mut Env<'_>) -> Result<Value, Fail> {
    let want = match name {
        "default" | "all" | "any" | "none" => 2,
        _ => 1,
    };
    if args.len() != want {
        return Err((
            at,
            format!(
                "{name} takes {want} argument{}, not {}",
                if want == 1 { "" } else { "s" },
                args.len()
            ),
        ));
    }
    if matches!(name, "all" | "any" | "none") {
        let list = eval(&args[0], env)?;
        let Value::List(items) = list else {
            return Err((
                at,
                format!("{name} needs a list first, not {}", list.kind()),
            ));
        };
        let Node::Closure(body) = &args[1] else {
            return Err((
                at,
                format!("{name} needs a predicate in braces second: {name}(result, {{# < 1}})"),
            ));
        };
        let mut count = 0;
        for item in items.iter() {
            env.elements.push(item.clone());
            let v = eval(body, env);
            env.elements.pop();
            match v? {
                Value::Bool(true) => count += 1,
                Value::Bool(false) => {}
                other => {
                    return Err((
                        at,
                        format!(
                            "the predicate of {name} gives {}, not a boolean",
                            other.kind()
                        ),
                    ));
                }
            }
        }
        return Ok(Value::Bool(match name {
            "all" => count == items.len(),
            "any" => count > 0,
            _ => count == 0,
        }));
    }
    let v = eval(&args[0], env)?;
    let number = |v: &Value| match v {
        Value::Num(n) => Ok(*n),
        other => Err((at, format!("{name} needs a number, not {}", other.kind()))),
    };
    match name {
        "len" => match &v {
            Value::List(items) => Ok(Value::Num(items.len() as f64)),
            Value::Str(s) => Ok(Value::Num(s.chars().count() as f64)),
            other => Err((
                at,
                format!("len needs a list or a string, not {}", other.kind()),
            )),
        },
        "isNaN" => Ok(Value::Bool(number(&v)?.is_nan())),
        "isInf" => Ok(Value::Bool(number(&v)?.is_infinite())),
        "isNil" => Ok(Value::Bool(v == Value::Nil)),
        "abs" => Ok(Value::Num(number(&v)?.abs())),
        "asInt" | "asFloat" => {
            let n = match &v {
                Value::Num(n) => *n,
                Value::Str(s) => s
                    .trim()
                    .parse::<f64>()
                    .map_err(|_| (at, format!("{name}: {s:?} is not a number")))?,
                other => {
                    return Err((
                        at,
                        format!("{name} needs a number or a string, not {}", other.kind()),
                    ));
                }
            };
            Ok(Value::Num(if name == "asInt" { n.trunc() } else { n }))
        }
        "default" => {
            if v == Value::Nil {
                eval(&args[1], env)
            } else {
                Ok(v)
            }
        }
        _ => Err((at, format!("unknown function {name:?}"))),
    }
}
