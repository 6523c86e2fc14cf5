//! What one pass of the controller does to an ApplicationSet's Applications, worked out without
//! touching the cluster: the Applications the template gives ([`desired_application`]), checked
//! (unique names, the set's namespace), compared with those the set owns, filtered by
//! `applicationsSync`, and held when it would delete too many ([`plan_changes`]).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use crate::types::{
    ApplicationSet, ApplicationSetIgnoreDifferences, CONFIRM_DELETION_ANNOTATION,
    DELETION_SHARE_ANNOTATION,
};

/// Annotations of a generated Application that the controller never overwrites (set by people
/// or other controllers), as Argo CD keeps them.
pub const ALWAYS_PRESERVED_ANNOTATIONS: [&str; 3] = [
    ferry_core::application::REFRESH_ANNOTATION,
    "notified.notifications.argoproj.io",
    "argocd.argoproj.io/hydrate",
];

/// The share of a set's Applications (in percent) that one pass may delete without confirmation,
/// unless the controller is configured otherwise.
pub const DEFAULT_MAX_DELETION_PERCENT: u32 = 50;

/// A generated Application that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvalidApplication {
    /// What is wrong and what to do about it.
    pub message: String,
}

/// The Application object that a rendered template (`metadata` + `spec`) gives, owned by `set`
/// and in its namespace. `preserveResourcesOnDeletion` drops the resources finalizer.
pub fn desired_application(
    set: &ApplicationSet,
    rendered: &Value,
) -> Result<Value, InvalidApplication> {
    let bad = |m: String| InvalidApplication { message: m };
    let meta = rendered.get("metadata").cloned().unwrap_or(json!({}));
    let name = meta
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("the template gives no metadata.name".into()))?
        .to_string();
    if !is_dns_subdomain(&name) {
        return Err(bad(format!(
            "generated name {name:?} is not a valid Application name (lower case letters, digits, '-' and '.', at most 253): use normalize or nameNormalized"
        )));
    }
    let namespace = set.metadata.namespace.clone().unwrap_or_default();
    if let Some(ns) = meta.get("namespace").and_then(Value::as_str)
        && !ns.is_empty()
        && ns != namespace
    {
        return Err(bad(format!(
            "Application {name}: metadata.namespace {ns:?} is not the ApplicationSet's namespace {namespace:?}; generated Applications live next to their ApplicationSet"
        )));
    }
    let mut finalizers: Vec<Value> = meta
        .get("finalizers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if set.spec.preserve_resources_on_deletion() {
        finalizers.retain(|f| {
            !f.as_str()
                .is_some_and(|f| f.starts_with(ferry_core::application::RESOURCES_FINALIZER))
        });
    }
    let mut spec = rendered.get("spec").cloned().unwrap_or(json!({}));
    if !spec.is_object() {
        return Err(bad(format!("Application {name}: spec is not an object")));
    }
    if in_a_rollout_step(set, meta.get("labels")) {
        // RollingSync syncs these apps itself, step by step (as Argo CD does).
        if let Some(policy) = spec.get_mut("syncPolicy").and_then(Value::as_object_mut) {
            policy.remove("automated");
        }
    }
    let mut metadata = json!({
        "name": name,
        "namespace": namespace,
        "labels": meta.get("labels").cloned().unwrap_or(json!({})),
        "annotations": meta.get("annotations").cloned().unwrap_or(json!({})),
        "finalizers": finalizers,
        "ownerReferences": [owner_reference(set)],
    });
    for key in ["labels", "annotations"] {
        if metadata[key].as_object().is_some_and(|m| m.is_empty()) {
            metadata.as_object_mut().map(|m| m.remove(key));
        }
    }
    if finalizers_empty(&metadata) {
        metadata.as_object_mut().map(|m| m.remove("finalizers"));
    }
    Ok(json!({
        "apiVersion": ferry_core::application::API_VERSION,
        "kind": "Application",
        "metadata": metadata,
        "spec": spec,
    }))
}

fn finalizers_empty(metadata: &Value) -> bool {
    metadata["finalizers"].as_array().is_some_and(Vec::is_empty)
}

/// Whether labels put an app into a RollingSync step of `set`.
fn in_a_rollout_step(set: &ApplicationSet, labels: Option<&Value>) -> bool {
    let Some(steps) = set.spec.rolling_sync_steps() else {
        return false;
    };
    let labels = labels_of(labels);
    crate::rollout::step_of(steps, &labels).is_some()
}

