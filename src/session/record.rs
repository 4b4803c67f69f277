//! The server-side session record and its sealed (encrypted, authenticated) form.
//!
//! Sealed layout: `version(1) | nonce(12) | ChaCha20-Poly1305(plaintext) | tag(16)`.
//! The key is derived from the session id, so the store alone opens nothing; the associated
//! data binds the version and the store key, so a record copied under another key, or
//! relabelled with another version, fails authentication instead of being misread.
//!
//! Plaintext (all integers big-endian):
//! ```text
//! u32 len | user        (UTF-8, <= MAX_USER_LEN)
//! u32 len | auth_type   (UTF-8, <= MAX_AUTH_TYPE_LEN)
//! u64 created | u64 last_seen | u64 inactivity_timeout | u64 absolute_expiry | u64 credential_end
//! u8 has_ccache (0 or 1) [ | u32 len | ccache (<= MAX_CCACHE_LEN) ]
//! [u8; 16] user_epoch | [u8; 16] global_epoch
//! ```
//! Any change to this layout gets a new `RECORD_VERSION`; old records then fail with
//! `UnknownVersion`, which the caller treats as "no session".

use std::fmt;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};

use super::id::{fill_random, RandomUnavailable};
use super::keys::SessionKeys;

pub const RECORD_VERSION: u8 = 1;
pub const MAX_USER_LEN: usize = 1024;
pub const MAX_AUTH_TYPE_LEN: usize = 64;
pub const MAX_CCACHE_LEN: usize = 64 * 1024;

const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + NONCE_LEN;
pub const EPOCH_LEN: usize = 16;
const FIXED_PLAINTEXT_LEN: usize = 4 + 4 + 5 * 8 + 1 + 2 * EPOCH_LEN;

/// The largest sealed record [`seal`] can produce. [`open`] refuses anything longer before
/// spending work on it; the store client may use it to bound what it reads.
pub const MAX_SEALED_LEN: usize = HEADER_LEN
    + FIXED_PLAINTEXT_LEN
    + MAX_USER_LEN
    + MAX_AUTH_TYPE_LEN
    + 4
    + MAX_CCACHE_LEN
    + TAG_LEN;

/// A revocation epoch: a random nonce. A session is valid only while the epoch it stored
/// equals the one currently in the store.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Epoch(pub [u8; EPOCH_LEN]);

impl Epoch {
    pub fn generate() -> Result<Epoch, RandomUnavailable> {
        let mut bytes = [0u8; EPOCH_LEN];
        fill_random(&mut bytes)?;
        Ok(Epoch(bytes))
    }

    pub fn to_bytes(&self) -> [u8; EPOCH_LEN] {
        self.0
    }

    /// Exactly 16 bytes; a store value of any other length is not an epoch.
    pub fn from_bytes(b: &[u8]) -> Option<Epoch> {
        <[u8; EPOCH_LEN]>::try_from(b).ok().map(Epoch)
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub user: String,
    pub auth_type: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds.
    pub last_seen: u64,
    /// Seconds; 0 = none.
    pub inactivity_timeout: u64,
    /// Unix seconds; 0 = none.
    pub absolute_expiry: u64,
    /// Unix seconds; 0 = none.
    pub credential_end: u64,
    /// Delegated Kerberos credentials, at most `MAX_CCACHE_LEN` bytes.
    pub ccache: Option<Vec<u8>>,
    pub user_epoch: Epoch,
    pub global_epoch: Epoch,
}

/// Credentials are secrets: debug output shows only how many bytes there are.
impl fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Len(usize);
        impl fmt::Debug for Len {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "<{} bytes>", self.0)
            }
        }
        f.debug_struct("SessionRecord")
            .field("user", &self.user)
            .field("auth_type", &self.auth_type)
            .field("created", &self.created)
            .field("last_seen", &self.last_seen)
            .field("inactivity_timeout", &self.inactivity_timeout)
            .field("absolute_expiry", &self.absolute_expiry)
            .field("credential_end", &self.credential_end)
            .field("ccache", &self.ccache.as_ref().map(|c| Len(c.len())))
            .field("user_epoch", &self.user_epoch)
            .field("global_epoch", &self.global_epoch)
            .finish()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// Shorter than a version byte, nonce and tag.
    TooShort,
    /// A record from another (likely newer) format.
    UnknownVersion(u8),
    /// Authentication failed: wrong session, wrong store key, or modified bytes.
    Tampered,
    /// Authenticated but undecodable: a writer bug, never an attacker (they cannot forge).
    Malformed(&'static str),
    /// A field (named) is over its cap.
    TooLarge(&'static str),
    /// No random nonce could be had for sealing.
    Random,
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecordError::TooShort => f.write_str("session record too short"),
            RecordError::UnknownVersion(v) => write!(f, "unknown session record version {v}"),
            RecordError::Tampered => f.write_str("session record failed authentication"),
            RecordError::Malformed(what) => write!(f, "malformed session record: {what}"),
            RecordError::TooLarge(what) => write!(f, "session record field too large: {what}"),
            RecordError::Random => f.write_str("no randomness available to seal session record"),
        }
    }
}

