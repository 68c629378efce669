//! The connection behind the synchronous [`IdempotencyStore`](crate::IdempotencyStore).
//!
//! The trait's methods return their answer, so they must wait for the database on the
//! calling thread. They cannot borrow a pooled connection for that: its I/O is driven by
//! a task on the caller's runtime, and on a `current_thread` runtime (every
//! `#[tokio::test]`) the thread that would drive it is the one blocked waiting, a
//! deadlock; `block_in_place` panics there. So the queue keeps one more connection on a
//! thread of its own, with a small runtime that drives it: a call sends its request
//! there and blocks on the answer, which needs nothing from the caller's runtime.
//!
//! The thread starts on first use (most queues never need it) and ends when the queue is
//! dropped.

use std::sync::mpsc;
use std::sync::{Arc, OnceLock};

use tokio_postgres::{Client, Config, NoTls};

use super::sql::{LOOKUP_RUN_IDEMPOTENCY, RECORD_RUN_IDEMPOTENCY};
use super::{migrate, store_error, Fail};
use crate::Result;

/// A request to the thread, with where to send its answer.
enum Request {
    Lookup {
        worker: String,
        key: String,
        now: i64,
        answer: mpsc::SyncSender<Result<Option<String>>>,
    },
    Record {
        worker: String,
        key: String,
        run_id: String,
        expires: i64,
        answer: mpsc::SyncSender<Result<()>>,
    },
}

pub(super) struct Blocking {
    shared: Arc<Shared>,
    requests: OnceLock<std::result::Result<mpsc::Sender<Request>, String>>,
}

/// What the thread needs to connect.
struct Shared {
    config: Config,
    target: Arc<str>,
    schema: Option<String>,
    migrated: Arc<tokio::sync::OnceCell<()>>,
}

impl Blocking {
    pub(super) fn new(
        config: Config,
        target: Arc<str>,
        schema: Option<String>,
        migrated: Arc<tokio::sync::OnceCell<()>>,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                config,
                target,
                schema,
                migrated,
            }),
            requests: OnceLock::new(),
        }
    }

    /// The run of `worker` recorded under `key`, if its record outlives `now`.
    pub(super) fn lookup(&self, worker: &str, key: &str, now: i64) -> Result<Option<String>> {
        let action = "looking up an idempotency key in";
        self.call(action, |answer| Request::Lookup {
            worker: worker.to_owned(),
            key: key.to_owned(),
            now,
            answer,
        })
    }

    /// Records that `run_id` of `worker` completed under `key`, until `expires`.
    pub(super) fn record(&self, worker: &str, key: &str, run_id: &str, expires: i64) -> Result<()> {
        let action = "recording an idempotency key in";
        self.call(action, |answer| Request::Record {
            worker: worker.to_owned(),
            key: key.to_owned(),
            run_id: run_id.to_owned(),
            expires,
            answer,
        })
    }

    fn call<T>(
        &self,
        action: &str,
        request: impl FnOnce(mpsc::SyncSender<Result<T>>) -> Request,
    ) -> Result<T> {
        let stopped = || {
            store_error(
                action,
                &self.shared.target,
                "the idempotency thread has stopped".into(),
            )
        };
        let requests = self.requests.get_or_init(|| self.spawn());
        let requests = requests
            .as_ref()
            .map_err(|why| store_error(action, &self.shared.target, why.clone()))?;
        let (answer, reply) = mpsc::sync_channel(1);
        requests.send(request(answer)).map_err(|_| stopped())?;
        reply.recv().unwrap_or_else(|_| Err(stopped()))
    }

    fn spawn(&self) -> std::result::Result<mpsc::Sender<Request>, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|err| format!("cannot start the idempotency thread's runtime: {err}"))?;
        let (requests, inbox) = mpsc::channel();
        let shared = self.shared.clone();
        std::thread::Builder::new()
            .name("rustf-workers-postgres-idempotency".into())
            .spawn(move || serve(&runtime, &shared, &inbox))
            .map_err(|err| format!("cannot start the idempotency thread: {err}"))?;
        Ok(requests)
    }
}

/// Answers requests until the queue is dropped (the channel closes).
fn serve(runtime: &tokio::runtime::Runtime, shared: &Shared, inbox: &mpsc::Receiver<Request>) {
    let mut client: Option<Client> = None;
    while let Ok(request) = inbox.recv() {
        match request {
            Request::Lookup {
                worker,
                key,
                now,
                answer,
            } => {
                let query = Query::Lookup(&worker, &key, now);
                let result = runtime.block_on(with_retry(shared, &mut client, &query));
                let action = "looking up an idempotency key in";
                let _ = answer.send(result.map_err(|f| f.into_error(action, &shared.target)));
            }
            Request::Record {
                worker,
                key,
                run_id,
                expires,
                answer,
            } => {
                let query = Query::Record(&worker, &key, &run_id, expires);
                let result = runtime.block_on(with_retry(shared, &mut client, &query));
                let action = "recording an idempotency key in";
                let _ = answer.send(
                    result
                        .map(|_| ())
                        .map_err(|f| f.into_error(action, &shared.target)),
                );
            }
        }
    }
}

/// One statement of the thread: a lookup answers the run id, a record nothing.
enum Query<'a> {
    Lookup(&'a str, &'a str, i64),
    Record(&'a str, &'a str, &'a str, i64),
}

async fn execute(client: &Client, query: &Query<'_>) -> std::result::Result<Option<String>, Fail> {
    match *query {
        Query::Lookup(worker, key, now) => {
            let row = client
                .query_opt(LOOKUP_RUN_IDEMPOTENCY, &[&worker, &key, &now])
                .await?;
            Ok(row.map(|row| row.try_get(0)).transpose()?)
        }
        Query::Record(worker, key, run_id, expires) => {
            client
                .execute(RECORD_RUN_IDEMPOTENCY, &[&worker, &key, &run_id, &expires])
                .await?;
            Ok(None)
        }
    }
}

/// Runs `query` on the thread's connection, opening it first if needed; a connection
/// that fails is dropped and the query tried once more on a new one (both are safe to
/// repeat: a read, and an upsert).
async fn with_retry(
    shared: &Shared,
    client: &mut Option<Client>,
    query: &Query<'_>,
) -> std::result::Result<Option<String>, Fail> {
    let mut tries = 0;
    loop {
        tries += 1;
        let result = match client.as_ref().filter(|c| !c.is_closed()) {
            Some(c) => execute(c, query).await,
            None => match connect(shared).await {
                Ok(new) => execute(client.insert(new), query).await,
                Err(fail) => Err(fail),
            },
        };
        match result {
            Err(_) if tries < 2 => *client = None,
            Err(fail) => {
                *client = None;
                return Err(fail);
            }
            Ok(answer) => return Ok(answer),
        }
    }
}

/// Opens the thread's connection, driven by a task on the thread's runtime, and migrates
/// the schema unless the queue has.
async fn connect(shared: &Shared) -> std::result::Result<Client, Fail> {
    let (mut client, connection) = shared.config.connect(NoTls).await?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; the next request
        // then finds the client closed and reconnects.
        let _ = connection.await;
    });
    if !shared.migrated.initialized() {
        migrate::migrate(&mut client, shared.schema.as_deref()).await?;
        let _ = shared.migrated.set(());
    }
    Ok(client)
}
