//! The store client against real memcached processes: one on a UNIX socket in a private temp
//! dir, one on a free loopback TCP port. Every process is killed by a guard, even when a test
//! panics (and even while it is SIGSTOPped). memcached missing is a failure, never a skip.
//!
//! Latency figures: `cargo test --release --test store_memcached -- --ignored --nocapture`.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use memsession::config::secret_file::ServerSecret;
use memsession::session_store::{GlobalCopy, NewSession, Policy, Rejection, SessionStore};
use memsession::store::address::ServerAddress;
use memsession::store::breaker::BreakerState;
use memsession::store::client::{StoreClient, StoreError};
use memsession::store::meta::CounterStep;

const TIMEOUT: Duration = Duration::from_millis(200);
/// How late a timed-out operation may return: scheduling noise on a loaded machine, but less
/// than a second timeout.
const SLACK: Duration = Duration::from_millis(150);

fn memcached_binary() -> PathBuf {
    let candidates = [
        std::env::var_os("MEMCACHED").map(PathBuf::from),
        Some(PathBuf::from("/usr/bin/memcached")),
    ];
    for candidate in candidates.into_iter().flatten() {
        if candidate.is_file() {
            return candidate;
        }
    }
    let ci = std::env::var("CI").map(|v| v == "true").unwrap_or(false);
    panic!(
        "memcached not found (set MEMCACHED=/path or install it: apt-get install memcached){}",
        if ci { " — required on CI" } else { "" }
    );
}

fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("Uid:"))?;
            Some(line.split_whitespace().nth(2)? == "0")
        })
        .unwrap_or(false)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A memcached process, killed and its directory removed on drop.
struct Memcached {
    child: Child,
    address: ServerAddress,
    dir: PathBuf,
}

static INSTANCES: AtomicUsize = AtomicUsize::new(0);

impl Memcached {
    fn private_dir(kind: &str) -> PathBuf {
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!(
            "memsession-store-{}-{kind}-{n}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        dir
    }

    fn spawn(dir: &Path, listen: &[&str]) -> Child {
        let log = std::fs::File::create(dir.join("memcached.log")).unwrap();
        let mut command = Command::new(memcached_binary());
        command
            .args(["-U", "0", "-m", "16", "-t", "2", "-c", "256"])
            .args(listen);
        if running_as_root() {
            command.args(["-u", "root"]);
        }
        command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start memcached")
    }

    fn unix() -> Memcached {
        let dir = Memcached::private_dir("unix");
        let socket = dir.join("memcached.sock");
        let child = Memcached::spawn(&dir, &["-s", socket.to_str().unwrap(), "-a", "0700"]);
        let mut server = Memcached {
            child,
            address: ServerAddress::Unix(socket),
            dir,
        };
        server.wait_ready().unwrap_or_else(|e| panic!("{e}"));
        server
    }

    fn tcp() -> Memcached {
        let dir = Memcached::private_dir("tcp");
        let mut last_error = String::new();
        // The port is free when asked for, but may be taken before memcached binds it.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let child = Memcached::spawn(&dir, &["-l", "127.0.0.1", "-p", &port.to_string()]);
            let address = ServerAddress::Tcp {
                host: "127.0.0.1".into(),
                port,
            };
            let mut server = Memcached {
                child,
                address,
                dir: dir.clone(),
            };
            match server.wait_ready() {
                Ok(()) => return server,
                Err(e) => last_error = e,
            }
        }
        panic!("memcached on TCP never became ready: {last_error}");
    }

    /// Polls with a fresh client until `version` answers, the process dies, or 10 s pass.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log =
                    std::fs::read_to_string(self.dir.join("memcached.log")).unwrap_or_default();
                return Err(format!("memcached exited with {status}: {log}"));
            }
            let probe = StoreClient::new(vec![self.address.clone()], Duration::from_millis(500));
            if probe.version(0).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "memcached at {} not ready after 10 s",
                    self.address
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success(), "kill -{signal} failed");
        // kill(2) returns before the group stop has reached every thread: a worker busy on
        // another core can still answer a request or two. Wait until the signal took effect.
        let stopped = signal == "STOP";
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.all_threads_stopped() != stopped {
            assert!(
                Instant::now() < deadline,
                "kill -{signal} did not take effect"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Whether every thread of memcached is in the stopped state (`T` in /proc).
    fn all_threads_stopped(&self) -> bool {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.child.id())).unwrap();
        tasks.flatten().all(|task| {
            std::fs::read_to_string(task.path().join("stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit_once(") ")
                        .map(|(_, rest)| rest.starts_with('T'))
                })
                .unwrap_or(true)
        })
    }

    fn client(&self) -> StoreClient {
        StoreClient::new(vec![self.address.clone()], TIMEOUT)
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        // SIGKILL also ends a stopped process.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn round_trips(client: &StoreClient) {
    let later = unix_now() + 600;
    let key = "memsession:test:round-trip";
    assert_eq!(client.get(key).unwrap(), None);
    assert!(!client.delete(key).unwrap(), "nothing to delete yet");

    client.set(key, b"first", later).unwrap();
    assert_eq!(client.get(key).unwrap().as_deref(), Some(&b"first"[..]));
    client.set(key, b"second", later).unwrap();
    assert_eq!(client.get(key).unwrap().as_deref(), Some(&b"second"[..]));

    assert!(
        !client.add(key, b"third", later).unwrap(),
        "add must not overwrite"
    );
    assert_eq!(client.get(key).unwrap().as_deref(), Some(&b"second"[..]));

    assert!(client.delete(key).unwrap());
    assert_eq!(client.get(key).unwrap(), None);
    assert!(client.add(key, b"added", later).unwrap());
    assert_eq!(client.get(key).unwrap().as_deref(), Some(&b"added"[..]));

    let every_byte: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
    let large: Vec<u8> = (0..512 * 1024).map(|i| (i * 7 % 251) as u8).collect();
    let values: [(&str, &[u8]); 5] = [
        ("crlf", b"line\r\nEND\r\nVA 3\r\nHD\r\n"),
        ("bytes", &every_byte),
        ("empty", b""),
        ("lone-cr-lf", b"\r\n"),
        ("large", &large),
    ];
    for (name, value) in values {
        let key = format!("memsession:test:binary:{name}");
        client.set(&key, value, later).unwrap();
        assert_eq!(client.get(&key).unwrap().as_deref(), Some(value), "{name}");
    }
    let keys = [
        "memsession:test:binary:crlf",
        "memsession:test:missing",
        "memsession:test:binary:empty",
    ];
    let got = client.get_multi(&keys).unwrap();
    assert_eq!(
        got,
        vec![Some(values[0].1.to_vec()), None, Some(Vec::new())]
    );

    assert!(client.version(0).unwrap().starts_with("1."));
    let stats = client.stats(0).unwrap();
    assert!(
        stats.iter().any(|(name, _)| name == "curr_connections"),
        "{stats:?}"
    );
    assert_eq!(
        client.idle_connections(0),
        1,
        "one connection served everything"
    );
}

