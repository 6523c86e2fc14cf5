//! One application's pages: `GET /applications/{name}` (status, tree, history, actions), its
//! resources' manifests, its diff, and the HTML form posts of the actions.

use std::sync::Arc;

use askama::Template;
use axum::Extension;
use axum::extract::{Form, Path, Query, State};
use axum::http::StatusCode;
use axum::http::header::LOCATION;
use axum::response::{IntoResponse, Response};
use ferry_cluster::{ClusterClient, ObjectRef};
use ferry_controller::operations::{self, RefreshType, SyncParams};
use ferry_core::application::Application;
use serde::Deserialize;
use serde_json::{Value, json};
use similar::{ChangeTag, TextDiff};

use super::links::commit_url;
use super::tree::{NodeKey, TreeNode, build_tree, live_objects};
use super::{
    Chrome, UiError, encode_component, health_class, render, respond, short_revision, sync_class,
};
use crate::auth::Principal;
use crate::{ApiError, ServerState};

/// Reads app `name` if `principal` may read it; 404 otherwise (whether it exists or not).
pub(crate) async fn readable_app(
    state: &ServerState,
    principal: &Principal,
    name: &str,
) -> Result<Application, UiError> {
    crate::api::check_app_name(name).map_err(UiError::from)?;
    let app = state.apps.get_opt(name).await.map_err(|e| {
        UiError::from(crate::ApiError::kube(
            &format!("reading application {name}"),
            &e,
        ))
    })?;
    match app {
        Some(app) if principal.can_read(&app.spec.project) => Ok(app),
        _ => Err(UiError::new(
            StatusCode::NOT_FOUND,
            format!(
                "application {name} not found in namespace {}",
                state.config.namespace
            ),
        )),
    }
}

/// The cluster holding `app`'s resources.
async fn destination(state: &ServerState, app: &Application) -> Result<ClusterClient, UiError> {
    let d = &app.spec.destination;
    state
        .ui
        .destinations
        .resolve(d.server.as_deref(), d.name.as_deref())
        .await
        .map_err(|e| {
            UiError::new(
                StatusCode::BAD_GATEWAY,
                format!("connecting to the destination cluster of the application: {e}"),
            )
        })
}

/// The tree of `app`, with the live objects below its workloads when the destination can be
/// reached (and without them, with a note, when it cannot).
async fn app_tree(state: &ServerState, app: &Application) -> (TreeNode, Option<String>) {
    match destination(state, app).await {
        Ok(cluster) => {
            let live = live_objects(&cluster, app).await;
            (build_tree(app, &state.config.namespace, &live), None)
        }
        Err(e) => (
            build_tree(app, &state.config.namespace, &[]),
            Some(e.message),
        ),
    }
}

struct OperationView {
    phase: String,
    phase_class: &'static str,
    message: String,
    started_at: String,
    finished_at: String,
    initiated_by: String,
}

struct ConditionView {
    type_: String,
    message: String,
    time: String,
    error: bool,
}

struct HistoryRow {
    id: i64,
    revision: String,
    revision_full: String,
    link: String,
    author: String,
    subject: String,
    commit_date: String,
    deployed_at: String,
    initiated_by: String,
}

#[derive(Template)]
#[template(path = "app.html")]
struct AppPage {
    chrome: Chrome,
    name: String,
    name_url: String,
    project: String,
    repo: String,
    path: String,
    target_revision: String,
    destination: String,
    sync: String,
    health: String,
    health_message: String,
    revision: String,
    revision_full: String,
    revision_link: String,
    automated: bool,
    pending: bool,
    operation: Option<OperationView>,
    conditions: Vec<ConditionView>,
    /// The project's sync windows that apply to the app, each with its state.
    sync_windows: Vec<String>,
    /// Why an automated sync may not run now (empty when it may).
    sync_window_block: String,
    history: Vec<HistoryRow>,
    tree_html: String,
    tree_note: Option<String>,
    can_sync: bool,
    /// What the last form post asked for (after its redirect back here).
    notice: String,
    /// The state the script compares events with (`sync|health|operation|revision|lastSync`,
    /// as in [`super::AppEvent`]): a change reloads the tree, history and conditions.
    live_state: String,
    images: Vec<String>,
    urls: Vec<String>,
}

