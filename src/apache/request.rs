//! `Request<'r>`: the one typed view of a `request_rec`. Everything the flows need from a
//! request, and everything they do to one, goes through here.
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::fmt;
use std::marker::PhantomData;
use std::ptr::NonNull;

use super::backend_cookie::NOTE_CLIENT_COOKIE;
use super::bindings as ap;
use super::log::{self, Level};
use super::pool::{self, Pool};
use super::server_state::ServerState;
use crate::config::DirConfig;
use crate::secret::{CSecret, Zeroize, Zeroizing};
use crate::session_store::{SessionStore, ValidRecord};

pub struct Request<'r> {
    raw: NonNull<ap::request_rec>,
    _life: PhantomData<&'r mut ap::request_rec>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    TooLarge,
    Unreadable,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PasswordCheck {
    Granted,
    /// This provider does not know the user: the next one is asked.
    UnknownUser,
    Denied,
    ProviderError,
    NoSuchProvider,
}

#[derive(Clone, Copy, Debug)]
pub enum Method {
    Get,
    Post,
}

/// The header tables of a request.
#[derive(Clone, Copy)]
pub enum Headers {
    In,
    Out,
    /// Sent with every response, errors and redirects included.
    ErrOut,
}

impl<'r> Request<'r> {
    /// # Safety
    /// `raw` must be NULL or the live request Apache passed to the current hook, not used
    /// through another alias while this view exists.
    pub unsafe fn from_raw(raw: *mut ap::request_rec) -> Option<Request<'r>> {
        NonNull::new(raw).map(|raw| Request {
            raw,
            _life: PhantomData,
        })
    }

    pub fn as_ptr(&self) -> *mut ap::request_rec {
        self.raw.as_ptr()
    }

    fn rec(&self) -> &ap::request_rec {
        // SAFETY: `raw` is live for 'r (constructor contract).
        unsafe { self.raw.as_ref() }
    }

    pub fn pool(&self) -> Pool<'r> {
        // SAFETY: a request's pool lives as long as the request.
        unsafe { Pool::from_raw(self.rec().pool) }.expect("request without a pool")
    }

    pub fn log(&self, level: Level, message: fmt::Arguments) {
        log::request(self.as_ptr(), level, message);
    }

    pub fn dir_config(&self) -> Option<&'r DirConfig> {
        // SAFETY: the shim returns this module's per-dir config for the request, created
        // and merged by config_entries as a DirConfig in a pool that outlives the request.
        unsafe {
            ap::memsession_c_dir_config(self.as_ptr())
                .cast::<DirConfig>()
                .as_ref()
        }
    }

    pub fn server_state(&self) -> Option<&'r ServerState> {
        // SAFETY: server configs are ServerStates made by config_entries, living in pconf.
        unsafe {
            ap::memsession_c_server_config(self.rec().server)
                .cast::<ServerState>()
                .as_ref()
        }
    }

    /// This virtual host's session store.
    pub fn session_store(&self) -> Option<&'r SessionStore> {
        self.server_state().and_then(ServerState::store)
    }

    pub fn method(&self) -> &'r str {
        // SAFETY: Apache keeps r->method for the request's life.
        unsafe { pool::text(self.rec().method) }.unwrap_or("")
    }

    pub fn unparsed_uri(&self) -> &'r str {
        // SAFETY: as above.
        unsafe { pool::text(self.rec().unparsed_uri) }.unwrap_or("/")
    }

    pub fn uri(&self) -> &'r str {
        // SAFETY: as above.
        unsafe { pool::text(self.rec().uri) }.unwrap_or("/")
    }

    pub fn args(&self) -> Option<&'r str> {
        // SAFETY: as above.
        unsafe { pool::text(self.rec().args) }
    }

    /// The client's address as httpd settled it (`r->useragent_ip`: the peer, or what
    /// mod_remoteip took from a trusted proxy's header).
    pub fn client_address(&self) -> &'r str {
        // SAFETY: as above.
        unsafe { pool::text(self.rec().useragent_ip) }.unwrap_or("")
    }

    pub fn handler(&self) -> Option<&'r str> {
        // SAFETY: as above.
        unsafe { pool::text(self.rec().handler) }
    }

    pub fn user(&self) -> Option<&'r str> {
        // SAFETY: as above.
        unsafe { pool::text(self.rec().user) }
    }

    /// The `AuthType` configured for this location.
    pub fn configured_auth_type(&self) -> Option<&'r str> {
        // SAFETY: ap_auth_type reads the request's core dir config.
        unsafe { pool::text(ap::ap_auth_type(self.as_ptr())) }
    }

    /// The auth type the authenticating module recorded (AUTH_TYPE for CGI).
    pub fn authenticated_type(&self) -> Option<&'r str> {
        // SAFETY: as above.
        unsafe { pool::text(self.rec().ap_auth_type) }
    }

    pub fn set_user(&mut self, user: &str, auth_type: &str) {
        let pool = self.pool();
        let (user, auth_type) = (pool.c_str(user), pool.c_str(auth_type));
        // SAFETY: both strings live in r->pool, as Apache expects of r->user.
        unsafe {
            let rec = self.raw.as_mut();
            rec.user = user as *mut c_char;
            rec.ap_auth_type = auth_type as *mut c_char;
        }
    }

    /// No user: a refused login leaves none behind (an error document would inherit it).
    pub fn clear_user(&mut self) {
        // SAFETY: a plain field of the live request; NULL is what httpd starts with.
        unsafe { self.raw.as_mut().user = std::ptr::null_mut() }
    }

    /// Sets `r->user` to a pool copy of `user` and `r->ap_auth_type` to a constant, and files
    /// the same copy under the note `note`: one copy in all, where separate setters made three
    /// (the request hot path, measured with callgrind).
    pub fn set_user_noted(&mut self, user: &str, auth_type: &'static CStr, note: &'static CStr) {
        let user = self.pool().c_str(user);
        // SAFETY: `user` lives in r->pool, the auth type is static; r->notes lives in r->pool
        // and setn stores the static key and the pool value without copying.
        unsafe {
            let rec = self.raw.as_mut();
            rec.user = user as *mut c_char;
            rec.ap_auth_type = auth_type.as_ptr() as *mut c_char;
            ap::apr_table_setn(rec.notes, note.as_ptr(), user);
        }
    }

    /// The directory of a `.htaccess` file that applied to this request and may have changed
    /// its authentication or handler (AllowOverride AuthConfig or FileInfo, or an
    /// AllowOverrideList), if any. httpd keeps every `.htaccess` it parsed for the request
    /// (and the requests it derives from) in `r->htaccess`; an entry whose file was absent
    /// holds no configuration.
    pub fn htaccess_that_may_configure_auth(&self) -> Option<String> {
        // SAFETY: r->filename is NULL or a pool string.
        let filename = unsafe { self.rec().filename.as_ref() }
            .map(|first| unsafe { CStr::from_ptr(first) }.to_bytes());
        let mut entry = self.rec().htaccess;
        // SAFETY: httpd's htaccess list lives in the request's pool chain; each entry's dir
        // is a NUL-terminated pool string and `next` ends the list with NULL.
        while let Some(found) = unsafe { entry.as_ref() } {
            entry = found.next;
            if found.htaccess.is_null() || found.dir.is_null() {
                continue;
            }
            let may_configure = found.override_ & (ap::OR_AUTHCFG | ap::OR_FILEINFO) as c_int != 0
                || (!found.override_list.is_null()
                    // SAFETY: a live table of the directives AllowOverrideList names.
                    && unsafe { ap::apr_is_empty_table(found.override_list) } == 0);
            if !may_configure {
                continue;
            }
            // SAFETY: checked non-NULL above; a pool string.
            let dir = unsafe { CStr::from_ptr(found.dir) }.to_bytes();
            // A request without a file name (a proxied URL) walked no directory: an entry
            // left by a request it derives from does not apply to it.
            if filename.is_some_and(|name| name.starts_with(dir)) {
                return Some(String::from_utf8_lossy(dir).into_owned());
            }
        }
        None
    }

    pub fn is_subrequest(&self) -> bool {
        !self.rec().main.is_null()
    }

    /// The requests this one derives from: sub-request parents and internal-redirect
    /// predecessors, nearest first.
    pub fn ancestors(&self) -> impl Iterator<Item = Request<'r>> {
        let first = NonNull::new(self.rec().main).or_else(|| NonNull::new(self.rec().prev));
        std::iter::successors(
            first.map(|raw| Request {
                raw,
                _life: PhantomData,
            }),
            |req| {
                let rec = req.rec();
                NonNull::new(rec.main)
                    .or_else(|| NonNull::new(rec.prev))
                    .map(|raw| Request {
                        raw,
                        _life: PhantomData,
                    })
            },
        )
    }

    fn table(&self, which: Headers) -> *mut ap::apr_table_t {
        let rec = self.rec();
        match which {
            Headers::In => rec.headers_in,
            Headers::Out => rec.headers_out,
            Headers::ErrOut => rec.err_headers_out,
        }
    }

    pub fn header(&self, which: Headers, name: &CStr) -> Option<&'r str> {
        // SAFETY: the tables live in r->pool; apr_table_get returns a pool string or NULL.
        unsafe { pool::text(ap::apr_table_get(self.table(which), name.as_ptr())) }
    }

    /// The `Cookie` header the client sent: as this request holds it, or as the nearest
    /// request it derives from held it before the session cookie was taken out for the
    /// backend (`backend_cookie`).
    pub fn cookie_header(&self) -> Option<std::borrow::Cow<'r, str>> {
        let kept = std::iter::once(self.reborrow())
            .chain(self.ancestors())
            // SAFETY: r->notes lives in r->pool; apr_table_get returns a pool string or NULL.
            .map(|request| unsafe {
                ap::apr_table_get(request.rec().notes, NOTE_CLIENT_COOKIE.as_ptr())
            })
            .find(|raw| !raw.is_null());
        // SAFETY: NULL or a NUL-terminated string of r->pool or an ancestor's (which outlives
        // it: internal redirects share the pool, subrequests' pools descend from it).
        unsafe { lossy(kept.unwrap_or_else(|| self.raw_cookie_header())) }
    }

    /// This request's own `Cookie` header, its bytes as they are.
    pub fn sent_cookie_bytes(&self) -> Option<&'r [u8]> {
        let raw = self.raw_cookie_header();
        // SAFETY: NULL or a NUL-terminated pool string of this request's headers.
        (!raw.is_null()).then(|| unsafe { CStr::from_ptr(raw) }.to_bytes())
    }

    /// Replaces this request's `Cookie` header (`None`: removes it), for the backend.
    pub fn replace_cookie_header(&mut self, value: Option<&[u8]>) {
        let table = self.table(Headers::In);
        match value {
            // SAFETY: a static key and a value copied into r->pool: setn stores both.
            Some(value) => unsafe {
                ap::apr_table_setn(table, c"Cookie".as_ptr(), self.pool().c_bytes(value))
            },
            // SAFETY: apr_table_unset only reads the key.
            None => unsafe { ap::apr_table_unset(table, c"Cookie".as_ptr()) },
        }
    }

    /// Keeps this request's `Cookie` header, as sent, in the note `cookie_header` reads,
    /// before the header is rewritten: the same pool string (a table entry's removal frees
    /// nothing), so no copy.
    pub fn keep_sent_cookie_header(&mut self) {
        let raw = self.raw_cookie_header();
        if !raw.is_null() {
            // SAFETY: the key is static, the value a pool string of r->pool: setn stores both
            // without copying.
            unsafe { ap::apr_table_setn(self.rec().notes, NOTE_CLIENT_COOKIE.as_ptr(), raw) }
        }
    }

    fn raw_cookie_header(&self) -> *const c_char {
        // SAFETY: the table lives in r->pool; apr_table_get returns a pool string or NULL.
        unsafe { ap::apr_table_get(self.table(Headers::In), c"Cookie".as_ptr()) }
    }

    pub fn set_header(&mut self, which: Headers, name: &str, value: &str) {
        let pool = self.pool();
        // SAFETY: apr_table_set copies key and value into the table's pool.
        unsafe { ap::apr_table_set(self.table(which), pool.c_str(name), pool.c_str(value)) }
    }

    /// Sets a header whose name and value are constants (no copy into the pool).
    pub fn set_header_static(&mut self, which: Headers, name: &'static CStr, value: &'static CStr) {
        // SAFETY: static strings outlive the table; setn stores them without copying.
        unsafe { ap::apr_table_setn(self.table(which), name.as_ptr(), value.as_ptr()) }
    }

    pub fn add_header(&mut self, which: Headers, name: &str, value: &str) {
        let pool = self.pool();
        // SAFETY: as above (apr_table_add copies too).
        unsafe { ap::apr_table_add(self.table(which), pool.c_str(name), pool.c_str(value)) }
    }

    /// Every (name, value) of a header table, in order, or only those named `only`
    /// (case-insensitively), as C strings in r->pool (any bytes but NUL).
    fn entries(&self, which: Headers, only: Option<&CStr>) -> Vec<(&'r CStr, &'r CStr)> {
        unsafe extern "C" fn collect(
            entries: *mut c_void,
            key: *const c_char,
            value: *const c_char,
        ) -> c_int {
            // SAFETY: `entries` is the Vec passed below; key and value are NULL or
            // NUL-terminated strings of a table in r->pool, which outlives 'r.
            unsafe {
                let entries = &mut *entries.cast::<Vec<(&CStr, &CStr)>>();
                if !key.is_null() && !value.is_null() {
                    entries.push((CStr::from_ptr(key), CStr::from_ptr(value)));
                }
            }
            1
        }
        let mut entries: Vec<(&'r CStr, &'r CStr)> = Vec::new();
        let only = only.map_or(std::ptr::null(), CStr::as_ptr);
        // SAFETY: the callback only touches `entries`, which outlives the call; the key list
        // is `only` (NULL: every entry) and then NULL.
        unsafe {
            ap::apr_table_do(
                Some(collect),
                (&mut entries as *mut Vec<(&'r CStr, &'r CStr)>).cast(),
                self.table(which),
                only,
                std::ptr::null::<c_char>(),
            );
        }
        entries
    }

    /// Every request header name, as sent (including duplicates; bytes that are not UTF-8
    /// replaced, so a name is never skipped).
    pub fn header_names(&self, which: Headers) -> Vec<String> {
        self.entries(which, None)
            .into_iter()
            .map(|(name, _)| name.to_string_lossy().into_owned())
            .collect()
    }

    /// Every value of one header (a header may repeat); values that are not UTF-8 are left
    /// out.
    pub fn header_values(&self, which: Headers, name: &CStr) -> Vec<&'r str> {
        self.entries(which, Some(name))
            .into_iter()
            .filter_map(|(_, value)| value.to_str().ok())
            .collect()
    }

    /// Sends a session's `Set-Cookie` with the response, errors and redirects included; no
    /// cache in httpd may keep a response that carries one.
    pub fn set_cookie(&mut self, set_cookie: &str) {
        self.add_header(Headers::ErrOut, "Set-Cookie", set_cookie);
        self.forbid_caching_here();
    }

    /// Tells mod_cache (and any cache in httpd) not to store this response.
    pub fn forbid_caching_here(&mut self) {
        // SAFETY: a plain flag of the live request.
        unsafe { self.raw.as_mut().no_cache = 1 }
    }

    /// Adds the filter that marks the response private once the backend's headers are known.
    pub fn add_private_filter(&mut self) {
        // SAFETY: the live request, before its handler runs (insert_filter).
        unsafe { ap::memsession_c_add_private_filter(self.as_ptr()) }
    }

    pub fn unset_header(&mut self, which: Headers, name: &str) {
        let Ok(name) = CString::new(name) else { return };
        // SAFETY: apr_table_unset only reads the key.
        unsafe { ap::apr_table_unset(self.table(which), name.as_ptr()) }
    }

    pub fn note(&self, name: &CStr) -> Option<&'r str> {
        // SAFETY: r->notes lives in r->pool.
        unsafe { pool::text(ap::apr_table_get(self.rec().notes, name.as_ptr())) }
    }

    pub fn set_note(&mut self, name: &CStr, value: &str) {
        let value = self.pool().c_str(value);
        // SAFETY: key is static, value pool-allocated: setn stores them without copying.
        unsafe { ap::apr_table_setn(self.rec().notes, name.as_ptr(), value) }
    }

    /// Keeps the session this module validated for the request, for the handlers and for
    /// the requests derived from it; the request pool owns it.
    pub fn keep_validated(&mut self, record: ValidRecord) {
        let kept = self.pool().adopt(record);
        // SAFETY: the slot is this module's; the record lives as long as r->pool, which
        // internal redirects share and subrequests' pools descend from.
        unsafe { ap::memsession_c_set_request_state(self.as_ptr(), kept.cast()) }
    }

    /// Whether this very request kept a session it validated (one pointer read, no table).
    pub fn kept_validated_here(&self) -> bool {
        // SAFETY: reads this module's slot of the live request.
        !unsafe { ap::memsession_c_request_state(self.as_ptr()) }.is_null()
    }

    /// The session validated for this request or the nearest request it derives from.
    pub fn validated(&self) -> Option<&'r ValidRecord> {
        std::iter::once(self.reborrow())
            .chain(self.ancestors())
            .find_map(|request| {
                // SAFETY: the slot holds NULL or a ValidRecord set by keep_validated, owned by
                // a pool that outlives this request.
                unsafe {
                    ap::memsession_c_request_state(request.as_ptr())
                        .cast::<ValidRecord>()
                        .as_ref()
                }
            })
    }

    fn reborrow(&self) -> Request<'r> {
        Request {
            raw: self.raw,
            _life: PhantomData,
        }
    }

    /// Sets a note whose value is a constant (no copy into the pool).
    pub fn set_note_static(&mut self, name: &'static CStr, value: &'static CStr) {
        // SAFETY: key and value are static: setn stores them without copying.
        unsafe { ap::apr_table_setn(self.rec().notes, name.as_ptr(), value.as_ptr()) }
    }

    /// A variable of the environment backends get (`r->subprocess_env`).
    pub fn env(&self, name: &CStr) -> Option<&'r str> {
        // SAFETY: subprocess_env lives in r->pool.
        unsafe { pool::text(ap::apr_table_get(self.rec().subprocess_env, name.as_ptr())) }
    }

    pub fn set_env(&mut self, name: &str, value: &str) {
        let pool = self.pool();
        // SAFETY: subprocess_env lives in r->pool; set copies.
        unsafe {
            ap::apr_table_set(
                self.rec().subprocess_env,
                pool.c_str(name),
                pool.c_str(value),
            )
        }
    }

    /// Sets a variable of the backends' environment whose name is a constant: only the value
    /// is copied into the pool.
    pub fn set_env_static_name(&mut self, name: &'static CStr, value: &str) {
        let value = self.pool().c_str(value);
        // SAFETY: subprocess_env lives in r->pool; setn keeps the static name and the pool
        // value without copying.
        unsafe { ap::apr_table_setn(self.rec().subprocess_env, name.as_ptr(), value) }
    }

    /// This site's origin as the client addressed it (`http://host:port`, default port
    /// left out), from Apache's own URL construction.
    pub fn own_origin(&self) -> String {
        // SAFETY: ap_construct_url allocates the result in the pool we pass.
        let url = unsafe {
            pool::text(ap::ap_construct_url(
                self.pool().as_ptr(),
                c"".as_ptr(),
                self.as_ptr(),
            ))
        };
        url.unwrap_or("").to_string()
    }

    /// Reads the request body, refusing more than `limit` bytes. The body may hold a password:
    /// it is read into a buffer of `limit` bytes made up front (never reallocated, which would
    /// leave a copy in freed memory) that is wiped when dropped, through a stack buffer wiped
    /// before returning.
    pub fn read_body(&mut self, limit: usize) -> Result<Zeroizing<Vec<u8>>, BodyError> {
        let mut buffer = [0u8; 4096];
        let body = self.read_body_through(limit, &mut buffer);
        buffer.zeroize();
        body
    }

    fn read_body_through(
        &mut self,
        limit: usize,
        buffer: &mut [u8],
    ) -> Result<Zeroizing<Vec<u8>>, BodyError> {
        // SAFETY: the standard client-block sequence on the live request; the buffer
        // outlives each call and its length is passed with it.
        unsafe {
            let setup =
                ap::ap_setup_client_block(self.as_ptr(), ap::REQUEST_CHUNKED_DECHUNK as c_int);
            if setup != ap::OK as c_int {
                return Err(BodyError::Unreadable);
            }
            let mut body = Zeroizing::new(Vec::with_capacity(limit));
            if ap::ap_should_client_block(self.as_ptr()) == 0 {
                return Ok(body);
            }
            loop {
                let read = ap::ap_get_client_block(
                    self.as_ptr(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                );
                match read {
                    0 => return Ok(body),
                    n if n < 0 => return Err(BodyError::Unreadable),
                    n => {
                        let chunk = buffer.get(..n as usize).ok_or(BodyError::Unreadable)?;
                        if body.len() + chunk.len() > limit {
                            return Err(BodyError::TooLarge);
                        }
                        body.extend_from_slice(chunk);
                    }
                }
            }
        }
    }

    /// Asks an Apache authn provider (`file`, `ldap`, an alias...) about a password.
    pub fn check_password(&mut self, provider: &str, user: &str, password: &str) -> PasswordCheck {
        // The provider's copy of the password is wiped when this returns.
        let (Ok(user), Some(password)) = (CString::new(user), CSecret::new(password)) else {
            return PasswordCheck::Denied;
        };
        // Provider names are checked at config time (no NUL); the pool copy outlives the call.
        let provider = self.pool().c_str(provider);
        // SAFETY: all strings are NUL-terminated and outlive the call; the provider name is
        // in r->pool because the shim stores it in r->notes.
        let status = unsafe {
            ap::memsession_c_check_password(
                self.as_ptr(),
                provider,
                user.as_ptr(),
                password.as_ptr(),
            )
        };
        match status {
            -1 => PasswordCheck::NoSuchProvider,
            s if s == ap::authn_status_AUTH_GRANTED as c_int => PasswordCheck::Granted,
            s if s == ap::authn_status_AUTH_USER_NOT_FOUND as c_int => PasswordCheck::UnknownUser,
            s if s == ap::authn_status_AUTH_GENERAL_ERROR as c_int => PasswordCheck::ProviderError,
            _ => PasswordCheck::Denied,
        }
    }

    /// Verifies `password` against `hash` as the `file` provider would (APR's
    /// `apr_password_validate`: bcrypt, MD5, SHA1, crypt). The result is not needed: it is the
    /// work that matters (the dummy check for unknown users).
    pub fn verify_against(password: &str, hash: &str) -> bool {
        let (Some(password), Ok(hash)) = (CSecret::new(password), CString::new(hash)) else {
            return false;
        };
        // SAFETY: two NUL-terminated strings that outlive the call; APR allocates nothing we
        // keep.
        unsafe { ap::apr_password_validate(password.as_ptr(), hash.as_ptr()) == 0 }
    }

    /// Answers with a complete small body. The hook then returns OK: returning an error
    /// status after writing would make Apache append its own error page.
    pub fn respond(&mut self, status: c_int, content_type: &str, body: &str) -> c_int {
        let content_type = self.pool().c_str(content_type);
        // SAFETY: content type lives in r->pool; ap_rwrite copies the body into the output.
        unsafe {
            self.raw.as_mut().status = status;
            ap::ap_set_content_type(self.as_ptr(), content_type);
            if !self.is_head() {
                ap::ap_rwrite(body.as_ptr().cast(), body.len() as c_int, self.as_ptr());
            }
        }
        ap::OK as c_int
    }

    /// The methods a 405 answer lists in `Allow` (Apache builds that header itself).
    pub fn allow_methods(&mut self, methods: &[Method]) {
        let name = |method: &Method| match method {
            Method::Get => c"GET".as_ptr(),
            Method::Post => c"POST".as_ptr(),
        };
        let null = std::ptr::null::<c_char>();
        let first = methods.first().map_or(null, name);
        let second = methods.get(1).map_or(null, name);
        // SAFETY: a NULL-terminated list of static method names (at most two here).
        unsafe { ap::ap_allow_methods(self.as_ptr(), 1, first, second, null) };
    }

    pub fn is_head(&self) -> bool {
        self.rec().header_only != 0
    }
}

/// A `Cookie` header, bytes that are not UTF-8 replaced (U+FFFD) rather than the whole header
/// dropped: a replacement is never a separator nor a character of an id, so a cookie of ours
/// holding such bytes is read as malformed (and expired), and one beside another cookie's odd
/// bytes is still read.
///
/// # Safety
/// `raw` is NULL or a NUL-terminated string that outlives `'r`.
unsafe fn lossy<'r>(raw: *const c_char) -> Option<std::borrow::Cow<'r, str>> {
    // SAFETY: per the contract above.
    (!raw.is_null()).then(|| unsafe { CStr::from_ptr(raw) }.to_string_lossy())
}
