//! Login sessions (kept in the server's memory) and the limit on failed logins.
//!
//! A session is a random token handed out at login, as a cookie and, for API clients, in the
//! response body; the server keeps the account name, an expiry and the session's CSRF token.
//! Sessions do not survive a restart of the server: users log in again.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::accounts::random_token;

/// How long a session lasts (Argo CD's default, 24 h).
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

/// Failed logins allowed per account name within [`FAILURE_WINDOW`].
pub const MAX_FAILURES: u32 = 5;

/// The window in which failed logins are counted.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(300);

/// At most this many sessions (or tracked names); the oldest expire first beyond it.
const MAX_ENTRIES: usize = 10_000;

/// One login session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The account logged in.
    pub account: String,
    /// The account's password hash when the session began: a session ends when the password
    /// changes.
    pub password_hash: String,
    /// The token state-changing requests must repeat.
    pub csrf_token: String,
    /// When it ends.
    pub expires: Instant,
}

/// The sessions of this server.
#[derive(Debug, Default)]
pub struct SessionStore {
    sessions: Mutex<HashMap<String, Session>>,
}

impl SessionStore {
    /// Starts a session for `account`, whose password hash is `password_hash`; returns its
    /// token.
    pub fn create(&self, account: &str, password_hash: &str) -> (String, Session) {
        let token = random_token(32);
        let session = Session {
            account: account.into(),
            password_hash: password_hash.into(),
            csrf_token: random_token(24),
            expires: Instant::now() + SESSION_TTL,
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        if sessions.len() >= MAX_ENTRIES
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        sessions.insert(token.clone(), session.clone());
        (token, session)
    }

    /// The live session of `token`.
    pub fn get(&self, token: &str) -> Option<Session> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        match sessions.get(token) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                sessions.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends the session of `token`.
    pub fn remove(&self, token: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(token);
    }
}

/// Counts failed logins per account name and refuses further attempts for a while after
/// [`MAX_FAILURES`] of them, right or wrong password alike.
///
/// Accounts that exist are counted apart from made-up names: the made-up names' table is
/// bounded (and cleared when full), the accounts' table is not, so a flood of made-up names
/// can never reset the lock-out of a real account.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    /// Failures of accounts that exist (as many entries as accounts).
    known: Mutex<HashMap<String, (u32, Instant)>>,
    /// Failures of names that are no account (at most [`MAX_ENTRIES`]).
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

impl LoginLimiter {
    /// How long `name` must still wait, when it is locked out now.
    pub fn locked_for(&self, name: &str) -> Option<Duration> {
        self.locked_at(name, Instant::now())
    }

    fn locked_at(&self, name: &str, now: Instant) -> Option<Duration> {
        [&self.known, &self.failures].into_iter().find_map(|table| {
            let failures = table.lock().unwrap_or_else(|e| e.into_inner());
            let (count, since) = failures.get(name)?;
            let elapsed = now.saturating_duration_since(*since);
            (*count >= MAX_FAILURES && elapsed < FAILURE_WINDOW).then(|| FAILURE_WINDOW - elapsed)
        })
    }

    /// Records a failed login of `name`; `known`: `name` is an existing account.
    pub fn record_failure(&self, name: &str, known: bool) {
        self.record_failure_at(name, known, Instant::now());
    }

    fn record_failure_at(&self, name: &str, known: bool, now: Instant) {
        let table = if known { &self.known } else { &self.failures };
        let mut failures = table.lock().unwrap_or_else(|e| e.into_inner());
        if !known && failures.len() >= MAX_ENTRIES {
            failures.retain(|_, (_, since)| now.saturating_duration_since(*since) < FAILURE_WINDOW);
            if failures.len() >= MAX_ENTRIES {
                failures.clear();
            }
        }
        let entry = failures.entry(name.to_string()).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= FAILURE_WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// Forgets the failures of `name` after a successful login.
    pub fn record_success(&self, name: &str) {
        for table in [&self.known, &self.failures] {
            table.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_found_by_token_and_removed() {
        let store = SessionStore::default();
        let (token, session) = store.create("alice", "h");
        assert_eq!(store.get(&token).unwrap().account, "alice");
        assert_eq!(store.get(&token).unwrap().csrf_token, session.csrf_token);
        assert!(store.get("nonsense").is_none());
        let (other, _) = store.create("alice", "h");
        assert_ne!(token, other);
        store.remove(&token);
        assert!(store.get(&token).is_none());
        assert!(store.get(&other).is_some());
    }

    #[test]
    fn the_limiter_locks_after_five_failures_and_unlocks_after_the_window() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_FAILURES {
            assert!(
                limiter.locked_at("admin", t0).is_none(),
                "after {i} failures"
            );
            limiter.record_failure_at("admin", true, t0);
        }
        assert!(limiter.locked_at("admin", t0).is_some());
        assert!(limiter.locked_at("alice", t0).is_none(), "per name");
        let later = t0 + FAILURE_WINDOW + Duration::from_secs(1);
        assert!(limiter.locked_at("admin", later).is_none());
        limiter.record_failure_at("admin", true, later);
        assert!(
            limiter.locked_at("admin", later).is_none(),
            "a new window starts counting from one"
        );
        limiter.record_success("admin");
        assert!(limiter.known.lock().unwrap().get("admin").is_none());
    }

    #[test]
    fn a_flood_of_made_up_names_does_not_reset_an_account_lock_out() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for _ in 0..MAX_FAILURES {
            limiter.record_failure_at("admin", true, t0);
        }
        assert!(limiter.locked_at("admin", t0).is_some());
        // 10,001 distinct names fill and clear the made-up names' table.
        for i in 0..=MAX_ENTRIES {
            limiter.record_failure_at(&format!("nobody-{i}"), false, t0);
        }
        assert!(
            limiter.failures.lock().unwrap().len() <= MAX_ENTRIES,
            "the made-up names' table stays bounded"
        );
        assert!(
            limiter.locked_at("admin", t0).is_some(),
            "admin is still locked out"
        );
    }
}
