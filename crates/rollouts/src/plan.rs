//! The pure core of a canary rollout: from what is observed (the spec, the status ferry wrote,
//! the ReplicaSets' counts, the analysis runs' phases, the time) to what should be (replica
//! counts, the traffic weight, which pods each Service selects, the next status). No I/O: the
//! reconcile in [`crate::reconcile`] reads the cluster, calls [`plan`], and applies the result.
//!
//! One call moves a rollout by at most one step, and everything the next call needs is in the
//! status it returns, so a restart continues at the same step.

use std::time::Duration;

use crate::spec::{CanaryScale, RolloutSpec, Step};
use crate::status::{
    PAUSE_INCONCLUSIVE, PAUSE_STEP, PauseCondition, RolloutStatus, RunStatus, TrafficWeights,
    WeightDestination, phase,
};

/// The traffic weight (percent to the canary) in force at step `index`: the last `setWeight`
/// at or before it; 100 once every step is done; 0 before any `setWeight`.
pub fn weight_at(steps: &[Step], index: usize) -> i64 {
    if index >= steps.len() {
        return 100;
    }
    steps[..=index]
        .iter()
        .rev()
        .find_map(|s| match s {
            Step::SetWeight(w) => Some(*w),
            _ => None,
        })
        .unwrap_or(0)
}

/// The `setCanaryScale` in force at step `index` (the last one at or before it).
pub fn canary_scale_at(steps: &[Step], index: usize) -> Option<&CanaryScale> {
    if index >= steps.len() {
        return None;
    }
    steps[..=index].iter().rev().find_map(|s| match s {
        Step::SetCanaryScale(c) => Some(c),
        _ => None,
    })
}

/// Replicas for `percent` of `replicas`, rounded up.
fn share(replicas: i64, percent: i64) -> i64 {
    (replicas * percent + 99) / 100
}

/// `(canary, stable)` replica counts for a weight.
///
/// Without traffic routing the weight is the share of pods: the canary gets its share rounded
/// up, the stable keeps its own share rounded up too, so a 20 % canary of 1 replica runs one pod
/// of each (a surge of one, as Argo Rollouts' basic canary). With traffic routing the stable
/// keeps every replica until promotion and the canary runs `setCanaryScale`'s count, or its
/// share of the weight.
pub fn replica_counts(
    replicas: i64,
    weight: i64,
    scale: Option<&CanaryScale>,
    traffic_routed: bool,
) -> (i64, i64) {
    let weight = weight.clamp(0, 100);
    if traffic_routed {
        let canary = match scale {
            Some(CanaryScale::Replicas(n)) => *n,
            Some(CanaryScale::Weight(w)) => share(replicas, *w),
            Some(CanaryScale::MatchTrafficWeight) | None => share(replicas, weight),
        };
        return (canary.max(0), replicas);
    }
    let canary = share(replicas, weight);
    let stable = share(replicas, 100 - weight);
    (canary, stable)
}

/// A ReplicaSet's counts, as observed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplicaCounts {
    /// `spec.replicas`.
    pub desired: i64,
    /// `status.replicas`.
    pub current: i64,
    /// `status.readyReplicas`.
    pub ready: i64,
    /// `status.availableReplicas`.
    pub available: i64,
}

/// An analysis run's phase, as the analysis module reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalysisView {
    /// The AnalysisRun's name.
    pub name: String,
    /// `Pending`, `Running`, `Successful`, `Failed`, `Inconclusive` or `Error`.
    pub phase: String,
    /// Its message.
    pub message: String,
    /// When to look again while it runs.
    pub next_in: Option<Duration>,
}

/// What [`plan`] is given.
#[derive(Clone, Debug)]
pub struct Observed<'a> {
    /// The checked spec.
    pub spec: &'a RolloutSpec,
    /// The status as last written.
    pub status: &'a RolloutStatus,
    /// The pod-template hash of the spec's template.
    pub hash: &'a str,
    /// The ReplicaSet of `hash`, if it exists.
    pub canary_rs: Option<ReplicaCounts>,
    /// The ReplicaSet of `status.stableRS`, if it exists.
    pub stable_rs: Option<ReplicaCounts>,
    /// The current step's analysis run, when the current step is an analysis.
    pub step_analysis: Option<AnalysisView>,
    /// The background analysis run, when one runs.
    pub background_analysis: Option<AnalysisView>,
    /// Now, in seconds since the epoch.
    pub now: i64,
}

