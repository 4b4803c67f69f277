//! The store client shared by every request thread of a process.
//!
//! Made in the parent before fork, it opens nothing. Each process opens its own connections on
//! first use and keeps them in a bounded idle stack per server; a connection remembers the pid
//! that opened it, and one inherited across a fork is closed, never used. A connection goes back
//! to the stack only after a fully successful exchange: after any error its protocol state is
//! unknown and it is dropped.
//!
//! Every operation is bounded by one deadline (`timeout` from its start) covering connect,
//! writes and reads. A circuit breaker per server turns repeated failures into an immediate
//! [`StoreError::CircuitOpen`] (see [`super::breaker`]).
//!
//! Keys are routed by their hash ([`super::routing`]), or sent to a server named by its index
//! (the `_on` operations): the session layer keeps copies of the revocation epochs on every
//! server and reads them on the server its record lives on. Shared round trips
//! ([`super::shared_gets`]) are per server, so a dead server fails only the requests that
//! asked it, and only its own breaker counts the failure.
//!
//! No threads are started, ever: this runs inside httpd children.
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::address::ServerAddress;
use super::breaker::{Breaker, BreakerState, Permit};
use super::connection::{Connection, UnixConnect};
use super::meta::{self, CounterStep, CounterValue, SetMode, Status, MAX_VALUE_LEN};
use super::observer;
use super::process;
use super::routing::{replica_for_key, server_for_key};
use super::shared_gets::SharedGets;
use super::transport::Transport;

/// Idle connections kept per server and process; more are closed when handed back.
pub const MAX_IDLE_PER_SERVER: usize = 64;
/// Keys pipelined in one round trip (more are sent in further round trips). All the requests
/// are written before any reply is read, so they must fit in the socket buffers: a pipeline
/// larger than those could stall, the server blocked writing replies not yet read.
pub const MAX_PIPELINE: usize = 32;
/// A `stats` answer longer than this is not memcached.
const MAX_STATS: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// The server did not answer within the operation's timeout.
    Timeout,
    /// Could not connect (refused, no such socket, unresolvable name).
    Connect(String),
    /// The connection failed mid-exchange (reset, closed by the server).
    Io(String),
    /// The server's reply was malformed, oversized or out of step.
    Protocol(String),
    /// The server failed repeatedly and is not being asked until its breaker lets a probe by.
    CircuitOpen,
    /// Empty, longer than 250 bytes, or containing whitespace or control characters.
    InvalidKey,
    /// The server answered with an error (`SERVER_ERROR`, `CLIENT_ERROR`, `ERROR`).
    ServerError(String),
    /// A request this client refuses to send: an expiry that is not an absolute time, a value
    /// over 1 MiB, a server index out of range, no server configured.
    InvalidArgument(String),
}

impl StoreError {
    pub fn is_timeout(&self) -> bool {
        matches!(self, StoreError::Timeout)
    }

    /// Whether this says the server (or the path to it) is unhealthy; these are what the
    /// circuit breaker counts. A server that answers with an error is alive.
    pub fn is_server_failure(&self) -> bool {
        matches!(
            self,
            StoreError::Timeout
                | StoreError::Connect(_)
                | StoreError::Io(_)
                | StoreError::Protocol(_)
        )
    }

    fn at(self, address: &ServerAddress) -> StoreError {
        match self {
            StoreError::Io(m) => StoreError::Io(format!("{address}: {m}")),
            StoreError::Protocol(m) => StoreError::Protocol(format!("{address}: {m}")),
            StoreError::ServerError(m) => StoreError::ServerError(format!("{address}: {m}")),
            other => other,
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::Timeout => f.write_str("memcached did not answer in time"),
            StoreError::Connect(m) => write!(f, "cannot connect to memcached: {m}"),
            StoreError::Io(m) => write!(f, "memcached connection failed: {m}"),
            StoreError::Protocol(m) => write!(f, "bad reply from memcached: {m}"),
            StoreError::CircuitOpen => {
                f.write_str("memcached is marked down after repeated failures")
            }
            StoreError::InvalidKey => f.write_str("invalid memcached key"),
            StoreError::ServerError(m) => write!(f, "memcached error: {m}"),
            StoreError::InvalidArgument(m) => write!(f, "invalid store request: {m}"),
        }
    }
}

impl std::error::Error for StoreError {}

struct Node {
    idle: Mutex<Vec<Connection>>,
    breaker: Breaker,
    /// Round trips to this server shared by concurrent request threads: one queue per server,
    /// so a batch never waits on, or fails with, another server.
    shared_gets: SharedGets,
}

pub struct StoreClient {
    servers: Vec<ServerAddress>,
    nodes: Vec<Node>,
    timeout: Duration,
    unix_connect: Option<UnixConnect>,
    transport: Transport,
}

impl fmt::Debug for StoreClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreClient")
            .field("servers", &self.servers)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Requests written to one server of a multi-get, replies not yet read.
struct Flight<'a> {
    server: usize,
    permit: Permit<'a>,
    conn: Connection,
    reused: bool,
}

impl StoreClient {
    /// Opens nothing: connections are made on first use, by the process that uses them.
    pub fn new(servers: Vec<ServerAddress>, timeout: Duration) -> StoreClient {
        let base = Instant::now();
        let nodes = servers
            .iter()
            .map(|_| Node {
                idle: Mutex::new(Vec::new()),
                breaker: Breaker::new(base),
                shared_gets: SharedGets::default(),
            })
            .collect();
        StoreClient {
            servers,
            nodes,
            timeout,
            unix_connect: None,
            transport: Transport::default(),
        }
    }

    /// TLS and authentication for the TCP servers (`MemSessionTLS*`, `MemSessionAuthFile`).
    pub fn with_transport(mut self, transport: Transport) -> StoreClient {
        self.transport = transport;
        self
    }

