//! A small memcached meta-protocol client: UNIX sockets and TCP, every operation bounded in
//! time, connections opened lazily in the process that uses them, keys routed by a stable hash.
//!
//! Written here rather than taken from the `memcache` crate: its classic client starts r2d2
//! threads (fatal in httpd children), checks every checkout with an extra round trip and routes
//! keys with `DefaultHasher % N`; its meta client is TCP-only.
//!
//! - [`address`]: `MemSessionServers` entries.
//! - [`routing`]: key → server, a compatibility contract shared with `memsessionctl`.
//! - [`meta`]: request encoding and the reply parser (no I/O).
//! - [`connection`]: one socket, its buffers, deadline-bounded reads and writes.
//! - [`transport`]: TLS and authentication for TCP servers (memcached's `-Z` and `-Y`).
//! - [`breaker`]: per-server circuit breaker.
//! - [`client`]: [`client::StoreClient`], the pool and the operations.
//! - [`observer`]: an optional hook timing every operation, for metrics.
//! - [`process`]: this process's id, remembered across requests and forgotten at fork.
//! - [`shared_gets`]: concurrent multi-gets of one process sharing round trips.
//!
//! Requires memcached 1.6 or newer (meta commands with a positional data length).
//!
//! Limit of the time bound: a TCP server given by name is resolved on each new connection,
//! and the resolver is not bounded by the timeout. IP literals and UNIX sockets never
//! resolve. (A UNIX connect to a memcached whose accept backlog is full — stopped, wedged —
//! is bounded: the socket's send timeout is set before connecting, see `connection`.)
pub mod address;
pub mod breaker;
pub mod client;
pub mod connection;
pub mod meta;
pub mod observer;
pub mod process;
pub mod routing;
pub mod shared_gets;
pub mod transport;
