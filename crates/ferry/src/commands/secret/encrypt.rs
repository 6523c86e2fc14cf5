//! `ferry secret encrypt FILE`.

use std::path::PathBuf;

use ferry_secrets::EncryptOptions;

/// Arguments of `ferry secret encrypt`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The clear file (.yaml, .yml, .json, .env, .ini).
    file: PathBuf,
    /// An age recipient (age1..., repeatable or comma-separated). Default: the matching
    /// creation rule of .sops.yaml.
    #[arg(long = "age", value_name = "RECIPIENT")]
    age: Vec<String>,
    /// Encrypt only values under keys matching this regex (e.g. `^(data|stringData)$`).
    #[arg(long)]
    encrypted_regex: Option<String>,
    /// Leave values under keys matching this regex in clear.
    #[arg(long)]
    unencrypted_regex: Option<String>,
    /// Encrypt only values under keys ending with this suffix.
    #[arg(long)]
    encrypted_suffix: Option<String>,
    /// Leave values under keys ending with this suffix in clear.
    #[arg(long)]
    unencrypted_suffix: Option<String>,
    /// Let the MAC cover the encrypted values only (clear values may then change).
    #[arg(long)]
    mac_only_encrypted: bool,
    /// Replace the file instead of printing the result.
    #[arg(short = 'i', long)]
    in_place: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let (name, format, text) = super::read_file(&args.file)?;
    let creation = super::config::creation_for(&args.file)?;
    let mut rules = creation.rules;
    let flags_set = args.encrypted_regex.is_some()
        || args.unencrypted_regex.is_some()
        || args.encrypted_suffix.is_some()
        || args.unencrypted_suffix.is_some();
    if flags_set {
        // Flags replace the rule's selection, as in sops.
        rules = ferry_secrets::Rules {
            encrypted_regex: args.encrypted_regex.clone(),
            unencrypted_regex: args.unencrypted_regex.clone(),
            encrypted_suffix: args.encrypted_suffix.clone(),
            unencrypted_suffix: args.unencrypted_suffix.clone(),
            mac_only_encrypted: rules.mac_only_encrypted,
            ..Default::default()
        };
    }
    rules.mac_only_encrypted |= args.mac_only_encrypted;
    let opts = EncryptOptions {
        recipients: super::recipients(&args.age, creation.recipients)?,
        rules,
    };
    let out = ferry_secrets::encrypt(&name, format, &text, &opts)?;
    super::write_out(&args.file, &out, args.in_place)
}