    /// Connects UNIX sockets with `connect` instead of the built-in bounded connector: a seam
    /// for tests that need to control connecting. `connect` must honour the time it is given.
    pub fn with_unix_connect(mut self, connect: UnixConnect) -> StoreClient {
        self.unix_connect = Some(connect);
        self
    }

    pub fn servers(&self) -> &[ServerAddress] {
        &self.servers
    }

    /// The server holding `key` (see [`super::routing`] for the contract).
    pub fn server_index(&self, key: &str) -> usize {
        server_for_key(key, self.servers.len())
    }

    /// The server holding the replica of `key` (`MemSessionReplicas 1`), never the one
    /// [`StoreClient::server_index`] names; `None` with a single server. Whether any server
    /// is up plays no part (see [`super::routing`]).
    pub fn replica_index(&self, key: &str) -> Option<usize> {
        replica_for_key(key, self.servers.len())
    }

    /// Values in the order of `keys`, `None` for a miss. One round trip per
    /// [`MAX_PIPELINE`] keys, whatever the number of servers involved: all requests are
    /// written to every server concerned before any reply is read. Any failure fails the
    /// whole call (a miss is never made up from an error).
    pub fn get_multi(&self, keys: &[&str]) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        check_keys(keys)?;
        self.get_checked(keys, None, self.deadline())
    }

    /// Every key of `keys` from one server, `server`, whatever their hash: one round trip per
    /// [`MAX_PIPELINE`] keys. Only that server's breaker is asked and told.
    pub fn get_multi_on(
        &self,
        server: usize,
        keys: &[&str],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        check_keys(keys)?;
        self.node(server)?;
        self.get_checked(keys, Some(server), self.deadline())
    }

    /// [`StoreClient::get_multi_on`] in a round trip to `server` shared with this process's
    /// other threads asking that server at the same moment (see [`super::shared_gets`]): the
    /// request hot path. Keys are checked before queueing, so a bad one fails only its own
    /// caller; a server that fails fails only the callers that asked it.
    pub fn get_multi_shared_on(
        &self,
        server: usize,
        keys: &[&str],
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        check_keys(keys)?;
        let node = self.node(server)?;
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        node.shared_gets
            .get_multi(keys, self.timeout, |batch, deadline| {
                self.get_checked(batch, Some(server), deadline)
            })
    }

    /// [`StoreClient::get_multi`] (`on: None`, keys routed by their hash) or
    /// [`StoreClient::get_multi_on`] for keys already checked.
    fn get_checked(
        &self,
        keys: &[&str],
        on: Option<usize>,
        deadline: Instant,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        self.node(0)?;
        let started = observer::start();
        let result = self.get_all(keys, on, deadline);
        observer::finish(started, &result);
        result
    }

    fn get_all(
        &self,
        keys: &[&str],
        on: Option<usize>,
        deadline: Instant,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        let mut values = vec![None; keys.len()];
        for (keys, values) in keys
            .chunks(MAX_PIPELINE)
            .zip(values.chunks_mut(MAX_PIPELINE))
        {
            self.get_batch(keys, values, deadline, on)?;
        }
        Ok(values)
    }

    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_multi(&[key])?.pop().flatten())
    }

    /// `key` as `server` holds it, whatever its hash.
    pub fn get_on(&self, server: usize, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_multi_on(server, &[key])?.pop().flatten())
    }

    /// `key` as `server` holds it, with the CAS token a [`StoreClient::set_permanent_cas_on`]
    /// of the same item needs.
    pub fn get_cas_on(
        &self,
        server: usize,
        key: &str,
    ) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        meta::validate_key(key)?;
        let started = observer::start();
        let result = self.call(server, |conn, deadline| {
            meta::encode_get_cas(conn.start(), key);
            conn.send(deadline)?;
            let reply = conn.read_reply(deadline)?;
            match reply.status {
                Status::Value => match meta::cas_token(reply.flags) {
                    Some(cas) => Ok(Some((reply.data.to_vec(), cas))),
                    None => Err(StoreError::Protocol("mg ... c without a CAS token".into())),
                },
                Status::Miss => Ok(None),
                other => Err(unexpected("mg", other)),
            }
        });
        observer::finish(started, &result);
        result
    }

    /// Whether `server`'s breaker refuses requests right now (open, no probe due): asking it
    /// would fail at once.
    pub fn is_refusing(&self, server: usize) -> bool {
        self.breaker_state(server) == Some(BreakerState::Open)
    }

    /// Stores only if the key is absent: `Ok(false)` if it exists. `exptime` is an absolute
    /// unix time; 0 and other values memcached would read as "never" or relative are refused.
    pub fn add(&self, key: &str, value: &[u8], exptime: u64) -> Result<bool, StoreError> {
        self.add_on(self.server_index(key), key, value, exptime)
    }

    /// [`StoreClient::add`] on `server`, whatever the key's hash.
    pub fn add_on(
        &self,
        server: usize,
        key: &str,
        value: &[u8],
        exptime: u64,
    ) -> Result<bool, StoreError> {
        let exptime = check_write(key, value, exptime)?;
        self.store(server, key, value, exptime, SetMode::Add, None)
    }

    /// Stores unconditionally. `exptime` as for [`StoreClient::add`].
    pub fn set(&self, key: &str, value: &[u8], exptime: u64) -> Result<(), StoreError> {
        let exptime = check_write(key, value, exptime)?;
        self.store_unconditionally(self.server_index(key), key, value, exptime)
    }

    /// Stores on `server` only if the key is present there: `Ok(false)` if it is not
    /// (deleted or evicted since it was read). `exptime` as for [`StoreClient::add`].
    pub fn replace_on(
        &self,
        server: usize,
        key: &str,
        value: &[u8],
        exptime: u64,
    ) -> Result<bool, StoreError> {
        let exptime = check_write(key, value, exptime)?;
        self.store(server, key, value, exptime, SetMode::Replace, None)
    }

    /// `add` on `server` for an item that must never expire (revocation epochs: they must
    /// outlive every session that refers to them). Explicit, so session writes can never be
    /// immortal.
    pub fn add_permanent_on(
        &self,
        server: usize,
        key: &str,
        value: &[u8],
    ) -> Result<bool, StoreError> {
        check_value(key, value)?;
        self.store(server, key, value, NEVER_EXPIRES, SetMode::Add, None)
    }

    /// `set` on `server` for an item that must never expire, as for
    /// [`StoreClient::add_permanent_on`].
    pub fn set_permanent_on(
        &self,
        server: usize,
        key: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        check_value(key, value)?;
        self.store_unconditionally(server, key, value, NEVER_EXPIRES)
    }

    /// Compare-and-swap of a permanent item on `server`: stored only if the item still carries
    /// `cas` (from [`StoreClient::get_cas_on`]). `Ok(false)`: it changed or vanished since.
    pub fn set_permanent_cas_on(
        &self,
        server: usize,
        key: &str,
        value: &[u8],
        cas: u64,
    ) -> Result<bool, StoreError> {
        check_value(key, value)?;
        self.store(server, key, value, NEVER_EXPIRES, SetMode::Set, Some(cas))
    }

    fn store_unconditionally(
        &self,
        server: usize,
        key: &str,
        value: &[u8],
        token: u64,
    ) -> Result<(), StoreError> {
        if self.store(server, key, value, token, SetMode::Set, None)? {
            Ok(())
        } else {
            // The server is fine but declined (e.g. a proxy or a full slab class).
            Err(StoreError::ServerError("NS (not stored)".to_string()))
        }
    }

    fn store(
        &self,
        server: usize,
        key: &str,
        value: &[u8],
        token: u64,
        mode: SetMode,
        cas: Option<u64>,
    ) -> Result<bool, StoreError> {
        let started = observer::start();
        let result = self.call(server, |conn, deadline| {
            meta::encode_set(conn.start(), key, value, token, mode, cas);
            conn.send(deadline)?;
            let reply = conn.read_reply(deadline)?;
            match reply.status {
                Status::Done => Ok(true),
                Status::NotStored => Ok(false),
                Status::Exists | Status::NotFound if cas.is_some() => Ok(false),
                other => Err(unexpected("ms", other)),
            }
        });
        observer::finish(started, &result);
        result
    }

    /// `Ok(false)` if there was nothing to delete.
    pub fn delete(&self, key: &str) -> Result<bool, StoreError> {
        self.delete_on(self.server_index(key), key)
    }

    /// [`StoreClient::delete`] on `server`, whatever the key's hash.
    pub fn delete_on(&self, server: usize, key: &str) -> Result<bool, StoreError> {
        meta::validate_key(key)?;
        let started = observer::start();
        let result = self.call(server, |conn, deadline| {
            meta::encode_delete(conn.start(), key);
            conn.send(deadline)?;
            let reply = conn.read_reply(deadline)?;
            match reply.status {
                Status::Done => Ok(true),
                Status::NotFound => Ok(false),
                other => Err(unexpected("md", other)),
            }
        });
        observer::finish(started, &result);
        result
    }

    /// One step of a counter (`ma`): its value and remaining life after the step. `Ok(None)`
    /// for a step down on a missing counter. A step up creates a missing counter holding 1,
    /// living `ttl` seconds; no step changes the life of an existing one.
    pub fn counter(
        &self,
        key: &str,
        step: CounterStep,
    ) -> Result<Option<CounterValue>, StoreError> {
        meta::validate_key(key)?;
        let started = observer::start();
        let result = self.call(self.server_index(key), |conn, deadline| {
            meta::encode_counter(conn.start(), key, step);
            conn.send(deadline)?;
            let reply = conn.read_reply(deadline)?;
            match reply.status {
                Status::Value => meta::parse_counter(reply.flags, reply.data).map(Some),
                Status::NotFound => Ok(None),
                other => Err(unexpected("ma", other)),
            }
        });
        observer::finish(started, &result);
        result
    }

    /// The server's version string (`version` command), for health checks.
    pub fn version(&self, server: usize) -> Result<String, StoreError> {
        self.call(server, |conn, deadline| {
            conn.start().extend_from_slice(b"version\r\n");
            conn.send(deadline)?;
            let line = conn.read_line(deadline)?;
            match line.strip_prefix(b"VERSION ") {
                Some(version) if !version.is_empty() => Ok(meta::printable(version, 64)),
                _ => Err(StoreError::Protocol(format!(
                    "unexpected reply to version: \"{}\"",
                    meta::printable(line, 64)
                ))),
            }
        })
    }

    /// The server's `stats` as (name, value) pairs, in the server's order.
    pub fn stats(&self, server: usize) -> Result<Vec<(String, String)>, StoreError> {
        self.call(server, |conn, deadline| {
            conn.start().extend_from_slice(b"stats\r\n");
            conn.send(deadline)?;
            let mut stats = Vec::new();
            loop {
                let line = conn.read_line(deadline)?;
                if line == b"END" {
                    return Ok(stats);
                }
                let pair = line.strip_prefix(b"STAT ").and_then(|stat| {
                    let space = stat.iter().position(|&b| b == b' ')?;
                    Some((
                        meta::printable(&stat[..space], 64),
                        meta::printable(&stat[space + 1..], 256),
                    ))
                });
                match pair {
                    Some(pair) if stats.len() < MAX_STATS => stats.push(pair),
                    _ => {
                        return Err(StoreError::Protocol(format!(
                            "unexpected line in stats: \"{}\"",
                            meta::printable(line, 64)
                        )))
                    }
                }
            }
        })
    }

    /// Closes the pooled sockets as the process ends. prefork runs child-pool cleanups from
    /// its SIGTERM handler, possibly on top of an interrupted `malloc` or of a frame holding
    /// a pool lock: so this only closes descriptors (`close` is async-signal-safe), frees no
    /// memory, and skips a pool someone holds. The kernel reclaims the rest at exit.
    pub fn close_idle_at_exit(&self) {
        for node in &self.nodes {
            if let Ok(mut idle) = node.idle.try_lock() {
                for conn in idle.drain(..) {
                    conn.close_keeping_memory();
                }
            }
        }
    }

    /// Closes every pooled connection of this process (the parent's start-up probe), and any
    /// inherited from a parent.
    pub fn close_idle(&self) {
        for node in &self.nodes {
            let idle = std::mem::take(&mut *lock(&node.idle));
            drop(idle);
        }
    }

    /// The breaker of a server, for metrics. `None` if there is no such server.
    pub fn breaker_state(&self, server: usize) -> Option<BreakerState> {
        Some(self.nodes.get(server)?.breaker.state(Instant::now()))
    }

    /// Pooled connections of a server (any process's: inherited ones are only weeded out when
    /// met), for metrics and tests.
    pub fn idle_connections(&self, server: usize) -> usize {
        self.nodes
            .get(server)
            .map_or(0, |node| lock(&node.idle).len())
    }

    /// When the operation starting now must be over.
    fn deadline(&self) -> Instant {
        let now = Instant::now();
        // An absurd timeout must not panic on overflow; a day is "no bound" in practice.
        now.checked_add(self.timeout)
            .unwrap_or_else(|| now + Duration::from_secs(86_400))
    }

    fn node(&self, server: usize) -> Result<&Node, StoreError> {
        self.nodes.get(server).ok_or_else(|| {
            StoreError::InvalidArgument(match self.nodes.len() {
                0 => "no memcached server configured".to_string(),
                n => format!("no memcached server #{server} (there are {n})"),
            })
        })
    }

    /// One exchange with one server, under its breaker.
    fn call<T>(
        &self,
        server: usize,
        mut exchange: impl FnMut(&mut Connection, Instant) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let deadline = self.deadline();
        let node = self.node(server)?;
        let permit = node
            .breaker
            .try_acquire(Instant::now())
            .ok_or(StoreError::CircuitOpen)?;
        let result = self.call_on(server, deadline, &mut exchange);
        self.conclude(server, permit, result)
    }

    fn call_on<T>(
        &self,
        server: usize,
        deadline: Instant,
        exchange: &mut impl FnMut(&mut Connection, Instant) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let (mut conn, reused) = self.open(server, deadline)?;
        let mut result =
            exchange(&mut conn, deadline).and_then(|value| conn.finish().map(|()| value));
        if let Err(error) = &result {
            if reused && is_stale(error) && !conn.received_any() {
                conn = self.connect(server, deadline)?;
                result =
                    exchange(&mut conn, deadline).and_then(|value| conn.finish().map(|()| value));
            }
        }
        let value = result?;
        self.checkin(server, conn);
        Ok(value)
    }

    fn get_batch(
        &self,
        keys: &[&str],
        values: &mut [Option<Vec<u8>>],
        deadline: Instant,
        on: Option<usize>,
    ) -> Result<(), StoreError> {
        let mut route = [0usize; MAX_PIPELINE];
        for (server, key) in route.iter_mut().zip(keys) {
            *server = on.unwrap_or_else(|| self.server_index(key));
        }
        let route = &route[..keys.len()];

        // Admission first, for every server involved: if one is refused, nothing is sent.
        let now = Instant::now();
        let mut admitted: [Option<(usize, Permit<'_>)>; MAX_PIPELINE] =
            std::array::from_fn(|_| None);
        let mut count = 0;
        for &server in route {
            if admitted[..count]
                .iter()
                .flatten()
                .any(|(s, _)| *s == server)
            {
                continue;
            }
            let permit = self.nodes[server]
                .breaker
                .try_acquire(now)
                .ok_or(StoreError::CircuitOpen)?;
            admitted[count] = Some((server, permit));
            count += 1;
        }

        // Connections to every server next, so that a server that cannot be reached (the
        // common failure) costs the others nothing: no request is sent anywhere.
        let mut flights: [Option<Flight<'_>>; MAX_PIPELINE] = std::array::from_fn(|_| None);
        for (slot, admission) in flights.iter_mut().zip(admitted.iter_mut().take(count)) {
            let Some((server, permit)) = admission.take() else {
                continue;
            };
            match self.open(server, deadline) {
                Ok((conn, reused)) => {
                    *slot = Some(Flight {
                        server,
                        permit,
                        conn,
                        reused,
                    })
                }
                // Unsettled permits of the other servers are released without a verdict.
                Err(error) => return self.conclude(server, permit, Err(error)),
            }
        }
        // Every request goes out before any reply is awaited: one round trip for the farm.
        for slot in flights.iter_mut().take(count) {
            let Some(flight) = slot.as_mut() else {
                continue;
            };
            if let Err(error) = self.send_gets(flight, keys, route, deadline) {
                let Some(Flight { server, permit, .. }) = slot.take() else {
                    continue;
                };
                return self.conclude(server, permit, Err(error));
            }
        }
        for flight in flights.iter_mut().take(count).filter_map(Option::take) {
            let Flight {
                server,
                permit,
                conn,
                reused,
            } = flight;
            let result = self.recv_gets(server, conn, reused, keys, route, values, deadline);
            self.conclude(server, permit, result)?;
        }
        Ok(())
    }

    fn send_gets(
        &self,
        flight: &mut Flight<'_>,
        keys: &[&str],
        route: &[usize],
        deadline: Instant,
    ) -> Result<(), StoreError> {
        encode_gets(&mut flight.conn, flight.server, keys, route);
        match flight.conn.send(deadline) {
            Ok(()) => Ok(()),
            Err(error) if flight.reused && is_stale(&error) => {
                flight.conn = self.connect(flight.server, deadline)?;
                flight.reused = false;
                encode_gets(&mut flight.conn, flight.server, keys, route);
                flight.conn.send(deadline)
            }
            Err(error) => Err(error),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn recv_gets(
        &self,
        server: usize,
        mut conn: Connection,
        reused: bool,
        keys: &[&str],
        route: &[usize],
        values: &mut [Option<Vec<u8>>],
        deadline: Instant,
    ) -> Result<(), StoreError> {
        let mut result = read_gets(&mut conn, server, route, values, deadline);
        if let Err(error) = &result {
            if reused && is_stale(error) && !conn.received_any() {
                conn = self.connect(server, deadline)?;
                encode_gets(&mut conn, server, keys, route);
                conn.send(deadline)?;
                result = read_gets(&mut conn, server, route, values, deadline);
            }
        }
        result?;
        self.checkin(server, conn);
        Ok(())
    }

    /// Settles the breaker with the outcome and names the server in the error.
    fn conclude<T>(
        &self,
        server: usize,
        permit: Permit<'_>,
        result: Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match result {
            Ok(value) => {
                permit.success();
                Ok(value)
            }
            Err(error) => {
                if error.is_server_failure() {
                    if permit.failure(Instant::now()) {
                        observer::breaker_opened(server);
                    }
                } else {
                    permit.success();
                }
                Err(error.at(&self.servers[server]))
            }
        }
    }

    /// A pooled connection of this process (`true`), or a new one (`false`).
    fn open(&self, server: usize, deadline: Instant) -> Result<(Connection, bool), StoreError> {
        match self.checkout(server) {
            Some(conn) => Ok((conn, true)),
            None => Ok((self.connect(server, deadline)?, false)),
        }
    }

    fn connect(&self, server: usize, deadline: Instant) -> Result<Connection, StoreError> {
        Connection::connect(
            &self.servers[server],
            deadline,
            self.unix_connect,
            &self.transport,
        )
    }

    fn checkout(&self, server: usize) -> Option<Connection> {
        let pid = process::id();
        let mut idle = lock(&self.nodes[server].idle);
        // An inherited connection is dropped here: that closes only this process's copy of the
        // descriptor, and nothing is ever written to it.
        while let Some(conn) = idle.pop() {
            if conn.pid() == pid {
                return Some(conn);
            }
        }
        None
    }

    fn checkin(&self, server: usize, conn: Connection) {
        let mut idle = lock(&self.nodes[server].idle);
        if idle.len() < MAX_IDLE_PER_SERVER {
            idle.push(conn);
        }
    }
}

/// A poisoned pool is still a valid stack of connections: nothing panics while holding it,
/// and if something did, the worst case is a connection that is dropped later.
fn lock(idle: &Mutex<Vec<Connection>>) -> MutexGuard<'_, Vec<Connection>> {
    idle.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A broken connection, as opposed to a slow or confused server. On a pooled connection with
/// no reply byte received yet, that is the server having closed it while idle (restart, idle
/// timeout): worth one retry on a fresh connection within the same deadline.
fn is_stale(error: &StoreError) -> bool {
    matches!(error, StoreError::Io(_))
}

fn check_write(key: &str, value: &[u8], exptime: u64) -> Result<u64, StoreError> {
    check_value(key, value)?;
    meta::exptime_token(exptime)
}

/// memcached's own spelling of "no expiry".
const NEVER_EXPIRES: u64 = 0;

fn check_keys(keys: &[&str]) -> Result<(), StoreError> {
    keys.iter().try_for_each(|key| meta::validate_key(key))
}

fn check_value(key: &str, value: &[u8]) -> Result<(), StoreError> {
    meta::validate_key(key)?;
    if value.len() > MAX_VALUE_LEN {
        return Err(StoreError::InvalidArgument(format!(
            "value of {} bytes exceeds the {MAX_VALUE_LEN}-byte cap",
            value.len()
        )));
    }
    Ok(())
}

fn encode_gets(conn: &mut Connection, server: usize, keys: &[&str], route: &[usize]) {
    let buf = conn.start();
    for (index, (key, _)) in keys
        .iter()
        .zip(route)
        .enumerate()
        .filter(|(_, (_, &s))| s == server)
    {
        meta::encode_get(buf, key, index as u32);
    }
}

fn read_gets(
    conn: &mut Connection,
    server: usize,
    route: &[usize],
    values: &mut [Option<Vec<u8>>],
    deadline: Instant,
) -> Result<(), StoreError> {
    for (index, (value, _)) in values
        .iter_mut()
        .zip(route)
        .enumerate()
        .filter(|(_, (_, &s))| s == server)
    {
        let reply = conn.read_reply(deadline)?;
        if !meta::opaque_matches(reply.flags, index as u32) {
            return Err(StoreError::Protocol(format!(
                "reply for request {} arrived where {index} was expected",
                meta::printable(meta::opaque(reply.flags).unwrap_or_default(), 16)
            )));
        }
        *value = match reply.status {
            Status::Value => Some(reply.data.to_vec()),
            Status::Miss => None,
            other => return Err(unexpected("mg", other)),
        };
    }
    conn.finish()
}

fn unexpected(command: &str, status: Status) -> StoreError {
    StoreError::Protocol(format!("unexpected {status:?} reply to {command}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader, Read, Write};
    use std::os::unix::net::{UnixListener, UnixStream};
    use std::path::PathBuf;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn the_client_is_shared_across_threads() {
        assert_send_sync::<StoreClient>();
        assert_send_sync::<StoreError>();
    }

    #[test]
    fn new_opens_nothing() {
        let client = StoreClient::new(
            vec![
                ServerAddress::Unix("/nonexistent/a.sock".into()),
                ServerAddress::parse("127.0.0.1:1").unwrap(),
            ],
            Duration::from_millis(100),
        );
        assert_eq!(client.idle_connections(0) + client.idle_connections(1), 0);
        assert_eq!(client.breaker_state(0), Some(BreakerState::Closed));
        assert_eq!(client.breaker_state(2), None);
    }

    #[test]
    fn a_replica_stays_where_it_is_while_servers_fail() {
        // Three servers nobody answers on: every breaker opens, and every key keeps its home
        // and replica servers, nothing re-hashed onto a survivor.
        let client = StoreClient::new(
            (0..3)
                .map(|i| ServerAddress::Unix(format!("/nonexistent/{i}.sock").into()))
                .collect(),
            Duration::from_millis(50),
        );
        let keys: Vec<String> = (0..200).map(|i| format!("memsession:s:{i}")).collect();
        let before: Vec<(usize, Option<usize>)> = keys
            .iter()
            .map(|k| (client.server_index(k), client.replica_index(k)))
            .collect();
        for server in 0..3 {
            for _ in 0..super::super::breaker::FAILURE_THRESHOLD {
                assert!(client.get_on(server, "k").is_err());
            }
            assert!(client.is_refusing(server), "server {server}");
            let now: Vec<(usize, Option<usize>)> = keys
                .iter()
                .map(|k| (client.server_index(k), client.replica_index(k)))
                .collect();
            assert_eq!(now, before, "with servers 0..={server} refusing");
        }
        assert!(before.iter().all(|(home, replica)| Some(*home) != *replica));
        let single = StoreClient::new(
            vec![ServerAddress::Unix("/nonexistent/a.sock".into())],
            Duration::from_millis(50),
        );
        assert_eq!(single.replica_index("k"), None);
    }

    #[test]
    fn bad_requests_never_reach_the_network() {
        // Every server unreachable: any attempt would be a Connect error.
        let client = StoreClient::new(
            vec![ServerAddress::Unix("/nonexistent/a.sock".into())],
            Duration::from_millis(100),
        );
        assert_eq!(client.get("a b"), Err(StoreError::InvalidKey));
        assert_eq!(client.get_multi(&["ok", ""]), Err(StoreError::InvalidKey));
        assert_eq!(client.delete(&"k".repeat(251)), Err(StoreError::InvalidKey));
        assert_eq!(
            client.set("k\r\nflush_all", b"v", 2_000_000_000),
            Err(StoreError::InvalidKey)
        );
        assert!(matches!(
            client.set("k", b"v", 0),
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(matches!(
            client.add("k", b"v", 3600),
            Err(StoreError::InvalidArgument(_))
        ));
        let big = vec![0u8; MAX_VALUE_LEN + 1];
        assert!(matches!(
            client.set("k", &big, 2_000_000_000),
            Err(StoreError::InvalidArgument(_))
        ));
        assert!(matches!(
            client.version(1),
            Err(StoreError::InvalidArgument(_))
        ));
        assert_eq!(client.get_multi(&[]), Ok(vec![]));
        assert_eq!(client.node(0).unwrap().breaker.consecutive_failures(), 0);

        let empty = StoreClient::new(vec![], Duration::from_millis(100));
        let err = empty.get("k").unwrap_err();
        assert!(
            matches!(&err, StoreError::InvalidArgument(m) if m.contains("no memcached server")),
            "{err}"
        );
    }

    /// A scripted server on a UNIX socket: each accepted connection is handed to `handler`
    /// on its own thread (test code only).
    struct FakeServer {
        path: PathBuf,
    }

    impl FakeServer {
        fn start(
            name: &str,
            handler: impl Fn(usize, UnixStream) + Send + Sync + 'static,
        ) -> FakeServer {
            let dir =
                std::env::temp_dir().join(format!("memsession-unit-{}-{name}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join("fake.sock");
            let listener = UnixListener::bind(&path).unwrap();
            let handler = std::sync::Arc::new(handler);
            std::thread::spawn(move || {
                for (n, stream) in listener.incoming().enumerate() {
                    let Ok(stream) = stream else { return };
                    let handler = handler.clone();
                    std::thread::spawn(move || handler(n, stream));
                }
            });
            FakeServer { path }
        }

        fn client(&self) -> StoreClient {
            StoreClient::new(
                vec![ServerAddress::Unix(self.path.clone())],
                Duration::from_millis(300),
            )
        }
    }

    impl Drop for FakeServer {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(self.path.parent().unwrap());
        }
    }

    /// Answers each `mg` line with a hit whose value is the key, echoing the opaque; closes
    /// the connection after `exchanges` writes from the client.
    fn echo_gets(mut stream: UnixStream, exchanges: usize) {
        let mut buf = vec![0u8; 64 * 1024];
        for _ in 0..exchanges {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            let mut reply = Vec::new();
            for line in String::from_utf8_lossy(&buf[..n]).split_terminator("\r\n") {
                let words: Vec<&str> = line.split(' ').collect();
                reply.extend(
                    format!("VA {} {}\r\n{}\r\n", words[1].len(), words[3], words[1]).bytes(),
                );
            }
            if stream.write_all(&reply).is_err() {
                return;
            }
        }
    }

    #[test]
    fn a_connection_closed_by_the_server_while_idle_is_retried_once() {
        // Each connection answers one request, then the server closes it.
        let server = FakeServer::start("stale", |_, stream| echo_gets(stream, 1));
        let client = server.client();
        assert_eq!(client.get("a").unwrap(), Some(b"a".to_vec()));
        assert_eq!(client.idle_connections(0), 1);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            client.get_multi(&["b", "c"]).unwrap(),
            vec![Some(b"b".to_vec()), Some(b"c".to_vec())]
        );
        assert_eq!(client.node(0).unwrap().breaker.consecutive_failures(), 0);
    }

    #[test]
    fn a_reply_out_of_step_is_a_protocol_error_and_the_connection_is_dropped() {
        let server = FakeServer::start("opaque", |_, stream| {
            answer_once(stream, b"VA 1 O1\r\nx\r\nVA 1 O0\r\ny\r\n")
        });
        let client = server.client();
        let err = client.get_multi(&["a", "b"]).unwrap_err();
        assert!(
            matches!(&err, StoreError::Protocol(m) if m.contains("expected") && m.contains("unix:")),
            "{err}"
        );
        assert_eq!(client.idle_connections(0), 0);
        assert_eq!(client.node(0).unwrap().breaker.consecutive_failures(), 1);
    }

    #[test]
    fn a_server_error_leaves_the_breaker_alone() {
        let server = FakeServer::start("srverr", |_, stream| {
            answer_once(stream, b"SERVER_ERROR out of memory storing object\r\n")
        });
        let client = server.client();
        let err = client.set("k", b"v", 2_000_000_000).unwrap_err();
        assert!(
            matches!(&err, StoreError::ServerError(m) if m.contains("out of memory")),
            "{err}"
        );
        assert!(!err.is_server_failure());
        assert_eq!(client.node(0).unwrap().breaker.consecutive_failures(), 0);
        assert_eq!(client.idle_connections(0), 0);
    }

    #[test]
    fn a_connection_from_another_process_is_closed_unused() {
        let server = FakeServer::start("pid", |_, stream| echo_gets(stream, 10));
        let client = server.client();
        let (ours, mut theirs) = UnixStream::pair().unwrap();
        let mut inherited = Connection::from_unix_stream(ours);
        inherited.set_pid(process::id().wrapping_add(1));
        lock(&client.nodes[0].idle).push(inherited);

        assert_eq!(client.get("k").unwrap(), Some(b"k".to_vec()));
        // The inherited socket saw no byte and was closed.
        let mut got = Vec::new();
        theirs
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        assert_eq!(theirs.read_to_end(&mut got).unwrap(), 0);
        assert_eq!(client.idle_connections(0), 1);
    }

    #[test]
    fn the_idle_pool_is_bounded_and_close_idle_empties_it() {
        let server = FakeServer::start("pool", |_, stream| echo_gets(stream, 1000));
        let client = server.client();
        for _ in 0..MAX_IDLE_PER_SERVER + 5 {
            let conn = client
                .connect(0, Instant::now() + Duration::from_secs(1))
                .unwrap();
            client.checkin(0, conn);
        }
        assert_eq!(client.idle_connections(0), MAX_IDLE_PER_SERVER);
        client.close_idle();
        assert_eq!(client.idle_connections(0), 0);
    }

    #[test]
    fn closing_at_exit_closes_the_sockets_and_skips_a_pool_someone_holds() {
        let server = FakeServer::start("exit", |_, stream| echo_gets(stream, 1000));
        let client = server.client();
        assert_eq!(client.get("k").unwrap(), Some(b"k".to_vec()));
        assert_eq!(client.idle_connections(0), 1);
        {
            let _held = lock(&client.nodes[0].idle);
            client.close_idle_at_exit(); // must not wait for the holder
        }
        assert_eq!(client.idle_connections(0), 1);
        client.close_idle_at_exit();
        assert_eq!(client.idle_connections(0), 0);
        assert_eq!(client.get("k").unwrap(), Some(b"k".to_vec()));
    }

    #[test]
    fn a_big_multi_get_is_split_into_bounded_pipelines() {
        let server = FakeServer::start("pipeline", |_, stream| echo_gets(stream, 1000));
        let client = server.client();
        let keys: Vec<String> = (0..MAX_PIPELINE * 2 + 3)
            .map(|i| format!("key{i}"))
            .collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let values = client.get_multi(&refs).unwrap();
        let want: Vec<Option<Vec<u8>>> =
            keys.iter().map(|k| Some(k.clone().into_bytes())).collect();
        assert_eq!(values, want);
        assert_eq!(client.idle_connections(0), 1);
    }

    /// Answers the first request with `reply`, whatever it asked, then waits for the client
    /// to close.
    fn answer_once(mut stream: UnixStream, reply: &[u8]) {
        let mut buf = [0u8; 256];
        let _ = stream.read(&mut buf);
        let _ = stream.write_all(reply);
        let _ = stream.read(&mut buf);
    }

    /// Accepts connections, then neither reads nor answers for 3 s.
    fn silent_server(name: &str) -> FakeServer {
        FakeServer::start(name, |_, stream| {
            std::thread::sleep(Duration::from_secs(3));
            drop(stream);
        })
    }

    #[test]
    fn a_silent_server_times_out_and_trips_the_breaker() {
        let server = silent_server("silent");
        let client = server.client();
        // Bounds halfway between the behaviour and its failure, for a loaded machine: one
        // 300 ms timeout, not two; an open circuit answers at once, not after a timeout.
        for _ in 0..3 {
            let started = Instant::now();
            assert_eq!(client.get("k"), Err(StoreError::Timeout));
            assert!(
                started.elapsed() < Duration::from_millis(450),
                "{:?}",
                started.elapsed()
            );
        }
        let started = Instant::now();
        assert_eq!(client.get("k"), Err(StoreError::CircuitOpen));
        assert!(
            started.elapsed() < Duration::from_millis(150),
            "no network, no wait"
        );
        assert_eq!(client.breaker_state(0), Some(BreakerState::Open));
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(
            StoreError::Timeout.to_string(),
            "memcached did not answer in time"
        );
        assert!(StoreError::Timeout.is_timeout());
        assert!(!StoreError::CircuitOpen.is_timeout());
        assert!(StoreError::Connect("unix:/x: No such file".into())
            .to_string()
            .contains("unix:/x"));
    }

    #[test]
    fn stats_and_version_parse() {
        let server = FakeServer::start("stats", |_, stream| {
            let mut out = stream.try_clone().unwrap();
            for line in BufReader::new(stream).lines() {
                let reply: &[u8] = match line.unwrap().as_str() {
                    "version" => b"VERSION 1.6.18\r\n",
                    "stats" => b"STAT pid 42\r\nSTAT libevent 2.1.12-stable\r\nSTAT odd value with spaces\r\nEND\r\n",
                    _ => b"ERROR\r\n",
                };
                out.write_all(reply).unwrap();
            }
        });
        let client = server.client();
        assert_eq!(client.version(0).unwrap(), "1.6.18");
        let stats = client.stats(0).unwrap();
        assert_eq!(stats[0], ("pid".to_string(), "42".to_string()));
        assert_eq!(
            stats[2],
            ("odd".to_string(), "value with spaces".to_string())
        );
        assert_eq!(
            client.idle_connections(0),
            1,
            "the same connection served both"
        );
    }

    #[test]
    fn a_cas_reply_to_a_store_without_cas_is_a_protocol_error() {
        for reply in [&b"EX\r\n"[..], b"NF\r\n"] {
            let server = FakeServer::start("nocas", move |_, stream| answer_once(stream, reply));
            let err = server.client().set("k", b"v", 2_000_000_000).unwrap_err();
            assert!(matches!(&err, StoreError::Protocol(_)), "{err}");
        }
    }

    #[test]
    fn an_empty_version_and_too_many_stats_are_protocol_errors() {
        let server = FakeServer::start("noversion", |_, stream| {
            answer_once(stream, b"VERSION \r\n")
        });
        let err = server.client().version(0).unwrap_err();
        assert!(
            matches!(&err, StoreError::Protocol(m) if m.contains("version")),
            "{err}"
        );
        let stats = |lines: usize| {
            let reply: String = (0..lines)
                .map(|n| format!("STAT s{n} {n}\r\n"))
                .chain(["END\r\n".to_string()])
                .collect();
            let server = FakeServer::start(&format!("stats{lines}"), move |_, stream| {
                answer_once(stream, reply.as_bytes())
            });
            server.client().stats(0)
        };
        assert_eq!(stats(MAX_STATS).unwrap().len(), MAX_STATS);
        let err = stats(MAX_STATS + 1).unwrap_err();
        assert!(
            matches!(&err, StoreError::Protocol(m) if m.contains("stats")),
            "{err}"
        );
    }

    /// A fake server that counts the connections it accepts and serves each with `serve`.
    fn counting(
        name: &str,
        serve: impl Fn(UnixStream) + Send + Sync + 'static,
    ) -> (FakeServer, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = accepted.clone();
        let server = FakeServer::start(name, move |_, stream| {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            serve(stream)
        });
        (server, accepted)
    }

    /// Serves one exchange, takes the next request, says nothing for `hold`, then closes.
    fn one_exchange_then_silence(mut stream: UnixStream, hold: Duration) {
        echo_gets(stream.try_clone().unwrap(), 1);
        let mut buf = [0u8; 256];
        let _ = stream.read(&mut buf);
        std::thread::sleep(hold);
    }

    #[test]
    fn a_pooled_connection_that_stops_answering_costs_one_timeout_and_no_new_connection() {
        // Answers one exchange, then holds the connection without a word: a hung server,
        // not a stale connection. The retry is for connections closed while idle only.
        let (server, accepted) = counting("hung", |stream| {
            one_exchange_then_silence(stream, Duration::from_secs(2))
        });
        let client = server.client();
        assert_eq!(client.get("a").unwrap(), Some(b"a".to_vec()));
        assert_eq!(client.get_multi(&["b", "c"]), Err(StoreError::Timeout));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn a_fresh_connection_that_fails_is_not_retried() {
        // Closes every connection at once: a new connection that breaks is the server's
        // answer, not a stale pool entry, for a get and for a store alike.
        let (server, accepted) = counting("slam", drop);
        let client = server.client();
        assert!(matches!(
            client.get_multi(&["a", "b"]),
            Err(StoreError::Io(_))
        ));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(matches!(
            client.set("k", b"v", 2_000_000_000),
            Err(StoreError::Io(_))
        ));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn a_request_the_server_read_but_never_answered_on_a_pooled_connection_is_retried_once() {
        // The first connection serves one exchange, then takes the next request and closes
        // (a restart caught mid-request); the retry on a fresh connection is answered.
        let (server, accepted) = counting("midway", |stream| {
            one_exchange_then_silence(stream, Duration::ZERO)
        });
        let client = server.client();
        assert_eq!(client.get("a").unwrap(), Some(b"a".to_vec()));
        assert_eq!(client.get("b").unwrap(), Some(b"b".to_vec()));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn a_store_on_a_connection_closed_while_idle_is_retried_once() {
        // Each connection stores one item (`HD`), then the server closes it.
        let (server, accepted) = counting("stale-store", |mut stream| {
            let mut buf = [0u8; 256];
            if stream.read(&mut buf).is_ok_and(|n| n > 0) {
                let _ = stream.write_all(b"HD\r\n");
            }
        });
        let client = server.client();
        client.set("a", b"1", 2_000_000_000).unwrap();
        std::thread::sleep(Duration::from_millis(20));
        client.set("b", b"2", 2_000_000_000).unwrap();
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn a_server_that_reads_nothing_bounds_a_large_write_by_the_timeout() {
        // The socket's buffers fill long before a 1 MiB value is written: the write itself
        // must time out, within one timeout (300 ms here) and a loaded machine's slack.
        let server = silent_server("deaf");
        let client = server.client();
        let started = Instant::now();
        let value = vec![b'v'; crate::store::meta::MAX_VALUE_LEN];
        assert_eq!(
            client.set("big", &value, 2_000_000_000),
            Err(StoreError::Timeout)
        );
        assert!(
            started.elapsed() < Duration::from_millis(450),
            "{:?}",
            started.elapsed()
        );
    }
}
