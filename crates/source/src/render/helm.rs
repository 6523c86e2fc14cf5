//! Rendering Helm charts with the real `helm` (Argo CD's "Helm" source type).
//!
//! [`render_helm`] runs `helm template` on a chart and parses its output into [`Manifest`]s.
//! The chart comes from one of ([`ChartSource`]):
//!
//! - **a directory of a checkout** (`path` holding `Chart.yaml`). When `Chart.yaml` lists
//!   dependencies that `charts/` lacks, the checkout is copied to a private directory and
//!   `helm dependency build` runs there (the cached checkout is never written). `file://`
//!   dependencies must stay inside the checkout; `http(s)` ones are fetched by helm without
//!   credentials;
//! - **an HTTP(S) chart repository** (`repoURL` + `chart` + `targetRevision`). The version may
//!   be exact (`1.2.3`) or a range helm understands (`1.2.*`, `^1.2.0`, `>=1.0 <2`, empty for
//!   the newest). ferry adds the repository to a private helm home (`helm repo add`, a password
//!   through `--password-stdin`, never argv) and runs `helm pull`. Archives are cached under
//!   [`RenderTools::cache_dir`] by repository, chart and *resolved* version, so an exact version
//!   is pulled once and then reused; a range is resolved by helm on every render (it must read
//!   the repository's index) and the archive is reused when the resolved version is cached;
//! - **an OCI registry** (`repoURL` `oci://host/path`): `helm pull oci://host/path/<chart>`,
//!   after `helm registry login` when credentials are given. This path is not covered by
//!   ferry's tests (they run no registry).
//!
//! How Argo CD's `spec.source.helm` maps onto `helm template` ([`HelmOptions`]):
//!
//! | field | flag |
//! | --- | --- |
//! | `releaseName` (default: the app's name) | the release name |
//! | `namespace` (default: the destination namespace) | `--namespace` |
//! | `skipCrds` | no `--include-crds` (otherwise CRDs in `crds/` are rendered) |
//! | `skipTests`, `skipSchemaValidation` | `--skip-tests`, `--skip-schema-validation` |
//! | `kubeVersion`, `apiVersions` | `--kube-version`, `--api-versions` (each) |
//! | `valueFiles` | `--values`, in order; relative to the chart directory, or `$ref/path` in another source's checkout |
//! | `values` / `valuesObject` | one more `--values` file after the value files (`valuesObject` wins when both are set) |
//! | `parameters` | `--set name=value`, or `--set-string` with `forceString`; commas in a value are escaped unless it is a `{a,b}` list |
//! | `fileParameters` | `--set-file name=path`, the path resolved like a value file |
//! | `passCredentials` | `--pass-credentials` for the chart repository |
//!
//! Value files and file parameters must stay inside their checkout (or inside the pulled chart):
//! `..` that climbs out, absolute paths and symlinks leading outside are
//! [`RenderError::PathEscapes`]. A missing value file is [`RenderError::ValueFileNotFound`]
//! unless `ignoreMissingValueFiles` is set. Remote (`https://`) value files are not supported.
//!
//! helm runs with `HOME`, `XDG_*` and `HELM_*` directories in a private temporary directory and
//! no kubeconfig: it never talks to a cluster (`.Capabilities` come from `kubeVersion` and
//! `apiVersions`, else helm's built-in defaults). Each rendered object's
//! [`Manifest::source_file`] is the template it came from, from helm's `# Source:` comments
//! (`mychart/templates/deploy.yaml`), and [`Manifest::line`] its line in that rendered template.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::tools::{
    self, RenderTools, check_symlinks_inside, copy_tree, display_relative, prepare_home,
    split_failure,
};
use super::{Manifest, RenderError, push_rendered, resolve_app_dir, resolve_inside};
use crate::command::run_command;
use crate::git::{Credentials, redact_url, repo_dir_name};

