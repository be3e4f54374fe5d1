//! Timings and bounds of the failure detector.

use std::num::{NonZeroU8, NonZeroUsize};
use std::time::Duration;

use super::{Backoff, MembershipError};
use crate::net::MIN_DATAGRAM_SIZE;

/// How SWIM probes, suspects and gossips. [`Config::lan`] sizes it for a cluster; the
/// default is `Config::lan(32)`: a household or an office.
///
/// Timings for a LAN (memberlist's `DefaultLANConfig`, which foca also follows), with `n`
/// the expected number of members:
///
/// | knob | value | why |
/// |---|---|---|
/// | `probe_period` | 1 s | each period every member pings one other (round-robin over a shuffle), so a dead member is first probed within about one period |
/// | `probe_rtt` | 500 ms | direct ack deadline, then `num_indirect_probes` = 3 members ping it for us; generous for a LAN because the first datagram to a peer may wait for a QUIC handshake |
/// | `suspect_to_down_after` | 4 · max(1, log10 n) · `probe_period` | 4 s for up to 10 members, 6 s for 32, 12 s for 1000: time for a slow member to hear it is suspected and refute |
/// | `max_transmissions` | 4 · ⌈log10(n + 1)⌉ | how often each update is piggybacked: 4 up to 9 members, 8 up to 99, 12 up to 999, 16 at 1000 — enough for an epidemic to reach everyone w.h.p. |
/// | `gossip_interval` / `gossip_fanout` | 200 ms / 3 | updates also go out on their own, not only with probes (only while there are updates) |
/// | `announce_interval` | 10 s | ask one random member for a feed of members: fills in the roster of large clusters |
/// | `announce_down_interval` | 30 s | announce to 2 members believed down: heals partitions |
/// | `remove_down_after` | 24 h | how long a down identity is remembered (rejoins use a new generation, so this only bounds memory) |
/// | `max_datagram_size` | 1162 | [`MIN_DATAGRAM_SIZE`]: every packet fits one QUIC datagram on any path |
/// | `retry_base` / `retry_max` | 1 s / 30 s | [`Backoff`] for re-announcing while alone, and for the driver's redials |
/// | `max_members` | max(1024, 4 · n) | members (down ones included) this node will remember; beyond it, gossip about members it does not know yet is ignored, so a peer cannot grow the list without bound |
///
/// So a member that stops answering is suspected within about two probe periods and
/// declared down `suspect_to_down_after` later; the tests measure it.
///
/// All members of a cluster should use the same `max_datagram_size`; the other knobs may
/// differ between members.
///
/// ```
/// use std::time::Duration;
/// use gossamer_sync::membership::Config;
///
/// let small = Config::lan(5);
/// assert_eq!(small.suspect_to_down_after, Duration::from_secs(4));
/// assert_eq!(small.max_transmissions, 4);
/// let large = Config::lan(1000);
/// assert_eq!(large.suspect_to_down_after, Duration::from_secs(12));
/// assert_eq!(large.max_transmissions, 16);
/// assert!(large.validate().is_ok());
/// assert!(Config { max_datagram_size: 1500, ..Config::default() }.validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// How often this member probes one other member.
    pub probe_period: Duration,
    /// How long to wait for a direct ack before asking others to probe indirectly. Must be
    /// shorter than `probe_period`.
    pub probe_rtt: Duration,
    /// How many members are asked to probe indirectly (and how many get an update when it
    /// must spread fast, e.g. a refutation).
    pub num_indirect_probes: usize,
    /// How many times each cluster update is piggybacked before it is dropped.
    pub max_transmissions: u8,
    /// How long a suspected member has to refute before it is declared down.
    pub suspect_to_down_after: Duration,
    /// How long a down identity is remembered.
    pub remove_down_after: Duration,
    /// Period of gossip rounds that carry pending updates on their own.
    pub gossip_interval: Duration,
    /// Members each gossip round goes to.
    pub gossip_fanout: usize,
    /// Period of announcing to one random member (which answers with a feed of members).
    pub announce_interval: Duration,
    /// Period of announcing to two members believed down, to heal partitions.
    pub announce_down_interval: Duration,
    /// Largest datagram sent or accepted. At most [`MIN_DATAGRAM_SIZE`].
    pub max_datagram_size: usize,
    /// First delay of a [`Backoff`] (re-announcing while alone; redialing a peer).
    pub retry_base: Duration,
    /// Cap of a [`Backoff`].
    pub retry_max: Duration,
    /// How many other members (down ones included, until forgotten) this node remembers.
    /// While it knows this many, updates about members it does not know are dropped from
    /// incoming packets before foca sees them; members it knows, and every packet's sender
    /// (an authenticated, trusted node), are still handled. At least 1.
    pub max_members: usize,
}

