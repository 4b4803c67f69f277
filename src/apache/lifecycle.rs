//! Start-up and child life: validate in the real start-up pass, connect only in children,
//! close child connections when the child exits. Nothing here spawns a thread.
use std::ffi::{c_int, c_void};
use std::sync::OnceLock;
use std::time::Duration;

use super::bindings as ap;
use super::boundary;
use super::log::{self, Level};
use super::pool::Pool;
use super::server_state::ServerState;
use super::status;
use crate::store::client::StoreClient;

/// Every server_rec (main server first, then virtual hosts) with its state.
fn each_server(
    first: *mut ap::server_rec,
    mut visit: impl FnMut(*mut ap::server_rec, &ServerState),
) {
    let mut server = first;
    while !server.is_null() {
        // SAFETY: Apache's server list is live during post_config and child_init, and each
        // module config slot holds the ServerState this module created.
        unsafe {
            if let Some(state) = ap::memsession_c_server_config(server)
                .cast::<ServerState>()
                .as_ref()
            {
                visit(server, state);
            }
            server = (*server).next;
        }
    }
}

#[no_mangle]
pub extern "C" fn memsession_rs_post_config(
    _pconf: *mut ap::apr_pool_t,
    _plog: *mut ap::apr_pool_t,
    _ptemp: *mut ap::apr_pool_t,
    server: *mut ap::server_rec,
) -> c_int {
    let report = |text: &str| {
        log::server(
            server,
            Level::Error,
            format_args!("mod_auth_memsession: panic in post_config: {text}"),
        )
    };
    boundary::guard(status::INTERNAL_SERVER_ERROR, report, || {
        let mut refused = false;
        each_server(server, |s, state| {
            let checked = state
                .config
                .secrets()
                .map(|_| ())
                .and_then(|()| state.config.transport().map(|_| ()));
            if let Err(message) = checked {
                refused = true;
                log::server(
                    s,
                    Level::Error,
                    format_args!("mod_auth_memsession: {message}"),
                );
            }
        });
        if refused {
            return status::INTERNAL_SERVER_ERROR;
        }
        // SAFETY: a plain query of httpd's state.
        if unsafe { ap::memsession_c_is_dry_run() } != 0 {
            return status::OK;
        }
        super::shared_metrics::set_up(server);
        track_forks();
        let mut checked: Vec<String> = Vec::new();
        let mut warned_single: Vec<String> = Vec::new();
        each_server(server, |s, state| {
            let servers = state.config.servers();
            let label = servers
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(" ");
            if state.config.replicas_without_a_second_server() && !warned_single.contains(&label) {
                warned_single.push(label.clone());
                log::server(
                    s,
                    Level::Warning,
                    format_args!(
                        "MemSessionReplicas 1 with a single server ({label}): there is no second \
                         server to keep a copy on, so each session is stored once; list two or \
                         more in MemSessionServers"
                    ),
                );
            }
            if !state.config.servers_configured() {
                return;
            }
            if checked.contains(&label) {
                return;
            }
            checked.push(label);
            // Children inherit these: no request ever waits on the system resolver.
            for (address, error) in crate::store::connection::resolve_ahead(&servers) {
                log::server(
                    s,
                    Level::Warning,
                    format_args!(
                        "MemSessionServers: cannot resolve {address} at start-up ({error}); \
                         each process tries once more when it first needs it"
                    ),
                );
            }
            // A throwaway client: its connection is closed before any child forks.
            let probe = StoreClient::new(
                servers.clone(),
                state.config.timeout().max(Duration::from_millis(500)),
            )
            .with_transport(state.config.transport().unwrap_or_default());
            for (index, address) in servers.iter().enumerate() {
                match probe.version(index) {
                    Ok(version) => log::server(
                        s,
                        Level::Info,
                        format_args!("MemSessionServers: {address} answers (memcached {version})"),
                    ),
                    Err(error) => log::server(
                        s,
                        Level::Warning,
                        format_args!(
                            "MemSessionServers: {address} is unreachable at start-up ({error}); \
                             logins answer 503 and session requests get the unauthenticated \
                             response until it is"
                        ),
                    ),
                }
            }
            probe.close_idle();
        });
        status::OK
    })
}

extern "C" {
    fn pthread_atfork(
        prepare: Option<unsafe extern "C" fn()>,
        parent: Option<unsafe extern "C" fn()>,
        child: Option<unsafe extern "C" fn()>,
    ) -> c_int;
}

/// Lets the store remember this process's pid instead of asking the kernel per request:
/// every child forgets it right after fork. Registered once per httpd lifetime — the module
/// stays mapped across restarts (linked with `-z nodelete`), so the handler stays valid.
fn track_forks() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        unsafe extern "C" fn in_child() {
            crate::store::process::forked();
        }
        // SAFETY: registers a handler that only does an atomic store.
        if unsafe { pthread_atfork(None, None, Some(in_child)) } == 0 {
            crate::store::process::forks_are_tracked();
        }
    });
}

#[no_mangle]
pub extern "C" fn memsession_rs_child_init(
    pchild: *mut ap::apr_pool_t,
    server: *mut ap::server_rec,
) {
    boundary::guard(
        (),
        |_| {},
        || {
            // SAFETY: Apache passes the child's pool, live until the child exits.
            let Some(pool) = (unsafe { Pool::from_raw(pchild) }) else {
                return;
            };
            unsafe extern "C" fn close_connections(data: *mut c_void) -> ap::apr_status_t {
                let server = data.cast::<ap::server_rec>();
                let _ = std::panic::catch_unwind(|| {
                    each_server(server, |_, state| state.close_connections())
                });
                0
            }
            // SAFETY: the server list outlives the child pool; the cleanup runs once at exit.
            unsafe {
                ap::apr_pool_cleanup_register(
                    pool.as_ptr(),
                    server.cast(),
                    Some(close_connections),
                    Some(ap::apr_pool_cleanup_null),
                );
            }
        },
    )
}
