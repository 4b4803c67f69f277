//! Configuration: each directive's words are parsed here into typed values, and server and
//! directory configs are merged the way Apache auth modules merge (inner overrides outer, an
//! unset field inherits). Nothing here knows about Apache; `apache::config` feeds it.
pub mod dir;
pub mod duration;
pub mod secret_file;
pub mod server;
pub mod store_transport;
pub mod values;

pub use dir::DirConfig;
pub use server::ServerConfig;

/// Apache-style inheritance of one field: the inner section's value when it set one.
pub(crate) fn inherit<T: Clone>(inner: &Option<T>, outer: &Option<T>) -> Option<T> {
    inner.as_ref().or(outer.as_ref()).cloned()
}

/// A directive error: the message names the directive, so an administrator reading
/// `apache2 -t` output knows which line to fix.
pub fn directive_error(directive: &str, detail: impl std::fmt::Display) -> String {
    format!("{directive}: {detail}")
}
