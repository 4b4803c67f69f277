//! Per-virtual-host state: the parsed server config and, once a child needs it, the session
//! store client. The client opens nothing when built; connections are dialled lazily by the
//! process that uses them, so nothing is shared across fork.
use std::sync::OnceLock;

use crate::config::ServerConfig;
use crate::session_store::SessionStore;
use crate::store::client::StoreClient;

pub struct ServerState {
    pub config: ServerConfig,
    store: OnceLock<Option<SessionStore>>,
}

impl ServerState {
    pub fn new(config: ServerConfig) -> ServerState {
        ServerState {
            config,
            store: OnceLock::new(),
        }
    }

    /// The session store; `None` only for a server without `MemSessionSecretFile` or with a
    /// TLS or authentication file that does not build, which post_config refuses to start with.
    pub fn store(&self) -> Option<&SessionStore> {
        self.store
            .get_or_init(|| {
                let secrets = self.config.secrets().ok()?;
                // post_config refused to start with a transport that does not build; were it
                // to fail here, no session is served rather than one sent in the clear.
                let transport = self.config.transport().ok()?;
                let client = StoreClient::new(self.config.servers(), self.config.timeout())
                    .with_transport(transport);
                Some(
                    SessionStore::new(
                        client,
                        &secrets.current,
                        secrets.previous.as_ref(),
                        self.config.key_prefix(),
                        self.config.local_cache(),
                    )
                    .with_replicas(self.config.replicas()),
                )
            })
            .as_ref()
    }

    /// Closes pooled connections when a child exits.
    pub fn close_connections(&self) {
        if let Some(Some(store)) = self.store.get() {
            store.client().close_idle_at_exit();
        }
    }
}
