//! The session model over memcached: create, validate, delete and revoke sessions.
//!
//! Steady state is one store round trip to one server per request: a multi-get of the
//! record, the global epoch and the user's epoch, all on the server the record's key hashes
//! to (every server holds its own copies of the epochs, see [`epochs`]), pipelined with other
//! threads' asking that server at the same moment. The user's
//! epoch key depends on the user, which is only known once the record is opened, so each
//! process remembers (bounded) which epoch key belongs to which record key: that mapping
//! never changes for a session's life. The first request a
//! process sees for a session pays a second round trip; every later one does not.
mod epochs;
mod known_sessions;
mod outcome;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use outcome::{Rejection, ValidRecord, Validated};

use crate::config::secret_file::ServerSecret;
use crate::session::id::SessionId;
use crate::session::keys::{KeyDeriver, SessionKeys};
use crate::session::lifetime::{self, Expiry};
use crate::session::record::{self, Epoch, SessionRecord};
use crate::store::client::{StoreClient, StoreError};
use epochs::{EpochKind, Generations, Standing};
pub use epochs::{GlobalCopy, BEHIND_GRACE};
use known_sessions::KnownSessions;

/// Fresh ids a login tries before giving up: an id whose server is down or failing is
/// replaced by another (which lands on another server with probability (N-1)/N), so a login
/// fails only when the servers its ids landed on all failed.
const CREATE_ATTEMPTS: usize = 8;
/// Of which at most this many may collide with an existing key before it is an error.
const MAX_COLLISIONS: usize = 3;
/// Ids drawn in all by one login, skips of servers known to fail included.
const CREATE_DRAWS: usize = 64;

/// What the location a request is served from asks of a session, beyond what the session
/// was created with: the stricter of the two wins.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub inactivity_timeout: Duration,
    pub max_lifetime: Duration,
    /// Whether this request may slide the inactivity window (`MemSessionExtend`).
    pub extend: bool,
}

/// What a login knows about the session it is about to create.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub user: String,
    pub auth_type: String,
    pub inactivity_timeout: Duration,
    pub max_lifetime: Duration,
    /// End time of the credentials the user logged in with (unix seconds), when known.
    pub credential_end: Option<u64>,
    pub cap_to_credentials: bool,
    pub ccache: Option<Vec<u8>>,
}

#[derive(Debug)]
pub enum CreateError {
    Store(StoreError),
    Record(record::RecordError),
    /// The OS random source failed: no session id can be made safely.
    Random,
    /// `add` refused every fresh id: something else is writing our keys.
    Collision,
}

impl std::fmt::Display for CreateError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CreateError::Store(error) => write!(f, "session store: {error}"),
            CreateError::Record(error) => write!(f, "session record: {error}"),
            CreateError::Random => f.write_str("the OS random source failed"),
            CreateError::Collision => f.write_str("fresh session ids collided repeatedly"),
        }
    }
}

impl From<StoreError> for CreateError {
    fn from(error: StoreError) -> Self {
        CreateError::Store(error)
    }
}

pub struct SessionStore {
    client: StoreClient,
    /// Keys under the current server secret: every new session's.
    current: KeyDeriver,
    /// Keys under the secret being rotated out: its sessions stay valid until they end.
    previous: Option<KeyDeriver>,
    known: KnownSessions,
    generations: Generations,
}

/// What a revocation reached: every server but `missed`.
#[derive(Debug)]
pub struct Revocation {
    /// The revocation generation written (see [`epochs`]).
    pub generation: u64,
    /// Servers (indexes in `MemSessionServers`) that did not take it, and why: the revocation
    /// is done only when this is empty. Re-running it completes it.
    pub missed: Vec<(usize, StoreError)>,
}

impl Revocation {
    pub fn is_complete(&self) -> bool {
        self.missed.is_empty()
    }
}

impl SessionStore {
    /// Opens nothing: connections are made by the process that first uses them.
    pub fn new(
        client: StoreClient,
        secret: &ServerSecret,
        previous_secret: Option<&ServerSecret>,
        prefix: &str,
        local_cache: Duration,
    ) -> SessionStore {
        SessionStore {
            client,
            current: KeyDeriver::new(secret, prefix),
            previous: previous_secret.map(|previous| KeyDeriver::new(previous, prefix)),
            known: KnownSessions::new(local_cache),
            generations: Generations::new(BEHIND_GRACE),
        }
    }

