//! Scale-out: several `ferry controller` replicas share the destination clusters, each cluster
//! owned by exactly one live replica. Kubernetes is the coordinator: every replica holds a
//! `coordination.k8s.io/v1` Lease of its own in ferry's namespace and renews it; the replicas
//! find each other by listing the Leases labelled [`LEASE_LABEL`]; each cluster goes to the live
//! replica with the highest rendezvous hash of (replica, cluster), so when a replica dies only
//! its clusters move, and when one joins it takes only the clusters it wins. With one replica
//! (the default) there is no Lease and every app is reconciled, as before. The async loop that
//! renews and lists lives in [`crate::lease`]; this module is the pure logic.
//!
//! # Why no app is synced by two replicas at once
//!
//! All durations below are measured by each process on its own monotonic clock; the argument
//! relies on clocks ticking at about the same rate, never on their agreeing on the time. `D` is
//! the lease duration, `R = 2D/3` the renew deadline; a replica renews every `D/3`.
//!
//! 1. **A replica stops on its own.** A renew cycle lists the Leases, then writes the replica's
//!    own Lease. Only a cycle where both succeeded counts, and it makes the replica *valid*
//!    until `start + R`, `start` being taken before the list was sent. A replica that is not
//!    valid owns nothing: it starts no reconcile, and the reconciles under way are cancelled
//!    (dropped at their next await, which is as safe as a `kill -9`: ferry is restart-safe).
//! 2. **Others wait longer than that.** A peer counts as live until `D` after this replica
//!    first *saw* its current `renewTime` (the instant the list that showed it returned; a
//!    Lease never seen before counts from the first sight). That sighting comes after the
//!    peer's renewal was written, so after the peer's `start`; `D > R`, so when a peer is
//!    declared dead it has stopped at least `D - R` earlier. A Lease whose `renewTime +
//!    leaseDurationSeconds` is still ahead on the wall clock counts as live as well: the wall
//!    clock can only keep a peer alive longer, never declare it dead sooner.
//! 3. **A newcomer waits a lease duration.** A replica (new, or one that stopped under rule 1
//!    and came back) owns nothing until `D` after its first successful renewal returned. Every
//!    replica valid at that instant made its last counted list less than `R` ago, so after the
//!    newcomer's Lease was written: it has seen the newcomer and given up the clusters the
//!    newcomer wins. A view that lags in the other direction (a dead replica still counted)
//!    is harmless: removing a member from a rendezvous set never makes a second member think it
//!    wins a cluster that someone else with a larger view gives to it.
//! 4. **One identity, one process.** Each process marks its Lease with a random instance id;
//!    a process that finds its identity's Lease renewed by another live instance refuses to
//!    run (rule 2 decides when that instance is dead and the Lease may be taken over).
//!
//! So a cluster changes hands only after the old owner has stopped (its in-flight step
//! cancelled), with a margin of `D - R = D/3` for the cancellation to land.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

/// The label on the Leases of ferry's controller replicas (value `controller`).
pub const LEASE_LABEL: &str = "ferry.dev/shard-lease";
/// The annotation that holds the instance id of the process renewing a Lease.
pub const INSTANCE_ANNOTATION: &str = "ferry.dev/instance";

/// How replicas share the clusters.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// This replica's identity (its pod name in a Deployment), unique among the replicas.
    pub identity: String,
    /// How many replicas are meant to run; 1 turns sharding off (no Lease, every app).
    pub replicas: usize,
    /// How long a Lease lasts without renewal before its replica counts as dead.
    pub lease_duration: Duration,
}

impl ShardConfig {
    /// The renew deadline: a replica that has not renewed for this long stops.
    pub fn renew_deadline(&self) -> Duration {
        self.lease_duration * 2 / 3
    }

    /// How often a replica renews its Lease and lists the others.
    pub fn renew_interval(&self) -> Duration {
        self.lease_duration / 3
    }

    /// The name of this replica's Lease.
    pub fn lease_name(&self) -> String {
        lease_name(&self.identity)
    }
}

