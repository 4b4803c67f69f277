//! Server-scope configuration (main server and virtual hosts).
use std::time::Duration;

use super::duration::parse_duration;
use super::secret_file::{self, ServerSecret};
use super::store_transport::{self, AuthFile, CaFile, ClientCertificate};
use super::values;
use super::{directive_error, inherit};
use crate::store::address::ServerAddress;
use crate::store::transport::Transport;

pub const DEFAULT_SERVER: &str = "unix:/run/memsession/memcached.sock";
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(200);
pub const DEFAULT_KEY_PREFIX: &str = "memsession:";
/// A timeout this long would let a stuck store hold a worker hostage.
const MAX_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServerConfig {
    pub servers: Option<Vec<ServerAddress>>,
    pub timeout: Option<Duration>,
    pub local_cache: Option<Duration>,
    pub key_prefix: Option<String>,
    pub secrets: Option<Secrets>,
    pub tls_ca: Option<CaFile>,
    pub tls_client: Option<ClientCertificate>,
    pub auth: Option<AuthFile>,
    /// `MemSessionReplicas 0|1`: copies of each session beyond the first.
    pub replicas: Option<u8>,
    /// Every `MemSessionCookieName` of this server's sections (and, for a virtual host, of
    /// the main server's): session cookies no backend gets (`MemSessionStripCookie`).
    pub cookie_names: Vec<String>,
}

/// `MemSessionSecretFile current [previous]`: the secret new sessions are issued under, and
/// the one being rotated out, whose sessions stay valid until they end.
#[derive(Clone, Debug, PartialEq)]
pub struct Secrets {
    pub current: ServerSecret,
    pub previous: Option<ServerSecret>,
    /// The files, as configured (for messages and memsessionctl).
    pub files: Vec<String>,
}

pub const SECRET_DIRECTIVE: &str = "MemSessionSecretFile";

impl ServerConfig {
    pub fn set(&mut self, directive: &str, arg: &str) -> Result<(), String> {
        let named = |detail: String| directive_error(directive, detail);
        match directive {
            "MemSessionServers" => {
                let address = ServerAddress::parse(arg).map_err(named)?;
                let servers = self.servers.get_or_insert_with(Vec::new);
                if servers.contains(&address) {
                    return Err(named(format!("{arg} is listed twice")));
                }
                servers.push(address);
            }
            "MemSessionTimeout" => {
                let timeout = parse_duration(arg).map_err(named)?;
                if timeout.is_zero() || timeout > MAX_TIMEOUT {
                    return Err(named(format!(
                        "'{arg}' must be more than 0 and at most {}s",
                        MAX_TIMEOUT.as_secs()
                    )));
                }
                self.timeout = Some(timeout);
            }
            "MemSessionLocalCache" => self.local_cache = Some(parse_duration(arg).map_err(named)?),
            "MemSessionKeyPrefix" => {
                self.key_prefix = Some(values::parse_key_prefix(arg).map_err(named)?)
            }
            "MemSessionReplicas" => {
                self.replicas = Some(match arg {
                    "0" => 0,
                    "1" => 1,
                    _ => {
                        return Err(named(format!(
                            "'{arg}' must be 0 or 1 (copies of each session beyond the first)"
                        )))
                    }
                })
            }
            SECRET_DIRECTIVE | store_transport::CLIENT_DIRECTIVE => {
                return self.set_words(directive, &[arg])
            }
            store_transport::CA_DIRECTIVE => self.tls_ca = Some(store_transport::read_ca(arg)?),
            store_transport::AUTH_DIRECTIVE => self.auth = Some(store_transport::read_auth(arg)?),
            _ => return Err(directive_error(directive, "is not a server directive")),
        }
        Ok(())
    }

