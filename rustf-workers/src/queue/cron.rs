//! Cron schedules for the durable queue: which ticks are due, each enqueued once.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

use super::{JobStore, NewJob};
use crate::{Error, Result};

/// How late a tick may be seen and still count as on time, in ms: one minute (the
/// default of sidekiq-cron's `reschedule_grace_period`).
///
/// A tick is on time at `now_ms` while `now_ms - tick < CRON_GRACE_MS`; an older one that
/// nobody enqueued was missed, and [`MissedTicks`] decides what becomes of it. The grace
/// absorbs a poller that wakes a little late (a busy runtime, a slow database) without
/// calling its tick missed.
pub const CRON_GRACE_MS: i64 = 60_000;

/// A parsed cron expression: the times at which a worker is due, in UTC.
///
/// # Syntax
///
/// Five fields, `minute hour day-of-month month day-of-week`, or six with `second` first,
/// with POSIX/Vixie cron's meaning:
///
/// - each field takes `*`, a number, a range `1-5`, a step `*/15` or `0-30/10`, and lists
///   of those `1,15,30`;
/// - months and weekdays also take names (`JAN`, `MON-FRI`); Sunday is `0` (or `7`);
/// - when both day-of-month and day-of-week are restricted, a day matching either is due
///   (`0 0 1 * MON`: the 1st of each month, and every Monday);
/// - `L` (last day of the month, `5L` the last Friday), `#` (`MON#1`, the first Monday)
///   and `W` (the weekday nearest a day) are accepted too;
/// - the aliases `@yearly` (`@annually`), `@monthly`, `@weekly`, `@daily` and `@hourly`.
///
/// Parsing is done by the [`croner`](https://docs.rs/croner) crate.
///
/// # Time zone
///
/// UTC only: `0 3 * * *` is 03:00 UTC every day, whatever the machine's time zone. Days
/// are always 24 hours long, so daylight saving time never skips or repeats a tick.
///
/// # Examples
///
/// ```
/// use rustf_workers::queue::CronSchedule;
///
/// let nightly = CronSchedule::parse("0 3 * * *")?;
/// // 2024-02-28 12:00 UTC: the next tick is 2024-02-29 03:00 UTC.
/// let next = nightly.next_after(1_709_121_600_000);
/// assert_eq!(next, Some(1_709_175_600_000));
///
/// let err = CronSchedule::parse("0 3 * *").unwrap_err();
/// assert!(err.is_validation());
/// # Ok::<(), rustf_workers::Error>(())
/// ```
#[derive(Clone)]
pub struct CronSchedule {
    expr: Box<str>,
    cron: Cron,
}

impl CronSchedule {
    /// Parses a cron expression (see the [syntax](CronSchedule#syntax)).
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] naming the expression and what is wrong with it: a wrong
    /// number of fields, a value out of range, an unknown name, or a schedule that
    /// matches no time at all (`0 0 30 2 *`, the 30th of February).
    pub fn parse(expr: &str) -> Result<Self> {
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            // A sixth field is seconds, never a year, so `0 3 * * * *` means one thing.
            .year(Year::Disallowed)
            .build();
        let cron = parser.parse(expr.trim()).map_err(|error| {
            let why = explain(&parser, expr, &error);
            Error::validation(format!("invalid cron expression `{expr}`: {why}"))
        })?;
        let schedule = Self {
            expr: expr.into(),
            cron,
        };
        if schedule.next_after(0).is_none() {
            return Err(Error::validation(format!(
                "invalid cron expression `{expr}`: it matches no time"
            )));
        }
        Ok(schedule)
    }

    /// The expression as it was given.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// The first tick strictly after `ms` (milliseconds since the Unix epoch), if there is
    /// one before the year 10 000 or so. Ticks fall on whole seconds.
    pub fn next_after(&self, ms: i64) -> Option<i64> {
        // Ticks are whole seconds, so the first one after `ms` is the first one after the
        // second `ms` falls in.
        let from = utc(ms.div_euclid(1000))?;
        let next = self.cron.find_next_occurrence(&from, false).ok()?;
        Some(next.timestamp_millis())
    }

    /// The last tick at or before `ms`, if there is one after the year 0 or so.
    pub fn last_at_or_before(&self, ms: i64) -> Option<i64> {
        let from = utc(ms.div_euclid(1000))?;
        let last = self.cron.find_previous_occurrence(&from, true).ok()?;
        Some(last.timestamp_millis())
    }

    /// The ticks in `(after_ms, until_ms]`, in order: strictly after `after_ms`, and at or
    /// before `until_ms`.
    ///
    /// # Examples
    ///
    /// ```
    /// use rustf_workers::queue::CronSchedule;
    ///
    /// let quarterly = CronSchedule::parse("*/15 * * * *")?;
    /// let hour = 3_600_000;
    /// let ticks: Vec<i64> = quarterly.ticks(0, hour).collect();
    /// assert_eq!(ticks, [900_000, 1_800_000, 2_700_000, 3_600_000]);
    /// # Ok::<(), rustf_workers::Error>(())
    /// ```
    pub fn ticks(&self, after_ms: i64, until_ms: i64) -> impl Iterator<Item = i64> + '_ {
        std::iter::successors(self.next_after(after_ms), move |&tick| {
            self.next_after(tick)
        })
        .take_while(move |&tick| tick <= until_ms)
    }

    /// The ticks [`enqueue_due`] enqueues at `now_ms` when the last tick recorded is
    /// `last`, in order.
    fn due(&self, last: Option<i64>, now_ms: i64, policy: MissedTicks) -> Vec<i64> {
        // The newest tick not enqueued yet: on time within the grace, else missed.
        let Some(latest) = self
            .last_at_or_before(now_ms)
            .filter(|&tick| last.is_none_or(|last| tick > last))
        else {
            return Vec::new();
        };
        let on_time = latest > now_ms.saturating_sub(CRON_GRACE_MS);
        let Some(last) = last else {
            // First sight: nothing was missed, since nothing was expected yet.
            return if on_time { vec![latest] } else { Vec::new() };
        };
        // Ticks between the last one enqueued and the newest: missed, newest first.
        let earlier = |max: usize| {
            let mut missed = Vec::new();
            let mut cursor = self.last_at_or_before(latest - 1);
            while let Some(tick) = cursor.filter(|&tick| tick > last) {
                if missed.len() == max {
                    break;
                }
                missed.push(tick);
                cursor = self.last_at_or_before(tick - 1);
            }
            missed.reverse();
            missed
        };
        match policy {
            MissedTicks::Skip if on_time => vec![latest],
            MissedTicks::Skip => Vec::new(),
            // Once, however many were missed: the newest.
            MissedTicks::Latest => vec![latest],
            MissedTicks::All { max } => {
                let room = if on_time { max } else { max.saturating_sub(1) };
                let mut due = earlier(room);
                if on_time || max > 0 {
                    due.push(latest);
                }
                due
            }
        }
    }
}

