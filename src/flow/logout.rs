//! `memsession-logout`: delete the session (and the credentials it holds), expire the cookie.
use crate::config::DirConfig;
use crate::session_store::SessionStore;
use crate::store::client::StoreError;

use super::cookies;

pub struct LogoutOutcome {
    pub expire_cookie: String,
    pub log_tag: Option<String>,
    /// The store failed while deleting: the session may outlive the cookie.
    pub store_error: Option<StoreError>,
}

pub fn logout(
    cookie_header: Option<&str>,
    config: &DirConfig,
    store: &SessionStore,
) -> LogoutOutcome {
    let mut log_tag = None;
    let mut store_error = None;
    for id in cookies::all_ids(cookie_header, config.cookie_name()) {
        log_tag.get_or_insert_with(|| id.log_tag());
        if let Err(error) = store.delete(&id) {
            store_error = Some(error);
        }
    }
    LogoutOutcome {
        expire_cookie: cookies::expired_cookie(config),
        log_tag,
        store_error,
    }
}
