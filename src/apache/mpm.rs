//! What the MPM says about this child: how many request threads it runs.
use std::ffi::c_int;

use super::bindings as ap;

/// Request threads of this child process (`ThreadsPerChild`; 1 under prefork).
pub fn threads_per_child() -> usize {
    let mut threads: c_int = 0;
    // SAFETY: ap_mpm_query writes one int for AP_MPMQ_MAX_THREADS; callable from any hook
    // once the configuration is read.
    let status = unsafe { ap::ap_mpm_query(ap::AP_MPMQ_MAX_THREADS as c_int, &mut threads) };
    if status == ap::OK as c_int && threads > 0 {
        threads as usize
    } else {
        1
    }
}
