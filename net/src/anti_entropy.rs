//! Anti-entropy: the background repair that gossip cannot do (a node that
//! slept or was partitioned missed announcements that are never replayed).
//!
//! Each round asks every known peer one question for all shared stores at
//! once (`Request.digests`): one hash over the (store, log digest) pairs,
//! so a peer that holds what we hold costs a round trip of ~100 bytes
//! whatever the number of stores; only when the hashes differ are the
//! per-store digests sent, and only the stores that differ are synced.
//! Peers are asked a few at a time; a peer that cannot be reached is
//! skipped for a while, doubling up to [`MAX_BACKOFF`], so a dead member
//! costs one connect timeout per backoff period, not one per store.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use iroh::endpoint::{RecvStream, SendStream};
use lattice_kernel::{AuthorId, StoreId};
use tokio::task::JoinHandle;

use crate::error::{NetError, Result};
use crate::frame;
use crate::net::Inner;
use crate::pb;
use crate::pb::digests_frame::Kind as DF;
use crate::sync::SyncStats;

/// Peers asked at once in a round.
pub const CONCURRENT_PEERS: usize = 4;
/// Longest pause before an unreachable peer is tried again.
pub const MAX_BACKOFF: Duration = Duration::from_secs(600);

/// The stores `peer` may sync with us, each with our log digest, sorted.
fn shared(inner: &Inner, peer: &AuthorId) -> Result<Vec<(StoreId, [u8; 32])>> {
    let mut out = Vec::new();
    for s in inner.policy.stores() {
        if inner.policy.may_sync(&s, peer) {
            out.push((s, inner.kernel.status(&s)?.digest.0));
        }
    }
    out.sort();
    Ok(out)
}

fn combined(stores: &[(StoreId, [u8; 32])]) -> Vec<u8> {
    let mut h = blake3::Hasher::new_derive_key("lattice anti-entropy digests v1");
    for (s, d) in stores {
        h.update(&s.0);
        h.update(d);
    }
    h.finalize().as_bytes().to_vec()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| NetError::Protocol(format!("blocking task failed: {e}")))
}

/// What one digests exchange with a peer found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DigestRound {
    /// Shared stores whose logs differ (only these need a sync).
    pub differ: Vec<StoreId>,
    /// Frame bytes in both directions.
    pub bytes: u64,
}

/// The stores whose logs differ between us and `peer` (client side).
pub(crate) async fn differing(inner: &Arc<Inner>, peer: AuthorId) -> Result<DigestRound> {
    let i = Arc::clone(inner);
    let ours = blocking(move || shared(&i, &peer)).await??;
    exchange(inner, peer, &ours).await
}

/// The digests exchange for `ours`, the stores we share with `peer`.
async fn exchange(
    inner: &Arc<Inner>,
    peer: AuthorId,
    ours: &[(StoreId, [u8; 32])],
) -> Result<DigestRound> {
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    if ours.is_empty() {
        return Ok(DigestRound::default());
    }
    let (mut send, mut recv) = crate::sync::open(inner, &peer).await?;
    let req = pb::Request {
        kind: Some(pb::request::Kind::Digests(pb::DigestsRequest {
            combined: combined(ours),
        })),
    };
    let mut bytes = frame::write(&mut send, &req, io, "digests request").await? as u64;
    let (answer, n) = read(&mut recv, max, io).await?;
    bytes += n;
    match answer {
        DF::Equal(true) => {
            let _ = send.finish();
            return Ok(DigestRound {
                differ: vec![],
                bytes,
            });
        }
        DF::Equal(false) => {}
        other => return Err(unexpected("equal", &other)),
    }
    let list = pb::DigestsFrame {
        kind: Some(DF::Stores(pb::StoreDigests {
            stores: ours
                .iter()
                .map(|(s, d)| pb::StoreDigest {
                    store_id: s.0.to_vec(),
                    log: d.to_vec(),
                })
                .collect(),
        })),
    };
    bytes += frame::write(&mut send, &list, io, "store digests").await? as u64;
    let _ = send.finish();
    let (answer, n) = read(&mut recv, max, io).await?;
    bytes += n;
    match answer {
        DF::Differ(ids) => Ok(DigestRound {
            differ: ids
                .ids
                .iter()
                .filter_map(|id| StoreId::from_slice(id))
                .filter(|s| ours.iter().any(|(o, _)| o == s))
                .collect(),
            bytes,
        }),
        other => Err(unexpected("differ", &other)),
    }
}

