//! `ferry rollout get|promote|abort|retry NAME`: look at and act on an Argo Rollouts `Rollout`
//! that ferry runs, straight through the kubeconfig (the same patches as the API and UI).

use super::kube::KubeArgs;

/// Arguments of `ferry rollout`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    kube: KubeArgs,
    /// The Rollout's namespace.
    #[arg(long, short = 'n', global = true, default_value = "default")]
    namespace: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Show the Rollout: phase, step, weights, analysis runs.
    Get {
        /// The Rollout.
        name: String,
        /// Print the JSON view instead of text.
        #[arg(long)]
        json: bool,
    },
    /// End the pause under way (or skip the current step); `--full` skips every remaining step.
    Promote {
        /// The Rollout.
        name: String,
        /// Skip every remaining step.
        #[arg(long)]
        full: bool,
    },
    /// Abort the canary: traffic back to the stable revision, the canary scaled down.
    Abort {
        /// The Rollout.
        name: String,
    },
    /// Retry an aborted rollout from its first step.
    Retry {
        /// The Rollout.
        name: String,
    },
}

/// Runs the subcommand; exit code 0 on success, 1 when the Rollout refused the operation.
pub(crate) async fn run(args: &Args) -> anyhow::Result<i32> {
    let client = args.kube.client().await?;
    let ns = &args.namespace;
    let done = match &args.command {
        Command::Get { name, json } => {
            let view = ferry_rollouts::ops::get(&client, ns, name).await?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", ferry_rollouts::ops::render(&view));
            }
            return Ok(0);
        }
        Command::Promote { name, full } => {
            ferry_rollouts::ops::promote(&client, ns, name, *full).await
        }
        Command::Abort { name } => ferry_rollouts::ops::abort(&client, ns, name).await,
        Command::Retry { name } => ferry_rollouts::ops::retry(&client, ns, name).await,
    };
    match done {
        Ok(message) => {
            println!("{message}");
            Ok(0)
        }
        Err(e @ ferry_rollouts::ops::OpError::Refused { .. }) => {
            eprintln!("error: {e}");
            Ok(1)
        }
        Err(e) => Err(e.into()),
    }
}
