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
