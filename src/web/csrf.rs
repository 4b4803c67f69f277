//! The CSRF origin rule for requests that ride on the session cookie.
//!
//! A cookie is sent by the browser whoever built the request; `Origin` (or, from older
//! clients, `Referer`) says who did. An unsafe request is allowed only when that origin is
//! this site or an explicitly trusted one. Missing or unreadable evidence is refused: the
//! cost is a 403 for an odd client, the alternative is a forged state change.

use super::return_path::{normalise_origin, split_origin};

/// Methods that may change state. Anything not known to be safe counts, so an unusual
/// method (WebDAV's PROPPATCH, or a lowercase "post") cannot slip past the check.
pub fn is_unsafe_method(method: &str) -> bool {
    !matches!(method, "GET" | "HEAD" | "OPTIONS" | "TRACE")
}

/// `own_origin` and `trusted` are given normalised (see [`normalise_origin`]).
pub fn origin_allowed(
    origin: Option<&str>,
    referer: Option<&str>,
    own_origin: &str,
    trusted: &[String],
) -> bool {
    let claimed = match (origin, referer) {
        // An Origin that is present decides, even when unreadable: falling back to Referer
        // would let a request choose which header is judged.
        (Some(origin), _) => {
            let origin = origin.trim_matches([' ', '\t']);
            // Browsers send "null" from sandboxed frames, data: URLs and some redirects;
            // such a request has no origin anyone can vouch for.
            if origin == "null" {
                return false;
            }
            normalise_origin(origin)
        }
        (None, Some(referer)) => {
            split_origin(referer.trim_matches([' ', '\t'])).and_then(|(o, _)| normalise_origin(o))
        }
        (None, None) => None,
    };
    let Some(claimed) = claimed else {
        return false;
    };
    claimed == own_origin || trusted.contains(&claimed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: &str = "https://app.example.com";

    fn trusted() -> Vec<String> {
        vec!["https://portal.example.com".to_string()]
    }

    fn allowed(origin: Option<&str>, referer: Option<&str>) -> bool {
        origin_allowed(origin, referer, OWN, &trusted())
    }

    #[test]
    fn methods() {
        for m in [
            "POST",
            "PUT",
            "PATCH",
            "DELETE",
            "PROPPATCH",
            "MKCOL",
            "get",
            "post",
            "",
        ] {
            assert!(is_unsafe_method(m), "{m:?}");
        }
        for m in ["GET", "HEAD", "OPTIONS", "TRACE"] {
            assert!(!is_unsafe_method(m), "{m}");
        }
    }

    #[test]
    fn origin_header() {
        assert!(allowed(Some("https://app.example.com"), None));
        assert!(allowed(Some("HTTPS://App.Example.com:443"), None));
        assert!(allowed(Some("https://portal.example.com"), None));
        assert!(!allowed(Some("https://evil.example"), None));
        assert!(!allowed(Some("http://app.example.com"), None));
        assert!(!allowed(Some("https://app.example.com:8443"), None));
        assert!(!allowed(Some("https://app.example.com.evil.example"), None));
        assert!(!allowed(
            Some("https://evil.example/https://app.example.com"),
            None
        ));
    }

    #[test]
    fn null_origin_refused() {
        assert!(!allowed(Some("null"), None));
        assert!(!allowed(Some("null"), Some("https://app.example.com/form")));
        assert!(!allowed(Some(" null "), None));
    }

    #[test]
    fn present_origin_decides_over_referer() {
        assert!(!allowed(
            Some("https://evil.example"),
            Some("https://app.example.com/")
        ));
        assert!(!allowed(Some("garbage"), Some("https://app.example.com/")));
        assert!(!allowed(Some(""), Some("https://app.example.com/")));
        assert!(allowed(
            Some("https://app.example.com"),
            Some("https://evil.example/")
        ));
    }

    #[test]
    fn referer_fallback() {
        assert!(allowed(None, Some("https://app.example.com/page?x=1")));
        assert!(allowed(None, Some("https://app.example.com")));
        assert!(allowed(None, Some("https://portal.example.com/#x")));
        assert!(!allowed(
            None,
            Some("https://evil.example/https://app.example.com/")
        ));
        assert!(!allowed(
            None,
            Some("https://app.example.com@evil.example/")
        ));
        assert!(!allowed(None, Some("https://user@app.example.com/")));
        assert!(!allowed(None, Some("/relative")));
        assert!(!allowed(None, Some("")));
        assert!(!allowed(None, Some("android-app://app.example.com/")));
    }

    #[test]
    fn nothing_present_refused() {
        assert!(!allowed(None, None));
        assert!(!origin_allowed(None, None, OWN, &[]));
    }

    #[test]
    fn empty_trusted_list() {
        assert!(origin_allowed(Some(OWN), None, OWN, &[]));
        assert!(!origin_allowed(
            Some("https://portal.example.com"),
            None,
            OWN,
            &[]
        ));
    }

    #[test]
    fn hostile_input_never_panics() {
        for s in [
            "é",
            "https://é",
            "https://[",
            "://",
            "\u{0}",
            "https://a:99999",
            "😀://x",
        ] {
            assert!(!allowed(Some(s), None));
            assert!(!allowed(None, Some(s)));
        }
    }
}
