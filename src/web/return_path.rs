//! Open-redirect defence for the login return target and the logout redirect.
//!
//! A redirect target is accepted only if a browser cannot be talked into leaving this site
//! (or a trusted origin) with it. Browsers are generous: they read `\` as `/`, drop tabs and
//! newlines inside URLs, and some layers decode percent-escapes again, so `//evil`, `/\evil`,
//! `/%2f%2fevil`, `/%5cevil` and `/\t/evil` all risk becoming "another host". Rather than
//! model every parser, this accepts a narrow, boring shape and refuses the rest.

/// Longer than any honest return path; refusing it bounds work and Location header size.
const MAX_LEN: usize = 2048;

/// How many rounds of percent-decoding are inspected: enough to see through double and
/// triple encoding, bounded so the work is bounded.
const DECODE_ROUNDS: usize = 3;

/// Returns `raw` unchanged if it is a safe redirect target: a same-origin absolute path, or
/// an http(s) URL on one of `trusted_origins` (given normalised, see [`normalise_origin`]).
pub fn validate(raw: &str, trusted_origins: &[String]) -> Option<String> {
    if raw.is_empty() || raw.len() > MAX_LEN || !plain_chars(raw.as_bytes()) {
        return None;
    }
    if raw.starts_with('/') {
        return is_safe_path(raw).then(|| raw.to_string());
    }
    let (origin, rest) = split_origin(raw)?;
    let origin = normalise_origin(origin)?;
    if !trusted_origins.contains(&origin) {
        return None;
    }
    let rest_ok = match rest.as_bytes().first() {
        None | Some(b'?' | b'#') => true,
        Some(b'/') => is_safe_path(rest),
        Some(_) => false,
    };
    rest_ok.then(|| raw.to_string())
}

/// Visible ASCII only, and no backslash. This excludes whitespace and controls (which
/// browsers strip or mis-split on), and raw non-ASCII (a Location header carries ASCII).
fn plain_chars(s: &[u8]) -> bool {
    s.iter().all(|&b| b.is_ascii_graphic() && b != b'\\')
}

