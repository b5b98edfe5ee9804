//! Blob fetch and invite redemption between real nodes.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use lattice_kernel::{StoreId, now_ms};
use lattice_net::{Invite, NetError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blob_fetch_verifies_the_hash() {
    init_tracing();
    let a = Node::start(test_config()).await;
    let b = Node::start(test_config()).await;
    let s = StoreId::random();
    mesh(&[&a, &b], s);

    let wasm: Vec<u8> = (0..8 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 24) as u8)
        .collect();
    let h = *blake3::hash(&wasm).as_bytes();
    a.blobs.0.lock().unwrap().insert(h, wasm.clone());
    let got = b.net.fetch_blob(a.id(), h).await.unwrap();
    assert!(got == wasm);

    // Unknown hash.
    let err = b.net.fetch_blob(a.id(), [9; 32]).await.unwrap_err();
    assert!(matches!(err, NetError::BlobUnavailable { .. }), "{err}");

    // A server handing out other bytes under a hash is caught.
    let lie = [7u8; 32];
    a.blobs
        .0
        .lock()
        .unwrap()
        .insert(lie, b"not what you asked for".to_vec());
    let err = b.net.fetch_blob(a.id(), lie).await.unwrap_err();
    assert!(matches!(err, NetError::BlobHashMismatch { .. }), "{err}");

    // A non-member is not served.
    let c = Node::start(test_config()).await;
    c.net.add_peer(a.id(), a.net.addrs());
    let err = c.net.fetch_blob(a.id(), h).await.unwrap_err();
    assert!(
        matches!(&err, NetError::BlobUnavailable { reason, .. } if reason == "not a member"),
        "{err}"
    );
    for n in [a, b, c] {
        n.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invites_ok_reused_expired_forged() {
    init_tracing();
    let mesh_id = StoreId::random();
    let members = Arc::new(Members::default());
    let invites = Arc::new(Invites {
        mesh: mesh_id,
        members: members.clone(),
        table: Mutex::new(HashMap::new()),
        roster: Mutex::new(Vec::new()),
    });
    let a = Node::start_with(test_config(), Some(invites.clone())).await;
    members.allow(mesh_id, &[a.id()]);
    invites.roster.lock().unwrap().push((a.id(), a.net.addrs()));
    a.write(mesh_id, 25, 40);

    let secret = Invite::new_secret();
    let far = now_ms() + 3_600_000;
    invites.table.lock().unwrap().insert(secret, (far, false));
    let invite = a.net.invite(mesh_id, secret, far);
    let text = invite.to_text();
    let parsed: Invite = text.parse().unwrap();
    assert_eq!(parsed, invite);
    assert!(!parsed.addrs.is_empty(), "invites carry dialable addresses");

    // Joiner: knows nothing but the token.
    let j = Node::start(test_config()).await;
    let grant = j.net.join(&parsed).await.unwrap();
    assert_eq!(grant.mesh_id, mesh_id);
    assert_eq!(grant.members[0].0, a.id());
    // The inviter recorded the joiner as a member: the joiner can now sync.
    j.members.allow(mesh_id, &[a.id(), j.id()]);
    let st = j.net.sync_store(a.id(), mesh_id).await.unwrap();
    assert_eq!(st.received, 25);

    // Reused.
    let k = Node::start(test_config()).await;
    let err = k.net.join(&parsed).await.unwrap_err();
    assert!(
        matches!(&err, NetError::JoinRefused(t) if t == "invite already used"),
        "{err}"
    );

    // Expired on the inviter's side (the token's own date is still fine).
    let s2 = Invite::new_secret();
    invites
        .table
        .lock()
        .unwrap()
        .insert(s2, (now_ms() - 1, false));
    let err = k
        .net
        .join(&a.net.invite(mesh_id, s2, far))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NetError::JoinRefused(t) if t == "invite expired"),
        "{err}"
    );
    // Expired per the token: refused locally without dialing.
    let err = k
        .net
        .join(&a.net.invite(mesh_id, s2, now_ms() - 1))
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::InviteExpired { .. }), "{err}");

    // Forged secret.
    let err = k
        .net
        .join(&a.net.invite(mesh_id, [1; 32], far))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, NetError::JoinRefused(t) if t == "unknown invite"),
        "{err}"
    );
    // A rejected joiner did not become a member.
    assert!(!lattice_net::Policy::may_sync(&*members, &mesh_id, &k.id()));
    for n in [a, j, k] {
        n.net.shutdown().await;
    }
}
