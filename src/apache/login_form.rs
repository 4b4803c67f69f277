//! `SetHandler memsession-login-form`: a POSTed user and password, checked through Apache's
//! own authn providers (`MemSessionPasswordProvider file ldap ...`, as mod_auth_form does).
//! Bad credentials get a 401 that does not say which part was wrong.
use std::ffi::c_int;

use super::handlers::{finish_login, no_store};
use super::hooks::{hints, same_site_or_trusted};
use super::log::Level;
use super::request::{BodyError, Headers, Method, PasswordCheck, Request};
use super::status;
use crate::flow::credentials::LoginCredentials;
use crate::flow::query;
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
    let body = match request.read_body(MAX_FORM_BYTES) {
        Ok(body) => body,
        Err(BodyError::TooLarge) => return status::REQUEST_ENTITY_TOO_LARGE,
        Err(BodyError::Unreadable) => return status::BAD_REQUEST,
    };
    let (Some(user), Some(password)) = (form::field(&body, "user"), form::field(&body, "password"))
    else {
        return status::BAD_REQUEST;
    };
    let return_to = form::field(&body, "return").or_else(|| {
        request
            .args()
            .and_then(|args| query::parameter(args, "return"))
    });
    no_store(request);
    match check(request, &config.password_providers(), &user, &password) {
        Ok(true) => {
            request.set_user(&user, AUTH_TYPE);
            finish_login(
                request,
                &user,
                AUTH_TYPE,
                return_to,
                LoginCredentials::default(),
            )
        }
        Ok(false) => {
            request.log(
                Level::Info,
                format_args!("login form: authentication failure for user {user:?}"),
            );
            super::shared_metrics::count(crate::metrics::Counter::LOGIN_FAILED);
            refuse(request)
        }
        Err(code) => code,
    }
}

/// Asks each provider in turn, moving on only when one does not know the user (as
/// mod_auth_basic does). `Err` carries the status for a configuration or provider failure.
fn check(
    request: &mut Request,
    providers: &[&str],
    user: &str,
    password: &str,
) -> Result<bool, c_int> {
    if user.is_empty() || password.is_empty() {
        return Ok(false);
    }
    for provider in providers {
        match request.check_password(provider, user, password) {
            PasswordCheck::Granted => return Ok(true),
            PasswordCheck::UnknownUser => continue,
            PasswordCheck::Denied => return Ok(false),
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
    Ok(false)
}

fn refuse(request: &mut Request) -> c_int {
    if navigation::wants_json(&hints(request)) {
        request.respond(
            status::UNAUTHORIZED,
            "application/json",
            "{\"error\":\"login failed\"}\n",
        )
    } else {
        request.respond(
            status::UNAUTHORIZED,
            "text/plain; charset=utf-8",
            "Login failed.\n",
        )
    }
}
