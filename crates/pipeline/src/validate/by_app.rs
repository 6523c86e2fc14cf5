//! `ferry validate --apps PATH`: every Application found under PATH (and, in turn, the
//! Applications their renders produce) is rendered exactly as the engine renders it
//! ([`crate::apps`]), from the working tree of the clone PATH is in, and what it renders is
//! checked like any manifest. Findings name the app; objects read from plain files point at
//! their file, line and column (relative to the repository root), objects from Kustomize or
//! Helm at their line in the rendered output.
//!
//! A source that is another repository or a chart repository, or a Kustomization with remote
//! resources, is not rendered (validation works offline): a note names the app and why. A
//! source whose `repoURL` is this repository (a remote of the clone, or a URL given in
//! `repo_urls`) is rendered from the working tree whatever its `targetRevision`.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;

use ferry_core::RepoUrl;
use ferry_source::render::{RenderTools, SourceType};

use super::{
    Finding, Inputs, Object, ValidateError, ValidateOptions, ValidateReport, check_inputs,
    checkout_of, load_schemas,
};
use crate::apps::{AppRenderer, OFFLINE_PREFIX, ThisRepo, remote_urls, render_reachable};

/// Validates what every Application under `path` renders: see the [module docs](self).
pub async fn validate_apps(
    path: &Path,
    repo_urls: &[String],
    options: &ValidateOptions,
) -> Result<ValidateReport, ValidateError> {
    let (set, crds, version) = load_schemas(options).await?;
    if !path.is_dir() {
        return Err(ValidateError::PathNotFound {
            path: format!("{} (a folder, with --apps)", path.display()),
        });
    }
    let (root, rel) = checkout_of(path);
    let mut urls = remote_urls(&root).await;
    urls.extend(repo_urls.iter().map(RepoUrl::from));
    let cache = tempfile::Builder::new()
        .prefix("ferry-validate-")
        .tempdir()
        .map_err(|e| ValidateError::CrdFile {
            path: "a temporary directory".into(),
            message: e.to_string(),
        })?;
    let renderer =
        AppRenderer::new(RenderTools::new(cache.path().join("tools")), cache.path()).offline();
    let repo = ThisRepo {
        urls,
        root: root.clone(),
    };
    let (apps, errors) = render_reachable(&renderer, &repo, &rel).await;
    let mut inputs = Inputs::default();
    let finding = |file: String, line: usize, app: &str, message: String| Finding {
        file,
        line,
        column: 0,
        object: String::new(),
        path: String::new(),
        message,
        app: app.to_owned(),
    };
    for e in errors {
        inputs.findings.push(finding(rel.clone(), 0, "", e));
    }
    let mut files = BTreeSet::new();
    for (name, reached) in apps {
        let origin = &reached.found.origin;
        let rendered = match reached.result {
            Ok(r) => r,
            Err(message) if message.starts_with(OFFLINE_PREFIX) => {
                inputs
                    .notes
                    .push(format!("app {name} ({origin}): {message}"));
                continue;
            }
            Err(message) => {
                let file = origin.split(" (").next().unwrap_or(origin).to_owned();
                let message = message
                    .strip_prefix(origin.as_str())
                    .map_or(message.clone(), |m| m.trim_start().to_owned());
                inputs
                    .findings
                    .push(finding(file, reached.found.line, &name, message));
                continue;
            }
        };
        let mut counts: HashMap<String, usize> = HashMap::new();
        for (m, t) in rendered.manifests.iter().zip(&rendered.source_types) {
            let index = counts.entry(m.source_file.clone()).or_default();
            files.insert(m.source_file.clone());
            inputs.objects.push(Object {
                file: m.source_file.clone(),
                disk: (*t == SourceType::Directory).then(|| root.join(&m.source_file)),
                index: *index,
                line: m.line,
                unit: name.clone(),
                app: name.clone(),
                value: m.object.clone(),
            });
            *index += 1;
        }
    }
    inputs.files = files.len();
    Ok(check_inputs(set, &crds, inputs, &version, options))
}