impl AppPage {
    fn sync_class(&self) -> &'static str {
        sync_class(&self.sync)
    }
    fn health_class(&self) -> &'static str {
        health_class(&self.health)
    }
}

fn phase_class(phase: &str) -> &'static str {
    match phase {
        "Succeeded" => "ok",
        "Running" | "Terminating" | "Pending" => "info",
        "Failed" | "Error" => "bad",
        _ => "unknown",
    }
}

fn initiator(i: Option<&ferry_core::application::OperationInitiator>) -> String {
    match i {
        Some(i) if i.automated => "automated".into(),
        Some(i) => i.username.clone().unwrap_or_default(),
        None => String::new(),
    }
}

/// The sync windows of `app`'s project that apply to it (each with its state), and why an
/// automated sync may not run now (empty when it may, or when the project cannot be read).
async fn sync_windows(state: &ServerState, app: &Application) -> (Vec<String>, String) {
    let projects: kube::Api<ferry_core::project::AppProject> =
        kube::Api::namespaced(state.client.clone(), &state.config.namespace);
    let Ok(Some(project)) = projects.get_opt(&app.spec.project).await else {
        return (Vec::new(), String::new());
    };
    let verdict = ferry_core::sync_window::evaluate_for_app(
        app,
        &project,
        k8s_openapi::jiff::Timestamp::now(),
        false,
    );
    (
        verdict.windows.iter().map(ToString::to_string).collect(),
        verdict.reason.unwrap_or_default(),
    )
}

/// Query of the app page: `done` says which form post redirected here.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct AppQuery {
    #[serde(default)]
    done: String,
}

/// The notice shown after a form post (only known ones: the query is not free text).
fn notice(done: &str) -> &'static str {
    match done {
        "sync" => "Sync requested; the controller carries it out.",
        "refresh" => "Refresh requested.",
        "hard-refresh" => "Hard refresh requested.",
        "rollback" => "Rollback requested; automated sync is off for this application.",
        _ => "",
    }
}

