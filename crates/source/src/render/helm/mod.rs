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
//! | `releaseName` (default: the app's name) | the release name (a DNS-1123 name of at most 53 characters, as helm wants) |
//! | `namespace` (default: the destination namespace) | `--namespace` (a DNS-1123 label) |
//! | `skipCrds` | no `--include-crds` (otherwise CRDs in `crds/` are rendered) |
//! | `skipTests`, `skipSchemaValidation` | `--skip-tests`, `--skip-schema-validation` |
//! | `kubeVersion`, `apiVersions` | `--kube-version`, `--api-versions` (each) |
//! | `valueFiles` | `--values`, in order; relative to the chart directory, or `$ref/path` in another source's checkout |
//! | `values` / `valuesObject` | one more `--values` file after the value files (`valuesObject` wins when both are set) |
//! | `parameters` | `--set name=value`, or `--set-string` with `forceString`; commas in a value are escaped unless it is a `{a,b}` list |
//! | `fileParameters` | `--set-file name=path`, the path resolved like a value file |
//! | `passCredentials` | `--pass-credentials` for the chart repository |
//!
//! Every value reaches helm as `--flag=value`, and the release name and chart come after `--`:
//! no spec value can be read as an option (`releaseName: --post-renderer=sh` is refused as an
//! invalid release name, and could not have become an option anyway).
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
    self, RenderTools, check_symlinks_inside, display_relative, prepare_home, split_failure,
};
use super::{Manifest, RenderError, push_rendered, resolve_app_dir, resolve_inside};
use crate::command::run_command;
use crate::git::{Credentials, redact_url};

mod chart;

