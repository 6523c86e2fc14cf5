//! `ferry appset list|get|preview|confirm`: look at ApplicationSets straight through the
//! kubeconfig. `preview` renders what a set would create, change and delete (from the cluster
//! or from a file) and touches nothing; `confirm` lets a held mass deletion go ahead.

use std::sync::Arc;

use anyhow::Context as _;
use ferry_appset::controller::{DifferRepos, application_resource};
use ferry_appset::generators::RemoteContext;
use ferry_appset::plan::{is_owned_by, plan_changes};
use ferry_appset::types::{
    ApplicationSet, CONFIRM_DELETION_ANNOTATION, condition_reason, condition_type,
};
use ferry_controller::Differ;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use super::app::{Common, EXIT_FAILED};
use super::output::{Format, print_structured, print_table};

/// Arguments of `ferry appset`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List the ApplicationSets with how many Applications each generated and its state.
    List {
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Show one ApplicationSet: its conditions, its Applications and its RollingSync.
    Get {
        /// The ApplicationSet's name.
        name: String,
        /// Output format.
        #[arg(short, long, value_enum, default_value_t)]
        output: Format,
    },
    /// Render what an ApplicationSet would create, change and delete, touching nothing.
    /// Exit code 1 when it would change something.
    Preview(PreviewArgs),
    /// Let a held deletion go ahead: confirms exactly the Applications the ApplicationSet's
    /// DeletionHeld condition lists.
    Confirm {
        /// The ApplicationSet's name.
        name: String,
    },
}

#[derive(Debug, clap::Args)]
struct PreviewArgs {
    /// The ApplicationSet in the cluster (or, with --file, the name to compare with).
    name: Option<String>,
    /// Read the ApplicationSet from this YAML file instead of the cluster.
    #[arg(long, short = 'f')]
    file: Option<std::path::PathBuf>,
    #[command(flatten)]
    sources: super::controller::SourceArgs,
}

pub(crate) async fn run(args: &Args) -> anyhow::Result<i32> {
    let c = &args.common;
    let client = c.kube.client().await?;
    let sets: Api<ApplicationSet> = Api::namespaced(client.clone(), &c.namespace);
    match &args.command {
        Command::List { output } => {
            let list = sets
                .list(&ListParams::default())
                .await
                .with_context(|| format!("listing ApplicationSets in namespace {}", c.namespace))?;
            if *output != Format::Table {
                print_structured(*output, &list.items)?;
                return Ok(0);
            }
            let mut rows = vec![
                ["NAME", "APPS", "UP-TO-DATE", "ERROR"]
                    .map(String::from)
                    .to_vec(),
            ];
            for set in &list.items {
                let status = set.status.clone().unwrap_or_default();
                let cond = |t: &str| status.condition(t).cloned().unwrap_or_default();
                let error = cond(condition_type::ERROR_OCCURRED);
                rows.push(vec![
                    set.name().to_string(),
                    status.resources.len().to_string(),
                    cond(condition_type::RESOURCES_UP_TO_DATE).status,
                    if error.status == "True" {
                        format!("{}: {:.100}", error.reason, error.message)
                    } else {
                        String::new()
                    },
                ]);
            }
            print_table(&rows);
            Ok(0)
        }
        Command::Get { name, output } => {
            let set = get(&sets, name, &c.namespace).await?;
            if *output != Format::Table {
                print_structured(*output, &set)?;
                return Ok(0);
            }
            let status = set.status.clone().unwrap_or_default();
            println!("Name:       {}", set.name());
            println!("Namespace:  {}", c.namespace);
            println!("Generators: {}", set.spec.generators.len());
            println!(
                "Policy:     applicationsSync={:?} preserveResourcesOnDeletion={}",
                set.spec.applications_sync(),
                set.spec.preserve_resources_on_deletion()
            );
            println!("\nCONDITIONS");
            let mut rows = vec![
                ["TYPE", "STATUS", "REASON", "MESSAGE"]
                    .map(String::from)
                    .to_vec(),
            ];
            for cnd in &status.conditions {
                rows.push(vec![
                    cnd.type_.clone(),
                    cnd.status.clone(),
                    cnd.reason.clone(),
                    cnd.message.clone(),
                ]);
            }
            print_table(&rows);
            println!("\nAPPLICATIONS");
            let mut rows = vec![["NAME", "SYNC", "HEALTH"].map(String::from).to_vec()];
            for r in &status.resources {
                rows.push(vec![
                    r.name.clone(),
                    r.status.clone(),
                    r.health
                        .as_ref()
                        .map(|h| h.status.clone())
                        .unwrap_or_default(),
                ]);
            }
            print_table(&rows);
            if !status.application_status.is_empty() {
                println!("\nROLLINGSYNC");
                let mut rows = vec![
                    ["STEP", "APPLICATION", "STATUS", "MESSAGE"]
                        .map(String::from)
                        .to_vec(),
                ];
                for a in &status.application_status {
                    rows.push(vec![
                        a.step.clone(),
                        a.application.clone(),
                        a.status.clone(),
                        a.message.clone(),
                    ]);
                }
                print_table(&rows);
            }
            Ok(0)
        }
        Command::Preview(p) => preview(c, client, &sets, p).await,
        Command::Confirm { name } => {
            let set = get(&sets, name, &c.namespace).await?;
            let held = set
                .status
                .as_ref()
                .and_then(|s| s.condition(condition_type::ERROR_OCCURRED))
                .filter(|c| c.status == "True" && c.reason == condition_reason::DELETION_HELD)
                .with_context(|| {
                    format!("ApplicationSet {name} holds no deletion: there is nothing to confirm")
                })?;
            let marker = format!("{CONFIRM_DELETION_ANNOTATION}=");
            let apps = held
                .message
                .rsplit_once(&marker)
                .map(|(_, apps)| apps.trim().to_string())
                .filter(|a| !a.is_empty())
                .with_context(|| {
                    format!(
                        "the DeletionHeld condition of {name} does not list the Applications: {}",
                        held.message
                    )
                })?;
            let patch = json!({"metadata": {"annotations": {CONFIRM_DELETION_ANNOTATION: apps}}});
            sets.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
                .with_context(|| format!("annotating ApplicationSet {name}"))?;
            println!(
                "confirmed: ApplicationSet {name} may delete {}",
                apps.replace(',', ", ")
            );
            Ok(0)
        }
    }
}

