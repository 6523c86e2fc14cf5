//! ferry's SOPS support: files encrypted by [sops](https://github.com/getsops/sops) with age
//! keys, read and written in sops's own format so the two tools interoperate.
//!
//! Where to start:
//!
//! - [`decrypt`] takes a file's text and a [`KeyRing`] and returns its branches in clear, after
//!   the MAC over every value has verified; a file whose MAC does not verify is refused whole.
//!   [`decrypt_document`] does the same for one YAML document that carries its own `sops` block
//!   (the objects of a `kustomize build`).
//! - [`encrypt`] encrypts a clear file for age recipients with the encryption [`Rules`]
//!   (`encrypted_regex`, `unencrypted_suffix`, …) and writes it as sops does.
//! - [`formats`] reads and writes YAML, JSON, dotenv and INI; [`cipher`] the
//!   `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` values (AES-256-GCM with a 32-byte nonce, the
//!   value's path `a:b:` as additional data); [`tree`] which values are encrypted and the MAC.
//!
//! Only age (X25519) recipients are supported. A file encrypted only for PGP, a cloud KMS or
//! Vault, or with `key_groups` (Shamir), is refused with an error that says so. Comments are not
//! kept by [`decrypt`] (ferry reads objects, not text). Errors never contain a clear value.

pub mod cipher;
pub mod formats;
mod keys;
pub mod metadata;
pub mod node;
mod tree;

use std::time::{SystemTime, UNIX_EPOCH};

pub use formats::{Format, Parsed, has_sops_block};
pub use keys::{KeyRing, generate_identity, parse_recipient};
pub use metadata::{AgeStanza, Metadata, Rules};
pub use node::Node;

/// The sops version whose file format ferry writes.
pub const SOPS_FORMAT_VERSION: &str = "3.13.3";

/// Why a file could not be decrypted or encrypted. Names the file (and the value's path); never
/// holds a clear value.
#[derive(Debug, thiserror::Error)]
pub enum SopsError {
    /// The file does not parse in its format.
    #[error("{file}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The `sops` metadata is malformed or uses something ferry does not support.
    #[error("{file}: {message}")]
    Metadata {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
    /// The file is encrypted only for keys ferry cannot use (PGP, cloud KMS, Vault).
    #[error(
        "{file} is encrypted only for {kinds}; ferry decrypts age recipients only (PGP and KMS \
         are out of scope): add an age recipient with `sops updatekeys` or `ferry secret rotate`"
    )]
    UnsupportedKeys {
        /// The file.
        file: String,
        /// `pgp`, `kms`, …
        kinds: String,
    },
    /// None of the available identities opens the file's data key.
    #[error(
        "{file}: no age key available here opens it; it is encrypted for {recipients}, the keys \
         available are {available}: give the matching key (or re-encrypt the file for an \
         available one)"
    )]
    NoMatchingKey {
        /// The file.
        file: String,
        /// The recipients it is encrypted for, comma-separated.
        recipients: String,
        /// The public keys that were tried, comma-separated (or `none`).
        available: String,
    },
    /// The MAC over the file's values does not verify.
    #[error(
        "{file}: the MAC does not verify, so the file was changed after it was encrypted; \
         refusing all of it. Restore it from a good commit, or edit it with `sops` or `ferry \
         secret edit`"
    )]
    MacMismatch {
        /// The file.
        file: String,
    },
    /// One value does not decrypt.
    #[error("{file}: the value at {path} {problem}; refusing the whole file")]
    Value {
        /// The file.
        file: String,
        /// The value's path (`stringData:password:`).
        path: String,
        /// What is wrong.
        #[source]
        problem: cipher::ValueError,
    },
    /// A key or recipient is unusable.
    #[error("age key {source_name}: {message}")]
    Key {
        /// Where the key came from (a Secret's entry, a recipient as given).
        source_name: String,
        /// What is wrong.
        message: String,
    },
    /// An `encrypted_regex` or `unencrypted_regex` does not compile.
    #[error("{file}: {field} is not a valid regular expression: {source}")]
    Regex {
        /// The file.
        file: String,
        /// The field.
        field: String,
        /// What the regex parser said.
        #[source]
        source: regex::Error,
    },
    /// The file has no `sops` metadata.
    #[error("{file} is not encrypted with sops (it has no sops metadata with a mac)")]
    NotEncrypted {
        /// The file.
        file: String,
    },
    /// The file is already encrypted.
    #[error("{file} is already encrypted with sops; decrypt it first, or use edit or rotate")]
    AlreadyEncrypted {
        /// The file.
        file: String,
    },
    /// Something ferry does not do (yet), said plainly.
    #[error("{file}: {message}")]
    Unsupported {
        /// The file.
        file: String,
        /// What and what to do instead.
        message: String,
    },
}

