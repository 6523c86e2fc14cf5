//! The controller's metrics: syncs by result, and how long reconciles, Git fetches and renders
//! take. They are registered into the one registry the server owns (see `ferry-server`), so
//! `/metrics` shows them beside the server's own.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `ferry_app_sync_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SyncLabels {
    /// The Application's name.
    pub name: String,
    /// `Succeeded`, `Failed` or `Error`.
    pub phase: String,
}

/// Labels of the duration histograms that are kept per repository.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RepoLabels {
    /// The repository URL.
    pub repo: String,
}

impl RepoLabels {
    /// The labels of repository `url`, with any credentials in it redacted.
    pub(crate) fn of(url: &str) -> Self {
        Self {
            repo: ferry_core::redact::redact_url(url),
        }
    }
}

/// Labels of `ferry_shard_reconciles_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClusterLabels {
    /// The destination cluster's server URL.
    pub cluster: String,
}

/// Labels of `ferry_git_polls_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PollLabels {
    /// The repository URL (credentials removed).
    pub repo: String,
    /// `moved` (some app's revision moved), `same`, or `error`.
    pub result: &'static str,
}

/// Labels of `ferry_app_reads_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReadLabels {
    /// `watch` (the watch's store) or `api` (a GET).
    pub from: &'static str,
}

fn seconds() -> Histogram {
    // 5 ms to ~80 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// The controller's metric families. Cheap to clone (they share their values).
#[derive(Clone, Debug)]
pub struct ControllerMetrics {
    /// Finished syncs by app and result.
    pub syncs: Family<SyncLabels, Counter>,
    /// Time per reconcile of one app.
    pub reconcile_seconds: Histogram,
    /// Time per comparison-and-render step that did the work (not skipped).
    pub render_seconds: Family<RepoLabels, Histogram>,
    /// Time to make a repository's revision available (fetch when due, resolve, check out).
    pub git_seconds: Family<RepoLabels, Histogram>,
    /// Failed fetches or resolutions, by repository.
    pub git_errors: Family<RepoLabels, Counter>,
    /// Scale-out: reconciles this replica did, by destination cluster (only with replicas).
    pub shard_reconciles: Family<ClusterLabels, Counter>,
    /// Scale-out: the destination clusters (of the apps seen) this replica owns.
    pub shard_owned_clusters: Gauge,
    /// Scale-out: clusters gained or lost by this replica, summed over time.
    pub shard_ownership_changes: Counter,
    /// Scale-out: the live replicas this one knows of, itself included.
    pub shard_live_replicas: Gauge,
    /// Scale-out: 1 while this replica holds a valid Lease past its warm-up, else 0.
    pub shard_active: Gauge,
    /// Apps found untouched by new commits (their sources moved to commits that changed none
    /// of their inputs: nothing rendered, compared or written), once per app and commit.
    pub untouched: Counter,
    /// Reads of an Application by a reconcile, from the watch's store or from the API.
    pub app_reads: Family<ReadLabels, Counter>,
    /// Polls of a repository (one fetch each, shared by all its apps), by result.
    pub polls: Family<PollLabels, Counter>,
    /// Sources whose latest render is kept (at most one per source of each app).
    pub render_cache_entries: Gauge,
    /// Manifests those kept renders hold, summed.
    pub render_cache_manifests: Gauge,
    /// Objects the metadata watches know to exist (names only), over all watches.
    pub watched_objects: Gauge,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        ControllerMetrics {
            syncs: Family::default(),
            reconcile_seconds: seconds(),
            render_seconds: Family::new_with_constructor(seconds),
            git_seconds: Family::new_with_constructor(seconds),
            git_errors: Family::default(),
            shard_reconciles: Family::default(),
            shard_owned_clusters: Gauge::default(),
            shard_ownership_changes: Counter::default(),
            shard_live_replicas: Gauge::default(),
            shard_active: Gauge::default(),
            untouched: Counter::default(),
            app_reads: Family::default(),
            polls: Family::default(),
            render_cache_entries: Gauge::default(),
            render_cache_manifests: Gauge::default(),
            watched_objects: Gauge::default(),
        }
    }
}

impl ControllerMetrics {
    /// Registers the families in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "ferry_app_sync",
            "Finished syncs, by app and phase",
            self.syncs.clone(),
        );
        registry.register(
            "ferry_app_reconcile_seconds",
            "Time to reconcile one app",
            self.reconcile_seconds.clone(),
        );
        registry.register(
            "ferry_render_seconds",
            "Time to render one source (helm, kustomize or a directory), cache misses only",
            self.render_seconds.clone(),
        );
        registry.register(
            "ferry_git_seconds",
            "Time to fetch (when due), resolve and check out a repository revision",
            self.git_seconds.clone(),
        );
        registry.register(
            "ferry_git_errors",
            "Failed Git fetches or revision resolutions, by repository",
            self.git_errors.clone(),
        );
        registry.register(
            "ferry_shard_reconciles",
            "Scale-out: reconciles by this replica, by destination cluster",
            self.shard_reconciles.clone(),
        );
        registry.register(
            "ferry_shard_owned_clusters",
            "Scale-out: destination clusters this replica owns",
            self.shard_owned_clusters.clone(),
        );
        registry.register(
            "ferry_shard_ownership_changes",
            "Scale-out: destination clusters gained or lost by this replica",
            self.shard_ownership_changes.clone(),
        );
        registry.register(
            "ferry_shard_live_replicas",
            "Scale-out: live controller replicas, this one included",
            self.shard_live_replicas.clone(),
        );
        registry.register(
            "ferry_shard_active",
            "Scale-out: 1 while this replica holds a valid Lease past its warm-up",
            self.shard_active.clone(),
        );
        registry.register(
            "ferry_app_untouched",
            "Apps whose sources moved to commits that changed none of their inputs, once per app and commit",
            self.untouched.clone(),
        );
        registry.register(
            "ferry_app_reads",
            "Reads of an Application by a reconcile, from the watch's store or the API",
            self.app_reads.clone(),
        );
        registry.register(
            "ferry_git_polls",
            "Polls of a repository for new commits (one fetch per repository, shared by its apps), by result",
            self.polls.clone(),
        );
        registry.register(
            "ferry_render_cache_entries",
            "Sources whose latest render is kept in memory (at most one per source of each app)",
            self.render_cache_entries.clone(),
        );
        registry.register(
            "ferry_render_cache_manifests",
            "Manifests held by the kept renders",
            self.render_cache_manifests.clone(),
        );
        registry.register(
            "ferry_watched_objects",
            "Objects the metadata watches know to exist (their names, kept so that comparing an object that does not exist needs no request)",
            self.watched_objects.clone(),
        );
    }
}
