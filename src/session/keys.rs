//! Store keys and record keys, derived one-way from the session id.
//!
//! A memcached dump (or `stats cachedump`, or a packet capture on the store socket) must
//! reveal no usable cookie and no user name: every key in the store is a hash, and the record
//! key never leaves this process. The configured prefix is mixed into every derivation, so
//! a cookie carried from a deployment with another prefix lands on a different key and
//! decrypts nothing.

use std::fmt;

use ring::{digest, hkdf};

use super::base64url;
use super::id::SessionId;

const SALT_DOMAIN: &[u8] = b"memsession v1 salt\0";
const USER_EPOCH_DOMAIN: &[u8] = b"memsession user epoch\0";
const STORE_KEY_INFO: &[u8] = b"store key";
const RECORD_KEY_INFO: &[u8] = b"record key";

/// Where a session lives in the store, and the key that opens its record.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    pub store_key: String,
    pub record_key: [u8; 32],
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("store_key", &self.store_key)
            .field("record_key", &"<redacted>")
            .finish()
    }
}

struct Len32;

impl hkdf::KeyType for Len32 {
    fn len(&self) -> usize {
        32
    }
}

fn expand32(prk: &hkdf::Prk, info: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let info = [info];
    // HKDF-SHA256 refuses only outputs longer than 255 * 32 bytes or a buffer that does not
    // match the requested length; both are fixed at 32 here, so no input can reach the panic.
    prk.expand(&info, Len32)
        .and_then(|okm| okm.fill(&mut out))
        .expect("HKDF-SHA256 always yields 32 bytes");
    out
}

/// Derives session keys for one prefix. The salt (a hash of the prefix, turned into an HMAC
/// key) is computed once, not on every request.
pub struct KeyDeriver {
    prefix: String,
    salt: hkdf::Salt,
}

impl KeyDeriver {
    pub fn new(prefix: &str) -> KeyDeriver {
        let mut salt = digest::Context::new(&digest::SHA256);
        salt.update(SALT_DOMAIN);
        salt.update(prefix.as_bytes());
        let salt = salt.finish();
        KeyDeriver {
            prefix: prefix.to_string(),
            salt: hkdf::Salt::new(hkdf::HKDF_SHA256, salt.as_ref()),
        }
    }

    pub fn derive(&self, id: &SessionId) -> SessionKeys {
        let prk = self.salt.extract(id.as_bytes());
        let store_hash = expand32(&prk, STORE_KEY_INFO);
        let record_key = expand32(&prk, RECORD_KEY_INFO);

        let mut store_key = String::with_capacity(self.prefix.len() + 2 + 43);
        store_key.push_str(&self.prefix);
        store_key.push_str("s:");
        store_key.push_str(&base64url::encode(&store_hash));
        SessionKeys {
            store_key,
            record_key,
        }
    }
}

pub fn derive(prefix: &str, id: &SessionId) -> SessionKeys {
    KeyDeriver::new(prefix).derive(id)
}

/// The key holding one user's revocation epoch. Hashed so the store does not list who has
/// sessions; the NUL separator keeps (prefix, user) pairs from colliding by concatenation.
pub fn user_epoch_key(prefix: &str, user: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(USER_EPOCH_DOMAIN);
    ctx.update(prefix.as_bytes());
    ctx.update(b"\0");
    ctx.update(user.as_bytes());
    let hash = ctx.finish();
    let mut key = String::with_capacity(prefix.len() + 2 + 43);
    key.push_str(prefix);
    key.push_str("u:");
    key.push_str(&base64url::encode(hash.as_ref()));
    key
}

