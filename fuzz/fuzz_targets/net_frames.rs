//! What a peer sends on the network, through the functions the protocol
//! paths call on it.
//!
//! The first byte picks the channel:
//! - **sync stream**: the rest is the byte stream of one QUIC stream. The
//!   real frame reader (`read`: length header, limit before allocation,
//!   truncation) cuts it into a `Request` and then the frames of the
//!   exchange it opens (`SyncFrame`, `ReconcileFrame` or `DigestsFrame`).
//!   Each frame goes through the decoders the server applies to it: the
//!   peer's version vector (`PeerState::from_pb`), the store check on
//!   every entry of a batch, the ids of a fetch, and the negentropy
//!   responder on a reconciliation message (over a fixed 200-entry set).
//! - **gossip**: the rest is one topic message, checked by `decode::gossip`.
//!
//! Properties: never panics; a frame the reader accepts is at most the
//! limit and re-encodes to a frame it reads back equal; the verdict of the
//! version-vector decoder is exactly the field-length rule; a gossip
//! message that passes has an entry that passes the store check, and
//! re-encoding an accepted announcement parses to the same verdict.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use lattice_fuzz::seed;
use lattice_kernel::{Draft, EntryId, Identity, SetDigest, SignedEntry, StoreId};
use lattice_net::decode::{self, Inbound, PeerState};
use lattice_net::pb;
use libfuzzer_sys::fuzz_target;
use negentropy::{Id, Negentropy, NegentropyStorageVector};
use prost::Message;

const STORE: StoreId = StoreId([7; 16]);
/// Small, so the reader's limit is reached by inputs of fuzzable size.
const MAX: usize = 64 << 10;
const IO: Duration = Duration::from_secs(10);

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
    })
}

/// The server's side of a reconciliation: 200 (hlc, id) items.
fn set() -> &'static NegentropyStorageVector {
    static SET: OnceLock<NegentropyStorageVector> = OnceLock::new();
    SET.get_or_init(|| {
        let mut s = NegentropyStorageVector::new();
        for i in 0u64..200 {
            let id = *blake3::hash(&i.to_le_bytes()).as_bytes();
            s.insert(1_000 + i * 7, Id::from_byte_array(id)).unwrap();
        }
        s.seal().unwrap();
        s
    })
}

