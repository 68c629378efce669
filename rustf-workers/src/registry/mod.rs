//! The registry: definitions, admission of runs, the live table and shutdown.

pub(crate) mod global;
pub(crate) mod installer;
pub(crate) mod linked;
mod looking;
mod name_hash;
mod queue;
mod settings;
mod stand_in;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::{poll_fn, Future};
use std::hash::BuildHasherDefault;
use std::panic::Location;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::ready;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;

use crate::run::definition::{first_step, Definition};
use crate::run::driver::{cancel, Outcome};
use crate::run::launch::launch;
use crate::run::live::{LiveRuns, Phase};
use crate::run::{Run, RunKeys, RunSettings};
use crate::{
    AppConfig, CallOptions, CancelReason, Error, Result, WorkerContext, WorkerHandle, WorkerOptions,
};
use name_hash::NameHasher;

/// Default time `shutdown()` gives running workers to finish before it cancels them.
/// Below the 30 s most process supervisors wait before they kill.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

/// Default soft mark of a run's mailbox: once this many messages are unread, the run's
/// handler is held at its next `.await` until its reader catches up, and `emit_wait`
/// waits.
pub const DEFAULT_MESSAGE_CAPACITY: usize = 1024;

/// Default budget of a run's unread messages, in bytes as
/// [`WorkerRegistry::set_message_budget`] counts them: 64 MiB, two million numbers or
/// about 100,000 one-field objects queued by a worker that emits in a loop without
/// awaiting while its handle reads nothing.
pub const DEFAULT_MESSAGE_BUDGET: usize = 64 << 20;

/// A set of worker definitions and their runs.
///
/// [`WORKER`](crate::WORKER) is a facade over one global `WorkerRegistry`; create your own
/// for tests, for libraries, or to keep several independent sets of workers in one
/// process. Cloning is cheap and every clone is the same registry.
///
/// # Examples
///
/// ```
/// use rustf_workers::prelude::*;
/// use rustf_workers::WorkerRegistry;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<()> {
/// let workers = WorkerRegistry::new();
/// workers
///     .register("greet", |ctx| async move {
///         let name = ctx.payload().and_then(|p| p["name"].as_str()).unwrap_or("world");
///         ctx.emit(json!({ "greeting": format!("hello, {name}") }))?;
///         Ok(())
///     })
///     .await?;
///
/// let mut handle = workers.call("greet", None, Some(json!({ "name": "Ada" }))).await?;
/// assert_eq!(handle.recv().await, Some(json!({ "greeting": "hello, Ada" })));
/// assert_eq!(handle.recv().await, None);
/// handle.await_result().await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct WorkerRegistry {
    inner: Arc<Inner>,
}

struct Inner {
    /// What a call needs to look up, in one lock-free load.
    catalog: ArcSwap<Catalog>,
    /// Serialises writers of `catalog`; lookups never take it.
    writing: Mutex<()>,
    live: Arc<LiveRuns>,
    grace_ms: AtomicU64,
    message_capacity: AtomicUsize,
    message_budget: AtomicUsize,
    keep_last: AtomicBool,
    /// The durable queue, once `use_queue` set one.
    queue: OnceLock<Arc<crate::queue::Runner>>,
}

/// A registry that does not keep itself alive: what its durable queue's tasks hold.
#[derive(Clone)]
pub(crate) struct WeakRegistry(std::sync::Weak<Inner>);

impl WeakRegistry {
    pub(crate) fn upgrade(&self) -> Option<WorkerRegistry> {
        self.0.upgrade().map(|inner| WorkerRegistry { inner })
    }
}

#[derive(Clone)]
struct Catalog {
    /// Looked up by every call: hashed with a hasher made for short names.
    definitions: HashMap<Box<str>, Arc<Definition>, BuildHasherDefault<NameHasher>>,
    /// Names that cannot be used, with the reason: claimed by two `#[worker]` functions,
    /// or a linked registration the runtime refused.
    refused: BTreeMap<String, Error>,
    config: Arc<AppConfig>,
}

/// How many runs that finish within their caller's poll share one unit of tokio's
/// cooperative budget.
const UNCHARGED_STEPS: u32 = 8;