#[test]
fn round_trips_over_a_unix_socket() {
    let server = Memcached::unix();
    round_trips(&server.client());
}

#[test]
fn round_trips_over_tcp() {
    let server = Memcached::tcp();
    round_trips(&server.client());
}

#[test]
fn an_expiry_in_the_past_makes_the_item_unreadable() {
    let server = Memcached::unix();
    let client = server.client();
    let past = unix_now() - 10;
    client
        .set("memsession:test:expired", b"gone", past)
        .unwrap();
    assert_eq!(client.get("memsession:test:expired").unwrap(), None);
    assert!(client
        .add("memsession:test:expired-add", b"gone", past)
        .unwrap());
    assert_eq!(client.get("memsession:test:expired-add").unwrap(), None);

    client
        .set("memsession:test:fresh", b"here", unix_now() + 60)
        .unwrap();
    assert_eq!(
        client.get("memsession:test:fresh").unwrap().as_deref(),
        Some(&b"here"[..])
    );

    // 0 would be immortal and small values relative: refused, never sent.
    for exptime in [0, 3600] {
        assert!(matches!(
            client.set("memsession:test:fresh", b"x", exptime),
            Err(StoreError::InvalidArgument(_))
        ));
    }
    assert_eq!(
        client.get("memsession:test:fresh").unwrap().as_deref(),
        Some(&b"here"[..])
    );
}

/// A request reads a session, a logout deletes it, then the request writes back the slid
/// inactivity window: the logout must stay done (before, the write-back was a `set` and the
/// logged-out session lived again).
#[test]
fn counters_are_created_at_one_step_both_ways_and_keep_their_window() {
    let server = Memcached::unix();
    let client = server.client();
    let up = CounterStep::Up { ttl: 600 };
    assert_eq!(client.counter("c:a", CounterStep::Down).unwrap(), None);
    let first = client.counter("c:a", up).unwrap().unwrap();
    assert_eq!(first.value, 1);
    assert!(matches!(first.ttl, Some(595..=600)), "{first:?}");
    assert_eq!(client.counter("c:a", up).unwrap().unwrap().value, 2);
    // A step up with another TTL leaves the window as created.
    let third = client
        .counter("c:a", CounterStep::Up { ttl: 5000 })
        .unwrap()
        .unwrap();
    assert_eq!(third.value, 3);
    assert!(matches!(third.ttl, Some(595..=600)), "{third:?}");
    for expected in [2, 1, 0, 0] {
        let down = client.counter("c:a", CounterStep::Down).unwrap().unwrap();
        assert_eq!(down.value, expected, "memcached stops at 0");
    }
    // The counter ends with its window.
    assert_eq!(
        client
            .counter("c:b", CounterStep::Up { ttl: 1 })
            .unwrap()
            .unwrap()
            .value,
        1
    );
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(client.counter("c:b", CounterStep::Down).unwrap(), None);
    // The login budgets' view of the same steps.
    use memsession::flow::login_budget::Counters;
    assert_eq!(Counters::up(&client, "c:c", 600).unwrap().value, 1);
    assert_eq!(Counters::up(&client, "c:c", 600).unwrap().value, 2);
    Counters::down(&client, "c:c").unwrap();
    assert_eq!(Counters::up(&client, "c:c", 600).unwrap().value, 2);
}

#[test]
fn a_write_back_after_a_logout_does_not_bring_the_session_back() {
    let server = Memcached::unix();
    let secret = ServerSecret::from_bytes(vec![7; 32]).unwrap();
    let store = SessionStore::new(server.client(), &secret, None, "t:", Duration::ZERO);
    let now = unix_now();
    let new = NewSession {
        user: "alice".to_string(),
        auth_type: "Basic".to_string(),
        inactivity_timeout: Duration::from_secs(60),
        max_lifetime: Duration::from_secs(600),
        credential_end: None,
        cap_to_credentials: false,
        ccache: None,
    };
    let (id, mut record) = store.create(new, now).unwrap();
    let keys = store.keys_for(&id);
    record.last_seen = now + 30;
    // still there: the write-back slides it
    assert!(store.write_back(&keys, &record, now + 30).unwrap());
    assert!(store.client().get(&keys.store_key).unwrap().is_some());
    // logged out meanwhile: nothing is written, the record stays gone
    assert!(store.delete(&id).unwrap());
    assert!(!store.write_back(&keys, &record, now + 31).unwrap());
    assert_eq!(store.client().get(&keys.store_key).unwrap(), None);
    let policy = Policy {
        inactivity_timeout: Duration::ZERO,
        max_lifetime: Duration::ZERO,
        extend: true,
    };
    assert!(matches!(
        store.validate(&id, &policy, now + 32),
        Err(Rejection::Unknown)
    ));
}

/// What validation checks against a real store: any process finds a session (not only the one
/// that made it), the previous secret's too during a rotation; the window slides only where the
/// location lets it; a revoked user's or deployment's sessions are refused; a logout deletes.
#[test]
fn validation_finds_sessions_anywhere_and_refuses_revoked_ones() {
    let server = Memcached::unix();
    let old = ServerSecret::from_bytes(vec![1; 32]).unwrap();
    let new = ServerSecret::from_bytes(vec![2; 32]).unwrap();
    let process = || SessionStore::new(server.client(), &new, Some(&old), "v:", Duration::ZERO);
    let now = unix_now();
    let before_rotation = SessionStore::new(server.client(), &old, None, "v:", Duration::ZERO);
    let (bob, _) = before_rotation.create(new_session("bob"), now).unwrap();
    let (alice, _) = process().create(new_session("alice"), now).unwrap();
    let other = process();
    assert_eq!(
        other.global_epoch_key(),
        &*other.keys_for(&alice).global_epoch_key
    );
    let seen = other.validate(&alice, &STRICT, now + 1).unwrap();
    assert_eq!(seen.record.user, "alice");
    assert!(!seen.from_local_cache && !seen.refreshed);
    assert_eq!(
        other.validate(&bob, &STRICT, now + 1).unwrap().record.user,
        "bob"
    );

    // 100 s into a 600 s window: slid (and written) only where MemSessionExtend allows it.
    assert!(
        !other
            .validate(&alice, &STRICT, now + 100)
            .unwrap()
            .refreshed
    );
    let extend = Policy {
        extend: true,
        ..STRICT
    };
    let slid = other.validate(&alice, &extend, now + 100).unwrap();
    assert!(slid.refreshed);
    assert_eq!(slid.record.last_seen, now + 100);
    let written = process().validate(&alice, &STRICT, now + 101).unwrap();
    assert_eq!(written.record.last_seen, now + 100);

    let reason = |store: &SessionStore, id| match store.validate(id, &STRICT, now + 102) {
        Ok(_) => "valid",
        Err(rejection) => rejection.reason(),
    };
    let global_copy = || {
        let stored = other.client().get(other.global_epoch_key()).unwrap();
        GlobalCopy::parse(stored.as_deref()).expect("a global epoch copy")
    };
    let before = global_copy();
    let first = other.revoke_user("alice");
    assert!(first.is_complete(), "{first:?}");
    assert_eq!(other.known_generation(), first.generation);
    // A user's revocation raises the server's generation and keeps the global epoch.
    let raised = global_copy();
    assert_eq!(raised.generation, first.generation);
    assert_eq!(raised.epoch, before.epoch);
    assert_eq!(reason(&process(), &alice), "revoked-user");
    assert_eq!(reason(&other, &alice), "revoked-user");
    assert_eq!(reason(&process(), &bob), "valid");
    let second = other.revoke_all();
    assert!(second.is_complete(), "{second:?}");
    assert!(second.generation > first.generation && first.generation >= 1);
    assert_eq!(other.known_generation(), second.generation);
    let replaced = global_copy();
    assert_eq!(replaced.generation, second.generation);
    assert_ne!(
        replaced.epoch, before.epoch,
        "revoke-all draws a fresh global epoch"
    );
    assert_eq!(reason(&process(), &bob), "revoked-all");

    let (carol, _) = process().create(new_session("carol"), now + 103).unwrap();
    assert_eq!(reason(&other, &carol), "valid");
    assert!(other.delete(&carol).unwrap(), "the store held it");
    assert!(!other.delete(&carol).unwrap(), "nothing left to delete");
    assert_eq!(reason(&process(), &carol), "unknown");
}

