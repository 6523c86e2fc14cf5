//! Operations on a Rollout — get, promote, abort, retry — as the CLI (`ferry rollout`) and the
//! API call them. Each is one patch of the Rollout's status (or `spec.paused`), guarded by the
//! resourceVersion it read, in the fields Argo Rollouts' own plugin writes, so either tool can
//! act on a rollout the other runs. The rollout controller writes the same status all the time:
//! when the guarded write meets a conflict, the operation reads again and decides again.

use serde::Serialize;
use serde_json::{Value, json};

use crate::kube_util::{self, ROLLOUT};
use crate::spec::{RolloutSpec, Step};
use crate::status::RolloutStatus;

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OpError {
    /// No such Rollout.
    #[error("Rollout {namespace}/{name} not found")]
    NotFound {
        /// The namespace.
        namespace: String,
        /// The name.
        name: String,
    },
    /// The operation does not apply in the Rollout's state.
    #[error("Rollout {name}: {reason}")]
    Refused {
        /// The Rollout.
        name: String,
        /// Why, and what to do.
        reason: String,
    },
    /// The API server failed.
    #[error("{what}: {source}")]
    Kube {
        /// What was being done.
        what: String,
        /// The error.
        #[source]
        source: kube::Error,
    },
}

async fn read(client: &kube::Client, namespace: &str, name: &str) -> Result<Value, OpError> {
    kube_util::get(client, ROLLOUT, namespace, name)
        .await
        .map_err(|source| OpError::Kube {
            what: format!("reading Rollout {namespace}/{name}"),
            source,
        })?
        .ok_or_else(|| OpError::NotFound {
            namespace: namespace.into(),
            name: name.into(),
        })
}

async fn patch_status(client: &kube::Client, ro: &Value, status: Value) -> Result<(), OpError> {
    let name = ro["metadata"]["name"].as_str().unwrap_or_default();
    let namespace = ro["metadata"]["namespace"].as_str().unwrap_or_default();
    let patch = json!({
        "metadata": {"resourceVersion": ro["metadata"]["resourceVersion"]},
        "status": status,
    });
    ROLLOUT
        .api(client, namespace)
        .patch_status(
            name,
            &kube::api::PatchParams {
                field_manager: Some(kube_util::FIELD_MANAGER.into()),
                ..Default::default()
            },
            &kube::api::Patch::Merge(&patch),
        )
        .await
        .map_err(|source| OpError::Kube {
            what: format!("patching the status of Rollout {namespace}/{name}"),
            source,
        })?;
    Ok(())
}

/// Whether an error is the API server's 409: the Rollout changed between our read and our write
/// (its controller writes its status all the time).
fn is_conflict(e: &OpError) -> bool {
    matches!(e, OpError::Kube { source: kube::Error::Api(s), .. } if s.code == 409)
}

/// How many times an operation reads, decides and writes again after a conflict.
const ATTEMPTS: usize = 5;

/// Runs one read→decide→write operation again, from a fresh read, while its guarded write meets
/// a conflict; the decision is always made on the state the write replaces.
async fn on_fresh_state<F, Fut>(mut op: F) -> Result<String, OpError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<String, OpError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match op().await {
            Err(e) if is_conflict(&e) && tries < ATTEMPTS => {
                tokio::time::sleep(std::time::Duration::from_millis(50 * tries as u64)).await;
            }
            other => return other,
        }
    }
}

/// Promotes: ends the pause under way (a pause step, an inconclusive analysis, `spec.paused`);
/// when not paused, skips the current step; with `full`, skips every remaining step. Returns
/// what was done, in words. A conflicting write by the controller is met by reading again.
pub async fn promote(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    full: bool,
) -> Result<String, OpError> {
    on_fresh_state(|| promote_once(client, namespace, name, full)).await
}

/// Aborts the canary: traffic back to the stable, the canary scaled down after the delay.
pub async fn abort(client: &kube::Client, namespace: &str, name: &str) -> Result<String, OpError> {
    on_fresh_state(|| abort_once(client, namespace, name)).await
}

/// Retries an aborted rollout from its first step, with new analysis runs.
pub async fn retry(client: &kube::Client, namespace: &str, name: &str) -> Result<String, OpError> {
    on_fresh_state(|| retry_once(client, namespace, name)).await
}

fn in_canary(st: &RolloutStatus) -> bool {
    st.stable_rs.is_some() && st.current_pod_hash.is_some() && st.stable_rs != st.current_pod_hash
}