/// Argo CD's `spec.source.helm`. Unknown fields are ignored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HelmOptions {
    /// Values files, relative to the chart directory, or `$ref/path`.
    pub value_files: Vec<String>,
    /// Inline values as a YAML string (an object is accepted too).
    pub values: Option<Value>,
    /// Inline values as an object; wins over `values`.
    pub values_object: Option<Value>,
    /// `--set` / `--set-string` parameters.
    pub parameters: Vec<HelmParameter>,
    /// `--set-file` parameters.
    pub file_parameters: Vec<HelmFileParameter>,
    /// The release name (default: the app's name).
    pub release_name: Option<String>,
    /// Do not render the chart's `crds/`.
    pub skip_crds: bool,
    /// Do not render the chart's tests.
    pub skip_tests: bool,
    /// Do not validate values against the chart's `values.schema.json`.
    pub skip_schema_validation: bool,
    /// A missing value file is skipped instead of an error.
    pub ignore_missing_value_files: bool,
    /// Pass the repository credentials to every domain (charts hosted elsewhere).
    pub pass_credentials: bool,
    /// `.Capabilities.KubeVersion`.
    pub kube_version: Option<String>,
    /// `.Capabilities.APIVersions`.
    pub api_versions: Vec<String>,
    /// The namespace given to helm (default: the destination namespace).
    pub namespace: Option<String>,
    /// The helm major version (`v3`); only v3 exists.
    pub version: Option<String>,
}

/// One entry of `helm.parameters`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HelmParameter {
    /// The value's path (`image.tag`).
    pub name: String,
    /// The value (numbers and booleans in the JSON are taken as their text).
    #[serde(deserialize_with = "scalar_string")]
    pub value: String,
    /// Always a string (`--set-string`), never a number or boolean.
    pub force_string: bool,
}

/// One entry of `helm.fileParameters`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct HelmFileParameter {
    /// The value's path.
    pub name: String,
    /// The file whose content becomes the value, resolved like a value file.
    pub path: String,
}

fn scalar_string<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
    })
}

impl HelmOptions {
    /// Reads `spec.source.helm` (absent: the defaults).
    pub fn from_json(value: Option<&Value>) -> Result<Self, RenderError> {
        match value {
            None | Some(Value::Null) => Ok(Self::default()),
            Some(v) => Self::deserialize(v).map_err(|e| RenderError::InvalidOptions {
                field: "helm".to_owned(),
                message: e.to_string(),
            }),
        }
    }
}

/// Where a chart comes from.
#[derive(Clone, Debug)]
pub enum ChartSource {
    /// A chart directory in a checkout.
    Checkout {
        /// The checkout root.
        root: PathBuf,
        /// The chart directory, relative to the root (the app's `path`).
        path: String,
    },
    /// A chart in an HTTP(S) chart repository or an OCI registry (`oci://`).
    Repository {
        /// The repository URL (`repoURL`).
        repo_url: String,
        /// The chart name (`chart`).
        chart: String,
        /// An exact version or a range (`targetRevision`); empty: the newest.
        version: String,
        /// Username and password (`insecure` skips TLS verification).
        credentials: Credentials,
    },
}

/// Everything [`render_helm`] needs.
#[derive(Clone, Debug)]
pub struct HelmRender {
    /// The app's name: the default release name.
    pub app_name: String,
    /// The destination namespace: the default `--namespace`.
    pub namespace: String,
    /// The chart.
    pub chart: ChartSource,
    /// `spec.source.helm`.
    pub options: HelmOptions,
    /// Checkouts of the app's other sources by `ref` name, for `$ref/…` value files.
    pub value_refs: BTreeMap<String, PathBuf>,
}

