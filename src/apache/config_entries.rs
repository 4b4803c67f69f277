//! Config create/merge/directive entries: Apache owns the structs (in its pools), Rust
//! parses and merges them.
use std::ffi::{c_char, c_void};

use super::bindings as ap;
use super::boundary;
use super::log::{self, Level};
use super::pool::{self, Pool};
use super::server_state::ServerState;
use crate::config::{DirConfig, ServerConfig};

/// # Safety: `pool` is the live pool Apache passes to a config callback.
unsafe fn adopt_in<T>(pool: *mut ap::apr_pool_t, value: T) -> *mut c_void {
    // SAFETY: Apache passes a live pool to config callbacks.
    match unsafe { Pool::from_raw(pool) } {
        Some(pool) => pool.adopt(value).cast(),
        None => std::ptr::null_mut(),
    }
}

fn report_config_panic(text: &str) {
    log::server(
        std::ptr::null(),
        Level::Error,
        format_args!("mod_auth_memsession: panic in config handling: {text}"),
    );
}

#[no_mangle]
pub extern "C" fn memsession_rs_dir_config_create(
    pool: *mut ap::apr_pool_t,
    _dir: *mut c_char,
) -> *mut c_void {
    boundary::install_panic_hook();
    // SAFETY: Apache passes a live pool.
    boundary::guard(std::ptr::null_mut(), report_config_panic, || unsafe {
        adopt_in(pool, DirConfig::default())
    })
}

/// Merges two configs this module created (either may be NULL if its creation failed)
/// into a new one owned by `pool`.
fn merge_entry<C: Clone + Default, T>(
    pool: *mut ap::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
    config_of: impl Fn(&T) -> &C,
    merge: impl FnOnce(&C, &C) -> C,
    wrap: impl FnOnce(C) -> T,
) -> *mut c_void {
    boundary::guard(std::ptr::null_mut(), report_config_panic, || {
        // SAFETY: Apache hands back the objects this module's create/merge returned as T.
        let (base, add) = unsafe { (base.cast::<T>().as_ref(), add.cast::<T>().as_ref()) };
        let merged = match (base.map(&config_of), add.map(&config_of)) {
            (Some(base), Some(add)) => merge(base, add),
            (Some(only), None) | (None, Some(only)) => only.clone(),
            (None, None) => C::default(),
        };
        // SAFETY: Apache passes a live pool.
        unsafe { adopt_in(pool, wrap(merged)) }
    })
}

#[no_mangle]
pub extern "C" fn memsession_rs_dir_config_merge(
    pool: *mut ap::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    merge_entry(pool, base, add, |c: &DirConfig| c, DirConfig::merge, |c| c)
}

#[no_mangle]
pub extern "C" fn memsession_rs_server_config_create(
    pool: *mut ap::apr_pool_t,
    _server: *mut ap::server_rec,
) -> *mut c_void {
    boundary::install_panic_hook();
    // SAFETY: Apache passes a live pool.
    boundary::guard(std::ptr::null_mut(), report_config_panic, || unsafe {
        adopt_in(pool, ServerState::new(ServerConfig::default()))
    })
}

#[no_mangle]
pub extern "C" fn memsession_rs_server_config_merge(
    pool: *mut ap::apr_pool_t,
    base: *mut c_void,
    add: *mut c_void,
) -> *mut c_void {
    merge_entry(
        pool,
        base,
        add,
        |state: &ServerState| &state.config,
        ServerConfig::merge,
        ServerState::new,
    )
}

/// Runs one directive, turning an error (or a panic) into a message in the command's pool.
fn directive(
    cmd: *mut ap::cmd_parms,
    name: *const c_char,
    arg: *const c_char,
    apply: impl FnOnce(&str, &str) -> Result<(), String>,
) -> *const c_char {
    // SAFETY: Apache passes a live cmd_parms whose pool outlives the directive call.
    let pool = unsafe { cmd.as_ref().and_then(|cmd| Pool::from_raw(cmd.pool)) };
    let Some(pool) = pool else {
        return c"mod_auth_memsession: directive called without a command".as_ptr();
    };
    let panicked = pool.c_str("mod_auth_memsession: internal error while parsing a directive");
    boundary::guard(panicked, report_config_panic, || {
        // SAFETY: name and arg are NUL-terminated strings from Apache's config parser.
        let (name, arg) = unsafe { (pool::text(name), pool::text(arg)) };
        let (Some(name), Some(arg)) = (name, arg) else {
            return pool.c_str("mod_auth_memsession: a directive argument is not valid UTF-8");
        };
        match apply(name, arg) {
            Ok(()) => std::ptr::null(),
            Err(message) => pool.c_str(&message),
        }
    })
}

