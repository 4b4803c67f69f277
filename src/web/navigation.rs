//! Telling a top-level browser navigation from an API or script request, for
//! `MemSessionUnauthenticated auto`: a person in a browser tab should land on the login page,
//! a script should get a 401 it can act on (a redirect to an HTML login page would arrive as
//! a confusing 200 at the end of a fetch).

/// The request headers that tell the two apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestHints<'a> {
    pub method: &'a str,
    pub accept: Option<&'a str>,
    pub sec_fetch_mode: Option<&'a str>,
    pub sec_fetch_dest: Option<&'a str>,
    pub x_requested_with: Option<&'a str>,
}

/// Whether an `Accept` header lists `media_type` with a non-zero quality. Wildcards do not
/// count: every client accepts `*/*`, which says nothing about being a browser.
fn accepts(accept: Option<&str>, media_type: &str) -> bool {
    let Some(accept) = accept else {
        return false;
    };
    accept.split(',').any(|range| {
        let mut parts = range.split(';');
        let ty = parts.next().unwrap_or("").trim();
        ty.eq_ignore_ascii_case(media_type) && !parts.any(is_zero_quality)
    })
}

fn is_zero_quality(param: &str) -> bool {
    let Some((name, value)) = param.split_once('=') else {
        return false;
    };
    name.trim().eq_ignore_ascii_case("q") && value.trim().parse::<f64>().is_ok_and(|q| q <= 0.0)
}

/// A top-level (or framed) page load by a browser. Every signal must agree: an ambiguous
/// request gets the 401, which a browser still shows and a script can handle.
pub fn is_browser_navigation(h: &RequestHints) -> bool {
    let method_ok = matches!(h.method, "GET" | "HEAD");
    let mode_ok = h
        .sec_fetch_mode
        .map_or(true, |m| m.trim().eq_ignore_ascii_case("navigate"));
    let dest_ok = h.sec_fetch_dest.map_or(true, |d| {
        let d = d.trim();
        ["document", "iframe", "frame"]
            .iter()
            .any(|ok| d.eq_ignore_ascii_case(ok))
    });
    method_ok
        && h.x_requested_with.is_none()
        && accepts(h.accept, "text/html")
        && mode_ok
        && dest_ok
}

/// Whether an error or login answer should be JSON rather than HTML.
pub fn wants_json(h: &RequestHints) -> bool {
    h.x_requested_with.is_some()
        || (accepts(h.accept, "application/json") && !accepts(h.accept, "text/html"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHROME_ACCEPT: &str =
        "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

    fn browser() -> RequestHints<'static> {
        RequestHints {
            method: "GET",
            accept: Some(CHROME_ACCEPT),
            sec_fetch_mode: Some("navigate"),
            sec_fetch_dest: Some("document"),
            x_requested_with: None,
        }
    }

    #[test]
    fn real_browser_navigation() {
        assert!(is_browser_navigation(&browser()));
        assert!(is_browser_navigation(&RequestHints {
            method: "HEAD",
            ..browser()
        }));
        for dest in ["iframe", "frame", "Document"] {
            assert!(is_browser_navigation(&RequestHints {
                sec_fetch_dest: Some(dest),
                ..browser()
            }));
        }
    }

    #[test]
    fn old_browser_without_fetch_metadata() {
        assert!(is_browser_navigation(&RequestHints {
            sec_fetch_mode: None,
            sec_fetch_dest: None,
            ..browser()
        }));
    }

    #[test]
    fn scripts_and_apis_are_not_navigation() {
        let cases = [
            RequestHints {
                method: "POST",
                ..browser()
            },
            RequestHints {
                method: "get",
                ..browser()
            },
            RequestHints {
                x_requested_with: Some("XMLHttpRequest"),
                ..browser()
            },
            RequestHints {
                accept: None,
                ..browser()
            },
            RequestHints {
                accept: Some("*/*"),
                ..browser()
            },
            RequestHints {
                accept: Some("application/json"),
                ..browser()
            },
            RequestHints {
                accept: Some("text/html;q=0, application/json"),
                ..browser()
            },
            RequestHints {
                accept: Some("application/xhtml+xml;profile=\"text/html\""),
                ..browser()
            },
            RequestHints {
                sec_fetch_mode: Some("cors"),
                ..browser()
            },
            RequestHints {
                sec_fetch_mode: Some("no-cors"),
                ..browser()
            },
            RequestHints {
                sec_fetch_dest: Some("empty"),
                ..browser()
            },
            RequestHints {
                sec_fetch_dest: Some("image"),
                ..browser()
            },
            RequestHints {
                sec_fetch_dest: Some("script"),
                ..browser()
            },
            RequestHints::default(),
        ];
        for h in cases {
            assert!(!is_browser_navigation(&h), "{h:?}");
        }
    }

    #[test]
    fn accept_parsing() {
        assert!(accepts(Some("TEXT/HTML"), "text/html"));
        assert!(accepts(Some(" text/html ; q=0.5"), "text/html"));
        assert!(accepts(Some("a/b, text/html;level=1"), "text/html"));
        assert!(!accepts(Some("text/html;q=0"), "text/html"));
        assert!(!accepts(Some("text/html;q=0.000"), "text/html"));
        assert!(!accepts(Some("text/html; Q = 0"), "text/html"));
        assert!(accepts(Some("text/html;q=junk"), "text/html"));
        assert!(!accepts(Some("text/htmlx"), "text/html"));
        assert!(!accepts(Some("text/*"), "text/html"));
        assert!(!accepts(Some(""), "text/html"));
        assert!(!accepts(None, "text/html"));
    }

    #[test]
    fn json_preference() {
        let api = RequestHints {
            method: "GET",
            accept: Some("application/json"),
            ..RequestHints::default()
        };
        assert!(wants_json(&api));
        assert!(wants_json(&RequestHints {
            accept: Some("application/json, text/plain, */*"),
            ..api
        }));
        assert!(wants_json(&RequestHints {
            accept: None,
            x_requested_with: Some("XMLHttpRequest"),
            ..api
        }));
        assert!(wants_json(&RequestHints {
            accept: Some(CHROME_ACCEPT),
            x_requested_with: Some("XMLHttpRequest"),
            ..api
        }));
        assert!(!wants_json(&browser()));
        assert!(!wants_json(&RequestHints {
            accept: Some("application/json, text/html"),
            ..api
        }));
        assert!(!wants_json(&RequestHints {
            accept: Some("*/*"),
            ..api
        }));
        assert!(!wants_json(&RequestHints::default()));
    }

    #[test]
    fn hostile_input_never_panics() {
        for s in [
            "",
            ";",
            ",,;;",
            "q=",
            ";q=",
            "text/html;q=NaN",
            "é/é;q=é",
            "\u{0}",
        ] {
            let h = RequestHints {
                method: s,
                accept: Some(s),
                sec_fetch_mode: Some(s),
                sec_fetch_dest: Some(s),
                x_requested_with: None,
            };
            let _ = is_browser_navigation(&h);
            let _ = wants_json(&h);
        }
    }
}
