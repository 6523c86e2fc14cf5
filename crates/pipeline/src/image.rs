//! Container image references (`registry/path:tag@digest`) and how ferry compares their names.
//!
//! Names are compared after normalization, as the container runtimes resolve them:
//!
//! - a name whose first component has no `.` or `:` and is not `localhost` is on Docker Hub:
//!   `nginx` → `docker.io/nginx`, `bitnami/nginx` → `docker.io/bitnami/nginx`;
//! - `index.docker.io` and `registry-1.docker.io` are `docker.io`;
//! - a one-component name on Docker Hub is in `library/`: `docker.io/nginx` →
//!   `docker.io/library/nginx`;
//! - the registry host is lower-cased; the path is compared as written (it is lower-case by
//!   the reference grammar anyway).
//!
//! So `nginx`, `docker.io/nginx`, `docker.io/library/nginx` and `index.docker.io/library/nginx`
//! are one image; `ghcr.io/nginx` and `localhost/nginx` are others. Tags and digests never
//! take part in matching.

use std::fmt;

/// A parsed image reference: a name, an optional tag and an optional digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageRef {
    /// The name as written (`nginx`, `ghcr.io/org/app`, `localhost:5000/app`).
    pub name: String,
    /// The tag, without `:`.
    pub tag: Option<String>,
    /// The digest, without `@` (`sha256:…`).
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses `name[:tag][@digest]`. Returns `None` for text that cannot be an image
    /// reference (empty, whitespace, an empty tag or digest).
    pub fn parse(text: &str) -> Option<ImageRef> {
        if text.is_empty() || text.contains(char::is_whitespace) {
            return None;
        }
        let (rest, digest) = match text.split_once('@') {
            Some((r, d)) if d.contains(':') && !d.starts_with(':') && !d.ends_with(':') => {
                (r, Some(d.to_owned()))
            }
            Some(_) => return None,
            None => (text, None),
        };
        // A tag is after the last `:` that comes after the last `/` (a `:` before a `/` is a
        // registry port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let at = last_slash + i;
                let tag = &rest[at + 1..];
                if tag.is_empty() {
                    return None;
                }
                (&rest[..at], Some(tag.to_owned()))
            }
            None => (rest, None),
        };
        if name.is_empty() || name.starts_with(['/', ':']) || name.ends_with('/') {
            return None;
        }
        Some(ImageRef {
            name: name.to_owned(),
            tag,
            digest,
        })
    }

    /// The normalized name this reference's name compares as (see the [module docs](self)).
    pub fn normalized_name(&self) -> String {
        normalize_name(&self.name)
    }

    /// Whether this reference names the same image as `other` (tags and digests ignored).
    pub fn same_name(&self, other: &ImageRef) -> bool {
        self.normalized_name() == other.normalized_name()
    }

    /// The same reference with `name` in place of its own.
    pub fn with_name(&self, name: &str) -> ImageRef {
        ImageRef {
            name: name.to_owned(),
            ..self.clone()
        }
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

/// Normalizes an image name (no tag, no digest) for comparison: see the [module docs](self).
pub fn normalize_name(name: &str) -> String {
    let (first, rest) = match name.split_once('/') {
        Some((first, rest)) => (first, Some(rest)),
        None => (name, None),
    };
    let is_registry = rest.is_some() && (first.contains(['.', ':']) || first == "localhost");
    let (registry, path) = if is_registry {
        (
            first.to_ascii_lowercase(),
            rest.unwrap_or_default().to_owned(),
        )
    } else {
        ("docker.io".to_owned(), name.to_owned())
    };
    let registry = match registry.as_str() {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_owned(),
        _ => registry,
    };
    if registry == "docker.io" && !path.contains('/') {
        format!("docker.io/library/{path}")
    } else {
        format!("{registry}/{path}")
    }
}

/// One `--image` request: which image to look for and what to make of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageUpdate {
    /// The image to find (its tag and digest, if written, are ignored).
    pub name: String,
    /// What it becomes: a name (the same, or a new one) with a tag and/or a digest.
    pub new: ImageRef,
}

/// Why an `--image` value is not understood.
#[derive(Debug, thiserror::Error)]
#[error(
    "--image {spec:?}: {reason}; use NAME=NAME:TAG, NAME=NAME@sha256:DIGEST, NAME=NEWNAME:TAG or NAME:TAG"
)]
pub struct ImageSpecError {
    /// The value as given.
    pub spec: String,
    /// What is wrong with it.
    pub reason: String,
}

