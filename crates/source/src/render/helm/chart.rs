//! Where a chart comes from: a private copy of a checkout with its dependencies built, or an
//! archive pulled from a chart repository or an OCI registry (cached by repository, chart and
//! resolved version) and extracted.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::super::tools::{self, RenderTools, check_symlinks_inside, copy_tree, split_failure};
use super::super::{RenderError, resolve_inside};

use crate::command::run_command;
use crate::git::{Credentials, redact_url, repo_dir_name};

/// Runs `helm dependency build` in a private copy of the checkout when `Chart.yaml` lists
/// dependencies that `charts/` lacks. Returns the chart directory in the copy, or `None` when
/// nothing was needed.
pub(super) async fn prepare_dependencies(
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
    let Some((_, meta)) = super::super::parse_yaml(&file, &text)?.into_iter().next() else {
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
            "--".into(),
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
pub(super) fn has_dependency(charts: &Path, name: &str) -> bool {
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
pub(super) fn is_exact_version(version: &str) -> bool {
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
pub(super) fn safe_name(s: &str) -> String {
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
pub(super) async fn pull_chart(
    tools: &RenderTools,
    home: &Path,
    repo_url: &str,
    chart: &str,
    version: &str,
    creds: &Credentials,
    pass_credentials: bool,
) -> Result<PathBuf, RenderError> {
    let shown_url = redact_url(repo_url);
    if chart.trim().is_empty()
        || chart.contains(['/', '\\'])
        || chart.starts_with(['.', '-'])
        || chart.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(RenderError::InvalidOptions {
            field: "chart".into(),
            message: format!("{chart:?} is not a chart name"),
        });
    }
    let cache = tools
        .charts_dir()
        .join(repo_dir_name(tools.cache_key(), repo_url))
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
                format!("--username={user}"),
                "--password-stdin".into(),
            ];
            if creds.insecure {
                args.push("--insecure".into());
            }
            args.extend(["--".into(), host.into()]);
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
        let mut args: Vec<String> = vec!["repo".into(), "add".into()];
        let mut stdin = None;
        if let Some(user) = creds.username.as_deref().filter(|u| !u.is_empty()) {
            args.push(format!("--username={user}"));
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
        args.extend(["--".into(), "ferry".into(), repo_url.into()]);
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

    let mut args: Vec<String> = vec!["pull".into()];
    if !version.is_empty() {
        args.push(format!("--version={version}"));
    }
    args.push(format!("--destination={}", dest.to_string_lossy()));
    if creds.insecure && !oci {
        args.push("--insecure-skip-tls-verify".into());
    }
    args.extend(["--".into(), reference]);
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
pub(super) async fn extract_chart(
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