impl std::error::Error for RecordError {}

impl From<RandomUnavailable> for RecordError {
    fn from(_: RandomUnavailable) -> Self {
        RecordError::Random
    }
}

fn aead_key(keys: &SessionKeys) -> Option<LessSafeKey> {
    // ring refuses only a key of the wrong length, and `record_key` is a [u8; 32].
    UnboundKey::new(&CHACHA20_POLY1305, &keys.record_key)
        .ok()
        .map(LessSafeKey::new)
}

/// Hands `version || store_key` to `use_it`, built on the stack for every key memcached
/// accepts (at most 250 bytes), so opening a record allocates nothing for it.
fn with_associated_data<T>(
    version: u8,
    keys: &SessionKeys,
    use_it: impl FnOnce(Aad<&[u8]>) -> T,
) -> T {
    let store_key = keys.store_key.as_bytes();
    let mut on_stack = [0u8; 256];
    let mut on_heap = Vec::new();
    let ad = match on_stack.get_mut(..1 + store_key.len()) {
        Some(ad) => ad,
        None => {
            on_heap.resize(1 + store_key.len(), 0);
            &mut on_heap[..]
        }
    };
    ad[0] = version;
    ad[1..].copy_from_slice(store_key);
    use_it(Aad::from(&*ad))
}

fn check_caps(record: &SessionRecord) -> Result<(), RecordError> {
    if record.user.len() > MAX_USER_LEN {
        return Err(RecordError::TooLarge("user"));
    }
    if record.auth_type.len() > MAX_AUTH_TYPE_LEN {
        return Err(RecordError::TooLarge("auth_type"));
    }
    if record
        .ccache
        .as_ref()
        .is_some_and(|c| c.len() > MAX_CCACHE_LEN)
    {
        return Err(RecordError::TooLarge("ccache"));
    }
    Ok(())
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Callers have checked the caps, all far below u32::MAX.
    out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn encode_plaintext(record: &SessionRecord, out: &mut Vec<u8>) {
    put_bytes(out, record.user.as_bytes());
    put_bytes(out, record.auth_type.as_bytes());
    for n in [
        record.created,
        record.last_seen,
        record.inactivity_timeout,
        record.absolute_expiry,
        record.credential_end,
    ] {
        out.extend_from_slice(&n.to_be_bytes());
    }
    match &record.ccache {
        Some(c) => {
            out.push(1);
            put_bytes(out, c);
        }
        None => out.push(0),
    }
    out.extend_from_slice(&record.user_epoch.0);
    out.extend_from_slice(&record.global_epoch.0);
}

pub fn seal(record: &SessionRecord, keys: &SessionKeys) -> Result<Vec<u8>, RecordError> {
    check_caps(record)?;
    let key = aead_key(keys).ok_or(RecordError::Malformed("record key"))?;

    // A fresh random nonce per write: records are rewritten under the same key on every
    // refresh, and a repeated nonce under ChaCha20-Poly1305 leaks plaintext and the MAC key.
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce)?;

    let plaintext_len = FIXED_PLAINTEXT_LEN
        + record.user.len()
        + record.auth_type.len()
        + record.ccache.as_ref().map_or(0, |c| 4 + c.len());
    let mut out = Vec::with_capacity(HEADER_LEN + plaintext_len + TAG_LEN);
    out.push(RECORD_VERSION);
    out.extend_from_slice(&nonce);
    encode_plaintext(record, &mut out);

    let (_, body) = out.split_at_mut(HEADER_LEN);
    let tag = with_associated_data(RECORD_VERSION, keys, |ad| {
        key.seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), ad, body)
    })
    // Only a plaintext beyond ChaCha20's 256 GiB limit is refused.
    .map_err(|_| RecordError::TooLarge("record"))?;
    out.extend_from_slice(tag.as_ref());
    Ok(out)
}

