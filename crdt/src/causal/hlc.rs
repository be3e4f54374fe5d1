//! Hybrid logical clocks (Kulkarni et al., 2014) for last-writer-wins timestamps.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::CausalityError;

/// A hybrid logical timestamp: wall-clock milliseconds plus a logical counter that orders
/// events within one millisecond and keeps the clock monotonic when the wall clock is not.
///
/// Timestamps are totally ordered by `(physical_ms, logical)`. Two writes may carry equal
/// timestamps only if they come from different replicas; the registers that use them break
/// that tie by replica id, so two writes never compare equal.
///
/// ```
/// use gossamer_crdt::Hlc;
///
/// assert!(Hlc::new(5, 0) < Hlc::new(5, 1));
/// assert!(Hlc::new(5, 9) < Hlc::new(6, 0));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(from = "(u64, u32)", into = "(u64, u32)")]
pub struct Hlc {
    /// Milliseconds since the Unix epoch, as far as the issuing replica knew.
    pub physical_ms: u64,
    /// Orders events that share `physical_ms`.
    pub logical: u32,
}

impl Hlc {
    /// The timestamp `(physical_ms, logical)`.
    ///
    /// ```
    /// use gossamer_crdt::Hlc;
    ///
    /// let t = Hlc::new(1_700_000_000_000, 3);
    /// assert_eq!((t.physical_ms, t.logical), (1_700_000_000_000, 3));
    /// assert_eq!(Hlc::new(0, 0), Hlc::default());
    /// ```
    pub const fn new(physical_ms: u64, logical: u32) -> Self {
        Self { physical_ms, logical }
    }

    /// The smallest timestamp strictly greater than `self`.
    ///
    /// ```
    /// use gossamer_crdt::Hlc;
    ///
    /// let t = Hlc::new(5, 0);
    /// assert_eq!(t.successor(), Hlc::new(5, 1));
    /// assert!(t < t.successor());
    /// // When the logical counter is exhausted, the next millisecond is borrowed.
    /// assert_eq!(Hlc::new(5, u32::MAX).successor(), Hlc::new(6, 0));
    /// ```
    pub const fn successor(self) -> Self {
        match self.logical.checked_add(1) {
            Some(l) => Self::new(self.physical_ms, l),
            // The logical counter is exhausted: borrow the next millisecond.
            None => Self::new(self.physical_ms.saturating_add(1), 0),
        }
    }
}

impl From<(u64, u32)> for Hlc {
    fn from((p, l): (u64, u32)) -> Self {
        Self::new(p, l)
    }
}

impl From<Hlc> for (u64, u32) {
    fn from(h: Hlc) -> Self {
        (h.physical_ms, h.logical)
    }
}

impl fmt::Debug for Hlc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", self.physical_ms, self.logical)
    }
}

/// The hybrid logical clock of one replica: issues strictly increasing [`Hlc`] timestamps
/// and advances past every remote timestamp it observes.
///
/// The physical time is passed in (this crate reads no clocks). A remote timestamp more than
/// `max_drift_ms` ahead of our physical time is refused with
/// [`CausalityError::ClockAhead`], so one replica with a broken clock cannot drag every
/// other replica's clock into the future.
///
/// ```
/// use gossamer_crdt::{Hlc, HlcClock};
///
/// let mut clock = HlcClock::new(60_000);
/// let a = clock.tick(1_000);
/// let b = clock.tick(900); // the wall clock stepped back: still monotonic
/// assert!(b > a);
/// clock.observe(Hlc::new(5_000, 0), 1_000).unwrap();
/// assert!(clock.tick(1_000) > Hlc::new(5_000, 0));
/// assert!(clock.observe(Hlc::new(10_000_000, 0), 1_000).is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HlcClock {
    last: Hlc,
    max_drift_ms: u64,
}

