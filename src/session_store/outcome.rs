//! Outcomes of validating a session cookie, with stable short names for logs and metrics.
use std::ops::Deref;
use std::sync::Arc;

use super::epochs::EpochKind;
use crate::session::lifetime::Expiry;
use crate::session::record::{RecordError, SessionRecord};
use crate::store::client::StoreError;

#[derive(Debug)]
pub struct Validated {
    pub record: ValidRecord,
    /// Served from this process's `MemSessionLocalCache` without asking the store.
    pub from_local_cache: bool,
    /// The sliding inactivity window was written back to the store.
    pub refreshed: bool,
}

/// A validated record: owned when just read from the store; shared with the local cache when
/// served from it or kept in it, so a cache hit copies nothing (delegated credentials are up
/// to 64 KiB).
#[derive(Debug)]
pub enum ValidRecord {
    Read(SessionRecord),
    Shared(Arc<SessionRecord>),
}

impl Deref for ValidRecord {
    type Target = SessionRecord;

    fn deref(&self) -> &SessionRecord {
        match self {
            ValidRecord::Read(record) => record,
            ValidRecord::Shared(record) => record,
        }
    }
}

#[derive(Debug)]
pub enum Rejection {
    /// The store holds no record for this id: never issued, logged out, or expired there.
    Unknown,
    /// The record did not open: tampered, truncated, moved, or a version we do not read.
    Record(RecordError),
    Expired(Expiry),
    /// Within the session's own limits, but past the serving location's stricter
    /// `MemSessionInactivityTimeout`/`MemSessionMaxLifetime`: refused here only.
    TooOldHere(Expiry),
    Revoked(EpochKind),
    /// Valid by the epochs of the server holding it, but that server had missed a revocation
    /// (its revocation generation was behind the farm's): it was reset, which ends every
    /// session stored there, this one included.
    ServerReset,
    /// The store did not answer properly. Not the client's fault: its cookie is kept.
    Store(StoreError),
}

impl Rejection {
    /// Stable short reason, used in logs and metrics labels.
    pub fn reason(&self) -> &'static str {
        match self {
            Rejection::Unknown => "unknown",
            Rejection::Record(_) => "malformed-record",
            Rejection::Expired(_) | Rejection::TooOldHere(_) => "expired",
            Rejection::Revoked(EpochKind::User) => "revoked-user",
            Rejection::Revoked(EpochKind::Global) | Rejection::ServerReset => "revoked-all",
            Rejection::Store(error) if error.is_timeout() => "store-timeout",
            Rejection::Store(_) => "store-error",
        }
    }

    /// Whether the store gave a verdict: every rejection but a store failure.
    pub fn is_final(&self) -> bool {
        !matches!(self, Rejection::Store(_))
    }

    /// Whether the client's cookie is dead for good, so the response expires it. Not after a
    /// store failure (the session resumes when the store is back), nor when only this
    /// location's stricter limit refused it (the session's other locations still serve it:
    /// expiring the cookie would end it there too).
    pub fn ends_cookie(&self) -> bool {
        !matches!(self, Rejection::Store(_) | Rejection::TooOldHere(_))
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rejection::Unknown => f.write_str("no such session in the store"),
            Rejection::Record(error) => write!(f, "stored record rejected: {error}"),
            Rejection::Expired(expiry) => write!(f, "session expired ({})", expiry.as_str()),
            Rejection::TooOldHere(expiry) => write!(
                f,
                "session past this location's stricter limit ({})",
                expiry.as_str()
            ),
            Rejection::Revoked(kind) => write!(f, "session revoked ({} epoch)", kind.as_str()),
            Rejection::ServerReset => f.write_str(
                "session revoked: the server holding it had missed a revocation (its \
                 revocation generation was behind the farm's) and was reset",
            ),
            Rejection::Store(error) => write!(f, "session store unavailable: {error}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dead_session_expires_the_cookie() {
        let dead = [
            Rejection::Unknown,
            Rejection::Record(RecordError::Tampered),
            Rejection::Expired(Expiry::Inactive),
            Rejection::Expired(Expiry::MaxLifetime),
            Rejection::Expired(Expiry::Credentials),
            Rejection::Revoked(EpochKind::User),
            Rejection::Revoked(EpochKind::Global),
            Rejection::ServerReset,
        ];
        for rejection in &dead {
            assert!(rejection.ends_cookie(), "{rejection:?}");
            assert!(rejection.is_final(), "{rejection:?}");
        }
        let alive_elsewhere = Rejection::TooOldHere(Expiry::Inactive);
        assert!(!alive_elsewhere.ends_cookie());
        assert!(alive_elsewhere.is_final(), "a verdict, not a store failure");
        assert_eq!(alive_elsewhere.reason(), "expired");
        let store = Rejection::Store(StoreError::Timeout);
        assert!(!store.ends_cookie() && !store.is_final());
        assert_eq!(store.reason(), "store-timeout");
        let refused = Rejection::Store(StoreError::CircuitOpen);
        assert!(!refused.ends_cookie() && !refused.is_final());
        assert_eq!(refused.reason(), "store-error");
    }
}
