//! Revocation epochs (stored without expiry: they must outlive every session naming them). A
//! session is valid only while the epochs it was created under are the current ones. Revoking
//! replaces an epoch with a fresh random value. A missing epoch (never written, or evicted)
//! matches no session: eviction fails closed, it never revives a session.
//!
//! # Placement on a farm
//!
//! Every server holds its own copy of the global epoch and of each user's epoch, under the
//! same keys; a session is checked against the copies on the server its record lives on, so
//! a request asks one server. Copies on different servers may differ (each is created by the
//! first login on that server): only the copy beside a record matters to it. Revocations
//! write every server.
//!
//! # The revocation generation
//!
//! Each global epoch copy also carries the farm's revocation generation: a number every
//! revocation raises on every server it reaches (to at least its clock in milliseconds). A
//! server that missed a revocation (unreachable at the time) keeps a lower one. Every reply
//! teaches the process the highest generation it has seen; a server found below it for longer
//! than [`BEHIND_GRACE`] (so not merely a revocation still being written) is reset: its global
//! epoch copy is replaced (every session stored on it ends, as if that server alone had been
//! flushed) and raised to the generation known. So a server that missed a revocation never
//! serves the revoked sessions once a process that has seen the revocation touches it.
//!
//! Stored as 16 bytes (the epoch; generation 0, which is what earlier versions wrote) or 24
//! (the epoch, then the generation as a big-endian u64).
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::session::record::{Epoch, EPOCH_LEN};
use crate::store::client::{StoreClient, StoreError};

use super::CreateError;

/// How long a server may stay behind the highest generation a process has seen before the
/// process resets it: longer than a revocation takes to write every reachable server.
pub const BEHIND_GRACE: Duration = Duration::from_secs(5);

/// Compare-and-swap attempts before a global epoch copy that keeps changing is given up on.
const CAS_ATTEMPTS: usize = 5;

const GLOBAL_LEN: usize = EPOCH_LEN + 8;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EpochKind {
    User,
    Global,
}

impl EpochKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EpochKind::User => "user",
            EpochKind::Global => "global",
        }
    }
}

/// A store value that is not exactly an epoch's 16 bytes is no epoch, and matches nothing.
pub fn parse(stored: Option<&[u8]>) -> Option<Epoch> {
    stored.and_then(Epoch::from_bytes)
}

/// One server's copy of the global epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GlobalCopy {
    pub epoch: Epoch,
    /// The farm's revocation generation when this copy was last brought up to date.
    pub generation: u64,
}

impl GlobalCopy {
    /// 16 bytes, or 24 with a generation; anything else is no global epoch.
    pub fn parse(stored: Option<&[u8]>) -> Option<GlobalCopy> {
        let stored = stored?;
        match stored.len() {
            EPOCH_LEN => Epoch::from_bytes(stored).map(|epoch| GlobalCopy {
                epoch,
                generation: 0,
            }),
            GLOBAL_LEN => {
                let epoch = Epoch::from_bytes(&stored[..EPOCH_LEN])?;
                let generation = u64::from_be_bytes(stored[EPOCH_LEN..].try_into().ok()?);
                Some(GlobalCopy { epoch, generation })
            }
            _ => None,
        }
    }

    /// Generation 0 is written as a bare epoch, as earlier versions wrote (and read) it.
    pub fn to_bytes(self) -> Vec<u8> {
        let mut bytes = self.epoch.to_bytes().to_vec();
        if self.generation > 0 {
            bytes.extend_from_slice(&self.generation.to_be_bytes());
        }
        bytes
    }

    /// Whether this copy has seen every revocation up to `generation`: a reset towards it
    /// leaves such a copy (and its sessions) alone.
    pub fn has_seen(&self, generation: u64) -> bool {
        self.generation >= generation
    }

