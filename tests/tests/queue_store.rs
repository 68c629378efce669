//! The conformance suite of the durable queue's storage seam, [`JobStore`]: every store
//! runs the same tests (River's `riverdrivertest`). A new store adds one line:
//! `store_suite!(postgres, Postgres);`, with a [`StoreFactory`] for it.
//!
//! Time is passed in as `now_ms`, so no test sleeps or depends on the clock.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use rustf_workers::queue::{
    CancelOutcome, ClaimRequest, ClaimedJob, EnqueueClaim, Finish, FinishOutcome, JobFilter,
    JobState, JobStore, NewJob, NewNode, NodeBeat, NodeStatus, PostgresOptions, PostgresQueue,
    SqliteOptions, SqliteQueue,
};
use rustf_workers::{CheckpointStore, IdempotencyStore};
use rustf_workers_tests::postgres::TestDatabase;
use serde_json::json;

/// A moment to start from: Nov 2023, in ms.
const T0: i64 = 1_700_000_000_000;

/// How a test gets at a store: one fresh, empty database per test, and as many handles
/// on it as it wants (each as another process would open it).
trait StoreFactory: Send + Sync + Sized + 'static {
    /// The store under test.
    type Store: JobStore + CheckpointStore + IdempotencyStore + Clone;

    /// A new, empty database.
    fn create() -> Self;

    /// A new handle on this database, with its own connections.
    fn open(&self) -> Self::Store;
}

/// Generates one `#[tokio::test]` per suite function for a factory.
macro_rules! store_suite {
    ($name:ident, $factory:ty) => {
        mod $name {
            use super::*;

            store_suite!(@tests $factory;
                enqueue_then_get,
                batch_enqueue_is_all_or_nothing,
                invalid_jobs_are_refused,
                unique_key_is_held_only_by_live_jobs,
                enqueue_claimed_stores_and_claims_in_one_write,
                claim_order_is_priority_then_run_at_then_insertion,
                claim_respects_worker_counts_limit_and_unknown_workers,
                scheduled_jobs_wait_for_run_at,
                two_claimers_never_both_win_a_job,
                stale_epochs_are_refused,
                expired_leases_are_rescued,
                retry_backoff_is_stored,
                requeue_does_not_count_the_attempt,
                a_cancel_before_the_start_is_a_waiting_jobs_cancel,
                cancel_waiting_and_running_jobs,
                retry_delete_and_prune,
                cron_ticks_happen_once,
                cron_ticks_happen_once_across_racing_handles,
                completed_idempotency_keys_replay,
                checkpoints_resume_retried_jobs,
                checkpoint_and_idempotency_traits,
                list_filters_and_pages,
                counts_per_worker_and_state,
                nodes_register_beat_stop_and_age,
            );
        }
    };
    (@tests $factory:ty; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $test() {
                super::$test::<$factory>().await
            }
        )*
    };
}

store_suite!(sqlite, Sqlite);

/// The SQLite store: one file in a temporary directory.
struct Sqlite {
    dir: tempfile::TempDir,
}

impl StoreFactory for Sqlite {
    type Store = SqliteQueue;

    fn create() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn open(&self) -> SqliteQueue {
        SqliteQueue::open(self.dir.path().join("jobs.db")).unwrap()
    }
}

store_suite!(postgres, Postgres);

/// The PostgreSQL store: a fresh database per test on the tests' server
/// (`rustf_workers_tests::postgres`).
struct Postgres {
    db: TestDatabase,
}

impl StoreFactory for Postgres {
    type Store = PostgresQueue;

    fn create() -> Self {
        Self {
            db: TestDatabase::create(),
        }
    }

    fn open(&self) -> PostgresQueue {
        // Lazy: `open` is synchronous; the first operation connects and migrates. A small
        // pool, so that tests in parallel stay far from the server's connection limit.
        PostgresOptions::new(self.db.url())
            .pool_size(4)
            .connect_lazy()
            .unwrap()
    }
}

// ---- helpers ---------------------------------------------------------------------------

fn job(id: &str, worker: &str) -> NewJob {
    NewJob::new(id, worker)
}

fn request(owner: &str, workers: &[(&str, usize)], limit: usize) -> ClaimRequest {
    ClaimRequest {
        owner: owner.into(),
        workers: workers.iter().map(|(w, n)| (w.to_string(), *n)).collect(),
        limit,
        lease_ms: 30_000,
    }
}

fn ids(jobs: &[ClaimedJob]) -> Vec<&str> {
    jobs.iter().map(|j| j.id.as_str()).collect()
}

fn finish(job: &ClaimedJob, outcome: FinishOutcome) -> Finish {
    Finish {
        id: job.id.clone(),
        epoch: job.epoch,
        outcome,
    }
}

async fn enqueue<S: JobStore>(store: &S, now: i64, jobs: Vec<NewJob>) {
    let done = store.enqueue(now, jobs).await.unwrap();
    assert!(done.iter().all(|e| e.inserted), "{done:?}");
}

async fn claim_one<S: JobStore>(store: &S, now: i64, worker: &str) -> ClaimedJob {
    let mut claimed = store
        .claim(now, request("node-a", &[(worker, 1)], 1))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1, "one due job of `{worker}` at {now}");
    claimed.pop().unwrap()
}

async fn state<S: JobStore>(store: &S, id: &str) -> JobState {
    store
        .get(id)
        .await
        .unwrap()
        .expect("the job is stored")
        .state
}

// ---- the suite -------------------------------------------------------------------------

