//! `application/x-www-form-urlencoded` bodies, as a login form posts them.
use crate::secret::{Zeroize, Zeroizing};

/// The decoded value of the first field called `name`. `+` is a space here (form encoding);
/// a value that does not decode to UTF-8 is treated as absent.
pub fn field(body: &[u8], name: &str) -> Option<String> {
    body.split(|&byte| byte == b'&')
        .filter_map(|pair| {
            let split = pair.iter().position(|&byte| byte == b'=')?;
            Some((&pair[..split], &pair[split + 1..]))
        })
        .find(|(key, _)| decode(key).as_deref() == Some(name))
        .and_then(|(_, value)| decode(value))
}

/// The fields `names` of a body that carries a password, each decoded into a buffer wiped
/// when dropped; then the body itself is wiped in place: once its fields are taken, no copy of
/// the password is left in it.
pub fn take_fields<const N: usize>(
    body: &mut [u8],
    names: [&str; N],
) -> [Option<Zeroizing<String>>; N] {
    let fields = names.map(|name| field(body, name).map(Zeroizing::new));
    body.zeroize();
    fields
}

/// Never grows its buffer (a reallocation would leave an unwiped copy of a password in freed
/// memory); a value that is not UTF-8 is wiped before it is dropped.
fn decode(encoded: &[u8]) -> Option<String> {
    let mut decoded = Vec::with_capacity(encoded.len());
    let mut index = 0;
    while index < encoded.len() {
        match encoded[index] {
            b'+' => decoded.push(b' '),
            b'%' => {
                let byte = encoded
                    .get(index + 1..index + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|text| u8::from_str_radix(text, 16).ok());
                let Some(byte) = byte else {
                    decoded.zeroize();
                    return None;
                };
                decoded.push(byte);
                index += 2;
            }
            byte => decoded.push(byte),
        }
        index += 1;
    }
    String::from_utf8(decoded)
        .map_err(|error| error.into_bytes().zeroize())
        .ok()
}

/// Whether a Content-Type header names a urlencoded form (parameters allowed).
pub fn is_urlencoded(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|value| value.split(';').next())
        .is_some_and(|media| {
            media
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_decode() {
        let body = b"user=alice&password=p%40ss+word%26more&return=%2Fapp%2F";
        assert_eq!(field(body, "user").as_deref(), Some("alice"));
        assert_eq!(field(body, "password").as_deref(), Some("p@ss word&more"));
        assert_eq!(field(body, "return").as_deref(), Some("/app/"));
        assert_eq!(field(body, "missing"), None);
        assert_eq!(field(b"user", "user"), None);
        assert_eq!(field(b"user=", "user").as_deref(), Some(""));
        assert_eq!(field(b"a=1&a=2", "a").as_deref(), Some("1"));
    }

    #[test]
    fn taking_the_fields_wipes_the_body() {
        let mut body = b"user=alice&password=p%40ss+word&return=%2Fapp".to_vec();
        let [user, password, missing] = take_fields(&mut body, ["user", "password", "nope"]);
        assert_eq!(user.as_deref().map(String::as_str), Some("alice"));
        assert_eq!(password.as_deref().map(String::as_str), Some("p@ss word"));
        assert!(missing.is_none());
        assert_eq!(body.len(), 45, "wiped in place");
        assert!(
            body.iter().all(|&b| b == 0),
            "the body still holds the password"
        );
    }

    #[test]
    fn hostile_bodies_do_not_panic() {
        for body in [
            &b"user=%"[..],
            b"user=%4",
            b"user=%zz",
            b"user=%ff%fe",
            b"=&&==",
            b"\xff=\xfe",
            b"",
        ] {
            let _ = field(body, "user");
        }
        assert_eq!(field(b"user=%ff", "user"), None);
        assert_eq!(field(b"user=%4", "user"), None);
    }

    #[test]
    fn content_types() {
        assert!(is_urlencoded(Some("application/x-www-form-urlencoded")));
        assert!(is_urlencoded(Some(
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8"
        )));
        assert!(!is_urlencoded(Some("multipart/form-data; boundary=x")));
        assert!(!is_urlencoded(None));
    }
}
