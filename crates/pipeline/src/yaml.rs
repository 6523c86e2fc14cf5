//! A YAML tree that remembers where each scalar is in the source, and edits that splice new
//! text into the original bytes.
//!
//! [`parse_documents`] reads every document of a stream into a [`Node`] tree whose scalars
//! carry their byte span (quotes included) and style. An [`Edit`] replaces one span, or inserts
//! or removes a `key: value` entry; [`apply_edits`] applies a set of them to the original text,
//! so everything outside the edited spans (comments, key order, quoting, indentation, line
//! endings, other documents) stays byte for byte.

use std::collections::HashMap;
use std::ops::Range;

use granit_parser::{Event, Parser, ScalarStyle, StructureStyle};

/// A YAML node with the source positions needed to edit it in place.
#[derive(Clone, Debug)]
pub(crate) enum Node {
    /// A scalar.
    Scalar(Scalar),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, entries in source order.
    Map(MapNode),
}

/// A scalar, its decoded value and where its source text is.
#[derive(Clone, Debug)]
pub(crate) struct Scalar {
    /// The value after unquoting and unescaping.
    pub(crate) value: String,
    /// How it was written.
    pub(crate) style: ScalarStyle,
    /// Byte range of the source text, quotes included.
    pub(crate) span: Range<usize>,
    /// Whether it sits inside a flow collection (`[…]`, `{…}`), where `,[]{}` are special.
    pub(crate) in_flow: bool,
}

/// A mapping and where its entries are.
#[derive(Clone, Debug)]
pub(crate) struct MapNode {
    /// Entries in source order.
    pub(crate) entries: Vec<(Node, Node)>,
    /// Block (`key: value` lines) or flow (`{key: value}`).
    pub(crate) style: StructureStyle,
}

impl Node {
    /// The scalar's value, if this is a scalar.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Node::Scalar(s) => Some(&s.value),
            _ => None,
        }
    }

    /// The value under `key`, if this is a mapping that has it.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        match self {
            Node::Map(m) => m.get(key),
            _ => None,
        }
    }
}

impl MapNode {
    /// The value under `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&Node> {
        self.entries
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// The key and value scalars under `key`.
    pub(crate) fn entry(&self, key: &str) -> Option<(&Scalar, &Node)> {
        self.entries.iter().find_map(|(k, v)| match k {
            Node::Scalar(s) if s.value == key => Some((s, v)),
            _ => None,
        })
    }
}

/// Why a file could not be parsed.
#[derive(Debug)]
pub(crate) struct ParseFailure(pub(crate) String);

/// At most this many nodes, aliases expanded, in one file: aliases of aliases ("billion laughs")
/// would otherwise grow the tree exponentially.
pub(crate) const MAX_NODES: usize = 1_000_000;

/// Parses every document of `source`. Aliases become copies of the node they refer to, with
/// the anchored node's spans (editing through an alias edits the anchor). A file that expands
/// to more than [`MAX_NODES`] nodes is refused.
pub(crate) fn parse_documents(source: &str) -> Result<Vec<Node>, ParseFailure> {
    let mut builder = Builder::default();
    for next in Parser::new_from_str(source) {
        let (event, span) = next.map_err(|e| ParseFailure(e.to_string()))?;
        let range = span
            .byte_range()
            .ok_or_else(|| ParseFailure("the YAML parser gave no byte offsets".into()))?;
        builder.event(event, range)?;
        if builder.nodes > MAX_NODES {
            return Err(ParseFailure(format!(
                "the YAML expands to more than {MAX_NODES} nodes (aliases of aliases?): refusing to read it"
            )));
        }
    }
    Ok(builder.documents)
}

enum Open {
    Seq(Vec<Node>, StructureStyle, usize),
    Map(Vec<(Node, Node)>, Option<Node>, StructureStyle, usize),
}

