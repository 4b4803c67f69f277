//! Reading the `Cookie` request header and writing `Set-Cookie`.
//!
//! Parsing is lenient in shape (browsers and proxies send every variety of spacing) but
//! exact in names: a cookie is ours only if its name matches byte for byte. A client may send
//! several cookies with our name (one per path, or planted by a sibling subdomain), so
//! [`values`] yields all of them and the caller decides; taking only the first would let a
//! planted cookie shadow the real one.

/// Iterator over the values of every cookie with one name. See [`values`].
#[derive(Clone, Debug)]
pub struct CookieValues<'h, 'n> {
    rest: &'h str,
    name: &'n str,
}

/// Every value of the cookies named exactly `name` in a `Cookie` header, in header order.
///
/// Pairs are split on `;` only. A `,` is part of a value: another cookie's value can hold one
/// (`lang=en,__Host-memsession=...`, set by any sibling host), and splitting there would let
/// that value inject a session id past the `__Host-` prefix's protection. Browsers send one
/// `Cookie` header and mod_http2 joins HTTP/2's several with "; "; a client that sends
/// several HTTP/1.1 `Cookie` headers (which Apache joins with ", ") loses the cookies after
/// the first header's last, which fails closed. Spaces and tabs around names and values are
/// trimmed, one pair of surrounding double quotes is removed from a value, and pairs without
/// `=` are skipped.
pub fn values<'h, 'n>(cookie_header: &'h str, name: &'n str) -> CookieValues<'h, 'n> {
    CookieValues {
        rest: cookie_header,
        name,
    }
}

fn is_ows(byte: &u8) -> bool {
    matches!(byte, b' ' | b'\t')
}

fn trim_ows(s: &str) -> &str {
    let (start, end) = ows_bounds(s.as_bytes());
    &s[start..end]
}

fn trim_ows_bytes(bytes: &[u8]) -> &[u8] {
    let (start, end) = ows_bounds(bytes);
    &bytes[start..end]
}

/// Where `bytes` starts and ends without the spaces and tabs around it (ASCII: cutting there
/// keeps UTF-8 whole).
fn ows_bounds(bytes: &[u8]) -> (usize, usize) {
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |last| last + 1);
    (start, end)
}

/// The first pair of `header`, and the rest after its `;`. A plain byte scan: a cookie
/// header is short, and `str::find` with a char went through the char searcher, which cost
/// more than the rest of the parse (callgrind). `;` and `=` are ASCII, so splitting at their
/// byte positions keeps both halves valid UTF-8.
fn first_pair(header: &str) -> (&str, &str) {
    match find_semicolon(header.as_bytes()) {
        Some(end) => (&header[..end], &header[end + 1..]),
        None => (header, ""),
    }
}

/// The first `;`, eight bytes at a time (a session id is 43 bytes to cross).
fn find_semicolon(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let mut chunks = bytes.chunks_exact(8);
    let mut offset = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ (ONES * u64::from(b';'));
        // Exact for "some byte is zero"; the lowest flagged byte is the first `;`.
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(offset + (zero.trailing_zeros() / 8) as usize);
        }
        offset += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| b == b';')
        .map(|at| offset + at)
}

fn split_at_equals(pair: &str) -> Option<(&str, &str)> {
    let at = pair.bytes().position(|b| b == b'=')?;
    Some((&pair[..at], &pair[at + 1..]))
}

impl<'h> Iterator for CookieValues<'h, '_> {
    type Item = &'h str;

    fn next(&mut self) -> Option<&'h str> {
        while !self.rest.is_empty() {
            let (pair, rest) = first_pair(self.rest);
            self.rest = rest;
            let Some((name, value)) = split_at_equals(pair) else {
                continue;
            };
            if trim_ows(name) != self.name {
                continue;
            }
            let value = trim_ows(value);
            let bytes = value.as_bytes();
            let value = if bytes.len() >= 2 && bytes[0] == b'"' && bytes[bytes.len() - 1] == b'"' {
                &value[1..value.len() - 1]
            } else {
                value
            };
            return Some(value);
        }
        None
    }
}

/// A `Cookie` header with the session cookies taken out (see [`without`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Stripped {
    /// No session cookie: the header stays as it is.
    Unchanged,
    /// The other cookies, each pair as the client sent it (trimmed), joined by "; ".
    Rest(Vec<u8>),
    /// Only session cookies: no header is left.
    Nothing,
}

