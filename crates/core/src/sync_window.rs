//! AppProject sync windows (`spec.syncWindows`), evaluated as Argo CD evaluates them.
//!
//! A window is a cron `schedule` (five fields: minute, hour, day of month, month, day of week,
//! in the window's `timeZone`, UTC when empty) that opens it, and a `duration` (Go syntax: `1h`,
//! `30m`, `1h30m`) that keeps it open. A window applies to an app when one of its
//! `applications`, `namespaces` or `clusters` globs matches the app's name, destination
//! namespace, or destination server or name (all of them with `andOperator: true`).
//!
//! Of the windows that apply ([`SyncWindows::evaluate`]):
//! - an open `deny` window blocks every sync, a manual one too unless every open deny window says
//!   `manualSync: true`;
//! - otherwise an open `allow` window lets syncs through;
//! - otherwise, when there are `allow` windows (all closed), syncs wait for one to open; a manual
//!   sync goes through when one of them says `manualSync: true`;
//! - with no window at all, everything may sync.
//!
//! A window that does not parse (bad cron, duration, time zone or kind) blocks the app's syncs, as
//! in Argo CD, and is reported by its index so the project can be fixed.
//!
//! Time zones come from the tz database bundled into ferry (no system files). A start time that
//! falls into a daylight-saving gap (02:30 on the night clocks jump from 02:00 to 03:00) opens the
//! window at the same wall-clock distance after the gap (03:30); a start time that occurs twice
//! (when clocks go back) opens it at the first occurrence only.

use std::fmt;

use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::application::null_as_default;
use crate::glob::glob_match;

/// One entry of an AppProject's `spec.syncWindows`, in Argo CD's shape.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncWindow {
    /// `allow` or `deny`.
    #[serde(default)]
    pub kind: String,
    /// When the window opens: a five-field cron expression.
    #[serde(default)]
    pub schedule: String,
    /// How long it stays open (Go duration syntax, e.g. `1h30m`).
    #[serde(default)]
    pub duration: String,
    /// Application name globs.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub applications: Vec<String>,
    /// Destination namespace globs.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub namespaces: Vec<String>,
    /// Destination cluster globs (server URL or cluster name).
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub clusters: Vec<String>,
    /// Whether manual syncs may run while this (deny) window is open, or outside this (allow)
    /// window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual_sync: bool,
    /// IANA time zone of the schedule (UTC when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// When true, the window applies only if every non-empty list matches (instead of any).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub and_operator: bool,
    /// Free-form description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// What an app is, for matching windows.
#[derive(Clone, Copy, Debug, Default)]
pub struct WindowTarget<'a> {
    /// The Application's name.
    pub app: &'a str,
    /// Its destination namespace.
    pub namespace: &'a str,
    /// Its destination server URL (empty when given by name).
    pub server: &'a str,
    /// Its destination cluster name (empty when given by server).
    pub cluster_name: &'a str,
}

/// Why a window cannot be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// `kind` is neither `allow` nor `deny`.
    #[error("kind {0:?} is neither allow nor deny")]
    Kind(String),
    /// The cron schedule does not parse.
    #[error("schedule {schedule:?} is not a five-field cron expression: {reason}")]
    Schedule {
        /// The schedule as written.
        schedule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The duration does not parse.
    #[error("duration {0:?} is not a duration like 1h, 30m or 1h30m")]
    Duration(String),
    /// The time zone is not in the tz database.
    #[error("timeZone {0:?} is not a known IANA time zone (e.g. Europe/Berlin)")]
    TimeZone(String),
}

impl SyncWindow {
    /// Whether the window applies to `target` (see the module docs).
    pub fn applies_to(&self, target: &WindowTarget<'_>) -> bool {
        let any = |patterns: &[String], values: &[&str]| {
            patterns.iter().any(|p| {
                values
                    .iter()
                    .any(|v| !v.is_empty() && glob_match(p, v, None))
            })
        };
        let checks = [
            (&self.applications, any(&self.applications, &[target.app])),
            (&self.namespaces, any(&self.namespaces, &[target.namespace])),
            (
                &self.clusters,
                any(&self.clusters, &[target.server, target.cluster_name]),
            ),
        ];
        let given = checks.iter().filter(|(list, _)| !list.is_empty());
        if self.and_operator {
            let mut given = given.peekable();
            given.peek().is_some() && given.all(|(_, matched)| *matched)
        } else {
            given.into_iter().any(|(_, matched)| *matched)
        }
    }