/// A labels object as a map of strings.
pub fn labels_of(labels: Option<&Value>) -> BTreeMap<String, String> {
    labels
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// The ownerReference that marks an Application as generated by `set`.
pub fn owner_reference(set: &ApplicationSet) -> Value {
    json!({
        "apiVersion": ferry_core::application::API_VERSION,
        "kind": crate::types::KIND,
        "name": set.name(),
        "uid": set.metadata.uid.clone().unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// Whether `app` (JSON) is owned by the ApplicationSet with `uid`.
pub fn is_owned_by(app: &Value, uid: &str) -> bool {
    app.pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .is_some_and(|refs| {
            refs.iter().any(|r| {
                r["kind"] == crate::types::KIND && r["uid"].as_str() == Some(uid) && !uid.is_empty()
            })
        })
}

fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric())
}

/// The names given twice among `desired` (each once), sorted.
pub fn duplicate_names(desired: &[Value]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut dups = BTreeSet::new();
    for app in desired {
        let name = app["metadata"]["name"].as_str().unwrap_or_default();
        if !seen.insert(name) {
            dups.insert(name.to_string());
        }
    }
    dups.into_iter().collect()
}

/// What a pass would do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Plan {
    /// Applications to create (full objects).
    pub create: Vec<Value>,
    /// Applications to replace: the live object with the set's fields as the template says.
    pub update: Vec<Value>,
    /// Names of owned Applications the template no longer gives, to delete.
    pub delete: Vec<String>,
    /// Names of owned Applications that already match.
    pub unchanged: Vec<String>,
    /// Changes `applicationsSync` does not allow (kept for the status message).
    pub skipped_by_policy: Vec<String>,
    /// Deletions held back until confirmed; when set, nothing of the plan is applied.
    pub held: Option<Hold>,
    /// The confirmation annotation matched the deletions: remove it after applying.
    pub confirmed: bool,
}

impl Plan {
    /// Whether the pass changes nothing.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.update.is_empty() && self.delete.is_empty()
    }
}

/// A deletion held back (ferry's fail-closed rule).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    /// The Applications that would go, sorted.
    pub apps: Vec<String>,
    /// How many the set owns now.
    pub owned: usize,
    /// The share allowed, in percent.
    pub max_percent: u32,
}

impl Hold {
    /// The value of [`CONFIRM_DELETION_ANNOTATION`] that confirms exactly this deletion.
    pub fn confirmation(&self) -> String {
        self.apps.join(",")
    }

    /// The condition message.
    pub fn message(&self, set: &str) -> String {
        format!(
            "ApplicationSet {set}: deleting {} of its {} Applications ({}) is more than {}% {}; nothing was created, updated or deleted. If this is intended, run `ferry appset confirm {set}` or set annotation {CONFIRM_DELETION_ANNOTATION}={}",
            self.apps.len(),
            self.owned,
            self.apps.join(", "),
            self.max_percent,
            if self.apps.len() == self.owned {
                "(all of them)"
            } else {
                "at once"
            },
            self.confirmation()
        )
    }
}

/// Whether deleting `deleting` of `owned` Applications must be confirmed: all of them, or more
/// than `max_percent` percent.
pub fn deletion_needs_confirmation(deleting: usize, owned: usize, max_percent: u32) -> bool {
    deleting > 0 && (deleting >= owned || deleting * 100 > owned * max_percent as usize)
}

/// The share a set may delete at once: its own annotation, else the controller's setting.
pub fn max_deletion_percent(set: &ApplicationSet, configured: u32) -> u32 {
    set.annotation(DELETION_SHARE_ANNOTATION)
        .and_then(|v| v.trim().trim_end_matches('%').parse::<u32>().ok())
        .map(|p| p.min(100))
        .unwrap_or(configured)
}

