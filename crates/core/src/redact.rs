//! Removing credentials from repository URLs before they are shown anywhere: conditions, logs,
//! events, metric labels, API answers and UI pages.
//!
//! A repository URL may carry credentials in its userinfo (`https://user:token@host/repo`, or a
//! token as the user name, `https://ghp_xxx@github.com/org/repo`). [`redact_url`] replaces the
//! whole userinfo with `***`; [`redact_urls_in_text`] does that to every URL in a message, and
//! [`redact_urls_in_json`] to every string of a JSON document (an Application as the API returns
//! it).

use serde_json::Value;

/// The URL with its userinfo (everything before `@` in the authority) replaced by `***`.
/// URLs without userinfo, and scp-like `git@host:path` addresses (whose `git` is no secret),
/// are returned unchanged.
///
/// ```
/// use ferry_core::redact::redact_url;
/// assert_eq!(redact_url("https://u:s3cret@git.example/r.git"), "https://***@git.example/r.git");
/// assert_eq!(redact_url("https://git.example/r.git"), "https://git.example/r.git");
/// assert_eq!(redact_url("git@github.com:org/r.git"), "git@github.com:org/r.git");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_owned(),
    }
}

/// Every `scheme://userinfo@host` in `text` with its userinfo replaced by `***`.
pub fn redact_urls_in_text(text: &str) -> String {
    if !text.contains("://") || !text.contains('@') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let (before, after) = rest.split_at(pos + 3);
        out.push_str(before);
        // The authority ends at the first `/`, `?`, `#`, whitespace, quote or bracket.
        let end = after
            .find(|c: char| {
                c.is_whitespace() || matches!(c, '/' | '?' | '#' | '"' | '\'' | '<' | '>' | ')')
            })
            .unwrap_or(after.len());
        let authority = &after[..end];
        match authority.rsplit_once('@') {
            Some((_, host)) => {
                out.push_str("***@");
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        rest = &after[end..];
    }
    out.push_str(rest);
    out
}

/// Redacts URLs in every string of `value` (keys are left alone).
pub fn redact_urls_in_json(value: &mut Value) {
    match value {
        Value::String(s) if s.contains("://") && s.contains('@') => {
            *s = redact_urls_in_text(s);
        }
        Value::Array(items) => items.iter_mut().for_each(redact_urls_in_json),
        Value::Object(map) => map.values_mut().for_each(redact_urls_in_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urls_lose_their_userinfo() {
        assert_eq!(redact_url("https://u:s3cret@h/r"), "https://***@h/r");
        assert_eq!(redact_url("https://token@h/r"), "https://***@h/r");
        assert_eq!(redact_url("https://h/r?x=a@b"), "https://h/r?x=a@b");
        assert_eq!(redact_url("ssh://git@h:22/r"), "ssh://***@h:22/r");
        assert_eq!(redact_url("https://u:p@ss@h/r"), "https://***@h/r");
        assert_eq!(redact_url("no url"), "no url");
    }

    #[test]
    fn messages_and_documents_are_redacted() {
        let text =
            "fetching https://u:s3cret@h/r (and http://a:b@c:80/x) failed: see 'git://k@h/z'";
        let red = redact_urls_in_text(text);
        assert!(
            !red.contains("s3cret") && !red.contains("a:b") && !red.contains("k@"),
            "{red}"
        );
        assert_eq!(
            red,
            "fetching https://***@h/r (and http://***@c:80/x) failed: see 'git://***@h/z'"
        );
        assert_eq!(redact_urls_in_text("mail me@x.org"), "mail me@x.org");
        let mut doc = json!({"spec": {"source": {"repoURL": "https://u:s3cret@h/r"}},
            "status": {"conditions": [{"message": "at https://u:s3cret@h/r: failed"}]}});
        redact_urls_in_json(&mut doc);
        assert!(!doc.to_string().contains("s3cret"), "{doc}");
    }
}
