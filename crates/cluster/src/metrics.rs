//! Kubernetes API requests made by this process, counted by verb and response code, with their
//! latency: a [`tower::Layer`] in every client built by [`instrumented_client`].
//!
//! The families live in one process-wide [`ApiMetrics`] ([`ApiMetrics::global`]); the binary
//! registers them in the server's registry, which serves them as `ferry_kube_requests_total
//! {verb,code}` and `ferry_kube_request_seconds{verb}`.

use std::future::Future;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{Request, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `ferry_kube_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `GET`, `LIST`, `WATCH`, `CREATE`, `UPDATE`, `PATCH`, `APPLY`, `DELETE`,
    /// `DELETECOLLECTION` (as the API server names them), or the HTTP method for other paths.
    pub verb: String,
    /// The HTTP status code, or `error` when no response came.
    pub code: String,
    /// The resource (plural name, with `/subresource` if any: `configmaps`,
    /// `applications/status`), or empty for discovery and other non-resource paths. Bounded by
    /// the kinds ferry manages, so the series stay few.
    pub resource: String,
}

/// Labels of `ferry_kube_request_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    /// As in [`RequestLabels::verb`].
    pub verb: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms to ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

/// Counters and latencies of Kubernetes API requests. Cheap to clone (shared values).
#[derive(Clone, Debug)]
pub struct ApiMetrics {
    /// Requests by verb and code.
    pub requests: Family<RequestLabels, Counter>,
    /// Time to the response's headers (for watches: until the stream starts), by verb.
    pub latency: Family<VerbLabels, Histogram, fn() -> Histogram>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        ApiMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
        }
    }
}

static GLOBAL: LazyLock<ApiMetrics> = LazyLock::new(ApiMetrics::default);

impl ApiMetrics {
    /// The process's one set, used by [`instrumented_client`].
    pub fn global() -> &'static ApiMetrics {
        &GLOBAL
    }

    /// Registers the families in `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "ferry_kube_requests",
            "Kubernetes API requests made by ferry, by verb and HTTP status code",
            self.requests.clone(),
        );
        registry.register(
            "ferry_kube_request_seconds",
            "Latency of Kubernetes API requests, by verb",
            self.latency.clone(),
        );
    }

    /// The layer that records into these families.
    pub fn layer(&self) -> ApiMetricsLayer {
        ApiMetricsLayer {
            metrics: self.clone(),
        }
    }

    fn record(&self, verb: &str, code: &str, resource: &str, started: Instant) {
        self.requests
            .get_or_create(&RequestLabels {
                verb: verb.to_string(),
                code: code.to_string(),
                resource: resource.to_string(),
            })
            .inc();
        self.latency
            .get_or_create(&VerbLabels {
                verb: verb.to_string(),
            })
            .observe(started.elapsed().as_secs_f64());
    }
}

/// A kube client for `config` whose requests are recorded in [`ApiMetrics::global`].
pub fn instrumented_client(config: kube::Config) -> Result<kube::Client, kube::Error> {
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&ApiMetrics::global().layer())
        .build())
}

/// The resource a request addresses: the plural name after `/api/v1` or
/// `/apis/<group>/<version>` (and after `namespaces/<ns>/` for namespaced ones), with the
/// subresource (`applications/status`) when the path names one; empty for other paths.
pub fn request_resource(path: &str) -> String {
    match resource_segments(path).as_deref() {
        None | Some([]) => String::new(),
        Some([resource] | [resource, _]) => (*resource).to_string(),
        Some([resource, _name, sub, ..]) => format!("{resource}/{sub}"),
    }
}

/// A resource path's segments after `/api/v1` or `/apis/<group>/<version>`, and after
/// `namespaces/<ns>/` for a namespaced resource (`namespaces[/<name>]` itself is the Namespace
/// resource); `None` for other paths.
fn resource_segments(path: &str) -> Option<Vec<&str>> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let rest: &[&str] = match segments.as_slice() {
        ["api", _version, rest @ ..] => rest,
        ["apis", _group, _version, rest @ ..] => rest,
        _ => return None,
    };
    let rest = match rest {
        ["namespaces", _ns, resource @ ..] if !resource.is_empty() => resource,
        other => other,
    };
    Some(rest.to_vec())
}