async fn enqueue_then_get<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    let new = job("j1", "send-email")
        .payload(json!({ "to": "a@example.com" }))
        .queue("mail")
        .priority(3)
        .max_attempts(4)
        .timeout_ms(5_000)
        .unique_key("welcome:1")
        .idempotency_key("idem:1")
        .memory(1024);
    let done = store.enqueue(T0, vec![new]).await.unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!((done[0].id.as_str(), done[0].inserted), ("j1", true));

    let got = store.get("j1").await.unwrap().unwrap();
    assert_eq!(got.worker, "send-email");
    assert_eq!(got.queue, "mail");
    assert_eq!(got.state, JobState::Available);
    assert_eq!(got.payload, Some(json!({ "to": "a@example.com" })));
    assert_eq!((got.priority, got.attempt, got.max_attempts), (3, 0, 4));
    assert_eq!((got.run_at_ms, got.created_at_ms), (T0, T0));
    assert_eq!(got.finished_at_ms, None);
    assert_eq!(got.timeout_ms, Some(5_000));
    assert_eq!(got.unique_key.as_deref(), Some("welcome:1"));
    assert_eq!(got.idempotency_key.as_deref(), Some("idem:1"));
    assert_eq!(
        (got.memory, got.epoch, got.cancel_requested),
        (1024, 0, false)
    );
    assert!(got.errors.is_empty() && got.owner.is_none() && got.checkpoint.is_none());

    enqueue(&store, T0, vec![job("later", "w").run_at_ms(T0 + 1)]).await;
    assert_eq!(state(&store, "later").await, JobState::Scheduled);
    assert!(store.get("nope").await.unwrap().is_none());

    // Another handle (another process) sees the commit.
    assert_eq!(db.open().get("j1").await.unwrap().unwrap().id, "j1");
}

async fn batch_enqueue_is_all_or_nothing<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    enqueue(&store, T0, vec![job("taken", "w")]).await;

    // The second row reuses an id: the first row must not be stored either.
    let err = store
        .enqueue(T0, vec![job("fresh", "w"), job("taken", "w")])
        .await
        .unwrap_err();
    assert!(err.is_validation(), "{err}");
    assert!(err.to_string().contains("`taken`"), "{err}");
    assert!(store.get("fresh").await.unwrap().is_none());

    // The same with an id twice in the batch, and in batches large enough for a store to
    // take another path (PostgreSQL copies large batches without keys).
    for size in [2, 500] {
        let fresh = |i: usize| job(&format!("fresh-{size}-{i}"), "w");
        for repeated in ["taken", "twice"] {
            let mut batch: Vec<_> = (0..size - 1).map(fresh).collect();
            if repeated == "twice" {
                batch.insert(0, job("twice", "w"));
            }
            batch.push(job(repeated, "w"));
            let err = store.enqueue(T0, batch).await.unwrap_err();
            assert!(err.is_validation(), "{err}");
            assert!(err.to_string().contains(&format!("`{repeated}`")), "{err}");
            assert!(store.get(&fresh(0).id).await.unwrap().is_none());
            assert!(store.get("twice").await.unwrap().is_none());
        }
    }

    let batch: Vec<_> = (0..200).map(|i| job(&format!("b{i}"), "w")).collect();
    enqueue(&store, T0, batch).await;
    let other = db.open();
    let claimed = other
        .claim(T0, request("n", &[("w", 1000)], 1000))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 201);
}

async fn invalid_jobs_are_refused<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    for bad in [
        job("a", "w").max_attempts(0),
        job("b", ""),
        job("", "w"),
        job("c", "w").queue(""),
    ] {
        let err = store
            .enqueue(T0, vec![job("ok", "w"), bad])
            .await
            .unwrap_err();
        assert!(err.is_validation(), "{err}");
    }
    assert!(store.get("ok").await.unwrap().is_none());
}

async fn unique_key_is_held_only_by_live_jobs<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    let done = store
        .enqueue(
            T0,
            vec![
                job("u1", "w").unique_key("k"),
                job("u2", "w").unique_key("k"),
                job("other-worker", "v").unique_key("k"),
            ],
        )
        .await
        .unwrap();
    let got: Vec<_> = done.iter().map(|e| (e.id.as_str(), e.inserted)).collect();
    assert_eq!(got, [("u1", true), ("u1", false), ("other-worker", true)]);
    assert!(store.get("u2").await.unwrap().is_none());

    // Held across reopening the file, and while the holder runs.
    drop(store);
    let store = db.open();
    let running = claim_one(&store, T0, "w").await;
    assert_eq!(running.id, "u1");
    let again = store
        .enqueue(T0, vec![job("u3", "w").unique_key("k")])
        .await
        .unwrap();
    assert_eq!((again[0].id.as_str(), again[0].inserted), ("u1", false));

    // A finished job never blocks its key.
    let applied = store
        .finish(T0 + 1, vec![finish(&running, FinishOutcome::Completed)])
        .await
        .unwrap();
    assert_eq!(applied, [true]);
    let after = store
        .enqueue(T0 + 2, vec![job("u4", "w").unique_key("k")])
        .await
        .unwrap();
    assert_eq!((after[0].id.as_str(), after[0].inserted), ("u4", true));
}