/// The Lease name for a replica identity: `ferry-controller-` and the identity made a valid
/// object name (lowercase letters, digits and `-`, at most 63 characters).
pub fn lease_name(identity: &str) -> String {
    let mut s: String = identity
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_alphanumeric() { c } else { '-' }
        })
        .collect();
    s.truncate(63 - "ferry-controller-".len());
    let s = s.trim_matches('-');
    format!("ferry-controller-{s}")
}

/// A 64-bit hash that is the same in every process and every ferry version (FNV-1a, then a
/// splitmix64 finish so that nearby inputs spread).
fn stable_hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0u8]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

/// The replica among `members` that owns `cluster`: the one with the highest rendezvous hash
/// (ties, practically impossible, go to the smaller identity).
pub fn owner_of<'a>(
    cluster: &str,
    members: impl IntoIterator<Item = &'a String>,
) -> Option<&'a str> {
    members
        .into_iter()
        .map(|m| (stable_hash(&[m, cluster]), std::cmp::Reverse(m)))
        .max()
        .map(|(_, std::cmp::Reverse(m))| m.as_str())
}

/// What one list showed of a peer's Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerLease {
    /// The replica identity (`spec.holderIdentity`).
    pub identity: String,
    /// `spec.renewTime` as written (compared for change, never parsed into our clock).
    pub renew_time: String,
    /// Whether `renewTime + leaseDurationSeconds` is still ahead on the wall clock.
    pub wall_clock_live: bool,
}

/// When each peer's current renewal was first seen (rule 2 of the module doc).
#[derive(Debug, Default)]
pub struct Liveness {
    seen: HashMap<String, Sighting>,
}

#[derive(Debug)]
struct Sighting {
    renew_time: String,
    first_seen: Instant,
    wall_clock_live: bool,
    /// Whether the last list showed the Lease.
    listed: bool,
}

impl Liveness {
    /// Records what a list that returned at `now` showed.
    pub fn observe(&mut self, leases: &[PeerLease], now: Instant) {
        let mut next = HashMap::new();
        for l in leases {
            let first_seen = match self.seen.get(&l.identity) {
                Some(s) if s.renew_time == l.renew_time => s.first_seen,
                _ => now,
            };
            let sighting = Sighting {
                renew_time: l.renew_time.clone(),
                first_seen,
                wall_clock_live: l.wall_clock_live,
                listed: true,
            };
            next.insert(l.identity.clone(), sighting);
        }
        // A Lease that vanished (deleted by its replica on shutdown, or by hand) is kept until
        // its last sighting is old: deletion is no proof that the replica stopped.
        for (id, s) in self.seen.drain() {
            next.entry(id).or_insert(Sighting {
                wall_clock_live: false,
                listed: false,
                ..s
            });
        }
        self.seen = next;
    }

    /// The peers live at `now`: seen renewing less than `duration` ago, or live by the wall
    /// clock at the last list.
    pub fn live(&self, now: Instant, duration: Duration) -> BTreeSet<String> {
        self.seen
            .iter()
            .filter(|(_, s)| s.wall_clock_live || now < s.first_seen + duration)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Forgets the Leases that are gone and were last seen renewing long before `now`. A
    /// stale Lease still listed is kept: seen again, it would count as a fresh renewal.
    pub fn prune(&mut self, now: Instant, duration: Duration) {
        self.seen
            .retain(|_, s| s.listed || now < s.first_seen + duration * 4);
    }
}

/// This replica's standing: until when it may act, from when, and the live members it knows.
#[derive(Debug, Clone, Default)]
pub struct Standing {
    /// The end of the validity the last counted renewal gave (rule 1).
    pub valid_until: Option<Instant>,
    /// When this replica's warm-up ends (rule 3).
    pub active_from: Option<Instant>,
    /// The live replicas, this one included.
    pub members: BTreeSet<String>,
}

impl Standing {
    /// Whether this replica may act at `now`.
    pub fn active(&self, now: Instant) -> bool {
        self.valid_until.is_some_and(|u| now < u) && self.active_from.is_some_and(|a| now >= a)
    }

