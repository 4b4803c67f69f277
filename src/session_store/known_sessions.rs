//! What one process remembers about sessions it has validated or created, keyed by the id:
//! their derived keys and user epoch key (both fixed for a session's life, and costly to
//! recompute on every request) and — only with `MemSessionLocalCache` — the record itself
//! for a short while. Only sessions that validated are remembered, so ids a client makes up
//! cannot fill it. Bounded: when full it is emptied, which costs each live session one
//! recomputation.
//!
//! Keys are shared (`Arc`), so recalling them on every request allocates nothing.
//!
//! The map hashes an id by its first 8 bytes, not with SipHash: every id in it was minted by
//! this deployment from the OS CSPRNG (only sessions that validated or were just created are
//! inserted), so its bytes are already uniform and no client can choose colliding keys; a
//! client's made-up id only probes. SipHash over 32 bytes was a tenth of the cached path's
//! own instructions (callgrind).
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::session::id::{SessionId, ID_BYTES};
use crate::session::keys::SessionKeys;
use crate::session::record::SessionRecord;

const MAX_ENTRIES: usize = 10_000;

/// An id as the map's key: hashed by its first 8 (random) bytes.
#[derive(PartialEq, Eq)]
struct IdKey([u8; ID_BYTES]);

impl Hash for IdKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// Passes an [`IdKey`]'s 8 bytes through as the hash.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only IdKey is hashed with this hasher, and it writes one u64; fold anything else.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

type Entries = HashMap<IdKey, Entry, BuildHasherDefault<IdHasher>>;

struct Entry {
    keys: Arc<SessionKeys>,
    user_epoch_key: Arc<str>,
    record: Option<(Arc<SessionRecord>, Instant)>,
}

/// What the process remembered about one session.
pub enum Recalled {
    /// Only with a local cache, while the record is younger than its time to live: the
    /// record itself, nothing else (one reference count taken under the lock).
    Fresh(Arc<SessionRecord>),
    /// The keys to ask the store with.
    Known {
        keys: Arc<SessionKeys>,
        user_epoch_key: Arc<str>,
    },
}

pub struct KnownSessions {
    record_ttl: Duration,
    entries: Mutex<Entries>,
}

impl KnownSessions {
    pub fn new(record_ttl: Duration) -> KnownSessions {
        KnownSessions {
            record_ttl,
            entries: Mutex::new(Entries::default()),
        }
    }

    /// Whether validated records are kept (`MemSessionLocalCache` on).
    pub fn caches_records(&self) -> bool {
        !self.record_ttl.is_zero()
    }

    fn with_entries<T>(&self, work: impl FnOnce(&mut Entries) -> T) -> T {
        // A panic while holding the lock leaves only cache data behind: keep using it.
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut entries)
    }

    pub fn recall(&self, id: &SessionId, now: Instant) -> Option<Recalled> {
        let key = IdKey(*id.as_bytes());
        self.with_entries(|entries| {
            let entry = entries.get(&key)?;
            if let Some((record, validated_at)) = &entry.record {
                if now.saturating_duration_since(*validated_at) < self.record_ttl {
                    return Some(Recalled::Fresh(Arc::clone(record)));
                }
            }
            Some(Recalled::Known {
                keys: Arc::clone(&entry.keys),
                user_epoch_key: Arc::clone(&entry.user_epoch_key),
            })
        })
    }

    /// Remembers a session that validated (with its record, if a local cache is on) or was
    /// just created (without).
    pub fn remember(
        &self,
        id: &SessionId,
        keys: Arc<SessionKeys>,
        user_epoch_key: Arc<str>,
        record: Option<(Arc<SessionRecord>, Instant)>,
    ) {
        let record = record.filter(|_| self.caches_records());
        let key = IdKey(*id.as_bytes());
        self.with_entries(|entries| {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(&key) {
                entries.clear();
            }
            entries.insert(
                key,
                Entry {
                    keys,
                    user_epoch_key,
                    record,
                },
            );
        })
    }

    pub fn forget(&self, id: &SessionId) {
        self.with_entries(|entries| entries.remove(&IdKey(*id.as_bytes())));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::keys;

    fn record() -> SessionRecord {
        SessionRecord::for_test(1, 0)
    }

    #[test]
    fn ids_hash_by_their_first_eight_bytes_so_the_map_spreads_them() {
        use std::hash::BuildHasher;
        let hash =
            |id: [u8; ID_BYTES]| BuildHasherDefault::<IdHasher>::default().hash_one(IdKey(id));
        let mut id = [0u8; ID_BYTES];
        id[..8].copy_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(hash(id), 0x0102_0304_0506_0708);
        id[20] = 9;
        assert_eq!(hash(id), 0x0102_0304_0506_0708, "only the first 8 bytes");
        // A constant hash would make every lookup a scan of every session the process knows.
        let distinct: std::collections::HashSet<u64> = (0..1000u64)
            .map(|n| {
                let mut id = [0u8; ID_BYTES];
                id[..8].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_le_bytes());
                hash(id)
            })
            .collect();
        assert_eq!(distinct.len(), 1000);
        // Anything else hashed with it is folded a byte at a time (rotate, then XOR).
        let mut other = IdHasher::default();
        other.write(&[1; 9]);
        assert_eq!(other.finish(), 0x0101_0101_0101_0100);
    }

    #[test]
    fn records_are_kept_only_with_a_ttl_and_only_for_it() {
        let start = Instant::now();
        let id = SessionId::generate().unwrap();
        let keys = Arc::new(keys::derive("p:", &id));
        let off = KnownSessions::new(Duration::ZERO);
        assert!(!off.caches_records());
        assert!(KnownSessions::new(Duration::from_secs(1)).caches_records());
        off.remember(
            &id,
            keys.clone(),
            "u".into(),
            Some((Arc::new(record()), start)),
        );
        match off.recall(&id, start) {
            Some(Recalled::Known {
                keys: recalled,
                user_epoch_key,
            }) => {
                assert_eq!(recalled, keys);
                assert_eq!(&*user_epoch_key, "u");
            }
            _ => panic!("keys are kept without a cache, and only they"),
        }

        let on = KnownSessions::new(Duration::from_secs(1));
        on.remember(&id, keys, "u".into(), Some((Arc::new(record()), start)));
        let within = on.recall(&id, start + Duration::from_millis(999));
        assert!(matches!(within, Some(Recalled::Fresh(_))));
        let after = on.recall(&id, start + Duration::from_secs(1));
        assert!(matches!(after, Some(Recalled::Known { .. })));
        on.forget(&id);
        assert!(on.recall(&id, start).is_none());
    }

    #[test]
    fn bounded() {
        let known = KnownSessions::new(Duration::ZERO);
        let first = SessionId::generate().unwrap();
        known.remember(
            &first,
            Arc::new(keys::derive("p:", &first)),
            "u".into(),
            None,
        );
        let second = SessionId::generate().unwrap();
        known.remember(
            &second,
            Arc::new(keys::derive("p:", &second)),
            "u".into(),
            None,
        );
        assert!(
            known.recall(&first, Instant::now()).is_some(),
            "cleared only when full"
        );
        let mut last = None;
        for _ in 0..(MAX_ENTRIES + 5) {
            let id = SessionId::generate().unwrap();
            known.remember(&id, Arc::new(keys::derive("p:", &id)), "u".into(), None);
            last = Some(id);
        }
        assert!(known.with_entries(|entries| entries.len()) <= MAX_ENTRIES);
        assert!(known.recall(&last.unwrap(), Instant::now()).is_some());
    }
}
