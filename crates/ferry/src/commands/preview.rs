//! `ferry preview --base REV --head REV [PATH]`: what a change to a GitOps repository would do,
//! app by app, rendered from a clone with no cluster (see `ferry_pipeline::preview`).
//!
//! Output: text (default), `-o markdown` for a pull-request comment, `-o json`. Secret values
//! are masked with the engine's masking. Exit codes: 0 nothing changes, 1 something changes,
//! 2 an app does not render at head, or the preview could not run.

use std::path::PathBuf;

use clap::ValueEnum;
use ferry_controller::normalize::mask_secret;
use ferry_pipeline::RenderTools;
use ferry_pipeline::git::query_repo;
use ferry_pipeline::preview::{PreviewOptions, preview, write_json, write_markdown, write_text};

/// Output formats of `ferry preview`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Per app, each object's change as a unified diff.
    #[default]
    Text,
    /// A table and collapsed diffs, for a pull-request comment.
    Markdown,
    /// Everything as one JSON document.
    Json,
}

/// Arguments of `ferry preview`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The revision before the change (a branch, tag or commit of the clone).
    #[arg(long, value_name = "REV")]
    base: String,
    /// The revision after the change.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    head: String,
    /// The folder whose Applications are previewed (default: the whole repository); must be
    /// inside a Git clone.
    #[arg(value_name = "PATH", default_value = ".")]
    path: PathBuf,
    /// A URL that names this repository in Applications' repoURL, besides the clone's remotes
    /// (compared without case, a trailing `/` or `.git`). Repeatable.
    #[arg(long = "repo-url", value_name = "URL")]
    repo_urls: Vec<String>,
    /// Where to keep checkouts and pulled charts (default: a temporary directory).
    #[arg(long, value_name = "DIR")]
    cache_dir: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

/// Runs `ferry preview`; returns the process exit code.
pub(crate) async fn run(args: &Args) -> anyhow::Result<i32> {
    let path = std::path::absolute(&args.path)?;
    if !path.is_dir() {
        anyhow::bail!(
            "{}: not a directory; give a folder of a Git clone",
            args.path.display()
        );
    }
    let top = query_repo(&path, &["rev-parse", "--show-toplevel"])
        .await
        .map_err(|e| anyhow::anyhow!("{}: not inside a Git clone: {e}", args.path.display()))?;
    let root = PathBuf::from(top.trim()).canonicalize()?;
    let rel = path
        .canonicalize()?
        .strip_prefix(&root)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = tempfile::Builder::new()
        .prefix("ferry-preview-")
        .tempdir()?;
    let cache_dir = args
        .cache_dir
        .clone()
        .unwrap_or_else(|| tmp.path().to_path_buf());
    let options = PreviewOptions {
        repo_root: root,
        base: args.base.clone(),
        head: args.head.clone(),
        path: if rel.is_empty() { ".".into() } else { rel },
        repo_urls: args.repo_urls.clone(),
        cache_dir: cache_dir.clone(),
    };
    let result = preview(&options, RenderTools::new(cache_dir.join("tools"))).await?;
    let text = match args.output {
        Format::Text => write_text(&result, mask_secret),
        Format::Markdown => write_markdown(&result, mask_secret),
        Format::Json => write_json(&result, mask_secret),
    };
    print!("{text}");
    Ok(result.exit_code())
}