thread_local! {
    /// Such runs on this thread since the budget was last charged.
    static STEPS_UNCHARGED: Cell<u32> = const { Cell::new(0) };
}

/// Whether a `run` that finished in its first step is to consume a unit of the caller's
/// cooperative budget. Such a run never waited, so a loop of them would never let the
/// caller's thread serve its other tasks; every [`UNCHARGED_STEPS`]th one is charged, as
/// tokio's own resources charge each operation, so the caller yields once its budget is
/// spent (after about a thousand runs). Charging each run would cost more than the rest
/// of a no-op run's bookkeeping.
fn budget_due() -> bool {
    let steps = STEPS_UNCHARGED.get() + 1;
    let due = steps == UNCHARGED_STEPS;
    STEPS_UNCHARGED.set(if due { 0 } else { steps });
    due
}

/// The live table's key for a run id; `None` when the id is not a uuid.
fn run_key(run_id: &str) -> Option<u128> {
    uuid::Uuid::try_parse(run_id).ok().map(|id| id.as_u128())
}

/// Who starts a run.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Caller {
    /// A handle will read its messages (`call`).
    Reads,
    /// The caller awaits the result at once (`run`): nobody reads the messages, and the
    /// handler's first step is taken before `start` returns, spawning a task only if it
    /// waits.
    Awaits,
}

/// What a call started: its own run, or a live one it attached to by unique key.
enum Started {
    Own(Arc<Run>),
    Attached(Arc<Run>),
    /// A durable call: to be stored first, with its payload given back (boxed, so that
    /// every other call's `Started` stays two words).
    Durable(Box<Option<Value>>),
}

impl Started {
    /// Out of line: the in-process path never pays for the box.
    #[cold]
    #[inline(never)]
    fn durable(payload: Option<Value>) -> Self {
        Started::Durable(Box::new(payload))
    }

    fn into_handle(self) -> WorkerHandle {
        match self {
            Started::Own(run) => WorkerHandle::new(run),
            Started::Attached(run) => WorkerHandle::attached(run),
            Started::Durable(_) => unreachable!("a durable call is started by `call_durable`"),
        }
    }
}

impl Catalog {
    fn definition(&self, name: &str) -> Result<&Arc<Definition>> {
        self.definitions.get(name).ok_or_else(|| {
            self.refused
                .get(name)
                .cloned()
                .unwrap_or_else(|| not_registered(name))
        })
    }
}