    fn is_deny(&self) -> Result<bool, WindowError> {
        match self.kind.as_str() {
            "deny" => Ok(true),
            "allow" => Ok(false),
            other => Err(WindowError::Kind(other.to_owned())),
        }
    }

    /// If the window is open at `now`: when it opened. Errors when the window does not parse.
    pub fn opened_at(&self, now: Timestamp) -> Result<Option<Timestamp>, WindowError> {
        self.is_deny()?;
        let cron = Cron::parse(&self.schedule).map_err(|reason| WindowError::Schedule {
            schedule: self.schedule.clone(),
            reason,
        })?;
        let duration = parse_go_duration(&self.duration)
            .ok_or_else(|| WindowError::Duration(self.duration.clone()))?;
        let tz = time_zone(self.time_zone.as_deref().unwrap_or_default())?;
        Ok(cron.latest_start_within(&tz, now, duration))
    }

    /// `deny "0 22 * * *" 1h Europe/Berlin`: the window in one line.
    pub fn summary(&self) -> String {
        let mut s = format!("{} {:?} {}", self.kind, self.schedule, self.duration);
        if let Some(tz) = self.time_zone.as_deref().filter(|t| !t.is_empty()) {
            s.push(' ');
            s.push_str(tz);
        }
        if self.manual_sync {
            s.push_str(" manualSync");
        }
        s
    }
}

/// The time zone named `name` (UTC when empty, `UTC` or `Local`: ferry reads no system time
/// zone).
fn time_zone(name: &str) -> Result<TimeZone, WindowError> {
    match name {
        "" | "UTC" | "Local" => Ok(TimeZone::UTC),
        _ => TimeZone::get(name).map_err(|_| WindowError::TimeZone(name.to_owned())),
    }
}

/// The state of one window that applies to an app.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowState {
    /// Its index in `spec.syncWindows`.
    pub index: usize,
    /// The window.
    pub window: SyncWindow,
    /// When it opened (if open), or why it cannot be evaluated.
    pub opened: Result<Option<Timestamp>, WindowError>,
}

impl WindowState {
    /// Whether the window is open now.
    pub fn is_open(&self) -> bool {
        matches!(self.opened, Ok(Some(_)))
    }

    /// When it closes, if open.
    pub fn closes_at(&self) -> Option<Timestamp> {
        let opened = self.opened.as_ref().ok().copied().flatten()?;
        let duration = parse_go_duration(&self.window.duration)?;
        opened.checked_add(duration).ok()
    }
}

/// What the windows of a project say about one app now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowVerdict {
    /// Whether a sync (of the kind asked about) may run now.
    pub allowed: bool,
    /// Every window that applies to the app, open or not.
    pub windows: Vec<WindowState>,
    /// Why not, naming the project and the windows (set when `allowed` is false).
    pub reason: Option<String>,
}

impl WindowVerdict {
    /// The windows that do not parse, each as `syncWindows[i] (summary): error`.
    pub fn errors(&self) -> Vec<String> {
        self.windows
            .iter()
            .filter_map(|w| {
                w.opened
                    .as_ref()
                    .err()
                    .map(|e| format!("syncWindows[{}] ({}): {e}", w.index, w.window.summary()))
            })
            .collect()
    }
}

/// An AppProject's `spec.syncWindows`.
#[derive(Clone, Copy, Debug)]
pub struct SyncWindows<'a>(pub &'a [SyncWindow]);