/// `GET /applications/{name}[?done=sync|refresh|hard-refresh|rollback]`.
pub(crate) async fn app_page(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    query: Result<Query<AppQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let done = query.map(|Query(q)| q.done).unwrap_or_default();
    let chrome = Chrome::new(name.clone(), &principal);
    let result = async {
        let app = readable_app(&state, &principal, &name).await?;
        let status = app.status.clone().unwrap_or_default();
        let sources = app.spec.effective_sources();
        let first = sources.first();
        let repo = first.map(|s| s.repo_url.clone()).unwrap_or_default();
        let link_for = |rev: &str| commit_url(&repo, rev).unwrap_or_default();
        let revision_full = status.sync.revision.clone().unwrap_or_default();
        let d = &app.spec.destination;
        let operation = if app.operation.is_some() {
            Some(OperationView {
                phase: "Pending".into(),
                phase_class: "info",
                message: "an operation was requested and waits for the controller".into(),
                started_at: String::new(),
                finished_at: String::new(),
                initiated_by: initiator(
                    app.operation.as_ref().and_then(|o| o.initiated_by.as_ref()),
                ),
            })
        } else {
            status.operation_state.as_ref().map(|o| {
                let phase = format!("{:?}", o.phase);
                OperationView {
                    phase_class: phase_class(&phase),
                    phase,
                    message: o.message.clone().unwrap_or_default(),
                    started_at: o.started_at.clone().unwrap_or_default(),
                    finished_at: o.finished_at.clone().unwrap_or_default(),
                    initiated_by: initiator(o.operation.initiated_by.as_ref()),
                }
            })
        };
        let history = status
            .history
            .iter()
            .rev()
            .map(|h| {
                let rev = h.revision.clone().unwrap_or_default();
                let commit = h.commit.clone().unwrap_or_default();
                HistoryRow {
                    id: h.id,
                    revision: short_revision(&rev),
                    link: link_for(&rev),
                    revision_full: rev,
                    author: commit.author,
                    subject: commit.subject,
                    commit_date: commit.date,
                    deployed_at: h.deployed_at.clone().unwrap_or_default(),
                    initiated_by: initiator(h.initiated_by.as_ref()),
                }
            })
            .collect();
        let (tree, tree_note) = app_tree(&state, &app).await;
        let (sync_windows, sync_window_block) = sync_windows(&state, &app).await;
        let page = AppPage {
            chrome: chrome.clone(),
            name_url: encode_component(&name),
            name: name.clone(),
            project: app.spec.project.clone(),
            path: first
                .and_then(|s| s.path.clone().or_else(|| s.chart.clone()))
                .unwrap_or_default(),
            target_revision: first
                .map(|s| s.target_revision_or_head().to_string())
                .unwrap_or_default(),
            destination: format!(
                "{} / {}",
                d.server
                    .clone()
                    .or_else(|| d.name.clone())
                    .unwrap_or_default(),
                d.namespace.clone().unwrap_or_default()
            ),
            sync: format!("{:?}", status.sync.status),
            health: format!("{:?}", status.health.status),
            health_message: status.health.message.clone().unwrap_or_default(),
            revision: short_revision(&revision_full),
            revision_link: link_for(&revision_full),
            revision_full,
            automated: app.spec.is_automated(),
            pending: app.operation.is_some(),
            operation,
            conditions: status
                .conditions
                .iter()
                .map(|c| ConditionView {
                    type_: c.type_.clone(),
                    message: c.message.clone(),
                    time: c.last_transition_time.clone().unwrap_or_default(),
                    error: c.is_error(),
                })
                .collect(),
            sync_windows,
            sync_window_block,
            history,
            tree_html: tree.to_html(),
            tree_note,
            can_sync: principal.can_sync(&app.spec.project),
            notice: notice(&done).to_string(),
            live_state: {
                let row = super::list::AppRow::of(&app);
                [
                    row.sync,
                    row.health,
                    row.operation,
                    row.revision,
                    row.last_sync,
                ]
                .join("|")
            },
            images: status.summary.images.clone(),
            urls: status.summary.external_urls.clone(),
            repo,
        };
        Ok(render(&page))
    }
    .await;
    respond(result, chrome)
}

/// Query of the resource page.
#[derive(Debug, Deserialize)]
pub(crate) struct ResourceQuery {
    #[serde(default)]
    group: String,
    #[serde(default)]
    version: String,
    kind: String,
    #[serde(default)]
    namespace: String,
    name: String,
    /// `yaml` (default) or `json`.
    #[serde(default)]
    format: String,
}

#[derive(Template)]
#[template(path = "resource.html")]
struct ResourcePage {
    chrome: Chrome,
    app: String,
    app_url: String,
    kind: String,
    name: String,
    namespace: String,
    format: String,
    other_format_link: String,
    manifest: String,
    masked: bool,
}

/// The live manifest as shown: without `managedFields`, Secret values masked.
pub(crate) fn displayed_manifest(mut obj: Value, api_version: &str, kind: &str) -> Value {
    // The API server's answer says what it is; trust the request's kind too, so a Secret is
    // masked even if the answer lacked type information.
    if obj.get("apiVersion").and_then(Value::as_str).is_none() {
        obj["apiVersion"] = json!(api_version);
    }
    if obj.get("kind").and_then(Value::as_str).is_none() {
        obj["kind"] = json!(kind);
    }
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    ferry_controller::normalize::mask_secret(&mut obj, None);
    if kind == "Secret" && api_version == "v1" {
        // mask_secret keys on the object's own apiVersion/kind; make sure either way.
        for field in ["data", "stringData"] {
            if let Some(values) = obj.get_mut(field).and_then(Value::as_object_mut) {
                for v in values.values_mut() {
                    *v = json!(ferry_controller::normalize::MASK);
                }
            }
        }
    }
    obj
}

