//! SOPS-encrypted files at render time ([`ferry_secrets`]): decrypted with the age keys the
//! app's project may use ([`KeyRing`]), only after their MAC verifies.
//!
//! - A **directory** file (`.yaml`, `.yml`, `.json`) whose first document has a top-level `sops`
//!   mapping with a `mac` is decrypted whole, as `sops decrypt` would (every document of it).
//! - The output of **`kustomize build`** and **`helm template`**: each object with its own `sops`
//!   block is decrypted on its own (as Flux does after `kustomize build`).
//! - **Inputs** that tools read themselves (a Kustomize `secretGenerator`'s `files`/`envs`, a
//!   Helm values file) are decrypted into the render's private temporary directory (mode 0600),
//!   never in the cached checkout, and removed with that directory when the render ends.
//!
//! Decrypted objects live in memory only. Errors name the file and its recipients, never a
//! value.

use std::path::Path;

use ferry_secrets::{Format, KeyRing, Node};
use serde_json::Value;

use super::RenderError;

/// The name prefix of private directories that hold decrypted files (see
/// [`RenderTools::remove_stale_decrypted`](super::RenderTools::remove_stale_decrypted)).
pub const PRIVATE_PREFIX: &str = "sops-";

/// Reads a manifest file that may be SOPS-encrypted: `Ok(None)` when it is not, else its
/// decrypted documents with the line each starts on.
pub(crate) fn decrypt_manifest_file(
    file: &str,
    text: &str,
    keys: &KeyRing,
) -> Result<Option<Vec<(usize, Value)>>, RenderError> {
    let format = Format::for_path(file);
    if !matches!(format, Format::Yaml | Format::Json)
        || !ferry_secrets::looks_encrypted(format, text)
    {
        return Ok(None);
    }
    // A file ferry's own reader accepts but the ordered reader does not is not a sops file.
    let Ok(parsed) = ferry_secrets::formats::parse(file, format, text) else {
        return Ok(None);
    };
    if parsed.metadata.is_none() {
        return Ok(None);
    }
    let clear = ferry_secrets::decrypt(file, format, text, keys)?;
    Ok(Some(
        clear
            .lines
            .iter()
            .copied()
            .zip(clear.branches.iter().map(Node::to_json))
            .collect(),
    ))
}

/// Decrypts, in place, the documents of a tool's output (`docs`, parsed from `text`) that carry
/// their own `sops` block.
pub(crate) fn decrypt_output_documents(
    file: &str,
    text: &str,
    docs: &mut [(usize, Value)],
    keys: &KeyRing,
) -> Result<(), RenderError> {
    if !docs
        .iter()
        .any(|(_, d)| d.get("sops").and_then(|s| s.get("mac")).is_some())
    {
        return Ok(());
    }
    let ordered: Vec<Node> = serde_saphyr::from_multiple::<Node>(text)
        .map_err(|e| RenderError::Yaml {
            file: file.to_owned(),
            line: 0,
            column: 0,
            message: e.without_snippet().to_string(),
        })?
        .into_iter()
        .filter(|d| *d != Node::Null)
        .collect();
    if ordered.len() != docs.len() {
        return Err(RenderError::InvalidOptions {
            field: file.to_owned(),
            message: "the output could not be matched document by document for SOPS decryption"
                .into(),
        });
    }
    for ((line, doc), node) in docs.iter_mut().zip(ordered) {
        if ferry_secrets::has_sops_block(&node) {
            let what = format!("{file} (the object at line {line} of the output)");
            *doc = ferry_secrets::decrypt_document(&what, node, keys)?.to_json();
        }
    }
    Ok(())
}

/// Whether the file at `path` (shown as `shown`) is a SOPS file; its text when it is.
pub(crate) fn read_if_encrypted(path: &Path, shown: &str) -> Result<Option<String>, RenderError> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None); // not text: not a sops file ferry handles; the tool reports problems
    };
    let format = Format::for_path(shown);
    if !ferry_secrets::looks_encrypted(format, &text) {
        return Ok(None);
    }
    match ferry_secrets::formats::parse(shown, format, &text) {
        Ok(parsed) if parsed.metadata.is_some() => Ok(Some(text)),
        _ => Ok(None),
    }
}

