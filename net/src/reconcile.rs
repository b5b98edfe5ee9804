//! Range-based set reconciliation of one store's log: the negentropy
//! protocol (version 1) over every logged entry ordered by (HLC, id).
//!
//! Why beside version vectors: a vector costs ~75 bytes per author per
//! session whatever changed, so a store with 10,000 authors pays ~750 KB to
//! learn that 20 entries differ. Reconciliation compares fingerprints of
//! ranges (16 per level, each a hash of the sum of its ids and their count)
//! and splits only the ranges that differ, so its cost grows with the
//! differences and the log of the set size. It also works on ids, not
//! chains: the void branches of a forked author, which no vector names,
//! travel like any other entry, so two replicas end with one log digest.
//!
//! A session (the client initiates, on the sync ALPN):
//! 1. request with the client's first message → the server's hello with
//!    its reply and digests; then `message` frames both ways until the
//!    client's negentropy says it is done, at most [`MAX_ROUNDS`];
//! 2. the client names the ids it lacks (`fetch`, at most [`MAX_FETCH`] a
//!    session; more are left for the next session) and ends with
//!    `fetch_end`;
//! 3. both stream entries as in a version-vector sync (batches in (HLC, id)
//!    order, so deps mostly come first, each batch durable before the
//!    next), and the server acks.
//!
//! The wire format is in `docs/protocol.md`, "Reconciliation".

use std::sync::Arc;
use std::time::Instant;

use iroh::endpoint::{RecvStream, SendStream};
use lattice_kernel::{AuthorId, EntryId, Kernel, StoreId};
use negentropy::{Id, Negentropy, NegentropyStorageBase, NegentropyStorageVector};

use crate::error::{NetError, Result};
use crate::frame;
use crate::net::Inner;
use crate::pb;
use crate::pb::reconcile_frame::Kind as RF;
use crate::sync::{
    Plan, SyncStats, admit, answer, blocking, digests_pb, diverged, exchange, open, our_digests,
    warn_diverged,
};

/// Largest negentropy message either side writes. A bigger difference
/// takes more rounds instead of bigger frames.
const MESSAGE_LIMIT: u64 = 256 * 1024;
/// Message rounds a session may take. A million entries need about five
/// (16-way splits down to ranges of under 32 ids); a peer that goes on
/// past this is broken or hostile, and each round costs the server a pass
/// over the ranges it names.
pub(crate) const MAX_ROUNDS: u32 = 16;
/// Ids fetched in one session; more are left for the next session (every
/// batch is durable on arrival, so the next one starts where this ended).
pub(crate) const MAX_FETCH: usize = 65_536;
/// Ids per fetch frame (32 bytes each).
const FETCH_FRAME: usize = 8_192;
/// Sessions one [`sync`] call runs while each fills its fetch limit.
const MAX_SESSIONS: u32 = 16;
/// How long a served session's message rounds may take in all.
const MESSAGE_PHASE: std::time::Duration = std::time::Duration::from_secs(30);
/// Sessions a node serves at once (see `Inner::reconcile_slots`).
pub(crate) const SERVED_AT_ONCE: usize = 2;

type Session = Negentropy<'static, NegentropyStorageVector>;

fn neg_err(what: &str, e: negentropy::Error) -> NetError {
    NetError::Protocol(format!("reconciliation {what}: {e}"))
}

/// The store's log as a sealed negentropy set: (HLC, id) of every logged
/// entry, read in one snapshot. 40 bytes an entry.
fn storage(kernel: &Kernel, store: &StoreId) -> Result<NegentropyStorageVector> {
    let mut set = NegentropyStorageVector::new();
    let mut failed = None;
    kernel.time_index(store, |hlc, id| {
        if let Err(e) = set.insert(hlc, Id::from_byte_array(id.0)) {
            failed.get_or_insert(e);
        }
    })?;
    if let Some(e) = failed {
        return Err(neg_err("set", e));
    }
    set.seal().map_err(|e| neg_err("set", e))?;
    Ok(set)
}

