//! The session cookie as this location configures it.
use crate::config::DirConfig;
use crate::session::id::SessionId;
use crate::session::lifetime;
use crate::session::record::SessionRecord;
use crate::web::cookie::{self, SetCookie};

/// `Set-Cookie` value carrying a session. A persistent cookie lasts until the session's
/// earliest end; otherwise it is a browser-session cookie.
pub fn session_cookie(config: &DirConfig, id: &SessionId, record: &SessionRecord, now: u64) -> String {
    let value = id.to_cookie_value();
    let max_age = config.cookie_persistent().then(|| {
        lifetime::end_time(record)
            .map(|end| end.saturating_sub(now).max(1))
            .unwrap_or(lifetime::UNBOUNDED_STORE_TTL)
    });
    build(config, &value, max_age)
}

/// `Set-Cookie` value that makes the browser drop the session cookie.
pub fn expired_cookie(config: &DirConfig) -> String {
    build(config, "", Some(0))
}

fn build(config: &DirConfig, value: &str, max_age: Option<u64>) -> String {
    SetCookie {
        name: config.cookie_name(),
        value,
        path: config.cookie_path(),
        domain: config.cookie_domain(),
        same_site: config.cookie_same_site(),
        secure: config.cookie_secure(),
        max_age,
    }
    .header_value()
}

/// Which session id, if any, the request's cookies carry.
#[derive(Debug, PartialEq)]
pub enum CookieLookup {
    Absent,
    /// A cookie of our name whose value is not an id: no session, and no store lookup.
    Malformed,
    Present(SessionId),
}

/// The first well-formed value of our cookie wins; a browser sends the most specific path
/// first. Values of the wrong shape are never looked up.
pub fn lookup(cookie_header: Option<&str>, name: &str) -> CookieLookup {
    let Some(header) = cookie_header else {
        return CookieLookup::Absent;
    };
    let mut seen = false;
    for value in cookie::values(header, name) {
        seen = true;
        if let Some(id) = SessionId::from_cookie_value(value) {
            return CookieLookup::Present(id);
        }
    }
    if seen {
        CookieLookup::Malformed
    } else {
        CookieLookup::Absent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_shapes() {
        let id = SessionId::generate().unwrap();
        let value = id.to_cookie_value();
        assert_eq!(lookup(None, "memsession"), CookieLookup::Absent);
        assert_eq!(lookup(Some("other=1"), "memsession"), CookieLookup::Absent);
        assert_eq!(lookup(Some("memsession=short"), "memsession"), CookieLookup::Malformed);
        assert_eq!(
            lookup(Some(&format!("a=b; memsession={value}")), "memsession"),
            CookieLookup::Present(id.clone())
        );
        assert_eq!(
            lookup(Some(&format!("memsession=junk; memsession={value}")), "memsession"),
            CookieLookup::Present(id)
        );
    }

    #[test]
    fn cookie_attributes_follow_config() {
        let mut config = DirConfig::default();
        let expired = expired_cookie(&config);
        assert!(expired.starts_with("memsession=;"), "{expired}");
        assert!(expired.contains("Max-Age=0"));
        config.set("MemSessionCookieName", "sid").unwrap();
        config.set("MemSessionCookiePersistent", "On").unwrap();
        let id = SessionId::generate().unwrap();
        let record = SessionRecord {
            user: "alice".into(),
            auth_type: "Basic".into(),
            created: 100,
            last_seen: 100,
            inactivity_timeout: 60,
            absolute_expiry: 0,
            credential_end: 0,
            ccache: None,
            user_epoch: crate::session::record::Epoch([0; 16]),
            global_epoch: crate::session::record::Epoch([0; 16]),
        };
        let cookie = session_cookie(&config, &id, &record, 100);
        assert!(cookie.starts_with(&format!("sid={}", id.to_cookie_value())));
        assert!(cookie.contains("Max-Age=60"), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("Secure"));
    }
}
