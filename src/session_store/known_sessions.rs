//! What one process remembers about sessions it has validated: which user epoch key belongs
//! to a record key (immutable for a session's life), and — only with `MemSessionLocalCache`
//! — the record itself for a short while. Bounded: when full, it is emptied, which costs at
//! most one extra round trip per session.
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::session::record::SessionRecord;

const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
struct Entry {
    user_epoch_key: Option<String>,
    record: Option<(SessionRecord, Instant)>,
}

pub struct KnownSessions {
    record_ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl KnownSessions {
    pub fn new(record_ttl: Duration) -> KnownSessions {
        KnownSessions {
            record_ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn with_entries<T>(&self, work: impl FnOnce(&mut HashMap<String, Entry>) -> T) -> T {
        // A panic while holding the lock leaves only cache data behind: keep using it.
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        work(&mut entries)
    }

    fn entry<'m>(entries: &'m mut HashMap<String, Entry>, store_key: &str) -> &'m mut Entry {
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(store_key) {
            entries.clear();
        }
        entries.entry(store_key.to_string()).or_default()
    }

    pub fn user_epoch_key(&self, store_key: &str) -> Option<String> {
        self.with_entries(|entries| {
            entries
                .get(store_key)
                .and_then(|entry| entry.user_epoch_key.clone())
        })
    }

    pub fn remember_user_epoch_key(&self, store_key: &str, user_epoch_key: String) {
        self.with_entries(|entries| {
            Self::entry(entries, store_key).user_epoch_key = Some(user_epoch_key)
        })
    }

    /// A record validated against the store less than `record_ttl` ago.
    pub fn fresh_record(&self, store_key: &str, now: Instant) -> Option<SessionRecord> {
        if self.record_ttl.is_zero() {
            return None;
        }
        self.with_entries(|entries| {
            let (record, validated_at) = entries.get(store_key)?.record.as_ref()?;
            (now.saturating_duration_since(*validated_at) < self.record_ttl).then(|| record.clone())
        })
    }

    pub fn remember_record(&self, store_key: &str, record: &SessionRecord, validated_at: Instant) {
        if self.record_ttl.is_zero() {
            return;
        }
        self.with_entries(|entries| {
            Self::entry(entries, store_key).record = Some((record.clone(), validated_at))
        })
    }

    pub fn forget(&self, store_key: &str) {
        self.with_entries(|entries| entries.remove(store_key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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
        let off = KnownSessions::new(Duration::ZERO);
        off.remember_record("k", &record(), start);
        assert!(off.fresh_record("k", start).is_none());

        let on = KnownSessions::new(Duration::from_secs(1));
        on.remember_record("k", &record(), start);
        assert!(on
            .fresh_record("k", start + Duration::from_millis(999))
            .is_some());
        assert!(on
            .fresh_record("k", start + Duration::from_secs(1))
            .is_none());
        on.forget("k");
        assert!(on.fresh_record("k", start).is_none());
    }

    #[test]
    fn bounded() {
        let known = KnownSessions::new(Duration::ZERO);
        for n in 0..(MAX_ENTRIES + 5) {
            known.remember_user_epoch_key(&format!("k{n}"), "u".into());
        }
        assert!(known.with_entries(|entries| entries.len()) <= MAX_ENTRIES);
        assert_eq!(
            known
                .user_epoch_key(&format!("k{}", MAX_ENTRIES + 4))
                .as_deref(),
            Some("u")
        );
    }
}
