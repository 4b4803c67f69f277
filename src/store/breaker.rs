//! A circuit breaker per memcached server, so a dead or hung server costs one timeout per
//! interval instead of one per request (and per Kerberos realm, for password logins: see
//! `krb5::kdc_guard`).
//!
//! Closed: every operation goes through; failures in a row are counted, and any success resets
//! the count. After `threshold` failures in a row the breaker opens for `interval`: operations
//! are refused at once, without touching the network. After the interval exactly one caller is
//! let through as a probe (half-open); its success closes the breaker, its failure re-opens it
//! for another interval.
//!
//! Lock-free: a few atomics, read on every operation. The clock is passed in (`Instant`) so the
//! state machine is tested without sleeping.
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Failures in a row (timeouts, connect errors, broken or malformed replies) that open it.
pub const FAILURE_THRESHOLD: u32 = 3;
/// How long it stays open before one probe is let through.
pub const OPEN_INTERVAL: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Refusing operations until the interval is over.
    Open,
    /// The interval is over: the next caller (or the one already under way) is the probe.
    HalfOpen,
}

#[derive(Debug)]
pub struct Breaker {
    /// Times are kept as nanoseconds since `base` (plus one, so that 0 can mean "closed").
    base: Instant,
    threshold: u32,
    interval: Duration,
    failures: AtomicU32,
    open_until: AtomicU64,
    probing: AtomicBool,
}

impl Breaker {
    /// A closed breaker with the default policy. `base` is any instant not after the first
    /// `now` given to it (`Instant::now()` at creation in production).
    pub fn new(base: Instant) -> Breaker {
        Breaker::with_policy(base, FAILURE_THRESHOLD, OPEN_INTERVAL)
    }

