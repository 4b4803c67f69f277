//! Server-scope configuration (main server and virtual hosts).
use std::time::Duration;

use super::duration::parse_duration;
use super::values;
use super::{directive_error, inherit};
use crate::store::address::ServerAddress;

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
}

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
            _ => return Err(directive_error(directive, "is not a server directive")),
        }
        Ok(())
    }

    /// `self` is the main server, `vhost` a virtual host.
    pub fn merge(&self, vhost: &ServerConfig) -> ServerConfig {
        ServerConfig {
            servers: inherit(&vhost.servers, &self.servers),
            timeout: inherit(&vhost.timeout, &self.timeout),
            local_cache: inherit(&vhost.local_cache, &self.local_cache),
            key_prefix: inherit(&vhost.key_prefix, &self.key_prefix),
        }
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
    pub fn key_prefix(&self) -> &str {
        self.key_prefix.as_deref().unwrap_or(DEFAULT_KEY_PREFIX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults() {
        let config = ServerConfig::default();
        assert_eq!(config.servers().len(), 1);
        assert_eq!(config.servers()[0].to_string(), DEFAULT_SERVER);
        assert!(!config.servers_configured());
        assert_eq!(config.timeout(), Duration::from_millis(200));
        assert_eq!(config.local_cache(), Duration::ZERO);
        assert_eq!(config.key_prefix(), "memsession:");
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
    fn errors_name_the_directive() {
        for (directive, arg) in [
            ("MemSessionServers", "unix:"),
            ("MemSessionTimeout", "soon"),
            ("MemSessionTimeout", "0"),
            ("MemSessionTimeout", "1h"),
            ("MemSessionLocalCache", "-1"),
            ("MemSessionKeyPrefix", "a b"),
        ] {
            let error = ServerConfig::default().set(directive, arg).unwrap_err();
            assert!(error.starts_with(directive), "{error}");
        }
        let mut twice = ServerConfig::default();
        twice.set("MemSessionServers", "unix:/a").unwrap();
        assert!(twice.set("MemSessionServers", "unix:/a").is_err());
    }
}
