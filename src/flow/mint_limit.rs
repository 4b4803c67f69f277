//! The bound on sessions `MemSession On` mints per user (`MemSessionMintLimit`): a client that
//! never returns the cookie (a script with Basic credentials, a monitoring probe) would
//! otherwise get a new session on every request and push real sessions out of memcached's
//! LRU. Past the bound the request is still served on its own credentials; only no session is
//! stored and no cookie sent. One fixed-window counter per user in the store (the login
//! budgets' counters, `flow::login_budget::count`), so every process and node shares it.
use std::time::Duration;

use super::login_budget::{self, Counters};

/// Sessions per user per [`WINDOW`] by default: far more than a person logs in, far fewer
/// than a client that ignores cookies makes requests.
pub const DEFAULT_PER_USER: u32 = 10;
pub const WINDOW: Duration = Duration::from_secs(60);

/// The store key of `user`'s counter. `derive` is `KeyDeriver::login_budget_key` (keyed, so a
/// key listing shows no name); the message cannot be a login budget's (those start
/// `address`, `pair` or `user`). The name is counted as the login budgets count it
/// (lowercased), so respelling it buys no extra sessions.
pub fn key(derive: impl Fn(&[u8]) -> String, user: &str) -> String {
    let name = login_budget::budget_user(user, None);
    derive(&[b"mint\0", name.as_bytes()].concat())
}

/// Whether one more session may be minted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Mint,
    /// The bound is spent until the window ends in `retry_after` seconds. `first`: the
    /// first refusal of this window (the one worth a log line at warning level).
    Limited {
        first: bool,
        retry_after: u64,
    },
}

/// Counts one mint against `limit` per [`WINDOW`]. `Err`: the store could not count (the
/// caller mints nothing: that store would not have stored the session either).
pub fn check<C: Counters>(counters: &C, key: &str, limit: u32) -> Result<Verdict, C::Error> {
    let counted = login_budget::count(counters, key, limit, WINDOW.as_secs())?;
    Ok(if counted.over {
        Verdict::Limited {
            first: counted.value == u64::from(limit) + 1,
            retry_after: counted.retry_after,
        }
    } else {
        Verdict::Mint
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::login_budget::tests::Memory;

    fn key_of(user: &str) -> String {
        key(|m| String::from_utf8_lossy(m).replace('\0', "|"), user)
    }

    #[test]
    fn at_most_the_limit_per_window_then_again_after_it() {
        let store = Memory::default();
        let alice = key_of("alice");
        for _ in 0..DEFAULT_PER_USER {
            assert_eq!(check(&store, &alice, DEFAULT_PER_USER), Ok(Verdict::Mint));
        }
        assert_eq!(
            check(&store, &alice, DEFAULT_PER_USER),
            Ok(Verdict::Limited {
                first: true,
                retry_after: 60
            })
        );
        store.advance(20);
        for _ in 0..100 {
            assert_eq!(
                check(&store, &alice, DEFAULT_PER_USER),
                Ok(Verdict::Limited {
                    first: false,
                    retry_after: 40
                })
            );
        }
        // Another user is not limited by alice's client.
        assert_eq!(
            check(&store, &key_of("bob"), DEFAULT_PER_USER),
            Ok(Verdict::Mint)
        );
        // The window is fixed: it ends 60 s after the first mint, whatever came since.
        store.advance(40);
        assert_eq!(check(&store, &alice, DEFAULT_PER_USER), Ok(Verdict::Mint));
        assert_eq!(store.value(&alice), 1);
    }

    #[test]
    fn spellings_share_one_counter_and_no_login_budget_key() {
        assert_eq!(key_of("ALICE"), key_of("alice"));
        assert_ne!(key_of("alice"), key_of("bob"));
        let budgets = login_budget::keys(
            |m| String::from_utf8_lossy(m).replace('\0', "|"),
            "alice",
            "192.0.2.1",
        );
        for other in [budgets.address, budgets.user, budgets.user_from_address] {
            assert_ne!(other, key_of("alice"));
        }
    }

    #[test]
    fn a_store_that_cannot_count_is_an_error() {
        let store = Memory::default();
        *store.fail.borrow_mut() = true;
        assert_eq!(check(&store, &key_of("alice"), 1), Err("down"));
    }
}
