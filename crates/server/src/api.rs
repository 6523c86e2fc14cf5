//! The JSON API under `/api/v1`, the health probes, and the OpenAPI document.
//!
//! Syncs and rollbacks are requested by setting the Application's `operation` field, refreshes
//! by its `argocd.argoproj.io/refresh` annotation, as `ferry app` and Argo CD do; the
//! controller carries them out.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use ferry_controller::operations::{self, RefreshType, SyncParams};
use ferry_core::application::Application;
use kube::api::ListParams;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::{ApiError, ServerState};

/// The principal of an authenticated request (put there by [`crate::auth::require_auth`]).
type Caller = axum::Extension<Principal>;

/// The OpenAPI 3 document describing these routes.
pub const OPENAPI_JSON: &str = include_str!("openapi.json");

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// `GET /readyz`: the API server can be reached (a list of at most one Application).
pub async fn readyz(State(state): State<Arc<ServerState>>) -> Response {
    match state.apps.list(&ListParams::default().limit(1)).await {
        Ok(_) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_ready",
            format!(
                "listing applications in namespace {}: {e}",
                state.config.namespace
            ),
        )
        .into_response(),
    }
}

/// `GET /api/openapi.json`.
pub async fn openapi() -> Response {
    ([(CONTENT_TYPE, "application/json")], OPENAPI_JSON).into_response()
}

/// Any route not served: 404 in the API's error shape.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "route_not_found", "no such route")
}

/// Reads the app `name`; 404 when it does not exist or `principal` may not read its project
/// (so its existence does not leak).
pub(crate) async fn get_app(
    state: &ServerState,
    principal: &Principal,
    name: &str,
) -> Result<Application, ApiError> {
    check_app_name(name)?;
    state
        .apps
        .get_opt(name)
        .await
        .map_err(|e| ApiError::kube(&format!("reading application {name}"), &e))?
        .filter(|app| principal.can_read(&app.spec.project))
        .ok_or_else(|| ApiError::app_not_found(name, &state.config.namespace))
}

/// Whether `name` can be a Kubernetes object name (a DNS-1123 subdomain: at most 253
/// lower-case letters, digits, `-` and `.`, starting and ending with a letter or digit).
pub(crate) fn is_object_name(name: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    name.len() <= 253 && name.split('.').all(label_ok)
}

/// Refuses a name from a URL path that cannot name an Application, before it reaches the
/// Kubernetes API (where `..`, `/` or `?` would change the request).
pub(crate) fn check_app_name(name: &str) -> Result<(), ApiError> {
    if is_object_name(name) {
        return Ok(());
    }
    let shown: String = name.chars().filter(|c| !c.is_control()).take(80).collect();
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "invalid_name",
        format!(
            "{shown:?} is not an application name: use lower-case letters, digits, '-' and '.'"
        ),
    ))
}

/// Reads the app `name` for a change: 404 as [`get_app`], 403 when `principal` may read but
/// not sync it.
pub(crate) async fn get_app_to_change(
    state: &ServerState,
    principal: &Principal,
    name: &str,
    action: &str,
) -> Result<Application, ApiError> {
    let app = get_app(state, principal, name).await?;
    if !principal.can_sync(&app.spec.project) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            format!(
                "account {} (role {}) may not {action} applications of project {}; ask an admin \
                 for the sync role",
                principal.name, principal.role, app.spec.project
            ),
        ));
    }
    Ok(app)
}

/// One line of the application list.
fn summarize(app: &Application) -> Value {
    let status = app.status.clone().unwrap_or_default();
    let sources = app.spec.effective_sources();
    let first = sources.first();
    json!({
        "name": app.metadata.name,
        "namespace": app.metadata.namespace,
        "project": app.spec.project,
        "repoURL": first.map(|s| s.repo_url.clone()),
        "path": first.and_then(|s| s.path.clone()),
        "chart": first.and_then(|s| s.chart.clone()),
        "targetRevision": first.map(|s| s.target_revision_or_head().to_string()),
        "destination": app.spec.destination,
        "syncStatus": status.sync.status,
        "healthStatus": status.health.status,
        "revision": status.sync.revision,
        "operationPending": app.operation.is_some(),
    })
}