pub fn global_epoch_key(prefix: &str) -> String {
    format!("{prefix}g")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(b: u8) -> SessionId {
        SessionId::from_cookie_value(&base64url::encode(&[b; 32])).unwrap()
    }

    #[test]
    fn deterministic_and_shaped() {
        let a = derive("memsession:", &id(1));
        assert_eq!(a, derive("memsession:", &id(1)));
        assert!(a.store_key.starts_with("memsession:s:"));
        assert_eq!(a.store_key.len(), "memsession:s:".len() + 43);
        let hash = a.store_key.strip_prefix("memsession:s:").unwrap();
        assert_eq!(base64url::decode(hash).map(|v| v.len()), Some(32));
        // Memcached keys may not contain whitespace or control characters.
        assert!(a.store_key.bytes().all(|c| c.is_ascii_graphic()));
    }

    #[test]
    fn matches_hkdf_definition() {
        // Recompute by hand so a refactor cannot silently change the derivation (which would
        // log every user out on upgrade).
        let prefix = "memsession:";
        let sid = id(42);
        let salt = digest::digest(&digest::SHA256, b"memsession v1 salt\0memsession:");
        let prk = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt.as_ref()),
            sid.as_bytes(),
        );
        let prk = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, prk.as_ref());
        let t1 = |info: &[u8]| {
            let mut msg = info.to_vec();
            msg.push(1);
            ring::hmac::sign(&prk, &msg)
        };
        let keys = derive(prefix, &sid);
        assert_eq!(
            keys.store_key,
            format!(
                "memsession:s:{}",
                base64url::encode(t1(b"store key").as_ref())
            )
        );
        assert_eq!(&keys.record_key[..], t1(b"record key").as_ref());
    }

    #[test]
    fn one_way_and_separated() {
        let sid = id(9);
        let keys = derive("memsession:", &sid);
        let cookie = sid.to_cookie_value();
        assert!(!keys.store_key.contains(&cookie));
        assert_ne!(&keys.record_key, sid.as_bytes());
        assert_ne!(
            keys.store_key.strip_prefix("memsession:s:").unwrap(),
            base64url::encode(&keys.record_key)
        );
    }

    #[test]
    fn prefix_changes_everything() {
        let sid = id(3);
        let a = derive("memsession:", &sid);
        let b = derive("other:", &sid);
        assert_ne!(a.record_key, b.record_key);
        assert_ne!(
            a.store_key.strip_prefix("memsession:s:"),
            b.store_key.strip_prefix("other:s:")
        );
        // Empty and odd prefixes still work.
        let c = derive("", &sid);
        assert!(c.store_key.starts_with("s:"));
        assert_ne!(c.record_key, a.record_key);
    }

    #[test]
    fn different_ids_different_keys() {
        assert_ne!(derive("p:", &id(1)), derive("p:", &id(2)));
    }

    #[test]
    fn debug_hides_record_key() {
        let keys = derive("memsession:", &id(5));
        let shown = format!("{keys:?}");
        assert!(shown.contains(&keys.store_key));
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains(&format!("{:?}", keys.record_key)));
        assert!(!shown.contains(&base64url::encode(&keys.record_key)));
    }

    #[test]
    fn user_epoch_keys() {
        let k = user_epoch_key("memsession:", "alice@EXAMPLE.COM");
        assert!(k.starts_with("memsession:u:"));
        assert_eq!(k.len(), "memsession:u:".len() + 43);
        assert!(!k.contains("alice"));
        assert_eq!(k, user_epoch_key("memsession:", "alice@EXAMPLE.COM"));
        assert_ne!(k, user_epoch_key("memsession:", "alice@example.com"));
        assert_ne!(
            k.strip_prefix("memsession:u:"),
            user_epoch_key("other:", "alice@EXAMPLE.COM").strip_prefix("other:u:")
        );
        // Without the separator, ("ab", "c") and ("a", "bc") would hash the same bytes.
        assert_ne!(
            user_epoch_key("ab", "c").strip_prefix("abu:"),
            user_epoch_key("a", "bc").strip_prefix("au:")
        );
        let expected = digest::digest(
            &digest::SHA256,
            b"memsession user epoch\0memsession:\0alice@EXAMPLE.COM",
        );
        assert_eq!(
            k,
            format!("memsession:u:{}", base64url::encode(expected.as_ref()))
        );
        // Hostile user names still give a clean memcached key.
        let weird = user_epoch_key("p:", "bob \r\n delete everything\0");
        assert!(weird.bytes().all(|c| c.is_ascii_graphic()));
    }

    #[test]
    fn global_epoch() {
        assert_eq!(global_epoch_key("memsession:"), "memsession:g");
        assert_eq!(global_epoch_key(""), "g");
    }
}
