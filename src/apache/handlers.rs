//! `SetHandler memsession-login` and `memsession-logout`.
use std::ffi::c_int;

use super::bindings as ap;
use super::delegation;
use super::hooks::{hints, request_entry, same_site_or_trusted};
use super::log::Level;
use super::login_form;
use super::minting::{self, Refusal};
use super::request::{BodyError, Headers, Method, Request};
use super::status;
use crate::flow::credentials::LoginCredentials;
use crate::flow::login::{self, LoginRequest, LoginResponse};
use crate::flow::logout::{Everywhere, Scope};
use crate::flow::{logout, query, unix_now};
use crate::metrics::Counter;
use crate::web::{form, navigation};

const LOGIN_HANDLER: &str = "memsession-login";
const LOGOUT_HANDLER: &str = "memsession-logout";
const LOGIN_FORM_HANDLER: &str = "memsession-login-form";
/// A logout form is a field or two (and perhaps an application's own CSRF token); anything
/// larger is not one.
const MAX_LOGOUT_FORM_BYTES: usize = 8 * 1024;

#[no_mangle]
pub extern "C" fn memsession_rs_handler(raw: *mut ap::request_rec) -> c_int {
    request_entry(raw, |request| match request.handler() {
        Some(LOGIN_HANDLER) => login_handler(request),
        Some(LOGOUT_HANDLER) => logout_handler(request),
        Some(LOGIN_FORM_HANDLER) => login_form::handle(request),
        Some(super::status_handler::HANDLER) => super::status_handler::handle(request),
        #[cfg(feature = "fault-injection")]
        Some(TEST_PANIC_HANDLER) => panic_on_purpose(request),
        _ => status::DECLINED,
    })
}

/// `SetHandler memsession-test-panic`, only in a module built with the `fault-injection`
/// feature (`make test-module` builds it as build/test/mod_auth_memsession.so for the
/// integration suite): proves a panic becomes a logged 500 and the child lives on.
#[cfg(feature = "fault-injection")]
const TEST_PANIC_HANDLER: &str = "memsession-test-panic";

#[cfg(feature = "fault-injection")]
fn panic_on_purpose(request: &mut Request) -> c_int {
    panic!(
        "memsession-test-panic at {} (fault injection)",
        request.uri()
    );
}

fn login_handler(request: &mut Request) -> c_int {
    if !matches!(request.method(), "GET" | "HEAD" | "POST") {
        request.allow_methods(&[Method::Get, Method::Post]);
        return status::METHOD_NOT_ALLOWED;
    }
    let return_to = request
        .args()
        .and_then(|args| query::parameter(args, "return"));
    match minting::after_auth_module(request) {
        Ok(()) => {}
        Err(Refusal::SessionOnly) => return already_logged_in(request, return_to),
        Err(Refusal::NoUser) => {
            request.log(
                Level::Error,
                format_args!(
                    "SetHandler memsession-login at {} but no auth module authenticated the \
                     request: protect this location with an AuthType (GSSAPI, Basic, ...) and \
                     Require valid-user",
                    request.uri()
                ),
            );
            return status::INTERNAL_SERVER_ERROR;
        }
        Err(refusal @ Refusal::Inherited) => {
            request.log(
                Level::Info,
                format_args!("memsession-login: no session issued: {}", refusal.explain()),
            );
            delegation::discard_login_credentials(request);
            return status::UNAUTHORIZED;
        }
        Err(refusal @ Refusal::UserHtaccess(_)) => {
            request.log(
                Level::Error,
                format_args!("memsession-login: no session issued: {}", refusal.explain()),
            );
            delegation::discard_login_credentials(request);
            return status::FORBIDDEN;
        }
    }
    let Some(user) = request.user() else {
        return status::INTERNAL_SERVER_ERROR;
    };
    let auth_type = request.authenticated_type().unwrap_or("unknown");
    let credentials = delegation::login_credentials(request);
    finish_login(request, user, auth_type, return_to, credentials)
}

