//! Lexing and parsing Go's text/template into a tree: text, actions `{{ }}` with `{{-`/`-}}`
//! trimming and `{{/* */}}` comments, pipelines with `|`, variables (`$x :=`, `$x =`,
//! `$i, $v :=`), `if`/`else if`/`else with`/`with`/`range`/`break`/`continue`, `define`,
//! `template` and `block`.

use super::super::{TemplateError, TemplateErrorKind};
use serde_json::Value;
use std::collections::HashMap;

/// A parsed template: its main body and the templates it defines.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub(crate) body: Vec<Node>,
    pub(crate) defines: HashMap<String, Vec<Node>>,
}

#[derive(Debug, Clone)]
pub(crate) enum Node {
    Text(String),
    Action(Pipe),
    If(Branch),
    With(Branch),
    Range(Branch),
    Template {
        name: String,
        pipe: Option<Pipe>,
        pos: usize,
    },
    Break,
    Continue,
}

/// `if`, `with` or `range`: the pipeline, its body and the `else` part.
#[derive(Debug, Clone)]
pub(crate) struct Branch {
    pub(crate) pipe: Pipe,
    pub(crate) body: Vec<Node>,
    pub(crate) otherwise: Vec<Node>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pipe {
    pub(crate) pos: usize,
    /// Variables declared (`:=`) or assigned (`=`).
    pub(crate) decl: Vec<String>,
    pub(crate) assign: bool,
    pub(crate) cmds: Vec<Cmd>,
}

#[derive(Debug, Clone)]
pub(crate) struct Cmd {
    pub(crate) pos: usize,
    pub(crate) args: Vec<Arg>,
}

#[derive(Debug, Clone)]
pub(crate) enum Arg {
    /// `.a.b` (an empty chain is `.`).
    Field(Vec<String>),
    /// `$x.a.b`.
    Var(String, Vec<String>),
    /// `(pipeline).a.b`.
    Pipe(Box<Pipe>, Vec<String>),
    Func(String),
    Lit(Value),
    Nil,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Field(String),
    Var(String),
    Dot,
    Lit(Value),
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
}

/// A token, its byte offset in the text, and whether space came before it.
#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    pos: usize,
    spaced: bool,
}

enum Item {
    Text(String),
    Action(Vec<Token>, usize),
}

/// Line and column (1-based) of byte `pos` in `text`, as `line:col`.
pub(crate) fn position(text: &str, pos: usize) -> String {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{col}")
}

fn parse_error(text: &str, pos: usize, message: impl std::fmt::Display) -> TemplateError {
    TemplateError::new(
        TemplateErrorKind::Parse,
        format!("{}: {message}", position(text, pos)),
    )
}

/// Parses `text`; `is_function` tells which names are functions.
pub(crate) fn parse(text: &str, is_function: &dyn Fn(&str) -> bool) -> Result<Tree, TemplateError> {
    let items = lex(text)?;
    let mut parser = Parser {
        text,
        items,
        at: 0,
        is_function,
        defines: HashMap::new(),
        ranges: 0,
    };
    let (body, end) = parser.list(true)?;
    if let Some((word, pos)) = end {
        return Err(parse_error(text, pos, format!("unexpected {{{{{word}}}}}")));
    }
    Ok(Tree {
        body,
        defines: parser.defines,
    })
}