/// Authentication on a valid session: a foreign origin gets no user, and a persistent cookie
/// is renewed when (and only when) the session's window slid.
#[test]
fn a_valid_session_is_cross_origin_from_elsewhere_and_renews_a_persistent_cookie() {
    use memsession::config::DirConfig;
    use memsession::flow::authenticate::{authenticate, AuthRequest, Outcome};

    let server = Memcached::unix();
    let secret = ServerSecret::from_bytes(vec![3; 32]).unwrap();
    let store = SessionStore::new(server.client(), &secret, None, "a:", Duration::ZERO);
    let now = unix_now();
    let (id, _) = store.create(new_session("alice"), now).unwrap();
    let header = format!("memsession={}", id.to_cookie_value());
    let request = |passes_csrf_check| AuthRequest {
        cookie_header: Some(&header),
        passes_csrf_check,
    };
    let mut config = DirConfig::default();
    config.set("MemSessionCookiePersistent", "On").unwrap();
    match authenticate(&request(false), &config, &store, now + 1) {
        Outcome::CrossOrigin { id: named } => assert_eq!(named, id),
        _ => panic!("a valid session from a foreign origin was not refused as such"),
    }
    let cookie_at = |config: &DirConfig, at| match authenticate(&request(true), config, &store, at)
    {
        Outcome::Authenticated {
            session,
            set_cookie,
            ..
        } => {
            assert_eq!(session.record.user, "alice");
            set_cookie
        }
        _ => panic!("a valid session was refused at {at}"),
    };
    assert_eq!(
        cookie_at(&config, now + 1),
        None,
        "not slid: nothing to renew"
    );
    let renewed = cookie_at(&config, now + 100).expect("slid: the persistent cookie is renewed");
    assert!(
        renewed.starts_with(&header) && renewed.contains("Max-Age="),
        "{renewed}"
    );
    config.set("MemSessionCookiePersistent", "Off").unwrap();
    assert_eq!(
        cookie_at(&config, now + 200),
        None,
        "a browser-session cookie needs none"
    );
}

#[test]
fn a_multi_get_spans_two_servers_in_one_call() {
    let unix = Memcached::unix();
    let tcp = Memcached::tcp();
    let farm = StoreClient::new(vec![unix.address.clone(), tcp.address.clone()], TIMEOUT);

    // The routing contract, as seen through the client.
    assert_eq!(farm.server_index("session-1"), 1);
    assert_eq!(farm.server_index("session-2"), 0);

    let keys: Vec<String> = (0..20).map(|i| format!("session-{i}")).collect();
    let on_first = keys.iter().filter(|k| farm.server_index(k) == 0).count();
    assert!(
        on_first > 0 && on_first < keys.len(),
        "keys must spread over both servers"
    );

    let later = unix_now() + 600;
    for key in keys.iter().step_by(2) {
        farm.set(key, key.as_bytes(), later).unwrap();
    }
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let values = farm.get_multi(&refs).unwrap();
    for (i, (key, value)) in keys.iter().zip(&values).enumerate() {
        let want = (i % 2 == 0).then(|| key.as_bytes().to_vec());
        assert_eq!(value, &want, "{key}");
    }

    // Each key lives on the server it routes to, and only there.
    let alone = [unix.client(), tcp.client()];
    for key in keys.iter().step_by(2) {
        let home = farm.server_index(key);
        assert!(
            alone[home].get(key).unwrap().is_some(),
            "{key} on server {home}"
        );
        assert!(
            alone[1 - home].get(key).unwrap().is_none(),
            "{key} not on server {}",
            1 - home
        );
    }
    assert_eq!((farm.idle_connections(0), farm.idle_connections(1)), (1, 1));
}

#[test]
fn one_failed_server_fails_the_multi_get_and_trips_only_its_own_breaker() {
    let up = Memcached::unix();
    let down = ServerAddress::Unix(up.dir.join("absent.sock"));
    let farm = StoreClient::new(vec![up.address.clone(), down], TIMEOUT);
    let keys = ["session-2", "session-1"];
    assert_eq!(
        (farm.server_index(keys[0]), farm.server_index(keys[1])),
        (0, 1)
    );
    farm.set(keys[0], b"v", unix_now() + 600).unwrap();

    for _ in 0..3 {
        let err = farm.get_multi(&keys).unwrap_err();
        assert!(
            matches!(&err, StoreError::Connect(m) if m.contains("absent.sock")),
            "{err:?}"
        );
    }
    assert_eq!(farm.breaker_state(0), Some(BreakerState::Closed));
    assert_eq!(farm.breaker_state(1), Some(BreakerState::Open));

    let gets = |client: &StoreClient| -> u64 {
        let stats = client.stats(0).unwrap();
        stats
            .iter()
            .find(|(name, _)| name == "cmd_get")
            .unwrap()
            .1
            .parse()
            .unwrap()
    };
    let observer = up.client();
    let before = gets(&observer);
    assert_eq!(
        before, 0,
        "a failed connect to one server sends nothing to the other"
    );
    assert_eq!(farm.get_multi(&keys), Err(StoreError::CircuitOpen));
    assert_eq!(
        gets(&observer),
        before,
        "nothing is sent when one server is refused"
    );
    assert_eq!(farm.get(keys[0]).unwrap().as_deref(), Some(&b"v"[..]));
    assert_eq!(gets(&observer), before + 1);
}

