//! Store upgrades (`store upgrade`): a root op by the store's creator, then
//! a marker in the store's own log where every replica switches plugin and
//! migrates; entries concurrent with the marker stay in the old epoch
//! whatever order they arrive in. Real nodes, real plugins (the counter at
//! state versions 1 and 2), entries carried by hand in chosen orders.

mod support;

use lattice_host::artifacts::{COUNTER, COUNTER2, EVIL};
use lattice_host::node::epochs::marker_payload;
use lattice_host::node::{Node, StoreHandle, StoreType};
use lattice_kernel::{Outcome, SignedEntry, StoreId};
use prost_reflect::{DynamicMessage, Value};
use support::*;

fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn hash_hex(wasm: &[u8]) -> String {
    blake3::hash(wasm).to_hex().to_string()
}

fn handle(n: &Node, store: &StoreId) -> StoreHandle {
    n.registry().get(store).expect("store runs")
}

fn increment(n: &Node, store: &StoreId, by: u64) -> SignedEntry {
    let h = handle(n, store);
    let req = request(&h, "Increment", &[("by", Value::U64(by))]);
    n.call(&h, "Increment", &req)
        .expect("increment")
        .entry
        .expect("a command")
}

/// The counter's value through whatever plugin the store runs now.
fn value(n: &Node, store: &StoreId) -> i64 {
    let h = handle(n, store);
    let out = n
        .call(&h, "Value", &request(&h, "Value", &[]))
        .expect("value");
    let m = &h.plugin.info().method("Value").expect("Value").output;
    let reply = DynamicMessage::decode(m.clone(), out.reply.as_slice()).expect("reply");
    reply
        .get_field_by_name("value")
        .expect("value")
        .as_i64()
        .expect("i64")
}

/// A founder and `n` members sharing a counter store (v1) with a few
/// increments everyone has.
fn counter_mesh(n: usize) -> (TestNode, Vec<TestNode>, StoreId) {
    let (f, others, _) = mesh(n);
    let h = f
        .store_create(Some("votes"), StoreType::Wasm(&wasm(COUNTER)))
        .expect("create");
    increment(&f, &h.id, 2);
    increment(&f, &h.id, 3);
    for m in &others {
        m.data_dir()
            .put_blob(blake3::hash(&wasm(COUNTER)).as_bytes(), &wasm(COUNTER))
            .expect("blob");
        carry(&f, m);
    }
    (f, others, h.id)
}

/// The upgrade's root op and marker, last two entries `f` logged for it.
fn upgrade_entries(f: &Node, root: &StoreId, store: &StoreId) -> (SignedEntry, SignedEntry) {
    let u = f.kernel().log(root, 0, usize::MAX).unwrap().pop().unwrap();
    let m = f.kernel().log(store, 0, usize::MAX).unwrap().pop().unwrap();
    assert!(m.payload.ends_with(&u.id.0), "the marker names the root op");
    (u, m)
}

#[test]
fn upgrade_migrates_and_switches_at_the_marker_in_one_transaction() {
    let (f, mut others, store) = counter_mesh(1);
    let a = others.pop().unwrap();
    let root = handle(&f, &store).mesh;
    let r = f
        .store_upgrade("votes", StoreType::Wasm(&wasm(COUNTER2)))
        .expect("upgrade");
    assert_eq!((r.from_version, r.to_version), (1, 2));
    assert_eq!(
        (r.from.as_str(), r.to.as_str()),
        (
            hash_hex(&wasm(COUNTER)).as_str(),
            hash_hex(&wasm(COUNTER2)).as_str()
        )
    );
    assert_eq!(r.rows, 2, "p moved to total/p: one write, one delete");
    assert_eq!(
        value(&f, &store),
        5,
        "the new plugin reads the migrated state"
    );
    let h = handle(&f, &store);
    assert_eq!(h.pinned_kind(), r.to);
    assert_eq!(h.pin.as_ref().map(|p| p.epoch.number), Some(1));

    // Another replica: the root op alone changes nothing (old plugin, old
    // state); the marker's commit migrates and re-pins together.
    let (u, m) = upgrade_entries(&f, &root, &store);
    a.data_dir()
        .put_blob(blake3::hash(&wasm(COUNTER2)).as_bytes(), &wasm(COUNTER2))
        .unwrap();
    assert_eq!(submit(&a, &u), Outcome::Committed);
    assert!(handle(&a, &store).pin.is_none());
    assert_eq!(value(&a, &store), 5);
    let before = digests(&a, &store).1;
    assert_eq!(submit(&a, &m), Outcome::Committed);
    assert_eq!(handle(&a, &store).pinned_kind(), r.to);
    assert_ne!(digests(&a, &store).1, before, "state rewritten by migrate");
    assert_eq!(value(&a, &store), 5);
    assert_eq!(digests(&a, &store), digests(&f, &store));
    // New ops run through the new plugin on both.
    increment(&a, &store, 10);
    carry(&a, &f);
    assert_eq!((value(&f, &store), value(&a, &store)), (15, 15));
    assert_eq!(digests(&a, &store), digests(&f, &store));

    // Refusals write nothing: the same plugin again, and a plugin that
    // cannot read the store's state version (v1 reads only version 1).
    let logged = |n: &Node| n.kernel().status(&root).unwrap().entries;
    let before = (logged(&f), digests(&f, &store));
    match f.store_upgrade("votes", StoreType::Wasm(&wasm(COUNTER2))) {
        Err(e) => assert!(e.to_string().contains("already runs plugin"), "{e}"),
        Ok(r) => panic!("{r:?}"),
    }
    match f.store_upgrade("votes", StoreType::Wasm(&wasm(COUNTER))) {
        Err(e) => assert!(
            e.to_string()
                .contains("cannot migrate store `votes` from state version 2"),
            "{e}"
        ),
        Ok(r) => panic!("{r:?}"),
    }
    assert_eq!((logged(&f), digests(&f, &store)), before);
}

