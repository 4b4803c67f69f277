//! Which process this is, for telling pooled connections apart after a fork, without a
//! `getpid` system call on every checkout.
//!
//! The pid is remembered only once something has promised to call [`forked`] in every child
//! right after a fork (httpd's module registers a `pthread_atfork` handler); until then —
//! `memsessionctl`, tests — every call asks the kernel. A stale pid would hand a child its
//! parent's socket, so caching without that promise is never done.
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

static FORKS_TRACKED: AtomicBool = AtomicBool::new(false);
/// 0: not known yet (no process has pid 0).
static REMEMBERED: AtomicU32 = AtomicU32::new(0);

/// This process's id.
pub fn id() -> u32 {
    if !FORKS_TRACKED.load(Ordering::Acquire) {
        return std::process::id();
    }
    match REMEMBERED.load(Ordering::Relaxed) {
        0 => {
            let pid = std::process::id();
            REMEMBERED.store(pid, Ordering::Relaxed);
            pid
        }
        pid => pid,
    }
}

/// The caller guarantees [`forked`] runs in every child of this process, right after the
/// fork and before any other code of the child uses the store.
pub fn forks_are_tracked() {
    FORKS_TRACKED.store(true, Ordering::Release);
}

/// Called in a child right after a fork: forget the parent's pid. A single atomic store, so
/// it is safe in a `pthread_atfork` child handler.
pub fn forked() {
    REMEMBERED.store(0, Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pid_is_right_whether_or_not_forks_are_tracked() {
        // Other tests share these statics: only ever leave them holding the true pid.
        assert_eq!(id(), std::process::id());
        forks_are_tracked();
        assert_eq!(id(), std::process::id());
        assert_eq!(REMEMBERED.load(Ordering::Relaxed), std::process::id());
        forked();
        assert_eq!(REMEMBERED.load(Ordering::Relaxed), 0);
        assert_eq!(id(), std::process::id());
    }
}
