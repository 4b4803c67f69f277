//! An optional, process-wide observer of store operations, for metrics.
//!
//! The Apache layer installs one (counters in shared memory); `memsessionctl` and the tests
//! install none. Unset, an operation pays one atomic load and reads no clock.
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::client::StoreError;

/// How one store operation (one round trip to the servers involved) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoundTrip {
    Ok,
    Timeout,
    /// Any other failure, including a refusal by an open circuit breaker (no network).
    Error,
}

pub trait StoreObserver: Sync {
    /// One get/multi-get, store or delete: its wall time and how it ended.
    fn round_trip(&self, elapsed: Duration, outcome: RoundTrip);
    /// A server's circuit breaker opened (tripped, or a failed probe re-opened it).
    fn breaker_opened(&self, server: usize);
}

static OBSERVER: OnceLock<&'static dyn StoreObserver> = OnceLock::new();

/// Installs the observer for this process; `false` if one was installed already (it stays).
pub fn install(observer: &'static dyn StoreObserver) -> bool {
    OBSERVER.set(observer).is_ok()
}

pub(crate) fn get() -> Option<&'static dyn StoreObserver> {
    OBSERVER.get().copied()
}

/// The start of an operation, when someone observes.
pub(crate) fn start() -> Option<Instant> {
    OBSERVER.get().map(|_| Instant::now())
}

pub(crate) fn finish<T>(started: Option<Instant>, result: &Result<T, StoreError>) {
    let (Some(started), Some(observer)) = (started, get()) else {
        return;
    };
    let outcome = match result {
        Ok(_) => RoundTrip::Ok,
        Err(error) if error.is_timeout() => RoundTrip::Timeout,
        Err(_) => RoundTrip::Error,
    };
    observer.round_trip(started.elapsed(), outcome);
}

pub(crate) fn breaker_opened(server: usize) {
    if let Some(observer) = get() {
        observer.breaker_opened(server);
    }
}