/// How many times a set of `n` entries is split 16 ways before its
/// ranges are small enough to be listed by id (under 32 entries).
fn split_levels(n: usize) -> u32 {
    let (mut size, mut levels) = (n, 0);
    while size >= 32 {
        size /= 16;
        levels += 1;
    }
    levels
}

/// The initiator's session and its first message.
///
/// negentropy's `initiate` opens with 16 ranges. Messages alternate, so the
/// side that lists ids is fixed by the parity of the split levels: when the
/// client would list them, the server must answer with its own list, one
/// more round trip. For such sets (an even number of levels, e.g. 1M
/// entries: 62.5k, 3.9k, 244, 15) we open one level deeper, with 256
/// ranges, so the server lists and the client is done a round earlier, for
/// ~5 KB more in the first message. The crate has no call for a deeper
/// opening; it is had from the crate's own responder: over our set, given
/// the 16-range opening of a copy of it with a sparse sample left out
/// (every range then differs), the responder answers with exactly our 16 ×
/// 16 sub-ranges and their fingerprints, a valid opening message.
fn start(set: NegentropyStorageVector) -> Result<(Session, Vec<u8>)> {
    let n = set.size().map_err(|e| neg_err("set", e))?;
    let levels = split_levels(n);
    if levels < 2 || levels % 2 == 1 {
        let mut s = Negentropy::owned(set, MESSAGE_LIMIT).map_err(|e| neg_err("setup", e))?;
        let m = s.initiate().map_err(|e| neg_err("start", e))?;
        return Ok((s, m));
    }
    let step = n / 64;
    let mut thinned = NegentropyStorageVector::with_capacity(n);
    set.iterate(0, n, &mut |item, i| {
        if i % step != step / 2 {
            thinned.insert(item.timestamp, item.id)?;
        }
        Ok(true)
    })
    .map_err(|e| neg_err("set", e))?;
    thinned.seal().map_err(|e| neg_err("set", e))?;
    let probe = Negentropy::owned(thinned, 0)
        .and_then(|mut t| t.initiate())
        .map_err(|e| neg_err("start", e))?;
    let first = Negentropy::borrowed(&set, MESSAGE_LIMIT)
        .and_then(|mut r| r.reconcile(&probe))
        .map_err(|e| neg_err("start", e))?;
    let mut s = Negentropy::owned(set, MESSAGE_LIMIT).map_err(|e| neg_err("setup", e))?;
    s.set_initiator();
    Ok((s, first))
}

/// The ids of a `fetch` frame; one not 32 bytes long is a protocol violation.
pub fn ids_of(raw: &[Vec<u8>]) -> Result<Vec<EntryId>> {
    raw.iter()
        .map(|b| {
            EntryId::from_slice(b)
                .ok_or_else(|| NetError::Protocol("fetched id is not 32 bytes".into()))
        })
        .collect()
}

fn entry_ids(ids: Vec<Id>) -> Vec<EntryId> {
    ids.into_iter().map(|i| EntryId(*i)).collect()
}

/// The logged entries of `store` among `ids`, as a plan to send.
async fn plan_for(inner: &Arc<Inner>, store: StoreId, ids: Vec<EntryId>) -> Result<Plan> {
    let k = Arc::clone(&inner.kernel);
    Ok(Plan::positions(
        blocking(move || k.locate(&store, &ids)).await??,
    ))
}

async fn write(
    inner: &Arc<Inner>,
    send: &mut SendStream,
    kind: RF,
    what: &'static str,
) -> Result<u64> {
    let f = pb::ReconcileFrame { kind: Some(kind) };
    Ok(frame::write(send, &f, inner.config.io_timeout, what).await? as u64)
}

async fn read(inner: &Arc<Inner>, recv: &mut RecvStream, what: &'static str) -> Result<(RF, u64)> {
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    let (f, n) = frame::read::<pb::ReconcileFrame>(recv, max, io, what).await?;
    match f.kind {
        Some(RF::Error(e)) => Err(NetError::Refused(e)),
        Some(k) => Ok((k, n as u64)),
        None => Err(NetError::Protocol(format!("empty frame for {what}"))),
    }
}

// ----------------------------------------------------------------- client

