//! `GET /applicationsets`, `GET /applicationsets/{name}` and the held-deletion confirmation
//! `POST /applicationsets/{name}/confirm` (admins only, form with `_csrf`). The reads and the
//! rules are the API's ([`crate::appsets`]).

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use ferry_appset::types::ApplicationSetCondition;
use serde::Deserialize;

use super::list::AppRow;
use super::{Chrome, UiError, encode_component, render, respond};
use crate::ServerState;
use crate::appsets::{
    conditions, confirm, generated_apps, generator_kinds, get_set, held_deletion, readable_sets,
    template_project,
};
use crate::auth::{Principal, Role};

/// One line of the ApplicationSet list.
#[derive(Debug, Clone)]
pub(crate) struct SetRow {
    pub(crate) name: String,
    pub(crate) project: String,
    pub(crate) generators: String,
    pub(crate) apps: usize,
    /// The `ErrorOccurred` message when it is true, else empty.
    pub(crate) error: String,
    /// How many Applications a held deletion would remove (0: none held).
    pub(crate) held: usize,
}

/// A condition as shown.
#[derive(Debug, Clone)]
pub(crate) struct ConditionRow {
    pub(crate) type_: String,
    pub(crate) status: String,
    pub(crate) reason: String,
    pub(crate) message: String,
    pub(crate) time: String,
}

impl ConditionRow {
    fn of(c: &ApplicationSetCondition) -> Self {
        ConditionRow {
            type_: c.type_.clone(),
            status: c.status.clone(),
            reason: c.reason.clone(),
            message: c.message.clone(),
            time: c.last_transition_time.clone().unwrap_or_default(),
        }
    }

    /// Whether the condition reports a problem (`ErrorOccurred: True`).
    pub(crate) fn is_error(&self) -> bool {
        self.type_ == "ErrorOccurred" && self.status == "True"
    }
}

#[derive(Template)]
#[template(path = "appsets.html")]
struct SetsPage {
    chrome: Chrome,
    rows: Vec<SetRow>,
}

#[derive(Template)]
#[template(path = "appset.html")]
struct SetPage {
    chrome: Chrome,
    name: String,
    project: String,
    generators: String,
    conditions: Vec<ConditionRow>,
    apps: Vec<AppRow>,
    held: Vec<String>,
    can_confirm: bool,
    done: String,
}

/// `GET /applicationsets`.
pub(crate) async fn list_page(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
) -> Response {
    let chrome = Chrome::new("ApplicationSets", &principal);
    let result = async {
        let sets = readable_sets(&state, &principal).await?;
        let apps = generated_apps(&state, &principal, &sets).await?;
        let rows = sets
            .iter()
            .zip(&apps)
            .map(|(s, a)| SetRow {
                name: s.name().to_string(),
                project: template_project(s),
                generators: generator_kinds(s).join(", "),
                apps: a.len(),
                error: conditions(s)
                    .iter()
                    .find(|c| c.type_ == "ErrorOccurred" && c.status == "True")
                    .map(|c| c.message.clone())
                    .unwrap_or_default(),
                held: held_deletion(s).map(|h| h.len()).unwrap_or(0),
            })
            .collect();
        Ok::<_, UiError>(render(&SetsPage {
            chrome: chrome.clone(),
            rows,
        }))
    }
    .await;
    respond(result, chrome)
}

/// `?done=confirm` after the confirmation.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct DoneQuery {
    #[serde(default)]
    done: String,
}

/// `GET /applicationsets/{name}`.
pub(crate) async fn set_page(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    query: Result<Query<DoneQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let chrome = Chrome::new(format!("ApplicationSet {name}"), &principal);
    let result = async {
        let set = get_set(&state, &principal, &name).await?;
        let apps = generated_apps(&state, &principal, std::slice::from_ref(&set))
            .await?
            .pop()
            .unwrap_or_default();
        Ok::<_, UiError>(render(&SetPage {
            chrome: chrome.clone(),
            name: set.name().to_string(),
            project: template_project(&set),
            generators: generator_kinds(&set).join(", "),
            conditions: conditions(&set).iter().map(ConditionRow::of).collect(),
            apps: apps.iter().map(AppRow::of).collect(),
            held: held_deletion(&set).unwrap_or_default(),
            can_confirm: principal.role == Role::Admin,
            done: query
                .ok()
                .map(|Query(q)| q.done)
                .filter(|d| d == "confirm")
                .unwrap_or_default(),
        }))
    }
    .await;
    respond(result, chrome)
}

/// `POST /applicationsets/{name}/confirm` (form: `_csrf`): confirms the held deletion, then
/// back to the set's page.
pub(crate) async fn confirm_form(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    let chrome = Chrome::new(format!("ApplicationSet {name}: confirm"), &principal);
    let result = async {
        confirm(&state, &principal, &name).await?;
        Ok::<_, UiError>(
            (
                StatusCode::SEE_OTHER,
                [(
                    LOCATION,
                    format!("/applicationsets/{}?done=confirm", encode_component(&name)),
                )],
            )
                .into_response(),
        )
    }
    .await;
    respond(result, chrome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_set_page_shows_the_confirm_button_only_to_admins_when_held() {
        let chrome = Chrome {
            title: "t".into(),
            user: None,
            csrf: "tok".into(),
            insecure: false,
        };
        let page = |held: Vec<String>, can_confirm: bool| {
            SetPage {
                chrome: chrome.clone(),
                name: "s".into(),
                project: "default".into(),
                generators: "list".into(),
                conditions: vec![],
                apps: vec![],
                held,
                can_confirm,
                done: String::new(),
            }
            .render()
            .unwrap()
        };
        let admin = page(vec!["a".into(), "b".into()], true);
        assert!(admin.contains("id=\"confirm-button\""), "{admin}");
        assert!(admin.contains("name=\"_csrf\" value=\"tok\""), "{admin}");
        assert!(admin.contains("data-held=\"a\"") && admin.contains("data-held=\"b\""));
        let viewer = page(vec!["a".into()], false);
        assert!(!viewer.contains("id=\"confirm-button\""));
        assert!(viewer.contains("data-held=\"a\""));
        assert!(!page(vec![], true).contains("id=\"held\""));
    }
}