    /// How long a server may stay behind a revocation generation this process has seen
    /// before it resets that server ([`BEHIND_GRACE`] by default): shorter in tests.
    pub fn with_behind_grace(mut self, grace: Duration) -> SessionStore {
        self.generations = Generations::new(grace);
        self
    }

    /// The highest revocation generation this process has seen.
    pub fn known_generation(&self) -> u64 {
        self.generations.highest()
    }

    pub fn client(&self) -> &StoreClient {
        &self.client
    }

    /// The current secret's derivations, then the previous secret's (if any).
    pub fn derivers(&self) -> impl Iterator<Item = &KeyDeriver> {
        std::iter::once(&self.current).chain(self.previous.as_ref())
    }

    /// Where the current secret keeps this deployment's global revocation epoch.
    pub fn global_epoch_key(&self) -> &str {
        self.current.global_epoch_key()
    }

    pub fn keys_for(&self, id: &SessionId) -> SessionKeys {
        self.current.derive(id)
    }

    /// Steady state: one round trip, shared with the process's other threads asking at the
    /// same moment; a local-cache hit allocates nothing and asks nothing. A session this
    /// process has not seen is looked up under the current secret, then (during a rotation)
    /// under the previous one.
    pub fn validate(
        &self,
        id: &SessionId,
        policy: &Policy,
        now: u64,
    ) -> Result<Validated, Rejection> {
        let started = Instant::now();
        let recalled = self.known.recall(id, started);
        if let Some(record) = recalled.as_ref().and_then(|r| r.fresh_record.as_ref()) {
            check_lifetime(record, policy, now)?;
            return Ok(Validated {
                record: ValidRecord::Shared(Arc::clone(record)),
                from_local_cache: true,
                refreshed: false,
            });
        }
        if let Some(recalled) = recalled {
            let known = Lookup {
                keys: recalled.keys,
                user_epoch_key: Some(recalled.user_epoch_key),
                deriver: &self.current,
            };
            return self.validate_in_store(id, known, policy, now, started);
        }
        let mut result = Err(Rejection::Unknown);
        for deriver in self.derivers() {
            let lookup = Lookup {
                keys: Arc::new(deriver.derive(id)),
                user_epoch_key: None,
                deriver,
            };
            result = self.validate_in_store(id, lookup, policy, now, started);
            if !matches!(result, Err(Rejection::Unknown)) {
                break;
            }
        }
        result
    }

    fn validate_in_store(
        &self,
        id: &SessionId,
        lookup: Lookup,
        policy: &Policy,
        now: u64,
        started: Instant,
    ) -> Result<Validated, Rejection> {
        let Lookup {
            keys,
            user_epoch_key,
            deriver,
        } = lookup;
        let first_sight = user_epoch_key.is_none();
        let server = self.client.server_index(&keys.store_key);
        let mut wanted = [keys.store_key.as_str(), &keys.global_epoch_key, ""];
        let wanted = match &user_epoch_key {
            Some(key) => {
                wanted[2] = key;
                &wanted[..]
            }
            None => &wanted[..2],
        };
        let mut values = self
            .client
            .get_multi_shared_on(server, wanted)
            .map_err(Rejection::Store)?
            .into_iter();
        let mut sealed = values.next().flatten().ok_or(Rejection::Unknown)?;
        let global = GlobalCopy::parse(values.next().flatten().as_deref());
        let mut user_epoch = epochs::parse(values.next().flatten().as_deref());
        let mut record = record::open_in_place(&mut sealed, &keys).map_err(Rejection::Record)?;
        // Every reply teaches the process the farm's revocation generation, a refusal too.
        let standing = global.map(|copy| self.generations.observe(copy.generation, started));
        if global.map(|copy| copy.epoch) != Some(record.global_epoch) {
            return Err(Rejection::Revoked(EpochKind::Global));
        }
        let user_epoch_key = match user_epoch_key {
            Some(key) => key,
            None => {
                let key = deriver.user_epoch_key(&record.user);
                user_epoch = epochs::parse(
                    self.client
                        .get_on(server, &key)
                        .map_err(Rejection::Store)?
                        .as_deref(),
                );
                Arc::from(key)
            }
        };
        if user_epoch != Some(record.user_epoch) {
            return Err(Rejection::Revoked(EpochKind::User));
        }
        // Valid by its server's epochs; unless that server missed a revocation.
        if standing == Some(Standing::Behind) {
            return Err(
                match epochs::reset_behind(
                    &self.client,
                    server,
                    &keys.global_epoch_key,
                    self.generations.highest(),
                ) {
                    Ok(_) => Rejection::ServerReset,
                    Err(error) => Rejection::Store(error),
                },
            );
        }
        check_lifetime(&record, policy, now)?;

        let mut refreshed = false;
        let location_timeout = policy.inactivity_timeout.as_secs();
        if policy.extend && lifetime::needs_refresh(&record, location_timeout, now) {
            record.last_seen = now;
            // A failed write-back costs the session some of its window, not the request.
            refreshed = self.write_back(&keys, &record, now).unwrap_or(false);
        }
        let record = if self.known.caches_records() {
            let shared = Arc::new(record);
            let kept = Arc::clone(&shared);
            self.known
                .remember(id, keys, user_epoch_key, Some((kept, started)));
            ValidRecord::Shared(shared)
        } else {
            if first_sight {
                self.known.remember(id, keys, user_epoch_key, None);
            }
            ValidRecord::Read(record)
        };
        Ok(Validated {
            record,
            from_local_cache: false,
            refreshed,
        })
    }

