use super::*;

fn at(s: &str) -> Timestamp {
    s.parse().expect("timestamp")
}

fn window(kind: &str, schedule: &str, duration: &str, tz: Option<&str>) -> SyncWindow {
    SyncWindow {
        kind: kind.into(),
        schedule: schedule.into(),
        duration: duration.into(),
        applications: vec!["*".into()],
        time_zone: tz.map(Into::into),
        ..Default::default()
    }
}

fn open(w: &SyncWindow, now: &str) -> bool {
    w.opened_at(at(now)).expect("window parses").is_some()
}

const APP: WindowTarget<'static> = WindowTarget {
    app: "web",
    namespace: "shop",
    server: "https://kubernetes.default.svc",
    cluster_name: "",
};

#[test]
fn cron_fields_lists_ranges_steps_and_names() {
    let c = Cron::parse("*/15 9-17 * JAN,jun-Aug mon-fri").unwrap();
    assert_eq!(c.minutes, (1 << 0) | (1 << 15) | (1 << 30) | (1 << 45));
    assert_eq!(c.hours, (9..=17).map(|h| 1u64 << h).sum::<u64>());
    assert_eq!(c.months, (1 << 1) | (1 << 6) | (1 << 7) | (1 << 8));
    assert_eq!(c.days_of_week, (1..=5).map(|d| 1u64 << d).sum::<u64>());
    assert!(c.any_day_star);
    // `N/step` runs from N to the end of the range.
    assert_eq!(
        Cron::parse("50/5 * * * *").unwrap().minutes,
        (1 << 50) | (1 << 55)
    );
    assert_eq!(
        Cron::parse("@daily").unwrap(),
        Cron::parse("0 0 * * *").unwrap()
    );
    assert_eq!(
        Cron::parse("@hourly").unwrap(),
        Cron::parse("0 * * * *").unwrap()
    );
}

#[test]
fn cron_errors_name_the_field() {
    for (schedule, needle) in [
        ("* * * *", "expected 5 fields"),
        ("60 * * * *", "minute field \"60\": 60 is outside 0-59"),
        ("* 24 * * *", "hour field"),
        ("* * 0 * *", "day of month field"),
        ("* * * 13 * ", "month field"),
        ("* * * * 7", "day of week field \"7\": 7 is outside 0-6"),
        ("* * * * xyz", "\"xyz\" is not a number"),
        ("*/0 * * * *", "step \"0\" is not a positive number"),
        ("5-1 * * * *", "runs backwards"),
        ("@reboot", "expected 5 fields"),
    ] {
        let err = Cron::parse(schedule).unwrap_err();
        assert!(err.contains(needle), "{schedule:?}: {err}");
    }
}

#[test]
fn day_of_month_and_day_of_week_match_either_when_both_are_restricted() {
    // The 13th, or any Friday.
    let c = Cron::parse("0 0 13 * 5").unwrap();
    assert!(c.matches_day(jiff::civil::date(2026, 5, 13))); // a Wednesday
    assert!(c.matches_day(jiff::civil::date(2026, 5, 15))); // a Friday
    assert!(!c.matches_day(jiff::civil::date(2026, 5, 14)));
    // With one of them `*`, both must match.
    let c = Cron::parse("0 0 * * 5").unwrap();
    assert!(!c.matches_day(jiff::civil::date(2026, 5, 13)));
    assert!(c.matches_day(jiff::civil::date(2026, 5, 15)));
    let c = Cron::parse("0 0 13 * ?").unwrap();
    assert!(!c.matches_day(jiff::civil::date(2026, 5, 15)));
}

#[test]
fn go_durations() {
    let d = |s| parse_go_duration(s);
    assert_eq!(d("1h"), Some(SignedDuration::from_hours(1)));
    assert_eq!(d("1h30m"), Some(SignedDuration::from_mins(90)));
    assert_eq!(d("1.5h"), Some(SignedDuration::from_mins(90)));
    assert_eq!(d("90s"), Some(SignedDuration::from_secs(90)));
    assert_eq!(d("250ms"), Some(SignedDuration::from_millis(250)));
    assert_eq!(d("0"), Some(SignedDuration::ZERO));
    assert_eq!(d("-2m"), Some(SignedDuration::from_mins(-2)));
    for bad in ["", "1", "1d", "h", "1h30", "one hour", "1.2.3h", "-"] {
        assert_eq!(d(bad), None, "{bad:?}");
    }
}

