//! SOPS's encrypted values: `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`, AES-256-GCM with a
//! 32-byte nonce and the value's tree path (`stringData:password:`) as additional data.

use aes_gcm::aead::consts::U32;
use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::aes::Aes256;
use aes_gcm::{AesGcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::node::Node;

/// AES-256-GCM with the 32-byte nonce SOPS uses.
type SopsGcm = AesGcm<Aes256, U32>;

const TAG_LEN: usize = 16;

/// Why one value could not be decrypted. Never holds the value's clear text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ValueError {
    /// Not `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]`.
    #[error("is not in SOPS's ENC[AES256_GCM,...] format")]
    Malformed,
    /// The tag does not verify: the value, its place in the file or the key is not the one
    /// it was encrypted with.
    #[error("does not decrypt (tampered, moved, or encrypted with another data key)")]
    Authentication,
    /// An unknown `type:`.
    #[error("has unknown type {0:?}")]
    UnknownType(String),
    /// The clear text does not parse as its declared type.
    #[error("does not parse as its declared type {0}")]
    BadTyped(&'static str),
}

/// Whether `s` looks like a SOPS encrypted value.
pub fn is_encrypted_value(s: &str) -> bool {
    s.starts_with("ENC[AES256_GCM,") && s.ends_with(']')
}

/// The parts of an `ENC[…]` string.
struct Parsed {
    data: Vec<u8>,
    iv: Vec<u8>,
    tag: Vec<u8>,
    kind: String,
}

fn parse(value: &str) -> Result<Parsed, ValueError> {
    let inner = value
        .strip_prefix("ENC[AES256_GCM,")
        .and_then(|v| v.strip_suffix(']'))
        .ok_or(ValueError::Malformed)?;
    let mut data = None;
    let mut iv = None;
    let mut tag = None;
    let mut kind = None;
    for part in inner.split(',') {
        let (name, v) = part.split_once(':').ok_or(ValueError::Malformed)?;
        let slot = match name {
            "data" => &mut data,
            "iv" => &mut iv,
            "tag" => &mut tag,
            "type" => &mut kind,
            _ => return Err(ValueError::Malformed),
        };
        *slot = Some(v);
    }
    let b64 = |v: Option<&str>| {
        v.ok_or(ValueError::Malformed)
            .and_then(|v| B64.decode(v).map_err(|_| ValueError::Malformed))
    };
    let parsed = Parsed {
        data: b64(data)?,
        iv: b64(iv)?,
        tag: b64(tag)?,
        kind: kind.ok_or(ValueError::Malformed)?.to_owned(),
    };
    if parsed.iv.len() != 32 || parsed.tag.len() != TAG_LEN {
        return Err(ValueError::Malformed);
    }
    Ok(parsed)
}

/// Decrypts the raw bytes of an `ENC[…]` value and returns them with the declared type.
pub fn decrypt_bytes(
    value: &str,
    key: &[u8; 32],
    additional_data: &str,
) -> Result<(Vec<u8>, String), ValueError> {
    let parsed = parse(value)?;
    let cipher = SopsGcm::new(key.into());
    let mut sealed = parsed.data;
    sealed.extend_from_slice(&parsed.tag);
    let clear = cipher
        .decrypt(
            Nonce::<U32>::from_slice(&parsed.iv),
            Payload {
                msg: &sealed,
                aad: additional_data.as_bytes(),
            },
        )
        .map_err(|_| ValueError::Authentication)?;
    Ok((clear, parsed.kind))
}

/// Decrypts an `ENC[…]` value into a typed node. An empty string stays empty (sops does not
/// encrypt empty values). A `comment` gives `None`.
pub fn decrypt_value(
    value: &str,
    key: &[u8; 32],
    additional_data: &str,
) -> Result<Option<Node>, ValueError> {
    if value.is_empty() {
        return Ok(Some(Node::Str(String::new())));
    }
    let (clear, kind) = decrypt_bytes(value, key, additional_data)?;
    let text = || String::from_utf8(clear.clone()).map_err(|_| ValueError::BadTyped("str"));
    Ok(Some(match kind.as_str() {
        // A `time` value is kept as its RFC 3339 text (the form sops hashed).
        "str" | "time" => Node::Str(text()?),
        "bytes" => Node::Str(String::from_utf8_lossy(&clear).into_owned()),
        "int" => Node::Int(text()?.parse().map_err(|_| ValueError::BadTyped("int"))?),
        "float" => Node::Float(text()?.parse().map_err(|_| ValueError::BadTyped("float"))?),
        "bool" => Node::Bool(parse_go_bool(&text()?).ok_or(ValueError::BadTyped("bool"))?),
        "comment" => return Ok(None),
        other => return Err(ValueError::UnknownType(other.to_owned())),
    }))
}

/// Go's `strconv.ParseBool`.
fn parse_go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// The bytes sops feeds its MAC for a value (`sops.ToBytes`); `None` for `null`, which sops
/// neither encrypts nor hashes.
pub fn mac_bytes(node: &Node) -> Option<Vec<u8>> {
    Some(match node {
        Node::Str(s) => s.as_bytes().to_vec(),
        Node::Int(i) => i.to_string().into_bytes(),
        // Rust's `Display` for f64 is the shortest exact form without an exponent, as Go's
        // `strconv.FormatFloat(f, 'f', -1, 64)`.
        Node::Float(f) => f.to_string().into_bytes(),
        Node::Bool(true) => b"True".to_vec(),
        Node::Bool(false) => b"False".to_vec(),
        Node::Null | Node::Seq(_) | Node::Map(_) => return None,
    })
}

/// Random bytes from the OS.
pub(crate) fn random<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    getrandom::fill(&mut out).expect("the OS random number generator is available");
    out
}