impl SyncWindows<'_> {
    /// Whether `target` may sync at `now` (`manual`: a sync asked for by a person rather than
    /// automated sync), by the rules in the module docs. `project` names the AppProject in the
    /// reason.
    pub fn evaluate(
        &self,
        project: &str,
        target: &WindowTarget<'_>,
        now: Timestamp,
        manual: bool,
    ) -> WindowVerdict {
        let windows: Vec<WindowState> = self
            .0
            .iter()
            .enumerate()
            .filter(|(_, w)| w.applies_to(target))
            .map(|(index, w)| WindowState {
                index,
                window: w.clone(),
                opened: w.opened_at(now),
            })
            .collect();
        let describe = |states: &[&WindowState]| {
            states
                .iter()
                .map(|s| format!("syncWindows[{}] ({})", s.index, s.window.summary()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let block = |reason: String| WindowVerdict {
            allowed: false,
            windows: windows.clone(),
            reason: Some(reason),
        };
        let broken: Vec<&WindowState> = windows.iter().filter(|s| s.opened.is_err()).collect();
        if !broken.is_empty() {
            let errors = WindowVerdict {
                allowed: false,
                windows: windows.clone(),
                reason: None,
            }
            .errors();
            return block(format!(
                "sync windows of AppProject {project} cannot be evaluated, so syncs of {} wait: {}; fix the window in the project",
                target.app,
                errors.join("; ")
            ));
        }
        let open_deny: Vec<&WindowState> = windows
            .iter()
            .filter(|s| s.is_open() && s.window.kind == "deny")
            .collect();
        if !open_deny.is_empty() {
            if manual && open_deny.iter().all(|s| s.window.manual_sync) {
                return WindowVerdict {
                    allowed: true,
                    windows,
                    reason: None,
                };
            }
            return block(format!(
                "{} sync of {} blocked by deny window {} of AppProject {project}",
                if manual { "manual" } else { "automated" },
                target.app,
                describe(&open_deny)
            ));
        }
        let allows: Vec<&WindowState> = windows
            .iter()
            .filter(|s| s.window.kind == "allow")
            .collect();
        if allows.is_empty() || allows.iter().any(|s| s.is_open()) {
            return WindowVerdict {
                allowed: true,
                windows,
                reason: None,
            };
        }
        if manual && allows.iter().any(|s| s.window.manual_sync) {
            return WindowVerdict {
                allowed: true,
                windows,
                reason: None,
            };
        }
        block(format!(
            "{} sync of {} waits: no allow window of AppProject {project} is open ({})",
            if manual { "manual" } else { "automated" },
            target.app,
            describe(&allows)
        ))
    }
}

/// What `project`'s windows say about `app` syncing at `now` (`manual`: asked for by a person).
pub fn evaluate_for_app(
    app: &crate::application::Application,
    project: &crate::project::AppProject,
    now: Timestamp,
    manual: bool,
) -> WindowVerdict {
    let d = &app.spec.destination;
    let target = WindowTarget {
        app: app.metadata.name.as_deref().unwrap_or_default(),
        namespace: d.namespace.as_deref().unwrap_or_default(),
        server: d.server.as_deref().unwrap_or_default(),
        cluster_name: d.name.as_deref().unwrap_or_default(),
    };
    let project_name = project.metadata.name.as_deref().unwrap_or_default();
    SyncWindows(&project.spec.sync_windows).evaluate(project_name, &target, now, manual)
}

/// A five-field cron schedule, with the semantics of the Go library Argo CD uses: `*`, `?`,
/// lists, ranges, steps and month/day names; when both day of month and day of week are
/// restricted, a day matching either matches. `@yearly`, `@monthly`, `@weekly`, `@daily`
/// (`@midnight`) and `@hourly` are accepted too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cron {
    minutes: u64,
    hours: u64,
    days_of_month: u64,
    months: u64,
    days_of_week: u64,
    /// Day of month or day of week was `*`/`?`: days must match both fields.
    any_day_star: bool,
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl Cron {
    /// Parses `schedule`; the error says which field is wrong.
    pub fn parse(schedule: &str) -> Result<Cron, String> {
        let expanded = match schedule.trim() {
            "@yearly" | "@annually" => "0 0 1 1 *",
            "@monthly" => "0 0 1 * *",
            "@weekly" => "0 0 * * 0",
            "@daily" | "@midnight" => "0 0 * * *",
            "@hourly" => "0 * * * *",
            other => other,
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "expected 5 fields (minute hour day-of-month month day-of-week), found {}",
                fields.len()
            ));
        }
        let (minutes, _) = parse_field(fields[0], "minute", 0, 59, &[])?;
        let (hours, _) = parse_field(fields[1], "hour", 0, 23, &[])?;
        let (days_of_month, dom_star) = parse_field(fields[2], "day of month", 1, 31, &[])?;
        let (months, _) = parse_field(fields[3], "month", 1, 12, &MONTHS)?;
        let (days_of_week, dow_star) = parse_field(fields[4], "day of week", 0, 6, &WEEKDAYS)?;
        Ok(Cron {
            minutes,
            hours,
            days_of_month,
            months,
            days_of_week,
            any_day_star: dom_star || dow_star,
        })
    }

    fn matches_day(&self, date: Date) -> bool {
        if self.months & (1 << date.month()) == 0 {
            return false;
        }
        let dom = self.days_of_month & (1 << date.day()) != 0;
        let dow = self.days_of_week & (1 << date.weekday().to_sunday_zero_offset()) != 0;
        if self.any_day_star {
            dom && dow
        } else {
            dom || dow
        }
    }

    /// The latest start `s` with `now - duration < s < now` in `tz`, if any: the window is open
    /// at `now` exactly when there is one.
    pub fn latest_start_within(
        &self,
        tz: &TimeZone,
        now: Timestamp,
        duration: SignedDuration,
    ) -> Option<Timestamp> {
        if duration <= SignedDuration::ZERO {
            return None;
        }
        let earliest = now.checked_sub(duration).unwrap_or(Timestamp::MIN);
        // Civil times map to instants monotonically except around a clock change, which shifts
        // them by at most a few hours: stop once a start is that far before `earliest`.
        let slack = SignedDuration::from_hours(3);
        let stop = earliest.checked_sub(slack).unwrap_or(Timestamp::MIN);
        let mut day = now.to_zoned(tz.clone()).date().tomorrow().ok()?;
        let last_day = stop.to_zoned(tz.clone()).date().yesterday().ok()?;
        while day >= last_day {
            if self.matches_day(day) {
                for hour in (0..24i8).rev().filter(|h| self.hours & (1 << h) != 0) {
                    for minute in (0..60i8).rev().filter(|m| self.minutes & (1 << m) != 0) {
                        let civil =
                            DateTime::from_parts(day, jiff::civil::time(hour, minute, 0, 0));
                        let Ok(start) = tz.to_ambiguous_zoned(civil).compatible() else {
                            continue;
                        };
                        let start = start.timestamp();
                        if start < now && start > earliest {
                            return Some(start);
                        }
                        if start <= stop {
                            return None;
                        }
                    }
                }
            }
            day = day.yesterday().ok()?;
        }
        None
    }
}

