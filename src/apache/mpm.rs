//! What the MPM says about this child and the server: how many request threads they run.
use std::ffi::c_int;

use super::bindings as ap;

/// Request threads of this child process (`ThreadsPerChild`; 1 under prefork).
pub fn threads_per_child() -> usize {
    query(ap::AP_MPMQ_MAX_THREADS).unwrap_or(1)
}

/// Request threads of the whole server (`MaxRequestWorkers`): children it may run at once
/// (`AP_MPMQ_MAX_DAEMONS`: MaxRequestWorkers under prefork, MaxRequestWorkers divided by
/// ThreadsPerChild under worker and event) times their threads.
pub fn request_workers() -> usize {
    query(ap::AP_MPMQ_MAX_DAEMONS)
        .unwrap_or(1)
        .saturating_mul(threads_per_child())
}

fn query(what: u32) -> Option<usize> {
    let mut value: c_int = 0;
    // SAFETY: ap_mpm_query writes one int for these queries; callable from any hook once the
    // configuration is read.
    let status = unsafe { ap::ap_mpm_query(what as c_int, &mut value) };
    (status == ap::OK as c_int && value > 0).then_some(value as usize)
}
