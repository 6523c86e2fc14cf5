//! The scale-out loop: renews this replica's Lease, lists the others', works out which
//! destination clusters this replica owns (see [`crate::shard`] for the rules and why they are
//! safe), queues the apps of clusters it gains, and cancels work on clusters it loses.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ferry_core::application::Application;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams, ObjectMeta, PostParams};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use crate::destinations::DestinationError;
use crate::engine::Engine;
use crate::metrics::ClusterLabels;
use crate::shard::{INSTANCE_ANNOTATION, LEASE_LABEL, Liveness, PeerLease, Shared, Standing};

/// Why a renew cycle did not count.
#[derive(Debug, thiserror::Error)]
enum LeaseError {
    #[error("listing the controller Leases (label {LEASE_LABEL}) in namespace {0}: {1}")]
    List(String, #[source] kube::Error),
    #[error("writing Lease {0}: {1}")]
    Write(String, #[source] kube::Error),
    #[error(
        "Lease {0} is renewed by another live process with the same identity: give each replica \
         its own --replica-id (or POD_NAME); this one waits until the other stops"
    )]
    Duplicate(String),
}

impl Engine {
    /// Reconciles `name` as [`Engine::reconcile`] does, but cancels the work as soon as this
    /// replica no longer owns the app's cluster (its Lease lapsed, or the cluster moved).
    pub async fn reconcile_owned(
        self: &Arc<Self>,
        name: &str,
    ) -> Result<Option<Duration>, kube::Error> {
        self.shards.begin(name);
        tokio::select! {
            done = self.reconcile(name) => done,
            () = self.shards.lost(name) => {
                info!(app = name, "stopped: this replica no longer owns the app's destination cluster");
                self.release(name);
                Ok(None)
            }
        }
    }

    /// Whether this replica reconciles `app` (always, with one replica). An app it does not
    /// own is dropped: its memories, delayed re-queues and watches.
    pub(crate) async fn owns_app(&self, app: &Application) -> Result<bool, kube::Error> {
        if self.shards.shared().is_none() {
            return Ok(true);
        }
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let cluster = self.cluster_of(app).await?;
        if self.shards.check_app(name, &cluster) {
            self.metrics
                .shard_reconciles
                .get_or_create(&ClusterLabels { cluster })
                .inc();
            Ok(true)
        } else {
            debug!(app = name, %cluster, "another replica owns this app's cluster");
            self.release(name);
            Ok(false)
        }
    }

    /// The cluster an app's destination names, as every replica resolves it: the server URL
    /// (`https://kubernetes.default.svc` for the cluster ferry runs in); for a name that no
    /// cluster Secret has, the name itself (whoever owns it reports the error).
    async fn cluster_of(&self, app: &Application) -> Result<String, kube::Error> {
        let d = &app.spec.destination;
        match self
            .differ
            .destinations
            .resolve_destination(d.server.as_deref(), d.name.as_deref())
            .await
        {
            Ok(resolved) => Ok(resolved.server),
            // Not knowing would let two replicas each think the app theirs: retry.
            Err(DestinationError::List(e)) => Err(e),
            Err(_) => Ok(d
                .server
                .as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_end_matches('/').to_owned())
                .or_else(|| d.name.as_ref().map(|n| format!("name:{n}")))
                .unwrap_or_default()),
        }
    }

    /// Drops what this replica keeps for `name` without forgetting which cluster it goes to.
    fn release(&self, name: &str) {
        self.memos.forget(name);
        self.queue.forget(name);
        self.watches.forget(name);
        self.differ.forget_renders(name);
    }
}