#[test]
fn a_stopped_server_times_out_then_the_breaker_stops_paying_then_it_recovers() {
    for server in [Memcached::unix(), Memcached::tcp()] {
        let client = server.client();
        let key = "memsession:test:stop";
        client.set(key, b"v", unix_now() + 600).unwrap();
        assert_eq!(client.idle_connections(0), 1);

        server.signal("STOP");
        // A pooled connection and a fresh one (connect still succeeds: the kernel queues it).
        let fresh = server.client();
        for c in [&client, &fresh] {
            let started = Instant::now();
            assert_eq!(c.get(key), Err(StoreError::Timeout), "{}", server.address);
            let took = started.elapsed();
            assert!(
                took >= TIMEOUT - Duration::from_millis(1),
                "{}: gave up early: {took:?}",
                server.address
            );
            assert!(took <= TIMEOUT + SLACK, "{}: {took:?}", server.address);
        }
        assert_eq!(
            client.idle_connections(0),
            0,
            "a timed-out connection is never reused"
        );

        for _ in 0..2 {
            let started = Instant::now();
            assert_eq!(client.get(key), Err(StoreError::Timeout));
            assert!(started.elapsed() <= TIMEOUT + SLACK);
        }
        let opened = Instant::now();
        assert_eq!(client.breaker_state(0), Some(BreakerState::Open));
        // An open breaker costs no wait: a hundred refusals together take less than the one
        // timeout any of them would have paid.
        let started = Instant::now();
        for _ in 0..100 {
            assert_eq!(
                client.get_multi(&[key, "other"]),
                Err(StoreError::CircuitOpen)
            );
        }
        assert!(
            started.elapsed() < TIMEOUT,
            "an open breaker made callers wait: {:?}",
            started.elapsed()
        );

        server.signal("CONT");
        let deadline = Instant::now() + Duration::from_secs(5);
        let value = loop {
            match client.get(key) {
                Ok(value) => break value,
                Err(StoreError::CircuitOpen) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => panic!("{}: {e:?} after SIGCONT", server.address),
            }
        };
        let recovered = opened.elapsed();
        assert_eq!(value.as_deref(), Some(&b"v"[..]));
        assert!(
            recovered >= Duration::from_millis(1900),
            "probe only after the interval: {recovered:?}"
        );
        // ... and soon after it (the loop polls every 20 ms; a loaded machine may be late).
        assert!(recovered <= Duration::from_millis(3500), "{recovered:?}");
        assert_eq!(client.breaker_state(0), Some(BreakerState::Closed));
        assert_eq!(fresh.get(key).unwrap().as_deref(), Some(&b"v"[..]));
    }
}

#[test]
fn a_missing_socket_is_a_connect_error_and_trips_the_breaker() {
    let path = std::env::temp_dir().join(format!(
        "memsession-store-{}-absent.sock",
        std::process::id()
    ));
    let client = StoreClient::new(vec![ServerAddress::Unix(path.clone())], TIMEOUT);
    for _ in 0..3 {
        let err = client.get("k").unwrap_err();
        assert!(
            matches!(&err, StoreError::Connect(m) if m.contains(path.to_str().unwrap())),
            "{err:?}"
        );
        assert!(!err.is_timeout());
    }
    assert_eq!(
        client.set("k", b"v", unix_now() + 60),
        Err(StoreError::CircuitOpen)
    );
}

#[test]
fn a_restarted_server_is_reconnected_without_an_error() {
    let mut server = Memcached::unix();
    let client = server.client();
    let later = unix_now() + 600;
    client
        .set("memsession:test:restart", b"before", later)
        .unwrap();
    assert_eq!(client.idle_connections(0), 1);

    let _ = server.child.kill();
    let _ = server.child.wait();
    let ServerAddress::Unix(socket) = server.address.clone() else {
        unreachable!()
    };
    server.child = Memcached::spawn(&server.dir, &["-s", socket.to_str().unwrap(), "-a", "0700"]);
    server.wait_ready().unwrap();

    // The pooled connection is dead; the operation must still succeed on a new one.
    assert_eq!(
        client.get("memsession:test:restart").unwrap(),
        None,
        "a restart empties memcached"
    );
    client
        .set("memsession:test:restart", b"after", later)
        .unwrap();
    assert_eq!(client.breaker_state(0), Some(BreakerState::Closed));
}

#[test]
fn many_threads_share_one_client() {
    let server = Memcached::unix();
    let client = server.client();
    let later = unix_now() + 600;
    std::thread::scope(|s| {
        for t in 0..8 {
            let client = &client;
            s.spawn(move || {
                for i in 0..300 {
                    let key = format!("memsession:test:thread:{t}:{i}");
                    let value = format!("{t}/{i}").into_bytes();
                    client.set(&key, &value, later).unwrap();
                    let got = client.get_multi(&[&key, "memsession:test:none"]).unwrap();
                    assert_eq!(got, vec![Some(value.clone()), None]);
                    // Pipelined with whichever other threads ask at the same moment, each
                    // still gets exactly its own values, in its own order.
                    let shared = client
                        .get_multi_shared_on(0, &["memsession:test:none", &key])
                        .unwrap();
                    assert_eq!(shared, vec![None, Some(value)]);
                }
            });
        }
    });
    let idle = client.idle_connections(0);
    assert!((1..=8).contains(&idle), "{idle}");
}

fn measure(client: &StoreClient, iterations: usize) -> (Duration, Duration, Duration) {
    let keys = [
        "memsession:bench:record",
        "memsession:bench:epoch:user",
        "memsession:bench:epoch:global",
    ];
    let later = unix_now() + 600;
    for key in keys {
        client.set(key, &[7u8; 200], later).unwrap();
    }
    for _ in 0..1000 {
        client.get_multi(&keys).unwrap();
    }
    let mut samples = Vec::with_capacity(iterations);
    let started = Instant::now();
    for _ in 0..iterations {
        let t = Instant::now();
        let values = client.get_multi(&keys).unwrap();
        samples.push(t.elapsed());
        assert_eq!(values.len(), 3);
    }
    let mean = started.elapsed() / iterations as u32;
    samples.sort();
    (
        mean,
        samples[iterations / 2],
        samples[iterations * 99 / 100],
    )
}

#[test]
#[ignore = "a measurement, not a check: run with --ignored --nocapture (release build)"]
fn latency_of_a_three_key_multi_get_unix_vs_tcp() {
    const ITERATIONS: usize = 20_000;
    let unix = Memcached::unix();
    let tcp = Memcached::tcp();
    for _round in 0..2 {
        for (name, server) in [("unix", &unix), ("tcp", &tcp)] {
            let (mean, p50, p99) = measure(&server.client(), ITERATIONS);
            println!(
                "get_multi(3 keys, 200-byte values) over {name:4}: mean {:6.1} µs  p50 {:6.1} µs  p99 {:6.1} µs  ({ITERATIONS} iterations)",
                mean.as_secs_f64() * 1e6,
                p50.as_secs_f64() * 1e6,
                p99.as_secs_f64() * 1e6
            );
        }
    }
}

// ---- A farm of three servers: placement, failures of one, revocations (issue 16) ----

fn farm_of(servers: &[&Memcached]) -> StoreClient {
    StoreClient::new(servers.iter().map(|s| s.address.clone()).collect(), TIMEOUT)
}

