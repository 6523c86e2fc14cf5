//! The expression language of `successCondition` and `failureCondition`: a small subset of
//! expr-lang (what Argo Rollouts evaluates), enough for conditions over a measurement's `result`.
//!
//! - literals: numbers (`0.95`, `1e3`), strings (`'a'`, `"a"`), `true`, `false`, `nil`, lists
//!   (`[1, 2]`);
//! - the name `result` (a number for a Prometheus scalar, a list of numbers for a vector);
//! - `result[0]` (an index from the end when negative: `result[-1]`);
//! - arithmetic `+ - * / %` (numbers; `+` also joins strings), unary `-`;
//! - comparisons `== != < <= > >=`, `x in list`;
//! - logic `&&`/`and`, `||`/`or`, `!`/`not` (on booleans only; `&&` and `||` stop early);
//! - parentheses;
//! - functions `len(x)`, `isNaN(x)`, `isInf(x)`, `isNil(x)`, `abs(x)`, `asInt(x)`, `asFloat(x)`,
//!   `default(x, fallback)`, and `all(list, {# < 1})`, `any(list, {...})`, `none(list, {...})`
//!   where `#` is the element.
//!
//! Errors (in parsing and in evaluating) name the expression and the column where the problem is:
//! comparing a list with a number (`result < 1` on a vector), an index past the end (`result[0]`
//! on an empty vector), a condition that gives something other than `true` or `false`.

mod eval;
mod parse;

use eval::{Env, eval};
use parse::{Node, Parser, lex};

/// The longest condition accepted, in characters.
pub const MAX_LENGTH: usize = 4096;
/// The deepest nesting accepted (parentheses, operators, calls), so that neither parsing nor
/// evaluating can exhaust the stack.
pub const MAX_DEPTH: usize = 64;

/// A value an expression works on.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A number (expr-lang's int and float are both numbers here).
    Num(f64),
    /// A string.
    Str(String),
    /// A boolean.
    Bool(bool),
    /// `nil`.
    Nil,
    /// A list.
    List(Vec<Value>),
}

impl Value {
    fn kind(&self) -> &'static str {
        match self {
            Value::Num(_) => "a number",
            Value::Str(_) => "a string",
            Value::Bool(_) => "a boolean",
            Value::Nil => "nil",
            Value::List(_) => "a list",
        }
    }
}

/// An expression that could not be parsed or evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expression {expression:?}, column {column}: {message}")]
pub struct ExprError {
    /// The expression as written.
    pub expression: String,
    /// Where the problem is (1 = the first character).
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// A parsed condition.
#[derive(Debug, Clone)]
pub struct Condition {
    source: String,
    root: Node,
}

impl Condition {
    /// Parses `source`.
    pub fn parse(source: &str) -> Result<Condition, ExprError> {
        let length = source.chars().count();
        if length > MAX_LENGTH {
            return Err(err(
                source,
                MAX_LENGTH,
                format!("the expression is longer than {MAX_LENGTH} characters"),
            ));
        }
        let tokens = lex(source).map_err(|(at, message)| err(source, at, message))?;
        let mut p = Parser {
            tokens: &tokens,
            at: 0,
            end: length,
            depth: 0,
        };
        let root = p.expr().map_err(|(at, m)| err(source, at, m))?;
        if root.depth() > MAX_DEPTH {
            return Err(err(
                source,
                0,
                format!("the expression nests deeper than {MAX_DEPTH} levels; simplify it"),
            ));
        }
        if let Some(t) = p.peek() {
            return Err(err(
                source,
                t.at,
                format!("unexpected {} after a complete expression", t.tok.shown()),
            ));
        }
        Ok(Condition {
            source: source.to_string(),
            root,
        })
    }

