//! How a connection to a TCP memcached server is secured: TLS (memcached's `-Z`), verified
//! against the administrator's CA, with an optional client certificate, then memcached's ASCII
//! authentication (its `-Y` file). A UNIX socket is protected by its file mode and gets
//! neither.
//!
//! Everything here is built once from files read when httpd parsed its configuration (as
//! root): a child only uses the prepared `rustls` configuration and credentials, and pays the
//! handshake and the authentication once per pooled connection, not per request.
use std::fmt;
use std::sync::Arc;

use rustls::client::{ClientConfig, Resumption};
use rustls::crypto::ring;
use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use zeroize::Zeroizing;

/// memcached's ASCII authentication: `user:password`, the line format of its `-Y` file.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    user: String,
    password: Zeroizing<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Credentials({}, <password>)", self.user)
    }
}

impl Credentials {
    /// The first non-empty line of an auth file, `user:password` as memcached's `-Y` file
    /// has it (so both sides can share one file).
    pub fn parse(text: &str) -> Result<Credentials, String> {
        let line = text
            .lines()
            .map(|line| line.trim_end_matches('\r'))
            .find(|line| !line.is_empty())
            .ok_or("is empty; it holds one line, user:password (memcached's -Y format)")?;
        let (user, password) = line
            .split_once(':')
            .ok_or("holds no 'user:password' line (memcached's -Y format)")?;
        let printable = |s: &str| s.bytes().all(|b| b.is_ascii_graphic());
        if user.is_empty() || password.is_empty() || !printable(user) || !printable(password) {
            return Err(
                "user and password must be non-empty, without spaces or control \
                        characters (memcached's -Y format)"
                    .to_string(),
            );
        }
        Ok(Credentials {
            user: user.to_string(),
            password: Zeroizing::new(password.to_string()),
        })
    }

    /// The request that authenticates a fresh connection: a `set` whose value is
    /// `user password` (the key is ignored by memcached); it answers `STORED` or an error.
    pub fn request(&self) -> Zeroizing<Vec<u8>> {
        let value_len = self.user.len() + 1 + self.password.len();
        let mut request = Zeroizing::new(Vec::with_capacity(value_len + 32));
        request.extend_from_slice(format!("set auth 0 0 {value_len}\r\n").as_bytes());
        request.extend_from_slice(self.user.as_bytes());
        request.push(b' ');
        request.extend_from_slice(self.password.as_bytes());
        request.extend_from_slice(b"\r\n");
        request
    }
}

/// The PEM files of `MemSessionTLSCAFile` and `MemSessionTLSClientCertificate`, as read at
/// configuration time.
#[derive(Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub ca: Vec<u8>,
    /// The client's certificate chain and its private key.
    pub client: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
}

impl fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TlsFiles(ca: {} bytes, client certificate: {})",
            self.ca.len(),
            self.client.is_some()
        )
    }
}

/// The CA certificates of a PEM file; at least one.
pub fn ca_certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("is not PEM: {e}"))?;
    if certificates.is_empty() {
        return Err("holds no certificate (-----BEGIN CERTIFICATE-----)".to_string());
    }
    Ok(certificates)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn private_key(pem: &[u8]) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| format!("holds no usable private key: {e}"))
}

/// A client configuration for memcached's TLS: TLS 1.2 or 1.3 with rustls' safe defaults,
/// the server verified against `files.ca` alone (not the system's roots: only the farm's own
/// CA may vouch for its memcached servers), by the name or address written in
/// `MemSessionServers`.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, String> {
    let mut roots = RootCertStore::empty();
    for certificate in ca_certificates(&files.ca)? {
        roots
            .add(certificate)
            .map_err(|e| format!("holds a certificate rustls refuses: {e}"))?;
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    let mut config = match &files.client {
        None => builder.with_no_client_auth(),
        Some((chain, key)) => {
            let chain = ca_certificates(chain)?;
            builder
                .with_client_auth_cert(chain, private_key(key)?)
                .map_err(|e| format!("the client certificate and key do not go together: {e}"))?
        }
    };
    // No session resumption: memcached 1.6 sets no session id context, so its OpenSSL answers
    // a resumed handshake with an internal-error alert when it verifies client certificates
    // (every reconnection after the first failed). Connections are pooled; a full handshake
    // per new connection costs little.
    config.resumption = Resumption::disabled();
    Ok(Arc::new(config))
}

/// What every connection to a TCP server of one store goes through.
#[derive(Clone, Debug, Default)]
pub struct Transport {
    pub tls: Option<Arc<ClientConfig>>,
    pub auth: Option<Credentials>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_memcacheds_auth_file_line() {
        let c = Credentials::parse("\nfarm:s3cret:x\nother:line\n").unwrap();
        assert_eq!(c.user, "farm");
        assert_eq!(c.password.as_str(), "s3cret:x");
        assert_eq!(
            c.request().as_slice(),
            b"set auth 0 0 13\r\nfarm s3cret:x\r\n"
        );
        assert!(!format!("{c:?}").contains("s3cret"));
        for bad in [
            "",
            "\n\n",
            "farm",
            ":pw",
            "farm:",
            "fa rm:pw",
            "farm:p w",
            "farm:p\x01",
        ] {
            assert!(Credentials::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pem_files_are_checked() {
        assert!(ca_certificates(b"").unwrap_err().contains("no certificate"));
        assert!(ca_certificates(
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n"
        )
        .is_err());
        assert!(private_key(b"-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n").is_err());
        let files = TlsFiles {
            ca: b"garbage".to_vec(),
            client: None,
        };
        assert!(client_config(&files).is_err());
        assert!(!format!("{files:?}").contains("garbage"));
    }
}
