//! The node's clock: wall-clock milliseconds, never going backwards.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, monotonic: if the system clock steps back, time stands
/// still until it catches up. Ops carry this as their creation time, so nodes compare it with
/// their own; it is never used to order or resolve anything.
#[derive(Debug, Default)]
pub(crate) struct Clock {
    last: AtomicU64,
}

impl Clock {
    pub(crate) fn now_ms(&self) -> u64 {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let prev = self.last.fetch_max(wall, Ordering::Relaxed);
        prev.max(wall)
    }
}