/// Renders a Helm chart with `helm template`. See the [module docs](self).
pub async fn render_helm(
    tools: &RenderTools,
    req: &HelmRender,
) -> Result<Vec<Manifest>, RenderError> {
    let work = tools.private_dir("helm-")?;
    let home = work.path().join("home");
    prepare_home(&home)?;

    // The chart to give helm, the root its relative value files live in, and their base.
    let (chart_arg, chart_label, value_root, value_base) = match &req.chart {
        ChartSource::Checkout { root, path } => {
            let (root, chart_dir) = resolve_app_dir(root, path)?;
            let rel = display_relative(&root, &chart_dir);
            check_symlinks_inside(&root, &chart_dir)?;
            let chart_dir = prepare_dependencies(tools, &home, &root, &chart_dir, &rel, &work)
                .await?
                .unwrap_or(chart_dir);
            let base = PathBuf::from(if rel == "." { "" } else { rel.as_str() });
            (chart_dir, rel, root, base)
        }
        ChartSource::Repository {
            repo_url,
            chart,
            version,
            credentials,
        } => {
            let archive = pull_chart(
                tools,
                &home,
                repo_url,
                chart,
                version,
                credentials,
                req.options.pass_credentials,
            )
            .await?;
            let dir = match extract_chart(&home, &archive, work.path(), chart).await {
                Ok(dir) => dir,
                Err(err) => {
                    // A repository that served a broken archive (cut short, not gzip) must not
                    // keep it in the cache: the next render pulls again, so the app recovers
                    // once the repository is whole.
                    let _ = std::fs::remove_file(&archive);
                    return Err(match err {
                        RenderError::ChartPull { message, .. } => RenderError::ChartPull {
                            repo_url: redact_url(repo_url),
                            chart: chart.clone(),
                            version: version.clone(),
                            message,
                        },
                        other => other,
                    });
                }
            };
            (dir.clone(), chart.clone(), dir, PathBuf::new())
        }
    };

    let opts = &req.options;
    let release = opts
        .release_name
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or(&req.app_name);
    let mut args: Vec<String> = vec![
        "template".into(),
        release.into(),
        chart_arg.to_string_lossy().into_owned(),
    ];
    let namespace = opts
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(&req.namespace);
    if !namespace.is_empty() {
        args.extend(["--namespace".into(), namespace.into()]);
    }
    if opts.skip_crds {
        args.push("--skip-crds".into());
    } else {
        args.push("--include-crds".into());
    }
    if opts.skip_tests {
        args.push("--skip-tests".into());
    }
    if opts.skip_schema_validation {
        args.push("--skip-schema-validation".into());
    }
    if let Some(v) = opts.kube_version.as_deref().filter(|v| !v.is_empty()) {
        args.extend(["--kube-version".into(), v.into()]);
    }
    for api in opts.api_versions.iter().filter(|a| !a.is_empty()) {
        args.extend(["--api-versions".into(), api.clone()]);
    }
    for (i, file) in opts.value_files.iter().enumerate() {
        let field = format!("helm.valueFiles[{i}]");
        match resolve_file(file, &field, &value_root, &value_base, &req.value_refs)? {
            Some(path) => args.extend(["--values".into(), path.to_string_lossy().into_owned()]),
            None if opts.ignore_missing_value_files => {
                tracing::debug!(file, chart = %chart_label, "skipping missing values file");
            }
            None => {
                return Err(RenderError::ValueFileNotFound {
                    chart: chart_label,
                    file: file.clone(),
                });
            }
        }
    }
    if let Some(inline) = inline_values(opts)? {
        let path = work.path().join("inline-values.yaml");
        std::fs::write(&path, inline).map_err(|source| RenderError::Io {
            path: path.display().to_string(),
            source,
        })?;
        args.extend(["--values".into(), path.to_string_lossy().into_owned()]);
    }
    for (i, p) in opts.parameters.iter().enumerate() {
        if p.name.trim().is_empty() {
            return Err(RenderError::InvalidOptions {
                field: format!("helm.parameters[{i}].name"),
                message: "is empty".into(),
            });
        }
        let flag = if p.force_string {
            "--set-string"
        } else {
            "--set"
        };
        args.extend([
            flag.into(),
            format!("{}={}", p.name, escape_set_value(&p.value)),
        ]);
    }
    for (i, p) in opts.file_parameters.iter().enumerate() {
        let field = format!("helm.fileParameters[{i}].path");
        let path = resolve_file(&p.path, &field, &value_root, &value_base, &req.value_refs)?
            .ok_or_else(|| RenderError::InvalidOptions {
                field,
                message: format!("file {:?} does not exist", p.path),
            })?;
        args.extend([
            "--set-file".into(),
            format!("{}={}", p.name, path.to_string_lossy()),
        ]);
    }

    let spec = tools.helm_command(&home, work.path(), args);
    tracing::debug!(chart = %chart_label, command = %spec.display(), "running helm template");
    let out = match run_command(spec).await {
        Ok(out) => out,
        Err(err) => {
            let message = split_failure(err, "helm", tools::HELM_ENV)?;
            return Err(RenderError::HelmTemplate {
                chart: chart_label,
                message,
            });
        }
    };
    if out.stdout_truncated {
        return Err(RenderError::OutputTooLarge {
            tool: "helm template",
            what: chart_label,
            limit: tools.max_output(),
        });
    }
    parse_template_output(&chart_label, &out.stdout_text())
}

