//! The `sops` block of an encrypted file: recipients, the encrypted MAC, and the rules that
//! say which values are encrypted.

use crate::SopsError;
use crate::node::Node;

/// One age recipient of a file: its public key and the data key encrypted to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgeStanza {
    /// `age1…`.
    pub recipient: String,
    /// The data key, age-encrypted and ASCII-armored.
    pub enc: String,
}

/// Which values of a file are encrypted (the rules sops records in the file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// `unencrypted_suffix`: keys ending with it (and everything under them) stay clear.
    pub unencrypted_suffix: Option<String>,
    /// `encrypted_suffix`: only keys ending with it are encrypted.
    pub encrypted_suffix: Option<String>,
    /// `unencrypted_regex`.
    pub unencrypted_regex: Option<String>,
    /// `encrypted_regex`.
    pub encrypted_regex: Option<String>,
    /// `unencrypted_comment_regex`.
    pub unencrypted_comment_regex: Option<String>,
    /// `encrypted_comment_regex`.
    pub encrypted_comment_regex: Option<String>,
    /// `mac_only_encrypted`: the MAC covers the encrypted values only.
    pub mac_only_encrypted: bool,
}

impl Rules {
    /// Whether any rule is set (sops writes `unencrypted_suffix: _unencrypted` when none is).
    pub fn is_empty(&self) -> bool {
        self.unencrypted_suffix.is_none()
            && self.encrypted_suffix.is_none()
            && self.unencrypted_regex.is_none()
            && self.encrypted_regex.is_none()
            && self.unencrypted_comment_regex.is_none()
            && self.encrypted_comment_regex.is_none()
    }
}

/// The `sops` metadata of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metadata {
    /// The age recipients.
    pub age: Vec<AgeStanza>,
    /// Other kinds of keys the file is encrypted for (`pgp`, `kms`, …), which ferry cannot use.
    pub other_keys: Vec<String>,
    /// `lastmodified` (the MAC's additional data).
    pub last_modified: String,
    /// `mac`, encrypted.
    pub mac: String,
    /// The encryption rules.
    pub rules: Rules,
    /// `version`.
    pub version: String,
}

const OTHER_KEY_KINDS: [&str; 6] = ["pgp", "kms", "gcp_kms", "azure_kv", "hc_vault", "hckms"];