fn farm_of_all(servers: &[Memcached]) -> StoreClient {
    farm_of(&servers.iter().collect::<Vec<_>>())
}

fn three_servers() -> [Memcached; 3] {
    [Memcached::unix(), Memcached::unix(), Memcached::unix()]
}

fn farm_store(client: StoreClient) -> SessionStore {
    let secret = ServerSecret::from_bytes(vec![9; 32]).unwrap();
    SessionStore::new(client, &secret, None, "farm:", Duration::ZERO)
}

fn new_session(user: &str) -> NewSession {
    NewSession {
        user: user.to_string(),
        auth_type: "Basic".to_string(),
        inactivity_timeout: Duration::from_secs(600),
        max_lifetime: Duration::from_secs(3600),
        credential_end: None,
        cap_to_credentials: false,
        ccache: None,
    }
}

const STRICT: Policy = Policy {
    inactivity_timeout: Duration::ZERO,
    max_lifetime: Duration::ZERO,
    extend: false,
};

fn cmd_gets(client: &StoreClient) -> u64 {
    client
        .stats(0)
        .unwrap()
        .iter()
        .find(|(name, _)| name == "cmd_get")
        .unwrap()
        .1
        .parse()
        .unwrap()
}

fn flush(server: &Memcached) {
    use std::io::{Read, Write};
    let ServerAddress::Unix(path) = &server.address else {
        panic!("unix only")
    };
    let mut stream = std::os::unix::net::UnixStream::connect(path).unwrap();
    stream.write_all(b"flush_all\r\n").unwrap();
    let mut reply = [0u8; 4];
    stream.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"OK\r\n");
}

/// What `server` of `store`'s farm holds as its copy of the global epoch.
fn global_copy_on(store: &SessionStore, server: usize) -> GlobalCopy {
    let stored = store
        .client()
        .get_on(server, store.global_epoch_key())
        .unwrap();
    GlobalCopy::parse(stored.as_deref()).expect("a global epoch copy")
}

/// Sessions made for `users` in turn until every server holds at least three of each user's.
fn spread_sessions(
    store: &SessionStore,
    users: &[&str],
    now: u64,
) -> Vec<(memsession::session::id::SessionId, String, usize)> {
    let servers = store.client().servers().len();
    let mut sessions = Vec::new();
    for round in 0..200 {
        let user = users[round % users.len()];
        let (id, _) = store.create(new_session(user), now).unwrap();
        let home = store.client().server_index(&store.keys_for(&id).store_key);
        sessions.push((id, user.to_string(), home));
        let enough = users.iter().all(|u| {
            (0..servers).all(|s| {
                sessions
                    .iter()
                    .filter(|(_, su, h)| su == u && *h == s)
                    .count()
                    >= 3
            })
        });
        if enough {
            return sessions;
        }
    }
    panic!("200 sessions and a server still lacks some");
}

#[test]
fn a_session_and_the_epochs_it_is_checked_against_live_on_one_server() {
    let servers = three_servers();
    let store = farm_store(farm_of_all(&servers));
    let now = unix_now();
    let sessions = spread_sessions(&store, &["alice", "bob"], now);
    let alone: Vec<StoreClient> = servers.iter().map(Memcached::client).collect();
    let deriver = store.derivers().next().unwrap();
    for (id, user, home) in &sessions {
        let keys = store.keys_for(id);
        for (server, client) in alone.iter().enumerate() {
            let held = client.get(&keys.store_key).unwrap().is_some();
            assert_eq!(
                held,
                server == *home,
                "record on server {server}, home {home}"
            );
        }
        // Its server holds a copy of both epochs it is checked against.
        assert!(alone[*home].get(&keys.global_epoch_key).unwrap().is_some());
        let user_key = deriver.user_epoch_key(user);
        assert!(alone[*home].get(&user_key).unwrap().is_some());
        store.validate(id, &STRICT, now).unwrap();
    }
    // Steady state: a session this process knows is one round trip to its own server only.
    for (id, _, home) in &sessions {
        let before: Vec<u64> = alone.iter().map(cmd_gets).collect();
        store.validate(id, &STRICT, now).unwrap();
        let after: Vec<u64> = alone.iter().map(cmd_gets).collect();
        for server in 0..3 {
            let asked = after[server] - before[server];
            if server == *home {
                assert_eq!(
                    asked, 3,
                    "record, global and user epoch, on server {server}"
                );
            } else {
                assert_eq!(
                    asked, 0,
                    "server {server} was asked for a session of {home}"
                );
            }
        }
    }
}

#[test]
fn a_dead_server_fails_only_its_sessions_and_logins_land_elsewhere() {
    let mut servers = three_servers();
    let store = farm_store(farm_of_all(&servers));
    let now = unix_now();
    let sessions = spread_sessions(&store, &["alice"], now);
    servers[1].child.kill().unwrap();
    servers[1].child.wait().unwrap();
    for (id, _, home) in &sessions {
        match (store.validate(id, &STRICT, now), home) {
            (Ok(_), 0 | 2) => {}
            (Err(Rejection::Store(_)), 1) => {}
            (other, home) => panic!("session on server {home}: {other:?}"),
        }
    }
    assert_eq!(store.client().breaker_state(0), Some(BreakerState::Closed));
    assert_eq!(store.client().breaker_state(1), Some(BreakerState::Open));
    assert_eq!(store.client().breaker_state(2), Some(BreakerState::Closed));
    // Logins keep working: an id landing on the dead server is replaced by another.
    for _ in 0..20 {
        let (id, _) = store.create(new_session("alice"), now).unwrap();
        assert_ne!(
            store.client().server_index(&store.keys_for(&id).store_key),
            1
        );
        store.validate(&id, &STRICT, now).unwrap();
    }
}

#[test]
fn a_flushed_server_ends_only_its_sessions_and_takes_new_ones() {
    let servers = three_servers();
    for flushed in 0..3 {
        let store = farm_store(farm_of_all(&servers));
        let now = unix_now();
        let sessions = spread_sessions(&store, &["alice", "bob"], now);
        flush(&servers[flushed]);
        for (id, _, home) in &sessions {
            let result = store.validate(id, &STRICT, now);
            if *home == flushed {
                assert!(matches!(result, Err(Rejection::Unknown)), "{result:?}");
            } else {
                assert!(
                    result.is_ok(),
                    "server {home}, {flushed} flushed: {result:?}"
                );
            }
        }
        // The flushed server takes sessions again, with fresh epochs.
        let more = spread_sessions(&store, &["alice"], now);
        assert!(more.iter().any(|(_, _, home)| *home == flushed));
        for (id, _, _) in &more {
            store.validate(id, &STRICT, now).unwrap();
        }
    }
}