/// The inline values (`valuesObject`, else `values`) as YAML text, if any.
fn inline_values(opts: &HelmOptions) -> Result<Option<String>, RenderError> {
    let pick = |v: &Option<Value>| match v {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(v) => Some(v.clone()),
    };
    match pick(&opts.values_object).or_else(|| pick(&opts.values)) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        // JSON is YAML: helm reads an object written as JSON.
        Some(v @ Value::Object(_)) => Ok(Some(v.to_string())),
        Some(_) => Err(RenderError::InvalidOptions {
            field: "helm.valuesObject".into(),
            message: "must be an object (or `values` a YAML string)".into(),
        }),
    }
}

/// Escapes unescaped commas so that one parameter sets one value, unless the value is a
/// `{a,b}` list, which helm's `--set` syntax reads as a list.
fn escape_set_value(value: &str) -> String {
    if value.starts_with('{') && value.ends_with('}') {
        return value.to_owned();
    }
    let mut out = String::with_capacity(value.len());
    let mut escaped = false;
    for c in value.chars() {
        if c == ',' && !escaped {
            out.push('\\');
        }
        escaped = c == '\\' && !escaped;
        out.push(c);
    }
    out
}

/// Resolves a value file or file parameter: `$ref/path` in the checkout of source `ref`, else
/// `path` relative to `base` in `root`. `Ok(None)` when it does not exist.
fn resolve_file(
    file: &str,
    field: &str,
    root: &Path,
    base: &Path,
    refs: &BTreeMap<String, PathBuf>,
) -> Result<Option<PathBuf>, RenderError> {
    let trimmed = file.trim();
    if trimmed.is_empty() {
        return Err(RenderError::InvalidOptions {
            field: field.to_owned(),
            message: "is empty".into(),
        });
    }
    if trimmed.contains("://") {
        return Err(RenderError::InvalidOptions {
            field: field.to_owned(),
            message: format!(
                "{file:?}: remote values files are not supported; add the repository as another source with a ref and use $ref/path"
            ),
        });
    }
    let resolved = if let Some(rest) = trimmed.strip_prefix('$') {
        let (name, path) = rest.split_once('/').unwrap_or((rest, ""));
        let ref_root = refs
            .get(name)
            .ok_or_else(|| RenderError::UnknownValuesRef {
                file: file.to_owned(),
                reference: name.to_owned(),
            })?;
        let ref_root = ref_root.canonicalize().map_err(|source| RenderError::Io {
            path: ref_root.display().to_string(),
            source,
        })?;
        resolve_inside(&ref_root, Path::new(""), path)
    } else {
        resolve_inside(root, base, trimmed)
    };
    match resolved {
        Err(RenderError::PathEscapes { .. }) => Err(RenderError::PathEscapes {
            path: file.to_owned(),
        }),
        other => other,
    }
}

