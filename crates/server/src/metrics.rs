//! Prometheus metrics: one [`Registry`] for the whole process, owned by the server state and
//! served on `/metrics` in the OpenMetrics text format.
//!
//! The controller registers its own metrics (sync counts, reconcile and render durations, API
//! requests) in the same registry through [`Metrics::registry_mut`] before the server starts.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use ferry_core::application::Application;
use kube::api::ListParams;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::{ApiError, ServerState};

/// Labels of `ferry_app_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppInfoLabels {
    /// The Application's name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its project.
    pub project: String,
    /// `Synced`, `OutOfSync` or `Unknown`.
    pub sync_status: String,
    /// `Healthy`, `Progressing`, `Degraded`, ...
    pub health_status: String,
}

/// Labels of `ferry_webhook_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WebhookLabels {
    /// `github`, `gitlab`, `gitea`, `gogs`, `bitbucket` or `unknown`.
    pub provider: String,
    /// `accepted`, `ignored`, `unauthorized`, `forbidden`, `bad_request`, `too_large`, ...
    pub result: String,
}

/// Labels of `ferry_login_attempts_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// `success`, `failure` or `locked`.
    pub result: String,
}

/// The process's metrics registry and the server's own metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// One series per Application, value 1, refreshed from the Application list at scrape time.
    pub app_info: Family<AppInfoLabels, Gauge>,
    /// Webhook deliveries by provider and outcome.
    pub webhook_requests: Family<WebhookLabels, Counter>,
    /// Login attempts by result.
    pub logins: Family<LoginLabels, Counter>,
    /// Serializes scrapes, so two of them do not interleave their updates of `app_info`.
    scrape_lock: tokio::sync::Mutex<()>,
    /// Where `ferry_app_info` reads the Applications from when the controller runs in the same
    /// process (its watch's copy, no request); `None` (or an answer of `None`, before the watch
    /// has listed): a LIST at each scrape.
    app_source: Option<AppSourceSlot>,
}

/// An [`AppSource`], shown by `Debug` as a placeholder.
struct AppSourceSlot(AppSource);

impl std::fmt::Debug for AppSourceSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AppSource")
    }
}

/// The Applications as a watch in this process has them, or `None` while it has not listed
/// them yet.
pub type AppSource = Arc<dyn Fn() -> Option<Vec<Arc<Application>>> + Send + Sync>;

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with the server's metrics in it.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let app_info = Family::<AppInfoLabels, Gauge>::default();
        registry.register(
            "ferry_app_info",
            "Information about an Application (value always 1)",
            app_info.clone(),
        );
        let webhook_requests = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "ferry_webhook_requests",
            "Git webhook deliveries, by provider and result",
            webhook_requests.clone(),
        );
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "ferry_login_attempts",
            "Password logins, by result (success, failure, locked)",
            logins.clone(),
        );
        Metrics {
            registry,
            app_info,
            webhook_requests,
            logins,
            scrape_lock: tokio::sync::Mutex::new(()),
            app_source: None,
        }
    }

    /// Reads `ferry_app_info`'s Applications from `source` instead of a LIST per scrape (see
    /// [`AppSource`]).
    pub fn set_app_source(&mut self, source: AppSource) {
        self.app_source = Some(AppSourceSlot(source));
    }

    /// The Applications from the [`AppSource`] (the controller's watch, when it runs in this
    /// process and has listed them); `None`: read them from the API.
    pub fn watched_apps(&self) -> Option<Vec<Arc<Application>>> {
        self.app_source.as_ref().and_then(|source| (source.0)())
    }

    /// The registry, for the controller to register its metrics in (before the server starts).
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Counts one webhook delivery.
    pub fn count_webhook(&self, provider: &str, result: &str) {
        self.webhook_requests
            .get_or_create(&WebhookLabels {
                provider: provider.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// Counts one login attempt.
    pub fn record_login(&self, result: &str) {
        self.logins
            .get_or_create(&LoginLabels {
                result: result.to_string(),
            })
            .inc();
    }

    /// Sets `ferry_app_info` to exactly `apps`.
    pub fn set_apps<'a>(&self, apps: impl IntoIterator<Item = &'a Application>) {
        self.app_info.clear();
        for app in apps {
            let status = app.status.clone().unwrap_or_default();
            self.app_info
                .get_or_create(&AppInfoLabels {
                    name: app.metadata.name.clone().unwrap_or_default(),
                    namespace: app.metadata.namespace.clone().unwrap_or_default(),
                    project: app.spec.project.clone(),
                    sync_status: format!("{:?}", status.sync.status),
                    health_status: format!("{:?}", status.health.status),
                })
                .set(1);
        }
    }

    /// The registry in the OpenMetrics text format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// The registry's text as a `/metrics` response.
fn metrics_response(metrics: &Metrics) -> Response {
    match metrics.encode() {
        Ok(body) => (
            [(
                CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            body,
        )
            .into_response(),
        Err(e) => ApiError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            "metrics_encoding_failed",
            format!("encoding metrics: {e}"),
        )
        .into_response(),
    }
}

/// Serves only `/metrics` and `/healthz` on `addr`, without authentication, until `shutdown`
/// completes: for Prometheus (`--metrics-listen` of `ferry controller` and `ferry run`). Keep
/// this address inside the cluster network. With `apps`, `ferry_app_info` is refreshed from
/// the Application list at each scrape.
pub async fn serve_metrics(
    addr: std::net::SocketAddr,
    metrics: Arc<Metrics>,
    apps: Option<kube::Api<Application>>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), crate::ServeError> {
    let apps = Arc::new(apps);
    let app = axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(move || {
                let (metrics, apps) = (metrics.clone(), apps.clone());
                async move { refresh_and_encode(&metrics, apps.as_ref().as_ref()).await }
            }),
        )
        .route("/healthz", axum::routing::get(crate::api::healthz));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| crate::ServeError::Bind { addr, source })?;
    let addr = listener
        .local_addr()
        .map_err(|source| crate::ServeError::Bind { addr, source })?;
    tracing::info!(address = %addr, "serving /metrics and /healthz");
    crate::tls::serve_connections(listener, None, app, shutdown)
        .await
        .map_err(|source| crate::ServeError::Serve { addr, source })
}

/// `GET /metrics` (signed-in callers only on the UI/API port).
pub async fn scrape(State(state): State<Arc<ServerState>>) -> Response {
    refresh_and_encode(&state.metrics, Some(&state.apps)).await
}

/// Refreshes `ferry_app_info` from `apps` (when given) and encodes the registry.
async fn refresh_and_encode(metrics: &Metrics, apps: Option<&kube::Api<Application>>) -> Response {
    let _guard = metrics.scrape_lock.lock().await;
    if let Some(watched) = metrics.watched_apps() {
        metrics.set_apps(watched.iter().map(|a| &**a));
    } else if let Some(apps) = apps {
        match apps.list(&ListParams::default()).await {
            Ok(list) => metrics.set_apps(&list.items),
            // Still serve the other metrics; the app series keep their last values.
            Err(e) => tracing::warn!("listing applications for /metrics: {e}"),
        }
    }
    metrics_response(metrics)
}
