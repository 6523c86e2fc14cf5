//! The web UI: server-rendered HTML pages and a small vendored script.

use std::sync::Arc;

use axum::Router;

use crate::ServerState;

/// What the UI keeps between requests.
#[derive(Debug, Default)]
pub struct UiState {}

impl UiState {
    /// The UI's state for a server over `client`'s cluster and the Applications of `namespace`.
    pub fn new(_client: &kube::Client, _namespace: &str) -> Self {
        UiState {}
    }
}

/// Pages and assets anyone may fetch (the login page, static files).
pub fn public_routes() -> Router<Arc<ServerState>> {
    Router::new()
}

/// Pages behind authentication ([`crate::auth::require_auth`]).
pub fn protected_routes() -> Router<Arc<ServerState>> {
    Router::new()
}
