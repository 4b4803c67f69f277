//! The session model: ids, store keys, the sealed record and its lifetime rules.
pub mod base64url;
pub mod id;
pub mod keys;
pub mod lifetime;
pub mod record;
