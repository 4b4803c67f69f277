//! `Cache-Control` for responses this module authenticated: private to the one client.
//!
//! A shared cache (mod_cache, a CDN, a corporate proxy) that stored such a response would
//! serve it to the next client asking, session or not. A backend's own directives stay, unless
//! they let a shared cache store (`public`, `s-maxage`, a field-qualified `private`); a
//! response that is already `private` or `no-store` is left exactly as the backend sent it.

/// The `Cache-Control` value the response needs, or `None` when the backend's (all its
/// `Cache-Control` header values, in order) is already private enough.
pub fn made_private(values: &[&str]) -> Option<String> {
    let directives: Vec<&str> = values.iter().flat_map(|value| split_list(value)).collect();
    if directives.iter().any(|d| {
        let name = directive_name(d);
        name.eq_ignore_ascii_case("no-store") || d.eq_ignore_ascii_case("private")
    }) {
        return None;
    }
    let mut out = String::from("private");
    for directive in directives {
        let name = directive_name(directive);
        if ["public", "s-maxage", "private"]
            .iter()
            .any(|shared| name.eq_ignore_ascii_case(shared))
        {
            continue;
        }
        out.push_str(", ");
        out.push_str(directive);
    }
    Some(out)
}

fn directive_name(directive: &str) -> &str {
    directive
        .split_once('=')
        .map_or(directive, |(name, _)| name)
        .trim()
}

/// The comma-separated elements of a header value; commas inside a quoted string (as in
/// `no-cache="Set-Cookie, X-Foo"`) do not separate. Empty elements are dropped.
fn split_list(value: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, byte) in value.bytes().enumerate() {
        match byte {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            b',' if !quoted => {
                parts.push(&value[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
        .into_iter()
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_becomes_private() {
        assert_eq!(made_private(&[]).as_deref(), Some("private"));
        assert_eq!(made_private(&["", " , "]).as_deref(), Some("private"));
    }

    #[test]
    fn shared_cache_permissions_are_removed_and_the_rest_kept() {
        assert_eq!(
            made_private(&["public, max-age=600"]).as_deref(),
            Some("private, max-age=600")
        );
        assert_eq!(
            made_private(&["max-age=60", "S-MAXAGE=3600, must-revalidate"]).as_deref(),
            Some("private, max-age=60, must-revalidate")
        );
        assert_eq!(
            made_private(&["no-cache"]).as_deref(),
            Some("private, no-cache")
        );
        // a private that names fields lets shared caches store the rest
        assert_eq!(
            made_private(&["private=\"Set-Cookie, X-Foo\", max-age=5"]).as_deref(),
            Some("private, max-age=5")
        );
    }

    #[test]
    fn already_private_or_no_store_is_left_alone() {
        for kept in [
            &["private"][..],
            &["max-age=0, Private"],
            &["no-store"],
            &["public", "NO-STORE"],
            &["no-cache=\"a, no-store\", no-store"],
        ] {
            assert_eq!(made_private(kept), None, "{kept:?}");
        }
    }

    #[test]
    fn quoted_commas_do_not_split() {
        assert_eq!(
            split_list("no-cache=\"a, b\", public"),
            ["no-cache=\"a, b\"", "public"]
        );
        assert_eq!(split_list("x=\"a\\\", b\", y"), ["x=\"a\\\", b\"", "y"]);
        // outside a quoted string a backslash escapes nothing
        assert_eq!(split_list("a\\,b"), ["a\\", "b"]);
        // a quoted "no-store" is a field name, not the directive
        assert_eq!(
            made_private(&["no-cache=\"no-store\""]).as_deref(),
            Some("private, no-cache=\"no-store\"")
        );
    }
}
