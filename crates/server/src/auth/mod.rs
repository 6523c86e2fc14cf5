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

pub mod accounts;
pub mod sessions;

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Form, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use crate::{ApiError, ServerState};
use accounts::{Account, AccountError, AccountStore};
use sessions::{LoginLimiter, SessionStore};

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

impl Principal {
    fn from_account(account: &Account, csrf_token: Option<String>) -> Self {
        Principal {
            name: account.name.clone(),
            role: account.role,
            projects: account.projects.clone(),
            csrf_token,
            insecure: false,
        }
    }
}

/// What authentication keeps: the accounts, the sessions and the failed-login counts.
#[derive(Debug)]
pub struct AuthState {
    /// Accounts, read from the cluster.
    pub accounts: AccountStore,
    /// Live sessions.
    pub sessions: SessionStore,
    /// Failed logins.
    pub limiter: LoginLimiter,
}

impl AuthState {
    /// Authentication over the accounts of `namespace`.
    pub fn new(client: kube::Client, namespace: &str) -> Self {
        AuthState {
            accounts: AccountStore::new(client, namespace),
            sessions: SessionStore::default(),
            limiter: LoginLimiter::default(),
        }
    }
}

/// The value of cookie `name` in `headers`.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The token of an `Authorization: Bearer` header.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

fn unavailable(e: &AccountError) -> Response {
    tracing::warn!("reading accounts: {e}");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "accounts_unavailable",
        format!("cannot check credentials right now: {e}"),
    )
    .into_response()
}

/// Methods that change nothing.
fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The largest form body read while looking for a CSRF field.
const FORM_LIMIT: usize = 64 * 1024;

/// Checks the CSRF token of a cookie-authenticated request: the `X-CSRF-Token` header or, in a
/// form body, the `_csrf` field. Returns the request (its body read and put back) or 403.
async fn check_csrf(request: Request, expected: &str) -> Result<Request, Response> {
    let forbidden = || {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "csrf_token_invalid",
            "this request needs the session's CSRF token (the X-CSRF-Token header, or a _csrf \
             form field); reload the page and try again",
        )
        .into_response()
    };
    let matches = |given: &str| -> bool {
        subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected.as_bytes()).into()
    };
    if let Some(given) = request
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return if matches(given) {
            Ok(request)
        } else {
            Err(forbidden())
        };
    }
    let is_form = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(forbidden());
    }
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!("form bodies are limited to {FORM_LIMIT} bytes"),
        )
        .into_response()
    })?;
    let ok = form_urlencoded::parse(&bytes).any(|(k, v)| k == CSRF_FORM_FIELD && matches(&v));
    if !ok {
        return Err(forbidden());
    }
    Ok(Request::from_parts(parts, Body::from(bytes)))
}

/// Percent-encodes `s` for a query value.
fn query_value(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Finds the caller (see the module docs) and puts a [`Principal`] into the request; answers
/// 401 (or a redirect to `/login` for pages) when it cannot, 403 on a missing CSRF token.
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
    let auth = &state.auth;
    let mut principal = None;
    if let Some(token) = bearer(request.headers()) {
        if let Some(session) = auth.sessions.get(&token) {
            match session_account(state.as_ref(), &token, &session).await {
                Ok(Some(account)) => principal = Some(Principal::from_account(&account, None)),
                Ok(None) => {}
                Err(e) => return unavailable(&e),
            }
        } else {
            match auth.accounts.account_for_token(&token).await {
                Ok(Some(account)) => principal = Some(Principal::from_account(&account, None)),
                Ok(None) => {}
                Err(e) => return unavailable(&e),
            }
        }
    } else if let Some(token) = cookie(request.headers(), SESSION_COOKIE)
        && let Some(session) = auth.sessions.get(&token)
    {
        match session_account(state.as_ref(), &token, &session).await {
            Ok(Some(account)) => {
                if !is_safe(request.method()) {
                    request = match check_csrf(request, &session.csrf_token).await {
                        Ok(r) => r,
                        Err(response) => return response,
                    };
                }
                principal = Some(Principal::from_account(&account, Some(session.csrf_token)));
            }
            Ok(None) => {}
            Err(e) => return unavailable(&e),
        }
    }
    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
        return next.run(request).await;
    }
    let path = request.uri().path();
    // Pages redirect to the login page; the API and /metrics (machines) get 401.
    if !path.starts_with("/api/") && path != "/metrics" && is_safe(request.method()) {
        let target = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        return redirect(&format!("/login?next={}", query_value(&target)));
    }
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "log in first (POST /api/v1/session, or the login page), or send \
         Authorization: Bearer <token>",
    )
    .into_response()
}

