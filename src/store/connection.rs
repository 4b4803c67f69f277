//! One connection to one memcached server, with its own reusable buffers, and every blocking
//! call bounded by the operation's deadline.
//!
//! A connection never calls `shutdown()`: after a fork the parent and child share the socket,
//! and a shutdown would cut it for both. Dropping only closes this process's descriptor.
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};

use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, StreamOwned};
use rustls_pki_types::ServerName;
use socket2::{Domain, SockAddr, Socket, Type};

use super::address::ServerAddress;
use super::client::StoreError;
use super::meta::{self, Status, MAX_LINE_LEN, MAX_VALUE_LEN};
use super::transport::{Credentials, Transport};

const INITIAL_READ_BUF: usize = 4096;
/// A connection that once carried a large value gives the memory back before being pooled,
/// so an idle pool costs kilobytes, not megabytes.
const KEEP_BUF: usize = 64 * 1024;
/// The largest single reply: a line, a capped value and CRLF.
const MAX_READ_BUF: usize = MAX_LINE_LEN + 2 + MAX_VALUE_LEN + 2;

#[derive(Debug)]
enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
    /// Boxed: a rustls connection is a few hundred bytes beside a socket.
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_read_timeout(Some(timeout)),
            Stream::Tcp(s) => s.set_read_timeout(Some(timeout)),
            Stream::Tls(s) => s.sock.set_read_timeout(Some(timeout)),
        }
    }

    fn set_write_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Stream::Unix(s) => s.set_write_timeout(Some(timeout)),
            Stream::Tcp(s) => s.set_write_timeout(Some(timeout)),
            Stream::Tls(s) => s.sock.set_write_timeout(Some(timeout)),
        }
    }

    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(s) => s.read(buf),
            Stream::Tcp(s) => s.read(buf),
            // rustls first sends whatever an earlier write left buffered.
            Stream::Tls(s) => s.read(buf),
        }
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // std sends on TCP with MSG_NOSIGNAL; on UNIX sockets it does so only since Rust
        // 1.89. Before that a write to a server that went away raises SIGPIPE, which httpd
        // children and Rust binaries ignore, so it surfaces here as EPIPE either way.
        match self {
            Stream::Unix(s) => s.write(buf),
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }
}

/// Connects a UNIX stream socket within the given time, returning `TimedOut` or `WouldBlock`
/// when the time is up. The default is [`connect_unix`]; a test can supply another through
/// [`super::client::StoreClient::with_unix_connect`].
pub type UnixConnect = fn(&Path, Duration) -> io::Result<UnixStream>;

/// One reply, borrowed from the connection's read buffer until the next read.
#[derive(Debug, PartialEq, Eq)]
pub struct Reply<'a> {
    pub status: Status,
    pub flags: &'a [u8],
    pub data: &'a [u8],
}

pub struct Connection {
    stream: Stream,
    pid: u32,
    wbuf: Vec<u8>,
    /// Storage for incoming bytes; `rbuf[rpos..rlen]` is received but not yet consumed.
    rbuf: Vec<u8>,
    rpos: usize,
    rlen: usize,
    /// Whether any reply byte arrived during the current exchange.
    received: bool,
    /// The socket timeouts as last set, so the two setsockopt calls are made only when the
    /// time left differs from them by more than [`TIMEOUT_SLACK`] — on a healthy connection,
    /// once, instead of on every exchange.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// How far a socket timeout may drift from the time actually left before it is set again: a
/// wait may overshoot the deadline by at most this much.
const TIMEOUT_SLACK: Duration = Duration::from_millis(2);

/// Whether a socket timeout of `current` is close enough to `left` to keep.
fn timeout_fits(current: Option<Duration>, left: Duration) -> bool {
    current.is_some_and(|current| {
        let drift = if current > left {
            current - left
        } else {
            left - current
        };
        drift <= TIMEOUT_SLACK
    })
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("stream", &self.stream)
            .field("pid", &self.pid)
            .finish()
    }
}

