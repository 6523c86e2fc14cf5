//! `ferry secret`: SOPS files with age keys, compatible with the real `sops` both ways.
//!
//! - `encrypt FILE` encrypts for `--age` recipients, or for those of the first matching
//!   creation rule of the nearest `.sops.yaml` (with its `encrypted_regex` and friends).
//! - `decrypt FILE` prints (or with `-i` writes) the clear file.
//! - `edit FILE` opens the clear file in `$EDITOR` and re-encrypts it with the same data key.
//! - `rotate FILE` re-encrypts with a new data key, for new `--age` recipients if given.
//! - `keygen` makes an age identity (as `age-keygen` does).
//!
//! Private keys are read from `--age-key-file`, else `$SOPS_AGE_KEY_FILE`, `$SOPS_AGE_KEY`, or
//! sops's default `~/.config/sops/age/keys.txt`. Exit codes: 0 done, 2 the file could not be
//! decrypted or encrypted (the message says why) or bad flags.

mod config;
mod decrypt;
mod edit;
mod encrypt;
mod keygen;
mod rotate;

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use ferry_secrets::{Format, KeyRing};

/// Arguments of `ferry secret`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Encrypt a YAML, JSON, dotenv or INI file with SOPS for age recipients.
    Encrypt(encrypt::Args),
    /// Decrypt a SOPS file (its MAC must verify).
    Decrypt(decrypt::Args),
    /// Edit a SOPS file in $EDITOR, re-encrypting it when you save.
    Edit(edit::Args),
    /// Re-encrypt a SOPS file with a new data key (and new recipients).
    Rotate(rotate::Args),
    /// Generate an age identity (private key) and print its public key.
    Keygen(keygen::Args),
}

/// Runs `ferry secret …`.
pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    match &args.command {
        Command::Encrypt(a) => encrypt::run(a),
        Command::Decrypt(a) => decrypt::run(a),
        Command::Edit(a) => edit::run(a),
        Command::Rotate(a) => rotate::run(a),
        Command::Keygen(a) => keygen::run(a),
    }
}

/// Flags naming private keys.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct KeyArgs {
    /// An age identity file (repeatable). Default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY, then
    /// ~/.config/sops/age/keys.txt.
    #[arg(long = "age-key-file", value_name = "FILE")]
    key_files: Vec<PathBuf>,
}

impl KeyArgs {
    /// The identities to decrypt with.
    pub(crate) fn load(&self) -> anyhow::Result<KeyRing> {
        let mut keys = KeyRing::new();
        let mut files = self.key_files.clone();
        if files.is_empty() {
            if let Some(text) = std::env::var_os("SOPS_AGE_KEY") {
                keys.add_key_file("$SOPS_AGE_KEY", &text.to_string_lossy())?;
                return Ok(keys);
            }
            match std::env::var_os("SOPS_AGE_KEY_FILE") {
                Some(f) => files.push(f.into()),
                None => {
                    let home = std::env::var_os("HOME").unwrap_or_default();
                    files.push(Path::new(&home).join(".config/sops/age/keys.txt"));
                }
            }
        }
        for file in files {
            let text = std::fs::read_to_string(&file).with_context(|| {
                format!(
                    "reading the age key file {} (give one with --age-key-file)",
                    file.display()
                )
            })?;
            keys.add_key_file(&file.display().to_string(), &text)?;
        }
        Ok(keys)
    }
}

/// Reads FILE and its format (by extension, as sops picks it).
pub(crate) fn read_file(path: &Path) -> anyhow::Result<(String, Format, String)> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {name}"))?;
    Ok((name, Format::for_path(&path.to_string_lossy()), text))
}

/// Writes `text` to `path` (replacing it atomically) or prints it.
pub(crate) fn write_out(path: &Path, text: &str, in_place: bool) -> anyhow::Result<()> {
    if !in_place {
        print!("{text}");
        return Ok(());
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("writing next to {}", path.display()))?;
    std::io::Write::write_all(&mut tmp, text.as_bytes())?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())?;
    }
    tmp.persist(path)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}

/// The recipients to encrypt for: `--age` flags (comma-separated or repeated), else `fallback`.
pub(crate) fn recipients(flags: &[String], fallback: Vec<String>) -> anyhow::Result<Vec<String>> {
    let given: Vec<String> = flags
        .iter()
        .flat_map(|r| r.split(','))
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty())
        .collect();
    let out = if given.is_empty() { fallback } else { given };
    if out.is_empty() {
        bail!(
            "no age recipient: pass --age age1... or add a creation rule with `age:` to .sops.yaml"
        );
    }
    for r in &out {
        ferry_secrets::parse_recipient(r)?;
    }
    Ok(out)
}
