//! One reconcile of one Rollout: read the Rollout, its workload, ReplicaSets, Services and
//! analysis runs; [`plan`](crate::plan::plan) the next step; apply it (ReplicaSets' replicas,
//! Services' selectors, traffic weights); write the status; publish an Event. Each reconcile
//! is short and everything it needs next is in the cluster, so a restarted ferry goes on at the
//! same step.

use std::time::Duration;

use kube::runtime::events::{Event, EventType, Recorder};
use serde_json::{Value, json};
use tracing::{debug, info};

use crate::analysis_link::{RunTarget, follow_run, run_name, stop_run};
use crate::hash::pod_template_hash;
use crate::kube_util::{self, DEPLOYMENT, REPLICA_SET, ROLLOUT, SERVICE};
use crate::plan::{AnalysisView, EventNote, Observed, ReplicaCounts, format_time, plan};
use crate::spec::{HASH_LABEL, RolloutSpec, Step, TrafficRouting};
use crate::status::{RolloutStatus, condition, phase, remove_condition, set_condition};
use crate::traffic;

/// What the reconciles share.
#[derive(Clone)]
pub struct Context {
    /// The cluster.
    pub client: kube::Client,
    /// The outbound HTTP client (analysis providers).
    pub http: ferry_http::Client,
    /// Events on Rollouts.
    pub recorder: Recorder,
}

/// A reconcile that could not finish; it is retried.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct ReconcileError {
    /// What was being done, to which object.
    pub what: String,
    /// The cause.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

fn err<E: std::error::Error + Send + Sync + 'static>(
    what: impl Into<String>,
) -> impl FnOnce(E) -> ReconcileError {
    let what = what.into();
    move |e| ReconcileError {
        what,
        source: Box::new(e),
    }
}

const INVALID_RECHECK: Duration = Duration::from_secs(30);