/// Reconciles `store` with `peer`: as many sessions as it takes while each
/// fetches its limit and makes progress (at most [`MAX_SESSIONS`]).
pub(crate) async fn sync(inner: &Arc<Inner>, peer: AuthorId, store: StoreId) -> Result<SyncStats> {
    let mut total = SyncStats::default();
    for _ in 0..MAX_SESSIONS {
        let (s, more) = session(inner, peer, store).await?;
        let moved = s.received + s.sent;
        total.absorb(s);
        if !more || moved == 0 {
            break;
        }
    }
    Ok(total)
}

/// One session. Returns its figures and whether either side had more
/// differences than one session moves.
async fn session(inner: &Arc<Inner>, peer: AuthorId, store: StoreId) -> Result<(SyncStats, bool)> {
    let started = Instant::now();
    let k = Arc::clone(&inner.kernel);
    let (mut neg, first) = blocking(move || start(storage(&k, &store)?)).await??;
    let digests = our_digests(inner, store).await?;
    let (mut send, mut recv) = open(inner, &peer).await?;
    let req = pb::Request {
        kind: Some(pb::request::Kind::Reconcile(pb::ReconcileRequest {
            store_id: store.0.to_vec(),
            message: first,
            digests: digests_pb(digests),
        })),
    };
    let io = inner.config.io_timeout;
    let mut bytes = frame::write(&mut send, &req, io, "reconcile request").await? as u64;
    let (hello, n) = read(inner, &mut recv, "reconcile hello").await?;
    bytes += n;
    let RF::Hello(hello) = hello else {
        return Err(NetError::Protocol(format!(
            "expected a reconcile hello, got {hello:?}"
        )));
    };
    let split = diverged(digests, hello.digests.as_ref());
    let (mut have, mut need) = (Vec::new(), Vec::new());
    let mut msg = hello.message;
    let mut rounds = 1u32;
    loop {
        let (n, next, h, nd) = blocking(move || {
            let (mut h, mut nd) = (Vec::new(), Vec::new());
            let r = neg.reconcile_with_ids(&msg, &mut h, &mut nd);
            (neg, r, h, nd)
        })
        .await?;
        neg = n;
        have.extend(h);
        need.extend(nd);
        let Some(next) = next.map_err(|e| neg_err("reply", e))? else {
            break;
        };
        if rounds >= MAX_ROUNDS {
            return Err(NetError::Protocol(format!(
                "reconciliation did not finish in {MAX_ROUNDS} rounds"
            )));
        }
        bytes += write(inner, &mut send, RF::Message(next), "reconcile message").await?;
        let (reply, n) = read(inner, &mut recv, "reconcile message").await?;
        bytes += n;
        let RF::Message(reply) = reply else {
            return Err(NetError::Protocol(format!(
                "expected a reconcile message, got {reply:?}"
            )));
        };
        msg = reply;
        rounds += 1;
    }
    drop(neg);
    let more = need.len() > MAX_FETCH || have.len() > MAX_FETCH;
    need.truncate(MAX_FETCH);
    have.truncate(MAX_FETCH);
    for chunk in need.chunks(FETCH_FRAME) {
        let ids = chunk.iter().map(|i| i.to_vec()).collect();
        bytes += write(inner, &mut send, RF::Fetch(pb::StoreIds { ids }), "fetch").await?;
    }
    bytes += write(inner, &mut send, RF::FetchEnd(true), "fetch end").await?;
    let fetched = !need.is_empty();
    let plan = plan_for(inner, store, entry_ids(have)).await?;
    let mut stats = exchange(inner, &mut send, &mut recv, store, plan).await?;
    inner.touch(&peer);
    if split {
        warn_diverged(store, peer);
    }
    stats.bytes += bytes;
    // The fetch is one more turn; entries we push ride along with it.
    stats.round_trips = rounds + u32::from(fetched);
    stats.duration = started.elapsed();
    stats.diverged = split;
    Ok((stats, more))
}

// ----------------------------------------------------------------- server

