//! Expiry arithmetic. Every function takes `now` (unix seconds) from the caller: reading the
//! clock here would make the rules untestable and let one request see two different "nows".
//!
//! All arithmetic saturates: records are authenticated, but their numbers come from config
//! and from clocks that can jump, and neither may turn into a panic or a wrapped-around
//! "valid forever".

use super::record::SessionRecord;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expiry {
    /// The sliding inactivity window ran out.
    Inactive,
    /// The absolute lifetime from login ran out.
    MaxLifetime,
    /// The Kerberos credentials the session was capped to ran out.
    Credentials,
}

impl Expiry {
    /// Stable names for logs and metric labels.
    pub fn as_str(&self) -> &'static str {
        match self {
            Expiry::Inactive => "inactive",
            Expiry::MaxLifetime => "max-lifetime",
            Expiry::Credentials => "credentials",
        }
    }
}

/// Each end that applies to the record, in a fixed order (which breaks ties in [`check`]).
fn ends(record: &SessionRecord) -> [(Option<u64>, Expiry); 3] {
    let nonzero = |v: u64| (v > 0).then_some(v);
    [
        (
            nonzero(record.inactivity_timeout).map(|t| record.last_seen.saturating_add(t)),
            Expiry::Inactive,
        ),
        (nonzero(record.absolute_expiry), Expiry::MaxLifetime),
        (nonzero(record.credential_end), Expiry::Credentials),
    ]
}

/// Valid strictly before every end that applies. When several ends have passed, the reason
/// is the one that passed first: that is what actually ended the session.
pub fn check(record: &SessionRecord, now: u64) -> Result<(), Expiry> {
    let passed = ends(record)
        .into_iter()
        .filter_map(|(end, why)| end.filter(|&end| now >= end).map(|end| (end, why)));
    // `min_by_key` keeps the first of equal minima, so ties follow the fixed order.
    match passed.min_by_key(|&(end, _)| end) {
        Some((_, why)) => Err(why),
        None => Ok(()),
    }
}

/// The earliest end that applies; `None` for a session with no end at all.
pub fn end_time(record: &SessionRecord) -> Option<u64> {
    ends(record).iter().filter_map(|(end, _)| *end).min()
}

/// Whether to write back a slid inactivity window. Writing on every request would double the
/// store traffic for nothing; waiting for 10% of the window bounds how much earlier than
/// configured an idle session can expire.
///
/// The window is the session's own, or the serving location's `MemSessionInactivityTimeout`
/// (`location_timeout`, seconds, 0 = none) when that is shorter: such a location judges
/// idleness from the written-back `last_seen` too, so it must be written back at the
/// location's pace — at the session's, a session used every second at a 3 s location under a
/// 1 h login was refused there after 3 s.
pub fn needs_refresh(record: &SessionRecord, location_timeout: u64, now: u64) -> bool {
    let window = match (record.inactivity_timeout, location_timeout) {
        (0, 0) => return false,
        (own, 0) => own,
        (0, here) => here,
        (own, here) => own.min(here),
    };
    let elapsed = now.saturating_sub(record.last_seen);
    elapsed >= 1 && elapsed.saturating_mul(10) >= window
}

pub const UNBOUNDED_STORE_TTL: u64 = 30 * 24 * 3600;

/// memcached reads an exptime up to 30 days as relative to now; anything above is a unix
/// time. One second past that is the smallest value it takes as absolute (and long past, so
/// the item expires at once).
const MIN_ABSOLUTE_EXPTIME: u64 = UNBOUNDED_STORE_TTL + 1;

/// memcached parses exptime as a signed 32-bit integer and refuses larger values, so later
/// ends are clamped (the item then expires in January 2038, after which this needs revisiting
/// along with memcached itself).
pub const MAX_STORE_EXPTIME: u64 = i32::MAX as u64;

