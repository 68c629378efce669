//! The registry's durable queue: jobs stored before they run, so that they survive a
//! restart. The store decides what is due; the run engine runs each claimed job as a run
//! whose id is the job's.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use super::{Started, WeakRegistry, WorkerRegistry};
use crate::queue::{
    Called, ClaimedJob, JobCount, JobFilter, JobPage, JobRecord, JobState, JobStore, JobsChanged,
    NewJob, NodeRecord, QueueOptions, Runner,
};
use crate::run::definition::Definition;
use crate::run::driver::cancel;
use crate::run::launch::launch;
use crate::run::{Run, RunKeys, RunSettings};
use crate::{CallOptions, CancelReason, CheckpointStore, Error, JobOptions, Result};

/// The durable queue.
impl WorkerRegistry {
    /// Stores jobs in `queue` from now on, and runs the due ones in this process: see
    /// [`use_queue_with`](Self::use_queue_with) for the options.
    ///
    /// # Errors
    ///
    /// Those of [`use_queue_with`](Self::use_queue_with).
    pub fn use_queue<Q>(&self, queue: Q) -> Result<()>
    where
        Q: JobStore + CheckpointStore + Clone,
    {
        self.use_queue_with(queue, QueueOptions::new())
    }

    /// Stores jobs in `queue`, and (unless [`QueueOptions::runs_jobs`] is off) claims due
    /// jobs for this process, runs them as runs of their workers, and stores their
    /// outcomes. Checkpoints of runs are kept in the same store from then on, so a job
    /// retried or run again after a restart resumes from its last
    /// [`checkpoint`](crate::WorkerContext::checkpoint). Call it once, at start-up, inside
    /// the tokio runtime that is to run the jobs.
    ///
    /// # Errors
    ///
    /// [`Error::Validation`] when the registry already has a queue;
    /// [`Error::Internal`] outside a tokio runtime.
    pub fn use_queue_with<Q>(&self, queue: Q, options: QueueOptions) -> Result<()>
    where
        Q: JobStore + CheckpointStore + Clone,
    {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::internal(
                "use_queue must be called inside a tokio runtime, which runs the queue's tasks",
            ));
        }
        if self.inner.queue.get().is_some() {
            return Err(Error::validation(
                "this registry already has a durable queue",
            ));
        }
        if options.heartbeat_every() * 2 > options.lease {
            return Err(Error::validation(format!(
                "the queue's heartbeat ({:?}) must be at most half its lease ({:?}): a lease \
                 outlives two missed beats",
                options.heartbeat_every(),
                options.lease
            )));
        }
        let weak = WeakRegistry(Arc::downgrade(&self.inner));
        let store: Arc<dyn JobStore> = Arc::new(queue.clone());
        let mut started = None;
        self.inner.queue.get_or_init(|| {
            // Before any claim: runs started from now on keep their checkpoints there.
            self.set_checkpoint_store(queue);
            let runner = Runner::start(store, weak, options);
            started = Some(Arc::clone(&runner));
            runner
        });
        if started.is_none() {
            return Err(Error::validation(
                "this registry already has a durable queue",
            ));
        }
        Ok(())
    }

    fn queue(&self) -> Result<&Arc<Runner>> {
        self.inner.queue.get().ok_or(Error::NoQueue)
    }

    /// Stores a job for worker `name` and returns its id once it is stored: a crash right
    /// after loses nothing. It runs when due, in whichever process sharing the store
    /// claims it first, at least once (see the queue guide for when a job can run twice).
    ///
    /// # Examples
    ///
    /// With the `sqlite` feature:
    ///
    #[cfg_attr(feature = "sqlite", doc = "```no_run")]
    #[cfg_attr(not(feature = "sqlite"), doc = "```ignore")]
    /// use rustf_workers::prelude::*;
    /// use rustf_workers::queue::SqliteQueue;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<()> {
    /// WORKER::registry().use_queue(SqliteQueue::open("jobs.db")?)?;
    /// let id = WORKER::registry()
    ///     .enqueue("send-email", Some(json!({ "to": "a@b.c" })))
    ///     .await?;
    /// let job = WORKER::registry().await_job(&id).await?;
    /// # let _ = job;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// - [`Error::NoQueue`] before [`use_queue`](Self::use_queue).
    /// - [`Error::NotRegistered`] when this registry has no worker `name`: register the
    ///   worker in the enqueuing process too (the same binary usually links the same
    ///   workers), so that a misspelt name is refused here rather than stored for ever.
    /// - [`Error::Validation`] for a payload the worker's typed parameter cannot read
    ///   (nothing is stored).
    /// - [`Error::Store`] when the store cannot be written.
    pub async fn enqueue(&self, name: &str, payload: Option<Value>) -> Result<String> {
        self.enqueue_with(name, payload, JobOptions::new()).await
    }

    /// Stores a job with [`JobOptions`] (schedule, priority, retries, timeout, keys); see
    /// [`enqueue`](Self::enqueue). With a unique key held by a live job of the worker, or
    /// an idempotency key of a completed one, nothing is stored and that job's id is
    /// returned.
    ///
    /// # Errors
    ///
    /// Those of [`enqueue`](Self::enqueue).
    pub async fn enqueue_with(
        &self,
        name: &str,
        payload: Option<Value>,
        options: JobOptions,
    ) -> Result<String> {
        let mut ids = self.enqueue_many([(name, payload, options)]).await?;
        Ok(ids.remove(0))
    }

    /// Stores several jobs in one transaction: all of them, or none. Returns their ids in
    /// order (an existing job's id where a key matched one).
    ///
    /// # Errors
    ///
    /// Those of [`enqueue`](Self::enqueue), for the first job at fault; then nothing is
    /// stored.
    pub async fn enqueue_many<'a>(
        &self,
        jobs: impl IntoIterator<Item = (&'a str, Option<Value>, JobOptions)>,
    ) -> Result<Vec<String>> {
        let queue = Arc::clone(self.queue()?);
        let now = queue.clock.now_ms();
        let mut stored = Vec::new();
        for (name, payload, options) in jobs {
            stored.push(self.new_job(&queue, now, name, payload, &options)?);
        }
        let enqueued = queue.store.enqueue(now, stored).await?;
        queue.wake();
        Ok(enqueued.into_iter().map(|job| job.id).collect())
    }

    fn new_job(
        &self,
        queue: &Runner,
        now: i64,
        name: &str,
        payload: Option<Value>,
        options: &JobOptions,
    ) -> Result<NewJob> {
        let definition = self.definition(name)?;
        if let Some(check) = definition.check_payload {
            check(name, payload.as_ref())?;
        }
        let mut job = job_of(&definition, options)?;
        job.payload = payload;
        let delay_at = options
            .job_delay()
            .map(|delay| now.saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX)));
        job.run_at_ms = options
            .job_run_at()
            .map(|at| queue.clock.at_ms(at))
            .or(delay_at);
        Ok(job)
    }

    /// The stored job `id`: its state, attempts and errors. (Its runs' checkpoints are
    /// read by the worker, through [`WorkerContext::get_checkpoint`](crate::WorkerContext::get_checkpoint).)
    ///
    /// # Errors
    ///
    /// [`Error::JobNotFound`] for an unknown (or pruned) id; [`Error::NoQueue`];
    /// [`Error::Store`].
    pub async fn job(&self, id: &str) -> Result<JobRecord> {
        self.queue()?
            .store
            .get(id)
            .await?
            .ok_or_else(|| Error::JobNotFound { id: id.to_owned() })
    }

    /// Waits until job `id` is finished (completed, discarded or cancelled), from any
    /// process, and returns its record. It looks again whenever this process stores an
    /// outcome, and at least every 100 ms.
    ///
    /// # Errors
    ///
    /// Those of [`job`](Self::job).
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: it only reads.
    pub async fn await_job(&self, id: &str) -> Result<JobRecord> {
        let queue = Arc::clone(self.queue()?);
        loop {
            let record = self.job(id).await?;
            if record.state.is_finished() {
                return Ok(record);
            }
            queue.written(Duration::from_millis(100)).await;
        }
    }

    /// A page of stored jobs, newest first, by state, worker and payload text.
    ///
    /// # Errors
    ///
    /// [`Error::NoQueue`]; [`Error::Store`].
    pub async fn jobs(&self, filter: JobFilter) -> Result<JobPage> {
        self.queue()?.store.list(filter).await
    }

    /// How many stored jobs each worker has in each state (states with none left out),
    /// by worker, then state: what a stats page and `GET /metrics` show.
    ///
    /// # Errors
    ///
    /// [`Error::NoQueue`]; [`Error::Store`].
    pub async fn job_counts(&self) -> Result<Vec<JobCount>> {
        let counts = self.queue()?.store.counts().await?;
        Ok(counts
            .into_iter()
            .map(|(worker, state, count)| JobCount {
                worker,
                state,
                count,
            })
            .collect())
    }

    /// The processes that run this store's jobs (this one included, unless it was opened
    /// with [`QueueOptions::runs_jobs`]`(false)`), newest first: host, pid, capacity,
    /// load at the last heartbeat, and a status derived from their heartbeats (offline
    /// after a lease without one, when their jobs are rescued).
    ///
    /// # Errors
    ///
    /// [`Error::NoQueue`]; [`Error::Store`].
    pub async fn nodes(&self) -> Result<Vec<NodeRecord>> {
        self.queue()?.nodes().await
    }

    /// This process's id as a node of the store (the owner of the jobs it claims), once
    /// it has a queue.
    pub fn node_id(&self) -> Option<String> {
        self.inner
            .queue
            .get()
            .map(|queue| queue.node_id().to_owned())
    }

    /// Makes a discarded or cancelled job available again, with one more attempt.
    ///
    /// # Errors
    ///
    /// [`Error::JobNotFound`] when no such job is discarded or cancelled;
    /// [`Error::NoQueue`]; [`Error::Store`].
    pub async fn retry_job(&self, id: &str) -> Result<()> {
        let queue = self.queue()?;
        if queue.store.retry(queue.clock.now_ms(), id).await? {
            queue.wake();
            Ok(())
        } else {
            Err(Error::JobNotFound { id: id.to_owned() })
        }
    }

    /// Deletes a job that is not running.
    ///
    /// # Errors
    ///
    /// [`Error::JobNotFound`] when there is no such job, or it runs now;
    /// [`Error::NoQueue`]; [`Error::Store`].
    pub async fn delete_job(&self, id: &str) -> Result<()> {
        if self.queue()?.store.delete(id).await? {
            Ok(())
        } else {
            Err(Error::JobNotFound { id: id.to_owned() })
        }
    }

    /// Gives every discarded or cancelled job matching `filter` one more attempt, as
    /// [`retry_job`](Self::retry_job) does one: all pages of the filter, from its
    /// `before_id` on (its `limit` is ignored).
    ///
    /// # Errors
    ///
    /// [`Error::NoQueue`]; [`Error::Store`] (the jobs acted on before the failure stay
    /// so).
    pub async fn retry_jobs(&self, filter: JobFilter) -> Result<JobsChanged> {
        self.each_job(filter, Bulk::Retry).await
    }

    /// Cancels every waiting or running job matching `filter`, as
    /// [`cancel`](Self::cancel) does one (a running one through its owner).
    ///
    /// # Errors
    ///
    /// As [`retry_jobs`](Self::retry_jobs).
    pub async fn cancel_jobs(&self, filter: JobFilter) -> Result<JobsChanged> {
        self.each_job(filter, Bulk::Cancel).await
    }

    /// Deletes every job matching `filter` that is not running, as
    /// [`delete_job`](Self::delete_job) does one.
    ///
    /// # Errors
    ///
    /// As [`retry_jobs`](Self::retry_jobs).
    pub async fn delete_jobs(&self, filter: JobFilter) -> Result<JobsChanged> {
        self.each_job(filter, Bulk::Delete).await
    }

    /// `bulk` on each job matching `filter`, a page at a time, newest first: the pages
    /// follow insertion order, so a job changing state does not move the cursor. The
    /// job a page's cursor names is acted on after the next page is read (a deleted
    /// cursor would end the walk).
    async fn each_job(&self, mut filter: JobFilter, bulk: Bulk) -> Result<JobsChanged> {
        let queue = self.queue()?;
        filter.limit = JobFilter::MAX_LIMIT;
        let mut changed = JobsChanged::default();
        let mut cursor: Option<JobRecord> = None;
        loop {
            let page = queue.store.list(filter.clone()).await?;
            if let Some(job) = cursor.take() {
                changed.changed += u64::from(self.bulk_one(&job, bulk).await?);
            }
            for job in page.jobs {
                changed.matched += 1;
                if page.next.as_deref() == Some(job.id.as_str()) {
                    cursor = Some(job);
                } else {
                    changed.changed += u64::from(self.bulk_one(&job, bulk).await?);
                }
            }
            match page.next {
                Some(next) => filter.before_id = Some(next),
                None => return Ok(changed),
            }
        }
    }

    /// `bulk` on `job`, if it applies to its state; returns whether it did.
    async fn bulk_one(&self, job: &JobRecord, bulk: Bulk) -> Result<bool> {
        let applies = match bulk {
            Bulk::Retry => matches!(job.state, JobState::Discarded | JobState::Cancelled),
            Bulk::Cancel => !job.state.is_finished(),
            Bulk::Delete => job.state != JobState::Running,
        };
        if !applies {
            return Ok(false);
        }
        let done = match bulk {
            Bulk::Retry => self.retry_job(&job.id).await,
            Bulk::Cancel => self.cancel(&job.id).await,
            Bulk::Delete => self.delete_job(&job.id).await,
        };
        match done {
            Ok(()) => Ok(true),
            // It changed since its page was read: ended, claimed, its key taken.
            Err(Error::JobNotFound { .. } | Error::RunNotFound { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// Deletes finished jobs that finished `older_than` ago or longer (`Duration::ZERO`:
    /// every finished job); returns how many.
    /// The queue does this by itself for [`QueueOptions::retention`].
    ///
    /// # Errors
    ///
    /// [`Error::NoQueue`]; [`Error::Store`].
    pub async fn prune_jobs(&self, older_than: Duration) -> Result<u64> {
        let queue = self.queue()?;
        let ms = u64::try_from(older_than.as_millis()).unwrap_or(u64::MAX);
        queue.store.prune(queue.clock.now_ms(), ms).await
    }

    /// Runs every due job now, in this process, and returns once none is due and every
    /// outcome is stored: how many runs it started. Jobs that fail and retry later, or are
    /// scheduled later, stay stored. For tests, with no sleeps: open the queue with
    /// [`QueueOptions::runs_jobs`]`(false)` so that nothing runs until the test drains it
    /// (Sidekiq's fake-then-drain, Oban's `drain_queue`).
    ///
    /// # Examples
    ///
    /// With the `sqlite` feature:
    ///
    #[cfg_attr(feature = "sqlite", doc = "```")]
    #[cfg_attr(not(feature = "sqlite"), doc = "```ignore")]
    /// use rustf_workers::prelude::*;
    /// use rustf_workers::queue::{QueueOptions, SqliteQueue};
    /// use rustf_workers::WorkerRegistry;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<()> {
    /// # let dir = std::env::temp_dir().join(format!("drain-{}", std::process::id()));
    /// # std::fs::create_dir_all(&dir)?;
    /// let workers = WorkerRegistry::new();
    /// workers.register("welcome", |_ctx| async { Ok(()) }).await?;
    /// let queue = SqliteQueue::open(dir.join("test.db"))?;
    /// workers.use_queue_with(queue, QueueOptions::new().runs_jobs(false))?;
    ///
    /// // The application under test enqueues...
    /// workers.enqueue("welcome", Some(json!({ "user": 7 }))).await?;
    /// // ...the test asserts what was enqueued, then runs it inline.
    /// let waiting = workers.enqueued("welcome").await?;
    /// assert_eq!(waiting[0].payload, Some(json!({ "user": 7 })));
    /// assert_eq!(workers.drain_jobs().await?, 1);
    /// assert!(workers.enqueued("welcome").await?.is_empty());
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::NoQueue`]; [`Error::Store`].
    pub async fn drain_jobs(&self) -> Result<usize> {
        let queue = Arc::clone(self.queue()?);
        queue.drain().await
    }

    /// The jobs of worker `name` waiting to run (scheduled, available or retrying),
    /// newest first: what a test asserts was enqueued.
    ///
    /// # Errors
    ///
    /// [`Error::NoQueue`]; [`Error::Store`].
    pub async fn enqueued(&self, name: &str) -> Result<Vec<JobRecord>> {
        let filter = JobFilter {
            states: vec![JobState::Scheduled, JobState::Available, JobState::Retrying],
            worker: Some(name.to_owned()),
            limit: JobFilter::MAX_LIMIT,
            ..JobFilter::default()
        };
        Ok(self.jobs(filter).await?.jobs)
    }

    /// Cancels a stored job that is not live here: a waiting one at once, a running one
    /// through its owner's next heartbeat.
    pub(super) async fn cancel_job(&self, queue: &Runner, id: &str) -> Result<()> {
        queue.cancel_stored(id).await
    }

    /// A durable call: stores the job and claims it for this process in one write, then
    /// runs it here (its messages kept for the caller when `read`). A key held by
    /// another job gives that job instead: its live run if it runs here, else a stand-in
    /// that ends with its stored outcome.
    pub(super) async fn call_durable(
        &self,
        name: &str,
        payload: Option<Value>,
        options: &CallOptions,
        read: bool,
    ) -> Result<Started> {
        let queue = Arc::clone(self.queue()?);
        if self.is_shutting_down() {
            return Err(Error::ShuttingDown);
        }
        let definition = self.definition(name)?;
        if options
            .run_daemon()
            .is_some_and(|daemon| daemon != definition.options.is_daemon())
        {
            return Err(Error::validation(format!(
                "durable call of worker '{name}': a stored job is a daemon when its worker is \
                 one (WorkerOptions::daemon), not by call"
            )));
        }
        let mut job_options = JobOptions::new().priority(options.run_priority());
        if let Some(timeout) = options.run_timeout() {
            job_options = job_options.timeout(timeout);
        }
        if let Some(retries) = options.run_retries() {
            job_options = job_options.retries(retries);
        }
        if let Some(key) = options.run_unique_key() {
            job_options = job_options.unique_key(key);
        }
        if let Some((key, _)) = options.run_idempotency_key() {
            job_options = job_options.idempotency_key(key);
        }
        let job = self.new_job(&queue, queue.clock.now_ms(), name, payload, &job_options)?;
        match queue.call(self.clone(), job, read).await? {
            Called::Started(run) => Ok(Started::Own(run)),
            // Stored and waiting (handed back, or another job's): the handle follows the
            // stored job.
            Called::Waiting(id) | Called::Existing(id) => self.stored_job(&queue, &id, read).await,
        }
    }

    /// `run` of a durable worker: stored, run here, awaited.
    pub(super) async fn run_durable(&self, name: &str, payload: Option<Value>) -> Result<()> {
        let started = self
            .call_durable(name, payload, &CallOptions::new(), false)
            .await?;
        started.into_handle().await_result().await
    }

    /// Cancels the live run `id` here, if there is one.
    pub(crate) fn cancel_local(&self, id: &str) {
        if let Ok(run) = self.live_run(id) {
            cancel(&run, CancelReason::Requested);
        }
    }

    /// The workers with a cron schedule: name, expression, and the job each tick stores
    /// (its id made anew per tick).
    #[cfg(feature = "cron")]
    pub(crate) fn cron_jobs(&self) -> Vec<(String, &'static str, NewJob)> {
        let catalog = self.inner.catalog.load();
        catalog
            .definitions
            .values()
            .filter_map(|definition| {
                let expr = definition.options.cron_expr()?;
                let job = job_of(definition, &JobOptions::new()).ok()?;
                Some((definition.name.to_string(), expr, job))
            })
            .collect()
    }

    /// How many jobs this process may claim now, `run` to start at once and `ahead` to
    /// hold until a slot is free, and of each registered worker how many at most: within
    /// its concurrency cap and daemon limit, the registry's `set_max_running` (for the
    /// total), and the free memory pool, shared out among the workers that declare
    /// memory. Only the workers with none of those limits are claimed ahead, and none is
    /// while `set_max_running` is set. (A hint: the admission queue enforces the limits;
    /// a job claimed past them waits there, leased.)
    pub(crate) fn job_room(&self, run: usize, ahead: usize) -> (usize, Vec<(String, usize)>) {
        let (free_runs, mut free_memory) = self.inner.live.admission.free();
        let room = run.min(free_runs);
        let ahead = if free_runs == usize::MAX { ahead } else { 0 };
        if room + ahead == 0 {
            return (0, Vec::new());
        }
        let catalog = self.inner.catalog.load();
        let workers = catalog
            .definitions
            .values()
            .filter_map(|definition| {
                let options = &definition.options;
                let declared = options.declared_memory();
                let mut free = match options.concurrency_cap() {
                    // Relaxed: a hint; the admission queue enforces the cap itself.
                    Some(cap) => cap.saturating_sub(definition.executing.load(Ordering::Relaxed)),
                    None => room,
                };
                if let (true, Some(max)) = (options.is_daemon(), options.daemon_limit()) {
                    // Relaxed: a hint, as above; `launch` takes the slot exactly.
                    free = free.min(max.saturating_sub(definition.daemons.load(Ordering::Relaxed)));
                }
                free = free.min(room);
                // Declared memory: as many as the pool still holds, taken from it.
                if let Some(fits) = free_memory.checked_div(declared) {
                    free = free.min(usize::try_from(fits).unwrap_or(usize::MAX));
                    free_memory -= declared.saturating_mul(free as u64);
                }
                let unlimited = options.concurrency_cap().is_none()
                    && !(options.is_daemon() && options.daemon_limit().is_some())
                    && declared == 0;
                if unlimited {
                    free += ahead;
                }
                (free > 0).then(|| (definition.name.to_string(), free))
            })
            .collect();
        (room + ahead, workers)
    }

    /// The registered workers' names.
    pub(crate) fn definition_names(&self) -> Vec<String> {
        let catalog = self.inner.catalog.load();
        catalog
            .definitions
            .keys()
            .map(|name| name.to_string())
            .collect()
    }

    /// The memory pool, in bytes.
    pub(crate) fn memory_pool(&self) -> u64 {
        self.inner.live.admission.memory_pool()
    }

    /// Memory the admitted runs declare now, in bytes.
    pub(crate) fn memory_in_use(&self) -> u64 {
        let (_, free) = self.inner.live.admission.free();
        self.memory_pool().saturating_sub(free)
    }

    /// Starts a claimed job as a run of its worker, its id the job's, its messages kept
    /// for a reader when `read`.
    pub(crate) fn start_job(
        &self,
        job: ClaimedJob,
        keys: Box<RunKeys>,
        read: bool,
    ) -> Result<Arc<Run>> {
        let catalog = self.inner.catalog.load();
        let definition = catalog.definition(&job.worker)?;
        if let Some(check) = definition.check_payload {
            check(&job.worker, job.payload.as_ref())?;
        }
        let daemon = definition.options.is_daemon();
        let key = uuid::Uuid::try_parse(&job.id)
            .map_err(|_| Error::validation(format!("job id '{}' is not a uuid", job.id)))?
            .as_u128();
        let settings = RunSettings {
            // Relaxed: settings read once per run; no other data depends on them.
            capacity: self.inner.message_capacity.load(Ordering::Relaxed),
            budget: self.inner.message_budget.load(Ordering::Relaxed),
            keep_last: self.inner.keep_last.load(Ordering::Relaxed),
            read,
            limited: false,
            // Its retries are the queue's, stored between attempts; a daemon restarts
            // here, and again after a restart (its lease rescued), from its checkpoint.
            max_attempts: if daemon { u32::MAX } else { 1 },
            daemon,
            timeout: job
                .timeout_ms
                .map(Duration::from_millis)
                .or(definition.options.default_timeout()),
            keys: Some(keys),
            key: Some(key),
            first_attempt: job.attempt.max(1),
        };
        launch(
            Arc::clone(definition),
            job.payload,
            Arc::clone(&catalog.config),
            settings,
            job.priority,
            false,
            None,
        )
        .map(|(run, _)| run)
    }
}

/// A new job of `definition` with `options` (its id made here, no payload, due now): the
/// worker's own retries, memory and timeout where the options leave them.
fn job_of(definition: &Definition, options: &JobOptions) -> Result<NewJob> {
    let name = &*definition.name;
    let retries = options
        .job_retries()
        .unwrap_or(definition.options.max_retries());
    // A daemon restarts in its process for as long as it takes, and again after a
    // restart, so no count of attempts (lost ones included) ever discards it.
    let attempts = if definition.options.is_daemon() {
        u32::MAX
    } else {
        retries.saturating_add(1)
    };
    let mut job = NewJob::new(uuid::Uuid::new_v4().to_string(), name)
        .priority(options.job_priority())
        .max_attempts(attempts)
        .memory(definition.options.declared_memory());
    let timeout = options
        .job_timeout()
        .or(definition.options.default_timeout());
    if timeout.is_some_and(|t| t.is_zero()) {
        return Err(Error::validation(format!(
            "job of worker '{name}': timeout must be greater than zero"
        )));
    }
    job.timeout_ms = timeout.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX));
    job.unique_key = options.job_unique_key().map(str::to_owned);
    job.idempotency_key = options.job_idempotency_key().map(str::to_owned);
    if let Some(queue_name) = options.job_queue() {
        job.queue = queue_name.to_owned();
    }
    Ok(job)
}

/// A bulk action of [`WorkerRegistry::each_job`].
#[derive(Clone, Copy)]
enum Bulk {
    Retry,
    Cancel,
    Delete,
}
