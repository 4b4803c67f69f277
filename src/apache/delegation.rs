//! Kerberos credentials at the Apache boundary: read what the login's auth module exported,
//! and lend a session's stored credentials to the backend for one request.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::log::Level;
use super::request::Request;
use crate::config::DirConfig;
use crate::flow::credentials::{self, LoginCredentials, PrivateCcache, RemoveOnDrop};
use crate::session::record::SessionRecord;

/// The credentials the authenticating module left in the request's environment.
pub fn login_credentials(request: &Request) -> LoginCredentials {
    let found = credentials::from_login(
        request.env(c"KRB5CCNAME"),
        request.env(c"GSS_SESSION_EXPIRATION"),
    );
    if let Some(problem) = &found.problem {
        request.log(
            Level::Warning,
            format_args!("delegated credentials not stored with the session: {problem}"),
        );
    }
    found
}

/// The auth module's own copy of the credentials (e.g. in `GssapiDelegCcacheDir`) goes when
/// this request ends, whether the login sealed them in a session or failed: the backend of
/// this request may still use it; later requests get theirs from the session, or log in
/// again. Either way no user's TGT stays at rest.
pub fn remove_source_after_request(request: &mut Request, source_file: Option<PathBuf>) {
    if let Some(path) = source_file {
        request.pool().adopt(RemoveOnDrop(path));
    }
}

/// A login that will not mint a session: the credentials the auth module exported go when
/// this request ends, unread.
pub fn discard_login_credentials(request: &mut Request) {
    let file = request
        .env(c"KRB5CCNAME")
        .and_then(|name| credentials::ccache_file(name).ok())
        .map(PathBuf::from);
    remove_source_after_request(request, file);
}

/// How often a process looks for credentials lent by processes that died mid-request.
const SWEEP_EVERY_S: u64 = 600;
static LAST_SWEEP: AtomicU64 = AtomicU64::new(0);

/// A child killed or crashed mid-request never runs its pool cleanups, so the file it lent
/// stays. Each process sweeps the directory the first time it lends (children start with no
/// sweep behind them) and every ten minutes after.
fn sweep_now_and_then(request: &Request, dir: &Path) {
    let now = crate::flow::unix_now();
    let last = LAST_SWEEP.load(Ordering::Relaxed);
    if now.saturating_sub(last) < SWEEP_EVERY_S
        || LAST_SWEEP
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return;
    }
    let removed = credentials::sweep_stale(dir, credentials::process_alive);
    if removed > 0 {
        request.log(
            Level::Warning,
            format_args!(
                "MemSessionDelegationDir {}: removed {removed} credential cache(s) lent by \
                 processes that ended mid-request",
                dir.display()
            ),
        );
    }
}

/// `MemSessionDelegation On`: write the session's credentials to a private file for this
/// request and point the backend's `KRB5CCNAME` at it. The request pool owns the file, so
/// it is removed when the request ends, whatever the backend did.
pub fn lend_to_backend(request: &mut Request, config: &DirConfig, record: &SessionRecord) {
    if !config.delegation() {
        return;
    }
    let Some(bytes) = record.ccache.as_deref() else {
        request.log(
            Level::Debug,
            format_args!(
                "MemSessionDelegation: the session of {} holds no credentials",
                record.user
            ),
        );
        return;
    };
    let dir = Path::new(config.delegation_dir());
    sweep_now_and_then(request, dir);
    match PrivateCcache::write(dir, bytes) {
        Ok(ccache) => {
            let name = ccache.krb5ccname();
            request.pool().adopt(ccache);
            request.set_env("KRB5CCNAME", &name);
        }
        Err(error) => request.log(
            Level::Error,
            format_args!(
                "MemSessionDelegation: cannot write credentials into MemSessionDelegationDir \
                 {}: {error}",
                config.delegation_dir()
            ),
        ),
    }
}
