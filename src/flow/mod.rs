//! What a request gets, decided without Apache types: the `apache` layer gathers the
//! request's facts into the small structs here and applies the outcome.
pub mod authenticate;
pub mod cookies;
pub mod credentials;
pub mod login;
pub mod login_budget;
pub mod login_timing;
pub mod logout;
pub mod mint_limit;
pub mod query;

use std::time::{SystemTime, UNIX_EPOCH};

/// Unix seconds. A clock before 1970 reads as 0, which only makes sessions look expired.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn unix_now_reads_the_clock() {
        // 2023-11-14: every expiry check would pass or fail wholesale on a clock stuck at 0.
        assert!(super::unix_now() > 1_700_000_000);
    }
}
