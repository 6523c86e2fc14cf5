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
/// `dest` (inside a private temporary directory), readable by its owner only.
pub(crate) fn write_decrypted(
    shown: &str,
    text: &str,
    dest: &Path,
    keys: &KeyRing,
) -> Result<(), RenderError> {
    let format = Format::for_path(shown);
    let clear = ferry_secrets::decrypt(shown, format, text, keys)?;
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
        .map_err(io)
}
