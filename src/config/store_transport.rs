//! `MemSessionTLSCAFile`, `MemSessionTLSClientCertificate` and `MemSessionAuthFile`: how the
//! module reaches memcached servers over TCP. The files are read when httpd parses its
//! configuration (as root, before children exist), so the client key and the credentials can
//! be root-only; each is checked there, and a bad one stops start-up naming its directive.
use super::directive_error;
use super::secret_file;
use crate::store::transport::{self, Credentials, TlsFiles, Transport};
use zeroize::Zeroizing;

pub const CA_DIRECTIVE: &str = "MemSessionTLSCAFile";
pub const CLIENT_DIRECTIVE: &str = "MemSessionTLSClientCertificate";
pub const AUTH_DIRECTIVE: &str = "MemSessionAuthFile";

/// A CA bundle larger than this is not one a farm needs.
const MAX_PEM_BYTES: u64 = 1024 * 1024;

/// `MemSessionTLSCAFile path`: the CA that issued the memcached servers' certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaFile {
    pub path: String,
    pub pem: Vec<u8>,
}

/// `MemSessionTLSClientCertificate chain.pem key.pem`: what the module shows a memcached that
/// verifies its clients (`ssl_verify_mode=2` or `3`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    pub chain: Vec<u8>,
    pub key: Zeroizing<Vec<u8>>,
}

/// `MemSessionAuthFile path`: `user:password` for memcached's ASCII authentication (`-Y`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthFile {
    pub path: String,
    pub credentials: Credentials,
}

pub fn read_ca(path: &str) -> Result<CaFile, String> {
    let named = |detail: String| directive_error(CA_DIRECTIVE, format!("{path} {detail}"));
    let pem = read_public(path).map_err(named)?;
    transport::ca_certificates(&pem).map_err(named)?;
    Ok(CaFile {
        path: path.to_string(),
        pem,
    })
}

pub fn read_client(chain_path: &str, key_path: &str) -> Result<ClientCertificate, String> {
    let named =
        |path: &str, detail: String| directive_error(CLIENT_DIRECTIVE, format!("{path} {detail}"));
    let chain = read_public(chain_path).map_err(|e| named(chain_path, e))?;
    transport::ca_certificates(&chain).map_err(|e| named(chain_path, e))?;
    let key = Zeroizing::new(
        secret_file::read_private(std::path::Path::new(key_path))
            .map_err(|e| directive_error(CLIENT_DIRECTIVE, e))?,
    );
    transport::private_key(&key).map_err(|e| named(key_path, e))?;
    Ok(ClientCertificate { chain, key })
}

pub fn read_auth(path: &str) -> Result<AuthFile, String> {
    let bytes = Zeroizing::new(
        secret_file::read_private(std::path::Path::new(path))
            .map_err(|e| directive_error(AUTH_DIRECTIVE, e))?,
    );
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| directive_error(AUTH_DIRECTIVE, format!("{path} is not text")))?;
    let credentials = Credentials::parse(text)
        .map_err(|e| directive_error(AUTH_DIRECTIVE, format!("{path} {e}")))?;
    Ok(AuthFile {
        path: path.to_string(),
        credentials,
    })
}

/// What the configured files make of the connections to TCP servers. TLS is on when a CA is
/// named; a client certificate without one is refused (it would be sent over nothing).
pub fn build(
    ca: Option<&CaFile>,
    client: Option<&ClientCertificate>,
    auth: Option<&AuthFile>,
) -> Result<Transport, String> {
    let tls = match (ca, client) {
        (None, None) => None,
        (None, Some(_)) => {
            return Err(directive_error(
                CLIENT_DIRECTIVE,
                format!("needs {CA_DIRECTIVE}: a client certificate is only sent over TLS"),
            ))
        }
        (Some(ca), client) => {
            let files = TlsFiles {
                ca: ca.pem.clone(),
                client: client.map(|c| (c.chain.clone(), c.key.clone())),
            };
            let directive = if client.is_some() {
                CLIENT_DIRECTIVE
            } else {
                CA_DIRECTIVE
            };
            Some(transport::client_config(&files).map_err(|e| directive_error(directive, e))?)
        }
    };
    Ok(Transport {
        tls,
        auth: auth.map(|a| a.credentials.clone()),
    })
}