/// `GET /applications/{name}/resource?group=&version=&kind=&namespace=&name=[&format=json]`:
/// a resource of the app's tree, as it is in the cluster.
pub(crate) async fn resource_page(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    query: Result<Query<ResourceQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let chrome = Chrome::new(format!("{name}: resource"), &principal);
    let result = async {
        let Query(q) = query.map_err(|e| {
            UiError::new(
                StatusCode::BAD_REQUEST,
                format!("this page needs group, version, kind, namespace and name: {e}"),
            )
        })?;
        let app = readable_app(&state, &principal, &name).await?;
        let (tree, _) = app_tree(&state, &app).await;
        let key = NodeKey {
            group: q.group.clone(),
            version: q.version.clone(),
            kind: q.kind.clone(),
            namespace: q.namespace.clone(),
            name: q.name.clone(),
        };
        let what = format!("{} {}", q.kind, q.name);
        if tree.find(&key).is_none() || key == tree.key {
            return Err(UiError::new(
                StatusCode::NOT_FOUND,
                format!("{what} is not a resource of application {name}"),
            ));
        }
        let api_version = if q.group.is_empty() {
            q.version.clone()
        } else {
            format!("{}/{}", q.group, q.version)
        };
        let cluster = destination(&state, &app).await?;
        let live = cluster
            .get(&ObjectRef {
                api_version: api_version.clone(),
                kind: q.kind.clone(),
                namespace: q.namespace.clone(),
                name: q.name.clone(),
            })
            .await
            .map_err(|e| UiError::new(StatusCode::BAD_GATEWAY, format!("reading {what}: {e}")))?
            .ok_or_else(|| {
                UiError::new(
                    StatusCode::NOT_FOUND,
                    format!("{what} does not exist in the cluster (yet, or any more)"),
                )
            })?;
        let shown = displayed_manifest(live, &api_version, &q.kind);
        let json_format = q.format == "json";
        let manifest = if json_format {
            serde_json::to_string_pretty(&shown).unwrap_or_default()
        } else {
            serde_saphyr::to_string(&shown).map_err(|e| {
                UiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("writing {what} as YAML: {e}"),
                )
            })?
        };
        let base = super::tree::resource_link(&name, &key);
        let page = ResourcePage {
            chrome: Chrome::new(format!("{} {} · {name}", q.kind, q.name), &principal),
            app_url: encode_component(&name),
            app: name.clone(),
            kind: q.kind.clone(),
            name: q.name.clone(),
            namespace: q.namespace.clone(),
            format: if json_format { "JSON" } else { "YAML" }.into(),
            other_format_link: if json_format {
                base
            } else {
                format!("{base}&format=json")
            },
            manifest,
            masked: q.kind == "Secret",
        };
        Ok(render(&page))
    }
    .await;
    respond(result, chrome)
}

/// One line of a rendered diff.
pub(crate) struct DiffLine {
    class: &'static str,
    sign: &'static str,
    text: String,
}

pub(crate) struct DiffView {
    title: String,
    prune: bool,
    lines: Vec<DiffLine>,
}

#[derive(Template)]
#[template(path = "diff.html")]
struct DiffPage {
    chrome: Chrome,
    app: String,
    app_url: String,
    diffs: Vec<DiffView>,
    same: usize,
}

/// The lines of the unified diff of `live` and `desired` (as YAML), with 3 lines of context.
pub(crate) fn diff_lines(live: Option<&Value>, desired: Option<&Value>) -> Vec<DiffLine> {
    let to_yaml = |v: Option<&Value>| {
        v.map(|v| serde_saphyr::to_string(v).unwrap_or_default())
            .unwrap_or_default()
    };
    let (old, new) = (to_yaml(live), to_yaml(desired));
    let diff = TextDiff::from_lines(&old, &new);
    let mut out = Vec::new();
    for (i, group) in diff.grouped_ops(3).iter().enumerate() {
        if i > 0 {
            out.push(DiffLine {
                class: "hunk",
                sign: " ",
                text: "…".into(),
            });
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let (class, sign) = match change.tag() {
                    ChangeTag::Delete => ("del", "-"),
                    ChangeTag::Insert => ("add", "+"),
                    ChangeTag::Equal => ("ctx", " "),
                };
                out.push(DiffLine {
                    class,
                    sign,
                    text: change.value().trim_end_matches('\n').to_string(),
                });
            }
        }
    }
    out
}

