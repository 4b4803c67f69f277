//! Hook return codes and HTTP statuses as the `int` Apache's hooks return. bindgen types
//! each macro by its literal, so they are pinned to `c_int` once, here.
use std::ffi::c_int;

use super::bindings as ap;

pub const OK: c_int = ap::OK as c_int;
pub const DECLINED: c_int = ap::DECLINED as c_int;
pub const SEE_OTHER: c_int = ap::HTTP_SEE_OTHER as c_int;
pub const UNAUTHORIZED: c_int = ap::HTTP_UNAUTHORIZED as c_int;
pub const FORBIDDEN: c_int = ap::HTTP_FORBIDDEN as c_int;
pub const METHOD_NOT_ALLOWED: c_int = ap::HTTP_METHOD_NOT_ALLOWED as c_int;
pub const INTERNAL_SERVER_ERROR: c_int = ap::HTTP_INTERNAL_SERVER_ERROR as c_int;
pub const SERVICE_UNAVAILABLE: c_int = ap::HTTP_SERVICE_UNAVAILABLE as c_int;
pub const BAD_REQUEST: c_int = ap::HTTP_BAD_REQUEST as c_int;
pub const REQUEST_ENTITY_TOO_LARGE: c_int = ap::HTTP_REQUEST_ENTITY_TOO_LARGE as c_int;
pub const UNSUPPORTED_MEDIA_TYPE: c_int = ap::HTTP_UNSUPPORTED_MEDIA_TYPE as c_int;
pub const HTTP_OK: c_int = ap::HTTP_OK as c_int;
pub const TOO_MANY_REQUESTS: c_int = ap::HTTP_TOO_MANY_REQUESTS as c_int;