    /// This copy told of a revocation at `generation`, keeping its epoch; `None` when it has
    /// seen it already, so a late or concurrent revocation never lowers a generation.
    pub fn raised_to(self, generation: u64) -> Option<GlobalCopy> {
        (!self.has_seen(generation)).then_some(GlobalCopy { generation, ..self })
    }
}

/// Where a server's copy stands against what this process knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// At (or above: now known) the highest generation seen.
    Current,
    /// Below it, but not for long: a revocation may still be on its way to that server.
    Catching,
    /// Below it for longer than [`BEHIND_GRACE`]: that server missed a revocation.
    Behind,
}

/// The highest revocation generation this process has seen, and since when.
pub struct Generations {
    highest: AtomicU64,
    /// Milliseconds after `base` at which `highest` was last raised.
    raised_at: AtomicU64,
    base: Instant,
    grace: Duration,
}

impl Generations {
    pub fn new(grace: Duration) -> Generations {
        Generations {
            highest: AtomicU64::new(0),
            raised_at: AtomicU64::new(0),
            base: Instant::now(),
            grace,
        }
    }

    pub fn highest(&self) -> u64 {
        self.highest.load(Ordering::Acquire)
    }

    /// Learns from one server's copy and says where that server stands. Allocates nothing,
    /// takes no lock: it runs on every request.
    pub fn observe(&self, generation: u64, now: Instant) -> Standing {
        let highest = self.highest.load(Ordering::Acquire);
        if generation >= highest {
            if generation > highest
                && self.highest.fetch_max(generation, Ordering::AcqRel) < generation
            {
                self.raised_at.store(self.millis(now), Ordering::Release);
            }
            return Standing::Current;
        }
        let raised_at = self.raised_at.load(Ordering::Acquire);
        if self.millis(now).saturating_sub(raised_at) < self.grace.as_millis() as u64 {
            Standing::Catching
        } else {
            Standing::Behind
        }
    }

    fn millis(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.base).as_millis() as u64
    }
}

/// The generation a revocation writes: above every one seen, and at least the clock in
/// milliseconds (so it rises even past servers that cannot be read now).
pub fn next_generation(highest_seen: u64) -> u64 {
    let clock = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    highest_seen.saturating_add(1).max(clock)
}

/// The current global and user epochs on `server`, creating either when missing; a global
/// copy found [`Standing::Behind`] is reset first. Creation uses `add`, so two logins racing
/// agree on one value.
///
/// `converge` (with replicas): a missing copy takes the value another server holds, one whose
/// revocation generation is the highest known (so it has seen every revocation), rather than
/// a fresh one. Copies then agree across the farm, which lets a copy of a session be checked
/// on any server that holds it and lets a lost home server be repaired from a replica.
pub fn current_or_new_on(
    client: &StoreClient,
    server: usize,
    global_key: &str,
    user_key: &str,
    generations: &Generations,
    converge: bool,
) -> Result<(Epoch, Epoch), CreateError> {
    let values = client.get_multi_on(server, &[global_key, user_key])?;
    let mut values = values.into_iter();
    let global = GlobalCopy::parse(values.next().flatten().as_deref());
    let user = parse(values.next().flatten().as_deref());
    let donor = match (converge, &global, &user) {
        (true, None, _) | (true, _, None) => {
            Some(donor_on(client, server, global_key, user_key, generations))
        }
        _ => None,
    };
    let global = match global {
        Some(copy) => match generations.observe(copy.generation, Instant::now()) {
            Standing::Current | Standing::Catching => copy.epoch,
            Standing::Behind => reset_behind(client, server, global_key, generations.highest())?,
        },
        None => match donor.as_ref().and_then(|d| d.global) {
            Some(theirs) => ensure_global_as(client, server, global_key, theirs)?,
            None => {
                let generation = farm_generation(client, server, global_key, generations);
                ensure_global(client, server, global_key, generation)?
            }
        },
    };
    let user = match user {
        Some(epoch) => epoch,
        None => match donor.as_ref().and_then(|d| d.user) {
            Some(theirs) => ensure_user_as(client, server, user_key, theirs)?,
            None => ensure_user(client, server, user_key)?,
        },
    };
    Ok((global, user))
}