/// A decrypted file: its clear branches, where each starts, and the metadata it had.
#[derive(Clone)]
pub struct Decrypted {
    /// One mapping per document.
    pub branches: Vec<Node>,
    /// 1-based line where each document starts.
    pub lines: Vec<usize>,
    /// The file's metadata (to re-encrypt with the same rules and recipients).
    pub metadata: Metadata,
    /// The data key (kept by `edit` to re-encrypt for the same recipients).
    pub data_key: [u8; 32],
}

impl std::fmt::Debug for Decrypted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the clear values nor the data key.
        f.debug_struct("Decrypted")
            .field("documents", &self.branches.len())
            .field("recipients", &self.metadata.recipients())
            .finish_non_exhaustive()
    }
}

/// Whether `text` (in `format`) is a sops-encrypted file, judged cheaply before parsing.
pub fn looks_encrypted(format: Format, text: &str) -> bool {
    match format {
        Format::Yaml | Format::Json => text.contains("sops") && text.contains("mac"),
        Format::Dotenv => text.contains("sops_mac="),
        Format::Ini => text.contains("[sops]"),
    }
}

/// Decrypts the file `file` (its text in `format`) with `keys`: the data key from an age
/// stanza one of the keys opens, every encrypted value, then the MAC, which must match.
pub fn decrypt(
    file: &str,
    format: Format,
    text: &str,
    keys: &KeyRing,
) -> Result<Decrypted, SopsError> {
    let parsed = formats::parse(file, format, text)?;
    let metadata = parsed.metadata.ok_or_else(|| SopsError::NotEncrypted {
        file: file.to_owned(),
    })?;
    decrypt_parsed(file, parsed.branches, parsed.lines, metadata, keys)
}

/// Decrypts one document (a mapping with its own top-level `sops` block), as Flux does for
/// each object of a `kustomize build`.
pub fn decrypt_document(file: &str, document: Node, keys: &KeyRing) -> Result<Node, SopsError> {
    let Node::Map(mut entries) = document else {
        return Err(SopsError::NotEncrypted {
            file: file.to_owned(),
        });
    };
    let pos = entries
        .iter()
        .position(|(k, v)| k == "sops" && v.get("mac").is_some())
        .ok_or_else(|| SopsError::NotEncrypted {
            file: file.to_owned(),
        })?;
    let (_, meta) = entries.remove(pos);
    let metadata = Metadata::from_node(file, &meta)?;
    let mut out = decrypt_parsed(file, vec![Node::Map(entries)], vec![1], metadata, keys)?;
    Ok(out.branches.remove(0))
}

fn decrypt_parsed(
    file: &str,
    mut branches: Vec<Node>,
    lines: Vec<usize>,
    metadata: Metadata,
    keys: &KeyRing,
) -> Result<Decrypted, SopsError> {
    if metadata.age.is_empty() {
        return Err(if metadata.other_keys.is_empty() {
            SopsError::Metadata {
                file: file.to_owned(),
                message: "the sops metadata names no recipient".into(),
            }
        } else {
            SopsError::UnsupportedKeys {
                file: file.to_owned(),
                kinds: metadata.other_keys.join(", "),
            }
        });
    }
    let data_key = keys
        .unwrap_data_key(&metadata.age)
        .ok_or_else(|| SopsError::NoMatchingKey {
            file: file.to_owned(),
            recipients: metadata.recipients().join(", "),
            available: if keys.is_empty() {
                "none".to_owned()
            } else {
                keys.recipients().join(", ")
            },
        })?;
    let selector =
        tree::Selector::new(&metadata.rules).map_err(|(field, source)| SopsError::Regex {
            file: file.to_owned(),
            field,
            source,
        })?;
    let computed = selector
        .decrypt(&mut branches, &data_key)
        .map_err(|e| SopsError::Value {
            file: file.to_owned(),
            path: e.path,
            problem: e.problem,
        })?;
    let stored = cipher::decrypt_bytes(
        &metadata.mac,
        &data_key,
        &normalize_rfc3339(&metadata.last_modified),
    )
    .map(|(bytes, _)| bytes)
    .map_err(|_| SopsError::MacMismatch {
        file: file.to_owned(),
    })?;
    if stored != computed.as_bytes() {
        return Err(SopsError::MacMismatch {
            file: file.to_owned(),
        });
    }
    Ok(Decrypted {
        branches,
        lines,
        metadata,
        data_key,
    })
}

