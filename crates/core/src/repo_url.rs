//! Repository URLs as keys: the one normalization ferry uses to compare repository URLs, key
//! caches and credentials by them, and match them against an AppProject's `sourceRepos`.
//!
//! The rule is Argo CD's (`git.NormalizeGitURL` / `git.SameURL`), with one difference on
//! purpose: userinfo (`user:password@`) is dropped, never kept in a key nor shown.
//!
//! - surrounding white space is trimmed and the whole URL is lower-cased (hosts such as
//!   GitHub and GitLab treat paths case-insensitively; Argo CD does the same);
//! - a trailing `/` and a `.git` suffix are removed (repeatedly: `repo.git/` is `repo`);
//! - scp-like `git@host:org/repo` is the same repository as `ssh://git@host/org/repo`, and
//!   `git+ssh://` / `ssh+git://` are `ssh://`;
//! - `user:password@` is dropped: `https://user:token@host/org/repo` and
//!   `https://host/org/repo` are one repository;
//! - anything else (a local path, `file://`) keeps its shape.
//!
//! The normalized form is a key, not a URL to hand to git: keep the URL as written for that.

use std::fmt;

use crate::glob::glob_match;

/// A repository URL in its normalized form (see the [module docs](self)): compare, hash and
/// order these instead of raw URL strings.
///
/// It never holds userinfo, so neither [`Display`](fmt::Display) nor [`Debug`] can show a
/// password.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoUrl(String);

impl RepoUrl {
    /// Normalizes `url`. Never fails: a string that is not a URL is kept as a (normalized)
    /// local path.
    pub fn new(url: &str) -> Self {
        Self(normalize(url))
    }

    /// The normalized form, e.g. `https://github.com/org/repo` or `ssh://github.com/org/repo`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalized form, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Whether this URL matches an AppProject `sourceRepos` pattern (without its `!`), as
    /// Argo CD matches them: a lone `*` matches every URL; otherwise the pattern is
    /// normalized like a URL, `*` matches within one path segment
    /// (`https://github.com/org/*`) and `**` across segments.
    pub fn matches_pattern(&self, pattern: &str) -> bool {
        let pattern = pattern.trim();
        pattern == "*" || glob_match(&normalize(pattern), &self.0, Some('/'))
    }
}

impl fmt::Display for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RepoUrl").field(&self.0).finish()
    }
}

impl From<&str> for RepoUrl {
    fn from(url: &str) -> Self {
        Self::new(url)
    }
}

impl From<&String> for RepoUrl {
    fn from(url: &String) -> Self {
        Self::new(url)
    }
}

/// The normalized form of `url` as a string: `RepoUrl::new(url).into_string()`, for callers
/// that key maps by `String`.
pub fn normalize_repo_url(url: &str) -> String {
    RepoUrl::new(url).into_string()
}

/// Whether `a` and `b` name the same repository (Argo CD's `SameURL`).
pub fn same_repo(a: &str, b: &str) -> bool {
    RepoUrl::new(a) == RepoUrl::new(b)
}

fn normalize(url: &str) -> String {
    let url = url.trim().to_lowercase();
    let (scheme, authority, path) = split(&url);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host)
        .trim();
    let path = trim_repo_suffixes(&path);
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => path.to_owned(),
    }
}

/// Splits a lower-cased URL into its scheme (`None` for a local path), authority (with any
/// userinfo) and path. scp-like `[user@]host:path` becomes `ssh`, `host`, `/path`.
fn split(url: &str) -> (Option<&str>, &str, std::borrow::Cow<'_, str>) {
    use std::borrow::Cow;
    if let Some((scheme, rest)) = url.split_once("://")
        && !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    {
        let scheme = match scheme {
            "git+ssh" | "ssh+git" => "ssh",
            other => other,
        };
        let end = rest.find('/').unwrap_or(rest.len());
        return (Some(scheme), &rest[..end], Cow::Borrowed(&rest[end..]));
    }
    // scp-like syntax (git's rule): a `:` before any `/`. Userinfo, which may itself hold a
    // `:` (`user:password@host:path`), ends at the last `@` before the first `/`.
    let first_slash = url.find('/').unwrap_or(url.len());
    let host_start = url[..first_slash].rfind('@').map_or(0, |at| at + 1);
    if let Some(colon) = url[host_start..first_slash].find(':') {
        let colon = host_start + colon;
        let path = &url[colon + 1..];
        let path = if path.starts_with('/') {
            Cow::Borrowed(path)
        } else {
            Cow::Owned(format!("/{path}"))
        };
        return (Some("ssh"), &url[..colon], path);
    }
    (None, "", Cow::Borrowed(url))
}

