//! The session cookie as this location configures it.
use crate::config::DirConfig;
use crate::session::id::SessionId;
use crate::session::lifetime;
use crate::session::record::SessionRecord;
use crate::web::cookie::{self, SetCookie};

/// `Set-Cookie` value carrying a session. A persistent cookie lasts until the session's
/// earliest end; otherwise it is a browser-session cookie.
pub fn session_cookie(
    config: &DirConfig,
    id: &SessionId,
    record: &SessionRecord,
    now: u64,
) -> String {
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
    /// Two different ids under our name. A browser holds two only when another path or
    /// domain set one — the shape of a cookie-tossing attack from a sibling host, which
    /// would otherwise swap the victim into the attacker's session. Neither is used.
    Ambiguous,
    Present(SessionId),
}

/// Every well-formed session id the request carries (at most a few): what login and logout
/// end, so no id a client holds survives them.
pub fn all_ids(cookie_header: Option<&str>, name: &str) -> Vec<SessionId> {
    let mut ids: Vec<SessionId> = Vec::new();
    let values = cookie_header
        .into_iter()
        .flat_map(|header| cookie::values(header, name));
    for id in values.filter_map(SessionId::from_cookie_value) {
        if ids.len() == MAX_IDS_ENDED {
            break;
        }
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    ids
}

/// Bounds the store work a request with many cookies can cause.
const MAX_IDS_ENDED: usize = 4;

/// The session id the request carries. Values of the wrong shape are ignored (they can
/// name no session); two different well-formed values are refused as ambiguous.
pub fn lookup(cookie_header: Option<&str>, name: &str) -> CookieLookup {
    let Some(header) = cookie_header else {
        return CookieLookup::Absent;
    };
    let mut seen = false;
    let mut found: Option<SessionId> = None;
    for value in cookie::values(header, name) {
        seen = true;
        if let Some(id) = SessionId::from_cookie_value(value) {
            match &found {
                Some(first) if *first != id => return CookieLookup::Ambiguous,
                _ => found = Some(id),
            }
        }
    }
    match (found, seen) {
        (Some(id), _) => CookieLookup::Present(id),
        (None, true) => CookieLookup::Malformed,
        (None, false) => CookieLookup::Absent,
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
        assert_eq!(
            lookup(Some("memsession=short"), "memsession"),
            CookieLookup::Malformed
        );
        assert_eq!(
            lookup(Some(&format!("a=b; memsession={value}")), "memsession"),
            CookieLookup::Present(id.clone())
        );
        assert_eq!(
            lookup(
                Some(&format!("memsession=junk; memsession={value}")),
                "memsession"
            ),
            CookieLookup::Present(id.clone())
        );
        assert_eq!(
            lookup(
                Some(&format!("memsession={value}; memsession={value}")),
                "memsession"
            ),
            CookieLookup::Present(id.clone()),
            "the same id twice is not ambiguous"
        );
        let other = SessionId::generate().unwrap().to_cookie_value();
        for header in [
            format!("memsession={value}; memsession={other}"),
            format!("memsession={other}; memsession={value}"),
        ] {
            assert_eq!(lookup(Some(&header), "memsession"), CookieLookup::Ambiguous);
        }
    }

    /// Request::cookie_header decodes the header lossily: a non-UTF-8 byte in our cookie makes
    /// it malformed (so it is expired), and one in another cookie does not hide ours.
    #[test]
    fn lookup_of_a_lossily_decoded_header() {
        let id = SessionId::generate().unwrap();
        let value = id.to_cookie_value();
        let ours = [
            b"memsession=".as_slice(),
            &value.as_bytes()[..40],
            b"\xff\xfe\xc3",
        ]
        .concat();
        assert_eq!(
            lookup(Some(&String::from_utf8_lossy(&ours)), "memsession"),
            CookieLookup::Malformed
        );
        let beside = [b"other=\xff; memsession=".as_slice(), value.as_bytes()].concat();
        assert_eq!(
            lookup(Some(&String::from_utf8_lossy(&beside)), "memsession"),
            CookieLookup::Present(id)
        );
    }

    #[test]
    fn all_ids_counts_distinct_ids_against_its_bound() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        let (va, vb) = (a.to_cookie_value(), b.to_cookie_value());
        let header = format!("s={va}; s={va}; s={va}; s={va}; s={va}; s={vb}");
        assert_eq!(all_ids(Some(&header), "s"), vec![a, b]);
        let many: Vec<String> = (0..10)
            .map(|_| format!("s={}", SessionId::generate().unwrap().to_cookie_value()))
            .collect();
        assert_eq!(all_ids(Some(&many.join("; ")), "s").len(), MAX_IDS_ENDED);
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
        let record = SessionRecord::for_test(100, 60);
        let cookie = session_cookie(&config, &id, &record, 100);
        assert!(cookie.starts_with(&format!("sid={}", id.to_cookie_value())));
        assert!(cookie.contains("Max-Age=60"), "{cookie}");
        assert!(cookie.contains("HttpOnly") && cookie.contains("Secure"));
    }
}
