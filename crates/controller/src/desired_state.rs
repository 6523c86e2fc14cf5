//! An app's desired state: every source fetched and rendered, the manifests prepared as
//! objects, checked against the project, hooks set apart.

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_core::application::{Application, RefreshType, SyncOperation};

use crate::desired::{DesiredObject, prepare_desired};
use crate::error::AppError;

/// The revisions a look at an app is pinned to: an operation's (a sync to a given revision, or
/// a sync under way, which keeps the revisions it started with, whatever its branches do
/// meanwhile). No pins: each source's target revision.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pins {
    /// One per source, in the spec's order (`operation.sync.revisions`).
    each: Vec<String>,
    /// One for every rendered source (`operation.sync.revision`).
    all: Option<String>,
}

impl Pins {
    /// The pins of a sync operation.
    pub(crate) fn of(sync: Option<&SyncOperation>) -> Self {
        let Some(sync) = sync else {
            return Pins::default();
        };
        Pins {
            each: sync.revisions.clone(),
            all: sync.revision.clone().filter(|r| !r.is_empty()),
        }
    }

    /// Each source pinned to its own revision, in the spec's order.
    pub(crate) fn each(revisions: Vec<String>) -> Self {
        Pins {
            each: revisions,
            all: None,
        }
    }

    /// The revision source `i` is pinned to; `rendered`: the source is rendered (a source that
    /// only lends its files by `ref` follows `revision` only when pinned one by one).
    pub(crate) fn for_source(&self, i: usize, rendered: bool) -> Option<&str> {
        if !self.each.is_empty() {
            return self
                .each
                .get(i)
                .map(String::as_str)
                .filter(|r| !r.is_empty());
        }
        self.all.as_deref().filter(|_| rendered)
    }
}

/// The result of working out an app's desired state.
pub(crate) struct Desired {
    /// The revision of the first rendered source (the app's revision).
    pub(crate) revision: String,
    /// Every source's revision, joined: a new commit in any of them is a change.
    pub(crate) revisions: String,
    /// Each source's revision, in the spec's order (what an operation pins them to).
    pub(crate) source_revisions: Vec<String>,
    /// The first rendered source's commit.
    pub(crate) commit: Option<ferry_source::git::CommitInfo>,
    /// Ordinary resources: compared, applied, pruned.
    pub(crate) objects: Vec<DesiredObject>,
    /// Hooks that run in a sync phase (PreSync, Sync, PostSync, SyncFail); never compared.
    pub(crate) hooks: Vec<DesiredObject>,
    /// Hooks that run when the app is deleted (PreDelete, PostDelete).
    pub(crate) delete_hooks: Vec<DesiredObject>,
    /// Directory, Kustomize or Helm, per rendered source.
    pub(crate) source_types: Vec<String>,
    /// Objects Git declares that `argocd-cm`'s resource exclusions/inclusions leave alone.
    pub(crate) excluded: Vec<String>,
}

impl crate::differ::Differ {
    /// Fetches and renders every source of `app` (admitted to `target`) and prepares the
    /// objects: tracked, filtered by `argocd-cm`'s exclusions, checked against the project,
    /// hooks apart. One failure stops everything: nothing is applied, nothing pruned.
    pub(crate) async fn desired(
        &self,
        app: &Application,
        target: &crate::admit::Target,
        refresh: Option<RefreshType>,
        fetch_max_age: Duration,
        pins: &Pins,
    ) -> Result<Desired, AppError> {
        let sources = app.spec.effective_sources();
        // Sources with `ref` lend their checkout to the others' Helm value files (`$ref/...`).
        let mut value_refs = BTreeMap::new();
        // Every source's revision: a new commit in any of them is a change.
        let mut all_revisions = Vec::new();
        let mut source_revisions = vec![String::new(); sources.len()];
        for (i, source) in sources.iter().enumerate().filter(|(_, s)| s.ref_.is_some()) {
            let (sha, root) = self
                .checkout_source(source, fetch_max_age, pins.for_source(i, false))
                .await?;
            source_revisions[i].clone_from(&sha);
            all_revisions.push(sha);
            value_refs.insert(source.ref_.clone().unwrap_or_default(), root);
        }
        // Render every source; one failure stops everything (nothing applied, nothing pruned).
        let mut manifests = Vec::new();
        let mut revision = String::new();
        let mut commit = None;
        let mut source_types = Vec::new();
        for (i, source) in sources.iter().enumerate() {
            if ferry_source::render::application::is_ref_only(source) {
                continue; // a `ref` source only lends its files to others
            }
            let rendered = self
                .render_source(
                    app,
                    source,
                    &value_refs,
                    refresh,
                    fetch_max_age,
                    pins.for_source(i, true),
                )
                .await?;
            source_revisions[i].clone_from(&rendered.revision);
            all_revisions.push(rendered.revision.clone());
            if revision.is_empty() {
                revision = rendered.revision;
                commit = rendered.commit;
            }
            source_types.push(rendered.source_type);
            manifests.extend(rendered.output.manifests);
        }
        let settings = self.settings.current().await;
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let mut objects = prepare_desired(manifests, name, &target.namespace, &target.cluster)
            .await
            .map_err(|e| AppError::unavailable(e.to_string()))?;
        crate::settings::add_tracking_label(&mut objects, name, &settings);
        let server = crate::admit::cluster_server(&app.spec);
        let (excluded, kept): (Vec<DesiredObject>, Vec<DesiredObject>) = objects
            .into_iter()
            .partition(|o| settings.is_excluded(&o.key.group, &o.key.kind, &server));
        let objects = kept;
        let excluded: Vec<String> = excluded
            .iter()
            .map(|o| format!("{} ({})", o.key, o.origin))
            .collect();
        for o in &objects {
            target.admit_object(o)?;
        }

        // PreDelete and PostDelete hooks run when the app is deleted (see `finalize`).
        let delete_hooks: Vec<DesiredObject> = objects
            .iter()
            .filter(|o| o.hooks.iter().any(|h| h.deletion_phase().is_some()))
            .cloned()
            .collect();
        // Hooks run during syncs only; `Skip` and the delete hooks leave the object out of the
        // sync altogether.
        let (hooks, objects): (Vec<DesiredObject>, Vec<DesiredObject>) = objects
            .into_iter()
            .filter(|o| !o.is_hook() || o.hooks.iter().any(|h| h.phase().is_some()))
            .partition(DesiredObject::is_hook);
        Ok(Desired {
            revision,
            revisions: all_revisions.join(","),
            source_revisions,
            commit,
            objects,
            hooks,
            delete_hooks,
            source_types,
            excluded,
        })
    }
}