impl HlcClock {
    /// A clock that refuses remote timestamps more than `max_drift_ms` ahead of local time.
    ///
    /// ```
    /// use gossamer_crdt::{CausalityError, Hlc, HlcClock};
    ///
    /// let mut clock = HlcClock::new(1_000);
    /// assert_eq!(clock.last(), Hlc::new(0, 0));
    /// // At local time 5 s, a remote timestamp up to 6 s is accepted, and nothing later.
    /// assert!(clock.observe(Hlc::new(6_000, 0), 5_000).is_ok());
    /// assert!(matches!(clock.observe(Hlc::new(6_001, 0), 5_000), Err(CausalityError::ClockAhead { .. })));
    /// ```
    pub const fn new(max_drift_ms: u64) -> Self {
        Self { last: Hlc::new(0, 0), max_drift_ms }
    }

    /// The last timestamp issued or observed.
    ///
    /// ```
    /// use gossamer_crdt::{Hlc, HlcClock};
    ///
    /// let mut clock = HlcClock::new(60_000);
    /// let issued = clock.tick(1_000);
    /// assert_eq!(clock.last(), issued);
    /// let observed = clock.observe(Hlc::new(2_000, 7), 1_000).unwrap();
    /// assert_eq!(clock.last(), observed);
    /// assert_eq!(observed, Hlc::new(2_000, 8));
    /// ```
    pub const fn last(&self) -> Hlc {
        self.last
    }

    /// Issues a timestamp for a local event at wall-clock time `now_ms`; always greater than
    /// every timestamp issued or observed before, even if `now_ms` went backwards.
    ///
    /// ```
    /// use gossamer_crdt::{Hlc, HlcClock};
    ///
    /// let mut clock = HlcClock::new(60_000);
    /// assert_eq!(clock.tick(1_000), Hlc::new(1_000, 0));
    /// // Within one millisecond, the logical counter orders the events.
    /// assert_eq!(clock.tick(1_000), Hlc::new(1_000, 1));
    /// // The wall clock stepped back: the clock stays ahead of what it issued.
    /// assert_eq!(clock.tick(400), Hlc::new(1_000, 2));
    /// assert_eq!(clock.tick(1_500), Hlc::new(1_500, 0));
    /// ```
    pub fn tick(&mut self, now_ms: u64) -> Hlc {
        self.last = if now_ms > self.last.physical_ms { Hlc::new(now_ms, 0) } else { self.last.successor() };
        self.last
    }

    /// Advances past a timestamp received from another replica.
    ///
    /// # Errors
    /// [`CausalityError::ClockAhead`] when `remote` is more than `max_drift_ms` ahead of
    /// `now_ms`; the clock is left unchanged.
    ///
    /// ```
    /// use gossamer_crdt::{CausalityError, Hlc, HlcClock};
    ///
    /// let mut clock = HlcClock::new(60_000);
    /// clock.tick(1_000);
    /// // A remote timestamp ahead of ours, within the drift: we move past it.
    /// assert_eq!(clock.observe(Hlc::new(3_000, 4), 1_000), Ok(Hlc::new(3_000, 5)));
    /// assert!(clock.tick(1_000) > Hlc::new(3_000, 4));
    /// // Too far ahead: a typed error, and the clock does not move.
    /// let before = clock.last();
    /// let err = clock.observe(Hlc::new(100_000, 0), 1_000).unwrap_err();
    /// assert_eq!(err, CausalityError::ClockAhead { remote_ms: 100_000, local_ms: 1_000, max_drift_ms: 60_000 });
    /// assert_eq!(clock.last(), before);
    /// ```
    pub fn observe(&mut self, remote: Hlc, now_ms: u64) -> Result<Hlc, CausalityError> {
        if remote.physical_ms > now_ms.saturating_add(self.max_drift_ms) {
            return Err(CausalityError::ClockAhead {
                remote_ms: remote.physical_ms,
                local_ms: now_ms,
                max_drift_ms: self.max_drift_ms,
            });
        }
        let wall = Hlc::new(now_ms, 0);
        let high = self.last.max(remote);
        self.last = if wall > high { wall } else { high.successor() };
        Ok(self.last)
    }
}

impl Default for HlcClock {
    /// A clock that tolerates one minute of drift.
    fn default() -> Self {
        Self::new(60_000)
    }
}
