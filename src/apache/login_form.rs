//! `SetHandler memsession-login-form`: a POSTed user and password, checked through Apache's
//! own authn providers (`MemSessionPasswordProvider file ldap ...`, as mod_auth_form does)
//! and then, for a user none of them knows, through Kerberos in-process
//! (`MemSessionKerberosRealm`), whose TGT is sealed in the session like delegated credentials.
//! Bad credentials get a 401 that does not say which part was wrong.
use std::ffi::c_int;
use std::sync::OnceLock;
use std::time::Instant;

use super::handlers::{finish_login, no_store};
use super::hooks::{hints, same_site_or_trusted};
use super::krb5_password::{self, Failure};
use super::log::Level;
use super::login_budget;
use super::minting;
use super::request::{BodyError, Headers, Method, PasswordCheck, Request};
use super::status;
use crate::flow::credentials::LoginCredentials;
use crate::flow::login_timing;
use crate::flow::query;
use crate::krb5::kdc_guard::{Admission, Asking, KdcGuard, SharedWaiters, UNREACHABLE_INTERVAL};
use crate::krb5::login_name::{self, NameRefusal};
use crate::web::{form, navigation};

/// A login form is a few fields; anything larger is not one.
const MAX_FORM_BYTES: usize = 8 * 1024;
const AUTH_TYPE: &str = "Form";

pub fn handle(request: &mut Request) -> c_int {
    let Some(config) = request.dir_config() else {
        return status::INTERNAL_SERVER_ERROR;
    };
    if request.method() != "POST" {
        request.allow_methods(&[Method::Post]);
        return status::METHOD_NOT_ALLOWED;
    }
    if let Err(refusal) = minting::after_own_password_check(request) {
        request.log(
            Level::Error,
            format_args!(
                "memsession-login-form: no login here: {}",
                refusal.explain()
            ),
        );
        return status::FORBIDDEN;
    }
    if !form::is_urlencoded(request.header(Headers::In, c"Content-Type")) {
        return status::UNSUPPORTED_MEDIA_TYPE;
    }
    // A cross-site form post would log the victim into the attacker's account.
    if !same_site_or_trusted(request, config) {
        request.log(
            Level::Warning,
            format_args!(
                "login form refused: Origin/Referer is not this site (MemSessionCSRFCheck)"
            ),
        );
        super::shared_metrics::count(crate::metrics::Counter::CsrfRefused);
        return status::FORBIDDEN;
    }
    let mut body = match request.read_body(MAX_FORM_BYTES) {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return status::REQUEST_ENTITY_TOO_LARGE,
        Err(BodyError::Unreadable) => return status::BAD_REQUEST,
    };
    // The body is wiped as its fields are taken; the password's own copy when it is dropped
    // at the end of this handler (and every copy made to check it, once the check is done).
    let [user, password, return_to] = form::take_fields(&mut body, ["user", "password", "return"]);
    let (Some(user), Some(password)) = (user, password) else {
        return status::BAD_REQUEST;
    };
    let user = user.to_string();
    let return_to = return_to.map(|r| r.to_string()).or_else(|| {
        request
            .args()
            .and_then(|args| query::parameter(args, "return"))
    });
    no_store(request);
    // Budgets first: a spent one is refused before any provider or KDC is asked, whatever
    // the password.
    let reservation = match login_budget::admit(request, config, &user) {
        Ok(reservation) => reservation,
        Err(answer) => return answer,
    };
    let verdict = if user.is_empty() || password.is_empty() {
        Ok(Verdict::Refused("empty user or password".to_string()))
    } else {
        match check(request, &config.password_providers(), &user, &password) {
            Ok(ProviderAnswer::Granted(name)) => {
                Ok(Verdict::Granted(name, LoginCredentials::default()))
            }
            Ok(ProviderAnswer::Denied) => Ok(Verdict::Refused("wrong password".to_string())),
            Ok(ProviderAnswer::Unknown) => match config.kerberos_realm() {
                Some(realm) => kerberos(request, realm, config.kerberos_keytab(), &user, &password),
                None => Ok(Verdict::Refused("unknown user".to_string())),
            },
            Err(code) => Err(code),
        }
    };
    match verdict {
        Ok(Verdict::Granted(name, credentials)) => {
            login_budget::give_back(request, reservation);
            if name != user {
                request.log(
                    Level::Debug,
                    format_args!(
                        "memsession-login-form: {user:?} logged in as {name:?}, the name the \
                         provider or KDC settled on"
                    ),
                );
            }
            request.set_user(&name, AUTH_TYPE);
            finish_login(request, &name, AUTH_TYPE, return_to, credentials)
        }
        Ok(Verdict::Refused(why)) => {
            request.clear_user();
            if let Some(reservation) = reservation {
                reservation.keep();
            }
            // One stable line per failure (the shipped fail2ban filter reads it); the answer
            // is the same 401 whatever the reason.
            request.log(
                Level::Warning,
                format_args!("memsession-login-form: login failed for user {user:?}: {why}"),
            );
            super::shared_metrics::count(crate::metrics::Counter::LOGIN_FAILED);
            refusal(
                request,
                status::UNAUTHORIZED,
                "login failed",
                "Login failed.\n",
            )
        }
        Err(code) => {
            request.clear_user();
            // No verdict on the password (a KDC or provider failure): not a guess.
            login_budget::give_back(request, reservation);
            code
        }
    }
}

