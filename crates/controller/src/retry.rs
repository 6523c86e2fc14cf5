//! `syncPolicy.retry`: how often and how soon a failed sync is tried again, as Argo CD does it
//! (default back-off 5s, doubling, at most 3m; `limit` < 0 means no limit).

use std::time::Duration;

use ferry_core::application::RetryStrategy;

const DEFAULT_DURATION: Duration = Duration::from_secs(5);
const DEFAULT_FACTOR: u32 = 2;
const DEFAULT_MAX: Duration = Duration::from_secs(180);

/// Parses a Go-style duration as Argo CD writes them: `5s`, `2m`, `1m30s`, `1h`, `500ms`.
pub(crate) fn parse_go_duration(text: &str) -> Option<Duration> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if let Ok(secs) = rest.parse::<u64>() {
        return Some(Duration::from_secs(secs)); // Argo CD also accepts plain seconds
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit() && c != '.')?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().ok()?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(tail.len());
        let (unit, next) = tail.split_at(unit_len);
        let seconds = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return None,
        };
        total += Duration::from_secs_f64(value * seconds);
        rest = next;
    }
    Some(total)
}

/// Whether attempt number `attempt` (1 = the first retry) may run under `retry`.
pub(crate) fn may_retry(retry: Option<&RetryStrategy>, attempt: i64) -> bool {
    match retry.and_then(|r| r.limit) {
        None => false,
        Some(limit) if limit < 0 => true,
        Some(limit) => attempt <= limit,
    }
}

/// How long to wait before retry number `attempt` (1-based).
pub(crate) fn backoff(retry: Option<&RetryStrategy>, attempt: i64) -> Duration {
    let b = retry.and_then(|r| r.backoff.clone()).unwrap_or_default();
    let base = b
        .duration
        .as_deref()
        .and_then(parse_go_duration)
        .unwrap_or(DEFAULT_DURATION);
    let factor = b
        .factor
        .and_then(|f| u32::try_from(f).ok())
        .filter(|f| *f >= 1)
        .unwrap_or(DEFAULT_FACTOR);
    let max = b
        .max_duration
        .as_deref()
        .and_then(parse_go_duration)
        .unwrap_or(DEFAULT_MAX);
    let exponent = u32::try_from(attempt.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    base.saturating_mul(factor.saturating_pow(exponent))
        .min(max)
}

/// Self-heal back-off, with Argo CD's defaults (`--self-heal-backoff-timeout-seconds 2`,
/// `--self-heal-backoff-factor 3`, `--self-heal-backoff-cap-seconds 300`): a resource that
/// keeps drifting (something in the cluster undoes every apply) is synced again after 0s, 2s,
/// 6s, 18s, ... at most 5 minutes, not in a tight loop.
const SELF_HEAL_BASE: Duration = Duration::from_secs(2);
const SELF_HEAL_FACTOR: u32 = 3;
const SELF_HEAL_CAP: Duration = Duration::from_secs(300);
/// After this long without a self-heal, the next one counts from zero again.
const SELF_HEAL_COOLDOWN: Duration = Duration::from_secs(300);

/// How long after the last self-heal sync the next may run, when `previous` self-heals of the
/// same revision ran in a row.
pub(crate) fn self_heal_delay(previous: i64) -> Duration {
    if previous <= 0 {
        return Duration::ZERO;
    }
    let exponent = u32::try_from((previous - 1).clamp(0, 30)).unwrap_or(30);
    SELF_HEAL_BASE
        .saturating_mul(SELF_HEAL_FACTOR.saturating_pow(exponent))
        .min(SELF_HEAL_CAP)
}

/// Whether a run of `previous` self-heals is over, `elapsed` after the last one finished: the
/// drift it fought was settled for a while (longer than the run's own back-off would wait).
pub(crate) fn self_heal_run_over(previous: i64, elapsed: Duration) -> bool {
    elapsed >= SELF_HEAL_COOLDOWN.max(self_heal_delay(previous + 1) * 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_heal_backs_off_three_times_longer_up_to_five_minutes() {
        let secs = |n| self_heal_delay(n).as_secs();
        assert_eq!(
            [0, 1, 2, 3, 4, 5, 6, 7, 40].map(secs),
            [0, 2, 6, 18, 54, 162, 300, 300, 300]
        );
        // A run goes on while the next attempt is due; a long quiet time ends it.
        assert!(!self_heal_run_over(3, Duration::from_secs(54)));
        assert!(!self_heal_run_over(7, Duration::from_secs(300)));
        assert!(self_heal_run_over(7, Duration::from_secs(600)));
        assert!(self_heal_run_over(1, Duration::from_secs(3600)));
    }
    use ferry_core::application::Backoff;

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_go_duration("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("3m0s"), Some(Duration::from_secs(180)));
        assert_eq!(parse_go_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_go_duration("10"), Some(Duration::from_secs(10)));
        assert_eq!(parse_go_duration("soon"), None);
        assert_eq!(parse_go_duration("5x"), None);
    }

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let retry = RetryStrategy {
            limit: Some(5),
            backoff: Some(Backoff {
                duration: Some("2s".into()),
                factor: Some(3),
                max_duration: Some("1m".into()),
            }),
        };
        assert_eq!(backoff(Some(&retry), 1), Duration::from_secs(2));
        assert_eq!(backoff(Some(&retry), 2), Duration::from_secs(6));
        assert_eq!(backoff(Some(&retry), 3), Duration::from_secs(18));
        assert_eq!(backoff(Some(&retry), 5), Duration::from_secs(60));
        assert_eq!(backoff(None, 1), Duration::from_secs(5));
        assert_eq!(backoff(None, 3), Duration::from_secs(20));
    }

    #[test]
    fn limits_count_retries() {
        let limited = RetryStrategy {
            limit: Some(2),
            backoff: None,
        };
        assert!(may_retry(Some(&limited), 1));
        assert!(may_retry(Some(&limited), 2));
        assert!(!may_retry(Some(&limited), 3));
        let unlimited = RetryStrategy {
            limit: Some(-1),
            backoff: None,
        };
        assert!(may_retry(Some(&unlimited), 100));
        assert!(!may_retry(None, 1));
    }
}
