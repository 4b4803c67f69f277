//! Password login through Kerberos in-process (`MemSessionKerberosRealm`): libkrb5 asks the
//! realm's KDC for a TGT with the password, proves with a key from the service keytab that the
//! answer came from the real KDC (a password alone cannot tell a spoofed KDC from the real
//! one), and hands the TGT back as a FILE-format cache, to be sealed in the session like
//! delegated credentials. libkrb5 is C, so this lives in the crate's only `unsafe` layer;
//! every handle is owned by a guard that frees it, errors included.
use std::ffi::{c_char, c_int, CStr, CString};
use std::ptr;

use super::bindings::krb5 as k5;
use crate::krb5::ccache;
use crate::secret::CSecret;

/// A verified TGT.
pub struct Tgt {
    /// The client principal as the KDC issued it (`alice@EXAMPLE.COM`), as mod_auth_gssapi
    /// names a Negotiate login's user.
    pub principal: String,
    /// A version 4 FILE cache holding the TGT alone.
    pub ccache: Vec<u8>,
}

/// Why no TGT; the texts are libkrb5's, for the log only, never for the client.
pub enum Failure {
    /// The KDC does not know the principal.
    UnknownPrincipal,
    /// The KDC said no to this account: wrong password, expired password, locked, expired or
    /// disabled principal, a principal without usable keys. Every one of these answers the
    /// same 401 as an unknown principal, or the answer would say "this account exists".
    Refused(String),
    /// The KDC's answer could not be proven with the keytab: a spoofed KDC, or a keytab whose
    /// key is older than the KDC's (kvno).
    NotVerified(String),
    /// No key of the realm in the keytab, or the keytab cannot be read by httpd's user.
    Keytab(String),
    /// No KDC of the realm answered.
    Unreachable(String),
    Other(String),
}

/// Asks `realm`'s KDC for `principal`'s TGT with `password`, and verifies it with the first
/// key of that realm in `keytab` (`None`: libkrb5's default keytab).
pub fn obtain_tgt(
    principal: &str,
    password: &str,
    realm: &str,
    keytab: Option<&str>,
) -> Result<Tgt, Failure> {
    let context = Context::new()?;
    let client = context.parse_principal(principal)?;
    let mut creds = Creds::new(&context);
    let options = InitCredsOptions::new(&context)?;
    // The password as libkrb5 takes it (NUL-terminated), wiped once used.
    let secret = CSecret::new(password)
        .ok_or_else(|| Failure::Refused("the password holds a NUL character".into()))?;
    // SAFETY: every pointer is a live handle owned by a guard above; no prompter, so libkrb5
    // never asks anything (an expired password is an error, not a change dialog).
    let code = unsafe {
        k5::krb5_get_init_creds_password(
            context.raw,
            &mut creds.raw,
            client.raw,
            secret.as_ptr(),
            None,
            ptr::null_mut(),
            0,
            ptr::null(),
            options.raw,
        )
    };
    drop(secret); // wiped as soon as libkrb5 is done with it
    match code {
        0 => {}
        k5::KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN => return Err(Failure::UnknownPrincipal),
        // Bad credentials, and every answer the KDC gives only about an existing account
        // (expired, not yet valid, locked, disabled by policy, without keys, asked for a
        // timestamp the clock skew made it reject after the password proved right).
        k5::KRB5KDC_ERR_PREAUTH_FAILED
        | k5::KRB5KRB_AP_ERR_BAD_INTEGRITY
        | k5::KRB5_PREAUTH_FAILED
        | k5::KRB5KDC_ERR_KEY_EXP
        | k5::KRB5KDC_ERR_CLIENT_REVOKED
        | k5::KRB5KDC_ERR_NAME_EXP
        | k5::KRB5KDC_ERR_CLIENT_NOTYET
        | k5::KRB5KDC_ERR_POLICY
        | k5::KRB5KDC_ERR_NULL_KEY
        | k5::KRB5KDC_ERR_ETYPE_NOSUPP
        | k5::KRB5KDC_ERR_C_OLD_MAST_KVNO
        | k5::KRB5KDC_ERR_WRONG_REALM
        | k5::KRB5KRB_AP_ERR_SKEW => return Err(Failure::Refused(context.message(code))),
        // Any other error a KDC sent back (the protocol's codes 0-127) said something about
        // this request, possibly about the account: the uniform refusal too, never a 500.
        code if (k5::KRB5KDC_ERR_NONE..k5::KRB5KDC_ERR_NONE + 128).contains(&code) => {
            return Err(Failure::Refused(context.message(code)))
        }
        k5::KRB5_KDC_UNREACH | k5::KRB5_REALM_UNKNOWN | k5::KRB5_REALM_CANT_RESOLVE => {
            return Err(Failure::Unreachable(context.message(code)))
        }
        _ => return Err(Failure::Other(context.message(code))),
    }

    let keytab = Keytab::open(&context, keytab)?;
    let service = keytab.first_principal_of(realm)?;
    let mut verify_options = k5::krb5_verify_init_creds_opt {
        flags: 0,
        ap_req_nofail: 0,
    };
    // SAFETY: plain struct setters; then live handles, no ccache asked back (NULL).
    let code = unsafe {
        k5::krb5_verify_init_creds_opt_init(&mut verify_options);
        k5::krb5_verify_init_creds_opt_set_ap_req_nofail(&mut verify_options, 1);
        k5::krb5_verify_init_creds(
            context.raw,
            &mut creds.raw,
            service.raw,
            keytab.raw,
            ptr::null_mut(),
            &mut verify_options,
        )
    };
    if code != 0 {
        return Err(Failure::NotVerified(context.message(code)));
    }

    let serialized = creds.serialize()?;
    let ccache = ccache::file_with_credential(&serialized)
        .map_err(|error| Failure::Other(format!("libkrb5's credential: {error}")))?;
    let principal = context.unparse(creds.raw.client)?;
    Ok(Tgt { principal, ccache })
}

