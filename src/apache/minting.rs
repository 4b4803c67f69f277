//! Who may mint a session: the one rule every path that issues one (`MemSession On`,
//! `memsession-login`, `memsession-login-form`) asks before it does.
//!
//! `r->user` is not proof. mod_auth_basic sets it before it checks the password, and httpd
//! copies it into an internal redirect (an `ErrorDocument` among them) or a subrequest whose
//! configuration equals its parent's, skipping the authentication phases there
//! (`ap_process_request_internal` in httpd's server/request.c). What httpd does guarantee:
//! when it runs the authentication phase (`check_user_id`) on a request, that request reaches
//! fixups and its handler only if authentication and authorization both succeeded. This
//! module's check_authn hook runs first in that phase and notes it on the request itself
//! (`r->notes`, which neither an internal redirect nor a subrequest inherits); a request
//! carrying the note, past authorization, with a user this module did not vouch for from a
//! cookie, authenticated here and now.
//!
//! Whoever writes a `.htaccess` file that may change authentication or handlers configures
//! the location's password check, so no session is minted where one applies: a directory
//! owner must not issue sessions valid on the whole host.
use std::ffi::CStr;

use super::request::Request;

/// Set by the check_authn hook on every request httpd runs the authentication phase for.
pub const NOTE_AUTHN_PHASE: &CStr = c"memsession-authn-phase";
/// Set on a request whose user this module vouched for from a session cookie (value: user).
pub const NOTE_VALIDATED: &CStr = c"memsession-user";
/// Set on a request for which this module issued a session.
pub const NOTE_ISSUED: &CStr = c"memsession-issued";

#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No user at all: no auth module protects the location.
    NoUser,
    /// The user came from this module's own session cookie: a session never renews itself.
    SessionOnly,
    /// The user was inherited without this request authenticating (an internal redirect, an
    /// error document or a subrequest).
    Inherited,
    /// A `.htaccess` file in this directory may configure the location's authentication.
    UserHtaccess(String),
}

impl Refusal {
    pub fn explain(&self) -> String {
        match self {
            Refusal::NoUser => "no auth module authenticated the request".to_string(),
            Refusal::SessionOnly => "the request rode an existing session".to_string(),
            Refusal::Inherited => "the user was inherited from another request (internal \
                                   redirect, error document or subrequest), not authenticated \
                                   by this one"
                .to_string(),
            Refusal::UserHtaccess(dir) => format!(
                "a .htaccess file in {dir} may change this location's authentication \
                 (AllowOverride AuthConfig or FileInfo); sessions are minted only where the \
                 administrator alone configures it"
            ),
        }
    }
}

/// Whether this request may mint a session for the user another auth module set.
pub fn after_auth_module(request: &Request) -> Result<(), Refusal> {
    if request.user().is_none() {
        return Err(Refusal::NoUser);
    }
    if request.note(NOTE_VALIDATED).is_some() {
        return Err(Refusal::SessionOnly);
    }
    if request.is_subrequest() || request.note(NOTE_AUTHN_PHASE).is_none() {
        return Err(Refusal::Inherited);
    }
    outside_user_htaccess(request)
}

/// Whether a handler that checked a password itself may mint a session on it.
pub fn after_own_password_check(request: &Request) -> Result<(), Refusal> {
    if request.is_subrequest() {
        return Err(Refusal::Inherited);
    }
    outside_user_htaccess(request)
}

fn outside_user_htaccess(request: &Request) -> Result<(), Refusal> {
    match request.htaccess_that_may_configure_auth() {
        Some(dir) => Err(Refusal::UserHtaccess(dir)),
        None => Ok(()),
    }
}
