//! The MIT ccache parser on arbitrary bytes, and the cache built around one serialized
//! credential: never panics, and what either accepts is consistent.
#![no_main]

use libfuzzer_sys::fuzz_target;

// The parser is pure (std only); see Cargo.toml for why it is included rather than linked.
#[path = "../../src/krb5/ccache.rs"]
#[allow(dead_code)]
mod ccache;

use ccache::MAX_CCACHE_BYTES;

fuzz_target!(|data: &[u8]| {
    // The same bytes read as one serialized credential (a password login's TGT).
    if let Ok(file) = ccache::file_with_credential(data) {
        let rebuilt = ccache::parse(&file).expect("a cache we built parses");
        assert_eq!(rebuilt.credentials.len(), 1);
        assert_eq!(rebuilt.default_principal, rebuilt.credentials[0].client);
    }
    let Ok(cache) = ccache::parse(data) else {
        return;
    };
    assert!(data.len() <= MAX_CCACHE_BYTES);
    assert!(matches!(cache.version, 0x0503 | 0x0504));
    let _ = cache.default_principal.to_string();
    if cache.tgt_end_time().is_some() {
        assert!(cache.has_credentials());
    }
    for credential in &cache.credentials {
        let _ = (credential.client.to_string(), credential.server.to_string());
    }
});
