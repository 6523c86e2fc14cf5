//! age identities (private keys) and recipients (public keys).

use std::fmt;
use std::io::{Read as _, Write as _};
use std::str::FromStr as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use age::secrecy::ExposeSecret as _;

use crate::SopsError;
use crate::metadata::AgeStanza;

/// A set of age identities a file may be decrypted with. Its `Debug` shows public keys only.
/// Clones share [`KeyRing::was_used`].
#[derive(Clone, Default)]
pub struct KeyRing {
    identities: Vec<age::x25519::Identity>,
    used: Arc<AtomicBool>,
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("recipients", &self.recipients())
            .finish()
    }
}

impl KeyRing {
    /// An empty key ring.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the identities of an age key file (`AGE-SECRET-KEY-1…` lines; `#` comments and
    /// blank lines skipped), e.g. a `*.agekey` entry of a Secret. `source` names it in errors.
    pub fn add_key_file(&mut self, source: &str, text: &str) -> Result<(), SopsError> {
        let mut found = false;
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let identity = age::x25519::Identity::from_str(line).map_err(|_| SopsError::Key {
                source_name: source.to_owned(),
                message: format!(
                    "line {} is not an age X25519 identity (AGE-SECRET-KEY-1...)",
                    i + 1
                ),
            })?;
            if !self
                .recipients()
                .contains(&identity.to_public().to_string())
            {
                self.identities.push(identity);
            }
            found = true;
        }
        if !found {
            return Err(SopsError::Key {
                source_name: source.to_owned(),
                message: "holds no age identity".into(),
            });
        }
        Ok(())
    }

    /// Whether this ring (or a clone of it) has opened a file's data key.
    pub fn was_used(&self) -> bool {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether the ring holds no identity.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// The public keys (`age1…`) of the identities, sorted.
    pub fn recipients(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .identities
            .iter()
            .map(|i| i.to_public().to_string())
            .collect();
        out.sort();
        out
    }

    /// Unwraps the data key from the first stanza one of the identities opens.
    pub(crate) fn unwrap_data_key(&self, stanzas: &[AgeStanza]) -> Option<[u8; 32]> {
        for stanza in stanzas {
            let reader = age::armor::ArmoredReader::new(stanza.enc.as_bytes());
            let Ok(decryptor) = age::Decryptor::new(reader) else {
                continue;
            };
            let Ok(mut stream) =
                decryptor.decrypt(self.identities.iter().map(|i| i as &dyn age::Identity))
            else {
                continue;
            };
            let mut key = Vec::new();
            if stream.read_to_end(&mut key).is_ok()
                && let Ok(key) = <[u8; 32]>::try_from(key.as_slice())
            {
                self.used.store(true, Ordering::Relaxed);
                return Some(key);
            }
        }
        None
    }
}

/// A new age identity: the private key line and its public key.
pub fn generate_identity() -> (String, String) {
    let identity = age::x25519::Identity::generate();
    (
        identity.to_string().expose_secret().to_owned(),
        identity.to_public().to_string(),
    )
}

/// Checks an age recipient (`age1…`).
pub fn parse_recipient(recipient: &str) -> Result<age::x25519::Recipient, SopsError> {
    age::x25519::Recipient::from_str(recipient.trim()).map_err(|_| SopsError::Key {
        source_name: recipient.to_owned(),
        message: "is not an age X25519 recipient (age1...)".into(),
    })
}

/// Wraps `data_key` for `recipient`, ASCII-armored as sops stores it.
pub(crate) fn wrap_data_key(
    data_key: &[u8; 32],
    recipient: &age::x25519::Recipient,
) -> Result<String, SopsError> {
    let io = |e: std::io::Error| SopsError::Key {
        source_name: recipient.to_string(),
        message: format!("encrypting the data key: {e}"),
    };
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(recipient as _)).map_err(|e| {
            SopsError::Key {
                source_name: recipient.to_string(),
                message: format!("encrypting the data key: {e}"),
            }
        })?;
    let mut out = Vec::new();
    let armor = age::armor::ArmoredWriter::wrap_output(&mut out, age::armor::Format::AsciiArmor)
        .map_err(io)?;
    let mut writer = encryptor.wrap_output(armor).map_err(io)?;
    writer.write_all(data_key).map_err(io)?;
    writer
        .finish()
        .and_then(|armor| armor.finish())
        .map_err(io)?;
    Ok(String::from_utf8(out).expect("ASCII armor is UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_key_opens_with_its_identity_only() {
        let (secret, public) = generate_identity();
        let (other, _) = generate_identity();
        let data_key = crate::cipher::random::<32>();
        let enc = wrap_data_key(&data_key, &parse_recipient(&public).unwrap()).unwrap();
        assert!(enc.starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
        let stanza = AgeStanza {
            recipient: public.clone(),
            enc,
        };
        let mut ring = KeyRing::new();
        ring.add_key_file(
            "k",
            &format!("# created: now\n# public key: {public}\n{secret}\n"),
        )
        .unwrap();
        assert_eq!(ring.recipients(), [public]);
        let clone = ring.clone();
        assert!(!clone.was_used());
        assert_eq!(
            ring.unwrap_data_key(std::slice::from_ref(&stanza)),
            Some(data_key)
        );
        assert!(clone.was_used());
        let mut wrong = KeyRing::new();
        wrong.add_key_file("k", &other).unwrap();
        assert_eq!(wrong.unwrap_data_key(&[stanza]), None);
        assert!(!format!("{ring:?}").contains("AGE-SECRET-KEY"));
        assert!(KeyRing::new().add_key_file("k", "# nothing\n").is_err());
    }
}