fn scalar_text(node: &Node) -> Option<String> {
    match node {
        Node::Str(s) => Some(s.clone()),
        Node::Int(i) => Some(i.to_string()),
        Node::Float(f) => Some(f.to_string()),
        Node::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl Metadata {
    /// Reads the nested `sops` mapping of a YAML or JSON file.
    pub fn from_node(file: &str, node: &Node) -> Result<Self, SopsError> {
        let bad = |message: String| SopsError::Metadata {
            file: file.to_owned(),
            message,
        };
        let Node::Map(entries) = node else {
            return Err(bad("the sops entry is not a mapping".into()));
        };
        let mut fields = Vec::new();
        for (key, value) in entries {
            match (key.as_str(), value) {
                ("age", Node::Seq(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        let field = |name: &str| {
                            item.get(name)
                                .and_then(Node::as_str)
                                .map(str::to_owned)
                                .ok_or_else(|| bad(format!("sops.age[{i}] has no {name}")))
                        };
                        fields.push((format!("age.{i}.recipient"), field("recipient")?));
                        fields.push((format!("age.{i}.enc"), field("enc")?));
                    }
                }
                ("key_groups", Node::Seq(groups)) if !groups.is_empty() => {
                    return Err(bad(
                        "the file uses key_groups (Shamir secret sharing), which ferry does not \
                         support; encrypt it for a plain list of age recipients"
                            .into(),
                    ));
                }
                (kind, Node::Seq(items)) if OTHER_KEY_KINDS.contains(&kind) => {
                    if !items.is_empty() {
                        fields.push((format!("{kind}.0"), String::new()));
                    }
                }
                (_, value) => {
                    if let Some(text) = scalar_text(value) {
                        fields.push((key.clone(), text));
                    }
                }
            }
        }
        Self::from_fields(file, fields)
    }

    /// Reads metadata flattened into `age__list_0__map_recipient`-style keys (dotenv, INI).
    pub fn from_flat(file: &str, flat: &[(String, String)]) -> Result<Self, SopsError> {
        let mut fields = Vec::new();
        for (key, value) in flat {
            if key.starts_with("key_groups__list_") {
                return Err(SopsError::Metadata {
                    file: file.to_owned(),
                    message: "the file uses key_groups (Shamir secret sharing), which ferry does \
                              not support; encrypt it for a plain list of age recipients"
                        .into(),
                });
            }
            let parts: Vec<&str> = key.split("__list_").collect();
            if let [kind, rest] = parts.as_slice() {
                let (index, field) = rest.split_once("__map_").unwrap_or((rest, ""));
                fields.push((format!("{kind}.{index}.{field}"), value.clone()));
            } else {
                fields.push((key.clone(), value.clone()));
            }
        }
        Self::from_fields(file, fields)
    }

    fn from_fields(file: &str, fields: Vec<(String, String)>) -> Result<Self, SopsError> {
        let mut age: Vec<AgeStanza> = Vec::new();
        let mut other_keys = Vec::new();
        let mut meta = Metadata {
            age: Vec::new(),
            other_keys: Vec::new(),
            last_modified: String::new(),
            mac: String::new(),
            rules: Rules::default(),
            version: String::new(),
        };
        let some = |v: String| (!v.is_empty()).then_some(v);
        for (key, value) in fields {
            let parts: Vec<&str> = key.split('.').collect();
            match parts.as_slice() {
                ["age", index, field] => {
                    let index: usize = index.parse().unwrap_or(usize::MAX);
                    if index > 1000 {
                        continue;
                    }
                    if age.len() <= index {
                        age.resize(
                            index + 1,
                            AgeStanza {
                                recipient: String::new(),
                                enc: String::new(),
                            },
                        );
                    }
                    match *field {
                        "recipient" => age[index].recipient = value,
                        "enc" => age[index].enc = value,
                        _ => {}
                    }
                }
                [kind, ..]
                    if OTHER_KEY_KINDS.contains(kind) && !other_keys.iter().any(|k| k == kind) =>
                {
                    other_keys.push((*kind).to_owned());
                }
                [kind, ..] if OTHER_KEY_KINDS.contains(kind) => {}
                ["lastmodified"] => meta.last_modified = value,
                ["mac"] => meta.mac = value,
                ["version"] => meta.version = value,
                ["unencrypted_suffix"] => meta.rules.unencrypted_suffix = some(value),
                ["encrypted_suffix"] => meta.rules.encrypted_suffix = some(value),
                ["unencrypted_regex"] => meta.rules.unencrypted_regex = some(value),
                ["encrypted_regex"] => meta.rules.encrypted_regex = some(value),
                ["unencrypted_comment_regex"] => meta.rules.unencrypted_comment_regex = some(value),
                ["encrypted_comment_regex"] => meta.rules.encrypted_comment_regex = some(value),
                ["mac_only_encrypted"] => {
                    meta.rules.mac_only_encrypted = matches!(value.as_str(), "true" | "True" | "1")
                }
                _ => {}
            }
        }
        meta.age = age
            .into_iter()
            .filter(|a| !a.recipient.is_empty() || !a.enc.is_empty())
            .collect();
        meta.other_keys = other_keys;
        if meta.mac.is_empty() {
            return Err(SopsError::Metadata {
                file: file.to_owned(),
                message: "the sops metadata has no mac; ferry only uses files whose MAC verifies"
                    .into(),
            });
        }
        Ok(meta)
    }

    /// The nested `sops` mapping for YAML and JSON, in the order sops writes it.
    pub fn to_node(&self) -> Node {
        let mut entries = vec![(
            "age".to_owned(),
            Node::Seq(
                self.age
                    .iter()
                    .map(|a| {
                        Node::Map(vec![
                            ("recipient".into(), Node::Str(a.recipient.clone())),
                            ("enc".into(), Node::Str(a.enc.clone())),
                        ])
                    })
                    .collect(),
            ),
        )];
        entries.push(("lastmodified".into(), Node::Str(self.last_modified.clone())));
        entries.push(("mac".into(), Node::Str(self.mac.clone())));
        for (name, value) in self.rule_fields() {
            entries.push((name.into(), Node::Str(value)));
        }
        if self.rules.mac_only_encrypted {
            entries.push(("mac_only_encrypted".into(), Node::Bool(true)));
        }
        entries.push(("version".into(), Node::Str(self.version.clone())));
        Node::Map(entries)
    }

    /// The flattened form for dotenv (`sops_` prefixed by the caller) and INI.
    pub fn to_flat(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (i, a) in self.age.iter().enumerate() {
            out.push((format!("age__list_{i}__map_enc"), a.enc.clone()));
            out.push((format!("age__list_{i}__map_recipient"), a.recipient.clone()));
        }
        out.push(("lastmodified".into(), self.last_modified.clone()));
        out.push(("mac".into(), self.mac.clone()));
        if self.rules.mac_only_encrypted {
            out.push(("mac_only_encrypted".into(), "true".into()));
        }
        out.extend(
            self.rule_fields()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        );
        out.push(("version".into(), self.version.clone()));
        out.sort();
        out
    }

    fn rule_fields(&self) -> Vec<(&'static str, String)> {
        let r = &self.rules;
        [
            ("unencrypted_suffix", &r.unencrypted_suffix),
            ("encrypted_suffix", &r.encrypted_suffix),
            ("unencrypted_regex", &r.unencrypted_regex),
            ("encrypted_regex", &r.encrypted_regex),
            ("unencrypted_comment_regex", &r.unencrypted_comment_regex),
            ("encrypted_comment_regex", &r.encrypted_comment_regex),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
        .collect()
    }

    /// The recipients the file is encrypted for, for error messages.
    pub fn recipients(&self) -> Vec<String> {
        let mut out: Vec<String> = self.age.iter().map(|a| a.recipient.clone()).collect();
        out.extend(self.other_keys.iter().map(|k| format!("({k} keys)")));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_nested_forms_agree() {
        let meta = Metadata {
            age: vec![AgeStanza {
                recipient: "age1x".into(),
                enc: "-----BEGIN AGE ENCRYPTED FILE-----\nabc\n".into(),
            }],
            other_keys: vec![],
            last_modified: "2026-01-01T00:00:00Z".into(),
            mac: "ENC[…]".into(),
            rules: Rules {
                encrypted_regex: Some("^data$".into()),
                mac_only_encrypted: true,
                ..Rules::default()
            },
            version: "3.13.3".into(),
        };
        assert_eq!(Metadata::from_node("f", &meta.to_node()).unwrap(), meta);
        assert_eq!(Metadata::from_flat("f", &meta.to_flat()).unwrap(), meta);
    }

    #[test]
    fn pgp_only_and_shamir_are_named() {
        let node: Node = serde_json::from_str(
            r#"{"pgp": [{"fp": "ABC", "enc": "x"}], "mac": "m", "lastmodified": "t"}"#,
        )
        .unwrap();
        let meta = Metadata::from_node("f", &node).unwrap();
        assert_eq!(meta.recipients(), ["(pgp keys)"]);
        let node: Node =
            serde_json::from_str(r#"{"key_groups": [{"age": []}], "mac": "m"}"#).unwrap();
        let err = Metadata::from_node("f", &node).unwrap_err().to_string();
        assert!(err.contains("Shamir"), "{err}");
    }
}