/// Smallest `max_datagram_size` accepted: room for the largest header and a few updates.
const MIN_MAX_DATAGRAM_SIZE: usize = 512;

impl Config {
    /// The LAN configuration for a cluster of about `expected_members` members (see the
    /// table above). Over-estimating is safe: it only slows down detection a little.
    ///
    /// ```
    /// use gossamer_sync::membership::Config;
    /// assert_eq!(Config::lan(32), Config::default());
    /// ```
    pub fn lan(expected_members: u32) -> Self {
        let n = f64::from(expected_members.max(1));
        let probe_period = Duration::from_secs(1);
        // Both formulas are small positive numbers for any u32: no overflow, no NaN.
        let max_transmissions = (4.0 * (n + 1.0).log10().ceil()).clamp(1.0, 255.0) as u8;
        // Rounded to the millisecond so that, e.g., 1000 members give exactly 12 s.
        let suspicion_ms = (4.0 * n.log10().max(1.0) * probe_period.as_secs_f64() * 1000.0).round();
        let suspicion = Duration::from_millis(suspicion_ms as u64);
        let max_members = usize::try_from(expected_members).map_or(usize::MAX, |n| n.saturating_mul(4)).max(1024);
        Self {
            probe_period,
            probe_rtt: Duration::from_millis(500),
            num_indirect_probes: 3,
            max_transmissions,
            suspect_to_down_after: suspicion,
            remove_down_after: Duration::from_secs(24 * 60 * 60),
            gossip_interval: Duration::from_millis(200),
            gossip_fanout: 3,
            announce_interval: Duration::from_secs(10),
            announce_down_interval: Duration::from_secs(30),
            max_datagram_size: MIN_DATAGRAM_SIZE,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(30),
            max_members,
        }
    }