/// Removes trailing `/`, `.git` and white space until none is left (so normalizing twice
/// changes nothing).
fn trim_repo_suffixes(path: &str) -> &str {
    let mut path = path;
    loop {
        let trimmed = path.trim_end().trim_end_matches('/');
        let trimmed = trimmed.strip_suffix(".git").unwrap_or(trimmed);
        if trimmed.len() == path.len() {
            return path;
        }
        path = trimmed;
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn n(url: &str) -> String {
        RepoUrl::new(url).into_string()
    }

    #[test]
    fn lower_cases_and_strips_git_suffix_and_slashes() {
        assert_eq!(
            n("  HTTPS://Example.COM/Org/Repo.git/ "),
            "https://example.com/org/repo"
        );
        assert_eq!(
            n("https://example.com/org/repo.git.git//"),
            "https://example.com/org/repo"
        );
        assert_eq!(
            n("https://example.com/org/repo/.git"),
            "https://example.com/org/repo"
        );
        assert_eq!(n("/srv/git/Repo.git"), "/srv/git/repo");
        assert_eq!(n("file:///srv/git/repo.git/"), "file:///srv/git/repo");
        assert_eq!(
            n("https://example.com:8443/r"),
            "https://example.com:8443/r"
        );
    }

    #[test]
    fn scp_like_urls_equal_ssh_urls() {
        let scp = RepoUrl::new("git@GitHub.com:Org/Repo.git");
        assert_eq!(scp.as_str(), "ssh://github.com/org/repo");
        assert_eq!(scp, RepoUrl::new("ssh://git@github.com/org/repo"));
        assert_eq!(scp, RepoUrl::new("git+ssh://git@github.com/org/repo.git"));
        assert_eq!(scp, RepoUrl::new("github.com:org/repo"));
        assert_ne!(scp, RepoUrl::new("https://github.com/org/repo"));
        assert!(same_repo("git@host:a/b", "ssh://host/a/b/"));
        // A `/` before the `:` makes it a local path (git's own rule).
        assert_eq!(n("./dir:x/repo"), "./dir:x/repo");
        assert_eq!(n("/srv/a@b:c"), "/srv/a@b:c");
    }

    #[test]
    fn userinfo_is_never_kept_nor_shown() {
        let url = RepoUrl::new("https://user:S3cret@Example.com/org/repo.git");
        assert_eq!(url.as_str(), "https://example.com/org/repo");
        assert_eq!(url, RepoUrl::new("https://example.com/org/repo"));
        assert!(!url.to_string().contains("s3cret"));
        assert!(!format!("{url:?}").contains("s3cret"));
        // A password holding `@` or `:`, and userinfo in scp-like form.
        assert_eq!(n("https://u:p@ss:w@host/r"), "https://host/r");
        assert_eq!(n("u:pw@host:org/r"), "ssh://host/org/r");
    }

    #[test]
    fn patterns_match_as_argo_cd_documents() {
        let url = RepoUrl::new("https://github.com/Org/Repo.git");
        assert!(url.matches_pattern("*"));
        assert!(url.matches_pattern("https://github.com/org/*"));
        assert!(url.matches_pattern("https://GitHub.com/ORG/repo.git"));
        assert!(!url.matches_pattern("https://github.com/other/*"));
        assert!(
            !RepoUrl::new("https://github.com/org/group/repo")
                .matches_pattern("https://github.com/org/*")
        );
        assert!(
            RepoUrl::new("https://github.com/org/group/repo")
                .matches_pattern("https://github.com/org/**")
        );
        assert!(RepoUrl::new("git@github.com:org/repo").matches_pattern("git@github.com:org/*"));
        // Userinfo in the URL cannot slip past a pattern.
        assert!(
            RepoUrl::new("https://x:y@evil.example/org/repo")
                .matches_pattern("https://evil.example/**")
        );
    }

    fn word() -> impl Strategy<Value = String> {
        "[a-zA-Z][a-zA-Z._-]{0,8}"
    }

    fn any_url() -> impl Strategy<Value = String> {
        prop_oneof![
            ".{0,40}",
            (
                word(),
                word(),
                proptest::collection::vec(word(), 0..4),
                "(\\.git)?/?"
            )
                .prop_map(|(scheme, host, path, tail)| format!(
                    "{scheme}://{host}/{}{tail}",
                    path.join("/")
                )),
            (word(), word(), word(), "[ /]{0,3}(\\.git)?[ /]{0,3}")
                .prop_map(|(user, host, path, tail)| format!("{user}@{host}:{path}{tail}")),
        ]
    }

    proptest! {
        #[test]
        fn normalizing_is_idempotent(url in any_url()) {
            let once = n(&url);
            prop_assert_eq!(n(&once), once);
        }

        #[test]
        fn the_password_never_reaches_the_key(
            scheme in prop_oneof![Just("https"), Just("http"), Just("ssh"), Just("git+ssh")],
            user in "[a-zA-Z_-]{0,8}",
            password in "pw[0-9]{6}[0-9a-zA-Z:@!$%]{0,10}",
            host in "[a-zA-Z-]{1,10}(\\.[a-zA-Z]{2,4})?",
            path in proptest::collection::vec("[a-zA-Z_.-]{1,8}", 0..4),
            scp in any::<bool>(),
        ) {
            let path = path.join("/");
            let (with, without) = if scp {
                (format!("{user}:{password}@{host}:{path}"), format!("{host}:{path}"))
            } else {
                (
                    format!("{scheme}://{user}:{password}@{host}/{path}"),
                    format!("{scheme}://{host}/{path}"),
                )
            };
            let url = RepoUrl::new(&with);
            let secret = password.to_lowercase();
            prop_assert!(!url.as_str().contains(&secret), "{} holds {}", url, secret);
            let shown = format!("{url} {url:?}");
            prop_assert!(!shown.contains(&secret));
            prop_assert_eq!(url, RepoUrl::new(&without));
        }
    }
}
