//! The web UI: server-rendered HTML pages (askama templates in `templates/`) and a small
//! vendored script and stylesheet (`static/`).
//!
//! Pages work with JavaScript off: filters are query parameters, actions are plain
//! `<form method="post">` posts with a hidden `_csrf` field, answered with a redirect back.
//! With JavaScript on, `static/ferry.js` posts the same actions to the JSON API (with the
//! `X-CSRF-Token` header) and follows Application changes over server-sent events
//! (`GET /events`, see [`events`]) to update badges in place.
//!
//! Routes: `GET /login` and `GET /static/{file}` are public; `GET /`,
//! `GET /applications/{name}` (and its `/resource` and `/diff` pages), the action posts
//! `POST /applications/{name}/{sync,refresh,rollback}`, `GET /events`, `GET /applicationsets`,
//! `GET /applicationsets/{name}` and its `POST .../confirm` need a [`Principal`].
//! Secret data is masked on every page (safety invariant 3).

mod app;
mod appsets;
mod events;
mod links;
mod list;
mod rollout;
mod tree;

use std::sync::Arc;

use askama::Template;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::ServerState;
use crate::auth::Principal;

pub use events::AppEvent;

/// What the UI keeps between requests: the fan-out of Application changes to `/events`.
pub struct UiState {
    events: events::EventHub,
    /// Clients of the apps' destination clusters, for their resource trees and manifests.
    pub(crate) destinations: ferry_controller::destinations::Destinations,
}

impl std::fmt::Debug for UiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiState").finish_non_exhaustive()
    }
}

impl UiState {
    /// The UI's state for a server over `client`'s cluster and the Applications of `namespace`.
    /// The watch on Applications starts with the first `/events` subscriber.
    pub fn new(client: &kube::Client, namespace: &str) -> Self {
        UiState {
            events: events::EventHub::new(client.clone(), namespace),
            destinations: ferry_controller::destinations::Destinations::new(
                ferry_cluster::ClusterClient::new(client.clone()),
                namespace,
            ),
        }
    }

    /// A receiver of every change to an Application of the namespace (starting the watch on
    /// first use).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<Arc<AppEvent>> {
        self.events.subscribe()
    }
}

/// Pages and assets anyone may fetch (the login page, static files).
pub fn public_routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/login", get(login_page))
        .route("/static/{file}", get(static_file))
}

/// Pages behind authentication ([`crate::auth::require_auth`]).
pub fn protected_routes() -> Router<Arc<ServerState>> {
    Router::new()
        .route("/", get(list::list_page))
        .route("/events", get(events::events))
        .route("/applications/{name}", get(app::app_page))
        .route("/applications/{name}/resource", get(app::resource_page))
        .route("/applications/{name}/diff", get(app::diff_page))
        .route("/applications/{name}/sync", post(app::sync_form))
        .route("/applications/{name}/refresh", post(app::refresh_form))
        .route("/applications/{name}/rollback", post(app::rollback_form))
        .route("/applicationsets", get(appsets::list_page))
        .route("/applicationsets/{name}", get(appsets::set_page))
        .route(
            "/applicationsets/{name}/confirm",
            post(appsets::confirm_form),
        )
        .route(
            "/applications/{name}/rollouts/{rollout}",
            get(rollout::rollout_page),
        )
        .route(
            "/applications/{name}/rollouts/{rollout}/{action}",
            post(rollout::rollout_form),
        )
}

/// The parts of every page around its content: title, who is logged in, the CSRF token, the
/// insecure-mode banner.
#[derive(Debug, Clone)]
pub(crate) struct Chrome {
    /// The page's title (before " · ferry").
    pub(crate) title: String,
    /// `name (role)` of the logged-in user; `None` on the login page.
    pub(crate) user: Option<UserView>,
    /// The session's CSRF token; empty without a session (insecure mode, bearer tokens).
    pub(crate) csrf: String,
    /// The server runs without authentication.
    pub(crate) insecure: bool,
}

/// The user shown in the header.
#[derive(Debug, Clone)]
pub(crate) struct UserView {
    pub(crate) name: String,
    pub(crate) role: String,
}

impl Chrome {
    /// The chrome of a page seen by `principal`.
    pub(crate) fn new(title: impl Into<String>, principal: &Principal) -> Self {
        Chrome {
            title: title.into(),
            user: Some(UserView {
                name: principal.name.clone(),
                role: principal.role.to_string(),
            }),
            csrf: principal.csrf_token.clone().unwrap_or_default(),
            insecure: principal.insecure,
        }
    }
}

/// A page that could not be shown: its status and what went wrong, rendered as HTML.
#[derive(Debug)]
pub(crate) struct UiError {
    pub(crate) status: StatusCode,
    pub(crate) message: String,
}

