//! Secrets of ferry's namespace picked by a label selector, read from a watch of them once it
//! has listed them (no request per read), before that with a LIST. Repository credentials and
//! SOPS keys are read this way: both are asked for at every fetch or render.

use std::sync::{Arc, Mutex};

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::reflector::{self, Store, store::Writer};
use kube::runtime::watcher;

/// The Secrets matching one label selector.
#[derive(Clone)]
pub(crate) struct LabelledSecrets {
    secrets: Api<Secret>,
    selector: String,
    store: Store<Secret>,
    /// Taken by the first read, which starts the watch.
    writer: Arc<Mutex<Option<Writer<Secret>>>>,
}

impl std::fmt::Debug for LabelledSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LabelledSecrets")
            .field("selector", &self.selector)
            .finish_non_exhaustive()
    }
}

impl LabelledSecrets {
    /// The Secrets of `namespace` that match `selector`.
    pub(crate) fn new(client: kube::Client, namespace: &str, selector: &str) -> Self {
        let (store, writer) = reflector::store();
        LabelledSecrets {
            secrets: Api::namespaced(client, namespace),
            selector: selector.to_string(),
            store,
            writer: Arc::new(Mutex::new(Some(writer))),
        }
    }

    /// The label selector, for messages.
    pub(crate) fn selector(&self) -> &str {
        &self.selector
    }

    /// The matching Secrets: from the watch once it has listed them (the first call starts
    /// it), else from the API.
    pub(crate) async fn current(&self) -> Result<Vec<Arc<Secret>>, kube::Error> {
        let writer = self.writer.lock().expect("labelled secrets lock").take();
        if let Some(writer) = writer {
            let stream = reflector::reflector(
                writer,
                watcher::watcher(
                    self.secrets.clone(),
                    watcher::Config::default().labels(&self.selector),
                )
                .modify(crate::watches::drop_managed_fields_of),
            )
            .default_backoff();
            tokio::spawn(stream.for_each(|_| std::future::ready(())));
        }
        if futures::FutureExt::now_or_never(self.store.wait_until_ready())
            .is_some_and(|r| r.is_ok())
        {
            return Ok(self.store.state());
        }
        let list = self
            .secrets
            .list(&ListParams::default().labels(&self.selector))
            .await?;
        Ok(list.items.into_iter().map(Arc::new).collect())
    }
}
