//! check_authn and fixups: authenticate on the cookie, issue sessions behind other auth
//! modules, and hand the user to backends.
use std::ffi::{c_int, CStr};

use super::backend_cookie;
use super::bindings as ap;
use super::boundary;
use super::delegation;
use super::log::Level;
use super::minting::{self, NOTE_AUTHN_PHASE, NOTE_ISSUED, NOTE_VALIDATED};
use super::request::{Headers, Request};
use super::status;
use crate::config::DirConfig;
use crate::flow::authenticate::{self, AuthRequest, Challenge, ChallengeRequest, Outcome, Recheck};
use crate::flow::{cookies, unix_now};
use crate::session::id::SessionId;
use crate::session_store::NewSession;
use crate::web::navigation::RequestHints;
use crate::web::return_path;
use crate::web::{csrf, header_name};

pub const AUTH_TYPE: &str = "MemSession";
/// The same, as `r->ap_auth_type` holds it (a constant: no copy per request).
const AUTH_TYPE_C: &CStr = c"MemSession";
/// How the user logged in, for the backend.
const LOGIN_AUTH_TYPE_ENV: &CStr = c"MEMSESSION_LOGIN_AUTH_TYPE";

/// Runs a request hook inside the panic boundary: a panic is logged with the request and
/// answers 500 — never OK or DECLINED, which would let the request through.
pub fn request_entry(raw: *mut ap::request_rec, body: impl FnOnce(&mut Request) -> c_int) -> c_int {
    boundary::guard(
        status::INTERNAL_SERVER_ERROR,
        |text| {
            super::log::request(
                raw,
                Level::Error,
                format_args!("internal error (panic) in mod_auth_memsession: {text}"),
            )
        },
        || {
            // SAFETY: Apache passes the live request to the hook calling us.
            match unsafe { Request::from_raw(raw) } {
                Some(mut request) => body(&mut request),
                None => status::INTERNAL_SERVER_ERROR,
            }
        },
    )
}

pub fn hints<'r>(request: &Request<'r>) -> RequestHints<'r> {
    RequestHints {
        method: request.method(),
        accept: request.header(Headers::In, c"Accept"),
        sec_fetch_mode: request.header(Headers::In, c"Sec-Fetch-Mode"),
        sec_fetch_dest: request.header(Headers::In, c"Sec-Fetch-Dest"),
        x_requested_with: request.header(Headers::In, c"X-Requested-With"),
    }
}

/// This site's origin, normalised as CSRF checks compare it.
fn own_origin(request: &Request) -> String {
    let constructed = request.own_origin();
    return_path::normalise_origin(&constructed).unwrap_or(constructed)
}

/// `MemSessionCSRFCheck`: a request on an unsafe method must come from this site (or a
/// trusted origin). Safe methods pass without building the origin.
pub fn same_site_or_trusted(request: &Request, config: &DirConfig) -> bool {
    if !config.csrf_check() || !csrf::is_unsafe_method(request.method()) {
        return true;
    }
    let own_origin = own_origin(request);
    let origin = request.header(Headers::In, c"Origin");
    let referer = request.header(Headers::In, c"Referer");
    csrf::origin_allowed(origin, referer, &own_origin, config.trusted_origins())
}

#[no_mangle]
pub extern "C" fn memsession_rs_check_authn(raw: *mut ap::request_rec) -> c_int {
    request_entry(raw, check_authn)
}

