//! The file formats sops writes: YAML (several documents), JSON, dotenv and INI. Each is read
//! into branches (one mapping per YAML document; one for JSON and dotenv; for INI one mapping of
//! sections) and the metadata taken out, and written back the same way.

use serde_saphyr::Spanned;

use crate::SopsError;
use crate::metadata::Metadata;
use crate::node::Node;

/// A file format sops knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.yaml` / `.yml`, possibly several documents.
    Yaml,
    /// `.json`.
    Json,
    /// `.env`: `KEY=value` lines.
    Dotenv,
    /// `.ini`: sections of `key = value`.
    Ini,
}

impl Format {
    /// The format sops would pick for a file name (YAML for an unknown extension).
    pub fn for_path(name: &str) -> Format {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".json") {
            Format::Json
        } else if lower.ends_with(".env") || lower.ends_with(".dotenv") {
            Format::Dotenv
        } else if lower.ends_with(".ini") {
            Format::Ini
        } else {
            Format::Yaml
        }
    }
}

/// A parsed file: its branches (with the metadata removed) and the metadata, if any.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// One mapping per document, metadata removed.
    pub branches: Vec<Node>,
    /// 1-based line where each branch starts.
    pub lines: Vec<usize>,
    /// The `sops` metadata.
    pub metadata: Option<Metadata>,
}

/// Whether a YAML or JSON document carries SOPS metadata: a top-level `sops` mapping with a
/// `mac`.
pub fn has_sops_block(node: &Node) -> bool {
    node.get("sops").is_some_and(|s| s.get("mac").is_some())
}

fn parse_error(file: &str, message: impl Into<String>) -> SopsError {
    SopsError::Parse {
        file: file.to_owned(),
        message: message.into(),
    }
}

/// Parses `text` (the content of `file`) in `format`.
pub fn parse(file: &str, format: Format, text: &str) -> Result<Parsed, SopsError> {
    match format {
        Format::Yaml | Format::Json => {
            let docs: Vec<(usize, Node)> = if format == Format::Json {
                let node: Node = serde_json::from_str(text)
                    .map_err(|e| parse_error(file, format!("invalid JSON: {e}")))?;
                vec![(1, node)]
            } else {
                let docs: Vec<Spanned<Node>> = serde_saphyr::from_multiple_with_options(
                    text,
                    serde_saphyr::options! { strict_booleans: true },
                )
                .map_err(|e| parse_error(file, format!("invalid YAML: {}", e.without_snippet())))?;
                docs.into_iter()
                    .filter(|d| d.value != Node::Null)
                    .map(|d| {
                        (
                            usize::try_from(d.referenced.line()).unwrap_or(1).max(1),
                            d.value,
                        )
                    })
                    .collect()
            };
            let mut metadata = None;
            let mut branches = Vec::new();
            let mut lines = Vec::new();
            for (i, (line, node)) in docs.into_iter().enumerate() {
                let Node::Map(mut entries) = node else {
                    return Err(parse_error(
                        file,
                        format!("document {} is not a mapping", i + 1),
                    ));
                };
                if let Some(pos) = entries.iter().position(|(k, _)| k == "sops") {
                    let (_, meta) = entries.remove(pos);
                    if i == 0 && meta.get("mac").is_some() {
                        metadata = Some(Metadata::from_node(file, &meta)?);
                    }
                }
                branches.push(Node::Map(entries));
                lines.push(line);
            }
            Ok(Parsed {
                branches,
                lines,
                metadata,
            })
        }
        Format::Dotenv => {
            let mut entries = Vec::new();
            let mut flat = Vec::new();
            for (i, line) in text.split('\n').enumerate() {
                let line = line.strip_suffix('\r').unwrap_or(line);
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (key, value) = line
                    .split_once('=')
                    .ok_or_else(|| parse_error(file, format!("line {} is not KEY=value", i + 1)))?;
                let value = value.replace("\\n", "\n");
                match key.strip_prefix("sops_") {
                    Some(meta_key) => flat.push((meta_key.to_owned(), value)),
                    None => entries.push((key.to_owned(), Node::Str(value))),
                }
            }
            let metadata = if flat.iter().any(|(k, _)| k == "mac") {
                Some(Metadata::from_flat(file, &flat)?)
            } else {
                None
            };
            Ok(Parsed {
                branches: vec![Node::Map(entries)],
                lines: vec![1],
                metadata,
            })
        }
        Format::Ini => {
            let mut sections: Vec<(String, Node)> = Vec::new();
            let mut flat = Vec::new();
            let mut current: Option<String> = None;
            for (i, raw) in text.lines().enumerate() {
                let line = raw.trim();
                if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                    continue;
                }
                if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    let name = name.trim().to_owned();
                    if name != "sops" {
                        sections.push((name.clone(), Node::Map(Vec::new())));
                    }
                    current = Some(name);
                    continue;
                }
                let (key, value) = line.split_once('=').ok_or_else(|| {
                    parse_error(file, format!("line {} is not key = value", i + 1))
                })?;
                let (key, value) = (key.trim().to_owned(), value.trim().to_owned());
                let section = current.get_or_insert_with(|| {
                    sections.push(("DEFAULT".into(), Node::Map(Vec::new())));
                    "DEFAULT".into()
                });
                if section == "sops" {
                    flat.push((key, value.replace("\\n", "\n")));
                } else if let Some((_, Node::Map(entries))) =
                    sections.iter_mut().rev().find(|(n, _)| n == section)
                {
                    entries.push((key, Node::Str(value)));
                }
            }
            let metadata = if flat.iter().any(|(k, _)| k == "mac") {
                Some(Metadata::from_flat(file, &flat)?)
            } else {
                None
            };
            Ok(Parsed {
                branches: vec![Node::Map(sections)],
                lines: vec![1],
                metadata,
            })
        }
    }
}