/// What the authn providers said about a user and password.
enum ProviderAnswer {
    /// Right password. The name is the one the provider settled on: `r->user` after it said
    /// yes (mod_authnz_ldap sets it from `AuthLDAPRemoteUserAttribute`, or to the DN with
    /// `AuthLDAPRemoteUserIsDN On`), so `ALICE` and `alice` are one person with one revocation
    /// epoch; the name as typed when the provider left it alone.
    Granted(String),
    Denied,
    /// No provider knows the user.
    Unknown,
}

enum Verdict {
    /// The user as the session names it, and the credentials the login obtained.
    Granted(String, LoginCredentials),
    /// Bad credentials or an unusable account, and why (for the log only).
    Refused(String),
}

/// Asks each provider in turn, moving on only when one does not know the user (as
/// mod_auth_basic does), with `r->user` set to the name as typed before each asks (as
/// mod_auth_basic sets it), so the name a provider settles on is read back from it. `Err`
/// carries the status for a configuration or provider failure. A user no provider knows costs a dummy bcrypt check of
/// the cost known users' checks take here (see `flow::login_timing`), so the time of the 401
/// does not say whether the account exists.
fn check(
    request: &mut Request,
    providers: &[&str],
    user: &str,
    password: &str,
) -> Result<ProviderAnswer, c_int> {
    let timing = super::shared_metrics::login_timing();
    let (known, dummy) = (timing.known_check(), timing.dummy());
    for provider in providers {
        let started = Instant::now();
        request.set_user(user, AUTH_TYPE);
        match request.check_password(provider, user, password) {
            PasswordCheck::Granted => {
                known.observe(started.elapsed());
                let settled = request
                    .user()
                    .filter(|name| !name.is_empty())
                    .unwrap_or(user);
                return Ok(ProviderAnswer::Granted(settled.to_string()));
            }
            PasswordCheck::UnknownUser => continue,
            PasswordCheck::Denied => {
                known.observe(started.elapsed());
                return Ok(ProviderAnswer::Denied);
            }
            PasswordCheck::ProviderError => {
                request.log(
                    Level::Error,
                    format_args!(
                        "login form: authn provider {provider} failed while checking {user:?}"
                    ),
                );
                return Err(status::INTERNAL_SERVER_ERROR);
            }
            PasswordCheck::NoSuchProvider => {
                request.log(
                    Level::Error,
                    format_args!(
                        "MemSessionPasswordProvider {provider}: no authn provider of that name is \
                         loaded (e.g. a2enmod authn_file for 'file', authnz_ldap for 'ldap')"
                    ),
                );
                return Err(status::INTERNAL_SERVER_ERROR);
            }
        }
    }
    if !providers.is_empty() {
        if let Some(cost) = dummy.current(known.get()) {
            let started = Instant::now();
            Request::verify_against(password, &login_timing::dummy_bcrypt(cost));
            dummy.observe(cost, started.elapsed(), known.get());
        }
    }
    Ok(ProviderAnswer::Unknown)
}