#[test]
fn a_utc_window_is_open_for_its_duration_after_each_start() {
    let w = window("deny", "0 22 * * *", "1h", None);
    assert!(!open(&w, "2026-05-01T21:59:59Z"));
    assert!(!open(&w, "2026-05-01T22:00:00Z")); // opens just after its start, as in Argo CD
    assert!(open(&w, "2026-05-01T22:00:01Z"));
    assert!(open(&w, "2026-05-01T22:59:59Z"));
    assert!(!open(&w, "2026-05-01T23:00:00Z"));
    let opened = w.opened_at(at("2026-05-01T22:30:00Z")).unwrap();
    assert_eq!(opened, Some(at("2026-05-01T22:00:00Z")));
    // Across midnight.
    let w = window("allow", "30 23 * * *", "2h", None);
    assert!(open(&w, "2026-05-02T01:00:00Z"));
    assert!(!open(&w, "2026-05-02T01:30:00Z"));
    // A zero or negative duration never opens.
    assert!(!open(
        &window("deny", "* * * * *", "0", None),
        "2026-05-02T01:00:30Z"
    ));
    assert!(!open(
        &window("deny", "* * * * *", "-1h", None),
        "2026-05-02T01:00:30Z"
    ));
}

#[test]
fn a_window_follows_its_time_zone_through_the_seasons() {
    // 22:00 in Berlin is 21:00 UTC in winter (CET) and 20:00 UTC in summer (CEST).
    let w = window("deny", "0 22 * * *", "1h", Some("Europe/Berlin"));
    assert!(open(&w, "2026-01-15T21:30:00Z"));
    assert!(!open(&w, "2026-01-15T20:30:00Z"));
    assert!(open(&w, "2026-07-15T20:30:00Z"));
    assert!(!open(&w, "2026-07-15T21:30:00Z"));
    // The same wall-clock window in New York is six hours later in UTC (in both seasons).
    let w = window("deny", "0 22 * * *", "1h", Some("America/New_York"));
    assert!(open(&w, "2026-01-16T03:30:00Z")); // EST, UTC-5
    assert!(open(&w, "2026-07-16T02:30:00Z")); // EDT, UTC-4
    assert!(!open(&w, "2026-07-16T03:30:00Z"));
    // Weekdays are those of the window's zone: Monday 00:30 in Tokyo is Sunday in UTC.
    let w = window("allow", "0 0 * * mon", "1h", Some("Asia/Tokyo"));
    assert!(open(&w, "2026-06-07T15:30:00Z")); // a Sunday in UTC
    assert!(!open(&w, "2026-06-08T00:30:00Z")); // Monday in UTC, 09:30 in Tokyo
}

#[test]
fn a_start_in_the_spring_forward_gap_opens_after_the_gap() {
    // Berlin, 2026-03-29: clocks jump from 02:00 CET to 03:00 CEST (01:00 UTC).
    let w = window("deny", "30 2 * * *", "1h", Some("Europe/Berlin"));
    // 02:30 does not exist that night; the window opens at 03:30 CEST = 01:30 UTC.
    assert_eq!(
        w.opened_at(at("2026-03-29T01:45:00Z")).unwrap(),
        Some(at("2026-03-29T01:30:00Z"))
    );
    assert!(!open(&w, "2026-03-29T01:15:00Z"));
    assert!(open(&w, "2026-03-29T02:15:00Z"));
    assert!(!open(&w, "2026-03-29T02:30:00Z"));
    // The night before (CET) and after (CEST) it opens at 02:30 local time.
    assert!(open(&w, "2026-03-28T01:45:00Z"));
    assert!(open(&w, "2026-03-30T00:45:00Z"));
}

#[test]
fn a_start_in_the_repeated_hour_opens_once_at_its_first_occurrence() {
    // Berlin, 2026-10-25: clocks go back from 03:00 CEST to 02:00 CET (01:00 UTC); 02:30 happens
    // at 00:30 UTC and again at 01:30 UTC.
    let w = window("deny", "30 2 * * *", "30m", Some("Europe/Berlin"));
    assert!(open(&w, "2026-10-25T00:45:00Z"));
    assert!(!open(&w, "2026-10-25T01:45:00Z"));
    // A window that spans the change lasts its duration in real time: 01:00 CEST + 3h is
    // 03:00 CET (02:00 UTC), not 04:00.
    let w = window("deny", "0 1 * * *", "3h", Some("Europe/Berlin"));
    assert!(open(&w, "2026-10-25T01:59:00Z"));
    assert!(!open(&w, "2026-10-25T02:01:00Z"));
}

