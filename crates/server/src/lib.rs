//! ferry's server: the JSON API under `/api/v1`, Git webhooks, health probes and Prometheus
//! metrics, all from one [`axum`] router.
//!
//! Start with [`serve`] (or [`Server::bind`] when the caller needs the bound address first):
//! it builds a [`ServerState`] and the router from [`router`]. Routes:
//!
//! - `/healthz`, `/readyz` and `POST /api/webhook` are public; `/metrics` needs a signed-in user
//!   or token (it names every app, project and repository); Prometheus scrapes the separate,
//!   unauthenticated listener of [`serve_metrics`] (`--metrics-listen`) instead;
//! - everything else (`/api/v1/...`, `/api/openapi.json`) goes through one authentication
//!   middleware ([`auth`]), which for now only lets requests through when the server was
//!   started with [`ServerConfig::insecure_no_auth`].
//!
//! The server never talks to the controller's queue: syncs, refreshes and rollbacks are asked
//! for through the Application (its `operation` field and the `argocd.argoproj.io/refresh`
//! annotation), exactly as the CLI and Argo CD do, so it works whether or not the controller
//! runs in the same process.

pub mod api;
pub mod appsets;
pub mod auth;
pub mod error;
pub mod hardening;
pub mod metrics;
pub mod rollouts;
pub mod tls;
pub mod ui;
pub mod webhook;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::Method;
use axum::routing::{MethodRouter, get, post};
use ferry_controller::Differ;
use ferry_core::application::Application;
use kube::api::Api;

pub use error::ApiError;
pub use metrics::{Metrics, serve_metrics};

pub use tls::TlsError;
pub use webhook::{WebhookSecretSource, WebhookSecrets};

/// The largest webhook body accepted (1 MiB); bigger ones get 413.
pub const DEFAULT_WEBHOOK_BODY_LIMIT: usize = 1024 * 1024;

/// The server's settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Where to listen (port 0 picks a free port; see [`Server::local_addr`]).
    pub listen: SocketAddr,
    /// The namespace holding Applications and the webhook Secret.
    pub namespace: String,
    /// Serve the API without authentication. Only for local use: anyone who can reach the port
    /// can sync and roll back applications.
    pub insecure_no_auth: bool,
    /// Where webhook secrets come from.
    pub webhook_secrets: WebhookSecretSource,
    /// The largest webhook body accepted, in bytes.
    pub webhook_body_limit: usize,
    /// Serve HTTPS with this certificate and key (session cookies are then `Secure`).
    pub tls_files: Option<TlsFiles>,
    /// Whether clients reach the server over HTTPS (set from `tls_files`; also true behind a
    /// TLS-terminating proxy when set by hand). Makes session cookies `Secure`.
    pub tls: bool,
}

/// PEM files of the server's TLS certificate chain and private key.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain (leaf first).
    pub cert: std::path::PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

impl ServerConfig {
    /// Settings with authentication required, no webhook secrets and the default body limit.
    pub fn new(listen: SocketAddr, namespace: impl Into<String>) -> Self {
        ServerConfig {
            listen,
            namespace: namespace.into(),
            insecure_no_auth: false,
            webhook_secrets: WebhookSecretSource::None,
            webhook_body_limit: DEFAULT_WEBHOOK_BODY_LIMIT,
            tls_files: None,
            tls: false,
        }
    }
}

/// What every request handler shares.
pub struct ServerState {
    /// The settings the server was started with.
    pub config: ServerConfig,
    /// Works out diffs (the controller's own differ in `ferry run`; the server's otherwise).
    pub differ: Arc<Differ>,
    /// A client for the cluster ferry runs against.
    pub client: kube::Client,
    /// The Applications of [`ServerConfig::namespace`].
    pub apps: Api<Application>,
    /// Costly requests (diffs, hard refreshes) per user.
    pub costly: hardening::CostlyLimiter,
    /// The process's one metrics registry and the server's own metrics (shared with the
    /// `--metrics-listen` listener, if any).
    pub metrics: Arc<Metrics>,
    /// The web UI's state.
    pub ui: ui::UiState,
    /// Accounts, sessions and failed-login counts.
    pub auth: auth::AuthState,
}

