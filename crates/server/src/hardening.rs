//! Defences applied to every response: security headers, and credentials in repository URLs
//! removed from every JSON and HTML answer.
//!
//! - **Headers**: a Content-Security-Policy that allows only ferry's own script, styles and
//!   connections (the UI has no inline script), `X-Frame-Options: DENY`,
//!   `X-Content-Type-Options: nosniff`, `Referrer-Policy: same-origin`, and
//!   `Strict-Transport-Security` when clients reach ferry over HTTPS.
//! - **URL credentials**: an Application's `repoURL` may hold `user:token@`; whatever part of
//!   the server shows it (API, UI page, error), the userinfo is replaced by `***`
//!   ([`ferry_core::redact`]). Streams (Server-Sent Events) are not buffered; what they carry
//!   comes from conditions, which the controller already redacts.

use axum::body::Body;
use axum::http::header::{self, HeaderValue};
use axum::response::Response;

/// The UI's Content-Security-Policy.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
     base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Costly requests (a diff renders the app from Git; a hard refresh drops the render cache)
/// one user may make per [`COSTLY_WINDOW`].
pub const COSTLY_PER_WINDOW: u32 = 20;
/// The window of [`COSTLY_PER_WINDOW`].
pub const COSTLY_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Counts costly requests per user and refuses them beyond [`COSTLY_PER_WINDOW`] a window.
#[derive(Debug, Default)]
pub struct CostlyLimiter {
    users: std::sync::Mutex<std::collections::HashMap<String, (u32, std::time::Instant)>>,
}

impl CostlyLimiter {
    /// Counts one costly request of `user`; `Err(wait)` when over the limit.
    pub fn check(&self, user: &str) -> Result<(), std::time::Duration> {
        self.check_at(user, std::time::Instant::now())
    }

    fn check_at(&self, user: &str, now: std::time::Instant) -> Result<(), std::time::Duration> {
        let mut users = self.users.lock().unwrap_or_else(|e| e.into_inner());
        if users.len() >= 10_000 {
            users.retain(|_, (_, since)| now.saturating_duration_since(*since) < COSTLY_WINDOW);
        }
        let entry = users.entry(user.to_owned()).or_insert((0, now));
        let elapsed = now.saturating_duration_since(entry.1);
        if elapsed >= COSTLY_WINDOW {
            *entry = (0, now);
        }
        if entry.0 >= COSTLY_PER_WINDOW {
            return Err(COSTLY_WINDOW - now.saturating_duration_since(entry.1));
        }
        entry.0 += 1;
        Ok(())
    }
}

/// A 429 answer for a user over the costly-request limit.
pub(crate) fn too_many(what: &str, wait: std::time::Duration) -> crate::ApiError {
    crate::ApiError::new(
        axum::http::StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        format!(
            "too many {what} requests: at most {COSTLY_PER_WINDOW} a minute per user; try again in {} s",
            wait.as_secs().max(1)
        ),
    )
}

/// The largest body that is searched for URL credentials; larger ones pass unchanged (ferry
/// serves none that large but diffs of big objects, which carry no Application URLs).
const MAX_REDACTED_BODY: usize = 16 << 20;

/// Adds the security headers; `tls`: clients use HTTPS (HSTS is sent).
pub(crate) fn add_security_headers(response: &mut Response, tls: bool) {
    let headers = response.headers_mut();
    let mut set = |name: header::HeaderName, value: &'static str| {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    };
    set(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY);
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::REFERRER_POLICY, "same-origin");
    if tls {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
}

/// Replaces credentials in URLs in a JSON or HTML response body.
pub(crate) async fn redact_response(response: Response) -> Response {
    let redactable = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.starts_with("application/json")
                || t.starts_with("text/html")
                || t.starts_with("text/plain")
                || t.starts_with("application/openmetrics-text")
        });
    if !redactable {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_REDACTED_BODY).await {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!("reading a response body to redact it: {e}");
            parts.status = axum::http::StatusCode::INTERNAL_SERVER_ERROR;
            parts.headers.remove(header::CONTENT_LENGTH);
            return Response::from_parts(parts, Body::from("response too large"));
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    if !(text.contains("://") && text.contains('@')) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let redacted = ferry_core::redact::redact_urls_in_text(&text);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(redacted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::response::IntoResponse as _;

    #[tokio::test]
    async fn credentials_leave_json_and_html_answers() {
        let resp =
            axum::Json(serde_json::json!({"repoURL": "https://u:s3cret@h/r"})).into_response();
        let resp = redact_response(resp).await;
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains("s3cret") && text.contains("https://***@h/r"),
            "{text}"
        );
        // Other content types are left alone.
        let resp = (
            [(header::CONTENT_TYPE, "text/css")],
            "a{b:c} /* https://u:p@h */",
        )
            .into_response();
        let body = axum::body::to_bytes(redact_response(resp).await.into_body(), 1 << 20)
            .await
            .unwrap();
        assert!(String::from_utf8_lossy(&body).contains("u:p@"));
    }

    #[test]
    fn costly_requests_are_limited_per_user_and_window() {
        let limiter = CostlyLimiter::default();
        let t0 = std::time::Instant::now();
        for _ in 0..COSTLY_PER_WINDOW {
            assert!(limiter.check_at("alice", t0).is_ok());
        }
        assert!(limiter.check_at("alice", t0).is_err());
        assert!(limiter.check_at("bob", t0).is_ok(), "per user");
        assert!(
            limiter.check_at("alice", t0 + COSTLY_WINDOW).is_ok(),
            "a new window"
        );
    }

    #[test]
    fn headers_are_set_and_hsts_only_under_tls() {
        let mut resp = Response::new(Body::empty());
        add_security_headers(&mut resp, false);
        assert_eq!(resp.headers()[header::X_FRAME_OPTIONS], "DENY");
        assert_eq!(resp.headers()[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert!(
            resp.headers()[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("script-src 'self'")
        );
        assert!(
            !resp
                .headers()
                .contains_key(header::STRICT_TRANSPORT_SECURITY)
        );
        add_security_headers(&mut resp, true);
        assert!(
            resp.headers()
                .contains_key(header::STRICT_TRANSPORT_SECURITY)
        );
    }
}
