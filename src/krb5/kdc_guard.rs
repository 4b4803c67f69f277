//! What a realm whose KDC does not answer may cost httpd.
//!
//! libkrb5 has no deadline of its own: MIT 1.20 waits 25–27 s on a KDC that takes connections
//! and never answers, retries included, and a password login holds its worker all that time. Unbounded, an outage of the
//! KDC would take every worker, and with them the requests that only ride a cookie. So:
//! - in each process, at most `limit` password checks wait on a KDC at once;
//! - in the whole server, at most as many as [`SharedWaiters`] has slots (a quarter of
//!   `MaxRequestWorkers`): the slots live in memory shared by every child, so the bound holds
//!   under prefork too, where each child has one thread and a per-process bound alone would
//!   let every child wait;
//! - a login beyond either bound is answered at once (503), not queued behind them;
//! - a realm whose KDC did not answer is not asked again for [`UNREACHABLE_INTERVAL`] (a
//!   circuit breaker, then one probe), so an outage costs one wait per interval, not one per
//!   login.
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::store::breaker::{Breaker, Permit};

/// How long a realm whose KDC did not answer is left alone; also the `Retry-After` given.
pub const UNREACHABLE_INTERVAL: Duration = Duration::from_secs(5);

/// A shared slot held longer than this is taken back even if its holder seems alive (its pid
/// may have been reused): libkrb5 gives up on a silent KDC within half a minute.
pub const STALE_AFTER: Duration = Duration::from_secs(600);

/// Who holds a shared slot: a process id and the second (Unix time) it took the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Holder {
    pub pid: u32,
    pub since_s: u32,
}

impl Holder {
    /// This process, now.
    pub fn this_process() -> Holder {
        let since_s = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Holder {
            pid: std::process::id(),
            since_s: u32::try_from(since_s).unwrap_or(u32::MAX),
        }
    }

    /// Never 0 (a free slot): no process has pid 0.
    fn word(self) -> u64 {
        (u64::from(self.pid) << 32) | u64::from(self.since_s)
    }

    fn from_word(word: u64) -> Holder {
        Holder {
            pid: (word >> 32) as u32,
            since_s: word as u32,
        }
    }
}

/// The server-wide bound: one slot per login that may wait on a KDC, in memory every process
/// of the server shares. A slot holds 0 (free) or its [`Holder`]. A process that died while
/// holding one (killed at a graceful stop's timeout, crashed) cannot give it back, so a slot
/// whose holder is gone — or that was held longer than [`STALE_AFTER`] — is taken over.
pub struct SharedWaiters<'a> {
    slots: &'a [AtomicU64],
    /// Whether a process still exists (`kill(pid, 0)`).
    alive: fn(u32) -> bool,
}

impl<'a> SharedWaiters<'a> {
    /// `slots` must start zeroed (all free) the first time any process uses them.
    pub fn new(slots: &'a [AtomicU64], alive: fn(u32) -> bool) -> SharedWaiters<'a> {
        SharedWaiters { slots, alive }
    }

    pub fn limit(&self) -> usize {
        self.slots.len()
    }

    fn take(&self, me: Holder) -> Option<usize> {
        let mine = me.word();
        for (index, slot) in self.slots.iter().enumerate() {
            let current = slot.load(Ordering::Acquire);
            let free = current == 0 || self.stale(Holder::from_word(current), me);
            if free
                && slot
                    .compare_exchange(current, mine, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                return Some(index);
            }
        }
        None
    }

    fn stale(&self, holder: Holder, now: Holder) -> bool {
        let held_s = now.since_s.saturating_sub(holder.since_s);
        u64::from(held_s) > STALE_AFTER.as_secs() || !(self.alive)(holder.pid)
    }

    /// Gives slot `index` back, unless someone took it over meanwhile.
    fn release(&self, index: usize, holder: Holder) {
        if let Some(slot) = self.slots.get(index) {
            let _ = slot.compare_exchange(holder.word(), 0, Ordering::AcqRel, Ordering::Acquire);
        }
    }
}

pub struct KdcGuard {
    limit: usize,
    waiting: AtomicUsize,
    shared: Option<SharedWaiters<'static>>,
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
    /// Every shared slot is held: that many password checks of the whole server (all its
    /// processes) already wait on a KDC.
    ServerBusy,
    /// The realm's KDC did not answer a moment ago, or a probe of it is under way.
    RecentlyUnreachable,
}

/// Leave to ask a realm's KDC; settle it with what happened. Dropped unsettled (the keytab
/// or libkrb5 failed, not the KDC), it frees the slot and gives the breaker no verdict.
#[must_use = "settle with answered() or unreachable()"]
pub struct Asking<'g> {
    guard: &'g KdcGuard,
    permit: Option<Permit<'static>>,
    /// The shared slot this check holds, and as whom.
    shared_slot: Option<(usize, Holder)>,
}

