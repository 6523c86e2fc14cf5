//! Lexing and parsing Go's text/template into a tree: text, actions `{{ }}` with `{{-`/`-}}`
//! trimming and `{{/* */}}` comments, pipelines with `|`, variables (`$x :=`, `$x =`,
//! `$i, $v :=`), `if`/`else if`/`else with`/`with`/`range`/`break`/`continue`, `define`,
//! `template` and `block`.

use super::lex::{Item, Tok, Token, lex};
use crate::template::{TemplateError, TemplateErrorKind};
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

/// Line and column (1-based) of byte `pos` in `text`, as `line:col`.
pub(crate) fn position(text: &str, pos: usize) -> String {
    let before = &text[..pos.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    format!("{line}:{col}")
}

pub(crate) fn parse_error(
    text: &str,
    pos: usize,
    message: impl std::fmt::Display,
) -> TemplateError {
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
        depth: 0,
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

struct Parser<'a> {
    text: &'a str,
    items: Vec<Item>,
    at: usize,
    is_function: &'a dyn Fn(&str) -> bool,
    defines: HashMap<String, Vec<Node>>,
    /// How many `range` bodies enclose the current position.
    ranges: usize,
    /// How many control structures and parentheses enclose the current position.
    depth: usize,
}

/// How deeply control structures and parentheses may nest (the parser and evaluator recurse).
const MAX_NESTING: usize = 100;

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
        if self.depth >= MAX_NESTING {
            return Err(parse_error(
                self.text,
                pos,
                format!("control structures nest more than {MAX_NESTING} deep"),
            ));
        }
        self.depth += 1;
        self.ranges += usize::from(keyword == "range");
        let listed = self.list(false);
        self.ranges -= usize::from(keyword == "range");
        self.depth -= 1;
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
            && !matches!(tok, Tok::Pipe | Tok::RParen | Tok::LParen)
        {
            return Err(parse_error(
                self.text,
                *pos,
                format!("unexpected {} in operand", describe(tok)),
            ));
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