/// Splits `helm template` output at its `---` lines and reads each document, named by its
/// `# Source:` comment.
fn parse_template_output(chart: &str, text: &str) -> Result<Vec<Manifest>, RenderError> {
    let mut out = Vec::new();
    let mut chunk = String::new();
    let flush = |chunk: &mut String, out: &mut Vec<Manifest>| {
        let file = chunk
            .lines()
            .find_map(|l| l.strip_prefix("# Source: "))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| format!("{chart} (helm template output)"));
        let result = push_rendered(&file, chunk, out);
        chunk.clear();
        result
    };
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            flush(&mut chunk, &mut out)?;
        } else {
            chunk.push_str(line);
        }
    }
    flush(&mut chunk, &mut out)?;
    Ok(out)
}

/// Runs `helm dependency build` in a private copy of the checkout when `Chart.yaml` lists
/// dependencies that `charts/` lacks. Returns the chart directory in the copy, or `None` when
/// nothing was needed.
async fn prepare_dependencies(
    tools: &RenderTools,
    home: &Path,
    root: &Path,
    chart_dir: &Path,
    chart_rel: &str,
    work: &tempfile::TempDir,
) -> Result<Option<PathBuf>, RenderError> {
    let chart_yaml = chart_dir.join("Chart.yaml");
    let Ok(text) = std::fs::read_to_string(&chart_yaml) else {
        return Ok(None); // helm template says what is wrong with the chart
    };
    let file = format!("{chart_rel}/Chart.yaml");
    let Some((_, meta)) = super::parse_yaml(&file, &text)?.into_iter().next() else {
        return Ok(None);
    };
    let deps = meta
        .get("dependencies")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut missing = false;
    let base = PathBuf::from(if chart_rel == "." { "" } else { chart_rel });
    for dep in &deps {
        let name = dep.get("name").and_then(Value::as_str).unwrap_or_default();
        let repo = dep
            .get("repository")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if let Some(local) = repo.strip_prefix("file://") {
            match resolve_inside(root, &base, local) {
                Ok(Some(dir)) => check_symlinks_inside(root, &dir)?,
                Ok(None) => {}
                Err(_) => {
                    return Err(RenderError::PathEscapes {
                        path: format!("{file}: dependency {name} at {repo}"),
                    });
                }
            }
        }
        if !name.is_empty() && !has_dependency(&chart_dir.join("charts"), name) {
            missing = true;
        }
    }
    if !missing {
        return Ok(None);
    }
    let copy = work.path().join("checkout");
    copy_tree(root, &copy)?;
    let copied_chart = copy.join(&base);
    let spec = tools.helm_command(
        home,
        &copied_chart,
        vec![
            "dependency".into(),
            "build".into(),
            copied_chart.to_string_lossy().into_owned(),
        ],
    );
    run_command(spec)
        .await
        .map_err(|err| match split_failure(err, "helm", tools::HELM_ENV) {
            Ok(message) => RenderError::HelmDependencies {
                chart: chart_rel.to_owned(),
                message,
            },
            Err(e) => e,
        })?;
    Ok(Some(copied_chart))
}

/// Whether `charts/` holds dependency `name`, unpacked or as `<name>-<version>.tgz`.
fn has_dependency(charts: &Path, name: &str) -> bool {
    if charts.join(name).join("Chart.yaml").is_file() {
        return true;
    }
    let Ok(entries) = std::fs::read_dir(charts) else {
        return false;
    };
    entries.flatten().any(|e| {
        let file = e.file_name().to_string_lossy().into_owned();
        file.strip_prefix(name)
            .and_then(|rest| rest.strip_prefix('-'))
            .is_some_and(|rest| rest.ends_with(".tgz"))
    })
}

/// Whether `version` names one version (`1.2.3`, `v1.2.3-rc.1+build`), not a range.
fn is_exact_version(version: &str) -> bool {
    let v = version.strip_prefix('v').unwrap_or(version);
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
        && !v.contains([' ', '*', '^', '~', '<', '>', '=', '|', ','])
}

