//! Parsers for the value kinds directives take, each returning a message that the caller
//! prefixes with the directive's name.
use crate::web::cookie::{self, SameSite};
use crate::web::return_path;

/// What a request without a valid session gets (`MemSessionUnauthenticated`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unauthenticated {
    /// Always 401.
    Status401,
    /// Always a redirect to `MemSessionLoginURL`.
    Redirect,
    /// Browser navigations are redirected, API and XHR clients get 401.
    Auto,
}

pub fn parse_unauthenticated(text: &str) -> Result<Unauthenticated, String> {
    match text.to_ascii_lowercase().as_str() {
        "401" => Ok(Unauthenticated::Status401),
        "redirect" => Ok(Unauthenticated::Redirect),
        "auto" => Ok(Unauthenticated::Auto),
        _ => Err(format!("'{text}' is not one of 401, redirect, auto")),
    }
}

pub fn parse_same_site(text: &str) -> Result<SameSite, String> {
    match text.to_ascii_lowercase().as_str() {
        "lax" => Ok(SameSite::Lax),
        "strict" => Ok(SameSite::Strict),
        "none" => Ok(SameSite::None),
        _ => Err(format!("'{text}' is not one of Lax, Strict, None")),
    }
}

pub fn parse_cookie_name(text: &str) -> Result<String, String> {
    if cookie::is_valid_name(text) {
        Ok(text.to_string())
    } else {
        Err(format!("'{text}' is not a valid cookie name"))
    }
}

pub fn parse_cookie_attribute(text: &str) -> Result<String, String> {
    if !text.is_empty() && cookie::is_valid_attribute_value(text) {
        Ok(text.to_string())
    } else {
        Err(format!("'{text}' cannot be used in a Set-Cookie attribute"))
    }
}

/// A path on this site (`/login`) or an absolute http(s) URL, as an administrator
/// configures login and logout targets.
pub fn parse_url_or_path(text: &str) -> Result<String, String> {
    let has_control = text.chars().any(|c| c.is_control() || c.is_whitespace());
    let absolute = text.starts_with("http://") || text.starts_with("https://");
    if !has_control && (absolute || (text.starts_with('/') && !text.starts_with("//"))) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "'{text}' must be a path starting with / or an http(s) URL"
        ))
    }
}

pub fn parse_origin(text: &str) -> Result<String, String> {
    return_path::normalise_origin(text)
        .ok_or_else(|| format!("'{text}' is not an origin like https://portal.example.com"))
}

/// A request header name (`X-Remote-User`), or `None` to switch the header off in an
/// inner section.
pub fn parse_header_name(text: &str) -> Result<Option<String>, String> {
    if text.eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        Ok(Some(text.to_string()))
    } else {
        Err(format!("'{text}' is not a header name"))
    }
}

pub fn parse_provider_name(text: &str) -> Result<String, String> {
    if !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    {
        Ok(text.to_string())
    } else {
        Err(format!("'{text}' is not an authn provider name"))
    }
}

/// A Kerberos realm name as it appears after `@` (`EXAMPLE.COM`).
pub fn parse_realm(text: &str) -> Result<String, String> {
    if !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "@/\\".contains(c))
    {
        Ok(text.to_string())
    } else {
        Err(format!("'{text}' is not a Kerberos realm name"))
    }
}

/// A directory that will hold users' credentials: it must exist and let nobody but its
/// owner (the Apache user) in, or anyone on the machine could list and read what is lent.
pub fn check_private_dir(dir: &std::path::Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let shown = dir.display();
    let meta = std::fs::metadata(dir).map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("{shown} is not a directory"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "{shown} has mode {:04o}: others could reach the credentials lent there; \
             chmod 0700 it (owned by the Apache user)",
            meta.mode() & 0o7777
        ));
    }
    Ok(())
}

pub fn parse_absolute_path(text: &str) -> Result<String, String> {
    if text.starts_with('/') && !text.chars().any(char::is_control) {
        Ok(text.trim_end_matches('/').to_string()).map(|path| {
            if path.is_empty() {
                "/".into()
            } else {
                path
            }
        })
    } else {
        Err(format!("'{text}' must be an absolute path"))
    }
}

pub fn parse_key_prefix(text: &str) -> Result<String, String> {
    // Keys are prefix + ~45 characters and memcached caps keys at 250 bytes.
    if text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(text.to_string())
    } else {
        Err(format!(
            "'{text}' must be at most 128 printable characters without spaces"
        ))
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn private_dirs_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("memsession-priv-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(check_private_dir(&dir).is_ok());
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
        assert!(check_private_dir(&dir).unwrap_err().contains("mode 0711"));
        assert!(check_private_dir(&dir.join("missing")).is_err());
        let file = dir.join("file");
        std::fs::write(&file, b"").unwrap();
        assert!(check_private_dir(&file)
            .unwrap_err()
            .contains("not a directory"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
    use super::*;

    #[test]
    fn unauthenticated_values() {
        assert_eq!(parse_unauthenticated("401"), Ok(Unauthenticated::Status401));
        assert_eq!(
            parse_unauthenticated("Redirect"),
            Ok(Unauthenticated::Redirect)
        );
        assert_eq!(parse_unauthenticated("AUTO"), Ok(Unauthenticated::Auto));
        assert!(parse_unauthenticated("sometimes").is_err());
        assert!(parse_unauthenticated("").is_err());
    }

    #[test]
    fn same_site_values() {
        assert_eq!(parse_same_site("strict"), Ok(SameSite::Strict));
        assert_eq!(parse_same_site("LAX"), Ok(SameSite::Lax));
        assert_eq!(parse_same_site("None"), Ok(SameSite::None));
        assert!(parse_same_site("Sideways").is_err());
    }

    #[test]
    fn url_or_path() {
        assert!(parse_url_or_path("/login").is_ok());
        assert!(parse_url_or_path("https://sso.example/login").is_ok());
        assert!(parse_url_or_path("//evil").is_err());
        assert!(parse_url_or_path("login").is_err());
        assert!(parse_url_or_path("/a b").is_err());
        assert!(parse_url_or_path("/a\r\nX: y").is_err());
    }

    #[test]
    fn header_names() {
        assert_eq!(
            parse_header_name("X-Remote-User"),
            Ok(Some("X-Remote-User".into()))
        );
        assert_eq!(parse_header_name("none"), Ok(None));
        assert!(parse_header_name("X Remote").is_err());
        assert!(parse_header_name("X:Y").is_err());
    }

    #[test]
    fn key_prefix() {
        assert!(parse_key_prefix("memsession:").is_ok());
        assert!(parse_key_prefix("").is_ok());
        assert!(parse_key_prefix("has space").is_err());
        assert!(parse_key_prefix(&"x".repeat(129)).is_err());
    }
}