async fn enqueue_claimed_stores_and_claims_in_one_write<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    let new = job("d1", "w")
        .payload(json!({ "n": 1 }))
        .max_attempts(3)
        .unique_key("k")
        .run_at_ms(T0 + 60_000);
    let claimed = match store
        .enqueue_claimed(T0, "node-a", 5_000, new)
        .await
        .unwrap()
    {
        EnqueueClaim::Claimed(claimed) => claimed,
        other => panic!("expected a claim, got {other:?}"),
    };
    assert_eq!((claimed.id.as_str(), claimed.attempt), ("d1", 1));
    assert_eq!((claimed.epoch, claimed.max_attempts), (1, 3));
    assert_eq!(claimed.payload, Some(json!({ "n": 1 })));
    // Running under the caller's lease, due or not; no other claimer gets it.
    let got = db.open().get("d1").await.unwrap().unwrap();
    assert_eq!(got.state, JobState::Running);
    assert_eq!(got.owner.as_deref(), Some("node-a"));
    assert_eq!(got.lease_until_ms, Some(T0 + 5_000));
    let other = db.open();
    let taken = other
        .claim(T0 + 120_000, request("node-b", &[("w", 9)], 9))
        .await
        .unwrap();
    assert!(taken.is_empty(), "{taken:?}");
    // Its outcome is fenced by the claim's epoch, as for a claimed job.
    let done = store
        .finish(T0, vec![finish(&claimed, FinishOutcome::Completed)])
        .await
        .unwrap();
    assert_eq!(done, [true]);

    // A key held by a live job: nothing stored, nothing claimed, the holder's id.
    enqueue(&store, T0, vec![job("holder", "w").unique_key("k2")]).await;
    let again = store
        .enqueue_claimed(T0, "node-a", 5_000, job("d2", "w").unique_key("k2"))
        .await
        .unwrap();
    assert_eq!(again, EnqueueClaim::Existing("holder".into()));
    assert!(store.get("d2").await.unwrap().is_none());
    assert_eq!(state(&store, "holder").await, JobState::Available);
    // Invalid jobs are refused as by `enqueue`.
    let err = store
        .enqueue_claimed(T0, "node-a", 5_000, job("d3", "w").max_attempts(0))
        .await
        .unwrap_err();
    assert!(err.is_validation(), "{err}");
    assert!(store.get("d3").await.unwrap().is_none());
}

async fn claim_order_is_priority_then_run_at_then_insertion<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    enqueue(
        &store,
        T0,
        vec![
            job("low", "w").priority(-1),
            job("mid-late", "w").run_at_ms(T0 - 10),
            job("mid-first", "w"),
            job("mid-early", "w").run_at_ms(T0 - 20),
            job("mid-second", "w"),
            job("high", "w").priority(5),
        ],
    )
    .await;
    let claimed = store
        .claim(T0, request("n", &[("w", 10)], 10))
        .await
        .unwrap();
    assert_eq!(
        ids(&claimed),
        [
            "high",
            "mid-early",
            "mid-late",
            "mid-first",
            "mid-second",
            "low"
        ]
    );
    let top = &claimed[0];
    assert_eq!((top.attempt, top.epoch, top.max_attempts), (1, 1, 1));
    let got = store.get("high").await.unwrap().unwrap();
    assert_eq!(got.state, JobState::Running);
    assert_eq!(got.owner.as_deref(), Some("n"));
    assert_eq!(got.lease_until_ms, Some(T0 + 30_000));

    // The order holds across workers, and `limit` keeps the best of all of them.
    enqueue(
        &store,
        T0,
        vec![
            job("x-old", "x").run_at_ms(T0 - 5),
            job("y-urgent", "y").priority(9),
            job("x-urgent", "x").priority(9).run_at_ms(T0 - 1),
            job("y-old", "y").run_at_ms(T0 - 7),
        ],
    )
    .await;
    let both = [("x", 5), ("y", 5)];
    let claimed = store.claim(T0, request("n", &both, 3)).await.unwrap();
    assert_eq!(ids(&claimed), ["x-urgent", "y-urgent", "y-old"]);
}

async fn claim_respects_worker_counts_limit_and_unknown_workers<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    let mut jobs = Vec::new();
    for worker in ["a", "b", "c"] {
        for i in 0..3 {
            jobs.push(job(&format!("{worker}{i}"), worker));
        }
    }
    enqueue(&store, T0, jobs).await;

    let workers = [("a", 2), ("b", 5), ("ghost", 3), ("c", 0)];
    let claimed = store.claim(T0, request("n", &workers, 4)).await.unwrap();
    assert_eq!(ids(&claimed), ["a0", "a1", "b0", "b1"]);

    let claimed = store.claim(T0, request("n", &workers, 10)).await.unwrap();
    assert_eq!(ids(&claimed), ["a2", "b2"]);
    assert!(store
        .claim(T0, request("n", &workers, 0))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(state(&store, "c0").await, JobState::Available);
}

async fn scheduled_jobs_wait_for_run_at<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    assert_eq!(store.next_due(T0).await.unwrap(), None);
    enqueue(&store, T0, vec![job("s", "w").run_at_ms(T0 + 1_000)]).await;
    assert_eq!(store.next_due(T0).await.unwrap(), Some(T0 + 1_000));

    let all = [("w", 10)];
    assert!(store
        .claim(T0 + 999, request("n", &all, 10))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.next_due(T0 + 1_500).await.unwrap(), Some(T0 + 1_500));
    let claimed = store
        .claim(T0 + 1_000, request("n", &all, 10))
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["s"]);
    assert_eq!(store.next_due(T0 + 1_000).await.unwrap(), None);
}