/// A TGT for the user from `realm`'s KDC, verified with the keytab: the session is named
/// after the principal (as a Negotiate login through mod_auth_gssapi names it) and carries the
/// TGT as its credentials.
fn kerberos(
    request: &mut Request,
    realm: &str,
    keytab: Option<&str>,
    user: &str,
    password: &str,
) -> Result<Verdict, c_int> {
    let principal = match login_name::principal_for(user, realm) {
        Ok(principal) => principal,
        Err(refusal) => {
            let why = match refusal {
                NameRefusal::Empty => "no name",
                NameRefusal::OtherRealm => "not of realm MemSessionKerberosRealm names",
                NameRefusal::Unsafe => "characters a principal name does not take",
            };
            return Ok(Verdict::Refused(format!(
                "refused before asking the KDC: {why}"
            )));
        }
    };
    // An unknown principal is refused in one KDC exchange, a known one after string-to-key
    // and often a second exchange: the first is held back to the time the second typically
    // takes on this server, so the time of the 401 does not say whether the account exists.
    let known_refused = super::shared_metrics::login_timing().known_kdc_refusal();
    let asking = leave_to_ask_kdc(request, realm, &principal)?;
    let started = Instant::now();
    let result = krb5_password::obtain_tgt(&principal, password, realm, keytab);
    let hold = match &result {
        Err(Failure::Refused(_)) => {
            known_refused.observe(started.elapsed());
            std::time::Duration::ZERO
        }
        Err(Failure::UnknownPrincipal) => {
            login_timing::padding(started.elapsed(), known_refused.get())
        }
        _ => std::time::Duration::ZERO,
    };
    match &result {
        Err(Failure::Unreachable(_)) => asking.unreachable(Instant::now()),
        // Not the KDC's doing: no verdict on it.
        Err(Failure::Keytab(_) | Failure::Other(_)) => drop(asking),
        _ => asking.answered(),
    }
    // Not counted as waiting on the KDC: the KDC has answered.
    std::thread::sleep(hold);
    match result {
        Ok(tgt) => {
            let credentials = crate::flow::credentials::from_ccache_bytes(tgt.ccache);
            if let Some(problem) = &credentials.problem {
                request.log(
                    Level::Error,
                    format_args!("login form: the TGT of {principal} is unusable: {problem}"),
                );
                return Err(status::INTERNAL_SERVER_ERROR);
            }
            Ok(Verdict::Granted(tgt.principal, credentials))
        }
        Err(Failure::UnknownPrincipal) => Ok(Verdict::Refused(format!(
            "the KDC does not know {principal}"
        ))),
        Err(Failure::Refused(why)) => Ok(Verdict::Refused(format!(
            "the KDC refused {principal}: {why}"
        ))),
        Err(Failure::NotVerified(why)) => {
            request.log(
                Level::Error,
                format_args!(
                    "login form: the TGT of {principal} could not be verified with the keytab \
                     (a spoofed KDC, or a keytab older than the KDC's key): {why}"
                ),
            );
            Ok(Verdict::Refused(format!(
                "the TGT of {principal} could not be verified"
            )))
        }
        Err(Failure::Keytab(why)) => {
            request.log(
                Level::Error,
                format_args!(
                    "MemSessionKerberosKeytab: no key of realm {realm} to verify TGTs with: {why}"
                ),
            );
            Err(status::INTERNAL_SERVER_ERROR)
        }
        Err(Failure::Unreachable(why)) => {
            request.log(
                Level::Error,
                format_args!("login form: no KDC of realm {realm} answered: {why}"),
            );
            Err(unavailable(request))
        }
        Err(Failure::Other(why)) => {
            request.log(
                Level::Error,
                format_args!("login form: Kerberos login of {principal} failed: {why}"),
            );
            Err(status::INTERNAL_SERVER_ERROR)
        }
    }
}

/// Leave to ask `realm`'s KDC now, or the 503 that says to come back later.
fn leave_to_ask_kdc(
    request: &mut Request,
    realm: &str,
    principal: &str,
) -> Result<Asking<'static>, c_int> {
    let why_not = match kdc_guard().admit(realm, Instant::now()) {
        Admission::Ask(asking) => return Ok(asking),
        Admission::Busy => format!(
            "{} password checks of this process already wait on a KDC (is realm {realm}'s KDC \
             slow?); {principal} is answered 503 at once",
            kdc_guard().limit()
        ),
        Admission::ServerBusy => format!(
            "{} password checks of this server's processes already wait on a KDC (is realm \
             {realm}'s KDC slow?); {principal} is answered 503 at once",
            kdc_guard().server_limit().unwrap_or(0)
        ),
        Admission::RecentlyUnreachable => format!(
            "no KDC of realm {realm} answered a moment ago; not asking it again for up to {}s \
             ({principal} is answered 503)",
            UNREACHABLE_INTERVAL.as_secs()
        ),
    };
    request.log(Level::Warning, format_args!("login form: {why_not}"));
    Err(unavailable(request))
}

/// Password checks waiting on KDCs are bounded per process — a quarter of its request
/// threads — and across the server's processes — a quarter of MaxRequestWorkers, in shared
/// memory — (each at least one), so a silent KDC can never hold the workers cookie requests
/// need, under prefork (one thread per child) as under worker and event.
fn kdc_guard() -> &'static KdcGuard {
    static GUARD: OnceLock<KdcGuard> = OnceLock::new();
    GUARD.get_or_init(|| {
        let server_wide = (super::mpm::request_workers() / 4).max(1);
        let shared = super::shared_metrics::kdc_waiter_slots(server_wide)
            .map(|slots| SharedWaiters::new(slots, super::shared_metrics::process_alive));
        KdcGuard::new(super::mpm::threads_per_child() / 4).with_shared(shared)
    })
}

/// 503: the realm's KDC cannot be asked now; worth trying again after the interval.
fn unavailable(request: &mut Request) -> c_int {
    let retry_after = UNREACHABLE_INTERVAL.as_secs().to_string();
    request.set_header(Headers::ErrOut, "Retry-After", &retry_after);
    status::SERVICE_UNAVAILABLE
}

/// A refused login, in the form the client asked for: JSON for scripts, a line of text for
/// people. Bad credentials and a spent guessing budget both answer through it, so the two
/// refusals differ only in status and words.
pub(super) fn refusal(request: &mut Request, status: c_int, error: &str, text: &str) -> c_int {
    if navigation::wants_json(&hints(request)) {
        let body = format!("{{\"error\":\"{error}\"}}\n");
        request.respond(status, "application/json", &body)
    } else {
        request.respond(status, "text/plain; charset=utf-8", text)
    }
}