/// Compares the `desired` Applications with the `owned` ones (live JSON) and decides what to
/// do, under `applicationsSync`, `ignoreApplicationDifferences`, `preservedFields` and the
/// deletion hold. `max_percent` is the share of owned apps a pass may delete unconfirmed.
pub fn plan_changes(
    set: &ApplicationSet,
    desired: &[Value],
    owned: &[Value],
    max_percent: u32,
) -> Plan {
    let policy = set.spec.applications_sync();
    let mut plan = Plan::default();
    let live: BTreeMap<&str, &Value> = owned
        .iter()
        .map(|a| (a["metadata"]["name"].as_str().unwrap_or_default(), a))
        .collect();
    let wanted: BTreeSet<&str> = desired
        .iter()
        .map(|a| a["metadata"]["name"].as_str().unwrap_or_default())
        .collect();
    for want in desired {
        let name = want["metadata"]["name"].as_str().unwrap_or_default();
        match live.get(name) {
            None => plan.create.push(want.clone()),
            Some(current) => {
                let updated = updated_application(set, current, want);
                if &&updated == current || owned_fields(&updated) == owned_fields(current) {
                    plan.unchanged.push(name.to_string());
                } else if policy.allows_update() {
                    plan.update.push(updated);
                } else {
                    plan.skipped_by_policy.push(format!("update {name}"));
                }
            }
        }
    }
    for name in live.keys() {
        if !wanted.contains(name) {
            if policy.allows_delete() {
                plan.delete.push((*name).to_string());
            } else {
                plan.skipped_by_policy.push(format!("delete {name}"));
            }
        }
    }
    let max = max_deletion_percent(set, max_percent);
    if deletion_needs_confirmation(plan.delete.len(), live.len(), max) {
        let hold = Hold {
            apps: plan.delete.clone(),
            owned: live.len(),
            max_percent: max,
        };
        if set.annotation(CONFIRM_DELETION_ANNOTATION) == Some(hold.confirmation().as_str()) {
            plan.confirmed = true;
        } else {
            plan.held = Some(hold);
        }
    }
    plan
}

/// The fields a set manages on its Applications.
fn owned_fields(app: &Value) -> Value {
    json!({
        "labels": app.pointer("/metadata/labels").cloned().unwrap_or(json!({})),
        "annotations": app.pointer("/metadata/annotations").cloned().unwrap_or(json!({})),
        "finalizers": app.pointer("/metadata/finalizers").cloned().unwrap_or(json!([])),
        "ownerReferences": app.pointer("/metadata/ownerReferences").cloned().unwrap_or(json!([])),
        "spec": app.get("spec").cloned().unwrap_or(json!({})),
    })
}

/// `current` (live) with the set's fields from `want`, keeping what the set leaves alone:
/// preserved annotations and labels, and the fields `ignoreApplicationDifferences` names.
pub fn updated_application(set: &ApplicationSet, current: &Value, want: &Value) -> Value {
    let mut out = current.clone();
    let mut want = want.clone();
    // Preserved annotations and labels: the live value wins.
    let preserved = set.spec.preserved_fields.clone().unwrap_or_default();
    for (key, names) in [
        (
            "annotations",
            ALWAYS_PRESERVED_ANNOTATIONS
                .iter()
                .map(|s| (*s).to_string())
                .chain(preserved.annotations.iter().cloned())
                .collect::<Vec<_>>(),
        ),
        ("labels", preserved.labels.clone()),
    ] {
        for name in names {
            if let Some(v) = current["metadata"][key].get(&name).cloned() {
                if !want["metadata"][key].is_object() {
                    want["metadata"][key] = json!({});
                }
                want["metadata"][key][&name] = v;
            }
        }
    }
    let name = want["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for rule in &set.spec.ignore_application_differences {
        if rule.name.as_deref().is_some_and(|n| n != name) {
            continue;
        }
        for pointer in ignored_pointers(rule) {
            keep_live_value(&mut want, current, &pointer);
        }
    }
    for key in ["labels", "annotations", "finalizers", "ownerReferences"] {
        match want["metadata"].get(key) {
            Some(v) => out["metadata"][key] = v.clone(),
            None => {
                out["metadata"].as_object_mut().map(|m| m.remove(key));
            }
        }
    }
    out["spec"] = want["spec"].clone();
    out
}

/// The JSON pointers of an ignore rule: `jsonPointers` as they are and the simple jq paths
/// (`.spec.source.targetRevision`, `.metadata.labels["a/b"]`) turned into pointers.
fn ignored_pointers(rule: &ApplicationSetIgnoreDifferences) -> Vec<String> {
    let mut out = rule.json_pointers.clone();
    for jq in &rule.jq_path_expressions {
        if let Some(p) = jq_path_to_pointer(jq) {
            out.push(p);
        } else {
            tracing::warn!(expression = %jq, "ignoreApplicationDifferences: only plain jq paths (.a.b, .a[\"b\"]) are read; this one is skipped");
        }
    }
    out
}