/// Buffers kept at process exit stay pointed to from here, so a leak checker (`make
/// valgrind`) sees memory kept on purpose rather than lost. Filled without a lock or an
/// allocation (exit may run in a signal handler); buffers past the last slot are just kept.
static KEPT_AT_EXIT: [AtomicPtr<u8>; 64] = [const { AtomicPtr::new(std::ptr::null_mut()) }; 64];
static KEPT_SLOTS_USED: AtomicUsize = AtomicUsize::new(0);

fn keep_at_exit(buffer: Vec<u8>) {
    let mut buffer = std::mem::ManuallyDrop::new(buffer);
    let slot = KEPT_SLOTS_USED.fetch_add(1, Ordering::Relaxed);
    if let Some(slot) = KEPT_AT_EXIT.get(slot) {
        slot.store(buffer.as_mut_ptr(), Ordering::Relaxed);
    }
    // Nothing reads the slots, so without this the optimiser may drop the stores.
    std::hint::black_box(&KEPT_AT_EXIT);
}

impl Connection {
    /// Connects within the deadline. TCP gets TCP_NODELAY: requests are single small writes
    /// that must not wait for an ACK. A TCP server then gets the transport's TLS handshake
    /// and authentication, within the same deadline.
    pub fn connect(
        address: &ServerAddress,
        deadline: Instant,
        unix_connect: Option<UnixConnect>,
        transport: &Transport,
    ) -> Result<Connection, StoreError> {
        let stream = match address {
            ServerAddress::Unix(path) => {
                let left = remaining(deadline)?;
                let connect = unix_connect.unwrap_or(connect_unix);
                let stream = connect(path, left);
                Stream::Unix(stream.map_err(|e| match e.kind() {
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => StoreError::Timeout,
                    _ => StoreError::Connect(format!("{address}: {e}")),
                })?)
            }
            ServerAddress::Tcp { host, port } => {
                let tcp = connect_tcp(address, host, *port, deadline)?;
                match &transport.tls {
                    None => Stream::Tcp(tcp),
                    Some(config) => {
                        Stream::Tls(Box::new(handshake(address, host, tcp, config, deadline)?))
                    }
                }
            }
        };
        let mut connection = Connection::from_stream(stream);
        if let (ServerAddress::Tcp { .. }, Some(credentials)) = (address, &transport.auth) {
            connection.authenticate(address, credentials, deadline)?;
        }
        Ok(connection)
    }

    /// memcached's ASCII authentication: one `set` carrying `user password`, answered
    /// `STORED`. Until then memcached answers every command `CLIENT_ERROR unauthenticated`.
    fn authenticate(
        &mut self,
        address: &ServerAddress,
        credentials: &Credentials,
        deadline: Instant,
    ) -> Result<(), StoreError> {
        let request = credentials.request();
        self.start().extend_from_slice(&request);
        self.send(deadline)?;
        // The buffer held the password: clear it before it is reused or pooled.
        self.wbuf.iter_mut().for_each(|byte| *byte = 0);
        self.wbuf.clear();
        let refused = |detail: &str| {
            StoreError::Connect(format!(
                "{address}: memcached refused the MemSessionAuthFile credentials ({detail})"
            ))
        };
        match self.read_line(deadline) {
            Ok(b"STORED") => Ok(()),
            Ok(other) => Err(refused(&String::from_utf8_lossy(other))),
            Err(StoreError::ServerError(message)) => Err(refused(&message)),
            Err(error) => Err(error),
        }
    }

    fn from_stream(stream: Stream) -> Connection {
        Connection {
            stream,
            pid: super::process::id(),
            wbuf: Vec::new(),
            rbuf: vec![0; INITIAL_READ_BUF],
            rpos: 0,
            rlen: 0,
            received: false,
            read_timeout: None,
            write_timeout: None,
        }
    }

    /// A connection over an existing UNIX stream (tests, socket pairs).
    pub fn from_unix_stream(stream: UnixStream) -> Connection {
        Connection::from_stream(Stream::Unix(stream))
    }

    /// Closes the socket and keeps the buffers: for a process that is ending, where freeing
    /// memory may not be safe (see `StoreClient::close_idle_at_exit`).
    pub fn close_keeping_memory(self) {
        let Connection {
            stream, wbuf, rbuf, ..
        } = self;
        keep_at_exit(wbuf);
        keep_at_exit(rbuf);
        drop(stream);
    }