fn lex(text: &str) -> Result<Vec<Item>, TemplateError> {
    let mut items = Vec::new();
    let mut rest = 0;
    let mut trim_next_text = false;
    while rest <= text.len() {
        let Some(found) = text[rest..].find("{{") else {
            let mut t = &text[rest..];
            if trim_next_text {
                t = t.trim_start_matches(is_space);
            }
            if !t.is_empty() {
                items.push(Item::Text(t.to_string()));
            }
            break;
        };
        let open = rest + found;
        let mut inner = open + 2;
        let trim_left =
            text[inner..].starts_with('-') && text[inner + 1..].starts_with(|c: char| is_space(c));
        let mut t = &text[rest..open];
        if trim_next_text {
            t = t.trim_start_matches(is_space);
        }
        if trim_left {
            t = t.trim_end_matches(is_space);
            inner += 1;
        }
        if !t.is_empty() {
            items.push(Item::Text(t.to_string()));
        }
        // A comment: `{{/*` ... `*/}}`, with optional trim markers around.
        let after_space =
            inner + text[inner..].len() - text[inner..].trim_start_matches(is_space).len();
        if text[after_space..].starts_with("/*") {
            let Some(close) = text[after_space + 2..].find("*/") else {
                return Err(parse_error(text, open, "unclosed comment"));
            };
            let mut end = after_space + 2 + close + 2;
            let tail = &text[end..];
            let spaces = tail.len() - tail.trim_start_matches(is_space).len();
            let (trim_right, len) = if spaces > 0 && tail[spaces..].starts_with("-}}") {
                (true, spaces + 3)
            } else if tail.starts_with("}}") {
                (false, 2)
            } else {
                return Err(parse_error(
                    text,
                    open,
                    "comment ends before closing delimiter",
                ));
            };
            end += len;
            trim_next_text = trim_right;
            rest = end;
            continue;
        }
        let (tokens, end, trim_right) = lex_action(text, inner, open)?;
        items.push(Item::Action(tokens, open));
        trim_next_text = trim_right;
        rest = end;
    }
    Ok(items)
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Lexes one action from `start` to its `}}`; returns the tokens, the offset after the
/// delimiter and whether it was `-}}`.
fn lex_action(
    text: &str,
    start: usize,
    open: usize,
) -> Result<(Vec<Token>, usize, bool), TemplateError> {
    let bytes = text.as_bytes();
    let mut tokens = Vec::new();
    let mut i = start;
    let mut spaced = true;
    let mut parens = 0usize;
    loop {
        if i >= bytes.len() {
            return Err(parse_error(text, open, "unclosed action"));
        }
        let c = text[i..].chars().next().expect("in bounds");
        if is_space(c) {
            let ws_end = i + text[i..].len() - text[i..].trim_start_matches(is_space).len();
            if text[ws_end..].starts_with("-}}") {
                return Ok((tokens, ws_end + 3, true));
            }
            i = ws_end;
            spaced = true;
            continue;
        }
        if text[i..].starts_with("}}") {
            if parens > 0 {
                return Err(parse_error(text, i, "unclosed left paren"));
            }
            return Ok((tokens, i + 2, false));
        }
        let pos = i;
        let (tok, len) = match c {
            '|' => (Tok::Pipe, 1),
            '(' => {
                parens += 1;
                (Tok::LParen, 1)
            }
            ')' => {
                if parens == 0 {
                    return Err(parse_error(text, i, "unexpected right paren"));
                }
                parens -= 1;
                (Tok::RParen, 1)
            }
            ',' => (Tok::Comma, 1),
            '=' => (Tok::Assign, 1),
            ':' if text[i..].starts_with(":=") => (Tok::Declare, 2),
            '"' => {
                let (s, len) = lex_quoted(text, i)?;
                (Tok::Lit(Value::String(s)), len)
            }
            '`' => {
                let Some(end) = text[i + 1..].find('`') else {
                    return Err(parse_error(text, i, "unterminated raw quoted string"));
                };
                (
                    Tok::Lit(Value::String(text[i + 1..i + 1 + end].to_string())),
                    end + 2,
                )
            }
            '\'' => {
                let (ch, len) = lex_char(text, i)?;
                (Tok::Lit(Value::from(ch as i64)), len)
            }
            '$' => {
                let len = 1 + word_len(&text[i + 1..]);
                (Tok::Var(text[i..i + len].to_string()), len)
            }
            '.' => {
                let w = word_len(&text[i + 1..]);
                if w == 0 {
                    if text[i + 1..].starts_with(|c: char| c.is_ascii_digit()) {
                        let (v, len) = lex_number(text, i)?;
                        (Tok::Lit(v), len)
                    } else {
                        (Tok::Dot, 1)
                    }
                } else {
                    (Tok::Field(text[i + 1..i + 1 + w].to_string()), w + 1)
                }
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && text[i + 1..].starts_with(|d: char| d.is_ascii_digit() || d == '.')) =>
            {
                let (v, len) = lex_number(text, i)?;
                (Tok::Lit(v), len)
            }
            c if c.is_alphabetic() || c == '_' => {
                let len = word_len(&text[i..]);
                (Tok::Ident(text[i..i + len].to_string()), len)
            }
            other => {
                return Err(parse_error(
                    text,
                    i,
                    format!("unexpected {other:?} in command"),
                ));
            }
        };
        tokens.push(Token { tok, pos, spaced });
        spaced = false;
        i += len;
    }
}

fn word_len(s: &str) -> usize {
    s.char_indices()
        .find(|(_, c)| !(c.is_alphanumeric() || *c == '_'))
        .map_or(s.len(), |(i, _)| i)
}

fn lex_quoted(text: &str, start: usize) -> Result<(String, usize), TemplateError> {
    let mut out = String::new();
    let mut chars = text[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 2)),
            '\n' => break,
            '\\' => {
                let Some((_, e)) = chars.next() else { break };
                match e {
                    'n' => out.push('\n'),
                    't' => out.push('\t'),
                    'r' => out.push('\r'),
                    '\\' => out.push('\\'),
                    '"' => out.push('"'),
                    '\'' => out.push('\''),
                    'a' => out.push('\x07'),
                    'b' => out.push('\x08'),
                    'f' => out.push('\x0c'),
                    'v' => out.push('\x0b'),
                    'x' | 'u' | 'U' => {
                        let n = match e {
                            'x' => 2,
                            'u' => 4,
                            _ => 8,
                        };
                        let hex: String = (0..n)
                            .filter_map(|_| chars.next().map(|(_, c)| c))
                            .collect();
                        let ch = u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32);
                        match ch {
                            Some(ch) => out.push(ch),
                            None => {
                                return Err(parse_error(
                                    text,
                                    start,
                                    "invalid escape in quoted string",
                                ));
                            }
                        }
                    }
                    _ => {
                        return Err(parse_error(
                            text,
                            start,
                            format!("invalid escape \\{e} in quoted string"),
                        ));
                    }
                }
            }
            c => out.push(c),
        }
    }
    Err(parse_error(text, start, "unterminated quoted string"))
}

