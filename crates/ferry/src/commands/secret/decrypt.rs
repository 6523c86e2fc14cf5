//! `ferry secret decrypt FILE`.

use std::path::PathBuf;

/// Arguments of `ferry secret decrypt`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The SOPS file.
    file: PathBuf,
    #[command(flatten)]
    keys: super::KeyArgs,
    /// Replace the file with its clear form instead of printing it.
    #[arg(short = 'i', long)]
    in_place: bool,
}

pub(crate) fn run(args: &Args) -> anyhow::Result<()> {
    let (name, format, text) = super::read_file(&args.file)?;
    let keys = args.keys.load()?;
    let clear = ferry_secrets::decrypt(&name, format, &text, &keys)?;
    let out = ferry_secrets::emit_clear(&name, format, &clear.branches)?;
    super::write_out(&args.file, &out, args.in_place)
}