fn check_authn(request: &mut Request) -> c_int {
    let Some(config) = request.dir_config() else {
        return status::DECLINED;
    };
    let primary = request
        .configured_auth_type()
        .is_some_and(|auth_type| auth_type.eq_ignore_ascii_case(AUTH_TYPE));
    if !primary {
        // Proof for fixups and the login handlers that this very request went through the
        // authentication phase (see minting.rs); AuthType MemSession locations mint nothing.
        request.set_note_static(NOTE_AUTHN_PHASE, c"1");
        if !config.enabled() {
            return status::DECLINED;
        }
    }
    let cookie_header = request.cookie_header();
    let facts = AuthRequest {
        cookie_header: cookie_header.as_deref(),
        passes_csrf_check: same_site_or_trusted(request, config),
    };
    // A subrequest or internal redirect of a request already authenticated on its session:
    // same client, same cookie, so no second round trip; this location's rules still apply.
    if let Some(record) = request.validated() {
        return match authenticate::recheck(record, &facts, config, unix_now()) {
            Ok(()) => {
                request.set_user_noted(&record.user, AUTH_TYPE_C, NOTE_VALIDATED);
                delegation::lend_to_backend(request, config, record);
                status::OK
            }
            Err(Recheck::CrossOrigin) => cross_origin(request, "-"),
            Err(Recheck::Refused(refusal)) => refuse(request, config, primary, refusal, None),
        };
    }
    let Some(store) = request.session_store() else {
        return status::INTERNAL_SERVER_ERROR;
    };
    match authenticate::authenticate(&facts, config, store, unix_now()) {
        Outcome::Authenticated {
            session,
            set_cookie,
            id,
        } => {
            let user = session.record.user.as_str();
            super::shared_metrics::count(crate::metrics::Counter::validation("ok"));
            request.log(
                Level::Debug,
                format_args!(
                    "session {} valid for user {user}{}",
                    id.tag(),
                    if session.from_local_cache {
                        " (local cache)"
                    } else {
                        ""
                    }
                ),
            );
            request.set_user_noted(user, AUTH_TYPE_C, NOTE_VALIDATED);
            request.set_env_static_name(LOGIN_AUTH_TYPE_ENV, &session.record.auth_type);
            if let Some(cookie) = set_cookie {
                request.set_cookie(&cookie);
            }
            delegation::lend_to_backend(request, config, &session.record);
            request.keep_validated(session.record);
            status::OK
        }
        Outcome::CrossOrigin { id } => cross_origin(request, &id.tag().to_string()),
        Outcome::Refused { refusal, id } => refuse(request, config, primary, refusal, id.as_ref()),
    }
}

fn cross_origin(request: &Request, session_tag: &str) -> c_int {
    super::shared_metrics::count(crate::metrics::Counter::CsrfRefused);
    request.log(
        Level::Warning,
        format_args!(
            "session {session_tag}: {} {} refused: Origin/Referer is not this site or a \
             MemSessionTrustedOrigin (MemSessionCSRFCheck)",
            request.method(),
            request.uri()
        ),
    );
    status::FORBIDDEN
}

/// No valid session for this location: the unauthenticated answer, or the location's own
/// AuthType next (`MemSession On`).
fn refuse(
    request: &mut Request,
    config: &DirConfig,
    primary: bool,
    refusal: authenticate::Refusal,
    id: Option<&SessionId>,
) -> c_int {
    super::shared_metrics::count(crate::metrics::Counter::validation(refusal.reason()));
    let level = match &refusal {
        authenticate::Refusal::Rejected(rejection) if !rejection.is_final() => Level::Error,
        _ => Level::Debug,
    };
    request.log(
        level,
        format_args!(
            "no valid session ({}; session {}): {refusal:?}",
            refusal.reason(),
            OptionalTag(id)
        ),
    );
    if !primary {
        // The location's own AuthType runs next; on success fixups issues a session.
        return status::DECLINED;
    }
    if refusal.expires_cookie() {
        request.set_cookie(&cookies::expired_cookie(config));
    }
    let facts = ChallengeRequest {
        unparsed_uri: request.unparsed_uri(),
        hints: hints(request),
    };
    match authenticate::challenge(&facts, config) {
        Challenge::Status401 => status::UNAUTHORIZED,
        Challenge::Redirect(location) => {
            request.set_header(Headers::Out, "Location", &location);
            status::SEE_OTHER
        }
    }
}