/// `GET /applications/{name}/diff`: desired (Git) against live, Secret values masked by the
/// differ.
pub(crate) async fn diff_page(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
) -> Response {
    let chrome = Chrome::new(format!("{name}: diff"), &principal);
    let result = async {
        readable_app(&state, &principal, &name).await?;
        state
            .costly
            .check(&principal.name)
            .map_err(|wait| UiError::from(crate::hardening::too_many("diff", wait)))?;
        let diffs = state.differ.diff_app(&name).await.map_err(|e| {
            UiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("comparing application {name} with Git: {e}"),
            )
        })?;
        let mut same = 0;
        let mut views = Vec::new();
        for d in diffs {
            if d.live == d.desired {
                same += 1;
                continue;
            }
            views.push(DiffView {
                title: d.key.to_string(),
                prune: d.prune,
                lines: diff_lines(d.live.as_ref(), d.desired.as_ref()),
            });
        }
        let page = DiffPage {
            chrome: chrome.clone(),
            app_url: encode_component(&name),
            app: name.clone(),
            diffs: views,
            same,
        };
        Ok(render(&page))
    }
    .await;
    respond(result, chrome)
}

/// Fields of the sync form (`_csrf` is checked by the authentication middleware).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct SyncForm {
    #[serde(default)]
    prune: Option<String>,
    #[serde(default, rename = "dryRun")]
    dry_run: Option<String>,
    #[serde(default)]
    revision: Option<String>,
}

/// Fields of the refresh form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RefreshForm {
    #[serde(default)]
    hard: Option<String>,
}

/// Fields of the rollback form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct RollbackForm {
    id: Option<String>,
    #[serde(default)]
    prune: Option<String>,
}

/// A checkbox's value: checked boxes send `on` (or `true`).
fn checked(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("on" | "true" | "1" | "yes"))
}

/// Reads app `name` for an action, checking that `principal` may act on it.
async fn may_sync(
    state: &ServerState,
    principal: &Principal,
    name: &str,
) -> Result<Application, UiError> {
    let app = readable_app(state, principal, name).await?;
    if principal.can_sync(&app.spec.project) {
        Ok(app)
    } else {
        Err(UiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "{} ({}) may not sync, refresh or roll back applications of project {}",
                principal.name, principal.role, app.spec.project
            ),
        ))
    }
}

/// After an action: back to the app's page (303, so reloading does not post again), which
/// shows the notice for `done`.
fn back_to(name: &str, done: &str) -> Response {
    (
        StatusCode::SEE_OTHER,
        [(
            LOCATION,
            format!(
                "/applications/{}?done={}",
                encode_component(name),
                encode_component(done)
            ),
        )],
    )
        .into_response()
}

fn form_error(e: axum::extract::rejection::FormRejection) -> UiError {
    UiError::new(StatusCode::BAD_REQUEST, format!("reading the form: {e}"))
}

/// `POST /applications/{name}/sync` (form: `prune`, `dryRun`, `revision`, `_csrf`): requests
/// the sync as the API does, then back to the app page.
pub(crate) async fn sync_form(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    form: Result<Form<SyncForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let chrome = Chrome::new(format!("{name}: sync"), &principal);
    let result = async {
        let Form(f) = form.map_err(form_error)?;
        let app = may_sync(&state, &principal, &name).await?;
        let params = SyncParams {
            revision: f
                .revision
                .map(|r| r.trim().to_string())
                .filter(|r| !r.is_empty()),
            prune: checked(&f.prune),
            dry_run: checked(&f.dry_run),
            sync_options: Vec::new(),
        };
        operations::request_sync(&state.apps, &app, &params, &principal.name)
            .await
            .map_err(ApiError::from)?;
        Ok(back_to(&name, "sync"))
    }
    .await;
    respond(result, chrome)
}