#[test]
fn long_durations_and_rare_schedules_evaluate_quickly() {
    // Opens on January 1st and stays open a whole year.
    let w = window("deny", "0 0 1 1 *", "8760h", None);
    assert!(open(&w, "2026-12-30T00:00:00Z"));
    // Every minute, open for ten years: found at once.
    let w = window("deny", "* * * * *", "87600h", None);
    assert!(open(&w, "2026-12-30T00:00:30Z"));
    // February 30th never comes.
    let w = window("deny", "0 0 30 2 *", "87600h", None);
    assert!(!open(&w, "2026-12-30T00:00:30Z"));
}

#[test]
fn malformed_windows_say_what_is_wrong() {
    let now = at("2026-05-01T12:00:00Z");
    let err = |w: SyncWindow| w.opened_at(now).unwrap_err().to_string();
    assert!(err(window("deny", "0 25 * * *", "1h", None)).contains("schedule \"0 25 * * *\""));
    assert!(err(window("deny", "* * * * *", "1 hour", None)).contains("duration \"1 hour\""));
    assert!(err(window("deny", "* * * * *", "1h", Some("Mars/Olympus"))).contains("Mars/Olympus"));
    assert!(err(window("block", "* * * * *", "1h", None)).contains("kind \"block\""));
    assert!(
        window("deny", "* * * * *", "1h", Some("UTC"))
            .opened_at(now)
            .is_ok()
    );
}

#[test]
fn windows_apply_by_app_namespace_or_cluster() {
    let by = |apps: &[&str], nss: &[&str], clusters: &[&str], and: bool| SyncWindow {
        kind: "deny".into(),
        applications: apps.iter().map(|s| s.to_string()).collect(),
        namespaces: nss.iter().map(|s| s.to_string()).collect(),
        clusters: clusters.iter().map(|s| s.to_string()).collect(),
        and_operator: and,
        ..Default::default()
    };
    assert!(by(&["w*"], &[], &[], false).applies_to(&APP));
    assert!(!by(&["api"], &[], &[], false).applies_to(&APP));
    assert!(by(&["api"], &["shop"], &[], false).applies_to(&APP));
    assert!(by(&[], &[], &["https://kubernetes.*"], false).applies_to(&APP));
    let named = WindowTarget {
        server: "",
        cluster_name: "in-cluster",
        ..APP
    };
    assert!(by(&[], &[], &["in-*"], false).applies_to(&named));
    assert!(!by(&[], &[], &["prod-*"], false).applies_to(&named));
    // A window with no lists applies to nothing.
    assert!(!by(&[], &[], &[], false).applies_to(&APP));
    assert!(!by(&[], &[], &[], true).applies_to(&APP));
    // andOperator: every given list must match.
    assert!(!by(&["api"], &["shop"], &[], true).applies_to(&APP));
    assert!(by(&["web"], &["shop"], &[], true).applies_to(&APP));
    assert!(!by(&["web"], &["shop"], &["prod-*"], true).applies_to(&APP));
}

#[test]
fn deny_wins_over_allow_and_manual_sync_passes_where_allowed() {
    let now = at("2026-05-01T22:30:00Z");
    let deny = window("deny", "0 22 * * *", "1h", None);
    let allow_now = window("allow", "0 20 * * *", "4h", None);
    let windows = [allow_now.clone(), deny.clone()];
    let v = SyncWindows(&windows).evaluate("shop", &APP, now, false);
    assert!(!v.allowed);
    let reason = v.reason.unwrap();
    assert!(
        reason.contains("blocked by deny window syncWindows[1]"),
        "{reason}"
    );
    assert!(reason.contains("AppProject shop"), "{reason}");
    assert!(
        !SyncWindows(&windows)
            .evaluate("shop", &APP, now, true)
            .allowed
    );
    // manualSync on the deny window lets manual syncs (only) through.
    let windows = [
        allow_now.clone(),
        SyncWindow {
            manual_sync: true,
            ..deny.clone()
        },
    ];
    assert!(
        SyncWindows(&windows)
            .evaluate("shop", &APP, now, true)
            .allowed
    );
    assert!(
        !SyncWindows(&windows)
            .evaluate("shop", &APP, now, false)
            .allowed
    );
    // When the deny window has closed, the allow window lets syncs through.
    let later = at("2026-05-01T23:30:00Z");
    let v = SyncWindows(&windows).evaluate("shop", &APP, later, false);
    assert!(v.allowed);
    assert_eq!(v.windows.len(), 2);
    assert!(v.windows[0].is_open() && !v.windows[1].is_open());
}