/// A path starting with exactly one `/`, where no decoding of it starts with `//` or `/\`,
/// or contains a control character or backslash.
fn is_safe_path(path: &str) -> bool {
    let mut current = path.as_bytes().to_vec();
    for round in 0..=DECODE_ROUNDS {
        if round > 0 {
            let next = percent_decode(&current);
            if next == current {
                break;
            }
            current = next;
        }
        if current.starts_with(b"//") || current.starts_with(b"/\\") {
            return false;
        }
        if current.iter().any(|&b| b.is_ascii_control() || b == b'\\') {
            return false;
        }
    }
    true
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// One round of percent-decoding over bytes; malformed escapes are kept as they are.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            let hi = input.get(i + 1).copied().and_then(hex_value);
            let lo = input.get(i + 2).copied().and_then(hex_value);
            if let (Some(hi), Some(lo)) = (hi, lo) {
                out.push(hi << 4 | lo);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Splits an http(s) URL into `scheme://authority` and the rest (starting at the first `/`,
/// `?` or `#` after the authority, or empty). `None` for any other scheme.
pub(crate) fn split_origin(url: &str) -> Option<(&str, &str)> {
    let (scheme, after) = url.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let authority_len = after.find(['/', '?', '#']).unwrap_or(after.len());
    let origin_len = scheme.len() + 3 + authority_len;
    // `origin_len` ends just before an ASCII delimiter (or at the end), so it is a char
    // boundary; `split_at_checked` keeps even a mistake here from panicking.
    url.split_at_checked(origin_len)
}

/// Normalises an origin as the browser would serialise it: `scheme://host[:port]`, scheme
/// http or https, lowercase, default port elided. No path (one trailing `/` is tolerated for
/// config convenience), no userinfo, no query or fragment.
pub fn normalise_origin(s: &str) -> Option<String> {
    let s = s.strip_suffix('/').unwrap_or(s);
    let (scheme, authority) = s.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let (host, port) = split_host_port(authority)?;
    let mut out = String::with_capacity(s.len());
    out.push_str(&scheme);
    out.push_str("://");
    out.push_str(&host);
    if let Some(port) = port.filter(|&p| p != default_port) {
        out.push(':');
        out.push_str(&port.to_string());
    }
    Some(out)
}

/// Host (lowercased) and explicit port of an authority; `None` for userinfo, paths, empty
/// hosts, odd characters or a bad port.
fn split_host_port(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (inner, after) = v6.split_once(']')?;
        let valid = !inner.is_empty()
            && inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
        if !valid {
            return None;
        }
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        (format!("[{}]", inner.to_ascii_lowercase()), port)
    } else {
        let (host, port) = match authority.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        };
        let valid = !host.is_empty()
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
        if !valid {
            return None;
        }
        (host.to_ascii_lowercase(), port)
    };
    let port = match port {
        None => None,
        Some(p) => Some(parse_port(p)?),
    };
    Some((host, port))
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted() -> Vec<String> {
        vec![
            "https://app.example.com".to_string(),
            "http://localhost:8080".to_string(),
        ]
    }

    fn ok(raw: &str) {
        assert_eq!(validate(raw, &trusted()).as_deref(), Some(raw), "{raw:?}");
    }

    fn refused(raw: &str) {
        assert_eq!(validate(raw, &trusted()), None, "{raw:?}");
    }

    #[test]
    fn accepts_plain_paths() {
        for p in [
            "/",
            "/app",
            "/app/page?x=1&y=%2F#frag",
            "/a%20b",
            "/caf%C3%A9",
            "/a//b",
            "/a/%2f%2fb",
            "/?next=//evil.example",
            "/#//x",
            "/%25",
            "/~user/",
        ] {
            ok(p);
        }
    }

    #[test]
    fn returns_path_undecoded() {
        assert_eq!(
            validate("/a%2Fb?q=%41", &[]).as_deref(),
            Some("/a%2Fb?q=%41")
        );
    }

    #[test]
    fn refuses_listed_attacks() {
        for p in [
            "//evil.example",
            "/\\evil.example",
            "/%2f%2fevil.example",
            "/%2F%2Fevil.example",
            "/%5cevil.example",
            "/%5Cevil.example",
            "%2F%2Fevil",
            "https://evil.example",
            "javascript:alert(1)",
            "JavaScript:alert(1)",
            "http:/x",
            "\t/x",
            "/x\r\nSet-Cookie: a=b",
            "",
        ] {
            refused(p);
        }
    }

    #[test]
    fn refuses_double_and_triple_encoding() {
        for p in [
            "/%252f%252fevil.example",
            "/%25252f%25252fevil.example",
            "/%255cevil.example",
            "/%2f%252fevil.example",
        ] {
            refused(p);
        }
        // Four levels deep is past the inspected rounds, but what is left is an inert
        // same-origin path; the test pins that the bound is what we think it is.
        ok("/%2525252fevil.example");
    }

    #[test]
    fn refuses_control_and_whitespace() {
        for p in [
            "/a b",
            "/a\tb",
            "/\t/evil.example",
            "/\n/evil.example",
            "/a\0",
            "/a\u{7f}",
            "/%00",
            "/%0d%0aSet-Cookie:x",
            "/%09/evil.example",
            "/%7f",
            "/%1F",
            "/%2500",
            " /",
            "/ ",
            "/é",
            "/\u{a0}",
            "/\u{2028}",
        ] {
            refused(p);
        }
    }

    #[test]
    fn refuses_backslash_anywhere() {
        refused("/a\\b");
        refused("/a%5cb");
        refused("https://app.example.com\\@evil.example/");
    }

    #[test]
    fn refuses_other_shapes() {
        for p in [
            "evil.example",
            "./x",
            "../x",
            "?x",
            "#x",
            "///evil.example",
            "/\\/evil.example",
            "mailto:a@b",
            "data:text/html,x",
            "ftp://app.example.com/",
            "https:app.example.com",
            "https:/app.example.com",
            "https:///app.example.com",
        ] {
            refused(p);
        }
    }

    #[test]
    fn refuses_overlong() {
        let long = format!("/{}", "a".repeat(MAX_LEN - 1));
        ok(&long);
        refused(&format!("{long}a"));
    }

    #[test]
    fn trusted_origins() {
        ok("https://app.example.com");
        ok("https://app.example.com/");
        ok("https://app.example.com/x?y#z");
        ok("https://app.example.com?x");
        ok("https://app.example.com#x");
        ok("HTTPS://APP.Example.COM/x");
        ok("https://app.example.com:443/x");
        ok("http://localhost:8080/x");
        refused("http://localhost/x");
        refused("http://localhost:8081/x");
        refused("http://app.example.com/x");
        refused("https://app.example.com:8443/x");
        refused("https://app.example.com.evil.example/x");
        refused("https://evil.example/https://app.example.com");
        refused("https://user@app.example.com/x");
        refused("https://app.example.com@evil.example/x");
        refused("https://app.example.com//evil.example");
        refused("https://app.example.com/%2f%2fevil");
        refused("https://app.example.com/a b");
        refused("https://app.example.com/%0a");
        // Nothing is trusted when the list is empty.
        assert_eq!(validate("https://app.example.com/", &[]), None);
        // Ports are one to five digits: a five-digit port is a port, six digits are not.
        let five = ["https://portal.example:10443".to_string()];
        let raw = "https://portal.example:10443/x";
        assert_eq!(validate(raw, &five).as_deref(), Some(raw));
        refused("https://app.example.com:000443/x");
    }

    #[test]
    fn hostile_input_never_panics() {
        let samples = [
            "%",
            "/%",
            "/%%",
            "/%%%",
            "/%2",
            "/%g0",
            "/%é",
            "é://x",
            "https://é/",
            "https://[",
            "https://[]",
            "https://[::1",
            "https://:80",
            "https://a:",
            "https://a:99999",
            "://",
            "https://",
            "/\u{1F600}",
            "https://😀.example/",
            "https://a\u{0301}/",
        ];
        for s in samples {
            let _ = validate(s, &trusted());
            let _ = normalise_origin(s);
            let _ = split_origin(s);
        }
        ok("/%");
        ok("/%g0");
    }

    #[test]
    fn percent_decoding_rounds() {
        assert_eq!(percent_decode(b"/%2f%2F%41%"), b"///A%".to_vec());
        assert_eq!(percent_decode(b"%252f"), b"%2f".to_vec());
        assert_eq!(percent_decode(b"%zz%4"), b"%zz%4".to_vec());
        assert_eq!(percent_decode(b"%ff"), vec![0xff]);
    }

    #[test]
    fn normalise_origins() {
        let n = |s: &str| normalise_origin(s);
        assert_eq!(
            n("https://app.example.com").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            n("https://app.example.com/").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            n("HTTPS://App.Example.COM").as_deref(),
            Some("https://app.example.com")
        );
        assert_eq!(
            n("https://a.example:443").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            n("http://a.example:80").as_deref(),
            Some("http://a.example")
        );
        assert_eq!(
            n("http://a.example:443").as_deref(),
            Some("http://a.example:443")
        );
        assert_eq!(
            n("https://a.example:80").as_deref(),
            Some("https://a.example:80")
        );
        assert_eq!(
            n("https://a.example:0443").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            n("http://127.0.0.1:8080").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(n("http://[::1]:8080").as_deref(), Some("http://[::1]:8080"));
        assert_eq!(n("https://[FE80::1]").as_deref(), Some("https://[fe80::1]"));
        assert_eq!(n("https://[::1]:443/").as_deref(), Some("https://[::1]"));
        assert_eq!(n("http://my_host").as_deref(), Some("http://my_host"));

        for bad in [
            "",
            "null",
            "app.example.com",
            "ftp://a.example",
            "javascript://a.example",
            "https://",
            "https:///",
            "https://a.example//",
            "https://a.example/path",
            "https://a.example?x",
            "https://a.example#x",
            "https://user@a.example",
            "https://user:pw@a.example",
            "https://a.example:",
            "https://a.example:0",
            "https://a.example:65536",
            "https://a.example:123456",
            "https://a.example:-1",
            "https://a.example:+80",
            "https://a.example:8o",
            "https://a.example:80:80",
            "https://a example",
            "https://a.example\t",
            " https://a.example",
            "https://é.example",
            "https://[::1",
            "https://[]",
            "https://[::1]x",
            "https://[::1]:",
            "https://[g::1]",
            "https://a.example\\",
            "https:/a.example",
        ] {
            assert_eq!(n(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn split_origins() {
        assert_eq!(
            split_origin("https://a.example/x?y"),
            Some(("https://a.example", "/x?y"))
        );
        assert_eq!(
            split_origin("https://a.example"),
            Some(("https://a.example", ""))
        );
        assert_eq!(
            split_origin("HTTP://a.example?q"),
            Some(("HTTP://a.example", "?q"))
        );
        assert_eq!(
            split_origin("https://a.example#f"),
            Some(("https://a.example", "#f"))
        );
        assert_eq!(split_origin("ftp://a.example/"), None);
        assert_eq!(split_origin("/x"), None);
        assert_eq!(split_origin("https:/a"), None);
    }
}