async fn two_claimers_never_both_win_a_job<F: StoreFactory>() {
    const JOBS: usize = 600;
    let db = std::sync::Arc::new(F::create());
    let store = db.open();
    let all: Vec<_> = (0..JOBS).map(|i| job(&format!("j{i}"), "w")).collect();
    enqueue(&store, T0, all).await;

    // Both open their handle first, then start claiming together.
    let start = std::sync::Arc::new(std::sync::Barrier::new(2));
    let claimers: Vec<_> = ["node-a", "node-b"]
        .into_iter()
        .map(|owner| {
            let (db, start) = (db.clone(), start.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let store = db.open();
                    start.wait();
                    let mut won = Vec::new();
                    loop {
                        let batch = store
                            .claim(T0, request(owner, &[("w", 7)], 7))
                            .await
                            .unwrap();
                        if batch.is_empty() {
                            break won;
                        }
                        won.extend(batch.into_iter().map(|j| (j.id, j.epoch)));
                    }
                })
            })
        })
        .collect();
    let won: Vec<Vec<(String, u64)>> = claimers.into_iter().map(|t| t.join().unwrap()).collect();

    let mut seen = HashSet::new();
    for (id, epoch) in won.iter().flatten() {
        assert_eq!(*epoch, 1, "{id} was claimed twice");
        assert!(seen.insert(id.clone()), "{id} was won by both claimers");
    }
    assert_eq!(seen.len(), JOBS, "every job is claimed exactly once");
    assert!(
        won.iter().all(|w| !w.is_empty()),
        "both claimers took part: {} and {}",
        won[0].len(),
        won[1].len()
    );
}

async fn stale_epochs_are_refused<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    enqueue(&store, T0, vec![job("f", "w").max_attempts(3)]).await;
    let first = claim_one(&store, T0, "w").await;
    // The lease runs out; another node rescues and claims it.
    assert_eq!(store.rescue(T0 + 30_000).await.unwrap(), ["f"]);
    let second = claim_one(&store, T0 + 30_001, "w").await;
    assert_eq!((first.epoch, second.epoch), (1, 2));

    let stale = (first.id.as_str(), first.epoch);
    assert!(!store.progress(stale.0, stale.1, json!(50)).await.unwrap());
    assert!(!store
        .save_checkpoint(stale.0, stale.1, json!("old"))
        .await
        .unwrap());
    let extended = store
        .extend(
            T0 + 30_002,
            "node-a",
            vec![(first.id.clone(), 1), (second.id.clone(), 2)],
            60_000,
        )
        .await
        .unwrap();
    assert_eq!(extended, [false, true]);
    let not_owner = store
        .extend(T0 + 30_002, "node-z", vec![(second.id.clone(), 2)], 60_000)
        .await
        .unwrap();
    assert_eq!(not_owner, [false]);
    assert_eq!(
        store.get("f").await.unwrap().unwrap().lease_until_ms,
        Some(T0 + 90_002)
    );

    let applied = store
        .finish(
            T0 + 30_003,
            vec![
                finish(&first, FinishOutcome::Completed),
                finish(
                    &second,
                    FinishOutcome::Discard {
                        error: "bad".into(),
                    },
                ),
            ],
        )
        .await
        .unwrap();
    assert_eq!(applied, [false, true]);
    let got = store.get("f").await.unwrap().unwrap();
    assert_eq!(got.state, JobState::Discarded);
    // A job that is no longer running refuses every write.
    assert!(!store.progress("f", 2, json!(1)).await.unwrap());
    let late = store
        .finish(T0 + 30_004, vec![finish(&second, FinishOutcome::Completed)])
        .await
        .unwrap();
    assert_eq!(late, [false]);
    assert!(
        !store
            .finish(
                T0,
                vec![Finish {
                    id: "ghost".into(),
                    epoch: 1,
                    outcome: FinishOutcome::Completed
                }]
            )
            .await
            .unwrap()[0]
    );
}

async fn expired_leases_are_rescued<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    enqueue(
        &store,
        T0,
        vec![job("r", "w").max_attempts(2), job("c", "v").max_attempts(5)],
    )
    .await;
    let first = claim_one(&store, T0, "w").await;
    claim_one(&store, T0, "v").await;
    assert_eq!(
        store.cancel(T0, "c").await.unwrap(),
        CancelOutcome::Running {
            owner: "node-a".into()
        }
    );

    assert!(store.rescue(T0 + 29_999).await.unwrap().is_empty());
    let rescued: BTreeSet<_> = store
        .rescue(T0 + 30_000)
        .await
        .unwrap()
        .into_iter()
        .collect();
    assert_eq!(rescued, BTreeSet::from(["c".to_string(), "r".to_string()]));

    let got = store.get("r").await.unwrap().unwrap();
    assert_eq!((got.state, got.attempt), (JobState::Available, 1));
    assert_eq!(got.owner, None);
    assert_eq!(got.errors.len(), 1);
    assert!(
        got.errors[0].error.contains("lease expired"),
        "{:?}",
        got.errors
    );
    assert_eq!(
        (got.errors[0].attempt, got.errors[0].at_ms),
        (1, T0 + 30_000)
    );
    let cancelled = store.get("c").await.unwrap().unwrap();
    assert_eq!(cancelled.state, JobState::Cancelled);

    // A lost attempt is run again even past the job's attempts (its process died, the
    // job did not fail), twice; the third loss beyond them discards it.
    let second = claim_one(&store, T0 + 30_000, "w").await;
    assert_eq!((second.attempt, second.epoch), (2, first.epoch + 1));
    let mut at = T0 + 30_000;
    for attempt in 2..=3 {
        at += 30_000;
        assert_eq!(store.rescue(at).await.unwrap(), ["r"]);
        let got = store.get("r").await.unwrap().unwrap();
        assert_eq!((got.state, got.attempt), (JobState::Available, attempt));
        assert_eq!(claim_one(&store, at, "w").await.attempt, attempt + 1);
    }
    at += 30_000;
    assert_eq!(store.rescue(at).await.unwrap(), ["r"]);
    let got = store.get("r").await.unwrap().unwrap();
    assert_eq!((got.state, got.attempt), (JobState::Discarded, 4));
    assert_eq!(got.finished_at_ms, Some(at));
    assert!(got.errors[3].error.contains("attempts were spent"));
    assert!(store.rescue(at + 30_000).await.unwrap().is_empty());
}

