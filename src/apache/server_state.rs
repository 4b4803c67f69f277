//! Per-virtual-host state: the parsed server config and, once a child needs it, the session
//! store client. The client opens nothing when built; connections are dialled lazily by the
//! process that uses them, so nothing is shared across fork.
use std::sync::OnceLock;

use crate::config::ServerConfig;
use crate::session_store::SessionStore;
use crate::store::client::StoreClient;

pub struct ServerState {
    pub config: ServerConfig,
    store: OnceLock<SessionStore>,
}

impl ServerState {
    pub fn new(config: ServerConfig) -> ServerState {
        ServerState {
            config,
            store: OnceLock::new(),
        }
    }

    pub fn store(&self) -> &SessionStore {
        self.store.get_or_init(|| {
            let client = StoreClient::new(self.config.servers(), self.config.timeout());
            SessionStore::new(client, self.config.key_prefix(), self.config.local_cache())
        })
    }

    /// Closes pooled connections when a child exits.
    pub fn close_connections(&self) {
        if let Some(store) = self.store.get() {
            store.client().close_idle_at_exit();
        }
    }
}
