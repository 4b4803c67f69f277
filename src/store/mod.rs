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
//! - [`breaker`]: per-server circuit breaker.
//! - [`client`]: [`client::StoreClient`], the pool and the operations.
//! - [`observer`]: an optional hook timing every operation, for metrics.
//!
//! Requires memcached 1.6 or newer (meta commands with a positional data length).
//!
//! Limits of the time bound, both outside what std can do without `unsafe`:
//! - A TCP server given by name is resolved on each new connection, and the resolver is not
//!   bounded by the timeout. IP literals and UNIX sockets never resolve.
//! - connect() on a UNIX socket blocks while the server's accept backlog is full, and closed
//!   connections stay in that backlog until accepted: a memcached that is alive but not
//!   accepting (stopped, wedged) fills it after `-b` (default 1024) attempts from all
//!   processes, and the next connect hangs until it accepts again. The breaker keeps attempts
//!   to a few per process per interval; a connector with a real timeout can be supplied with
//!   [`client::StoreClient::with_unix_connect`].
pub mod address;
pub mod breaker;
pub mod client;
pub mod connection;
pub mod meta;
pub mod observer;
pub mod routing;