#[test]
fn with_allow_windows_syncs_wait_for_one_to_open() {
    let allow = window("allow", "0 9 * * mon-fri", "8h", None);
    let windows = [allow.clone()];
    let friday_noon = at("2026-05-01T12:00:00Z");
    let saturday = at("2026-05-02T12:00:00Z");
    assert!(
        SyncWindows(&windows)
            .evaluate("p", &APP, friday_noon, false)
            .allowed
    );
    let v = SyncWindows(&windows).evaluate("p", &APP, saturday, false);
    assert!(!v.allowed);
    assert!(
        v.reason
            .unwrap()
            .contains("no allow window of AppProject p is open")
    );
    assert!(
        !SyncWindows(&windows)
            .evaluate("p", &APP, saturday, true)
            .allowed
    );
    let manual = [SyncWindow {
        manual_sync: true,
        ..allow
    }];
    assert!(
        SyncWindows(&manual)
            .evaluate("p", &APP, saturday, true)
            .allowed
    );
    // No windows, or none for this app: everything syncs.
    assert!(
        SyncWindows(&[])
            .evaluate("p", &APP, saturday, false)
            .allowed
    );
    let other = [SyncWindow {
        applications: vec!["api".into()],
        ..window("deny", "* * * * *", "1h", None)
    }];
    let v = SyncWindows(&other).evaluate("p", &APP, saturday, false);
    assert!(v.allowed && v.windows.is_empty());
}

#[test]
fn a_malformed_window_blocks_the_apps_it_applies_to_and_is_named() {
    let windows = [
        window("allow", "* * * * *", "1h", None),
        window("deny", "0 22 * * *", "1 hour", None),
    ];
    let v = SyncWindows(&windows).evaluate("shop", &APP, at("2026-05-01T12:00:00Z"), false);
    assert!(!v.allowed);
    let reason = v.reason.clone().unwrap();
    assert!(reason.contains("AppProject shop"), "{reason}");
    assert!(reason.contains("web"), "{reason}");
    assert!(reason.contains("syncWindows[1]"), "{reason}");
    assert!(reason.contains("duration \"1 hour\""), "{reason}");
    assert_eq!(v.errors().len(), 1);
}

#[test]
fn window_state_shows_when_it_closes() {
    let w = window("deny", "0 22 * * *", "1h", Some("UTC"));
    let windows = [w];
    let v = SyncWindows(&windows).evaluate("p", &APP, at("2026-05-01T22:30:00Z"), false);
    assert_eq!(
        v.windows[0].to_string(),
        "syncWindows[0] deny \"0 22 * * *\" 1h UTC (open until 2026-05-01T23:00:00Z)"
    );
}

#[test]
fn argo_manifest_with_sync_windows_parses() {
    let p: crate::project::AppProject = serde_saphyr::from_str(
        r#"
apiVersion: argoproj.io/v1alpha1
kind: AppProject
metadata: {name: shop, namespace: argocd}
spec:
  syncWindows:
    - kind: allow
      schedule: '10 1 * * *'
      duration: 1h
      applications: ['*-prod']
      manualSync: true
    - kind: deny
      schedule: '0 22 * * *'
      timeZone: Europe/Amsterdam
      duration: 1h
      namespaces: [default]
      clusters: [in-cluster]
      andOperator: true
      description: nightly freeze
"#,
    )
    .expect("parses");
    let w = &p.spec.sync_windows;
    assert_eq!(w.len(), 2);
    assert!(w[0].manual_sync);
    assert_eq!(w[1].time_zone.as_deref(), Some("Europe/Amsterdam"));
    assert!(w[1].and_operator);
    assert_eq!(w[1].clusters, ["in-cluster"]);
    let back = serde_json::to_value(&p).unwrap();
    assert_eq!(back["spec"]["syncWindows"][0]["manualSync"], true);
    assert_eq!(
        back["spec"]["syncWindows"][1]["timeZone"],
        "Europe/Amsterdam"
    );
}
