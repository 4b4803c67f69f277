//! Unknown users must cost what known ones do, or the time of a `401` says whether an account
//! exists. No Apache types: the `apache` layer times its password checks and asks here what to
//! do for a user nobody knows.
//!
//! - Apache's `file` provider answers an unknown user without hashing anything, a known one
//!   after its hash (bcrypt: milliseconds). For an unknown user the login form therefore
//!   verifies the password against a dummy bcrypt hash, of the cost that takes as long as this
//!   process's recent checks of known users ([`DummyCost`]: one step up or down per use, so it
//!   follows the file's hashes and the machine's load).
//! - A KDC answers an unknown principal in one exchange, a known one after the client's
//!   string-to-key and often a second (pre-authentication) exchange. The refusal of an unknown
//!   principal is held back until it has taken as long as this process's recent refusals of
//!   known ones ([`padding`]).
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Durations above this are not a password check's typical cost (a stalled server); they are
/// not learnt.
const MAX_TYPICAL: Duration = Duration::from_secs(5);
/// The longest a refusal is held back.
pub const MAX_PADDING: Duration = Duration::from_secs(2);
/// Below this, known users' checks are cheap (SHA1, MD5 hashes): no dummy hash is needed.
pub const CHEAP_CHECK: Duration = Duration::from_micros(250);

pub const MIN_BCRYPT_COST: u32 = 4;
pub const MAX_BCRYPT_COST: u32 = 14;
/// htpasswd -B's default.
pub const DEFAULT_BCRYPT_COST: u32 = 5;

/// A moving average (weight 1/8) of how long something took, in a slot every process of the
/// server shares (Apache's shared memory): a process that has never checked a known user
/// must still time an unknown one like one, or spreading requests over processes would tell
/// them apart. Updates may race and lose one another; an average does not mind.
#[derive(Clone, Copy, Debug)]
pub struct Typical<'a> {
    micros: &'a AtomicU64,
}

impl<'a> Typical<'a> {
    pub const fn new(micros: &'a AtomicU64) -> Typical<'a> {
        Typical { micros }
    }

    pub fn observe(&self, took: Duration) {
        if took > MAX_TYPICAL {
            return;
        }
        let took = (took.as_micros() as u64).max(1);
        let old = self.micros.load(Ordering::Relaxed);
        let new = if old == 0 { took } else { (old * 7 + took) / 8 };
        self.micros.store(new.max(1), Ordering::Relaxed);
    }

    pub fn get(&self) -> Option<Duration> {
        match self.micros.load(Ordering::Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }
}

/// How long to hold back a refusal that took `elapsed`, to look like a typical one.
pub fn padding(elapsed: Duration, typical: Option<Duration>) -> Duration {
    typical
        .map(|typical| typical.saturating_sub(elapsed))
        .unwrap_or(Duration::ZERO)
        .min(MAX_PADDING)
}

/// The bcrypt cost of the dummy check for unknown users, in two shared slots (as
/// [`Typical`]): the cost (0: not learnt yet, the default) and the run of votes.
#[derive(Clone, Copy, Debug)]
pub struct DummyCost<'a> {
    cost: &'a AtomicU64,
    /// Consecutive verdicts in one direction (+ up, - down, as i64 bits): a step needs
    /// [`VOTES_TO_STEP`] of them, so one check slowed by a busy machine moves nothing.
    votes: &'a AtomicU64,
}

/// How many consecutive same-direction verdicts move the dummy cost one step.
const VOTES_TO_STEP: i64 = 3;

impl<'a> DummyCost<'a> {
    pub const fn new(cost: &'a AtomicU64, votes: &'a AtomicU64) -> DummyCost<'a> {
        DummyCost { cost, votes }
    }

    fn cost(&self) -> u32 {
        match self.cost.load(Ordering::Relaxed) {
            0 => DEFAULT_BCRYPT_COST,
            cost => (cost as u32).clamp(MIN_BCRYPT_COST, MAX_BCRYPT_COST),
        }
    }

    /// The cost to use now; `None` when known users' checks are too cheap to need one.
    pub fn current(&self, typical_known: Option<Duration>) -> Option<u32> {
        match typical_known {
            Some(typical) if typical < CHEAP_CHECK => None,
            _ => Some(self.cost()),
        }
    }

