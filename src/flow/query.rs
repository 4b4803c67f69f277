//! Query strings: finding one parameter and percent-coding values.

/// The percent-decoded value of the first `name=` parameter. `None` when absent or when the
/// decoded bytes are not UTF-8. `+` is kept literally: these values are paths, not forms.
pub fn parameter(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .and_then(|(_, value)| percent_decode(value))
}

pub fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        if byte == b'%' {
            let high = bytes.get(index + 1).and_then(|b| (*b as char).to_digit(16));
            let low = bytes.get(index + 2).and_then(|b| (*b as char).to_digit(16));
            if let (Some(high), Some(low)) = (high, low) {
                decoded.push((high * 16 + low) as u8);
                index += 3;
                continue;
            }
        }
        decoded.push(byte);
        index += 1;
    }
    String::from_utf8(decoded).ok()
}

/// Encodes everything but RFC 3986 unreserved characters, so the value is one query parameter.
pub fn percent_encode_component(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len() * 3);
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_decodes_parameters() {
        assert_eq!(
            parameter("return=%2Fapp%2F", "return").as_deref(),
            Some("/app/")
        );
        assert_eq!(
            parameter("a=1&return=/x?y=1", "return").as_deref(),
            Some("/x?y=1")
        );
        assert_eq!(parameter("returnx=1", "return"), None);
        assert_eq!(parameter("return", "return"), None);
        assert_eq!(parameter("return=a+b", "return").as_deref(), Some("a+b"));
        assert_eq!(parameter("return=%ff", "return"), None, "not UTF-8");
        assert_eq!(parameter("return=%4", "return").as_deref(), Some("%4"));
        assert_eq!(parameter("return=%zz", "return").as_deref(), Some("%zz"));
    }

    #[test]
    fn encoding_round_trips() {
        let original = "/redir/page?x=1&y=a b/ü";
        let encoded = percent_encode_component(original);
        assert_eq!(&encoded[..16], "%2Fredir%2Fpage%");
        assert!(!encoded.contains(['/', '?', '&', '=', ' ']));
        assert_eq!(percent_decode(&encoded).as_deref(), Some(original));
    }
}
