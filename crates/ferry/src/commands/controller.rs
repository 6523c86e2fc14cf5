//! `ferry controller`: the reconciler alone, without the UI and API (those come from
//! `ferry server`); serves `/metrics` and `/healthz` on `--metrics-listen`. `ferry run` runs
//! both halves in one process.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ferry_controller::{Engine, EngineConfig, run_controller};

use super::kube::KubeArgs;

/// The controller's settings, shared by `ferry run` and `ferry controller`.
#[derive(Debug, clap::Args)]
pub(crate) struct ControllerArgs {
    /// The namespace whose Applications ferry reconciles (`argocd` makes an Argo CD repo work
    /// with no edits).
    #[arg(long, short = 'n', default_value = "ferry", env = "FERRY_NAMESPACE")]
    pub(crate) namespace: String,

    /// How often repositories are checked for new commits (e.g. 30s, 3m, 1h).
    #[arg(long, default_value = "3m", value_parser = parse_duration)]
    poll_interval: Duration,

    /// How many apps are reconciled at once.
    #[arg(long, default_value_t = 8)]
    pub(crate) workers: usize,

    /// How many API requests one app makes at once while comparing or applying.
    #[arg(long, default_value_t = 8)]
    per_app_concurrency: usize,

    /// Where repository mirrors and checkouts are kept (default: a `ferry` folder in the
    /// system's cache or temp directory).
    #[arg(long)]
    cache_dir: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) sources: SourceArgs,

    /// Refuse to adopt an existing object that Git declares and no app tracks (by default it
    /// is adopted, as Argo CD does). An app's sync option `FailOnUntrackedResource=false`
    /// still allows it for that app.
    #[arg(long)]
    fail_on_untracked_resource: bool,

    /// Whether a wave waits for the child Applications in it to be healthy (`wait`), or counts
    /// them Healthy once they exist, as Argo CD does (`ignore`). A parent's annotation
    /// `ferry.dev/child-health` overrides it.
    #[arg(long, default_value = "wait", value_parser = parse_child_health)]
    child_health: ferry_controller::app_of_apps::ChildHealth,

    /// The share of an ApplicationSet's Applications (in percent) that one pass may delete
    /// without confirmation; more (or all of them) is held until `ferry appset confirm`. A
    /// set's annotation `ferry.dev/max-deletion-percent` overrides it.
    #[arg(long, default_value_t = ferry_appset::plan::DEFAULT_MAX_DELETION_PERCENT,
          value_parser = clap::value_parser!(u32).range(0..=100))]
    appset_max_deletion_percent: u32,

    /// The namespaces whose Argo Rollouts `Rollout`s ferry runs, comma-separated; empty (the
    /// default): every namespace; `off`: none (when Argo Rollouts runs them).
    #[arg(
        long,
        env = "FERRY_ROLLOUT_NAMESPACES",
        value_delimiter = ',',
        default_value = ""
    )]
    pub(crate) rollout_namespaces: Vec<String>,
}

/// Which repositories and remote bases ferry may fetch, shared by every command that renders.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct SourceArgs {
    /// Allow `repoURL: file://…` and local paths. For tests and demos only: a local URL lets an
    /// Application read any repository this process can read, other projects' included.
    #[arg(long, env = "FERRY_ALLOW_FILE_REPOS")]
    pub(crate) allow_file_repos: bool,

    /// The protocols kustomize may fetch remote bases with, comma-separated (https, ssh, http,
    /// git). `file` is never allowed.
    #[arg(
        long,
        env = "FERRY_KUSTOMIZE_REMOTE_PROTOCOLS",
        value_delimiter = ',',
        default_value = "https,ssh",
        value_parser = parse_remote_protocol
    )]
    pub(crate) kustomize_remote_protocols: Vec<String>,
}

impl SourceArgs {
    /// The engine configuration with these settings (and the rest as given).
    pub(crate) fn engine_config(
        &self,
        namespace: &str,
        poll_interval: Duration,
        cache_dir: PathBuf,
        per_app_concurrency: usize,
    ) -> EngineConfig {
        EngineConfig {
            poll_interval,
            per_app_concurrency,
            allow_file_repos: self.allow_file_repos,
            kustomize_remote_protocols: self.kustomize_remote_protocols.clone(),
            ..EngineConfig::new(namespace, cache_dir)
        }
    }
}

