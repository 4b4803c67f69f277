//! Budgets of password guesses at `memsession-login-form`, shared by every process and node
//! through memcached counters. No Apache types: the `apache` layer hands in the user, the
//! client address, the limits and a [`Counters`] over the store.
//!
//! Three counters, each a fixed window that starts at its first counted attempt and ends
//! `window` later (the memcached item's life, which no later step changes):
//!
//! - per client address (all users): bounds password spraying from one address;
//! - per user from one address: at most half the user's budget, rounded up, so one address
//!   alone can never exhaust a user's budget (of 2 or more) and lock them out for everyone;
//! - per user (all addresses): bounds guesses against one account below a directory's or
//!   KDC's own lockout.
//!
//! An attempt *reserves* a slot in each counter before the password is checked (so parallel
//! guesses cannot overrun a budget), and a right password gives the slots back: only failures
//! stay counted. An attempt that finds a budget spent is refused before any provider or KDC is
//! asked, whatever the password (else the answer would tell the attacker it guessed right),
//! and it leaves every counter as it found it.
use std::net::IpAddr;
use std::time::Duration;

use crate::store::client::{StoreClient, StoreError};
use crate::store::meta::{CounterStep, CounterValue};

pub const DEFAULT_PER_USER: u32 = 5;
pub const DEFAULT_PER_ADDRESS: u32 = 30;
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(600);
/// The longest window: a day (memcached's relative TTLs reach 30 days; a longer lockout is a
/// directory's business, not a web form's).
pub const MAX_WINDOW: Duration = Duration::from_secs(86_400);

/// The limits in force at a login location (`None`: that budget is off).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub per_user: Option<u32>,
    pub per_address: Option<u32>,
    pub window: Duration,
}

impl Limits {
    /// What one address may spend of a user's budget: half of it, rounded up.
    pub fn per_user_from_one_address(&self) -> Option<u32> {
        self.per_user.map(|n| n.div_ceil(2))
    }

    pub fn is_off(&self) -> bool {
        self.per_user.is_none() && self.per_address.is_none()
    }

    fn window_secs(&self) -> u64 {
        self.window.as_secs().clamp(1, MAX_WINDOW.as_secs())
    }
}

/// Which budget refused an attempt. The texts are stable: they appear in the log line the
/// shipped fail2ban filter reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    Address,
    UserFromAddress,
    User,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Address => "address",
            Scope::UserFromAddress => "user-from-address",
            Scope::User => "user",
        }
    }
}

/// The name a user's budget is kept under: lowercased, white space trimmed and each run of it
/// made one space, and for a Kerberos login without the realm when it is the configured one
/// (`alice`, `ALICE`, ` alice  ` and `alice@EXAMPLE.COM` share one budget, so respelling a name
/// buys no guesses: directories match names without regard to case and to insignificant
/// spaces — LDAP's caseIgnoreMatch, RFC 4518 — and would check each spelling against the one
/// account).
pub fn budget_user(user: &str, realm: Option<&str>) -> String {
    let user = user.split_whitespace().collect::<Vec<_>>().join(" ");
    let name = match (realm, user.rfind('@')) {
        (Some(realm), Some(at)) if user[at + 1..].eq_ignore_ascii_case(realm) => &user[..at],
        _ => user.as_str(),
    };
    name.to_lowercase()
}

/// The address a budget is kept under: an IPv4 address as is (also when IPv4-mapped), an
/// IPv6 address by its /64 (one subscriber usually holds a whole /64). Anything else (not an
/// address) as given.
pub fn address_bucket(address: &str) -> String {
    match address.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => address.to_string(),
    }
}

/// The store keys of one attempt's three counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetKeys {
    pub address: String,
    pub user_from_address: String,
    pub user: String,
}

/// `derive` turns a message into a store key (`KeyDeriver::login_budget_key`). The messages
/// are unambiguous: an address bucket holds no NUL, and comes before the user name.
pub fn keys(derive: impl Fn(&[u8]) -> String, user: &str, bucket: &str) -> BudgetKeys {
    let message = |parts: &[&str]| parts.concat().into_bytes();
    BudgetKeys {
        address: derive(&message(&["address\0", bucket])),
        user_from_address: derive(&message(&["pair\0", bucket, "\0", user])),
        user: derive(&message(&["user\0", user])),
    }
}

