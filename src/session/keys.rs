//! Store keys, record keys and epoch keys, derived one-way from the server secret.
//!
//! A memcached dump (or `stats cachedump`, or a packet capture on the store socket) must
//! reveal no usable cookie and no user name, and someone who can write to memcached must not
//! be able to mint a session: every key in the store is a keyed hash, and the record key
//! never leaves this process. Two keys come from the secret (`MemSessionSecretFile`) and the
//! prefix, once per process:
//!
//! - the session salt `HMAC-SHA256(secret, "memsession v2 session salt\0" || prefix)`: a
//!   session's store key and record key are HKDF-SHA256 of its id under that salt (infos
//!   "store key" and "record key"); the store key is `prefix "s:" base64url(...)`;
//! - the epoch key `HMAC-SHA256(secret, "memsession v2 epoch key\0" || prefix)`: the global
//!   epoch lives at `prefix "g:" base64url(HMAC(epoch key, "global"))` and a user's at
//!   `prefix "u:" base64url(HMAC(epoch key, "user\0" || user))`.
//!
//! A third, the login budget key `HMAC-SHA256(secret, "memsession v2 login budget key\0" ||
//! prefix)`, names the counters of failed password logins: `prefix "b:"
//! base64url(HMAC(budget key, message))`, the message saying whose budget (see
//! `flow::login_budget`), so a key listing tells neither user names nor addresses.
//!
//! They are separate keys on purpose: an HMAC the store shows (an epoch key's name) must never
//! be the HKDF extract of an id a client could choose.

use std::fmt;
use std::sync::Arc;

use ring::{hkdf, hmac};

use super::base64url;
use super::id::SessionId;
use crate::config::secret_file::ServerSecret;

const SESSION_SALT_DOMAIN: &[u8] = b"memsession v2 session salt\0";
const EPOCH_KEY_DOMAIN: &[u8] = b"memsession v2 epoch key\0";
const LOGIN_BUDGET_KEY_DOMAIN: &[u8] = b"memsession v2 login budget key\0";
const STORE_KEY_INFO: &[u8] = b"store key";
const RECORD_KEY_INFO: &[u8] = b"record key";

/// Where a session lives in the store, the key that opens its record, and the global epoch
/// of the secret it was derived under.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKeys {
    pub store_key: String,
    pub record_key: [u8; 32],
    pub global_epoch_key: Arc<str>,
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

fn keyed(secret: &ServerSecret, domain: &[u8], prefix: &str) -> hmac::Tag {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = hmac::Context::with_key(&key);
    context.update(domain);
    context.update(prefix.as_bytes());
    context.sign()
}

fn hashed_key(prefix: &str, kind: &str, hash: &[u8]) -> String {
    let mut key = String::with_capacity(prefix.len() + kind.len() + 43);
    key.push_str(prefix);
    key.push_str(kind);
    key.push_str(&base64url::encode(hash));
    key
}

/// Derives every key of one (secret, prefix) pair. Its two keys are computed once, not on
/// every request.
pub struct KeyDeriver {
    prefix: String,
    session_salt: hkdf::Salt,
    epoch_key: hmac::Key,
    global_epoch_key: Arc<str>,
    login_budget_key: hmac::Key,
}

impl KeyDeriver {
    pub fn new(secret: &ServerSecret, prefix: &str) -> KeyDeriver {
        let session_salt = keyed(secret, SESSION_SALT_DOMAIN, prefix);
        let epoch_key = keyed(secret, EPOCH_KEY_DOMAIN, prefix);
        let epoch_key = hmac::Key::new(hmac::HMAC_SHA256, epoch_key.as_ref());
        let global = hmac::sign(&epoch_key, b"global");
        let login_budget_key = keyed(secret, LOGIN_BUDGET_KEY_DOMAIN, prefix);
        KeyDeriver {
            prefix: prefix.to_string(),
            session_salt: hkdf::Salt::new(hkdf::HKDF_SHA256, session_salt.as_ref()),
            global_epoch_key: Arc::from(hashed_key(prefix, "g:", global.as_ref())),
            epoch_key,
            login_budget_key: hmac::Key::new(hmac::HMAC_SHA256, login_budget_key.as_ref()),
        }
    }

    pub fn derive(&self, id: &SessionId) -> SessionKeys {
        let prk = self.session_salt.extract(id.as_bytes());
        SessionKeys {
            store_key: hashed_key(&self.prefix, "s:", &expand32(&prk, STORE_KEY_INFO)),
            record_key: expand32(&prk, RECORD_KEY_INFO),
            global_epoch_key: Arc::clone(&self.global_epoch_key),
        }
    }

    /// The key holding one user's revocation epoch: a keyed hash, so a key listing does not
    /// tell who has sessions, not even by trying a dictionary of names.
    pub fn user_epoch_key(&self, user: &str) -> String {
        let mut context = hmac::Context::with_key(&self.epoch_key);
        context.update(b"user\0");
        context.update(user.as_bytes());
        hashed_key(&self.prefix, "u:", context.sign().as_ref())
    }

    pub fn global_epoch_key(&self) -> &str {
        &self.global_epoch_key
    }

    /// The key of one login-failure counter; `message` says whose (built by
    /// `flow::login_budget`, unambiguous). Keyed, like the epoch keys.
    pub fn login_budget_key(&self, message: &[u8]) -> String {
        let tag = hmac::sign(&self.login_budget_key, message);
        hashed_key(&self.prefix, "b:", tag.as_ref())
    }
}

/// A fixed secret for unit tests.
#[cfg(test)]
pub fn test_secret(byte: u8) -> ServerSecret {
    ServerSecret::from_bytes(vec![byte; 32]).expect("32 bytes")
}