async fn read(recv: &mut RecvStream, max: usize, io: Duration) -> Result<(DF, u64)> {
    let (f, n) = frame::read::<pb::DigestsFrame>(recv, max, io, "digests frame").await?;
    match f.kind {
        Some(DF::Error(e)) => Err(NetError::Refused(e)),
        Some(k) => Ok((k, n as u64)),
        None => Err(NetError::Protocol("empty digests frame".into())),
    }
}

fn unexpected(want: &str, got: &DF) -> NetError {
    NetError::Protocol(format!(
        "expected {want} in the digests exchange, got {got:?}"
    ))
}

/// Server side: compare the client's digests with ours, over the stores
/// the client may sync (admission is the same as for sync).
pub(crate) async fn serve(
    inner: &Arc<Inner>,
    peer: AuthorId,
    mut send: SendStream,
    mut recv: RecvStream,
    req: pb::DigestsRequest,
) -> Result<()> {
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    let i = Arc::clone(inner);
    let ours = blocking(move || shared(&i, &peer)).await??;
    let equal = combined(&ours) == req.combined;
    let f = pb::DigestsFrame {
        kind: Some(DF::Equal(equal)),
    };
    frame::write(&mut send, &f, io, "digests answer").await?;
    if equal {
        let _ = send.finish();
        return Ok(());
    }
    let theirs = match read(&mut recv, max, io).await?.0 {
        DF::Stores(s) => s.stores,
        other => return Err(unexpected("stores", &other)),
    };
    let differ: Vec<Vec<u8>> = theirs
        .into_iter()
        .filter(|t| {
            !ours
                .iter()
                .any(|(s, d)| s.0.as_slice() == t.store_id && d.as_slice() == t.log)
        })
        .map(|t| t.store_id)
        .collect();
    let f = pb::DigestsFrame {
        kind: Some(DF::Differ(pb::StoreIds { ids: differ })),
    };
    frame::write(&mut send, &f, io, "differing stores").await?;
    let _ = send.finish();
    Ok(())
}

/// When an unreachable peer may be tried again.
#[derive(Default)]
struct Backoff(HashMap<AuthorId, (u32, Instant)>);

impl Backoff {
    fn ready(&self, peer: &AuthorId, now: Instant) -> bool {
        self.0.get(peer).is_none_or(|(_, until)| *until <= now)
    }

    fn failed(&mut self, peer: AuthorId, period: Duration, now: Instant) {
        let n = self.0.get(&peer).map_or(0, |(n, _)| *n).saturating_add(1);
        let pause = period.saturating_mul(1u32 << n.min(10)).min(MAX_BACKOFF);
        self.0.insert(peer, (n, now + pause));
    }

    fn ok(&mut self, peer: &AuthorId) {
        self.0.remove(peer);
    }
}

/// One peer's part of a round: the digests question, then a sync of each
/// differing store. Stores found equal are recorded as in sync.
async fn with_peer(inner: Arc<Inner>, peer: AuthorId) -> Result<usize> {
    let i = Arc::clone(&inner);
    let shared = blocking(move || shared(&i, &peer)).await??;
    let differ = exchange(&inner, peer, &shared).await?.differ;
    for (s, _) in &shared {
        if !differ.contains(s) {
            inner.record_sync(&peer, *s, &Ok(SyncStats::default()));
        }
    }
    for s in &differ {
        // Failures are recorded per store by `sync_store`.
        let _ = inner.sync_store(peer, *s).await;
    }
    Ok(differ.len())
}

/// Every `period`, a round over every known peer; the first one at once
/// (a node that was off has missed everything, and gossip does not replay).
pub(crate) fn spawn(inner: Arc<Inner>, period: Duration) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut backoff = Backoff::default();
        loop {
            tick.tick().await;
            let started = Instant::now();
            let peers: Vec<AuthorId> = inner
                .known_peers()
                .into_iter()
                .filter(|p| backoff.ready(p, started))
                .collect();
            let (mut synced, mut failed) = (0, 0);
            for chunk in peers.chunks(CONCURRENT_PEERS) {
                let mut set = tokio::task::JoinSet::new();
                for &p in chunk {
                    let i = Arc::clone(&inner);
                    set.spawn(async move { (p, with_peer(i, p).await) });
                }
                while let Some(r) = set.join_next().await {
                    let Ok((p, r)) = r else { continue };
                    match r {
                        Ok(n) => {
                            backoff.ok(&p);
                            synced += n;
                        }
                        Err(e) => {
                            tracing::info!(peer = %p, error = %e, "anti-entropy: peer unreachable; backing off");
                            backoff.failed(p, period, Instant::now());
                            failed += 1;
                        }
                    }
                }
            }
            tracing::debug!(
                peers = peers.len(),
                stores_synced = synced,
                failed,
                ms = started.elapsed().as_millis() as u64,
                "anti-entropy round"
            );
        }
    })
}