    /// Checks that every value is in range.
    ///
    /// # Errors
    /// [`MembershipError::InvalidConfig`] naming the first value that is not.
    ///
    /// ```
    /// use std::time::Duration;
    /// use gossamer_sync::membership::Config;
    ///
    /// let c = Config { probe_rtt: Duration::from_secs(2), ..Config::default() };
    /// assert!(c.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), MembershipError> {
        let zero = Duration::ZERO;
        let checks = [
            (self.probe_period > zero, "probe_period must be positive"),
            (self.probe_rtt > zero && self.probe_rtt < self.probe_period, "probe_rtt must be in (0, probe_period)"),
            (self.num_indirect_probes > 0, "num_indirect_probes must be positive"),
            (self.max_transmissions > 0, "max_transmissions must be positive"),
            (self.suspect_to_down_after > zero, "suspect_to_down_after must be positive"),
            (self.remove_down_after > zero, "remove_down_after must be positive"),
            (self.gossip_interval > zero, "gossip_interval must be positive"),
            (self.gossip_fanout > 0, "gossip_fanout must be positive"),
            (self.announce_interval > zero, "announce_interval must be positive"),
            (self.announce_down_interval > zero, "announce_down_interval must be positive"),
            (
                (MIN_MAX_DATAGRAM_SIZE..=MIN_DATAGRAM_SIZE).contains(&self.max_datagram_size),
                "max_datagram_size must be in 512..=MIN_DATAGRAM_SIZE",
            ),
            (self.retry_base > zero && self.retry_base <= self.retry_max, "retry_base must be in (0, retry_max]"),
            (self.max_members > 0, "max_members must be positive"),
        ];
        match checks.iter().find(|(ok, _)| !ok) {
            Some((_, what)) => Err(MembershipError::InvalidConfig(what)),
            None => Ok(()),
        }
    }

    /// A [`Backoff`] with this configuration's `retry_base` and `retry_max`, its jitter drawn
    /// from `seed`. The node driver keeps one per peer it fails to reach.
    ///
    /// ```
    /// use gossamer_sync::membership::Config;
    ///
    /// let mut backoff = Config::default().backoff(7);
    /// assert!(backoff.next_delay() <= Config::default().retry_base);
    /// ```
    pub fn backoff(&self, seed: u64) -> Backoff {
        Backoff::new(self.retry_base, self.retry_max, seed)
    }

    /// The foca configuration. Call only on a validated config.
    pub(crate) fn to_foca(&self) -> Result<foca::Config, MembershipError> {
        let nonzero = |n: usize, what| NonZeroUsize::new(n).ok_or(MembershipError::InvalidConfig(what));
        Ok(foca::Config {
            probe_period: self.probe_period,
            probe_rtt: self.probe_rtt,
            num_indirect_probes: nonzero(self.num_indirect_probes, "num_indirect_probes must be positive")?,
            max_transmissions: NonZeroU8::new(self.max_transmissions)
                .ok_or(MembershipError::InvalidConfig("max_transmissions must be positive"))?,
            suspect_to_down_after: self.suspect_to_down_after,
            remove_down_after: Some(self.remove_down_after),
            max_packet_size: nonzero(self.max_datagram_size, "max_datagram_size must be positive")?,
            // A member the cluster declared down keeps talking until it hears so; telling it
            // lets it renew its identity at once instead of never.
            notify_down_members: true,
            periodic_announce: Some(foca::PeriodicParams {
                frequency: self.announce_interval,
                num_members: NonZeroUsize::MIN,
            }),
            periodic_announce_to_down_members: Some(foca::PeriodicParams {
                frequency: self.announce_down_interval,
                num_members: NonZeroUsize::MIN.saturating_add(1),
            }),
            periodic_gossip: Some(foca::PeriodicParams {
                frequency: self.gossip_interval,
                num_members: nonzero(self.gossip_fanout, "gossip_fanout must be positive")?,
            }),
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::lan(32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lan_scales_with_the_cluster() {
        let cases = [(1, 4, 4_000), (5, 4, 4_000), (9, 4, 4_000), (10, 8, 4_000), (32, 8, 6_021), (1000, 16, 12_000)];
        for (n, tx, suspicion_ms) in cases {
            let c = Config::lan(n);
            assert_eq!(c.max_transmissions, tx, "n = {n}");
            assert_eq!(c.suspect_to_down_after.as_millis(), suspicion_ms, "n = {n}");
            assert_eq!(c.max_members, (4 * n as usize).max(1024), "n = {n}");
            c.validate().unwrap();
            c.to_foca().unwrap();
        }
        // Absurd sizes stay in range.
        assert!(Config::lan(0).validate().is_ok());
        assert!(Config::lan(u32::MAX).validate().is_ok());
    }

    #[test]
    fn validate_names_the_bad_value() {
        let bad = Config { gossip_fanout: 0, ..Config::default() };
        assert_eq!(bad.validate(), Err(MembershipError::InvalidConfig("gossip_fanout must be positive")));
        let bad = Config { max_datagram_size: MIN_DATAGRAM_SIZE + 1, ..Config::default() };
        assert!(bad.validate().is_err());
        let bad = Config { retry_base: Duration::from_secs(60), ..Config::default() };
        assert!(bad.validate().is_err());
        let bad = Config { max_members: 0, ..Config::default() };
        assert_eq!(bad.validate(), Err(MembershipError::InvalidConfig("max_members must be positive")));
    }
}