fn lex_char(text: &str, start: usize) -> Result<(u32, usize), TemplateError> {
    let body = &text[start + 1..];
    let mut chars = body.char_indices();
    let (ch, consumed) = match chars.next() {
        Some((_, '\\')) => match chars.next() {
            Some((_, 'n')) => ('\n', 2),
            Some((_, 't')) => ('\t', 2),
            Some((_, '\\')) => ('\\', 2),
            Some((_, '\'')) => ('\'', 2),
            _ => return Err(parse_error(text, start, "unsupported character escape")),
        },
        Some((_, c)) => (c, c.len_utf8()),
        None => return Err(parse_error(text, start, "unterminated character constant")),
    };
    if !body[consumed..].starts_with('\'') {
        return Err(parse_error(text, start, "unterminated character constant"));
    }
    Ok((ch as u32, consumed + 2))
}

fn lex_number(text: &str, start: usize) -> Result<(Value, usize), TemplateError> {
    let s = &text[start..];
    let len = s
        .char_indices()
        .skip(1)
        .find(|(i, c)| {
            !(c.is_ascii_alphanumeric()
                || *c == '.'
                || *c == '_'
                || ((*c == '-' || *c == '+')
                    && matches!(s.as_bytes()[i - 1], b'e' | b'E' | b'p' | b'P')))
        })
        .map_or(s.len(), |(i, _)| i);
    let raw = &s[..len];
    let clean = raw.replace('_', "");
    let (neg, digits) = match clean.strip_prefix('-') {
        Some(d) => (true, d.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let lower = digits.to_ascii_lowercase();
    let int = if let Some(h) = lower.strip_prefix("0x") {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = lower.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else if let Some(b) = lower.strip_prefix("0b") {
        i64::from_str_radix(b, 2).ok()
    } else if lower.len() > 1 && lower.starts_with('0') && lower.chars().all(|c| c.is_ascii_digit())
    {
        i64::from_str_radix(&lower[1..], 8).ok()
    } else {
        lower.parse::<i64>().ok()
    };
    let value = match int {
        Some(n) => Value::from(if neg { -n } else { n }),
        None => match lower.parse::<f64>() {
            Ok(f) if f.is_finite() => Value::from(if neg { -f } else { f }),
            _ => {
                return Err(parse_error(
                    text,
                    start,
                    format!("bad number syntax: {raw:?}"),
                ));
            }
        },
    };
    Ok((value, len))
}

struct Parser<'a> {
    text: &'a str,
    items: Vec<Item>,
    at: usize,
    is_function: &'a dyn Fn(&str) -> bool,
    defines: HashMap<String, Vec<Node>>,
    /// How many `range` bodies enclose the current position.
    ranges: usize,
}

/// How a list ended: `end`, `else` (with the rest of the action) or the end of the text.
type ListEnd = Option<(String, usize)>;

impl Parser<'_> {
    /// Parses nodes until `{{end}}` or `{{else ...}}` (returned, the action left in place for
    /// `else`) or the end of the text.
    fn list(&mut self, top: bool) -> Result<(Vec<Node>, ListEnd), TemplateError> {
        let mut nodes = Vec::new();
        while self.at < self.items.len() {
            let item = std::mem::replace(&mut self.items[self.at], Item::Text(String::new()));
            self.at += 1;
            match item {
                Item::Text(t) => nodes.push(Node::Text(t)),
                Item::Action(tokens, pos) => {
                    let keyword = match tokens.first() {
                        Some(Token {
                            tok: Tok::Ident(w), ..
                        }) => w.clone(),
                        None => {
                            return Err(parse_error(self.text, pos, "missing value for command"));
                        }
                        _ => String::new(),
                    };
                    match keyword.as_str() {
                        "end" => {
                            if tokens.len() > 1 {
                                return Err(parse_error(
                                    self.text,
                                    pos,
                                    "unexpected words after end",
                                ));
                            }
                            return Ok((nodes, Some(("end".into(), pos))));
                        }
                        "else" => {
                            // Put the rest back for the caller (`else if ...`).
                            self.at -= 1;
                            self.items[self.at] = Item::Action(tokens[1..].to_vec(), pos);
                            return Ok((nodes, Some(("else".into(), pos))));
                        }
                        "if" | "with" | "range" => {
                            let branch = self.branch(&keyword, &tokens[1..], pos)?;
                            nodes.push(match keyword.as_str() {
                                "if" => Node::If(branch),
                                "with" => Node::With(branch),
                                _ => Node::Range(branch),
                            });
                        }
                        "break" | "continue" => {
                            if self.ranges == 0 {
                                return Err(parse_error(
                                    self.text,
                                    pos,
                                    format!("{{{{{keyword}}}}} outside {{{{range}}}}"),
                                ));
                            }
                            if tokens.len() > 1 {
                                return Err(parse_error(
                                    self.text,
                                    pos,
                                    format!("unexpected words after {keyword}"),
                                ));
                            }
                            nodes.push(if keyword == "break" {
                                Node::Break
                            } else {
                                Node::Continue
                            });
                        }
                        "template" => {
                            let (name, pipe) = self.template_call(&tokens[1..], pos)?;
                            nodes.push(Node::Template { name, pipe, pos });
                        }
                        "define" | "block" => {
                            if keyword == "define" && !top {
                                return Err(parse_error(
                                    self.text,
                                    pos,
                                    "define is allowed only at the top level",
                                ));
                            }
                            let (name, pipe) = self.template_call(&tokens[1..], pos)?;
                            let (body, end) = self.list(false)?;
                            if !matches!(end, Some((ref w, _)) if w == "end") {
                                return Err(parse_error(
                                    self.text,
                                    pos,
                                    format!("unexpected EOF in {keyword}"),
                                ));
                            }
                            self.defines.insert(name.clone(), body);
                            if keyword == "block" {
                                nodes.push(Node::Template { name, pipe, pos });
                            }
                        }
                        _ => nodes.push(Node::Action(self.pipeline(&tokens, pos, false)?)),
                    }
                }
            }
        }
        Ok((nodes, None))
    }

    fn template_call(
        &self,
        tokens: &[Token],
        pos: usize,
    ) -> Result<(String, Option<Pipe>), TemplateError> {
        let Some(Token {
            tok: Tok::Lit(Value::String(name)),
            ..
        }) = tokens.first()
        else {
            return Err(parse_error(
                self.text,
                pos,
                "template name must be a quoted string",
            ));
        };
        let pipe = if tokens.len() > 1 {
            Some(self.pipeline(&tokens[1..], pos, false)?)
        } else {
            None
        };
        Ok((name.clone(), pipe))
    }

    fn branch(
        &mut self,
        keyword: &str,
        tokens: &[Token],
        pos: usize,
    ) -> Result<Branch, TemplateError> {
        if tokens.is_empty() {
            return Err(parse_error(
                self.text,
                pos,
                format!("missing value for {keyword}"),
            ));
        }
        let pipe = self.pipeline(tokens, pos, keyword == "range")?;
        self.ranges += usize::from(keyword == "range");
        let listed = self.list(false);
        self.ranges -= usize::from(keyword == "range");
        let (body, end) = listed?;
        let otherwise = match end {
            Some((w, _)) if w == "end" => Vec::new(),
            Some((_, else_pos)) => {
                // The else action, with `else` already taken off.
                let Item::Action(rest, _) =
                    std::mem::replace(&mut self.items[self.at], Item::Text(String::new()))
                else {
                    unreachable!("else was put back as an action")
                };
                self.at += 1;
                match rest.first() {
                    None => {
                        let (otherwise, end) = self.list(false)?;
                        if !matches!(end, Some((ref w, _)) if w == "end") {
                            return Err(parse_error(
                                self.text,
                                else_pos,
                                format!(
                                    "expected end; found {}",
                                    end.map_or("EOF".into(), |e| e.0)
                                ),
                            ));
                        }
                        otherwise
                    }
                    Some(Token {
                        tok: Tok::Ident(w), ..
                    }) if (w == "if" || w == "with") && keyword != "range" => {
                        // `else if` / `else with`: a nested branch sharing our `end`.
                        let nested = self.branch(w, &rest[1..], else_pos)?;
                        vec![if w == "if" {
                            Node::If(nested)
                        } else {
                            Node::With(nested)
                        }]
                    }
                    _ => {
                        return Err(parse_error(
                            self.text,
                            else_pos,
                            "unexpected words after else",
                        ));
                    }
                }
            }
            None => {
                return Err(parse_error(
                    self.text,
                    pos,
                    format!("unexpected EOF: {keyword} has no end"),
                ));
            }
        };
        Ok(Branch {
            pipe,
            body,
            otherwise,
        })
    }

    fn pipeline(&self, tokens: &[Token], pos: usize, range: bool) -> Result<Pipe, TemplateError> {
        let mut rest = tokens;
        let mut decl = Vec::new();
        let mut assign = false;
        // `$x :=`, `$x =`, `$i, $v :=` (range only).
        if let [
            Token {
                tok: Tok::Var(v), ..
            },
            next,
            ..,
        ] = rest
        {
            match &next.tok {
                Tok::Declare | Tok::Assign => {
                    decl.push(v.clone());
                    assign = next.tok == Tok::Assign;
                    rest = &rest[2..];
                }
                Tok::Comma if range => {
                    if let [
                        _,
                        _,
                        Token {
                            tok: Tok::Var(w), ..
                        },
                        Token {
                            tok: t @ (Tok::Declare | Tok::Assign),
                            ..
                        },
                        ..,
                    ] = rest
                    {
                        decl.push(v.clone());
                        decl.push(w.clone());
                        assign = *t == Tok::Assign;
                        rest = &rest[4..];
                    } else {
                        return Err(parse_error(self.text, next.pos, "too many declarations"));
                    }
                }
                _ => {}
            }
        }
        let mut cmds = Vec::new();
        let mut i = 0;
        loop {
            let cmd_pos = rest.get(i).map_or(pos, |t| t.pos);
            let mut args = Vec::new();
            while i < rest.len() && rest[i].tok != Tok::Pipe {
                let (arg, next) = self.operand(rest, i)?;
                args.push(arg);
                i = next;
            }
            if args.is_empty() {
                return Err(parse_error(self.text, cmd_pos, "missing value for command"));
            }
            cmds.push(Cmd { pos: cmd_pos, args });
            if i >= rest.len() {
                break;
            }
            i += 1; // the `|`
        }
        Ok(Pipe {
            pos,
            decl,
            assign,
            cmds,
        })
    }

    /// One operand starting at `tokens[i]`, with its field chain; returns it and the next index.
    fn operand(&self, tokens: &[Token], i: usize) -> Result<(Arg, usize), TemplateError> {
        let t = &tokens[i];
        let mut next = i + 1;
        let mut chain = Vec::new();
        let arg = match &t.tok {
            Tok::Field(name) => {
                chain.push(name.clone());
                Arg::Field(Vec::new())
            }
            Tok::Dot => Arg::Field(Vec::new()),
            Tok::Var(v) => Arg::Var(v.clone(), Vec::new()),
            Tok::Lit(v) => Arg::Lit(v.clone()),
            Tok::Ident(w) => match w.as_str() {
                "true" => Arg::Lit(Value::Bool(true)),
                "false" => Arg::Lit(Value::Bool(false)),
                "nil" => Arg::Nil,
                name if (self.is_function)(name) => Arg::Func(name.to_string()),
                name => {
                    return Err(TemplateError::new(
                        TemplateErrorKind::UnknownFunction,
                        format!(
                            "{}: {}",
                            position(self.text, t.pos),
                            crate::template::funcs::why_missing(name)
                        ),
                    ));
                }
            },
            Tok::LParen => {
                let mut depth = 0;
                let mut j = i;
                loop {
                    match tokens.get(j).map(|t| &t.tok) {
                        Some(Tok::LParen) => depth += 1,
                        Some(Tok::RParen) => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        Some(_) => {}
                        None => return Err(parse_error(self.text, t.pos, "unclosed left paren")),
                    }
                    j += 1;
                }
                let inner = self.pipeline(&tokens[i + 1..j], t.pos, false)?;
                next = j + 1;
                Arg::Pipe(Box::new(inner), Vec::new())
            }
            other => {
                return Err(parse_error(
                    self.text,
                    t.pos,
                    format!("unexpected {} in operand", describe(other)),
                ));
            }
        };
        while let Some(Token {
            tok: Tok::Field(name),
            spaced: false,
            ..
        }) = tokens.get(next)
        {
            chain.push(name.clone());
            next += 1;
        }
        if let Some(Token {
            tok,
            spaced: false,
            pos,
        }) = tokens.get(next)
        {
            if !matches!(tok, Tok::Pipe | Tok::RParen | Tok::LParen) {
                return Err(parse_error(
                    self.text,
                    *pos,
                    format!("unexpected {} in operand", describe(tok)),
                ));
            }
        }
        let arg = match arg {
            Arg::Field(_) => Arg::Field(chain),
            Arg::Var(v, _) => Arg::Var(v, chain),
            Arg::Pipe(p, _) => Arg::Pipe(p, chain),
            _ if !chain.is_empty() => {
                return Err(parse_error(
                    self.text,
                    t.pos,
                    format!("unexpected .{} after {}", chain[0], describe(&t.tok)),
                ));
            }
            other => other,
        };
        Ok((arg, next))
    }
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(w) => format!("<{w}>"),
        Tok::Field(f) => format!("<.{f}>"),
        Tok::Var(v) => format!("<{v}>"),
        Tok::Dot => "<.>".into(),
        Tok::Lit(v) => format!("<{v}>"),
        Tok::Pipe => "\"|\"".into(),
        Tok::LParen => "\"(\"".into(),
        Tok::RParen => "\")\"".into(),
        Tok::Declare => "\":=\"".into(),
        Tok::Assign => "\"=\"".into(),
        Tok::Comma => "\",\"".into(),
    }
}
