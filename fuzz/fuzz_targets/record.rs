//! The sealed session record decoder, with keys derived from a fixed session id.
//!
//! Random bytes almost never pass the AEAD, so each input is tried twice: as a sealed record
//! as it would come from memcached (version, nonce, ciphertext, tag), and as a plaintext body
//! sealed here with the real keys, so the field decoder behind the authentication is reached
//! too. Whatever opens must seal and open again to the same record.
#![no_main]

use libfuzzer_sys::fuzz_target;
use memsession::session::id::SessionId;
use memsession::config::secret_file::ServerSecret;
use memsession::session::keys::{KeyDeriver, SessionKeys};
use memsession::session::record::{open, seal, RecordError, RECORD_VERSION};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use std::sync::OnceLock;

const FIXED_ID: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";

fn keys() -> &'static SessionKeys {
    static KEYS: OnceLock<SessionKeys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let id = SessionId::from_cookie_value(FIXED_ID).expect("a well-formed fixed id");
        let secret = ServerSecret::from_bytes(vec![0x5e; 32]).expect("32 bytes");
        KeyDeriver::new(&secret, "memsession:").derive(&id)
    })
}

fn seal_plaintext(plaintext: &[u8], keys: &SessionKeys) -> Vec<u8> {
    let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, &keys.record_key).unwrap());
    let nonce = [7u8; NONCE_LEN];
    let mut ad = vec![RECORD_VERSION];
    ad.extend_from_slice(keys.store_key.as_bytes());
    let mut out = vec![RECORD_VERSION];
    out.extend_from_slice(&nonce);
    let mut body = plaintext.to_vec();
    let tag = key
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(ad),
            &mut body,
        )
        .unwrap();
    out.extend_from_slice(&body);
    out.extend_from_slice(tag.as_ref());
    out
}

fn check(result: Result<memsession::session::record::SessionRecord, RecordError>) {
    if let Ok(record) = result {
        let again = seal(&record, keys()).expect("a record that opened seals again");
        assert_eq!(open(&again, keys()), Ok(record));
    }
}

fuzz_target!(|data: &[u8]| {
    let keys = keys();
    // As stored: an attacker with write access to memcached controls every byte.
    let as_stored = open(data, keys);
    if data.first() != Some(&RECORD_VERSION) {
        assert!(matches!(
            as_stored,
            Err(RecordError::UnknownVersion(_) | RecordError::TooShort)
        ));
    }
    check(as_stored);
    // Behind the AEAD: only a writer bug could produce these, but the decoder must hold.
    check(open(&seal_plaintext(data, keys), keys));
});