/// Counter steps in the store.
pub trait Counters {
    type Error;
    /// Adds one; a missing counter is created holding 1 and living `ttl` seconds.
    fn up(&self, key: &str, ttl: u64) -> Result<CounterValue, Self::Error>;
    /// Takes one away (never below 0).
    fn down(&self, key: &str) -> Result<(), Self::Error>;
}

impl Counters for StoreClient {
    type Error = StoreError;
    fn up(&self, key: &str, ttl: u64) -> Result<CounterValue, StoreError> {
        self.counter(key, CounterStep::Up { ttl })?
            .ok_or_else(|| StoreError::Protocol("ma with auto-create answered NF".to_string()))
    }
    fn down(&self, key: &str) -> Result<(), StoreError> {
        self.counter(key, CounterStep::Down).map(drop)
    }
}

/// One step of a fixed-window counter kept in the store: counts this event (a missing
/// counter starts at 1 and lives `ttl` seconds, which no later step changes) and says whether
/// it went past `limit`, and how long until the window ends. Shared by the login budgets and
/// by `flow::mint_limit`.
pub fn count<C: Counters>(
    counters: &C,
    key: &str,
    limit: u32,
    ttl: u64,
) -> Result<Counted, C::Error> {
    let counted = counters.up(key, ttl)?;
    Ok(Counted {
        value: counted.value,
        over: counted.value > u64::from(limit),
        retry_after: counted.ttl.unwrap_or(ttl).clamp(1, ttl.max(1)),
    })
}

/// What [`count`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counted {
    /// Events counted in this window, this one included.
    pub value: u64,
    /// This event went past the limit.
    pub over: bool,
    /// Seconds until the window ends (at least 1).
    pub retry_after: u64,
}

/// An attempt refused because a budget is spent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub scope: Scope,
    pub limit: u32,
    /// Seconds until the spent budget's window ends (at least 1).
    pub retry_after: u64,
}

/// Slots an attempt holds while its password is checked.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "give the slots back on success, or keep them as failures"]
pub struct Reservation {
    taken: Vec<String>,
}

impl Reservation {
    /// The password was right: the attempt does not count.
    pub fn give_back<C: Counters>(self, counters: &C) -> Result<(), C::Error> {
        let mut result = Ok(());
        for key in &self.taken {
            if let Err(error) = counters.down(key) {
                result = Err(error);
            }
        }
        result
    }

    /// The password was wrong (or the account unusable): the attempt stays counted.
    pub fn keep(self) {}
}

