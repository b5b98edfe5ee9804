//! Presence over real endpoints on loopback: who is online in a store's
//! room and whether they hold our log, from signed gossip beacons; and the
//! beacon check a relaying member cannot get around.

mod common;

use std::time::Duration;

use common::*;
use lattice_kernel::{Identity, SetDigest, StoreId};
use lattice_net::pb;
use lattice_net::presence::{BeaconError, check_beacon, encode_beacon};
use prost::Message as _;

fn config() -> lattice_net::NetConfig {
    lattice_net::NetConfig {
        presence_interval: Some(Duration::from_millis(200)),
        ..test_config()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_show_online_in_sync_then_offline() {
    let s = StoreId([7; 16]);
    let (a, b, c) = (
        Node::start(config()).await,
        Node::start(config()).await,
        Node::start(config()).await,
    );
    mesh(&[&a, &b, &c], s);
    wait_neighbors(&[&a, &b, &c], s, 1).await;
    a.write(s, 3, 16);
    let ours = || a.kernel.status(&s).unwrap().digest;
    let seen = eventually(Duration::from_secs(10), || {
        let p = a.net.presence(&s);
        p.len() == 2
            && p.iter()
                .all(|m| m.online && m.digest == ours() && m.entries == 3)
    })
    .await;
    assert!(seen.is_some(), "presence on a: {:?}", a.net.presence(&s));

    // c goes away: after three silent periods it is offline, last heard kept.
    let cid = c.id();
    c.net.shutdown().await;
    let gone = eventually(Duration::from_secs(10), || {
        a.net
            .presence(&s)
            .iter()
            .any(|m| m.author == cid && !m.online && m.heard_ms > 0)
    })
    .await;
    assert!(gone.is_some(), "presence on a: {:?}", a.net.presence(&s));
    // A member that is revoked no longer shows at all.
    a.members.revoke(s, &b.id());
    assert!(a.net.presence(&s).iter().all(|m| m.author != b.id()));
}

#[test]
fn a_beacon_speaks_only_for_its_signer_and_its_store() {
    let s = StoreId([1; 16]);
    let (mallory, alice) = (Identity::generate(), Identity::generate());
    let presence = |bytes: Vec<u8>| match pb::Gossip::decode(bytes.as_slice()).unwrap().kind {
        Some(pb::gossip::Kind::Presence(p)) => p,
        other => panic!("not a beacon: {other:?}"),
    };
    let good = presence(encode_beacon(&alice, &s, SetDigest([9; 32]), 4, 1000));
    let b = check_beacon(&good, &s).unwrap();
    assert_eq!(
        (b.author, b.digest, b.entries),
        (alice.author(), SetDigest([9; 32]), 4)
    );

    // Mallory relays a beacon claiming alice is in sync: signed by mallory.
    let mut forged = presence(encode_beacon(&mallory, &s, SetDigest([9; 32]), 4, 1000));
    forged.author = alice.author().0.to_vec();
    assert_eq!(check_beacon(&forged, &s), Err(BeaconError::BadSignature));
    // Alice's real beacon with its digest changed in transit.
    let mut tampered = good.clone();
    tampered.log_digest = vec![0; 32];
    assert_eq!(check_beacon(&tampered, &s), Err(BeaconError::BadSignature));
    // Replayed on another store's topic.
    assert_eq!(
        check_beacon(&good, &StoreId([2; 16])),
        Err(BeaconError::OtherStore)
    );
    let mut short = good;
    short.author.truncate(3);
    assert_eq!(check_beacon(&short, &s), Err(BeaconError::Malformed));
}