#[no_mangle]
pub extern "C" fn memsession_rs_dir_directive(
    cmd: *mut ap::cmd_parms,
    dir_config: *mut c_void,
    name: *const c_char,
    arg: *const c_char,
) -> *const c_char {
    directive(cmd, name, arg, |name, arg| {
        // SAFETY: Apache passes the DirConfig this module created for the section.
        let config = unsafe { dir_config.cast::<DirConfig>().as_mut() }
            .ok_or_else(|| format!("{name}: configuration unavailable"))?;
        config.set(name, arg)?;
        if name == "MemSessionCookieName" {
            note_cookie_name(cmd, config.cookie_name());
        }
        // Once per location per start: httpd reads its configuration twice at start-up, and
        // the first read (the dry run) warns nobody that a second would not — except under
        // `httpd -t`, whose only read it is. Each line names its location, so several lines
        // are several places to fix, not one repeated.
        // SAFETY: plain queries of httpd's state.
        let real_pass =
            unsafe { ap::memsession_c_is_dry_run() == 0 || ap::memsession_c_is_config_test() != 0 };
        if name == "MemSessionCookieSecure" && arg.eq_ignore_ascii_case("off") && real_pass {
            // SAFETY: cmd was checked live by `directive`; its path is NULL or a
            // NUL-terminated string in the configuration pool.
            let (server, path) = unsafe { ((*cmd).server, pool::text((*cmd).path)) };
            log::server(
                server,
                Level::Warning,
                format_args!(
                    "MemSessionCookieSecure Off in {}: session cookies will be sent over \
                     plain http, where anyone on the path can steal them; use it only for \
                     testing",
                    path.unwrap_or("the server's configuration")
                ),
            );
        }
        Ok(())
    })
}

/// Tells the server whose configuration is being read about a session cookie name, so its
/// backends get none of its session cookies (`MemSessionStripCookie`). Not from `.htaccess`:
/// that is read per request, in a child, where the server's configuration is shared and
/// read-only; a location's own name is stripped there anyway.
fn note_cookie_name(cmd: *mut ap::cmd_parms, name: &str) {
    // SAFETY: `directive` checked cmd live; .htaccess files are parsed with one pool as both
    // the command's pool and its temporary pool (httpd's own NOT_IN_HTACCESS test).
    let (server, in_htaccess) = unsafe { ((*cmd).server, (*cmd).pool == (*cmd).temp_pool) };
    if in_htaccess {
        return;
    }
    // SAFETY: the shim returns this server's ServerState from its module config, or NULL;
    // configuration is read by one thread.
    let state = unsafe {
        ap::memsession_c_server_config(server)
            .cast::<ServerState>()
            .as_mut()
    };
    if let Some(state) = state {
        state.config.note_cookie_name(name);
    }
}

#[no_mangle]
pub extern "C" fn memsession_rs_server_directive(
    cmd: *mut ap::cmd_parms,
    server_config: *mut c_void,
    name: *const c_char,
    arg: *const c_char,
) -> *const c_char {
    directive(cmd, name, arg, |name, arg| {
        // SAFETY: the shim passes this server's ServerState from its module config.
        let state = unsafe { server_config.cast::<ServerState>().as_mut() }
            .ok_or_else(|| format!("{name}: configuration unavailable"))?;
        state.config.set(name, arg)
    })
}

#[no_mangle]
pub extern "C" fn memsession_rs_server_directive2(
    cmd: *mut ap::cmd_parms,
    server_config: *mut c_void,
    name: *const c_char,
    first: *const c_char,
    second: *const c_char,
) -> *const c_char {
    directive(cmd, name, first, |name, first| {
        // SAFETY: `second` is NULL or a NUL-terminated word from Apache's config parser.
        let second = match unsafe { (!second.is_null()).then(|| pool::text(second)) } {
            None => None,
            Some(Some(second)) => Some(second),
            Some(None) => return Err(format!("{name}: an argument is not valid UTF-8")),
        };
        // SAFETY: the shim passes this server's ServerState from its module config.
        let state = unsafe { server_config.cast::<ServerState>().as_mut() }
            .ok_or_else(|| format!("{name}: configuration unavailable"))?;
        let words: Vec<&str> = std::iter::once(first).chain(second).collect();
        state.config.set_words(name, &words)
    })
}