#[derive(Default)]
struct Builder {
    documents: Vec<Node>,
    stack: Vec<Open>,
    /// Anchored nodes and how many nodes each holds.
    anchors: HashMap<usize, (Node, usize)>,
    flow_depth: usize,
    /// Nodes built so far, aliases expanded.
    nodes: usize,
}

/// How many nodes `node` holds, itself included.
fn node_count(node: &Node) -> usize {
    match node {
        Node::Scalar(_) => 1,
        Node::Seq(items) => 1 + items.iter().map(node_count).sum::<usize>(),
        Node::Map(map) => {
            1 + map
                .entries
                .iter()
                .map(|(k, v)| node_count(k) + node_count(v))
                .sum::<usize>()
        }
    }
}

impl Builder {
    fn event(&mut self, event: Event<'_>, range: Range<usize>) -> Result<(), ParseFailure> {
        match event {
            Event::Scalar(value, style, anchor, _) => {
                let node = Node::Scalar(Scalar {
                    value: value.into_owned(),
                    style,
                    span: range,
                    in_flow: self.flow_depth > 0,
                });
                self.push(node, anchor);
            }
            Event::Alias(id) => {
                let (node, size) = self
                    .anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| ParseFailure(format!("alias to unknown anchor {id}")))?;
                // The copy counts as all of its nodes.
                self.nodes += size.saturating_sub(1);
                self.push(node, 0);
            }
            Event::SequenceStart(style, anchor, _) => {
                if style == StructureStyle::Flow {
                    self.flow_depth += 1;
                }
                self.stack.push(Open::Seq(Vec::new(), style, anchor));
            }
            Event::SequenceEnd => {
                let Some(Open::Seq(items, style, anchor)) = self.stack.pop() else {
                    return Err(ParseFailure("unbalanced sequence".into()));
                };
                if style == StructureStyle::Flow {
                    self.flow_depth = self.flow_depth.saturating_sub(1);
                }
                self.push(Node::Seq(items), anchor);
            }
            Event::MappingStart(style, anchor, _) => {
                if style == StructureStyle::Flow {
                    self.flow_depth += 1;
                }
                self.stack.push(Open::Map(Vec::new(), None, style, anchor));
            }
            Event::MappingEnd => {
                let Some(Open::Map(entries, pending, style, anchor)) = self.stack.pop() else {
                    return Err(ParseFailure("unbalanced mapping".into()));
                };
                if pending.is_some() {
                    return Err(ParseFailure("a mapping key has no value".into()));
                }
                if style == StructureStyle::Flow {
                    self.flow_depth = self.flow_depth.saturating_sub(1);
                }
                self.push(Node::Map(MapNode { entries, style }), anchor);
            }
            _ => {}
        }
        Ok(())
    }

    fn push(&mut self, node: Node, anchor: usize) {
        self.nodes += 1;
        if anchor != 0 {
            let size = node_count(&node);
            self.anchors.insert(anchor, (node.clone(), size));
        }
        match self.stack.last_mut() {
            None => self.documents.push(node),
            Some(Open::Seq(items, ..)) => items.push(node),
            Some(Open::Map(entries, pending, ..)) => match pending.take() {
                None => *pending = Some(node),
                Some(key) => entries.push((key, node)),
            },
        }
    }
}

/// One change to a source text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Edit {
    /// The bytes replaced (empty for an insertion).
    pub(crate) range: Range<usize>,
    /// The new bytes.
    pub(crate) text: String,
}

/// Applies `edits` to `source`. Edits must not overlap; duplicates (same range and text) are
/// applied once.
pub(crate) fn apply_edits(source: &str, edits: &[Edit]) -> Result<String, String> {
    let mut sorted: Vec<&Edit> = edits.iter().collect();
    sorted.sort_by_key(|e| (e.range.start, e.range.end));
    sorted.dedup();
    let mut out = String::with_capacity(source.len() + 64);
    let mut at = 0;
    for edit in sorted {
        if edit.range.start < at {
            return Err(format!(
                "two edits overlap at byte {}; is one image listed twice?",
                edit.range.start
            ));
        }
        out.push_str(&source[at..edit.range.start]);
        out.push_str(&edit.text);
        at = edit.range.end;
    }
    out.push_str(&source[at..]);
    Ok(out)
}

