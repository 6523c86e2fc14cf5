//! `ferry app diff NAME`: renders the app from Git on this machine (through the same code the
//! controller runs), dry-runs it against the cluster, and prints a unified diff of each object
//! that differs. Secret values are masked. Exit code 1 when something differs, as `kubectl diff`.

use ferry_controller::Differ;
use similar::TextDiff;

use super::{Common, EXIT_FAILED};

/// Arguments of `ferry app diff`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application's name.
    name: String,
    /// Lines of context around each change (as `diff -U`).
    #[arg(long = "unified", short = 'U', default_value_t = 3)]
    unified: usize,

    #[command(flatten)]
    sources: crate::commands::controller::SourceArgs,
}

pub(crate) async fn run(c: &Common, args: &Args) -> anyhow::Result<i32> {
    c.get(&args.name).await?; // a clear error when the app does not exist
    let cache = tempfile::Builder::new().prefix("ferry-diff-").tempdir()?;
    let differ = Differ::new(
        c.kube.client().await?,
        args.sources.engine_config(
            &c.namespace,
            std::time::Duration::ZERO,
            cache.path().to_path_buf(),
            8,
        ),
    );
    let diffs = differ
        .diff_app(&args.name)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut differs = false;
    for d in diffs {
        let to_yaml = |v: &Option<serde_json::Value>| {
            v.as_ref()
                .map(|v| serde_saphyr::to_string(v).unwrap_or_default())
                .unwrap_or_default()
        };
        let (old, new) = (to_yaml(&d.live), to_yaml(&d.desired));
        if old == new {
            continue;
        }
        differs = true;
        let title = format!(
            "{}{}",
            d.key,
            if d.prune { " (requires pruning)" } else { "" }
        );
        println!("===== {title} =====");
        print!(
            "{}",
            TextDiff::from_lines(&old, &new)
                .unified_diff()
                .context_radius(args.unified)
                .header("live", "desired")
        );
    }
    Ok(if differs { EXIT_FAILED } else { 0 })
}