    /// The process that opened this connection. Only that process may use it.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    #[cfg(test)]
    pub(crate) fn set_pid(&mut self, pid: u32) {
        self.pid = pid;
    }

    /// Begins an exchange: returns the emptied write buffer for the requests.
    pub fn start(&mut self) -> &mut Vec<u8> {
        self.wbuf.clear();
        self.received = false;
        &mut self.wbuf
    }

    /// Whether any reply byte arrived since [`Connection::start`]. If none did, a failure on a
    /// pooled connection is the server having closed it while idle, not a failed command.
    pub fn received_any(&self) -> bool {
        self.received
    }

    /// Writes the whole request buffer.
    pub fn send(&mut self, deadline: Instant) -> Result<(), StoreError> {
        let mut written = 0;
        while written < self.wbuf.len() {
            let left = remaining(deadline)?;
            if !timeout_fits(self.write_timeout, left) {
                self.write_timeout = None;
                self.stream
                    .set_write_timeout(left)
                    .map_err(|e| io_error("setsockopt", e))?;
                self.write_timeout = Some(left);
            }
            match self.stream.write(&self.wbuf[written..]) {
                Ok(0) => return Err(StoreError::Io("write: wrote nothing".to_string())),
                Ok(n) => written += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error("write", e)),
            }
        }
        Ok(())
    }

    /// The next meta reply.
    pub fn read_reply(&mut self, deadline: Instant) -> Result<Reply<'_>, StoreError> {
        let frame = loop {
            match meta::parse_reply(&self.rbuf[self.rpos..self.rlen])? {
                Some(frame) => break frame,
                None => self.fill(deadline)?,
            }
        };
        let reply = &self.rbuf[self.rpos..self.rpos + frame.len];
        self.rpos += frame.len;
        Ok(Reply {
            status: frame.status,
            flags: &reply[frame.flags],
            data: &reply[frame.data],
        })
    }

    /// The next line of a classic reply (`VERSION ...`, `STAT ...`, `END`), without CRLF.
    pub fn read_line(&mut self, deadline: Instant) -> Result<&[u8], StoreError> {
        let len = loop {
            match meta::parse_line(&self.rbuf[self.rpos..self.rlen])? {
                Some((_, len)) => break len,
                None => self.fill(deadline)?,
            }
        };
        let line = &self.rbuf[self.rpos..self.rpos + len - 2];
        self.rpos += len;
        match meta::error_line(line) {
            Some(error) => Err(error),
            None => Ok(line),
        }
    }

    /// Ends an exchange. Bytes nobody asked for mean the stream is out of step, and the
    /// connection must not be reused.
    pub fn finish(&mut self) -> Result<(), StoreError> {
        if self.rpos != self.rlen {
            let extra = &self.rbuf[self.rpos..self.rlen];
            return Err(StoreError::Protocol(format!(
                "{} unexpected bytes after the last reply: \"{}\"",
                extra.len(),
                meta::printable(extra, 32)
            )));
        }
        self.rpos = 0;
        self.rlen = 0;
        if self.rbuf.len() > KEEP_BUF {
            self.rbuf = vec![0; INITIAL_READ_BUF];
        }
        if self.wbuf.capacity() > KEEP_BUF {
            self.wbuf = Vec::new();
        }
        Ok(())
    }

    /// Reads at least one more byte into the buffer, within the deadline.
    fn fill(&mut self, deadline: Instant) -> Result<(), StoreError> {
        if self.rpos == self.rlen {
            self.rpos = 0;
            self.rlen = 0;
        } else if self.rlen == self.rbuf.len() {
            if self.rpos > 0 {
                self.rbuf.copy_within(self.rpos..self.rlen, 0);
                self.rlen -= self.rpos;
                self.rpos = 0;
            } else if self.rbuf.len() < MAX_READ_BUF {
                let grown = (self.rbuf.len() * 2).min(MAX_READ_BUF);
                self.rbuf.resize(grown, 0);
            } else {
                // Unreachable while the parser bounds lines and values; kept as the last word.
                return Err(StoreError::Protocol(
                    "reply larger than any valid reply".to_string(),
                ));
            }
        }
        loop {
            let left = remaining(deadline)?;
            if !timeout_fits(self.read_timeout, left) {
                self.read_timeout = None;
                self.stream
                    .set_read_timeout(left)
                    .map_err(|e| io_error("setsockopt", e))?;
                self.read_timeout = Some(left);
            }
            match self.stream.read(&mut self.rbuf[self.rlen..]) {
                Ok(0) => {
                    return Err(StoreError::Io(
                        "connection closed by the server".to_string(),
                    ))
                }
                Ok(n) => {
                    self.rlen += n;
                    self.received = true;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error("read", e)),
            }
        }
    }
}

