//! Header names compared the way the CGI environment folds them.
//!
//! Backends that read `HTTP_X_REMOTE_USER` cannot tell `X-Remote-User` from
//! `x_remote_user`, so removing only the exact configured spelling would leave a spoofed
//! copy for them to find. Everything that folds to the same CGI name is the same header.

fn fold(b: u8) -> u8 {
    match b {
        b'-' => b'_',
        _ => b.to_ascii_uppercase(),
    }
}

/// `X-Remote-User` -> `X_REMOTE_USER`. Non-ASCII is left as it is.
pub fn cgi_fold(name: &str) -> String {
    name.chars()
        .map(|c| match c {
            '-' => '_',
            _ => c.to_ascii_uppercase(),
        })
        .collect()
}

/// Whether two header names fold to the same CGI name, without allocating.
pub fn same_cgi_name(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| fold(x) == fold(y))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds() {
        assert_eq!(cgi_fold("X-Remote-User"), "X_REMOTE_USER");
        assert_eq!(cgi_fold("x_remote_user"), "X_REMOTE_USER");
        assert_eq!(cgi_fold("X-REMOTE_USER"), "X_REMOTE_USER");
        assert_eq!(cgi_fold(""), "");
        assert_eq!(cgi_fold("é-x"), "é_X");
    }

    #[test]
    fn same_names() {
        let forms = [
            "X-Remote-User",
            "x_remote_user",
            "X-REMOTE_USER",
            "x-rEmOtE-uSeR",
        ];
        for a in forms {
            for b in forms {
                assert!(same_cgi_name(a, b), "{a} {b}");
            }
        }
    }

    #[test]
    fn different_names() {
        for other in [
            "X-Remote-Users",
            "X-Remote-Use",
            "XRemote-User",
            "X Remote User",
            "X.Remote.User",
            "",
            "X-Remote-Us\u{e9}",
        ] {
            assert!(!same_cgi_name("X-Remote-User", other), "{other:?}");
        }
    }

    #[test]
    fn agrees_with_fold() {
        let names = ["a-b", "A_B", "a_b", "ab", "é-x", "É-X", "é_X", "", "-", "_"];
        for a in names {
            for b in names {
                assert_eq!(
                    same_cgi_name(a, b),
                    cgi_fold(a) == cgi_fold(b),
                    "{a:?} {b:?}"
                );
            }
        }
    }
}