/// One protocol of `--kustomize-remote-protocols`.
fn parse_remote_protocol(s: &str) -> Result<String, String> {
    let p = s.trim().to_ascii_lowercase();
    match p.as_str() {
        "https" | "ssh" | "http" | "git" => Ok(p),
        "file" => Err(
            "file is never allowed for remote bases: it would read other repositories' mirrors"
                .into(),
        ),
        other => Err(format!(
            "unknown protocol {other:?}: use https, ssh, http or git"
        )),
    }
}

fn parse_child_health(s: &str) -> Result<ferry_controller::app_of_apps::ChildHealth, String> {
    s.parse()
}

impl ControllerArgs {
    /// The rollout controller, unless `--rollout-namespaces off`; runs until the process ends.
    pub(crate) async fn run_rollouts(
        &self,
        client: kube::Client,
        owns: Option<ferry_rollouts::Gate>,
    ) -> anyhow::Result<()> {
        let namespaces: Vec<String> = self
            .rollout_namespaces
            .iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect();
        if namespaces.iter().any(|n| n == "off") {
            return std::future::pending().await;
        }
        let http = ferry_http::Client::new(ferry_http::Options::default())
            .map_err(|e| anyhow::anyhow!("building the HTTP client of rollout analysis: {e}"))?;
        let recorder = kube::runtime::events::Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: "ferry-rollouts".into(),
                instance: std::env::var("HOSTNAME").ok(),
            },
        );
        let ctx = ferry_rollouts::Context {
            client,
            http,
            recorder,
        };
        ferry_rollouts::run_rollouts(
            ctx,
            ferry_rollouts::RolloutsConfig {
                namespaces,
                workers: self.workers.clamp(1, 4),
                owns,
            },
        )
        .await;
        Ok(())
    }

    /// The engine for `client`, its metrics (and the API request metrics) registered in
    /// `metrics`' registry.
    pub(crate) fn engine(
        &self,
        client: kube::Client,
        metrics: &mut ferry_server::Metrics,
    ) -> anyhow::Result<Arc<Engine>> {
        let cache_dir = self.cache_dir.clone().unwrap_or_else(|| {
            std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
                .join("ferry")
        });
        std::fs::create_dir_all(&cache_dir).map_err(|e| {
            anyhow::anyhow!("creating the cache directory {}: {e}", cache_dir.display())
        })?;
        let mut config = self.sources.engine_config(
            &self.namespace,
            self.poll_interval,
            cache_dir,
            self.per_app_concurrency,
        );
        config.fail_on_untracked_resource = self.fail_on_untracked_resource;
        config.child_health = self.child_health;
        let engine = Engine::new(client, config);
        // One registry for the process: the server's metrics, the controller's, API requests.
        engine.metrics.register(metrics.registry_mut());
        ferry_cluster::ApiMetrics::global().register(metrics.registry_mut());
        Ok(Arc::new(engine))
    }
}

impl ControllerArgs {
    /// The ApplicationSet controller, reading repositories through `engine`'s differ.
    pub(crate) fn appset_controller(
        &self,
        client: kube::Client,
        engine: &Engine,
    ) -> anyhow::Result<Arc<ferry_appset::controller::AppSetController>> {
        let cfg = ferry_appset::controller::AppSetConfig {
            namespace: self.namespace.clone(),
            poll_interval: self.poll_interval,
            max_deletion_percent: self.appset_max_deletion_percent,
            workers: self.workers.clamp(1, 4),
        };
        Ok(Arc::new(ferry_appset::controller::AppSetController::new(
            client,
            cfg,
            engine.differ(),
        )?))
    }
}

/// Runs the Application controller and the ApplicationSet controller until the process ends.
pub(crate) async fn run_controllers(
    engine: Arc<Engine>,
    appsets: Arc<ferry_appset::controller::AppSetController>,
    workers: usize,
) {
    tokio::join!(run_controller(engine, workers), appsets.run());
}

/// Arguments of `ferry controller`.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(flatten)]
    kube: KubeArgs,

    #[command(flatten)]
    controller: ControllerArgs,

    /// Where `/metrics` and `/healthz` are served; `off` serves nothing.
    #[arg(long, default_value = "127.0.0.1:8082")]
    metrics_listen: String,

    #[command(flatten)]
    scale: ScaleArgs,
}

/// Scale-out: several replicas that share the destination clusters (docs/scale-out.md).
#[derive(Debug, clap::Args)]
pub(crate) struct ScaleArgs {
    /// How many controller replicas run. Above 1, each holds a Lease in the namespace and the
    /// destination clusters are shared among the live ones, each cluster reconciled by one.
    #[arg(long, env = "FERRY_REPLICAS", default_value_t = 1)]
    replicas: usize,

