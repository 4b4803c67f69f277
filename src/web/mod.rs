//! HTTP-facing pure logic: nothing here knows about Apache.
pub mod cache_control;
pub mod cookie;
pub mod csrf;
pub mod form;
pub mod header_name;
pub mod json;
pub mod navigation;
pub mod return_path;