use chart::{extract_chart, prepare_dependencies, pull_chart};

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
    /// The age keys SOPS-encrypted value files are decrypted with.
    pub keys: ferry_secrets::KeyRing,
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
    let release_field = if opts.release_name.as_deref().is_some_and(|r| !r.is_empty()) {
        "helm.releaseName"
    } else {
        "metadata.name"
    };
    let release = opts
        .release_name
        .as_deref()
        .filter(|r| !r.is_empty())
        .unwrap_or(&req.app_name);
    check_release_name(release_field, release)?;
    // Every value goes in `--flag=value` form, and the release name and chart after `--`: no
    // spec value can be read by helm as an option.
    let mut args: Vec<String> = vec!["template".into()];
    let namespace = opts
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())
        .unwrap_or(&req.namespace);
    if !namespace.is_empty() {
        let field = if opts.namespace.as_deref().is_some_and(|n| !n.is_empty()) {
            "helm.namespace"
        } else {
            "spec.destination.namespace"
        };
        check_dns_label(field, namespace)?;
        args.push(format!("--namespace={namespace}"));
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
        check_plain_value("helm.kubeVersion", v)?;
        args.push(format!("--kube-version={v}"));
    }
    for (i, api) in opts
        .api_versions
        .iter()
        .enumerate()
        .filter(|(_, a)| !a.is_empty())
    {
        check_plain_value(&format!("helm.apiVersions[{i}]"), api)?;
        args.push(format!("--api-versions={api}"));
    }
    // Clear values of decrypted SOPS value files, masked in helm's messages.
    let mut clear_values: Vec<String> = Vec::new();
    let mut sops_dir: Option<tempfile::TempDir> = None;
    for (i, file) in opts.value_files.iter().enumerate() {
        let field = format!("helm.valueFiles[{i}]");
        match resolve_file(file, &field, &value_root, &value_base, &req.value_refs)? {
            Some(path) => {
                // A SOPS-encrypted values file is decrypted into the private work directory
                // (removed when this render ends); helm reads the clear copy.
                let path = match super::sops::read_if_encrypted(&path, file)? {
                    Some(text) => {
                        // A directory of its own, marked for removal after a crash.
                        let dir = match &sops_dir {
                            Some(d) => d,
                            None => sops_dir.insert(tools.private_dir("sops-helm-")?),
                        };
                        let clear = dir.path().join(format!("values-{i}.yaml"));
                        clear_values.extend(super::sops::write_decrypted(
                            file, &text, &clear, &req.keys,
                        )?);
                        clear
                    }
                    None => path,
                };
                args.push(format!("--values={}", path.to_string_lossy()));
            }
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
        args.push(format!("--values={}", path.to_string_lossy()));
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
        args.push(format!("{flag}={}={}", p.name, escape_set_value(&p.value)));
    }
    for (i, p) in opts.file_parameters.iter().enumerate() {
        if p.name.trim().is_empty() {
            return Err(RenderError::InvalidOptions {
                field: format!("helm.fileParameters[{i}].name"),
                message: "is empty".into(),
            });
        }
        let field = format!("helm.fileParameters[{i}].path");
        let path = resolve_file(&p.path, &field, &value_root, &value_base, &req.value_refs)?
            .ok_or_else(|| RenderError::InvalidOptions {
                field,
                message: format!("file {:?} does not exist", p.path),
            })?;
        args.push(format!("--set-file={}={}", p.name, path.to_string_lossy()));
    }
    args.extend([
        "--".into(),
        release.into(),
        chart_arg.to_string_lossy().into_owned(),
    ]);

    let spec = tools.helm_command(&home, work.path(), args);
    tracing::debug!(chart = %chart_label, command = %spec.display(), "running helm template");
    let out = match run_command(spec).await {
        Ok(out) => out,
        Err(err) => {
            let message = split_failure(err, "helm", tools::HELM_ENV)?;
            return Err(RenderError::HelmTemplate {
                chart: chart_label,
                message: super::sops::redact_clear(&message, &clear_values),
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
    parse_template_output(&chart_label, &out.stdout_text(), &req.keys)
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

/// Helm's own rule for release names: a DNS-1123 subdomain of at most 53 characters. Checked
/// before helm runs, so that no release name can be read as an option.
pub fn check_release_name(field: &str, name: &str) -> Result<(), RenderError> {
    if name.len() > 53 || !is_dns1123_subdomain(name) {
        return Err(RenderError::InvalidOptions {
            field: field.to_owned(),
            message: format!(
                "{name:?} is not a valid Helm release name: use at most 53 lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"
            ),
        });
    }
    Ok(())
}

/// A namespace given to helm must be a DNS-1123 label (as Kubernetes requires).
fn check_dns_label(field: &str, name: &str) -> Result<(), RenderError> {
    if name.len() > 63 || !is_dns1123_label(name) {
        return Err(RenderError::InvalidOptions {
            field: field.to_owned(),
            message: format!(
                "{name:?} is not a valid namespace: use at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit"
            ),
        });
    }
    Ok(())
}

/// A version-like value (`kubeVersion`, `apiVersions`): no leading `-`, no whitespace or
/// control characters.
fn check_plain_value(field: &str, value: &str) -> Result<(), RenderError> {
    if value.starts_with('-') || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(RenderError::InvalidOptions {
            field: field.to_owned(),
            message: format!(
                "{value:?} is not a version: it may not start with '-' or hold spaces"
            ),
        });
    }
    Ok(())
}

fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns1123_subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(is_dns1123_label)
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
fn parse_template_output(
    chart: &str,
    text: &str,
    keys: &ferry_secrets::KeyRing,
) -> Result<Vec<Manifest>, RenderError> {
    let mut out = Vec::new();
    let mut chunk = String::new();
    let flush = |chunk: &mut String, out: &mut Vec<Manifest>| {
        let file = chunk
            .lines()
            .find_map(|l| l.strip_prefix("# Source: "))
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|| format!("{chart} (helm template output)"));
        let result = push_rendered(&file, chunk, keys, out);
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

#[cfg(test)]
mod tests {
    use super::chart::*;
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
        let got = parse_template_output("c", out, &Default::default()).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].source_file, "c/templates/a.yaml");
        assert_eq!(got[1].source_file, "c/templates/b.yaml");
        assert_eq!(got[1].line, 2);
        let err = parse_template_output(
            "c",
            "---\n# Source: c/templates/x.yaml\nkind: [\n",
            &Default::default(),
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("c/templates/x.yaml:"), "{err}");
    }
}
