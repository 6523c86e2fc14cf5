//! From an Argo CD Application's source to a [`SourceRender`] request: the one place that maps
//! `spec.source` / `spec.sources[i]` fields onto the renderer, used by the controller and by
//! the pipeline tools (`ferry validate --apps`, `ferry preview`) alike, so that they render an
//! app exactly as the engine does.

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferry_core::application::{Application, ApplicationSource};

use super::{DirectoryOptions, SourceRender};
use crate::git::Credentials;

/// Whether a source only lends its files to the app's other sources (a multi-source `ref`
/// without a path or chart): it is not rendered itself.
pub fn is_ref_only(source: &ApplicationSource) -> bool {
    source.ref_.is_some() && source.path.is_none() && source.chart.is_none()
}

/// The render request for one `source` of `app`: `checkout_root` is the checkout of a Git
/// source at `revision` (`None` for a chart repository, where `revision` is the chart version),
/// `value_refs` the checkouts of the app's `ref` sources by name.
pub fn source_render(
    app: &Application,
    source: &ApplicationSource,
    checkout_root: Option<PathBuf>,
    revision: &str,
    value_refs: &BTreeMap<String, PathBuf>,
    credentials: Credentials,
) -> SourceRender {
    let directory = source.directory.as_ref().map(|d| DirectoryOptions {
        recurse: d.recurse,
        include: d.include.clone(),
        exclude: d.exclude.clone(),
    });
    SourceRender {
        app_name: app.metadata.name.clone().unwrap_or_default(),
        namespace: app.spec.destination.namespace.clone().unwrap_or_default(),
        repo_url: source.repo_url.clone(),
        checkout_root,
        path: source.path.clone().unwrap_or_else(|| ".".into()),
        chart: source.chart.clone(),
        target_revision: revision.to_owned(),
        directory,
        helm: source.helm.clone(),
        kustomize: source.kustomize.clone(),
        credentials,
        value_refs: value_refs.clone(),
        // SOPS keys are the project's: the controller sets them (a preview has none).
        keys: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_application_source_maps_onto_the_render_request() {
        let app: Application = serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {
                "sources": [
                    {"repoURL": "https://g/r.git", "path": "chart",
                     "helm": {"valueFiles": ["$values/prod.yaml"]}},
                    {"repoURL": "https://g/v.git", "ref": "values"},
                ],
                "destination": {"server": "s", "namespace": "shop"},
            }
        }))
        .unwrap();
        let sources = app.spec.effective_sources();
        let refs = BTreeMap::from([("values".to_owned(), PathBuf::from("/v"))]);
        let request = source_render(
            &app,
            sources[0],
            Some(PathBuf::from("/r")),
            "abc",
            &refs,
            Credentials::none(),
        );
        assert_eq!(
            (
                request.app_name.as_str(),
                request.namespace.as_str(),
                request.path.as_str()
            ),
            ("web", "shop", "chart")
        );
        assert_eq!(request.target_revision, "abc");
        assert_eq!(request.value_refs, refs);
        assert!(request.helm.is_some() && request.directory.is_none());
        assert!(!is_ref_only(sources[0]) && is_ref_only(sources[1]));
    }
}
