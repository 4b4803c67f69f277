//! A small memcached meta-protocol client: UNIX sockets and TCP, every operation bounded in
//! time, connections opened lazily in the process that uses them, keys routed by a stable hash.
pub mod address;
pub mod breaker;
pub mod client;
pub mod connection;
pub mod meta;
pub mod routing;