/// Runs the Lease loop until the process ends (returns at once with one replica).
pub async fn run_leases(engine: Arc<Engine>) {
    let Some(shared) = engine.shards.shared().cloned() else {
        return;
    };
    let cfg = shared.cfg.clone();
    let leases: Api<Lease> = Api::namespaced(
        engine.differ.destinations.local().client().clone(),
        &engine.cfg.namespace,
    );
    let instance = format!(
        "{}-{}",
        std::process::id(),
        Timestamp::now().as_nanosecond() % 1_000_000_000_000
    );
    info!(
        identity = %cfg.identity,
        lease = %cfg.lease_name(),
        replicas = cfg.replicas,
        lease_duration = ?cfg.lease_duration,
        "scale-out: sharding destination clusters among controller replicas"
    );
    let mut liveness = Liveness::default();
    let mut owned_before: BTreeSet<String> = BTreeSet::new();
    let mut ticks = tokio::time::interval(cfg.renew_interval());
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let start = Instant::now();
        match renew(&leases, &shared, &instance, &mut liveness, start).await {
            Ok(()) => {}
            Err(e) => warn!("scale-out: {e}; this replica stops when its lease lapses"),
        }
        let now = Instant::now();
        let clusters = shared.clusters(now);
        let owned: BTreeSet<String> = clusters
            .iter()
            .filter(|(_, o)| **o)
            .map(|(c, _)| c.clone())
            .collect();
        let gained: BTreeSet<String> = owned.difference(&owned_before).cloned().collect();
        let lost: BTreeSet<String> = owned_before.difference(&owned).cloned().collect();
        let standing = shared.standing.lock().expect("standing lock").clone();
        engine
            .metrics
            .shard_live_replicas
            .set(i64::try_from(standing.members.len()).unwrap_or(i64::MAX));
        engine
            .metrics
            .shard_owned_clusters
            .set(i64::try_from(owned.len()).unwrap_or(i64::MAX));
        engine
            .metrics
            .shard_active
            .set(i64::from(standing.active(now)));
        // Wake the watchers of in-flight work every cycle: a member that left or joined may
        // move a cluster whose apps are being worked on.
        shared.changed.send_modify(|g| *g += 1);
        if gained.is_empty() && lost.is_empty() {
            continue;
        }
        engine
            .metrics
            .shard_ownership_changes
            .inc_by((gained.len() + lost.len()) as u64);
        let apps = shared.apps_in(&gained);
        info!(
            gained = ?gained,
            lost = ?lost,
            members = ?standing.members,
            queued = apps.len(),
            "scale-out: cluster ownership changed"
        );
        for app in apps {
            engine.queue.add(&app);
        }
        owned_before = owned;
    }
}

/// One renew cycle: list the Leases, write this replica's own, and update the standing.
async fn renew(
    leases: &Api<Lease>,
    shared: &Shared,
    instance: &str,
    liveness: &mut Liveness,
    start: Instant,
) -> Result<(), LeaseError> {
    let cfg = &shared.cfg;
    let lease_name = cfg.lease_name();
    let list = leases
        .list(&ListParams::default().labels(&format!("{LEASE_LABEL}=controller")))
        .await
        .map_err(|e| LeaseError::List(leases_namespace(leases), e))?;
    let listed_at = Instant::now();
    let wall_now = Timestamp::now();
    let peers: Vec<PeerLease> = list
        .items
        .iter()
        .filter_map(|l| peer(l, wall_now))
        .collect();
    liveness.observe(&peers, listed_at);
    // Only Leases whose replicas are dead here as well: a replica whose wall clock is far
    // behind still renews, and is seen renewing.
    let live = liveness.live(listed_at, cfg.lease_duration);
    let others: Vec<&Lease> = list
        .items
        .iter()
        .filter(|l| l.metadata.name.as_deref() != Some(lease_name.as_str()))
        .filter(|l| {
            let holder = l.spec.as_ref().and_then(|s| s.holder_identity.as_ref());
            holder.is_none_or(|h| !live.contains(h))
        })
        .collect();
    remove_stale(leases, &others, wall_now, cfg.lease_duration).await;
    liveness.prune(listed_at, cfg.lease_duration);

    let mine = list
        .items
        .iter()
        .find(|l| l.metadata.name.as_deref() == Some(lease_name.as_str()));
    let foreign = mine.is_some_and(|l| {
        l.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(INSTANCE_ANNOTATION))
            .map(String::as_str)
            != Some(instance)
    });
    if foreign
        && liveness
            .live(listed_at, cfg.lease_duration)
            .contains(&cfg.identity)
    {
        return Err(LeaseError::Duplicate(lease_name));
    }
    let lease = Lease {
        metadata: ObjectMeta {
            name: Some(lease_name.clone()),
            resource_version: mine.and_then(|l| l.metadata.resource_version.clone()),
            labels: Some(BTreeMap::from([(
                LEASE_LABEL.to_owned(),
                "controller".to_owned(),
            )])),
            annotations: Some(BTreeMap::from([(
                INSTANCE_ANNOTATION.to_owned(),
                instance.to_owned(),
            )])),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(cfg.identity.clone()),
            lease_duration_seconds: Some(
                i32::try_from(cfg.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX),
            ),
            renew_time: Some(MicroTime(Timestamp::now())),
            acquire_time: mine
                .filter(|_| !foreign)
                .and_then(|l| l.spec.as_ref()?.acquire_time.clone())
                .or(Some(MicroTime(Timestamp::now()))),
            ..LeaseSpec::default()
        }),
    };
    let written = match mine {
        Some(_) => {
            leases
                .replace(&lease_name, &PostParams::default(), &lease)
                .await
        }
        None => leases.create(&PostParams::default(), &lease).await,
    };
    written.map_err(|e| LeaseError::Write(lease_name, e))?;
    let renewed_at = Instant::now();

    let mut members = liveness.live(listed_at, cfg.lease_duration);
    members.insert(cfg.identity.clone());
    let mut standing = shared.standing.lock().expect("standing lock");
    let lapsed = standing.valid_until.is_none_or(|u| u <= start);
    let active_from = if lapsed {
        info!(
            warm_up = ?cfg.lease_duration,
            "scale-out: lease renewed; this replica takes clusters after one lease duration"
        );
        Some(renewed_at + cfg.lease_duration)
    } else {
        standing.active_from
    };
    *standing = Standing {
        valid_until: Some(start + cfg.renew_deadline()),
        active_from,
        members,
    };
    Ok(())
}

