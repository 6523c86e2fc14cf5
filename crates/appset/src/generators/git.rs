//! The `git` generator: `directories` (one parameter set per matching directory of the
//! repository, minus those an `exclude: true` entry matches) and `files` (the parameters inside
//! each matching JSON or YAML file: one set per file, or one per item when the file holds a list).
//!
//! The repository is fetched and checked out by the engine's repository cache, with the same
//! credentials and URL rules as Applications ([`RepoCheckouts`]). Patterns only filter what a
//! walk of the checkout finds: no path from the spec is ever opened, symlinks are not followed
//! (a symlinked file is not read, a symlinked directory not entered), and a pattern that is
//! absolute or climbs with `..` is an error.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::params::{GeneratorError, Params};

/// A checkout of one commit: its SHA and its root directory (read-only).
#[derive(Debug, Clone)]
pub struct Checkout {
    /// The commit.
    pub sha: String,
    /// Where its files are.
    pub root: PathBuf,
}

/// Fetches and checks out repositories for the `git` generator.
pub trait RepoCheckouts: Send + Sync {
    /// `repo_url` at `revision` (branch, tag, commit or `HEAD`). The error says what failed.
    fn checkout<'a>(
        &'a self,
        repo_url: &'a str,
        revision: &'a str,
    ) -> futures::future::BoxFuture<'a, Result<Checkout, String>>;
}

/// At most this many files and directories are looked at in one checkout.
const MAX_ENTRIES: usize = 200_000;
/// A parameter file larger than this is an error.
const MAX_FILE_BYTES: u64 = 1 << 20;

/// The parsed `git` block.
#[derive(Debug, Clone)]
pub struct GitSpec {
    /// `repoURL`.
    pub repo_url: String,
    /// `revision` (`HEAD` when unset).
    pub revision: String,
    /// `directories` as (pattern, exclude).
    pub directories: Vec<(String, bool)>,
    /// `files` as (pattern, exclude).
    pub files: Vec<(String, bool)>,
    /// `pathParamPrefix`.
    pub path_param_prefix: String,
    /// `requeueAfterSeconds`.
    pub requeue_after_seconds: Option<u64>,
}

impl GitSpec {
    /// Reads a `git` block; `at` is its place in the spec, for messages.
    pub fn parse(spec: &Value, at: &str) -> Result<GitSpec, GeneratorError> {
        let err = |m: String| GeneratorError::new(format!("{at}.git"), m);
        let repo_url = spec
            .get("repoURL")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| err("repoURL is missing: name the repository to read".into()))?
            .to_string();
        let revision = spec
            .get("revision")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("HEAD")
            .to_string();
        let items = |key: &str| -> Result<Vec<(String, bool)>, GeneratorError> {
            let Some(list) = spec.get(key).filter(|v| !v.is_null()) else {
                return Ok(Vec::new());
            };
            let list = list
                .as_array()
                .ok_or_else(|| err(format!("{key} must be a list of {{path, exclude}}")))?;
            list.iter()
                .enumerate()
                .map(|(i, item)| {
                    let path = item
                        .get("path")
                        .and_then(Value::as_str)
                        .filter(|p| !p.is_empty())
                        .ok_or_else(|| err(format!("{key}[{i}] has no path")))?;
                    check_pattern(path)
                        .map_err(|m| err(format!("{key}[{i}].path {path:?}: {m}")))?;
                    let exclude = item
                        .get("exclude")
                        .and_then(Value::as_bool)
                        .unwrap_or(false);
                    Ok((path.to_string(), exclude))
                })
                .collect()
        };
        let directories = items("directories")?;
        let files = items("files")?;
        if directories.is_empty() == files.is_empty() {
            return Err(err(
                "give either directories or files (exactly one of them, not empty)".into(),
            ));
        }
        let requeue_after_seconds = match spec.get("requeueAfterSeconds") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_u64().ok_or_else(|| {
                err("requeueAfterSeconds must be a whole number of seconds".into())
            })?),
        };
        Ok(GitSpec {
            repo_url,
            revision,
            directories,
            files,
            path_param_prefix: spec
                .get("pathParamPrefix")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            requeue_after_seconds,
        })
    }
}

