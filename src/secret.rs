//! Copies of passwords, wiped once used. The module makes a few: the login form's body, the
//! decoded password, the NUL-terminated copy handed to an authn provider, to APR's password
//! check or to libkrb5. Each lives in a buffer that is overwritten with zeros (volatile writes,
//! `zeroize`) when it is dropped, or earlier where the code says so; buffers are sized up
//! front, so no reallocation leaves an unwiped copy behind in freed memory.
//!
//! What this cannot reach: copies made by others (httpd's input brigades, an authn provider's
//! own copies — mod_authnz_ldap keeps one in its request state —, libkrb5's), and a password
//! swapped out to disk.
use std::ffi::c_char;

pub use zeroize::{Zeroize, Zeroizing};

/// A password as C takes it: its bytes and a NUL, wiped on drop.
pub struct CSecret(Zeroizing<Vec<u8>>);

impl CSecret {
    /// `None` when the password holds a NUL (C would read a shorter password).
    pub fn new(password: &str) -> Option<CSecret> {
        if password.contains('\0') {
            return None;
        }
        let mut bytes = Vec::with_capacity(password.len() + 1);
        bytes.extend_from_slice(password.as_bytes());
        bytes.push(0);
        Some(CSecret(Zeroizing::new(bytes)))
    }

    /// Valid (NUL-terminated) for as long as `self` lives.
    pub fn as_ptr(&self) -> *const c_char {
        self.0.as_ptr().cast()
    }

    /// The bytes, NUL included.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Wipes now, in place (a dropped `CSecret` is wiped anyway, its whole allocation).
    pub fn wipe(&mut self) {
        self.0.as_mut_slice().zeroize();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_c_secret_is_the_password_and_a_nul_and_refuses_inner_nuls() {
        let secret = CSecret::new("pässword").unwrap();
        assert_eq!(secret.as_bytes(), "pässword\0".as_bytes());
        assert_eq!(secret.as_ptr(), secret.as_bytes().as_ptr().cast());
        assert!(CSecret::new("a\0b").is_none());
        assert_eq!(CSecret::new("").unwrap().as_bytes(), b"\0");
    }

    #[test]
    fn wiping_zeroes_the_buffer_in_place() {
        let mut secret = CSecret::new("hunter2").unwrap();
        let before = secret.as_bytes().as_ptr();
        secret.wipe();
        assert_eq!(
            secret.as_bytes(),
            [0u8; 8],
            "the same length, every byte zero"
        );
        assert_eq!(
            secret.as_bytes().as_ptr(),
            before,
            "in place, not a new buffer"
        );
    }
}