    /// The expression as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the condition with `result`; it must give `true` or `false`.
    pub fn eval(&self, result: &Value) -> Result<bool, ExprError> {
        let mut env = Env {
            result,
            elements: Vec::new(),
        };
        match eval(&self.root, &mut env).map_err(|(at, m)| err(&self.source, at, m))? {
            Value::Bool(b) => Ok(b),
            other => Err(err(
                &self.source,
                0,
                format!(
                    "the condition gives {} ({}), not true or false",
                    other.kind(),
                    shown(&other)
                ),
            )),
        }
    }
}

fn err(source: &str, at: usize, message: String) -> ExprError {
    ExprError {
        expression: source.to_string(),
        column: at + 1,
        message,
    }
}

/// A value as the messages show it.
pub fn shown(v: &Value) -> String {
    match v {
        Value::Num(n) => format_number(*n),
        Value::Str(s) => format!("{s:?}"),
        Value::Bool(b) => b.to_string(),
        Value::Nil => "nil".into(),
        Value::List(items) => format!(
            "[{}]",
            items.iter().map(shown).collect::<Vec<_>>().join(",")
        ),
    }
}

/// A number as Prometheus (and Go's `strconv.FormatFloat(f, 'f', -1, 64)`) writes it.
pub fn format_number(n: f64) -> String {
    if n.is_nan() {
        "NaN".into()
    } else if n == f64::INFINITY {
        "+Inf".into()
    } else if n == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        n.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(items: &[f64]) -> Value {
        Value::List(items.iter().map(|n| Value::Num(*n)).collect())
    }

    #[test]
    fn conditions_give_true_or_false() {
        let cases: &[(&str, Value, bool)] = &[
            ("result < 0.05", Value::Num(0.01), true),
            ("result < 0.05", Value::Num(0.5), false),
            ("result >= 0.95", Value::Num(0.95), true),
            ("result[0] >= 0.95", list(&[0.99, 0.1]), true),
            ("result[1] >= 0.95", list(&[0.99, 0.1]), false),
            ("result[-1] == 0.1", list(&[0.99, 0.1]), true),
            ("len(result) == 0", list(&[]), true),
            ("len(result) > 0 && result[0] < 1", list(&[]), false),
            ("len(result) == 0 || result[0] < 1", list(&[]), true),
            ("isNaN(result)", Value::Num(f64::NAN), true),
            ("isNaN(result[0]) || result[0] > 2", list(&[f64::NAN]), true),
            ("result < 1", Value::Num(f64::NAN), false),
            ("result >= 1", Value::Num(f64::NAN), false),
            ("result != result", Value::Num(f64::NAN), true),
            ("isInf(result)", Value::Num(f64::INFINITY), true),
            ("!(result > 1)", Value::Num(0.5), true),
            ("not (result > 1)", Value::Num(0.5), true),
            ("not false and true", Value::Nil, true),
            ("false or result == 2", Value::Num(2.0), true),
            ("result * 100 - 1 > 98 / 2", Value::Num(0.6), true),
            ("(result + 1) * 2 == 4", Value::Num(1.0), true),
            ("result + 1 * 2 == 4", Value::Num(1.0), false),
            ("7 % 4 == 3", Value::Nil, true),
            ("-result < 0", Value::Num(3.0), true),
            ("1e3 == 1000 && .5 == 0.5", Value::Nil, true),
            ("'a' + \"b\" == 'ab'", Value::Nil, true),
            ("'abc' < 'abd'", Value::Nil, true),
            ("result == nil", Value::Nil, true),
            ("isNil(result)", Value::Num(1.0), false),
            ("default(result, 3) == 3", Value::Nil, true),
            (
                "asInt('42') == 42 && asFloat('0.5') == 0.5",
                Value::Nil,
                true,
            ),
            ("abs(result) == 2", Value::Num(-2.0), true),
            ("2 in result", list(&[1.0, 2.0]), true),
            ("3 in result", list(&[1.0, 2.0]), false),
            ("all(result, {# < 0.05})", list(&[0.01, 0.02]), true),
            ("all(result, {# < 0.05})", list(&[0.01, 0.2]), false),
            ("all(result, {# < 0.05})", list(&[]), true),
            ("any(result, {# > 0.1})", list(&[0.01, 0.2]), true),
            ("none(result, {# > 0.1})", list(&[0.01, 0.2]), false),
            ("result > 1 ? true : false", Value::Num(2.0), true),
            ("result == [1, 2]", list(&[1.0, 2.0]), true),
            ("1 == '1'", Value::Nil, false),
        ];
        for (src, result, want) in cases {
            let c = Condition::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(
                c.eval(result).unwrap_or_else(|e| panic!("{src}: {e}")),
                *want,
                "{src} with {}",
                shown(result)
            );
        }
    }

    #[test]
    fn bad_syntax_names_the_expression_and_the_column() {
        let cases: &[(&str, usize, &str)] = &[
            ("result <", 9, "expected a value, found the end"),
            ("result < 0.05)", 14, "unexpected \")\""),
            ("result[0 < 1", 13, "expected \"]\""),
            ("reslt < 1", 1, "unknown name \"reslt\""),
            ("avg(result) < 1", 1, "unknown function \"avg\""),
            ("result < 'abc", 10, "not closed"),
            ("result < 1 < 2", 12, "do not chain"),
            ("result @ 1", 8, "unexpected character '@'"),
            ("", 1, "expected a value"),
        ];
        let deep = [
            format!("{}1{}", "(".repeat(2000), ")".repeat(2000)),
            format!("{}true", "!".repeat(4000)),
            format!("{}1 > 0", "1 + ".repeat(500)),
            format!("{}1{}", "[".repeat(70), "]".repeat(70)),
        ];
        for src in &deep {
            let e = Condition::parse(src).expect_err("too deep");
            assert!(
                e.message.contains("nests deeper than 64 levels"),
                "{}",
                e.message
            );
        }
        let long = format!("{}1 > 0", " ".repeat(MAX_LENGTH));
        let e = Condition::parse(&long).unwrap_err();
        assert!(e.message.contains("longer than 4096"), "{}", e.message);
        for (src, column, want) in cases {
            let e = Condition::parse(src).expect_err(src);
            assert_eq!(e.expression, *src);
            assert_eq!(e.column, *column, "{src}: {e}");
            assert!(e.to_string().contains(want), "{src}: {e}");
            assert!(e.to_string().contains(&format!("{src:?}")), "{e}");
        }
    }

    #[test]
    fn evaluation_errors_say_what_went_wrong_and_where() {
        let cases: &[(&str, Value, usize, &str)] = &[
            ("result < 0.05", list(&[0.01]), 8, "use result[0]"),
            (
                "result[0] < 0.05",
                list(&[]),
                7,
                "out of range: the list has 0 elements",
            ),
            (
                "result[0] < 0.05",
                Value::Num(1.0),
                7,
                "only a list can be indexed",
            ),
            (
                "result",
                Value::Num(1.0),
                1,
                "gives a number (1), not true or false",
            ),
            ("result + 1", Value::Num(1.0), 1, "not true or false"),
            ("result && true", Value::Num(1.0), 8, "&& needs booleans"),
            ("!result", Value::Num(1.0), 1, "! needs a boolean"),
            ("isNaN(result)", list(&[1.0]), 1, "isNaN needs a number"),
            ("len(result, 1) > 0", list(&[]), 1, "len takes 1 argument"),
            ("# > 1", Value::Num(1.0), 1, "# is only defined"),
            ("result[0.5] > 1", list(&[1.0]), 7, "not a whole number"),
        ];
        for (src, result, column, want) in cases {
            let c = Condition::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            let e = c.eval(result).expect_err(src);
            assert_eq!(e.column, *column, "{src}: {e}");
            assert!(e.to_string().contains(want), "{src}: {e}");
        }
    }

    #[test]
    fn and_and_or_stop_early() {
        // The right side would fail (index out of range) if it were evaluated.
        let c = Condition::parse("len(result) > 0 && result[0] > 1").unwrap();
        assert!(!c.eval(&list(&[])).unwrap());
        let c = Condition::parse("len(result) == 0 || result[0] > 1").unwrap();
        assert!(c.eval(&list(&[])).unwrap());
    }

    #[test]
    fn numbers_are_shown_as_prometheus_writes_them() {
        assert_eq!(format_number(0.5), "0.5");
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(f64::NAN), "NaN");
        assert_eq!(format_number(f64::INFINITY), "+Inf");
        assert_eq!(format_number(f64::NEG_INFINITY), "-Inf");
        assert_eq!(shown(&list(&[0.5, 1.0])), "[0.5,1]");
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        /// Text made mostly of the language's own pieces, so that much of it parses.
        fn condition_text() -> impl Strategy<Value = String> {
            proptest::collection::vec(
                prop_oneof![
                    Just("result".to_string()),
                    Just("#".to_string()),
                    "[0-9]{1,3}(\\.[0-9]{1,2})?".prop_map(|s| s),
                    "'[a-z]{0,3}'".prop_map(|s| s),
                    prop_oneof![
                        Just("len("),
                        Just("isNaN("),
                        Just("all(result, {"),
                        Just("any("),
                        Just("default("),
                        Just("asInt("),
                    ]
                    .prop_map(str::to_string),
                    prop_oneof![
                        Just("["),
                        Just("]"),
                        Just("("),
                        Just(")"),
                        Just("{"),
                        Just("}"),
                        Just(","),
                        Just("<"),
                        Just("<="),
                        Just("=="),
                        Just("!="),
                        Just("&&"),
                        Just("||"),
                        Just("!"),
                        Just("not "),
                        Just(" and "),
                        Just(" in "),
                        Just("+"),
                        Just("-"),
                        Just("*"),
                        Just("/"),
                        Just("%"),
                        Just("?"),
                        Just(":"),
                        Just(" "),
                        Just("true"),
                        Just("nil"),
                        Just("\""),
                    ]
                    .prop_map(str::to_string),
                    any::<char>().prop_map(|c| c.to_string()),
                ],
                0..16,
            )
            .prop_map(|parts| parts.concat())
        }

        fn result_value() -> impl Strategy<Value = Value> {
            prop_oneof![
                any::<f64>().prop_map(Value::Num),
                proptest::collection::vec(any::<f64>().prop_map(Value::Num), 0..4)
                    .prop_map(Value::List),
                Just(Value::Nil),
            ]
        }

        proptest! {
            /// Conditions come from Git: no text makes parsing or evaluating panic, and every
            /// error names the expression and a column inside it (or just after it).
            #[test]
            fn no_condition_panics(text in condition_text(), result in result_value()) {
                match Condition::parse(&text) {
                    Ok(c) => {
                        if let Err(e) = c.eval(&result) {
                            prop_assert_eq!(&e.expression, &text);
                            prop_assert!(e.column <= text.chars().count() + 1, "{}", e);
                        }
                    }
                    Err(e) => {
                        prop_assert_eq!(&e.expression, &text);
                        prop_assert!(e.column >= 1 && e.column <= text.chars().count() + 1, "{}", e);
                    }
                }
            }

            /// Comparisons of numbers agree with IEEE comparisons, NaN included.
            #[test]
            fn comparisons_agree_with_floats(a in any::<f64>(), b in any::<f64>()) {
                let list = Value::List(vec![Value::Num(a), Value::Num(b)]);
                for (op, want) in [
                    ("<", a < b), ("<=", a <= b), (">", a > b), (">=", a >= b),
                    ("==", a == b), ("!=", a != b),
                ] {
                    let c = Condition::parse(&format!("result[0] {op} result[1]")).unwrap();
                    prop_assert_eq!(c.eval(&list).unwrap(), want, "{} {} {}", a, op, b);
                }
            }
        }
    }
}