impl KdcGuard {
    /// `limit`: password checks that may wait on KDCs at once (at least one).
    pub fn new(limit: usize) -> KdcGuard {
        KdcGuard {
            limit: limit.max(1),
            waiting: AtomicUsize::new(0),
            shared: None,
            base: Instant::now(),
            realms: Mutex::new(Vec::new()),
        }
    }

    /// Also bounded server-wide, by `shared`'s slots (none when the server has no shared
    /// memory: then only the per-process bound holds).
    pub fn with_shared(mut self, shared: Option<SharedWaiters<'static>>) -> KdcGuard {
        self.shared = shared;
        self
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The server-wide bound, if there is one.
    pub fn server_limit(&self) -> Option<usize> {
        self.shared.as_ref().map(SharedWaiters::limit)
    }

    pub fn admit(&self, realm: &str, now: Instant) -> Admission<'_> {
        self.admit_as(realm, now, Holder::this_process())
    }

    fn admit_as(&self, realm: &str, now: Instant, me: Holder) -> Admission<'_> {
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
        // From here on, dropping `asking` gives back what was taken.
        let mut asking = Asking {
            guard: self,
            permit: Some(permit),
            shared_slot: None,
        };
        if let Some(shared) = &self.shared {
            match shared.take(me) {
                Some(index) => asking.shared_slot = Some((index, me)),
                None => return Admission::ServerBusy,
            }
        }
        Admission::Ask(asking)
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
        if let (Some(shared), Some((index, holder))) = (&self.guard.shared, self.shared_slot) {
            shared.release(index, holder);
        }
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
            Admission::ServerBusy => panic!("server busy"),
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
        // The answer closed the realm's breaker: logins ask it side by side again, not
        // one probe at a time.
        let first = ask(&guard, "A.TEST", later);
        let second = ask(&guard, "A.TEST", later);
        first.answered();
        second.answered();
    }

    #[test]
    fn a_guard_reports_the_bounds_it_enforces() {
        let guard = KdcGuard::new(3);
        assert_eq!((guard.limit(), guard.server_limit()), (3, None));
        assert_eq!(KdcGuard::new(0).limit(), 1, "at least one login may ask");
        let shared = KdcGuard::new(2).with_shared(shared(slots(5)));
        assert_eq!((shared.limit(), shared.server_limit()), (2, Some(5)));
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

    // -- the server-wide bound: slots shared by every process ---------------------------------

    /// Processes with pid below 1000 are alive in these tests; the others are gone.
    fn alive_below_1000(pid: u32) -> bool {
        pid < 1000
    }

    fn shared(slots: &'static [AtomicU64]) -> Option<SharedWaiters<'static>> {
        Some(SharedWaiters::new(slots, alive_below_1000))
    }

    fn slots(n: usize) -> &'static [AtomicU64] {
        Box::leak(
            (0..n)
                .map(|_| AtomicU64::new(0))
                .collect::<Vec<_>>()
                .into_boxed_slice(),
        )
    }

    const T: u32 = 1_800_000_000;

    fn process(pid: u32) -> Holder {
        Holder { pid, since_s: T }
    }

    /// One guard per process (as each child has its own), all over the same shared slots.
    fn children(n: usize, per_child: usize, slots: &'static [AtomicU64]) -> Vec<KdcGuard> {
        (0..n)
            .map(|_| KdcGuard::new(per_child).with_shared(shared(slots)))
            .collect()
    }

    #[test]
    fn one_thread_children_wait_at_most_as_many_as_the_shared_slots() {
        // prefork: each child's own bound is one; four slots bound the server.
        let slots = slots(4);
        let guards = children(8, 1, slots);
        let now = Instant::now();
        let mut waiting = Vec::new();
        let mut refused = 0;
        for (i, guard) in guards.iter().enumerate() {
            match guard.admit_as("A.TEST", now, process(100 + i as u32)) {
                Admission::Ask(asking) => waiting.push(asking),
                Admission::ServerBusy => refused += 1,
                _ => panic!("unexpected admission"),
            }
        }
        assert_eq!((waiting.len(), refused), (4, 4));
        // One ends: its slot serves the next child's login.
        waiting.pop().unwrap().answered();
        assert!(matches!(
            guards[7].admit_as("A.TEST", now, process(107)),
            Admission::Ask(_)
        ));
        drop(waiting);
        assert!(slots.iter().all(|s| s.load(Ordering::Acquire) == 0));
    }

    #[test]
    fn a_server_wide_refusal_frees_the_process_slot_and_gives_no_verdict() {
        let slots = slots(1);
        let guards = children(2, 2, slots);
        let now = Instant::now();
        let held = match guards[0].admit_as("A.TEST", now, process(100)) {
            Admission::Ask(asking) => asking,
            _ => panic!("the first login waits"),
        };
        for _ in 0..3 {
            assert!(matches!(
                guards[1].admit_as("A.TEST", now, process(101)),
                Admission::ServerBusy
            ));
        }
        assert_eq!(guards[1].waiting.load(Ordering::Acquire), 0);
        held.answered();
        // No probe was left pending on guard 1's breaker: it asks at once.
        match guards[1].admit_as("A.TEST", now, process(101)) {
            Admission::Ask(asking) => asking.answered(),
            _ => panic!("the slot was not given back"),
        };
    }

    #[test]
    fn a_slot_whose_holder_died_is_taken_over() {
        let slots = slots(1);
        let guards = children(2, 1, slots);
        let now = Instant::now();
        // pid 2000 takes the slot and is killed while waiting: it never gives it back.
        std::mem::forget(guards[0].admit_as("A.TEST", now, process(2000)));
        match guards[1].admit_as("A.TEST", now, process(101)) {
            Admission::Ask(asking) => asking.answered(),
            _ => panic!("a dead process's slot was not taken over"),
        };
    }

    #[test]
    fn a_live_holders_slot_is_taken_over_only_when_stale() {
        let slots = slots(1);
        let guards = children(2, 1, slots);
        let now = Instant::now();
        std::mem::forget(guards[0].admit_as("A.TEST", now, process(100)));
        let later = |s: u64| Holder {
            pid: 101,
            since_s: T + s as u32,
        };
        assert!(matches!(
            guards[1].admit_as("A.TEST", now, later(STALE_AFTER.as_secs())),
            Admission::ServerBusy
        ));
        assert!(matches!(
            guards[1].admit_as("A.TEST", now, later(STALE_AFTER.as_secs() + 1)),
            Admission::Ask(_)
        ));
    }

    #[test]
    fn a_taken_over_slot_is_not_freed_by_its_former_holder() {
        let slots = slots(1);
        let guards = children(2, 1, slots);
        let now = Instant::now();
        let old = match guards[0].admit_as("A.TEST", now, process(100)) {
            Admission::Ask(asking) => asking,
            _ => panic!(),
        };
        let stale = Holder {
            pid: 101,
            since_s: T + STALE_AFTER.as_secs() as u32 + 1,
        };
        let new = match guards[1].admit_as("A.TEST", now, stale) {
            Admission::Ask(asking) => asking,
            _ => panic!("stale slot not taken over"),
        };
        drop(old);
        assert_eq!(slots[0].load(Ordering::Acquire), stale.word());
        drop(new);
        assert_eq!(slots[0].load(Ordering::Acquire), 0);
    }

    #[test]
    fn holders_round_trip_through_a_slot_word() {
        let me = Holder::this_process();
        assert_ne!(me.word(), 0);
        assert_eq!(Holder::from_word(me.word()), me);
        assert!(me.since_s > T - 100_000_000, "{me:?}");
    }
}