struct Context {
    raw: k5::krb5_context,
}

impl Context {
    fn new() -> Result<Context, Failure> {
        let mut raw = ptr::null_mut();
        // SAFETY: writes a new context to `raw`, owned by the guard from here on.
        let code = unsafe { k5::krb5_init_context(&mut raw) };
        if code != 0 || raw.is_null() {
            return Err(Failure::Other(format!(
                "krb5_init_context failed ({code}): is KRB5_CONFIG readable?"
            )));
        }
        Ok(Context { raw })
    }

    fn parse_principal(&self, name: &str) -> Result<Principal<'_>, Failure> {
        let name = CString::new(name).map_err(|_| Failure::UnknownPrincipal)?;
        let mut raw = ptr::null_mut();
        // SAFETY: a NUL-terminated name and a live context; `raw` is owned by the guard.
        let code = unsafe {
            k5::krb5_parse_name_flags(
                self.raw,
                name.as_ptr(),
                k5::KRB5_PRINCIPAL_PARSE_REQUIRE_REALM as c_int,
                &mut raw,
            )
        };
        if code != 0 {
            return Err(Failure::Other(self.message(code)));
        }
        Ok(Principal { context: self, raw })
    }

    fn unparse(&self, principal: k5::krb5_principal) -> Result<String, Failure> {
        let mut text: *mut c_char = ptr::null_mut();
        // SAFETY: `principal` belongs to a live credential; the text is freed just below.
        let code = unsafe { k5::krb5_unparse_name(self.raw, principal, &mut text) };
        if code != 0 || text.is_null() {
            return Err(Failure::Other(self.message(code)));
        }
        // SAFETY: libkrb5 returned a NUL-terminated string it allocated.
        let name = unsafe { CStr::from_ptr(text) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: freed once, with libkrb5's own function.
        unsafe { k5::krb5_free_unparsed_name(self.raw, text) };
        Ok(name)
    }

    /// libkrb5's text for `code` (with the context's extended message when it has one).
    fn message(&self, code: k5::krb5_error_code) -> String {
        // SAFETY: the message is copied, then freed with libkrb5's own function.
        unsafe {
            let text = k5::krb5_get_error_message(self.raw, code);
            if text.is_null() {
                return format!("Kerberos error {code}");
            }
            let message = CStr::from_ptr(text).to_string_lossy().into_owned();
            k5::krb5_free_error_message(self.raw, text);
            message
        }
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: every guard borrowing the context has been dropped before it.
        unsafe { k5::krb5_free_context(self.raw) }
    }
}

struct Principal<'c> {
    context: &'c Context,
    raw: k5::krb5_principal,
}

impl Drop for Principal<'_> {
    fn drop(&mut self) {
        // SAFETY: owned by this guard alone.
        unsafe { k5::krb5_free_principal(self.context.raw, self.raw) }
    }
}

struct Creds<'c> {
    context: &'c Context,
    raw: k5::krb5_creds,
}

