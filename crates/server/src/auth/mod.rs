//! Authentication and authorization.
//!
//! Every route except the probes, `/metrics`, the webhook, the login page and static assets goes
//! through [`require_auth`], which finds out who is calling and puts a [`Principal`] into the
//! request's extensions (handlers take it with `axum::Extension<Principal>`):
//!
//! - a session cookie ([`SESSION_COOKIE`]) set by `POST /login` or `POST /api/v1/session`;
//!   state-changing requests authenticated by cookie must also carry the session's CSRF token,
//!   in the `X-CSRF-Token` header or, for HTML forms, in a `_csrf` form field;
//! - or `Authorization: Bearer <token>`: a session token or an API token of an account;
//! - or nothing, when the server runs with `insecure_no_auth`: everyone is an admin.
//!
//! Unauthenticated requests get 401 (JSON) under `/api/`, and a redirect to `/login` elsewhere.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::{ApiError, ServerState};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "ferry_session";

/// The header carrying the CSRF token on state-changing requests made with a session cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The form field carrying the CSRF token in HTML forms.
pub const CSRF_FORM_FIELD: &str = "_csrf";

/// What an account may do. Roles are ordered: each includes the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Read applications, their resources, diffs and history.
    ReadOnly,
    /// Also sync, refresh and roll back applications.
    Sync,
    /// Everything, in every project.
    Admin,
}

impl Role {
    /// The role's name as written in configuration: `readonly`, `sync` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::ReadOnly => "readonly",
            Role::Sync => "sync",
            Role::Admin => "admin",
        }
    }

    /// Parses `readonly`, `sync` or `admin` (also `role:readonly` as Argo CD writes it).
    pub fn parse(s: &str) -> Option<Role> {
        match s.trim().trim_start_matches("role:") {
            "readonly" => Some(Role::ReadOnly),
            "sync" => Some(Role::Sync),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is making a request, and what they may do.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The account name (`admin`, `alice`, ...); `anonymous` with `insecure_no_auth`.
    pub name: String,
    /// The account's role.
    pub role: Role,
    /// The projects the role applies to; empty means every project.
    pub projects: Vec<String>,
    /// The session's CSRF token, when the request came with a session cookie. HTML pages put it
    /// into forms (`_csrf`) and the page's JavaScript into the `X-CSRF-Token` header.
    pub csrf_token: Option<String>,
    /// True when the server runs with `insecure_no_auth` (pages say so in a banner).
    pub insecure: bool,
}

impl Principal {
    /// The principal of every request when authentication is off.
    pub fn insecure_anonymous() -> Self {
        Principal {
            name: "anonymous".into(),
            role: Role::Admin,
            projects: Vec::new(),
            csrf_token: None,
            insecure: true,
        }
    }

    /// Whether the principal's role covers `project`.
    fn covers(&self, project: &str) -> bool {
        self.role == Role::Admin
            || self.projects.is_empty()
            || self.projects.iter().any(|p| p == project)
    }

    /// May read applications of `project`.
    pub fn can_read(&self, project: &str) -> bool {
        self.covers(project)
    }

    /// May sync, refresh and roll back applications of `project`.
    pub fn can_sync(&self, project: &str) -> bool {
        self.role >= Role::Sync && self.covers(project)
    }
}

/// Finds the caller (see the module docs); answers 401, a redirect to `/login` or 403 (CSRF)
/// when it cannot.
pub async fn require_auth(
    State(state): State<Arc<ServerState>>,
    mut request: Request,
    next: Next,
) -> Response {
    if state.config.insecure_no_auth {
        request
            .extensions_mut()
            .insert(Principal::insecure_anonymous());
        return next.run(request).await;
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "log in first: POST /api/v1/session, or send Authorization: Bearer <token>",
    )
    .into_response()
}