    /// Mints a session with a fresh id, under the current secret. Never takes an id from the
    /// client.
    ///
    /// The record goes to the server its store key hashes to, with the epochs of that server
    /// (created there if missing). An id whose server fails (or whose breaker is open) is
    /// replaced by a fresh one, so a login succeeds while any server it lands on works.
    pub fn create(
        &self,
        new: NewSession,
        now: u64,
    ) -> Result<(SessionId, SessionRecord), CreateError> {
        let user_epoch_key = self.current.user_epoch_key(&new.user);
        let mut failed = vec![false; self.client.servers().len()];
        let mut last_error = None;
        let mut collisions = 0;
        let mut attempts = 0;
        // A draw whose server is known to fail costs no I/O, so it does not count as an
        // attempt: with two of three servers refusing (one down, one whose breaker has not
        // yet probed it back), 8 draws missed the last one about once in 25 logins.
        for _ in 0..CREATE_DRAWS {
            if attempts == CREATE_ATTEMPTS {
                break;
            }
            let id = SessionId::generate().map_err(|_| CreateError::Random)?;
            let keys = self.keys_for(&id);
            let server = self.client.server_index(&keys.store_key);
            if failed.get(server).copied().unwrap_or(true) || self.client.is_refusing(server) {
                last_error.get_or_insert(StoreError::CircuitOpen);
                continue;
            }
            attempts += 1;
            match self.create_on(server, &new, now, &keys, &user_epoch_key) {
                Ok(Some(record)) => {
                    self.known
                        .remember(&id, Arc::new(keys), Arc::from(user_epoch_key), None);
                    return Ok((id, record));
                }
                Ok(None) => {
                    collisions += 1;
                    if collisions >= MAX_COLLISIONS {
                        return Err(CreateError::Collision);
                    }
                }
                Err(CreateError::Store(error)) => {
                    failed[server] = true;
                    last_error = Some(error);
                }
                Err(other) => return Err(other),
            }
        }
        Err(last_error.map_or(CreateError::Collision, CreateError::Store))
    }

    /// One attempt on one server: `Ok(None)` when the id's key exists already.
    fn create_on(
        &self,
        server: usize,
        new: &NewSession,
        now: u64,
        keys: &SessionKeys,
        user_epoch_key: &str,
    ) -> Result<Option<SessionRecord>, CreateError> {
        let (global_epoch, user_epoch) = epochs::current_or_new_on(
            &self.client,
            server,
            &keys.global_epoch_key,
            user_epoch_key,
            &self.generations,
        )?;
        let record = new_record(new, now, global_epoch, user_epoch);
        let sealed = record::seal(&record, keys).map_err(CreateError::Record)?;
        let exptime = lifetime::store_exptime(&record, now);
        Ok(self
            .client
            .add_on(server, &keys.store_key, &sealed, exptime)?
            .then_some(record))
    }

