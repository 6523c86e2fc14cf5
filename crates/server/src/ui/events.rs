//! `GET /events`: Application changes as server-sent events, for the pages' script.
//!
//! One watch on the Applications of the namespace is started with the first subscriber and
//! fanned out to every open `/events` stream through a broadcast channel. Each stream starts
//! with a `ready` event (sent once it is subscribed, so any later change reaches it), then
//! sends an `app` event (JSON, see [`AppEvent`]) per change of an app the caller may read.

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use axum::Extension;
use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use ferry_core::application::Application;
use futures::{Stream, StreamExt};
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use serde::Serialize;
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

use super::list::AppRow;
use crate::ServerState;
use crate::auth::Principal;

/// How many changes a slow subscriber may fall behind before it is told to reload.
const BACKLOG: usize = 256;

/// One Application's state after a change: what the list row and the app page show.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppEvent {
    /// The app's name.
    pub name: String,
    /// Its project.
    pub project: String,
    /// Sync status (`Synced`, `OutOfSync`, `Unknown`).
    pub sync: String,
    /// Health status.
    pub health: String,
    /// The revision compared with (short).
    pub revision: String,
    /// When the last operation finished.
    pub last_sync: String,
    /// The last operation's phase, `Pending` while one is requested, or empty.
    pub operation: String,
    /// The last operation's message.
    pub operation_message: String,
    /// The app was deleted.
    pub deleted: bool,
}

impl AppEvent {
    fn of(app: &Application, deleted: bool) -> AppEvent {
        let row = AppRow::of(app);
        AppEvent {
            name: row.name,
            project: row.project,
            sync: row.sync,
            health: row.health,
            revision: row.revision,
            last_sync: row.last_sync,
            operation: row.operation,
            operation_message: app
                .status
                .as_ref()
                .and_then(|s| s.operation_state.as_ref())
                .and_then(|o| o.message.clone())
                .unwrap_or_default(),
            deleted,
        }
    }
}

/// The watch on Applications and its fan-out, started on first use.
pub(crate) struct EventHub {
    client: kube::Client,
    namespace: String,
    sender: OnceLock<broadcast::Sender<Arc<AppEvent>>>,
}

impl EventHub {
    pub(crate) fn new(client: kube::Client, namespace: &str) -> Self {
        EventHub {
            client,
            namespace: namespace.to_string(),
            sender: OnceLock::new(),
        }
    }

    /// A receiver of every later change, starting the watch the first time.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<AppEvent>> {
        self.sender
            .get_or_init(|| {
                let (tx, _) = broadcast::channel(BACKLOG);
                let api: Api<Application> = Api::namespaced(self.client.clone(), &self.namespace);
                tokio::spawn(watch_applications(api, tx.clone()));
                tx
            })
            .subscribe()
    }
}

/// Sends every change of an Application to `tx`, for as long as the process runs (the watch
/// retries with backoff when the API server is away).
async fn watch_applications(api: Api<Application>, tx: broadcast::Sender<Arc<AppEvent>>) {
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    while let Some(event) = stream.next().await {
        let app_event = match event {
            Ok(watcher::Event::Apply(app)) | Ok(watcher::Event::InitApply(app)) => {
                AppEvent::of(&app, false)
            }
            Ok(watcher::Event::Delete(app)) => AppEvent::of(&app, true),
            Ok(watcher::Event::Init | watcher::Event::InitDone) => continue,
            Err(e) => {
                tracing::warn!("watching applications for the UI: {e}");
                continue;
            }
        };
        // No subscriber is fine: nobody has a page open.
        let _ = tx.send(Arc::new(app_event));
    }
}

/// `GET /events`.
pub(crate) async fn events(
    State(state): State<Arc<ServerState>>,
    Extension(principal): Extension<Principal>,
    headers: axum::http::HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.ui.subscribe();
    // The stream ends when its session does (logout, password change, account disabled):
    // checked every few seconds, as the accounts may change in another process.
    let ended = {
        let state = state.clone();
        async move {
            loop {
                tokio::time::sleep(SESSION_CHECK_INTERVAL).await;
                if !crate::auth::still_signed_in(&state, &headers).await {
                    return;
                }
            }
        }
    };
    let ready = futures::stream::once(async { Ok(Event::default().event("ready").data("{}")) });
    let changes = BroadcastStream::new(rx).filter_map(move |msg| {
        let out = match msg {
            Ok(ev) if principal.can_read(&ev.project) => Some(Ok(Event::default()
                .event("app")
                .json_data(ev.as_ref())
                .unwrap_or_else(|_| Event::default().event("app").data("{}")))),
            Ok(_) => None,
            Err(BroadcastStreamRecvError::Lagged(n)) => {
                Some(Ok(Event::default().event("lagged").data(n.to_string())))
            }
        };
        std::future::ready(out)
    });
    Sse::new(ready.chain(changes).take_until(Box::pin(ended))).keep_alive(KeepAlive::default())
}

/// How often an open event stream checks that its session still holds.
const SESSION_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);
