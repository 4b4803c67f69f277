//! `MemSessionStripCookie`: a session cookie is a bearer token for the module alone, so every
//! one of the server's session cookies (this location's name, the default, any other name
//! the server's configuration gives) is taken out of the request before a backend (CGI,
//! proxied server, SSI) sees it; the other cookies go through. The module itself still reads
//! them, through a copy of the header as sent kept in a note: its own handlers (logout ends
//! the session it names) and the requests derived afterwards (an ErrorDocument, an internal
//! redirect, a subrequest).
use std::ffi::CStr;

use super::log::Level;
use super::request::Request;
use crate::config::DirConfig;
use crate::web::cookie::{self, Stripped};

/// The `Cookie` header as the client sent it, on a request the session cookie was taken out
/// of. Read back by `Request::cookie_header`.
pub const NOTE_CLIENT_COOKIE: &CStr = c"memsession-client-cookie";

pub fn hide_from_backend(request: &mut Request, config: &DirConfig) {
    if !config.strip_cookie() {
        return;
    }
    let Some(sent) = request.sent_cookie_bytes() else {
        return;
    };
    let own = config.cookie_name().as_bytes();
    let server = request.server_state().map(|state| &state.config);
    let is_session = |name: &[u8]| {
        name == own || server.is_some_and(|config| config.is_session_cookie_name(name))
    };
    let rest = match cookie::without(sent, is_session) {
        Stripped::Unchanged => return,
        Stripped::Rest(rest) => Some(rest),
        Stripped::Nothing => None,
    };
    request.keep_sent_cookie_header();
    request.replace_cookie_header(rest.as_deref());
    request.log(
        Level::Debug,
        format_args!(
            "took the session cookie out of the request for the backend (MemSessionStripCookie)"
        ),
    );
}
