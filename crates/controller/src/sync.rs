//! Running a sync: apply the desired objects in stages (wave, then kind order; one stage in
//! parallel), wait for each wave to be healthy before the next, wait for CRDs to be established
//! before their custom resources, then prune in reverse wave order.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_cluster::{ApplyOptions, ClusterClient, ObjectRef, Propagation};
use ferry_core::application::{
    Application, HealthStatusCode, Operation, OperationPhase, ResourceResult, ResultCode,
    SyncOperation,
};
use ferry_core::health::assess_health;
use ferry_core::order::{kind_rank, sync_wave};
use ferry_core::tracking::ResourceKey;
use futures::StreamExt as _;
use serde_json::{Value, json};
use tracing::{info, warn};

use crate::compare::{Compared, Prunable};
use crate::desired::DesiredObject;
use crate::reconcile::{Engine, tracked_by};

/// How long a wave may take to become healthy before the sync fails.
const WAVE_HEALTH_TIMEOUT: Duration = Duration::from_secs(300);

/// What to sync.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// The revision being synced (a commit SHA).
    pub revision: String,
    /// Delete tracked objects that left the desired set.
    pub prune: bool,
    /// Only report what would be done.
    pub dry_run: bool,
    /// Started by automated sync rather than by a user.
    pub automated: bool,
    /// Sync options of this sync (`CreateNamespace=true`, ...).
    pub sync_options: Vec<String>,
    /// Which retry of a failed sync this is (0: not a retry).
    pub retry_count: i64,
}

impl SyncRequest {
    /// The request a user made through `.operation.sync`.
    pub fn manual(op: &Operation, sync: &SyncOperation) -> Self {
        SyncRequest {
            revision: sync.revision.clone().unwrap_or_default(),
            prune: sync.prune,
            dry_run: sync.dry_run,
            automated: op.initiated_by.as_ref().is_some_and(|i| i.automated),
            sync_options: sync.sync_options.clone(),
            retry_count: 0,
        }
    }

    fn has_option(&self, app: &Application, option: &str) -> bool {
        self.sync_options
            .iter()
            .chain(app.spec.sync_options())
            .any(|o| o.trim().eq_ignore_ascii_case(option))
    }
}

/// How a sync ended.
#[derive(Debug)]
pub struct SyncOutcome {
    /// Succeeded or Failed.
    pub phase: OperationPhase,
    /// A one-line summary.
    pub message: String,
    /// One entry per resource touched.
    pub results: Vec<ResourceResult>,
}

fn result_for(
    key: &ResourceKey,
    api_version: &str,
    status: ResultCode,
    message: impl Into<String>,
) -> ResourceResult {
    ResourceResult {
        group: key.group.clone(),
        version: api_version
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        kind: key.kind.clone(),
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        status: Some(status),
        message: Some(message.into()),
        sync_phase: Some("Sync".into()),
        ..Default::default()
    }
}

/// Per-resource sync options from `argocd.argoproj.io/sync-options`.
pub(crate) fn resource_option(obj: &Value, option: &str) -> bool {
    obj.pointer("/metadata/annotations")
        .and_then(|a| a.get(ferry_core::order::SYNC_OPTIONS_ANNOTATION))
        .and_then(Value::as_str)
        .is_some_and(|v| v.split(',').any(|o| o.trim().eq_ignore_ascii_case(option)))
}

