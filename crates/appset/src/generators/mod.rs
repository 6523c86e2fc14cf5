//! The generators. Each one turns its part of `spec.generators[]` into a list of
//! [`Params`](crate::params::Params), or fails with a
//! [`GeneratorError`](crate::params::GeneratorError); none returns an empty list for an answer
//! it did not understand.

pub mod cluster_decision_resource;
pub mod clusters;
pub mod generate;
pub mod git;
pub mod list;
pub mod plugin;
pub mod pull_request;
mod remote;
mod scm;
pub mod scm_provider;

/// What the generators that call other services need: the cluster (for Secrets, ConfigMaps and
/// custom resources in the ApplicationSet's namespace) and an HTTP client.
#[derive(Clone)]
pub struct RemoteContext<'a> {
    /// The cluster ferry runs in.
    pub kube: &'a kube::Client,
    /// The ApplicationSet's namespace (where token Secrets and ConfigMaps are read).
    pub namespace: &'a str,
    /// The ApplicationSet's name, for messages.
    pub appset: &'a str,
    /// The HTTP client.
    pub http: &'a ferry_http::Client,
}
