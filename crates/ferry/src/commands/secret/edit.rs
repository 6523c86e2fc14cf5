//! `ferry secret edit FILE`: the clear file in `$EDITOR`, in a private temporary directory
//! (mode 0700, removed afterwards); saved changes are encrypted with the file's data key, for
//! the same recipients and rules.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context as _, bail};
use ferry_secrets::EncryptOptions;

/// Arguments of `ferry secret edit`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The SOPS file (rewritten in place when the edit changed something).
    file: PathBuf,
    #[command(flatten)]
    keys: super::KeyArgs,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let (name, format, text) = super::read_file(&args.file)?;
    let keys = args.keys.load()?;
    let clear = ferry_secrets::decrypt(&name, format, &text, &keys)?;
    let before = ferry_secrets::emit_clear(&name, format, &clear.branches)?;
    let dir = tempfile::Builder::new().prefix("ferry-secret-").tempdir()?;
    let base = args
        .file
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.path().join(base);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        std::io::Write::write_all(&mut f, before.as_bytes())?;
    }
    let editor = std::env::var("EDITOR").unwrap_or_else(|_| "vi".into());
    let mut words = editor.split_whitespace();
    let Some(program) = words.next() else {
        bail!("$EDITOR is empty: set it to your editor (for example `EDITOR=nano`)");
    };
    let status = Command::new(program)
        .args(words)
        .arg(&tmp)
        .status()
        .with_context(|| format!("running the editor {program:?} ($EDITOR)"))?;
    if !status.success() {
        bail!("the editor exited with {status}; {name} is unchanged");
    }
    let after = std::fs::read_to_string(&tmp).context("reading the edited file back")?;
    if after == before {
        eprintln!("{name}: no change");
        return Ok(());
    }
    let parsed = ferry_secrets::formats::parse(&name, format, &after)
        .context("the edited file does not parse; nothing was written")?;
    let opts = EncryptOptions {
        recipients: clear
            .metadata
            .age
            .iter()
            .map(|a| a.recipient.clone())
            .collect(),
        rules: clear.metadata.rules.clone(),
    };
    let out =
        ferry_secrets::encrypt_branches(&name, format, parsed.branches, &clear.data_key, &opts)?;
    super::write_out(&args.file, &out, true)?;
    eprintln!("{name}: encrypted again");
    Ok(())
}