/// Reconciles the Rollout `namespace/name` once; returns when to look again (`None`: it is
/// gone).
pub async fn reconcile_rollout(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Option<Duration>, ReconcileError> {
    let client = &ctx.client;
    let Some(ro) = kube_util::get(client, ROLLOUT, namespace, name)
        .await
        .map_err(err(format!("reading Rollout {namespace}/{name}")))?
    else {
        return Ok(None);
    };
    if ro
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null())
    {
        return Ok(None);
    }
    let status = RolloutStatus::of(&ro);
    let now = jiff::Timestamp::now().as_second();

    let spec = match RolloutSpec::parse(&ro) {
        Ok(s) => s,
        Err(e) => return invalid_spec(ctx, &ro, &status, e.to_string(), now).await,
    };
    let (template, selector) = match resolve_workload(client, namespace, &spec).await? {
        Ok(t) => t,
        Err(msg) => return invalid_spec(ctx, &ro, &status, msg, now).await,
    };
    if let Err(msg) = check_references(client, namespace, &spec).await? {
        return invalid_spec(ctx, &ro, &status, msg, now).await;
    }

    let hash = pod_template_hash(&template);
    let uid = ro["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let owned: Vec<Value> = kube_util::list(client, REPLICA_SET, namespace)
        .await
        .map_err(err(format!("listing ReplicaSets in {namespace}")))?
        .into_iter()
        .filter(|rs| {
            rs.pointer("/metadata/ownerReferences")
                .and_then(Value::as_array)
                .is_some_and(|o| o.iter().any(|r| r["uid"] == uid.as_str()))
        })
        .collect();
    let rs_of = |h: &str| {
        owned.iter().find(|rs| {
            rs.pointer(&format!("/metadata/labels/{HASH_LABEL}"))
                .and_then(Value::as_str)
                == Some(h)
        })
    };
    let canary_rs = rs_of(&hash).map(counts);
    let stable_rs = status.stable_rs.as_deref().and_then(rs_of).map(counts);

    // Analysis runs, when the canary is at an analysis step or past the background's start.
    let in_canary = status.stable_rs.is_some()
        && status.stable_rs.as_deref() != Some(hash.as_str())
        && status.current_pod_hash.as_deref() == Some(hash.as_str())
        && !status.abort;
    let steps = &spec.canary.steps;
    let index = status.current_step_index.unwrap_or(0).max(0) as usize;
    let mut step_analysis: Option<AnalysisView> = None;
    let mut background_analysis: Option<AnalysisView> = None;
    if in_canary && !spec.paused {
        if let Some(Step::Analysis(a)) = steps.get(index) {
            let target = RunTarget {
                namespace,
                name: run_name(name, &hash, Some(index), status.attempt),
                rollout: &ro,
                analysis: a,
                hash: &hash,
                stable_hash: status.stable_rs.as_deref().unwrap_or_default(),
            };
            step_analysis = Some(follow_run(client, &ctx.http, &target).await);
        }
        if let Some(bg) = &spec.canary.analysis
            && index >= bg.starting_step.unwrap_or(0).max(0) as usize
            && index < steps.len()
        {
            let target = RunTarget {
                namespace,
                name: run_name(name, &hash, None, status.attempt),
                rollout: &ro,
                analysis: bg,
                hash: &hash,
                stable_hash: status.stable_rs.as_deref().unwrap_or_default(),
            };
            background_analysis = Some(follow_run(client, &ctx.http, &target).await);
        }
    }

    let p = plan(&Observed {
        spec: &spec,
        status: &status,
        hash: &hash,
        canary_rs,
        stable_rs,
        step_analysis,
        background_analysis,
        now,
    });
    debug!(rollout = %name, ?p, "plan");

    let stable_hash = p.status.stable_rs.clone().unwrap_or_else(|| hash.clone());
    // ReplicaSets: the canary's (created when missing), the stable's, the rest scaled to 0.
    ensure_replica_set(
        client,
        namespace,
        &ro,
        &template,
        &selector,
        &hash,
        p.canary_replicas,
        &owned,
    )
    .await?;
    for rs in &owned {
        let h = rs
            .pointer(&format!("/metadata/labels/{HASH_LABEL}"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if h == hash {
            continue;
        }
        let want = if h == stable_hash {
            p.stable_replicas
        } else {
            0
        };
        scale_replica_set(client, namespace, rs, want).await?;
    }

    // Services select the pods of their side by hash.
    if let Some(svc) = &spec.canary.stable_service {
        select_hash(client, namespace, svc, name, &stable_hash).await?;
    }
    if let Some(svc) = &spec.canary.canary_service {
        select_hash(client, namespace, svc, name, &hash).await?;
    }

    // Traffic weights.
    if let (Some(t), Some(stable_svc), Some(canary_svc)) = (
        &spec.canary.traffic,
        &spec.canary.stable_service,
        &spec.canary.canary_service,
    ) {
        let set = match t {
            TrafficRouting::Nginx(n) => {
                traffic::set_nginx_weight(
                    client,
                    namespace,
                    &ro,
                    n,
                    stable_svc,
                    canary_svc,
                    p.traffic_weight,
                )
                .await
            }
            TrafficRouting::GatewayApi(g) => {
                traffic::set_gateway_weight(
                    client,
                    namespace,
                    g,
                    stable_svc,
                    canary_svc,
                    p.traffic_weight,
                )
                .await
            }
        };
        match set {
            Ok(()) => {}
            Err(traffic::TrafficError::Invalid(msg)) => {
                return invalid_spec(ctx, &ro, &status, msg, now).await;
            }
            Err(e) => return Err(err(format!("Rollout {namespace}/{name}: traffic"))(e)),
        }
    }

    if p.stop_analysis {
        for n in analysis_runs_of(&spec, name, &hash, status.attempt) {
            stop_run(client, namespace, &n)
                .await
                .map_err(|e| ReconcileError {
                    what: format!("stopping AnalysisRun {namespace}/{n}"),
                    source: e.into(),
                })?;
        }
    }

    // workloadRef with scaleDown: the Deployment goes to 0 once the Rollout is healthy.
    if let Some(w) = &spec.workload_ref
        && matches!(w.scale_down.as_deref(), Some("onsuccess" | "progressively"))
        && p.status.phase.as_deref() == Some(phase::HEALTHY)
    {
        kube_util::merge_patch(
            client,
            DEPLOYMENT,
            namespace,
            &w.name,
            &json!({"spec": {"replicas": 0}}),
        )
        .await
        .map_err(err(format!(
            "scaling Deployment {namespace}/{} to 0 (workloadRef)",
            w.name
        )))?;
    }

    // Status.
    let mut st = p.status.clone();
    fill_counts(&mut st, &owned, &hash, &selector, &ro);
    remove_condition(&mut st.conditions, "InvalidSpec");
    let ts = format_time(now);
    let available = st.available_replicas >= spec.replicas;
    set_condition(
        &mut st.conditions,
        condition(
            "Available",
            available,
            if available {
                "AvailableReason"
            } else {
                "NotAvailable"
            },
            &format!(
                "{} of {} replicas available",
                st.available_replicas, spec.replicas
            ),
            &ts,
        ),
    );
    let (progressing, reason) = match st.phase.as_deref() {
        Some(phase::DEGRADED) => (false, "RolloutAborted"),
        Some(phase::HEALTHY) => (true, "NewReplicaSetAvailable"),
        Some(phase::PAUSED) => (true, "RolloutPaused"),
        _ => (true, "ReplicaSetUpdated"),
    };
    set_condition(
        &mut st.conditions,
        condition(
            "Progressing",
            progressing,
            reason,
            st.message.as_deref().unwrap_or("Rollout is healthy"),
            &ts,
        ),
    );
    let paused = !st.pause_conditions.is_empty();
    set_condition(
        &mut st.conditions,
        condition(
            "Paused",
            paused,
            if paused {
                "RolloutPaused"
            } else {
                "RolloutResumed"
            },
            if paused {
                "Rollout is paused"
            } else {
                "Rollout is resumed"
            },
            &ts,
        ),
    );
    write_status(client, &ro, &status, &st).await?;
    if let Some(e) = &p.event {
        publish(ctx, &ro, e).await;
        info!(rollout = %format!("{namespace}/{name}"), reason = %e.reason, "{}", e.message);
    }
    Ok(Some(p.requeue))
}

/// The names of the runs a rollout of `hash` may have started.
fn analysis_runs_of(spec: &RolloutSpec, name: &str, hash: &str, attempt: i64) -> Vec<String> {
    let mut names: Vec<String> = spec
        .canary
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Step::Analysis(_)))
        .map(|(i, _)| run_name(name, hash, Some(i), attempt))
        .collect();
    if spec.canary.analysis.is_some() {
        names.push(run_name(name, hash, None, attempt));
    }
    names
}

fn counts(rs: &Value) -> ReplicaCounts {
    let n = |p: &str| rs.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    ReplicaCounts {
        desired: n("/spec/replicas"),
        current: n("/status/replicas"),
        ready: n("/status/readyReplicas"),
        available: n("/status/availableReplicas"),
    }
}

/// The pod template and selector: the Rollout's own, or the referenced Deployment's.
async fn resolve_workload(
    client: &kube::Client,
    namespace: &str,
    spec: &RolloutSpec,
) -> Result<Result<(Value, Value), String>, ReconcileError> {
    if let Some(t) = &spec.template {
        return Ok(Ok((t.clone(), spec.selector.clone().unwrap_or(json!({})))));
    }
    let Some(w) = &spec.workload_ref else {
        return Ok(Err("spec.template: missing".into()));
    };
    let Some(d) = kube_util::get(client, DEPLOYMENT, namespace, &w.name)
        .await
        .map_err(err(format!(
            "reading Deployment {namespace}/{} (workloadRef)",
            w.name
        )))?
    else {
        return Ok(Err(format!(
            "spec.workloadRef: Deployment {:?} not found in namespace {namespace:?}: create it or fix the name",
            w.name
        )));
    };
    let template = d.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let selector = spec
        .selector
        .clone()
        .or_else(|| d.pointer("/spec/selector").cloned())
        .unwrap_or(json!({}));
    Ok(Ok((template, selector)))
}

/// Checks that the Services and traffic objects the spec names exist.
async fn check_references(
    client: &kube::Client,
    namespace: &str,
    spec: &RolloutSpec,
) -> Result<Result<(), String>, ReconcileError> {
    for (field, svc) in [
        ("canaryService", &spec.canary.canary_service),
        ("stableService", &spec.canary.stable_service),
    ] {
        let Some(svc) = svc else { continue };
        if kube_util::get(client, SERVICE, namespace, svc)
            .await
            .map_err(err(format!("reading Service {namespace}/{svc}")))?
            .is_none()
        {
            return Ok(Err(format!(
                "spec.strategy.canary.{field}: Service {svc:?} not found in namespace {namespace:?}: create it or fix the name"
            )));
        }
    }
    if let (Some(t), Some(s), Some(c)) = (
        &spec.canary.traffic,
        &spec.canary.stable_service,
        &spec.canary.canary_service,
    ) {
        match traffic::check_router(client, namespace, t, s, c).await {
            Ok(()) => {}
            Err(traffic::TrafficError::Invalid(m)) => return Ok(Err(m)),
            Err(e) => return Err(err("checking the traffic router")(e)),
        }
    }
    Ok(Ok(()))
}

/// Marks the Rollout Degraded with an `InvalidSpec` condition naming the cause, and changes
/// nothing else: an invalid spec never moves a rollout forward.
async fn invalid_spec(
    ctx: &Context,
    ro: &Value,
    status: &RolloutStatus,
    message: String,
    now: i64,
) -> Result<Option<Duration>, ReconcileError> {
    let mut st = status.clone();
    let full = format!("InvalidSpec: {message}");
    let changed = st.message.as_deref() != Some(full.as_str());
    st.phase = Some(phase::DEGRADED.into());
    st.message = Some(full.clone());
    st.observed_generation = ro["metadata"]["generation"].as_i64().map(|g| g.to_string());
    set_condition(
        &mut st.conditions,
        condition(
            "InvalidSpec",
            true,
            "InvalidSpec",
            &message,
            &format_time(now),
        ),
    );
    write_status(&ctx.client, ro, status, &st).await?;
    if changed {
        publish(
            ctx,
            ro,
            &EventNote {
                warning: true,
                reason: "InvalidSpec".into(),
                message: full,
            },
        )
        .await;
    }
    Ok(Some(INVALID_RECHECK))
}

#[allow(clippy::too_many_arguments)] // one call site; the values are each needed once
async fn ensure_replica_set(
    client: &kube::Client,
    namespace: &str,
    ro: &Value,
    template: &Value,
    selector: &Value,
    hash: &str,
    replicas: i64,
    owned: &[Value],
) -> Result<(), ReconcileError> {
    let rollout = ro["metadata"]["name"].as_str().unwrap_or_default();
    if let Some(rs) = owned.iter().find(|rs| {
        rs.pointer(&format!("/metadata/labels/{HASH_LABEL}"))
            .and_then(Value::as_str)
            == Some(hash)
    }) {
        return scale_replica_set(client, namespace, rs, replicas).await;
    }
    let mut template = template.clone();
    template["metadata"]["labels"][HASH_LABEL] = hash.into();
    let mut selector = selector.clone();
    selector["matchLabels"][HASH_LABEL] = hash.into();
    let mut labels = template["metadata"]["labels"].clone();
    labels[HASH_LABEL] = hash.into();
    let name = format!("{rollout}-{hash}");
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": labels,
            "annotations": { "rollout.argoproj.io/desired-replicas": ro.pointer("/spec/replicas").cloned().unwrap_or(json!(1)).to_string() },
            "ownerReferences": [traffic::owner_reference(ro)],
        },
        "spec": {
            "replicas": replicas,
            "selector": selector,
            "template": template,
            "minReadySeconds": ro.pointer("/spec/minReadySeconds").cloned().unwrap_or(json!(0)),
        }
    });
    match kube_util::create(client, REPLICA_SET, namespace, &rs).await {
        Ok(()) => Ok(()),
        Err(e) if matches!(&e, kube::Error::Api(s) if s.code == 409) => Err(ReconcileError {
            what: format!("creating ReplicaSet {namespace}/{name}"),
            source: format!("a ReplicaSet of that name exists and the Rollout does not own it: rename or delete it ({e})").into(),
        }),
        Err(e) => Err(err(format!("creating ReplicaSet {namespace}/{name}"))(e)),
    }
}

