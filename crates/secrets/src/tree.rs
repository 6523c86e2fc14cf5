//! Walking a document's values the way sops does: which are encrypted, their additional data
//! (the path of keys, `a:b:c:`; list items share their list's path), and the MAC (SHA-512 over
//! the clear values in file order, uppercase hex, itself encrypted with `lastmodified` as
//! additional data).

use regex::Regex;
use sha2::{Digest as _, Sha512};

use crate::cipher::{self, ValueError};
use crate::metadata::Rules;
use crate::node::Node;

/// Bytes sops starts the MAC with when `mac_only_encrypted` is set (sha256 of `sops`).
const MAC_ONLY_ENCRYPTED_INIT: [u8; 32] = [
    0x8a, 0x3f, 0xd2, 0xad, 0x54, 0xce, 0x66, 0x52, 0x7b, 0x10, 0x34, 0xf3, 0xd1, 0x47, 0xbe, 0x0b,
    0x0b, 0x97, 0x5b, 0x3b, 0xf4, 0x4f, 0x72, 0xc6, 0xfd, 0xad, 0xec, 0x81, 0x76, 0xf2, 0x7d, 0x69,
];

/// The compiled encryption rules.
pub(crate) struct Selector {
    rules: Rules,
    unencrypted_regex: Option<Regex>,
    encrypted_regex: Option<Regex>,
}

/// What failed while walking: the path and what was wrong (never the value).
#[derive(Debug)]
pub(crate) struct WalkError {
    pub(crate) path: String,
    pub(crate) problem: ValueError,
}

impl Selector {
    pub(crate) fn new(rules: &Rules) -> Result<Self, (String, regex::Error)> {
        let compile = |name: &str, re: &Option<String>| {
            re.as_deref()
                .map(Regex::new)
                .transpose()
                .map_err(|e| (name.to_owned(), e))
        };
        Ok(Selector {
            unencrypted_regex: compile("unencrypted_regex", &rules.unencrypted_regex)?,
            encrypted_regex: compile("encrypted_regex", &rules.encrypted_regex)?,
            rules: rules.clone(),
        })
    }

    /// Whether the comment rules are in use (ferry does not read comments, see `decrypt`).
    pub(crate) fn uses_comments(&self) -> bool {
        self.rules.encrypted_comment_regex.is_some()
            || self.rules.unencrypted_comment_regex.is_some()
    }

    /// sops's `shouldBeEncrypted` for a value at `path`, without the comment rules.
    fn should_encrypt(&self, path: &[String]) -> bool {
        let mut encrypted = true;
        if let Some(suffix) = &self.rules.unencrypted_suffix
            && path.iter().any(|p| p.ends_with(suffix.as_str()))
        {
            encrypted = false;
        }
        if let Some(suffix) = &self.rules.encrypted_suffix {
            encrypted = path.iter().any(|p| p.ends_with(suffix.as_str()));
        }
        if let Some(re) = &self.unencrypted_regex
            && path.iter().any(|p| re.is_match(p))
        {
            encrypted = false;
        }
        if let Some(re) = &self.encrypted_regex {
            encrypted = path.iter().any(|p| re.is_match(p));
        }
        encrypted
    }

    fn new_mac(&self) -> Sha512 {
        let mut mac = Sha512::new();
        if self.rules.mac_only_encrypted {
            mac.update(MAC_ONLY_ENCRYPTED_INIT);
        }
        mac
    }

    /// Decrypts every branch in place and returns the MAC of the clear values.
    ///
    /// With comment rules (`encrypted_comment_regex`, `unencrypted_comment_regex`) whether a
    /// value is encrypted depends on the comments above it, which ferry does not keep; then a
    /// value counts as encrypted when it is in the `ENC[…]` form. The MAC still covers every
    /// value (or every encrypted one with `mac_only_encrypted`), so a changed value is refused.
    pub(crate) fn decrypt(
        &self,
        branches: &mut [Node],
        key: &[u8; 32],
    ) -> Result<String, WalkError> {
        let mut mac = self.new_mac();
        for branch in branches.iter_mut() {
            self.walk_decrypt(branch, &mut Vec::new(), key, &mut mac)?;
        }
        Ok(hex_upper(&mac.finalize()))
    }

