//! The session id: 256 bits from the OS CSPRNG, carried as 43 base64url characters.

use std::fmt;

use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};

use super::base64url;

pub const ID_BYTES: usize = 32;
pub const COOKIE_VALUE_LEN: usize = 43;

const _: () = assert!(base64url::encoded_len(ID_BYTES) == COOKIE_VALUE_LEN);

const LOG_TAG_DOMAIN: &[u8] = b"memsession log tag\0";

/// A session id. Holding one is holding the session, so it never reaches a log: `Debug`
/// prints only [`SessionId::log_tag`].
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId([u8; ID_BYTES]);

/// The OS refused to hand out random bytes. There is no fallback: a guessable id is worse
/// than no login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RandomUnavailable;

impl fmt::Display for RandomUnavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the operating system's random number generator is unavailable")
    }
}

impl std::error::Error for RandomUnavailable {}

/// Fills `out` straight from the kernel. `SystemRandom` keeps no userspace state, so forked
/// Apache children can never replay each other's output.
pub(crate) fn fill_random(out: &mut [u8]) -> Result<(), RandomUnavailable> {
    SystemRandom::new().fill(out).map_err(|_| RandomUnavailable)
}

impl SessionId {
    pub fn generate() -> Result<SessionId, RandomUnavailable> {
        let mut bytes = [0u8; ID_BYTES];
        fill_random(&mut bytes)?;
        Ok(SessionId(bytes))
    }

    /// Accepts only the exact shape this module issues; everything else is "no session"
    /// without a store lookup.
    pub fn from_cookie_value(value: &str) -> Option<SessionId> {
        base64url::decode_into::<ID_BYTES>(value).map(SessionId)
    }

    pub fn to_cookie_value(&self) -> String {
        base64url::encode(&self.0)
    }

    pub fn as_bytes(&self) -> &[u8; ID_BYTES] {
        &self.0
    }

    /// Eight hex characters of a domain-separated hash: enough to correlate log lines for
    /// one session, far too little to recover or guess the id.
    /// The log tag, computed only if the log line is actually written.
    pub fn tag(&self) -> LogTag<'_> {
        LogTag(self)
    }

    pub fn log_tag(&self) -> String {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(LOG_TAG_DOMAIN);
        ctx.update(&self.0);
        let hash = ctx.finish();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut tag = String::with_capacity(8);
        for &b in hash.as_ref().iter().take(4) {
            tag.push(char::from(HEX[usize::from(b >> 4)]));
            tag.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        tag
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.log_tag())
    }
}

/// Displays as [`SessionId::log_tag`]; the hash is computed only when formatted.
pub struct LogTag<'a>(&'a SessionId);

impl fmt::Display for LogTag<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.log_tag())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_gives_distinct_ids() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_ne!(a.as_bytes(), &[0u8; ID_BYTES]);
    }

    #[test]
    fn cookie_value_round_trip() {
        for _ in 0..64 {
            let id = SessionId::generate().unwrap();
            let value = id.to_cookie_value();
            assert_eq!(value.len(), COOKIE_VALUE_LEN);
            assert!(value
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
            assert_eq!(SessionId::from_cookie_value(&value), Some(id));
        }
    }

    #[test]
    fn known_value() {
        let id = SessionId([0u8; ID_BYTES]);
        assert_eq!(id.to_cookie_value(), "A".repeat(43));
        let id = SessionId([0xffu8; ID_BYTES]);
        assert_eq!(id.to_cookie_value(), format!("{}8", "_".repeat(42)));
        assert_eq!(
            SessionId::from_cookie_value(&format!("{}8", "_".repeat(42))),
            Some(id)
        );
    }

    #[test]
    fn rejects_wrong_shapes() {
        let good = SessionId::generate().unwrap().to_cookie_value();
        let mut bad: Vec<String> = vec![
            String::new(),
            good[..42].to_string(),
            format!("{good}A"),
            format!("{good}="),
            format!(" {}", &good[1..]),
            format!("\"{}\"", &good[2..]),
            good.replace(|c: char| c == good.chars().next().unwrap(), "+"),
            "A".repeat(44),
            "=".repeat(43),
            format!("{}é", &good[..41]),
            // Non-zero trailing bits: same 32 bytes as "...A" but a second spelling.
            format!("{}B", "A".repeat(42)),
        ];
        bad.push(format!("{}/", &good[..42]));
        for value in &bad {
            assert_eq!(SessionId::from_cookie_value(value), None, "{value:?}");
        }
    }

    #[test]
    fn debug_does_not_print_the_id() {
        let id = SessionId::generate().unwrap();
        let shown = format!("{id:?}");
        assert_eq!(shown, format!("SessionId({})", id.log_tag()));
        assert!(!shown.contains(&id.to_cookie_value()));
        assert!(!shown.contains(&id.to_cookie_value()[..8]));
    }

    #[test]
    fn log_tag_is_short_stable_and_domain_separated() {
        let id = SessionId([7u8; ID_BYTES]);
        let tag = id.log_tag();
        assert_eq!(tag.len(), 8);
        assert!(tag
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(tag, id.clone().log_tag());

        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"memsession log tag\0");
        ctx.update(&[7u8; ID_BYTES]);
        let expected: String = ctx.finish().as_ref()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(tag, expected);

        // A bare hash of the id (what another tool might log) must not equal the tag.
        let bare = digest::digest(&digest::SHA256, &[7u8; ID_BYTES]);
        let bare_tag: String = bare.as_ref()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(tag, bare_tag);
        assert_ne!(SessionId([8u8; ID_BYTES]).log_tag(), tag);
    }

    #[test]
    fn random_unavailable_displays() {
        assert!(RandomUnavailable.to_string().contains("random"));
    }
}