async fn retry_backoff_is_stored<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    enqueue(&store, T0, vec![job("b", "w").max_attempts(3)]).await;
    let first = claim_one(&store, T0, "w").await;
    let retry = FinishOutcome::Retry {
        at_ms: T0 + 5_000,
        error: "boom".into(),
    };
    assert_eq!(
        store
            .finish(T0 + 10, vec![finish(&first, retry)])
            .await
            .unwrap(),
        [true]
    );
    assert_eq!(state(&store, "b").await, JobState::Retrying);
    assert_eq!(store.next_due(T0 + 10).await.unwrap(), Some(T0 + 5_000));
    assert!(store
        .claim(T0 + 4_999, request("n", &[("w", 1)], 1))
        .await
        .unwrap()
        .is_empty());

    drop(store);
    let store = db.open();
    let second = claim_one(&store, T0 + 5_000, "w").await;
    assert_eq!(second.attempt, 2);
    let got = store.get("b").await.unwrap().unwrap();
    assert_eq!(got.errors.len(), 1);
    assert_eq!(
        (
            got.errors[0].attempt,
            got.errors[0].error.as_str(),
            got.errors[0].at_ms
        ),
        (1, "boom", T0 + 10)
    );
}

async fn requeue_does_not_count_the_attempt<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    enqueue(&store, T0, vec![job("q", "w")]).await;
    let first = claim_one(&store, T0, "w").await;
    let applied = store
        .finish(T0 + 1, vec![finish(&first, FinishOutcome::Requeue)])
        .await
        .unwrap();
    assert_eq!(applied, [true]);
    let got = store.get("q").await.unwrap().unwrap();
    assert_eq!(
        (got.state, got.attempt, got.owner),
        (JobState::Available, 0, None)
    );
    let again = claim_one(&store, T0 + 1, "w").await;
    assert_eq!((again.attempt, again.epoch), (1, 2));
}

/// A job claimed ahead of a free slot and cancelled before it started ends as a waiting
/// job's cancel would: cancelled, its attempt not counted, no error; under a stale epoch
/// it is refused, like every outcome.
async fn a_cancel_before_the_start_is_a_waiting_jobs_cancel<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    enqueue(&store, T0, vec![job("held", "w")]).await;
    let claimed = claim_one(&store, T0, "w").await;
    let mut stale = finish(&claimed, FinishOutcome::CancelledBeforeStart);
    stale.epoch += 1;
    assert_eq!(store.finish(T0 + 1, vec![stale]).await.unwrap(), [false]);
    let applied = store
        .finish(
            T0 + 2,
            vec![finish(&claimed, FinishOutcome::CancelledBeforeStart)],
        )
        .await
        .unwrap();
    assert_eq!(applied, [true]);
    let got = store.get("held").await.unwrap().unwrap();
    assert_eq!(
        (
            got.state,
            got.attempt,
            got.finished_at_ms,
            got.owner.as_deref()
        ),
        (JobState::Cancelled, 0, Some(T0 + 2), None)
    );
    assert!(got.errors.is_empty(), "{got:?}");
    assert!(store
        .claim(T0 + 60, request("node-a", &[("w", 9)], 9))
        .await
        .unwrap()
        .is_empty());
}

async fn cancel_waiting_and_running_jobs<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    enqueue(
        &store,
        T0,
        vec![job("wait", "w").run_at_ms(T0 + 10), job("run", "v")],
    )
    .await;
    assert_eq!(
        store.cancel(T0, "wait").await.unwrap(),
        CancelOutcome::Cancelled
    );
    let got = store.get("wait").await.unwrap().unwrap();
    assert_eq!(
        (got.state, got.finished_at_ms),
        (JobState::Cancelled, Some(T0))
    );
    assert!(store
        .claim(T0 + 10, request("n", &[("w", 1)], 1))
        .await
        .unwrap()
        .is_empty());

    let running = claim_one(&store, T0, "v").await;
    assert!(store.cancel_requests("node-a").await.unwrap().is_empty());
    let outcome = store.cancel(T0 + 1, "run").await.unwrap();
    assert_eq!(
        outcome,
        CancelOutcome::Running {
            owner: "node-a".into()
        }
    );
    let got = store.get("run").await.unwrap().unwrap();
    assert_eq!((got.state, got.cancel_requested), (JobState::Running, true));
    assert_eq!(
        store.cancel_requests("node-a").await.unwrap(),
        [("run".to_string(), running.epoch)]
    );
    assert!(store.cancel_requests("node-b").await.unwrap().is_empty());

    let stopped = FinishOutcome::Cancelled {
        error: "cancelled by an operator".into(),
    };
    assert_eq!(
        store
            .finish(T0 + 2, vec![finish(&running, stopped)])
            .await
            .unwrap(),
        [true]
    );
    assert_eq!(state(&store, "run").await, JobState::Cancelled);
    assert_eq!(
        store.cancel(T0 + 3, "run").await.unwrap(),
        CancelOutcome::AlreadyFinished
    );
    assert_eq!(
        store.cancel(T0 + 3, "ghost").await.unwrap(),
        CancelOutcome::NotFound
    );

    // A cancel asked while it runs is not forgotten when the attempt then fails and would
    // retry, or is handed back by a shutdown: the job ends cancelled.
    enqueue(
        &store,
        T0,
        vec![job("fails", "w").max_attempts(5), job("handed", "w")],
    )
    .await;
    for (id, outcome) in [
        (
            "fails",
            FinishOutcome::Retry {
                at_ms: T0 + 10,
                error: "flaky".into(),
            },
        ),
        ("handed", FinishOutcome::Requeue),
    ] {
        let claimed = claim_one(&store, T0 + 4, "w").await;
        assert_eq!(claimed.id, id);
        assert!(matches!(
            store.cancel(T0 + 5, id).await.unwrap(),
            CancelOutcome::Running { .. }
        ));
        let applied = store
            .finish(T0 + 6, vec![finish(&claimed, outcome)])
            .await
            .unwrap();
        assert_eq!(applied, [true]);
        let got = store.get(id).await.unwrap().unwrap();
        assert_eq!(
            (got.state, got.finished_at_ms, got.attempt),
            (JobState::Cancelled, Some(T0 + 6), 1),
            "{id}: its attempt counted, as the cancel stopped it"
        );
    }
    assert!(store
        .claim(T0 + 60, request("node-a", &[("w", 9)], 9))
        .await
        .unwrap()
        .is_empty());
}

