//! The `Cookie` header parser, the session-id lookup built on it, and the header a backend
//! gets once the session cookie is taken out.
//!
//! Input: first byte picks the cookie name, the rest is the header (lossy UTF-8, as Apache
//! hands the module a C string that may hold any byte but NUL).
#![no_main]

use libfuzzer_sys::fuzz_target;
use memsession::flow::cookies::{all_ids, lookup, CookieLookup};
use memsession::session::id::SessionId;
use memsession::web::cookie;

const NAMES: [&str; 4] = ["memsession", "__Host-memsession", "a", "x=y"];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(pick) % NAMES.len()];
    let header = String::from_utf8_lossy(rest);

    let values: Vec<&str> = cookie::values(&header, name).collect();
    assert_eq!(values, by_chars(&header, name), "the byte search splits as chars do");
    for v in &values {
        // Every value is a substring of the header and carries no separator.
        assert!(header.contains(v));
        assert!(!v.contains(';'));
    }
    // What login and logout end: a few distinct well-formed ids, in header order. (Bounded:
    // the cap counts values before duplicates are dropped, so four copies of one id hide a
    // fifth, different one; reported, see the seed corpus/cookie/dup-then-other.)
    let ids = all_ids(Some(&header), name);
    assert!(ids.len() <= 4);
    for (i, id) in ids.iter().enumerate() {
        assert!(!ids[..i].contains(id), "all_ids repeats an id");
        assert!(values.contains(&id.to_cookie_value().as_str()));
    }
    match lookup(Some(&header), name) {
        CookieLookup::Absent => assert!(values.is_empty()),
        CookieLookup::Malformed => {
            assert!(!values.is_empty());
            assert!(values
                .iter()
                .all(|v| SessionId::from_cookie_value(v).is_none()));
        }
        CookieLookup::Ambiguous => assert!(!ids.is_empty()),
        CookieLookup::Present(id) => {
            // Only the exact shape the module issues: 43 base64url characters, round-tripping.
            let value = id.to_cookie_value();
            assert_eq!(value.len(), 43);
            assert!(values.contains(&value.as_str()));
            assert_eq!(ids.first(), Some(&id));
        }
    }
    assert_eq!(lookup(None, name), CookieLookup::Absent);

    // MemSessionStripCookie: what the backend gets holds no value the module would read under
    // that name, and every other cookie's value is still there, in order.
    let left = match cookie::without(header.as_bytes(), |n| n == name.as_bytes()) {
        cookie::Stripped::Unchanged => {
            assert!(values.is_empty(), "a cookie of the name left in place");
            header.to_string()
        }
        cookie::Stripped::Nothing => String::new(),
        cookie::Stripped::Rest(rest) => String::from_utf8(rest).expect("pairs cut at ASCII"),
    };
    assert_eq!(cookie::values(&left, name).count(), 0, "{left:?}");
    for other in NAMES.iter().filter(|n| **n != name) {
        assert_eq!(
            cookie::values(&left, other).collect::<Vec<_>>(),
            cookie::values(&header, other).collect::<Vec<_>>(),
            "another cookie changed"
        );
    }
});

/// The parser as first written, one character at a time: the byte search must agree with it.
fn by_chars<'h>(header: &'h str, name: &str) -> Vec<&'h str> {
    let ows: &[char] = &[' ', '\t'];
    header
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .filter(|(n, _)| n.trim_matches(ows) == name)
        .map(|(_, v)| {
            let v = v.trim_matches(ows);
            v.strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .unwrap_or(v)
        })
        .collect()
}
