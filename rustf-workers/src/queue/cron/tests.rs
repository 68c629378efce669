use chrono::TimeZone;

use super::*;

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// `y-m-d h:mi:s` UTC, in ms.
fn at(y: i32, m: u32, d: u32, h: u32, mi: u32, s: u32) -> i64 {
    Utc.with_ymd_and_hms(y, m, d, h, mi, s)
        .unwrap()
        .timestamp_millis()
}

fn schedule(expr: &str) -> CronSchedule {
    CronSchedule::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"))
}

fn next_n(schedule: &CronSchedule, from: i64, n: usize) -> Vec<i64> {
    std::iter::successors(schedule.next_after(from), |&t| schedule.next_after(t))
        .take(n)
        .collect()
}

// ---- parsing ---------------------------------------------------------------------------

#[test]
fn five_fields_are_minute_hour_dom_month_dow() {
    let nightly = schedule("0 3 * * *");
    assert_eq!(nightly.expr(), "0 3 * * *");
    assert_eq!(nightly.to_string(), "0 3 * * *");
    assert_eq!(format!("{nightly:?}"), r#"CronSchedule("0 3 * * *")"#);
    assert_eq!(
        nightly.next_after(at(2024, 5, 1, 12, 0, 0)),
        Some(at(2024, 5, 2, 3, 0, 0))
    );
    let parsed: CronSchedule = "30 14 1 6 *".parse().unwrap();
    assert_eq!(
        parsed.next_after(at(2024, 1, 1, 0, 0, 0)),
        Some(at(2024, 6, 1, 14, 30, 0))
    );
}

#[test]
fn six_fields_start_with_seconds() {
    let every_ten = schedule("*/10 * * * * *");
    let from = at(2024, 5, 1, 12, 0, 0);
    assert_eq!(
        next_n(&every_ten, from, 3),
        [from + 10_000, from + 20_000, from + 30_000]
    );
    let exact = schedule("15 30 3 * * *");
    assert_eq!(exact.next_after(from), Some(at(2024, 5, 2, 3, 30, 15)));
}

#[test]
fn aliases() {
    let from = at(2024, 5, 15, 12, 34, 56);
    let cases = [
        ("@hourly", at(2024, 5, 15, 13, 0, 0)),
        ("@daily", at(2024, 5, 16, 0, 0, 0)),
        ("@weekly", at(2024, 5, 19, 0, 0, 0)), // a Sunday
        ("@monthly", at(2024, 6, 1, 0, 0, 0)),
        ("@yearly", at(2025, 1, 1, 0, 0, 0)),
        ("@annually", at(2025, 1, 1, 0, 0, 0)),
    ];
    for (expr, next) in cases {
        assert_eq!(schedule(expr).next_after(from), Some(next), "{expr}");
    }
}

#[test]
fn weekdays_count_from_sunday_and_dom_or_dow() {
    // 2024-03-04 is a Monday.
    let from = at(2024, 3, 1, 12, 0, 0);
    let monday = at(2024, 3, 4, 0, 0, 0);
    assert_eq!(schedule("0 0 * * 1").next_after(from), Some(monday));
    assert_eq!(schedule("0 0 * * MON").next_after(from), Some(monday));
    assert_eq!(
        schedule("0 0 * * 0").next_after(from),
        Some(at(2024, 3, 3, 0, 0, 0))
    );
    assert_eq!(
        schedule("0 0 * * 7").next_after(from),
        Some(at(2024, 3, 3, 0, 0, 0)),
        "7 is Sunday too"
    );
    // Vixie cron: either the 15th or a Monday.
    let either = schedule("0 0 15 * MON");
    assert_eq!(
        next_n(&either, from, 3),
        [monday, monday + 7 * DAY, at(2024, 3, 15, 0, 0, 0)]
    );
}

#[test]
fn bad_expressions_are_validation_errors_naming_the_expression() {
    let cases = [
        ("0 3 * *", "expected 5 fields (minute hour day-of-month month day-of-week) or 6 (second first), found 4"),
        ("0 3 * * * * *", "found 7"),
        ("", "it is empty"),
        ("every day", "found 2"),
        ("61 * * * *", "minute `61`: number out of bounds (minute is 0-59)"),
        ("0 61 * * * *", "minute `61`: number out of bounds"),
        ("60 * * * * *", "second `60`: number out of bounds (second is 0-59)"),
        ("0 25 * * *", "hour `25`: number out of bounds (hour is 0-23)"),
        ("0 3 32 * *", "day-of-month `32`: number out of bounds (day-of-month is 1-31)"),
        ("0 3 * 13 *", "month `13`: number out of bounds (month is 1-12 or JAN-DEC)"),
        ("0 3 * * FUNDAY", "day-of-week `FUNDAY`: contains illegal character 'F'"),
        ("*/0 * * * *", "minute `*/0`: step cannot be zero"),
        ("@fortnightly", "unknown alias `@fortnightly`; expected `@yearly`"),
        ("0 0 30 2 *", "it matches no time"),
    ];
    for (expr, why) in cases {
        let err = CronSchedule::parse(expr).expect_err(why);
        assert!(err.is_validation(), "{why}: {err}");
        let message = err.to_string();
        assert!(
            message.starts_with(&format!(
                "validation failed: invalid cron expression `{expr}`: "
            )),
            "{message}"
        );
        assert!(message.contains(why), "{message:?} should say {why:?}");
    }
}

// ---- ticks -----------------------------------------------------------------------------

#[test]
fn next_after_is_strictly_after() {
    let hourly = schedule("0 * * * *");
    let tick = at(2024, 5, 1, 12, 0, 0);
    assert_eq!(hourly.next_after(tick - 1), Some(tick));
    assert_eq!(
        hourly.next_after(tick),
        Some(tick + HOUR),
        "not the tick itself"
    );
    assert_eq!(
        hourly.next_after(tick + 1),
        Some(tick + HOUR),
        "within its second"
    );
    assert_eq!(hourly.next_after(tick + 999), Some(tick + HOUR));
    assert_eq!(hourly.last_at_or_before(tick), Some(tick));
    assert_eq!(hourly.last_at_or_before(tick + 999), Some(tick));
    assert_eq!(hourly.last_at_or_before(tick - 1), Some(tick - HOUR));
    // Before the epoch, the arithmetic still floors.
    assert_eq!(hourly.next_after(-1), Some(0));
    assert_eq!(hourly.next_after(-HOUR - 1), Some(-HOUR));
    assert_eq!(hourly.last_at_or_before(-1), Some(-HOUR));
}

#[test]
fn ticks_in_a_range_exclude_the_start_and_include_the_end() {
    let quarterly = schedule("*/15 * * * *");
    let start = at(2024, 5, 1, 12, 0, 0);
    let ticks: Vec<i64> = quarterly.ticks(start, start + HOUR).collect();
    assert_eq!(
        ticks,
        [
            start + 15 * MINUTE,
            start + 30 * MINUTE,
            start + 45 * MINUTE,
            start + HOUR
        ]
    );
    assert_eq!(quarterly.ticks(start, start + 15 * MINUTE - 1).count(), 0);
    assert_eq!(quarterly.ticks(start, start).count(), 0);
    assert_eq!(quarterly.ticks(start + HOUR, start).count(), 0);
}

#[test]
fn month_ends_are_skipped_or_found() {
    // The 31st: only months that have one.
    let thirty_first = schedule("0 0 31 * *");
    assert_eq!(
        next_n(&thirty_first, at(2024, 1, 31, 0, 0, 0), 3),
        [
            at(2024, 3, 31, 0, 0, 0),
            at(2024, 5, 31, 0, 0, 0),
            at(2024, 7, 31, 0, 0, 0)
        ]
    );
    // The last day of each month, across a leap February and a common one.
    let last_day = schedule("0 0 L * *");
    assert_eq!(
        next_n(&last_day, at(2024, 1, 31, 0, 0, 0), 2),
        [at(2024, 2, 29, 0, 0, 0), at(2024, 3, 31, 0, 0, 0)]
    );
    assert_eq!(
        last_day.next_after(at(2023, 1, 31, 0, 0, 0)),
        Some(at(2023, 2, 28, 0, 0, 0))
    );
    // Across the end of a year.
    assert_eq!(
        schedule("0 0 1 * *").next_after(at(2024, 12, 15, 0, 0, 0)),
        Some(at(2025, 1, 1, 0, 0, 0))
    );
}

#[test]
fn leap_day_comes_every_four_years_but_not_in_2100() {
    let leap_day = schedule("0 12 29 2 *");
    assert_eq!(
        next_n(&leap_day, at(2023, 3, 1, 0, 0, 0), 3),
        [
            at(2024, 2, 29, 12, 0, 0),
            at(2028, 2, 29, 12, 0, 0),
            at(2032, 2, 29, 12, 0, 0)
        ]
    );
    assert_eq!(
        leap_day.next_after(at(2096, 3, 1, 0, 0, 0)),
        Some(at(2104, 2, 29, 12, 0, 0)),
        "2100 is not a leap year"
    );
    assert_eq!(
        leap_day.last_at_or_before(at(2024, 2, 29, 11, 59, 59)),
        Some(at(2020, 2, 29, 12, 0, 0))
    );
}

#[test]
fn daylight_saving_changes_nothing_in_utc() {
    // 02:30 is skipped on 2024-03-10 in New York and 2024-03-31 in Europe, and repeated
    // on 2024-11-03 and 2024-10-27; in UTC every day has its tick, 24 hours apart.
    let nightly = schedule("30 2 * * *");
    for (from, until) in [
        (at(2024, 3, 1, 0, 0, 0), at(2024, 4, 1, 0, 0, 0)),
        (at(2024, 10, 20, 0, 0, 0), at(2024, 11, 10, 0, 0, 0)),
    ] {
        let ticks: Vec<i64> = nightly.ticks(from, until).collect();
        assert_eq!(ticks.len() as i64, (until - from) / DAY);
        assert_eq!(ticks[0], from + 2 * HOUR + 30 * MINUTE);
        assert!(ticks.windows(2).all(|w| w[1] - w[0] == DAY), "{ticks:?}");
    }
}

#[test]
fn next_wake_is_the_earliest_next_tick() {
    let hourly = schedule("0 * * * *");
    let quarterly = schedule("*/15 * * * *");
    let now = at(2024, 5, 1, 12, 20, 0);
    assert_eq!(
        next_wake([&hourly, &quarterly], now),
        Some(at(2024, 5, 1, 12, 30, 0))
    );
    assert_eq!(next_wake([&hourly], now), Some(at(2024, 5, 1, 13, 0, 0)));
    assert_eq!(next_wake([], now), None);
}

// ---- which ticks are due ---------------------------------------------------------------

#[test]
fn first_sight_enqueues_only_on_time_ticks() {
    let nightly = schedule("0 3 * * *");
    let tick = at(2024, 5, 1, 3, 0, 0);
    for policy in [
        MissedTicks::Skip,
        MissedTicks::Latest,
        MissedTicks::All { max: 10 },
    ] {
        assert_eq!(
            nightly.due(None, tick, policy),
            [tick],
            "{policy:?}: at the tick"
        );
        assert_eq!(
            nightly.due(None, tick + 59_999, policy),
            [tick],
            "{policy:?}"
        );
        assert!(
            nightly.due(None, tick + MINUTE, policy).is_empty(),
            "{policy:?}: a minute late is missed, and nothing was missed on first sight"
        );
        assert!(nightly.due(None, tick + 11 * HOUR, policy).is_empty());
        assert!(nightly.due(None, tick - 1, policy).is_empty());
    }
}

#[test]
fn on_time_ticks_are_due_once_after_the_last_recorded() {
    let minutely = schedule("* * * * *");
    let tick = at(2024, 5, 1, 12, 0, 0);
    for policy in [
        MissedTicks::Skip,
        MissedTicks::Latest,
        MissedTicks::All { max: 10 },
    ] {
        assert_eq!(minutely.due(Some(tick - MINUTE), tick + 5, policy), [tick]);
        assert!(
            minutely.due(Some(tick), tick + 5, policy).is_empty(),
            "recorded"
        );
        assert!(
            minutely
                .due(Some(tick + MINUTE), tick + 5, policy)
                .is_empty(),
            "a later tick is recorded (a process whose clock runs ahead)"
        );
    }
    // Every second, called 2.5 s late: the newest tick only, not a burst of three (the
    // two before it were missed, and `Skip` drops them).
    let secondly = schedule("* * * * * *");
    assert_eq!(
        secondly.due(Some(tick - 1000), tick + 2500, MissedTicks::Skip),
        [tick + 2000]
    );
    assert_eq!(
        secondly.due(None, tick + 2500, MissedTicks::Latest),
        [tick + 2000],
        "first sight: the newest on-time tick, not the whole grace's worth"
    );
}

#[test]
fn missed_ticks_follow_the_policy() {
    // Down from before Monday's 03:00 until Thursday 14:00: three nightly ticks missed.
    let nightly = schedule("0 3 * * *");
    let last = at(2024, 5, 5, 3, 0, 0);
    let missed = [
        at(2024, 5, 6, 3, 0, 0),
        at(2024, 5, 7, 3, 0, 0),
        at(2024, 5, 8, 3, 0, 0),
    ];
    let now = at(2024, 5, 8, 14, 0, 0);
    assert!(nightly.due(Some(last), now, MissedTicks::Skip).is_empty());
    assert_eq!(
        nightly.due(Some(last), now, MissedTicks::Latest),
        [missed[2]]
    );
    assert_eq!(MissedTicks::default(), MissedTicks::Latest);
    assert_eq!(
        nightly.due(Some(last), now, MissedTicks::All { max: 10 }),
        missed
    );
    assert_eq!(
        nightly.due(Some(last), now, MissedTicks::All { max: 2 }),
        missed[1..],
        "the most recent two"
    );
    assert!(nightly
        .due(Some(last), now, MissedTicks::All { max: 0 })
        .is_empty());
}

#[test]
fn an_on_time_tick_stands_for_the_missed_ones_under_latest() {
    // Every minute, down for ten: back 30 s after the 12:10 tick.
    let minutely = schedule("* * * * *");
    let last = at(2024, 5, 1, 11, 59, 0);
    let now = at(2024, 5, 1, 12, 10, 30);
    let on_time = at(2024, 5, 1, 12, 10, 0);
    assert_eq!(
        minutely.due(Some(last), now, MissedTicks::Latest),
        [on_time]
    );
    assert_eq!(minutely.due(Some(last), now, MissedTicks::Skip), [on_time]);
    assert_eq!(
        minutely.due(Some(last), now, MissedTicks::All { max: 3 }),
        [
            at(2024, 5, 1, 12, 7, 0),
            at(2024, 5, 1, 12, 8, 0),
            at(2024, 5, 1, 12, 9, 0),
            on_time
        ]
    );
    let all = minutely.due(Some(last), now, MissedTicks::All { max: 100 });
    assert_eq!(all.len(), 11, "12:00 to 12:10");
    assert_eq!(all[0], at(2024, 5, 1, 12, 0, 0));
}

#[test]
fn a_long_downtime_does_not_walk_every_missed_tick() {
    // Every second, down for a year: `Latest` and `All` look back from now, not forward
    // from the last tick (31.5 million steps), so this returns at once.
    let secondly = schedule("* * * * * *");
    let last = at(2023, 5, 1, 0, 0, 0);
    let now = at(2024, 5, 1, 0, 0, 0);
    let latest = secondly.due(Some(last), now, MissedTicks::Latest);
    assert_eq!(latest, [now], "the newest tick, on time");
    let all = secondly.due(Some(last), now, MissedTicks::All { max: 5 });
    assert_eq!(all.len(), 5 + 1, "five missed, then the on-time one");
    assert_eq!(all[0], now - 5_000);
}