/// A 303 redirect to `location`.
fn redirect(location: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            HeaderValue::from_str(location).unwrap_or(HeaderValue::from_static("/")),
        )],
    )
        .into_response()
}

/// The session cookie for `token` (`None`: one that deletes it).
fn session_cookie(token: Option<&str>, secure: bool) -> HeaderValue {
    let mut value = match token {
        Some(t) => format!(
            "{SESSION_COOKIE}={t}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
            sessions::SESSION_TTL.as_secs()
        ),
        None => format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    };
    if secure {
        value.push_str("; Secure");
    }
    HeaderValue::from_str(&value).expect("cookie values are ASCII")
}

/// Why a login failed.
enum LoginFailure {
    Invalid,
    Locked(std::time::Duration),
    Unavailable(AccountError),
}

/// Checks `username`/`password` against the accounts and the limiter; starts a session.
async fn log_in(
    state: &ServerState,
    username: &str,
    password: &str,
) -> Result<(String, sessions::Session), LoginFailure> {
    let auth = &state.auth;
    if let Some(wait) = auth.limiter.locked_for(username) {
        state.metrics.record_login("locked");
        return Err(LoginFailure::Locked(wait));
    }
    match auth.accounts.check_password(username, password).await {
        Ok(Some(account)) => {
            auth.limiter.record_success(username);
            state.metrics.record_login("success");
            tracing::info!(account = %account.name, "login");
            Ok(auth.sessions.create(
                &account.name,
                account.password_hash.as_deref().unwrap_or_default(),
            ))
        }
        Ok(None) => {
            let known = auth.accounts.is_known(username).await;
            auth.limiter.record_failure(username, known);
            state.metrics.record_login("failure");
            tracing::warn!(account = %username, "failed login");
            Err(LoginFailure::Invalid)
        }
        Err(e) => Err(LoginFailure::Unavailable(e)),
    }
}

/// Form of `POST /login`.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    /// The account.
    pub username: String,
    /// Its password.
    pub password: String,
    /// Where to go afterwards (a path on this server).
    #[serde(default)]
    pub next: String,
}

/// Only paths on this server: `/x`, not `//host` or `https://...`.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.chars().any(char::is_control)
    {
        next
    } else {
        "/"
    }
}

/// `POST /login`: the login page's form. Redirects to `next` with a session cookie, or back to
/// the login page with `error=invalid` or `error=locked`.
pub async fn login_form(
    State(state): State<Arc<ServerState>>,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(&form.next).to_string();
    match log_in(&state, &form.username, &form.password).await {
        Ok((token, _)) => {
            let mut response = redirect(&next);
            response
                .headers_mut()
                .insert(SET_COOKIE, session_cookie(Some(&token), state.config.tls));
            response
        }
        Err(LoginFailure::Invalid) => {
            redirect(&format!("/login?error=invalid&next={}", query_value(&next)))
        }
        Err(LoginFailure::Locked(_)) => {
            redirect(&format!("/login?error=locked&next={}", query_value(&next)))
        }
        Err(LoginFailure::Unavailable(e)) => unavailable(&e),
    }
}