/// Copies another server offers for a key `server` lacks: from servers at the highest
/// revocation generation known (after hearing every server that answers) only.
struct Donor {
    global: Option<GlobalCopy>,
    user: Option<Epoch>,
}

fn donor_on(
    client: &StoreClient,
    server: usize,
    global_key: &str,
    user_key: &str,
    generations: &Generations,
) -> Donor {
    let now = Instant::now();
    let mut offers = Vec::new();
    for other in (0..client.servers().len()).filter(|&s| s != server && !client.is_refusing(s)) {
        if let Ok(values) = client.get_multi_on(other, &[global_key, user_key]) {
            let mut values = values.into_iter();
            let global = GlobalCopy::parse(values.next().flatten().as_deref());
            let user = parse(values.next().flatten().as_deref());
            if let Some(copy) = global {
                generations.observe(copy.generation, now);
                offers.push((copy, user));
            }
        }
    }
    let highest = generations.highest();
    let mut current = offers
        .into_iter()
        .filter(|(copy, _)| copy.generation >= highest);
    let Some((global, user)) = current.next() else {
        return Donor {
            global: None,
            user: None,
        };
    };
    Donor {
        global: Some(global),
        user: user.or_else(|| current.find_map(|(_, user)| user)),
    }
}

fn ensure_global_as(
    client: &StoreClient,
    server: usize,
    key: &str,
    theirs: GlobalCopy,
) -> Result<Epoch, CreateError> {
    if client.add_permanent_on(server, key, &theirs.to_bytes())? {
        return Ok(theirs.epoch);
    }
    match GlobalCopy::parse(client.get_on(server, key)?.as_deref()) {
        Some(copy) => Ok(copy.epoch),
        None => ensure_global(client, server, key, theirs.generation),
    }
}

fn ensure_user_as(
    client: &StoreClient,
    server: usize,
    key: &str,
    theirs: Epoch,
) -> Result<Epoch, CreateError> {
    if client.add_permanent_on(server, key, &theirs.to_bytes())? {
        return Ok(theirs);
    }
    match parse(client.get_on(server, key)?.as_deref()) {
        Some(epoch) => Ok(epoch),
        None => ensure_user(client, server, key),
    }
}

/// The highest generation the other servers' copies carry (those that answer) and this
/// process knows: what a new copy on `server` must carry not to look behind. Asked only when
/// a server has no copy (it was flushed, restarted or added), never per request.
pub(super) fn farm_generation(
    client: &StoreClient,
    server: usize,
    global_key: &str,
    generations: &Generations,
) -> u64 {
    let now = Instant::now();
    for other in (0..client.servers().len()).filter(|&s| s != server && !client.is_refusing(s)) {
        if let Ok(Some(copy)) = client
            .get_on(other, global_key)
            .map(|v| GlobalCopy::parse(v.as_deref()))
        {
            generations.observe(copy.generation, now);
        }
    }
    generations.highest()
}

/// Writes `value` under `key` on `server` if the key is absent there; `true` if `server`
/// now holds exactly `value` (written now, or by a racing writer of the same value).
pub(super) fn adopt(client: &StoreClient, server: usize, key: &str, value: &[u8]) -> bool {
    match client.add_permanent_on(server, key, value) {
        Ok(true) => true,
        Ok(false) => matches!(client.get_on(server, key), Ok(Some(held)) if held == value),
        Err(_) => false,
    }
}

