//! Responses this module authenticated are private to their client: mod_cache never stores
//! them (its quick handler answers before any authentication, so a stored copy would reach
//! clients without a session) and caches downstream see `Cache-Control: private`.
use super::bindings as ap;
use super::hooks::request_entry;
use super::minting::{NOTE_ISSUED, NOTE_VALIDATED};
use super::request::{Headers, Request};
use super::status;
use crate::web::cache_control;

/// Whether the module authenticated this request from a session or issued one on it.
fn authenticated_by_us(request: &Request) -> bool {
    // The common case first, without a table lookup: this request validated a session.
    request.kept_validated_here()
        || request.note(NOTE_VALIDATED).is_some()
        || request.note(NOTE_ISSUED).is_some()
}

#[no_mangle]
pub extern "C" fn memsession_rs_insert_filter(raw: *mut ap::request_rec) {
    request_entry(raw, |request| {
        if authenticated_by_us(request) {
            request.forbid_caching_here();
            request.add_private_filter();
        }
        status::OK
    });
}

#[no_mangle]
pub extern "C" fn memsession_rs_make_private(raw: *mut ap::request_rec) {
    request_entry(raw, |request| {
        make_private(request);
        status::OK
    });
}

/// The backend's headers are final when the first of its output reaches the filter: keep a
/// stricter `Cache-Control`, otherwise make it private.
fn make_private(request: &mut Request) {
    // The common case, a backend that said nothing about caching: no copies, no allocation.
    if request.header(Headers::Out, c"Cache-Control").is_none()
        && request.header(Headers::ErrOut, c"Cache-Control").is_none()
    {
        request.set_header_static(Headers::Out, c"Cache-Control", c"private");
        return;
    }
    let mut values = request.header_values(Headers::Out, c"Cache-Control");
    values.extend(request.header_values(Headers::ErrOut, c"Cache-Control"));
    if let Some(private) = cache_control::made_private(&values) {
        request.unset_header(Headers::ErrOut, "Cache-Control");
        request.set_header(Headers::Out, "Cache-Control", &private);
    }
}
