//! ApplicationSets in the JSON API: `GET /api/v1/applicationsets`,
//! `GET /api/v1/applicationsets/{name}` (with its generated Applications, conditions and a held
//! deletion) and `POST /api/v1/applicationsets/{name}/confirm-deletion` (admins only). The UI's
//! pages ([`crate::ui`]) use the same reads.
//!
//! Access follows the Application rules: an ApplicationSet is visible to whoever may read the
//! project its template names (`spec.template.spec.project`); a templated project
//! (`{{project}}`) may name any project, so only accounts that cover every project see it.
//! Generated Applications are listed only when the caller may read their own project. A
//! confirmation lets the controller delete Applications, so it needs the admin role.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use ferry_appset::types::{
    ApplicationSet, ApplicationSetCondition, CONFIRM_DELETION_ANNOTATION, KIND, condition_reason,
    condition_type,
};
use ferry_core::application::Application;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::api::check_app_name;
use crate::auth::{Principal, Role};
use crate::{ApiError, ServerState};

/// The ApplicationSets of the server's namespace.
fn sets_api(state: &ServerState) -> Api<ApplicationSet> {
    Api::namespaced(state.client.clone(), &state.config.namespace)
}

/// The project an ApplicationSet's template names (possibly templated, possibly empty).
pub(crate) fn template_project(set: &ApplicationSet) -> String {
    set.spec
        .template
        .pointer("/spec/project")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Whether `principal` may see `set` (see the module docs).
pub(crate) fn can_read_set(principal: &Principal, set: &ApplicationSet) -> bool {
    let project = template_project(set);
    if project.contains("{{") || project.is_empty() {
        principal.role == Role::Admin || principal.projects.is_empty()
    } else {
        principal.can_read(&project)
    }
}

/// The generator kinds of a set, in order (`list`, `matrix`, ...).
pub(crate) fn generator_kinds(set: &ApplicationSet) -> Vec<String> {
    set.spec
        .generators
        .iter()
        .filter_map(|g| g.as_object())
        .map(|g| {
            g.keys()
                .find(|k| !matches!(k.as_str(), "selector" | "template" | "values"))
                .cloned()
                .unwrap_or_else(|| "?".into())
        })
        .collect()
}

/// The conditions of a set.
pub(crate) fn conditions(set: &ApplicationSet) -> Vec<ApplicationSetCondition> {
    set.status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default()
}

/// The Applications a held deletion would remove, when the set holds one (the `DeletionHeld`
/// condition lists them after `ferry.dev/confirm-deletion=`).
pub(crate) fn held_deletion(set: &ApplicationSet) -> Option<Vec<String>> {
    let held = set
        .status
        .as_ref()?
        .condition(condition_type::ERROR_OCCURRED)
        .filter(|c| c.status == "True" && c.reason == condition_reason::DELETION_HELD)?;
    let marker = format!("{CONFIRM_DELETION_ANNOTATION}=");
    let (_, apps) = held.message.rsplit_once(&marker)?;
    let apps: Vec<String> = apps
        .trim()
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    (!apps.is_empty()).then_some(apps)
}

/// Reads set `name`: 404 when it does not exist or `principal` may not see it.
pub(crate) async fn get_set(
    state: &ServerState,
    principal: &Principal,
    name: &str,
) -> Result<ApplicationSet, ApiError> {
    check_app_name(name)?;
    sets_api(state)
        .get_opt(name)
        .await
        .map_err(|e| ApiError::kube(&format!("reading ApplicationSet {name}"), &e))?
        .filter(|s| can_read_set(principal, s))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "applicationset_not_found",
                format!(
                    "ApplicationSet {name} not found in namespace {}",
                    state.config.namespace
                ),
            )
        })
}

/// The sets `principal` may see, sorted by name.
pub(crate) async fn readable_sets(
    state: &ServerState,
    principal: &Principal,
) -> Result<Vec<ApplicationSet>, ApiError> {
    let list = sets_api(state)
        .list(&ListParams::default())
        .await
        .map_err(|e| ApiError::kube("listing ApplicationSets", &e))?;
    let mut sets: Vec<ApplicationSet> = list
        .items
        .into_iter()
        .filter(|s| can_read_set(principal, s))
        .collect();
    sets.sort_by(|a, b| a.name().cmp(b.name()));
    Ok(sets)
}

/// Whether `app` is owned by `set` (an ownerReference of kind ApplicationSet with its uid).
fn owned_by(app: &Application, set: &ApplicationSet) -> bool {
    let Some(uid) = set.metadata.uid.as_deref() else {
        return false;
    };
    app.metadata
        .owner_references
        .as_ref()
        .is_some_and(|refs| refs.iter().any(|r| r.kind == KIND && r.uid == uid))
}

/// The Applications each of `sets` generated that `principal` may read, by set (same order).
pub(crate) async fn generated_apps(
    state: &ServerState,
    principal: &Principal,
    sets: &[ApplicationSet],
) -> Result<Vec<Vec<Application>>, ApiError> {
    let list = state
        .apps
        .list(&ListParams::default())
        .await
        .map_err(|e| ApiError::kube("listing applications", &e))?;
    Ok(sets
        .iter()
        .map(|set| {
            let mut apps: Vec<Application> = list
                .items
                .iter()
                .filter(|a| owned_by(a, set) && principal.can_read(&a.spec.project))
                .cloned()
                .collect();
            apps.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
            apps
        })
        .collect())
}