/// The fields of a six-field expression, with their ranges; a five-field one has no
/// seconds.
const FIELDS: [(&str, &str); 6] = [
    ("second", "0-59"),
    ("minute", "0-59"),
    ("hour", "0-23"),
    ("day-of-month", "1-31"),
    ("month", "1-12 or JAN-DEC"),
    ("day-of-week", "0-7 or SUN-SAT"),
];

/// What is wrong with `expr`, which `parser` refused with `error`: croner's message does
/// not say which field is at fault, so each field is tried alone.
fn explain(parser: &CronParser, expr: &str, error: &CronError) -> String {
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let names = match fields.len() {
        0 => return "it is empty".to_owned(),
        1 if fields[0].starts_with('@') => {
            return format!(
                "unknown alias `{}`; expected `@yearly`, `@annually`, `@monthly`, \
                 `@weekly`, `@daily` or `@hourly`",
                fields[0]
            )
        }
        5 => &FIELDS[1..],
        6 => &FIELDS[..],
        n => {
            return format!(
                "expected 5 fields (minute hour day-of-month month day-of-week) or 6 \
                 (second first), found {n}"
            )
        }
    };
    for (index, (field, (name, range))) in fields.iter().zip(names).enumerate() {
        let alone: Vec<&str> = (0..fields.len())
            .map(|other| if other == index { field } else { "*" })
            .collect();
        if let Err(error) = parser.parse(&alone.join(" ")) {
            return format!("{name} `{field}`: {} ({name} is {range})", tidy(&error));
        }
    }
    tidy(error)
}

/// croner's message without its prefix and full stop: "number out of bounds".
fn tidy(error: &CronError) -> String {
    let message = match error {
        CronError::InvalidPattern(message)
        | CronError::IllegalCharacters(message)
        | CronError::ComponentError(message) => message.clone(),
        other => other.to_string(),
    };
    let message = message.trim_end_matches('.');
    let message = message.strip_prefix("CronPattern ").unwrap_or(message);
    let mut chars = message.chars();
    match (chars.next(), chars.next()) {
        // A sentence, not a name such as `CronPattern`.
        (Some(first), Some(second)) if second.is_lowercase() => {
            first.to_lowercase().chain([second]).chain(chars).collect()
        }
        _ => message.to_owned(),
    }
}

/// `None` outside chrono's range (about 262 000 years either side of 1970).
fn utc(secs: i64) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(secs, 0)
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("CronSchedule").field(&self.expr).finish()
    }
}

/// The expression as it was given.
impl fmt::Display for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}

impl FromStr for CronSchedule {
    type Err = Error;

    fn from_str(expr: &str) -> Result<Self> {
        Self::parse(expr)
    }
}

