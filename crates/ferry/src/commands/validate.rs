//! `ferry validate PATH...`: check manifests offline against the Kubernetes schemas bundled into
//! ferry, CRDs, and ferry's Argo CD types, the way a pipeline's "validate manifests" step does.
//!
//! Output: one finding per line, `file:line:column: Kind/name: .path: message`, or with
//! `-o json` a JSON array of `{file, line, column, object, path, message}`. A summary goes to
//! stderr. Exit codes: 0 no findings, 1 findings, 2 the command could not run (a path that does
//! not exist, bad flags, a Kubernetes version whose schemas are not bundled).

use std::path::PathBuf;

use clap::ValueEnum;
use ferry_pipeline::validate::{
    BUNDLED_KUBERNETES_VERSIONS, DEFAULT_KUBERNETES_VERSION, check_kubernetes_version,
    validate_apps,
};
use ferry_pipeline::{ValidateOptions, validate_paths};

/// Output formats of `ferry validate`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
enum Format {
    /// One finding per line, `file:line:column: Kind/name: .path: message`.
    #[default]
    Text,
    /// A JSON array of findings.
    Json,
}

/// Arguments of `ferry validate`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Manifest files (.yaml, .yml, .json) or directories. A directory is rendered as the engine
    /// would: Kustomize when it holds a kustomization, Helm when it holds Chart.yaml (both need
    /// the tools), else it is read as a repository tree: every folder below it that holds a
    /// kustomization is built with kustomize, every chart rendered with its default values, and
    /// the other manifest files read as they are (Helm value files left alone).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// A file or directory of CustomResourceDefinitions whose schemas validate custom resources
    /// (CRDs among the PATHs count too). Repeatable.
    #[arg(long = "crd", value_name = "FILE")]
    crds: Vec<PathBuf>,
    /// Skip objects whose kind has no schema instead of reporting them.
    #[arg(long)]
    ignore_missing_schemas: bool,
    /// The Kubernetes version (major.minor) whose schemas to validate against.
    #[arg(long, value_name = "VERSION", default_value = DEFAULT_KUBERNETES_VERSION,
          long_help = format!("The Kubernetes version (major.minor) whose schemas to validate against. Bundled: {}.", BUNDLED_KUBERNETES_VERSIONS.join(", ")))]
    kubernetes_version: String,
    /// Validate what each Application found under the PATHs (folders of a Git clone) renders,
    /// exactly as the engine renders it from the working tree, App-of-Apps children included;
    /// findings name the app. Sources of other repositories, chart repositories and remote
    /// Kustomize resources are not fetched (a note says so).
    #[arg(long)]
    apps: bool,
    /// With --apps: a URL that names this repository in Applications' repoURL, besides the
    /// clone's remotes. Repeatable.
    #[arg(long = "repo-url", value_name = "URL", requires = "apps")]
    repo_urls: Vec<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

/// Runs `ferry validate`; returns the process exit code.
pub(crate) async fn run(args: &Args) -> anyhow::Result<i32> {
    check_kubernetes_version(&args.kubernetes_version)?;
    let options = ValidateOptions {
        kubernetes_version: args.kubernetes_version.clone(),
        crd_files: args.crds.clone(),
        ignore_missing_schemas: args.ignore_missing_schemas,
    };
    let report = if args.apps {
        let mut report = ferry_pipeline::ValidateReport::default();
        for path in &args.paths {
            let one = validate_apps(path, &args.repo_urls, &options).await?;
            report.findings.extend(one.findings);
            report.notes.extend(one.notes);
            report.skipped.extend(one.skipped);
            report.objects += one.objects;
            report.files += one.files;
        }
        report
    } else {
        validate_paths(&args.paths, &options).await?
    };
    match args.output {
        Format::Text => {
            for finding in &report.findings {
                println!("{finding}");
            }
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&report.findings)?),
    }
    for note in &report.notes {
        eprintln!("note: {note}");
    }
    if !report.skipped.is_empty() {
        eprintln!(
            "skipped {} object(s) without a schema (--ignore-missing-schemas)",
            report.skipped.len()
        );
    }
    let checked = format!("{} object(s) in {} file(s)", report.objects, report.files);
    let checked = match report.notes.len() {
        0 => checked,
        n => format!("{checked} ({n} note(s) above)"),
    };
    if report.findings.is_empty() {
        eprintln!("validated {checked}: no problems");
        Ok(0)
    } else {
        eprintln!("{} problem(s) in {checked}", report.findings.len());
        Ok(1)
    }
}