fn ensure_global(
    client: &StoreClient,
    server: usize,
    key: &str,
    generation: u64,
) -> Result<Epoch, CreateError> {
    let fresh = GlobalCopy {
        epoch: Epoch::generate().map_err(|_| CreateError::Random)?,
        generation,
    };
    if client.add_permanent_on(server, key, &fresh.to_bytes())? {
        return Ok(fresh.epoch);
    }
    // Another login created it between our get and add: use theirs.
    if let Some(theirs) = GlobalCopy::parse(client.get_on(server, key)?.as_deref()) {
        return Ok(theirs.epoch);
    }
    // Something that is not an epoch (see `ensure_user`).
    client.set_permanent_on(server, key, &fresh.to_bytes())?;
    GlobalCopy::parse(client.get_on(server, key)?.as_deref())
        .map(|copy| copy.epoch)
        .ok_or(CreateError::Collision)
}

fn ensure_user(client: &StoreClient, server: usize, key: &str) -> Result<Epoch, CreateError> {
    let fresh = Epoch::generate().map_err(|_| CreateError::Random)?;
    if client.add_permanent_on(server, key, &fresh.to_bytes())? {
        return Ok(fresh);
    }
    // Another login created it between our get and add: use theirs.
    if let Some(theirs) = parse(client.get_on(server, key)?.as_deref()) {
        return Ok(theirs);
    }
    // The key holds something that is not an epoch (written by hand, or by something else
    // sharing the prefix). It matches no session, so replacing it revokes nothing; leaving it
    // would refuse every login under it for good, since epochs never expire.
    client.set_permanent_on(server, key, &fresh.to_bytes())?;
    parse(client.get_on(server, key)?.as_deref()).ok_or(CreateError::Collision)
}

/// Resets a server that missed a revocation: its global epoch copy is replaced by a fresh one
/// at `generation` (every session stored there ends), unless someone brought it up to date
/// meanwhile. Returns the epoch the copy now holds.
pub fn reset_behind(
    client: &StoreClient,
    server: usize,
    key: &str,
    generation: u64,
) -> Result<Epoch, StoreError> {
    let fresh = GlobalCopy {
        epoch: Epoch::generate().map_err(|_| random_failed())?,
        generation,
    };
    for _ in 0..CAS_ATTEMPTS {
        let stored = client.get_cas_on(server, key)?;
        let cas = match &stored {
            None => {
                if client.add_permanent_on(server, key, &fresh.to_bytes())? {
                    return Ok(fresh.epoch);
                }
                continue;
            }
            Some((value, cas)) => {
                let seen = GlobalCopy::parse(Some(value)).filter(|copy| copy.has_seen(generation));
                if let Some(copy) = seen {
                    return Ok(copy.epoch);
                }
                *cas
            }
        };
        if client.set_permanent_cas_on(server, key, &fresh.to_bytes(), cas)? {
            return Ok(fresh.epoch);
        }
    }
    Err(keeps_changing())
}

/// Raises a server's global epoch copy to `generation`, keeping its epoch (`revoke-user`: the
/// global epoch stays, every server learns the revocation happened). A missing or malformed
/// copy matches no session and is left alone; a copy already at or above it too.
pub fn raise_generation(
    client: &StoreClient,
    server: usize,
    key: &str,
    generation: u64,
) -> Result<(), StoreError> {
    for _ in 0..CAS_ATTEMPTS {
        let Some((value, cas)) = client.get_cas_on(server, key)? else {
            return Ok(());
        };
        let Some(raised) = GlobalCopy::parse(Some(&value)).and_then(|c| c.raised_to(generation))
        else {
            return Ok(());
        };
        if client.set_permanent_cas_on(server, key, &raised.to_bytes(), cas)? {
            return Ok(());
        }
    }
    Err(keeps_changing())
}

fn random_failed() -> StoreError {
    StoreError::Io("the OS random source failed".to_string())
}

fn keeps_changing() -> StoreError {
    StoreError::ServerError("the global epoch kept changing while it was written".to_string())
}