/// Go formats `lastmodified` with `time.RFC3339` (no fractional seconds) before using it as the
/// MAC's additional data.
fn normalize_rfc3339(text: &str) -> String {
    match text.find('.') {
        Some(dot) => {
            let rest = &text[dot + 1..];
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            format!("{}{}", &text[..dot], &rest[end..])
        }
        None => text.to_owned(),
    }
}

/// What to encrypt for: recipients and rules (from flags or a `.sops.yaml` creation rule).
#[derive(Clone, Debug, Default)]
pub struct EncryptOptions {
    /// age recipients (`age1…`).
    pub recipients: Vec<String>,
    /// Which values to encrypt.
    pub rules: Rules,
}

/// Encrypts the clear file `file` (its text in `format`) for the recipients in `opts`.
pub fn encrypt(
    file: &str,
    format: Format,
    text: &str,
    opts: &EncryptOptions,
) -> Result<String, SopsError> {
    let parsed = formats::parse(file, format, text)?;
    if parsed.metadata.is_some() {
        return Err(SopsError::AlreadyEncrypted {
            file: file.to_owned(),
        });
    }
    let data_key = cipher::random::<32>();
    encrypt_branches(file, format, parsed.branches, &data_key, opts)
}

/// Encrypts branches with a given data key (a new one, or the file's own for `edit`).
pub fn encrypt_branches(
    file: &str,
    format: Format,
    mut branches: Vec<Node>,
    data_key: &[u8; 32],
    opts: &EncryptOptions,
) -> Result<String, SopsError> {
    if opts.recipients.is_empty() {
        return Err(SopsError::Key {
            source_name: file.to_owned(),
            message:
                "no age recipient given: pass --age age1... or add a creation rule to .sops.yaml"
                    .into(),
        });
    }
    let mut rules = opts.rules.clone();
    if rules.encrypted_comment_regex.is_some() || rules.unencrypted_comment_regex.is_some() {
        return Err(SopsError::Unsupported {
            file: file.to_owned(),
            message: "ferry does not keep comments, so it cannot encrypt with \
                      encrypted_comment_regex or unencrypted_comment_regex; use sops for this file"
                .into(),
        });
    }
    if rules.is_empty() {
        rules.unencrypted_suffix = Some("_unencrypted".into());
    }
    let selector = tree::Selector::new(&rules).map_err(|(field, source)| SopsError::Regex {
        file: file.to_owned(),
        field,
        source,
    })?;
    let mut age = Vec::new();
    for r in &opts.recipients {
        let recipient = parse_recipient(r)?;
        age.push(AgeStanza {
            recipient: recipient.to_string(),
            enc: keys::wrap_data_key(data_key, &recipient)?,
        });
    }
    let mac = selector.encrypt(&mut branches, data_key);
    let last_modified = rfc3339_now();
    let metadata = Metadata {
        age,
        other_keys: Vec::new(),
        mac: cipher::encrypt_bytes(mac.as_bytes(), "str", data_key, &last_modified),
        last_modified,
        rules,
        version: SOPS_FORMAT_VERSION.to_owned(),
    };
    formats::emit(file, format, &branches, Some(&metadata))
}

/// Writes clear branches in `format` (the output of `decrypt`).
pub fn emit_clear(file: &str, format: Format, branches: &[Node]) -> Result<String, SopsError> {
    formats::emit(file, format, branches, None)
}