/// A file-name-safe form of a chart name or version.
fn safe_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '+') {
                c
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_start_matches('.')
        .to_owned()
}

/// Pulls `chart` (or takes it from the cache) and returns the cached archive.
async fn pull_chart(
    tools: &RenderTools,
    home: &Path,
    repo_url: &str,
    chart: &str,
    version: &str,
    creds: &Credentials,
    pass_credentials: bool,
) -> Result<PathBuf, RenderError> {
    let shown_url = redact_url(repo_url);
    if chart.trim().is_empty() || chart.contains(['/', '\\']) || chart.starts_with('.') {
        return Err(RenderError::InvalidOptions {
            field: "chart".into(),
            message: format!("{chart:?} is not a chart name"),
        });
    }
    let cache = tools
        .charts_dir()
        .join(repo_dir_name(repo_url))
        .join(safe_name(chart));
    let cached = |v: &str| cache.join(format!("{}.tgz", safe_name(v)));
    let version = version.trim();
    let exact = is_exact_version(version);
    // A chart's own version may or may not start with `v`: look for both spellings.
    let cached_exact = || {
        [version, version.strip_prefix('v').unwrap_or(version)]
            .into_iter()
            .map(cached)
            .find(|p| p.is_file())
    };
    if exact && let Some(hit) = cached_exact() {
        return Ok(hit);
    }
    let lock = tools.chart_lock(&format!("{repo_url}\n{chart}"));
    let _guard = lock.lock().await;
    // Another render may have pulled it while this one waited.
    if exact && let Some(hit) = cached_exact() {
        return Ok(hit);
    }

    let secrets: Vec<String> = creds
        .password
        .iter()
        .map(|p| p.expose().to_owned())
        .filter(|p| !p.is_empty())
        .collect();
    let dest = home.join("pulled");
    std::fs::create_dir_all(&dest).map_err(|source| RenderError::Io {
        path: dest.display().to_string(),
        source,
    })?;
    let oci = repo_url.starts_with("oci://");
    let reference = if oci {
        if let (Some(user), Some(password)) = (&creds.username, &creds.password) {
            let host = repo_url
                .trim_start_matches("oci://")
                .split('/')
                .next()
                .unwrap_or_default();
            let mut args = vec![
                "registry".into(),
                "login".into(),
                host.into(),
                "--username".into(),
                user.clone(),
                "--password-stdin".into(),
            ];
            if creds.insecure {
                args.push("--insecure".into());
            }
            let mut spec = tools
                .helm_command(home, home, args)
                .with_stdin(password.expose().as_bytes().to_vec());
            for s in &secrets {
                spec = spec.with_secret(s.clone());
            }
            run_command(spec).await.map_err(|err| {
                match split_failure(err, "helm", tools::HELM_ENV) {
                    Ok(message) => RenderError::ChartRepositoryUnreachable {
                        repo_url: shown_url.clone(),
                        chart: chart.to_owned(),
                        message,
                    },
                    Err(e) => e,
                }
            })?;
        }
        format!("{}/{chart}", repo_url.trim_end_matches('/'))
    } else {
        let mut args: Vec<String> =
            vec!["repo".into(), "add".into(), "ferry".into(), repo_url.into()];
        let mut stdin = None;
        if let Some(user) = creds.username.as_deref().filter(|u| !u.is_empty()) {
            args.extend(["--username".into(), user.into()]);
            stdin = Some(
                creds
                    .password
                    .as_ref()
                    .map(|p| p.expose().as_bytes().to_vec())
                    .unwrap_or_default(),
            );
            args.push("--password-stdin".into());
        }
        if creds.insecure {
            args.push("--insecure-skip-tls-verify".into());
        }
        if pass_credentials {
            args.push("--pass-credentials".into());
        }
        let mut spec = tools.helm_command(home, home, args);
        if let Some(stdin) = stdin {
            spec = spec.with_stdin(stdin);
        }
        for s in &secrets {
            spec = spec.with_secret(s.clone());
        }
        run_command(spec).await.map_err(|err| {
            match split_failure(err, "helm", tools::HELM_ENV) {
                Ok(message) => RenderError::ChartRepositoryUnreachable {
                    repo_url: shown_url.clone(),
                    chart: chart.to_owned(),
                    message,
                },
                Err(e) => e,
            }
        })?;
        format!("ferry/{chart}")
    };

    let mut args: Vec<String> = vec!["pull".into(), reference];
    if !version.is_empty() {
        args.extend(["--version".into(), version.into()]);
    }
    args.extend(["--destination".into(), dest.to_string_lossy().into_owned()]);
    if creds.insecure && !oci {
        args.push("--insecure-skip-tls-verify".into());
    }
    let mut spec = tools.helm_command(home, home, args);
    for s in &secrets {
        spec = spec.with_secret(s.clone());
    }
    tools.count_pull();
    tracing::debug!(repo = %shown_url, chart, version, "pulling chart");
    if let Err(err) = run_command(spec).await {
        let message =
            split_failure(err, "helm", tools::HELM_ENV)?.replace(" (try 'helm repo update')", "");
        let not_found = message.contains("not found")
            || message.contains("no chart version found")
            || message.contains("no chart name found");
        return Err(if not_found {
            RenderError::ChartVersionNotFound {
                repo_url: shown_url,
                chart: chart.to_owned(),
                version: version.to_owned(),
                message,
            }
        } else if oci {
            RenderError::ChartRepositoryUnreachable {
                repo_url: shown_url,
                chart: chart.to_owned(),
                message,
            }
        } else {
            RenderError::ChartPull {
                repo_url: shown_url,
                chart: chart.to_owned(),
                version: version.to_owned(),
                message,
            }
        });
    }

    // The archive is `<chart>-<version>.tgz`: the version helm resolved.
    let archive = std::fs::read_dir(&dest)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .ok_or_else(|| RenderError::ChartPull {
            repo_url: shown_url.clone(),
            chart: chart.to_owned(),
            version: version.to_owned(),
            message: "helm pull wrote no chart archive".into(),
        })?;
    let file_name = archive
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let resolved = file_name
        .strip_prefix(chart)
        .and_then(|r| r.strip_prefix('-'))
        .filter(|r| !r.is_empty())
        .unwrap_or(&file_name)
        .to_owned();
    std::fs::create_dir_all(&cache).map_err(|source| RenderError::Io {
        path: cache.display().to_string(),
        source,
    })?;
    let target = cached(&resolved);
    if !target.is_file() {
        // Copy next to the target, then rename: readers never see a partial archive.
        let partial = cache.join(format!(".{}.partial", safe_name(&resolved)));
        std::fs::copy(&archive, &partial)
            .and_then(|_| std::fs::rename(&partial, &target))
            .map_err(|source| RenderError::Io {
                path: target.display().to_string(),
                source,
            })?;
    }
    Ok(target)
}