/// The core case: a member writes while it has not seen the upgrade. Its
/// entry is in the old epoch on every replica (applied by the old plugin
/// before the migration), whether it arrives before the marker or after
/// it (then the store is rebuilt from its log).
#[test]
fn a_write_concurrent_with_the_upgrade_converges_in_every_order() {
    let (f, mut others, store) = counter_mesh(3);
    let (c, b, a) = (
        others.pop().unwrap(),
        others.pop().unwrap(),
        others.pop().unwrap(),
    );
    let root = handle(&f, &store).mesh;
    let x = increment(&a, &store, 100); // a has not seen the upgrade
    f.store_upgrade("votes", StoreType::Wasm(&wasm(COUNTER2)))
        .expect("upgrade");
    let (u, m) = upgrade_entries(&f, &root, &store);
    let y = increment(&f, &store, 7); // epoch 1, by the new plugin
    for n in [&a, &b, &c] {
        n.data_dir()
            .put_blob(blake3::hash(&wasm(COUNTER2)).as_bytes(), &wasm(COUNTER2))
            .unwrap();
    }
    // b: the old-epoch write first; c: last, after the switch; f: late too.
    for e in [&x, &u, &m, &y] {
        assert_eq!(submit(&b, e), Outcome::Committed);
    }
    for e in [&u, &m, &y, &x] {
        assert_eq!(submit(&c, e), Outcome::Committed);
    }
    assert_eq!(submit(&f, &x), Outcome::Committed);
    for e in [&u, &m, &y] {
        assert_eq!(submit(&a, e), Outcome::Committed);
    }
    let want = digests(&b, &store);
    for n in [&f, &a, &c] {
        assert_eq!(digests(n, &store), want);
        assert_eq!(value(n, &store), 112);
    }
    // A later write on a node that rebuilt runs under the new plugin.
    increment(&c, &store, 1);
    for n in [&f, &a, &b] {
        carry(&c, n);
    }
    for n in [&f, &a, &b] {
        assert_eq!(digests(n, &store), digests(&c, &store));
        assert_eq!(value(n, &store), 113);
    }
}

/// Only the creator may upgrade: a member's root op is refused on every
/// replica, and a marker it forges naming the creator's real upgrade is
/// refused too (it never reaches the plugin or switches anything).
#[test]
fn a_member_cannot_upgrade_someone_elses_store() {
    let (f, mut others, store) = counter_mesh(1);
    let a = others.pop().unwrap();
    let root = handle(&f, &store).mesh;
    let uuid = store.to_uuid();
    let spec = format!(
        "{} {} 2 1 2",
        hash_hex(&wasm(COUNTER)),
        hash_hex(&wasm(COUNTER2))
    );
    let mallory = Forger {
        id: a.kernel().identity(),
    };
    let op = mallory.root_op(
        &a,
        root,
        &[(&format!("/stores/{uuid}/upgrade"), spec.as_bytes())],
    );
    for n in [&f, &a] {
        match submit(n, &op) {
            Outcome::Rejected(e) => assert!(e.to_string().contains("only its creator"), "{e}"),
            o => panic!("{o:?}"),
        }
    }
    // The real upgrade, then a marker by the member naming it.
    f.store_upgrade("votes", StoreType::Wasm(&wasm(COUNTER2)))
        .expect("upgrade");
    let (u, _) = upgrade_entries(&f, &root, &store);
    a.data_dir()
        .put_blob(blake3::hash(&wasm(COUNTER2)).as_bytes(), &wasm(COUNTER2))
        .unwrap();
    assert_eq!(submit(&a, &u), Outcome::Committed);
    let forged = mallory.next(&a, store, marker_payload(&u.id));
    match submit(&a, &forged) {
        Outcome::Rejected(e) => assert!(e.to_string().contains("another author"), "{e}"),
        o => panic!("{o:?}"),
    }
    assert!(handle(&a, &store).pin.is_none(), "nothing switched");
    assert_eq!(value(&a, &store), 5);
}