/// Body of `POST /api/v1/session`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    /// The account.
    pub username: String,
    /// Its password.
    pub password: String,
}

/// `POST /api/v1/session`: `{username, password}` → `{token, csrfToken}` and the session
/// cookie; 401 for wrong credentials, 429 when locked out.
pub async fn create_session(
    State(state): State<Arc<ServerState>>,
    body: axum::body::Bytes,
) -> Response {
    let body: SessionBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return ApiError::bad_body(format!(
                "reading the JSON body (expected {{\"username\": ..., \"password\": ...}}): {e}"
            ))
            .into_response();
        }
    };
    match log_in(&state, &body.username, &body.password).await {
        Ok((token, session)) => {
            let mut response =
                Json(json!({"token": token, "csrfToken": session.csrf_token})).into_response();
            response
                .headers_mut()
                .insert(SET_COOKIE, session_cookie(Some(&token), state.config.tls));
            response
        }
        Err(LoginFailure::Invalid) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "wrong username or password",
        )
        .into_response(),
        Err(LoginFailure::Locked(wait)) => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_failed_logins",
            format!(
                "too many failed logins for {}; try again in {} s",
                body.username,
                wait.as_secs().max(1)
            ),
        )
        .into_response(),
        Err(LoginFailure::Unavailable(e)) => unavailable(&e),
    }
}

/// Ends the session of the request's cookie or bearer token.
/// The account of a live session: `None` (and the session ended) when the account is gone,
/// disabled or may no longer log in, or its password changed since the session began.
async fn session_account(
    state: &ServerState,
    token: &str,
    session: &sessions::Session,
) -> Result<Option<accounts::Account>, AccountError> {
    let account = state.auth.accounts.account(&session.account).await?;
    let valid = account.filter(|a| {
        a.login && a.password_hash.as_deref().unwrap_or_default() == session.password_hash
    });
    if valid.is_none() {
        state.auth.sessions.remove(token);
    }
    Ok(valid)
}

/// Whether the credentials in `headers` (a session or an API token) still hold: for long
/// answers (event streams) that must end on logout, password change or account disable.
pub(crate) async fn still_signed_in(state: &ServerState, headers: &HeaderMap) -> bool {
    if state.config.insecure_no_auth {
        return true;
    }
    let token = bearer(headers).or_else(|| cookie(headers, SESSION_COOKIE));
    let Some(token) = token else {
        return false;
    };
    match state.auth.sessions.get(&token) {
        Some(session) => matches!(session_account(state, &token, &session).await, Ok(Some(_))),
        None => matches!(
            state.auth.accounts.account_for_token(&token).await,
            Ok(Some(_))
        ),
    }
}

fn end_session(state: &ServerState, headers: &HeaderMap) {
    for token in [cookie(headers, SESSION_COOKIE), bearer(headers)]
        .into_iter()
        .flatten()
    {
        state.auth.sessions.remove(&token);
    }
}

/// `POST /logout` (needs the CSRF token): ends the session, back to the login page.
pub async fn logout_form(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    end_session(&state, &headers);
    let mut response = redirect("/login");
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(None, state.config.tls));
    response
}

/// `DELETE /api/v1/session`: ends the session.
pub async fn delete_session(State(state): State<Arc<ServerState>>, headers: HeaderMap) -> Response {
    end_session(&state, &headers);
    let mut response = Json(json!({"loggedOut": true})).into_response();
    response
        .headers_mut()
        .insert(SET_COOKIE, session_cookie(None, state.config.tls));
    response
}