async fn retry_delete_and_prune<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    enqueue(
        &store,
        T0,
        vec![job("d", "w"), job("ok", "v"), job("run", "x")],
    )
    .await;
    let d = claim_one(&store, T0, "w").await;
    let ok = claim_one(&store, T0, "v").await;
    claim_one(&store, T0, "x").await;
    let failed = FinishOutcome::Discard {
        error: "out of luck".into(),
    };
    store
        .finish(T0 + 10, vec![finish(&d, failed)])
        .await
        .unwrap();
    store
        .finish(T0 + 100, vec![finish(&ok, FinishOutcome::Completed)])
        .await
        .unwrap();

    // An operator gives the discarded job one more attempt.
    assert!(store.retry(T0 + 200, "d").await.unwrap());
    let got = store.get("d").await.unwrap().unwrap();
    assert_eq!(
        (got.state, got.run_at_ms, got.max_attempts),
        (JobState::Available, T0 + 200, 2)
    );
    assert_eq!(got.finished_at_ms, None);
    assert!(
        !store.retry(T0 + 200, "ok").await.unwrap(),
        "completed jobs are not retried"
    );
    assert!(!store.retry(T0 + 200, "ghost").await.unwrap());
    let again = claim_one(&store, T0 + 200, "w").await;
    assert_eq!(again.attempt, 2);
    store
        .finish(
            T0 + 300,
            vec![finish(
                &again,
                FinishOutcome::Discard {
                    error: "still".into(),
                },
            )],
        )
        .await
        .unwrap();

    assert!(
        !store.delete("run").await.unwrap(),
        "running jobs are not deleted"
    );
    enqueue(&store, T0, vec![job("gone", "w")]).await;
    assert!(store.delete("gone").await.unwrap());
    assert!(store.get("gone").await.unwrap().is_none());
    assert!(!store.delete("gone").await.unwrap());

    // Finished at T0+100 ("ok") and T0+300 ("d"): older than 1000ms at T0+1200 is "ok".
    assert_eq!(store.prune(T0 + 1_200, 1_000).await.unwrap(), 1);
    assert!(store.get("ok").await.unwrap().is_none());
    assert!(store.get("d").await.unwrap().is_some());
    assert!(store.get("run").await.unwrap().is_some());
    // At or before the cutoff: not at T0+1299, at T0+1300.
    assert_eq!(store.prune(T0 + 1_299, 1_000).await.unwrap(), 0);
    assert!(store.get("d").await.unwrap().is_some());
    assert_eq!(store.prune(T0 + 1_300, 1_000).await.unwrap(), 1);
    assert!(store.get("d").await.unwrap().is_none());
}

async fn cron_ticks_happen_once<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    assert_eq!(store.last_cron_tick("report").await.unwrap(), None);
    let tick = T0 - T0 % 60_000;
    assert!(store
        .cron_tick(T0, "report", tick, job("t1", "report"))
        .await
        .unwrap());
    assert!(!store
        .cron_tick(T0, "report", tick, job("t1-again", "report"))
        .await
        .unwrap());
    assert!(store.get("t1-again").await.unwrap().is_none());
    assert_eq!(store.last_cron_tick("report").await.unwrap(), Some(tick));
    assert!(store
        .cron_tick(T0, "report", tick + 60_000, job("t2", "report"))
        .await
        .unwrap());
    assert_eq!(
        store.last_cron_tick("report").await.unwrap(),
        Some(tick + 60_000)
    );
    assert_eq!(store.last_cron_tick("other").await.unwrap(), None);
    let claimed = store
        .claim(T0, request("n", &[("report", 10)], 10))
        .await
        .unwrap();
    assert_eq!(ids(&claimed), ["t1", "t2"]);

    // A tick whose job cannot be stored is not recorded either.
    let err = store
        .cron_tick(T0, "report", tick + 120_000, job("t1", "report"))
        .await
        .unwrap_err();
    assert!(err.is_validation(), "{err}");
    assert_eq!(
        store.last_cron_tick("report").await.unwrap(),
        Some(tick + 60_000)
    );

    // Pruning forgets old ticks but each worker's latest, which the next is counted from.
    store.prune(T0, 0).await.unwrap();
    assert_eq!(
        store.last_cron_tick("report").await.unwrap(),
        Some(tick + 60_000)
    );
    assert!(!store
        .cron_tick(T0, "report", tick + 60_000, job("t2-again", "report"))
        .await
        .unwrap());
}