    fn walk_decrypt(
        &self,
        node: &mut Node,
        path: &mut Vec<String>,
        key: &[u8; 32],
        mac: &mut Sha512,
    ) -> Result<(), WalkError> {
        match node {
            Node::Null => Ok(()),
            Node::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    path.push(k.clone());
                    let r = self.walk_decrypt(v, path, key, mac);
                    path.pop();
                    r?;
                }
                Ok(())
            }
            Node::Seq(items) => {
                let mut kept = Vec::with_capacity(items.len());
                for mut item in std::mem::take(items) {
                    // A decrypted `comment` item of a list disappears, as in sops' output.
                    if self.walk_decrypt_item(&mut item, path, key, mac)? {
                        kept.push(item);
                    }
                }
                *items = kept;
                Ok(())
            }
            _ => self.walk_decrypt_item(node, path, key, mac).map(|_| ()),
        }
    }

    /// Decrypts one value; `false` when it was an encrypted comment (to be dropped).
    fn walk_decrypt_item(
        &self,
        node: &mut Node,
        path: &mut Vec<String>,
        key: &[u8; 32],
        mac: &mut Sha512,
    ) -> Result<bool, WalkError> {
        if matches!(node, Node::Map(_) | Node::Seq(_) | Node::Null) {
            self.walk_decrypt(node, path, key, mac)?;
            return Ok(true);
        }
        let at = || path_text(path);
        let encrypted = if self.uses_comments() {
            node.as_str().is_some_and(cipher::is_encrypted_value)
        } else {
            self.should_encrypt(path)
        };
        if encrypted {
            let Node::Str(text) = node else {
                return Err(WalkError {
                    path: at(),
                    problem: ValueError::Malformed,
                });
            };
            match cipher::decrypt_value(text, key, &at()).map_err(|problem| WalkError {
                path: at(),
                problem,
            })? {
                Some(clear) => *node = clear,
                None => return Ok(false),
            }
        }
        if (!self.rules.mac_only_encrypted || encrypted)
            && let Some(bytes) = cipher::mac_bytes(node)
        {
            mac.update(&bytes);
        }
        Ok(true)
    }

    /// Encrypts every branch in place and returns the MAC of the clear values.
    pub(crate) fn encrypt(&self, branches: &mut [Node], key: &[u8; 32]) -> String {
        let mut mac = self.new_mac();
        for branch in branches.iter_mut() {
            self.walk_encrypt(branch, &mut Vec::new(), key, &mut mac);
        }
        hex_upper(&mac.finalize())
    }

    fn walk_encrypt(
        &self,
        node: &mut Node,
        path: &mut Vec<String>,
        key: &[u8; 32],
        mac: &mut Sha512,
    ) {
        match node {
            Node::Null => {}
            Node::Map(entries) => {
                for (k, v) in entries.iter_mut() {
                    path.push(k.clone());
                    self.walk_encrypt(v, path, key, mac);
                    path.pop();
                }
            }
            Node::Seq(items) => {
                for item in items.iter_mut() {
                    self.walk_encrypt(item, path, key, mac);
                }
            }
            scalar => {
                let encrypted = self.should_encrypt(path);
                if (!self.rules.mac_only_encrypted || encrypted)
                    && let Some(bytes) = cipher::mac_bytes(scalar)
                {
                    mac.update(&bytes);
                }
                if encrypted {
                    *scalar = Node::Str(cipher::encrypt_value(scalar, key, &path_text(path)));
                }
            }
        }
    }
}

/// The additional data of a value: its keys joined with `:`, ending with `:`.
fn path_text(path: &[String]) -> String {
    let mut out = path.join(":");
    out.push(':');
    out
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(f: impl FnOnce(&mut Rules)) -> Selector {
        let mut r = Rules::default();
        f(&mut r);
        Selector::new(&r).unwrap()
    }

    #[test]
    fn rules_pick_values_like_sops() {
        let p = |s: &str| s.split(':').map(str::to_owned).collect::<Vec<_>>();
        let s = rules(|r| r.unencrypted_suffix = Some("_unencrypted".into()));
        assert!(s.should_encrypt(&p("data:password")));
        assert!(!s.should_encrypt(&p("a_unencrypted:b")));
        let s = rules(|r| r.encrypted_regex = Some("^(data|stringData)$".into()));
        assert!(s.should_encrypt(&p("stringData:password")));
        assert!(!s.should_encrypt(&p("metadata:name")));
        let s = rules(|r| r.unencrypted_regex = Some("^metadata$".into()));
        assert!(!s.should_encrypt(&p("metadata:name")));
        let s = rules(|r| r.encrypted_suffix = Some("_secret".into()));
        assert!(s.should_encrypt(&p("db_secret")) && !s.should_encrypt(&p("db")));
    }

    #[test]
    fn encrypt_then_decrypt_gives_the_same_tree_and_mac() {
        let tree: Node = serde_json::from_str(
            r#"{"a": {"b": [1, "x", true, null, 2.5]}, "c_unencrypted": "y", "e": ""}"#,
        )
        .unwrap();
        let s = rules(|r| r.unencrypted_suffix = Some("_unencrypted".into()));
        let key = cipher::random::<32>();
        let mut branches = vec![tree.clone()];
        let mac = s.encrypt(&mut branches, &key);
        assert_eq!(branches[0].get("c_unencrypted"), tree.get("c_unencrypted"));
        assert_ne!(branches[0], tree);
        assert_eq!(s.decrypt(&mut branches, &key).unwrap(), mac);
        assert_eq!(branches[0], tree);
        let only = rules(|r| r.mac_only_encrypted = true);
        assert_ne!(only.encrypt(&mut [tree.clone()], &key), mac);
    }
}