/// Confirms the deletion `set` holds, as `ferry appset confirm` does. Admins only; 409 when
/// nothing is held. Returns the Applications confirmed.
pub(crate) async fn confirm(
    state: &ServerState,
    principal: &Principal,
    name: &str,
) -> Result<Vec<String>, ApiError> {
    let set = get_set(state, principal, name).await?;
    if principal.role != Role::Admin {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "permission_denied",
            format!(
                "account {} (role {}) may not confirm deletions of ApplicationSet {name}: only \
                 admins may, since it lets the controller delete Applications",
                principal.name, principal.role
            ),
        ));
    }
    let apps = held_deletion(&set).ok_or_else(|| {
        ApiError::new(
            StatusCode::CONFLICT,
            "nothing_held",
            format!("ApplicationSet {name} holds no deletion: there is nothing to confirm"),
        )
    })?;
    let patch = json!({"metadata": {"annotations": {CONFIRM_DELETION_ANNOTATION: apps.join(",")}}});
    sets_api(state)
        .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| ApiError::kube(&format!("annotating ApplicationSet {name}"), &e))?;
    tracing::info!(
        applicationset = name,
        user = %principal.name,
        apps = %apps.join(","),
        "held deletion confirmed"
    );
    Ok(apps)
}

/// One generated Application, as listed with its set.
fn app_line(app: &Application) -> Value {
    let status = app.status.clone().unwrap_or_default();
    json!({
        "name": app.metadata.name,
        "project": app.spec.project,
        "syncStatus": status.sync.status,
        "healthStatus": status.health.status,
    })
}

fn summary(set: &ApplicationSet, apps: &[Application]) -> Value {
    json!({
        "name": set.name(),
        "namespace": set.metadata.namespace,
        "project": template_project(set),
        "generators": generator_kinds(set),
        "applications": apps.len(),
        "conditions": conditions(set),
        "heldDeletion": held_deletion(set),
    })
}

/// `GET /api/v1/applicationsets`: the sets the caller may see.
pub async fn list_applicationsets(
    State(state): State<Arc<ServerState>>,
    caller: axum::Extension<Principal>,
) -> Result<Json<Value>, ApiError> {
    let sets = readable_sets(&state, &caller).await?;
    let apps = generated_apps(&state, &caller, &sets).await?;
    let items: Vec<Value> = sets.iter().zip(&apps).map(|(s, a)| summary(s, a)).collect();
    Ok(Json(json!({ "items": items })))
}

/// `GET /api/v1/applicationsets/{name}`: the set as stored (without managed fields), its
/// generated Applications, conditions and held deletion.
pub async fn get_applicationset(
    State(state): State<Arc<ServerState>>,
    caller: axum::Extension<Principal>,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let mut set = get_set(&state, &caller, &name).await?;
    let apps = generated_apps(&state, &caller, std::slice::from_ref(&set))
        .await?
        .pop()
        .unwrap_or_default();
    let held = held_deletion(&set);
    let conds = conditions(&set);
    set.metadata.managed_fields = None;
    Ok(Json(json!({
        "applicationSet": set,
        "applications": apps.iter().map(app_line).collect::<Vec<_>>(),
        "conditions": conds,
        "heldDeletion": held,
    })))
}

/// `POST /api/v1/applicationsets/{name}/confirm-deletion`: lets the held deletion go ahead
/// (admins only); 202 with the Applications confirmed.
pub async fn confirm_deletion(
    State(state): State<Arc<ServerState>>,
    caller: axum::Extension<Principal>,
    Path(name): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let apps = confirm(&state, &caller, &name).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"name": name, "confirmed": apps})),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(project: &str, message: Option<&str>) -> ApplicationSet {
        let mut v = json!({
            "metadata": {"name": "s", "uid": "u1"},
            "spec": {"generators": [{"list": {"elements": []}}, {"matrix": {}, "selector": {}}],
                     "template": {"metadata": {}, "spec": {"project": project}}},
        });
        if let Some(m) = message {
            v["status"] = json!({"conditions": [{"type": "ErrorOccurred", "status": "True", "reason": "DeletionHeld", "message": m}]});
        }
        serde_json::from_value(v).unwrap()
    }

    fn principal(role: Role, projects: &[&str]) -> Principal {
        Principal {
            name: "p".into(),
            role,
            projects: projects.iter().map(|p| p.to_string()).collect(),
            csrf_token: None,
            insecure: false,
        }
    }

    #[test]
    fn sets_are_visible_by_their_template_project() {
        let limited = principal(Role::Sync, &["team-a"]);
        assert!(can_read_set(&limited, &set("team-a", None)));
        assert!(!can_read_set(&limited, &set("team-b", None)));
        assert!(
            !can_read_set(&limited, &set("{{project}}", None)),
            "templated"
        );
        assert!(can_read_set(
            &principal(Role::ReadOnly, &[]),
            &set("{{project}}", None)
        ));
        assert!(can_read_set(
            &principal(Role::Admin, &["x"]),
            &set("{{project}}", None)
        ));
    }

    #[test]
    fn held_deletions_are_read_from_the_condition() {
        let s = set(
            "default",
            Some(
                "ApplicationSet s: deleting 2 of its 2 Applications (a, b) is more than 50% (all of them); nothing was created, updated or deleted. If this is intended, run `ferry appset confirm s` or set annotation ferry.dev/confirm-deletion=a,b",
            ),
        );
        assert_eq!(
            held_deletion(&s),
            Some(vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(held_deletion(&set("default", None)), None);
        assert_eq!(generator_kinds(&s), ["list", "matrix"]);
    }
}
