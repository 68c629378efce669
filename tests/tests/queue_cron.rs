//! Cron schedules on the durable queue: `enqueue_due` against a real `SqliteQueue`, with
//! explicit `now_ms` (no sleeps), and `cron = "..."` at registration.

use rustf_workers::prelude::*;
use rustf_workers::queue::{
    enqueue_due, next_wake, CronSchedule, JobFilter, JobStore, MissedTicks, NewJob, SqliteQueue,
    CRON_GRACE_MS,
};
use rustf_workers::{WorkerOptions, WorkerRegistry};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;
/// 2024-05-01 03:00:00 UTC: a tick of `0 3 * * *`.
const TICK: i64 = 1_714_532_400_000;

struct Db {
    dir: tempfile::TempDir,
}

impl Db {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A new handle on the file, with its own connections, as another process would open it.
    fn open(&self) -> SqliteQueue {
        SqliteQueue::open(self.dir.path().join("jobs.db")).unwrap()
    }
}

fn nightly() -> CronSchedule {
    CronSchedule::parse("0 3 * * *").unwrap()
}

fn job(tick: i64) -> NewJob {
    NewJob::new(format!("nightly-{tick}"), "nightly").payload(serde_json::json!({ "tick": tick }))
}

async fn due(store: &SqliteQueue, now: i64, policy: MissedTicks) -> Vec<i64> {
    enqueue_due(store, now, "nightly", &nightly(), policy, job)
        .await
        .unwrap()
}

/// The ticks of the stored `nightly` jobs, oldest first.
async fn stored(store: &SqliteQueue) -> Vec<i64> {
    let page = store
        .list(JobFilter {
            worker: Some("nightly".into()),
            limit: JobFilter::MAX_LIMIT,
            ..JobFilter::default()
        })
        .await
        .unwrap();
    let mut ticks: Vec<i64> = page
        .jobs
        .iter()
        .map(|record| record.payload.as_ref().unwrap()["tick"].as_i64().unwrap())
        .collect();
    ticks.sort_unstable();
    ticks
}

