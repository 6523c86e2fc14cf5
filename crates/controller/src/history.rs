//! `status.history`: one entry per successful sync, newest last, capped by
//! `revisionHistoryLimit` (default 10), with the commit's author, date and subject for the audit
//! trail.

use ferry_core::application::{
    Application, ApplicationStatus, CommitMetadata, OperationInitiator, RevisionHistory,
};
use ferry_source::git::CommitInfo;

/// How many entries are kept when the Application does not say.
pub(crate) const DEFAULT_HISTORY_LIMIT: i64 = 10;

/// Appends an entry for a successful sync of `revision`.
pub(crate) fn record(
    status: &mut ApplicationStatus,
    app: &Application,
    revision: &str,
    commit: Option<&CommitInfo>,
    started_at: &str,
    finished_at: &str,
    initiated_by: Option<OperationInitiator>,
) {
    let id = status
        .history
        .iter()
        .map(|h| h.id)
        .max()
        .map_or(0, |m| m + 1);
    status.history.push(RevisionHistory {
        id,
        revision: Some(revision.to_string()),
        deployed_at: Some(finished_at.to_string()),
        deploy_started_at: Some(started_at.to_string()),
        source: app.spec.source.clone(),
        sources: app.spec.sources.clone().unwrap_or_default(),
        initiated_by,
        commit: commit.map(|c| CommitMetadata {
            author: format!("{} <{}>", c.author_name, c.author_email),
            date: c.date.clone(),
            subject: c.subject.clone(),
        }),
        ..Default::default()
    });
    let limit = app
        .spec
        .revision_history_limit
        .unwrap_or(DEFAULT_HISTORY_LIMIT)
        .max(1) as usize;
    if status.history.len() > limit {
        let excess = status.history.len() - limit;
        status.history.drain(..excess);
    }
}