fn read_public(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| format!("cannot be opened: {e}"))?;
    let mut pem = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut pem)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if pem.len() as u64 > MAX_PEM_BYTES {
        return Err(format!("is larger than {MAX_PEM_BYTES} bytes"));
    }
    Ok(pem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn private_file(dir: &std::path::Path, name: &str, text: &str, mode: u32) -> String {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path.to_string_lossy().into_owned()
    }

    #[test]
    fn auth_file_is_root_only_and_names_its_directive() {
        let dir = tempdir();
        let good = private_file(&dir, "auth", "farm:s3cret\n", 0o600);
        assert_eq!(
            read_auth(&good).unwrap().credentials,
            Credentials::parse("farm:s3cret").unwrap()
        );
        let open = private_file(&dir, "open", "farm:s3cret\n", 0o644);
        let error = read_auth(&open).unwrap_err();
        assert!(
            error.starts_with(AUTH_DIRECTIVE) && error.contains("0644"),
            "{error}"
        );
        let bad = private_file(&dir, "bad", "no colon\n", 0o600);
        assert!(read_auth(&bad).unwrap_err().starts_with(AUTH_DIRECTIVE));
        let missing = dir.join("missing").to_string_lossy().into_owned();
        assert!(read_auth(&missing).unwrap_err().starts_with(AUTH_DIRECTIVE));
    }

    /// A self-signed P-256 CA (`openssl req -x509 -newkey ec ...`), only ever parsed here.
    const CA_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIBnDCCAUGgAwIBAgIUfPL36ZAdOwEELX+QE2L45Bz2iBIwCgYIKoZIzj0EAwIw\n\
IjEgMB4GA1UEAwwXbWVtc2Vzc2lvbi11bml0LXRlc3QtY2EwIBcNMjYxMTMwMTMw\n\
MTA3WhgPMjEyNjExMDYxMzAxMDdaMCIxIDAeBgNVBAMMF21lbXNlc3Npb24tdW5p\n\
dC10ZXN0LWNhMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6eH5CJZ90O8pAwxA\n\
UNkX75qFE+FPKdlxrl7Q7vrU2Gp5dLZYIUFAdyIVJIPEJFQboQDiwQnv5OvDiKV3\n\
t68Lw6NTMFEwHQYDVR0OBBYEFKnH8yTJt/u+QMkBsJMoB4ZDLblmMB8GA1UdIwQY\n\
MBaAFKnH8yTJt/u+QMkBsJMoB4ZDLblmMA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZI\n\
zj0EAwIDSQAwRgIhAOGJTz208Toyf20AdXjLiRHyD1s4AFvPYaJvuJdOqf3tAiEA\n\
tmSS9TVc3St03uQAsl/MEuPgXTp5P2iTLoDTSHDDoaI=\n\
-----END CERTIFICATE-----\n\
";

    #[test]
    fn a_ca_file_is_read_whole_up_to_its_bound() {
        let dir = tempdir();
        let ca = private_file(&dir, "good-ca.pem", CA_PEM, 0o644);
        assert_eq!(read_ca(&ca).unwrap().pem, CA_PEM.as_bytes());
        let mut largest = CA_PEM.as_bytes().to_vec();
        largest.resize(MAX_PEM_BYTES as usize, b'\n');
        let path = dir.join("largest-ca.pem");
        std::fs::write(&path, &largest).unwrap();
        let path = path.to_string_lossy().into_owned();
        assert_eq!(read_ca(&path).unwrap().pem.len(), MAX_PEM_BYTES as usize);
        largest.push(b'\n');
        std::fs::write(&path, &largest).unwrap();
        let error = read_ca(&path).unwrap_err();
        assert!(error.contains("larger than"), "{error}");
    }

    #[test]
    fn ca_file_must_hold_a_certificate() {
        let dir = tempdir();
        let empty = private_file(&dir, "ca.pem", "", 0o644);
        let error = read_ca(&empty).unwrap_err();
        assert!(
            error.starts_with(CA_DIRECTIVE) && error.contains("no certificate"),
            "{error}"
        );
        assert!(read_ca("/nonexistent/ca.pem")
            .unwrap_err()
            .starts_with(CA_DIRECTIVE));
    }

    #[test]
    fn a_client_certificate_needs_a_ca_and_nothing_configured_is_plain() {
        let plain = build(None, None, None).unwrap();
        assert!(plain.tls.is_none() && plain.auth.is_none());
        let client = ClientCertificate {
            chain: Vec::new(),
            key: Zeroizing::new(Vec::new()),
        };
        let error = build(None, Some(&client), None).unwrap_err();
        assert!(error.starts_with(CLIENT_DIRECTIVE), "{error}");
    }

    fn tempdir() -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "memsession-transport-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
