//! Revocation epochs (stored without expiry: they must outlive every session naming them). A session is valid only while the epochs it was created under are the
//! current ones. Revoking replaces an epoch with a fresh random value. A missing epoch (never
//! written, or evicted) matches no session: eviction fails closed, it never revives a session.
use crate::session::record::Epoch;
use crate::store::client::{StoreClient, StoreError};

use super::CreateError;

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

/// The current global and user epochs, creating either when missing. Creation uses `add`,
/// so two logins racing agree on one value.
pub fn current_or_new(
    client: &StoreClient,
    global_key: &str,
    user_key: &str,
) -> Result<(Epoch, Epoch), CreateError> {
    let values = client.get_multi(&[global_key, user_key])?;
    let mut current = values.into_iter().map(|value| parse(value.as_deref()));
    let global = match current.next().flatten() {
        Some(epoch) => epoch,
        None => ensure(client, global_key)?,
    };
    let user = match current.next().flatten() {
        Some(epoch) => epoch,
        None => ensure(client, user_key)?,
    };
    Ok((global, user))
}

fn ensure(client: &StoreClient, key: &str) -> Result<Epoch, CreateError> {
    let fresh = Epoch::generate().map_err(|_| CreateError::Random)?;
    if client.add_permanent(key, &fresh.to_bytes())? {
        return Ok(fresh);
    }
    // Another login created it between our get and add: use theirs.
    if let Some(theirs) = parse(client.get(key)?.as_deref()) {
        return Ok(theirs);
    }
    // The key holds something that is not an epoch (written by hand, or by something else
    // sharing the prefix). It matches no session, so replacing it revokes nothing; leaving it
    // would refuse every login under it for good, since epochs never expire.
    client.set_permanent(key, &fresh.to_bytes())?;
    parse(client.get(key)?.as_deref()).ok_or(CreateError::Collision)
}

pub fn replace(client: &StoreClient, key: &str) -> Result<(), StoreError> {
    let fresh =
        Epoch::generate().map_err(|_| StoreError::Io("the OS random source failed".to_string()))?;
    client.set_permanent(key, &fresh.to_bytes())
}
