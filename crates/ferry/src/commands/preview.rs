//! `ferry preview --base REV --head REV [PATH]`: what a change to a GitOps repository would do,
//! app by app, rendered from a clone with no cluster (see `ferry_pipeline::preview`).
//!
//! With `--kubeconfig`, the head render is compared with the live cluster instead (see the
//! `live` module). Output: text (default), `-o markdown` for a pull-request comment, `-o json`.
//! Secret values are masked with the engine's masking. Exit codes: 0 nothing changes, 1 something changes,
//! 2 an app does not render at head, or the preview could not run.

use std::path::PathBuf;

use clap::ValueEnum;
use ferry_controller::normalize::mask_secret;
use ferry_pipeline::RenderTools;
use ferry_pipeline::git::query_repo;
use ferry_pipeline::preview::{PreviewOptions, preview, write_json, write_markdown, write_text};

mod live {
    //! `--kubeconfig`: the head render against the live cluster, compared with the
    //! controller's own code (`prepare_desired`, `compare_all`: a server-side apply dry run
    //! per object) without running the controller's Engine.

    use std::collections::BTreeSet;

    use ferry_cluster::{ClusterClient, ObjectRef};
    use ferry_controller::compare::compare_all;
    use ferry_controller::comparison::ignore_rules;
    use ferry_controller::desired::prepare_desired;
    use ferry_controller::normalize::normalize;
    use ferry_core::application::Application;
    use ferry_core::tracking::{ResourceKey, TRACKING_ANNOTATION, is_tracked_by};
    use ferry_pipeline::RenderTools;
    use ferry_pipeline::preview::{
        Action, AppPreview, AppStatus, ObjectChange, Preview, PreviewOptions, render_head,
    };
    use kube::Api;

    use super::Args;
    use crate::commands::kube::KubeArgs;

