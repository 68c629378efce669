//! The writer thread: one connection, group commit.
//!
//! Every write of a [`super::SqliteQueue`] becomes a command sent to one `std::thread`
//! that owns the write connection. The thread takes every command waiting, runs them all
//! in one `BEGIN IMMEDIATE` transaction (each inside its own savepoint, so one failing
//! command leaves the others whole), commits once, and only then answers each caller: a
//! busy queue pays one fsync per batch, not one per job, and nobody hears "done" before
//! the commit is durable.
//!
//! `BEGIN IMMEDIATE` takes SQLite's write lock at once, so everything a command reads in
//! its transaction stays true until the commit, across processes sharing the file.

use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, ErrorCode};

use super::{store_error, Fail};
use crate::{Error, Result};

/// The most commands committed in one transaction, so one batch cannot hold the write
/// lock for long while other processes wait.
const MAX_BATCH: usize = 256;

/// A write waiting for the writer thread.
trait Command: Send {
    /// Runs the write inside the open transaction; what it answers once the batch ends.
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Reply>;
    /// Answers without running: the transaction could not begin.
    fn refuse(self: Box<Self>, why: &str);
}

/// A command that ran, waiting for its batch to commit.
trait Reply: Send {
    /// The command's own failure, if it failed.
    fn failure(&self) -> Option<String>;
    /// Answers the caller: the batch committed (`Ok`), or not (`Err` with why).
    fn send(self: Box<Self>, committed: std::result::Result<(), &str>);
}

/// The sending half, owned by the queue handles; dropping it stops the thread.
pub(super) struct Writer {
    commands: Option<mpsc::Sender<Box<dyn Command>>>,
    thread: Option<JoinHandle<()>>,
    target: Arc<str>,
}

impl Writer {
    /// Starts the writer thread on `conn`.
    pub(super) fn spawn(
        conn: Connection,
        target: Arc<str>,
        busy_timeout: Duration,
    ) -> Result<Self> {
        let (commands, inbox) = mpsc::channel::<Box<dyn Command>>();
        let thread = std::thread::Builder::new()
            .name("rustf-workers-sqlite-writer".into())
            .spawn(move || write_loop(conn, inbox, busy_timeout))
            .map_err(Error::from)?;
        Ok(Self {
            commands: Some(commands),
            thread: Some(thread),
            target,
        })
    }

    /// Runs `write` on the writer thread in the next batch; `answer` gets its result
    /// after the batch committed (or failed).
    pub(super) fn submit<T, F>(
        &self,
        action: &'static str,
        write: F,
        answer: impl FnOnce(Result<T>) + Send + 'static,
    ) where
        T: Send + 'static,
        F: FnOnce(&Connection) -> std::result::Result<T, Fail> + Send + 'static,
    {
        let op = Box::new(Op {
            action,
            target: self.target.clone(),
            write,
            answer: Box::new(answer),
        });
        let sent = match &self.commands {
            Some(commands) => commands.send(op),
            None => Err(mpsc::SendError(op as Box<dyn Command>)),
        };
        if let Err(mpsc::SendError(op)) = sent {
            op.refuse("the writer thread has stopped (it panicked)");
        }
    }