/// Decrypts the SOPS file `text` (named `shown`) and writes it in clear, same format, to
/// `dest` (inside a private temporary directory), readable by its owner only. Returns the clear
/// string values, for [`redact_clear`] to mask them in the tool's error messages.
pub(crate) fn write_decrypted(
    shown: &str,
    text: &str,
    dest: &Path,
    keys: &KeyRing,
) -> Result<Vec<String>, RenderError> {
    let format = Format::for_path(shown);
    let clear = ferry_secrets::decrypt(shown, format, text, keys)?;
    let mut values = Vec::new();
    for branch in &clear.branches {
        collect_strings(branch, &mut values);
    }
    let out = ferry_secrets::emit_clear(shown, format, &clear.branches)?;
    let io = |source| RenderError::Io {
        path: shown.to_owned(),
        source,
    };
    if dest.exists() {
        std::fs::remove_file(dest).map_err(io)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    use std::io::Write as _;
    options
        .open(dest)
        .and_then(|mut f| f.write_all(out.as_bytes()))
        .map_err(io)?;
    Ok(values)
}

/// The string values of a tree (keys are not secret in SOPS files).
fn collect_strings(node: &Node, out: &mut Vec<String>) {
    match node {
        Node::Str(s) if s.chars().count() >= 3 => {
            out.push(s.clone());
            // Lines of a multi-line value may be quoted one by one.
            out.extend(s.lines().filter(|l| l.trim().len() >= 3).map(str::to_owned));
        }
        Node::Seq(items) => items.iter().for_each(|i| collect_strings(i, out)),
        Node::Map(entries) => entries.iter().for_each(|(_, v)| collect_strings(v, out)),
        _ => {}
    }
}

/// Masks decrypted values (`***`) in a message of helm or kustomize.
pub(crate) fn redact_clear(message: &str, values: &[String]) -> String {
    let refs: Vec<&str> = values.iter().map(String::as_str).collect();
    crate::command::redact(message, &refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_secrets::{EncryptOptions, Rules};

    fn keys_and_file(clear: &str) -> (KeyRing, String) {
        let (secret, public) = ferry_secrets::generate_identity();
        let mut keys = KeyRing::new();
        keys.add_key_file("test", &secret).unwrap();
        let opts = EncryptOptions {
            recipients: vec![public],
            rules: Rules::default(),
        };
        let enc = ferry_secrets::encrypt("s.yaml", Format::Yaml, clear, &opts).unwrap();
        (keys, enc)
    }

    #[test]
    fn manifest_files_decrypt_whole_and_plain_files_pass() {
        let (keys, enc) = keys_and_file(
            "kind: Secret
stringData:
  a: one-value
---
kind: Secret
b: 2
",
        );
        let docs = decrypt_manifest_file("dir/s.yaml", &enc, &keys)
            .unwrap()
            .unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].1["stringData"]["a"], "one-value");
        assert_eq!(docs[1].1["b"], 2);
        assert!(docs[0].1.get("sops").is_none());
        assert!(
            decrypt_manifest_file(
                "c.yaml",
                "kind: ConfigMap
data: {mac: sops}
",
                &keys
            )
            .unwrap()
            .is_none()
        );
        let err = decrypt_manifest_file("dir/s.yaml", &enc, &KeyRing::new()).unwrap_err();
        assert!(
            err.to_string().starts_with("dir/s.yaml: no age key"),
            "{err}"
        );
    }

    #[test]
    fn leftover_decrypted_directories_are_removed_at_start() {
        let cache = tempfile::tempdir().unwrap();
        let tools = super::super::RenderTools::new(cache.path());
        for dir in ["tmp/sops-kustomize-x", "tmp/helm-y"] {
            std::fs::create_dir_all(cache.path().join(dir)).unwrap();
            std::fs::write(cache.path().join(dir).join("f"), "x").unwrap();
        }
        assert_eq!(tools.remove_stale_decrypted().unwrap(), 1);
        assert!(!cache.path().join("tmp/sops-kustomize-x").exists());
        assert!(cache.path().join("tmp/helm-y/f").exists());
        let dir = tools.private_dir("sops-helm-").unwrap();
        assert!(
            dir.path()
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(PRIVATE_PREFIX)
        );
    }

    #[test]
    fn clear_files_are_private_and_their_values_masked_in_messages() {
        let (keys, enc) = keys_and_file(
            "password: very-secret
",
        );
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("values.yaml");
        let values = write_decrypted("values.yaml", &enc, &dest, &keys).unwrap();
        assert!(
            std::fs::read_to_string(&dest)
                .unwrap()
                .contains("very-secret")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&dest).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            redact_clear("bad value very-secret in line 1", &values),
            "bad value *** in line 1"
        );
    }
}
