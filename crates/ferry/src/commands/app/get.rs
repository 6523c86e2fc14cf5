//! `ferry app get NAME`.

use super::Common;
use crate::commands::output::{Format, print_structured, print_table};

/// Arguments of `ferry app get`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application's name.
    name: String,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    output: Format,
}

pub(crate) async fn run(c: &Common, args: &Args) -> anyhow::Result<i32> {
    let (_, app) = c.get(&args.name).await?;
    if args.output != Format::Table {
        print_structured(args.output, &app)?;
        return Ok(0);
    }
    let status = app.status.clone().unwrap_or_default();
    let source = app
        .spec
        .effective_sources()
        .first()
        .map(|s| (*s).clone())
        .unwrap_or_default();
    let dest = &app.spec.destination;
    println!("Name:          {}", args.name);
    println!("Project:       {}", app.spec.project);
    println!("Repo:          {}", source.repo_url);
    println!("Path:          {}", source.path.unwrap_or_default());
    println!(
        "Target:        {}",
        source.target_revision.unwrap_or_else(|| "HEAD".into())
    );
    println!(
        "Destination:   {} namespace {}",
        dest.server
            .clone()
            .or(dest.name.clone())
            .unwrap_or_default(),
        dest.namespace.clone().unwrap_or_default()
    );
    println!(
        "Sync policy:   {}",
        if app.spec.is_automated() {
            "Automated"
        } else {
            "Manual"
        }
    );
    print_sync_windows(c, &app).await?;
    println!(
        "Sync status:   {:?} to {}",
        status.sync.status,
        status.sync.revision.unwrap_or_default()
    );
    let health_message = status
        .health
        .message
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    println!("Health:        {:?}{health_message}", status.health.status);
    if let Some(op) = &status.operation_state {
        println!(
            "Last sync:     {:?}: {}",
            op.phase,
            op.message.clone().unwrap_or_default()
        );
    }
    for cond in &status.conditions {
        println!("Condition:     {}: {}", cond.type_, cond.message);
    }
    if !status.resources.is_empty() {
        println!();
        let mut rows = vec![
            ["GROUP", "KIND", "NAMESPACE", "NAME", "STATUS", "HEALTH"]
                .map(String::from)
                .to_vec(),
        ];
        for r in &status.resources {
            let mut sync = r.status.map(|s| format!("{s:?}")).unwrap_or_default();
            if r.requires_pruning == Some(true) {
                sync.push_str(" (requires pruning)");
            }
            rows.push(vec![
                r.group.clone(),
                r.kind.clone(),
                r.namespace.clone(),
                r.name.clone(),
                sync,
                r.health
                    .as_ref()
                    .map(|h| format!("{:?}", h.status))
                    .unwrap_or_default(),
            ]);
        }
        print_table(&rows);
    }
    Ok(0)
}

/// The sync windows of the app's project that apply to it, open or closed, and whether an
/// automated sync may run now.
async fn print_sync_windows(
    c: &Common,
    app: &ferry_core::application::Application,
) -> anyhow::Result<()> {
    use anyhow::Context as _;
    let projects: kube::Api<ferry_core::project::AppProject> =
        kube::Api::namespaced(c.kube.client().await?, &c.namespace);
    let Some(project) = projects
        .get_opt(&app.spec.project)
        .await
        .with_context(|| format!("reading AppProject {}", app.spec.project))?
    else {
        return Ok(());
    };
    let verdict = ferry_core::sync_window::evaluate_for_app(
        app,
        &project,
        k8s_openapi::jiff::Timestamp::now(),
        false,
    );
    if verdict.windows.is_empty() {
        return Ok(());
    }
    for (i, w) in verdict.windows.iter().enumerate() {
        let label = if i == 0 { "Sync windows:" } else { "" };
        println!("{label:<15}{w}");
    }
    match &verdict.reason {
        None => println!("Sync allowed:  yes"),
        Some(reason) => println!("Sync allowed:  no ({reason})"),
    }
    Ok(())
}