/// Runs one sync of `app` to `desired`.
pub async fn run_sync(
    engine: &Engine,
    app: &Application,
    cluster: &ClusterClient,
    desired: &[DesiredObject],
    compared: &[Compared],
    prunable: &[Prunable],
    request: &SyncRequest,
) -> SyncOutcome {
    let app_name = app.metadata.name.as_deref().unwrap_or_default();
    let mut results = Vec::new();

    // Refuse, before anything is applied, objects another app tracks or nobody tracks.
    for c in compared {
        if let Some(owner) = &c.foreign_owner {
            return SyncOutcome {
                phase: OperationPhase::Failed,
                message: format!(
                    "{} ({}) already exists and is tracked by {owner}; ferry does not take objects from another app",
                    c.desired.key, c.desired.origin
                ),
                results,
            };
        }
        if let Some(live) = &c.live
            && !tracked_by(live, app_name, &c.desired.key)
            && live
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(ferry_core::tracking::TRACKING_ANNOTATION))
                .is_none()
            && !request.has_option(app, "Adopt=true")
        {
            return SyncOutcome {
                phase: OperationPhase::Failed,
                message: format!(
                    "{} ({}) already exists and is not managed by any app; to let {app_name} adopt it, annotate it: \
                     kubectl annotate {} {} {}={}",
                    c.desired.key,
                    c.desired.origin,
                    c.desired.key.kind.to_lowercase(),
                    c.desired.key.name,
                    ferry_core::tracking::TRACKING_ANNOTATION,
                    c.desired
                        .object
                        .pointer("/metadata/annotations")
                        .and_then(|a| a.get(ferry_core::tracking::TRACKING_ANNOTATION))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                ) + &if c.desired.key.namespace.is_empty() {
                    String::new()
                } else {
                    format!(" -n {}", c.desired.key.namespace)
                },
                results,
            };
        }
    }

    // Bad waves stop the sync before anything is applied.
    let mut waves: BTreeMap<i64, BTreeMap<u32, Vec<&DesiredObject>>> = BTreeMap::new();
    for d in desired {
        let wave = match sync_wave(&d.object) {
            Ok(w) => w,
            Err(e) => {
                return SyncOutcome {
                    phase: OperationPhase::Failed,
                    message: format!("{}: {e}", d.origin),
                    results,
                };
            }
        };
        waves
            .entry(wave)
            .or_default()
            .entry(kind_rank(&d.key.group, &d.key.kind))
            .or_default()
            .push(d);
    }

    if request.has_option(app, "CreateNamespace=true")
        && let Some(ns) = app
            .spec
            .destination
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty())
    {
        let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        let r = ObjectRef::of(&namespace).expect("a namespace reference");
        if !request.dry_run && matches!(cluster.get(&r).await, Ok(None)) {
            if let Err(e) = cluster
                .apply(&namespace, &ApplyOptions::new(&engine.cfg.field_manager))
                .await
            {
                return SyncOutcome {
                    phase: OperationPhase::Failed,
                    message: format!("creating namespace {ns}: {e}"),
                    results,
                };
            }
            info!(
                app = app_name,
                namespace = ns,
                "created the destination namespace"
            );
        }
    }

    let apply_opts = ApplyOptions {
        dry_run: request.dry_run,
        ..ApplyOptions::new(&engine.cfg.field_manager)
    };
    let wave_count = waves.len();
    for (i, (wave, stages)) in waves.into_iter().enumerate() {
        for (_, objects) in stages {
            let applies: Vec<_> = objects
                .into_iter()
                .map(|d| {
                    let (d, opts, cluster) = (d.clone(), apply_opts.clone(), cluster.clone());
                    async move {
                        match cluster.apply(&d.object, &opts).await {
                            Ok(_) => {
                                let done = if opts.dry_run {
                                    "would apply (dry run)"
                                } else {
                                    "applied"
                                };
                                (
                                    result_for(&d.key, d.api_version(), ResultCode::Synced, done),
                                    true,
                                )
                            }
                            Err(e) => {
                                let why = format!("{} ({}): {e}", d.key, d.origin);
                                (
                                    result_for(
                                        &d.key,
                                        d.api_version(),
                                        ResultCode::SyncFailed,
                                        why,
                                    ),
                                    false,
                                )
                            }
                        }
                    }
                })
                .collect();
            let applied: Vec<(ResourceResult, bool)> = futures::stream::iter(applies)
                .buffer_unordered(engine.cfg.per_app_concurrency.max(1))
                .collect()
                .await;
            let failed: Vec<String> = applied
                .iter()
                .filter(|(_, ok)| !ok)
                .filter_map(|(r, _)| r.message.clone())
                .collect();
            let crds: Vec<&ResourceResult> = applied
                .iter()
                .filter(|(r, ok)| *ok && r.kind == "CustomResourceDefinition")
                .map(|(r, _)| r)
                .collect();
            if !crds.is_empty() && !request.dry_run {
                for crd in &crds {
                    if let Err(e) = wait_established(cluster, &crd.name).await {
                        results.extend(applied.into_iter().map(|(r, _)| r));
                        return SyncOutcome {
                            phase: OperationPhase::Failed,
                            message: e,
                            results,
                        };
                    }
                }
                cluster.forget_discovery();
            }
            results.extend(applied.into_iter().map(|(r, _)| r));
            if !failed.is_empty() {
                return SyncOutcome {
                    phase: OperationPhase::Failed,
                    message: format!("one or more objects failed to apply: {}", failed.join("; ")),
                    results,
                };
            }
        }
        // The next wave starts only when this one is healthy.
        if i + 1 < wave_count && !request.dry_run {
            let keys: Vec<&DesiredObject> = desired
                .iter()
                .filter(|d| sync_wave(&d.object).ok() == Some(wave))
                .collect();
            if let Err(message) = wait_healthy(cluster, &keys).await {
                return SyncOutcome {
                    phase: OperationPhase::Failed,
                    message: format!("wave {wave}: {message}"),
                    results,
                };
            }
        }
    }

    // Prune what left Git, highest wave first (as Argo CD does).
    let mut pruned = 0;
    let mut ordered: Vec<&Prunable> = prunable.iter().collect();
    ordered.sort_by_key(|p| std::cmp::Reverse(sync_wave(&p.live).unwrap_or(0)));
    for p in ordered {
        let (key, r, api_version) = (&p.key, &p.target, &p.target.api_version);
        let keep = resource_option(&p.live, "Prune=false");
        if !request.prune || keep {
            let why = if keep {
                "pruning disabled for this resource (Prune=false)"
            } else {
                "ignored (requires pruning)"
            };
            results.push(result_for(key, api_version, ResultCode::PruneSkipped, why));
            continue;
        }
        if request.dry_run {
            results.push(result_for(
                key,
                api_version,
                ResultCode::Pruned,
                "would prune (dry run)",
            ));
            continue;
        }
        match cluster.delete(r, Propagation::Foreground).await {
            Ok(_) => {
                pruned += 1;
                results.push(result_for(key, api_version, ResultCode::Pruned, "pruned"));
            }
            Err(e) => {
                warn!(app = app_name, "pruning {r}: {e}");
                results.push(result_for(
                    key,
                    api_version,
                    ResultCode::SyncFailed,
                    format!("pruning {r}: {e}"),
                ));
                return SyncOutcome {
                    phase: OperationPhase::Failed,
                    message: format!("pruning {r} failed: {e}"),
                    results,
                };
            }
        }
    }
    let applied = results
        .iter()
        .filter(|r| r.status == Some(ResultCode::Synced))
        .count();
    SyncOutcome {
        phase: OperationPhase::Succeeded,
        message: if request.dry_run {
            format!("dry run: {applied} objects would be applied")
        } else {
            format!("successfully synced (applied {applied}, pruned {pruned})")
        },
        results,
    }
}

