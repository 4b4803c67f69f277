//! Logging through Apache's error log under this module's own level
//! (`LogLevel auth_memsession:debug`). The level is checked before anything is formatted.
use std::ffi::CString;
use std::fmt;

use super::bindings as ap;

#[derive(Clone, Copy, Debug)]
pub enum Level {
    Error,
    Warning,
    Info,
    Debug,
}

impl Level {
    fn apache(self) -> i32 {
        (match self {
            Level::Error => ap::APLOG_ERR,
            Level::Warning => ap::APLOG_WARNING,
            Level::Info => ap::APLOG_INFO,
            Level::Debug => ap::APLOG_DEBUG,
        }) as i32
    }
}

/// Messages go through "%s" in C; a NUL inside would cut them short, so it is replaced.
fn c_message(message: fmt::Arguments) -> CString {
    let text = fmt::format(message).replace('\0', "\\0");
    CString::new(text).unwrap_or_default()
}

pub fn request(r: *const ap::request_rec, level: Level, message: fmt::Arguments) {
    // SAFETY: `r` is the live request Apache handed to the entry that called us.
    unsafe {
        if ap::memsession_c_request_log_enabled(r, level.apache()) == 0 {
            return;
        }
        ap::memsession_c_log_request(r, level.apache(), c_message(message).as_ptr());
    }
}

pub fn server(s: *const ap::server_rec, level: Level, message: fmt::Arguments) {
    if s.is_null() {
        return;
    }
    // SAFETY: `s` is a live server_rec from Apache, checked non-null above.
    unsafe {
        if ap::memsession_c_server_log_enabled(s, level.apache()) == 0 {
            return;
        }
        ap::memsession_c_log_server(s, level.apache(), c_message(message).as_ptr());
    }
}