/// Reads one frame through the product's reader and checks it round-trips.
async fn frame<M: Message + Default + PartialEq>(r: &mut &[u8]) -> Option<M> {
    let (m, n) = decode::read::<M>(r, MAX, IO, "frame").await.ok()?;
    assert!(n <= MAX + 4);
    let body = m.encode_to_vec();
    let mut wire = (body.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(&body);
    let (again, _) = decode::read::<M>(&mut wire.as_slice(), MAX, IO, "again")
        .await
        .expect("a re-encoded frame reads back");
    assert!(again == m, "a frame round-trips");
    Some(m)
}

fn vector(tips: &[pb::Tip], forks: &[pb::ForkSummary], wants: &[Vec<u8>]) {
    let ok = tips
        .iter()
        .all(|t| t.author.len() == 32 && matches!(t.id.len(), 0 | 32))
        && forks.iter().all(|f| f.author.len() == 32)
        && wants.iter().take(1024).all(|w| w.len() == 32);
    match PeerState::from_pb(tips, forks, wants) {
        Ok(s) => {
            assert!(ok, "a malformed vector was taken");
            assert!(s.wants.len() <= 1024);
            assert!(s.tips.len() <= tips.len() && s.forks.len() <= forks.len());
        }
        Err(_) => assert!(!ok, "a well-formed vector was refused"),
    }
}

async fn sync_stream(mut r: &[u8]) {
    let Some(req) = frame::<pb::Request>(&mut r).await else {
        return;
    };
    use pb::request::Kind;
    match req.kind {
        Some(Kind::Sync(s)) => {
            vector(&s.tips, &s.forks, &s.wants);
            while let Some(f) = frame::<pb::SyncFrame>(&mut r).await {
                use pb::sync_frame::Kind as SF;
                match f.kind {
                    Some(SF::Batch(b)) => {
                        for w in &b.entries {
                            let _ = decode::check_store(w, &STORE);
                        }
                    }
                    Some(SF::Hello(h)) => vector(&h.tips, &h.forks, &h.wants),
                    _ => {}
                }
            }
        }
        Some(Kind::Reconcile(q)) => {
            let mut neg = Negentropy::borrowed(set(), 256 * 1024).unwrap();
            let mut message = Some(q.message);
            while let Some(m) = message.take() {
                let _ = neg.reconcile(&m);
                use pb::reconcile_frame::Kind as RF;
                match frame::<pb::ReconcileFrame>(&mut r)
                    .await
                    .and_then(|f| f.kind)
                {
                    Some(RF::Message(m)) => message = Some(m),
                    Some(RF::Fetch(ids)) => {
                        let ok = ids.ids.iter().all(|i| i.len() == 32);
                        assert_eq!(decode::ids_of(&ids.ids).is_ok(), ok);
                    }
                    _ => {}
                }
            }
        }
        Some(Kind::Digests(_)) => while frame::<pb::DigestsFrame>(&mut r).await.is_some() {},
        _ => {}
    }
}

fn gossip(content: &[u8]) {
    match decode::gossip(content, &STORE) {
        Ok(Inbound::Announce { id, entry }) => {
            if let Some(w) = &entry {
                decode::check_store(w, &STORE).expect("an accepted entry names the store");
            }
            let again = pb::Gossip {
                kind: Some(pb::gossip::Kind::Announce(pb::Announce {
                    store_id: STORE.0.to_vec(),
                    entry_id: id.0.to_vec(),
                    entry: entry.clone().unwrap_or_default(),
                    ..Default::default()
                })),
            };
            assert_eq!(
                decode::gossip(&again.encode_to_vec(), &STORE),
                Ok(Inbound::Announce { id, entry }),
            );
        }
        Ok(Inbound::Presence(b)) => assert_eq!(b.author.0.len(), 32),
        Err(_) => {}
    }
}

fn seeds() -> Vec<Vec<u8>> {
    let me = Identity::from_secret_bytes([1; 32]);
    let entry = |seq, prev| {
        SignedEntry::sign(
            &me,
            Draft {
                store: STORE,
                seq,
                prev,
                hlc: 5 << 16,
                deps: vec![],
                payload: b"op".to_vec(),
            },
        )
    };
    let first = entry(1, EntryId::ZERO);
    let second = entry(2, first.id);
    let frames = |msgs: Vec<Vec<u8>>| -> Vec<u8> {
        let mut out = vec![0u8];
        for m in msgs {
            out.extend_from_slice(&(m.len() as u32).to_be_bytes());
            out.extend_from_slice(&m);
        }
        out
    };
    let tip = pb::Tip {
        author: me.author().0.to_vec(),
        seq: 1,
        id: first.id.0.to_vec(),
    };
    let sync = pb::Request {
        kind: Some(pb::request::Kind::Sync(pb::SyncRequest {
            store_id: STORE.0.to_vec(),
            tips: vec![tip.clone()],
            forks: vec![pb::ForkSummary {
                author: me.author().0.to_vec(),
                seq: 2,
            }],
            wants: vec![second.id.0.to_vec()],
            ..Default::default()
        })),
    };
    let batch = pb::SyncFrame {
        kind: Some(pb::sync_frame::Kind::Batch(pb::EntryBatch {
            entries: vec![first.to_wire(), second.to_wire()],
        })),
    };
    let done = pb::SyncFrame {
        kind: Some(pb::sync_frame::Kind::Done(pb::Done { count: 2 })),
    };
    let mut client = NegentropyStorageVector::new();
    for i in 0u64..150 {
        let id = *blake3::hash(&i.to_le_bytes()).as_bytes();
        client
            .insert(1_000 + i * 7, Id::from_byte_array(id))
            .unwrap();
    }
    client.seal().unwrap();
    let opening = Negentropy::borrowed(&client, 256 * 1024)
        .unwrap()
        .initiate()
        .unwrap();
    let reconcile = pb::Request {
        kind: Some(pb::request::Kind::Reconcile(pb::ReconcileRequest {
            store_id: STORE.0.to_vec(),
            message: opening,
            digests: None,
        })),
    };
    use pb::reconcile_frame::Kind as RF;
    let fetch = pb::ReconcileFrame {
        kind: Some(RF::Fetch(pb::StoreIds {
            ids: vec![first.id.0.to_vec()],
        })),
    };
    let end = pb::ReconcileFrame {
        kind: Some(RF::FetchEnd(true)),
    };
    let digests = pb::Request {
        kind: Some(pb::request::Kind::Digests(pb::DigestsRequest {
            combined: vec![1; 32],
        })),
    };
    let stores = pb::DigestsFrame {
        kind: Some(pb::digests_frame::Kind::Stores(pb::StoreDigests {
            stores: vec![pb::StoreDigest {
                store_id: STORE.0.to_vec(),
                log: vec![2; 32],
            }],
        })),
    };
    let announce = |entry: Vec<u8>| {
        let mut out = vec![1u8];
        out.extend(
            pb::Gossip {
                kind: Some(pb::gossip::Kind::Announce(pb::Announce {
                    store_id: STORE.0.to_vec(),
                    entry_id: second.id.0.to_vec(),
                    author: me.author().0.to_vec(),
                    seq: 2,
                    nonce: 42,
                    entry,
                })),
            }
            .encode_to_vec(),
        );
        out
    };
    let mut beacon = vec![1u8];
    beacon.extend(lattice_net::presence::encode_beacon(
        &me,
        &STORE,
        SetDigest([4; 32]),
        2,
        1_764_000_000_000,
    ));
    vec![
        frames(vec![
            sync.encode_to_vec(),
            batch.encode_to_vec(),
            done.encode_to_vec(),
        ]),
        frames(vec![
            reconcile.encode_to_vec(),
            fetch.encode_to_vec(),
            end.encode_to_vec(),
        ]),
        frames(vec![digests.encode_to_vec(), stores.encode_to_vec()]),
        announce(second.to_wire()),
        announce(vec![]),
        beacon,
    ]
}

fuzz_target!(init: seed(seeds), |data: &[u8]| {
    let Some((&channel, rest)) = data.split_first() else {
        return;
    };
    match channel % 2 {
        0 => runtime().block_on(sync_stream(rest)),
        _ => gossip(rest),
    }
});