    /// Deletes one session (logout), wherever a secret in use placed it. Returns whether the
    /// store held it.
    pub fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.known.forget(id);
        let mut held = false;
        for deriver in self.derivers() {
            held |= self.client.delete(&deriver.derive(id).store_key)?;
        }
        Ok(held)
    }

    /// Ends every session of `user`, on every node, at their next request: under every
    /// secret in use, so sessions issued before a rotation end too, and on every server (each
    /// holds its own copy of the user's epoch). Done only if [`Revocation::is_complete`].
    pub fn revoke_user(&self, user: &str) -> Revocation {
        let keys: Vec<String> = self
            .derivers()
            .map(|deriver| deriver.user_epoch_key(user))
            .collect();
        self.revoke(Some(&keys))
    }

    /// Ends every session of this deployment (this key prefix and secret), on every server.
    pub fn revoke_all(&self) -> Revocation {
        self.revoke(None)
    }

    /// On every server, in three steps, each only on the servers every earlier step reached:
    /// read the revocation generations; replace the user epochs (`revoke-user`); then raise
    /// the generation, with a fresh global epoch for `revoke-all`. A server the last step
    /// reached has the whole revocation; one that missed any step keeps the old generation,
    /// so it looks behind to every process that sees a server that took it (see [`epochs`]).
    fn revoke(&self, user_keys: Option<&[String]>) -> Revocation {
        let servers = self.client.servers().len();
        let globals: Vec<&str> = self.derivers().map(|d| d.global_epoch_key()).collect();
        let mut missed: Vec<Option<StoreError>> = vec![None; servers];
        let mut highest = self.generations.highest();
        for (server, missed) in missed.iter_mut().enumerate() {
            match self.client.get_multi_on(server, &globals) {
                Ok(values) => {
                    for copy in values
                        .iter()
                        .filter_map(|v| GlobalCopy::parse(v.as_deref()))
                    {
                        highest = highest.max(copy.generation);
                    }
                }
                Err(error) => *missed = Some(error),
            }
        }
        let generation = epochs::next_generation(highest);
        let fresh = epochs::fresh_epoch();
        let reachable = |missed: &[Option<StoreError>]| -> Vec<usize> {
            (0..servers).filter(|&s| missed[s].is_none()).collect()
        };
        for server in reachable(&missed) {
            let result = fresh.clone().and_then(|fresh| match user_keys {
                Some(keys) => keys.iter().try_for_each(|key| {
                    self.client.set_permanent_on(server, key, &fresh.to_bytes())
                }),
                None => Ok(()),
            });
            if let Err(error) = result {
                missed[server] = Some(error);
            }
        }
        for server in reachable(&missed) {
            let result = fresh.clone().and_then(|fresh| {
                globals.iter().try_for_each(|key| match user_keys {
                    Some(_) => epochs::raise_generation(&self.client, server, key, generation),
                    None => {
                        let copy = GlobalCopy {
                            epoch: fresh,
                            generation,
                        };
                        self.client.set_permanent_on(server, key, &copy.to_bytes())
                    }
                })
            });
            if let Err(error) = result {
                missed[server] = Some(error);
            }
        }
        self.generations.observe(generation, Instant::now());
        Revocation {
            generation,
            missed: missed
                .into_iter()
                .enumerate()
                .filter_map(|(server, error)| Some((server, error?)))
                .collect(),
        }
    }

    /// Writes back a record whose inactivity window slid, only while the store still holds
    /// it: a logout (or an eviction) between this request's read and its write must stay
    /// done. `Ok(false)`: the record was gone, nothing written.
    pub fn write_back(
        &self,
        keys: &SessionKeys,
        record: &SessionRecord,
        now: u64,
    ) -> Result<bool, CreateError> {
        let sealed = record::seal(record, keys).map_err(CreateError::Record)?;
        Ok(self.client.replace(
            &keys.store_key,
            &sealed,
            lifetime::store_exptime(record, now),
        )?)
    }
}

/// Where to look for one session: its keys under one secret and, once known, its user's
/// epoch key.
struct Lookup<'d> {
    keys: Arc<SessionKeys>,
    user_epoch_key: Option<Arc<str>>,
    deriver: &'d KeyDeriver,
}

fn new_record(new: &NewSession, now: u64, global: Epoch, user: Epoch) -> SessionRecord {
    let max_lifetime = new.max_lifetime.as_secs();
    let credential_end = new.credential_end.unwrap_or(0);
    SessionRecord {
        user: new.user.clone(),
        auth_type: new.auth_type.clone(),
        created: now,
        last_seen: now,
        inactivity_timeout: new.inactivity_timeout.as_secs(),
        absolute_expiry: if max_lifetime == 0 {
            0
        } else {
            now.saturating_add(max_lifetime)
        },
        credential_end: if new.cap_to_credentials {
            credential_end
        } else {
            0
        },
        ccache: new.ccache.clone(),
        user_epoch: user,
        global_epoch: global,
    }
}

