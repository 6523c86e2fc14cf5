//! A small glob matcher for AppProject rules: `*`, `**`, `?` and `[...]` classes.
//!
//! With a separator (used for repository URLs), `*` and `?` do not match it and `**` does; without
//! one, `*` matches any run of characters. A `[` without a closing `]` is matched literally.

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    AnyChar,
    /// `*` (`cross == false`) or `**` (`cross == true`).
    Star {
        cross: bool,
    },
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
}

fn tokenize(pattern: &str) -> Vec<Token> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                let cross = chars.get(i + 1) == Some(&'*');
                i += if cross { 2 } else { 1 };
                // Runs of stars collapse into one, keeping the widest.
                while chars.get(i) == Some(&'*') {
                    i += 1;
                }
                tokens.push(Token::Star { cross });
            }
            '?' => {
                tokens.push(Token::AnyChar);
                i += 1;
            }
            '[' => match parse_class(&chars[i + 1..]) {
                Some((token, used)) => {
                    tokens.push(token);
                    i += 1 + used;
                }
                None => {
                    tokens.push(Token::Literal('['));
                    i += 1;
                }
            },
            c => {
                tokens.push(Token::Literal(c));
                i += 1;
            }
        }
    }
    tokens
}

/// Parses a class body after `[`; returns the token and the number of chars used (incl. `]`).
fn parse_class(chars: &[char]) -> Option<(Token, usize)> {
    let mut i = 0;
    let negated = matches!(chars.first(), Some('!' | '^'));
    if negated {
        i += 1;
    }
    let mut ranges = Vec::new();
    let mut first = true;
    loop {
        let c = *chars.get(i)?;
        if c == ']' && !first {
            return Some((Token::Class { negated, ranges }, i + 1));
        }
        first = false;
        if chars.get(i + 1) == Some(&'-') && chars.get(i + 2).is_some_and(|&e| e != ']') {
            ranges.push((c, chars[i + 2]));
            i += 3;
        } else {
            ranges.push((c, c));
            i += 1;
        }
    }
}

/// Whether `text` matches the glob `pattern`. See the module docs for the syntax.
pub(crate) fn glob_match(pattern: &str, text: &str, separator: Option<char>) -> bool {
    let tokens = tokenize(pattern);
    let text: Vec<char> = text.chars().collect();
    let is_sep = |c: char| Some(c) == separator;
    // reachable[j]: the tokens consumed so far can match text[..j].
    let mut reachable = vec![false; text.len() + 1];
    reachable[0] = true;
    for token in &tokens {
        let mut next = vec![false; text.len() + 1];
        match token {
            Token::Star { cross } => {
                let mut open = false;
                for j in 0..=text.len() {
                    if reachable[j] {
                        open = true;
                    } else if j > 0 && !*cross && is_sep(text[j - 1]) {
                        open = false;
                    }
                    next[j] = open;
                }
            }
            _ => {
                for j in 0..text.len() {
                    if reachable[j] && single_matches(token, text[j], &is_sep) {
                        next[j + 1] = true;
                    }
                }
            }
        }
        reachable = next;
    }
    reachable[text.len()]
}

fn single_matches(token: &Token, c: char, is_sep: &impl Fn(char) -> bool) -> bool {
    match token {
        Token::Literal(l) => *l == c,
        Token::AnyChar => !is_sep(c),
        Token::Class { negated, ranges } => {
            let inside = ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
            inside != *negated && !is_sep(c)
        }
        Token::Star { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn literals_and_stars() {
        assert!(glob_match("abc", "abc", None));
        assert!(!glob_match("abc", "abcd", None));
        assert!(glob_match("*", "", None));
        assert!(glob_match("*", "anything/at/all", None));
        assert!(glob_match("a*c", "abbbc", None));
        assert!(glob_match("a*b*c", "axxbyyc", None));
        assert!(!glob_match("a*b*c", "axxbyy", None));
        assert!(glob_match("team-*", "team-a", None));
        assert!(!glob_match("team-*", "teams", None));
    }

    #[test]
    fn question_mark_and_classes() {
        assert!(glob_match("a?c", "abc", None));
        assert!(!glob_match("a?c", "ac", None));
        assert!(glob_match("v[0-9]", "v7", None));
        assert!(!glob_match("v[0-9]", "vx", None));
        assert!(glob_match("v[!0-9]", "vx", None));
        assert!(glob_match("v[^0-9]", "vx", None));
        assert!(glob_match("[ab]x", "bx", None));
        assert!(glob_match("[]]", "]", None));
        // Unclosed class is literal.
        assert!(glob_match("a[b", "a[b", None));
    }

    #[test]
    fn separator_limits_single_star() {
        let sep = Some('/');
        assert!(glob_match(
            "https://github.com/org/*",
            "https://github.com/org/repo",
            sep
        ));
        assert!(!glob_match(
            "https://github.com/org/*",
            "https://github.com/org/a/b",
            sep
        ));
        assert!(glob_match(
            "https://github.com/org/**",
            "https://github.com/org/a/b",
            sep
        ));
        assert!(!glob_match(
            "https://github.com/?rg/x",
            "https://github.com//rg/x",
            sep
        ));
        assert!(glob_match(
            "https://github.com/org/*",
            "https://github.com/org/a/b",
            None
        ));
    }
}