    /// A directive with all its words (`MemSessionSecretFile` takes one or two; the others
    /// one each, applied in order).
    pub fn set_words(&mut self, directive: &str, words: &[&str]) -> Result<(), String> {
        let named = |detail: String| directive_error(directive, detail);
        if directive == store_transport::CLIENT_DIRECTIVE {
            let [chain, key] = words else {
                return Err(named(
                    "takes the certificate chain file and the private key file".into(),
                ));
            };
            self.tls_client = Some(store_transport::read_client(chain, key)?);
            return Ok(());
        }
        if directive != SECRET_DIRECTIVE {
            return words.iter().try_for_each(|word| self.set(directive, word));
        }
        let (current, previous) = match words {
            [current] => (*current, None),
            [current, previous] => (*current, Some(*previous)),
            _ => {
                return Err(named(
                    "takes one file, or the current and the previous".into(),
                ))
            }
        };
        if self.secrets.is_some() {
            return Err(named("is given twice for this server".to_string()));
        }
        let read = |path: &str| secret_file::read(std::path::Path::new(path)).map_err(named);
        let secrets = Secrets {
            current: read(current)?,
            previous: previous.map(read).transpose()?,
            files: words.iter().map(|word| word.to_string()).collect(),
        };
        if secrets.previous.as_ref() == Some(&secrets.current) {
            return Err(named("the previous secret is the current one".to_string()));
        }
        self.secrets = Some(secrets);
        Ok(())
    }

    /// `self` is the main server, `vhost` a virtual host.
    pub fn merge(&self, vhost: &ServerConfig) -> ServerConfig {
        let mut merged = ServerConfig {
            servers: inherit(&vhost.servers, &self.servers),
            timeout: inherit(&vhost.timeout, &self.timeout),
            local_cache: inherit(&vhost.local_cache, &self.local_cache),
            key_prefix: inherit(&vhost.key_prefix, &self.key_prefix),
            secrets: inherit(&vhost.secrets, &self.secrets),
            tls_ca: inherit(&vhost.tls_ca, &self.tls_ca),
            tls_client: inherit(&vhost.tls_client, &self.tls_client),
            auth: inherit(&vhost.auth, &self.auth),
            replicas: inherit(&vhost.replicas, &self.replicas),
            cookie_names: self.cookie_names.clone(),
        };
        for name in &vhost.cookie_names {
            merged.note_cookie_name(name);
        }
        merged
    }

    /// Records a `MemSessionCookieName` given in this server's configuration.
    pub fn note_cookie_name(&mut self, name: &str) {
        if !self.cookie_names.iter().any(|known| known == name) {
            self.cookie_names.push(name.to_string());
        }
    }