impl WorkerRegistry {
    /// An empty registry with default settings.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Inner {
                catalog: ArcSwap::from_pointee(Catalog {
                    definitions: HashMap::default(),
                    refused: BTreeMap::new(),
                    config: Arc::default(),
                }),
                writing: Mutex::new(()),
                live: Arc::new(LiveRuns::new()),
                grace_ms: AtomicU64::new(DEFAULT_SHUTDOWN_GRACE.as_millis() as u64),
                message_capacity: AtomicUsize::new(DEFAULT_MESSAGE_CAPACITY),
                message_budget: AtomicUsize::new(DEFAULT_MESSAGE_BUDGET),
                keep_last: AtomicBool::new(false),
                queue: OnceLock::new(),
            }),
        }
    }

    /// A registry holding every `#[worker]` function linked into the binary.
    ///
    /// A name claimed by two functions is not registered: calls to it, and
    /// [`verify`](Self::verify), return [`Error::AlreadyRegistered`] naming both. Each
    /// such conflict is also logged at error level.
    pub fn with_linked() -> Self {
        let registry = Self::new();
        let (definitions, refused) = crate::registry::linked::linked(&registry.inner.live);
        registry.update_catalog(|catalog| {
            for definition in definitions {
                catalog
                    .definitions
                    .insert(definition.name.clone(), Arc::new(definition));
            }
            for (name, err) in refused {
                log::error!(target: "rustf_workers::registry", "{err}");
                catalog.refused.insert(name, err);
            }
        });
        registry
    }

    /// The global registry behind [`WORKER`](crate::WORKER), built on first use with
    /// every linked `#[worker]` function ([`with_linked`](Self::with_linked)).
    pub fn global() -> &'static WorkerRegistry {
        static GLOBAL: OnceLock<WorkerRegistry> = OnceLock::new();
        GLOBAL.get_or_init(WorkerRegistry::with_linked)
    }

    /// Checks the registrations: call it once at start-up to fail fast.
    /// [`Installer::install`](crate::Installer::install) does.
    ///
    /// # Errors
    ///
    /// The first (by name) worker name that could not be registered, with the reason:
    /// [`Error::AlreadyRegistered`] naming both functions that claim it.
    pub fn verify(&self) -> Result<()> {
        match self.inner.catalog.load().refused.values().next() {
            Some(err) => Err(err.clone()),
            None => Ok(()),
        }
    }

    // ---- registration ----

    /// Registers a worker under `name`.
    ///
    /// The handler is called once per run with the run's [`WorkerContext`]; its
    /// synchronous part runs inside `call`, like the argument of `tokio::spawn`, and the
    /// future it returns runs on its own task.
    ///
    /// Names are kebab or snake case: lowercase ASCII letters, digits, `-` and `_`,
    /// starting and ending with a letter or digit, at most 100 characters.
    ///
    /// # Errors
    ///
    /// - [`Error::InvalidName`] when the name breaks the rule above.
    /// - [`Error::AlreadyRegistered`] when the name is taken; the existing definition
    ///   stays, and the error says where both registrations came from.
    #[track_caller]
    pub fn register<F, Fut>(
        &self,
        name: impl Into<String>,
        handler: F,
    ) -> impl Future<Output = Result<()>> + Send + 'static
    where
        F: Fn(WorkerContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        self.register_with(name, WorkerOptions::default(), handler)
    }

    /// Registers a worker with [`WorkerOptions`].
    ///
    /// # Errors
    ///
    /// As [`register`](Self::register), plus [`Error::Validation`] for an invalid option
    /// (a zero timeout).
    #[track_caller]
    pub fn register_with<F, Fut>(
        &self,
        name: impl Into<String>,
        options: WorkerOptions,
        handler: F,
    ) -> impl Future<Output = Result<()>> + Send + 'static
    where
        F: Fn(WorkerContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<()>> + Send + 'static,
    {
        let origin = format!("`register` at {}", Location::caller());
        let live = Arc::clone(&self.inner.live);
        let result = Definition::new(name.into(), options, origin, live, handler)
            .and_then(|definition| self.insert(definition));
        std::future::ready(result)
    }

    pub(crate) fn insert(&self, definition: Definition) -> Result<()> {
        self.update_catalog(|catalog| {
            if let Some(err) = catalog.refused.get(&*definition.name) {
                return Err(err.clone());
            }
            if let Some(existing) = catalog.definitions.get(&definition.name) {
                return Err(Error::AlreadyRegistered {
                    name: definition.name.into(),
                    first: existing.origin.clone(),
                    second: definition.origin,
                });
            }
            catalog
                .definitions
                .insert(definition.name.clone(), Arc::new(definition));
            Ok(())
        })
    }

    /// Copy, change, swap: writers are rare and serialised, readers never wait.
    fn update_catalog<T>(&self, change: impl FnOnce(&mut Catalog) -> T) -> T {
        let _writer = self.inner.writing.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = Catalog::clone(&self.inner.catalog.load());
        let result = change(&mut next);
        self.inner.catalog.store(Arc::new(next));
        result
    }

    pub(crate) fn definition(&self, name: &str) -> Result<Arc<Definition>> {
        self.inner.catalog.load().definition(name).cloned()
    }

    /// Every definition, by name.
    #[cfg(feature = "http")]
    pub(crate) fn definition_list(&self) -> Vec<Arc<Definition>> {
        let mut list = self
            .inner
            .catalog
            .load()
            .definitions
            .values()
            .cloned()
            .collect::<Vec<_>>();
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list
    }

    /// Runs admitted and not yet settled, over every definition.
    fn in_flight(&self) -> u64 {
        let catalog = self.inner.catalog.load();
        catalog
            .definitions
            .values()
            .map(|definition| definition.counters.in_flight())
            .sum()
    }

    // ---- running ----

    /// Starts a run of the worker `name` and returns its handle at once.
    ///
    /// `timeout` overrides the definition's default timeout for this run; `None` keeps
    /// the default (no timeout unless the definition has one). The run is listed by
    /// [`running`](Self::running) from now until it is terminal.
    ///
    /// Dropping the handle does not stop the run; its messages are then discarded.
    ///
    /// # Errors
    ///
    /// - [`Error::NotRegistered`] for an unknown name.
    /// - [`Error::ShuttingDown`] once [`shutdown`](Self::shutdown) has started.
    /// - [`Error::Validation`] for a zero timeout, a payload that the worker's typed
    ///   parameter cannot read, or a worker that declares more memory per run
    ///   ([`WorkerOptions::memory`]) than the whole memory pool.
    /// - [`Error::QueueFull`] when the run must wait for a limit (the worker's
    ///   concurrency cap, [`set_max_running`](Self::set_max_running), or the memory pool)
    ///   and the admission queue already holds
    ///   [`set_queue_capacity`](Self::set_queue_capacity) calls.
    /// - [`Error::DaemonLimit`] when the worker is a daemon ([`WorkerOptions::daemon`])
    ///   and already has its [`max_daemons`](WorkerOptions::max_daemons) live runs.
    /// - [`Error::Internal`] when called outside a tokio runtime.
    pub async fn call(
        &self,
        name: &str,
        timeout: Option<Duration>,
        payload: Option<Value>,
    ) -> Result<WorkerHandle> {
        let options = timeout.map_or_else(CallOptions::new, |t| CallOptions::new().timeout(t));
        self.call_with(name, payload, options).await
    }

    /// Starts a run with [`CallOptions`] (timeout, priority); otherwise as
    /// [`call`](Self::call).
    ///
    /// # Errors
    ///
    /// Those of [`call`](Self::call), [`Error::QueueFull`] included; a call made a daemon
    /// by [`CallOptions::daemon`] can get [`Error::DaemonLimit`] too.
    pub async fn call_with(
        &self,
        name: &str,
        payload: Option<Value>,
        options: CallOptions,
    ) -> Result<WorkerHandle> {
        match self.start(name, payload, &options, Caller::Reads)? {
            // Boxed: the store's round trip would make every call's future larger.
            Started::Durable(payload) => {
                Box::pin(self.call_durable(name, *payload, &options, true))
                    .await
                    .map(Started::into_handle)
            }
            started => Ok(started.into_handle()),
        }
    }

    /// Starts a run for `caller`.
    fn start(
        &self,
        name: &str,
        payload: Option<Value>,
        options: &CallOptions,
        caller: Caller,
    ) -> Result<Started> {
        let catalog = self.inner.catalog.load();
        let definition = catalog.definition(name)?;
        if options
            .run_durable()
            .unwrap_or(definition.options.is_durable())
        {
            return Ok(Started::durable(payload));
        }
        if let Some(check) = definition.check_payload {
            check(name, payload.as_ref())?;
        }
        let declared = definition.options.declared_memory();
        let pool = self.inner.live.admission.memory_pool();
        if declared > pool {
            return Err(Error::validation(format!(
                "worker '{name}' declares {declared} bytes of memory per run, more than the \
                 whole memory pool of {pool} bytes"
            )));
        }
        let timeout = options.run_timeout();
        if timeout.is_some_and(|t| t.is_zero()) {
            return Err(Error::validation(format!(
                "call of worker '{name}': timeout must be greater than zero"
            )));
        }
        // Inside a tokio task (the usual caller) spawning is sure to work; only outside
        // one is the costlier runtime lookup needed.
        if tokio::task::try_id().is_none() && tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::internal(format!(
                "worker '{name}' was called outside a tokio runtime"
            )));
        }
        let live = &*self.inner.live;
        // A live run with the same unique key takes this call; the lock is held until this
        // call's own run is in the map, so two calls cannot both start one.
        let mut unique = None;
        if let Some(key) = options.run_unique_key() {
            let runs = live.unique.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(run) = runs.get(&(name.into(), key.into())) {
                if !run.is_finished() {
                    return Ok(Started::Attached(Arc::clone(run)));
                }
            }
            unique = Some((runs, key));
        }
        if let Some((key, _)) = options.run_idempotency_key() {
            if let Some(run_id) = live.idempotency.load().lookup(name, key) {
                return Ok(Started::Own(Run::replayed(
                    Arc::clone(definition),
                    &run_id,
                    Arc::clone(&catalog.config),
                )));
            }
        }
        let daemon = options
            .run_daemon()
            .unwrap_or(definition.options.is_daemon());
        let settings = RunSettings {
            // Relaxed: settings read once per run; no other data depends on them.
            capacity: self.inner.message_capacity.load(Ordering::Relaxed),
            budget: self.inner.message_budget.load(Ordering::Relaxed),
            keep_last: self.inner.keep_last.load(Ordering::Relaxed),
            read: caller == Caller::Reads,
            limited: false,
            max_attempts: if daemon {
                u32::MAX
            } else {
                1 + options
                    .run_retries()
                    .unwrap_or(definition.options.max_retries())
            },
            daemon,
            timeout: timeout.or(definition.options.default_timeout()),
            keys: (options.run_unique_key().is_some() || options.run_idempotency_key().is_some())
                .then(|| {
                    Box::new(RunKeys {
                        unique: options.run_unique_key().map(Into::into),
                        idempotency: options
                            .run_idempotency_key()
                            .map(|(key, retention)| (key.into(), retention)),
                        sink: None,
                    })
                }),
            key: None,
            first_attempt: 1,
        };
        let launched = launch(
            Arc::clone(definition),
            payload,
            Arc::clone(&catalog.config),
            settings,
            options.run_priority(),
            caller == Caller::Awaits,
            unique.map(|(runs, key)| (runs, (name.into(), key.into()))),
        );
        // The handler's first step may take a while: no look at the catalog is held
        // during it.
        drop(catalog);
        let (run, step) = launched?;
        if let Some(step) = step {
            first_step(step);
        }
        Ok(Started::Own(run))
    }

    /// Runs the worker `name` and waits for its result; its messages are discarded.
    ///
    /// The handler's future is polled once within this call's first poll, and moves into
    /// a task of its own only if it waits: a handler that finishes without waiting costs
    /// no task. Either way, dropping this future does not stop the run. While that first
    /// step computes without waiting, the caller's task does nothing else: `join!` of
    /// several `run`s takes their first steps one after another, and a `timeout` around
    /// `run` cannot fire before it ends. Use [`call`](Self::call) and
    /// [`WorkerHandle::await_result`] for a run on its own task from the start.
    ///
    /// # Errors
    ///
    /// Those of [`call`](Self::call), then the run's own: the handler's error,
    /// [`Error::TimedOut`], [`Error::Cancelled`] or [`Error::Panicked`].
    pub async fn run(&self, name: &str, payload: Option<Value>) -> Result<()> {
        // Bound first, so the options' temporary is not kept across the await below: the
        // future stays small, and moves without a `memcpy`.
        let started = self.start(name, payload, &CallOptions::new(), Caller::Awaits)?;
        match started {
            // Straight to the outcome: a handle would only be built to be taken apart, and
            // the run was started with nobody reading its messages.
            Started::Own(run) => {
                let mut charge = run.is_finished() && budget_due();
                poll_fn(|cx| {
                    if std::mem::take(&mut charge) {
                        // Pending when the budget is spent: a yield, after which the run's
                        // outcome is read without charging again.
                        ready!(tokio::task::coop::poll_proceed(cx)).made_progress();
                    }
                    run.poll_outcome(cx)
                })
                .await
            }
            // Boxed, with its options inside: `run`'s own future stays as small as it was.
            Started::Durable(payload) => Box::pin(self.run_durable(name, *payload)).await,
            attached => attached.into_handle().await_result().await,
        }
    }

    /// Cancels the live run with this id: its handler is stopped at its next `.await`
    /// and its caller gets [`Error::Cancelled`].
    ///
    /// # Errors
    ///
    /// [`Error::RunNotFound`] when no live run has this id (unknown, malformed, or
    /// already finished).
    pub async fn cancel(&self, run_id: &str) -> Result<()> {
        let cancelled = self
            .live_run(run_id)
            .map(|run| cancel(&run, CancelReason::Requested));
        match (cancelled, self.inner.queue.get()) {
            (Ok(true), _) => Ok(()),
            // Not live here (or ending as the cancel came): a stored job, waiting, about
            // to be retried, or running elsewhere.
            (_, Some(queue)) => self.cancel_job(queue, run_id).await,
            (Ok(false), None) => Err(run_not_found(run_id)),
            (Err(err), None) => Err(err),
        }
    }

    // ---- shutdown ----

    /// Stops the registry: refuses new calls, asks every running worker to stop
    /// ([`WorkerContext::cancelled`] resolves), waits up to the grace period for them to
    /// finish, then cancels the rest. Returns when no run is left; every run is counted in
    /// its statistics. Calling it again waits for the same end.
    ///
    /// A worker that blocks its thread instead of awaiting cannot be stopped, and keeps
    /// `shutdown` waiting.
    ///
    /// # Errors
    ///
    /// None today; the `Result` is part of the seed API.
    ///
    /// # Examples
    ///
    /// Wiring it to the process's own exit, Ctrl-C or SIGTERM:
    ///
    /// ```no_run
    /// use rustf_workers::prelude::*;
    ///
    /// # async fn serve() {}
    /// #[tokio::main]
    /// async fn main() -> Result<()> {
    ///     tokio::select! {
    ///         _ = serve() => {}
    ///         _ = tokio::signal::ctrl_c() => {}
    ///     }
    ///     WORKER::shutdown().await
    /// }
    /// ```
    pub async fn shutdown(&self) -> Result<()> {
        let live = &*self.inner.live;
        if let Some(queue) = self.inner.queue.get() {
            // No job is claimed from now on; the ones running end with the rest.
            queue.stop_claiming();
        }
        if live.advance(Phase::Stopping) {
            // Runs still waiting for a concurrency cap never start.
            for guard in live.admission.drain() {
                guard.end(Outcome::Cancelled(CancelReason::Shutdown));
            }
            for run in live.snapshot() {
                run.request_stop();
            }
        }
        let drained = live.wait_idle(|| self.in_flight());
        if tokio::time::timeout(self.shutdown_grace(), drained)
            .await
            .is_err()
        {
            live.advance(Phase::Aborting);
            for run in live.snapshot() {
                cancel(&run, CancelReason::Shutdown);
            }
            live.wait_idle(|| self.in_flight()).await;
        }
        if let Some(queue) = self.inner.queue.get() {
            // Every stopped job's outcome (handed back, for most) is stored before this
            // returns, unless the store stays out of reach for another grace period: then
            // those jobs' leases run out and they are rescued, as after a crash.
            if tokio::time::timeout(self.shutdown_grace(), queue.flush())
                .await
                .is_err()
            {
                log::error!(
                    target: "rustf_workers::queue",
                    "shutdown: job outcomes still unwritten after the grace period; \
                     their jobs will be rescued when their leases expire",
                );
            }
            // Offline from now on, as its listing shows; a failure to say so only leaves
            // the node to go offline when its beats stop.
            if let Err(err) = queue.stop_node().await {
                log::warn!(target: "rustf_workers::queue", "shutdown: marking this node stopped: {err}");
            }
        }
        Ok(())
    }

    /// Whether [`shutdown`](Self::shutdown) has started.
    pub fn is_shutting_down(&self) -> bool {
        self.inner.live.phase() != Phase::Open
    }
}

fn not_registered(name: &str) -> Error {
    Error::NotRegistered {
        name: name.to_owned(),
    }
}

fn run_not_found(run_id: &str) -> Error {
    Error::RunNotFound {
        run_id: run_id.to_owned(),
    }
}

impl Default for WorkerRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for WorkerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WorkerRegistry")
            .field("definitions", &self.inner.catalog.load().definitions.len())
            .field("in_flight", &self.in_flight())
            .field("shutting_down", &self.is_shutting_down())
            .finish()
    }
}