/// Unpacks a chart archive into `<work>/chart/` and returns the chart's directory.
async fn extract_chart(
    home: &Path,
    archive: &Path,
    work: &Path,
    chart: &str,
) -> Result<PathBuf, RenderError> {
    let dest = work.join("chart");
    std::fs::create_dir_all(&dest).map_err(|source| RenderError::Io {
        path: dest.display().to_string(),
        source,
    })?;
    // `helm pull --untar` would fetch again; `tar` refuses members with `..` or a leading `/`.
    let spec = crate::command::CommandSpec::new("tar", &dest)
        .with_args([
            "-xzf".to_owned(),
            archive.to_string_lossy().into_owned(),
            "--no-same-owner".to_owned(),
            "--no-same-permissions".to_owned(),
        ])
        .with_env("HOME", home.to_string_lossy())
        .with_env("LC_ALL", "C")
        .with_label("tar -xzf (chart archive)");
    run_command(spec)
        .await
        .map_err(|err| RenderError::ChartPull {
            repo_url: archive.display().to_string(),
            chart: chart.to_owned(),
            version: String::new(),
            message: format!("unpacking the chart archive: {err}"),
        })?;
    let dir = std::fs::read_dir(&dest)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.join("Chart.yaml").is_file())
        .ok_or_else(|| RenderError::ChartPull {
            repo_url: archive.display().to_string(),
            chart: chart.to_owned(),
            version: String::new(),
            message: "the archive holds no Chart.yaml".into(),
        })?;
    let dir = dir.canonicalize().map_err(|source| RenderError::Io {
        path: dir.display().to_string(),
        source,
    })?;
    check_symlinks_inside(&dir, &dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn options_read_argo_cd_json_and_ignore_unknown_fields() {
        let opts = HelmOptions::from_json(Some(&json!({
            "valueFiles": ["values-prod.yaml", "$env/web.yaml"],
            "parameters": [{"name": "replicas", "value": 3}, {"name": "tag", "value": "1.0", "forceString": true}],
            "fileParameters": [{"name": "cfg", "path": "files/cfg.txt"}],
            "releaseName": "web",
            "skipCrds": true,
            "valuesObject": {"a": 1},
            "somethingNew": "ok",
        })))
        .unwrap();
        assert_eq!(opts.value_files.len(), 2);
        assert_eq!(opts.parameters[0].value, "3");
        assert!(opts.parameters[1].force_string);
        assert_eq!(opts.release_name.as_deref(), Some("web"));
        assert!(opts.skip_crds);
        assert_eq!(
            HelmOptions::from_json(None).unwrap(),
            HelmOptions::default()
        );
        let err = HelmOptions::from_json(Some(&json!({"valueFiles": "x"}))).unwrap_err();
        assert!(err.to_string().starts_with("helm: "), "{err}");
    }

    #[test]
    fn exact_versions_and_ranges() {
        for v in ["1.2.3", "v1.2.3", "1.2.3-rc.1", "1.2.3+build.5"] {
            assert!(is_exact_version(v), "{v}");
        }
        for v in [
            "", "1.2", "1.2.*", "^1.2.0", "~1.2.0", ">=1.0 <2", "1.x", "*",
        ] {
            assert!(!is_exact_version(v), "{v}");
        }
    }

    #[test]
    fn set_values_escape_commas_except_lists() {
        assert_eq!(escape_set_value("a,b"), r"a\,b");
        assert_eq!(escape_set_value(r"a\,b"), r"a\,b");
        assert_eq!(escape_set_value("{a,b}"), "{a,b}");
        assert_eq!(escape_set_value("plain"), "plain");
    }

    #[test]
    fn inline_values_prefer_the_object() {
        let mut opts = HelmOptions {
            values: Some(json!("a: 1\n")),
            ..Default::default()
        };
        assert_eq!(inline_values(&opts).unwrap().as_deref(), Some("a: 1\n"));
        opts.values_object = Some(json!({"b": 2}));
        assert_eq!(inline_values(&opts).unwrap().as_deref(), Some(r#"{"b":2}"#));
        assert_eq!(inline_values(&HelmOptions::default()).unwrap(), None);
    }

    #[test]
    fn template_output_is_split_by_source() {
        let out = "---\n# Source: c/templates/a.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\n# Source: c/templates/b.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: b\n";
        let got = parse_template_output("c", out).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].source_file, "c/templates/a.yaml");
        assert_eq!(got[1].source_file, "c/templates/b.yaml");
        assert_eq!(got[1].line, 2);
        let err =
            parse_template_output("c", "---\n# Source: c/templates/x.yaml\nkind: [\n").unwrap_err();
        assert!(err.to_string().starts_with("c/templates/x.yaml:"), "{err}");
    }
}
