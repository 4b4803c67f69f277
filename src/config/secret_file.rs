//! `MemSessionSecretFile`: the deployment's server secret, from which every store key, record
//! key and epoch key is derived. Someone who can write to memcached but cannot read this file
//! can neither mint a session, nor open a record, nor tell whose epoch a key holds.
//!
//! The file is read when httpd parses its configuration, as root, before it drops privileges:
//! the children (running as the Apache user) and any CGI they start never need to read it.
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `head -c 32 /dev/urandom` is the recommended secret; shorter is refused.
pub const MIN_SECRET_BYTES: usize = 32;
/// A secret file larger than this is not one (and is not read into memory whole).
const MAX_SECRET_BYTES: u64 = 4096;

/// The secret's bytes: never printed, wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerSecret(Vec<u8>);

impl ServerSecret {
    /// For tests and tools that hold the bytes already; `read` is the checked way in.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<ServerSecret, String> {
        if bytes.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "holds {} bytes; at least {MIN_SECRET_BYTES} random bytes are needed \
                 (head -c 32 /dev/urandom > FILE)",
                bytes.len()
            ));
        }
        Ok(ServerSecret(bytes))
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerSecret(<{} bytes>)", self.0.len())
    }
}

impl Drop for ServerSecret {
    fn drop(&mut self) {
        self.0.iter_mut().for_each(|byte| *byte = 0);
        // Keeps the wipe from being optimised away as a dead store.
        std::hint::black_box(&self.0);
    }
}

/// What the file's metadata says about who could have read or written it.
#[derive(Clone, Copy, Debug)]
pub struct FileFacts {
    pub is_file: bool,
    pub mode: u32,
    pub owner: u32,
    pub len: u64,
}

/// A secret file must be a regular file of a sensible size, owned by root (or by the user
/// httpd starts as, for a server run unprivileged), and readable by its owner alone.
pub fn check(facts: FileFacts, process_uid: u32) -> Result<(), String> {
    if !facts.is_file {
        return Err("is not a regular file".to_string());
    }
    if facts.owner != 0 && facts.owner != process_uid {
        return Err(format!(
            "is owned by uid {}; it must be owned by root (chown root:root FILE)",
            facts.owner
        ));
    }
    if facts.mode & 0o077 != 0 {
        return Err(format!(
            "has mode {:04o}: group or others may read or write it; chmod 0600 FILE",
            facts.mode & 0o7777
        ));
    }
    if facts.len > MAX_SECRET_BYTES {
        return Err(format!(
            "is {} bytes long; such a file holds at most {MAX_SECRET_BYTES} bytes",
            facts.len
        ));
    }
    Ok(())
}

/// Reads and checks a secret file. The message says what is wrong and how to fix it; the
/// caller names the directive.
pub fn read(path: &Path) -> Result<ServerSecret, String> {
    let bytes = read_private(path)?;
    ServerSecret::from_bytes(bytes).map_err(|problem| format!("{} {problem}", path.display()))
}

/// Reads a file that only root (or httpd's own user) may read: a secret, a private key,
/// credentials. Checked as [`check`] says, on the file actually opened.
pub fn read_private(path: &Path) -> Result<Vec<u8>, String> {
    let shown = path.display();
    let mut file = File::open(path).map_err(|e| format!("cannot open {shown}: {e}"))?;
    // The checks look at the file that was opened, not at whatever the path names later.
    let meta = file
        .metadata()
        .map_err(|e| format!("cannot inspect {shown}: {e}"))?;
    let facts = FileFacts {
        is_file: meta.is_file(),
        mode: meta.mode(),
        owner: meta.uid(),
        len: meta.len(),
    };
    check(facts, process_uid()).map_err(|problem| format!("{shown} {problem}"))?;
    let mut bytes = Vec::with_capacity(facts.len as usize);
    (&mut file)
        .take(MAX_SECRET_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {shown}: {e}"))?;
    Ok(bytes)
}

/// The effective uid of this process: Linux makes /proc/self owned by it.
fn process_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(0, |meta| meta.uid())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn facts(mode: u32, owner: u32) -> FileFacts {
        FileFacts {
            is_file: true,
            mode: 0o100000 | mode,
            owner,
            len: 32,
        }
    }

    #[test]
    fn root_or_own_and_private_only() {
        assert!(check(facts(0o600, 0), 33).is_ok());
        assert!(check(facts(0o400, 0), 33).is_ok());
        assert!(check(facts(0o600, 1000), 1000).is_ok());
        let foreign = check(facts(0o600, 33), 0).unwrap_err();
        assert!(foreign.contains("uid 33"), "{foreign}");
        for mode in [0o640, 0o604, 0o660, 0o644, 0o620, 0o602] {
            let error = check(facts(mode, 0), 0).unwrap_err();
            assert!(error.contains("chmod 0600"), "{mode:o}: {error}");
        }
        let dir = FileFacts {
            is_file: false,
            ..facts(0o600, 0)
        };
        assert!(check(dir, 0).is_err());
        let huge = FileFacts {
            len: 1 << 20,
            ..facts(0o600, 0)
        };
        assert!(check(huge, 0).is_err());
        let largest = FileFacts {
            len: MAX_SECRET_BYTES,
            ..facts(0o600, 0)
        };
        assert!(check(largest, 0).is_ok(), "the largest file is read");
        let one_more = FileFacts {
            len: MAX_SECRET_BYTES + 1,
            ..facts(0o600, 0)
        };
        assert!(check(one_more, 0).is_err());
    }

    #[test]
    fn the_largest_private_file_is_read_whole() {
        let dir = std::env::temp_dir().join(format!("memsession-largest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, vec![3u8; MAX_SECRET_BYTES as usize]).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_private(&path).unwrap().len(),
            MAX_SECRET_BYTES as usize
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_process_uid_is_the_effective_one() {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let effective: u32 = status
            .lines()
            .find_map(|line| line.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|id| id.parse().ok())
            .unwrap();
        assert_eq!(process_uid(), effective);
    }

    #[test]
    fn short_secrets_are_refused_and_debug_hides_bytes() {
        assert!(ServerSecret::from_bytes(vec![7; 31]).is_err());
        let secret = ServerSecret::from_bytes(vec![7; 32]).unwrap();
        assert_eq!(format!("{secret:?}"), "ServerSecret(<32 bytes>)");
    }

    #[test]
    fn reads_a_good_file_and_names_what_is_wrong_with_a_bad_one() {
        let dir = std::env::temp_dir().join(format!("memsession-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good");
        std::fs::write(&good, [9u8; 40]).unwrap();
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read(&good).unwrap().as_bytes(), &[9u8; 40]);

        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(read(&good).unwrap_err().contains("mode 0644"));

        let short = dir.join("short");
        std::fs::write(&short, [1u8; 16]).unwrap();
        std::fs::set_permissions(&short, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(read(&short).unwrap_err().contains("holds 16 bytes"));

        assert!(read(&dir.join("missing"))
            .unwrap_err()
            .contains("cannot open"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
