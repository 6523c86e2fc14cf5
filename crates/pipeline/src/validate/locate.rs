//! Turning a path into an object (`.spec.replicas`) into a line and column of its file, with
//! the span tree of [`crate::yaml`].
//!
//! A file's objects are found the way `ferry_source::render::render_directory` finds them:
//! documents in order, empty and `null` documents skipped, the `items` of a `List` (or of a
//! `…List` kind with an `items` list) in place of the list. The n-th object of a file here is
//! the n-th manifest the renderer returned for it.

use granit_parser::ScalarStyle;

use super::schema::{Segment, Target};
use crate::yaml::{Node, Scalar, parse_documents};

/// The objects of one file, as span trees.
pub(crate) struct FileSpans {
    text: String,
    objects: Vec<Node>,
}

/// A 1-based line and column.
pub(crate) type Position = (usize, usize);

impl FileSpans {
    /// Parses `text` (YAML or JSON); `None` when the span parser cannot read it.
    pub(crate) fn parse(text: String) -> Option<Self> {
        let text = match text.strip_prefix('\u{feff}') {
            Some(rest) => rest.to_owned(),
            None => text,
        };
        let documents = parse_documents(&text).ok()?;
        let mut objects = Vec::new();
        for document in documents {
            if !is_null(&document) {
                push_objects(document, &mut objects);
            }
        }
        Some(Self { text, objects })
    }

    /// Where the `target` of `path` in the `index`-th object is. A path that does not exist in
    /// the source (a missing field) points at the deepest node that does.
    pub(crate) fn position(
        &self,
        index: usize,
        path: &[Segment],
        target: Target,
    ) -> Option<Position> {
        let mut node = self.objects.get(index)?;
        let mut key: Option<&Scalar> = None;
        let mut complete = true;
        for segment in path {
            let next = match (segment, node) {
                (Segment::Key(k), Node::Map(m)) => m.entries.iter().find_map(|(kn, v)| match kn {
                    Node::Scalar(s) if s.value == *k => Some((Some(s), v)),
                    _ => None,
                }),
                (Segment::Index(i), Node::Seq(items)) => items.get(*i).map(|v| (None, v)),
                _ => None,
            };
            match next {
                Some((k, v)) => {
                    key = k;
                    node = v;
                }
                None => {
                    complete = false;
                    break;
                }
            }
        }
        let offset = match (target, key) {
            (Target::Key, Some(k)) if complete => Some(k.span.start),
            _ => start_of(node).or(key.map(|k| k.span.start)),
        }?;
        Some(self.line_column(offset))
    }

    fn line_column(&self, offset: usize) -> Position {
        let before = &self.text[..offset.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }
}

/// Where a node's text starts: a scalar's first byte, a collection's first entry.
fn start_of(node: &Node) -> Option<usize> {
    match node {
        Node::Scalar(s) => Some(s.span.start),
        Node::Seq(items) => items.first().and_then(start_of),
        Node::Map(m) => m.entries.first().and_then(|(k, _)| start_of(k)),
    }
}

fn is_null(node: &Node) -> bool {
    matches!(node, Node::Scalar(s) if s.style == ScalarStyle::Plain
        && matches!(s.value.as_str(), "" | "~" | "null" | "Null" | "NULL"))
}

fn push_objects(node: Node, out: &mut Vec<Node>) {
    let kind = node.get("kind").and_then(Node::as_str).unwrap_or_default();
    let is_list = kind.ends_with("List")
        && match node.get("items") {
            Some(Node::Seq(_)) => true,
            Some(n) if is_null(n) => kind == "List",
            None => kind == "List",
            Some(_) => false,
        };
    if !is_list {
        out.push(node);
        return;
    }
    if let Some(Node::Seq(items)) = node.get("items") {
        for item in items.clone() {
            push_objects(item, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> Segment {
        Segment::Key(k.into())
    }

    #[test]
    fn positions_of_keys_values_and_missing_fields() {
        let text = "---\n# empty\n---\napiVersion: v1\nkind: List\nitems:\n  - kind: A\n    spec:\n      replicas: \"3\"\n---\nkind: B\nspec: {x: 1}\n";
        let spans = FileSpans::parse(text.to_owned()).unwrap();
        let path = [key("spec"), key("replicas")];
        assert_eq!(spans.position(0, &path, Target::Value), Some((9, 17)));
        assert_eq!(spans.position(0, &path, Target::Key), Some((9, 7)));
        // A missing field points at the mapping that lacks it.
        let missing = [key("spec"), key("selector")];
        assert_eq!(spans.position(0, &missing, Target::Value), Some((9, 7)));
        assert_eq!(
            spans.position(1, &[key("spec")], Target::Value),
            Some((12, 8))
        );
        assert_eq!(spans.position(1, &[], Target::Value), Some((11, 1)));
        assert_eq!(spans.position(2, &[], Target::Value), None);
    }
}