/// A new random 32-byte data key.
pub fn new_data_key() -> [u8; 32] {
    random::<32>()
}

/// Encrypts a scalar (`str`, `int`, `float`, `bool`) as sops does; an empty string stays empty.
pub fn encrypt_value(node: &Node, key: &[u8; 32], additional_data: &str) -> String {
    let kind = match node {
        Node::Str(s) if s.is_empty() => return String::new(),
        Node::Str(_) => "str",
        Node::Int(_) => "int",
        Node::Float(_) => "float",
        Node::Bool(_) => "bool",
        Node::Null | Node::Seq(_) | Node::Map(_) => unreachable!("only scalars are encrypted"),
    };
    let clear = mac_bytes(node).unwrap_or_default();
    encrypt_bytes(&clear, kind, key, additional_data)
}

/// Encrypts raw bytes with a declared `type:`.
pub fn encrypt_bytes(clear: &[u8], kind: &str, key: &[u8; 32], additional_data: &str) -> String {
    let iv = random::<32>();
    let cipher = SopsGcm::new(key.into());
    let sealed = cipher
        .encrypt(
            Nonce::<U32>::from_slice(&iv),
            Payload {
                msg: clear,
                aad: additional_data.as_bytes(),
            },
        )
        .expect("AES-GCM encryption of an in-memory value cannot fail");
    let (data, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{kind}]",
        B64.encode(data),
        B64.encode(iv),
        B64.encode(tag)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_with_their_types() {
        let key = random::<32>();
        for node in [
            Node::Str("hunter2".into()),
            Node::Int(5432),
            Node::Float(1.5),
            Node::Bool(true),
        ] {
            let enc = encrypt_value(&node, &key, "stringData:password:");
            assert!(is_encrypted_value(&enc), "{enc}");
            assert_eq!(
                decrypt_value(&enc, &key, "stringData:password:").unwrap(),
                Some(node)
            );
        }
        assert_eq!(encrypt_value(&Node::Str(String::new()), &key, "a:"), "");
    }

    #[test]
    fn a_value_moved_to_another_path_or_tampered_does_not_decrypt() {
        let key = random::<32>();
        let enc = encrypt_value(&Node::Str("x".into()), &key, "a:");
        assert_eq!(
            decrypt_value(&enc, &key, "b:"),
            Err(ValueError::Authentication)
        );
        let tampered = enc.replacen("data:", "data:AA", 1);
        assert!(decrypt_value(&tampered, &key, "a:").is_err());
        assert_eq!(
            decrypt_value("ENC[AES256_GCM,data:x]", &key, "a:"),
            Err(ValueError::Malformed)
        );
    }

    #[test]
    fn mac_bytes_match_go() {
        assert_eq!(mac_bytes(&Node::Float(1.0)).unwrap(), b"1");
        assert_eq!(mac_bytes(&Node::Float(0.1)).unwrap(), b"0.1");
        assert_eq!(
            mac_bytes(&Node::Float(1e21)).unwrap(),
            b"1000000000000000000000"
        );
        assert_eq!(mac_bytes(&Node::Bool(false)).unwrap(), b"False");
        assert_eq!(mac_bytes(&Node::Null), None);
    }
}
