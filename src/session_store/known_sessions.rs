//! What one process remembers about sessions it has validated or created, keyed by the id:
//! their derived keys and user epoch key (both fixed for a session's life, and costly to
//! recompute on every request) and — only with `MemSessionLocalCache` — the record itself
//! for a short while. Only sessions that validated are remembered, so ids a client makes up
//! cannot fill it. Bounded: when full it is emptied, which costs each live session one
//! recomputation.
//!
//! Keys are shared (`Arc`), so recalling them on every request allocates nothing.
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::session::id::{SessionId, ID_BYTES};
use crate::session::keys::SessionKeys;
use crate::session::record::SessionRecord;

const MAX_ENTRIES: usize = 10_000;

struct Entry {
    keys: Arc<SessionKeys>,
    user_epoch_key: Arc<str>,
    record: Option<(Arc<SessionRecord>, Instant)>,
}

/// What the process remembered about one session.
pub struct Recalled {
    pub keys: Arc<SessionKeys>,
    pub user_epoch_key: Arc<str>,
    /// Set only with a local cache, while the record is younger than its time to live.
    pub fresh_record: Option<Arc<SessionRecord>>,
}

pub struct KnownSessions {
    record_ttl: Duration,
    entries: Mutex<HashMap<[u8; ID_BYTES], Entry>>,
}

impl KnownSessions {
    pub fn new(record_ttl: Duration) -> KnownSessions {
        KnownSessions {
            record_ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// Whether validated records are kept (`MemSessionLocalCache` on).
    pub fn caches_records(&self) -> bool {
        !self.record_ttl.is_zero()
    }

    fn with_entries<T>(&self, work: impl FnOnce(&mut HashMap<[u8; ID_BYTES], Entry>) -> T) -> T {
        // A panic while holding the lock leaves only cache data behind: keep using it.
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut entries)
    }

    pub fn recall(&self, id: &SessionId, now: Instant) -> Option<Recalled> {
        self.with_entries(|entries| {
            let entry = entries.get(id.as_bytes())?;
            let fresh_record = entry.record.as_ref().and_then(|(record, validated_at)| {
                (now.saturating_duration_since(*validated_at) < self.record_ttl)
                    .then(|| Arc::clone(record))
            });
            Some(Recalled {
                keys: Arc::clone(&entry.keys),
                user_epoch_key: Arc::clone(&entry.user_epoch_key),
                fresh_record,
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
        self.with_entries(|entries| {
            if entries.len() >= MAX_ENTRIES && !entries.contains_key(id.as_bytes()) {
                entries.clear();
            }
            entries.insert(
                *id.as_bytes(),
                Entry {
                    keys,
                    user_epoch_key,
                    record,
                },
            );
        })
    }

    pub fn forget(&self, id: &SessionId) {
        self.with_entries(|entries| entries.remove(id.as_bytes()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::keys;
    use crate::session::record::Epoch;

    fn record() -> SessionRecord {
        SessionRecord {
            user: "alice".into(),
            auth_type: "Basic".into(),
            created: 1,
            last_seen: 1,
            inactivity_timeout: 0,
            absolute_expiry: 0,
            credential_end: 0,
            ccache: None,
            user_epoch: Epoch([1; 16]),
            global_epoch: Epoch([2; 16]),
        }
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
        let recalled = off
            .recall(&id, start)
            .expect("keys are kept without a cache");
        assert_eq!(recalled.keys, keys);
        assert_eq!(&*recalled.user_epoch_key, "u");
        assert!(recalled.fresh_record.is_none());

        let on = KnownSessions::new(Duration::from_secs(1));
        on.remember(&id, keys, "u".into(), Some((Arc::new(record()), start)));
        let within = on.recall(&id, start + Duration::from_millis(999)).unwrap();
        assert!(within.fresh_record.is_some());
        let after = on.recall(&id, start + Duration::from_secs(1)).unwrap();
        assert!(after.fresh_record.is_none());
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