/// Session keys under the unit tests' secret.
#[cfg(test)]
pub fn derive(prefix: &str, id: &SessionId) -> SessionKeys {
    KeyDeriver::new(&test_secret(0x5e), prefix).derive(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::digest;

    fn id(b: u8) -> SessionId {
        SessionId::from_cookie_value(&base64url::encode(&[b; 32])).unwrap()
    }

    #[test]
    fn login_budget_keys_are_keyed_and_documented() {
        let secret = test_secret(0x5e);
        let deriver = KeyDeriver::new(&secret, "memsession:");
        let key = hmac(
            secret.as_bytes(),
            b"memsession v2 login budget key\0memsession:",
        );
        assert_eq!(
            deriver.login_budget_key(b"user\0alice"),
            format!(
                "memsession:b:{}",
                base64url::encode(&hmac(&key, b"user\0alice"))
            )
        );
        let other = KeyDeriver::new(&test_secret(0x5f), "memsession:");
        assert_ne!(
            deriver.login_budget_key(b"user\0alice"),
            other.login_budget_key(b"user\0alice")
        );
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

    fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
        ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key), message)
            .as_ref()
            .to_vec()
    }

    #[test]
    fn matches_the_documented_definition() {
        // Recompute by hand so a refactor cannot silently change the derivation (which would
        // log every user out on upgrade). tests/integration/harness/derivation.py does the same
        // in Python, and the README documents it.
        let secret = test_secret(0x5e);
        let sid = id(42);
        let salt = hmac(
            secret.as_bytes(),
            b"memsession v2 session salt\0memsession:",
        );
        let prk = hmac(&salt, sid.as_bytes());
        let t1 = |info: &[u8]| {
            let mut msg = info.to_vec();
            msg.push(1);
            hmac(&prk, &msg)
        };
        let keys = derive("memsession:", &sid);
        assert_eq!(
            keys.store_key,
            format!("memsession:s:{}", base64url::encode(&t1(b"store key")))
        );
        assert_eq!(&keys.record_key[..], &t1(b"record key")[..]);

        let epoch = hmac(secret.as_bytes(), b"memsession v2 epoch key\0memsession:");
        let deriver = KeyDeriver::new(&secret, "memsession:");
        assert_eq!(
            deriver.global_epoch_key(),
            format!(
                "memsession:g:{}",
                base64url::encode(&hmac(&epoch, b"global"))
            )
        );
        assert_eq!(&*keys.global_epoch_key, deriver.global_epoch_key());
        assert_eq!(
            deriver.user_epoch_key("alice@EXAMPLE.COM"),
            format!(
                "memsession:u:{}",
                base64url::encode(&hmac(&epoch, b"user\0alice@EXAMPLE.COM"))
            )
        );
    }

    #[test]
    fn the_secret_changes_every_key() {
        let sid = id(7);
        let (one, two) = (test_secret(1), test_secret(2));
        let (a, b) = (
            KeyDeriver::new(&one, "memsession:"),
            KeyDeriver::new(&two, "memsession:"),
        );
        assert_ne!(a.derive(&sid).store_key, b.derive(&sid).store_key);
        assert_ne!(a.derive(&sid).record_key, b.derive(&sid).record_key);
        assert_ne!(a.global_epoch_key(), b.global_epoch_key());
        assert_ne!(a.user_epoch_key("alice"), b.user_epoch_key("alice"));
        // What the module derived before it had a secret (an unkeyed salt from the prefix):
        // a store writer could compute that one, and must not find it used.
        let unkeyed_salt = digest::digest(&digest::SHA256, b"memsession v1 salt\0memsession:");
        let unkeyed_prk = hmac(unkeyed_salt.as_ref(), sid.as_bytes());
        let mut info = b"store key".to_vec();
        info.push(1);
        let unkeyed = format!(
            "memsession:s:{}",
            base64url::encode(&hmac(&unkeyed_prk, &info))
        );
        assert_ne!(a.derive(&sid).store_key, unkeyed);
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
    fn epoch_names_never_equal_a_session_extract() {
        // An id whose bytes spell the epoch message must not give a PRK equal to a user epoch
        // key's hash (which memcached shows): the two use different keys.
        let secret = test_secret(3);
        let deriver = KeyDeriver::new(&secret, "p:");
        let user = "0123456789";
        let mut crafted = b"user\0".to_vec();
        crafted.extend_from_slice(user.as_bytes());
        crafted.resize(32, b'x');
        let user = std::str::from_utf8(&crafted[5..]).unwrap();
        let shown = deriver.user_epoch_key(user);
        let salt = hmac(secret.as_bytes(), b"memsession v2 session salt\0p:");
        let prk = hmac(&salt, &crafted);
        assert_ne!(shown, format!("p:u:{}", base64url::encode(&prk)));
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
        assert_ne!(
            a.global_epoch_key.strip_prefix("memsession:g:"),
            b.global_epoch_key.strip_prefix("other:g:")
        );
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
        let deriver = KeyDeriver::new(&test_secret(0x5e), "memsession:");
        let k = deriver.user_epoch_key("alice@EXAMPLE.COM");
        assert!(k.starts_with("memsession:u:"));
        assert_eq!(k.len(), "memsession:u:".len() + 43);
        assert!(!k.contains("alice"));
        assert_eq!(k, deriver.user_epoch_key("alice@EXAMPLE.COM"));
        assert_ne!(k, deriver.user_epoch_key("alice@example.com"));
        // Hostile user names still give a clean memcached key.
        let weird = deriver.user_epoch_key("bob \r\n delete everything\0");
        assert!(weird.bytes().all(|c| c.is_ascii_graphic()));
    }
}