/// The creator's modified client names a blob nobody has: its marker is
/// refused everywhere (kept out of the log, as for a store whose blob is
/// missing), so the store keeps running its plugin and members keep
/// writing and agreeing.
#[test]
fn an_upgrade_to_a_missing_blob_leaves_the_store_running() {
    let (f, mut others, store) = counter_mesh(1);
    let a = others.pop().unwrap();
    let root = handle(&f, &store).mesh;
    let creator = Forger {
        id: f.kernel().identity(),
    };
    let decl = declaration(&f, &store);
    let spec = format!("{} {} 2 1 2", hash_hex(&wasm(COUNTER)), "ab".repeat(32));
    let u = upgrade_op(&creator, &f, root, &decl, &store, &spec);
    assert_eq!(submit(&f, &u), Outcome::Committed);
    assert_eq!(submit(&a, &u), Outcome::Committed);
    let m = creator.next(&f, store, marker_payload(&u.id));
    for n in [&f, &a] {
        match submit(n, &m) {
            Outcome::Rejected(e) => assert!(e.to_string().contains("cannot run here yet"), "{e}"),
            o => panic!("{o:?}"),
        }
    }
    increment(&a, &store, 1);
    carry(&a, &f);
    assert_eq!((value(&f, &store), value(&a, &store)), (6, 6));
    assert_eq!(digests(&f, &store), digests(&a, &store));
}

/// The creator's modified client skips the dry run and upgrades to a
/// plugin whose `migrate` spins until out of fuel: every replica runs the
/// same migration on the same state under the same budget, fails the same
/// way, and halts the store visibly with the same digests.
#[test]
fn an_upgrade_whose_migrate_traps_halts_every_replica_alike() {
    let (f, mut others, store) = counter_mesh(1);
    let a = others.pop().unwrap();
    let root = handle(&f, &store).mesh;
    let evil = wasm(EVIL);
    for n in [&f, &a] {
        n.data_dir()
            .put_blob(blake3::hash(&evil).as_bytes(), &evil)
            .unwrap();
    }
    let evil_version = f
        .registry()
        .runtime()
        .load(&evil)
        .unwrap()
        .info()
        .state_version;
    let creator = Forger {
        id: f.kernel().identity(),
    };
    let decl = declaration(&f, &store);
    // evil's migrate(1002) loops until out of fuel (profile 1: v1's budget, fast).
    let spec = format!(
        "{} {} 1 1002 {evil_version}",
        hash_hex(&wasm(COUNTER)),
        hash_hex(&evil)
    );
    let u = upgrade_op(&creator, &f, root, &decl, &store, &spec);
    for n in [&f, &a] {
        assert_eq!(submit(n, &u), Outcome::Committed);
    }
    let m = creator.next(&f, store, marker_payload(&u.id));
    for n in [&f, &a] {
        assert_eq!(submit(n, &m), Outcome::Committed);
        let s = n.store_status(&handle(n, &store)).unwrap();
        let halted = s.halted.expect("halted");
        assert!(
            halted.contains("cannot migrate from state version 1002"),
            "{halted}"
        );
    }
    assert_eq!(digests(&f, &store), digests(&a, &store));
}

/// A forged upgrade root op: the declaration as proof, then `spec` under
/// `/stores/{uuid}/upgrade`.
fn upgrade_op(
    creator: &Forger,
    on: &Node,
    root: StoreId,
    decl: &[(String, Vec<u8>)],
    store: &StoreId,
    spec: &str,
) -> SignedEntry {
    let key = format!("/stores/{}/upgrade", store.to_uuid());
    let mut puts: Vec<(&str, &[u8])> = decl
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_slice()))
        .collect();
    puts.push((&key, spec.as_bytes()));
    creator.root_op(on, root, &puts)
}

/// The creator's declaration writes (its proof of ownership in a root op),
/// read back from the root entry that declared the store.
fn declaration(n: &Node, store: &StoreId) -> Vec<(String, Vec<u8>)> {
    use prost::Message as _;
    let root = handle(n, store).mesh;
    let prefix = format!("/stores/{}/", store.to_uuid());
    let fields = ["creator", "type", "profile", "nonce", "created_at"];
    for e in n.kernel().log(&root, 0, usize::MAX).unwrap() {
        let op = lattice_host::node::root::KvOp::decode(e.payload.as_slice()).unwrap();
        let decl: Vec<(String, Vec<u8>)> = op
            .writes
            .into_iter()
            .filter(|w| {
                w.key
                    .strip_prefix(&prefix)
                    .is_some_and(|f| fields.contains(&f))
            })
            .map(|w| (w.key, w.value))
            .collect();
        if decl.len() == fields.len() {
            return decl;
        }
    }
    panic!("no declaration of {store:?}")
}