/// The source text for `value` written in `original`'s style when possible: plain stays plain
/// unless the new value would then read as something else than this string (a number, a
/// boolean, null, or text with YAML indicators), in which case it is double-quoted; single and
/// double quotes stay as they are. Block scalars (`|`, `>`) are not supported.
pub(crate) fn render_scalar(original: &Scalar, value: &str) -> Result<String, String> {
    match original.style {
        ScalarStyle::Plain if plain_is_safe(value, original.in_flow) => Ok(value.to_owned()),
        ScalarStyle::Plain | ScalarStyle::DoubleQuoted => Ok(double_quoted(value)),
        ScalarStyle::SingleQuoted if !value.chars().any(char::is_control) => {
            Ok(format!("'{}'", value.replace('\'', "''")))
        }
        ScalarStyle::SingleQuoted => Ok(double_quoted(value)),
        ScalarStyle::Literal | ScalarStyle::Folded => {
            Err("the value is a block scalar (`|` or `>`); write it as a one-line scalar".into())
        }
    }
}

/// Writes `value` as a new scalar in block or flow context: plain when safe, else double quotes.
pub(crate) fn render_new_scalar(value: &str, in_flow: bool) -> String {
    if plain_is_safe(value, in_flow) {
        value.to_owned()
    } else {
        double_quoted(value)
    }
}

fn double_quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `value` written plain reads back as the same string (YAML 1.1 and 1.2 schemas, as
/// Helm's and Kubernetes' parsers read it).
pub(crate) fn plain_is_safe(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if value.trim() != value || value.chars().any(char::is_control) {
        return false;
    }
    if "-?:,[]{}#&*!|>'\"%@`".contains(first) {
        // `-`, `?` and `:` may start a plain scalar when followed by a non-space, but keep it
        // simple: quote.
        return false;
    }
    if value.contains(": ") || value.contains(" #") || value.ends_with(':') {
        return false;
    }
    if in_flow && value.contains([',', '[', ']', '{', '}']) {
        return false;
    }
    !resolves_to_non_string(value)
}

/// Whether a plain scalar with this text would be read as null, a boolean or a number.
fn resolves_to_non_string(value: &str) -> bool {
    const KEYWORDS: &[&str] = &[
        "~", "null", "true", "false", "yes", "no", "on", "off", "y", "n", ".inf", "-.inf", "+.inf",
        ".nan",
    ];
    if KEYWORDS.contains(&value.to_ascii_lowercase().as_str()) {
        return true;
    }
    // Anything that looks numeric (ints, floats, hex, octal, sexagesimal, `1_000`, `1e3`).
    let body = value.strip_prefix(['-', '+']).unwrap_or(value);
    let starts_numeric = body.starts_with(|c: char| c.is_ascii_digit())
        || (body.starts_with('.') && body[1..].starts_with(|c: char| c.is_ascii_digit()));
    starts_numeric
        && body
            .chars()
            .all(|c| c.is_ascii_hexdigit() || "._:xXoO+-".contains(c))
}

/// The column (bytes since the start of the line) of `offset`.
pub(crate) fn column(source: &str, offset: usize) -> usize {
    offset - source[..offset].rfind('\n').map_or(0, |i| i + 1)
}

/// The line ending the file uses (`\r\n` when its first line break is one).
pub(crate) fn line_ending(source: &str) -> &'static str {
    match source.find('\n') {
        Some(i) if i > 0 && source.as_bytes()[i - 1] == b'\r' => "\r\n",
        _ => "\n",
    }
}

