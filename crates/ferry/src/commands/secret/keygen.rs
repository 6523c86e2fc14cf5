//! `ferry secret keygen`: an age identity, in the format of `age-keygen`.

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};

/// Arguments of `ferry secret keygen`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Write the identity to this file (created with mode 0600; never overwritten) instead of
    /// printing it.
    #[arg(short = 'o', long, value_name = "FILE")]
    output: Option<PathBuf>,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let (secret, public) = ferry_secrets::generate_identity();
    let text = format!("# public key: {public}\n{secret}\n");
    match &args.output {
        None => print!("{text}"),
        Some(path) => {
            if path.exists() {
                bail!(
                    "{} exists; ferry does not overwrite a key file",
                    path.display()
                );
            }
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            options
                .open(path)
                .and_then(|mut f| f.write_all(text.as_bytes()))
                .with_context(|| format!("writing {}", path.display()))?;
        }
    }
    eprintln!("Public key: {public}");
    Ok(())
}