/// Fetches the repository and generates the parameter sets of a `git` block.
pub async fn generate(
    spec: &Value,
    repos: &dyn RepoCheckouts,
    go_template: bool,
    at: &str,
) -> Result<Vec<Params>, GeneratorError> {
    let git = GitSpec::parse(spec, at)?;
    let err = |m: String| GeneratorError::new(format!("{at}.git"), m);
    let checkout = repos
        .checkout(&git.repo_url, &git.revision)
        .await
        .map_err(|m| {
            err(format!(
                "reading {} at {}: {m}",
                ferry_core::redact::redact_url(&git.repo_url),
                git.revision
            ))
        })?;
    let root = checkout.root.clone();
    // The walk reads the disk: off the async workers.
    tokio::task::spawn_blocking(move || params_from_checkout(&git, &root, go_template))
        .await
        .map_err(|e| err(format!("reading the checkout: {e}")))?
        .map_err(err)
}

/// The parameter sets of `git` from a checkout at `root`.
pub fn params_from_checkout(
    git: &GitSpec,
    root: &Path,
    go_template: bool,
) -> Result<Vec<Params>, String> {
    let (dirs, files) = walk(root)?;
    if !git.directories.is_empty() {
        let chosen = filter_paths(&git.directories, &dirs)?;
        return Ok(chosen
            .iter()
            .map(|d| directory_params(d, &git.path_param_prefix, go_template))
            .collect());
    }
    let chosen = filter_paths(&git.files, &files)?;
    let mut out = Vec::new();
    for file in chosen {
        out.extend(file_params(
            root,
            &file,
            &git.path_param_prefix,
            go_template,
        )?);
    }
    Ok(out)
}

/// Refuses patterns that could point outside the checkout.
fn check_pattern(pattern: &str) -> Result<(), String> {
    if pattern.starts_with('/') || pattern.contains('\\') {
        return Err("must be relative to the repository root (no leading `/`, no `\\`)".into());
    }
    if pattern.split('/').any(|seg| seg == "..") {
        return Err("must not contain `..`: it would leave the repository".into());
    }
    Ok(())
}

/// Paths that some include pattern matches and no exclude pattern does, sorted. Patterns follow
/// Go's `path.Match` (`*` stays within one directory), plus `**` across directories.
fn filter_paths(patterns: &[(String, bool)], paths: &[String]) -> Result<Vec<String>, String> {
    let compile = |p: &str| {
        globset::GlobBuilder::new(p)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map(|g| g.compile_matcher())
            .map_err(|e| format!("pattern {p:?} is not a valid glob: {e}"))
    };
    let mut include = Vec::new();
    let mut exclude = Vec::new();
    for (p, ex) in patterns {
        let m = compile(p)?;
        if *ex {
            exclude.push(m);
        } else {
            include.push(m);
        }
    }
    let mut out: Vec<String> = paths
        .iter()
        .filter(|p| include.iter().any(|m| m.is_match(p.as_str())))
        .filter(|p| !exclude.iter().any(|m| m.is_match(p.as_str())))
        .cloned()
        .collect();
    out.sort();
    Ok(out)
}

/// Every directory and regular file below `root` (relative, `/`-separated), without hidden
/// directories, without following symlinks.
fn walk(root: &Path) -> Result<(Vec<String>, Vec<String>), String> {
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    let mut stack = vec![(root.to_path_buf(), String::new())];
    let mut seen = 0usize;
    while let Some((dir, rel)) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| format!("listing {rel:?}: {e}"))?;
        for entry in entries {
            let entry = entry.map_err(|e| format!("listing {rel:?}: {e}"))?;
            seen += 1;
            if seen > MAX_ENTRIES {
                return Err(format!(
                    "the repository has more than {MAX_ENTRIES} files and directories"
                ));
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            // symlink_metadata: a symlink is neither a directory nor a file here.
            let meta = entry
                .path()
                .symlink_metadata()
                .map_err(|e| format!("reading {path:?}: {e}"))?;
            if meta.is_dir() {
                if name.starts_with('.') {
                    continue;
                }
                dirs.push(path.clone());
                stack.push((entry.path(), path));
            } else if meta.is_file() {
                files.push(path);
            }
        }
    }
    Ok((dirs, files))
}

/// `path`, `path.basename`, `path.basenameNormalized`, `path[N]` (legacy) or
/// `path: {path, basename, basenameNormalized, segments}` (Go), under `prefix` when given.
fn directory_params(dir: &str, prefix: &str, go_template: bool) -> Params {
    let mut p = Params::new();
    insert_path_params(&mut p, dir, None, prefix, go_template);
    p
}

