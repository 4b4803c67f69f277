//! `memsession-logout`: delete the session (and the credentials it holds), expire the cookie.
use crate::config::DirConfig;
use crate::session_store::SessionStore;
use crate::store::client::StoreError;

use super::cookies::{self, CookieLookup};

pub struct LogoutOutcome {
    pub expire_cookie: String,
    pub log_tag: Option<String>,
    /// The store failed while deleting: the session may outlive the cookie.
    pub store_error: Option<StoreError>,
}

pub fn logout(cookie_header: Option<&str>, config: &DirConfig, store: &SessionStore) -> LogoutOutcome {
    let (log_tag, store_error) = match cookies::lookup(cookie_header, config.cookie_name()) {
        CookieLookup::Present(id) => (Some(id.log_tag()), store.delete(&id).err()),
        _ => (None, None),
    };
    LogoutOutcome { expire_cookie: cookies::expired_cookie(config), log_tag, store_error }
}