/// Writes branches (and the metadata, when given) in `format`.
pub fn emit(
    file: &str,
    format: Format,
    branches: &[Node],
    metadata: Option<&Metadata>,
) -> Result<String, SopsError> {
    let emit_error = |message: String| SopsError::Parse {
        file: file.to_owned(),
        message,
    };
    let with_meta = |branch: &Node, first: bool| -> Node {
        match (branch, metadata) {
            (Node::Map(entries), Some(meta)) if first || format == Format::Yaml => {
                let mut entries = entries.clone();
                entries.push(("sops".into(), meta.to_node()));
                Node::Map(entries)
            }
            _ => branch.clone(),
        }
    };
    match format {
        Format::Yaml => {
            let mut out = String::new();
            for (i, branch) in branches.iter().enumerate() {
                if i > 0 {
                    out.push_str("---\n");
                }
                // Long values (ENC[…] strings) stay on one line, as sops writes them.
                let options = serde_saphyr::ser_options! { folded_wrap_chars: 1 << 20 };
                let text =
                    serde_saphyr::to_string_with_options(&with_meta(branch, i == 0), options)
                        .map_err(|e| emit_error(format!("writing YAML: {e}")))?;
                out.push_str(&text);
                if !out.ends_with('\n') {
                    out.push('\n');
                }
            }
            Ok(out)
        }
        Format::Json => {
            let branch = branches.first().cloned().unwrap_or(Node::Map(Vec::new()));
            let mut out = serde_json::to_string_pretty(&with_meta(&branch, true))
                .map_err(|e| emit_error(format!("writing JSON: {e}")))?;
            out.push('\n');
            Ok(out)
        }
        Format::Dotenv => {
            let mut out = String::new();
            let line = |out: &mut String, k: &str, v: &str| {
                out.push_str(k);
                out.push('=');
                out.push_str(&v.replace('\n', "\\n"));
                out.push('\n');
            };
            for branch in branches {
                let Node::Map(entries) = branch else { continue };
                for (k, v) in entries {
                    line(&mut out, k, &scalar_text(file, k, v)?);
                }
            }
            for (k, v) in metadata.map(Metadata::to_flat).unwrap_or_default() {
                line(&mut out, &format!("sops_{k}"), &v);
            }
            Ok(out)
        }
        Format::Ini => {
            let mut out = String::new();
            for branch in branches {
                let Node::Map(sections) = branch else {
                    continue;
                };
                for (name, section) in sections {
                    let Node::Map(entries) = section else {
                        return Err(emit_error(format!("INI section {name:?} is not a mapping")));
                    };
                    out.push_str(&format!("[{name}]\n"));
                    for (k, v) in entries {
                        out.push_str(&format!("{k} = {}\n", scalar_text(file, k, v)?));
                    }
                    out.push('\n');
                }
            }
            if let Some(meta) = metadata {
                out.push_str("[sops]\n");
                for (k, v) in meta.to_flat() {
                    out.push_str(&format!("{k} = {}\n", v.replace('\n', "\\n")));
                }
            }
            Ok(out)
        }
    }
}

fn scalar_text(file: &str, key: &str, node: &Node) -> Result<String, SopsError> {
    match node {
        Node::Str(s) => Ok(s.clone()),
        Node::Null => Ok(String::new()),
        Node::Seq(_) | Node::Map(_) => Err(SopsError::Parse {
            file: file.to_owned(),
            message: format!("{key} is a list or a mapping, which this format cannot hold"),
        }),
        other => Ok(
            String::from_utf8(crate::cipher::mac_bytes(other).unwrap_or_default())
                .unwrap_or_default(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_follow_the_file_name() {
        assert_eq!(Format::for_path("a/b.enc.yaml"), Format::Yaml);
        assert_eq!(Format::for_path("s.json"), Format::Json);
        assert_eq!(Format::for_path("app.env"), Format::Dotenv);
        assert_eq!(Format::for_path("x.ini"), Format::Ini);
    }

    #[test]
    fn dotenv_and_ini_round_trip() {
        let env = "A=1\nB=two\\nlines\n";
        let parsed = parse("a.env", Format::Dotenv, env).unwrap();
        assert_eq!(
            parsed.branches[0].get("B"),
            Some(&Node::Str("two\nlines".into()))
        );
        assert_eq!(
            emit("a.env", Format::Dotenv, &parsed.branches, None).unwrap(),
            env
        );
        let ini = "[db]\nuser = me\n\n";
        let parsed = parse("a.ini", Format::Ini, ini).unwrap();
        assert_eq!(
            emit("a.ini", Format::Ini, &parsed.branches, None).unwrap(),
            ini
        );
    }

    #[test]
    fn yaml_reads_strings_as_sops_does() {
        let parsed = parse("a.yaml", Format::Yaml, "on: yes\nn: 5\n---\nb: 1\n").unwrap();
        assert_eq!(parsed.branches.len(), 2);
        assert_eq!(parsed.branches[0].get("on"), Some(&Node::Str("yes".into())));
        assert_eq!(parsed.lines, [1, 4]);
    }
}