fn insert_path_params(
    p: &mut Params,
    dir: &str,
    file: Option<&str>,
    prefix: &str,
    go_template: bool,
) {
    let base = dir.rsplit('/').next().unwrap_or(dir).to_string();
    let normalized = super::clusters::normalize_name(&base);
    let segments: Vec<&str> = dir.split('/').collect();
    if go_template {
        let mut path = serde_json::Map::new();
        path.insert("path".into(), dir.into());
        path.insert("basename".into(), base.into());
        path.insert("basenameNormalized".into(), normalized.into());
        path.insert("segments".into(), segments.clone().into());
        if let Some(f) = file {
            path.insert("filename".into(), f.into());
            path.insert(
                "filenameNormalized".into(),
                super::clusters::normalize_name(f).into(),
            );
        }
        if prefix.is_empty() {
            p.insert("path".into(), Value::Object(path));
        } else {
            let mut outer = serde_json::Map::new();
            outer.insert("path".into(), Value::Object(path));
            p.insert(prefix.into(), Value::Object(outer));
        }
        return;
    }
    let name = if prefix.is_empty() {
        "path".to_string()
    } else {
        format!("{prefix}.path")
    };
    p.insert(name.clone(), dir.into());
    p.insert(format!("{name}.basename"), base.into());
    p.insert(format!("{name}.basenameNormalized"), normalized.into());
    if let Some(f) = file {
        p.insert(format!("{name}.filename"), f.into());
        p.insert(
            format!("{name}.filenameNormalized"),
            super::clusters::normalize_name(f).into(),
        );
    }
    for (i, seg) in segments.iter().enumerate() {
        if !seg.is_empty() {
            p.insert(format!("{name}[{i}]"), (*seg).into());
        }
    }
}