impl UiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        UiError {
            status,
            message: message.into(),
        }
    }

    /// The error as a page with `chrome` around it.
    pub(crate) fn page(self, mut chrome: Chrome) -> Response {
        if self.status.is_server_error() {
            tracing::warn!(status = %self.status, message = %self.message, "UI page failed");
        }
        chrome.title = format!(
            "{} {}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("Error")
        );
        let page = ErrorPage {
            chrome,
            status: self.status.as_u16(),
            message: self.message,
        };
        (self.status, render(&page)).into_response()
    }
}

impl From<crate::ApiError> for UiError {
    fn from(e: crate::ApiError) -> Self {
        UiError::new(e.status, e.message)
    }
}

/// Renders a template; a template error (a bug) becomes a plain 500 page, never a panic.
pub(crate) fn render<T: Template>(page: &T) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!("rendering a page: {e}");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("500 Internal Server Error: rendering the page failed: {e}"),
            )
                .into_response()
        }
    }
}

/// Turns a handler's result into a response: the page, or an error page in `chrome`.
pub(crate) fn respond(result: Result<Response, UiError>, chrome: Chrome) -> Response {
    result.unwrap_or_else(|e| e.page(chrome))
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    status: u16,
    message: String,
}

/// Query of `GET /login`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    chrome: Chrome,
    next: String,
    error: String,
}

/// Where a login may send the user afterwards: a path on this server, nothing else (no
/// `//host` or `https://...`, which would make the login page an open redirect).
pub(crate) fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && !n.chars().any(char::is_control) =>
        {
            n.to_string()
        }
        _ => "/".to_string(),
    }
}

/// What `?error=` means on the login page.
fn login_error(code: Option<&str>) -> String {
    match code {
        None | Some("") => String::new(),
        Some("invalid") => "Wrong username or password.".into(),
        Some("locked") => "Too many failed attempts; try again in a few minutes.".into(),
        Some(_) => "Logging in failed; try again.".into(),
    }
}

/// `GET /login[?next=/path&error=invalid|locked]`.
async fn login_page(
    State(state): State<Arc<ServerState>>,
    query: Result<Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let page = LoginPage {
        chrome: Chrome {
            title: "Log in".into(),
            user: None,
            csrf: String::new(),
            insecure: state.config.insecure_no_auth,
        },
        next: safe_next(query.next.as_deref()),
        error: login_error(query.error.as_deref()),
    };
    render(&page)
}

const STYLESHEET: &str = include_str!("../../static/ferry.css");
const SCRIPT: &str = include_str!("../../static/ferry.js");

/// `GET /static/{file}`: the vendored stylesheet and script.
async fn static_file(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "ferry.css" => (STYLESHEET, "text/css; charset=utf-8"),
        "ferry.js" => (SCRIPT, "text/javascript; charset=utf-8"),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                [(CONTENT_TYPE, "text/plain; charset=utf-8")],
                format!("404 Not Found: no static file {file}"),
            )
                .into_response();
        }
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// Escapes text for HTML element content and quoted attribute values.
pub(crate) fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query parameter value or path segment.
pub(crate) fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The CSS class of a sync status badge.
pub(crate) fn sync_class(status: &str) -> &'static str {
    match status {
        "Synced" => "ok",
        "OutOfSync" => "warn",
        _ => "unknown",
    }
}

/// The CSS class of a health status badge.
pub(crate) fn health_class(status: &str) -> &'static str {
    match status {
        "Healthy" => "ok",
        "Progressing" | "Suspended" => "info",
        "Degraded" | "Missing" => "bad",
        _ => "unknown",
    }
}

/// The first 7 characters of a commit SHA (or a whole shorter revision).
pub(crate) fn short_revision(rev: &str) -> String {
    let is_sha = rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit());
    if is_sha {
        rev[..7].to_string()
    } else {
        rev.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_on_this_server() {
        assert_eq!(safe_next(Some("/applications/web")), "/applications/web");
        assert_eq!(safe_next(Some("/?sync=OutOfSync")), "/?sync=OutOfSync");
        assert_eq!(safe_next(Some("//evil.example/x")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn login_errors_are_explained() {
        assert_eq!(login_error(None), "");
        assert!(login_error(Some("invalid")).contains("Wrong username or password"));
        assert!(
            login_error(Some("locked")).contains("too many failed attempts")
                || login_error(Some("locked")).contains("Too many failed attempts")
        );
    }

    #[test]
    fn escaping_and_encoding() {
        assert_eq!(
            escape_html(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(encode_component("a b/c&d=é"), "a%20b%2Fc%26d%3D%C3%A9");
        assert_eq!(short_revision(&"a".repeat(40)), "aaaaaaa");
        assert_eq!(short_revision("main"), "main");
    }

    #[test]
    fn badges_have_classes() {
        assert_eq!(sync_class("OutOfSync"), "warn");
        assert_eq!(health_class("Degraded"), "bad");
        assert_eq!(health_class("whatever"), "unknown");
    }
}