    /// Whether `me` owns `cluster` at `now`.
    pub fn owns(&self, me: &str, cluster: &str, now: Instant) -> bool {
        self.active(now) && owner_of(cluster, &self.members) == Some(me)
    }
}

/// The sharding state the engine consults. Cheap to clone; [`Shards::single`] owns everything.
#[derive(Clone, Debug, Default)]
pub struct Shards {
    shared: Option<Arc<Shared>>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cfg: ShardConfig,
    pub(crate) standing: Mutex<Standing>,
    /// Bumped whenever the standing changes in a way that may move clusters.
    pub(crate) changed: watch::Sender<u64>,
    /// The cluster of each app seen, as its ownership was last checked, and whether that check
    /// was made by the reconcile under way (see [`Shards::begin`]).
    pub(crate) app_clusters: Mutex<HashMap<String, (String, bool)>>,
}

impl Shards {
    /// One replica: no Lease, every app is this process's.
    pub fn single() -> Self {
        Shards { shared: None }
    }

    /// Sharded as `cfg` says (a single replica if `cfg.replicas` is 1).
    pub fn new(cfg: ShardConfig) -> Self {
        if cfg.replicas <= 1 {
            return Self::single();
        }
        Shards {
            shared: Some(Arc::new(Shared {
                cfg,
                standing: Mutex::default(),
                changed: watch::Sender::new(0),
                app_clusters: Mutex::default(),
            })),
        }
    }

    pub(crate) fn shared(&self) -> Option<&Arc<Shared>> {
        self.shared.as_ref()
    }

    /// Whether this process owns `cluster` now.
    pub fn owns(&self, cluster: &str) -> bool {
        match &self.shared {
            None => true,
            Some(s) => s.owns(cluster, Instant::now()),
        }
    }

    /// Records that `app` goes to `cluster`; returns whether this process owns it now.
    pub(crate) fn check_app(&self, app: &str, cluster: &str) -> bool {
        let Some(s) = &self.shared else { return true };
        s.app_clusters
            .lock()
            .expect("app clusters lock")
            .insert(app.to_owned(), (cluster.to_owned(), true));
        s.owns(cluster, Instant::now())
    }

    /// Forgets `app` (deleted).
    pub(crate) fn forget(&self, app: &str) {
        if let Some(s) = &self.shared {
            s.app_clusters
                .lock()
                .expect("app clusters lock")
                .remove(app);
        }
    }

    /// Marks the start of a reconcile of `app`: until it checks the app's cluster again, the
    /// cluster recorded earlier (the destination may have changed since) does not count.
    pub(crate) fn begin(&self, app: &str) {
        if let Some(s) = &self.shared
            && let Some((_, checked)) = s
                .app_clusters
                .lock()
                .expect("app clusters lock")
                .get_mut(app)
        {
            *checked = false;
        }
    }

    /// Resolves when this process may no longer work on `app`: its standing lapsed, or the
    /// app's cluster (as checked by the reconcile under way) went to another replica. Never
    /// before that check, and never with one replica.
    pub(crate) async fn lost(&self, app: &str) {
        let Some(s) = &self.shared else {
            return std::future::pending().await;
        };
        let mut changes = s.changed.subscribe();
        loop {
            let now = Instant::now();
            let (valid_until, lost) = {
                let standing = s.standing.lock().expect("standing lock");
                let cluster = s
                    .app_clusters
                    .lock()
                    .expect("app clusters lock")
                    .get(app)
                    .filter(|(_, checked)| *checked)
                    .map(|(c, _)| c.clone());
                let lost = cluster.is_some_and(|c| !standing.owns(&s.cfg.identity, &c, now));
                (standing.valid_until.filter(|u| *u > now), lost)
            };
            if lost {
                return;
            }
            let changed = match valid_until {
                Some(until) => tokio::select! {
                    () = tokio::time::sleep_until(until) => Ok(()),
                    changed = changes.changed() => changed,
                },
                None => changes.changed().await,
            };
            if changed.is_err() {
                return std::future::pending().await;
            }
        }
    }
}

impl Shared {
    pub(crate) fn owns(&self, cluster: &str, now: Instant) -> bool {
        self.standing
            .lock()
            .expect("standing lock")
            .owns(&self.cfg.identity, cluster, now)
    }

    /// The distinct clusters of the apps seen, with whether this process owns each at `now`.
    pub(crate) fn clusters(&self, now: Instant) -> HashMap<String, bool> {
        let clusters: BTreeSet<String> = self
            .app_clusters
            .lock()
            .expect("app clusters lock")
            .values()
            .map(|(c, _)| c.clone())
            .collect();
        clusters
            .into_iter()
            .map(|c| {
                let owned = self.owns(&c, now);
                (c, owned)
            })
            .collect()
    }

