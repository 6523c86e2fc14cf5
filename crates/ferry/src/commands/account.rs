//! `ferry account`: local accounts of the ferry server (kept in ConfigMap `ferry-cm` and
//! Secret `ferry-secret` of the namespace, as Argo CD keeps them). Talks to the cluster with
//! your kubeconfig; passwords are read from standard input, never from arguments.

use std::io::BufRead as _;

use anyhow::Context as _;
use ferry_server::auth::Role;
use ferry_server::auth::accounts::{AccountStore, INITIAL_ADMIN_SECRET};

use super::kube::KubeArgs;

/// Arguments of `ferry account`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    kube: KubeArgs,

    /// The namespace ferry runs in.
    #[arg(
        long,
        short = 'n',
        default_value = "ferry",
        env = "FERRY_NAMESPACE",
        global = true
    )]
    namespace: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// List accounts with their role, projects and what they may use.
    List,
    /// Create an account (or change its role and projects).
    Create {
        /// The account's name (lowercase letters, digits, '-').
        name: String,
        /// readonly (read everything), sync (also sync, refresh, roll back) or admin.
        #[arg(long, default_value = "readonly", value_parser = parse_role)]
        role: Role,
        /// Limit the role to these projects (comma-separated; default: all).
        #[arg(long, value_delimiter = ',')]
        projects: Vec<String>,
    },
    /// Set an account's password, read from standard input (one line).
    UpdatePassword {
        /// The account.
        name: String,
    },
    /// Create an API token for an account and print it (it is shown only this once).
    GenerateToken {
        /// The account.
        name: String,
        /// A name for the token, to delete it later.
        #[arg(long, default_value = "default")]
        id: String,
    },
    /// Delete an account's API token.
    DeleteToken {
        /// The account.
        name: String,
        /// The token's id.
        #[arg(long)]
        id: String,
    },
    /// Print the admin's initial password (from Secret ferry-initial-admin-secret).
    InitialPassword,
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| format!("{s:?} is not a role: use readonly, sync or admin"))
}

/// Runs the subcommand.
pub(crate) async fn run(args: &Args) -> anyhow::Result<i32> {
    let client = args.kube.client().await?;
    let store = AccountStore::new(client.clone(), &args.namespace);
    match &args.command {
        Command::List => {
            println!(
                "{:<20} {:<9} {:<8} {:<7} {:<7} PROJECTS",
                "NAME", "ROLE", "ENABLED", "LOGIN", "TOKENS"
            );
            for a in store.accounts().await?.iter() {
                let projects = if a.projects.is_empty() {
                    "*".to_string()
                } else {
                    a.projects.join(",")
                };
                println!(
                    "{:<20} {:<9} {:<8} {:<7} {:<7} {projects}",
                    a.name,
                    a.role.as_str(),
                    a.enabled,
                    a.login && a.password_hash.is_some(),
                    a.tokens.len()
                );
            }
        }
        Command::Create {
            name,
            role,
            projects,
        } => {
            store.upsert_account(name, *role, projects).await?;
            println!(
                "account {name}: role {role}; set a password with `ferry account update-password {name}`"
            );
        }
        Command::UpdatePassword { name } => {
            eprintln!("new password for {name} (one line on standard input):");
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            store.set_password(name, password).await?;
            println!("password of {name} updated");
        }
        Command::GenerateToken { name, id } => {
            let token = store.generate_token(name, id).await?;
            println!("{token}");
        }
        Command::DeleteToken { name, id } => {
            if !store.delete_token(name, id).await? {
                eprintln!("account {name} has no token {id}");
                return Ok(1);
            }
            println!("token {id} of {name} deleted");
        }
        Command::InitialPassword => {
            let secrets: kube::Api<k8s_openapi::api::core::v1::Secret> =
                kube::Api::namespaced(client, &args.namespace);
            let secret = secrets
                .get_opt(INITIAL_ADMIN_SECRET)
                .await?
                .with_context(|| {
                    format!(
                        "Secret {}/{INITIAL_ADMIN_SECRET} does not exist: the server creates it at \
                     its first start when the admin has no password (it may have been deleted \
                     after the password was changed)",
                        args.namespace
                    )
                })?;
            let password = secret
                .data
                .and_then(|d| d.get("password").cloned())
                .map(|b| String::from_utf8_lossy(&b.0).into_owned())
                .context("the Secret has no `password` key")?;
            println!("{password}");
        }
    }
    Ok(0)
}
