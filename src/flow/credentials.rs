//! Kerberos credentials around a session: reading what the login's auth module delegated
//! (mod_auth_gssapi's `GssapiDelegCcacheDir`, mod_auth_kerb's `KrbSaveCredentials`, both
//! exported as `KRB5CCNAME`), and lending them to a backend for one request.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::krb5::ccache::{self, MAX_CCACHE_BYTES};
use crate::session::base64url;
use crate::session::id::SessionId;

/// What a login learned about the user's credentials.
#[derive(Debug, Default)]
pub struct LoginCredentials {
    /// The delegated credential cache, stored (encrypted) with the session.
    pub ccache: Option<Vec<u8>>,
    /// When the credentials end (unix seconds): the session is capped to it.
    pub end: Option<u64>,
    /// Why delegated credentials were offered but not kept, for the log.
    pub problem: Option<String>,
    /// The auth module's cache file the credentials were read from. Once they are sealed in
    /// the session it is a redundant copy of a user's TGT at rest, and is removed.
    pub source_file: Option<PathBuf>,
}

/// `krb5ccname` is the auth module's `KRB5CCNAME`; `context_end` is mod_auth_gssapi's
/// `GSS_SESSION_EXPIRATION` (the ticket's end even without delegation).
pub fn from_login(krb5ccname: Option<&str>, context_end: Option<&str>) -> LoginCredentials {
    let mut found = LoginCredentials {
        end: context_end.and_then(|text| text.trim().parse::<u64>().ok()),
        ..LoginCredentials::default()
    };
    let Some(name) = krb5ccname else {
        return found;
    };
    match read_file_ccache(name) {
        Ok((bytes, tgt_end, path)) => {
            found.source_file = Some(path);
            found.end = match (found.end, tgt_end) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            found.ccache = Some(bytes);
        }
        Err(problem) => found.problem = Some(problem),
    }
    found
}

/// The file a `KRB5CCNAME` names (`FILE:/path` or a bare path); `Err` for other cache types.
pub fn ccache_file(name: &str) -> Result<&str, String> {
    match name.split_once(':') {
        Some(("FILE", path)) => Ok(path),
        Some((kind, _)) if !name.starts_with('/') => Err(format!(
            "KRB5CCNAME type {kind}: is not supported; only FILE: caches are stored"
        )),
        _ => Ok(name),
    }
}

