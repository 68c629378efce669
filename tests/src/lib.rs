//! Helpers shared by the integration tests, and a crate whose `src/workers/` is compiled
//! by `auto_workers!()` (the fixture the registration tests call by name).

rustf_workers::auto_workers!();

pub mod nodes;
/// A PostgreSQL server for the tests, and a fresh database for each test.
pub use rustf_workers_tests_postgres as postgres;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A small deterministic random source, so a failing stress run can be replayed from its
/// seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a non-zero seed.
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    /// The next number (xorshift64*).
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

/// Counts live instances: clone one into a handler's future, and `live()` tells whether
/// that future has been dropped.
#[derive(Debug, Clone, Default)]
pub struct Tracker(Arc<AtomicUsize>);

/// One live instance of a [`Tracker`].
#[derive(Debug)]
pub struct Tracked(Arc<AtomicUsize>);

impl Tracker {
    /// A new instance; counted until dropped.
    pub fn track(&self) -> Tracked {
        self.0.fetch_add(1, Ordering::SeqCst);
        Tracked(Arc::clone(&self.0))
    }

    /// How many instances are alive.
    pub fn live(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Asserts that `wait` lies in `low_ms..=high_ms`: one step of a jittered backoff.
#[track_caller]
pub fn assert_wait_within(wait: std::time::Duration, low_ms: u64, high_ms: u64) {
    let (low, high) = (
        std::time::Duration::from_millis(low_ms),
        std::time::Duration::from_millis(high_ms),
    );
    assert!(
        wait >= low && wait <= high,
        "waited {wait:?}, expected {low:?} to {high:?}"
    );
}

/// Silences the default panic hook for panics raised on purpose by test workers, keeping
/// every other panic (a failing assertion) visible.
/// Installed once per test binary.
pub fn quiet_worker_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let text = info
                .payload()
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| info.payload().downcast_ref::<String>().cloned())
                .unwrap_or_default();
            if !text.starts_with("worker panic:") {
                default(info);
            }
        }));
    });
}

/// The README's code, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;

/// The guide's code, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/guide.md")]
pub struct GuideDoctests;

/// The registration guide's code, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/registration.md")]
pub struct RegistrationDoctests;

/// The HTTP guide's code, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/http.md")]
pub struct HttpDoctests;

/// The policies guide's code, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/policies.md")]
pub struct PoliciesDoctests;

/// The durable queue's guide, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../docs/queue.md")]
pub struct QueueDoctests;
