//! Links from a repository URL and a commit SHA to the commit's page on the forge hosting it.

/// A forge ferry knows how to link commits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Forge {
    GitHub,
    GitLab,
    Gitea,
}

/// The web page of commit `sha` of the repository at `repo_url`, when the repository is on
/// GitHub, GitLab or Gitea (Codeberg included): `https://github.com/o/r/commit/SHA`,
/// `https://gitlab.com/o/r/-/commit/SHA`, `https://gitea.example/o/r/commit/SHA`.
/// `repo_url` may be `https://host/o/r(.git)`, `ssh://git@host(:port)/o/r(.git)` or
/// `git@host:o/r(.git)`. `None` for other hosts, or when `sha` is not a commit id.
pub(crate) fn commit_url(repo_url: &str, sha: &str) -> Option<String> {
    if !(7..=64).contains(&sha.len()) || !sha.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let (web_base, host, path) = split_repo_url(repo_url.trim())?;
    let host_name = host.split(':').next().unwrap_or(host).to_ascii_lowercase();
    let forge = if host_name == "github.com" || host_name == "www.github.com" {
        Forge::GitHub
    } else if host_name.contains("gitlab") {
        Forge::GitLab
    } else if host_name.contains("gitea") || host_name == "codeberg.org" {
        Forge::Gitea
    } else {
        return None;
    };
    let path = path.trim_matches('/');
    let path = path.strip_suffix(".git").unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let valid_segment = |s: &&str| {
        !s.is_empty()
            && *s != "."
            && *s != ".."
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    };
    if segments.len() < 2 || !segments.iter().all(valid_segment) {
        return None;
    }
    let sha = sha.to_ascii_lowercase();
    match forge {
        Forge::GitHub if segments.len() == 2 => Some(format!("{web_base}/{path}/commit/{sha}")),
        Forge::GitHub => None,
        Forge::GitLab => Some(format!("{web_base}/{path}/-/commit/{sha}")),
        Forge::Gitea if segments.len() == 2 => Some(format!("{web_base}/{path}/commit/{sha}")),
        Forge::Gitea => None,
    }
}

/// Splits a repository URL into the base of its web pages (`https://host[:port]`), the host
/// (with any port) and the repository path.
fn split_repo_url(url: &str) -> Option<(String, &str, &str)> {
    if let Some((scheme, rest)) = url.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        let rest = rest.split(['?', '#']).next().unwrap_or(rest);
        let (authority, path) = rest.split_once('/')?;
        // Drop any user (and password) before the host: it never goes into a link.
        let host = authority.rsplit('@').next().unwrap_or(authority);
        if host.is_empty() {
            return None;
        }
        let base = match scheme.as_str() {
            "http" => format!("http://{host}"),
            "https" => format!("https://{host}"),
            // ssh://git@host:2222/o/r: the web pages are on https, on the default port.
            "ssh" | "git" | "git+ssh" => {
                let name = host.split(':').next().unwrap_or(host);
                format!("https://{name}")
            }
            _ => return None,
        };
        return Some((base, host, path));
    }
    // scp-like: [user@]host:o/r.git
    let (authority, path) = url.split_once(':')?;
    let host = authority.rsplit('@').next().unwrap_or(authority);
    if host.is_empty() || host.contains('/') || path.starts_with('/') {
        return None;
    }
    Some((format!("https://{host}"), host, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn github() {
        let want = format!("https://github.com/o/r/commit/{SHA}");
        for url in [
            "https://github.com/o/r",
            "https://github.com/o/r.git",
            "https://github.com/o/r/",
            "git@github.com:o/r.git",
            "ssh://git@github.com/o/r.git",
            "https://user:token@github.com/o/r.git",
        ] {
            assert_eq!(
                commit_url(url, SHA).as_deref(),
                Some(want.as_str()),
                "{url}"
            );
        }
    }

    #[test]
    fn gitlab_including_subgroups_and_self_hosted() {
        assert_eq!(
            commit_url("https://gitlab.com/o/r.git", SHA).unwrap(),
            format!("https://gitlab.com/o/r/-/commit/{SHA}")
        );
        assert_eq!(
            commit_url("git@gitlab.com:group/sub/r.git", SHA).unwrap(),
            format!("https://gitlab.com/group/sub/r/-/commit/{SHA}")
        );
        assert_eq!(
            commit_url("https://gitlab.example.org/o/r", SHA).unwrap(),
            format!("https://gitlab.example.org/o/r/-/commit/{SHA}")
        );
    }

    #[test]
    fn gitea_and_codeberg() {
        assert_eq!(
            commit_url("http://gitea.local:3000/o/r.git", SHA).unwrap(),
            format!("http://gitea.local:3000/o/r/commit/{SHA}")
        );
        assert_eq!(
            commit_url("git@codeberg.org:o/r.git", SHA).unwrap(),
            format!("https://codeberg.org/o/r/commit/{SHA}")
        );
        assert_eq!(
            commit_url("ssh://git@gitea.example.com:2222/o/r.git", SHA).unwrap(),
            format!("https://gitea.example.com/o/r/commit/{SHA}")
        );
    }

    #[test]
    fn no_link_for_other_hosts_or_revisions() {
        assert_eq!(commit_url("https://git.example.com/o/r.git", SHA), None);
        assert_eq!(commit_url("file:///tmp/repo", SHA), None);
        assert_eq!(commit_url("/tmp/repo", SHA), None);
        assert_eq!(commit_url("https://github.com/o/r", "main"), None);
        assert_eq!(commit_url("https://github.com/o/r", "1.2.3"), None);
        assert_eq!(commit_url("https://github.com/o", SHA), None);
        assert_eq!(commit_url("https://github.com/o/r/x", SHA), None);
        assert_eq!(commit_url("https://github.com/o/<script>", SHA), None);
    }

    #[test]
    fn short_shas_are_linked_too() {
        assert_eq!(
            commit_url("https://github.com/o/r", "abc1234").unwrap(),
            "https://github.com/o/r/commit/abc1234"
        );
    }
}