async fn scale_replica_set(
    client: &kube::Client,
    namespace: &str,
    rs: &Value,
    replicas: i64,
) -> Result<(), ReconcileError> {
    if rs.pointer("/spec/replicas").and_then(Value::as_i64) == Some(replicas) {
        return Ok(());
    }
    let name = rs["metadata"]["name"].as_str().unwrap_or_default();
    kube_util::merge_patch(
        client,
        REPLICA_SET,
        namespace,
        name,
        &json!({"spec": {"replicas": replicas}}),
    )
    .await
    .map_err(err(format!(
        "scaling ReplicaSet {namespace}/{name} to {replicas}"
    )))
}

async fn select_hash(
    client: &kube::Client,
    namespace: &str,
    service: &str,
    rollout: &str,
    hash: &str,
) -> Result<(), ReconcileError> {
    let svc = kube_util::get(client, SERVICE, namespace, service)
        .await
        .map_err(err(format!("reading Service {namespace}/{service}")))?;
    if svc
        .as_ref()
        .and_then(|s| s.pointer(&format!("/spec/selector/{HASH_LABEL}")))
        .and_then(Value::as_str)
        == Some(hash)
    {
        return Ok(());
    }
    kube_util::merge_patch(
        client,
        SERVICE,
        namespace,
        service,
        &json!({
            "metadata": {"annotations": {"argo-rollouts.argoproj.io/managed-by-rollouts": rollout}},
            "spec": {"selector": {HASH_LABEL: hash}}
        }),
    )
    .await
    .map_err(err(format!(
        "pointing Service {namespace}/{service} at the pods of {hash}"
    )))
}