/// What [`enqueue_due`] does with ticks that were missed: due while no process was
/// enqueueing them (the application was down, or being deployed).
///
/// At `now_ms`, the tick due is the newest at or before `now_ms` that is after the
/// worker's last recorded tick: on time while it is less than [`CRON_GRACE_MS`] old, and
/// enqueued whatever the policy; missed when older. The ticks between the last recorded
/// one and it were missed too. A worker seen for the first time (no tick recorded) has
/// missed nothing, and gets its newest tick only if it is on time. So a schedule whose
/// ticks come faster than its poller wakes, or that was down a while, never bursts: only
/// what the policy asks for is enqueued.
///
/// The default is [`MissedTicks::Latest`], what users of Oban and sidekiq-cron expect: a
/// nightly job missed during a deploy runs once when the application is back, not once
/// per night it was down, nor never.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MissedTicks {
    /// Missed ticks are dropped: only an on-time tick is enqueued.
    Skip,
    /// The newest tick is enqueued once, on time or missed (it stands for the missed
    /// ones); older missed ticks are dropped.
    #[default]
    Latest,
    /// The most recent `max` missed ticks are enqueued, oldest first, then the on-time
    /// one; older missed ticks are dropped. `max: 0` is [`MissedTicks::Skip`].
    All {
        /// At most this many missed ticks: a bound on the burst after a long downtime.
        max: usize,
    },
}

/// Enqueues the ticks of `worker`'s `schedule` that are due at `now_ms`, each exactly once
/// however many processes call this at once; returns the ticks this call enqueued, in
/// order.
///
/// The ticks due are those after the last tick recorded for `worker`
/// ([`JobStore::last_cron_tick`]) and at or before `now_ms`: the on-time ones (less than
/// [`CRON_GRACE_MS`] old) and, as `policy` says, the missed ones (see [`MissedTicks`]).
/// The first time a worker is seen (no tick recorded), only on-time ticks are due:
/// the schedule starts a minute before `now_ms`, and nothing before that was missed.
///
/// Each due tick is handed to `make_job`, and the job is enqueued through
/// [`JobStore::cron_tick`], which records the tick and stores its job in one transaction,
/// at most once per `(worker, tick)` ever. A tick another process recorded first is left
/// out of the result.
///
/// Call it again at [`next_wake`], or up to [`CRON_GRACE_MS`] after it.
///
/// # Examples
///
/// ```
/// # #[cfg(feature = "sqlite")]
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> rustf_workers::Result<()> {
/// use rustf_workers::queue::{enqueue_due, next_wake, CronSchedule, MissedTicks, NewJob, SqliteQueue};
///
/// # let dir = std::env::temp_dir().join(format!("rustf-doc-cron-{}", std::process::id()));
/// # std::fs::create_dir_all(&dir)?;
/// let queue = SqliteQueue::open(dir.join("jobs.db"))?;
/// let nightly = CronSchedule::parse("0 3 * * *")?;
/// let make_job = |tick: i64| NewJob::new(format!("nightly-{tick}"), "nightly");
///
/// // 2024-03-01 03:00:05 UTC: five seconds after a tick.
/// let now = 1_709_262_005_000;
/// let ticks = enqueue_due(&queue, now, "nightly", &nightly, MissedTicks::Latest, make_job).await?;
/// assert_eq!(ticks, [1_709_262_000_000]);
///
/// // Another process, or this one again: the tick is enqueued already.
/// let again = enqueue_due(&queue, now, "nightly", &nightly, MissedTicks::Latest, make_job).await?;
/// assert!(again.is_empty());
///
/// // Sleep until the next tick, then call again.
/// assert_eq!(next_wake([&nightly], now), Some(1_709_262_000_000 + 86_400_000));
/// # drop(queue);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "sqlite"))]
/// # fn main() {}
/// ```
///
/// # Errors
///
/// What the store returns ([`Error::Store`] when the database fails,
/// [`Error::Validation`] for a job that cannot be stored). Ticks enqueued before the
/// error stay enqueued, and the next call picks up after them.
///
/// # Cancel safety
///
/// Not cancel safe in that a tick being recorded when the future is dropped may still be
/// recorded, and its job enqueued, without being returned. It is never enqueued twice.
pub async fn enqueue_due(
    store: &dyn JobStore,
    now_ms: i64,
    worker: &str,
    schedule: &CronSchedule,
    policy: MissedTicks,
    make_job: impl Fn(i64) -> NewJob,
) -> Result<Vec<i64>> {
    let last = store.last_cron_tick(worker).await?;
    let mut enqueued = Vec::new();
    for tick in schedule.due(last, now_ms, policy) {
        if store
            .cron_tick(now_ms, worker, tick, make_job(tick))
            .await?
        {
            enqueued.push(tick);
        }
    }
    Ok(enqueued)
}

/// When to call [`enqueue_due`] next for `schedules`: the earliest tick of any of them
/// after `now_ms`; `None` if none has another tick.
///
/// A caller that sleeps until then, or up to [`CRON_GRACE_MS`] longer, sees that tick on
/// time. After a failed call, retry sooner: the ticks it did not enqueue are missed once
/// they are a minute old.
pub fn next_wake<'a>(
    schedules: impl IntoIterator<Item = &'a CronSchedule>,
    now_ms: i64,
) -> Option<i64> {
    schedules
        .into_iter()
        .filter_map(|schedule| schedule.next_after(now_ms))
        .min()
}

#[cfg(test)]
mod tests;
