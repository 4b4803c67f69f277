//! Which server of a farm holds a key.
//!
//! # Compatibility contract
//!
//! Every Apache node and `memsessionctl` must send a key to the same server, whatever their
//! build, so the mapping is fixed here and must never change:
//!
//! 1. Hash the key's bytes (the full memcached key, prefix included, exactly as sent on the
//!    wire) with 64-bit FNV-1a: offset basis `0xcbf29ce484222325`, prime `0x100000001b3`,
//!    for each byte `h ^= byte; h = h * prime (mod 2^64)`.
//! 2. Feed that hash to Lamping & Veach's jump consistent hash ("A Fast, Minimal Memory,
//!    Consistent Hash Algorithm", 2014, the published C++ code, with its IEEE-754 double
//!    division) with the number of servers as the bucket count.
//! 3. The bucket is the index of the server in `MemSessionServers`, in the order written.
//!
//! So the server list must be written in the same order on every node. Adding a server at the
//! end moves only about 1/N of the keys; removing or reordering servers moves many more.
//! Sessions on a server that moved are simply not found (the user logs in again); epochs not
//! found fail closed.
//!
//! # The replica's place (`MemSessionReplicas 1`)
//!
//! With two servers or more, a session's record also lives on a second server, fixed by the
//! key and the list alone — never by which servers are up, so every node agrees where both
//! copies are while one is down, and nothing is re-hashed onto the survivors:
//!
//! 1. Hash the key's bytes followed by the 8 bytes `\0replica` with the same FNV-1a
//!    (equivalently: continue the key's FNV-1a state over those bytes).
//! 2. Jump consistent hash of that over N − 1 buckets gives `pick`.
//! 3. The replica is `pick` if `pick` is below the key's home server, else `pick + 1`: the
//!    servers other than the home server, in the order written.
//!
//! So the replica is never the home server, and the load of a lost server spreads over all
//! the others. Adding a server at the end moves a replica only onto the new server (while the
//! home server stays put).

const FNV_OFFSET_BASIS: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// 64-bit FNV-1a.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash = FNV_OFFSET_BASIS;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    hash
}