/// The record's own limits, then the serving location's, which may be stricter.
pub fn check_lifetime(record: &SessionRecord, policy: &Policy, now: u64) -> Result<(), Rejection> {
    lifetime::check(record, now).map_err(Rejection::Expired)?;
    let inactivity = policy.inactivity_timeout.as_secs();
    if inactivity > 0 && now >= record.last_seen.saturating_add(inactivity) {
        return Err(Rejection::TooOldHere(Expiry::Inactive));
    }
    let max_lifetime = policy.max_lifetime.as_secs();
    if max_lifetime > 0 && now >= record.created.saturating_add(max_lifetime) {
        return Err(Rejection::TooOldHere(Expiry::MaxLifetime));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(created: u64, inactivity_timeout: u64) -> SessionRecord {
        SessionRecord {
            user: "alice".into(),
            auth_type: "Basic".into(),
            created,
            last_seen: created,
            inactivity_timeout,
            absolute_expiry: 0,
            credential_end: 0,
            ccache: None,
            user_epoch: Epoch([1; 16]),
            global_epoch: Epoch([2; 16]),
        }
    }

    fn policy(inactivity: u64, max_lifetime: u64) -> Policy {
        Policy {
            inactivity_timeout: Duration::from_secs(inactivity),
            max_lifetime: Duration::from_secs(max_lifetime),
            extend: true,
        }
    }

    #[test]
    fn a_location_may_be_stricter_than_the_session_never_laxer() {
        let r = record(1000, 3600);
        assert!(
            check_lifetime(&r, &policy(0, 0), 1000).is_ok(),
            "0 = no limit here"
        );
        assert!(check_lifetime(&r, &policy(0, 0), 4599).is_ok());
        // The session's own window ends first, whatever the location allows.
        assert!(matches!(
            check_lifetime(&r, &policy(7200, 0), 4600),
            Err(Rejection::Expired(Expiry::Inactive))
        ));
        // A stricter inactivity timeout here: valid strictly before its end.
        assert!(check_lifetime(&r, &policy(10, 0), 1009).is_ok());
        assert!(matches!(
            check_lifetime(&r, &policy(10, 0), 1010),
            Err(Rejection::TooOldHere(Expiry::Inactive))
        ));
        // Judged from the last use, not from the login.
        let mut used = record(1000, 3600);
        used.last_seen = 2000;
        assert!(check_lifetime(&used, &policy(10, 0), 2009).is_ok());
        // A stricter lifetime here: from the login, whatever the last use.
        assert!(check_lifetime(&used, &policy(0, 1500), 2499).is_ok());
        assert!(matches!(
            check_lifetime(&used, &policy(0, 1500), 2500),
            Err(Rejection::TooOldHere(Expiry::MaxLifetime))
        ));
    }

    #[test]
    fn a_new_record_carries_the_logins_limits() {
        let new = NewSession {
            user: "alice".into(),
            auth_type: "Negotiate".into(),
            inactivity_timeout: Duration::from_secs(600),
            max_lifetime: Duration::from_secs(3600),
            credential_end: Some(5000),
            cap_to_credentials: true,
            ccache: Some(vec![1, 2]),
        };
        let (global, user) = (Epoch([2; 16]), Epoch([1; 16]));
        let r = new_record(&new, 1000, global, user);
        assert_eq!((r.created, r.last_seen), (1000, 1000));
        assert_eq!(r.inactivity_timeout, 600);
        assert_eq!(r.absolute_expiry, 4600);
        assert_eq!(r.credential_end, 5000);
        assert_eq!((r.user_epoch, r.global_epoch), (user, global));
        assert_eq!(r.ccache.as_deref(), Some(&[1u8, 2][..]));
        let unbounded = NewSession {
            max_lifetime: Duration::ZERO,
            cap_to_credentials: false,
            ..new
        };
        let r = new_record(&unbounded, 1000, global, user);
        assert_eq!(r.absolute_expiry, 0, "0 = no lifetime, not one ending now");
        assert_eq!(
            r.credential_end, 0,
            "not capped: the credentials' end is not kept"
        );
    }

    #[test]
    fn a_revocation_is_complete_only_with_no_server_missed() {
        let done = Revocation {
            generation: 3,
            missed: vec![],
        };
        assert!(done.is_complete());
        let partial = Revocation {
            generation: 3,
            missed: vec![(1, StoreError::Timeout)],
        };
        assert!(!partial.is_complete());
    }
}