async fn cron_ticks_happen_once_across_racing_handles<F: StoreFactory>() {
    const TICKS: i64 = 60;
    let db = std::sync::Arc::new(F::create());
    let racers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|node| {
            let db = db.clone();
            std::thread::spawn(move || {
                // `enable_all`: a store may do network I/O (PostgreSQL) on the runtime.
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let store = db.open();
                    let mut won = 0;
                    for tick in 0..TICKS {
                        let job = job(&format!("tick-{tick}-{node}"), "cron");
                        if store.cron_tick(T0, "cron", T0 + tick, job).await.unwrap() {
                            won += 1;
                        }
                    }
                    won
                })
            })
        })
        .collect();
    let won: i64 = racers.into_iter().map(|r| r.join().unwrap()).sum();
    assert_eq!(won, TICKS);
    let store = db.open();
    let claimed = store
        .claim(T0, request("n", &[("cron", 1000)], 1000))
        .await
        .unwrap();
    assert_eq!(claimed.len() as i64, TICKS, "one job per tick");
}

async fn completed_idempotency_keys_replay<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    enqueue(&store, T0, vec![job("i1", "w").idempotency_key("pay:7")]).await;
    let first = claim_one(&store, T0, "w").await;
    // While the first runs, its key has no outcome yet.
    enqueue(&store, T0, vec![job("i2", "w").idempotency_key("pay:7")]).await;
    store
        .finish(T0 + 1, vec![finish(&first, FinishOutcome::Completed)])
        .await
        .unwrap();

    let replay = store
        .enqueue(T0 + 2, vec![job("i3", "w").idempotency_key("pay:7")])
        .await
        .unwrap();
    assert_eq!((replay[0].id.as_str(), replay[0].inserted), ("i1", false));
    assert!(store.get("i3").await.unwrap().is_none());
    let other_worker = store
        .enqueue(T0 + 2, vec![job("i4", "v").idempotency_key("pay:7")])
        .await
        .unwrap();
    assert!(other_worker[0].inserted);

    // A failed job leaves no outcome to replay.
    let second = claim_one(&store, T0 + 2, "w").await;
    assert_eq!(second.id, "i2");
    store
        .finish(
            T0 + 3,
            vec![finish(
                &second,
                FinishOutcome::Discard { error: "no".into() },
            )],
        )
        .await
        .unwrap();
    enqueue(
        &store,
        T0 + 4,
        vec![job("i5", "w").idempotency_key("fail:1")],
    )
    .await;
}

async fn checkpoints_resume_retried_jobs<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    enqueue(&store, T0, vec![job("c", "w").max_attempts(2)]).await;
    let first = claim_one(&store, T0, "w").await;
    assert_eq!(first.checkpoint, None);
    assert!(store
        .save_checkpoint("c", first.epoch, json!({ "page": 3 }))
        .await
        .unwrap());
    assert!(store
        .progress("c", first.epoch, json!({ "done": 30 }))
        .await
        .unwrap());
    assert_eq!(
        store.load_checkpoint("c").await.unwrap(),
        Some(json!({ "page": 3 }))
    );
    assert_eq!(store.load_checkpoint("ghost").await.unwrap(), None);
    assert_eq!(
        store.get("c").await.unwrap().unwrap().progress,
        Some(json!({ "done": 30 }))
    );

    let retry = FinishOutcome::Retry {
        at_ms: T0,
        error: "flaky".into(),
    };
    store.finish(T0, vec![finish(&first, retry)]).await.unwrap();
    let second = claim_one(&store, T0, "w").await;
    assert_eq!(second.checkpoint, Some(json!({ "page": 3 })));
}

async fn checkpoint_and_idempotency_traits<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    CheckpointStore::save(&store, "w", "run-1", json!([1, 2]))
        .await
        .unwrap();
    CheckpointStore::save(&store, "w", "run-1", json!([1, 2, 3]))
        .await
        .unwrap();
    assert_eq!(
        CheckpointStore::load(&store, "w", "run-1").await.unwrap(),
        Some(json!([1, 2, 3]))
    );
    assert_eq!(
        CheckpointStore::load(&store, "v", "run-1").await.unwrap(),
        None
    );
    CheckpointStore::remove(&store, "w", "run-1").await.unwrap();
    assert_eq!(
        CheckpointStore::load(&store, "w", "run-1").await.unwrap(),
        None
    );

    assert_eq!(store.lookup("w", "k"), None);
    store.record("w", "k", "run-9", Duration::from_secs(3600));
    assert_eq!(store.lookup("w", "k").as_deref(), Some("run-9"));
    assert_eq!(
        db.open().lookup("w", "k").as_deref(),
        Some("run-9"),
        "durable across handles"
    );
    assert_eq!(store.lookup("v", "k"), None);
    store.record("w", "gone", "run-0", Duration::ZERO);
    assert_eq!(store.lookup("w", "gone"), None, "expired at once");
}

