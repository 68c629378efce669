//! PostgreSQL only: the server itself (unreachable servers, bad URLs, racing migrations,
//! schemas, a restart).

use std::sync::{Arc, Barrier};

use rustf_workers_tests::postgres::{on_own_runtime, Cluster};

use super::*;

/// An address nothing listens on: a port that was free a moment ago.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// The migrations recorded in the database at `url`: how many rows, and the latest
/// version. Each applied once: as many rows as the latest version.
fn recorded_migrations(url: &str, schema: &str) -> (i64, i32) {
    let (url, sql) = (
        url.to_owned(),
        format!("SELECT count(*), max(version) FROM {schema}.rustf_workers_migrations"),
    );
    on_own_runtime(async move {
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let row = client.query_one(&sql, &[]).await.unwrap();
        (row.get(0), row.get(1))
    })
}

#[track_caller]
fn assert_migrated_once(url: &str, schema: &str) {
    let (rows, latest) = recorded_migrations(url, schema);
    assert!(latest >= 2, "0001 and 0002 applied: {latest}");
    assert_eq!(rows, i64::from(latest), "each migration recorded once");
}

#[tokio::test]
async fn an_unreachable_server_gives_a_store_error_without_the_password() {
    let port = closed_port();
    let url = format!("postgres://app:s3cret@127.0.0.1:{port}/jobs");
    let err = PostgresOptions::new(&url)
        .connect_timeout(Duration::from_secs(2))
        .connect()
        .await
        .unwrap_err();
    assert!(err.is_store(), "{err}");
    let text = err.to_string();
    let target = format!("postgres://app@127.0.0.1:{port}/jobs");
    assert!(text.contains(&format!("`{target}`")), "{text}");
    assert!(text.starts_with("connecting to"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.to_lowercase().contains("connect"), "says why: {text}");

    // Lazily: the first operation says the same.
    let lazy = PostgresQueue::options(&url).connect_lazy().unwrap();
    assert_eq!(lazy.target(), target);
    let err = lazy.get("j").await.unwrap_err();
    assert!(
        err.is_store() && !err.to_string().contains("s3cret"),
        "{err}"
    );
}

#[tokio::test]
async fn a_bad_url_or_schema_gives_a_store_error_without_the_password() {
    let err = PostgresQueue::connect("postgres://app:s3cret@db:notaport/jobs")
        .await
        .unwrap_err();
    assert!(err.is_store(), "{err}");
    let text = err.to_string();
    assert!(!text.contains("s3cret"), "{text}");
    assert!(text.contains("`postgres://app@db:notaport/jobs`"), "{text}");

    let err = PostgresOptions::new("postgres://app:s3cret@db/jobs")
        .schema("Jobs; DROP TABLE x")
        .connect_lazy()
        .unwrap_err();
    assert!(err.is_store(), "{err}");
    assert!(err.to_string().contains("schema name"), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[tokio::test]
async fn a_missing_database_gives_a_store_error_naming_it() {
    let db = TestDatabase::create();
    let url = db.url().replace(db.name(), "t_no_such_database");
    let err = PostgresQueue::connect(&url).await.unwrap_err();
    assert!(err.is_store(), "{err}");
    assert!(err.to_string().contains("t_no_such_database"), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");
}

#[test]
fn racing_connects_migrate_once() {
    let db = Arc::new(TestDatabase::create());
    let start = Arc::new(Barrier::new(4));
    let racers: Vec<_> = (0..4)
        .map(|_| {
            let (db, start) = (db.clone(), start.clone());
            std::thread::spawn(move || {
                on_own_runtime(async move {
                    start.wait();
                    let queue = PostgresQueue::connect(db.url()).await.unwrap();
                    queue.counts().await.unwrap()
                })
            })
        })
        .collect();
    for racer in racers {
        assert!(racer.join().unwrap().is_empty());
    }
    assert_migrated_once(db.url(), "public");
}

#[tokio::test]
async fn schemas_keep_queues_apart() {
    let db = TestDatabase::create();
    let a = PostgresOptions::new(db.url())
        .schema("queue_a")
        .connect()
        .await
        .unwrap();
    let b = PostgresOptions::new(db.url())
        .schema("queue_b")
        .connect()
        .await
        .unwrap();
    enqueue(&a, T0, vec![job("only-in-a", "w")]).await;
    assert!(a.get("only-in-a").await.unwrap().is_some());
    assert!(b.get("only-in-a").await.unwrap().is_none());
    enqueue(&b, T0, vec![job("only-in-a", "w")]).await;
    // The idempotency thread connects into the schema too.
    a.record("w", "k", "run-a", Duration::from_secs(60));
    assert_eq!(a.lookup("w", "k").as_deref(), Some("run-a"));
    assert_eq!(b.lookup("w", "k"), None);
    assert_migrated_once(db.url(), "queue_a");
    assert_migrated_once(db.url(), "queue_b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_server_is_reconnected_to() {
    // A cluster of its own: restarting the shared one would cut the other tests off.
    let cluster = Arc::new(Cluster::start().unwrap_or_else(|why| panic!("{why}")));
    let store = PostgresQueue::connect(&cluster.url("postgres"))
        .await
        .unwrap();
    enqueue(&store, T0, vec![job("before", "w")]).await;
    assert_eq!(claim_one(&store, T0, "w").await.id, "before");
    store.record("w", "k", "run-1", Duration::from_secs(60));

    // Every pooled connection is cut while the runtime runs, as in an application.
    let restarting = cluster.clone();
    tokio::task::spawn_blocking(move || restarting.restart())
        .await
        .unwrap();

    // The pool drops the broken connections and opens new ones.
    enqueue(&store, T0, vec![job("after", "w")]).await;
    let got = store.get("before").await.unwrap().unwrap();
    assert_eq!(got.state, JobState::Running, "nothing committed was lost");
    assert_eq!(claim_one(&store, T0, "w").await.id, "after");
    // So does the idempotency thread's connection.
    assert_eq!(store.lookup("w", "k").as_deref(), Some("run-1"));
}

#[tokio::test]
async fn the_engine_runs_jobs_stored_in_postgres() {
    use rustf_workers::queue::QueueOptions;
    use rustf_workers::WorkerRegistry;

    let db = TestDatabase::create();
    let store = PostgresQueue::connect(db.url()).await.unwrap();
    let workers = WorkerRegistry::new();
    workers
        .register("welcome", |_ctx| async { Ok(()) })
        .await
        .unwrap();
    workers
        .use_queue_with(store.clone(), QueueOptions::new().runs_jobs(false))
        .unwrap();
    let id = workers
        .enqueue("welcome", Some(json!({ "user": 7 })))
        .await
        .unwrap();
    assert_eq!(workers.enqueued("welcome").await.unwrap().len(), 1);
    assert_eq!(workers.drain_jobs().await.unwrap(), 1);
    assert!(workers.enqueued("welcome").await.unwrap().is_empty());
    let stored = store.get(&id.to_string()).await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Completed);
}

#[test]
fn racing_enqueues_of_the_same_unique_keys_store_each_once() {
    const KEYS: usize = 40;
    let db = Arc::new(TestDatabase::create());
    let start = Arc::new(Barrier::new(2));
    // Opposite orders: the two transactions wait for each other's keys, and PostgreSQL
    // breaks the deadlock by rolling one back, which the store runs again.
    let racers: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|node| {
            let (db, start) = (db.clone(), start.clone());
            std::thread::spawn(move || {
                on_own_runtime(async move {
                    let store = PostgresQueue::connect(db.url()).await.unwrap();
                    let mut keys: Vec<usize> = (0..KEYS).collect();
                    if node == "b" {
                        keys.reverse();
                    }
                    let jobs = keys
                        .iter()
                        .map(|k| job(&format!("{node}-{k}"), "w").unique_key(format!("k{k}")))
                        .collect();
                    start.wait();
                    let done = store.enqueue(T0, jobs).await.unwrap();
                    keys.into_iter().zip(done).collect::<Vec<_>>()
                })
            })
        })
        .collect();
    let mut holders = std::collections::BTreeMap::new();
    let mut inserted = 0;
    for racer in racers {
        for (key, enqueued) in racer.join().unwrap() {
            inserted += usize::from(enqueued.inserted);
            let holder = holders.entry(key).or_insert_with(|| enqueued.id.clone());
            assert_eq!(*holder, enqueued.id, "key k{key} has one holder");
        }
    }
    assert_eq!(inserted, KEYS, "each key stored once");
    let count = on_own_runtime({
        let url = db.url().to_owned();
        async move {
            let store = PostgresQueue::connect(&url).await.unwrap();
            store.counts().await.unwrap()
        }
    });
    assert_eq!(count, [("w".to_string(), JobState::Available, KEYS as u64)]);
}

#[tokio::test]
async fn the_clock_is_the_servers() {
    let db = TestDatabase::create();
    let store = PostgresQueue::connect(db.url()).await.unwrap();
    let wall = |()| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64
    };
    let before = wall(());
    let server = store.clock_ms().await.unwrap().expect("a clock of its own");
    let after = wall(());
    // The server runs on this machine, so its clock reads the same, give or take.
    assert!(
        (before - 1_000..=after + 1_000).contains(&server),
        "{before} <= {server} <= {after}"
    );
    let later = store.clock_ms().await.unwrap().unwrap();
    assert!(
        later >= server,
        "clock_timestamp(), not the transaction's start"
    );
}

/// Three nodes on one database, each with its own pool, compete for 3,000 jobs: every job
/// completes exactly once, none is lost, and all three do work (`FOR UPDATE SKIP LOCKED`
/// claims, batched outcomes fenced by epoch). In one process; the three worker
/// processes and their kills come with the multi-node tests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_compete_for_jobs_and_each_runs_once() {
    use std::collections::HashMap;
    use std::sync::Mutex;
    use std::time::Duration;

    use rustf_workers::queue::QueueOptions;
    use rustf_workers::{JobOptions, WorkerRegistry};

    const JOBS: usize = 3_000;
    let db = TestDatabase::create();
    let runs: Arc<Mutex<HashMap<String, Vec<usize>>>> = Arc::default();
    let mut nodes = Vec::new();
    for node in 0..3 {
        let workers = WorkerRegistry::new();
        let runs = Arc::clone(&runs);
        workers
            .register("count", move |ctx| {
                let runs = Arc::clone(&runs);
                async move {
                    let mut runs = runs.lock().unwrap();
                    runs.entry(ctx.run_id().to_owned()).or_default().push(node);
                    Ok(())
                }
            })
            .await
            .unwrap();
        let store = PostgresQueue::connect(db.url()).await.unwrap();
        let options = QueueOptions::new().poll_interval(Duration::from_millis(20));
        workers.use_queue_with(store, options).unwrap();
        nodes.push(workers);
    }
    let batch = (0..JOBS).map(|_| ("count", None, JobOptions::new()));
    let ids = nodes[0].enqueue_many(batch).await.unwrap();
    for id in &ids {
        let job = nodes[1].await_job(id).await.unwrap();
        assert_eq!((job.state, job.attempt), (JobState::Completed, 1), "{id}");
    }
    let runs = runs.lock().unwrap().clone();
    assert_eq!(runs.len(), JOBS, "every job ran");
    let twice: Vec<_> = runs.iter().filter(|(_, by)| by.len() != 1).collect();
    assert!(twice.is_empty(), "ran more than once: {twice:?}");
    let mut per_node = [0usize; 3];
    for by in runs.values() {
        per_node[by[0]] += 1;
    }
    assert!(
        per_node.iter().all(|&n| n > 0),
        "every node did work: {per_node:?}"
    );
    for workers in &nodes {
        workers.shutdown().await.unwrap();
    }
    let listed = nodes[2].nodes().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(listed
        .iter()
        .all(|node| node.status == rustf_workers::queue::NodeStatus::Offline));
}
