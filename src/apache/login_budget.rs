//! The guessing budgets of `memsession-login-form` (`MemSessionLoginLimit*`) and the bound
//! on sessions `MemSession On` mints (`MemSessionMintLimit`), applied to a request: the logic is `flow::login_budget`; this gathers the request's facts, answers a
//! spent budget with 429 and logs each refusal in the one stable format the shipped fail2ban
//! filter (`apache-conf/fail2ban/`) reads.
use std::ffi::c_int;

use super::log::Level;
use super::request::{Headers, Request};
use super::status;
use crate::config::dir::DirConfig;
use crate::flow::login_budget::{self, Reservation};
use crate::flow::mint_limit::{self, Verdict};
use crate::metrics::Counter;

/// Reserves this attempt in the budgets in force before any provider or KDC is asked.
/// `Ok(None)`: no budget here. `Err`: the answer already given (429 for a spent budget, 503
/// when the store cannot count: budgets fail closed, see the README).
pub(super) fn admit(
    request: &mut Request,
    config: &DirConfig,
    user: &str,
) -> Result<Option<Reservation>, c_int> {
    let limits = config.login_limits();
    if limits.is_off() {
        return Ok(None);
    }
    let Some(store) = request.session_store() else {
        return Err(status::INTERNAL_SERVER_ERROR);
    };
    let Some(deriver) = store.derivers().next() else {
        return Err(status::INTERNAL_SERVER_ERROR);
    };
    let name = login_budget::budget_user(user, config.kerberos_realm());
    let bucket = login_budget::address_bucket(request.client_address());
    let keys = login_budget::keys(|m| deriver.login_budget_key(m), &name, &bucket);
    match login_budget::reserve(store.client(), &keys, &limits) {
        Ok(Ok(reservation)) => Ok(Some(reservation)),
        Ok(Err(refusal)) => {
            request.log(
                Level::Warning,
                format_args!(
                    "memsession-login-form: login refused for user {user:?}: too many failed \
                     logins (budget={} limit={} window={}s), retry after {}s; no password was \
                     checked",
                    refusal.scope.as_str(),
                    refusal.limit,
                    limits.window.as_secs(),
                    refusal.retry_after
                ),
            );
            super::shared_metrics::count(Counter::LOGIN_LIMITED);
            request.set_header(
                Headers::ErrOut,
                "Retry-After",
                &refusal.retry_after.to_string(),
            );
            Err(super::login_form::refusal(
                request,
                status::TOO_MANY_REQUESTS,
                "too many failed logins",
                "Too many failed logins; try again later.\n",
            ))
        }
        Err(error) => {
            request.log(
                Level::Error,
                format_args!(
                    "memsession-login-form: login refused for user {user:?}: the session store \
                     cannot count failed logins ({error}); no password was checked"
                ),
            );
            super::shared_metrics::count(Counter::LOGIN_STORE_UNAVAILABLE);
            request.set_header(Headers::ErrOut, "Retry-After", "5");
            Err(request.respond(
                status::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "The session store is unavailable; please try again in a moment.\n",
            ))
        }
    }
}

/// The attempt did not count (right password, or no verdict on it: a KDC down, a provider
/// error): its slots go back.
pub(super) fn give_back(request: &Request, reservation: Option<Reservation>) {
    let (Some(reservation), Some(store)) = (reservation, request.session_store()) else {
        return;
    };
    if let Err(error) = reservation.give_back(store.client()) {
        request.log(
            Level::Warning,
            format_args!(
                "memsession-login-form: could not give back a login attempt's budget slots \
                 ({error}); they count as failures until their window ends"
            ),
        );
    }
}

/// `MemSessionMintLimit`: whether `MemSession On` may mint one more session for `user` here.
/// Past the bound (or with a store that cannot count) the request is served on the
/// credentials it came with, without a session: logged at warning level once per user and
/// window (a client that ignores cookies repeats it on every request), counted every time.
pub(super) fn admit_mint(request: &Request, config: &DirConfig, user: &str) -> bool {
    let Some(limit) = config.mint_limit() else {
        return true;
    };
    let Some(deriver) = request.session_store().and_then(|s| s.derivers().next()) else {
        return false;
    };
    let Some(store) = request.session_store() else {
        return false;
    };
    let key = mint_limit::key(|m| deriver.login_budget_key(m), user);
    match mint_limit::check(store.client(), &key, limit) {
        Ok(Verdict::Mint) => true,
        Ok(Verdict::Limited { first, retry_after }) => {
            super::shared_metrics::count(Counter::SessionMintLimited);
            request.log(
                if first { Level::Warning } else { Level::Debug },
                format_args!(
                    "MemSession On: no session issued for user {user:?}: {limit} sessions were \
                     issued for this user in the last {}s (MemSessionMintLimit {limit}; a client \
                     that does not return the cookie?); the request is served on its own \
                     credentials; sessions again in {retry_after}s",
                    mint_limit::WINDOW.as_secs()
                ),
            );
            false
        }
        Err(error) => {
            super::shared_metrics::count(Counter::SessionIssueFailed);
            request.log(
                Level::Error,
                format_args!(
                    "MemSession On: no session issued for user {user:?}: the session store \
                     cannot count the sessions issued (MemSessionMintLimit): {error}"
                ),
            );
            false
        }
    }
}