async fn list_filters_and_pages<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    let mut jobs = Vec::new();
    for i in 0..7 {
        let worker = if i % 2 == 0 { "even" } else { "odd" };
        jobs.push(job(&format!("l{i}"), worker).payload(json!({ "n": i, "tag": "100%_x" })));
    }
    enqueue(&store, T0, jobs).await;
    claim_one(&store, T0, "odd").await; // l1 runs

    let page = |filter: JobFilter| {
        let store = store.clone();
        async move { store.list(filter).await.unwrap() }
    };
    let names = |jobs: &[rustf_workers::queue::JobRecord]| {
        jobs.iter().map(|j| j.id.clone()).collect::<Vec<_>>()
    };

    let all = page(JobFilter::default()).await;
    assert_eq!(names(&all.jobs), ["l6", "l5", "l4", "l3", "l2", "l1", "l0"]);
    assert_eq!(all.next, None);

    let first = page(JobFilter {
        limit: 3,
        ..Default::default()
    })
    .await;
    assert_eq!(names(&first.jobs), ["l6", "l5", "l4"]);
    let second = page(JobFilter {
        limit: 3,
        before_id: first.next.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(names(&second.jobs), ["l3", "l2", "l1"]);
    let third = page(JobFilter {
        limit: 3,
        before_id: second.next.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        (names(&third.jobs), third.next),
        (vec!["l0".to_string()], None)
    );

    let odd = page(JobFilter {
        worker: Some("odd".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(names(&odd.jobs), ["l5", "l3", "l1"]);
    let running = page(JobFilter {
        states: vec![JobState::Running],
        ..Default::default()
    })
    .await;
    assert_eq!(names(&running.jobs), ["l1"]);
    let waiting = page(JobFilter {
        states: vec![JobState::Available, JobState::Completed],
        worker: Some("odd".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(names(&waiting.jobs), ["l5", "l3"]);
    let found = page(JobFilter {
        search: Some("\"n\":4".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(names(&found.jobs), ["l4"]);
    // Pattern characters are matched as text.
    let literal = page(JobFilter {
        search: Some("100%_x".into()),
        ..Default::default()
    })
    .await;
    assert_eq!(literal.jobs.len(), 7);
    let none = page(JobFilter {
        search: Some("1%x".into()),
        ..Default::default()
    })
    .await;
    assert!(none.jobs.is_empty());
}

async fn counts_per_worker_and_state<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    assert!(store.counts().await.unwrap().is_empty());
    enqueue(
        &store,
        T0,
        vec![
            job("a1", "a"),
            job("a2", "a"),
            job("a3", "a").run_at_ms(T0 + 5),
            job("b1", "b"),
        ],
    )
    .await;
    claim_one(&store, T0, "b").await;
    let counts = store.counts().await.unwrap();
    let expected = [
        ("a".to_string(), JobState::Scheduled, 1),
        ("a".to_string(), JobState::Available, 2),
        ("b".to_string(), JobState::Running, 1),
    ];
    assert_eq!(counts, expected);
}

async fn nodes_register_beat_stop_and_age<F: StoreFactory>() {
    let db = F::create();
    let store = db.open();
    let node = |id: &str| NewNode {
        id: id.into(),
        host: "box-1".into(),
        pid: 42,
        concurrency: 16,
        memory_pool: 1 << 20,
        workers: vec!["a".into(), "b".into()],
        heartbeat_ms: 1_000,
    };
    let beat = |id: &str, running: u32, cooling: Option<i64>| NodeBeat {
        id: id.into(),
        running,
        memory_used: 512,
        cooling_until_ms: cooling,
    };
    store.register_node(T0, node("n1")).await.unwrap();
    store.register_node(T0 + 10, node("n2")).await.unwrap();
    let err = store.register_node(T0 + 20, node("n1")).await.unwrap_err();
    assert!(err.is_validation(), "an id is never reused: {err}");

    let listed = db.open().nodes(T0 + 10, 30_000).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|n| n.node.id.as_str()).collect();
    assert_eq!(ids, ["n2", "n1"], "newest first");
    assert_eq!(listed[1].node, node("n1"));
    assert_eq!((listed[1].started_at_ms, listed[1].last_beat_ms), (T0, T0));
    assert_eq!(listed[1].status, NodeStatus::Idle);

    assert!(store
        .node_beat(T0 + 1_000, beat("n1", 3, None))
        .await
        .unwrap());
    assert!(store
        .node_beat(T0 + 1_000, beat("n2", 0, Some(T0 + 60_000)))
        .await
        .unwrap());
    let status = |nodes: &[rustf_workers::queue::NodeRecord], id: &str| {
        nodes.iter().find(|n| n.node.id == id).unwrap().status
    };
    let now = store.nodes(T0 + 1_500, 30_000).await.unwrap();
    assert_eq!(status(&now, "n1"), NodeStatus::Busy);
    assert_eq!(status(&now, "n2"), NodeStatus::Unhealthy, "cooling down");
    let n1 = now.iter().find(|n| n.node.id == "n1").unwrap();
    assert_eq!((n1.running, n1.memory_used), (3, 512));
    // Two beats late: unhealthy; a lease without one: offline.
    let later = store.nodes(T0 + 3_500, 30_000).await.unwrap();
    assert_eq!(status(&later, "n1"), NodeStatus::Unhealthy);
    let gone = store.nodes(T0 + 31_001, 30_000).await.unwrap();
    assert_eq!(status(&gone, "n1"), NodeStatus::Offline);

    store.stop_node(T0 + 2_000, "n2").await.unwrap();
    let stopped = store.nodes(T0 + 2_000, 30_000).await.unwrap();
    let n2 = stopped.iter().find(|n| n.node.id == "n2").unwrap();
    assert_eq!(
        (n2.status, n2.stopped_at_ms),
        (NodeStatus::Offline, Some(T0 + 2_000))
    );
    assert_eq!(n2.running, 0);
    assert!(
        !store
            .node_beat(T0 + 2_500, beat("n2", 1, None))
            .await
            .unwrap(),
        "a stopped node beats no more"
    );
    assert!(!store.node_beat(T0, beat("ghost", 1, None)).await.unwrap());

    // Pruning forgets the nodes silent since its horizon.
    store.prune(T0 + 2_000, 1_000).await.unwrap();
    let kept: Vec<String> = store
        .nodes(T0 + 2_000, 30_000)
        .await
        .unwrap()
        .into_iter()
        .map(|n| n.node.id)
        .collect();
    assert_eq!(
        kept,
        ["n2"],
        "n1 last beat at T0+1000, n2 stopped at T0+2000"
    );
}

// ---- SQLite only: the file itself -------------------------------------------------------

#[path = "queue_store/sqlite_file.rs"]
mod sqlite_file;

// ---- PostgreSQL only: the server --------------------------------------------------------

#[path = "queue_store/postgres_server.rs"]
mod postgres_server;