async fn wait_established(cluster: &ClusterClient, name: &str) -> Result<(), String> {
    let r = ObjectRef {
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        namespace: String::new(),
        name: name.to_string(),
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let crd = cluster.get(&r).await.map_err(|e| e.to_string())?;
        if crd
            .as_ref()
            .and_then(assess_health)
            .is_some_and(|h| h.status == HealthStatusCode::Healthy)
        {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "CustomResourceDefinition {name} was not established within 60s"
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn wait_healthy(cluster: &ClusterClient, objects: &[&DesiredObject]) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + WAVE_HEALTH_TIMEOUT;
    let mut delay = Duration::from_millis(100);
    loop {
        let mut waiting = None;
        for d in objects {
            let r = ObjectRef::of(&d.object).map_err(|e| e.to_string())?;
            let live = cluster.get(&r).await.map_err(|e| e.to_string())?;
            let health = live
                .as_ref()
                .and_then(assess_health)
                .map(|h| h.status)
                .unwrap_or(HealthStatusCode::Healthy);
            match (live, health) {
                (None, _) => waiting = Some(format!("{} is missing", d.key)),
                (_, HealthStatusCode::Degraded) => return Err(format!("{} is Degraded", d.key)),
                (_, HealthStatusCode::Healthy | HealthStatusCode::Suspended) => {}
                (_, other) => waiting = Some(format!("{} is {other:?}", d.key)),
            }
        }
        let Some(what) = waiting else { return Ok(()) };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "not healthy within {}s: {what}",
                WAVE_HEALTH_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}
