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
//!
//! # Replicas (`MemSessionReplicas 1`)
//!
//! Each record also lives on a second server, the replica, at a place fixed by its key and
//! the server list ([`crate::store::routing`]). Each copy is sealed with the epochs of the
//! server it is on and is only ever checked against that server's copies, so a copy is
//! never made valid by another server's epochs. Reads ask the home server alone; on a miss
//! or an error there they ask the replica, and a copy found there is held to the same
//! rules (a missing epoch on the replica's server matches nothing). A copy served from the
//! replica after a miss at home is copied back home, byte for byte, only where the home
//! server's epochs are the ones it was sealed with (or are missing, and the replica has seen
//! every revocation known): a repair never seals a record under an epoch it was not issued
//! under, so it cannot outrun a revocation. Logins, sliding write-backs and logouts reach
//! both copies; a logout deletes the replica first, and a repair checks the replica still
//! holds the session after writing home, so a logout racing a repair stays done.
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
use known_sessions::{KnownSessions, Recalled};

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
    /// `MemSessionReplicas 1` (and at least two servers): every record also on its replica.
    replicas: bool,
    /// Whether a copy found only on the replica is written back home (off for inspection).
    repairs: bool,
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
            replicas: false,
            repairs: true,
        }
    }

    /// `MemSessionReplicas 1`: each session also on a second server. Without a second
    /// server there is nowhere to put it, and this changes nothing.
    pub fn with_replicas(mut self, replicas: bool) -> SessionStore {
        self.replicas = replicas && self.client.servers().len() > 1;
        self
    }

    /// Whether copies found only on the replica are written back home (on by default):
    /// memsessionctl looks without writing.
    pub fn with_repairs(mut self, repairs: bool) -> SessionStore {
        self.repairs = repairs;
        self
    }

    pub fn replicas(&self) -> bool {
        self.replicas
    }

    /// The server holding the replica of `store_key`, if replicas are on.
    pub fn replica_of(&self, store_key: &str) -> Option<usize> {
        if self.replicas {
            self.client.replica_index(store_key)
        } else {
            None
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
        match self.known.recall(id, started) {
            Some(Recalled::Fresh(record)) => {
                check_lifetime(&record, policy, now)?;
                return Ok(Validated {
                    record: ValidRecord::Shared(record),
                    from_local_cache: true,
                    refreshed: false,
                });
            }
            Some(Recalled::Known {
                keys,
                user_epoch_key,
            }) => {
                let known = Lookup {
                    keys,
                    user_epoch_key: Some(user_epoch_key),
                    deriver: &self.current,
                };
                return self.validate_in_store(id, known, policy, now, started);
            }
            None => {}
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
        let home = self.client.server_index(&keys.store_key);
        let replica = self.replica_of(&keys.store_key);
        let at_home = self.check_on(
            home,
            &keys,
            user_epoch_key.as_ref(),
            deriver,
            started,
            false,
        );
        let (mut record, user_epoch_key, served_from, other) = match (at_home, replica) {
            (
                Held::Valid {
                    record,
                    user_epoch_key,
                    ..
                },
                _,
            ) => (record, user_epoch_key, home, replica),
            (Held::Refused(rejection), _) => return Err(rejection),
            (Held::Absent, None) => return Err(Rejection::Unknown),
            (Held::Failed(error), None) => return Err(Rejection::Store(error)),
            // A miss or an error at home: the replica decides, by its own server's epochs.
            (at_home, Some(replica)) => {
                let keep = self.repairs && matches!(at_home, Held::Absent);
                // A home that failed is not asked again in this request (a write-back would
                // pay its timeout a second time).
                let slide_home = matches!(at_home, Held::Absent).then_some(home);
                match self.check_on(
                    replica,
                    &keys,
                    user_epoch_key.as_ref(),
                    deriver,
                    started,
                    keep,
                ) {
                    Held::Valid {
                        record,
                        sealed,
                        generation,
                        user_epoch_key,
                    } => {
                        if let Some(sealed) = sealed {
                            let copy = Found {
                                record: &record,
                                sealed: &sealed,
                                generation,
                                user_epoch_key: &user_epoch_key,
                            };
                            self.repair(home, replica, &keys, copy, now);
                        }
                        (record, user_epoch_key, replica, slide_home)
                    }
                    Held::Refused(rejection) => return Err(rejection),
                    Held::Absent => {
                        return Err(match at_home {
                            // The home server may hold it: not the client's fault.
                            Held::Failed(error) => Rejection::Store(error),
                            _ => Rejection::Unknown,
                        });
                    }
                    Held::Failed(error) => return Err(Rejection::Store(error)),
                }
            }
        };
        check_lifetime(&record, policy, now)?;

        let mut refreshed = false;
        let location_timeout = policy.inactivity_timeout.as_secs();
        if policy.extend && lifetime::needs_refresh(&record, location_timeout, now) {
            record.last_seen = now;
            // A failed write-back costs the session some of its window, not the request.
            refreshed = self
                .write_back_on(served_from, &keys, &record, now)
                .unwrap_or(false);
            if let Some(other) = other.filter(|&o| !self.client.is_refusing(o)) {
                let _ = self.slide_copy(other, &keys, now, now);
            }
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

    /// What `server` says of a session: its copy there, checked against that server's epoch
    /// copies and revocation generation only. One round trip (two the first time a process
    /// sees the session: its user's epoch key is only known once the record is open).
    /// `keep_sealed`: hand back the sealed bytes too, for a repair.
    fn check_on(
        &self,
        server: usize,
        keys: &SessionKeys,
        user_epoch_key: Option<&Arc<str>>,
        deriver: &KeyDeriver,
        started: Instant,
        keep_sealed: bool,
    ) -> Held {
        let mut wanted = [keys.store_key.as_str(), &keys.global_epoch_key, ""];
        let wanted = match user_epoch_key {
            Some(key) => {
                wanted[2] = key;
                &wanted[..]
            }
            None => &wanted[..2],
        };
        let mut values = match self.client.get_multi_shared_on(server, wanted) {
            Ok(values) => values.into_iter(),
            Err(error) => return Held::Failed(error),
        };
        let Some(mut sealed) = values.next().flatten() else {
            return Held::Absent;
        };
        let kept = keep_sealed.then(|| sealed.clone());
        let global = GlobalCopy::parse(values.next().flatten().as_deref());
        let mut user_epoch = epochs::parse(values.next().flatten().as_deref());
        let record = match record::open_in_place(&mut sealed, keys) {
            Ok(record) => record,
            Err(error) => return Held::Refused(Rejection::Record(error)),
        };
        // Every reply teaches the process the farm's revocation generation, a refusal too.
        let standing = global.map(|copy| self.generations.observe(copy.generation, started));
        // A missing global epoch copy (flushed, evicted) matches no record: fail closed.
        if global.map(|copy| copy.epoch) != Some(record.global_epoch) {
            return Held::Refused(Rejection::Revoked(EpochKind::Global));
        }
        let user_epoch_key = match user_epoch_key {
            Some(key) => Arc::clone(key),
            None => {
                let key = deriver.user_epoch_key(&record.user);
                match self.client.get_on(server, &key) {
                    Ok(value) => user_epoch = epochs::parse(value.as_deref()),
                    Err(error) => return Held::Failed(error),
                }
                Arc::from(key)
            }
        };
        if user_epoch != Some(record.user_epoch) {
            return Held::Refused(Rejection::Revoked(EpochKind::User));
        }
        // Valid by its server's epochs; unless that server missed a revocation.
        if standing == Some(Standing::Behind) {
            return Held::Refused(
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
        Held::Valid {
            record,
            sealed: kept,
            generation: global.map_or(0, |copy| copy.generation),
            user_epoch_key,
        }
    }

    /// Best effort: puts back on `home` a copy that was missing there and that `replica`
    /// just served. The very bytes the replica holds, so under the epochs the session was
    /// issued with there: written only if `home` holds those same epochs, or holds none and
    /// the replica has seen every revocation this process and the other servers know of (a
    /// replica that missed one is never copied from). A repair never seals a record under an
    /// epoch it was not issued under, so no repair can outrun a revocation.
    fn repair(
        &self,
        home: usize,
        replica: usize,
        keys: &SessionKeys,
        found: Found,
        now: u64,
    ) -> bool {
        let Found {
            record,
            sealed,
            generation: replica_generation,
            user_epoch_key: user_key,
        } = found;
        if replica_generation < self.generations.highest() || self.client.is_refusing(home) {
            return false;
        }
        let Ok(values) = self
            .client
            .get_multi_on(home, &[&keys.global_epoch_key, user_key])
        else {
            return false;
        };
        let mut values = values.into_iter();
        let global = values.next().flatten();
        let user = values.next().flatten();
        let global_ok = match GlobalCopy::parse(global.as_deref()) {
            Some(copy) => {
                self.generations.observe(copy.generation, Instant::now());
                copy.epoch == record.global_epoch && copy.generation <= replica_generation
            }
            // Nothing at home (flushed, restarted): the replica's epochs, at its generation,
            // unless another server is ahead of the replica.
            None if global.is_none() => {
                epochs::farm_generation(
                    &self.client,
                    home,
                    &keys.global_epoch_key,
                    &self.generations,
                ) <= replica_generation
                    && epochs::adopt(
                        &self.client,
                        home,
                        &keys.global_epoch_key,
                        &GlobalCopy {
                            epoch: record.global_epoch,
                            generation: replica_generation,
                        }
                        .to_bytes(),
                    )
            }
            None => false,
        };
        let user_ok = global_ok
            && match (user.as_deref(), epochs::parse(user.as_deref())) {
                (_, Some(epoch)) => epoch == record.user_epoch,
                (None, None) => {
                    epochs::adopt(&self.client, home, user_key, &record.user_epoch.to_bytes())
                }
                (Some(_), None) => false,
            };
        if !user_ok {
            return false;
        }
        let exptime = lifetime::store_exptime(record, now);
        if !matches!(
            self.client.add_on(home, &keys.store_key, sealed, exptime),
            Ok(true)
        ) {
            return false;
        }
        // A logout deletes the replica, then home: if it ran meanwhile, the replica is empty
        // now, and the copy just written home must go too.
        if !matches!(self.client.get_on(replica, &keys.store_key), Ok(Some(_))) {
            let _ = self.client.delete_on(home, &keys.store_key);
            return false;
        }
        true
    }

    /// Mints a session with a fresh id, under the current secret. Never takes an id from the
    /// client.
    ///
    /// The record goes to the server its store key hashes to, with the epochs of that server
    /// (created there if missing); with replicas, a second copy to its replica's server,
    /// sealed with that server's epochs. An id whose server fails (or whose breaker is open) is
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
        for draw in 0..CREATE_DRAWS {
            if attempts == CREATE_ATTEMPTS {
                break;
            }
            let id = SessionId::generate().map_err(|_| CreateError::Random)?;
            let keys = self.keys_for(&id);
            let server = self.client.server_index(&keys.store_key);
            let down =
                |s: usize| failed.get(s).copied().unwrap_or(true) || self.client.is_refusing(s);
            if down(server) {
                last_error.get_or_insert(StoreError::CircuitOpen);
                continue;
            }
            // With replicas, the first half of the draws also avoids a replica known to fail
            // (free: no I/O), so that a login made while one server is out still gets two
            // copies; after that, one copy is better than no login.
            let replica = self.replica_of(&keys.store_key);
            if replica.is_some_and(down) && draw < CREATE_DRAWS / 2 {
                continue;
            }
            attempts += 1;
            match self.create_on(server, &new, now, &keys, &user_epoch_key) {
                Ok(Some(record)) => {
                    if let Some(replica) = replica {
                        // Best effort: the session lives at home whatever happens here.
                        let _ = self.create_replica(replica, &new, now, &keys, &user_epoch_key);
                    }
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
            self.replicas,
        )?;
        let record = new_record(new, now, global_epoch, user_epoch);
        let sealed = record::seal(&record, keys).map_err(CreateError::Record)?;
        let exptime = lifetime::store_exptime(&record, now);
        Ok(self
            .client
            .add_on(server, &keys.store_key, &sealed, exptime)?
            .then_some(record))
    }

    /// The replica's copy of a session just created at home: the same record, sealed with
    /// the replica server's own epochs (created there if missing), added only if absent.
    fn create_replica(
        &self,
        replica: usize,
        new: &NewSession,
        now: u64,
        keys: &SessionKeys,
        user_epoch_key: &str,
    ) -> Result<bool, CreateError> {
        Ok(self
            .create_on(replica, new, now, keys, user_epoch_key)?
            .is_some())
    }

    /// Deletes one session (logout), wherever a secret in use placed it. Returns whether the
    /// store held it.
    ///
    /// With replicas, both copies: the replica first, so a repair racing this logout (it
    /// writes home, then checks the replica) never leaves a copy behind. Every copy is tried;
    /// the first failure is returned.
    pub fn delete(&self, id: &SessionId) -> Result<bool, StoreError> {
        self.known.forget(id);
        let mut held = false;
        let mut failed = None;
        for deriver in self.derivers() {
            let key = deriver.derive(id).store_key;
            let replica = self.replica_of(&key);
            let home = self.client.server_index(&key);
            for server in replica.into_iter().chain([home]) {
                match self.client.delete_on(server, &key) {
                    Ok(deleted) => held |= deleted,
                    Err(error) => failed = failed.or(Some(error)),
                }
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(held),
        }
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
    /// done. `Ok(false)`: the record was gone, nothing written. The home server's copy only
    /// (see [`SessionStore::write_back_on`]).
    pub fn write_back(
        &self,
        keys: &SessionKeys,
        record: &SessionRecord,
        now: u64,
    ) -> Result<bool, CreateError> {
        self.write_back_on(self.client.server_index(&keys.store_key), keys, record, now)
    }

    /// [`SessionStore::write_back`] of the copy `server` holds, which `record` was read from
    /// (each copy is sealed with its own server's epochs).
    fn write_back_on(
        &self,
        server: usize,
        keys: &SessionKeys,
        record: &SessionRecord,
        now: u64,
    ) -> Result<bool, CreateError> {
        let sealed = record::seal(record, keys).map_err(CreateError::Record)?;
        Ok(self.client.replace_on(
            server,
            &keys.store_key,
            &sealed,
            lifetime::store_exptime(record, now),
        )?)
    }

    /// Slides the window of the other copy of a session (the one this request did not read):
    /// read, opened, `last_seen` moved forward, sealed again with the epochs it already
    /// carries (never another server's: a copy that is revoked stays revoked) and replaced,
    /// only while it is still there. `Ok(false)`: nothing to slide.
    fn slide_copy(
        &self,
        server: usize,
        keys: &SessionKeys,
        last_seen: u64,
        now: u64,
    ) -> Result<bool, CreateError> {
        let Some(mut sealed) = self.client.get_on(server, &keys.store_key)? else {
            return Ok(false);
        };
        let mut copy = record::open_in_place(&mut sealed, keys).map_err(CreateError::Record)?;
        if copy.last_seen >= last_seen {
            return Ok(false);
        }
        copy.last_seen = last_seen;
        self.write_back_on(server, keys, &copy, now)
    }
}

/// A copy of a session one server holds and its epochs validate.
struct Found<'a> {
    record: &'a SessionRecord,
    sealed: &'a [u8],
    /// That server's revocation generation.
    generation: u64,
    user_epoch_key: &'a str,
}

/// What one server says of a session.
enum Held {
    /// Its copy there, valid by that server's epochs.
    Valid {
        record: SessionRecord,
        /// The sealed bytes, when asked for (a repair copies them).
        sealed: Option<Vec<u8>>,
        generation: u64,
        user_epoch_key: Arc<str>,
    },
    /// No copy there.
    Absent,
    /// The server did not answer properly.
    Failed(StoreError),
    /// A verdict on the copy there: revoked, malformed, reset.
    Refused(Rejection),
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

    fn policy(inactivity: u64, max_lifetime: u64) -> Policy {
        Policy {
            inactivity_timeout: Duration::from_secs(inactivity),
            max_lifetime: Duration::from_secs(max_lifetime),
            extend: true,
        }
    }

    #[test]
    fn a_location_may_be_stricter_than_the_session_never_laxer() {
        let r = SessionRecord::for_test(1000, 3600);
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
        let mut used = SessionRecord::for_test(1000, 3600);
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
