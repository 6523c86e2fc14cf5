//! The `pullRequest` generator: one parameter set per open pull (merge) request of a GitHub,
//! GitLab, Gitea or Bitbucket Server repository, as Argo CD generates them.
//!
//! Parameters: `number`, `title`, `branch`, `branch_slug`, `target_branch`,
//! `target_branch_slug`, `head_sha`, `head_short_sha` (8), `head_short_sha_7`, `author`,
//! `labels` (a list) and `values`. `labels` in the provider's spec keeps only pull requests that
//! carry every one of them; `filters[]` (`branchMatch`, `targetBranchMatch`, `titleMatch`) keep
//! those that pass any filter, each filter's conditions all holding.

use std::time::Duration;

use regex::Regex;
use serde_json::{Value, json};

use super::RemoteContext;
use super::remote;
use super::scm::{self, Conn, Kind, Pull};
use crate::params::{GeneratorError, Params};

const GENERATOR: &str = "pullRequest";

/// How often Argo CD lists the pull requests again when `requeueAfterSeconds` is not set.
pub const DEFAULT_REQUEUE: Duration = Duration::from_secs(30 * 60);

/// The longest `branch_slug` (Argo CD sets gosimple/slug's `MaxLength` to 50).
pub const SLUG_MAX: usize = 50;

/// When the ApplicationSet should be generated again.
pub fn requeue_after(spec: &Value) -> Duration {
    remote::requeue_after_seconds(spec).unwrap_or(DEFAULT_REQUEUE)
}

#[derive(Debug, Default)]
struct Filter {
    branch: Option<Regex>,
    target_branch: Option<Regex>,
    title: Option<Regex>,
}

fn compile_filters(spec: &Value) -> Result<Vec<Filter>, GeneratorError> {
    let Some(list) = spec.get("filters").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let list = list
        .as_array()
        .ok_or_else(|| GeneratorError::new(GENERATOR, "filters must be a list of filters"))?;
    let regex = |i: usize, f: &Value, field: &str| -> Result<Option<Regex>, GeneratorError> {
        match f.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Regex::new(s).map(Some).map_err(|e| {
                GeneratorError::new(
                    GENERATOR,
                    format!("filters[{i}].{field} {s:?} is not a valid regular expression: {e}"),
                )
            }),
            Some(other) => Err(GeneratorError::new(
                GENERATOR,
                format!(
                    "filters[{i}].{field} must be a string, not {}",
                    remote::describe(other)
                ),
            )),
        }
    };
    list.iter()
        .enumerate()
        .map(|(i, f)| {
            Ok(Filter {
                branch: regex(i, f, "branchMatch")?,
                target_branch: regex(i, f, "targetBranchMatch")?,
                title: regex(i, f, "titleMatch")?,
            })
        })
        .collect()
}

fn passes(filter: &Filter, pull: &Pull) -> bool {
    filter
        .branch
        .as_ref()
        .is_none_or(|r| r.is_match(&pull.branch))
        && filter
            .target_branch
            .as_ref()
            .is_none_or(|r| r.is_match(&pull.target_branch))
        && filter
            .title
            .as_ref()
            .is_none_or(|r| r.is_match(&pull.title))
}