#[test]
fn a_flushed_server_takes_the_farms_revocation_generation_from_the_others() {
    let servers = three_servers();
    let farm = || farm_of_all(&servers);
    let now = unix_now();
    let ctl = farm_store(farm());
    spread_sessions(&ctl, &["alice"], now);
    assert!(ctl.revoke_all().is_complete());
    let revocation = ctl.revoke_all();
    assert!(revocation.is_complete() && revocation.generation >= 2);
    flush(&servers[1]);
    // A node that never saw a revocation (its first login lands on the flushed server)
    // recreates that server's copy: at the generation the other servers carry, or every node
    // that has seen it would reset that server (and its new sessions) as one that missed a
    // revocation.
    let recreated = (0..60).find_map(|_| {
        let node = farm_store(farm());
        let (id, _) = node.create(new_session("bob"), now).unwrap();
        (node.client().server_index(&node.keys_for(&id).store_key) == 1).then_some(node)
    });
    let node = recreated.expect("60 first logins and none on server 1");
    assert_eq!(global_copy_on(&node, 1).generation, revocation.generation);
    let sessions = spread_sessions(&node, &["bob"], now);
    let seen = farm_store(farm()).with_behind_grace(Duration::ZERO);
    for (id, _, home) in &sessions {
        let result = seen.validate(id, &STRICT, now);
        assert!(result.is_ok(), "a session on {home}: {result:?}");
    }
}

#[test]
fn a_revocation_reports_the_server_it_missed_and_a_rerun_completes_it() {
    let servers = three_servers();
    let farm = || farm_of_all(&servers);
    let now = unix_now();
    let node_a = farm_store(farm());
    let sessions = spread_sessions(&node_a, &["alice", "bob"], now);
    // Node B never resets a server (a long grace): the re-run completes the revocation.
    let node_b = farm_store(farm()).with_behind_grace(Duration::from_secs(3600));
    for (id, _, _) in &sessions {
        node_b.validate(id, &STRICT, now).unwrap();
    }
    let ctl = farm_store(farm());
    servers[2].signal("STOP");
    let revocation = ctl.revoke_user("alice");
    servers[2].signal("CONT");
    let missed: Vec<usize> = revocation.missed.iter().map(|(s, _)| *s).collect();
    assert_eq!(missed, vec![2], "{revocation:?}");
    assert!(!revocation.is_complete());
    for (id, user, home) in &sessions {
        let result = node_b.validate(id, &STRICT, now);
        match (user.as_str(), home) {
            ("alice", 0 | 1) => assert!(matches!(result, Err(Rejection::Revoked(_))), "{result:?}"),
            // The server that missed it still serves alice: the window the README states
            // (a node resets it only after the grace).
            _ => assert!(result.is_ok(), "{user} on {home}: {result:?}"),
        }
    }
    let rerun = ctl.revoke_user("alice");
    assert!(rerun.is_complete(), "{rerun:?}");
    for (id, user, home) in &sessions {
        let result = node_b.validate(id, &STRICT, now);
        match user.as_str() {
            "alice" => assert!(matches!(result, Err(Rejection::Revoked(_))), "{result:?}"),
            _ => assert!(result.is_ok(), "bob on {home} must survive: {result:?}"),
        }
    }
}

#[test]
fn a_server_that_missed_a_revocation_is_reset_by_a_node_that_saw_it() {
    let servers = three_servers();
    let farm = || farm_of_all(&servers);
    let now = unix_now();
    let grace = Duration::from_millis(300);
    let node = farm_store(farm()).with_behind_grace(grace);
    let sessions = spread_sessions(&node, &["alice", "bob"], now);
    let before = global_copy_on(&node, 0);
    let ctl = farm_store(farm());
    servers[0].signal("STOP");
    let revocation = ctl.revoke_all();
    servers[0].signal("CONT");
    assert_eq!(
        revocation
            .missed
            .iter()
            .map(|(s, _)| *s)
            .collect::<Vec<_>>(),
        vec![0]
    );
    // The node learns the new generation from any session on a server that took it.
    let elsewhere = sessions.iter().find(|(_, _, home)| *home != 0).unwrap();
    assert!(matches!(
        node.validate(&elsewhere.0, &STRICT, now),
        Err(Rejection::Revoked(_))
    ));
    assert_eq!(node.known_generation(), revocation.generation);
    std::thread::sleep(grace + Duration::from_millis(50));
    let mut reset = 0;
    for (id, _, home) in &sessions {
        let result = node.validate(id, &STRICT, now);
        assert!(
            matches!(result, Err(Rejection::Revoked(_) | Rejection::ServerReset)),
            "a session on {home} survived revoke-all: {result:?}"
        );
        reset += usize::from(matches!(result, Err(Rejection::ServerReset)));
    }
    assert_eq!(reset, 1, "the first session met on server 0 resets it");
    let after = global_copy_on(&node, 0);
    assert_eq!(
        after.generation, revocation.generation,
        "the reset server is no longer behind"
    );
    assert_ne!(after.epoch, before.epoch, "a reset draws a fresh epoch");
    // A fresh node that never saw the revocation serves nothing revoked either now.
    let fresh = farm_store(farm());
    for (id, _, _) in &sessions {
        assert!(fresh.validate(id, &STRICT, now).is_err());
    }
    // And the reset server takes new sessions, not behind any more.
    let more = spread_sessions(&fresh, &["bob"], now);
    for (id, _, _) in &more {
        node.validate(id, &STRICT, now).unwrap();
    }
}

#[test]
fn shared_round_trips_are_per_server_a_stopped_one_delays_no_other() {
    let servers = [Memcached::unix(), Memcached::unix()];
    let farm = farm_of(&[&servers[0], &servers[1]]);
    let later = unix_now() + 600;
    farm.set_permanent_on(0, "k", b"v").unwrap();
    farm.set(&"x".repeat(10), b"w", later).unwrap();
    servers[1].signal("STOP");
    let slow = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..8 {
            let (farm, slow) = (&farm, &slow);
            s.spawn(move || {
                for _ in 0..20 {
                    let server = t % 2;
                    let started = Instant::now();
                    let result = farm.get_multi_shared_on(server, &["k", "none"]);
                    let took = started.elapsed();
                    if server == 0 {
                        assert_eq!(result.unwrap(), vec![Some(b"v".to_vec()), None]);
                        if took > TIMEOUT / 2 {
                            slow.fetch_add(1, Ordering::Relaxed);
                        }
                    } else {
                        assert!(
                            matches!(result, Err(StoreError::Timeout | StoreError::CircuitOpen)),
                            "{result:?}"
                        );
                        assert!(took < TIMEOUT + SLACK, "{took:?}");
                    }
                }
            });
        }
    });
    servers[1].signal("CONT");
    assert_eq!(
        slow.load(Ordering::Relaxed),
        0,
        "requests to the healthy server waited on the stopped one"
    );
    assert_eq!(farm.breaker_state(0), Some(BreakerState::Closed));
    assert_ne!(farm.breaker_state(1), Some(BreakerState::Closed));
}

// ---- MemSessionReplicas 1: every session on its home server and its replica (issue 16) ----

fn replicated(client: StoreClient) -> SessionStore {
    farm_store(client).with_replicas(true)
}

fn copies(servers: &[Memcached; 3], key: &str) -> Vec<bool> {
    servers
        .iter()
        .map(|s| s.client().get(key).unwrap().is_some())
        .collect()
}