    /// A dummy check of `cost` took `took`: a vote for one step toward the cost that takes as
    /// long as known users' checks (each step doubles or halves bcrypt's work, so a vote is
    /// cast only when a step brings the two closer).
    pub fn observe(&self, cost: u32, took: Duration, typical_known: Option<Duration>) {
        let Some(typical) = typical_known else { return };
        let (took, typical) = (took.as_secs_f64(), typical.as_secs_f64());
        let vote: i64 = if took * std::f64::consts::SQRT_2 < typical {
            1
        } else if took > typical * std::f64::consts::SQRT_2 {
            -1
        } else {
            0
        };
        let before = self.votes.load(Ordering::Relaxed) as i64;
        let votes = if vote == 0 || before.signum() == -vote {
            vote
        } else {
            before + vote
        };
        if votes.abs() < VOTES_TO_STEP {
            self.votes.store(votes as u64, Ordering::Relaxed);
            return;
        }
        self.votes.store(0, Ordering::Relaxed);
        let next = if votes > 0 {
            cost + 1
        } else {
            cost.saturating_sub(1)
        };
        self.cost.store(
            u64::from(next.clamp(MIN_BCRYPT_COST, MAX_BCRYPT_COST)),
            Ordering::Relaxed,
        );
    }
}

/// Where a server keeps what its processes learnt about password checks (Apache's shared
/// memory; see `apache::shared_metrics`).
#[derive(Debug, Default)]
#[repr(C)]
pub struct TimingSlots {
    pub known_check: AtomicU64,
    pub dummy_cost: AtomicU64,
    pub dummy_votes: AtomicU64,
    pub known_kdc_refusal: AtomicU64,
}

impl TimingSlots {
    pub const fn new() -> TimingSlots {
        TimingSlots {
            known_check: AtomicU64::new(0),
            dummy_cost: AtomicU64::new(0),
            dummy_votes: AtomicU64::new(0),
            known_kdc_refusal: AtomicU64::new(0),
        }
    }

    pub fn known_check(&self) -> Typical<'_> {
        Typical::new(&self.known_check)
    }

    pub fn dummy(&self) -> DummyCost<'_> {
        DummyCost::new(&self.dummy_cost, &self.dummy_votes)
    }

    pub fn known_kdc_refusal(&self) -> Typical<'_> {
        Typical::new(&self.known_kdc_refusal)
    }
}

