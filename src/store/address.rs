//! Where a memcached server listens, as written in `MemSessionServers`.
use std::fmt;
use std::net::Ipv6Addr;
use std::path::PathBuf;

/// The port memcached listens on unless told otherwise.
pub const DEFAULT_PORT: u16 = 11211;

/// `sockaddr_un.sun_path` is 108 bytes on Linux, one of them the terminating NUL; a longer
/// path can only fail at connect time, in the child, long after the admin has stopped looking.
const MAX_UNIX_PATH: usize = 107;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ServerAddress {
    Unix(PathBuf),
    Tcp { host: String, port: u16 },
}

impl ServerAddress {
    /// Accepts `unix:/path/to.sock`, `host`, `host:port`, `1.2.3.4:port`, `[v6]`, `[v6]:port`
    /// and a bare IPv6 literal. The port defaults to 11211. The error is phrased to follow a
    /// directive name, e.g. `MemSessionServers: 'x:y': port must be ...`.
    pub fn parse(s: &str) -> Result<ServerAddress, String> {
        let message = |why: &str| format!("'{}': {}", s.escape_debug(), why);
        let fail = |why: &str| Err(message(why));
        if s.is_empty() {
            return fail("empty server address");
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return fail("whitespace or control character in server address");
        }
        if let Some(path) = s.strip_prefix("unix:") {
            if path.is_empty() {
                return fail("missing socket path after 'unix:'");
            }
            if path.len() > MAX_UNIX_PATH {
                return fail(&format!("socket path longer than {MAX_UNIX_PATH} bytes"));
            }
            return Ok(ServerAddress::Unix(PathBuf::from(path)));
        }
        if s.starts_with('/') {
            return fail("a socket path must be written 'unix:/path/to.sock'");
        }

        if let Some(rest) = s.strip_prefix('[') {
            let Some((host, after)) = rest.split_once(']') else {
                return fail("missing ']' after IPv6 address");
            };
            if host.parse::<Ipv6Addr>().is_err() {
                return fail("not an IPv6 address inside '[...]'");
            }
            let port = match after {
                "" => DEFAULT_PORT,
                _ => match after.strip_prefix(':') {
                    Some(port) => parse_port(port).map_err(message)?,
                    None => return fail("expected ':port' after ']'"),
                },
            };
            return Ok(ServerAddress::Tcp {
                host: host.to_string(),
                port,
            });
        }

        // Two or more colons can only be an unbracketed IPv6 literal, which cannot carry a
        // port without becoming ambiguous.
        if s.matches(':').count() > 1 {
            if s.parse::<Ipv6Addr>().is_ok() {
                return Ok(ServerAddress::Tcp {
                    host: s.to_string(),
                    port: DEFAULT_PORT,
                });
            }
            return fail("write an IPv6 address with a port as '[addr]:port'");
        }

        let (host, port) = match s.split_once(':') {
            Some((host, port)) => (host, parse_port(port).map_err(message)?),
            None => (s, DEFAULT_PORT),
        };
        if host.is_empty() {
            return fail("missing host name");
        }
        if host.len() > 253 {
            return fail("host name longer than 253 characters");
        }
        if !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
        {
            return fail("host name may contain only letters, digits, '-', '.' and '_'");
        }
        Ok(ServerAddress::Tcp {
            host: host.to_string(),
            port,
        })
    }
}

fn parse_port(s: &str) -> Result<u16, &'static str> {
    const WHY: &str = "port must be a number from 1 to 65535";
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(WHY);
    }
    match s.parse::<u16>() {
        Ok(0) | Err(_) => Err(WHY),
        Ok(port) => Ok(port),
    }
}

impl fmt::Display for ServerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServerAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            ServerAddress::Tcp { host, port } if host.contains(':') => write!(f, "[{host}]:{port}"),
            ServerAddress::Tcp { host, port } => write!(f, "{host}:{port}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(host: &str, port: u16) -> ServerAddress {
        ServerAddress::Tcp {
            host: host.to_string(),
            port,
        }
    }

    #[test]
    fn parses_every_accepted_form() {
        let cases = [
            (
                "unix:/run/memsession/memcached.sock",
                ServerAddress::Unix("/run/memsession/memcached.sock".into()),
            ),
            (
                "unix:relative.sock",
                ServerAddress::Unix("relative.sock".into()),
            ),
            ("127.0.0.1:11211", tcp("127.0.0.1", 11211)),
            ("127.0.0.1", tcp("127.0.0.1", 11211)),
            (
                "cache-1.example.org:11311",
                tcp("cache-1.example.org", 11311),
            ),
            ("localhost", tcp("localhost", 11211)),
            ("[::1]:11212", tcp("::1", 11212)),
            ("[::1]", tcp("::1", 11211)),
            ("::1", tcp("::1", 11211)),
            ("fe80::1:2", tcp("fe80::1:2", 11211)),
            ("host:65535", tcp("host", 65535)),
        ];
        for (text, want) in cases {
            assert_eq!(ServerAddress::parse(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn rejects_with_a_message_naming_the_value() {
        let cases = [
            ("", "empty"),
            ("unix:", "missing socket path"),
            ("/run/x.sock", "unix:/path"),
            ("host:", "port must be"),
            ("host:0", "port must be"),
            ("host:65536", "port must be"),
            ("host:+1", "port must be"),
            ("host:12x", "port must be"),
            (":11211", "missing host"),
            ("[::1", "missing ']'"),
            ("[nope]:1", "not an IPv6"),
            ("[::1]x", "expected ':port'"),
            ("[::1]:", "port must be"),
            ("fe80::1:11211:x", "[addr]:port"),
            ("ho st:1", "whitespace"),
            ("host\n", "whitespace"),
            ("ho/st:1", "only letters"),
        ];
        for (text, needle) in cases {
            let err = ServerAddress::parse(text).unwrap_err();
            assert!(err.contains(needle), "{text:?}: {err}");
            assert!(
                err.starts_with(&format!("'{}'", text.escape_debug())),
                "{text:?}: {err}"
            );
        }
        // DNS's limit on a name, 253 characters, is the last one accepted.
        let longest = format!("{}:11211", "a".repeat(253));
        assert!(ServerAddress::parse(&longest).is_ok(), "253 characters");
        let too_long = format!("{}:11211", "a".repeat(254));
        assert!(ServerAddress::parse(&too_long)
            .unwrap_err()
            .contains("longer than 253"));
        let long = format!("unix:/{}", "a".repeat(107));
        assert!(ServerAddress::parse(&long)
            .unwrap_err()
            .contains("longer than 107"));
        assert!(ServerAddress::parse(&format!("unix:/{}", "a".repeat(106))).is_ok());
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "unix:/tmp/m.sock",
            "127.0.0.1:11211",
            "[::1]:11212",
            "cache:1",
        ] {
            let parsed = ServerAddress::parse(text).unwrap();
            assert_eq!(parsed.to_string(), text);
            assert_eq!(ServerAddress::parse(&parsed.to_string()).unwrap(), parsed);
        }
        assert_eq!(
            ServerAddress::parse("localhost").unwrap().to_string(),
            "localhost:11211"
        );
        assert_eq!(
            ServerAddress::parse("::1").unwrap().to_string(),
            "[::1]:11211"
        );
    }
}