/// Lamping & Veach's jump consistent hash: a bucket in `0..buckets`. `buckets == 0` gives 0,
/// the only index that means anything when there is nothing to choose from.
pub fn jump_consistent_hash(mut key: u64, buckets: u32) -> u32 {
    let buckets = i64::from(buckets);
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < buckets {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        // Kept as the paper's double arithmetic: an integer rewrite would round differently
        // for some keys and silently move them.
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b.max(0) as u32
}

/// The index of the server that holds `key` among `servers` servers (see the module docs).
pub fn server_for_key(key: &str, servers: usize) -> usize {
    if servers <= 1 {
        return 0;
    }
    let buckets = u32::try_from(servers).unwrap_or(u32::MAX);
    jump_consistent_hash(fnv1a64(key.as_bytes()), buckets) as usize
}

/// What the replica's hash appends to the key (see the module docs).
const REPLICA_SALT: &[u8] = b"\0replica";

/// The index of the server holding the replica of `key` among `servers` servers: never the
/// home server ([`server_for_key`]); `None` with fewer than two servers (see the module docs).
pub fn replica_for_key(key: &str, servers: usize) -> Option<usize> {
    if servers < 2 {
        return None;
    }
    let home = server_for_key(key, servers);
    let others = u32::try_from(servers - 1).unwrap_or(u32::MAX);
    let mut hash = fnv1a64(key.as_bytes());
    for &byte in REPLICA_SALT {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(FNV_PRIME);
    }
    let pick = jump_consistent_hash(hash, others) as usize;
    Some(if pick >= home { pick + 1 } else { pick })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        // From the FNV reference test suite (Noll).
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn jump_matches_published_vectors() {
        // Vectors shared by several independent implementations (ClickHouse's test suite,
        // the Go and Rust ports of the paper's code).
        assert_eq!(jump_consistent_hash(1, 1), 0);
        assert_eq!(jump_consistent_hash(42, 57), 43);
        assert_eq!(jump_consistent_hash(256, 1024), 520);
        assert_eq!(jump_consistent_hash(0xDEAD10CC, 1), 0);
        assert_eq!(jump_consistent_hash(0xDEAD10CC, 666), 361);
        assert_eq!(jump_consistent_hash(16045690984833335023, 255), 237);
        assert_eq!(jump_consistent_hash(0, 60), 0);
        assert_eq!(jump_consistent_hash(1, 60), 55);
        assert_eq!(jump_consistent_hash(2, 60), 46);
        assert_eq!(jump_consistent_hash(12345, 0), 0);
    }

    /// The contract vectors: if one of these changes, deployed farms lose their sessions.
    #[test]
    fn server_for_key_is_frozen() {
        let vectors: &[(&str, u64, [usize; 4])] = &[
            // key, fnv1a64(key), server for 1, 2, 3 and 5 servers (computed independently)
            ("memsession:s:abc", 0x85d4e38d56dc086f, [0, 0, 0, 4]),
            ("memsession:epoch:global", 0x0e18d9590882a13e, [0, 1, 1, 3]),
            ("session-1", 0x1688595dcf49184d, [0, 1, 1, 4]),
            ("session-2", 0x1688565dcf491334, [0, 0, 0, 0]),
            ("session-3", 0x1688575dcf4914e7, [0, 0, 2, 2]),
            ("session-6", 0x1688525dcf490c68, [0, 0, 2, 3]),
            ("session-8", 0x1688505dcf490902, [0, 1, 2, 4]),
            ("k", 0xaf63e64c8601fd8a, [0, 1, 1, 3]),
        ];
        for (key, hash, servers) in vectors {
            assert_eq!(fnv1a64(key.as_bytes()), *hash, "{key}");
            for (n, want) in [1usize, 2, 3, 5].into_iter().zip(servers) {
                assert_eq!(server_for_key(key, n), *want, "{key} over {n} servers");
            }
        }
    }

    #[test]
    fn spreads_keys_and_moves_few_when_a_server_is_added() {
        let keys: Vec<String> = (0..3000).map(|i| format!("memsession:s:{i}")).collect();
        let mut counts = [0usize; 3];
        let mut moved = 0;
        for key in &keys {
            let three = server_for_key(key, 3);
            counts[three] += 1;
            let four = server_for_key(key, 4);
            if four != three {
                assert_eq!(four, 3, "a key only ever moves to the new server");
                moved += 1;
            }
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
        assert!((600..900).contains(&moved), "moved {moved} of 3000");
    }

    #[test]
    fn the_replica_hash_continues_the_key_hash() {
        let mut bytes = b"memsession:s:abc".to_vec();
        bytes.extend_from_slice(REPLICA_SALT);
        let key = "memsession:s:abc";
        let home = server_for_key(key, 5);
        let pick = jump_consistent_hash(fnv1a64(&bytes), 4) as usize;
        let want = if pick >= home { pick + 1 } else { pick };
        assert_eq!(replica_for_key(key, 5), Some(want));
    }

    /// The contract vectors for replicas, as for the home server.
    #[test]
    fn replica_for_key_is_frozen() {
        let vectors: &[(&str, [Option<usize>; 4])] = &[
            // key, replica for 1, 2, 3 and 5 servers (computed independently, by
            // tests/integration/harness/derivation.py)
            ("memsession:s:abc", [None, Some(1), Some(1), Some(0)]),
            ("session-1", [None, Some(0), Some(0), Some(0)]),
            ("session-3", [None, Some(1), Some(0), Some(3)]),
            ("session-6", [None, Some(1), Some(0), Some(2)]),
            ("session-8", [None, Some(0), Some(1), Some(3)]),
        ];
        for (key, replicas) in vectors {
            for (n, want) in [1usize, 2, 3, 5].into_iter().zip(replicas) {
                assert_eq!(replica_for_key(key, n), *want, "{key} over {n} servers");
            }
        }
    }

    #[test]
    fn the_replica_is_never_the_home_server_and_spreads_over_the_others() {
        for servers in 2..=7usize {
            let mut pairs = vec![vec![0usize; servers]; servers];
            for i in 0..(1000 * servers) {
                let key = format!("memsession:s:{i}");
                let home = server_for_key(&key, servers);
                let replica = replica_for_key(&key, servers).unwrap();
                assert_ne!(home, replica, "{key} over {servers}");
                assert!(replica < servers);
                pairs[home][replica] += 1;
            }
            // A lost server's sessions have their copies spread over every other server.
            for (home, row) in pairs.iter().enumerate() {
                let total: usize = row.iter().sum();
                let share = total / (servers - 1);
                for (replica, &count) in row.iter().enumerate() {
                    if replica != home {
                        assert!(
                            count * 2 > share && count < share * 2,
                            "{servers} servers, home {home}: {row:?}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn the_replica_depends_on_the_key_and_the_list_alone() {
        // Computed twice, or with any server down, the answer is the same: there is no input
        // for health. With one server, there is no replica.
        assert_eq!(replica_for_key("k", 1), None);
        assert_eq!(replica_for_key("k", 0), None);
        for i in 0..500 {
            let key = format!("memsession:s:{i}");
            assert_eq!(replica_for_key(&key, 3), replica_for_key(&key, 3));
        }
    }

    #[test]
    fn adding_a_server_moves_a_replica_only_onto_the_new_server() {
        let mut moved = 0;
        for i in 0..3000 {
            let key = format!("memsession:s:{i}");
            if server_for_key(&key, 4) != server_for_key(&key, 3) {
                continue; // the home server moved: the replica's others changed
            }
            let (three, four) = (replica_for_key(&key, 3), replica_for_key(&key, 4));
            if three != four {
                assert_eq!(four, Some(3), "{key}");
                moved += 1;
            }
        }
        assert!((400..1000).contains(&moved), "moved {moved}");
    }
}
