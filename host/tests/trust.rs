//! Membership, revocation and root-store rules against hostile members:
//! real nodes (kernel, redb, wasm plugins), entries carried by hand in
//! chosen orders, and forged entries signed as a member with a modified
//! client.

mod support;

use lattice_host::node::{Node, RootRuleError, StoreType};
use lattice_kernel::{Outcome, StoreId, ValidationError};
use redb::ReadableDatabase as _;
use support::*;

fn refused(o: &Outcome, want: &RootRuleError) {
    match o {
        Outcome::Rejected(ValidationError::Refused(msg)) => assert_eq!(msg, &want.to_string()),
        other => panic!("expected refusal `{want}`, got {other:?}"),
    }
}

fn chat_store(n: &Node, name: &str) -> StoreId {
    n.store_create(Some(name), StoreType::Builtin("chat"))
        .expect("create")
        .id
}

/// DESIGN §10.1 and the reproduction: the founder, offline, revokes
/// C without having seen C's post x; B saw x and posted y after it. Once
/// everything has been carried everywhere, F and B hold the same log and the
/// same state: x is void on both, y applies on both, nothing waits.
#[test]
fn offline_revoke_with_late_pre_revoke_entry_converges() {
    let (f, mut others, _) = mesh(2);
    let c = others.pop().unwrap();
    let b = others.pop().unwrap();
    let room = chat_store(&f, "general");
    carry(&f, &b);
    carry(&f, &c);
    let early = post(&c, "general", "before the revoke");
    carry(&c, &f); // F sees C's first post: it stands
    let x = post(&c, "general", "x");
    carry(&c, &b); // only B sees x
    let y = post(&b, "general", "y after x");
    f.revoke(&c.author().to_hex(), None).expect("revoke"); // F has not seen x
    // Carry in both directions, in two different orders.
    carry(&b, &f);
    carry(&f, &b);
    carry(&c, &f);
    for n in [&f.node, &b.node] {
        assert!(n.kernel().contains(&y.id).unwrap(), "y is logged");
        assert!(n.kernel().is_void(&room, &x.id).unwrap(), "x is void");
        assert!(!n.kernel().is_void(&room, &y.id).unwrap(), "y applies");
        assert!(
            !n.kernel().is_void(&room, &early.id).unwrap(),
            "the pre-revoke post stands"
        );
        assert_eq!(n.kernel().orphan_count().unwrap(), 0, "nothing waits");
    }
    assert_eq!(digests(&f, &room), digests(&b, &room));
    // C's posts after the revoke are void wherever they arrive.
    let z = post(&c, "general", "z after revoke");
    carry(&c, &b);
    assert!(b.kernel().is_void(&room, &z.id).unwrap());
    assert_eq!(digests(&f, &room).1, digests(&b, &room).1);
}

/// The same ops delivered to fresh replicas in many orders (revocation
/// first, last, in between; children before parents) give one log digest,
/// one state digest and one void count per store.
#[test]
fn same_ops_any_order_same_digests() {
    let (f, mut others, rec) = mesh(2);
    let c = others.pop().unwrap();
    let b = others.pop().unwrap();
    let room = chat_store(&f, "general");
    carry(&f, &b);
    carry(&f, &c);
    let kv = c
        .store_create(Some("cfg"), StoreType::Builtin("kv"))
        .expect("c creates a store")
        .id;
    carry(&c, &f);
    carry(&c, &b);
    for i in 0..5 {
        post(&c, "general", &format!("c{i}"));
        post(&b, "general", &format!("b{i}"));
        carry(&c, &b);
    }
    f.revoke(&c.author().to_hex(), None).unwrap();
    for i in 0..3 {
        post(&c, "general", &format!("late c{i}"));
    }
    carry(&c, &b);
    post(&b, "general", "b after all");
    let mut all = entries(&f);
    all.extend(entries(&b));
    all.extend(entries(&c));
    let mut seen = std::collections::HashSet::new();
    all.retain(|e| seen.insert(e.id));
    let mut reference: Option<Vec<([u8; 32], [u8; 32], u64)>> = None;
    let mut rng = 0x9e3779b97f4a7c15u64;
    for round in 0..6 {
        let mut order = all.clone();
        match round {
            0 => {}
            1 => order.reverse(),
            _ => {
                for i in (1..order.len()).rev() {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    order.swap(i, (rng % (i as u64 + 1)) as usize);
                }
            }
        }
        let r = node();
        r.remember_mesh(&rec).unwrap();
        // Delivered in chunks, as sync batches would be.
        for chunk in order.chunks(7) {
            deliver(&r, chunk.to_vec());
        }
        deliver(&r, order.clone());
        let got: Vec<_> = [rec.root, room, kv]
            .iter()
            .map(|s| digests(&r, s))
            .collect();
        match &reference {
            None => reference = Some(got),
            Some(want) => assert_eq!(&got, want, "delivery order {round} diverged"),
        }
    }
    let want = reference.unwrap();
    assert!(want[1].2 >= 3, "C's late posts are void");
    deliver(&f, all.clone());
    assert_eq!(
        digests(&f, &room),
        want[1],
        "the founder, who applied them as they came, agrees"
    );
}