    /// The apps whose cluster is one of `clusters`.
    pub(crate) fn apps_in(&self, clusters: &BTreeSet<String>) -> Vec<String> {
        self.app_clusters
            .lock()
            .expect("app clusters lock")
            .iter()
            .filter(|(_, (c, _))| clusters.contains(c))
            .map(|(a, _)| a.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("ferry-controller-{i}")).collect()
    }

    #[test]
    fn each_cluster_has_one_owner_and_the_spread_is_fair() {
        let members = ids(3);
        let mut per_member: HashMap<&str, usize> = HashMap::new();
        for c in 0..300 {
            let cluster = format!("https://cluster-{c}.example:6443");
            *per_member
                .entry(owner_of(&cluster, &members).unwrap())
                .or_default() += 1;
        }
        assert_eq!(per_member.len(), 3);
        for (m, n) in per_member {
            assert!((60..=140).contains(&n), "{m} owns {n} of 300 clusters");
        }
        assert_eq!(owner_of("x", &Vec::<String>::new()), None);
    }

    #[test]
    fn a_dead_replica_moves_only_its_own_clusters_and_a_newcomer_takes_only_what_it_wins() {
        let three = ids(3);
        let two: Vec<String> = three[..2].to_vec();
        for c in 0..200 {
            let cluster = format!("c{c}");
            let before = owner_of(&cluster, &three).unwrap();
            let after = owner_of(&cluster, &two).unwrap();
            if before != three[2] {
                assert_eq!(before, after, "{cluster} moved although its owner lives");
            }
            // Seen from the other side: replica 2 joining takes clusters only for itself.
            if after != before {
                assert_eq!(before, three[2]);
            }
        }
    }

    #[test]
    fn the_hash_is_stable_across_processes_and_versions() {
        // Fixed values: a change here would split ownership during a rolling upgrade.
        assert_eq!(stable_hash(&["a", "b"]), stable_hash(&["a", "b"]));
        assert_ne!(stable_hash(&["ab", ""]), stable_hash(&["a", "b"]));
        assert_eq!(
            stable_hash(&["ferry-controller-0", "https://kubernetes.default.svc"]),
            12_207_719_185_782_342_165
        );
        let members = ids(3);
        let owner = owner_of("https://kubernetes.default.svc", &members);
        assert_eq!(owner, Some("ferry-controller-1"));
    }

    #[test]
    fn lease_names_are_valid_object_names() {
        assert_eq!(
            lease_name("ferry-7d9f-abc"),
            "ferry-controller-ferry-7d9f-abc"
        );
        assert_eq!(
            lease_name("Host_Name.local"),
            "ferry-controller-host-name-local"
        );
        assert!(lease_name(&"x".repeat(100)).len() <= 63);
    }

    fn lease(id: &str, renew: &str, wall: bool) -> PeerLease {
        PeerLease {
            identity: id.into(),
            renew_time: renew.into(),
            wall_clock_live: wall,
        }
    }

    #[test]
    fn a_peer_is_dead_only_a_lease_duration_after_its_last_renewal_was_seen() {
        let d = Duration::from_secs(6);
        let t0 = Instant::now();
        let mut l = Liveness::default();
        l.observe(&[lease("a", "r1", true), lease("b", "r1", true)], t0);
        // b renews, a does not; by the wall clock both are stale now.
        let t1 = t0 + Duration::from_secs(2);
        l.observe(&[lease("a", "r1", false), lease("b", "r2", false)], t1);
        assert_eq!(l.live(t0 + Duration::from_millis(5999), d).len(), 2);
        assert_eq!(
            l.live(t0 + d, d),
            BTreeSet::from(["b".to_string()]),
            "a's renewal r1 was first seen at t0"
        );
        assert!(l.live(t1 + d, d).is_empty());
        // A Lease live by the wall clock stays live whatever the sightings say.
        l.observe(&[lease("a", "r1", true)], t1 + d);
        assert!(l.live(t1 + d * 5, d).contains("a"));
        // A deleted Lease is no proof of death: b was seen renewing at t1.
        let t2 = t1 + Duration::from_secs(1);
        l.observe(&[], t2);
        assert!(l.live(t2, d).contains("b"));
        assert!(!l.live(t1 + d, d).contains("b"));

        // A stale Lease that stays listed is not pruned and so never looks renewed again.
        let mut l = Liveness::default();
        l.observe(&[lease("dead", "r0", false)], t0);
        for k in 1..20 {
            let t = t0 + Duration::from_secs(k * 2);
            l.observe(&[lease("dead", "r0", false)], t);
            l.prune(t, d);
        }
        assert!(l.live(t0 + Duration::from_secs(40), d).is_empty());
        // Once its Lease is gone it is forgotten after a while.
        l.observe(&[], t0 + Duration::from_secs(40));
        l.prune(t0 + Duration::from_secs(40), d);
        assert!(l.seen.is_empty());
    }