impl<'c> Creds<'c> {
    fn new(context: &'c Context) -> Creds<'c> {
        // SAFETY: libkrb5 expects a zeroed krb5_creds (all pointers NULL) to fill in.
        let raw = unsafe { std::mem::zeroed() };
        Creds { context, raw }
    }

    /// The credential in the FILE cache's own serialization.
    fn serialize(&mut self) -> Result<Vec<u8>, Failure> {
        let mut data: *mut k5::krb5_data = ptr::null_mut();
        // SAFETY: a filled credential; the returned buffer is copied, then freed.
        unsafe {
            let code = k5::krb5_marshal_credentials(self.context.raw, &mut self.raw, &mut data);
            if code != 0 || data.is_null() {
                return Err(Failure::Other(self.context.message(code)));
            }
            let bytes =
                std::slice::from_raw_parts((*data).data.cast::<u8>(), (*data).length as usize)
                    .to_vec();
            k5::krb5_free_data(self.context.raw, data);
            Ok(bytes)
        }
    }
}

impl Drop for Creds<'_> {
    fn drop(&mut self) {
        // SAFETY: frees what libkrb5 put in the struct (NULL fields are skipped), not the
        // struct itself, which lives here.
        unsafe { k5::krb5_free_cred_contents(self.context.raw, &mut self.raw) }
    }
}

struct InitCredsOptions<'c> {
    context: &'c Context,
    raw: *mut k5::krb5_get_init_creds_opt,
}

impl<'c> InitCredsOptions<'c> {
    fn new(context: &'c Context) -> Result<InitCredsOptions<'c>, Failure> {
        let mut raw = ptr::null_mut();
        // SAFETY: allocates options owned by the guard; the setter takes the live pointer.
        unsafe {
            let code = k5::krb5_get_init_creds_opt_alloc(context.raw, &mut raw);
            if code != 0 || raw.is_null() {
                return Err(Failure::Other(context.message(code)));
            }
            k5::krb5_get_init_creds_opt_set_change_password_prompt(raw, 0);
        }
        Ok(InitCredsOptions { context, raw })
    }
}

impl Drop for InitCredsOptions<'_> {
    fn drop(&mut self) {
        // SAFETY: owned by this guard alone.
        unsafe { k5::krb5_get_init_creds_opt_free(self.context.raw, self.raw) }
    }
}

struct Keytab<'c> {
    context: &'c Context,
    raw: k5::krb5_keytab,
}

impl<'c> Keytab<'c> {
    fn open(context: &'c Context, name: Option<&str>) -> Result<Keytab<'c>, Failure> {
        let mut raw = ptr::null_mut();
        let code = match name {
            Some(name) => {
                let name = CString::new(name)
                    .map_err(|_| Failure::Keytab("keytab name holds a NUL".into()))?;
                // SAFETY: a NUL-terminated name; the handle is owned by the guard.
                unsafe { k5::krb5_kt_resolve(context.raw, name.as_ptr(), &mut raw) }
            }
            // SAFETY: as above, for libkrb5's default keytab.
            None => unsafe { k5::krb5_kt_default(context.raw, &mut raw) },
        };
        if code != 0 || raw.is_null() {
            return Err(Failure::Keytab(context.message(code)));
        }
        Ok(Keytab { context, raw })
    }

    /// The first service principal of `realm` in the keytab (`HTTP/host@REALM` in the usual
    /// web server keytab). libkrb5 would only try `host/` principals on its own.
    fn first_principal_of(&self, realm: &str) -> Result<Principal<'c>, Failure> {
        let context = self.context;
        let mut cursor: k5::krb5_kt_cursor = ptr::null_mut();
        // SAFETY: iterates the live keytab; each entry is freed before the next is read and
        // the one kept is copied first; the cursor is ended on every path.
        unsafe {
            let code = k5::krb5_kt_start_seq_get(context.raw, self.raw, &mut cursor);
            if code != 0 {
                return Err(Failure::Keytab(context.message(code)));
            }
            let mut found = Err(Failure::Keytab(format!(
                "the keytab holds no key of realm {realm}"
            )));
            loop {
                let mut entry: k5::krb5_keytab_entry = std::mem::zeroed();
                let code = k5::krb5_kt_next_entry(context.raw, self.raw, &mut entry, &mut cursor);
                if code == k5::KRB5_KT_END {
                    break;
                }
                if code != 0 {
                    found = Err(Failure::Keytab(context.message(code)));
                    break;
                }
                let entry_realm = &(*entry.principal).realm;
                let matches = std::slice::from_raw_parts(
                    entry_realm.data.cast::<u8>(),
                    entry_realm.length as usize,
                ) == realm.as_bytes();
                if matches {
                    let mut copy = ptr::null_mut();
                    let code = k5::krb5_copy_principal(context.raw, entry.principal, &mut copy);
                    found = if code == 0 {
                        Ok(Principal { context, raw: copy })
                    } else {
                        Err(Failure::Other(context.message(code)))
                    };
                }
                k5::krb5_kt_free_entry(context.raw, &mut entry);
                if matches {
                    break;
                }
            }
            k5::krb5_kt_end_seq_get(context.raw, self.raw, &mut cursor);
            found
        }
    }
}

impl Drop for Keytab<'_> {
    fn drop(&mut self) {
        // SAFETY: owned by this guard alone.
        unsafe { k5::krb5_kt_close(self.context.raw, self.raw) };
    }
}
