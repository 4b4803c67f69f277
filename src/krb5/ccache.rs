//! The MIT credential cache FILE format (versions 3 and 4, big-endian), parsed without libkrb5.
//!
//! Layout (MIT krb5 `doc/formats/ccache_file_format.rst`):
//!
//! ```text
//! file       = 0x05 version(u8: 3|4) [header: v4 only] default-principal credential*
//! header     = u16 length, then fields {u16 tag, u16 length, value} filling it exactly
//!              (tag 1: KDC time offset, 8 bytes; unknown tags are ignored)
//! principal  = u32 name_type, u32 count, data realm, data component * count
//! credential = principal client, principal server,
//!              keyblock {u16 enctype [twice in v3], data key},
//!              u32 authtime, u32 starttime, u32 endtime, u32 renew_till,
//!              u8 is_skey (0|1), u32 ticket_flags,
//!              u32 count, {u16 addrtype, data} * count,
//!              u32 count, {u16 ad_type, data} * count,
//!              data ticket, data second_ticket
//! data       = u32 length, bytes
//! ```
//!
//! The credentials run to the end of the file (no count, no terminator). Key, ticket, address
//! and authdata bytes are skipped, never copied: a parsed [`Ccache`] holds names and times
//! only, so neither `Debug` nor a log line can leak a session key or a ticket. Every count and
//! length is checked against a cap (and against the bytes that are actually there) before
//! anything is allocated, so a hostile cache of at most [`MAX_CCACHE_BYTES`] cannot make the
//! parser allocate much more than its own size.
use std::fmt;

/// The largest cache accepted; the same cap as `session::record::MAX_CCACHE_LEN`.
pub const MAX_CCACHE_BYTES: usize = 64 * 1024;

/// More components than any real principal has (`krbtgt/REALM`, `HTTP/host`, config entries
/// with three).
pub const MAX_COMPONENTS: usize = 16;
/// Longest realm or component accepted (a DNS name is at most 255 bytes).
pub const MAX_NAME_BYTES: usize = 1024;
/// Addresses or authdata elements in one credential.
pub const MAX_LIST_ITEMS: usize = 64;
/// Credentials in one cache (a delegated cache has a handful; a busy user cache some dozens).
pub const MAX_CREDENTIALS: usize = 512;

/// The realm of configuration entries stored as credentials.
pub const CONFIG_REALM: &str = "X-CACHECONF:";

const HEADER_TAG_KDC_OFFSET: u16 = 1;

/// A Kerberos principal name as stored in a cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub name_type: u32,
    pub realm: String,
    pub components: Vec<String>,
}

impl Principal {
    /// `krbtgt/REALM@REALM`: the ticket-granting ticket of `realm`.
    pub fn is_tgt_of(&self, realm: &str) -> bool {
        self.realm == realm
            && self.components.len() == 2
            && self.components[0] == "krbtgt"
            && self.components[1] == realm
    }
}

/// `a/b@REALM`, with `/`, `@`, `\` and control characters escaped the way `klist` shows them.
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, component) in self.components.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            write_escaped(f, component)?;
        }
        f.write_str("@")?;
        write_escaped(f, &self.realm)
    }
}

fn write_escaped(f: &mut fmt::Formatter<'_>, text: &str) -> fmt::Result {
    for c in text.chars() {
        match c {
            '/' | '@' | '\\' => write!(f, "\\{c}")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\u{8}' => f.write_str("\\b")?,
            '\0' => f.write_str("\\0")?,
            c => write!(f, "{c}")?,
        }
    }
    Ok(())
}

/// One credential: who, for which service, and when. Keys and tickets are deliberately not kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub client: Principal,
    pub server: Principal,
    pub auth_time: u32,
    pub start_time: u32,
    pub end_time: u32,
    pub renew_till: u32,
}

impl Credential {
    /// A configuration entry (`X-CACHECONF:` realm), not a ticket.
    pub fn is_config(&self) -> bool {
        self.server.realm == CONFIG_REALM
    }
}

/// What a cache holds, names and times only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ccache {
    /// 0x0503 or 0x0504.
    pub version: u16,
    pub default_principal: Principal,
    pub credentials: Vec<Credential>,
}