    /// The session cookie names in use on this server: the default and every one configured.
    pub fn session_cookie_names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(super::dir::DEFAULT_COOKIE_NAME)
            .chain(self.cookie_names.iter().map(String::as_str))
    }

    pub fn is_session_cookie_name(&self, name: &[u8]) -> bool {
        self.session_cookie_names()
            .any(|known| known.as_bytes() == name)
    }

    /// TLS and authentication for the TCP servers; `Err` names the directive at fault.
    pub fn transport(&self) -> Result<Transport, String> {
        store_transport::build(
            self.tls_ca.as_ref(),
            self.tls_client.as_ref(),
            self.auth.as_ref(),
        )
    }

    pub fn servers(&self) -> Vec<ServerAddress> {
        match &self.servers {
            Some(servers) => servers.clone(),
            None => vec![ServerAddress::parse(DEFAULT_SERVER).expect("default address parses")],
        }
    }
    pub fn servers_configured(&self) -> bool {
        self.servers.is_some()
    }
    pub fn timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }
    pub fn local_cache(&self) -> Duration {
        self.local_cache.unwrap_or(Duration::ZERO)
    }
    /// Whether each session also goes to a second server (`MemSessionReplicas 1`): only
    /// with two servers or more (with one, the directive is a no-op, warned about at start-up).
    pub fn replicas(&self) -> bool {
        self.replicas.unwrap_or(0) > 0 && self.servers().len() > 1
    }
    /// `MemSessionReplicas 1` with a single server: nowhere to put a copy.
    pub fn replicas_without_a_second_server(&self) -> bool {
        self.replicas.unwrap_or(0) > 0 && self.servers().len() < 2
    }
    pub fn key_prefix(&self) -> &str {
        self.key_prefix.as_deref().unwrap_or(DEFAULT_KEY_PREFIX)
    }
    /// The server secret; `Err` says how to configure one.
    pub fn secrets(&self) -> Result<&Secrets, String> {
        self.secrets.as_ref().ok_or_else(|| {
            directive_error(
                SECRET_DIRECTIVE,
                "is not set: every store key is derived from the server secret. Create one \
                 (head -c 32 /dev/urandom > /etc/apache2/memsession.secret; chmod 0600 it) and \
                 name it with MemSessionSecretFile in the server configuration",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_auth_file_reaches_the_transport_and_virtual_hosts_inherit_it() {
        use std::os::unix::fs::PermissionsExt;
        let path =
            std::env::temp_dir().join(format!("memsession-server-auth-{}", std::process::id()));
        std::fs::write(&path, "farm:pw\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let mut main = ServerConfig::default();
        assert!(main.transport().unwrap().auth.is_none());
        main.set("MemSessionAuthFile", path.to_str().unwrap())
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let expected = crate::store::transport::Credentials::parse("farm:pw").unwrap();
        assert_eq!(main.transport().unwrap().auth, Some(expected.clone()));
        let vhost = main.merge(&ServerConfig::default());
        assert_eq!(vhost.transport().unwrap().auth, Some(expected));
        assert!(
            main.transport().unwrap().tls.is_none(),
            "no CA file, no TLS"
        );
    }

    #[test]
    fn a_virtual_host_knows_its_own_and_the_main_servers_cookie_names() {
        let mut main = ServerConfig::default();
        main.note_cookie_name("admin_session");
        main.note_cookie_name("admin_session");
        let mut vhost = ServerConfig::default();
        vhost.note_cookie_name("portal");
        vhost.note_cookie_name("admin_session");
        let names = |c: &ServerConfig| c.session_cookie_names().collect::<Vec<_>>().join(",");
        assert_eq!(names(&main), "memsession,admin_session");
        assert_eq!(names(&vhost), "memsession,portal,admin_session");
        assert_eq!(
            names(&main.merge(&vhost)),
            "memsession,admin_session,portal",
            "each once"
        );
        assert_eq!(names(&ServerConfig::default()), "memsession");
        assert!(
            vhost.is_session_cookie_name(b"portal") && vhost.is_session_cookie_name(b"memsession")
        );
        assert!(
            !main.is_session_cookie_name(b"portal") && !main.is_session_cookie_name(b"memsessio")
        );
    }

    #[test]
    fn defaults() {
        let config = ServerConfig::default();
        assert_eq!(config.servers().len(), 1);
        assert_eq!(config.servers()[0].to_string(), DEFAULT_SERVER);
        assert!(!config.servers_configured());
        assert!(!config.replicas_without_a_second_server());
        let mut named = ServerConfig::default();
        named.set("MemSessionServers", "unix:/run/a.sock").unwrap();
        assert!(named.servers_configured());
        assert_eq!(config.timeout(), Duration::from_millis(200));
        assert_eq!(config.local_cache(), Duration::ZERO);
        assert_eq!(config.key_prefix(), "memsession:");
        assert!(!config.replicas());
    }

    #[test]
    fn replicas_need_two_servers_and_a_vhost_inherits_or_overrides_them() {
        let mut main = ServerConfig::default();
        main.set("MemSessionReplicas", "1").unwrap();
        assert!(!main.replicas(), "one server: nowhere to copy to");
        assert!(main.replicas_without_a_second_server());
        main.set("MemSessionServers", "unix:/run/a.sock").unwrap();
        main.set("MemSessionServers", "unix:/run/b.sock").unwrap();
        assert!(main.replicas() && !main.replicas_without_a_second_server());
        assert!(main.merge(&ServerConfig::default()).replicas(), "inherited");
        let mut vhost = ServerConfig::default();
        vhost.set("MemSessionReplicas", "0").unwrap();
        assert!(!main.merge(&vhost).replicas(), "a vhost turns it off");
        let mut single = ServerConfig::default();
        single.set("MemSessionServers", "unix:/run/c.sock").unwrap();
        let merged = main.merge(&single);
        assert!(!merged.replicas() && merged.replicas_without_a_second_server());
    }

    #[test]
    fn the_timeout_may_be_up_to_ten_seconds_and_the_ca_directive_reads_its_file() {
        let mut config = ServerConfig::default();
        config.set("MemSessionTimeout", "10s").unwrap();
        assert_eq!(config.timeout(), Duration::from_secs(10));
        assert!(config.set("MemSessionTimeout", "10001ms").is_err());
        // A CA file that holds no certificate: refused by the CA reader, by name.
        let empty = std::env::temp_dir().join(format!("memsession-ca-{}.pem", std::process::id()));
        std::fs::write(&empty, "").unwrap();
        let error = config
            .set("MemSessionTLSCAFile", &empty.to_string_lossy())
            .unwrap_err();
        std::fs::remove_file(&empty).unwrap();
        assert!(
            error.starts_with("MemSessionTLSCAFile") && error.contains("no certificate"),
            "{error}"
        );
    }

    #[test]
    fn servers_accumulate_and_vhost_overrides() {
        let mut main = ServerConfig::default();
        main.set("MemSessionServers", "unix:/run/a.sock").unwrap();
        main.set("MemSessionServers", "127.0.0.1:11211").unwrap();
        main.set("MemSessionTimeout", "150ms").unwrap();
        assert_eq!(main.servers().len(), 2);

        let mut vhost = ServerConfig::default();
        vhost.set("MemSessionKeyPrefix", "portal:").unwrap();
        let merged = main.merge(&vhost);
        assert_eq!(merged.servers().len(), 2, "vhost inherits servers");
        assert_eq!(merged.timeout(), Duration::from_millis(150));
        assert_eq!(merged.key_prefix(), "portal:");

        let mut other = ServerConfig::default();
        other.set("MemSessionServers", "unix:/run/b.sock").unwrap();
        other.set("MemSessionLocalCache", "1s").unwrap();
        let merged = main.merge(&other);
        assert_eq!(merged.servers().len(), 1, "vhost list replaces");
        assert_eq!(merged.local_cache(), Duration::from_secs(1));
    }

    #[test]
    fn secret_files_current_and_previous_and_vhost_inheritance() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("memsession-server-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let write = |name: &str, byte: u8| {
            let path = dir.join(name);
            std::fs::write(&path, [byte; 32]).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            path.display().to_string()
        };
        let (a, b) = (write("a", 1), write("b", 2));
        let mut main = ServerConfig::default();
        assert!(main.secrets().unwrap_err().starts_with(SECRET_DIRECTIVE));
        main.set_words(SECRET_DIRECTIVE, &[&a, &b]).unwrap();
        let secrets = main.secrets().unwrap();
        assert_eq!(secrets.current.as_bytes(), &[1; 32]);
        assert_eq!(secrets.previous.as_ref().unwrap().as_bytes(), &[2; 32]);
        assert!(main.set_words(SECRET_DIRECTIVE, &[&a]).is_err(), "twice");

        let merged = main.merge(&ServerConfig::default());
        assert_eq!(merged.secrets().unwrap().files, [a.clone(), b.clone()]);
        let mut vhost = ServerConfig::default();
        vhost.set(SECRET_DIRECTIVE, &b).unwrap();
        assert_eq!(
            main.merge(&vhost).secrets().unwrap().current.as_bytes(),
            &[2; 32]
        );

        for words in [
            &[][..],
            &[a.as_str(), b.as_str(), a.as_str()],
            &[a.as_str(), a.as_str()],
        ] {
            let error = ServerConfig::default()
                .set_words(SECRET_DIRECTIVE, words)
                .unwrap_err();
            assert!(error.starts_with(SECRET_DIRECTIVE), "{error}");
        }
        let missing = dir.join("missing").display().to_string();
        let error = ServerConfig::default()
            .set(SECRET_DIRECTIVE, &missing)
            .unwrap_err();
        assert!(
            error.starts_with(SECRET_DIRECTIVE) && error.contains("cannot open"),
            "{error}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_directive() {
        for (directive, arg) in [
            ("MemSessionServers", "unix:"),
            ("MemSessionTimeout", "soon"),
            ("MemSessionTimeout", "0"),
            ("MemSessionTimeout", "1h"),
            ("MemSessionLocalCache", "-1"),
            ("MemSessionKeyPrefix", "a b"),
            ("MemSessionReplicas", "2"),
            ("MemSessionReplicas", "on"),
            ("MemSessionReplicas", ""),
        ] {
            let error = ServerConfig::default().set(directive, arg).unwrap_err();
            assert!(error.starts_with(directive), "{error}");
        }
        let mut twice = ServerConfig::default();
        twice.set("MemSessionServers", "unix:/a").unwrap();
        assert!(twice.set("MemSessionServers", "unix:/a").is_err());
    }
}