/// Root writes by a member through entries built by hand: every one is
/// refused with the rule it breaks, and every node still opens.
#[test]
fn hostile_root_writes_are_refused_and_nodes_still_open() {
    let (f, mut others, rec) = mesh(1);
    let c = others.pop().unwrap();
    let room = chat_store(&f, "general");
    carry(&f, &c);
    let forge = Forger {
        id: c.kernel().identity(),
    };
    let me = c.author().to_hex();
    let f_hex = f.author().to_hex();
    let u = room.to_uuid();
    let big = vec![b'a'; 900 * 1024];
    let cases: Vec<(Vec<(String, Vec<u8>)>, RootRuleError)> = vec![
        (
            vec![(format!("/nodes/{f_hex}/status"), b"revoked".to_vec())],
            RootRuleError::FounderOnly(format!("/nodes/{f_hex}/status")),
        ),
        (
            vec![(format!("/nodes/{me}/status"), b"active".to_vec())],
            RootRuleError::FounderOnly(format!("/nodes/{me}/status")),
        ),
        (
            vec![(format!("/stores/{u}/name"), b"mine".to_vec())],
            RootRuleError::NotCreator(u.clone()),
        ),
        (
            vec![(format!("/stores/{u}/type"), [b'0'; 64].to_vec())],
            RootRuleError::BadValue {
                key: format!("/stores/{u}/creator"),
                why: "a declaration needs creator, type, profile, nonce and created_at",
            },
        ),
        (
            vec![(format!("/stores/{u}/name"), big.clone())],
            RootRuleError::BadValue {
                key: format!("/stores/{u}/name"),
                why: "value too long",
            },
        ),
        (
            vec![(format!("/channels/general"), u.clone().into_bytes())],
            RootRuleError::NotCreator(u.clone()),
        ),
        (
            vec![("/mesh/name".into(), b"taken".to_vec())],
            RootRuleError::FounderOnly("/mesh/name".into()),
        ),
        (
            vec![(format!("/nodes/{f_hex}/name"), b"not you".to_vec())],
            RootRuleError::NotOwner(format!("/nodes/{f_hex}/name")),
        ),
        (
            vec![("/anything".into(), b"x".to_vec())],
            RootRuleError::UnknownKey("/anything".into()),
        ),
        (
            vec![(
                format!("/stores/{}/name", rec.root.to_uuid()),
                b"root".to_vec(),
            )],
            RootRuleError::RootCollision(rec.root.to_uuid()),
        ),
    ];
    for (puts, want) in &cases {
        let puts: Vec<(&str, &[u8])> = puts
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let e = forge.root_op(&f, rec.root, &puts);
        refused(&submit(&f, &e), want);
        refused(&submit(&c, &e), want);
    }
    // A declaration whose id is not derived from its fields (here: another
    // mesh's root id, to cross meshes).
    let other = node();
    let other_mesh = other.mesh_create(Some("other")).unwrap();
    let ou = other_mesh.root.to_uuid();
    let decl: Vec<(String, Vec<u8>)> = vec![
        (format!("/stores/{ou}/creator"), me.clone().into_bytes()),
        (format!("/stores/{ou}/type"), [b'a'; 64].to_vec()),
        (format!("/stores/{ou}/profile"), b"1".to_vec()),
        (format!("/stores/{ou}/nonce"), [b'0'; 32].to_vec()),
        (format!("/stores/{ou}/created_at"), b"1".to_vec()),
    ];
    let puts: Vec<(&str, &[u8])> = decl
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    refused(
        &submit(&f, &forge.root_op(&f, rec.root, &puts)),
        &RootRuleError::BadStoreId(ou),
    );
    // Nothing of that changed the store, and both nodes reopen.
    assert_eq!(f.resolve("general", None).unwrap().id, room);
    for t in [f, c] {
        let dir = t.dir;
        drop(t.node);
        let n = Node::open(dir.path()).expect("node reopens");
        assert_eq!(n.resolve("general", None).unwrap().id, room);
    }
}