#[test]
fn replicas_need_a_second_server_and_can_be_left_off() {
    let servers = three_servers();
    let one = farm_of(&[&servers[0]]);
    assert!(
        !replicated(one).replicas(),
        "one server: nowhere for a copy"
    );
    assert!(replicated(farm_of_all(&servers)).replicas());
    assert!(!farm_store(farm_of_all(&servers))
        .with_replicas(false)
        .replicas());
}

#[test]
fn with_replicas_and_one_of_two_servers_dead_a_login_still_gets_one_copy() {
    // Every pair has the dead server in it: after the draws that look for two working
    // servers, one copy is better than no login.
    let mut servers = [Memcached::unix(), Memcached::unix()];
    let store = replicated(farm_of_all(&servers));
    servers[1].child.kill().unwrap();
    servers[1].child.wait().unwrap();
    let now = unix_now();
    for _ in 0..5 {
        let (id, _) = store.create(new_session("alice"), now).unwrap();
        let key = store.keys_for(&id).store_key;
        assert_eq!(store.client().server_index(&key), 0);
        store.validate(&id, &STRICT, now).unwrap();
    }
}

#[test]
fn a_session_whose_home_fails_and_replica_lacks_it_keeps_its_cookie() {
    // Home stopped (a timeout), the replica flushed: nothing says the session is gone, so
    // the answer is a store failure (the cookie kept), not "unknown" (the cookie expired).
    let servers = three_servers();
    let store = replicated(farm_of_all(&servers));
    let now = unix_now();
    let (id, _) = store.create(new_session("alice"), now).unwrap();
    let keys = store.keys_for(&id);
    let home = store.client().server_index(&keys.store_key);
    let replica = store.replica_of(&keys.store_key).unwrap();
    flush(&servers[replica]);
    servers[home].signal("STOP");
    let result = store.validate(&id, &STRICT, now);
    servers[home].signal("CONT");
    assert!(matches!(result, Err(Rejection::Store(_))), "{result:?}");
}

#[test]
fn with_replicas_a_session_lives_on_two_servers_and_a_request_asks_one() {
    let servers = three_servers();
    let store = replicated(farm_of_all(&servers));
    let now = unix_now();
    let sessions = spread_sessions(&store, &["alice", "bob"], now);
    let deriver = store.derivers().next().unwrap();
    let alone: Vec<StoreClient> = servers.iter().map(Memcached::client).collect();
    for (id, user, home) in &sessions {
        let keys = store.keys_for(id);
        let replica = store.replica_of(&keys.store_key).unwrap();
        assert_ne!(replica, *home);
        let want: Vec<bool> = (0..3).map(|s| s == *home || s == replica).collect();
        assert_eq!(copies(&servers, &keys.store_key), want, "home {home}");
        for server in [*home, replica] {
            assert!(alone[server].get(&keys.global_epoch_key).unwrap().is_some());
            assert!(alone[server]
                .get(&deriver.user_epoch_key(user))
                .unwrap()
                .is_some());
        }
        store.validate(id, &STRICT, now).unwrap();
    }
    for (id, _, home) in &sessions {
        let before: Vec<u64> = alone.iter().map(cmd_gets).collect();
        store.validate(id, &STRICT, now).unwrap();
        let after: Vec<u64> = alone.iter().map(cmd_gets).collect();
        for server in 0..3 {
            let want = if server == *home { 3 } else { 0 };
            assert_eq!(after[server] - before[server], want, "server {server}");
        }
    }
}

#[test]
fn with_replicas_a_flushed_or_dead_server_loses_no_session_and_home_is_repaired() {
    let mut servers = three_servers();
    for lost in 0..3 {
        let store = replicated(farm_of_all(&servers));
        let now = unix_now();
        let sessions = spread_sessions(&store, &["alice", "bob"], now);
        flush(&servers[lost]);
        let mut repaired = 0;
        for (id, _, home) in &sessions {
            store
                .validate(id, &STRICT, now)
                .unwrap_or_else(|e| panic!("home {home}, {lost} flushed: {e:?}"));
            let key = store.keys_for(id).store_key;
            if *home == lost && copies(&servers, &key)[lost] {
                repaired += 1;
            }
        }
        let on_lost = sessions.iter().filter(|(_, _, h)| *h == lost).count();
        // Epoch copies agree across the farm (a missing one is created with the value the
        // others hold), so every session comes back home.
        assert_eq!(repaired, on_lost, "sessions repaired on {lost}");
        // Another node serves every one from its home server alone again.
        let other = replicated(farm_of_all(&servers));
        for (id, _, _) in &sessions {
            other.validate(id, &STRICT, now).unwrap();
        }
        let alone: Vec<StoreClient> = servers.iter().map(Memcached::client).collect();
        for (id, _, home) in &sessions {
            let before: Vec<u64> = alone.iter().map(cmd_gets).collect();
            other.validate(id, &STRICT, now).unwrap();
            let after: Vec<u64> = alone.iter().map(cmd_gets).collect();
            for server in 0..3 {
                let want = if server == *home { 3 } else { 0 };
                assert_eq!(after[server] - before[server], want, "server {server}");
            }
        }
        println!("server {lost} flushed: {repaired} of {on_lost} sessions repaired at home");
    }
    // Killed: every session is served from the other copy.
    let store = replicated(farm_of_all(&servers));
    let now = unix_now();
    let sessions = spread_sessions(&store, &["alice"], now);
    servers[1].child.kill().unwrap();
    servers[1].child.wait().unwrap();
    for (id, _, home) in &sessions {
        store
            .validate(id, &STRICT, now)
            .unwrap_or_else(|e| panic!("home {home}, server 1 dead: {e:?}"));
    }
    // Logins keep two copies while one server is out, choosing pairs without it.
    for _ in 0..10 {
        let (id, _) = store.create(new_session("alice"), now).unwrap();
        let key = store.keys_for(&id).store_key;
        assert_ne!(store.client().server_index(&key), 1);
        assert_ne!(store.replica_of(&key), Some(1));
    }
}

#[test]
fn a_revoked_session_is_not_revived_from_its_replica() {
    // Alice is revoked, then the home server of some of her sessions loses them (flushed):
    // their copies on the replicas hold the epochs from before the revocation and must not
    // be served, by a node that never saw them either. Bob's sessions all survive.
    let servers = three_servers();
    for lost in 0..3 {
        let store = replicated(farm_of_all(&servers));
        let now = unix_now();
        let sessions = spread_sessions(&store, &["alice", "bob"], now);
        assert!(store.revoke_user("alice").is_complete());
        flush(&servers[lost]);
        let node = replicated(farm_of_all(&servers));
        let mut from_replica = 0;
        for (id, user, home) in &sessions {
            let result = node.validate(id, &STRICT, now);
            if user == "alice" {
                assert!(
                    matches!(result, Err(Rejection::Revoked(_))),
                    "alice's session on {home}, {lost} flushed: {result:?}"
                );
                from_replica += usize::from(*home == lost);
            } else {
                assert!(result.is_ok(), "bob on {home}, {lost} flushed: {result:?}");
            }
        }
        assert!(
            from_replica >= 3,
            "alice's sessions on {lost}: {from_replica}"
        );
        // Nor did a repair put any of alice's sessions back home.
        for (id, user, home) in &sessions {
            if user == "alice" && *home == lost {
                let key = store.keys_for(id).store_key;
                assert!(
                    !copies(&servers, &key)[lost],
                    "alice's session repaired on {lost}"
                );
            }
        }
    }
}