pub fn fresh_epoch() -> Result<Epoch, StoreError> {
    Epoch::generate().map_err(|_| random_failed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_global_copy_reads_both_lengths_and_nothing_else() {
        let epoch = Epoch([7; EPOCH_LEN]);
        let bare = GlobalCopy {
            epoch,
            generation: 0,
        };
        assert_eq!(
            bare.to_bytes(),
            vec![7; EPOCH_LEN],
            "as earlier versions wrote it"
        );
        assert_eq!(GlobalCopy::parse(Some(&bare.to_bytes())), Some(bare));
        let raised = GlobalCopy {
            epoch,
            generation: 0x0102_0304_0506_0708,
        };
        let bytes = raised.to_bytes();
        assert_eq!(bytes.len(), 24);
        assert_eq!(&bytes[16..], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(GlobalCopy::parse(Some(&bytes)), Some(raised));
        for bad in [&b""[..], &[0; 15], &[0; 17], &[0; 23], &[0; 25]] {
            assert_eq!(GlobalCopy::parse(Some(bad)), None, "{}", bad.len());
        }
        assert_eq!(GlobalCopy::parse(None), None);
    }

    #[test]
    fn a_copy_is_raised_only_to_a_generation_it_has_not_seen() {
        let copy = GlobalCopy {
            epoch: Epoch([5; EPOCH_LEN]),
            generation: 20,
        };
        assert!(copy.has_seen(19) && copy.has_seen(20) && !copy.has_seen(21));
        assert_eq!(
            copy.raised_to(21),
            Some(GlobalCopy {
                epoch: copy.epoch,
                generation: 21
            }),
            "the epoch is kept"
        );
        assert_eq!(copy.raised_to(20), None);
        assert_eq!(copy.raised_to(3), None, "a generation is never lowered");
    }

    #[test]
    fn an_epoch_is_exactly_its_bytes_and_names_its_kind() {
        assert_eq!(parse(Some(&[3; EPOCH_LEN])), Some(Epoch([3; EPOCH_LEN])));
        for bad in [&[3; EPOCH_LEN - 1][..], &[3; EPOCH_LEN + 1]] {
            assert_eq!(parse(Some(bad)), None, "{}", bad.len());
        }
        assert_eq!(parse(None), None);
        assert_eq!(EpochKind::User.as_str(), "user");
        assert_eq!(EpochKind::Global.as_str(), "global");
    }

    #[test]
    fn a_server_below_the_highest_generation_is_behind_only_after_the_grace() {
        let generations = Generations::new(Duration::from_millis(100));
        let t0 = Instant::now();
        assert_eq!(generations.observe(0, t0), Standing::Current);
        assert_eq!(generations.observe(10, t0), Standing::Current);
        assert_eq!(generations.highest(), 10);
        assert_eq!(generations.observe(10, t0), Standing::Current);
        assert_eq!(generations.observe(12, t0), Standing::Current);
        // A copy at 10 while 12 is known: a revocation on its way, then a missed one.
        assert_eq!(
            generations.observe(10, t0 + Duration::from_millis(50)),
            Standing::Catching
        );
        assert_eq!(
            generations.observe(10, t0 + Duration::from_millis(100)),
            Standing::Behind,
            "the grace is over at its end"
        );
        assert_eq!(
            generations.observe(10, t0 + Duration::from_millis(150)),
            Standing::Behind
        );
        assert_eq!(
            generations.observe(0, t0 + Duration::from_millis(150)),
            Standing::Behind
        );
        // A newer revocation starts a new grace.
        assert_eq!(
            generations.observe(20, t0 + Duration::from_millis(200)),
            Standing::Current
        );
        assert_eq!(
            generations.observe(12, t0 + Duration::from_millis(250)),
            Standing::Catching
        );
        assert_eq!(generations.highest(), 20);
    }

    #[test]
    fn a_revocation_generation_rises_past_what_was_seen_and_the_clock() {
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        assert!(next_generation(0) >= clock);
        let far = clock + 10_000_000;
        assert_eq!(next_generation(far), far + 1);
        assert_eq!(next_generation(u64::MAX), u64::MAX);
    }
}