/// One read→decide→write of [`promote`].
async fn promote_once(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    full: bool,
) -> Result<String, OpError> {
    let ro = read(client, namespace, name).await?;
    let st = RolloutStatus::of(&ro);
    if st.abort {
        return Err(OpError::Refused {
            name: name.into(),
            reason: "it is aborted: retry it (ferry rollout retry) or revert the change in Git"
                .into(),
        });
    }
    if ro.pointer("/spec/paused").and_then(Value::as_bool) == Some(true) {
        kube_util::merge_patch(
            client,
            ROLLOUT,
            namespace,
            name,
            &json!({"spec": {"paused": false}}),
        )
        .await
        .map_err(|source| OpError::Kube {
            what: format!("unpausing Rollout {namespace}/{name}"),
            source,
        })?;
        return Ok(format!(
            "Rollout {name}: spec.paused cleared (change it in Git too, or the next sync pauses it again)"
        ));
    }
    if !in_canary(&st) {
        return Err(OpError::Refused {
            name: name.into(),
            reason: "no canary is under way: there is nothing to promote".into(),
        });
    }
    if full {
        patch_status(
            client,
            &ro,
            json!({"promoteFull": true, "pauseConditions": null}),
        )
        .await?;
        return Ok(format!(
            "Rollout {name}: promoting fully (the remaining steps are skipped)"
        ));
    }
    if !st.pause_conditions.is_empty() {
        patch_status(client, &ro, json!({"pauseConditions": null})).await?;
        return Ok(format!(
            "Rollout {name}: promoted past the pause at step {}",
            st.current_step_index.unwrap_or(0)
        ));
    }
    let steps = RolloutSpec::parse(&ro)
        .map(|s| s.canary.steps.len())
        .unwrap_or(0) as i64;
    let index = st.current_step_index.unwrap_or(0);
    if index >= steps {
        return Err(OpError::Refused {
            name: name.into(),
            reason: "every step is done; the promotion is under way".into(),
        });
    }
    patch_status(
        client,
        &ro,
        json!({"currentStepIndex": index + 1, "canary": {"currentStepAnalysisRunStatus": null}}),
    )
    .await?;
    Ok(format!("Rollout {name}: step {index} skipped"))
}

/// One read→decide→write of [`abort`].
async fn abort_once(client: &kube::Client, namespace: &str, name: &str) -> Result<String, OpError> {
    let ro = read(client, namespace, name).await?;
    let st = RolloutStatus::of(&ro);
    if !in_canary(&st) {
        return Err(OpError::Refused {
            name: name.into(),
            reason: "no canary is under way: there is nothing to abort".into(),
        });
    }
    if st.abort {
        return Ok(format!("Rollout {name}: already aborted"));
    }
    patch_status(client, &ro, json!({"abort": true})).await?;
    Ok(format!(
        "Rollout {name}: aborted; traffic goes back to the stable revision"
    ))
}

/// One read→decide→write of [`retry`].
async fn retry_once(client: &kube::Client, namespace: &str, name: &str) -> Result<String, OpError> {
    let ro = read(client, namespace, name).await?;
    let st = RolloutStatus::of(&ro);
    if !st.abort {
        return Err(OpError::Refused {
            name: name.into(),
            reason: "it is not aborted: retry applies to an aborted rollout".into(),
        });
    }
    patch_status(
        client,
        &ro,
        json!({
            "abort": null, "abortedAt": null, "currentStepIndex": 0, "pauseConditions": null,
            "controllerPause": null, "promoteFull": null, "attempt": st.attempt + 1,
            "phase": "Progressing", "message": "retrying the rollout from step 0",
            "canary": {"currentStepAnalysisRunStatus": null, "currentBackgroundAnalysisRunStatus": null}
        }),
    )
    .await?;
    Ok(format!("Rollout {name}: retrying from step 0"))
}

/// A Rollout's state as the CLI, API and UI show it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutView {
    /// The name.
    pub name: String,
    /// The namespace.
    pub namespace: String,
    /// `status.phase`.
    pub phase: String,
    /// `status.message`.
    pub message: String,
    /// The step under way (`steps.len()` when done).
    pub current_step_index: i64,
    /// The steps, each with its state.
    pub steps: Vec<StepView>,
    /// Percent of traffic (or pods) on the canary.
    pub canary_weight: i64,
    /// The stable pod-template hash.
    pub stable_hash: String,
    /// The canary (spec's) pod-template hash.
    pub canary_hash: String,
    /// Whether it is aborted.
    pub aborted: bool,
    /// The analysis runs under way or last run (step and background).
    pub analysis_runs: Vec<crate::status::RunStatus>,
    /// `replicas`, `updated`, `ready`, `available`.
    pub replicas: [i64; 4],
    /// The spec error, when the spec cannot be acted on.
    pub invalid: Option<String>,
}

/// One step, shown.
#[derive(Debug, Clone, Serialize)]
pub struct StepView {
    /// Its index.
    pub index: usize,
    /// What it does (`setWeight: 20`, `pause: 1m`, `pause` (until promoted), `analysis: error-rate`).
    pub text: String,
    /// `done`, `current` or `pending`.
    pub state: &'static str,
}