/// Lists the open pull requests and turns them into parameter sets.
pub async fn generate(
    spec: &Value,
    ctx: &RemoteContext<'_>,
) -> Result<Vec<Params>, GeneratorError> {
    let (kind, provider) = scm::provider_of(GENERATOR, spec)?;
    let filters = compile_filters(spec)?;
    let wanted_labels: Vec<String> = match provider.get("labels") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|l| {
                l.as_str().map(String::from).ok_or_else(|| {
                    GeneratorError::new(
                        GENERATOR,
                        format!("{}: labels must be a list of strings", kind.key()),
                    )
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(GeneratorError::new(
                GENERATOR,
                format!("{}: labels must be a list of strings", kind.key()),
            ));
        }
    };
    let values = remote::values(GENERATOR, spec)?;
    let conn = Conn::new(GENERATOR, kind, provider, ctx).await?;
    let pulls = match kind {
        Kind::GitHub => scm::github::pulls(&conn, provider).await?,
        Kind::GitLab => scm::gitlab::pulls(&conn, provider).await?,
        Kind::Gitea => scm::gitea::pulls(&conn, provider).await?,
        Kind::BitbucketServer => scm::bitbucket_server::pulls(&conn, provider).await?,
    };
    Ok(pulls
        .iter()
        .filter(|p| wanted_labels.iter().all(|l| p.labels.contains(l)))
        .filter(|p| filters.is_empty() || filters.iter().any(|f| passes(f, p)))
        .map(|p| params(p, values.as_ref()))
        .collect())
}

fn params(pull: &Pull, values: Option<&serde_json::Map<String, Value>>) -> Params {
    let short = |n: usize| pull.head_sha.chars().take(n).collect::<String>();
    let mut p = Params::new();
    p.insert("number".into(), json!(pull.number));
    p.insert("title".into(), json!(pull.title));
    p.insert("branch".into(), json!(pull.branch));
    p.insert("branch_slug".into(), json!(slug(&pull.branch)));
    p.insert("target_branch".into(), json!(pull.target_branch));
    p.insert(
        "target_branch_slug".into(),
        json!(slug(&pull.target_branch)),
    );
    p.insert("head_sha".into(), json!(pull.head_sha));
    p.insert("head_short_sha".into(), json!(short(8)));
    p.insert("head_short_sha_7".into(), json!(short(7)));
    p.insert("author".into(), json!(pull.author));
    p.insert("labels".into(), json!(pull.labels));
    if let Some(values) = values {
        p.insert("values".into(), Value::Object(values.clone()));
    }
    p
}

/// gosimple/slug's `Make` as Argo CD configures it (`_` to `-`, at most 50 characters cut at a
/// word boundary): `&` becomes `and`, `@` becomes `at`, quotes are dropped, letters are
/// lowercased, every other
/// character but `a-z0-9` becomes `-`, runs of `-` collapse and ends are trimmed. Unlike
/// gosimple/slug, non-ASCII letters are not transliterated (they become `-`).
pub fn slug(text: &str) -> String {
    let substituted = text
        .replace('_', "-")
        .replace('&', "and")
        .replace('@', "at")
        .replace(['\'', '"', '\u{2019}'], "");
    let mut out = String::with_capacity(substituted.len());
    for c in substituted.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let out = out.trim_matches('-').to_string();
    if out.len() <= SLUG_MAX {
        return out;
    }
    let mut truncated = String::new();
    for word in out.split('-').filter(|w| !w.is_empty()) {
        let extra = if truncated.is_empty() { 0 } else { 1 };
        if truncated.len() + extra + word.len() > SLUG_MAX {
            break;
        }
        if extra == 1 {
            truncated.push('-');
        }
        truncated.push_str(word);
    }
    if truncated.is_empty() {
        out[..SLUG_MAX].to_string()
    } else {
        truncated
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slug_follows_gosimple_slug_as_argo_cd_sets_it() {
        assert_eq!(slug("feature/My_Branch"), "feature-my-branch");
        assert_eq!(slug("fix--this  &that's"), "fix-this-andthats");
        let long = "word-".repeat(20);
        let s = slug(&long);
        assert!(s.len() <= SLUG_MAX && s.ends_with("word"), "{s}");
        assert_eq!(slug(&"x".repeat(80)).len(), SLUG_MAX);
    }

    #[test]
    fn filters_pass_when_any_filter_passes_all_its_conditions() {
        let f = compile_filters(&json!({"filters": [
            {"branchMatch": "^feature-", "targetBranchMatch": "^main$"},
            {"titleMatch": "\\[preview\\]"},
        ]}))
        .unwrap();
        let pull = |branch: &str, target: &str, title: &str| Pull {
            number: "1".into(),
            title: title.into(),
            branch: branch.into(),
            target_branch: target.into(),
            head_sha: "abc".into(),
            labels: vec![],
            author: "a".into(),
        };
        let ok = |p: &Pull| f.iter().any(|f| passes(f, p));
        assert!(ok(&pull("feature-a", "main", "x")));
        assert!(!ok(&pull("feature-a", "release", "x")));
        assert!(ok(&pull("fix", "release", "[preview] x")));
    }
}
