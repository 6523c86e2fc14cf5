//! `ferry image set`: point every reference to an image at a new tag or digest, keeping the
//! files' formatting byte for byte outside the changed values.
//!
//! Exit codes: 0 done (also when everything already had the new value), 1 an image matched
//! nothing (unless `--allow-no-match`) or a match could not be changed in place, 2 the command
//! could not run (bad flags, unreadable paths, a named file that is not YAML).

use std::path::PathBuf;

use anyhow::Context as _;
use ferry_pipeline::{ImageSetError, ImageSetOptions, ImageUpdate, set_images};

/// Arguments of `ferry image`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Set the tag or digest of images in manifests, Kustomizations and Helm values files.
    Set(SetArgs),
}

/// Arguments of `ferry image set`.
#[derive(Debug, clap::Args)]
struct SetArgs {
    /// Files or directories (walked recursively; hidden entries and symbolic links skipped).
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    paths: Vec<PathBuf>,
    /// The image and its new reference: NAME=NAME:TAG, NAME=NAME@sha256:DIGEST,
    /// NAME=NEWNAME:TAG, or NAME:TAG (same name, new tag). Repeatable. Names compare without
    /// tag or digest, and `nginx`, `docker.io/nginx` and `docker.io/library/nginx` are one image.
    #[arg(long = "image", required = true, value_name = "NAME=NAME:TAG")]
    images: Vec<String>,
    /// In Helm values files (values*.yaml), set exactly this dotted path (for example
    /// `app.image.version`) instead of looking for `repository`/`tag` pairs. Needs one --image.
    #[arg(long, value_name = "A.B.TAG")]
    values_path: Option<String>,
    /// Print what would change without writing any file.
    #[arg(long)]
    dry_run: bool,
    /// Exit 0 even when an image matched nothing.
    #[arg(long)]
    allow_no_match: bool,
}

/// Runs a `ferry image` subcommand; returns the process exit code.
pub(crate) fn run(args: &Args) -> anyhow::Result<i32> {
    match &args.command {
        Command::Set(set) => run_set(set),
    }
}

fn run_set(args: &SetArgs) -> anyhow::Result<i32> {
    let updates = args
        .images
        .iter()
        .map(|s| ImageUpdate::parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    let options = ImageSetOptions {
        updates,
        values_path: args.values_path.clone(),
        dry_run: args.dry_run,
    };
    let report = match set_images(&args.paths, &options) {
        Ok(report) => report,
        Err(e @ (ImageSetError::Edit { .. } | ImageSetError::Write { .. })) => {
            eprintln!("error: {e}");
            return Ok(1);
        }
        Err(e) => return Err(e).context("updating image references"),
    };
    for (path, reason) in &report.skipped {
        tracing::info!(path = %path.display(), %reason, "skipped a file that is not YAML");
    }
    for change in &report.changes {
        println!("{change}");
    }
    if report.changes.is_empty() && report.unmatched.len() < options.updates.len() {
        println!("every matching reference already has the new value");
    }
    if args.dry_run && !report.changes.is_empty() {
        println!("dry run: no file was written");
    }
    for name in &report.unmatched {
        eprintln!("no reference to image {name} found in the given paths");
    }
    if !report.unmatched.is_empty() && !args.allow_no_match {
        return Ok(1);
    }
    Ok(0)
}