#[test]
fn a_copy_on_a_server_without_its_epochs_does_not_validate() {
    // The replica's server lost its epoch copies but kept the records (an eviction, or
    // someone deleting keys); the home copy is gone. The replica's copy must fail closed.
    let servers = three_servers();
    let store = replicated(farm_of_all(&servers));
    let now = unix_now();
    let sessions = spread_sessions(&store, &["alice"], now);
    let deriver = store.derivers().next().unwrap();
    let (id, _, home) = &sessions[0];
    let keys = store.keys_for(id);
    let replica = store.replica_of(&keys.store_key).unwrap();
    let global_copy = servers[replica]
        .client()
        .get(&keys.global_epoch_key)
        .unwrap();
    servers[replica]
        .client()
        .delete(&keys.global_epoch_key)
        .unwrap();
    servers[*home].client().delete(&keys.store_key).unwrap();
    let node = replicated(farm_of_all(&servers));
    let result = node.validate(id, &STRICT, now);
    assert!(
        matches!(result, Err(Rejection::Revoked(_))),
        "no global epoch on the replica's server: {result:?}"
    );
    // The same with the user's epoch gone instead.
    servers[replica]
        .client()
        .set_permanent_on(0, &keys.global_epoch_key, &global_copy.unwrap())
        .unwrap();
    let (id, _, home) = sessions
        .iter()
        .find(|(i, _, _)| {
            let k = store.keys_for(i).store_key;
            store.replica_of(&k) == Some(replica)
        })
        .unwrap();
    let keys = store.keys_for(id);
    servers[replica]
        .client()
        .delete(&deriver.user_epoch_key("alice"))
        .unwrap();
    servers[*home].client().delete(&keys.store_key).unwrap();
    let node = replicated(farm_of_all(&servers));
    let result = node.validate(id, &STRICT, now);
    assert!(
        matches!(result, Err(Rejection::Revoked(_))),
        "no user epoch on the replica's server: {result:?}"
    );
}

#[test]
fn a_logout_deletes_both_copies_and_a_sliding_window_moves_on_both() {
    use memsession::session::record;
    let servers = three_servers();
    let store = replicated(farm_of_all(&servers));
    let now = unix_now();
    let sessions = spread_sessions(&store, &["alice"], now);
    let sliding = Policy {
        inactivity_timeout: Duration::ZERO,
        max_lifetime: Duration::ZERO,
        extend: true,
    };
    let later = now + 400; // past a meaningful part of the 600 s window
    for (id, _, home) in &sessions {
        let keys = store.keys_for(id);
        let replica = store.replica_of(&keys.store_key).unwrap();
        let validated = store.validate(id, &sliding, later).unwrap();
        assert!(validated.refreshed, "home {home}");
        for server in [*home, replica] {
            let sealed = servers[server]
                .client()
                .get(&keys.store_key)
                .unwrap()
                .unwrap();
            let copy = record::open(&sealed, &keys).unwrap();
            assert_eq!(copy.last_seen, later, "the copy on {server} (home {home})");
        }
    }
    for (id, _, home) in &sessions {
        assert!(store.delete(id).unwrap());
        let key = store.keys_for(id).store_key;
        assert_eq!(copies(&servers, &key), vec![false; 3], "home {home}");
        assert!(matches!(
            store.validate(id, &STRICT, now),
            Err(Rejection::Unknown)
        ));
    }
}

#[test]
fn a_replica_that_missed_a_revocation_is_never_copied_home() {
    // Alice is revoked while the replica of one of her sessions is stopped (it missed it);
    // then the session's home server is flushed. The replica still holds the old epochs: it
    // may serve the session only within the window README states (until it is reset), and
    // its copy is never written home, where it would outlive that reset.
    let servers = three_servers();
    let grace = Duration::from_millis(300);
    let farm = || farm_of_all(&servers);
    let node = replicated(farm()).with_behind_grace(grace);
    let now = unix_now();
    let sessions = spread_sessions(&node, &["alice", "bob"], now);
    let (id, _, home) = sessions.iter().find(|(_, u, _)| u == "alice").unwrap();
    let key = node.keys_for(id).store_key;
    let replica = node.replica_of(&key).unwrap();
    servers[replica].signal("STOP");
    let revocation = replicated(farm()).revoke_user("alice");
    servers[replica].signal("CONT");
    assert_eq!(
        revocation
            .missed
            .iter()
            .map(|(s, _)| *s)
            .collect::<Vec<_>>(),
        vec![replica]
    );
    // The node learns the revocation from a session on a server that took it.
    let elsewhere = sessions
        .iter()
        .find(|(_, _, h)| *h != replica)
        .map(|(i, _, _)| i)
        .unwrap();
    let _ = node.validate(elsewhere, &STRICT, now);
    assert_eq!(node.known_generation(), revocation.generation);
    flush(&servers[*home]);
    let first = node.validate(id, &STRICT, now);
    assert!(
        !copies(&servers, &key)[*home],
        "a copy from a replica that missed a revocation was written home ({first:?})"
    );
    std::thread::sleep(grace + Duration::from_millis(50));
    let result = node.validate(id, &STRICT, now);
    assert!(result.is_err(), "served after the grace: {result:?}");
    assert!(!copies(&servers, &key)[*home]);
    let fresh = replicated(farm());
    assert!(fresh.validate(id, &STRICT, now).is_err());
}

#[test]
fn a_write_back_served_from_the_replica_asks_a_silent_home_once() {
    use memsession::session::record;
    let servers = three_servers();
    let store = replicated(farm_of_all(&servers));
    let now = unix_now();
    let sessions = spread_sessions(&store, &["alice"], now);
    let (id, _, home) = &sessions[0];
    let keys = store.keys_for(id);
    let replica = store.replica_of(&keys.store_key).unwrap();
    let sliding = Policy {
        inactivity_timeout: Duration::ZERO,
        max_lifetime: Duration::ZERO,
        extend: true,
    };
    servers[*home].signal("STOP");
    let started = Instant::now();
    let validated = store.validate(id, &sliding, now + 400);
    let took = started.elapsed();
    servers[*home].signal("CONT");
    assert!(validated.unwrap().refreshed);
    assert!(
        took < TIMEOUT + SLACK,
        "{took:?}: the silent home server was asked twice"
    );
    let sealed = servers[replica]
        .client()
        .get(&keys.store_key)
        .unwrap()
        .unwrap();
    assert_eq!(record::open(&sealed, &keys).unwrap().last_seen, now + 400);
}
