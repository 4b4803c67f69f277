//! `memsession-logout`: delete the session (and the credentials it holds), expire the cookie;
//! with `scope=all` in the POSTed form, end every session of the session's user ("sign out
//! everywhere"), as `memsessionctl revoke-user` does.
use std::time::Duration;

use crate::config::DirConfig;
use crate::session_store::{Policy, Rejection, SessionStore};
use crate::store::client::StoreError;
use crate::web::form;

use super::cookies::{self, CookieLookup};

pub struct LogoutOutcome {
    pub expire_cookie: String,
    pub log_tag: Option<String>,
    /// The store failed while deleting: the session may outlive the cookie.
    pub store_error: Option<StoreError>,
}

/// What a logout ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The session the cookie names (the default).
    ThisSession,
    /// Every session of the user the cookie's session belongs to (`scope=all`).
    Everywhere,
}

/// The scope a POSTed `application/x-www-form-urlencoded` body asks for: `scope=all` is
/// everywhere; anything else (absent, empty, unknown) is this session only.
pub fn scope(body: &[u8]) -> Scope {
    match form::field(body, "scope").as_deref() {
        Some("all") => Scope::Everywhere,
        _ => Scope::ThisSession,
    }
}

pub fn logout(
    cookie_header: Option<&str>,
    config: &DirConfig,
    store: &SessionStore,
) -> LogoutOutcome {
    let mut log_tag = None;
    let mut store_error = None;
    for id in cookies::all_ids(cookie_header, config.cookie_name()) {
        log_tag.get_or_insert_with(|| id.log_tag());
        if let Err(error) = store.delete(&id) {
            store_error = Some(error);
        }
    }
    LogoutOutcome {
        expire_cookie: cookies::expired_cookie(config),
        log_tag,
        store_error,
    }
}

/// What `scope=all` achieved.
#[derive(Debug)]
pub enum Everywhere {
    /// Every session of `user` ends at its next request, on every server.
    Done { user: String },
    /// The revocation did not reach these servers (indexes in `MemSessionServers`, and why):
    /// sessions stored there live on until it is re-run (or the server is reset).
    Incomplete {
        user: String,
        missed: Vec<(usize, StoreError)>,
    },
    /// The cookie names no valid session (none, malformed, several, expired, revoked...):
    /// there is no user to sign out.
    NoSession(&'static str),
    /// The session could not be read (the store failed): nothing was revoked.
    Unavailable(StoreError),
}

/// Ends every session of the user whose valid session the cookie names: the user's epoch is
/// replaced on every server (`SessionStore::revoke_user`, exactly as `memsessionctl
/// revoke-user` does). Only the session's own limits are checked, not the logout location's:
/// any session that can be used somewhere may end them all.
pub fn everywhere(
    cookie_header: Option<&str>,
    config: &DirConfig,
    store: &SessionStore,
    now: u64,
) -> Everywhere {
    let id = match cookies::lookup(cookie_header, config.cookie_name()) {
        CookieLookup::Present(id) => id,
        CookieLookup::Absent => return Everywhere::NoSession("no-cookie"),
        CookieLookup::Malformed => return Everywhere::NoSession("malformed-cookie"),
        CookieLookup::Ambiguous => return Everywhere::NoSession("ambiguous-cookie"),
    };
    let own_limits_only = Policy {
        inactivity_timeout: Duration::ZERO,
        max_lifetime: Duration::ZERO,
        extend: false,
    };
    let user = match store.validate(&id, &own_limits_only, now) {
        Ok(validated) => validated.record.user.clone(),
        Err(Rejection::Store(error)) => return Everywhere::Unavailable(error),
        Err(rejection) => return Everywhere::NoSession(rejection.reason()),
    };
    let revocation = store.revoke_user(&user);
    if revocation.is_complete() {
        Everywhere::Done { user }
    } else {
        Everywhere::Incomplete {
            user,
            missed: revocation.missed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_scope_all_ends_every_session() {
        assert_eq!(scope(b"scope=all"), Scope::Everywhere);
        assert_eq!(scope(b"x=1&scope=all"), Scope::Everywhere);
        assert_eq!(scope(b"scope=%61ll"), Scope::Everywhere);
        for body in [
            &b""[..],
            b"scope=",
            b"scope=ALL",
            b"scope=all ",
            b"scope=this",
            b"scopes=all",
            b"all",
            b"scope=one&scope=all",
            b"scope=%ff",
        ] {
            assert_eq!(scope(body), Scope::ThisSession, "{body:?}");
        }
    }
}