async fn get(sets: &Api<ApplicationSet>, name: &str, ns: &str) -> anyhow::Result<ApplicationSet> {
    sets.get_opt(name)
        .await
        .with_context(|| format!("reading ApplicationSet {name} in namespace {ns}"))?
        .with_context(|| {
            format!("ApplicationSet {name} not found in namespace {ns} (use -n to pick another)")
        })
}

async fn preview(
    c: &Common,
    client: kube::Client,
    sets: &Api<ApplicationSet>,
    p: &PreviewArgs,
) -> anyhow::Result<i32> {
    let mut set = match (&p.file, &p.name) {
        (Some(file), _) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            let set: ApplicationSet = serde_saphyr::from_str(&text)
                .with_context(|| format!("{} is not an ApplicationSet", file.display()))?;
            set
        }
        (None, Some(name)) => get(sets, name, &c.namespace).await?,
        (None, None) => anyhow::bail!("name an ApplicationSet or give --file"),
    };
    if let Some(name) = &p.name {
        set.metadata.name = Some(name.clone());
    }
    anyhow::ensure!(
        !set.name().is_empty(),
        "the ApplicationSet has no metadata.name"
    );
    set.metadata.namespace = Some(c.namespace.clone());
    // The one in the cluster (if any) says which Applications are owned.
    let live = sets.get_opt(set.name()).await?;
    set.metadata.uid = live.as_ref().and_then(|l| l.metadata.uid.clone());
    let cache = tempfile::Builder::new().prefix("ferry-appset-").tempdir()?;
    let differ = Arc::new(Differ::new(
        client.clone(),
        p.sources.engine_config(
            &c.namespace,
            std::time::Duration::ZERO,
            cache.path().to_path_buf(),
            8,
        ),
    ));
    let repos = DifferRepos(differ);
    let http = ferry_http::Client::new(ferry_http::Options::default())?;
    let remote = RemoteContext {
        kube: &client,
        namespace: &c.namespace,
        appset: set.name(),
        http: &http,
    };
    let desired = match ferry_appset::desired::desired_applications(&set, remote, &repos).await {
        Ok(d) => d,
        Err(f) => {
            eprintln!("error ({}): {}", f.reason, f.message);
            return Ok(2);
        }
    };
    let apps: Api<DynamicObject> =
        Api::namespaced_with(client, &c.namespace, &application_resource());
    let uid = set.metadata.uid.clone().unwrap_or_default();
    let owned: Vec<Value> = apps
        .list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .filter_map(|o| serde_json::to_value(o).ok())
        .filter(|a| is_owned_by(a, &uid))
        .collect();
    let plan = plan_changes(
        &set,
        &desired.applications,
        &owned,
        ferry_appset::plan::DEFAULT_MAX_DELETION_PERCENT,
    );
    let name_of = |a: &Value| {
        a["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    for a in &plan.create {
        println!("create  {}", name_of(a));
    }
    for a in &plan.update {
        println!("update  {}", name_of(a));
    }
    for a in &plan.delete {
        println!("delete  {a}");
    }
    for a in &plan.unchanged {
        println!("same    {a}");
    }
    for s in &plan.skipped_by_policy {
        println!(
            "skip    {s} (applicationsSync {:?})",
            set.spec.applications_sync()
        );
    }
    if let Some(hold) = &plan.held {
        println!("held:   {}", hold.message(set.name()));
    }
    Ok(if plan.is_empty() { 0 } else { EXIT_FAILED })
}