/// The API server's verb for a request: from the method, the path's shape (collection or one
/// object) and the query (`watch`) and content type (server-side apply).
pub fn request_verb(method: &http::Method, path: &str, query: &str, content_type: &str) -> String {
    let Some(rest) = resource_segments(path) else {
        return method.as_str().to_string();
    };
    let is_collection = rest.len() == 1;
    if rest.is_empty() {
        // Discovery documents.
        return method.as_str().to_string();
    }
    let watching = query
        .split('&')
        .any(|kv| kv == "watch=true" || kv == "watch=1");
    match *method {
        http::Method::GET if watching => "WATCH",
        http::Method::GET if is_collection => "LIST",
        http::Method::GET => "GET",
        http::Method::POST => "CREATE",
        http::Method::PUT => "UPDATE",
        http::Method::PATCH if content_type.starts_with("application/apply-patch") => "APPLY",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE if is_collection => "DELETECOLLECTION",
        http::Method::DELETE => "DELETE",
        ref other => other.as_str(),
    }
    .to_string()
}

/// The [`tower::Layer`] of [`ApiMetrics`].
#[derive(Clone, Debug)]
pub struct ApiMetricsLayer {
    metrics: ApiMetrics,
}

impl<S> tower::Layer<S> for ApiMetricsLayer {
    type Service = ApiMetricsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiMetricsService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

/// The service that [`ApiMetricsLayer`] wraps around a client's stack.
#[derive(Clone, Debug)]
pub struct ApiMetricsService<S> {
    inner: S,
    metrics: ApiMetrics,
}

impl<S, B, R> tower::Service<Request<B>> for ApiMetricsService<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let content_type = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let verb = request_verb(
            request.method(),
            request.uri().path(),
            request.uri().query().unwrap_or_default(),
            content_type,
        );
        let resource = request_resource(request.uri().path());
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let future = self.inner.call(request);
        Box::pin(async move {
            let result = future.await;
            let code = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "error".to_string(),
            };
            metrics.record(&verb, &code, &resource, started);
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    #[test]
    fn verbs_follow_the_api_servers_names() {
        let v = |m: Method, path: &str, q: &str, ct: &str| request_verb(&m, path, q, ct);
        assert_eq!(
            v(Method::GET, "/api/v1/namespaces/a/configmaps", "", ""),
            "LIST"
        );
        assert_eq!(
            v(Method::GET, "/api/v1/namespaces/a/configmaps/x", "", ""),
            "GET"
        );
        assert_eq!(
            v(
                Method::GET,
                "/apis/apps/v1/deployments",
                "watch=true&resourceVersion=1",
                ""
            ),
            "WATCH"
        );
        assert_eq!(v(Method::GET, "/api/v1/namespaces", "", ""), "LIST");
        assert_eq!(v(Method::GET, "/api/v1/namespaces/a", "", ""), "GET");
        assert_eq!(v(Method::POST, "/api/v1/namespaces", "", ""), "CREATE");
        assert_eq!(
            v(
                Method::PATCH,
                "/apis/argoproj.io/v1alpha1/namespaces/f/applications/x/status",
                "",
                "application/json-patch+json"
            ),
            "PATCH"
        );
        assert_eq!(
            v(
                Method::PATCH,
                "/api/v1/namespaces/a/configmaps/x",
                "fieldManager=ferry&dryRun=All",
                "application/apply-patch+yaml"
            ),
            "APPLY"
        );
        assert_eq!(
            v(Method::DELETE, "/api/v1/namespaces/a/pods", "", ""),
            "DELETECOLLECTION"
        );
        assert_eq!(
            v(Method::DELETE, "/api/v1/namespaces/a/pods/p", "", ""),
            "DELETE"
        );
        assert_eq!(v(Method::GET, "/apis/apps/v1", "", ""), "GET");
        assert_eq!(v(Method::GET, "/version", "", ""), "GET");
    }

    #[test]
    fn resources_name_the_plural_and_subresource() {
        assert_eq!(
            request_resource("/api/v1/namespaces/a/configmaps"),
            "configmaps"
        );
        assert_eq!(
            request_resource("/api/v1/namespaces/a/configmaps/x"),
            "configmaps"
        );
        assert_eq!(
            request_resource("/apis/argoproj.io/v1alpha1/namespaces/f/applications/x/status"),
            "applications/status"
        );
        assert_eq!(request_resource("/api/v1/namespaces"), "namespaces");
        assert_eq!(request_resource("/api/v1/namespaces/a"), "namespaces");
        assert_eq!(request_resource("/apis/apps/v1/deployments"), "deployments");
        assert_eq!(request_resource("/apis/apps/v1"), "");
        assert_eq!(request_resource("/version"), "");
    }
}
