//! A canary Rollout of an Application, in the API: its state (steps, weights, analysis runs
//! with their measurements) and the operations promote, abort and retry. A Rollout is reached
//! through the app that deploys it, so reading it takes the right to read the app and acting on
//! it the right to sync the app, as for the app's own actions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use ferry_core::application::Application;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::{ApiError, ServerState};

type Caller = axum::Extension<Principal>;

/// Where an app's Rollout lives: the destination cluster's client and the namespace.
pub(crate) async fn locate(
    state: &ServerState,
    app: &Application,
    rollout: &str,
) -> Result<(kube::Client, String), ApiError> {
    crate::api::check_app_name(rollout)?;
    let resources = app
        .status
        .as_ref()
        .map(|s| s.resources.as_slice())
        .unwrap_or_default();
    let Some(r) = resources
        .iter()
        .find(|r| r.kind == "Rollout" && r.group == "argoproj.io" && r.name == rollout)
    else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "rollout_not_found",
            format!(
                "Rollout {rollout} is not a resource of application {}",
                app.metadata.name.as_deref().unwrap_or_default()
            ),
        ));
    };
    let d = &app.spec.destination;
    let cluster = state
        .ui
        .destinations
        .resolve(d.server.as_deref(), d.name.as_deref())
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "destination_unreachable",
                format!("connecting to the destination cluster of the application: {e}"),
            )
        })?;
    Ok((cluster.client().clone(), r.namespace.clone()))
}

fn op_error(e: ferry_rollouts::ops::OpError) -> ApiError {
    use ferry_rollouts::ops::OpError;
    match e {
        OpError::NotFound { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "rollout_not_found", e.to_string())
        }
        OpError::Refused { .. } => {
            ApiError::new(StatusCode::CONFLICT, "rollout_refused", e.to_string())
        }
        OpError::Kube { ref source, .. } => ApiError::kube("acting on the Rollout", source),
    }
}

/// A Rollout's view and its analysis runs (with their measurements), as JSON.
pub(crate) async fn rollout_state(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<Value, ApiError> {
    let view = ferry_rollouts::ops::get(client, namespace, name)
        .await
        .map_err(op_error)?;
    let mut runs = Vec::new();
    for r in &view.analysis_runs {
        let run = ferry_rollouts::kube_util::get(
            client,
            ferry_rollouts::kube_util::ANALYSIS_RUN,
            namespace,
            &r.name,
        )
        .await
        .map_err(|e| ApiError::kube(&format!("reading AnalysisRun {}", r.name), &e))?;
        if let Some(run) = run {
            runs.push(json!({
                "name": r.name,
                "phase": run.pointer("/status/phase"),
                "message": run.pointer("/status/message"),
                "metricResults": run.pointer("/status/metricResults"),
            }));
        }
    }
    Ok(json!({"rollout": view, "analysisRuns": runs}))
}

/// `GET /api/v1/applications/{name}/rollouts/{rollout}`.
pub async fn get_rollout(
    State(state): State<Arc<ServerState>>,
    caller: Caller,
    Path((name, rollout)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let app = crate::api::get_app(&state, &caller, &name).await?;
    let (client, ns) = locate(&state, &app, &rollout).await?;
    Ok(Json(rollout_state(&client, &ns, &rollout).await?))
}

/// The query of a promote.
#[derive(Debug, Default, Deserialize)]
pub struct ActionQuery {
    /// Skip every remaining step (promote only).
    #[serde(default)]
    full: bool,
}

/// Runs `action` (promote, abort, retry) on an app's Rollout; returns what was done.
pub(crate) async fn act(
    state: &ServerState,
    principal: &Principal,
    name: &str,
    rollout: &str,
    action: &str,
    full: bool,
) -> Result<String, ApiError> {
    let app = crate::api::get_app_to_change(state, principal, name, action).await?;
    let (client, ns) = locate(state, &app, rollout).await?;
    let done = match action {
        "promote" => ferry_rollouts::ops::promote(&client, &ns, rollout, full).await,
        "abort" => ferry_rollouts::ops::abort(&client, &ns, rollout).await,
        "retry" => ferry_rollouts::ops::retry(&client, &ns, rollout).await,
        other => {
            let shown: String = other.chars().filter(|c| !c.is_control()).take(40).collect();
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                "route_not_found",
                format!("{shown:?} is not a rollout action: use promote, abort or retry"),
            ));
        }
    };
    let message = done.map_err(op_error)?;
    tracing::info!(user = %principal.name, app = %name, rollout = %rollout, action, "{message}");
    Ok(message)
}

/// `POST /api/v1/applications/{name}/rollouts/{rollout}/{action}` (`promote[?full=true]`,
/// `abort`, `retry`).
pub async fn rollout_action(
    State(state): State<Arc<ServerState>>,
    caller: Caller,
    Path((name, rollout, action)): Path<(String, String, String)>,
    query: Result<Query<ActionQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_body(format!("reading the query: {e}")))?;
    let message = act(&state, &caller, &name, &rollout, &action, q.full).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"name": rollout, "action": action, "message": message})),
    ))
}
