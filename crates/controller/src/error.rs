//! What can go wrong while working out and comparing an app, typed by what it means for the next
//! try: each kind sets its own condition and has its own retry policy.

use std::time::Duration;

use ferry_source::{GitError, RenderError};

use crate::conditions::condition;

/// A failure that keeps an app from being compared. Messages carry no credentials (every
/// constructor redacts URLs in them): conditions, logs and Events show them as they are.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// The spec, or its project's rules, rule the app out (no destination, a repository the
    /// project does not permit, a missing project): nothing changes until one of them does.
    #[error("{0}")]
    InvalidSpec(String),
    /// The source at this revision cannot be used (a template error, a missing path, invalid
    /// YAML, an empty render that would prune everything): a new commit or spec fixes it.
    #[error("{0}")]
    Source(String),
    /// Something that may pass: a Git or chart server that is down, a Kubernetes API error.
    #[error("{0}")]
    Unavailable(String),
}

impl AppError {
    /// The spec is at fault.
    pub(crate) fn invalid_spec(message: impl Into<String>) -> Self {
        AppError::InvalidSpec(redact(message))
    }

    /// The source is at fault.
    pub(crate) fn source(message: impl Into<String>) -> Self {
        AppError::Source(redact(message))
    }

    /// Something that may pass.
    pub(crate) fn unavailable(message: impl Into<String>) -> Self {
        AppError::Unavailable(redact(message))
    }

    /// A Git failure, described by `message`: a URL, protocol or revision the spec names that
    /// can never work is the spec's fault; a revision that does not exist (yet) waits for the
    /// next poll; a server that cannot be reached may come back.
    pub(crate) fn git(error: &GitError, message: impl Into<String>) -> Self {
        match error {
            GitError::SharedFetch(inner) => Self::git(inner, message),
            GitError::InvalidUrl { .. }
            | GitError::ProtocolNotAllowed { .. }
            | GitError::InvalidRevision { .. } => Self::invalid_spec(message),
            GitError::RevisionNotFound { .. } => Self::source(message),
            _ => Self::unavailable(message),
        }
    }

    /// A render failure, described by `message`: what is wrong with the files themselves stays
    /// wrong until a new commit; a tool, a chart repository or the disk may do better next time.
    pub(crate) fn render(error: &RenderError, message: impl Into<String>) -> Self {
        match error {
            RenderError::Io { .. }
            | RenderError::Tool { .. }
            | RenderError::HelmDependencies { .. }
            | RenderError::ChartRepositoryUnreachable { .. }
            | RenderError::ChartPull { .. }
            | RenderError::Kustomize { .. } => Self::unavailable(message),
            _ => Self::source(message),
        }
    }

    /// The condition type it sets on the app.
    pub(crate) fn condition(&self) -> &'static str {
        match self {
            AppError::InvalidSpec(_) => condition::INVALID_SPEC_ERROR,
            AppError::Source(_) | AppError::Unavailable(_) => condition::COMPARISON_ERROR,
        }
    }

    /// When to try again after `failures` failures in a row. What may pass backs off
    /// exponentially: 5 s, doubling, at most a poll interval. The rest waits for the next poll
    /// (a change of the spec queues the app at once; a new commit is seen at the poll).
    pub(crate) fn retry_after(&self, failures: u32, poll: Duration) -> Duration {
        match self {
            AppError::Unavailable(_) => {
                let exponent = failures.saturating_sub(1).min(10);
                (Duration::from_secs(5) * 2u32.pow(exponent)).min(poll)
            }
            AppError::InvalidSpec(_) | AppError::Source(_) => poll,
        }
    }
}

fn redact(message: impl Into<String>) -> String {
    ferry_core::redact::redact_urls_in_text(&message.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passing_failures_back_off_exponentially_up_to_a_poll_and_the_rest_wait_a_poll() {
        let poll = Duration::from_secs(180);
        let passing = AppError::unavailable("git server down");
        let after = |n| passing.retry_after(n, poll).as_secs();
        assert_eq!([after(1), after(2), after(3), after(4)], [5, 10, 20, 40]);
        assert_eq!(after(6), 160);
        assert_eq!(after(7), 180);
        assert_eq!(after(u32::MAX), 180);
        assert_eq!(
            passing.retry_after(3, Duration::from_secs(1)),
            Duration::from_secs(1),
            "never later than the poll interval"
        );
        assert_eq!(
            AppError::invalid_spec("no destination").retry_after(1, poll),
            poll
        );
        assert_eq!(AppError::source("bad YAML").retry_after(1, poll), poll);
    }

    #[test]
    fn each_kind_sets_its_condition_and_no_message_keeps_a_password() {
        let e = AppError::unavailable("fetching https://bob:hunter2@git.example/repo.git: refused");
        assert_eq!(e.condition(), condition::COMPARISON_ERROR);
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert_eq!(
            AppError::invalid_spec("x").condition(),
            condition::INVALID_SPEC_ERROR
        );
        assert_eq!(
            AppError::source("x").condition(),
            condition::COMPARISON_ERROR
        );
    }

    #[test]
    fn git_failures_are_sorted_by_whether_they_can_pass() {
        let invalid = GitError::ProtocolNotAllowed {
            url: "ext::sh".into(),
            protocol: "ext".into(),
        };
        assert!(matches!(
            AppError::git(&invalid, "m"),
            AppError::InvalidSpec(_)
        ));
    }
}