/// Deletes the Leases of replicas gone for long (a Deployment's pods get new names, so their
/// Leases would pile up): not renewed for ten lease durations and at least ten minutes by the
/// wall clock, and not seen renewing for a lease duration. Such a replica stopped long ago (rule 1); if it comes back it writes a new Lease
/// and waits its warm-up (rule 3). The delete is conditional on the Lease being unchanged.
async fn remove_stale(leases: &Api<Lease>, items: &[&Lease], wall_now: Timestamp, d: Duration) {
    let gone_for = (d * 10).max(Duration::from_secs(600));
    for lease in items {
        let renewed = lease
            .spec
            .as_ref()
            .and_then(|s| s.renew_time.as_ref())
            .map(|t| t.0);
        let stale = renewed.is_some_and(|r| {
            wall_now.duration_since(r)
                > k8s_openapi::jiff::SignedDuration::try_from(gone_for).unwrap_or_default()
        });
        let (Some(name), Some(version), true) = (
            lease.metadata.name.as_deref(),
            lease.metadata.resource_version.clone(),
            stale,
        ) else {
            continue;
        };
        let params = kube::api::DeleteParams {
            preconditions: Some(kube::api::Preconditions {
                resource_version: Some(version),
                uid: None,
            }),
            ..kube::api::DeleteParams::default()
        };
        match leases.delete(name, &params).await {
            Ok(_) => info!(
                lease = name,
                "scale-out: removed the Lease of a replica gone for long"
            ),
            Err(e) => debug!(lease = name, "removing a stale Lease: {e}"),
        }
    }
}

fn leases_namespace(leases: &Api<Lease>) -> String {
    leases.namespace().unwrap_or_default().to_owned()
}

/// What a listed Lease says of its replica (`None` for a Lease without a holder).
fn peer(lease: &Lease, wall_now: Timestamp) -> Option<PeerLease> {
    let spec = lease.spec.as_ref()?;
    let identity = spec.holder_identity.clone()?;
    let renewed = spec.renew_time.as_ref().map(|t| t.0);
    let duration = i64::from(spec.lease_duration_seconds.unwrap_or(0));
    let wall_clock_live = renewed.is_some_and(|r| {
        r.checked_add(k8s_openapi::jiff::SignedDuration::from_secs(duration))
            .is_ok_and(|until| until > wall_now)
    });
    Some(PeerLease {
        identity,
        renew_time: format!(
            "{}/{}",
            renewed.map(|r| r.to_string()).unwrap_or_default(),
            lease
                .metadata
                .resource_version
                .as_deref()
                .unwrap_or_default()
        ),
        wall_clock_live,
    })
}