    /// Runs `write` in the next batch and waits for the commit.
    pub(super) async fn write<T, F>(&self, action: &'static str, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> std::result::Result<T, Fail> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.submit(action, write, move |result| {
            // The caller may have stopped waiting; the write stands either way.
            let _ = tx.send(result);
        });
        rx.await.unwrap_or_else(|_| {
            Err(store_error(
                action,
                &self.target,
                "the writer thread has stopped",
            ))
        })
    }

    /// Runs `write` in the next batch and blocks this thread until the commit: for the
    /// synchronous [`crate::IdempotencyStore`].
    pub(super) fn write_blocking<T, F>(&self, action: &'static str, write: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> std::result::Result<T, Fail> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(action, write, move |result| {
            let _ = tx.send(result);
        });
        rx.recv().unwrap_or_else(|_| {
            Err(store_error(
                action,
                &self.target,
                "the writer thread has stopped",
            ))
        })
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the loop once the commands already sent are written;
        // joining means the file is closed (and its WAL checkpointed) when the last
        // handle is gone, so it can be reopened, copied or deleted at once.
        drop(self.commands.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Op<T, F> {
    action: &'static str,
    target: Arc<str>,
    write: F,
    answer: Box<dyn FnOnce(Result<T>) + Send>,
}

struct Ran<T> {
    action: &'static str,
    target: Arc<str>,
    result: std::result::Result<T, Fail>,
    answer: Box<dyn FnOnce(Result<T>) + Send>,
}

impl<T, F> Command for Op<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> std::result::Result<T, Fail> + Send + 'static,
{
    fn run(self: Box<Self>, conn: &Connection) -> Box<dyn Reply> {
        let Op {
            action,
            target,
            write,
            answer,
        } = *self;
        let result = conn
            .execute_batch("SAVEPOINT command")
            .map_err(Fail::from)
            .and_then(|()| write(conn));
        // A failed command takes back only its own writes. (If SQLite already rolled the
        // whole transaction back, these fail too; the loop notices.)
        let end = match result {
            Ok(_) => "RELEASE command",
            Err(_) => "ROLLBACK TO command; RELEASE command",
        };
        let result = match (result, conn.execute_batch(end)) {
            (Ok(_), Err(err)) => Err(Fail::from(err)),
            (result, _) => result,
        };
        Box::new(Ran {
            action,
            target,
            result,
            answer,
        })
    }

    fn refuse(self: Box<Self>, why: &str) {
        (self.answer)(Err(store_error(self.action, &self.target, why)));
    }
}

impl<T: Send + 'static> Reply for Ran<T> {
    fn failure(&self) -> Option<String> {
        self.result.as_ref().err().map(Fail::message)
    }

    fn send(self: Box<Self>, committed: std::result::Result<(), &str>) {
        let Ran {
            action,
            target,
            result,
            answer,
        } = *self;
        let result = match (result, committed) {
            (Err(fail), _) => Err(fail.into_error(action, &target)),
            (Ok(_), Err(why)) => Err(store_error(action, &target, why)),
            (Ok(value), Ok(())) => Ok(value),
        };
        answer(result);
    }
}

fn write_loop(conn: Connection, inbox: mpsc::Receiver<Box<dyn Command>>, busy_timeout: Duration) {
    while let Ok(first) = inbox.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match inbox.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        run_batch(&conn, batch, busy_timeout);
    }
}

fn run_batch(conn: &Connection, batch: Vec<Box<dyn Command>>, busy_timeout: Duration) {
    let mut commands = batch.into_iter();
    let mut ran: Vec<Box<dyn Reply>> = Vec::new();
    'transaction: loop {
        if let Err(err) = begin_immediate(conn, busy_timeout) {
            let why = err.to_string();
            for command in commands {
                command.refuse(&why);
            }
            return;
        }
        for command in commands.by_ref() {
            let reply = command.run(conn);
            if conn.is_autocommit() {
                // Some errors (a full disk, an I/O error) make SQLite roll back the whole
                // transaction: the commands before this one are undone too. Tell them,
                // and go on with the rest in a new transaction.
                let why = format!(
                    "the transaction was rolled back: {}",
                    reply.failure().unwrap_or_else(|| "unknown error".into())
                );
                for earlier in ran.drain(..) {
                    earlier.send(Err(&why));
                }
                reply.send(Err(&why));
                continue 'transaction;
            }
            ran.push(reply);
        }
        break;
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => ran.into_iter().for_each(|reply| reply.send(Ok(()))),
        Err(err) => {
            let why = err.to_string();
            let _ = conn.execute_batch("ROLLBACK");
            ran.into_iter().for_each(|reply| reply.send(Err(&why)));
        }
    }
}

/// `BEGIN IMMEDIATE`, retried while another process holds the write lock.
pub(super) fn begin_immediate(conn: &Connection, busy_timeout: Duration) -> rusqlite::Result<()> {
    retry_busy(busy_timeout, || conn.execute_batch("BEGIN IMMEDIATE"))
}

/// Runs `attempt` until it does not fail with `SQLITE_BUSY`, or `busy_timeout` has
/// passed; every lock the write connection waits for is waited for here.
///
/// The write connection has no SQLite busy handler: SQLite's own sleeps 1, 2, 5, 10, ...
/// up to 100 ms between tries, so a process waiting behind another's stream of short
/// transactions keeps missing the gaps between them and starves. Polling every 50 µs to
/// 1 ms takes the lock soon after it is free. (A few `SQLITE_BUSY` cases skip any busy
/// handler, such as another process switching the file to WAL; those are retried too.)
pub(super) fn retry_busy<T>(
    busy_timeout: Duration,
    mut attempt: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    let started = Instant::now();
    let mut pause = Duration::from_micros(50);
    loop {
        match attempt() {
            Err(err)
                if err.sqlite_error_code() == Some(ErrorCode::DatabaseBusy)
                    && started.elapsed() < busy_timeout =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(1));
            }
            result => return result,
        }
    }
}