pub(crate) async fn serve(
    inner: &Arc<Inner>,
    peer: AuthorId,
    mut send: SendStream,
    mut recv: RecvStream,
    req: pb::ReconcileRequest,
) -> Result<()> {
    let store = match admit(inner, &req.store_id, peer, "reconcile")? {
        Ok(store) => store,
        Err(why) => {
            write(inner, &mut send, RF::Error(why), "refusal").await?;
            let _ = send.finish();
            return Ok(());
        }
    };
    let slot = inner
        .reconcile_slots
        .acquire()
        .await
        .map_err(|_| NetError::Shutdown)?;
    let k = Arc::clone(&inner.kernel);
    let first = req.message;
    let (neg, reply) = blocking(move || -> Result<(Session, Vec<u8>)> {
        let mut n = Negentropy::owned(storage(&k, &store)?, MESSAGE_LIMIT)
            .map_err(|e| neg_err("setup", e))?;
        let r = n.reconcile(&first).map_err(|e| neg_err("message", e))?;
        Ok((n, r))
    })
    .await??;
    let digests = our_digests(inner, store).await?;
    if diverged(digests, req.digests.as_ref()) {
        warn_diverged(store, peer);
    }
    let hello = pb::ReconcileHello {
        digests: digests_pb(digests),
        message: reply,
    };
    write(inner, &mut send, RF::Hello(hello), "reconcile hello").await?;
    // The slot and the set are held only for the message rounds, and
    // those must end within MESSAGE_PHASE: a peer that drips messages
    // cannot keep a slot for long.
    let wanted = tokio::time::timeout(MESSAGE_PHASE, respond(inner, &mut send, &mut recv, neg))
        .await
        .map_err(|_| NetError::Timeout {
            what: "the reconciliation rounds",
            ms: MESSAGE_PHASE.as_millis() as u64,
        })??;
    drop(slot);
    let plan = plan_for(inner, store, wanted).await?;
    answer(inner, &mut send, &mut recv, store, plan).await?;
    inner.touch(&peer);
    Ok(())
}