/// The absolute expiry to hand memcached on every write. Never 0 (immortal) and never a
/// value memcached would read as relative.
pub fn store_exptime(record: &SessionRecord, now: u64) -> u64 {
    end_time(record)
        .unwrap_or_else(|| now.saturating_add(UNBOUNDED_STORE_TTL))
        .clamp(MIN_ABSOLUTE_EXPTIME, MAX_STORE_EXPTIME)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::record::Epoch;

    const T0: u64 = 1_700_000_000;

    fn rec(last_seen: u64, inactivity: u64, absolute: u64, cred: u64) -> SessionRecord {
        SessionRecord {
            user: "u".into(),
            auth_type: "Negotiate".into(),
            created: T0,
            last_seen,
            inactivity_timeout: inactivity,
            absolute_expiry: absolute,
            credential_end: cred,
            ccache: None,
            user_epoch: Epoch([0; 16]),
            global_epoch: Epoch([0; 16]),
        }
    }

    #[test]
    fn names() {
        assert_eq!(Expiry::Inactive.as_str(), "inactive");
        assert_eq!(Expiry::MaxLifetime.as_str(), "max-lifetime");
        assert_eq!(Expiry::Credentials.as_str(), "credentials");
    }

    #[test]
    fn no_ends_is_always_valid() {
        let r = rec(T0, 0, 0, 0);
        for now in [0, T0, u64::MAX] {
            assert_eq!(check(&r, now), Ok(()));
        }
        assert_eq!(end_time(&r), None);
    }

    #[test]
    fn inactivity_boundary_is_strict() {
        let r = rec(T0, 3600, 0, 0);
        assert_eq!(check(&r, T0), Ok(()));
        assert_eq!(check(&r, T0 + 3599), Ok(()));
        assert_eq!(check(&r, T0 + 3600), Err(Expiry::Inactive));
        assert_eq!(check(&r, T0 + 99_999), Err(Expiry::Inactive));
        assert_eq!(end_time(&r), Some(T0 + 3600));
    }

    #[test]
    fn absolute_boundary_is_strict() {
        let r = rec(T0, 0, T0 + 100, 0);
        assert_eq!(check(&r, T0 + 99), Ok(()));
        assert_eq!(check(&r, T0 + 100), Err(Expiry::MaxLifetime));
        assert_eq!(end_time(&r), Some(T0 + 100));
    }

    #[test]
    fn credential_boundary_is_strict() {
        let r = rec(T0, 0, 0, T0 + 50);
        assert_eq!(check(&r, T0 + 49), Ok(()));
        assert_eq!(check(&r, T0 + 50), Err(Expiry::Credentials));
        assert_eq!(end_time(&r), Some(T0 + 50));
    }

    #[test]
    fn earliest_end_wins() {
        let r = rec(T0, 3600, T0 + 1800, T0 + 900);
        assert_eq!(end_time(&r), Some(T0 + 900));
        assert_eq!(check(&r, T0 + 899), Ok(()));
        assert_eq!(check(&r, T0 + 900), Err(Expiry::Credentials));
        // Long after all three: still reported as the one that ended it.
        assert_eq!(check(&r, T0 + 10_000), Err(Expiry::Credentials));

        let r = rec(T0, 600, T0 + 1800, T0 + 900);
        assert_eq!(check(&r, T0 + 10_000), Err(Expiry::Inactive));
        let r = rec(T0, 6000, T0 + 1800, T0 + 9000);
        assert_eq!(check(&r, T0 + 10_000), Err(Expiry::MaxLifetime));
        // Ties go to the first in fixed order.
        let r = rec(T0, 100, T0 + 100, T0 + 100);
        assert_eq!(check(&r, T0 + 100), Err(Expiry::Inactive));
    }

    #[test]
    fn saturating_ends() {
        let r = rec(u64::MAX - 5, u64::MAX, 0, 0);
        assert_eq!(end_time(&r), Some(u64::MAX));
        assert_eq!(check(&r, u64::MAX - 1), Ok(()));
        assert_eq!(check(&r, u64::MAX), Err(Expiry::Inactive));
    }

    #[test]
    fn refresh_threshold() {
        let r = rec(T0, 3600, 0, 0);
        assert!(!needs_refresh(&r, 0, T0));
        assert!(!needs_refresh(&r, 0, T0 + 359));
        assert!(needs_refresh(&r, 0, T0 + 360));
        assert!(needs_refresh(&r, 0, T0 + 3599));
        assert!(needs_refresh(&r, 0, u64::MAX));
    }

    #[test]
    fn refresh_needs_at_least_one_second() {
        // A tiny window still must not write back twice within the same second.
        let r = rec(T0, 5, 0, 0);
        assert!(!needs_refresh(&r, 0, T0));
        assert!(needs_refresh(&r, 0, T0 + 1));
        let r = rec(T0, 1, 0, 0);
        assert!(!needs_refresh(&r, 0, T0));
        assert!(needs_refresh(&r, 0, T0 + 1));
    }

    #[test]
    fn never_refresh_without_inactivity_timeout() {
        let r = rec(T0, 0, T0 + 100, T0 + 100);
        for now in [T0, T0 + 50, T0 + 1_000_000, u64::MAX] {
            assert!(!needs_refresh(&r, 0, now));
        }
    }

    #[test]
    fn a_stricter_location_refreshes_at_its_own_pace() {
        // A 1 h session served at a 3 s location: written back after a second, not six minutes.
        let r = rec(T0, 3600, 0, 0);
        assert!(!needs_refresh(&r, 3, T0));
        assert!(needs_refresh(&r, 3, T0 + 1));
        // A laxer location changes nothing.
        assert!(!needs_refresh(&r, 7200, T0 + 359));
        assert!(needs_refresh(&r, 7200, T0 + 360));
        // A session with no inactivity limit of its own, at a location that has one.
        let r = rec(T0, 0, 0, 0);
        assert!(!needs_refresh(&r, 60, T0 + 5));
        assert!(needs_refresh(&r, 60, T0 + 6));
    }

    #[test]
    fn clock_going_backwards() {
        let r = rec(T0, 3600, 0, 0);
        assert!(!needs_refresh(&r, 0, T0 - 1000));
        assert!(!needs_refresh(&r, 0, 0));
        assert_eq!(check(&r, 0), Ok(()));
        assert_eq!(store_exptime(&r, 0), T0 + 3600);
    }

    #[test]
    fn store_exptime_uses_end() {
        let r = rec(T0, 3600, T0 + 1800, 0);
        assert_eq!(store_exptime(&r, T0), T0 + 1800);
    }

    #[test]
    fn store_exptime_without_end_is_bounded() {
        let r = rec(T0, 0, 0, 0);
        assert_eq!(store_exptime(&r, T0), T0 + UNBOUNDED_STORE_TTL);
        // memcached's limit for a relative exptime: 30 days, 2 592 000 seconds.
        assert_eq!(UNBOUNDED_STORE_TTL, 2_592_000);
        // A broken clock at 0 still yields an absolute, non-zero time.
        assert_eq!(store_exptime(&r, 0), UNBOUNDED_STORE_TTL + 1);
        assert_eq!(store_exptime(&r, u64::MAX), MAX_STORE_EXPTIME);
    }

    #[test]
    fn store_exptime_past_ends_are_absolute_in_the_past() {
        for end in [1, 2, 1000, UNBOUNDED_STORE_TTL - 1, UNBOUNDED_STORE_TTL] {
            let r = rec(0, 0, end, 0);
            assert_eq!(store_exptime(&r, T0), UNBOUNDED_STORE_TTL + 1);
        }
        let r = rec(0, 0, UNBOUNDED_STORE_TTL + 1, 0);
        assert_eq!(store_exptime(&r, T0), UNBOUNDED_STORE_TTL + 1);
        let r = rec(0, 0, UNBOUNDED_STORE_TTL + 2, 0);
        assert_eq!(store_exptime(&r, T0), UNBOUNDED_STORE_TTL + 2);
    }

    #[test]
    fn store_exptime_fits_memcached() {
        let r = rec(T0, u64::MAX, 0, 0);
        assert_eq!(store_exptime(&r, T0), MAX_STORE_EXPTIME);
        let r = rec(T0, 0, u64::MAX, 0);
        assert_eq!(store_exptime(&r, T0), MAX_STORE_EXPTIME);
    }

    #[test]
    fn store_exptime_never_zero_or_relative() {
        let values = [0, 1, 59, 3600, T0, u64::MAX - 1, u64::MAX];
        for &last_seen in &values {
            for &inactivity in &values {
                for &absolute in &values {
                    for &now in &values {
                        let r = rec(last_seen, inactivity, absolute, 0);
                        let t = store_exptime(&r, now);
                        assert!(t > UNBOUNDED_STORE_TTL && t <= MAX_STORE_EXPTIME);
                    }
                }
            }
        }
    }
}
