//! The module's counters in memory shared by every Apache process and thread, and the slots
//! that bound password logins waiting on KDCs server-wide (`krb5::kdc_guard::SharedWaiters`).
//!
//! An anonymous shared mapping (`apr_shm_create` with no file name: `mmap(MAP_SHARED |
//! MAP_ANONYMOUS)` on Linux) is made by the parent in the real post_config pass, before any
//! child is forked, so every child — of this generation and the next — adds to the same
//! `AtomicU64`s, laid out by [`crate::metrics`], followed by [`KDC_WAITER_SLOTS`] slots.
//! Lock-free: one relaxed `fetch_add` per event.
//!
//! Graceful restarts: the mapping belongs to the process pool (`s->process->pool`), which
//! lives as long as the parent, and is found again through that pool's user data after httpd
//! reloads the module. Counters therefore run on across graceful and plain restarts and start
//! from zero only when the parent starts (Prometheus treats that as a counter reset).
use std::ffi::{c_void, CStr};
use std::mem::size_of;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};
use std::time::Duration;

use super::bindings as ap;
use super::log::{self, Level};
use crate::flow::login_timing::TimingSlots;
use crate::metrics::{self, Counter, Metrics};
use crate::store::observer::{self, RoundTrip, StoreObserver};

/// The process-pool user data key the mapping is filed under.
const USERDATA_KEY: &CStr = c"mod_auth_memsession:metrics-shm";

/// The first slot of the mapping; null until post_config made or found it.
static BASE: AtomicPtr<AtomicU64> = AtomicPtr::new(ptr::null_mut());

/// Slots for password logins waiting on KDCs, after the counters: the most the server-wide
/// bound can be (a quarter of MaxRequestWorkers, capped here).
pub const KDC_WAITER_SLOTS: usize = 1024;

/// u64s of what the login form learnt about password checks, after the KDC waiter slots.
const TIMING_SLOTS: usize = size_of::<TimingSlots>() / size_of::<AtomicU64>();

/// u64s in the mapping.
const MAPPING_SLOTS: usize = metrics::SLOTS + KDC_WAITER_SLOTS + TIMING_SLOTS;

/// The counters, when the shared mapping exists (never in the start-up dry run, nor in
/// tools linking this crate).
pub fn metrics() -> Option<Metrics<'static>> {
    let base = BASE.load(Ordering::Acquire);
    if base.is_null() {
        return None;
    }
    // SAFETY: BASE is only set to the start of a mapping of at least `metrics::SLOTS` u64s,
    // page-aligned, owned by the process pool: it stays mapped for the life of the parent
    // and of every child forked from it.
    let slots = unsafe { std::slice::from_raw_parts(base, metrics::SLOTS) };
    Metrics::attach(slots)
}

/// The first `limit` (at most [`KDC_WAITER_SLOTS`]) KDC waiter slots, when the shared
/// mapping exists. Every process asking for the same `limit` shares the same slots.
pub fn kdc_waiter_slots(limit: usize) -> Option<&'static [AtomicU64]> {
    let base = BASE.load(Ordering::Acquire);
    if base.is_null() {
        return None;
    }
    // SAFETY: as in `metrics()`: the mapping holds MAPPING_SLOTS u64s and outlives every
    // process that maps it.
    let all = unsafe { std::slice::from_raw_parts(base, MAPPING_SLOTS) };
    Some(&all[metrics::SLOTS..metrics::SLOTS + limit.clamp(1, KDC_WAITER_SLOTS)])
}

/// What every process of the server learnt about how long password checks take (the login
/// form's timing equalisation); a process-local copy when there is no mapping (tools, the
/// start-up dry run), which no request reaches.
pub fn login_timing() -> &'static TimingSlots {
    static LOCAL: TimingSlots = TimingSlots::new();
    let base = BASE.load(Ordering::Acquire);
    if base.is_null() {
        return &LOCAL;
    }
    // SAFETY: the mapping holds MAPPING_SLOTS u64s, page-aligned, and outlives every process
    // that maps it; TimingSlots is TIMING_SLOTS AtomicU64s (repr of plain atomics, no
    // padding), laid after the KDC waiter slots, and zero is its initial state.
    unsafe {
        &*base
            .add(metrics::SLOTS + KDC_WAITER_SLOTS)
            .cast::<TimingSlots>()
    }
}