/// Time left before the deadline; none left is a timeout. Never zero: std refuses a zero
/// socket timeout (it would mean "block forever" to the kernel).
fn remaining(deadline: Instant) -> Result<Duration, StoreError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(StoreError::Timeout);
    }
    Ok(left)
}

fn io_error(what: &str, e: io::Error) -> StoreError {
    match e.kind() {
        // A socket timeout shows up as EAGAIN (WouldBlock) on Unix.
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => StoreError::Timeout,
        _ => StoreError::Io(format!("{what}: {e}")),
    }
}

/// Connects a UNIX stream socket, waiting at most `timeout` for room in the server's accept
/// backlog.
///
/// std's `UnixStream::connect` has no timeout, and connect() on a UNIX socket blocks while the
/// listener's backlog is full: a memcached that is alive but not accepting (SIGSTOPped,
/// wedged) fills it, and closed connections stay in it until accepted. The kernel bounds that
/// wait by the socket's send timeout (`SO_SNDTIMEO`), which socket2 lets us set before
/// connecting; when it runs out, connect() fails with `EAGAIN` (`WouldBlock`), mapped to
/// [`StoreError::Timeout`] by the caller. socket2 opens the socket with `SOCK_CLOEXEC`.
pub fn connect_unix(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let address = SockAddr::unix(path)?;
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_write_timeout(Some(timeout))?;
    loop {
        match socket.connect(&address) {
            Ok(()) => return Ok(UnixStream::from(OwnedFd::from(socket))),
            // A signal during the wait: the kernel keeps no partial state for a UNIX connect,
            // so trying again is safe. The caller's deadline bounds the whole operation.
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Server names resolved once per process: by httpd's parent at start-up (children inherit
/// the table across fork, and a graceful restart resolves again), or by a process that needs
/// one it was not given (memsessionctl) the first time. The system resolver has no deadline,
/// so a request must never wait on it: `MemSessionTimeout` bounds the connection alone.
static RESOLVED: Mutex<Vec<Resolved>> = Mutex::new(Vec::new());

/// (host, port) and the addresses the resolver gave for it.
type Resolved = ((String, u16), Vec<SocketAddr>);

fn lookup_host(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    Ok((host, port).to_socket_addrs()?.collect())
}

/// Resolves every TCP server name now (httpd's start-up, before children fork), replacing
/// what an earlier start-up resolved. Returns the names that did not resolve, with why.
pub fn resolve_ahead(addresses: &[ServerAddress]) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    for address in addresses {
        let ServerAddress::Tcp { host, port } = address else {
            continue;
        };
        if host.parse::<IpAddr>().is_ok() {
            continue;
        }
        match lookup_host(host, *port) {
            Ok(found) => remember(host, *port, found),
            Err(e) => failed.push((address.to_string(), e.to_string())),
        }
    }
    failed
}

fn remember(host: &str, port: u16, found: Vec<SocketAddr>) {
    let mut table = RESOLVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    table.retain(|((h, p), _)| !(h == host && *p == port));
    table.push(((host.to_string(), port), found));
}

fn resolved(host: &str, port: u16) -> Option<Vec<SocketAddr>> {
    let table = RESOLVED
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    table
        .iter()
        .find(|((h, p), _)| h == host && *p == port)
        .map(|(_, found)| found.clone())
}

/// The TLS handshake, within the deadline: the server must present a certificate for `host`
/// (a name, or an IP address in its subjectAltName) issued by the configured CA.
fn handshake(
    address: &ServerAddress,
    host: &str,
    mut tcp: TcpStream,
    config: &std::sync::Arc<rustls::ClientConfig>,
    deadline: Instant,
) -> Result<StreamOwned<ClientConnection, TcpStream>, StoreError> {
    let tls_error = |e: String| StoreError::Connect(format!("{address}: TLS: {e}"));
    let name = ServerName::try_from(host.to_string()).map_err(|e| {
        tls_error(format!(
            "'{host}' is not a name a certificate can hold: {e}"
        ))
    })?;
    let mut tls = ClientConnection::new(std::sync::Arc::clone(config), name)
        .map_err(|e| tls_error(e.to_string()))?;
    while tls.is_handshaking() {
        let left = remaining(deadline)?;
        tcp.set_read_timeout(Some(left))
            .and_then(|()| tcp.set_write_timeout(Some(left)))
            .map_err(|e| io_error("setsockopt", e))?;
        match tls.complete_io(&mut tcp) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return Err(StoreError::Timeout)
            }
            Err(e) => return Err(tls_error(e.to_string())),
        }
    }
    Ok(StreamOwned::new(tls, tcp))
}