impl std::fmt::Debug for ServerState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerState")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Errors that stop the server.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The listen address could not be bound.
    #[error("binding {addr}: {source} (is another process listening there?)")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error("{0}")]
    Tls(#[source] tls::TlsError),
    /// Accepting or serving connections failed.
    #[error("serving HTTP on {addr}: {source}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A server bound to its address, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: tokio::net::TcpListener,
    addr: SocketAddr,
    state: Arc<ServerState>,
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl Server {
    /// Binds `config.listen`, with the server's own [`Metrics`].
    pub async fn bind(
        config: ServerConfig,
        client: kube::Client,
        differ: Arc<Differ>,
    ) -> Result<Server, ServeError> {
        Self::bind_with_metrics(config, client, differ, Metrics::new()).await
    }

    /// Binds `config.listen`, exposing `metrics` (to which the controller may have added its
    /// own) on `/metrics`.
    pub async fn bind_with_metrics(
        config: ServerConfig,
        client: kube::Client,
        differ: Arc<Differ>,
        metrics: Metrics,
    ) -> Result<Server, ServeError> {
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| ServeError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| ServeError::Bind {
            addr: config.listen,
            source,
        })?;
        if config.insecure_no_auth {
            tracing::warn!(
                %addr,
                "the API is served WITHOUT AUTHENTICATION (insecure_no_auth): anyone who can \
                 reach this address can sync, refresh and roll back applications"
            );
        }
        let tls_config = match &config.tls_files {
            Some(files) => Some(tls::load_server_config(files).map_err(ServeError::Tls)?),
            None => None,
        };
        let mut config = config;
        config.tls |= tls_config.is_some();
        let state = Arc::new(ServerState {
            apps: Api::namespaced(client.clone(), &config.namespace),
            ui: ui::UiState::new(&client, &config.namespace),
            auth: auth::AuthState::new(client.clone(), &config.namespace),
            config,
            differ,
            client,
            metrics: Arc::new(metrics),
            costly: hardening::CostlyLimiter::default(),
        });
        if !state.config.insecure_no_auth {
            match state.auth.accounts.ensure_initial_admin_password().await {
                Ok(true) => tracing::info!(
                    "the admin account's initial password is in Secret {}/{} (key password); \
                     log in, change it with `ferry account update-password admin`, then delete \
                     that Secret",
                    state.config.namespace,
                    auth::accounts::INITIAL_ADMIN_SECRET
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!("could not set up the admin's initial password: {e}"),
            }
        }
        Ok(Server {
            listener,
            addr,
            state,
            tls: tls_config,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics this server serves, for a separate unauthenticated listener
    /// ([`serve_metrics`]).
    pub fn metrics(&self) -> Arc<Metrics> {
        self.state.metrics.clone()
    }

    /// The Applications this server shows (for [`serve_metrics`] to refresh `ferry_app_info`).
    pub fn applications(&self) -> Api<Application> {
        self.state.apps.clone()
    }

    /// Serves until `shutdown` completes, then finishes the requests in flight.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let app = router(self.state);
        if let Some(tls) = self.tls {
            tracing::info!(address = %self.addr, "ferry server listening (HTTPS)");
            return tls::serve_tls(self.listener, tls, app, shutdown)
                .await
                .map_err(|source| ServeError::Serve {
                    addr: self.addr,
                    source,
                });
        }
        tracing::info!(address = %self.addr, "ferry server listening (HTTP)");
        tls::serve_connections(self.listener, None, app, shutdown)
            .await
            .map_err(|source| ServeError::Serve {
                addr: self.addr,
                source,
            })
    }
}

/// Binds `config.listen` and serves the API, webhooks and metrics until `shutdown` completes.
pub async fn serve(
    config: ServerConfig,
    client: kube::Client,
    differ: Arc<Differ>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    Server::bind(config, client, differ)
        .await?
        .run(shutdown)
        .await
}

type Routes = Vec<(Method, &'static str, MethodRouter<Arc<ServerState>>)>;

/// Routes anyone may call: probes, webhooks (which check their own signatures), login.
fn public_routes(body_limit: usize) -> Routes {
    vec![
        (Method::GET, "/healthz", get(api::healthz)),
        (Method::GET, "/readyz", get(api::readyz)),
        (
            Method::POST,
            "/api/webhook",
            post(webhook::receive_webhook).layer(axum::extract::DefaultBodyLimit::max(body_limit)),
        ),
        (
            Method::POST,
            "/api/v1/session",
            post(auth::create_session).layer(axum::extract::DefaultBodyLimit::max(16 * 1024)),
        ),
    ]
}

/// Routes behind [`auth::require_auth`].
fn protected_routes() -> Routes {
    vec![
        // App names, projects and repository URLs: not for anonymous callers. Prometheus
        // scrapes the unauthenticated listener of `--metrics-listen` instead.
        (Method::GET, "/metrics", get(metrics::scrape)),
        (Method::GET, "/api/openapi.json", get(api::openapi)),
        (
            Method::DELETE,
            "/api/v1/session",
            axum::routing::delete(auth::delete_session),
        ),
        (Method::GET, "/api/v1/session/userinfo", get(auth::userinfo)),
        (
            Method::GET,
            "/api/v1/applications",
            get(api::list_applications),
        ),
        (
            Method::GET,
            "/api/v1/applications/{name}",
            get(api::get_application),
        ),
        (
            Method::GET,
            "/api/v1/applications/{name}/history",
            get(api::application_history),
        ),
        (
            Method::GET,
            "/api/v1/applications/{name}/diff",
            get(api::application_diff),
        ),
        (
            Method::POST,
            "/api/v1/applications/{name}/sync",
            post(api::sync_application),
        ),
        (
            Method::POST,
            "/api/v1/applications/{name}/refresh",
            post(api::refresh_application),
        ),
        (
            Method::POST,
            "/api/v1/applications/{name}/rollback",
            post(api::rollback_application),
        ),
        (
            Method::GET,
            "/api/v1/applicationsets",
            get(appsets::list_applicationsets),
        ),
        (
            Method::GET,
            "/api/v1/applicationsets/{name}",
            get(appsets::get_applicationset),
        ),
        (
            Method::POST,
            "/api/v1/applicationsets/{name}/confirm-deletion",
            post(appsets::confirm_deletion),
        ),
        (
            Method::GET,
            "/api/v1/applications/{name}/rollouts/{rollout}",
            get(rollouts::get_rollout),
        ),
        (
            Method::POST,
            "/api/v1/applications/{name}/rollouts/{rollout}/{action}",
            post(rollouts::rollout_action),
        ),
    ]
}

/// Every route the router serves: method and path (axum's `{param}` syntax, which is also
/// OpenAPI's). `public` routes skip authentication.
pub fn route_table() -> Vec<(Method, &'static str, bool)> {
    let public = public_routes(DEFAULT_WEBHOOK_BODY_LIMIT)
        .into_iter()
        .map(|(m, p, _)| (m, p, true));
    let protected = protected_routes()
        .into_iter()
        .map(|(m, p, _)| (m, p, false));
    public.chain(protected).collect()
}

/// The whole router, over `state`.
pub fn router(state: Arc<ServerState>) -> Router {
    let mut protected = Router::new();
    for (_, path, handler) in protected_routes() {
        protected = protected.route(path, handler);
    }
    let protected = protected
        .route("/logout", post(auth::logout_form))
        .merge(ui::protected_routes());
    let protected = protected.route_layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_auth,
    ));
    let mut public = Router::new().route(
        "/login",
        post(auth::login_form).layer(axum::extract::DefaultBodyLimit::max(16 * 1024)),
    );
    for (_, path, handler) in public_routes(state.config.webhook_body_limit) {
        public = public.route(path, handler);
    }
    let tls = state.config.tls;
    public
        .merge(ui::public_routes())
        .merge(protected)
        .fallback(api::not_found)
        .with_state(state)
        .layer(axum::middleware::map_response(hardening::redact_response))
        .layer(axum::middleware::map_response(
            move |mut response: axum::response::Response| async move {
                hardening::add_security_headers(&mut response, tls);
                response
            },
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_in_the_openapi_document() {
        let doc: serde_json::Value = serde_json::from_str(api::OPENAPI_JSON).unwrap();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        for (method, path, _) in route_table() {
            let op = &doc["paths"][path][method.as_str().to_ascii_lowercase()];
            assert!(
                op.is_object(),
                "{method} {path} is missing from openapi.json"
            );
        }
        // And nothing documented that the router does not serve.
        let served: Vec<(String, String)> = route_table()
            .into_iter()
            .map(|(m, p, _)| (m.as_str().to_ascii_lowercase(), p.to_string()))
            .collect();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                assert!(
                    served.contains(&(method.clone(), path.clone())),
                    "openapi.json documents {method} {path}, which is not served"
                );
            }
        }
    }
}