    /// This replica's identity, unique among the replicas (default: the pod name from
    /// POD_NAME, else the host name).
    #[arg(long, env = "POD_NAME")]
    replica_id: Option<String>,

    /// How long a replica's Lease lasts without renewal before the others take its clusters
    /// (whole seconds, at least 3s). It renews every third of that and stops working after
    /// two thirds without a renewal.
    #[arg(long, default_value = "15s", value_parser = parse_duration)]
    lease_duration: Duration,
}

impl ScaleArgs {
    /// The sharding settings, checked.
    fn shards(&self) -> anyhow::Result<ferry_controller::Shards> {
        if self.replicas == 0 {
            anyhow::bail!("--replicas must be at least 1");
        }
        if self.replicas == 1 {
            return Ok(ferry_controller::Shards::single());
        }
        if self.lease_duration < Duration::from_secs(3) || self.lease_duration.subsec_nanos() != 0 {
            anyhow::bail!(
                "--lease-duration {:?} must be whole seconds, at least 3s",
                self.lease_duration
            );
        }
        let identity = match &self.replica_id {
            Some(id) if !id.trim().is_empty() => id.trim().to_owned(),
            _ => std::env::var("HOSTNAME")
                .ok()
                .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
                .map(|h| h.trim().to_owned())
                .filter(|h| !h.is_empty())
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "--replicas {} needs a replica identity: pass --replica-id or set POD_NAME",
                        self.replicas
                    )
                })?,
        };
        Ok(ferry_controller::Shards::new(
            ferry_controller::ShardConfig {
                identity,
                replicas: self.replicas,
                lease_duration: self.lease_duration,
            },
        ))
    }
}

/// Parses `500ms`, `30s`, `3m`, `1h` or a plain number of seconds.
pub(crate) fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} is not a duration like 30s, 3m or 1h"))?;
    Ok(match unit {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        other => {
            return Err(format!(
                "unknown unit {other:?} in {s:?}: use ms, s, m or h"
            ));
        }
    })
}

/// Runs the controller until interrupted.
pub(crate) async fn run(args: &Args) -> anyhow::Result<()> {
    let client = args.kube.client().await?;
    let mut metrics = ferry_server::Metrics::new();
    let shards = args.scale.shards()?;
    let gate = shards.clone();
    let rollout_gate = shards.clone();
    let engine = args.controller.engine(client.clone(), &mut metrics)?;
    let engine = Arc::new(
        Arc::into_inner(engine)
            .expect("the engine is not shared yet")
            .with_shards(shards),
    );
    // ferry_app_info from the controller's watch: no LIST of every Application per scrape.
    let watched = engine.clone();
    metrics.set_app_source(Arc::new(move || watched.applications()));
    let appsets = args.controller.appset_controller(client.clone(), &engine)?;
    // With replicas, each ApplicationSet is worked on by one replica, chosen as a cluster is
    // (the same leases and the same hashing, on the key `applicationset/NAME`).
    let appsets = Arc::new(
        Arc::into_inner(appsets)
            .expect("the ApplicationSet controller is not shared yet")
            .with_gate(Arc::new(move |set| {
                gate.owns(&format!("applicationset/{set}"))
            })),
    );
    // Rollouts too, on the key `rollout/NAMESPACE/NAME`.
    let rollouts = args.controller.run_rollouts(
        client.clone(),
        Some(Arc::new(move |ns: &str, name: &str| {
            rollout_gate.owns(&format!("rollout/{ns}/{name}"))
        })),
    );
    let serving = async {
        match args.metrics_listen.as_str() {
            "off" => std::future::pending().await,
            listen => {
                let addr = listen.parse().map_err(|e| {
                    anyhow::anyhow!(
                        "--metrics-listen {listen:?} is not an address like 127.0.0.1:8082 (or off): {e}"
                    )
                })?;
                let apps = kube::Api::namespaced(client, &args.controller.namespace);
                ferry_server::serve_metrics(
                    addr,
                    std::sync::Arc::new(metrics),
                    Some(apps),
                    super::server::shutdown_signal(),
                )
                .await
                .map_err(anyhow::Error::from)
            }
        }
    };
    tokio::select! {
        () = run_controllers(engine, appsets, args.controller.workers) => Ok(()),
        rollouts = rollouts => rollouts,
        served = serving => served,
        _ = super::server::shutdown_signal() => {
            tracing::info!("interrupted, stopping");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("45"), Ok(Duration::from_secs(45)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("3 weeks").is_err());
        assert!(parse_duration("m").is_err());
    }
}