/// `.a.b["c/d"]` → `/a/b/c~1d`; `None` for anything else.
fn jq_path_to_pointer(jq: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = jq.trim();
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix("[\"") {
            let end = r.find("\"]")?;
            out.push('/');
            out.push_str(&r[..end].replace('~', "~0").replace('/', "~1"));
            rest = &r[end + 2..];
        } else if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let seg = &r[..end];
            if seg.is_empty() && !r.starts_with('[') {
                return None;
            }
            if !seg.is_empty() {
                if !seg
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
                {
                    return None;
                }
                out.push('/');
                out.push_str(seg);
            }
            rest = &r[end..];
        } else {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Sets `pointer` of `want` to its value in `live` (or removes it when live has none).
fn keep_live_value(want: &mut Value, live: &Value, pointer: &str) {
    let live_value = live.pointer(pointer).cloned();
    let (parent_ptr, key) = match pointer.rsplit_once('/') {
        Some(pair) => pair,
        None => return,
    };
    let key = key.replace("~1", "/").replace("~0", "~");
    match live_value {
        Some(v) => {
            // Create the parents as objects where the desired side lacks them.
            let mut node = &mut *want;
            for seg in parent_ptr.split('/').skip(1) {
                let seg = seg.replace("~1", "/").replace("~0", "~");
                if !node.is_object() {
                    return;
                }
                node = node
                    .as_object_mut()
                    .expect("checked above")
                    .entry(seg)
                    .or_insert_with(|| json!({}));
            }
            if let Some(obj) = node.as_object_mut() {
                obj.insert(key, v);
            }
        }
        None => {
            if let Some(obj) = want.pointer_mut(parent_ptr).and_then(Value::as_object_mut) {
                obj.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(spec: Value) -> ApplicationSet {
        serde_json::from_value(json!({
            "metadata": {"name": "guestbook", "namespace": "ferry", "uid": "u-1"},
            "spec": spec
        }))
        .unwrap()
    }

    fn rendered(name: &str, path: &str) -> Value {
        json!({
            "metadata": {"name": name, "finalizers": ["resources-finalizer.argocd.argoproj.io"]},
            "spec": {"project": "default", "source": {"repoURL": "r", "path": path},
                     "syncPolicy": {"automated": {"prune": true}}}
        })
    }

    fn apps(s: &ApplicationSet, names: &[&str]) -> Vec<Value> {
        names
            .iter()
            .map(|n| desired_application(s, &rendered(n, n)).unwrap())
            .collect()
    }

    #[test]
    fn generated_apps_are_owned_and_in_the_sets_namespace() {
        let s = set(json!({}));
        let app = desired_application(&s, &rendered("web", "apps/web")).unwrap();
        assert_eq!(app["metadata"]["namespace"], "ferry");
        assert!(is_owned_by(&app, "u-1"));
        assert!(!is_owned_by(&app, "other"));
        assert_eq!(
            app["metadata"]["finalizers"],
            json!(["resources-finalizer.argocd.argoproj.io"])
        );
        let keep = set(json!({"syncPolicy": {"preserveResourcesOnDeletion": true}}));
        let app = desired_application(&keep, &rendered("web", "apps/web")).unwrap();
        assert!(app["metadata"].get("finalizers").is_none(), "{app}");
        let e = desired_application(
            &s,
            &json!({"metadata": {"name": "web", "namespace": "other"}, "spec": {}}),
        )
        .unwrap_err();
        assert!(
            e.message.contains("not the ApplicationSet's namespace"),
            "{e}"
        );
        let e = desired_application(&s, &json!({"metadata": {"name": "Web_1"}, "spec": {}}))
            .unwrap_err();
        assert!(e.message.contains("not a valid Application name"), "{e}");
    }

    #[test]
    fn duplicates_are_found() {
        let s = set(json!({}));
        let d = apps(&s, &["a", "b", "a"]);
        assert_eq!(duplicate_names(&d), ["a"]);
    }

    #[test]
    fn each_policy_allows_its_changes() {
        let changed = |s: &ApplicationSet| {
            let mut live = apps(s, &["keep", "change", "gone"]);
            live[1]["spec"]["source"]["path"] = json!("old");
            let want = apps(s, &["keep", "change", "new"]);
            plan_changes(s, &want, &live, 100)
        };
        let p = changed(&set(json!({})));
        assert_eq!(p.create.len(), 1);
        assert_eq!(p.update.len(), 1);
        assert_eq!(p.delete, ["gone"]);
        assert_eq!(p.unchanged, ["keep"]);
        let p = changed(&set(
            json!({"syncPolicy": {"applicationsSync": "create-only"}}),
        ));
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (1, 0, 0));
        assert_eq!(p.skipped_by_policy, ["update change", "delete gone"]);
        let p = changed(&set(
            json!({"syncPolicy": {"applicationsSync": "create-update"}}),
        ));
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (1, 1, 0));
        let p = changed(&set(
            json!({"syncPolicy": {"applicationsSync": "create-delete"}}),
        ));
        assert_eq!((p.create.len(), p.update.len(), p.delete.len()), (1, 0, 1));
    }

    #[test]
    fn mass_deletions_are_held_until_confirmed_for_exactly_that_set() {
        let s = set(json!({}));
        let live = apps(&s, &["a", "b", "c", "d"]);
        // Two of four is 50 %: allowed at the default share.
        let p = plan_changes(&s, &apps(&s, &["a", "b"]), &live, 50);
        assert!(p.held.is_none());
        assert_eq!(p.delete, ["c", "d"]);
        // Three of four: held, nothing applied.
        let p = plan_changes(&s, &apps(&s, &["a"]), &live, 50);
        let hold = p.held.clone().unwrap();
        assert_eq!(hold.apps, ["b", "c", "d"]);
        assert!(
            hold.message("guestbook").contains("b, c, d"),
            "{}",
            hold.message("guestbook")
        );
        // All of them (an empty result): held whatever the share.
        let p = plan_changes(&s, &[], &live, 100);
        assert_eq!(p.held.unwrap().apps.len(), 4);
        // Confirmed for exactly that set.
        let mut confirmed = s.clone();
        confirmed.metadata.annotations =
            Some([(CONFIRM_DELETION_ANNOTATION.to_string(), "b,c,d".to_string())].into());
        let p = plan_changes(&confirmed, &apps(&s, &["a"]), &live, 50);
        assert!(p.held.is_none() && p.confirmed);
        // A confirmation of another set does not count.
        let p = plan_changes(&confirmed, &apps(&s, &["b"]), &live, 50);
        assert!(p.held.is_some());
        // The set's own share.
        let mut lenient = s.clone();
        lenient.metadata.annotations =
            Some([(DELETION_SHARE_ANNOTATION.to_string(), "80".to_string())].into());
        assert!(
            plan_changes(&lenient, &apps(&s, &["a"]), &live, 50)
                .held
                .is_none()
        );
    }

    #[test]
    fn decision_rule() {
        assert!(!deletion_needs_confirmation(0, 0, 50));
        assert!(!deletion_needs_confirmation(0, 4, 50));
        assert!(deletion_needs_confirmation(1, 1, 100), "all of them");
        assert!(!deletion_needs_confirmation(1, 2, 50));
        assert!(deletion_needs_confirmation(2, 3, 50));
    }

    #[test]
    fn ignored_differences_and_preserved_fields_keep_live_values() {
        let s = set(json!({
            "ignoreApplicationDifferences": [{"jsonPointers": ["/spec/source/targetRevision"]},
                                             {"name": "web", "jqPathExpressions": [".spec.source.helm"]}],
            "preservedFields": {"labels": ["team"]}
        }));
        let want = desired_application(&s, &rendered("web", "apps/web")).unwrap();
        let mut live = want.clone();
        live["spec"]["source"]["targetRevision"] = json!("hotfix");
        live["spec"]["source"]["helm"] = json!({"valueFiles": ["x"]});
        live["metadata"]["labels"] = json!({"team": "a"});
        live["metadata"]["annotations"] = json!({"argocd.argoproj.io/refresh": "hard"});
        live["status"] = json!({"sync": {"status": "Synced"}});
        let p = plan_changes(
            &s,
            std::slice::from_ref(&want),
            std::slice::from_ref(&live),
            50,
        );
        assert_eq!(p.unchanged, ["web"], "{p:?}");
        // A real change keeps the ignored and preserved values and the status.
        let mut want2 = want.clone();
        want2["spec"]["source"]["path"] = json!("apps/web2");
        let p = plan_changes(&s, &[want2], &[live], 50);
        let up = &p.update[0];
        assert_eq!(up["spec"]["source"]["path"], "apps/web2");
        assert_eq!(up["spec"]["source"]["targetRevision"], "hotfix");
        assert_eq!(up["spec"]["source"]["helm"]["valueFiles"], json!(["x"]));
        assert_eq!(up["metadata"]["labels"]["team"], "a");
        assert_eq!(
            up["metadata"]["annotations"]["argocd.argoproj.io/refresh"],
            "hard"
        );
        assert_eq!(up["status"]["sync"]["status"], "Synced");
    }

    #[test]
    fn jq_paths_become_pointers() {
        assert_eq!(
            jq_path_to_pointer(".spec.source.targetRevision").as_deref(),
            Some("/spec/source/targetRevision")
        );
        assert_eq!(
            jq_path_to_pointer(".metadata.labels[\"a/b\"]").as_deref(),
            Some("/metadata/labels/a~1b")
        );
        assert_eq!(jq_path_to_pointer(".spec.sources[] | .x"), None);
    }
}