/// The current time in UTC as RFC 3339 without fractional seconds (`2026-01-31T12:00:00Z`).
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> (KeyRing, String) {
        let (secret, public) = generate_identity();
        let mut keys = KeyRing::new();
        keys.add_key_file("test", &secret).unwrap();
        (keys, public)
    }

    fn opts(public: &str) -> EncryptOptions {
        EncryptOptions {
            recipients: vec![public.to_owned()],
            rules: Rules::default(),
        }
    }

    const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: hunter2\n  port: 5432\n";

    #[test]
    fn round_trip_every_format() {
        let (keys, public) = ring();
        for (name, text) in [
            ("s.yaml", SECRET),
            ("s.json", "{\"a\": {\"b\": [1, \"x\"]}, \"c\": true}\n"),
            ("s.env", "A=1\nB=hello world\n"),
            ("s.ini", "[db]\nuser = me\n\n"),
        ] {
            let format = Format::for_path(name);
            let enc = encrypt(name, format, text, &opts(&public)).unwrap();
            assert!(looks_encrypted(format, &enc), "{enc}");
            assert!(!enc.contains("hunter2"));
            let clear = decrypt(name, format, &enc, &keys).unwrap();
            assert_eq!(emit_clear(name, format, &clear.branches).unwrap(), {
                let parsed = formats::parse(name, format, text).unwrap();
                emit_clear(name, format, &parsed.branches).unwrap()
            });
        }
    }

    #[test]
    fn tampering_and_wrong_keys_are_refused_whole() {
        let (keys, public) = ring();
        let enc = encrypt(
            "s.yaml",
            Format::Yaml,
            SECRET,
            &EncryptOptions {
                recipients: vec![public.clone()],
                rules: Rules {
                    encrypted_regex: Some("^(data|stringData)$".into()),
                    ..Rules::default()
                },
            },
        )
        .unwrap();
        assert!(enc.contains("name: db"), "{enc}");
        // An unencrypted value changed: the MAC catches it.
        let changed = enc.replace("name: db", "name: other");
        let err = decrypt("s.yaml", Format::Yaml, &changed, &keys).unwrap_err();
        assert!(matches!(err, SopsError::MacMismatch { .. }), "{err}");
        // Another key: named recipients in the error.
        let (other, _) = ring();
        let err = decrypt("s.yaml", Format::Yaml, &enc, &other).unwrap_err();
        assert!(err.to_string().contains(&public), "{err}");
        // A MAC replaced by another file's.
        let enc2 = encrypt("s.yaml", Format::Yaml, SECRET, &opts(&public)).unwrap();
        let mac_of = |t: &str| {
            t.lines()
                .find(|l| l.trim_start().starts_with("mac:"))
                .unwrap()
                .to_owned()
        };
        let swapped = enc.replace(&mac_of(&enc), &mac_of(&enc2));
        assert!(decrypt("s.yaml", Format::Yaml, &swapped, &keys).is_err());
        // Good file decrypts.
        let ok = decrypt("s.yaml", Format::Yaml, &enc, &keys).unwrap();
        assert_eq!(
            ok.branches[0].get("stringData").unwrap().get("password"),
            Some(&Node::Str("hunter2".into()))
        );
    }

    #[test]
    fn documents_decrypt_one_by_one() {
        let (keys, public) = ring();
        let enc = encrypt("s.yaml", Format::Yaml, SECRET, &opts(&public)).unwrap();
        let parsed: Node = serde_saphyr::from_str(&enc).unwrap();
        assert!(has_sops_block(&parsed));
        let clear = decrypt_document("out", parsed, &keys).unwrap();
        assert_eq!(clear.get("kind"), Some(&Node::Str("Secret".into())));
        assert!(clear.get("sops").is_none());
    }

    #[test]
    fn time_formats_like_go() {
        assert_eq!(
            normalize_rfc3339("2026-01-01T00:00:00.123Z"),
            "2026-01-01T00:00:00Z"
        );
        let now = rfc3339_now();
        assert_eq!(now.len(), 20, "{now}");
        assert!(now.ends_with('Z') && now.starts_with("20"));
    }
}