/// `GET /api/v1/session/userinfo`: who the caller is (and, for a cookie session, its CSRF
/// token).
pub async fn userinfo(
    axum::Extension(principal): axum::Extension<Principal>,
) -> Json<serde_json::Value> {
    Json(json!({
        "loggedIn": true,
        "username": principal.name,
        "role": principal.role.as_str(),
        "projects": principal.projects,
        "insecure": principal.insecure,
        "csrfToken": principal.csrf_token,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, projects: &[&str]) -> Principal {
        Principal {
            name: "x".into(),
            role,
            projects: projects.iter().map(|p| p.to_string()).collect(),
            csrf_token: None,
            insecure: false,
        }
    }

    #[test]
    fn roles_allow_what_they_say_in_their_projects() {
        let ro = principal(Role::ReadOnly, &[]);
        assert!(ro.can_read("any") && !ro.can_sync("any"));
        let sync = principal(Role::Sync, &["team-a"]);
        assert!(sync.can_read("team-a") && sync.can_sync("team-a"));
        assert!(!sync.can_read("team-b") && !sync.can_sync("team-b"));
        let admin = principal(Role::Admin, &["team-a"]);
        assert!(admin.can_sync("team-b"), "admin covers every project");
        assert!(Principal::insecure_anonymous().can_sync("x"));
        assert_eq!(Role::parse("role:sync"), Some(Role::Sync));
        assert_eq!(Role::parse("owner"), None);
        assert!(Role::ReadOnly < Role::Sync && Role::Sync < Role::Admin);
    }

    #[test]
    fn cookies_and_bearer_tokens_are_read_from_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("a=1; ferry_session=tok; b=2"),
        );
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer  abc "));
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("tok"));
        assert_eq!(cookie(&headers, "c"), None);
        assert_eq!(bearer(&headers).as_deref(), Some("abc"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer(&headers), None);
    }

    #[test]
    fn redirects_stay_on_this_server() {
        assert_eq!(safe_next("/applications/x"), "/applications/x");
        assert_eq!(safe_next("//evil.example/"), "/");
        assert_eq!(safe_next("https://evil.example/"), "/");
        assert_eq!(safe_next("/\\evil.example"), "/");
        assert_eq!(safe_next(""), "/");
        // A tab or newline could split a header or be dropped by a browser (`/\t/evil`).
        assert_eq!(safe_next("/\t/evil.example"), "/");
        assert_eq!(safe_next("/a\r\nSet-Cookie: x=y"), "/");
        assert_eq!(query_value("/a?b=c&d"), "%2Fa%3Fb%3Dc%26d");
    }

    #[test]
    fn session_cookies_are_http_only_and_secure_under_tls() {
        let c = session_cookie(Some("t"), false);
        let c = c.to_str().unwrap();
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && !c.contains("Secure"));
        let c = session_cookie(Some("t"), true);
        assert!(c.to_str().unwrap().ends_with("; Secure"));
        assert!(
            session_cookie(None, false)
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
    }

    #[tokio::test]
    async fn csrf_tokens_are_checked_in_headers_and_forms() {
        let req = |header: Option<&str>, ctype: &str, body: &str| {
            let mut b = Request::builder()
                .method("POST")
                .uri("/x")
                .header(CONTENT_TYPE, ctype);
            if let Some(h) = header {
                b = b.header(CSRF_HEADER, h);
            }
            b.body(Body::from(body.to_string())).unwrap()
        };
        assert!(
            check_csrf(req(Some("good"), "application/json", "{}"), "good")
                .await
                .is_ok()
        );
        assert!(
            check_csrf(req(Some("bad"), "application/json", "{}"), "good")
                .await
                .is_err()
        );
        assert!(
            check_csrf(req(None, "application/json", "{}"), "good")
                .await
                .is_err()
        );
        let form = "prune=true&_csrf=good";
        let ok = check_csrf(req(None, "application/x-www-form-urlencoded", form), "good")
            .await
            .unwrap();
        let body = axum::body::to_bytes(ok.into_body(), 1024).await.unwrap();
        assert_eq!(
            &body[..],
            form.as_bytes(),
            "the body is put back for the handler"
        );
        assert!(
            check_csrf(
                req(None, "application/x-www-form-urlencoded", "_csrf=bad"),
                "good"
            )
            .await
            .is_err()
        );
    }
}
