//! Authentication on the session cookie: `AuthType MemSession`, and `MemSession On` in front
//! of another AuthType.
use crate::config::values::Unauthenticated;
use crate::config::DirConfig;
use crate::session::id::SessionId;
use crate::session::record::SessionRecord;
use crate::session_store::{self, Policy, Rejection, SessionStore, Validated};
use crate::web::navigation::{self, RequestHints};

use super::cookies::{self, CookieLookup};
use super::query;

/// The facts of a request that authentication looks at. What only the unauthenticated answer
/// needs (the navigation hints, the return path) is read by [`challenge`]'s caller, only
/// when a request gets one.
pub struct AuthRequest<'a> {
    pub cookie_header: Option<&'a str>,
    /// The request passes `MemSessionCSRFCheck`: a safe method, the check off, or an
    /// Origin/Referer of this site or a trusted origin (see `web::csrf`).
    pub passes_csrf_check: bool,
}

/// What the unauthenticated answer looks at.
pub struct ChallengeRequest<'a> {
    /// The request line's URI, used as the return path after login.
    pub unparsed_uri: &'a str,
    pub hints: RequestHints<'a>,
}

/// Why a request was not authenticated, with a stable short name for logs and metrics.
#[derive(Debug)]
pub enum Refusal {
    NoCookie,
    MalformedCookie,
    AmbiguousCookie,
    Rejected(Rejection),
}

impl Refusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NoCookie => "no-cookie",
            Refusal::MalformedCookie => "malformed-cookie",
            Refusal::AmbiguousCookie => "ambiguous-cookie",
            Refusal::Rejected(rejection) => rejection.reason(),
        }
    }

    /// The cookie is dead for good and the response should make the browser drop it. A
    /// store failure is not the client's fault: its cookie resumes when the store is back.
    pub fn expires_cookie(&self) -> bool {
        match self {
            Refusal::NoCookie => false,
            Refusal::MalformedCookie => true,
            // Which one to expire? A host-only expiry removes the victim's cookie and leaves
            // one a sibling host planted for the parent domain in place: the next request
            // would ride the planter's session. Both stay; neither is used.
            Refusal::AmbiguousCookie => false,
            Refusal::Rejected(rejection) => rejection.ends_cookie(),
        }
    }
}

pub enum Outcome {
    Authenticated {
        session: Validated,
        /// A refreshed persistent cookie, when the session's window moved.
        set_cookie: Option<String>,
        id: SessionId,
    },
    /// A valid session on an unsafe method from a foreign origin.
    CrossOrigin { id: SessionId },
    Refused {
        refusal: Refusal,
        /// The session the cookie named, if it was well-formed.
        id: Option<SessionId>,
    },
}

pub fn authenticate(
    request: &AuthRequest,
    config: &DirConfig,
    store: &SessionStore,
    now: u64,
) -> Outcome {
    let id = match cookies::lookup(request.cookie_header, config.cookie_name()) {
        CookieLookup::Absent => {
            return Outcome::Refused {
                refusal: Refusal::NoCookie,
                id: None,
            }
        }
        CookieLookup::Malformed => {
            return Outcome::Refused {
                refusal: Refusal::MalformedCookie,
                id: None,
            }
        }
        CookieLookup::Ambiguous => {
            return Outcome::Refused {
                refusal: Refusal::AmbiguousCookie,
                id: None,
            }
        }
        CookieLookup::Present(id) => id,
    };
    let session = match store.validate(&id, &policy(config), now) {
        Ok(session) => session,
        Err(rejection) => {
            return Outcome::Refused {
                refusal: Refusal::Rejected(rejection),
                id: Some(id),
            }
        }
    };
    if !request.passes_csrf_check {
        return Outcome::CrossOrigin { id };
    }
    let set_cookie = (session.refreshed && config.cookie_persistent())
        .then(|| cookies::session_cookie(config, &id, &session.record, now));
    Outcome::Authenticated {
        session,
        set_cookie,
        id,
    }
}

fn policy(config: &DirConfig) -> Policy {
    Policy {
        inactivity_timeout: config.inactivity_timeout(),
        max_lifetime: config.max_lifetime(),
        extend: config.extend(),
    }
}

/// Why a session validated for an earlier request is not good enough where this one landed.
#[derive(Debug)]
pub enum Recheck {
    CrossOrigin,
    Refused(Refusal),
}

/// A request derived from one already authenticated on its session (an internal redirect, an
/// error document, a subrequest): no second store round trip, but the location it lands in
/// applies its own CSRF rule and its own, possibly stricter, limits to the record.
pub fn recheck(
    record: &SessionRecord,
    request: &AuthRequest,
    config: &DirConfig,
    now: u64,
) -> Result<(), Recheck> {
    session_store::check_lifetime(record, &policy(config), now)
        .map_err(|rejection| Recheck::Refused(Refusal::Rejected(rejection)))?;
    if !request.passes_csrf_check {
        return Err(Recheck::CrossOrigin);
    }
    Ok(())
}

/// What an unauthenticated request gets under `MemSessionUnauthenticated`.
#[derive(Debug, PartialEq, Eq)]
pub enum Challenge {
    Status401,
    /// 303 to the login URL, carrying the validated way back.
    Redirect(String),
}

pub fn challenge(request: &ChallengeRequest, config: &DirConfig) -> Challenge {
    let redirect = match config.unauthenticated() {
        Unauthenticated::Status401 => false,
        Unauthenticated::Redirect => true,
        Unauthenticated::Auto => navigation::is_browser_navigation(&request.hints),
    };
    if !redirect {
        return Challenge::Status401;
    }
    let login_url = config.login_url();
    let separator = if login_url.contains('?') { '&' } else { '?' };
    Challenge::Redirect(format!(
        "{login_url}{separator}return={}",
        query::percent_encode_component(request.unparsed_uri)
    ))
}