/// `GET /api/v1/applications`: the applications the caller may read.
pub async fn list_applications(
    State(state): State<Arc<ServerState>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let list = state
        .apps
        .list(&ListParams::default())
        .await
        .map_err(|e| ApiError::kube("listing applications", &e))?;
    let items: Vec<Value> = list
        .items
        .iter()
        .filter(|app| caller.can_read(&app.spec.project))
        .map(summarize)
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// `GET /api/v1/applications/{name}`: the Application as stored (without managed fields).
pub async fn get_application(
    State(state): State<Arc<ServerState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Application>, ApiError> {
    let mut app = get_app(&state, &caller, &name).await?;
    app.metadata.managed_fields = None;
    Ok(Json(app))
}

/// `GET /api/v1/applications/{name}/history`.
pub async fn application_history(
    State(state): State<Arc<ServerState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let app = get_app(&state, &caller, &name).await?;
    let history = app.status.map(|s| s.history).unwrap_or_default();
    Ok(Json(json!({ "items": history })))
}

/// `GET /api/v1/applications/{name}/diff`: each object's live and desired sides, normalized,
/// Secret values masked (a changed value gets a different mask than an unchanged one).
pub async fn application_diff(
    State(state): State<Arc<ServerState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    get_app(&state, &caller, &name).await?;
    state
        .costly
        .check(&caller.name)
        .map_err(|wait| crate::hardening::too_many("diff", wait))?;
    let diffs = state.differ.diff_app(&name).await.map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "comparison_failed",
            format!("comparing application {name} with Git: {e}"),
        )
    })?;
    let items: Vec<Value> = diffs
        .into_iter()
        .map(|d| {
            let (live, desired) = (d.live, d.desired);
            json!({
                "group": d.key.group,
                "kind": d.key.kind,
                "namespace": d.key.namespace,
                "name": d.key.name,
                "prune": d.prune,
                "differs": live != desired,
                "live": live,
                "desired": desired,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Body of `POST .../sync`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SyncBody {
    /// Branch, tag or commit to sync to; default: the app's target revision.
    pub revision: Option<String>,
    /// Delete tracked resources no longer in Git.
    #[serde(default)]
    pub prune: bool,
    /// Only report what would be done.
    #[serde(default)]
    pub dry_run: bool,
}

/// Body of `POST .../rollback`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RollbackBody {
    /// The history entry to go back to.
    pub id: i64,
    /// Delete resources the earlier revision does not have.
    #[serde(default)]
    pub prune: bool,
}

/// Parses a JSON body; an empty body is `T::default()` when `empty` gives one.
fn parse_body<T: serde::de::DeserializeOwned>(
    body: &Bytes,
    empty: Option<T>,
) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace)
        && let Some(v) = empty
    {
        return Ok(v);
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_body(format!("reading the JSON body: {e}")))
}

/// `POST /api/v1/applications/{name}/sync`: body `{revision?, prune?, dryRun?}`; 202 with the
/// request id once `.operation` is set.
pub async fn sync_application(
    State(state): State<Arc<ServerState>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: SyncBody = parse_body(&body, Some(SyncBody::default()))?;
    let app = get_app_to_change(&state, &caller, &name, "sync").await?;
    let params = SyncParams {
        revision: body.revision.filter(|r| !r.is_empty()),
        prune: body.prune,
        dry_run: body.dry_run,
        sync_options: Vec::new(),
    };
    let request = operations::request_sync(&state.apps, &app, &params, &caller.name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"name": name, "request": request})),
    ))
}

/// Query of `POST .../refresh`.
#[derive(Debug, Default, Deserialize)]
pub struct RefreshQuery {
    /// Also drop cached renders and fetch the repository again.
    #[serde(default)]
    pub hard: bool,
}

/// `POST /api/v1/applications/{name}/refresh[?hard=true]`: sets the refresh annotation.
pub async fn refresh_application(
    State(state): State<Arc<ServerState>>,
    caller: Caller,
    Path(name): Path<String>,
    query: Result<Query<RefreshQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_body(format!("reading the query: {e}")))?;
    get_app_to_change(&state, &caller, &name, "refresh").await?;
    if query.hard {
        state
            .costly
            .check(&caller.name)
            .map_err(|wait| crate::hardening::too_many("hard refresh", wait))?;
    }
    let kind = RefreshType::hard_if(query.hard);
    operations::request_refresh(&state.apps, &name, kind).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"name": name, "refresh": kind.as_str()})),
    ))
}

/// `POST /api/v1/applications/{name}/rollback`: body `{id, prune?}`. Syncs to the revision of
/// history entry `id` and turns automated sync off first, as Argo CD does.
pub async fn rollback_application(
    State(state): State<Arc<ServerState>>,
    caller: Caller,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let body: RollbackBody = parse_body(&body, None)?;
    let app = get_app_to_change(&state, &caller, &name, "roll back").await?;
    let done = operations::rollback(&state.apps, &app, body.id, body.prune, &caller.name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"name": name, "request": done.request, "revision": done.revision})),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_from_url_paths_are_checked() {
        for ok in ["web", "web-1", "a.b", "x"] {
            assert!(is_object_name(ok), "{ok}");
        }
        for bad in [
            "",
            "..",
            "../secrets",
            "a/b",
            "Web",
            "-a",
            "a-",
            "a?watch=1",
            "a\nb",
            "a..b",
        ] {
            assert!(!is_object_name(bad), "{bad}");
            assert!(check_app_name(bad).is_err(), "{bad}");
        }
        assert!(!is_object_name(&"a".repeat(254)));
    }
}
