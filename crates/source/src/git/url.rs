//! Repository URLs and revisions: what may be passed to git, which transport a URL uses,
//! how advertised refs resolve a revision, and the names of a repository's cache directories.

use std::io::Write as _;
use std::path::Path;

use super::{GitError, RemoteRef};

pub(crate) fn check_url(url: &str) -> Result<(), GitError> {
    if url.trim().is_empty() || url.starts_with('-') {
        return Err(GitError::InvalidUrl {
            url: redact_url(url),
        });
    }
    Ok(())
}

/// The transport git would use for `url`: its scheme (`git+ssh` counts as `ssh`), `ssh` for
/// scp-like `user@host:path`, `file` for a local path.
pub fn url_protocol(url: &str) -> String {
    let url = url.trim();
    // `<transport>::<address>` (git's remote helpers, `ext::` among them).
    if let Some((transport, _)) = url.split_once("::")
        && !transport.contains(['/', ':'])
    {
        return transport.to_ascii_lowercase();
    }
    if let Some((scheme, _)) = url.split_once("://") {
        let scheme = scheme.to_ascii_lowercase();
        return match scheme.as_str() {
            "git+ssh" | "ssh+git" => "ssh".to_owned(),
            _ => scheme,
        };
    }
    // scp-like syntax: a `:` before any `/` (git's own rule).
    match (url.find(':'), url.find('/')) {
        (Some(colon), slash) if slash.is_none_or(|s| colon < s) => "ssh".to_owned(),
        _ => "file".to_owned(),
    }
}

pub(crate) fn check_revision(url: &str, revision: &str) -> Result<(), GitError> {
    let bad = revision.starts_with('-')
        || revision.contains("..")
        || revision
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "~^:?*[\\".contains(c));
    if bad {
        return Err(GitError::InvalidRevision {
            url: redact_url(url),
            revision: revision.to_owned(),
        });
    }
    Ok(())
}

/// Whether `revision` means the remote's default branch.
pub(crate) fn is_head(revision: &str) -> bool {
    revision.is_empty() || revision == "HEAD"
}

/// Whether `s` is a full SHA-1 or SHA-256 object name.
pub(crate) fn is_full_sha(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `s` could be an abbreviated object name.
pub(crate) fn is_hex_prefix(s: &str) -> bool {
    (4..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Parses `git ls-remote` output (`<sha>\t<ref>` lines).
pub(crate) fn parse_ls_remote(out: &str) -> Option<Vec<RemoteRef>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let (sha, name) = line.split_once('\t')?;
            is_full_sha(sha).then(|| RemoteRef {
                name: name.to_owned(),
                sha: sha.to_owned(),
            })
        })
        .collect()
}

/// Resolves a revision against advertised refs, as Argo CD does: `HEAD` or empty → `HEAD`;
/// a full ref name as is; otherwise a branch, then a tag (peeled to its commit); a full SHA is
/// returned as it is. `None` when nothing matches (a short SHA needs a fetched repository).
pub fn resolve_from_refs(refs: &[RemoteRef], revision: &str) -> Option<String> {
    let find = |name: &str| refs.iter().find(|r| r.name == name).map(|r| r.sha.clone());
    if is_head(revision) {
        return find("HEAD");
    }
    let candidates: Vec<String> = if revision.starts_with("refs/") {
        vec![format!("{revision}^{{}}"), revision.to_owned()]
    } else {
        vec![
            format!("refs/heads/{revision}"),
            format!("refs/tags/{revision}^{{}}"),
            format!("refs/tags/{revision}"),
        ]
    };
    candidates
        .iter()
        .find_map(|c| find(c))
        .or_else(|| is_full_sha(revision).then(|| revision.to_ascii_lowercase()))
}

/// The URL with its userinfo masked (`https://***@host/repo`): the one helper in
/// [`ferry_core::redact`].
pub use ferry_core::redact::redact_url;

/// The key under which a repository is cached and its credentials are found: one
/// normalization for all of ferry, see [`ferry_core::repo_url`].
pub use ferry_core::repo_url::RepoUrl;

/// `<last path segment>-<hash>`: readable, and unique per normalized URL. The hash is keyed
/// by `key` (a secret of the cache, see [`cache_key`]): the directory of another repository
/// cannot be guessed from its URL.
pub(crate) fn repo_dir_name(key: &[u8], url: &str) -> String {
    use sha2::Digest as _;
    let normalized = RepoUrl::new(url);
    let last = normalized
        .as_str()
        .rsplit(['/', ':'])
        .next()
        .unwrap_or_default();
    let readable: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    let readable = if readable.is_empty() {
        "repo".to_owned()
    } else {
        readable
    };
    let mut hasher = sha2::Sha256::new();
    hasher.update(key);
    hasher.update([0u8]);
    hasher.update(normalized.as_str().as_bytes());
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{readable}-{hex}")
}

/// The secret that keys a cache's directory names: read from `<dir>/.key`, created (random,
/// mode 0600) when missing. When the file cannot be written the key is random for this process
/// (the cache is then rebuilt after a restart).
pub fn cache_key(dir: &Path) -> Vec<u8> {
    let path = dir.join(".key");
    if let Ok(key) = std::fs::read(&path)
        && key.len() >= 32
    {
        return key;
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).expect("the operating system's random source failed");
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        options.open(&path)?.write_all(&key)
    });
    match written {
        Ok(()) => key,
        // Another process (or thread) wrote it first: use theirs.
        Err(_) => match std::fs::read(&path) {
            Ok(existing) if existing.len() >= 32 => existing,
            _ => key,
        },
    }
}