fn read_file_ccache(name: &str) -> Result<(Vec<u8>, Option<u64>, PathBuf), String> {
    let path = ccache_file(name)?;
    let file = File::open(path).map_err(|error| format!("cannot open {path}: {error}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_CCACHE_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| format!("cannot read {path}: {error}"))?;
    let (bytes, tgt_end) = checked(bytes).map_err(|problem| format!("{path}: {problem}"))?;
    Ok((bytes, tgt_end, PathBuf::from(path)))
}

/// Credentials a login obtained itself (a password login's TGT through Kerberos), kept on the
/// same terms as delegated ones.
pub fn from_ccache_bytes(bytes: Vec<u8>) -> LoginCredentials {
    match checked(bytes) {
        Ok((bytes, end)) => LoginCredentials {
            ccache: Some(bytes),
            end,
            ..LoginCredentials::default()
        },
        Err(problem) => LoginCredentials {
            problem: Some(problem),
            ..LoginCredentials::default()
        },
    }
}

/// A cache worth storing: within the size cap, well formed, with a credential in it; and the
/// end of its TGT.
fn checked(bytes: Vec<u8>) -> Result<(Vec<u8>, Option<u64>), String> {
    if bytes.len() > MAX_CCACHE_BYTES {
        return Err(format!("larger than {MAX_CCACHE_BYTES} bytes; not stored"));
    }
    let parsed = ccache::parse(&bytes).map_err(|error| error.to_string())?;
    if !parsed.has_credentials() {
        return Err("holds no credentials".into());
    }
    Ok((bytes, parsed.tgt_end_time()))
}

/// A file removed when this value is dropped (a request pool's cleanup drops it).
#[derive(Debug)]
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

const LENT_PREFIX: &str = "krb5cc_memsession_";
/// A lent file without a process id in its name (an older module's) is stale after this.
const UNNAMED_STALE_AFTER: Duration = Duration::from_secs(3600);

/// Removes the credential caches in `dir` that a request lent and nobody will remove: their
/// process is gone (killed, crashed) and its pool cleanup never ran. A process is alive
/// while `/proc/PID` exists (a reused pid only delays the removal). Returns how many went.
pub fn sweep_stale(dir: &Path, alive: impl Fn(u32) -> bool) -> usize {
    let Ok(entries) = fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(LENT_PREFIX)) else {
            continue;
        };
        let stale = match rest
            .split_once('_')
            .and_then(|(pid, _)| pid.parse::<u32>().ok())
        {
            Some(pid) => !alive(pid),
            None => entry
                .metadata()
                .and_then(|meta| meta.modified())
                .ok()
                .and_then(|modified| modified.elapsed().ok())
                .is_some_and(|age| age > UNNAMED_STALE_AFTER),
        };
        if stale && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// Whether a process is alive, as [`sweep_stale`] needs to know.
pub fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists()
}

/// A credential cache written for one request; removed when dropped (the request pool's
/// cleanup drops it, also when the backend failed).
#[derive(Debug)]
pub struct PrivateCcache {
    file: RemoveOnDrop,
}

impl PrivateCcache {
    /// Writes `bytes` to a new file only its owner can read, under a random name in `dir`
    /// that carries this process's id, so [`sweep_stale`] can tell a leftover of a process
    /// that died mid-request from a file a living one still lends.
    pub fn write(dir: &Path, bytes: &[u8]) -> io::Result<PrivateCcache> {
        let random =
            SessionId::generate().map_err(|_| io::Error::other("the OS random source failed"))?;
        let name = format!(
            "{LENT_PREFIX}{}_{}",
            std::process::id(),
            &base64url::encode(random.as_bytes())[..22]
        );
        let path = dir.join(name);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        // No fsync: the file lives for one request and is read through the page cache.
        let written = file.write_all(bytes);
        let ccache = PrivateCcache {
            file: RemoveOnDrop(path),
        };
        written?;
        Ok(ccache)
    }

    /// The value for the backend's `KRB5CCNAME`.
    pub fn krb5ccname(&self) -> String {
        format!("FILE:{}", self.file.0.display())
    }

    pub fn path(&self) -> &Path {
        &self.file.0
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn sweep_removes_what_dead_processes_lent_and_nothing_else() {
        let dir = std::env::temp_dir().join(format!("memsession-sweep-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let lent = PrivateCcache::write(&dir, b"ccache").unwrap();
        for name in [
            "krb5cc_memsession_4000000_abc",
            "krb5cc_memsession_7_abc",
            "krb5cc_alice@EXAMPLE.TEST",
            "krb5cc_memsession_fresh-unnamed",
        ] {
            fs::write(dir.join(name), b"x").unwrap();
        }
        let alive = |pid: u32| pid == std::process::id() || pid == 7;
        assert_eq!(sweep_stale(&dir, alive), 1);
        let mut left: Vec<String> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert!(left.contains(
            &lent
                .path()
                .file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .to_string()
        ));
        assert!(!left.contains(&"krb5cc_memsession_4000000_abc".to_string()));
        assert_eq!(left.len(), 4, "{left:?}");
        assert!(process_alive(std::process::id()));
        assert!(!process_alive(u32::MAX));
        assert_eq!(sweep_stale(&dir.join("missing"), alive), 0);
        // An older module's file (no pid in its name) goes once it is over an hour old.
        let old = dir.join("krb5cc_memsession_old-unnamed");
        fs::write(&old, b"x").unwrap();
        let two_hours_ago = std::time::SystemTime::now() - Duration::from_secs(7200);
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(two_hours_ago)
            .unwrap();
        assert_eq!(sweep_stale(&dir, alive), 1);
        assert!(!old.exists());
        assert!(dir.join("krb5cc_memsession_fresh-unnamed").exists());
        drop(lent);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn ccache_file_names() {
        assert_eq!(ccache_file("FILE:/tmp/x"), Ok("/tmp/x"));
        assert_eq!(ccache_file("/tmp/x"), Ok("/tmp/x"));
        assert!(ccache_file("KEYRING:persistent:1").is_err());
    }
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn temp_dir(tag: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("memsession-cred-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn private_ccache_is_0600_and_removed_on_drop() {
        let dir = temp_dir("private");
        let written = PrivateCcache::write(&dir, b"bytes").unwrap();
        let path = written.path().to_path_buf();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::read(&path).unwrap(), b"bytes");
        assert!(written.krb5ccname().starts_with("FILE:"));
        drop(written);
        assert!(!path.exists());
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn login_without_delegation_keeps_the_context_end() {
        let found = from_login(None, Some("1700000000"));
        assert_eq!(found.end, Some(1_700_000_000));
        assert!(found.ccache.is_none() && found.problem.is_none());
    }

    /// A cache kinit wrote (the fuzz target's seed), one TGT in it.
    const KINIT: &[u8] = include_bytes!("../../fuzz/corpus/ccache/kinit-v4.ccache");

    #[test]
    fn credentials_a_login_obtained_are_kept_with_their_end() {
        let end = ccache::parse(KINIT).unwrap().tgt_end_time();
        assert!(end.is_some());
        let found = from_ccache_bytes(KINIT.to_vec());
        assert_eq!(found.ccache.as_deref(), Some(KINIT));
        assert_eq!(found.end, end);
        assert!(found.problem.is_none() && found.source_file.is_none());
        let bad = from_ccache_bytes(b"not a ccache".to_vec());
        assert!(bad.ccache.is_none() && bad.end.is_none());
        assert!(!bad.problem.unwrap().is_empty(), "a reason for the log");
    }

    #[test]
    fn delegated_credentials_are_kept_and_the_earlier_end_wins() {
        let tgt_end = ccache::parse(KINIT).unwrap().tgt_end_time().unwrap();
        let dir = temp_dir("delegated");
        let file = dir.join("krb5cc_alice");
        fs::write(&file, KINIT).unwrap();
        let name = format!("FILE:{}", file.display());
        let later = (tgt_end + 60).to_string();
        let found = from_login(Some(&name), Some(&later));
        assert_eq!(found.ccache.as_deref(), Some(KINIT));
        assert_eq!(found.end, Some(tgt_end));
        assert_eq!(found.source_file.as_deref(), Some(file.as_path()));
        assert!(found.problem.is_none());
        let earlier = (tgt_end - 60).to_string();
        assert_eq!(
            from_login(Some(&name), Some(&earlier)).end,
            Some(tgt_end - 60)
        );
        assert_eq!(from_login(Some(&name), None).end, Some(tgt_end));
        fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn unusable_caches_are_reported_not_stored() {
        let dir = temp_dir("bad");
        let garbage = dir.join("garbage");
        fs::write(&garbage, b"not a ccache").unwrap();
        for name in [
            format!("FILE:{}", garbage.display()),
            format!("FILE:{}/missing", dir.display()),
            "KEYRING:persistent:1000".to_string(),
        ] {
            let found = from_login(Some(&name), None);
            assert!(found.ccache.is_none(), "{name}");
            assert!(found.problem.is_some(), "{name}");
        }
        let big = dir.join("big");
        fs::write(&big, vec![5u8; MAX_CCACHE_BYTES + 1]).unwrap();
        assert!(from_login(Some(big.to_str().unwrap()), None)
            .problem
            .unwrap()
            .contains("larger"));
        fs::remove_dir_all(dir).unwrap();
    }
}
