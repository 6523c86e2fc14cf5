//! The lexer and the parser: text to a tree of [`Node`]s, each with the column it starts at.

use super::{Value, format_number};

/// A problem at a position (0-based, in characters) and its message.
pub(super) type Fail = (usize, String);

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Num(f64),
    Str(String),
    Ident(String),
    Hash,
    Op(&'static str),
}

impl Tok {
    pub(super) fn shown(&self) -> String {
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
pub(super) struct Token {
    pub(super) tok: Tok,
    pub(super) at: usize,
}

const OPS: [&str; 24] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "%", "(", ")", "[", "]",
    "{", "}", ",", ".", "?", ":",
];

pub(super) fn lex(src: &str) -> Result<Vec<Token>, Fail> {
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
pub(super) enum BinOp {
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
    pub(super) fn shown(self) -> &'static str {
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
pub(super) enum Node {
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

impl Node {
    /// The depth of the tree (a leaf is 1), counted without recursion.
    pub(super) fn depth(&self) -> usize {
        let mut deepest = 0;
        let mut stack = vec![(self, 1)];
        while let Some((node, d)) = stack.pop() {
            deepest = deepest.max(d);
            let children: Vec<&Node> = match node {
                Node::Lit(_) | Node::Result | Node::Element(_) => Vec::new(),
                Node::List(items) | Node::Call(_, items, _) => items.iter().collect(),
                Node::Not(n, _) | Node::Neg(n, _) | Node::Closure(n) => vec![n],
                Node::Binary(_, a, b, _) | Node::Index(a, b, _) => vec![a, b],
                Node::Ternary(a, b, c, _) => vec![a, b, c],
            };
            stack.extend(children.into_iter().map(|c| (c, d + 1)));
        }
        deepest
    }
}

pub(super) struct Parser<'a> {
    pub(super) tokens: &'a [Token],
    pub(super) at: usize,
    pub(super) end: usize,
    /// How deep the parser has recursed.
    pub(super) depth: usize,
}

impl Parser<'_> {
    pub(super) fn peek(&self) -> Option<&Token> {
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

    fn descend(&mut self) -> Result<(), Fail> {
        self.depth += 1;
        if self.depth > super::MAX_DEPTH {
            return Err((
                self.here(),
                format!(
                    "the expression nests deeper than {} levels; simplify it",
                    super::MAX_DEPTH
                ),
            ));
        }
        Ok(())
    }

    pub(super) fn expr(&mut self) -> Result<Node, Fail> {
        self.descend()?;
        let node = self.conditional();
        self.depth -= 1;
        node
    }

    fn conditional(&mut self) -> Result<Node, Fail> {
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
        self.descend()?;
        let node = self.unary_inner();
        self.depth -= 1;
        node
    }

    fn unary_inner(&mut self) -> Result<Node, Fail> {
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

pub(super) const FUNCTIONS: [&str; 11] = [
    "len", "isNaN", "isInf", "isNil", "abs", "asInt", "asFloat", "default", "all", "any", "none",
];