    pub fn with_policy(base: Instant, threshold: u32, interval: Duration) -> Breaker {
        Breaker {
            base,
            threshold: threshold.max(1),
            interval,
            failures: AtomicU32::new(0),
            open_until: AtomicU64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    fn ticks(&self, now: Instant) -> u64 {
        let nanos = now.saturating_duration_since(self.base).as_nanos();
        u64::try_from(nanos)
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn ticks_after(&self, now: Instant, span: Duration) -> u64 {
        let span = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
        self.ticks(now).saturating_add(span)
    }

    /// May an operation go to this server now? `None` means refused (the circuit is open, or
    /// half-open with a probe already under way). The permit must be settled with
    /// [`Permit::success`] or [`Permit::failure`]; dropping it unsettled gives no verdict.
    pub fn try_acquire(&self, now: Instant) -> Option<Permit<'_>> {
        let until = self.open_until.load(Ordering::Acquire);
        if until == 0 {
            return Some(Permit {
                breaker: self,
                probe: false,
            });
        }
        if self.ticks(now) < until {
            return None;
        }
        self.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .ok()
            .map(|_| Permit {
                breaker: self,
                probe: true,
            })
    }

    pub fn state(&self, now: Instant) -> BreakerState {
        match self.open_until.load(Ordering::Acquire) {
            0 => BreakerState::Closed,
            until if self.ticks(now) < until => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    /// Failures in a row so far (for metrics).
    pub fn consecutive_failures(&self) -> u32 {
        self.failures.load(Ordering::Relaxed)
    }

    fn record_success(&self) {
        self.failures.store(0, Ordering::Relaxed);
        self.open_until.store(0, Ordering::Release);
    }

    /// Returns whether this failure opened the breaker.
    fn record_failure(&self, probe: bool, now: Instant) -> bool {
        let failures = self
            .failures
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let until = self.ticks_after(now, self.interval);
        if probe {
            self.open_until.store(until, Ordering::Release);
            true
        } else if failures >= self.threshold {
            // Only the failure that trips it sets the window: stragglers that were already
            // under way when it opened must not keep pushing the probe further away.
            self.open_until
                .compare_exchange(0, until, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        } else {
            false
        }
    }
}

/// Leave to run one operation against a server; settle it with the outcome.
#[must_use = "settle the permit with success() or failure()"]
#[derive(Debug)]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Permit<'_> {
    /// Whether this operation is the half-open probe.
    pub fn is_probe(&self) -> bool {
        self.probe
    }

    pub fn success(self) {
        self.breaker.record_success();
    }

    /// Returns whether this failure opened the breaker (for metrics).
    pub fn failure(self, now: Instant) -> bool {
        self.breaker.record_failure(self.probe, now)
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        // Settling goes through here too; releasing the probe slot last means the next probe
        // can only start once the verdict of this one is visible.
        if self.probe {
            self.breaker.probing.store(false, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn at(base: Instant, ms: u64) -> Instant {
        base + MS * ms as u32
    }

    fn fail(b: &Breaker, now: Instant) {
        b.try_acquire(now).expect("admitted").failure(now);
    }

    #[test]
    fn stays_closed_below_the_threshold_and_success_resets_the_count() {
        let t0 = Instant::now();
        let b = Breaker::new(t0);
        fail(&b, at(t0, 1));
        fail(&b, at(t0, 2));
        b.try_acquire(at(t0, 3)).unwrap().success();
        fail(&b, at(t0, 4));
        fail(&b, at(t0, 5));
        assert_eq!(b.state(at(t0, 6)), BreakerState::Closed);
        assert_eq!(b.consecutive_failures(), 2);
        assert!(b.try_acquire(at(t0, 6)).is_some());
    }

    #[test]
    fn opens_after_three_failures_then_lets_one_probe_through() {
        let t0 = Instant::now();
        let b = Breaker::new(t0);
        for ms in 0..3 {
            fail(&b, at(t0, ms));
        }
        // Opened at t0+2ms for 2 s.
        assert_eq!(b.state(at(t0, 3)), BreakerState::Open);
        assert!(b.try_acquire(at(t0, 3)).is_none());
        assert!(b.try_acquire(at(t0, 2001)).is_none());

        assert_eq!(b.state(at(t0, 2002)), BreakerState::HalfOpen);
        let probe = b.try_acquire(at(t0, 2002)).expect("the probe");
        assert!(probe.is_probe());
        assert!(
            b.try_acquire(at(t0, 2003)).is_none(),
            "only one probe at a time"
        );
        assert!(
            b.try_acquire(at(t0, 5000)).is_none(),
            "a slow probe still blocks others"
        );
        probe.success();

        assert_eq!(b.state(at(t0, 2004)), BreakerState::Closed);
        let normal = b.try_acquire(at(t0, 2004)).unwrap();
        assert!(!normal.is_probe());
        normal.success();
        assert_eq!(b.consecutive_failures(), 0);
    }

    #[test]
    fn a_failed_probe_reopens_for_a_full_interval() {
        let t0 = Instant::now();
        let b = Breaker::new(t0);
        for ms in 0..3 {
            fail(&b, at(t0, ms));
        }
        let probe = b.try_acquire(at(t0, 2500)).unwrap();
        probe.failure(at(t0, 2700));
        assert!(b.try_acquire(at(t0, 2701)).is_none());
        assert!(b.try_acquire(at(t0, 4699)).is_none());
        let probe = b
            .try_acquire(at(t0, 4700))
            .expect("next probe after the new interval");
        probe.success();
        assert!(b.try_acquire(at(t0, 4701)).is_some());
    }

    #[test]
    fn an_unsettled_probe_frees_the_slot_without_a_verdict() {
        let t0 = Instant::now();
        let b = Breaker::new(t0);
        for ms in 0..3 {
            fail(&b, at(t0, ms));
        }
        drop(b.try_acquire(at(t0, 2100)).unwrap());
        assert_eq!(b.state(at(t0, 2101)), BreakerState::HalfOpen);
        assert!(b.try_acquire(at(t0, 2101)).unwrap().is_probe());
    }

    #[test]
    fn stragglers_do_not_extend_the_open_window() {
        let t0 = Instant::now();
        let b = Breaker::new(t0);
        let late: Vec<_> = (0..5).map(|_| b.try_acquire(t0).unwrap()).collect();
        let mut late = late.into_iter();
        for ms in 0..3 {
            late.next().unwrap().failure(at(t0, ms));
        }
        // Two operations admitted before it opened fail a second later.
        for p in late {
            p.failure(at(t0, 1000));
        }
        assert!(b.try_acquire(at(t0, 2002)).unwrap().is_probe());
    }

    #[test]
    fn a_success_from_before_the_opening_closes_it() {
        let t0 = Instant::now();
        let b = Breaker::new(t0);
        let early = b.try_acquire(t0).unwrap();
        for ms in 0..3 {
            fail(&b, at(t0, ms));
        }
        early.success();
        assert_eq!(b.state(at(t0, 10)), BreakerState::Closed);
    }

    #[test]
    fn policy_is_configurable() {
        let t0 = Instant::now();
        let b = Breaker::with_policy(t0, 1, Duration::from_millis(50));
        fail(&b, t0);
        assert!(b.try_acquire(at(t0, 49)).is_none());
        assert!(b.try_acquire(at(t0, 50)).is_some());
    }

    #[test]
    fn concurrent_callers_get_exactly_one_probe() {
        let t0 = Instant::now();
        let b = Breaker::new(t0);
        for ms in 0..3 {
            fail(&b, at(t0, ms));
        }
        let now = at(t0, 3000);
        let probes = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| match b.try_acquire(now) {
                        Some(p) => {
                            std::mem::forget(p);
                            1
                        }
                        None => 0,
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<u32>()
        });
        assert_eq!(probes, 1);
    }
}
