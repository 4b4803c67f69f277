//! What a realm whose KDC does not answer may cost httpd.
//!
//! libkrb5 has no deadline of its own: MIT 1.20 waits 25–27 s on a KDC that takes connections
//! and never answers, retries included, and a password login holds its worker all that time. Unbounded, an outage of the
//! KDC would take every worker, and with them the requests that only ride a cookie. So, per
//! process:
//! - at most `limit` password checks wait on a KDC at once; a login beyond that is answered
//!   at once (503), not queued behind them;
//! - a realm whose KDC did not answer is not asked again for [`UNREACHABLE_INTERVAL`] (a
//!   circuit breaker, then one probe), so an outage costs one wait per interval, not one per
//!   login.
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::store::breaker::{Breaker, Permit};

/// How long a realm whose KDC did not answer is left alone; also the `Retry-After` given.
pub const UNREACHABLE_INTERVAL: Duration = Duration::from_secs(5);

pub struct KdcGuard {
    limit: usize,
    waiting: AtomicUsize,
    base: Instant,
    /// One breaker per realm asked. Realms come from the configuration, so this stays as
    /// small as the configuration; breakers live as long as the process (hence `'static`:
    /// a permit borrows its breaker across the wait, outside the lock).
    realms: Mutex<Vec<(String, &'static Breaker)>>,
}

pub enum Admission<'g> {
    Ask(Asking<'g>),
    /// `limit` password checks of this process already wait on a KDC.
    Busy,
    /// The realm's KDC did not answer a moment ago, or a probe of it is under way.
    RecentlyUnreachable,
}

/// Leave to ask a realm's KDC; settle it with what happened. Dropped unsettled (the keytab
/// or libkrb5 failed, not the KDC), it frees the slot and gives the breaker no verdict.
#[must_use = "settle with answered() or unreachable()"]
pub struct Asking<'g> {
    guard: &'g KdcGuard,
    permit: Option<Permit<'static>>,
}

impl KdcGuard {
    /// `limit`: password checks that may wait on KDCs at once (at least one).
    pub fn new(limit: usize) -> KdcGuard {
        KdcGuard {
            limit: limit.max(1),
            waiting: AtomicUsize::new(0),
            base: Instant::now(),
            realms: Mutex::new(Vec::new()),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    pub fn admit(&self, realm: &str, now: Instant) -> Admission<'_> {
        let Some(permit) = self.breaker(realm).try_acquire(now) else {
            return Admission::RecentlyUnreachable;
        };
        let taken = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |waiting| {
                (waiting < self.limit).then_some(waiting + 1)
            });
        if taken.is_err() {
            // No verdict on the realm: its KDC was not asked.
            drop(permit);
            return Admission::Busy;
        }
        Admission::Ask(Asking {
            guard: self,
            permit: Some(permit),
        })
    }

    fn breaker(&self, realm: &str) -> &'static Breaker {
        let mut realms = self.realms.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, breaker)) = realms.iter().find(|(name, _)| name == realm) {
            return breaker;
        }
        let breaker: &'static Breaker = Box::leak(Box::new(Breaker::with_policy(
            self.base,
            1,
            UNREACHABLE_INTERVAL,
        )));
        realms.push((realm.to_string(), breaker));
        breaker
    }
}

impl Asking<'_> {
    /// The KDC answered, whatever it said (a refused password is an answer).
    pub fn answered(mut self) {
        if let Some(permit) = self.permit.take() {
            permit.success();
        }
    }

    /// No KDC of the realm answered: leave it alone for the interval.
    pub fn unreachable(mut self, now: Instant) {
        if let Some(permit) = self.permit.take() {
            permit.failure(now);
        }
    }
}

impl Drop for Asking<'_> {
    fn drop(&mut self) {
        self.guard.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask<'g>(guard: &'g KdcGuard, realm: &str, now: Instant) -> Asking<'g> {
        match guard.admit(realm, now) {
            Admission::Ask(asking) => asking,
            Admission::Busy => panic!("busy"),
            Admission::RecentlyUnreachable => panic!("recently unreachable"),
        }
    }

    fn left_alone(guard: &KdcGuard, realm: &str, now: Instant) -> bool {
        matches!(guard.admit(realm, now), Admission::RecentlyUnreachable)
    }

    #[test]
    fn at_most_limit_logins_wait_on_kdcs_at_once() {
        let guard = KdcGuard::new(2);
        let now = Instant::now();
        let first = ask(&guard, "A.TEST", now);
        let second = ask(&guard, "B.TEST", now);
        assert!(matches!(guard.admit("A.TEST", now), Admission::Busy));
        first.answered();
        let third = ask(&guard, "A.TEST", now);
        drop(second);
        drop(third);
        assert_eq!(guard.waiting.load(Ordering::Acquire), 0);
    }

    #[test]
    fn a_busy_refusal_gives_the_realm_no_verdict() {
        let guard = KdcGuard::new(1);
        let now = Instant::now();
        let waiting = ask(&guard, "A.TEST", now);
        assert!(matches!(guard.admit("A.TEST", now), Admission::Busy));
        waiting.answered();
        ask(&guard, "A.TEST", now).answered();
    }

    #[test]
    fn a_silent_kdc_is_left_alone_for_the_interval_then_probed_once() {
        let guard = KdcGuard::new(4);
        let t0 = Instant::now();
        ask(&guard, "A.TEST", t0).unreachable(t0);
        let soon = t0 + UNREACHABLE_INTERVAL / 2;
        assert!(left_alone(&guard, "A.TEST", soon));
        // Another realm is not concerned.
        ask(&guard, "B.TEST", soon).answered();

        let later = t0 + UNREACHABLE_INTERVAL;
        let probe = ask(&guard, "A.TEST", later);
        assert!(left_alone(&guard, "A.TEST", later));
        probe.answered();
        ask(&guard, "A.TEST", later).answered();
    }

    #[test]
    fn a_failed_probe_leaves_the_realm_alone_for_another_interval() {
        let guard = KdcGuard::new(4);
        let t0 = Instant::now();
        ask(&guard, "A.TEST", t0).unreachable(t0);
        let t1 = t0 + UNREACHABLE_INTERVAL;
        ask(&guard, "A.TEST", t1).unreachable(t1);
        assert!(left_alone(&guard, "A.TEST", t1 + UNREACHABLE_INTERVAL / 2));
    }

    #[test]
    fn an_unsettled_ask_frees_its_slot_without_a_verdict() {
        let guard = KdcGuard::new(1);
        let t0 = Instant::now();
        drop(ask(&guard, "A.TEST", t0));
        ask(&guard, "A.TEST", t0).answered();
    }
}