pub fn open(sealed: &[u8], keys: &SessionKeys) -> Result<SessionRecord, RecordError> {
    open_in_place(&mut sealed.to_vec(), keys)
}

/// [`open`] that decrypts inside `sealed` (left scrambled), for the hot path: the record
/// is read straight out of the store connection's buffer, with no copy.
pub fn open_in_place(sealed: &mut [u8], keys: &SessionKeys) -> Result<SessionRecord, RecordError> {
    let Some((&version, _)) = sealed.split_first() else {
        return Err(RecordError::TooShort);
    };
    if version != RECORD_VERSION {
        return Err(RecordError::UnknownVersion(version));
    }
    if sealed.len() < HEADER_LEN + TAG_LEN {
        return Err(RecordError::TooShort);
    }
    if sealed.len() > MAX_SEALED_LEN {
        return Err(RecordError::TooLarge("record"));
    }
    let (header, ciphertext) = sealed.split_at_mut(HEADER_LEN);
    let nonce =
        Nonce::try_assume_unique_for_key(&header[1..]).map_err(|_| RecordError::TooShort)?;
    let key = aead_key(keys).ok_or(RecordError::Tampered)?;
    let plaintext =
        with_associated_data(version, keys, |ad| key.open_in_place(nonce, ad, ciphertext))
            .map_err(|_| RecordError::Tampered)?;
    decode_plaintext(plaintext)
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], RecordError> {
        if self.rest.len() < n {
            return Err(RecordError::Malformed("truncated"));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], RecordError> {
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| RecordError::Malformed("truncated"))
    }

    fn u8(&mut self) -> Result<u8, RecordError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    fn u64(&mut self) -> Result<u64, RecordError> {
        self.array().map(u64::from_be_bytes)
    }

    /// Checks the cap before taking, so a hostile length cannot drive an allocation.
    fn bytes(&mut self, cap: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        let len = u32::from_be_bytes(self.array()?);
        let len = usize::try_from(len).map_err(|_| RecordError::TooLarge(field))?;
        if len > cap {
            return Err(RecordError::TooLarge(field));
        }
        self.take(len)
    }

    fn string(&mut self, cap: usize, field: &'static str) -> Result<String, RecordError> {
        let bytes = self.bytes(cap, field)?;
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| RecordError::Malformed(field))
    }
}