/// The server's message rounds after its hello, then the client's fetch
/// list. Consumes the session, so its set is freed when they end.
async fn respond(
    inner: &Arc<Inner>,
    send: &mut SendStream,
    recv: &mut RecvStream,
    mut neg: Session,
) -> Result<Vec<EntryId>> {
    let mut rounds = 1u32;
    let mut wanted: Vec<EntryId> = Vec::new();
    loop {
        let (f, _) = read(inner, recv, "reconcile frame").await?;
        match f {
            RF::Message(m) if wanted.is_empty() => {
                rounds += 1;
                if rounds > MAX_ROUNDS {
                    return Err(NetError::Protocol(format!(
                        "reconciliation went past {MAX_ROUNDS} rounds"
                    )));
                }
                let (n, r) = blocking(move || {
                    let r = neg.reconcile(&m);
                    (neg, r)
                })
                .await?;
                neg = n;
                let reply = r.map_err(|e| neg_err("message", e))?;
                write(inner, send, RF::Message(reply), "reconcile message").await?;
            }
            RF::Fetch(ids) => {
                if wanted.len() + ids.ids.len() > MAX_FETCH {
                    return Err(NetError::Protocol(format!(
                        "fetch of more than {MAX_FETCH} ids in one session"
                    )));
                }
                wanted.extend(ids_of(&ids.ids)?);
            }
            RF::FetchEnd(_) => return Ok(wanted),
            other => {
                return Err(NetError::Protocol(format!(
                    "unexpected reconcile frame {other:?}"
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The reconciliation as the sessions run it (same limits, same
    //! storage), both sides in memory: random sets with random differences
    //! must yield exactly the set differences, within the round limit.

    use std::collections::BTreeSet;

    use proptest::prelude::*;

    use super::*;

    fn set(items: &BTreeSet<(u64, [u8; 32])>) -> NegentropyStorageVector {
        let mut s = NegentropyStorageVector::new();
        for (t, id) in items {
            s.insert(*t, Id::from_byte_array(*id)).unwrap();
        }
        s.seal().unwrap();
        s
    }

    /// Runs a whole reconciliation; returns (have, need, rounds, bytes).
    fn run(
        client: &BTreeSet<(u64, [u8; 32])>,
        server: &BTreeSet<(u64, [u8; 32])>,
    ) -> (BTreeSet<[u8; 32]>, BTreeSet<[u8; 32]>, u32, usize) {
        let (mut c, mut msg) = start(set(client)).unwrap();
        let mut s = Negentropy::owned(set(server), MESSAGE_LIMIT).unwrap();
        let (mut have, mut need) = (Vec::new(), Vec::new());
        let (mut rounds, mut bytes) = (0u32, 0usize);
        loop {
            rounds += 1;
            assert!(rounds <= MAX_ROUNDS, "more than {MAX_ROUNDS} rounds");
            bytes += msg.len();
            let reply = s.reconcile(&msg).unwrap();
            bytes += reply.len();
            match c.reconcile_with_ids(&reply, &mut have, &mut need).unwrap() {
                Some(next) => msg = next,
                None => break,
            }
        }
        let ids = |v: Vec<Id>| v.into_iter().map(|i| i.to_bytes()).collect();
        (ids(have), ids(need), rounds, bytes)
    }

    fn item() -> impl Strategy<Value = (u64, [u8; 32])> {
        // Few distinct timestamps, so many items tie on HLC and the id
        // breaks the order.
        (0u64..64, any::<[u8; 32]>())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn finds_exactly_the_difference(
            common in prop::collection::btree_set(item(), 0..3000),
            only_client in prop::collection::btree_set(item(), 0..60),
            only_server in prop::collection::btree_set(item(), 0..60),
        ) {
            let only_client: BTreeSet<_> = only_client.difference(&common).copied().collect();
            let only_server: BTreeSet<_> = only_server
                .difference(&common)
                .filter(|x| !only_client.contains(x))
                .copied()
                .collect();
            let client: BTreeSet<_> = common.union(&only_client).copied().collect();
            let server: BTreeSet<_> = common.union(&only_server).copied().collect();
            let (have, need, _, _) = run(&client, &server);
            let want_have: BTreeSet<_> = only_client.iter().map(|x| x.1).collect();
            let want_need: BTreeSet<_> = only_server.iter().map(|x| x.1).collect();
            prop_assert_eq!(have, want_have);
            prop_assert_eq!(need, want_need);
        }
    }

    /// Random sets of `n` with 10 differences each way: exact, and the
    /// round trips the opening was chosen for.
    fn big(n: u64, rounds: u32) {
        let id = |i: u64| *blake3::hash(&i.to_le_bytes()).as_bytes();
        let common: BTreeSet<_> = (0..n).map(|i| (i / 4, id(i))).collect();
        let mut client = common.clone();
        let mut server = common;
        let (mut want_have, mut want_need) = (BTreeSet::new(), BTreeSet::new());
        for k in 0..10u64 {
            let (a, b) = (id(n + 2 * k), id(n + 2 * k + 1));
            client.insert((k * n / 40, a));
            server.insert((k * n / 40 + n / 80, b));
            want_have.insert(a);
            want_need.insert(b);
        }
        let (have, need, got, bytes) = run(&client, &server);
        assert_eq!((have, need), (want_have, want_need));
        assert_eq!(got, rounds, "{n} entries: round trips ({bytes} bytes)");
    }

    #[test]
    fn a_deep_opening_saves_a_round_where_the_client_would_list_ids() {
        // 200k: 12.5k, 781, 48, 3 — four levels, so the client would list
        // ids and the server answer with its own: opened one level deeper.
        assert_eq!(split_levels(200_000), 4);
        big(200_000, 2);
        // 20k: 1250, 78, 4 — three levels: the plain opening is as good.
        assert_eq!(split_levels(20_000), 3);
        big(20_000, 2);
    }

    #[test]
    fn equal_sets_finish_in_one_round() {
        // A plain opening (16 ranges), then a deep one (256 ranges).
        for (n, most) in [(500u64, 1024), (5000, 12 * 1024)] {
            let items: BTreeSet<_> = (0..n)
                .map(|i| (i / 3, *blake3::hash(&i.to_le_bytes()).as_bytes()))
                .collect();
            let (have, need, rounds, bytes) = run(&items, &items);
            assert!(have.is_empty() && need.is_empty());
            assert_eq!(rounds, 1);
            assert!(bytes < most, "{bytes} bytes to learn {n} entries are equal");
        }
    }
}
