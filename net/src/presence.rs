//! Presence: which members are online in a store's room, and whether each
//! holds the same log as we do, from small signed beacons on the store's
//! gossip topic. Ephemeral by design: a beacon updates a table in memory
//! and is never logged, so it decides nothing any replica computes.
//!
//! Gossip relays a beacon through other members, so the author signs it
//! and the receiver checks the signature and that the author is a member
//! of the store now: a member cannot claim another is online or in sync.
//! A beacon is sent every `presence_interval` for every store the policy
//! marks, and at once when a neighbour comes up on its topic.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::{Signature, Signer, Verifier, VerifyingKey};
use lattice_kernel::{AuthorId, SetDigest, StoreId, now_ms};
use prost::Message;
use tokio::task::JoinHandle;

use crate::net::Inner;
use crate::pb;

const DOMAIN: &[u8] = b"lattice presence v1";

/// What a member last said about one store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceInfo {
    pub author: AuthorId,
    /// Our clock when its latest beacon arrived (Unix ms).
    pub heard_ms: u64,
    /// Heard within three beacon periods.
    pub online: bool,
    /// The digest and size of its log of the store then.
    pub digest: SetDigest,
    pub entries: u64,
}

#[derive(Default)]
pub(crate) struct Presence {
    /// (store, author) → (our clock at receipt, its sent_ms, digest, entries).
    seen: Mutex<HashMap<(StoreId, AuthorId), (u64, u64, SetDigest, u64)>>,
}

impl Presence {
    pub fn of(&self, store: &StoreId, period: Duration) -> Vec<PresenceInfo> {
        let now = now_ms();
        let fresh = 3 * period.as_millis() as u64;
        let mut out: Vec<PresenceInfo> = lock(&self.seen)
            .iter()
            .filter(|((s, _), _)| s == store)
            .map(|((_, a), (heard, _, digest, entries))| PresenceInfo {
                author: *a,
                heard_ms: *heard,
                online: now.saturating_sub(*heard) <= fresh,
                digest: *digest,
                entries: *entries,
            })
            .collect();
        out.sort_by_key(|p| p.author);
        out
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The bytes a beacon's signature covers: every field but the signature,
/// behind a domain tag so no other signed message can pass for one.
fn signed_bytes(p: &pb::Presence) -> Vec<u8> {
    let mut b = Vec::with_capacity(DOMAIN.len() + 32 + 32 + 8 + 32 + 8);
    b.extend_from_slice(DOMAIN);
    b.extend_from_slice(&p.author);
    b.extend_from_slice(&p.store_id);
    b.extend_from_slice(&p.sent_ms.to_le_bytes());
    b.extend_from_slice(&p.log_digest);
    b.extend_from_slice(&p.entries.to_le_bytes());
    b
}

/// A beacon as received and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Beacon {
    pub author: AuthorId,
    pub sent_ms: u64,
    pub digest: SetDigest,
    pub entries: u64,
}

/// Why a beacon was dropped.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BeaconError {
    #[error("not a presence beacon")]
    Malformed,
    #[error("beacon for another store")]
    OtherStore,
    #[error("signature does not verify for the claimed author")]
    BadSignature,
}

/// A signed beacon for `store` by `identity`: a `Gossip` message.
pub fn encode_beacon(
    identity: &lattice_kernel::Identity,
    store: &StoreId,
    digest: SetDigest,
    entries: u64,
    sent_ms: u64,
) -> Vec<u8> {
    let mut p = pb::Presence {
        author: identity.author().0.to_vec(),
        store_id: store.0.to_vec(),
        sent_ms,
        log_digest: digest.0.to_vec(),
        entries,
        signature: Vec::new(),
    };
    p.signature = identity
        .signing_key()
        .sign(&signed_bytes(&p))
        .to_bytes()
        .to_vec();
    pb::Gossip {
        kind: Some(pb::gossip::Kind::Presence(p)),
    }
    .encode_to_vec()
}

