//! ferry's access to a Kubernetes cluster, for objects whose kinds are only known at run time
//! (whatever a Git repository holds).
//!
//! Start with [`ClusterClient`]: it resolves `apiVersion` + `kind` to an API endpoint through
//! discovery (cached, refreshed when a kind is unknown, e.g. right after its CRD was applied),
//! and offers server-side apply — for real and as a dry run, which is how ferry compares desired
//! and live state — plus get, list and delete on JSON objects.

mod client;

pub mod metrics;

pub use client::{ApiTarget, ApplyOptions, ClusterClient, ClusterError, ObjectRef, Propagation};
pub use metrics::{ApiMetrics, instrumented_client};
