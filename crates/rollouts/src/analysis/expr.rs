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
        let tokens = lex(source).map_err(|(at, message)| err(source, at, message))?;
        let mut p = Parser {
            tokens: &tokens,
            at: 0,
            end: source.chars().count(),
        };
        let root = p.expr().map_err(|(at, m)| err(source, at, m))?;
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

type Fail = (usize, String);

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Hash,
    Op(&'static str),
}

impl Tok {
    fn shown(&self) -> String {
        match self {
            Tok::Num(n) => format!("the number {}", format_number(*n)),
            Tok::Str(s) => format!("the string {s:?}"),
            Tok::Ident(i) => format!("{i:?}"),
            Tok::Hash => "\"#\"".into(),
            Tok::Op(o) => format!("{o:?}"),
        }
    }
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    at: usize,
}

const OPS: [&str; 24] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%", "(", ")", "[", "]",
    "{", "}", ",", ".", "?", ":",
];

fn lex(src: &str) -> Result<Vec<Token>, Fail> {
    let chars: Vec<char> = src.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let start = i;
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let mut j = i + 1;
                if j < chars.len() && (chars[j] == '+' || chars[j] == '-') {
                    j += 1;
                }
                if j < chars.len() && chars[j].is_ascii_digit() {
                    i = j;
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                }
            }
            let text: String = chars[start..i].iter().collect();
            let n: f64 = text
                .parse()
                .map_err(|_| (start, format!("{text:?} is not a number")))?;
            out.push(Token {
                tok: Tok::Num(n),
                at: start,
            });
            continue;
        }
        if c.is_alphabetic() || c == '_' || c == '$' {
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(chars[start..i].iter().collect()),
                at: start,
            });
            continue;
        }
        if c == '\'' || c == '"' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err((start, "a string is not closed".into())),
                    Some(&q) if q == c => {
                        i += 1;
                        break;
                    }
                    Some('\\') => {
                        let e = chars
                            .get(i + 1)
                            .ok_or((i, "a string ends in a backslash".to_string()))?;
                        s.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some(&ch) => {
                        s.push(ch);
                        i += 1;
                    }
                }
            }
            out.push(Token {
                tok: Tok::Str(s),
                at: start,
            });
            continue;
        }
        if c == '#' {
            out.push(Token {
                tok: Tok::Hash,
                at: start,
            });
            i += 1;
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
        match OPS.iter().find(|op| rest.starts_with(**op)) {
            Some(op) => {
                out.push(Token {
                    tok: Tok::Op(op),
                    at: start,
                });
                i += op.chars().count();
            }
            None => return Err((start, format!("unexpected character {c:?}"))),
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl BinOp {
    fn shown(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::In => "in",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Rem => "%",
        }
    }
}

#[derive(Debug, Clone)]
enum Node {
    Lit(Value),
    Result,
    Element(usize),
    List(Vec<Node>),
    Not(Box<Node>, usize),
    Neg(Box<Node>, usize),
    Binary(BinOp, Box<Node>, Box<Node>, usize),
    Ternary(Box<Node>, Box<Node>, Box<Node>, usize),
    Index(Box<Node>, Box<Node>, usize),
    Call(String, Vec<Node>, usize),
    Closure(Box<Node>),
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    end: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn here(&self) -> usize {
        self.peek().map_or(self.end, |t| t.at)
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Op(o), .. }) if *o == op)
    }

    fn is_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Ident(w), .. }) if w == word)
    }

    fn expect(&mut self, op: &str) -> Result<(), Fail> {
        if self.is_op(op) {
            self.at += 1;
            Ok(())
        } else {
            Err((
                self.here(),
                format!("expected {op:?}, found {}", self.found()),
            ))
        }
    }

    fn found(&self) -> String {
        self.peek()
            .map_or("the end of the expression".into(), |t| t.tok.shown())
    }

    fn expr(&mut self) -> Result<Node, Fail> {
        let cond = self.or()?;
        if self.is_op("?") {
            let at = self.here();
            self.at += 1;
            let yes = self.expr()?;
            self.expect(":")?;
            let no = self.expr()?;
            return Ok(Node::Ternary(
                Box::new(cond),
                Box::new(yes),
                Box::new(no),
                at,
            ));
        }
        Ok(cond)
    }

    fn or(&mut self) -> Result<Node, Fail> {
        let mut left = self.and()?;
        while self.is_op("||") || self.is_word("or") {
            let at = self.here();
            self.at += 1;
            let right = self.and()?;
            left = Node::Binary(BinOp::Or, Box::new(left), Box::new(right), at);
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Node, Fail> {
        let mut left = self.comparison()?;
        while self.is_op("&&") || self.is_word("and") {
            let at = self.here();
            self.at += 1;
            let right = self.comparison()?;
            left = Node::Binary(BinOp::And, Box::new(left), Box::new(right), at);
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Node, Fail> {
        let left = self.additive()?;
        let op = match self.peek().map(|t| &t.tok) {
            Some(Tok::Op("==")) => BinOp::Eq,
            Some(Tok::Op("!=")) => BinOp::Ne,
            Some(Tok::Op("<")) => BinOp::Lt,
            Some(Tok::Op("<=")) => BinOp::Le,
            Some(Tok::Op(">")) => BinOp::Gt,
            Some(Tok::Op(">=")) => BinOp::Ge,
            Some(Tok::Ident(w)) if w == "in" => BinOp::In,
            _ => return Ok(left),
        };
        let at = self.here();
        self.at += 1;
        let right = self.additive()?;
        if matches!(
            self.peek().map(|t| &t.tok),
            Some(Tok::Op("==" | "!=" | "<" | "<=" | ">" | ">="))
        ) {
            return Err((
                self.here(),
                "comparisons do not chain; join them with && (a < x && x < b)".into(),
            ));
        }
        Ok(Node::Binary(op, Box::new(left), Box::new(right), at))
    }

    fn additive(&mut self) -> Result<Node, Fail> {
        let mut left = self.multiplicative()?;
        loop {
            let op = match self.peek().map(|t| &t.tok) {
                Some(Tok::Op("+")) => BinOp::Add,
                Some(Tok::Op("-")) => BinOp::Sub,
                _ => return Ok(left),
            };
            let at = self.here();
            self.at += 1;
            let right = self.multiplicative()?;
            left = Node::Binary(op, Box::new(left), Box::new(right), at);
        }
    }

    fn multiplicative(&mut self) -> Result<Node, Fail> {
        let mut left = self.unary()?;
        loop {
            let op = match self.peek().map(|t| &t.tok) {
                Some(Tok::Op("*")) => BinOp::Mul,
                Some(Tok::Op("/")) => BinOp::Div,
                Some(Tok::Op("%")) => BinOp::Rem,
                _ => return Ok(left),
            };
            let at = self.here();
            self.at += 1;
            let right = self.unary()?;
            left = Node::Binary(op, Box::new(left), Box::new(right), at);
        }
    }

    fn unary(&mut self) -> Result<Node, Fail> {
        let at = self.here();
        if self.is_op("!") || self.is_word("not") {
            self.at += 1;
            return Ok(Node::Not(Box::new(self.unary()?), at));
        }
        if self.is_op("-") {
            self.at += 1;
            return Ok(Node::Neg(Box::new(self.unary()?), at));
        }
        if self.is_op("+") {
            self.at += 1;
            return self.unary();
        }
        self.postfix()
    }

    fn postfix(&mut self) -> Result<Node, Fail> {
        let mut node = self.primary()?;
        while self.is_op("[") {
            let at = self.here();
            self.at += 1;
            let index = self.expr()?;
            self.expect("]")?;
            node = Node::Index(Box::new(node), Box::new(index), at);
        }
        Ok(node)
    }

    fn primary(&mut self) -> Result<Node, Fail> {
        let Some(token) = self.peek().cloned() else {
            return Err((
                self.end,
                "expected a value, found the end of the expression".into(),
            ));
        };
        self.at += 1;
        match token.tok {
            Tok::Num(n) => Ok(Node::Lit(Value::Num(n))),
            Tok::Str(s) => Ok(Node::Lit(Value::Str(s))),
            Tok::Hash => Ok(Node::Element(token.at)),
            Tok::Op("(") => {
                let inner = self.expr()?;
                self.expect(")")?;
                Ok(inner)
            }
            Tok::Op("[") => {
                let mut items = Vec::new();
                if !self.is_op("]") {
                    loop {
                        items.push(self.expr()?);
                        if self.is_op(",") {
                            self.at += 1;
                            continue;
                        }
                        break;
                    }
                }
                self.expect("]")?;
                Ok(Node::List(items))
            }
            Tok::Op("{") => {
                let body = self.expr()?;
                self.expect("}")?;
                Ok(Node::Closure(Box::new(body)))
            }
            Tok::Ident(word) => match word.as_str() {
                "true" => Ok(Node::Lit(Value::Bool(true))),
                "false" => Ok(Node::Lit(Value::Bool(false))),
                "nil" => Ok(Node::Lit(Value::Nil)),
                "result" => Ok(Node::Result),
                _ if self.is_op("(") => {
                    if !FUNCTIONS.contains(&word.as_str()) {
                        return Err((
                            token.at,
                            format!(
                                "unknown function {word:?}; the functions are {}",
                                FUNCTIONS.join(", ")
                            ),
                        ));
                    }
                    self.at += 1;
                    let mut args = Vec::new();
                    if !self.is_op(")") {
                        loop {
                            args.push(self.expr()?);
                            if self.is_op(",") {
                                self.at += 1;
                                continue;
                            }
                            break;
                        }
                    }
                    self.expect(")")?;
                    Ok(Node::Call(word, args, token.at))
                }
                _ => Err((
                    token.at,
                    format!("unknown name {word:?}; a condition can use `result`"),
                )),
            },
            other => Err((
                token.at,
                format!("expected a value, found {}", other.shown()),
            )),
        }
    }
}

const FUNCTIONS: [&str; 11] = [
    "len", "isNaN", "isInf", "isNil", "abs", "asInt", "asFloat", "default", "all", "any", "none",
];

struct Env<'a> {
    result: &'a Value,
    elements: Vec<Value>,
}

fn eval(node: &Node, env: &mut Env<'_>) -> Result<Value, Fail> {
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
}
