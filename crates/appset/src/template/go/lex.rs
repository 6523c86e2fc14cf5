//! Lexing Go's text/template: text, actions `{{ }}` with `{{-`/`-}}` trimming, `{{/* */}}`
//! comments, and the tokens inside actions (words, `.fields`, `$variables`, literals,
//! `|`, `(`, `)`, `:=`, `=`, `,`).

use super::parse::parse_error;
use crate::template::TemplateError;
use serde_json::Value;

/// How deeply parentheses may nest (the parser and evaluator recurse on them).
const MAX_PARENS: usize = 100;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
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
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) pos: usize,
    pub(crate) spaced: bool,
}

pub(crate) enum Item {
    Text(String),
    Action(Vec<Token>, usize),
}

pub(crate) fn lex(text: &str) -> Result<Vec<Item>, TemplateError> {
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
                if parens > MAX_PARENS {
                    return Err(parse_error(
                        text,
                        i,
                        format!("parentheses nest more than {MAX_PARENS} deep"),
                    ));
                }
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