/// Mints the session for an authenticated user and answers: the part of a login that does
/// not depend on how the user proved who they are.
pub(super) fn finish_login(
    request: &mut Request,
    user: &str,
    auth_type: &str,
    return_to: Option<String>,
    credentials: LoginCredentials,
) -> c_int {
    let (Some(config), Some(store)) = (request.dir_config(), request.session_store()) else {
        return status::INTERNAL_SERVER_ERROR;
    };
    let cookie_header = request.cookie_header();
    let login_request = LoginRequest {
        user,
        auth_type,
        cookie_header: cookie_header.as_deref(),
        return_to,
        hints: hints(request),
        credential_end: credentials.end,
        ccache: credentials.ccache,
    };
    no_store(request);
    delegation::remove_source_after_request(request, credentials.source_file);
    let outcome = match login::login(login_request, config, store, unix_now()) {
        Ok(outcome) => outcome,
        Err(error) => {
            super::shared_metrics::count(crate::metrics::Counter::LOGIN_STORE_UNAVAILABLE);
            request.log(
                Level::Error,
                format_args!("login of {user} failed: {error}"),
            );
            request.set_header(Headers::ErrOut, "Retry-After", "5");
            return request.respond(
                status::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "The session store is unavailable; please try again in a moment.\n",
            );
        }
    };
    for old in &outcome.replaced {
        request.log(
            Level::Info,
            format_args!("login ended client-sent session {old}"),
        );
    }
    if outcome.refused_return {
        request.log(
            Level::Warning,
            format_args!(
                "login of {user}: return target refused (not a same-site path or a \
                 MemSessionTrustedOrigin); sending to /"
            ),
        );
    }
    request.log(
        Level::Info,
        format_args!(
            "session {} issued for {user} ({auth_type})",
            outcome.log_tag
        ),
    );
    request.set_cookie(&outcome.set_cookie);
    super::shared_metrics::count(crate::metrics::Counter::LOGIN_OK);
    send(request, outcome.response)
}

/// A login location reached on a valid session, without fresh credentials: the session goes
/// on as it is (its maximum lifetime and credential cap unchanged) and the client is sent
/// where it asked to go. A new session needs a new login.
fn already_logged_in(request: &mut Request, return_to: Option<String>) -> c_int {
    let (Some(config), Some(record)) = (request.dir_config(), request.validated()) else {
        return status::INTERNAL_SERVER_ERROR;
    };
    no_store(request);
    request.log(
        Level::Debug,
        format_args!(
            "memsession-login reached on a valid session of {}: kept, not renewed",
            record.user
        ),
    );
    let (response, _) = login::respond(return_to, &hints(request), config, record);
    send(request, response)
}

/// The answer of a login: 303 to where the client goes next, or JSON for XHR clients.
fn send(request: &mut Request, response: LoginResponse) -> c_int {
    match response {
        LoginResponse::Redirect(location) => {
            request.set_header(Headers::Out, "Location", &location);
            status::SEE_OTHER
        }
        LoginResponse::Json(body) => request.respond(status::HTTP_OK, "application/json", &body),
    }
}

pub(super) fn no_store(request: &mut Request) {
    request.set_header(Headers::ErrOut, "Cache-Control", "no-store");
}

fn logout_handler(request: &mut Request) -> c_int {
    let (Some(config), Some(store)) = (request.dir_config(), request.session_store()) else {
        return status::INTERNAL_SERVER_ERROR;
    };
    let method = request.method();
    let allowed =
        method == "POST" || (config.logout_allow_get() && matches!(method, "GET" | "HEAD"));
    if !allowed {
        if config.logout_allow_get() {
            request.allow_methods(&[Method::Get, Method::Post]);
        } else {
            request.allow_methods(&[Method::Post]);
        }
        return status::METHOD_NOT_ALLOWED;
    }
    if !same_site_or_trusted(request, config) {
        request.log(
            Level::Warning,
            format_args!("logout refused: Origin/Referer is not this site (MemSessionCSRFCheck)"),
        );
        super::shared_metrics::count(crate::metrics::Counter::CsrfRefused);
        return status::FORBIDDEN;
    }
    // `scope=all` comes only in a POSTed form (a GET, even where allowed, ends one session),
    // and only past the CSRF check above.
    let scope =
        if method == "POST" && form::is_urlencoded(request.header(Headers::In, c"Content-Type")) {
            match request.read_body(MAX_LOGOUT_FORM_BYTES) {
                Ok(body) => logout::scope(&body),
                Err(BodyError::TooLarge) => return status::REQUEST_ENTITY_TOO_LARGE,
                Err(BodyError::Unreadable) => return status::BAD_REQUEST,
            }
        } else {
            Scope::ThisSession
        };
    let cookie_header = request.cookie_header();
    let cookie_header = cookie_header.as_deref();
    // Before this session's record is deleted: it says whose sessions to end.
    let everywhere = (scope == Scope::Everywhere)
        .then(|| logout::everywhere(cookie_header, config, store, unix_now()));
    let outcome = logout::logout(cookie_header, config, store);
    no_store(request);
    request.set_cookie(&outcome.expire_cookie);
    let tag = outcome.log_tag.as_deref().unwrap_or("-");
    super::shared_metrics::count(Counter::Logout);
    if let Some(everywhere) = everywhere {
        return signed_out_everywhere(request, tag, everywhere, outcome.store_error);
    }
    if let Some(error) = outcome.store_error {
        super::shared_metrics::count(Counter::LogoutStoreError);
        request.log(
            Level::Error,
            format_args!("logout of session {tag}: the store did not delete it ({error}); it ends at its expiry"),
        );
        return request.respond(
            status::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            "Logged out of this browser, but the session store is unavailable; the session \
             ends at its expiry.\n",
        );
    }
    request.log(Level::Info, format_args!("session {tag} logged out"));
    logged_out(request, "{\"logged_out\":true}\n")
}

