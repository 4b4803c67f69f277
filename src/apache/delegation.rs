//! Kerberos credentials at the Apache boundary: read what the login's auth module exported,
//! and lend a session's stored credentials to the backend for one request.
use std::path::{Path, PathBuf};

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

/// Once the credentials are sealed in the session, the auth module's own copy (e.g. in
/// `GssapiDelegCcacheDir`) goes when this request ends: the backend of this request may
/// still use it, later requests get theirs from the session.
pub fn remove_source_after_request(request: &mut Request, source_file: Option<PathBuf>) {
    if let Some(path) = source_file {
        request.pool().adopt(RemoveOnDrop(path));
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
    match PrivateCcache::write(Path::new(config.delegation_dir()), bytes) {
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
