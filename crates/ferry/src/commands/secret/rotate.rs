//! `ferry secret rotate FILE`: a new data key, and new recipients when `--age` is given.

use std::path::PathBuf;

use ferry_secrets::EncryptOptions;

/// Arguments of `ferry secret rotate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The SOPS file (rewritten in place).
    file: PathBuf,
    /// The new recipients (age1..., repeatable). Default: the file's current recipients.
    #[arg(long = "age", value_name = "RECIPIENT")]
    age: Vec<String>,
    #[command(flatten)]
    keys: super::KeyArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let (name, format, text) = super::read_file(&args.file)?;
    let keys = args.keys.load()?;
    let clear = ferry_secrets::decrypt(&name, format, &text, &keys)?;
    let current = clear
        .metadata
        .age
        .iter()
        .map(|a| a.recipient.clone())
        .collect();
    let opts = EncryptOptions {
        recipients: super::recipients(&args.age, current)?,
        rules: clear.metadata.rules.clone(),
    };
    let data_key = ferry_secrets::cipher::new_data_key();
    let out = ferry_secrets::encrypt_branches(&name, format, clear.branches, &data_key, &opts)?;
    super::write_out(&args.file, &out, true)?;
    eprintln!(
        "{name}: new data key, encrypted for {}",
        opts.recipients.join(", ")
    );
    Ok(())
}