/// An edit adding `key: value` to `map` (after its last entry, with the indentation of its
/// first key for block mappings; `, key: value` before `}` for flow mappings).
pub(crate) fn insert_entry(
    source: &str,
    map: &MapNode,
    key: &str,
    value: &str,
) -> Result<Edit, String> {
    let (Some((first_key, _)), Some((_, last_value))) = (map.entries.first(), map.entries.last())
    else {
        return Err(format!("cannot add `{key}` to an empty mapping"));
    };
    let (Node::Scalar(first_key), Node::Scalar(last_value)) = (first_key, last_value) else {
        return Err(format!(
            "cannot add `{key}`: the mapping's entries are not simple `key: value` lines"
        ));
    };
    let in_flow = map.style == StructureStyle::Flow;
    let rendered = render_new_scalar(value, in_flow);
    if in_flow {
        let at = last_value.span.end;
        return Ok(Edit {
            range: at..at,
            text: format!(", {key}: {rendered}"),
        });
    }
    let indent = " ".repeat(column(source, first_key.span.start));
    let nl = line_ending(source);
    let after = last_value.span.end;
    // Insert after the line the last value ends on (keeping a trailing comment on it).
    match source[after..].find('\n') {
        Some(i) => {
            let at = after + i + 1;
            Ok(Edit {
                range: at..at,
                text: format!("{indent}{key}: {rendered}{nl}"),
            })
        }
        None => Ok(Edit {
            range: source.len()..source.len(),
            text: format!("{nl}{indent}{key}: {rendered}"),
        }),
    }
}