/// Reserves one attempt in each budget in force, in the order address, user from this
/// address, user: `Ok(Err(refusal))` at the first one spent, having given back what it took
/// (so a refused attempt changes no counter, and an address refused for one user cannot use up
/// that user's budget). `Err`: the store failed; whatever was taken has been given back as far
/// as the store allowed.
pub fn reserve<C: Counters>(
    counters: &C,
    keys: &BudgetKeys,
    limits: &Limits,
) -> Result<Result<Reservation, Refusal>, C::Error> {
    let ttl = limits.window_secs();
    let mut taken = Reservation { taken: Vec::new() };
    let budgets = [
        (Scope::Address, &keys.address, limits.per_address),
        (
            Scope::UserFromAddress,
            &keys.user_from_address,
            limits.per_user_from_one_address(),
        ),
        (Scope::User, &keys.user, limits.per_user),
    ];
    for (scope, key, limit) in budgets {
        let Some(limit) = limit else { continue };
        let counted = match count(counters, key, limit, ttl) {
            Ok(counted) => counted,
            Err(error) => {
                let _ = taken.give_back(counters);
                return Err(error);
            }
        };
        taken.taken.push(key.clone());
        if counted.over {
            let _ = taken.give_back(counters);
            return Ok(Err(Refusal {
                scope,
                limit,
                retry_after: counted.retry_after,
            }));
        }
    }
    Ok(Ok(taken))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::collections::HashMap;

    /// Counters in a map, with a clock for their windows.
    #[derive(Default)]
    pub(crate) struct Memory {
        counters: RefCell<HashMap<String, (u64, u64)>>,
        now: RefCell<u64>,
        pub(crate) fail: RefCell<bool>,
    }

    impl Memory {
        pub(crate) fn value(&self, key: &str) -> u64 {
            self.expire();
            self.counters.borrow().get(key).map_or(0, |c| c.0)
        }
        pub(crate) fn advance(&self, secs: u64) {
            *self.now.borrow_mut() += secs;
        }
        fn expire(&self) {
            let now = *self.now.borrow();
            self.counters.borrow_mut().retain(|_, (_, end)| *end > now);
        }
    }

    impl Counters for Memory {
        type Error = &'static str;
        fn up(&self, key: &str, ttl: u64) -> Result<CounterValue, &'static str> {
            if *self.fail.borrow() {
                return Err("down");
            }
            self.expire();
            let now = *self.now.borrow();
            let mut counters = self.counters.borrow_mut();
            let entry = counters
                .entry(key.to_string())
                .and_modify(|c| c.0 += 1)
                .or_insert((1, now + ttl));
            Ok(CounterValue {
                value: entry.0,
                ttl: Some(entry.1 - now),
            })
        }
        fn down(&self, key: &str) -> Result<(), &'static str> {
            if *self.fail.borrow() {
                return Err("down");
            }
            if let Some(c) = self.counters.borrow_mut().get_mut(key) {
                c.0 = c.0.saturating_sub(1);
            }
            Ok(())
        }
    }

    fn limits() -> Limits {
        Limits {
            per_user: Some(DEFAULT_PER_USER),
            per_address: Some(DEFAULT_PER_ADDRESS),
            window: DEFAULT_WINDOW,
        }
    }

    fn keys_of(user: &str, address: &str) -> BudgetKeys {
        keys(
            |m| String::from_utf8_lossy(m).replace('\0', "|"),
            user,
            &address_bucket(address),
        )
    }

    /// One failed attempt: `Ok(())` if it was let through (and counted).
    fn fail(store: &Memory, user: &str, address: &str, limits: &Limits) -> Result<(), Refusal> {
        reserve(store, &keys_of(user, address), limits)
            .expect("store up")
            .map(Reservation::keep)
    }

    #[test]
    fn budgets_are_off_only_with_neither_limit() {
        let limits = |per_user, per_address| Limits {
            per_user,
            per_address,
            window: Duration::from_secs(60),
        };
        assert!(limits(None, None).is_off());
        assert!(!limits(Some(5), None).is_off());
        assert!(!limits(None, Some(5)).is_off());
    }

    #[test]
    fn scope_texts_are_what_the_fail2ban_filter_reads() {
        assert_eq!(Scope::Address.as_str(), "address");
        assert_eq!(Scope::UserFromAddress.as_str(), "user-from-address");
        assert_eq!(Scope::User.as_str(), "user");
    }

    #[test]
    fn one_address_gets_half_a_users_budget_and_cannot_lock_the_user_out() {
        let store = Memory::default();
        let limits = limits();
        for _ in 0..3 {
            fail(&store, "alice", "192.0.2.1", &limits).unwrap();
        }
        let refusal = fail(&store, "alice", "192.0.2.1", &limits).unwrap_err();
        assert_eq!(refusal.scope, Scope::UserFromAddress);
        assert_eq!(refusal.limit, 3);
        assert_eq!(refusal.retry_after, 600);
        // Hammering on changes nothing: the user's own count stays at 3 of 5.
        for _ in 0..50 {
            assert!(fail(&store, "alice", "192.0.2.1", &limits).is_err());
        }
        let k = keys_of("alice", "192.0.2.1");
        assert_eq!(store.value(&k.user), 3);
        assert_eq!(store.value(&k.user_from_address), 3);
        // Alice, elsewhere, still gets in with the right password.
        let mine = reserve(&store, &keys_of("alice", "198.51.100.7"), &limits)
            .unwrap()
            .expect("not locked out");
        mine.give_back(&store).unwrap();
        assert_eq!(store.value(&k.user), 3, "a right password does not count");
    }

    #[test]
    fn two_addresses_spend_the_users_budget_for_everyone_until_the_window_ends() {
        let store = Memory::default();
        let limits = limits();
        for _ in 0..3 {
            fail(&store, "alice", "192.0.2.1", &limits).unwrap();
        }
        store.advance(100);
        fail(&store, "alice", "192.0.2.2", &limits).unwrap();
        fail(&store, "alice", "192.0.2.2", &limits).unwrap();
        // Five failures: the sixth attempt, from anywhere, right password or not, is refused
        // without asking anyone.
        let refusal = reserve(&store, &keys_of("alice", "198.51.100.7"), &limits)
            .unwrap()
            .unwrap_err();
        assert_eq!(refusal.scope, Scope::User);
        assert_eq!(
            refusal.retry_after, 500,
            "until the window that began first ends"
        );
        store.advance(500);
        reserve(&store, &keys_of("alice", "198.51.100.7"), &limits)
            .unwrap()
            .expect("the window ended")
            .keep();
    }

    #[test]
    fn an_address_spraying_many_users_runs_out() {
        let store = Memory::default();
        let limits = limits();
        for n in 0..DEFAULT_PER_ADDRESS {
            fail(&store, &format!("user{n}"), "192.0.2.9", &limits).unwrap();
        }
        let refusal = fail(&store, "someone", "192.0.2.9", &limits).unwrap_err();
        assert_eq!(refusal.scope, Scope::Address);
        // The refused attempt did not start a budget for that user.
        assert_eq!(store.value(&keys_of("someone", "192.0.2.9").user), 0);
        // Another address of the same IPv6 /64 is the same address; another /64 is not.
        let limits = Limits {
            per_address: Some(2),
            ..limits
        };
        fail(&store, "a", "2001:db8:1:2::1", &limits).unwrap();
        fail(&store, "b", "2001:db8:1:2:ffff::9", &limits).unwrap();
        assert!(fail(&store, "c", "2001:db8:1:2::3", &limits).is_err());
        fail(&store, "c", "2001:db8:1:3::3", &limits).unwrap();
    }

    #[test]
    fn budgets_that_are_off_are_not_counted() {
        let store = Memory::default();
        let off = Limits {
            per_user: None,
            per_address: None,
            window: DEFAULT_WINDOW,
        };
        assert!(off.is_off());
        for _ in 0..100 {
            fail(&store, "alice", "192.0.2.1", &off).unwrap();
        }
        assert!(store.counters.borrow().is_empty());
        let users_only = Limits {
            per_address: None,
            ..limits()
        };
        assert_eq!(users_only.per_user_from_one_address(), Some(3));
        for _ in 0..3 {
            fail(&store, "bob", "192.0.2.1", &users_only).unwrap();
        }
        assert!(fail(&store, "bob", "192.0.2.1", &users_only).is_err());
        assert_eq!(store.value(&keys_of("bob", "192.0.2.1").address), 0);
    }

    #[test]
    fn parallel_attempts_cannot_overrun_a_budget() {
        // Attempts reserve before their passwords are checked: ten in flight at once still
        // get only the budget's worth of checks.
        let store = Memory::default();
        let limits = limits();
        let held: Vec<_> = (0..10)
            .filter_map(|_| {
                reserve(&store, &keys_of("carol", "192.0.2.1"), &limits)
                    .unwrap()
                    .ok()
            })
            .collect();
        assert_eq!(held.len(), 3);
        held.into_iter().for_each(Reservation::keep);
    }

    #[test]
    fn a_store_failure_is_an_error_not_a_pass() {
        let store = Memory::default();
        *store.fail.borrow_mut() = true;
        assert_eq!(
            reserve(&store, &keys_of("alice", "192.0.2.1"), &limits()),
            Err("down")
        );
    }

    #[test]
    fn budgets_ignore_spelling() {
        assert_eq!(budget_user("ALICE", None), "alice");
        for spaced in [" alice", "alice ", "\tALICE\n", " Alice  "] {
            assert_eq!(budget_user(spaced, None), "alice", "{spaced:?}");
        }
        assert_eq!(budget_user("Jane  van\tDoe", None), "jane van doe");
        assert_eq!(
            budget_user(" alice@EXAMPLE.COM ", Some("EXAMPLE.COM")),
            "alice"
        );
        assert_eq!(
            budget_user("alice@example.com", Some("EXAMPLE.COM")),
            "alice"
        );
        assert_eq!(
            budget_user("Alice@EXAMPLE.COM", Some("EXAMPLE.COM")),
            "alice"
        );
        assert_eq!(
            budget_user("alice@OTHER.ORG", Some("EXAMPLE.COM")),
            "alice@other.org"
        );
        assert_eq!(budget_user("alice@x", None), "alice@x");
        assert_eq!(address_bucket("::ffff:192.0.2.1"), "192.0.2.1");
        assert_eq!(address_bucket("2001:db8::1"), "2001:db8:0:0::/64");
        assert_eq!(address_bucket("not an address"), "not an address");
    }

    #[test]
    fn keys_do_not_collide_across_kinds_or_names() {
        let a = keys_of("x", "192.0.2.1");
        let b = keys_of("x\x00192.0.2.1", "192.0.2.1");
        let all = [
            &a.address,
            &a.user,
            &a.user_from_address,
            &b.user,
            &b.user_from_address,
        ];
        for (i, x) in all.iter().enumerate() {
            for y in &all[i + 1..] {
                assert_ne!(x, y);
            }
        }
    }
}