    #[test]
    fn a_replica_owns_nothing_before_its_warm_up_or_after_its_validity() {
        let now = Instant::now();
        let me = "ferry-controller-0".to_string();
        let mut s = Standing {
            valid_until: Some(now + Duration::from_secs(4)),
            active_from: Some(now + Duration::from_secs(1)),
            members: BTreeSet::from([me.clone()]),
        };
        assert!(!s.owns(&me, "c", now), "warming up");
        assert!(s.owns(&me, "c", now + Duration::from_secs(1)));
        assert!(!s.owns(&me, "c", now + Duration::from_secs(4)), "lapsed");
        s.members.insert("ferry-controller-1".into());
        let other = (0..50)
            .map(|i| format!("c{i}"))
            .find(|c| owner_of(c, &s.members) != Some(me.as_str()))
            .unwrap();
        assert!(!s.owns(&me, &other, now + Duration::from_secs(2)));
        assert!(!Standing::default().active(now));
    }

    #[tokio::test(start_paused = true)]
    async fn lost_resolves_when_the_standing_lapses_or_the_cluster_moves() {
        let shards = Shards::new(ShardConfig {
            identity: "ferry-controller-0".into(),
            replicas: 2,
            lease_duration: Duration::from_secs(6),
        });
        let s = shards.shared().unwrap().clone();
        let now = Instant::now();
        *s.standing.lock().unwrap() = Standing {
            valid_until: Some(now + Duration::from_secs(4)),
            active_from: Some(now),
            members: BTreeSet::from(["ferry-controller-0".to_string()]),
        };
        assert!(shards.check_app("app", "c1"));
        // Lapses after 4 s without renewal.
        shards.lost("app").await;
        assert_eq!(Instant::now(), now + Duration::from_secs(4));

        // Renewed, then a second replica joins and wins c1: lost at once.
        let cluster = (0..50)
            .map(|i| format!("c{i}"))
            .find(|c| {
                owner_of(
                    c,
                    &BTreeSet::from(["ferry-controller-0".into(), "ferry-controller-1".into()]),
                ) == Some("ferry-controller-1")
            })
            .unwrap();
        let now = Instant::now();
        s.standing.lock().unwrap().valid_until = Some(now + Duration::from_secs(4));
        assert!(shards.check_app("app", &cluster));
        let lost = tokio::spawn({
            let shards = shards.clone();
            async move { shards.lost("app").await }
        });
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(!lost.is_finished());
        s.standing
            .lock()
            .unwrap()
            .members
            .insert("ferry-controller-1".into());
        s.changed.send_modify(|g| *g += 1);
        lost.await.unwrap();
        assert_eq!(Instant::now(), now + Duration::from_secs(1));
        assert!(Shards::single().owns("anything"));

        // An app whose reconcile has not checked its cluster yet is not lost, even while this
        // replica is not active: the check itself decides.
        s.standing.lock().unwrap().valid_until = None;
        shards.begin("app");
        let waiting = tokio::spawn({
            let shards = shards.clone();
            async move { shards.lost("app").await }
        });
        s.changed.send_modify(|g| *g += 1);
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert!(
            !waiting.is_finished(),
            "lost before the reconcile checked the cluster"
        );
        assert!(!shards.check_app("app", "c1"), "not active: not owned");
        s.changed.send_modify(|g| *g += 1);
        waiting.await.unwrap();
    }
}
