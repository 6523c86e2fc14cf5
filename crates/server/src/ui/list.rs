//! `GET /`: the application list, filtered by query parameters.

use std::collections::BTreeSet;
use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use ferry_core::application::Application;
use kube::api::ListParams;
use serde::Deserialize;

use super::{Chrome, UiError, health_class, render, respond, short_revision, sync_class};
use crate::ServerState;
use crate::auth::Principal;

/// The sync statuses a filter may ask for.
const SYNC_CHOICES: [&str; 3] = ["Synced", "OutOfSync", "Unknown"];
/// The health statuses a filter may ask for.
const HEALTH_CHOICES: [&str; 6] = [
    "Healthy",
    "Progressing",
    "Degraded",
    "Suspended",
    "Missing",
    "Unknown",
];

/// `?name=&project=&sync=&health=`: empty or absent parameters do not filter.
#[derive(Debug, Default, Clone, Deserialize)]
pub(crate) struct ListFilter {
    /// A part of the app's name (case-insensitive).
    #[serde(default)]
    pub(crate) name: String,
    /// The app's project, exactly.
    #[serde(default)]
    pub(crate) project: String,
    /// The sync status, exactly.
    #[serde(default)]
    pub(crate) sync: String,
    /// The health status, exactly.
    #[serde(default)]
    pub(crate) health: String,
}

impl ListFilter {
    /// Whether `row` passes the filter.
    pub(crate) fn matches(&self, row: &AppRow) -> bool {
        let name = self.name.trim().to_lowercase();
        (name.is_empty() || row.name.to_lowercase().contains(&name))
            && (self.project.is_empty() || row.project == self.project)
            && (self.sync.is_empty() || row.sync == self.sync)
            && (self.health.is_empty() || row.health == self.health)
    }

    fn is_active(&self) -> bool {
        !(self.name.trim().is_empty()
            && self.project.is_empty()
            && self.sync.is_empty()
            && self.health.is_empty())
    }
}

/// One line of the list.
#[derive(Debug, Clone)]
pub(crate) struct AppRow {
    pub(crate) name: String,
    pub(crate) project: String,
    pub(crate) repo: String,
    pub(crate) path: String,
    pub(crate) target_revision: String,
    /// The revision last compared with (short SHA).
    pub(crate) revision: String,
    pub(crate) sync: String,
    pub(crate) health: String,
    /// When the last operation finished (RFC 3339), or empty.
    pub(crate) last_sync: String,
    /// The last operation's phase, or empty.
    pub(crate) operation: String,
}

impl AppRow {
    pub(crate) fn of(app: &Application) -> AppRow {
        let status = app.status.clone().unwrap_or_default();
        let sources = app.spec.effective_sources();
        let first = sources.first();
        let op = status.operation_state.as_ref();
        let last_sync = op
            .and_then(|o| o.finished_at.clone())
            .or_else(|| status.history.last().and_then(|h| h.deployed_at.clone()))
            .unwrap_or_default();
        AppRow {
            name: app.metadata.name.clone().unwrap_or_default(),
            project: app.spec.project.clone(),
            repo: first.map(|s| s.repo_url.clone()).unwrap_or_default(),
            path: first
                .and_then(|s| s.path.clone().or_else(|| s.chart.clone()))
                .unwrap_or_default(),
            target_revision: first
                .map(|s| s.target_revision_or_head().to_string())
                .unwrap_or_default(),
            revision: status
                .sync
                .revision
                .as_deref()
                .map(short_revision)
                .unwrap_or_default(),
            sync: format!("{:?}", status.sync.status),
            health: format!("{:?}", status.health.status),
            last_sync,
            operation: if app.operation.is_some() {
                "Pending".into()
            } else {
                op.map(|o| format!("{:?}", o.phase)).unwrap_or_default()
            },
        }
    }

    pub(crate) fn sync_class(&self) -> &'static str {
        sync_class(&self.sync)
    }

    pub(crate) fn health_class(&self) -> &'static str {
        health_class(&self.health)
    }
}

/// An `<option>` of a filter's `<select>`.
#[derive(Debug)]
pub(crate) struct Choice {
    value: String,
    selected: bool,
}