/// A bcrypt hash (`$2y$`) of `cost` that no password matches in practice: a real hash of a
/// random password with its cost digits replaced, so verifying against it is a full bcrypt of
/// that cost.
pub fn dummy_bcrypt(cost: u32) -> String {
    let cost = cost.clamp(MIN_BCRYPT_COST, MAX_BCRYPT_COST);
    format!("$2y${cost:02}$nXneG7oAdK3fGkDmU5is6OaY46mRBhj.T9RsLCx9PyUPThKR0AKCi")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_average_follows_and_ignores_stalls() {
        let slot = AtomicU64::new(0);
        let typical = Typical::new(&slot);
        assert_eq!(typical.get(), None);
        typical.observe(8 * MS);
        assert_eq!(typical.get(), Some(8 * MS));
        typical.observe(16 * MS);
        assert_eq!(typical.get(), Some(9 * MS));
        typical.observe(Duration::from_secs(30));
        assert_eq!(typical.get(), Some(9 * MS));
        for _ in 0..100 {
            typical.observe(2 * MS);
        }
        assert!(typical.get().unwrap() < 2100 * Duration::from_micros(1));
    }

    #[test]
    fn the_limits_are_inclusive() {
        let slot = AtomicU64::new(0);
        Typical::new(&slot).observe(MAX_TYPICAL);
        assert_eq!(
            Typical::new(&slot).get(),
            Some(MAX_TYPICAL),
            "5 s is still learnt"
        );
        let slots = TimingSlots::new();
        assert_eq!(
            slots.dummy().current(Some(CHEAP_CHECK)),
            Some(5),
            "250 µs needs one"
        );
    }

    #[test]
    fn a_step_needs_votes_in_a_row() {
        let slots = TimingSlots::new();
        let dummy = slots.dummy();
        let typical = Some(bcrypt_time(9));
        let up = || dummy.observe(5, bcrypt_time(5), typical);
        // a vote the other way, or no vote, starts the run again
        up();
        up();
        dummy.observe(5, bcrypt_time(12), typical);
        up();
        up();
        assert_eq!(dummy.current(typical), Some(5));
        dummy.observe(5, bcrypt_time(9), typical);
        up();
        up();
        assert_eq!(dummy.current(typical), Some(5));
        up();
        assert_eq!(dummy.current(typical), Some(6), "the third in a row steps");
    }

    #[test]
    fn padding_makes_up_the_difference_within_bounds() {
        assert_eq!(padding(2 * MS, Some(7 * MS)), 5 * MS);
        assert_eq!(padding(9 * MS, Some(7 * MS)), Duration::ZERO);
        assert_eq!(padding(2 * MS, None), Duration::ZERO);
        assert_eq!(padding(Duration::ZERO, Some(4 * MAX_PADDING)), MAX_PADDING);
    }

    /// bcrypt on a machine where cost 5 takes 2 ms.
    fn bcrypt_time(cost: u32) -> Duration {
        2 * MS * 2u32.pow(cost) / 32
    }

    #[test]
    fn the_dummy_cost_converges_on_the_files_cost_and_stays() {
        for file_cost in [4, 5, 8, 10, 12] {
            let slots = TimingSlots::new();
            let dummy = slots.dummy();
            let typical = Some(bcrypt_time(file_cost));
            for _ in 0..60 {
                let cost = dummy.current(typical).unwrap();
                dummy.observe(cost, bcrypt_time(cost), typical);
            }
            assert_eq!(dummy.current(typical), Some(file_cost));
        }
        // one slow known check among fast ones moves nothing
        let slots = TimingSlots::new();
        let dummy = slots.dummy();
        let typical = Some(bcrypt_time(5));
        dummy.observe(5, bcrypt_time(5), Some(bcrypt_time(9)));
        dummy.observe(5, bcrypt_time(5), typical);
        dummy.observe(5, bcrypt_time(5), Some(bcrypt_time(9)));
        assert_eq!(dummy.current(typical), Some(5));
        // cheap hashes need none; nothing learnt yet: htpasswd -B's default
        let slots = TimingSlots::new();
        let dummy = slots.dummy();
        assert_eq!(dummy.current(Some(Duration::from_micros(20))), None);
        assert_eq!(dummy.current(None), Some(5));
        dummy.observe(5, 2 * MS, None);
        assert_eq!(dummy.current(None), Some(5));
        // bounded both ways
        let slots = TimingSlots::new();
        let dummy = slots.dummy();
        for _ in 0..40 {
            dummy.observe(
                dummy.current(None).unwrap(),
                MS,
                Some(Duration::from_secs(4)),
            );
        }
        assert_eq!(dummy.current(None), Some(MAX_BCRYPT_COST));
        for _ in 0..40 {
            let cost = dummy.current(None).unwrap();
            dummy.observe(
                cost,
                Duration::from_secs(1),
                Some(Duration::from_micros(300)),
            );
        }
        assert_eq!(dummy.current(None), Some(MIN_BCRYPT_COST));
    }

    #[test]
    fn dummy_hashes_are_bcrypt_of_their_cost() {
        assert!(dummy_bcrypt(5).starts_with("$2y$05$"));
        assert!(dummy_bcrypt(12).starts_with("$2y$12$"));
        assert!(dummy_bcrypt(99).starts_with("$2y$14$"));
        assert_eq!(dummy_bcrypt(4).len(), 60);
    }
}

#[cfg(test)]
mod shared_tests {
    use super::*;

    #[test]
    fn processes_sharing_the_slots_share_what_they_learnt() {
        // two processes' views of one shared mapping: what one learnt, the other uses
        let slots = TimingSlots::new();
        let (one, other) = (slots.known_check(), slots.known_check());
        one.observe(Duration::from_millis(18));
        assert_eq!(other.get(), Some(Duration::from_millis(18)));
        let (a, b) = (slots.dummy(), slots.dummy());
        for _ in 0..3 {
            a.observe(5, Duration::from_millis(1), Some(Duration::from_millis(18)));
        }
        assert_eq!(b.current(Some(Duration::from_millis(18))), Some(6));
    }
}