/// `POST /applications/{name}/refresh` (form: `hard`, `_csrf`).
pub(crate) async fn refresh_form(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    form: Result<Form<RefreshForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let chrome = Chrome::new(format!("{name}: refresh"), &principal);
    let result = async {
        let Form(f) = form.map_err(form_error)?;
        may_sync(&state, &principal, &name).await?;
        let hard = checked(&f.hard);
        if hard {
            state
                .costly
                .check(&principal.name)
                .map_err(|wait| crate::hardening::too_many("hard refresh", wait))?;
        }
        operations::request_refresh(&state.apps, &name, RefreshType::hard_if(hard))
            .await
            .map_err(ApiError::from)?;
        Ok(back_to(
            &name,
            if hard { "hard-refresh" } else { "refresh" },
        ))
    }
    .await;
    respond(result, chrome)
}

/// `POST /applications/{name}/rollback` (form: `id`, `prune`, `_csrf`).
pub(crate) async fn rollback_form(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    form: Result<Form<RollbackForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let chrome = Chrome::new(format!("{name}: rollback"), &principal);
    let result = async {
        let Form(f) = form.map_err(form_error)?;
        let id: i64 =
            f.id.as_deref()
                .unwrap_or_default()
                .trim()
                .parse()
                .map_err(|_| {
                    UiError::new(
                        StatusCode::BAD_REQUEST,
                        "choose the history entry to roll back to (its id)",
                    )
                })?;
        let app = may_sync(&state, &principal, &name).await?;
        operations::rollback(&state.apps, &app, id, checked(&f.prune), &principal.name)
            .await
            .map_err(ApiError::from)?;
        Ok(back_to(&name, "rollback"))
    }
    .await;
    respond(result, chrome)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_in_the_manifest_view() {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "n", "managedFields": [{"manager": "x"}],
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"aHVudGVyMg==\"}}"}},
            "data": {"password": "aHVudGVyMg=="},
            "stringData": {"token": "hunter2"}
        });
        let shown = displayed_manifest(secret, "v1", "Secret");
        let text = shown.to_string();
        assert!(!text.contains("aHVudGVyMg=="), "{text}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(!text.contains("managedFields"));
        assert_eq!(shown["data"]["password"], ferry_controller::normalize::MASK);
        // Even without type information in the answer.
        let bare = json!({"metadata": {"name": "s"}, "data": {"k": "c2VjcmV0"}});
        let shown = displayed_manifest(bare, "v1", "Secret");
        assert!(!shown.to_string().contains("c2VjcmV0"));
    }

    #[test]
    fn other_kinds_are_shown_as_they_are() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
            "data": {"k": "visible"}});
        assert_eq!(
            displayed_manifest(cm.clone(), "v1", "ConfigMap")["data"]["k"],
            "visible"
        );
    }

    #[test]
    fn diff_lines_mark_changes() {
        let live = json!({"spec": {"replicas": 3, "a": 1}});
        let desired = json!({"spec": {"replicas": 1, "a": 1}});
        let lines = diff_lines(Some(&live), Some(&desired));
        let del: Vec<&str> = lines
            .iter()
            .filter(|l| l.class == "del")
            .map(|l| l.text.as_str())
            .collect();
        let add: Vec<&str> = lines
            .iter()
            .filter(|l| l.class == "add")
            .map(|l| l.text.as_str())
            .collect();
        assert_eq!(del, ["  replicas: 3"]);
        assert_eq!(add, ["  replicas: 1"]);
        assert!(diff_lines(Some(&live), Some(&live)).is_empty());
    }

    #[test]
    fn notices_are_known_texts_only() {
        assert!(notice("sync").starts_with("Sync requested"));
        assert_eq!(notice("<script>alert(1)</script>"), "");
    }

    #[test]
    fn checkboxes() {
        assert!(checked(&Some("on".into())));
        assert!(!checked(&None));
        assert!(!checked(&Some("off".into())));
    }
}