fn choices<'a>(values: impl IntoIterator<Item = &'a str>, current: &str) -> Vec<Choice> {
    values
        .into_iter()
        .map(|v| Choice {
            value: v.to_string(),
            selected: v == current,
        })
        .collect()
}

#[derive(Template)]
#[template(path = "list.html")]
struct ListPage {
    chrome: Chrome,
    rows: Vec<AppRow>,
    total: usize,
    filter: ListFilter,
    filtered: bool,
    projects: Vec<Choice>,
    syncs: Vec<Choice>,
    healths: Vec<Choice>,
}

/// `GET /[?name=&project=&sync=&health=]`.
pub(crate) async fn list_page(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    query: Result<Query<ListFilter>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let chrome = Chrome::new("Applications", &principal);
    let result = async {
        let Query(filter) = query.map_err(|e| {
            UiError::new(StatusCode::BAD_REQUEST, format!("reading the filter: {e}"))
        })?;
        let list = state
            .apps
            .list(&ListParams::default())
            .await
            .map_err(|e| UiError::from(crate::ApiError::kube("listing applications", &e)))?;
        let mut visible: Vec<AppRow> = list
            .items
            .iter()
            .filter(|a| principal.can_read(&a.spec.project))
            .map(AppRow::of)
            .collect();
        visible.sort_by(|a, b| a.name.cmp(&b.name));
        let projects: BTreeSet<&str> = visible.iter().map(|r| r.project.as_str()).collect();
        let page = ListPage {
            chrome: chrome.clone(),
            total: visible.len(),
            projects: choices(projects, &filter.project),
            syncs: choices(SYNC_CHOICES, &filter.sync),
            healths: choices(HEALTH_CHOICES, &filter.health),
            filtered: filter.is_active(),
            rows: visible
                .iter()
                .filter(|r| filter.matches(r))
                .cloned()
                .collect(),
            filter,
        };
        Ok(render(&page))
    }
    .await;
    respond(result, chrome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, project: &str, sync: &str, health: &str) -> AppRow {
        AppRow {
            name: name.into(),
            project: project.into(),
            repo: String::new(),
            path: String::new(),
            target_revision: String::new(),
            revision: String::new(),
            sync: sync.into(),
            health: health.into(),
            last_sync: String::new(),
            operation: String::new(),
        }
    }

    fn filter(name: &str, project: &str, sync: &str, health: &str) -> ListFilter {
        ListFilter {
            name: name.into(),
            project: project.into(),
            sync: sync.into(),
            health: health.into(),
        }
    }

    #[test]
    fn empty_filter_matches_everything() {
        let f = ListFilter::default();
        assert!(!f.is_active());
        assert!(f.matches(&row("web", "default", "Synced", "Healthy")));
    }

    #[test]
    fn each_parameter_filters() {
        let web = row("podinfo-web", "team-a", "OutOfSync", "Healthy");
        assert!(filter("POD", "", "", "").matches(&web));
        assert!(!filter("api", "", "", "").matches(&web));
        assert!(filter("", "team-a", "", "").matches(&web));
        assert!(
            !filter("", "team", "", "").matches(&web),
            "projects match exactly"
        );
        assert!(filter("", "", "OutOfSync", "").matches(&web));
        assert!(!filter("", "", "Synced", "").matches(&web));
        assert!(filter("", "", "", "Healthy").matches(&web));
        assert!(!filter("", "", "", "Degraded").matches(&web));
        assert!(filter("web", "team-a", "OutOfSync", "Healthy").matches(&web));
        assert!(!filter("web", "team-a", "OutOfSync", "Missing").matches(&web));
    }

    #[test]
    fn filter_from_query_string() {
        let f: ListFilter =
            serde_json::from_value(serde_json::json!({"name": "pod", "sync": "OutOfSync"}))
                .unwrap();
        assert!(f.is_active());
        assert_eq!(f.project, "");
        let chosen = choices(SYNC_CHOICES, &f.sync);
        assert_eq!(
            chosen
                .iter()
                .filter(|c| c.selected)
                .map(|c| c.value.as_str())
                .collect::<Vec<_>>(),
            ["OutOfSync"]
        );
    }
}