impl Ccache {
    /// The end time of the default principal's TGT (`krbtgt/R@R`, R = the default principal's
    /// realm); the latest one if the cache holds several. Configuration entries are ignored.
    pub fn tgt_end_time(&self) -> Option<u64> {
        let realm = &self.default_principal.realm;
        self.credentials
            .iter()
            .filter(|c| !c.is_config())
            .filter(|c| c.client == self.default_principal && c.server.is_tgt_of(realm))
            .map(|c| u64::from(c.end_time))
            .max()
    }

    /// At least one real credential (configuration entries do not count).
    pub fn has_credentials(&self) -> bool {
        self.credentials.iter().any(|c| !c.is_config())
    }
}

/// Why a cache was refused. The texts name the part, never its bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum CcacheError {
    /// Larger than [`MAX_CCACHE_BYTES`].
    TooLarge,
    /// The bytes end inside a field.
    Truncated,
    /// Not a version 3 or 4 FILE cache (versions 1 and 2 use native byte order).
    UnsupportedVersion(u16),
    /// A field with an impossible value or a count over its cap.
    Malformed(&'static str),
    /// Bytes left over inside a framed part (the v4 header).
    TrailingBytes,
}

impl fmt::Display for CcacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CcacheError::TooLarge => {
                write!(f, "credential cache larger than {MAX_CCACHE_BYTES} bytes")
            }
            CcacheError::Truncated => f.write_str("credential cache is truncated"),
            CcacheError::UnsupportedVersion(v) => write!(
                f,
                "unsupported credential cache format 0x{v:04x} (only FILE versions 0x0503 and \
                 0x0504 are read)"
            ),
            CcacheError::Malformed(what) => write!(f, "malformed credential cache: {what}"),
            CcacheError::TrailingBytes => {
                f.write_str("malformed credential cache: bytes left over in the header")
            }
        }
    }
}

impl std::error::Error for CcacheError {}

/// Parses a whole FILE credential cache.
pub fn parse(bytes: &[u8]) -> Result<Ccache, CcacheError> {
    if bytes.len() > MAX_CCACHE_BYTES {
        return Err(CcacheError::TooLarge);
    }
    let mut r = Reader { rest: bytes };
    let version = r.u16()?;
    match version {
        0x0503 => {}
        0x0504 => skip_header(&mut r)?,
        other => return Err(CcacheError::UnsupportedVersion(other)),
    }
    let v3 = version == 0x0503;
    let default_principal = principal(&mut r)?;
    let mut credentials = Vec::new();
    while !r.rest.is_empty() {
        if credentials.len() == MAX_CREDENTIALS {
            return Err(CcacheError::Malformed("too many credentials"));
        }
        credentials.push(credential(&mut r, v3)?);
    }
    Ok(Ccache {
        version,
        default_principal,
        credentials,
    })
}

/// A version 4 FILE cache holding `credential` alone, with its client as the default
/// principal: what `kinit` leaves in a fresh cache. `credential` is one credential in the
/// cache's own serialization (libkrb5's `krb5_marshal_credentials`); the result is parsed
/// back before it is returned, so a credential that is not whole is refused here.
pub fn file_with_credential(credential: &[u8]) -> Result<Vec<u8>, CcacheError> {
    let mut client = Reader { rest: credential };
    principal(&mut client)?;
    let client_bytes = &credential[..credential.len() - client.rest.len()];
    let mut file = Vec::with_capacity(4 + client_bytes.len() + credential.len());
    file.extend_from_slice(&0x0504u16.to_be_bytes());
    file.extend_from_slice(&0u16.to_be_bytes()); // no header fields
    file.extend_from_slice(client_bytes);
    file.extend_from_slice(credential);
    if parse(&file)?.credentials.len() != 1 {
        return Err(CcacheError::Malformed("not exactly one credential"));
    }
    Ok(file)
}

