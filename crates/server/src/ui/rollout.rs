//! A canary Rollout's page: `GET /applications/{name}/rollouts/{rollout}` (phase, steps,
//! weights, analysis runs and their measurements, the promote/abort/retry buttons) and the
//! form posts of those buttons.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::Value;

use super::{Chrome, UiError, encode_component, health_class, render, respond};
use crate::ServerState;
use crate::auth::Principal;

/// The link to the page of an app's Rollout.
pub(crate) fn rollout_link(app: &str, rollout: &str) -> String {
    format!(
        "/applications/{}/rollouts/{}",
        encode_component(app),
        encode_component(rollout)
    )
}

struct StepRow {
    index: usize,
    text: String,
    state: String,
}

struct MeasurementRow {
    metric: String,
    phase: String,
    value: String,
    started: String,
    message: String,
}

struct RunRow {
    name: String,
    phase: String,
    message: String,
    measurements: Vec<MeasurementRow>,
}

#[derive(Template)]
#[template(path = "rollout.html")]
struct RolloutPage {
    chrome: Chrome,
    app: String,
    app_url: String,
    name: String,
    namespace: String,
    phase: String,
    phase_class: String,
    message: String,
    step: String,
    canary_weight: i64,
    stable_weight: i64,
    stable_hash: String,
    canary_hash: String,
    replicas: String,
    aborted: bool,
    invalid: String,
    steps: Vec<StepRow>,
    runs: Vec<RunRow>,
    can_act: bool,
    action_base: String,
    done: String,
}

/// The query of the page.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct PageQuery {
    done: Option<String>,
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn runs_of(state: &Value) -> Vec<RunRow> {
    let Some(runs) = state["analysisRuns"].as_array() else {
        return Vec::new();
    };
    runs.iter()
        .map(|r| {
            let mut measurements = Vec::new();
            for m in r["metricResults"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                for x in m["measurements"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or_default()
                {
                    measurements.push(MeasurementRow {
                        metric: text(m.get("name")),
                        phase: text(x.get("phase")),
                        value: text(x.get("value")),
                        started: text(x.get("startedAt")),
                        message: text(x.get("message")),
                    });
                }
            }
            RunRow {
                name: text(r.get("name")),
                phase: text(r.get("phase")),
                message: text(r.get("message")),
                measurements,
            }
        })
        .collect()
}

/// `GET /applications/{name}/rollouts/{rollout}`.
pub(crate) async fn rollout_page(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    Path((name, rollout)): Path<(String, String)>,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let chrome = Chrome::new(format!("{name}: Rollout {rollout}"), &principal);
    let result = async {
        let done = query.ok().and_then(|Query(q)| q.done).unwrap_or_default();
        let app = super::app::readable_app(&state, &principal, &name).await?;
        let (client, ns) = crate::rollouts::locate(&state, &app, &rollout).await?;
        let st = crate::rollouts::rollout_state(&client, &ns, &rollout).await?;
        let v = &st["rollout"];
        let weight = v["canaryWeight"].as_i64().unwrap_or(0);
        let steps: Vec<StepRow> = v["steps"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|s| StepRow {
                index: s["index"].as_u64().unwrap_or(0) as usize,
                text: text(s.get("text")),
                state: text(s.get("state")),
            })
            .collect();
        let phase = text(v.get("phase"));
        let health = match phase.as_str() {
            "Paused" => "Suspended",
            "" => "Unknown",
            p => p,
        };
        let r = &v["replicas"];
        let page = RolloutPage {
            chrome: chrome.clone(),
            app: name.clone(),
            app_url: encode_component(&name),
            name: rollout.clone(),
            namespace: ns,
            phase_class: health_class(health).to_owned(),
            phase,
            message: text(v.get("message")),
            step: format!(
                "{} of {}",
                v["currentStepIndex"]
                    .as_i64()
                    .unwrap_or(0)
                    .min(steps.len() as i64),
                steps.len()
            ),
            canary_weight: weight,
            stable_weight: 100 - weight,
            stable_hash: text(v.get("stableHash")),
            canary_hash: text(v.get("canaryHash")),
            replicas: format!(
                "{} current, {} updated, {} ready, {} available",
                r[0], r[1], r[2], r[3]
            ),
            aborted: v["aborted"].as_bool() == Some(true),
            invalid: text(v.get("invalid")),
            steps,
            runs: runs_of(&st),
            can_act: principal.can_sync(&app.spec.project),
            action_base: rollout_link(&name, &rollout),
            done,
        };
        Ok(render(&page))
    }
    .await;
    respond(result, chrome)
}

/// Fields of the action forms.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ActionForm {
    #[serde(default)]
    full: Option<String>,
}

/// `POST /applications/{name}/rollouts/{rollout}/{action}` (form: `full`, `_csrf`).
pub(crate) async fn rollout_form(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    Path((name, rollout, action)): Path<(String, String, String)>,
    form: Result<Form<ActionForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let chrome = Chrome::new(format!("{name}: Rollout {rollout}"), &principal);
    let result = async {
        let Form(f) = form
            .map_err(|e| UiError::new(StatusCode::BAD_REQUEST, format!("reading the form: {e}")))?;
        let full = matches!(f.full.as_deref(), Some("on" | "true" | "1"));
        crate::rollouts::act(&state, &principal, &name, &rollout, &action, full).await?;
        Ok((
            StatusCode::SEE_OTHER,
            [(
                LOCATION,
                format!(
                    "{}?done={}",
                    rollout_link(&name, &rollout),
                    encode_component(&action)
                ),
            )],
        )
            .into_response())
    }
    .await;
    respond(result, chrome)
}