/// `cookie_header` without every cookie whose name `is_session`, names found as [`values`]
/// finds them (so whatever the module would read as a session is what a backend no longer
/// sees). Bytes, not text: a header that is not UTF-8 passes with its bytes as they were,
/// and nothing is validated or copied on a request without a session cookie.
pub fn without(cookie_header: &[u8], is_session: impl Fn(&[u8]) -> bool) -> Stripped {
    let mut rest = cookie_header;
    let mut kept: Vec<u8> = Vec::new();
    let mut removed = false;
    while !rest.is_empty() {
        let pair = match find_semicolon(rest) {
            Some(end) => {
                let pair = &rest[..end];
                rest = &rest[end + 1..];
                pair
            }
            None => std::mem::take(&mut rest),
        };
        let name = pair.iter().position(|&b| b == b'=').map(|at| &pair[..at]);
        if name.is_some_and(|name| is_session(trim_ows_bytes(name))) {
            removed = true;
            continue;
        }
        let pair = trim_ows_bytes(pair);
        if !pair.is_empty() {
            if !kept.is_empty() {
                kept.extend_from_slice(b"; ");
            }
            kept.extend_from_slice(pair);
        }
    }
    match (removed, kept.is_empty()) {
        (false, _) => Stripped::Unchanged,
        (true, true) => Stripped::Nothing,
        (true, false) => Stripped::Rest(kept),
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    Strict,
    None,
}

impl SameSite {
    pub fn as_str(&self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::Strict => "Strict",
            SameSite::None => "None",
        }
    }
}

/// A `Set-Cookie` header. Fields are written as given: names and attribute values must have
/// passed [`is_valid_name`] / [`is_valid_attribute_value`] (at config time), and the value
/// must be cookie-octets ([`is_valid_value`]; session ids always are).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetCookie<'a> {
    pub name: &'a str,
    pub value: &'a str,
    pub path: &'a str,
    pub domain: Option<&'a str>,
    pub same_site: SameSite,
    pub secure: bool,
    /// `None` makes a session cookie (gone when the browser closes); `Some(0)` deletes it.
    pub max_age: Option<u64>,
}

impl SetCookie<'_> {
    pub fn header_value(&self) -> String {
        let mut out =
            String::with_capacity(self.name.len() + self.value.len() + self.path.len() + 128);
        out.push_str(self.name);
        out.push('=');
        out.push_str(self.value);
        out.push_str("; Path=");
        out.push_str(self.path);
        if let Some(domain) = self.domain {
            out.push_str("; Domain=");
            out.push_str(domain);
        }
        if let Some(max_age) = self.max_age {
            out.push_str("; Max-Age=");
            out.push_str(&max_age.to_string());
            if max_age == 0 {
                // Clients predating Max-Age (and some caches in between) only honour Expires.
                out.push_str("; Expires=Thu, 01 Jan 1970 00:00:00 GMT");
            }
        }
        if self.secure {
            out.push_str("; Secure");
        }
        // Always: no script on the site ever needs the session id, and an XSS must not be
        // able to carry it off.
        out.push_str("; HttpOnly");
        out.push_str("; SameSite=");
        out.push_str(self.same_site.as_str());
        out
    }
}

/// RFC 2616 separators, which RFC 6265 excludes from cookie names.
fn is_separator(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')'
            | b'<'
            | b'>'
            | b'@'
            | b','
            | b';'
            | b':'
            | b'\\'
            | b'"'
            | b'/'
            | b'['
            | b']'
            | b'?'
            | b'='
            | b'{'
            | b'}'
            | b' '
            | b'\t'
    )
}

/// An RFC 6265 cookie name (an RFC 2616 token): non-empty, visible ASCII, no separators.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !is_separator(b))
}

/// RFC 6265 cookie-octets: visible ASCII except `"`, `,`, `;` and `\`.
pub fn is_valid_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b',' | b';' | b'\\'))
}

