//! `memsession-login`: the location's own auth module has set the user; mint a fresh session.
use crate::config::DirConfig;
use crate::session::lifetime;
use crate::session::record::SessionRecord;
use crate::session_store::{CreateError, NewSession, SessionStore};
use crate::web::json::json_string;
use crate::web::navigation::{self, RequestHints};
use crate::web::return_path;

use super::cookies;

pub struct LoginRequest<'a> {
    pub user: &'a str,
    pub auth_type: &'a str,
    pub cookie_header: Option<&'a str>,
    /// The requested way back (`return`), already decoded from the query or form.
    pub return_to: Option<String>,
    pub hints: RequestHints<'a>,
    pub credential_end: Option<u64>,
    pub ccache: Option<Vec<u8>>,
}

pub enum LoginResponse {
    /// 303 to a validated return path.
    Redirect(String),
    /// 200 with a small JSON body, for XHR clients.
    Json(String),
}

pub struct LoginOutcome {
    pub set_cookie: String,
    pub response: LoginResponse,
    pub log_tag: String,
    /// Client-sent sessions that this login ended (log tags).
    pub replaced: Vec<String>,
    /// The `return` parameter was present but refused.
    pub refused_return: bool,
}

pub fn login(
    request: LoginRequest,
    config: &DirConfig,
    store: &SessionStore,
    now: u64,
) -> Result<LoginOutcome, CreateError> {
    // A session the client already carries is ended, never adopted: the new login gets a
    // new id, so an id planted in the browser before login (fixation) is worthless.
    let mut replaced = Vec::new();
    for old in cookies::all_ids(request.cookie_header, config.cookie_name()) {
        let _ = store.delete(&old);
        replaced.push(old.log_tag());
    }
    let new = NewSession {
        user: request.user.to_string(),
        auth_type: request.auth_type.to_string(),
        inactivity_timeout: config.inactivity_timeout(),
        max_lifetime: config.max_lifetime(),
        credential_end: request.credential_end,
        cap_to_credentials: config.cap_to_credentials(),
        ccache: request.ccache,
    };
    let (id, record) = store.create(new, now)?;
    let set_cookie = cookies::session_cookie(config, &id, &record, now);

    let (response, refused_return) = respond(request.return_to, &request.hints, config, &record);
    Ok(LoginOutcome {
        set_cookie,
        response,
        log_tag: id.log_tag(),
        replaced,
        refused_return,
    })
}

/// Where a logged-in client goes next: 303 to the validated return path, or JSON for XHR
/// clients. Also says whether a requested return path was refused.
pub fn respond(
    return_to: Option<String>,
    hints: &RequestHints,
    config: &DirConfig,
    record: &SessionRecord,
) -> (LoginResponse, bool) {
    let accepted = return_to
        .as_deref()
        .and_then(|target| return_path::validate(target, config.trusted_origins()));
    let refused_return = return_to.is_some() && accepted.is_none();
    let response = if navigation::wants_json(hints) {
        LoginResponse::Json(json_body(&record.user, lifetime::end_time(record)))
    } else {
        LoginResponse::Redirect(accepted.unwrap_or_else(|| "/".to_string()))
    };
    (response, refused_return)
}

fn json_body(user: &str, expires: Option<u64>) -> String {
    let expires = expires.map_or_else(|| "null".to_string(), |end| end.to_string());
    format!("{{\"user\":{},\"expires\":{expires}}}\n", json_string(user))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_way_back_is_validated_and_a_refused_one_reported() {
        let record = SessionRecord::for_test(100, 60);
        let browser = RequestHints {
            method: "GET",
            accept: Some("text/html"),
            sec_fetch_mode: None,
            sec_fetch_dest: None,
            x_requested_with: None,
        };
        let config = DirConfig::default();
        let go = |return_to: Option<&str>| match respond(
            return_to.map(String::from),
            &browser,
            &config,
            &record,
        ) {
            (LoginResponse::Redirect(to), refused) => (to, refused),
            (LoginResponse::Json(body), _) => panic!("JSON for a browser: {body}"),
        };
        assert_eq!(
            go(None),
            ("/".to_string(), false),
            "none asked, none refused"
        );
        assert_eq!(go(Some("/app/x?y=1")), ("/app/x?y=1".to_string(), false));
        assert_eq!(go(Some("//evil.example/")), ("/".to_string(), true));
        let xhr = RequestHints {
            x_requested_with: Some("XMLHttpRequest"),
            ..browser
        };
        match respond(None, &xhr, &config, &record) {
            (LoginResponse::Json(body), false) => {
                assert_eq!(body, "{\"user\":\"alice\",\"expires\":160}\n")
            }
            _ => panic!("no JSON for XHR"),
        }
    }

    #[test]
    fn login_json_bodies() {
        assert_eq!(
            json_body("alice@EXAMPLE.TEST", Some(5)),
            "{\"user\":\"alice@EXAMPLE.TEST\",\"expires\":5}\n"
        );
        assert_eq!(json_body("a", None), "{\"user\":\"a\",\"expires\":null}\n");
    }
}