/// A Kubernetes Event to publish on the Rollout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventNote {
    /// Warning (true) or Normal.
    pub warning: bool,
    /// The reason (`RolloutAborted`, `RolloutCompleted`, `RolloutStepCompleted`, …).
    pub reason: String,
    /// The message.
    pub message: String,
}

/// What [`plan`] decides.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The status to write.
    pub status: RolloutStatus,
    /// `spec.replicas` of the ReplicaSet of the spec's template.
    pub canary_replicas: i64,
    /// `spec.replicas` of the stable ReplicaSet (when it differs from the canary).
    pub stable_replicas: i64,
    /// Percent of traffic to send to the canary Service.
    pub traffic_weight: i64,
    /// Whether the analysis runs of this rollout should be stopped (abort, promotion).
    pub stop_analysis: bool,
    /// An Event to publish.
    pub event: Option<EventNote>,
    /// When to reconcile again.
    pub requeue: Duration,
}

/// Seconds since the epoch of an RFC 3339 time (None when unreadable).
pub fn parse_time(s: &str) -> Option<i64> {
    s.parse::<jiff::Timestamp>().ok().map(|t| t.as_second())
}

/// RFC 3339 of seconds since the epoch.
pub fn format_time(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

const POLL: Duration = Duration::from_secs(2);
const IDLE: Duration = Duration::from_secs(60);
const WAIT_FOR_PROMOTE: Duration = Duration::from_secs(30);

fn is_failure(phase: &str) -> bool {
    matches!(phase, "Failed" | "Error")
}

fn run_status(a: &AnalysisView) -> RunStatus {
    RunStatus {
        name: a.name.clone(),
        status: a.phase.clone(),
        message: (!a.message.is_empty()).then(|| a.message.clone()),
    }
}

/// Decides the next step of a rollout. See the module docs.
pub fn plan(o: &Observed<'_>) -> Plan {
    let spec = o.spec;
    let steps = &spec.canary.steps;
    let replicas = spec.replicas;
    let routed = spec.canary.traffic.is_some();
    let mut st = o.status.clone();
    let mut p = Plan {
        status: RolloutStatus::default(),
        canary_replicas: 0,
        stable_replicas: replicas,
        traffic_weight: 0,
        stop_analysis: false,
        event: None,
        requeue: POLL,
    };
    let canary = o.canary_rs.unwrap_or_default();

    // The first revision, or the stable one again (a promotion done, or a revert in Git): no
    // canary, every replica on the stable ReplicaSet.
    let first = st.stable_rs.is_none();
    if first || st.stable_rs.as_deref() == Some(o.hash) {
        let was_canary = st.current_pod_hash.as_deref().is_some_and(|h| h != o.hash);
        st.stable_rs = Some(o.hash.to_owned());
        st.current_pod_hash = Some(o.hash.to_owned());
        st.current_step_index = Some(steps.len() as i64);
        st.pause_conditions.clear();
        st.controller_pause = false;
        st.abort = false;
        st.aborted_at = None;
        st.promote_full = false;
        st.attempt = 0;
        st.canary.current_step_analysis_run_status = None;
        st.canary.current_background_analysis_run_status = None;
        p.canary_replicas = replicas;
        p.stable_replicas = replicas;
        p.stop_analysis = true;
        if canary.available >= replicas && canary.desired == replicas {
            st.phase = Some(phase::HEALTHY.into());
            st.message = None;
            p.requeue = IDLE;
        } else {
            st.phase = Some(phase::PROGRESSING.into());
            st.message = Some(format!(
                "more replicas need to be available: {} of {replicas}",
                canary.available
            ));
        }
        if was_canary {
            p.event = Some(EventNote {
                warning: false,
                reason: "RolloutCompleted".into(),
                message: format!("Rollout back on the stable revision {}", o.hash),
            });
        }
        set_weights(&mut st, o, 0);
        p.status = st;
        return p;
    }

    // A new revision to roll out: start at step 0.
    if st.current_pod_hash.as_deref() != Some(o.hash) {
        st.current_pod_hash = Some(o.hash.to_owned());
        st.current_step_index = Some(0);
        st.pause_conditions.clear();
        st.controller_pause = false;
        st.abort = false;
        st.aborted_at = None;
        st.promote_full = false;
        st.attempt = 0;
        st.canary.current_step_analysis_run_status = None;
        st.canary.current_background_analysis_run_status = None;
        st.phase = Some(phase::PROGRESSING.into());
        st.message = Some(format!("new revision {} to roll out", o.hash));
        p.canary_replicas = 0;
        p.stop_analysis = true;
        p.requeue = Duration::ZERO;
        p.event = Some(EventNote {
            warning: false,
            reason: "RolloutUpdated".into(),
            message: format!("Rollout updated to revision {}", o.hash),
        });
        keep_weights(&mut st, o);
        p.status = st;
        return p;
    }

    let index = st
        .current_step_index
        .unwrap_or(0)
        .clamp(0, steps.len() as i64) as usize;

    // Analysis results come first: a failure aborts wherever the rollout is.
    if !st.abort {
        if let Some(a) = &o.background_analysis {
            st.canary.current_background_analysis_run_status = Some(run_status(a));
            if is_failure(&a.phase) {
                start_abort(
                    &mut st,
                    &mut p,
                    o,
                    format!("background analysis {} {}: {}", a.name, a.phase, a.message),
                );
            }
        }
        if let Some(a) = &o.step_analysis {
            st.canary.current_step_analysis_run_status = Some(run_status(a));
            if is_failure(&a.phase) {
                start_abort(
                    &mut st,
                    &mut p,
                    o,
                    format!(
                        "step {index} analysis {} {}: {}",
                        a.name, a.phase, a.message
                    ),
                );
            }
        }
    }

    if st.abort {
        if st.aborted_at.is_none() {
            let msg = st
                .message
                .clone()
                .filter(|m| m.starts_with("RolloutAborted"))
                .unwrap_or_else(|| "RolloutAborted: aborted by request".into());
            start_abort(
                &mut st,
                &mut p,
                o,
                msg.trim_start_matches("RolloutAborted: ").to_owned(),
            );
        }
        let aborted = st
            .aborted_at
            .as_deref()
            .and_then(parse_time)
            .unwrap_or(o.now);
        let delay = spec.canary.abort_scale_down_delay.as_secs() as i64;
        let left = aborted + delay - o.now;
        p.canary_replicas = if left > 0 { canary.desired } else { 0 };
        p.stable_replicas = replicas;
        p.traffic_weight = 0;
        p.stop_analysis = true;
        p.requeue = if left > 0 {
            Duration::from_secs(left as u64)
        } else {
            IDLE
        };
        st.phase = Some(phase::DEGRADED.into());
        st.pause_conditions.clear();
        st.controller_pause = false;
        set_weights(&mut st, o, 0);
        p.status = st;
        return p;
    }

    if spec.paused {
        let (c, s) = counts_at(spec, index.min(steps.len()));
        p.canary_replicas = c;
        p.stable_replicas = s;
        p.traffic_weight = current_weight(o);
        st.phase = Some(phase::PAUSED.into());
        st.message = Some("manually paused (spec.paused)".into());
        keep_weights(&mut st, o);
        p.requeue = WAIT_FOR_PROMOTE;
        p.status = st;
        return p;
    }

    let index = if st.promote_full {
        st.pause_conditions.clear();
        st.controller_pause = false;
        steps.len()
    } else {
        index
    };

    // Every step done: the canary takes all replicas, then becomes the stable.
    if index >= steps.len() {
        st.current_step_index = Some(steps.len() as i64);
        p.canary_replicas = replicas;
        p.stop_analysis = true;
        if canary.available >= replicas && canary.desired == replicas {
            st.stable_rs = Some(o.hash.to_owned());
            st.promote_full = false;
            st.phase = Some(phase::HEALTHY.into());
            st.message = None;
            st.canary.current_step_analysis_run_status = None;
            p.stable_replicas = replicas;
            p.traffic_weight = 0;
            set_weights(&mut st, o, 0);
            st.canary.weights = st.canary.weights.take().map(|mut w| {
                w.stable.pod_template_hash = Some(o.hash.to_owned());
                w
            });
            p.event = Some(EventNote {
                warning: false,
                reason: "RolloutCompleted".into(),
                message: format!("Rollout completed: revision {} is the stable one", o.hash),
            });
            p.requeue = Duration::ZERO;
        } else {
            p.stable_replicas = if steps.is_empty() || routed {
                replicas
            } else {
                counts_at(spec, steps.len() - 1).1
            };
            p.traffic_weight = current_weight(o);
            st.phase = Some(phase::PROGRESSING.into());
            st.message = Some(format!(
                "promoting: {} of {replicas} canary replicas available",
                canary.available
            ));
            keep_weights(&mut st, o);
        }
        p.status = st;
        return p;
    }

    let weight = weight_at(steps, index);
    let (c, s) = counts_at(spec, index);
    p.canary_replicas = c;
    p.stable_replicas = s;
    let scaled = canary.desired == c && canary.available >= c;
    p.traffic_weight = if scaled { weight } else { current_weight(o) };
    if scaled {
        set_weights(&mut st, o, weight);
    } else {
        keep_weights(&mut st, o);
    }
    st.phase = Some(phase::PROGRESSING.into());
    let advance = |st: &mut RolloutStatus, p: &mut Plan, what: String| {
        st.current_step_index = Some(index as i64 + 1);
        st.pause_conditions.clear();
        st.controller_pause = false;
        st.canary.current_step_analysis_run_status = None;
        st.message = Some(format!("step {index} done: {what}"));
        p.requeue = Duration::ZERO;
        p.event = Some(EventNote {
            warning: false,
            reason: "RolloutStepCompleted".into(),
            message: format!(
                "Rollout step {}/{} completed ({what})",
                index + 1,
                steps.len()
            ),
        });
    };
    match &steps[index] {
        Step::SetWeight(w) => {
            if scaled {
                advance(&mut st, &mut p, format!("setWeight {w}"));
            } else {
                st.message = Some(format!(
                    "step {index} (setWeight {w}): waiting for the canary: {} of {c} replicas available",
                    canary.available
                ));
            }
        }
        Step::SetCanaryScale(_) => {
            if scaled {
                advance(&mut st, &mut p, format!("setCanaryScale to {c} replicas"));
            } else {
                st.message = Some(format!(
                    "step {index} (setCanaryScale): {} of {c} canary replicas available",
                    canary.available
                ));
            }
        }
        Step::Pause(duration) => {
            if !st.controller_pause {
                st.controller_pause = true;
                st.pause_conditions = vec![PauseCondition {
                    reason: PAUSE_STEP.into(),
                    start_time: format_time(o.now),
                }];
            }
            let started = st
                .pause_conditions
                .first()
                .and_then(|c| parse_time(&c.start_time));
            let left = match (duration, started) {
                (Some(d), Some(t)) => Some(t + d.as_secs() as i64 - o.now),
                _ => None,
            };
            if st.pause_conditions.is_empty() {
                advance(&mut st, &mut p, "promoted".into());
            } else if left.is_some_and(|l| l <= 0) {
                advance(&mut st, &mut p, "pause over".into());
            } else {
                st.phase = Some(phase::PAUSED.into());
                st.message = Some(match left {
                    Some(l) => format!("{PAUSE_STEP}: step {index} pauses {l} s more"),
                    None => format!("{PAUSE_STEP}: step {index} waits for a promote"),
                });
                p.requeue = left
                    .map(|l| Duration::from_secs(l as u64))
                    .unwrap_or(WAIT_FOR_PROMOTE);
            }
        }
        Step::Analysis(_) => {
            let inconclusive_promoted = st.controller_pause
                && st.pause_conditions.is_empty()
                && o.step_analysis
                    .as_ref()
                    .is_some_and(|a| a.phase == "Inconclusive");
            match o.step_analysis.as_ref().map(|a| a.phase.as_str()) {
                Some("Successful") => advance(&mut st, &mut p, "analysis Successful".into()),
                Some("Inconclusive") if inconclusive_promoted => advance(
                    &mut st,
                    &mut p,
                    "promoted after an inconclusive analysis".into(),
                ),
                Some("Inconclusive") => {
                    if !st.controller_pause {
                        st.controller_pause = true;
                        st.pause_conditions = vec![PauseCondition {
                            reason: PAUSE_INCONCLUSIVE.into(),
                            start_time: format_time(o.now),
                        }];
                    }
                    st.phase = Some(phase::PAUSED.into());
                    st.message = Some(format!(
                        "{PAUSE_INCONCLUSIVE}: step {index} analysis was inconclusive: promote to go on, or abort"
                    ));
                    p.requeue = WAIT_FOR_PROMOTE;
                }
                _ => {
                    let a = o.step_analysis.as_ref();
                    st.message = Some(format!(
                        "step {index}: analysis {} {}",
                        a.map(|a| a.name.as_str()).unwrap_or(""),
                        a.map(|a| a.phase.as_str()).unwrap_or("starting")
                    ));
                    p.requeue = a.and_then(|a| a.next_in).unwrap_or(POLL).min(IDLE);
                }
            }
        }
    }
    if let Some(a) = o.background_analysis.as_ref().and_then(|a| a.next_in) {
        p.requeue = p.requeue.min(a);
    }
    p.status = st;
    p
}

fn counts_at(spec: &RolloutSpec, index: usize) -> (i64, i64) {
    let steps = &spec.canary.steps;
    replica_counts(
        spec.replicas,
        weight_at(steps, index),
        canary_scale_at(steps, index),
        spec.canary.traffic.is_some(),
    )
}

fn current_weight(o: &Observed<'_>) -> i64 {
    o.status
        .canary
        .weights
        .as_ref()
        .map(|w| w.canary.weight)
        .unwrap_or(0)
}

fn keep_weights(st: &mut RolloutStatus, o: &Observed<'_>) {
    let w = current_weight(o);
    set_weights(st, o, w);
}

fn set_weights(st: &mut RolloutStatus, o: &Observed<'_>, weight: i64) {
    st.canary.weights = Some(TrafficWeights {
        canary: WeightDestination {
            weight,
            service_name: o.spec.canary.canary_service.clone(),
            pod_template_hash: Some(o.hash.to_owned()),
        },
        stable: WeightDestination {
            weight: 100 - weight,
            service_name: o.spec.canary.stable_service.clone(),
            pod_template_hash: st.stable_rs.clone(),
        },
    });
}

fn start_abort(st: &mut RolloutStatus, p: &mut Plan, o: &Observed<'_>, why: String) {
    st.abort = true;
    st.aborted_at = Some(format_time(o.now));
    st.message = Some(format!(
        "RolloutAborted: Rollout aborted update to revision {}: {why}",
        o.hash
    ));
    p.event = Some(EventNote {
        warning: true,
        reason: "RolloutAborted".into(),
        message: st.message.clone().unwrap_or_default(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::RolloutSpec;
    use crate::status::PauseCondition;
    use serde_json::json;

    fn spec(steps: serde_json::Value, traffic: bool) -> RolloutSpec {
        let mut canary = json!({"steps": steps, "canaryService": "c", "stableService": "s"});
        if traffic {
            canary["trafficRouting"] = json!({"nginx": {"stableIngress": "web"}});
        }
        RolloutSpec::parse(&json!({"spec": {
            "replicas": 5,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}},
            "strategy": {"canary": canary}
        }}))
        .unwrap()
    }

    fn rs(desired: i64, available: i64) -> Option<ReplicaCounts> {
        Some(ReplicaCounts {
            desired,
            current: desired,
            ready: available,
            available,
        })
    }

    fn observe<'a>(
        spec: &'a RolloutSpec,
        status: &'a RolloutStatus,
        canary: Option<ReplicaCounts>,
    ) -> Observed<'a> {
        Observed {
            spec,
            status,
            hash: "new",
            canary_rs: canary,
            stable_rs: rs(5, 5),
            step_analysis: None,
            background_analysis: None,
            now: 1_000_000,
        }
    }

    fn at_step(i: i64) -> RolloutStatus {
        RolloutStatus {
            stable_rs: Some("old".into()),
            current_pod_hash: Some("new".into()),
            current_step_index: Some(i),
            ..Default::default()
        }
    }

    #[test]
    fn weights_follow_the_last_set_weight() {
        let s = spec(
            json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": "30s"}}]),
            false,
        );
        let steps = &s.canary.steps;
        assert_eq!(weight_at(steps, 0), 20);
        assert_eq!(weight_at(steps, 1), 20);
        assert_eq!(weight_at(steps, 2), 50);
        assert_eq!(weight_at(steps, 3), 50);
        assert_eq!(weight_at(steps, 4), 100);
        let p = spec(json!([{"pause": {}}]), false);
        assert_eq!(weight_at(&p.canary.steps, 0), 0);
    }

    #[test]
    fn replica_counts_per_weight() {
        // Without traffic routing, the weight is the share of pods (each side rounded up).
        assert_eq!(replica_counts(5, 20, None, false), (1, 4));
        assert_eq!(replica_counts(5, 50, None, false), (3, 3));
        assert_eq!(replica_counts(5, 100, None, false), (5, 0));
        assert_eq!(replica_counts(5, 0, None, false), (0, 5));
        assert_eq!(replica_counts(1, 20, None, false), (1, 1));
        assert_eq!(replica_counts(10, 25, None, false), (3, 8));
        // With traffic routing the stable keeps every replica.
        assert_eq!(replica_counts(5, 20, None, true), (1, 5));
        assert_eq!(
            replica_counts(5, 20, Some(&CanaryScale::Replicas(3)), true),
            (3, 5)
        );
        assert_eq!(
            replica_counts(10, 20, Some(&CanaryScale::Weight(50)), true),
            (5, 10)
        );
        assert_eq!(
            replica_counts(10, 30, Some(&CanaryScale::MatchTrafficWeight), true),
            (3, 10)
        );
    }

    #[test]
    fn first_revision_is_stable_at_once() {
        let s = spec(json!([{"setWeight": 20}]), false);
        let st = RolloutStatus::default();
        let mut o = observe(&s, &st, None);
        o.stable_rs = None;
        let p = plan(&o);
        assert_eq!(p.status.stable_rs.as_deref(), Some("new"));
        assert_eq!(p.canary_replicas, 5);
        assert_eq!(p.status.phase.as_deref(), Some("Progressing"));
        let st = p.status.clone();
        let p = plan(&observe(&s, &st, rs(5, 5)));
        assert_eq!(p.status.phase.as_deref(), Some("Healthy"));
    }

    #[test]
    fn a_new_revision_starts_at_step_zero() {
        let s = spec(json!([{"setWeight": 20}]), false);
        let st = RolloutStatus {
            stable_rs: Some("old".into()),
            current_pod_hash: Some("old".into()),
            current_step_index: Some(1),
            ..Default::default()
        };
        let p = plan(&observe(&s, &st, None));
        assert_eq!(p.status.current_step_index, Some(0));
        assert_eq!(p.status.current_pod_hash.as_deref(), Some("new"));
        assert_eq!(p.stable_replicas, 5);
        assert_eq!(p.canary_replicas, 0);
        assert_eq!(p.event.unwrap().reason, "RolloutUpdated");
    }

    #[test]
    fn set_weight_waits_for_the_canary_then_advances() {
        let s = spec(json!([{"setWeight": 20}, {"pause": {}}]), false);
        let st = at_step(0);
        let p = plan(&observe(&s, &st, rs(0, 0)));
        assert_eq!((p.canary_replicas, p.stable_replicas), (1, 4));
        assert_eq!(p.status.current_step_index, Some(0));
        assert!(p.status.message.unwrap().contains("waiting for the canary"));
        let p = plan(&observe(&s, &st, rs(1, 1)));
        assert_eq!(p.status.current_step_index, Some(1));
        assert_eq!(p.traffic_weight, 20);
        assert_eq!(p.status.canary.weights.unwrap().canary.weight, 20);
    }

    #[test]
    fn pause_without_duration_waits_for_a_promote() {
        let s = spec(
            json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]),
            false,
        );
        let st = at_step(1);
        let p = plan(&observe(&s, &st, rs(1, 1)));
        assert_eq!(p.status.phase.as_deref(), Some("Paused"));
        assert!(p.status.controller_pause);
        assert_eq!(p.status.pause_conditions[0].reason, PAUSE_STEP);
        // Still paused later.
        let st = p.status.clone();
        let mut o = observe(&s, &st, rs(1, 1));
        o.now += 3600;
        assert_eq!(plan(&o).status.current_step_index, Some(1));
        // A promote clears the pause conditions and leaves controllerPause: the step is done.
        let mut promoted = st.clone();
        promoted.pause_conditions.clear();
        let p = plan(&observe(&s, &promoted, rs(1, 1)));
        assert_eq!(p.status.current_step_index, Some(2));
        assert!(!p.status.controller_pause);
    }

    #[test]
    fn pause_with_duration_resumes_after_it_from_the_stored_start() {
        let s = spec(json!([{"pause": {"duration": "30s"}}]), false);
        let mut st = at_step(0);
        st.controller_pause = true;
        st.pause_conditions = vec![PauseCondition {
            reason: PAUSE_STEP.into(),
            start_time: format_time(1_000_000 - 10),
        }];
        let p = plan(&observe(&s, &st, rs(0, 0)));
        assert_eq!(p.status.current_step_index, Some(0));
        assert_eq!(p.requeue, Duration::from_secs(20));
        let mut o = observe(&s, &st, rs(0, 0));
        o.now += 20;
        assert_eq!(plan(&o).status.current_step_index, Some(1));
    }

    #[test]
    fn analysis_steps_follow_the_run() {
        let s = spec(
            json!([{"setWeight": 20}, {"analysis": {"templates": [{"templateName": "error-rate"}]}}, {"setWeight": 50}]),
            false,
        );
        let st = at_step(1);
        let run = |phase: &str| AnalysisView {
            name: "web-new-1".into(),
            phase: phase.into(),
            message: "m".into(),
            next_in: Some(Duration::from_secs(5)),
        };
        let mut o = observe(&s, &st, rs(1, 1));
        o.step_analysis = Some(run("Running"));
        let p = plan(&o);
        assert_eq!(p.status.current_step_index, Some(1));
        assert_eq!(p.requeue, Duration::from_secs(5));
        o.step_analysis = Some(run("Successful"));
        assert_eq!(plan(&o).status.current_step_index, Some(2));
        o.step_analysis = Some(run("Inconclusive"));
        let p = plan(&o);
        assert_eq!(p.status.phase.as_deref(), Some("Paused"));
        assert_eq!(p.status.pause_conditions[0].reason, PAUSE_INCONCLUSIVE);
        o.step_analysis = Some(run("Failed"));
        let p = plan(&o);
        assert!(p.status.abort);
        assert_eq!(p.status.phase.as_deref(), Some("Degraded"));
        assert_eq!(p.traffic_weight, 0);
        assert_eq!(p.stable_replicas, 5);
        assert!(p.status.message.unwrap().starts_with("RolloutAborted"));
        assert!(p.event.unwrap().warning);
    }

    #[test]
    fn abort_scales_the_canary_down_after_the_delay() {
        let s = spec(json!([{"setWeight": 20}, {"pause": {}}]), true);
        let mut st = at_step(1);
        st.abort = true;
        let p = plan(&observe(&s, &st, rs(1, 1)));
        assert_eq!(
            p.canary_replicas, 1,
            "the canary stays for abortScaleDownDelaySeconds"
        );
        assert_eq!(p.traffic_weight, 0);
        assert_eq!(p.requeue, Duration::from_secs(30));
        assert!(p.event.is_some());
        let st = p.status.clone();
        let mut o = observe(&s, &st, rs(1, 1));
        o.now += 31;
        let p = plan(&o);
        assert_eq!(p.canary_replicas, 0);
        assert!(p.event.is_none());
        assert_eq!(p.status.phase.as_deref(), Some("Degraded"));
    }

    #[test]
    fn the_end_promotes_once_the_canary_is_full() {
        let s = spec(json!([{"setWeight": 50}]), false);
        let st = at_step(1);
        let p = plan(&observe(&s, &st, rs(3, 3)));
        assert_eq!(p.canary_replicas, 5);
        assert_eq!(p.status.stable_rs.as_deref(), Some("old"));
        let p = plan(&observe(&s, &st, rs(5, 5)));
        assert_eq!(p.status.stable_rs.as_deref(), Some("new"));
        assert_eq!(p.status.phase.as_deref(), Some("Healthy"));
        assert_eq!(p.event.unwrap().reason, "RolloutCompleted");
    }

    #[test]
    fn promote_full_skips_the_remaining_steps() {
        let s = spec(
            json!([{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}]),
            false,
        );
        let mut st = at_step(1);
        st.promote_full = true;
        let p = plan(&observe(&s, &st, rs(1, 1)));
        assert_eq!(p.status.current_step_index, Some(3));
        assert_eq!(p.canary_replicas, 5);
    }

    #[test]
    fn spec_paused_holds_the_rollout() {
        let mut s = spec(json!([{"setWeight": 20}]), false);
        s.paused = true;
        let st = at_step(0);
        let p = plan(&observe(&s, &st, rs(0, 0)));
        assert_eq!(p.status.phase.as_deref(), Some("Paused"));
        assert_eq!(p.status.current_step_index, Some(0));
    }
}
