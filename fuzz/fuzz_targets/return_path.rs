//! The open-redirect defence: whatever it accepts must not leave the site (or a trusted
//! origin), whatever a browser makes of backslashes, controls or percent-escapes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memsession::web::return_path::validate;

const TRUSTED: &str = "https://portal.example";

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let trusted = vec![TRUSTED.to_string()];
    for origins in [&[][..], &trusted[..]] {
        let Some(accepted) = validate(raw, origins) else {
            continue;
        };
        assert_eq!(accepted, raw, "accepted targets are returned unchanged");
        assert!(accepted.len() <= 2048);
        assert!(accepted.bytes().all(|b| b.is_ascii_graphic() && b != b'\\'));
        if accepted.starts_with('/') {
            assert_path_stays_here(&accepted);
        } else {
            // An independent reading of the URL: scheme, authority up to the first / ? #.
            assert!(
                !origins.is_empty(),
                "an absolute URL with no trusted origin: {accepted:?}"
            );
            let lower = accepted.to_ascii_lowercase();
            let after_scheme = lower
                .strip_prefix("https://")
                .unwrap_or_else(|| panic!("not https: {accepted:?}"));
            let end = after_scheme
                .find(['/', '?', '#'])
                .unwrap_or(after_scheme.len());
            let (authority, rest) = after_scheme.split_at(end);
            // As a browser reads it: an empty port or one that is 443 ("0443" too) is the
            // default port of https.
            let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
            assert!(
                port.is_empty() || port.parse::<u32>() == Ok(443),
                "{accepted:?} names another port"
            );
            assert_eq!(
                host, "portal.example",
                "{accepted:?} leaves the trusted origin"
            );
            if rest.starts_with('/') {
                assert_path_stays_here(rest);
            }
        }
    }
});

/// A path a lax browser or proxy could not turn into another host: no `//` or `/\\` at the
/// start after up to three rounds of percent-decoding, backslashes read as slashes and
/// controls dropped.
fn assert_path_stays_here(path: &str) {
    let mut current = path.as_bytes().to_vec();
    for _ in 0..4 {
        let seen: Vec<u8> = current
            .iter()
            .map(|&b| if b == b'\\' { b'/' } else { b })
            .filter(|b| !b.is_ascii_control())
            .collect();
        assert!(!seen.starts_with(b"//"), "{path:?} reads as {seen:?}");
        current = percent_decode(&current);
    }
}

fn percent_decode(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        // Two hex digits exactly (`from_str_radix` alone would also take a sign: "%+5").
        let escape = b
            .get(i + 1..i + 3)
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit));
        if let (b'%', Some(hex)) = (b[i], escape) {
            let hex = std::str::from_utf8(hex).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}
