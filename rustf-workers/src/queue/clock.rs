//! The queue's clock: this machine's, or the store's when it has one.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use super::JobStore;
use crate::Result;

/// The store's clock as this process reads it: the wall clock when the queue was opened,
/// advanced by tokio's clock (so tests on tokio's paused clock move the queue's time too),
/// plus the offset to the store's own clock when it has one ([`JobStore::clock_ms`]: a
/// database server's, which every node then agrees on), sampled with each heartbeat.
pub(crate) struct Clock {
    base_ms: i64,
    start: Instant,
    /// The store's clock minus this machine's, in ms, as last sampled.
    offset_ms: AtomicI64,
}

impl Clock {
    pub(crate) fn new() -> Self {
        let base = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            base_ms: i64::try_from(base.as_millis()).unwrap_or(i64::MAX),
            start: Instant::now(),
            offset_ms: AtomicI64::new(0),
        }
    }

    /// This machine's time on this clock, without the store's offset.
    fn local_ms(&self) -> i64 {
        let elapsed = i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX);
        self.base_ms.saturating_add(elapsed)
    }

    pub(crate) fn now_ms(&self) -> i64 {
        // Relaxed: one value, read whole; a sample a beat old is as good.
        self.local_ms()
            .saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// `at`, a time on this machine's clock, on the store's.
    pub(crate) fn at_ms(&self, at: SystemTime) -> i64 {
        let since = at.duration_since(UNIX_EPOCH).unwrap_or_default();
        i64::try_from(since.as_millis())
            .unwrap_or(i64::MAX)
            .saturating_add(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Takes the store's clock as `store_ms`, read between local times `sent` and
    /// `received`: the reading is taken to be from midway.
    fn sample(&self, store_ms: i64, sent: i64, received: i64) {
        let midway = sent + (received - sent) / 2;
        self.offset_ms
            .store(store_ms.saturating_sub(midway), Ordering::Relaxed);
    }

    /// Samples the store's clock, if it has one.
    pub(crate) async fn sync(&self, store: &dyn JobStore) -> Result<()> {
        let sent = self.local_ms();
        if let Some(store_ms) = store.clock_ms().await? {
            self.sample(store_ms, sent, self.local_ms());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::Clock;

    #[test]
    fn the_store_clock_is_taken_as_read_midway_between_asking_and_hearing() {
        let clock = Clock::new();
        let local = clock.local_ms();
        assert!(
            (clock.now_ms() - local).abs() <= 1,
            "no offset before a sample"
        );
        // The store is 10 s ahead; the reading took 40 ms there and back.
        clock.sample(local + 10_000 + 20, local, local + 40);
        assert_eq!(clock.offset_ms.load(Ordering::Relaxed), 10_000);
        assert!(clock.now_ms() - local >= 10_000);
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(1_000);
        assert_eq!(clock.at_ms(at), 11_000, "a wall time moves with the offset");
        // Behind, too.
        clock.sample(local - 5_000, local, local);
        assert_eq!(clock.offset_ms.load(Ordering::Relaxed), -5_000);
    }
}