/// Parses one cron field into a bit set (bit `n` = value `n`), and whether it was `*`/`?`.
fn parse_field(
    field: &str,
    what: &str,
    min: u32,
    max: u32,
    names: &[&str],
) -> Result<(u64, bool), String> {
    let mut bits = 0u64;
    let mut star = false;
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!("{what} field {field:?}: step {step:?} is not a positive number")
                })?;
                (range, Some(step))
            }
            None => (part, None),
        };
        let value = |s: &str| -> Result<u32, String> {
            let lower = s.to_ascii_lowercase();
            if let Some(i) = names.iter().position(|n| *n == lower) {
                return Ok(i as u32 + min);
            }
            let v: u32 = s
                .parse()
                .map_err(|_| format!("{what} field {field:?}: {s:?} is not a number"))?;
            if v < min || v > max {
                return Err(format!(
                    "{what} field {field:?}: {v} is outside {min}-{max}"
                ));
            }
            Ok(v)
        };
        let (start, end) = if range == "*" || range == "?" {
            if step.is_none_or(|s| s == 1) {
                star = true;
            }
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            (v, if step.is_some() { max } else { v })
        };
        if start > end {
            return Err(format!(
                "{what} field {field:?}: range {start}-{end} runs backwards"
            ));
        }
        let step = step.unwrap_or(1);
        let mut v = start;
        while v <= end {
            bits |= 1 << v;
            v += step;
        }
    }
    Ok((bits, star))
}

/// Parses a duration in Go's syntax: a sequence of decimal numbers with units `ns`, `us`/`µs`,
/// `ms`, `s`, `m`, `h` (`1h30m`, `1.5h`, `90s`), optionally signed; `0` alone is zero.
pub fn parse_go_duration(text: &str) -> Option<SignedDuration> {
    let (negative, mut rest) = match text.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    if rest == "0" {
        return Some(SignedDuration::ZERO);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let number = &rest[..number_len];
        if number.is_empty() || number == "." {
            return None;
        }
        let value: f64 = number.parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let nanos_per_unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total += value * nanos_per_unit;
    }
    // Go's durations are int64 nanoseconds (about 292 years).
    if total > i64::MAX as f64 {
        return None;
    }
    let d = SignedDuration::from_nanos(total.round() as i64);
    Some(if negative { -d } else { d })
}

impl fmt::Display for WindowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "syncWindows[{}] {}", self.index, self.window.summary())?;
        match &self.opened {
            Ok(Some(_)) => match self.closes_at() {
                Some(end) => write!(f, " (open until {})", end.strftime("%Y-%m-%dT%H:%M:%SZ")),
                None => write!(f, " (open)"),
            },
            Ok(None) => write!(f, " (closed)"),
            Err(e) => write!(f, " (invalid: {e})"),
        }
    }
}

#[cfg(test)]
mod tests;