/// An entry from an author the root log has not admitted (yet) is refused
/// without being kept, and accepted once the admission arrives.
#[test]
fn stranger_refused_until_admitted() {
    let (f, _, rec) = mesh(0);
    let room = chat_store(&f, "general");
    let d = node();
    d.remember_mesh(&rec).unwrap();
    carry(&f, &d);
    let forge = Forger {
        id: d.kernel().identity(),
    };
    let h = f.resolve("general", None).unwrap();
    let payload = {
        let req = request(
            &h,
            "Post",
            &[("text", prost_reflect::Value::String("hi".into()))],
        );
        let tx = f.kernel().db().begin_read().unwrap();
        let ctx = lattice_host::runtime::Context {
            author: d.author().0.to_vec(),
            hlc: 1,
        };
        h.plugin
            .prepare(&tx, &room.0, &ctx, "Post", &req)
            .unwrap()
            .op
    };
    let e = forge.next(&f, room, payload);
    assert_eq!(
        submit(&f, &e),
        Outcome::Rejected(ValidationError::Unauthorized(d.author()))
    );
    assert!(!f.kernel().contains(&e.id).unwrap());
    f.root_batch(
        &rec.root,
        vec![(
            format!("/nodes/{}/status", d.author().to_hex()),
            b"active".to_vec(),
        )],
    )
    .unwrap();
    assert_eq!(submit(&f, &e), Outcome::Committed);
}

/// Revocation is final: the founder cannot re-admit, nor revoke twice.
#[test]
fn revocation_is_final() {
    let (f, mut others, rec) = mesh(1);
    let c = others.pop().unwrap();
    f.revoke(&c.author().to_hex(), None).unwrap();
    let again = f.root_batch(
        &rec.root,
        vec![(
            format!("/nodes/{}/status", c.author().to_hex()),
            b"active".to_vec(),
        )],
    );
    let err = again.expect_err("re-admission refused").to_string();
    assert!(
        err.contains(&RootRuleError::Revoked(c.author().to_hex()).to_string()),
        "{err}"
    );
}

/// A store deleted by its creator closes on every replica and refuses new
/// entries; a member who did not create it cannot delete it.
#[test]
fn store_delete_closes_everywhere() {
    let (f, mut others, _) = mesh(1);
    let b = others.pop().unwrap();
    let room = chat_store(&f, "general");
    carry(&f, &b);
    let err = b
        .store_delete("general")
        .expect_err("not b's store")
        .to_string();
    assert!(err.contains("founder"), "{err}");
    let late = post(&b, "general", "posted before the delete reached b");
    f.store_delete("general").unwrap();
    carry(&f, &b);
    assert!(b.registry().get(&room).is_none(), "closed on b");
    assert!(f.registry().get(&room).is_none(), "closed on f");
    match submit(&f, &late) {
        Outcome::Rejected(ValidationError::Refused(m)) => assert!(m.contains("deleted"), "{m}"),
        o => panic!("{o:?}"),
    }
}

/// A member leaves: the mesh and its stores stop running on that node and
/// stay gone after a restart; the founder cannot leave its own mesh.
#[test]
fn mesh_leave_stops_the_mesh_here() {
    let (f, mut others, rec) = mesh(1);
    let b = others.pop().unwrap();
    chat_store(&f, "general");
    carry(&f, &b);
    assert!(b.resolve("general", None).is_ok());
    let err = f.mesh_leave("m").expect_err("founder stays").to_string();
    assert!(err.contains("founder"), "{err}");
    b.mesh_leave(&rec.root.to_uuid()).unwrap();
    assert!(b.meshes().is_empty());
    assert!(b.registry().stores().is_empty());
    let dir = b.dir;
    drop(b.node);
    let n = Node::open(dir.path()).unwrap();
    assert!(n.meshes().is_empty(), "still gone after a restart");
}