fn fill_counts(st: &mut RolloutStatus, owned: &[Value], hash: &str, selector: &Value, ro: &Value) {
    let mut total = ReplicaCounts::default();
    let mut updated = 0;
    for rs in owned {
        let c = counts(rs);
        total.current += c.current;
        total.ready += c.ready;
        total.available += c.available;
        if rs
            .pointer(&format!("/metadata/labels/{HASH_LABEL}"))
            .and_then(Value::as_str)
            == Some(hash)
        {
            updated = c.current;
        }
    }
    st.replicas = total.current;
    st.updated_replicas = updated;
    st.ready_replicas = total.ready;
    st.available_replicas = total.available;
    st.observed_generation = ro["metadata"]["generation"].as_i64().map(|g| g.to_string());
    st.selector = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        });
}

/// Replaces the status when it changed; the patch fails (and the reconcile is retried) when
/// someone else (a promote, an abort) wrote the Rollout in between.
async fn write_status(
    client: &kube::Client,
    ro: &Value,
    old: &RolloutStatus,
    new: &RolloutStatus,
) -> Result<(), ReconcileError> {
    if old == new {
        return Ok(());
    }
    let name = ro["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = ro["metadata"]["namespace"].as_str().unwrap_or_default();
    let patch: json_patch::Patch = serde_json::from_value(json!([
        {"op": "test", "path": "/metadata/resourceVersion", "value": ro["metadata"]["resourceVersion"]},
        {"op": "add", "path": "/status", "value": new},
    ]))
    .map_err(err("building the status patch"))?;
    ROLLOUT
        .api(client, namespace)
        .patch_status(
            name,
            &Default::default(),
            &kube::api::Patch::<()>::Json(patch),
        )
        .await
        .map_err(err(format!(
            "writing the status of Rollout {namespace}/{name}"
        )))?;
    Ok(())
}

async fn publish(ctx: &Context, ro: &Value, note: &EventNote) {
    let reference = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(crate::spec::API_VERSION.into()),
        kind: Some(crate::spec::KIND.into()),
        name: ro["metadata"]["name"].as_str().map(str::to_owned),
        namespace: ro["metadata"]["namespace"].as_str().map(str::to_owned),
        uid: ro["metadata"]["uid"].as_str().map(str::to_owned),
        resource_version: ro["metadata"]["resourceVersion"]
            .as_str()
            .map(str::to_owned),
        ..Default::default()
    };
    let event = Event {
        type_: if note.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: note.reason.clone(),
        note: Some(note.message.chars().take(1000).collect()),
        action: "Rollout".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, &reference).await {
        tracing::warn!("recording an Event on Rollout {:?}: {e}", reference.name);
    }
}