fn skip_header(r: &mut Reader<'_>) -> Result<(), CcacheError> {
    let len = usize::from(r.u16()?);
    let mut fields = Reader { rest: r.take(len)? };
    while !fields.rest.is_empty() {
        if fields.rest.len() < 4 {
            return Err(CcacheError::TrailingBytes);
        }
        let tag = fields.u16()?;
        let value_len = usize::from(fields.u16()?);
        if value_len > fields.rest.len() {
            return Err(CcacheError::Malformed(
                "header field longer than the header",
            ));
        }
        if tag == HEADER_TAG_KDC_OFFSET && value_len != 8 {
            return Err(CcacheError::Malformed(
                "KDC time offset field is not 8 bytes",
            ));
        }
        fields.take(value_len)?;
    }
    Ok(())
}

fn principal(r: &mut Reader<'_>) -> Result<Principal, CcacheError> {
    let name_type = r.u32()?;
    let count = r.count(MAX_COMPONENTS, "too many principal components")?;
    let realm = r.name("realm")?;
    let mut components = Vec::with_capacity(count);
    for _ in 0..count {
        components.push(r.name("principal component")?);
    }
    Ok(Principal {
        name_type,
        realm,
        components,
    })
}

fn credential(r: &mut Reader<'_>, v3: bool) -> Result<Credential, CcacheError> {
    let client = principal(r)?;
    let server = principal(r)?;
    // keyblock: enctype (twice in v3), key bytes (skipped)
    r.u16()?;
    if v3 {
        r.u16()?;
    }
    r.data()?;
    let auth_time = r.u32()?;
    let start_time = r.u32()?;
    let end_time = r.u32()?;
    let renew_till = r.u32()?;
    if r.u8()? > 1 {
        return Err(CcacheError::Malformed("is_skey is neither 0 nor 1"));
    }
    let _ticket_flags = r.u32()?;
    for what in ["too many addresses", "too many authdata elements"] {
        let count = r.count(MAX_LIST_ITEMS, what)?;
        for _ in 0..count {
            r.u16()?;
            r.data()?;
        }
    }
    let _ticket = r.data()?;
    let _second_ticket = r.data()?;
    Ok(Credential {
        client,
        server,
        auth_time,
        start_time,
        end_time,
        renew_till,
    })
}

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CcacheError> {
        if n > self.rest.len() {
            return Err(CcacheError::Truncated);
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], CcacheError> {
        <[u8; N]>::try_from(self.take(N)?).map_err(|_| CcacheError::Truncated)
    }

    fn u8(&mut self) -> Result<u8, CcacheError> {
        let [b] = self.array::<1>()?;
        Ok(b)
    }

    fn u16(&mut self) -> Result<u16, CcacheError> {
        self.array().map(u16::from_be_bytes)
    }

    fn u32(&mut self) -> Result<u32, CcacheError> {
        self.array().map(u32::from_be_bytes)
    }

    /// A u32 count, refused over `cap` before anything is allocated for it.
    fn count(&mut self, cap: usize, what: &'static str) -> Result<usize, CcacheError> {
        let n = self.u32()?;
        match usize::try_from(n) {
            Ok(n) if n <= cap => Ok(n),
            _ => Err(CcacheError::Malformed(what)),
        }
    }

    /// u32 length + bytes; a length past the end is `Truncated` (bounded by the input).
    fn data(&mut self) -> Result<&'a [u8], CcacheError> {
        let len = self.u32()?;
        let len = usize::try_from(len).map_err(|_| CcacheError::Truncated)?;
        self.take(len)
    }

    fn name(&mut self, what: &'static str) -> Result<String, CcacheError> {
        let bytes = self.data()?;
        if bytes.len() > MAX_NAME_BYTES {
            return Err(CcacheError::Malformed(what));
        }
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| CcacheError::Malformed(what))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cache written by `kinit` (MIT krb5 1.20, format 4) for alice@MEMSESSION.TEST: a TGT
    /// plus configuration entries.
    const KINIT_V4: &[u8] = include_bytes!("../../tests/fixtures/ccache/kinit-v4.ccache");
    /// The same kind of cache written with `krb5_fcc_default_format = 0x0503`.
    const KINIT_V3: &[u8] = include_bytes!("../../tests/fixtures/ccache/kinit-v3.ccache");
    /// alice's cache after `kvno HTTP/localhost`: a TGT and a service ticket.
    const KINIT_SERVICE: &[u8] =
        include_bytes!("../../tests/fixtures/ccache/kinit-v4-service.ccache");

    const REALM: &str = "MEMSESSION.TEST";

    fn alice() -> Principal {
        Principal {
            name_type: 1,
            realm: REALM.into(),
            components: vec!["alice".into()],
        }
    }

    fn tgt() -> Principal {
        Principal {
            name_type: 2,
            realm: REALM.into(),
            components: vec!["krbtgt".into(), REALM.into()],
        }
    }

    // -- a small writer for synthetic caches -------------------------------------------------

    fn put_data(out: &mut Vec<u8>, data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        out.extend_from_slice(data);
    }

    fn put_principal(out: &mut Vec<u8>, p: &Principal) {
        out.extend_from_slice(&p.name_type.to_be_bytes());
        out.extend_from_slice(&(p.components.len() as u32).to_be_bytes());
        put_data(out, p.realm.as_bytes());
        for c in &p.components {
            put_data(out, c.as_bytes());
        }
    }

    struct Cred {
        client: Principal,
        server: Principal,
        times: [u32; 4],
        key: Vec<u8>,
        ticket: Vec<u8>,
        addresses: u32,
        authdata: u32,
    }

    fn cred(server: Principal, end: u32) -> Cred {
        Cred {
            client: alice(),
            server,
            times: [1000, 1000, end, 0],
            key: b"SECRET-KEY-BYTES".to_vec(),
            ticket: b"SECRET-TICKET-BYTES".to_vec(),
            addresses: 0,
            authdata: 0,
        }
    }

    fn put_cred(out: &mut Vec<u8>, c: &Cred, v3: bool) {
        put_principal(out, &c.client);
        put_principal(out, &c.server);
        out.extend_from_slice(&18u16.to_be_bytes());
        if v3 {
            out.extend_from_slice(&18u16.to_be_bytes());
        }
        put_data(out, &c.key);
        for t in c.times {
            out.extend_from_slice(&t.to_be_bytes());
        }
        out.push(0);
        out.extend_from_slice(&0x4081_0000u32.to_be_bytes());
        out.extend_from_slice(&c.addresses.to_be_bytes());
        for _ in 0..c.addresses {
            out.extend_from_slice(&2u16.to_be_bytes());
            put_data(out, &[127, 0, 0, 1]);
        }
        out.extend_from_slice(&c.authdata.to_be_bytes());
        for _ in 0..c.authdata {
            out.extend_from_slice(&1u16.to_be_bytes());
            put_data(out, b"ad");
        }
        put_data(out, &c.ticket);
        put_data(out, b"");
    }

    fn build(version: u16, creds: &[Cred]) -> Vec<u8> {
        let mut out = version.to_be_bytes().to_vec();
        if version == 0x0504 {
            out.extend_from_slice(&12u16.to_be_bytes());
            out.extend_from_slice(&1u16.to_be_bytes());
            out.extend_from_slice(&8u16.to_be_bytes());
            out.extend_from_slice(&[0; 8]);
        }
        put_principal(&mut out, &alice());
        for c in creds {
            put_cred(&mut out, c, version == 0x0503);
        }
        out
    }

    fn config_entry(key: &str) -> Cred {
        let mut c = cred(
            Principal {
                name_type: 0,
                realm: CONFIG_REALM.into(),
                components: vec!["krb5_ccache_conf_data".into(), key.into()],
            },
            0,
        );
        c.times = [0; 4];
        c
    }

    fn one_credential(c: &Cred) -> Vec<u8> {
        let mut out = Vec::new();
        put_cred(&mut out, c, false);
        out
    }

    #[test]
    fn a_lone_credential_becomes_a_cache_kinit_would_write() {
        let file = file_with_credential(&one_credential(&cred(tgt(), 5000))).unwrap();
        let cache = parse(&file).unwrap();
        assert_eq!(cache.version, 0x0504);
        assert_eq!(cache.default_principal, alice());
        assert_eq!(cache.credentials.len(), 1);
        assert_eq!(cache.tgt_end_time(), Some(5000));
    }

    #[test]
    fn a_credential_that_is_not_whole_is_refused() {
        let whole = one_credential(&cred(tgt(), 5000));
        for cut in [0, 3, 20, whole.len() - 1] {
            assert!(file_with_credential(&whole[..cut]).is_err(), "cut at {cut}");
        }
        let mut two = whole.clone();
        two.extend_from_slice(&whole);
        assert_eq!(
            file_with_credential(&two),
            Err(CcacheError::Malformed("not exactly one credential"))
        );
    }

    #[test]
    fn the_credential_of_a_kinit_cache_round_trips() {
        // Past its header and default principal, kinit's cache is its credentials, one after
        // another: cut out the TGT's bytes.
        let cache = parse(KINIT_V4).unwrap();
        let mut r = Reader { rest: KINIT_V4 };
        r.u16().unwrap();
        skip_header(&mut r).unwrap();
        principal(&mut r).unwrap();
        let tgt_bytes = loop {
            let start = KINIT_V4.len() - r.rest.len();
            let parsed = credential(&mut r, false).unwrap();
            if parsed.server == tgt() {
                break &KINIT_V4[start..KINIT_V4.len() - r.rest.len()];
            }
        };
        let rebuilt = parse(&file_with_credential(tgt_bytes).unwrap()).unwrap();
        assert_eq!(rebuilt.default_principal, cache.default_principal);
        assert_eq!(rebuilt.credentials[0].server, tgt());
        assert_eq!(rebuilt.tgt_end_time(), cache.tgt_end_time());
    }

    // -- real caches -------------------------------------------------------------------------

    #[test]
    fn kinit_v4_cache() {
        let cache = parse(KINIT_V4).unwrap();
        assert_eq!(cache.version, 0x0504);
        assert_eq!(cache.default_principal, alice());
        assert_eq!(cache.default_principal.to_string(), "alice@MEMSESSION.TEST");
        assert!(cache.has_credentials());
        let tgts: Vec<_> = cache
            .credentials
            .iter()
            .filter(|c| c.server == tgt())
            .collect();
        assert_eq!(tgts.len(), 1, "{cache:?}");
        assert!(tgts[0].end_time > tgts[0].start_time);
        assert_eq!(cache.tgt_end_time(), Some(u64::from(tgts[0].end_time)));
        assert!(
            cache.credentials.iter().any(Credential::is_config),
            "kinit writes config entries (pa_type): {cache:?}"
        );
    }

    #[test]
    fn kinit_v3_cache() {
        let cache = parse(KINIT_V3).unwrap();
        assert_eq!(cache.version, 0x0503);
        assert_eq!(cache.default_principal, alice());
        assert!(cache.has_credentials());
        assert!(cache.tgt_end_time().is_some());
    }

    #[test]
    fn service_ticket_does_not_count_as_tgt() {
        let cache = parse(KINIT_SERVICE).unwrap();
        let service = cache
            .credentials
            .iter()
            .find(|c| c.server.components == ["HTTP", "localhost"])
            .expect("HTTP/localhost ticket");
        assert_eq!(service.server.to_string(), "HTTP/localhost@MEMSESSION.TEST");
        let tgt_end = cache
            .credentials
            .iter()
            .find(|c| c.server == tgt())
            .map(|c| u64::from(c.end_time));
        assert_eq!(cache.tgt_end_time(), tgt_end);
    }

    #[test]
    fn debug_shows_no_key_or_ticket() {
        for bytes in [KINIT_V4, KINIT_V3, KINIT_SERVICE] {
            let shown = format!("{:?}", parse(bytes).unwrap());
            assert!(
                !shown.contains("key") && !shown.contains("ticket"),
                "{shown}"
            );
        }
        let synthetic = build(0x0504, &[cred(tgt(), 5000)]);
        let shown = format!("{:?}", parse(&synthetic).unwrap());
        assert!(!shown.contains("SECRET"), "{shown}");
    }

    // -- synthetic caches --------------------------------------------------------------------

    #[test]
    fn v3_and_v4_synthetic_agree() {
        let creds = [cred(tgt(), 5000), config_entry("pa_type")];
        let v3 = parse(&build(0x0503, &creds)).unwrap();
        let v4 = parse(&build(0x0504, &creds)).unwrap();
        assert_eq!(v3.credentials, v4.credentials);
        assert_eq!(v4.tgt_end_time(), Some(5000));
        assert_eq!(v4.credentials[0].auth_time, 1000);
    }

    #[test]
    fn config_entries_are_not_credentials() {
        let only_config = parse(&build(0x0504, &[config_entry("fast_avail")])).unwrap();
        assert!(!only_config.has_credentials());
        assert_eq!(only_config.tgt_end_time(), None);
        let empty = parse(&build(0x0504, &[])).unwrap();
        assert!(!empty.has_credentials());
        assert_eq!(empty.tgt_end_time(), None);
        // a config entry naming krbtgt in the config realm is still no TGT
        let mut sneaky = config_entry("x");
        sneaky.server.components = vec!["krbtgt".into(), CONFIG_REALM.into()];
        sneaky.times = [0, 0, 99, 0];
        let cache = parse(&build(0x0504, &[sneaky])).unwrap();
        assert_eq!(cache.tgt_end_time(), None);
    }

    #[test]
    fn tgt_is_of_the_default_realm_and_client() {
        let foreign = Principal {
            name_type: 2,
            realm: "OTHER.TEST".into(),
            components: vec!["krbtgt".into(), "OTHER.TEST".into()],
        };
        let cross = Principal {
            name_type: 2,
            realm: REALM.into(),
            components: vec!["krbtgt".into(), "OTHER.TEST".into()],
        };
        let mut bobs = cred(tgt(), 9000);
        bobs.client.components = vec!["bob".into()];
        let cache = parse(&build(
            0x0504,
            &[cred(foreign, 7000), cred(cross, 8000), bobs],
        ))
        .unwrap();
        assert!(cache.has_credentials());
        assert_eq!(cache.tgt_end_time(), None);
        let two = parse(&build(0x0504, &[cred(tgt(), 5000), cred(tgt(), 6000)])).unwrap();
        assert_eq!(two.tgt_end_time(), Some(6000));
    }

    #[test]
    fn addresses_and_authdata_are_skipped() {
        let mut c = cred(tgt(), 5000);
        c.addresses = 3;
        c.authdata = 2;
        let cache = parse(&build(0x0504, &[c, cred(tgt(), 4000)])).unwrap();
        assert_eq!(cache.credentials.len(), 2);
        assert_eq!(cache.tgt_end_time(), Some(5000));
    }

    #[test]
    fn unsupported_versions() {
        for v in [0x0501u16, 0x0502, 0x0505, 0x0000, 0x0403, 0xffff] {
            let mut bytes = build(0x0504, &[cred(tgt(), 1)]);
            bytes[..2].copy_from_slice(&v.to_be_bytes());
            assert_eq!(parse(&bytes), Err(CcacheError::UnsupportedVersion(v)));
        }
        assert_eq!(parse(b""), Err(CcacheError::Truncated));
        assert_eq!(parse(b"\x05"), Err(CcacheError::Truncated));
    }

    #[test]
    fn cap_matches_what_a_session_record_stores() {
        assert_eq!(MAX_CCACHE_BYTES, crate::session::record::MAX_CCACHE_LEN);
    }

    #[test]
    fn too_large() {
        let mut bytes = build(0x0504, &[cred(tgt(), 1)]);
        bytes.resize(MAX_CCACHE_BYTES + 1, 0);
        assert_eq!(parse(&bytes), Err(CcacheError::TooLarge));
        bytes.truncate(MAX_CCACHE_BYTES);
        let largest = parse(&bytes);
        assert!(
            matches!(largest, Err(CcacheError::Malformed(_))),
            "the largest cache accepted is read (its zeros are no credentials): {largest:?}"
        );
    }

    #[test]
    fn a_name_of_the_largest_size_is_read_and_one_byte_more_is_not() {
        let named = |len: usize| {
            let server = Principal {
                name_type: 2,
                realm: REALM.into(),
                components: vec!["krbtgt".into(), "r".repeat(len)],
            };
            parse(&build(0x0504, &[cred(server, 1)]))
        };
        assert!(named(MAX_NAME_BYTES).is_ok());
        assert!(matches!(
            named(MAX_NAME_BYTES + 1),
            Err(CcacheError::Malformed(_))
        ));
    }

    #[test]
    fn header_fields_must_fill_the_header() {
        let good = build(0x0504, &[cred(tgt(), 1)]);
        // header length 14 with two stray bytes after the one field
        let mut stray = good[..2].to_vec();
        stray.extend_from_slice(&14u16.to_be_bytes());
        stray.extend_from_slice(&good[4..16]);
        stray.extend_from_slice(&[0, 0]);
        stray.extend_from_slice(&good[16..]);
        assert_eq!(parse(&stray), Err(CcacheError::TrailingBytes));
        // KDC offset field with a wrong length
        let mut bad_offset = good.clone();
        bad_offset[7] = 4;
        assert!(matches!(parse(&bad_offset), Err(CcacheError::Malformed(_))));
        // an unknown tag is ignored
        let mut unknown = good.clone();
        unknown[5] = 7;
        assert!(parse(&unknown).is_ok());
        // an empty header is fine
        let mut empty = good[..2].to_vec();
        empty.extend_from_slice(&0u16.to_be_bytes());
        empty.extend_from_slice(&good[16..]);
        assert!(parse(&empty).is_ok());
        // fields of another tag, of any length: one with an empty value (4 bytes in all),
        // one of 3 bytes
        let with_fields = |fields: &[u8]| {
            let mut bytes = good[..2].to_vec();
            bytes.extend_from_slice(&(fields.len() as u16).to_be_bytes());
            bytes.extend_from_slice(fields);
            bytes.extend_from_slice(&good[16..]);
            parse(&bytes)
        };
        assert!(with_fields(&[0, 7, 0, 0]).is_ok());
        assert!(with_fields(&[0, 7, 0, 3, 1, 2, 3]).is_ok());
        assert!(with_fields(&[0, 7, 0, 3, 1, 2, 3, 0, 7, 0, 0]).is_ok());
    }

    #[test]
    fn trailing_bytes_after_the_last_credential_are_refused() {
        let good = build(0x0504, &[cred(tgt(), 1)]);
        for extra in [&[0u8][..], &[0, 0, 0], &[0xff; 7], &[0; 40]] {
            let mut bytes = good.clone();
            bytes.extend_from_slice(extra);
            assert!(parse(&bytes).is_err(), "{extra:?}");
        }
        for fixture in [KINIT_V4, KINIT_V3] {
            let mut bytes = fixture.to_vec();
            bytes.push(0);
            assert!(parse(&bytes).is_err());
        }
    }

    #[test]
    fn oversized_counts_are_refused_before_allocating() {
        let mut bytes = 0x0503u16.to_be_bytes().to_vec();
        bytes.extend_from_slice(&1u32.to_be_bytes());
        bytes.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(
            parse(&bytes),
            Err(CcacheError::Malformed("too many principal components"))
        );

        let mut many = cred(tgt(), 1);
        many.addresses = (MAX_LIST_ITEMS + 1) as u32;
        assert_eq!(
            parse(&build(0x0504, &[many])),
            Err(CcacheError::Malformed("too many addresses"))
        );
        let mut many = cred(tgt(), 1);
        many.authdata = (MAX_LIST_ITEMS + 1) as u32;
        assert_eq!(
            parse(&build(0x0504, &[many])),
            Err(CcacheError::Malformed("too many authdata elements"))
        );

        // a data length of 4 GiB: truncated, nothing allocated
        let mut huge = build(0x0504, &[]);
        huge.truncate(huge.len() - 5); // drop the realm's bytes and its length
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse(&huge), Err(CcacheError::Truncated));

        let mut long_name = alice();
        long_name.components = vec!["a".repeat(MAX_NAME_BYTES + 1)];
        let mut bytes = 0x0503u16.to_be_bytes().to_vec();
        put_principal(&mut bytes, &long_name);
        assert_eq!(
            parse(&bytes),
            Err(CcacheError::Malformed("principal component"))
        );

        let tiny = Cred {
            client: Principal {
                name_type: 0,
                realm: String::new(),
                components: vec![],
            },
            server: Principal {
                name_type: 0,
                realm: String::new(),
                components: vec![],
            },
            times: [0; 4],
            key: vec![],
            ticket: vec![],
            addresses: 0,
            authdata: 0,
        };
        let mut bytes = build(0x0503, &[]);
        for _ in 0..=MAX_CREDENTIALS {
            put_cred(&mut bytes, &tiny, true);
        }
        assert!(bytes.len() <= MAX_CCACHE_BYTES);
        assert_eq!(
            parse(&bytes),
            Err(CcacheError::Malformed("too many credentials"))
        );
    }

    #[test]
    fn bad_fields() {
        let mut bytes = build(0x0503, &[]);
        let at = bytes.len() - "alice".len();
        bytes[at] = 0xff;
        assert_eq!(
            parse(&bytes),
            Err(CcacheError::Malformed("principal component"))
        );

        let good = build(0x0504, &[cred(tgt(), 1)]);
        let skey_at = good.len() - (4 + 19) - 4 - 4 - 4 - 4 - 1;
        assert_eq!(good[skey_at], 0);
        let mut skey = good.clone();
        skey[skey_at] = 1;
        assert!(parse(&skey).is_ok());
        skey[skey_at] = 2;
        assert_eq!(
            parse(&skey),
            Err(CcacheError::Malformed("is_skey is neither 0 nor 1"))
        );
    }

    #[test]
    fn principal_display_escapes() {
        let p = Principal {
            name_type: 1,
            realm: "R@X".into(),
            components: vec!["a/b".into(), "c\\d\n".into()],
        };
        assert_eq!(p.to_string(), "a\\/b/c\\\\d\\n@R\\@X");
        assert_eq!(tgt().to_string(), "krbtgt/MEMSESSION.TEST@MEMSESSION.TEST");
    }

    #[test]
    fn errors_display_without_bytes() {
        assert_eq!(
            CcacheError::UnsupportedVersion(0x0502).to_string(),
            "unsupported credential cache format 0x0502 (only FILE versions 0x0503 and 0x0504 \
             are read)"
        );
        for e in [
            CcacheError::TooLarge,
            CcacheError::Truncated,
            CcacheError::Malformed("x"),
            CcacheError::TrailingBytes,
        ] {
            assert!(e.to_string().contains("credential cache"));
        }
    }

    // -- hostile input -----------------------------------------------------------------------

    #[test]
    fn every_truncation_is_an_error() {
        let synthetic = build(0x0503, &[cred(tgt(), 5), config_entry("pa_type")]);
        for bytes in [KINIT_V4, KINIT_V3, KINIT_SERVICE, &synthetic[..]] {
            assert!(parse(bytes).is_ok());
            for len in 0..bytes.len() {
                let result = parse(&bytes[..len]);
                // a cut exactly after the default principal or after a credential is a
                // shorter valid cache; everything else is refused
                if let Ok(cache) = result {
                    assert!(cache.credentials.len() < parse(bytes).unwrap().credentials.len());
                }
            }
        }
        // and a cut inside the header or the principal is always Truncated
        for len in 0..20 {
            assert_eq!(
                parse(&KINIT_V4[..len]),
                Err(CcacheError::Truncated),
                "{len}"
            );
        }
    }

    #[test]
    fn bit_flips_never_panic() {
        let synthetic = build(0x0504, &[cred(tgt(), 5), config_entry("pa_type")]);
        for bytes in [KINIT_V4, KINIT_V3, KINIT_SERVICE, &synthetic[..]] {
            for i in 0..bytes.len() {
                for bit in 0..8 {
                    let mut flipped = bytes.to_vec();
                    flipped[i] ^= 1 << bit;
                    let _ = parse(&flipped);
                }
                for value in [0x00, 0x7f, 0x80, 0xff] {
                    let mut set = bytes.to_vec();
                    set[i] = value;
                    let _ = parse(&set);
                }
            }
        }
    }
}
