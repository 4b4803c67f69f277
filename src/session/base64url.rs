//! Unpadded base64url (RFC 4648 §5), strict in what it accepts.
//!
//! Decoding is canonical: padding, characters outside the alphabet, impossible lengths and
//! non-zero trailing bits are all refused, so every byte string has exactly one accepted text.
//! Without that, one session id would have several cookie spellings, and anything keyed on
//! the text (logs, caches, duplicate-cookie handling) could be told two different stories.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

const INVALID: u8 = 0xff;

// A 256-entry table makes every possible input byte a defined lookup, so hostile input can
// never reach an out-of-range index.
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Length of the unpadded text for `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    (n / 3) * 4
        + match n % 3 {
            0 => 0,
            1 => 2,
            _ => 3,
        }
}

/// Number of bytes a text of `len` characters decodes to; `None` for a length no byte string
/// encodes to (a lone trailing character carries only 6 bits).
const fn decoded_len(len: usize) -> Option<usize> {
    match len % 4 {
        0 => Some(len / 4 * 3),
        2 => Some(len / 4 * 3 + 1),
        3 => Some(len / 4 * 3 + 2),
        _ => None,
    }
}

pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(encoded_len(bytes.len()));
    let mut chunks = bytes.chunks_exact(3);
    for chunk in &mut chunks {
        if let [a, b, c] = *chunk {
            let n = u32::from(a) << 16 | u32::from(b) << 8 | u32::from(c);
            push_sextets(&mut out, n, 4);
        }
    }
    match *chunks.remainder() {
        [a] => push_sextets(&mut out, u32::from(a) << 16, 2),
        [a, b] => push_sextets(&mut out, u32::from(a) << 16 | u32::from(b) << 8, 3),
        _ => {}
    }
    out
}

fn push_sextets(out: &mut String, n: u32, count: usize) {
    for k in 0..count {
        let shift = 18 - 6 * k as u32;
        out.push(char::from(ALPHABET[((n >> shift) & 0x3f) as usize]));
    }
}

/// Decodes unpadded, canonical base64url; `None` for anything else.
pub fn decode(text: &str) -> Option<Vec<u8>> {
    let len = decoded_len(text.len())?;
    let mut out = vec![0u8; len];
    decode_to_slice(text.as_bytes(), &mut out)?;
    Some(out)
}

/// Decodes exactly `N` bytes without allocating; any other length is refused.
pub fn decode_into<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != encoded_len(N) {
        return None;
    }
    let mut out = [0u8; N];
    decode_to_slice(text.as_bytes(), &mut out)?;
    Some(out)
}

/// `out.len()` must be `decoded_len(text.len())`; mismatches are refused, not trusted.
fn decode_to_slice(text: &[u8], out: &mut [u8]) -> Option<()> {
    if decoded_len(text.len()) != Some(out.len()) {
        return None;
    }
    let mut text_chunks = text.chunks_exact(4);
    let mut out_chunks = out.chunks_exact_mut(3);
    // Whole groups: four lookups each, one validity test for them all at the end.
    let mut seen = 0u8;
    for (t, o) in (&mut text_chunks).zip(&mut out_chunks) {
        let (a, b, c, d) = (
            DECODE[usize::from(t[0])],
            DECODE[usize::from(t[1])],
            DECODE[usize::from(t[2])],
            DECODE[usize::from(t[3])],
        );
        seen |= a | b | c | d;
        let n = u32::from(a & 0x3f) << 18
            | u32::from(b & 0x3f) << 12
            | u32::from(c & 0x3f) << 6
            | u32::from(d & 0x3f);
        if let [x, y, z] = o {
            (*x, *y, *z) = ((n >> 16) as u8, (n >> 8) as u8, n as u8);
        }
    }
    if seen & 0x80 != 0 {
        return None;
    }
    let tail = text_chunks.remainder();
    let out_tail = out_chunks.into_remainder();
    match (tail.len(), out_tail) {
        (0, []) => Some(()),
        (2, [a]) => {
            let n = sextets(tail)?;
            // The low 4 bits of the last character are padding; refusing them when non-zero
            // is what makes the encoding canonical.
            if n & 0x00_ffff != 0 {
                return None;
            }
            *a = (n >> 16) as u8;
            Some(())
        }
        (3, [a, b]) => {
            let n = sextets(tail)?;
            if n & 0x00_00ff != 0 {
                return None;
            }
            *a = (n >> 16) as u8;
            *b = (n >> 8) as u8;
            Some(())
        }
        _ => None,
    }
}

/// Packs up to four characters into the top of a 24-bit group. One test for the whole
/// group: a valid sextet never has the top bit that [`INVALID`] has.
fn sextets(chars: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    let mut seen = 0u8;
    for (k, &c) in chars.iter().enumerate() {
        let v = DECODE[c as usize];
        seen |= v;
        n |= u32::from(v & 0x3f) << (18 - 6 * k as u32);
    }
    (seen & 0x80 == 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4648 §10 vectors, padding removed (the alphabet difference does not arise in them).
    const VECTORS: &[(&str, &str)] = &[
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ];

    #[test]
    fn rfc4648_vectors() {
        for (plain, text) in VECTORS {
            assert_eq!(encode(plain.as_bytes()), *text);
            assert_eq!(decode(text).as_deref(), Some(plain.as_bytes()));
        }
    }

    #[test]
    fn url_safe_alphabet() {
        assert_eq!(encode(&[0xfb, 0xff, 0xbf]), "-_-_");
        assert_eq!(decode("-_-_"), Some(vec![0xfb, 0xff, 0xbf]));
        assert_eq!(decode("+/+/"), None);
    }

    #[test]
    fn round_trip_all_lengths_and_bytes() {
        let data: Vec<u8> = (0..=255u8).collect();
        for len in 0..=data.len() {
            let text = encode(&data[..len]);
            assert_eq!(text.len(), encoded_len(len));
            assert_eq!(decode(&text).as_deref(), Some(&data[..len]));
        }
    }

    #[test]
    fn rejects_padding() {
        assert_eq!(decode("Zg=="), None);
        assert_eq!(decode("Zm8="), None);
        assert_eq!(decode("Zg="), None);
        assert_eq!(decode("===="), None);
    }

    #[test]
    fn rejects_impossible_lengths() {
        assert_eq!(decode("Z"), None);
        assert_eq!(decode("Zm9vY"), None);
    }

    #[test]
    fn rejects_non_canonical_trailing_bits() {
        // "Zg" is canonical for "f"; "Zh".."Zv" decode to the same byte with junk bits.
        for c in b'h'..=b'v' {
            let text = format!("Z{}", c as char);
            assert_eq!(decode(&text), None, "{text}");
        }
        assert_eq!(decode("Zm8"), Some(b"fo".to_vec()));
        assert_eq!(decode("Zm9"), None);
        assert_eq!(decode("Zm-"), None);
    }

    #[test]
    fn every_byte_string_has_one_text() {
        // Exhaustive over two-character texts: exactly 256 are accepted, one per byte.
        let mut accepted = 0;
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let bytes = [a, b];
                let Ok(text) = std::str::from_utf8(&bytes) else {
                    continue;
                };
                if let Some(decoded) = decode(text) {
                    assert_eq!(encode(&decoded), text);
                    accepted += 1;
                }
            }
        }
        assert_eq!(accepted, 256);
    }

    #[test]
    fn rejects_foreign_characters() {
        for bad in [
            "Zm9v Yg",
            "Zm9v\nYg",
            "Zm9v.Yg",
            "Zm9v\0Yg",
            "Zm9vYé",
            "Zm 9",
            "Zm9\u{7f}",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn decode_into_exact_length_only() {
        assert_eq!(decode_into::<3>("Zm9v"), Some(*b"foo"));
        assert_eq!(decode_into::<1>("Zg"), Some(*b"f"));
        assert_eq!(decode_into::<0>(""), Some([]));
        assert_eq!(decode_into::<3>("Zm9vYg"), None);
        assert_eq!(decode_into::<4>("Zm9v"), None);
        assert_eq!(decode_into::<2>("Zm9"), None);
        assert_eq!(decode_into::<1>("Zh"), None);

        let bytes = [0xa5u8; 32];
        let text = encode(&bytes);
        assert_eq!(text.len(), 43);
        assert_eq!(decode_into::<32>(&text), Some(bytes));
        assert_eq!(decode_into::<32>(&text[..42]), None);
        assert_eq!(decode_into::<32>(&format!("{text}A")), None);
    }

    #[test]
    fn hostile_bytes_never_panic() {
        // Multi-byte UTF-8 makes byte length differ from char count; none of it may panic.
        let samples = [
            "\u{1F600}\u{1F600}",
            "ééé",
            "A\u{0300}",
            "\u{feff}Zm9v",
            "%%%%",
            "\u{0}\u{0}\u{0}\u{0}",
        ];
        for s in samples {
            assert_eq!(decode(s), None);
            assert_eq!(decode_into::<3>(s), None);
        }
        let mut state = 0x1234_5678u32;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let len = (state % 12) as usize;
            let s: String = (0..len)
                .map(|k| {
                    let c = (state.rotate_left(k as u32 * 5) & 0x7f) as u8;
                    c as char
                })
                .collect();
            if let Some(bytes) = decode(&s) {
                assert_eq!(encode(&bytes), s);
            }
        }
    }
}
