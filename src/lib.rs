//! mod_auth_memsession: negotiate once, then ride a memcached-backed session cookie.
//!
//! Map of the crate:
//! - [`session`]: the session model — ids, store keys, the sealed record, lifetime rules.
//! - [`web`]: HTTP-facing pure logic — cookies, return paths, CSRF origin rule, header names.
//! - [`config`]: directive parsing and Apache-style merging of server and directory config.
//! - [`store`]: a small memcached meta-protocol client (UNIX socket and TCP, bounded timeouts).
//! - [`secret`]: copies of passwords, wiped once used.
//! - [`flow`]: what a request gets — authenticate, login, logout — decided without Apache types.
//! - `apache`: the only module that touches Apache pointers; every entry from C lives there.
#![deny(unsafe_code)]

pub mod admin;
pub mod config;
pub mod flow;
pub mod krb5;
pub mod metrics;
pub mod secret;
pub mod session;
pub mod session_store;
pub mod store;
pub mod web;

#[allow(unsafe_code)]
mod apache;