#[tokio::test]
async fn each_tick_is_enqueued_once() {
    let db = Db::new();
    let store = db.open();
    assert_eq!(due(&store, TICK + 5, MissedTicks::Latest).await, [TICK]);
    assert!(
        due(&store, TICK + 5, MissedTicks::Latest).await.is_empty(),
        "the same now again"
    );
    assert!(due(&store, TICK + 30_000, MissedTicks::Latest)
        .await
        .is_empty());
    assert_eq!(store.last_cron_tick("nightly").await.unwrap(), Some(TICK));
    assert_eq!(stored(&store).await, [TICK]);

    // The job is what `make_job` made, and runs now.
    let record = store
        .get(&format!("nightly-{TICK}"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.worker, "nightly");
    assert_eq!(record.run_at_ms, TICK + 5);

    // Called at each next wake, a day of ticks each enqueued once.
    let mut now = TICK + 5;
    for day in 1..=3 {
        now = next_wake([&nightly()], now).unwrap();
        assert_eq!(now, TICK + day * DAY);
        assert_eq!(due(&store, now + 250, MissedTicks::Latest).await, [now]);
    }
    assert_eq!(
        stored(&store).await,
        [TICK, TICK + DAY, TICK + 2 * DAY, TICK + 3 * DAY]
    );
}

#[tokio::test]
async fn first_sight_enqueues_nothing_missed() {
    for policy in [
        MissedTicks::Skip,
        MissedTicks::Latest,
        MissedTicks::All { max: 100 },
    ] {
        let db = Db::new();
        let store = db.open();
        // Deployed at 14:00: this morning's tick was never expected.
        assert!(
            due(&store, TICK + 11 * HOUR, policy).await.is_empty(),
            "{policy:?}"
        );
        assert_eq!(store.last_cron_tick("nightly").await.unwrap(), None);
        assert!(stored(&store).await.is_empty());
        // The next tick is on time, and enqueued.
        let next = next_wake([&nightly()], TICK + 11 * HOUR).unwrap();
        assert_eq!(next, TICK + DAY);
        assert_eq!(
            due(&store, next + 1_000, policy).await,
            [next],
            "{policy:?}"
        );
    }
}

#[tokio::test]
async fn a_tick_seen_late_but_within_the_grace_is_on_time() {
    let db = Db::new();
    let store = db.open();
    assert!(due(&store, TICK + CRON_GRACE_MS, MissedTicks::Skip)
        .await
        .is_empty());
    assert_eq!(
        due(&store, TICK + CRON_GRACE_MS - 1, MissedTicks::Skip).await,
        [TICK],
        "a minute less a millisecond late"
    );
}

/// The store has seen `nightly` at `TICK`; the application is then down for three
/// nights and back at 14:00 after the third.
async fn after_downtime(policy: MissedTicks) -> (Vec<i64>, Vec<i64>) {
    let db = Db::new();
    let store = db.open();
    assert_eq!(due(&store, TICK, policy).await, [TICK]);
    let back = TICK + 3 * DAY + 11 * HOUR;
    let enqueued = due(&store, back, policy).await;
    assert!(
        due(&store, back, policy).await.is_empty(),
        "{policy:?}: a second call enqueues nothing"
    );
    (enqueued, stored(&store).await)
}

#[tokio::test]
async fn missed_ticks_follow_the_policy_after_downtime() {
    let missed = [TICK + DAY, TICK + 2 * DAY, TICK + 3 * DAY];

    let (enqueued, all) = after_downtime(MissedTicks::Skip).await;
    assert!(enqueued.is_empty());
    assert_eq!(all, [TICK]);

    let (enqueued, all) = after_downtime(MissedTicks::default()).await;
    assert_eq!(enqueued, [missed[2]], "Latest: the most recent, once");
    assert_eq!(all, [TICK, missed[2]]);

    let (enqueued, all) = after_downtime(MissedTicks::All { max: 10 }).await;
    assert_eq!(enqueued, missed);
    assert_eq!(all, [TICK, missed[0], missed[1], missed[2]]);

    let (enqueued, all) = after_downtime(MissedTicks::All { max: 2 }).await;
    assert_eq!(enqueued, missed[1..], "the most recent two");
    assert_eq!(all, [TICK, missed[1], missed[2]]);
}

#[tokio::test]
async fn skipped_ticks_stay_skipped_once_a_later_tick_is_recorded() {
    let db = Db::new();
    let store = db.open();
    assert_eq!(due(&store, TICK, MissedTicks::Skip).await, [TICK]);
    let back = TICK + 3 * DAY + 11 * HOUR;
    assert!(due(&store, back, MissedTicks::Skip).await.is_empty());
    let next = TICK + 4 * DAY;
    assert_eq!(due(&store, next, MissedTicks::Skip).await, [next]);
    // A later caller with a more forgiving policy finds nothing left to catch up.
    assert!(due(&store, next + 10, MissedTicks::All { max: 10 })
        .await
        .is_empty());
    assert_eq!(stored(&store).await, [TICK, next]);
}

#[tokio::test]
async fn handles_racing_on_one_file_enqueue_each_tick_once() {
    let db = Db::new();
    // Seen at TICK, then down for five nights: `All` catches up on five ticks, and every
    // one of them is raced by four handles.
    assert_eq!(due(&db.open(), TICK, MissedTicks::Latest).await, [TICK]);
    let back = TICK + 5 * DAY + 30_000;
    const RACERS: usize = 4;
    // Each racer is a thread with its own runtime and handle, as a process would be. Its
    // first `make_job` waits for the others', so all of them have read the same last
    // tick and try to record the same five ticks.
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(RACERS));
    let racers: Vec<_> = (0..RACERS)
        .map(|_| {
            let store = db.open();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let waited = std::cell::Cell::new(false);
                let make_job = |tick| {
                    if !waited.replace(true) {
                        barrier.wait();
                    }
                    job(tick)
                };
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(enqueue_due(
                    &store,
                    back,
                    "nightly",
                    &nightly(),
                    MissedTicks::All { max: 10 },
                    make_job,
                ))
            })
        })
        .collect();
    let mut won = Vec::new();
    for racer in racers {
        won.extend(racer.join().unwrap().unwrap());
    }
    won.sort_unstable();
    let expected: Vec<i64> = (0..=5).map(|day| TICK + day * DAY).collect();
    assert_eq!(won, expected[1..], "each tick won by exactly one handle");
    assert_eq!(stored(&db.open()).await, expected);
}

// ---- `cron` at registration ------------------------------------------------------------

/// Runs nightly.
#[worker("cron-nightly", cron = "0 3 * * *")]
async fn cron_nightly(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

/// Has the right shape for the macro, and a minute the runtime refuses.
#[worker("cron-bad-minute", cron = "61 * * * *")]
async fn cron_bad_minute(_ctx: WorkerContext) -> Result<()> {
    Ok(())
}

#[tokio::test]
async fn the_attribute_registers_the_schedule() {
    let options = WORKER::registry().options("cron-nightly").unwrap();
    assert_eq!(options.cron_expr(), Some("0 3 * * *"));
    WORKER::run("cron-nightly", None).await.unwrap();
}

#[tokio::test]
async fn an_invalid_expression_is_refused_at_registration() {
    let err = WORKER::run("cron-bad-minute", None).await.unwrap_err();
    assert!(err.is_validation(), "{err}");
    assert_eq!(
        err.to_string(),
        "validation failed: worker 'cron-bad-minute': invalid cron expression `61 * * * *`: \
         minute `61`: number out of bounds (minute is 0-59)"
    );

    let workers = WorkerRegistry::new();
    let err = workers
        .register_with(
            "by-hand",
            WorkerOptions::new().cron("0 0 30 2 *"),
            |_ctx| async { Ok(()) },
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "validation failed: worker 'by-hand': invalid cron expression `0 0 30 2 *`: it \
         matches no time"
    );
}