/// An edit removing the entry whose key is `key_scalar` and value `value` from `map`.
///
/// Block mappings: the entry's whole lines go (the key must start its line, after
/// indentation). Flow mappings: the entry and one neighbouring comma go.
pub(crate) fn remove_entry(
    source: &str,
    map: &MapNode,
    key_scalar: &Scalar,
    value: &Node,
) -> Result<Edit, String> {
    let Node::Scalar(value) = value else {
        return Err(format!(
            "cannot remove `{}`: its value is not a scalar",
            key_scalar.value
        ));
    };
    let start = key_scalar.span.start;
    let end = value.span.end.max(key_scalar.span.end);
    if map.style == StructureStyle::Flow {
        let rest = &source[end..];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        if let Some(after_comma) = trimmed.strip_prefix(',') {
            let skip = rest.len() - after_comma.trim_start_matches([' ', '\t']).len();
            return Ok(Edit {
                range: start..end + skip,
                text: String::new(),
            });
        }
        let before = source[..start].trim_end_matches([' ', '\t', '\r', '\n']);
        if let Some(comma) = before.strip_suffix(',') {
            return Ok(Edit {
                range: comma.len()..end,
                text: String::new(),
            });
        }
        return Ok(Edit {
            range: start..end,
            text: String::new(),
        });
    }
    let line_start = source[..start].rfind('\n').map_or(0, |i| i + 1);
    if !source[line_start..start].chars().all(|c| c == ' ') {
        return Err(format!(
            "cannot remove `{}`: it does not start its line; remove it by hand",
            key_scalar.value
        ));
    }
    let line_end = source[end..]
        .find('\n')
        .map_or(source.len(), |i| end + i + 1);
    Ok(Edit {
        range: line_start..line_end,
        text: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alias_bombs_are_refused() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..9 {
            let p = i - 1;
            bomb.push_str(&format!(
                "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
            ));
        }
        let err = parse_documents(&bomb).unwrap_err();
        assert!(err.0.contains("more than"), "{}", err.0);
        // A few aliases are fine.
        let ok = "base: &b {image: nginx:1}\nother: *b\n";
        assert_eq!(parse_documents(ok).unwrap().len(), 1);
    }

    fn scalars(node: &Node, out: &mut Vec<(String, String)>, src: &str) {
        match node {
            Node::Scalar(s) => out.push((s.value.clone(), src[s.span.clone()].to_owned())),
            Node::Seq(items) => items.iter().for_each(|n| scalars(n, out, src)),
            Node::Map(m) => m.entries.iter().for_each(|(k, v)| {
                scalars(k, out, src);
                scalars(v, out, src);
            }),
        }
    }

    #[test]
    fn spans_cover_quotes_and_survive_crlf() {
        let src = "a: 'x'\r\nb: \"y\"\r\n---\r\nc: [d, {e: f}]\r\n";
        let docs = parse_documents(src).unwrap();
        assert_eq!(docs.len(), 2);
        let mut out = Vec::new();
        docs.iter().for_each(|d| scalars(d, &mut out, src));
        let raw: Vec<&str> = out.iter().map(|(_, r)| r.as_str()).collect();
        assert_eq!(raw, ["a", "'x'", "b", "\"y\"", "c", "d", "e", "f"]);
        let Node::Map(m) = &docs[1] else { panic!() };
        let Some(Node::Seq(items)) = m.get("c") else {
            panic!()
        };
        let Node::Scalar(d) = &items[0] else { panic!() };
        assert!(d.in_flow);
    }

    #[test]
    fn aliases_point_at_the_anchor() {
        let src = "a: &img nginx:1\nb: *img\n";
        let docs = parse_documents(src).unwrap();
        let Some(Node::Scalar(b)) = docs[0].get("b") else {
            panic!()
        };
        assert_eq!(&src[b.span.clone()], "nginx:1");
        assert_eq!(b.span.start, 8, "the anchored scalar, not the alias");
    }

    #[test]
    fn quoting_follows_the_original_style() {
        let plain = Scalar {
            value: String::new(),
            style: ScalarStyle::Plain,
            span: 0..0,
            in_flow: false,
        };
        assert_eq!(render_scalar(&plain, "nginx:1.27").unwrap(), "nginx:1.27");
        assert_eq!(render_scalar(&plain, "1.27").unwrap(), "\"1.27\"");
        assert_eq!(render_scalar(&plain, "yes").unwrap(), "\"yes\"");
        assert_eq!(render_scalar(&plain, "v1.27").unwrap(), "v1.27");
        assert_eq!(render_scalar(&plain, "1.27-alpine").unwrap(), "1.27-alpine");
        let single = Scalar {
            style: ScalarStyle::SingleQuoted,
            ..plain.clone()
        };
        assert_eq!(render_scalar(&single, "it's").unwrap(), "'it''s'");
        let flow = Scalar {
            in_flow: true,
            ..plain
        };
        assert_eq!(render_scalar(&flow, "a,b").unwrap(), "\"a,b\"");
    }

    #[test]
    fn inserts_and_removes_entries() {
        let src = "- name: a # c\n  newTag: x\n  digest: sha256:1 # d\n- {name: b, digest: z}\n";
        let docs = parse_documents(src).unwrap();
        let Node::Seq(items) = &docs[0] else { panic!() };
        let Node::Map(block) = &items[0] else {
            panic!()
        };
        let Node::Map(flow) = &items[1] else { panic!() };
        let (dk, dv) = block.entry("digest").unwrap();
        let rm = remove_entry(src, block, dk, dv).unwrap();
        let ins = insert_entry(src, flow, "newTag", "1.0").unwrap();
        let (fk, fv) = flow.entry("digest").unwrap();
        let rm2 = remove_entry(src, flow, fk, fv).unwrap();
        let out = apply_edits(src, &[rm, ins, rm2]).unwrap();
        assert_eq!(
            out,
            "- name: a # c\n  newTag: x\n- {name: b, newTag: \"1.0\"}\n"
        );
        let ins = insert_entry(src, block, "newName", "r/a").unwrap();
        let out = apply_edits(src, &[ins]).unwrap();
        assert!(
            out.contains("  digest: sha256:1 # d\n  newName: r/a\n"),
            "{out}"
        );
    }
}