    pub(super) async fn preview_live(
        args: &Args,
        options: &PreviewOptions,
        tools: RenderTools,
    ) -> anyhow::Result<Preview> {
        let (apps, errors, renders) = render_head(options, tools).await?;
        let client = KubeArgs {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
        }
        .client()
        .await?;
        let cluster = ClusterClient::new(client.clone());
        let live_apps: Api<Application> = Api::namespaced(client, &args.namespace);
        let mut out = Vec::new();
        for (name, reached) in apps {
            let mut p = AppPreview {
                name: name.clone(),
                origin: reached.found.origin.clone(),
                status: AppStatus::Unchanged,
                objects: Vec::new(),
                error: None,
                base_error: None,
            };
            let rendered = match reached.result {
                Ok(r) => r,
                Err(e) => {
                    p.status = AppStatus::Error;
                    p.error = Some(e);
                    out.push(p);
                    continue;
                }
            };
            let app = &reached.found.app;
            let namespace = app.spec.destination.namespace.clone().unwrap_or_default();
            let desired = match prepare_desired(
                rendered.manifests.clone(),
                &name,
                &namespace,
                &cluster,
            )
            .await
            {
                Ok(d) => d.into_iter().filter(|o| !o.is_hook()).collect::<Vec<_>>(),
                Err(e) => {
                    p.status = AppStatus::Error;
                    p.error = Some(e.to_string());
                    out.push(p);
                    continue;
                }
            };
            // The app's own ignoreDifferences; argocd-cm's customizations are not read here.
            let settings = ferry_core::settings::ArgoSettings::default();
            let ignore = |key: &ResourceKey| ignore_rules(app, &settings, key);
            let wanted: BTreeSet<ResourceKey> = desired.iter().map(|d| d.key.clone()).collect();
            let compared = compare_all(
                &cluster,
                &name,
                "ferry",
                desired,
                &ignore,
                app.spec.sync_options(),
                8,
            )
            .await;
            let mut problems = Vec::new();
            for c in compared {
                if let Some(e) = &c.error {
                    problems.push(format!("{}: {e}", c.desired.key));
                    continue;
                }
                if c.in_sync {
                    continue;
                }
                let head = normalize(c.predicted.as_ref().unwrap_or(&c.desired.object));
                let (action, base) = match &c.live {
                    None => (Action::Create, None),
                    Some(live) => (Action::Change, Some(normalize(live))),
                };
                p.objects.push(ObjectChange {
                    key: c.desired.key.to_string(),
                    action,
                    base,
                    head: Some(head),
                });
            }
            // What the live Application tracks and head no longer renders: a sync with prune
            // deletes it.
            let live_app = live_apps.get_opt(&name).await?;
            for r in live_app
                .iter()
                .flat_map(|a| a.status.iter())
                .flat_map(|s| &s.resources)
            {
                let key = ResourceKey::new(&r.group, &r.kind, &r.namespace, &r.name);
                if wanted.contains(&key) || r.hook == Some(true) {
                    continue;
                }
                let target = ObjectRef {
                    api_version: if r.group.is_empty() {
                        r.version.clone()
                    } else {
                        format!("{}/{}", r.group, r.version)
                    },
                    kind: r.kind.clone(),
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                };
                let Ok(Some(live)) = cluster.get(&target).await else {
                    continue;
                };
                let tracked = live
                    .pointer("/metadata/annotations")
                    .and_then(|a| a.get(TRACKING_ANNOTATION))
                    .and_then(|v| v.as_str())
                    .is_some_and(|v| {
                        is_tracked_by(v, &name, &key.group, &key.kind, &key.namespace, &key.name)
                    });
                if tracked {
                    p.objects.push(ObjectChange {
                        key: key.to_string(),
                        action: Action::Delete,
                        base: Some(normalize(&live)),
                        head: None,
                    });
                }
            }
            p.objects.sort_by(|a, b| a.key.cmp(&b.key));
            p.status = if !problems.is_empty() {
                p.error = Some(problems.join("; "));
                AppStatus::Error
            } else if live_app.is_none() {
                AppStatus::Added
            } else if p.objects.is_empty() {
                AppStatus::Unchanged
            } else {
                AppStatus::Changed
            };
            out.push(p);
        }
        Ok(Preview {
            base: format!("live ({})", args.namespace),
            head: options.head.clone(),
            apps: out,
            errors,
            renders,
        })
    }
}

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
    #[arg(long, value_name = "REV", required_unless_present = "kubeconfig")]
    base: Option<String>,
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
    /// Compare the head render with the live cluster of this kubeconfig instead of with --base:
    /// a server-side dry run of each object, as a sync does, so the preview shows what a sync
    /// would really change (deletions: what the live Application tracks and head no longer
    /// renders). Every app is compared in this one cluster.
    #[arg(long, value_name = "FILE", conflicts_with = "base")]
    kubeconfig: Option<PathBuf>,
    /// With --kubeconfig: the kubeconfig context (default: its current one).
    #[arg(long, requires = "kubeconfig")]
    context: Option<String>,
    /// With --kubeconfig: the namespace of the live Applications.
    #[arg(long, short = 'n', default_value = "ferry", env = "FERRY_NAMESPACE")]
    namespace: String,
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
        base: args.base.clone().unwrap_or_default(),
        head: args.head.clone(),
        path: if rel.is_empty() { ".".into() } else { rel },
        repo_urls: args.repo_urls.clone(),
        cache_dir: cache_dir.clone(),
    };
    let tools = RenderTools::new(cache_dir.join("tools"));
    let result = if args.kubeconfig.is_some() {
        live::preview_live(args, &options, tools).await?
    } else {
        preview(&options, tools).await?
    };
    let text = match args.output {
        Format::Text => write_text(&result, mask_secret),
        Format::Markdown => write_markdown(&result, mask_secret),
        Format::Json => write_json(&result, mask_secret),
    };
    print!("{text}");
    Ok(result.exit_code())
}