fn decode_plaintext(plaintext: &[u8]) -> Result<SessionRecord, RecordError> {
    let mut r = Reader { rest: plaintext };
    let user = r.string(MAX_USER_LEN, "user")?;
    let auth_type = r.string(MAX_AUTH_TYPE_LEN, "auth_type")?;
    let created = r.u64()?;
    let last_seen = r.u64()?;
    let inactivity_timeout = r.u64()?;
    let absolute_expiry = r.u64()?;
    let credential_end = r.u64()?;
    let ccache = match r.u8()? {
        0 => None,
        1 => Some(r.bytes(MAX_CCACHE_LEN, "ccache")?.to_vec()),
        _ => return Err(RecordError::Malformed("ccache flag")),
    };
    let user_epoch = Epoch(r.array()?);
    let global_epoch = Epoch(r.array()?);
    if !r.rest.is_empty() {
        return Err(RecordError::Malformed("trailing bytes"));
    }
    Ok(SessionRecord {
        user,
        auth_type,
        created,
        last_seen,
        inactivity_timeout,
        absolute_expiry,
        credential_end,
        ccache,
        user_epoch,
        global_epoch,
    })
}

/// alice's Basic session, created at `created` with `inactivity_timeout` and no other limit:
/// what the tests of the modules that handle records start from.
#[cfg(test)]
impl SessionRecord {
    pub(crate) fn for_test(created: u64, inactivity_timeout: u64) -> SessionRecord {
        SessionRecord {
            user: "alice".into(),
            auth_type: "Basic".into(),
            created,
            last_seen: created,
            inactivity_timeout,
            absolute_expiry: 0,
            credential_end: 0,
            ccache: None,
            user_epoch: Epoch([1; 16]),
            global_epoch: Epoch([2; 16]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::id::SessionId;
    use crate::session::keys::derive;

    fn keys() -> (SessionId, SessionKeys) {
        let id = SessionId::generate().unwrap();
        let keys = derive("memsession:", &id);
        (id, keys)
    }

    fn sample() -> SessionRecord {
        SessionRecord {
            user: "alice@EXAMPLE.COM".to_string(),
            auth_type: "GSSAPI".to_string(),
            created: 1_700_000_000,
            last_seen: 1_700_000_100,
            inactivity_timeout: 3600,
            absolute_expiry: 1_700_028_800,
            credential_end: 1_700_036_000,
            ccache: Some(b"\x05\x04ccache-bytes-SECRETTGT".to_vec()),
            user_epoch: Epoch([1; 16]),
            global_epoch: Epoch([2; 16]),
        }
    }

    /// Seals `record` with a chosen plaintext encoding, so the decoder can be fed
    /// authenticated-but-malformed input (which an attacker cannot make, but a bug could).
    fn seal_raw(plaintext: &[u8], keys: &SessionKeys) -> Vec<u8> {
        let key = aead_key(keys).unwrap();
        let nonce = [9u8; NONCE_LEN];
        let mut out = vec![RECORD_VERSION];
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        // The documented associated data, spelled out independently of the code under test.
        let mut ad = vec![RECORD_VERSION];
        ad.extend_from_slice(keys.store_key.as_bytes());
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(ad),
            &mut body,
        )
        .unwrap();
        out.extend_from_slice(&body);
        out
    }

    #[test]
    fn opening_in_place_reads_what_open_reads() {
        let (_, k) = keys();
        let rec = sample();
        let sealed = seal(&rec, &k).unwrap();
        let mut buffer = sealed.clone();
        assert_eq!(open_in_place(&mut buffer, &k).unwrap(), rec);
        assert_ne!(
            buffer, sealed,
            "the plaintext was written over the ciphertext"
        );
        assert_eq!(open(&sealed, &k).unwrap(), rec);
    }

    #[test]
    fn a_store_key_too_long_for_the_stack_still_binds_the_record() {
        let (_, mut k) = keys();
        k.store_key = "k".repeat(300);
        let rec = sample();
        let sealed = seal(&rec, &k).unwrap();
        assert_eq!(open(&sealed, &k).unwrap(), rec);
        k.store_key.push('x');
        assert_eq!(open(&sealed, &k), Err(RecordError::Tampered));
    }

    #[test]
    fn round_trip() {
        let (_, k) = keys();
        let rec = sample();
        let sealed = seal(&rec, &k).unwrap();
        assert_eq!(sealed[0], RECORD_VERSION);
        assert_eq!(open(&sealed, &k), Ok(rec.clone()));

        let mut bare = rec;
        bare.ccache = None;
        bare.user = String::new();
        bare.auth_type = String::new();
        bare.inactivity_timeout = 0;
        bare.absolute_expiry = 0;
        bare.credential_end = 0;
        assert_eq!(open(&seal(&bare, &k).unwrap(), &k), Ok(bare));
    }

    #[test]
    fn round_trip_at_caps_and_extremes() {
        let (_, k) = keys();
        let rec = SessionRecord {
            user: "é".repeat(MAX_USER_LEN / 2),
            auth_type: "A".repeat(MAX_AUTH_TYPE_LEN),
            created: u64::MAX,
            last_seen: 0,
            inactivity_timeout: u64::MAX,
            absolute_expiry: 1,
            credential_end: u64::MAX - 1,
            ccache: Some(vec![0xab; MAX_CCACHE_LEN]),
            user_epoch: Epoch([0xff; 16]),
            global_epoch: Epoch([0; 16]),
        };
        let sealed = seal(&rec, &k).unwrap();
        assert_eq!(sealed.len(), MAX_SEALED_LEN);
        assert_eq!(open(&sealed, &k), Ok(rec));

        let empty_ccache = SessionRecord {
            ccache: Some(Vec::new()),
            ..sample()
        };
        assert_eq!(
            open(&seal(&empty_ccache, &k).unwrap(), &k),
            Ok(empty_ccache)
        );
    }

    #[test]
    fn caps_enforced_on_seal() {
        let (_, k) = keys();
        let mut rec = sample();
        rec.user = "x".repeat(MAX_USER_LEN + 1);
        assert_eq!(seal(&rec, &k), Err(RecordError::TooLarge("user")));
        let mut rec = sample();
        rec.auth_type = "x".repeat(MAX_AUTH_TYPE_LEN + 1);
        assert_eq!(seal(&rec, &k), Err(RecordError::TooLarge("auth_type")));
        let mut rec = sample();
        rec.ccache = Some(vec![0; MAX_CCACHE_LEN + 1]);
        assert_eq!(seal(&rec, &k), Err(RecordError::TooLarge("ccache")));
    }

    #[test]
    fn fresh_nonce_per_seal() {
        let (_, k) = keys();
        let rec = sample();
        let a = seal(&rec, &k).unwrap();
        let b = seal(&rec, &k).unwrap();
        assert_ne!(a[1..HEADER_LEN], b[1..HEADER_LEN]);
        assert_ne!(a, b);
        assert_eq!(open(&a, &k), open(&b, &k));
    }

    #[test]
    fn every_bit_flip_is_detected() {
        let (_, k) = keys();
        let mut rec = sample();
        rec.ccache = Some(b"short".to_vec());
        let sealed = seal(&rec, &k).unwrap();
        for i in 0..sealed.len() {
            for bit in 0..8 {
                let mut bad = sealed.clone();
                bad[i] ^= 1 << bit;
                let expected = if i == 0 {
                    RecordError::UnknownVersion(bad[0])
                } else {
                    RecordError::Tampered
                };
                assert_eq!(open(&bad, &k), Err(expected), "byte {i} bit {bit}");
            }
        }
    }

    #[test]
    fn every_truncation_and_extension_fails() {
        let (_, k) = keys();
        let sealed = seal(&sample(), &k).unwrap();
        for len in 0..sealed.len() {
            let err = open(&sealed[..len], &k).unwrap_err();
            if len < HEADER_LEN + TAG_LEN {
                assert_eq!(err, RecordError::TooShort, "len {len}");
            } else {
                assert_eq!(err, RecordError::Tampered, "len {len}");
            }
        }
        let mut longer = sealed.clone();
        longer.push(0);
        assert_eq!(open(&longer, &k), Err(RecordError::Tampered));
    }

    #[test]
    fn moved_to_another_store_key_fails() {
        let (_, k) = keys();
        let sealed = seal(&sample(), &k).unwrap();
        // Same record key, different store key: the associated data catches the move.
        let moved = SessionKeys {
            store_key: format!("{}x", k.store_key),
            ..k.clone()
        };
        assert_eq!(open(&sealed, &moved), Err(RecordError::Tampered));
        let other_prefix = SessionKeys {
            store_key: k.store_key.replacen("memsession:", "other:", 1),
            ..k.clone()
        };
        assert_eq!(open(&sealed, &other_prefix), Err(RecordError::Tampered));
    }

    #[test]
    fn wrong_id_fails() {
        let (_, k) = keys();
        let (_, other) = keys();
        let sealed = seal(&sample(), &k).unwrap();
        assert_eq!(open(&sealed, &other), Err(RecordError::Tampered));
        // Right store key, wrong record key (someone guessing ids against a known key).
        let wrong_key = SessionKeys {
            record_key: other.record_key,
            ..k.clone()
        };
        assert_eq!(open(&sealed, &wrong_key), Err(RecordError::Tampered));
        // Same id under another prefix derives another key.
        let (id, k) = keys();
        let sealed = seal(&sample(), &k).unwrap();
        assert_eq!(
            open(&sealed, &derive("other:", &id)),
            Err(RecordError::Tampered)
        );
    }

    #[test]
    fn other_versions_are_unknown() {
        let (_, k) = keys();
        let mut sealed = seal(&sample(), &k).unwrap();
        for v in [0u8, 2, 0x7f, 0xff] {
            sealed[0] = v;
            assert_eq!(open(&sealed, &k), Err(RecordError::UnknownVersion(v)));
            assert_eq!(open(&[v], &k), Err(RecordError::UnknownVersion(v)));
        }
        assert_eq!(open(&[], &k), Err(RecordError::TooShort));
        assert_eq!(open(&[RECORD_VERSION], &k), Err(RecordError::TooShort));
    }

    #[test]
    fn oversized_input_refused_before_decrypting() {
        let (_, k) = keys();
        let mut huge = vec![0u8; MAX_SEALED_LEN + 1];
        huge[0] = RECORD_VERSION;
        assert_eq!(open(&huge, &k), Err(RecordError::TooLarge("record")));
    }

    #[test]
    fn sealed_bytes_reveal_nothing() {
        let (id, k) = keys();
        let rec = sample();
        let sealed = seal(&rec, &k).unwrap();
        let contains = |needle: &[u8]| sealed.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(b"alice"));
        assert!(!contains(b"GSSAPI"));
        assert!(!contains(b"SECRETTGT"));
        assert!(!contains(id.as_bytes()));
        assert!(!contains(&k.record_key));
        assert!(!contains(id.to_cookie_value().as_bytes()));
    }

    #[test]
    fn debug_hides_ccache() {
        let rec = sample();
        let shown = format!("{rec:?}");
        assert!(!shown.contains("SECRETTGT"));
        assert!(!shown.contains("99, 99, 97"));
        assert!(shown.contains(&format!("<{} bytes>", rec.ccache.as_ref().unwrap().len())));
        assert!(shown.contains("alice@EXAMPLE.COM"));
        let none = SessionRecord {
            ccache: None,
            ..sample()
        };
        assert!(format!("{none:?}").contains("ccache: None"));
    }

    fn valid_plaintext() -> Vec<u8> {
        let mut p = Vec::new();
        encode_plaintext(&sample(), &mut p);
        p
    }

    #[test]
    fn decoder_accepts_own_encoding() {
        assert_eq!(decode_plaintext(&valid_plaintext()), Ok(sample()));
    }

    #[test]
    fn decoder_rejects_every_truncation_and_trailing_bytes() {
        let p = valid_plaintext();
        for len in 0..p.len() {
            assert!(
                matches!(
                    decode_plaintext(&p[..len]),
                    Err(RecordError::Malformed(_) | RecordError::TooLarge(_))
                ),
                "len {len}"
            );
        }
        let mut longer = p.clone();
        longer.push(0);
        assert_eq!(
            decode_plaintext(&longer),
            Err(RecordError::Malformed("trailing bytes"))
        );
    }

    #[test]
    fn decoder_rejects_bad_fields() {
        let (_, k) = keys();

        // User length over the cap (and a hostile 4 GiB length: no allocation attempted).
        for len in [MAX_USER_LEN as u32 + 1, u32::MAX] {
            let mut p = valid_plaintext();
            p[..4].copy_from_slice(&len.to_be_bytes());
            assert_eq!(
                open(&seal_raw(&p, &k), &k),
                Err(RecordError::TooLarge("user"))
            );
        }

        // Bad UTF-8 in the user name.
        let mut p = valid_plaintext();
        p[4] = 0xff;
        assert_eq!(
            open(&seal_raw(&p, &k), &k),
            Err(RecordError::Malformed("user"))
        );

        // Bad UTF-8 in the auth type.
        let mut p = valid_plaintext();
        let auth_start = 4 + sample().user.len() + 4;
        p[auth_start] = 0xc0;
        assert_eq!(
            open(&seal_raw(&p, &k), &k),
            Err(RecordError::Malformed("auth_type"))
        );

        // Auth type length over the cap.
        let mut p = valid_plaintext();
        let auth_len_at = 4 + sample().user.len();
        p[auth_len_at..auth_len_at + 4]
            .copy_from_slice(&(MAX_AUTH_TYPE_LEN as u32 + 1).to_be_bytes());
        assert_eq!(
            open(&seal_raw(&p, &k), &k),
            Err(RecordError::TooLarge("auth_type"))
        );

        // ccache flag other than 0/1, and a ccache length over the cap.
        let flag_at = 4 + sample().user.len() + 4 + sample().auth_type.len() + 5 * 8;
        let mut p = valid_plaintext();
        p[flag_at] = 2;
        assert_eq!(
            open(&seal_raw(&p, &k), &k),
            Err(RecordError::Malformed("ccache flag"))
        );
        let mut p = valid_plaintext();
        p[flag_at + 1..flag_at + 5].copy_from_slice(&(MAX_CCACHE_LEN as u32 + 1).to_be_bytes());
        assert_eq!(
            open(&seal_raw(&p, &k), &k),
            Err(RecordError::TooLarge("ccache"))
        );

        // A ccache length claiming more bytes than remain.
        let mut p = valid_plaintext();
        p[flag_at + 1..flag_at + 5].copy_from_slice(&1000u32.to_be_bytes());
        assert_eq!(
            open(&seal_raw(&p, &k), &k),
            Err(RecordError::Malformed("truncated"))
        );

        // Empty plaintext, authenticated.
        assert_eq!(
            open(&seal_raw(&[], &k), &k),
            Err(RecordError::Malformed("truncated"))
        );
    }

    #[test]
    fn decoder_survives_noise() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for round in 0..5000 {
            let len = round % 200;
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            let _ = decode_plaintext(&bytes);
        }
    }

    #[test]
    fn epoch_bytes() {
        let e = Epoch::generate().unwrap();
        assert_ne!(e, Epoch::generate().unwrap());
        assert_eq!(Epoch::from_bytes(&e.to_bytes()), Some(e));
        assert_eq!(Epoch::from_bytes(&[0; 15]), None);
        assert_eq!(Epoch::from_bytes(&[0; 17]), None);
        assert_eq!(Epoch::from_bytes(&[]), None);
        assert_eq!(Epoch::from_bytes(&[3; 16]), Some(Epoch([3; 16])));
    }

    #[test]
    fn errors_display() {
        for e in [
            RecordError::TooShort,
            RecordError::UnknownVersion(9),
            RecordError::Tampered,
            RecordError::Malformed("user"),
            RecordError::TooLarge("ccache"),
            RecordError::Random,
        ] {
            assert!(!e.to_string().is_empty());
        }
        assert!(RecordError::UnknownVersion(9).to_string().contains('9'));
    }
}