/// Checks a beacon received on `store`'s topic: well-formed, for this
/// store, and signed by the author it names (gossip relays it through
/// other members, who must not speak for anyone else).
pub fn check_beacon(p: &pb::Presence, store: &StoreId) -> Result<Beacon, BeaconError> {
    let (Some(author), Ok(digest)) = (
        AuthorId::from_slice(&p.author),
        <[u8; 32]>::try_from(p.log_digest.as_slice()),
    ) else {
        return Err(BeaconError::Malformed);
    };
    if p.store_id != store.0 {
        return Err(BeaconError::OtherStore);
    }
    let key = VerifyingKey::from_bytes(&author.0).map_err(|_| BeaconError::BadSignature)?;
    let sig = Signature::from_slice(&p.signature).map_err(|_| BeaconError::BadSignature)?;
    key.verify(&signed_bytes(p), &sig)
        .map_err(|_| BeaconError::BadSignature)?;
    Ok(Beacon {
        author,
        sent_ms: p.sent_ms,
        digest: SetDigest(digest),
        entries: p.entries,
    })
}

/// Our beacon for `store`; `None` if its log cannot be read.
fn beacon(inner: &Inner, store: &StoreId) -> Option<Bytes> {
    let status = inner.kernel.status(store).ok()?;
    Some(Bytes::from(encode_beacon(
        inner.kernel.identity(),
        store,
        status.digest,
        status.entries,
        now_ms(),
    )))
}

/// Records a beacon that checked out (see [`crate::inbound::parse`]) if
/// its author is a member now.
pub(crate) fn receive(inner: &Inner, store: &StoreId, b: Beacon) {
    if b.author == inner.me || !inner.policy.may_sync(store, &b.author) {
        return;
    }
    // A member could record a beacon and replay it later to show someone
    // online who is not, or roll their digest back: only beacons newer than
    // the last one from that author, and sent about now, count. (Local time
    // is fine here: presence is shown, never replicated.)
    let now = now_ms();
    let period = inner
        .config
        .presence_interval
        .unwrap_or(Duration::from_secs(10));
    let mut seen = lock(&inner.presence.seen);
    let last = seen.get(&(*store, b.author)).map(|(_, sent, _, _)| *sent);
    if !timely(last, b.sent_ms, now, period) {
        tracing::debug!(store = %store, peer = %b.author, "stale or replayed presence beacon dropped");
        return;
    }
    seen.insert((*store, b.author), (now, b.sent_ms, b.digest, b.entries));
}

/// Whether a beacon sent at `sent` counts: newer than the last one taken
/// from its author, and within 3 periods + 60 s of our clock.
fn timely(last: Option<u64>, sent: u64, now: u64, period: Duration) -> bool {
    let slack = 3 * period.as_millis() as u64 + 60_000;
    sent.abs_diff(now) <= slack && last.is_none_or(|l| sent > l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replayed_and_stale_beacons_do_not_count() {
        let p = Duration::from_secs(10);
        let now = 1_000_000_000;
        assert!(timely(None, now - 1000, now, p));
        assert!(timely(Some(now - 20_000), now - 1000, now, p));
        // The same beacon again, or an older one between real ones.
        assert!(!timely(Some(now - 1000), now - 1000, now, p));
        assert!(!timely(Some(now - 1000), now - 5000, now, p));
        // Recorded long ago and replayed now (its first showing here), or
        // dated far ahead.
        assert!(!timely(None, now - 120_000, now, p));
        assert!(!timely(None, now + 120_000, now, p));
    }
}

/// Sends a beacon for every marked store each period.
pub(crate) fn spawn_beacons(inner: Arc<Inner>, period: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let stores: Vec<StoreId> = inner
                .policy
                .stores()
                .into_iter()
                .filter(|s| inner.policy.presence(s))
                .collect();
            for s in stores {
                send(&inner, &s).await;
            }
        }
    })
}

/// Broadcasts our beacon for `store` on its topic, if we are subscribed.
pub(crate) async fn send(inner: &Arc<Inner>, store: &StoreId) {
    let Some(sender) = inner.topics.sender(store) else {
        return;
    };
    let Some(b) = beacon(inner, store) else {
        return;
    };
    if let Err(e) = sender.broadcast(b).await {
        tracing::debug!(store = %store, error = %e, "presence broadcast failed");
    }
}