/// How a step reads.
pub fn describe_step(s: &Step) -> String {
    match s {
        Step::SetWeight(w) => format!("setWeight: {w}"),
        Step::Pause(Some(d)) => format!("pause: {} s", d.as_secs()),
        Step::Pause(None) => "pause (until promoted)".into(),
        Step::Analysis(a) => format!(
            "analysis: {}",
            a.templates
                .iter()
                .filter_map(|t| t.get("templateName").and_then(Value::as_str))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Step::SetCanaryScale(c) => format!("setCanaryScale: {c:?}"),
    }
}

/// The view of a Rollout's JSON.
pub fn view(ro: &Value) -> RolloutView {
    let st = RolloutStatus::of(ro);
    let parsed = RolloutSpec::parse(ro);
    let index = st.current_step_index.unwrap_or(0);
    let steps = match &parsed {
        Ok(spec) => spec
            .canary
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepView {
                index: i,
                text: describe_step(s),
                state: match (i as i64).cmp(&index) {
                    std::cmp::Ordering::Less => "done",
                    std::cmp::Ordering::Equal => "current",
                    std::cmp::Ordering::Greater => "pending",
                },
            })
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut runs = Vec::new();
    runs.extend(st.canary.current_step_analysis_run_status.clone());
    runs.extend(st.canary.current_background_analysis_run_status.clone());
    RolloutView {
        name: ro["metadata"]["name"].as_str().unwrap_or_default().into(),
        namespace: ro["metadata"]["namespace"]
            .as_str()
            .unwrap_or_default()
            .into(),
        phase: st.phase.clone().unwrap_or_default(),
        message: st.message.clone().unwrap_or_default(),
        current_step_index: index,
        steps,
        canary_weight: st
            .canary
            .weights
            .as_ref()
            .map(|w| w.canary.weight)
            .unwrap_or(0),
        stable_hash: st.stable_rs.clone().unwrap_or_default(),
        canary_hash: st.current_pod_hash.clone().unwrap_or_default(),
        aborted: st.abort,
        analysis_runs: runs,
        replicas: [
            st.replicas,
            st.updated_replicas,
            st.ready_replicas,
            st.available_replicas,
        ],
        invalid: parsed.err().map(|e| e.to_string()),
    }
}

/// Reads a Rollout's view.
pub async fn get(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<RolloutView, OpError> {
    Ok(view(&read(client, namespace, name).await?))
}

/// A Rollout's view as text (the CLI's `ferry rollout get`).
pub fn render(v: &RolloutView) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Name:        {}\nNamespace:   {}\n",
        v.name, v.namespace
    ));
    out.push_str(&format!(
        "Status:      {}{}\n",
        v.phase,
        if v.aborted { " (aborted)" } else { "" }
    ));
    if !v.message.is_empty() {
        out.push_str(&format!("Message:     {}\n", v.message));
    }
    out.push_str(&format!(
        "Step:        {}/{}\n",
        v.current_step_index.min(v.steps.len() as i64),
        v.steps.len()
    ));
    out.push_str(&format!(
        "Weight:      canary {} %, stable {} %\n",
        v.canary_weight,
        100 - v.canary_weight
    ));
    out.push_str(&format!(
        "Stable:      {}\nCanary:      {}\n",
        v.stable_hash, v.canary_hash
    ));
    out.push_str(&format!(
        "Replicas:    {} current, {} updated, {} ready, {} available\n",
        v.replicas[0], v.replicas[1], v.replicas[2], v.replicas[3]
    ));
    if let Some(e) = &v.invalid {
        out.push_str(&format!("Invalid:     {e}\n"));
    }
    out.push_str("Steps:\n");
    for s in &v.steps {
        let mark = match s.state {
            "done" => "✔",
            "current" => "▶",
            _ => " ",
        };
        out.push_str(&format!("  {mark} {}. {}\n", s.index, s.text));
    }
    for r in &v.analysis_runs {
        out.push_str(&format!(
            "Analysis:    {} {}{}\n",
            r.name,
            r.status,
            r.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    fn kube_error(code: u16) -> OpError {
        OpError::Kube {
            what: "patching".into(),
            source: kube::Error::Api(
                kube::core::Status::failure("the object has been modified", "Conflict")
                    .with_code(code)
                    .boxed(),
            ),
        }
    }

    #[tokio::test]
    async fn a_conflict_reads_and_decides_again() {
        let calls = AtomicUsize::new(0);
        let out = on_fresh_state(|| async {
            match calls.fetch_add(1, Ordering::SeqCst) {
                0 | 1 => Err(kube_error(409)),
                _ => Ok("done".to_string()),
            }
        })
        .await;
        assert_eq!(out.unwrap(), "done");
        assert_eq!(
            calls.load(Ordering::SeqCst),
            3,
            "two conflicts, then the write that held"
        );
    }

    #[tokio::test]
    async fn other_errors_and_refusals_are_not_retried() {
        let calls = AtomicUsize::new(0);
        let out = on_fresh_state(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(kube_error(422))
        })
        .await;
        assert!(matches!(out, Err(OpError::Kube { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn conflicts_give_up_after_the_last_attempt() {
        let calls = AtomicUsize::new(0);
        let out = on_fresh_state(|| async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(kube_error(409))
        })
        .await;
        assert!(is_conflict(&out.unwrap_err()));
        assert_eq!(calls.load(Ordering::SeqCst), ATTEMPTS);
    }
}