impl ImageUpdate {
    /// Parses `NAME=NEWNAME:TAG`, `NAME=NAME@sha256:DIGEST` or a bare `NAME:TAG` (same name,
    /// new tag). The new reference must have a tag or a digest.
    pub fn parse(spec: &str) -> Result<ImageUpdate, ImageSpecError> {
        let err = |reason: &str| ImageSpecError {
            spec: spec.to_owned(),
            reason: reason.to_owned(),
        };
        let (name, new) = match spec.split_once('=') {
            Some((name, new)) => {
                let name = ImageRef::parse(name.trim())
                    .ok_or_else(|| err("the name before `=` is not an image name"))?;
                (name.name, new.trim())
            }
            None => (String::new(), spec.trim()),
        };
        let new = ImageRef::parse(new).ok_or_else(|| err("the new reference is not valid"))?;
        if new.tag.is_none() && new.digest.is_none() {
            return Err(err("the new reference has neither a tag nor a digest"));
        }
        let name = if name.is_empty() {
            new.name.clone()
        } else {
            name
        };
        Ok(ImageUpdate { name, new })
    }

    /// Whether `candidate` (a name, or a reference whose tag and digest are ignored) is the
    /// image this update looks for.
    pub fn matches(&self, candidate: &str) -> bool {
        ImageRef::parse(candidate)
            .is_some_and(|r| normalize_name(&r.name) == normalize_name(&self.name))
    }

    /// Whether the update renames the image (the new name is another image).
    pub fn renames(&self) -> bool {
        normalize_name(&self.new.name) != normalize_name(&self.name)
    }

    /// The new text for a full reference `old` that matched: the old name's spelling is kept
    /// unless the image is renamed.
    pub fn rewrite(&self, old: &ImageRef) -> ImageRef {
        let name = if self.renames() {
            self.new.name.clone()
        } else {
            old.name.clone()
        };
        ImageRef {
            name,
            tag: self.new.tag.clone(),
            digest: self.new.digest.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references() {
        let r = ImageRef::parse("localhost:5000/app:1.2@sha256:abc").unwrap();
        assert_eq!(r.name, "localhost:5000/app");
        assert_eq!(r.tag.as_deref(), Some("1.2"));
        assert_eq!(r.digest.as_deref(), Some("sha256:abc"));
        let r = ImageRef::parse("localhost:5000/app").unwrap();
        assert_eq!(
            (r.name.as_str(), r.tag.as_deref()),
            ("localhost:5000/app", None)
        );
        assert_eq!(r.to_string(), "localhost:5000/app");
        assert!(ImageRef::parse("nginx:").is_none());
        assert!(ImageRef::parse("a b").is_none());
        assert!(ImageRef::parse("").is_none());
    }

    #[test]
    fn normalizes_docker_hub_names() {
        for n in [
            "nginx",
            "docker.io/nginx",
            "docker.io/library/nginx",
            "index.docker.io/library/nginx",
            "DOCKER.IO/nginx",
        ] {
            assert_eq!(normalize_name(n), "docker.io/library/nginx", "{n}");
        }
        assert_eq!(normalize_name("bitnami/nginx"), "docker.io/bitnami/nginx");
        assert_eq!(normalize_name("ghcr.io/nginx"), "ghcr.io/nginx");
        assert_eq!(normalize_name("localhost/nginx"), "localhost/nginx");
        assert_eq!(normalize_name("host:5000/a/b"), "host:5000/a/b");
    }

    #[test]
    fn parses_update_specs() {
        let u = ImageUpdate::parse("nginx=nginx:1.27").unwrap();
        assert_eq!(u.name, "nginx");
        assert!(!u.renames());
        let u = ImageUpdate::parse("nginx:1.27").unwrap();
        assert_eq!(
            (u.name.as_str(), u.new.tag.as_deref()),
            ("nginx", Some("1.27"))
        );
        let u = ImageUpdate::parse("nginx=ghcr.io/me/nginx:2").unwrap();
        assert!(u.renames());
        let u = ImageUpdate::parse("app=app@sha256:0123").unwrap();
        assert_eq!(u.new.digest.as_deref(), Some("sha256:0123"));
        assert!(ImageUpdate::parse("nginx").is_err());
        assert!(ImageUpdate::parse("=x:1").is_err());
        assert!(u.matches("docker.io/library/app:old"));
        assert!(!u.matches("ghcr.io/app:old"));
    }

    #[test]
    fn rewrite_keeps_the_old_spelling_unless_renamed() {
        let u = ImageUpdate::parse("nginx:1.27").unwrap();
        let old = ImageRef::parse("docker.io/library/nginx:1.25@sha256:aa").unwrap();
        assert_eq!(u.rewrite(&old).to_string(), "docker.io/library/nginx:1.27");
        let u = ImageUpdate::parse("nginx=ghcr.io/x/nginx@sha256:bb").unwrap();
        assert_eq!(u.rewrite(&old).to_string(), "ghcr.io/x/nginx@sha256:bb");
    }
}