fn connect_tcp(
    address: &ServerAddress,
    host: &str,
    port: u16,
    deadline: Instant,
) -> Result<TcpStream, StoreError> {
    let candidates: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => match resolved(host, port) {
            Some(found) => found,
            None => {
                let found = lookup_host(host, port)
                    .map_err(|e| StoreError::Connect(format!("{address}: cannot resolve: {e}")))?;
                remember(host, port, found.clone());
                found
            }
        },
    };
    let mut last_error = None;
    for candidate in candidates {
        match TcpStream::connect_timeout(&candidate, remaining(deadline)?) {
            Ok(stream) => {
                stream
                    .set_nodelay(true)
                    .map_err(|e| io_error("TCP_NODELAY", e))?;
                return Ok(stream);
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                return Err(StoreError::Timeout)
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(StoreError::Connect(match last_error {
        Some(e) => format!("{address}: {e}"),
        None => format!("{address}: name resolves to no address"),
    }))
}

#[cfg(test)]
mod tests {

    #[test]
    fn names_are_resolved_ahead_and_reused() {
        use super::*;
        let name = ServerAddress::parse("localhost:11999").unwrap();
        let bogus = ServerAddress::parse("no-such-host.invalid:11211").unwrap();
        let literal = ServerAddress::parse("127.0.0.1:11211").unwrap();
        let failed = resolve_ahead(&[name, bogus, literal]);
        assert_eq!(failed.len(), 1, "{failed:?}");
        assert!(failed[0].0.starts_with("no-such-host.invalid"));
        let first = resolved("localhost", 11999).expect("resolved at start-up");
        assert!(first
            .iter()
            .all(|a| a.port() == 11999 && a.ip().is_loopback()));
        // a connection uses the table, not the resolver: a planted entry is what it dials
        remember("localhost", 11999, vec!["127.0.0.9:11999".parse().unwrap()]);
        assert_eq!(
            resolved("localhost", 11999).unwrap(),
            ["127.0.0.9:11999".parse().unwrap()]
        );
        assert!(
            resolved("127.0.0.1", 11211).is_none(),
            "literals are never looked up"
        );
    }

    #[test]
    fn socket_timeouts_are_kept_while_close_to_the_time_left() {
        let ms = Duration::from_millis;
        assert!(!timeout_fits(None, ms(200)));
        assert!(timeout_fits(Some(ms(200)), ms(199)));
        assert!(timeout_fits(Some(ms(200)), ms(202)));
        assert!(
            !timeout_fits(Some(ms(200)), ms(150)),
            "would overshoot the deadline"
        );
        assert!(!timeout_fits(Some(ms(50)), ms(200)), "would give up early");
    }

    use super::*;

    fn pair() -> (Connection, UnixStream) {
        let (ours, theirs) = UnixStream::pair().unwrap();
        (Connection::from_unix_stream(ours), theirs)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_millis(500)
    }

    #[test]
    fn reads_replies_split_across_many_reads() {
        let (mut conn, mut server) = pair();
        let t = std::thread::spawn(move || {
            for chunk in [&b"VA 5 O"[..], b"1\r\nab", b"\r\nc", b"\r\nEN O2\r", b"\n"] {
                server.write_all(chunk).unwrap();
                std::thread::sleep(Duration::from_millis(5));
            }
            server
        });
        let reply = conn.read_reply(soon()).unwrap();
        assert_eq!(
            (reply.status, reply.flags, reply.data),
            (Status::Value, &b"O1"[..], &b"ab\r\nc"[..])
        );
        let reply = conn.read_reply(soon()).unwrap();
        assert_eq!((reply.status, reply.flags), (Status::Miss, &b"O2"[..]));
        assert!(conn.received_any());
        conn.finish().unwrap();
        drop(t.join().unwrap());
    }

    #[test]
    fn grows_for_a_large_value_and_shrinks_back() {
        let (mut conn, mut server) = pair();
        let value = vec![b'v'; 700_000];
        let t = std::thread::spawn(move || {
            server
                .write_all(format!("VA {}\r\n", value.len()).as_bytes())
                .unwrap();
            server.write_all(&value).unwrap();
            server.write_all(b"\r\n").unwrap();
            server
        });
        let reply = conn.read_reply(soon()).unwrap();
        assert_eq!(reply.data.len(), 700_000);
        conn.finish().unwrap();
        assert_eq!(conn.rbuf.len(), INITIAL_READ_BUF);
        drop(t.join().unwrap());
    }

    #[test]
    fn silence_is_a_timeout_at_the_deadline() {
        // Not before the deadline, and well before a second wait would end: the bound leaves
        // a loaded machine a whole deadline of scheduling delay.
        let deadline = Duration::from_millis(250);
        let (mut conn, _server) = pair();
        let started = Instant::now();
        let err = conn.read_reply(started + deadline).unwrap_err();
        assert_eq!(err, StoreError::Timeout);
        let took = started.elapsed();
        assert!(took >= deadline && took < 2 * deadline, "{took:?}");
        assert_eq!(
            conn.read_reply(started).unwrap_err(),
            StoreError::Timeout,
            "no time left"
        );
    }

    #[test]
    fn eof_and_leftovers_are_errors() {
        let (mut conn, mut server) = pair();
        server.write_all(b"HD\r\nHD\r\n").unwrap();
        assert_eq!(conn.read_reply(soon()).unwrap().status, Status::Done);
        assert!(matches!(conn.finish(), Err(StoreError::Protocol(_))));

        let (mut conn, server) = pair();
        drop(server);
        assert!(matches!(conn.read_reply(soon()), Err(StoreError::Io(_))));
        assert!(!conn.received_any());
    }

    #[test]
    fn an_endless_line_is_refused_without_unbounded_buffering() {
        let (mut conn, mut server) = pair();
        let t = std::thread::spawn(move || {
            let _ = server.write_all(&vec![b'x'; 64 * 1024]);
            server
        });
        assert!(matches!(
            conn.read_reply(soon()),
            Err(StoreError::Protocol(_))
        ));
        assert!(conn.rbuf.len() <= 2 * MAX_LINE_LEN + 4096);
        drop(conn);
        drop(t.join().unwrap());
    }

    #[test]
    fn sends_the_whole_buffer() {
        let (mut conn, mut server) = pair();
        conn.start().extend_from_slice(b"mn\r\n");
        conn.send(soon()).unwrap();
        let mut got = [0u8; 4];
        server.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"mn\r\n");
    }

    #[test]
    fn a_missing_socket_is_a_connect_error() {
        let address = ServerAddress::Unix("/nonexistent/memsession-test.sock".into());
        let err = Connection::connect(&address, soon(), None, &Transport::default()).unwrap_err();
        assert!(
            matches!(&err, StoreError::Connect(m) if m.contains("/nonexistent/")),
            "{err:?}"
        );
    }

    #[test]
    fn a_unix_connect_hook_is_used_and_its_timeout_is_a_timeout() {
        fn hung(_: &Path, _: Duration) -> io::Result<UnixStream> {
            Err(io::Error::from(io::ErrorKind::TimedOut))
        }
        fn refused(path: &Path, _: Duration) -> io::Result<UnixStream> {
            UnixStream::connect(path)
        }
        let address = ServerAddress::Unix("/nonexistent/memsession-test.sock".into());
        let err =
            Connection::connect(&address, soon(), Some(hung), &Transport::default()).unwrap_err();
        assert_eq!(err, StoreError::Timeout);
        let err = Connection::connect(&address, soon(), Some(refused), &Transport::default())
            .unwrap_err();
        assert!(matches!(err, StoreError::Connect(_)), "{err:?}");
    }

    #[test]
    fn a_unix_connect_to_a_full_backlog_is_bounded_by_the_timeout() {
        // A listener that never accepts, like a SIGSTOPped memcached: once its backlog is full,
        // std's connect would block forever; ours gives up after the timeout.
        let dir = std::env::temp_dir().join(format!("memsession-backlog-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("full.sock");
        let _ = std::fs::remove_file(&path);
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let address = ServerAddress::Unix(path.clone());
        let mut held = Vec::new();
        let mut timed_out = false;
        let started = Instant::now();
        // std listens with a backlog of at most a few thousand; stop well before 10000.
        for _ in 0..10_000 {
            let t = Instant::now();
            match Connection::connect(
                &address,
                t + Duration::from_millis(50),
                None,
                &Transport::default(),
            ) {
                Ok(conn) => held.push(conn),
                Err(err) => {
                    assert_eq!(err, StoreError::Timeout);
                    let took = t.elapsed();
                    assert!(
                        took >= Duration::from_millis(40) && took < Duration::from_millis(500),
                        "{took:?}"
                    );
                    timed_out = true;
                    break;
                }
            }
            assert!(started.elapsed() < Duration::from_secs(20));
        }
        drop(held);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(timed_out, "the backlog never filled");
    }

    #[test]
    fn a_unix_connect_reaches_a_listening_server() {
        let dir = std::env::temp_dir().join(format!("memsession-connect-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ok.sock");
        let _ = std::fs::remove_file(&path);
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let stream = connect_unix(&path, Duration::from_millis(200)).unwrap();
        let (mut accepted, _) = listener.accept().unwrap();
        let mut conn = Connection::from_unix_stream(stream);
        conn.start().extend_from_slice(b"mn\r\n");
        conn.send(soon()).unwrap();
        let mut got = [0u8; 4];
        accepted.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"mn\r\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_refused_tcp_port_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);
        let address = ServerAddress::Tcp {
            host: "127.0.0.1".into(),
            port,
        };
        let err = Connection::connect(&address, soon(), None, &Transport::default()).unwrap_err();
        assert!(matches!(err, StoreError::Connect(_)), "{err:?}");
    }

    #[test]
    fn resolved_addresses_are_remembered_per_host_and_port() {
        // Names no other test resolves: the table is shared by the whole test binary.
        let a: SocketAddr = "10.9.8.1:11211".parse().unwrap();
        let b: SocketAddr = "10.9.8.2:11212".parse().unwrap();
        remember("cache-test-a.invalid", 11211, vec![a]);
        remember("cache-test-a.invalid", 11212, vec![b]);
        remember("cache-test-b.invalid", 11211, vec![b]);
        assert_eq!(resolved("cache-test-a.invalid", 11211), Some(vec![a]));
        assert_eq!(resolved("cache-test-a.invalid", 11212), Some(vec![b]));
        assert_eq!(resolved("cache-test-b.invalid", 11211), Some(vec![b]));
        assert_eq!(resolved("cache-test-b.invalid", 11212), None);
        // A new answer replaces the old one for that host and port only.
        remember("cache-test-a.invalid", 11211, vec![b]);
        assert_eq!(resolved("cache-test-a.invalid", 11211), Some(vec![b]));
        assert_eq!(resolved("cache-test-b.invalid", 11211), Some(vec![b]));
        assert_eq!(resolved("cache-test-a.invalid", 11212), Some(vec![b]));
    }
}