/// The parameter sets in one JSON/YAML file: the object (or each object of a list), with the
/// file's path parameters (`path` is the file's directory, `path.filename` its name).
fn file_params(
    root: &Path,
    rel: &str,
    prefix: &str,
    go_template: bool,
) -> Result<Vec<Params>, String> {
    let full = root.join(rel);
    let meta = full
        .symlink_metadata()
        .map_err(|e| format!("reading {rel}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("{rel} is not a regular file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(format!(
            "{rel} is larger than {MAX_FILE_BYTES} bytes: parameter files must be small"
        ));
    }
    let text = std::fs::read_to_string(&full).map_err(|e| format!("reading {rel}: {e}"))?;
    let parsed: Value = if text.trim().is_empty() {
        Value::Object(Params::new())
    } else {
        serde_saphyr::from_str(&text).map_err(|e| format!("{rel} is neither JSON nor YAML: {e}"))?
    };
    let objects = match parsed {
        Value::Object(m) => vec![m],
        Value::Null => vec![Params::new()],
        Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| match item {
                Value::Object(m) => Ok(m),
                _ => Err(format!("{rel}: item {i} of the list is not an object")),
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(format!(
                "{rel} must hold an object or a list of objects of parameters"
            ));
        }
    };
    let (dir, file) = match rel.rsplit_once('/') {
        Some((d, f)) => (d.to_string(), f.to_string()),
        None => (".".to_string(), rel.to_string()),
    };
    Ok(objects
        .into_iter()
        .map(|obj| {
            let mut p = if go_template {
                obj
            } else {
                super::list::flatten_legacy(&obj)
            };
            insert_path_params(&mut p, &dir, Some(&file), prefix, go_template);
            p
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tree() -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for d in ["apps/web", "apps/api", "apps/skip", ".hidden/x", "other"] {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        std::fs::write(
            t.path().join("apps/web/config.json"),
            r#"{"cluster": {"name": "dev", "replicas": 2}}"#,
        )
        .unwrap();
        std::fs::write(
            t.path().join("apps/api/config.json"),
            "- cluster: {name: a}\n- cluster: {name: b}\n",
        )
        .unwrap();
        t
    }

    fn spec(v: Value) -> GitSpec {
        GitSpec::parse(&v, "generators[0]").unwrap()
    }

    #[test]
    fn directories_with_exclude() {
        let t = tree();
        let s = spec(json!({"repoURL": "r", "directories": [
            {"path": "apps/skip", "exclude": true}, {"path": "apps/*"}
        ]}));
        let p = params_from_checkout(&s, t.path(), false).unwrap();
        let paths: Vec<&str> = p.iter().map(|p| p["path"].as_str().unwrap()).collect();
        assert_eq!(
            paths,
            ["apps/api", "apps/web"],
            "exclude wins, in any order"
        );
        assert_eq!(p[1]["path.basename"], "web");
        assert_eq!(p[1]["path[0]"], "apps");
        assert_eq!(p[1]["path[1]"], "web");
        let go = params_from_checkout(&s, t.path(), true).unwrap();
        assert_eq!(go[0]["path"]["basenameNormalized"], "api");
        assert_eq!(go[0]["path"]["segments"], json!(["apps", "api"]));
    }

    #[test]
    fn hidden_directories_are_not_listed() {
        let t = tree();
        let s = spec(json!({"repoURL": "r", "directories": [{"path": "*"}]}));
        let p = params_from_checkout(&s, t.path(), false).unwrap();
        let paths: Vec<&str> = p.iter().map(|p| p["path"].as_str().unwrap()).collect();
        assert_eq!(paths, ["apps", "other"]);
    }

    #[test]
    fn files_give_their_content_and_path() {
        let t = tree();
        let s = spec(
            json!({"repoURL": "r", "files": [{"path": "apps/**/config.json"}], "pathParamPrefix": "cfg"}),
        );
        let p = params_from_checkout(&s, t.path(), false).unwrap();
        assert_eq!(p.len(), 3, "two items of the api list, one web object");
        assert_eq!(p[0]["cluster.name"], "a");
        assert_eq!(p[0]["cfg.path"], "apps/api");
        assert_eq!(p[0]["cfg.path.filename"], "config.json");
        assert_eq!(p[2]["cluster.replicas"], "2");
        let go = params_from_checkout(&s, t.path(), true).unwrap();
        assert_eq!(go[2]["cluster"]["replicas"], 2);
        assert_eq!(go[2]["cfg"]["path"]["basename"], "web");
        assert_eq!(go[2]["cfg"]["path"]["filename"], "config.json");
    }

    #[test]
    fn nothing_outside_the_checkout_is_read() {
        let t = tree();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret.json"), r#"{"token": "x"}"#).unwrap();
        std::os::unix::fs::symlink(
            outside.path().join("secret.json"),
            t.path().join("apps/web/evil.json"),
        )
        .unwrap();
        std::os::unix::fs::symlink(outside.path(), t.path().join("apps/link")).unwrap();
        let s = spec(json!({"repoURL": "r", "files": [{"path": "apps/**/*.json"}]}));
        let p = params_from_checkout(&s, t.path(), false).unwrap();
        assert!(
            p.iter().all(|p| !p.contains_key("token")),
            "a symlinked file is not read: {p:?}"
        );
        let s = spec(json!({"repoURL": "r", "directories": [{"path": "apps/*"}]}));
        let p = params_from_checkout(&s, t.path(), false).unwrap();
        assert!(p.iter().all(|p| p["path"] != "apps/link"), "{p:?}");
        for bad in ["../x/*.json", "/etc/passwd", "apps/../../x"] {
            let e = GitSpec::parse(
                &json!({"repoURL": "r", "files": [{"path": bad}]}),
                "generators[0]",
            )
            .unwrap_err();
            assert_eq!(e.generator, "generators[0].git");
            assert!(e.message.contains("files[0].path"), "{e}");
        }
    }

    #[test]
    fn bad_files_and_specs_are_errors() {
        let t = tree();
        std::fs::write(t.path().join("other/bad.yaml"), "a: [").unwrap();
        let s = spec(json!({"repoURL": "r", "files": [{"path": "other/*.yaml"}]}));
        let e = params_from_checkout(&s, t.path(), false).unwrap_err();
        assert!(e.contains("other/bad.yaml"), "{e}");
        let e = GitSpec::parse(&json!({"repoURL": "r"}), "g").unwrap_err();
        assert!(e.message.contains("either directories or files"), "{e}");
        let e = GitSpec::parse(&json!({"directories": [{"path": "*"}]}), "g").unwrap_err();
        assert!(e.message.contains("repoURL"), "{e}");
    }
}