#[no_mangle]
pub extern "C" fn memsession_rs_fixups(raw: *mut ap::request_rec) -> c_int {
    request_entry(raw, fixups)
}

fn fixups(request: &mut Request) -> c_int {
    let Some(config) = request.dir_config() else {
        return status::DECLINED;
    };
    if let Some(header) = config.user_header_to_clean() {
        remove_client_copies(request, header);
    }
    if let Some(header) = config.user_header() {
        if let Some(user) = request.user() {
            request.set_header(Headers::In, header, user);
        }
    }
    if config.enabled() && should_issue(request) {
        issue_session(request, config);
    }
    backend_cookie::hide_from_backend(request, config);
    status::DECLINED
}

/// `MemSession On`: another auth module authenticated this very request, and no session of
/// ours did: issue one, once per client request.
fn should_issue(request: &Request) -> bool {
    match minting::after_auth_module(request) {
        Ok(()) => !request.ancestors().any(|r| r.note(NOTE_ISSUED).is_some()),
        Err(refusal @ minting::Refusal::UserHtaccess(_)) => {
            request.log(
                Level::Warning,
                format_args!(
                    "MemSession On: no session issued for {}: {}",
                    request.user().unwrap_or("-"),
                    refusal.explain()
                ),
            );
            false
        }
        Err(refusal @ minting::Refusal::Inherited) => {
            request.log(
                Level::Debug,
                format_args!("MemSession On: no session issued: {}", refusal.explain()),
            );
            false
        }
        Err(_) => false,
    }
}

/// Removes every client-sent copy of the user header — under any spelling the CGI
/// environment would fold to the same name.
fn remove_client_copies(request: &mut Request, header: &str) {
    for name in request.header_names(Headers::In) {
        if header_name::same_cgi_name(&name, header) {
            request.log(
                Level::Debug,
                format_args!("removed client-sent {name} header (MemSessionUserHeader)"),
            );
            request.unset_header(Headers::In, &name);
        }
    }
}

fn issue_session(request: &mut Request, config: &DirConfig) {
    let (Some(user), Some(store)) = (request.user(), request.session_store()) else {
        return;
    };
    let auth_type = request.authenticated_type().unwrap_or("unknown");
    if !super::login_budget::admit_mint(request, config, user) {
        // Served on its own credentials; the auth module's credential copy still goes.
        delegation::discard_login_credentials(request);
        return;
    }
    let credentials = delegation::login_credentials(request);
    let new = NewSession {
        user: user.to_string(),
        auth_type: auth_type.to_string(),
        inactivity_timeout: config.inactivity_timeout(),
        max_lifetime: config.max_lifetime(),
        credential_end: credentials.end,
        cap_to_credentials: config.cap_to_credentials(),
        ccache: credentials.ccache,
    };
    let now = unix_now();
    delegation::remove_source_after_request(request, credentials.source_file);
    match store.create(new, now) {
        Ok((id, record)) => {
            request.log(
                Level::Info,
                format_args!(
                    "issued session {} for {user} after {auth_type} auth",
                    id.log_tag()
                ),
            );
            let cookie = cookies::session_cookie(config, &id, &record, now);
            request.set_cookie(&cookie);
            request.set_note(NOTE_ISSUED, "1");
            super::shared_metrics::count(crate::metrics::Counter::SessionIssued);
        }
        // The user is authenticated by the other module anyway; only the shortcut is lost.
        Err(error) => {
            super::shared_metrics::count(crate::metrics::Counter::SessionIssueFailed);
            request.log(
                Level::Error,
                format_args!("could not issue a session for {user} (MemSession On): {error}"),
            );
        }
    }
}

/// A session's log tag, or "-" when the request named none.
struct OptionalTag<'a>(Option<&'a SessionId>);

impl std::fmt::Display for OptionalTag<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(id) => id.tag().fmt(f),
            None => f.write_str("-"),
        }
    }
}