/// Whether process `pid` still exists (`kill(pid, 0)`: only "no such process" says no; a
/// process of another user, EPERM, is alive).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // SAFETY: apr_proc_t is plain data; apr_proc_kill reads only its pid.
    let mut process: ap::apr_proc_t = unsafe { std::mem::zeroed() };
    process.pid = pid;
    // SAFETY: signal 0 delivers nothing; it only checks that the process exists.
    let status = unsafe { ap::apr_proc_kill(&mut process, 0) };
    status != ap::ESRCH as ap::apr_status_t
}

/// Counts one event (a no-op when there is no mapping).
pub fn count(counter: Counter) {
    if let Some(metrics) = metrics() {
        metrics.incr(counter);
    }
}

struct Observer;

impl StoreObserver for Observer {
    fn round_trip(&self, elapsed: Duration, outcome: RoundTrip) {
        let Some(metrics) = metrics() else {
            return;
        };
        metrics.incr(Counter::StoreRoundTrip);
        metrics.observe_round_trip(elapsed);
        match outcome {
            RoundTrip::Ok => {}
            RoundTrip::Timeout => metrics.incr(Counter::StoreTimeout),
            RoundTrip::Error => metrics.incr(Counter::StoreError),
        }
    }

    fn breaker_opened(&self, _server: usize) {
        count(Counter::BreakerOpened);
    }
}

static OBSERVER: Observer = Observer;

/// Makes (first start) or finds (restarts) the shared counters. Called in the real
/// post_config pass only, in the parent, before children fork.
pub fn set_up(server: *mut ap::server_rec) {
    // SAFETY: post_config hands us the live main server; its process_rec and process pool
    // live as long as the parent.
    let pool = unsafe {
        let process = (*server).process;
        if process.is_null() {
            return;
        }
        (*process).pool
    };
    if pool.is_null() {
        return;
    }
    let size = MAPPING_SLOTS * size_of::<AtomicU64>();
    // SAFETY: APR calls on the live process pool; the shm handle and its memory stay valid
    // until that pool is destroyed (when the parent exits).
    let base = unsafe {
        let mut data: *mut c_void = ptr::null_mut();
        ap::apr_pool_userdata_get(&mut data, USERDATA_KEY.as_ptr(), pool);
        let existing = data.cast::<ap::apr_shm_t>();
        let reusable = !existing.is_null()
            && ap::apr_shm_size_get(existing) >= size
            && !ap::apr_shm_baseaddr_get(existing).is_null();
        if reusable {
            let base = ap::apr_shm_baseaddr_get(existing).cast::<AtomicU64>();
            let slots = std::slice::from_raw_parts(base, metrics::SLOTS);
            Metrics::attach(slots).map(|_| base)
        } else {
            None
        }
        .or_else(|| create(server, pool, size))
    };
    let Some(base) = base else {
        return;
    };
    BASE.store(base, Ordering::Release);
    observer::install(&OBSERVER);
}

/// A fresh zeroed mapping, filed under the process pool's user data.
///
/// # Safety
/// `pool` is the live process pool.
unsafe fn create(
    server: *mut ap::server_rec,
    pool: *mut ap::apr_pool_t,
    size: usize,
) -> Option<*mut AtomicU64> {
    let mut shm: *mut ap::apr_shm_t = ptr::null_mut();
    // SAFETY: anonymous (NULL file name) shared memory of `size` bytes in the process pool.
    let status = unsafe { ap::apr_shm_create(&mut shm, size, ptr::null(), pool) };
    if status != 0 || shm.is_null() {
        log::server(
            server,
            Level::Error,
            format_args!(
                "cannot create shared memory for memsession-status counters (APR error \
                 {status}); counters are disabled, and logins waiting on KDCs are bounded \
                 per process only"
            ),
        );
        return None;
    }
    // SAFETY: the mapping is `size` bytes, page-aligned, private to us until children fork.
    let base = unsafe { ap::apr_shm_baseaddr_get(shm) }.cast::<AtomicU64>();
    let slots = unsafe { std::slice::from_raw_parts(base, MAPPING_SLOTS) };
    Metrics::initialise(&slots[..metrics::SLOTS])?;
    for waiter in &slots[metrics::SLOTS..] {
        waiter.store(0, Ordering::Relaxed);
    }
    // SAFETY: the key is a static string; no cleanup: the shm registered its own on `pool`.
    unsafe {
        ap::apr_pool_userdata_set(
            shm.cast(),
            USERDATA_KEY.as_ptr(),
            Some(ap::apr_pool_cleanup_null),
            pool,
        );
    }
    Some(base)
}
