//! The store client against a real memcached that speaks TLS (`-Z`, verifying client
//! certificates) and asks for ASCII authentication (`-Y`), on loopback TCP: what
//! `MemSessionTLSCAFile`, `MemSessionTLSClientCertificate` and `MemSessionAuthFile` promise.
//! Certificates come from `tests/tls/make-certs.sh` (openssl). memcached or openssl missing
//! is a failure, never a skip.
//!
//! Cost figures: `cargo test --release --test store_tls -- --ignored --nocapture`.
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use memsession::config::store_transport;
use memsession::store::address::ServerAddress;
use memsession::store::client::{StoreClient, StoreError};
use memsession::store::transport::Transport;

const TIMEOUT: Duration = Duration::from_millis(500);
const AUTH: &str = "farm:s3cret-pw\n";

/// A TLS memcached with an auth file, its certificates, killed on drop.
struct TlsMemcached {
    child: Child,
    port: u16,
    /// The same memcached without TLS (`notls:`), for comparison.
    plain_port: u16,
    dir: PathBuf,
}

impl TlsMemcached {
    fn start(name: &str) -> TlsMemcached {
        TlsMemcached::start_as(name, "server")
    }

    /// `certificate`: which of make-certs.sh's server certificates memcached presents.
    fn start_as(name: &str, certificate: &str) -> TlsMemcached {
        let dir =
            std::env::temp_dir().join(format!("memsession-tls-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let made = Command::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/tls/make-certs.sh"
        ))
        .arg(&dir)
        .status()
        .expect("run tests/tls/make-certs.sh (needs openssl: apt-get install openssl)");
        assert!(made.success(), "make-certs.sh failed");
        write_private(&dir.join("auth"), AUTH);
        let pem = |f: &str| dir.join(f).to_string_lossy().into_owned();
        let tls = format!(
            "ssl_chain_cert={},ssl_key={},ssl_ca_cert={},ssl_verify_mode=3",
            pem(&format!("{certificate}.pem")),
            pem(&format!("{certificate}.key")),
            pem("ca.pem")
        );
        let free = || {
            TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        for _ in 0..5 {
            let (port, plain_port) = (free(), free());
            let listen = format!("127.0.0.1:{port},notls:127.0.0.1:{plain_port}");
            let log = std::fs::File::create(dir.join("memcached.log")).unwrap();
            let child = Command::new("/usr/bin/memcached")
                .args([
                    "-U", "0", "-m", "16", "-t", "2", "-u", "root", "-l", &listen,
                ])
                .args(["-Z", "-o", &tls, "-Y", &pem("auth")])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("start memcached (apt-get install memcached)");
            let mut server = TlsMemcached {
                child,
                port,
                plain_port,
                dir: dir.clone(),
            };
            if server.wait_ready(certificate == "server") {
                return server;
            }
        }
        panic!(
            "TLS memcached never became ready: {}",
            std::fs::read_to_string(dir.join("memcached.log")).unwrap_or_default()
        );
    }

    /// `verify`: a TLS client can check it is up; else any TCP connect says so.
    fn wait_ready(&mut self, verify: bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            let up = match verify {
                true => self.client(&self.transport(true, true)).version(0).is_ok(),
                false => std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
            };
            if up {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// The transport the directives would build: the test CA, optionally the client
    /// certificate and the auth file.
    fn transport(&self, client_cert: bool, auth: bool) -> Transport {
        let ca = store_transport::read_ca(&self.file("ca.pem")).unwrap();
        let client = client_cert.then(|| {
            store_transport::read_client(&self.file("client.pem"), &self.file("client.key"))
                .unwrap()
        });
        let auth = auth.then(|| store_transport::read_auth(&self.file("auth")).unwrap());
        store_transport::build(Some(&ca), client.as_ref(), auth.as_ref()).unwrap()
    }

    fn client(&self, transport: &Transport) -> StoreClient {
        self.client_for("127.0.0.1", transport)
    }

    fn client_for(&self, host: &str, transport: &Transport) -> StoreClient {
        let address = ServerAddress::Tcp {
            host: host.into(),
            port: self.port,
        };
        StoreClient::new(vec![address], TIMEOUT).with_transport(transport.clone())
    }
}

impl Drop for TlsMemcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn write_private(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

fn far_future() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600
}

fn connect_error(result: Result<impl std::fmt::Debug, StoreError>) -> String {
    match result {
        Err(StoreError::Connect(message)) => message,
        other => panic!("expected a connect error, got {other:?}"),
    }
}

#[test]
fn a_verified_authenticated_tls_connection_carries_the_store() {
    let server = TlsMemcached::start("ok");
    for host in ["127.0.0.1", "localhost"] {
        let client = server.client_for(host, &server.transport(true, true));
        client
            .set("memsession:tls", b"over tls", far_future())
            .unwrap();
        assert_eq!(
            client.get("memsession:tls").unwrap().as_deref(),
            Some(&b"over tls"[..])
        );
        let many: Vec<String> = (0..50).map(|i| format!("memsession:tls:{i}")).collect();
        for key in &many {
            client.set(key, &[b'x'; 4000], far_future()).unwrap();
        }
        let keys: Vec<&str> = many.iter().map(String::as_str).collect();
        let values = client.get_multi(&keys).unwrap();
        assert!(values
            .iter()
            .all(|v| v.as_deref() == Some(&[b'x'; 4000][..])));
        assert_eq!(
            client.idle_connections(0),
            1,
            "the connection is pooled and reused"
        );
    }
}

#[test]
fn a_server_the_ca_did_not_vouch_for_is_refused() {
    let server = TlsMemcached::start("wrong-ca");
    let ca = store_transport::read_ca(&server.file("other-ca.pem")).unwrap();
    let auth = store_transport::read_auth(&server.file("auth")).unwrap();
    let transport = store_transport::build(Some(&ca), None, Some(&auth)).unwrap();
    let message = connect_error(server.client(&transport).get("memsession:tls"));
    assert!(
        message.contains("TLS") && message.contains("certificate"),
        "{message}"
    );
}

#[test]
fn a_name_the_certificate_does_not_hold_is_refused() {
    // Issued by the right CA, but for elsewhere.example, not the 127.0.0.1 asked for.
    let server = TlsMemcached::start_as("wrong-name", "elsewhere");
    let message = connect_error(
        server
            .client(&server.transport(true, true))
            .get("memsession:tls"),
    );
    assert!(
        message.contains("TLS") && message.contains("certificate"),
        "{message}"
    );
}

#[test]
fn wrong_or_missing_credentials_are_a_connect_error_naming_the_auth_file() {
    let server = TlsMemcached::start("auth");
    let mut transport = server.transport(true, false);
    let unauthenticated = server.client(&transport).get("memsession:tls");
    assert!(
        matches!(&unauthenticated, Err(StoreError::ServerError(m)) if m.contains("unauthenticated")),
        "without MemSessionAuthFile memcached must refuse every command: {unauthenticated:?}"
    );
    let wrong = server.dir.join("wrong-auth");
    write_private(&wrong, "farm:not-the-password\n");
    transport.auth = Some(
        store_transport::read_auth(wrong.to_str().unwrap())
            .unwrap()
            .credentials,
    );
    let message = connect_error(server.client(&transport).get("memsession:tls"));
    assert!(message.contains("MemSessionAuthFile"), "{message}");
    assert!(
        !message.contains("not-the-password"),
        "the password reached a message: {message}"
    );
}

#[test]
fn without_a_client_certificate_a_verifying_server_refuses() {
    let server = TlsMemcached::start("no-client-cert");
    let result = server
        .client(&server.transport(false, true))
        .get("memsession:tls");
    assert!(
        result.is_err(),
        "ssl_verify_mode=3 served a client without a certificate"
    );
}

#[test]
fn plain_tcp_to_a_tls_server_gets_no_answer() {
    let server = TlsMemcached::start("plain");
    let result = server.client(&Transport::default()).get("memsession:tls");
    assert!(
        result.is_err(),
        "a plain-text request was answered by a TLS server: {result:?}"
    );
}

#[test]
#[ignore = "a measurement, not a check: run with --ignored --nocapture (release build)"]
fn cost_of_tls_per_three_key_multi_get() {
    const ITERATIONS: usize = 20_000;
    let server = TlsMemcached::start("cost");
    let auth = store_transport::read_auth(&server.file("auth")).unwrap();
    let plain_transport = store_transport::build(None, None, Some(&auth)).unwrap();
    let plain = StoreClient::new(
        vec![ServerAddress::Tcp {
            host: "127.0.0.1".into(),
            port: server.plain_port,
        }],
        TIMEOUT,
    )
    .with_transport(plain_transport);
    let tls = server.client(&server.transport(true, true));
    let keys = ["memsession:c:1", "memsession:c:2", "memsession:c:3"];
    for key in keys {
        tls.set(key, &[7u8; 200], far_future()).unwrap();
    }
    let time = |client: &StoreClient| {
        let started = Instant::now();
        for _ in 0..ITERATIONS {
            client.get_multi(&keys).unwrap();
        }
        started.elapsed().as_secs_f64() * 1e6 / ITERATIONS as f64
    };
    for round in 0..3 {
        let (p, t) = (time(&plain), time(&tls));
        println!(
            "round {round}: get_multi(3 keys, 200-byte values), both authenticated: TCP \
             {p:.1} µs, TLS {t:.1} µs, TLS costs {:.1} µs more",
            t - p
        );
    }
    let started = Instant::now();
    for _ in 0..200 {
        server
            .client(&server.transport(true, true))
            .version(0)
            .unwrap();
    }
    println!(
        "a new connection (TCP connect, TLS handshake with client certificate, authentication, \
         version): {:.0} µs",
        started.elapsed().as_secs_f64() * 1e6 / 200.0
    );
}