/// A value for `Path` or `Domain`: non-empty visible ASCII without `;`. Anything else could
/// end the attribute early, smuggle another attribute in, or split the header.
pub fn is_valid_attribute_value(v: &str) -> bool {
    !v.is_empty() && v.bytes().all(|b| b.is_ascii_graphic() && b != b';')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn without(header: &str, names: &[&str]) -> Stripped {
        super::without(header.as_bytes(), |name| {
            names.iter().any(|n| n.as_bytes() == name)
        })
    }

    #[test]
    fn stripping_takes_out_every_cookie_of_the_name_and_keeps_the_rest() {
        let rest = |s: &str| Stripped::Rest(s.as_bytes().to_vec());
        assert_eq!(
            without("a=1; memsession=X; b=2", &["memsession"]),
            rest("a=1; b=2")
        );
        assert_eq!(
            without("memsession=X;memsession=Y ;\tc=\"q;\"", &["memsession"]),
            rest("c=\"q; \""),
            "every copy, whatever the spacing; a quote does not protect a ';'"
        );
        assert_eq!(without("memsession=X", &["memsession"]), Stripped::Nothing);
        assert_eq!(
            without(" memsession = X ; ", &["memsession"]),
            Stripped::Nothing
        );
        assert_eq!(
            without("a=1; b=2", &["memsession"]),
            Stripped::Unchanged,
            "nothing of ours: the header is not rewritten"
        );
        assert_eq!(without("", &["memsession"]), Stripped::Unchanged);
        // Names are exact, as the module reads them: these are not its session.
        assert_eq!(
            without(
                "MemSession=X; memsession2=Y; xmemsession=Z; flag",
                &["memsession"]
            ),
            Stripped::Unchanged
        );
        assert_eq!(
            without("flag; memsession=X; ; a=1, memsession=Y", &["memsession"]),
            rest("flag; a=1, memsession=Y"),
            "pairs without '=' kept; a second header Apache joined with ', ' is one pair"
        );
        assert_eq!(
            without(
                "a=1; memsession=X; othersess=Y; b=2",
                &["memsession", "othersess"]
            ),
            rest("a=1; b=2"),
            "every name of the module's"
        );
        assert_eq!(
            super::without(b"a=\xff; memsession=X; b=\xfe\xfd", |n| n == b"memsession"),
            Stripped::Rest(b"a=\xff; b=\xfe\xfd".to_vec()),
            "bytes that are not UTF-8 pass as they were"
        );
        // Whatever values() finds is what is taken out.
        for header in [
            "memsession=\"X\"",
            "x=1;memsession=;y=2",
            "memsession=X; memsession=X",
        ] {
            let left = match without(header, &["memsession"]) {
                Stripped::Rest(left) => String::from_utf8(left).unwrap(),
                Stripped::Nothing => String::new(),
                Stripped::Unchanged => panic!("{header}: nothing stripped"),
            };
            assert_eq!(values(&left, "memsession").count(), 0, "{header}");
        }
    }

    #[test]
    fn semicolons_are_found_at_every_position() {
        for len in 0..40 {
            assert_eq!(find_semicolon(&vec![b'a'; len]), None);
            for at in 0..len {
                for later in at..len {
                    let mut bytes = vec![0xffu8; len];
                    bytes[at] = b';';
                    bytes[later] = b';';
                    assert_eq!(find_semicolon(&bytes), Some(at), "{len} {at} {later}");
                }
            }
        }
    }

    fn all<'h>(header: &'h str, name: &str) -> Vec<&'h str> {
        values(header, name).collect()
    }

    #[test]
    fn single_and_many() {
        assert_eq!(all("memsession=abc", "memsession"), ["abc"]);
        assert_eq!(all("a=1; memsession=abc; b=2", "memsession"), ["abc"]);
        assert_eq!(all("a=1;b=2", "b"), ["2"]);
        assert_eq!(all("a=1; b=2", "c"), Vec::<&str>::new());
        assert_eq!(all("", "a"), Vec::<&str>::new());
    }

    #[test]
    fn duplicates_all_returned_in_order() {
        assert_eq!(
            all("memsession=one; x=y; memsession=two", "memsession"),
            ["one", "two"]
        );
    }

    #[test]
    fn commas_belong_to_values() {
        // Another cookie's value cannot carry ours past the __Host- prefix.
        assert_eq!(
            all("lang=en,__Host-memsession=planted", "__Host-memsession"),
            Vec::<&str>::new()
        );
        assert_eq!(
            all("a=1; memsession=one, memsession=two; b=3", "memsession"),
            ["one, memsession=two"]
        );
        assert_eq!(all("a=1,b=2", "b"), Vec::<&str>::new());
        assert_eq!(all("a=1,b=2", "a"), ["1,b=2"]);
    }

    #[test]
    fn whitespace_and_quotes() {
        assert_eq!(all(" \t memsession \t= \t abc \t ;", "memsession"), ["abc"]);
        assert_eq!(all("memsession=\"abc\"", "memsession"), ["abc"]);
        assert_eq!(all("memsession= \"abc\" ", "memsession"), ["abc"]);
        // Only one pair of quotes is removed, and only a matched pair.
        assert_eq!(all("memsession=\"\"abc\"\"", "memsession"), ["\"abc\""]);
        assert_eq!(all("memsession=\"abc", "memsession"), ["\"abc"]);
        assert_eq!(all("memsession=abc\"", "memsession"), ["abc\""]);
        assert_eq!(all("memsession=\"", "memsession"), ["\""]);
        assert_eq!(all("memsession=\"\"", "memsession"), [""]);
    }

    #[test]
    fn values_may_contain_equals() {
        assert_eq!(all("memsession=a=b==", "memsession"), ["a=b=="]);
    }

    #[test]
    fn empty_value() {
        assert_eq!(all("memsession=; a=1", "memsession"), [""]);
        assert_eq!(all("memsession=", "memsession"), [""]);
    }

    #[test]
    fn names_are_exact() {
        let h = "MemSession=1; memsession2=2; xmemsession=3; memsession =4; memsessio=5";
        assert_eq!(all(h, "memsession"), ["4"]);
        assert_eq!(all("memsession.x=1", "memsession"), Vec::<&str>::new());
    }

    #[test]
    fn pairs_without_equals_skipped() {
        assert_eq!(
            all("memsession; foo; memsession=ok;;;", "memsession"),
            ["ok"]
        );
        assert_eq!(all(";;;", "a"), Vec::<&str>::new());
        assert_eq!(all("=value", ""), ["value"]);
    }

    #[test]
    fn hostile_input_never_panics() {
        let samples = [
            "é=ü; memsession=ü€; 😀=😀",
            "memsession=\u{0}\u{1}\r\n",
            "=;=;=,=,==",
            "\"\"\"\"",
            "memsession=é\"",
            ";",
            ",",
            "\u{feff}memsession=x",
        ];
        for s in samples {
            let _ = all(s, "memsession");
            let _ = all(s, "");
            let _ = all(s, "é");
        }
        assert_eq!(all("é=ü; memsession=ü€", "memsession"), ["ü€"]);
        // Multi-byte characters right against the delimiters split where they did by char.
        assert_eq!(all("ü=é;memsession=\tok\t;€;é=", "memsession"), ["ok"]);
        assert_eq!(all("ü=é;memsession=\tok\t,€;é=", "memsession"), ["ok\t,€"]);
        assert_eq!(
            all("memsession=\u{a0}x\u{a0}", "memsession"),
            ["\u{a0}x\u{a0}"]
        );
        // A long header of junk terminates and yields nothing.
        let long = "x".repeat(100_000) + &";".repeat(10_000);
        assert_eq!(all(&long, "memsession").len(), 0);
    }

    #[test]
    fn set_cookie_full() {
        let c = SetCookie {
            name: "memsession",
            value: "abc",
            path: "/",
            domain: Some("example.com"),
            same_site: SameSite::Lax,
            secure: true,
            max_age: Some(3600),
        };
        assert_eq!(
            c.header_value(),
            "memsession=abc; Path=/; Domain=example.com; Max-Age=3600; Secure; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn set_cookie_session_cookie() {
        let c = SetCookie {
            name: "s",
            value: "v",
            path: "/app",
            domain: None,
            same_site: SameSite::Strict,
            secure: false,
            max_age: None,
        };
        assert_eq!(
            c.header_value(),
            "s=v; Path=/app; HttpOnly; SameSite=Strict"
        );
    }

    #[test]
    fn set_cookie_delete() {
        let c = SetCookie {
            name: "s",
            value: "",
            path: "/",
            domain: None,
            same_site: SameSite::None,
            secure: true,
            max_age: Some(0),
        };
        assert_eq!(
            c.header_value(),
            "s=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure; HttpOnly; SameSite=None"
        );
    }

    #[test]
    fn same_site_names() {
        assert_eq!(SameSite::Lax.as_str(), "Lax");
        assert_eq!(SameSite::Strict.as_str(), "Strict");
        assert_eq!(SameSite::None.as_str(), "None");
    }

    #[test]
    fn name_validation() {
        for good in ["memsession", "a", "MemSession_1", "x-y.z", "!#$%&'*+^`|~"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in [
            "", "a b", "a;b", "a=b", "a,b", "a\"b", "a/b", "a\tb", "a\rb", "a\nb", "a\0b", "(a)",
            "a@b", "a:b", "[a]", "a?", "{a}", "a\\b", "é", "a\u{7f}", "<a>",
        ] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn value_validation() {
        assert!(is_valid_value(""));
        assert!(is_valid_value("abc-_XYZ019"));
        assert!(is_valid_value("a=b/c:d"));
        for bad in [
            "a b", "a;b", "a,b", "a\"b", "a\\b", "a\r\nb", "é", "a\u{7f}",
        ] {
            assert!(!is_valid_value(bad), "{bad:?}");
        }
    }

    #[test]
    fn attribute_validation() {
        for good in ["/", "/app/x", "example.com", ".example.com", "/a=b,c"] {
            assert!(is_valid_attribute_value(good), "{good}");
        }
        for bad in [
            "",
            "/a;b",
            "/a b",
            "/a\tb",
            "/a\r\nSet-Cookie: x=y",
            "/\0",
            "/é",
            "/\u{7f}",
            "example.com; Secure",
        ] {
            assert!(!is_valid_attribute_value(bad), "{bad:?}");
        }
    }
}