/// 303 to `MemSessionLogoutRedirect`, or `json` for XHR clients.
fn logged_out(request: &mut Request, json: &str) -> c_int {
    if navigation::wants_json(&hints(request)) {
        return request.respond(status::HTTP_OK, "application/json", json);
    }
    let Some(config) = request.dir_config() else {
        return status::INTERNAL_SERVER_ERROR;
    };
    let target = config.logout_redirect().to_string();
    request.set_header(Headers::Out, "Location", &target);
    status::SEE_OTHER
}

/// The answer to `scope=all` (this browser's cookie is already expired): done only when the
/// user's revocation reached every server; a server it missed is named in the log and the
/// client gets a 503 (trying again completes it), as `memsessionctl revoke-user` exits 2.
fn signed_out_everywhere(
    request: &mut Request,
    tag: &str,
    everywhere: Everywhere,
    delete_error: Option<crate::store::client::StoreError>,
) -> c_int {
    let Some(store) = request.session_store() else {
        return status::INTERNAL_SERVER_ERROR;
    };
    let servers = store.client().servers();
    match everywhere {
        Everywhere::Done { user } => {
            super::shared_metrics::count(Counter::LogoutEverywhere);
            request.log(
                Level::Info,
                format_args!(
                    "session {tag} signed out everywhere: every session of user {user:?} ended \
                     (revoked on all {} servers)",
                    servers.len()
                ),
            );
            if let Some(error) = delete_error {
                request.log(
                    Level::Warning,
                    format_args!(
                        "session {tag}: its record was not deleted ({error}); the revocation \
                         ended it anyway"
                    ),
                );
            }
            logged_out(request, "{\"logged_out\":true,\"scope\":\"all\"}\n")
        }
        Everywhere::Incomplete { user, missed } => {
            super::shared_metrics::count(Counter::LogoutEverywhereIncomplete);
            let missed_text: Vec<String> = missed
                .iter()
                .map(|(server, error)| match servers.get(*server) {
                    Some(address) => format!("{address} ({error})"),
                    None => format!("server {server} ({error})"),
                })
                .collect();
            request.log(
                Level::Error,
                format_args!(
                    "session {tag}: sign-out everywhere of user {user:?} NOT complete: {} of {} \
                     servers did not take the revocation: {}; sessions stored there live on \
                     until it is re-run (memsessionctl revoke-user, or the user signs out \
                     everywhere again)",
                    missed.len(),
                    servers.len(),
                    missed_text.join(", ")
                ),
            );
            unavailable(
                request,
                "Logged out of this browser, but the session store did not answer everywhere: \
                 some of your other sessions may still be active. Please try again in a moment.\n",
            )
        }
        Everywhere::Unavailable(error) => {
            super::shared_metrics::count(Counter::LogoutEverywhereIncomplete);
            request.log(
                Level::Error,
                format_args!(
                    "session {tag}: sign-out everywhere failed: the session could not be read \
                     ({error}); nothing was revoked"
                ),
            );
            unavailable(
                request,
                "Logged out of this browser, but the session store is unavailable: your other \
                 sessions are still active. Please try again in a moment.\n",
            )
        }
        Everywhere::NoSession(reason) => {
            request.log(
                Level::Info,
                format_args!(
                    "session {tag}: sign-out everywhere refused: no valid session ({reason})"
                ),
            );
            request.respond(
                status::UNAUTHORIZED,
                "text/plain; charset=utf-8",
                "No valid session here: log in to sign out everywhere.\n",
            )
        }
    }
}

fn unavailable(request: &mut Request, body: &str) -> c_int {
    request.set_header(Headers::ErrOut, "Retry-After", "5");
    request.respond(
        status::SERVICE_UNAVAILABLE,
        "text/plain; charset=utf-8",
        body,
    )
}
