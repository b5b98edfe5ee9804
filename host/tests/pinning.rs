//! Stores are pinned to the hash of their plugin blob, shipped plugins
//! included, and a node holds many stores without running out of anything.

mod support;

use lattice_host::node::{Node, StoreType};
use lattice_host::runtime::builtin;
use lattice_kernel::Outcome;
use support::*;

/// The type recorded for a shipped plugin is its blob hash, not its name.
#[test]
fn shipped_plugins_are_pinned_by_hash() {
    let (f, _, _) = mesh(0);
    let h = f
        .store_create(Some("cfg"), StoreType::Builtin("kv"))
        .unwrap();
    assert_eq!(h.kind, blake3::hash(builtin::KV).to_hex().to_string());
    let blob = f
        .data_dir()
        .get_blob(blake3::hash(builtin::KV).as_bytes())
        .unwrap();
    assert_eq!(
        blob.as_deref(),
        Some(builtin::KV),
        "kept so peers can fetch it"
    );
}

/// Two nodes whose binaries ship different plugins: the store runs the
/// blob it was declared with. Simulated with a blob only the creator has
/// (what a newer or older release's kv is to this binary): the other node
/// refuses the store's entries without keeping them until it has the exact
/// blob, then applies them and reaches the same digest.
#[test]
fn a_node_without_the_pinned_blob_waits_for_it_then_agrees() {
    let (f, mut others, _) = mesh(1);
    let b = others.pop().unwrap();
    let wasm = std::fs::read(env!("LATTICE_PLUGIN_COUNTER_WASM")).unwrap();
    let h = f
        .store_create(Some("votes"), StoreType::Wasm(&wasm))
        .unwrap();
    for _ in 0..3 {
        let req = request(&h, "Increment", &[("by", prost_reflect::Value::U64(2))]);
        f.call(&h, "Increment", &req).unwrap();
    }
    let store_entries = f.kernel().log(&h.id, 0, usize::MAX).unwrap();
    carry(&f, &b);
    assert!(b.registry().get(&h.id).is_none(), "b cannot run it yet");
    match submit(&b, &store_entries[0]) {
        Outcome::Rejected(lattice_kernel::ValidationError::Refused(m)) => {
            assert!(m.contains("cannot run here yet"), "{m}")
        }
        o => panic!("{o:?}"),
    }
    assert!(b.registry().missing_blobs().contains(&h.plugin.info().hash));
    // What blob fetch does: the exact bytes, verified by hash.
    b.data_dir().put_blob(&h.plugin.info().hash, &wasm).unwrap();
    carry(&f, &b);
    assert_eq!(digests(&f, &h.id), digests(&b, &h.id));
    assert_eq!(digests(&b, &h.id).2, 0);
}

/// Many stores on one node: all open, the first and the last take writes,
/// and a restart opens them all again.
#[test]
fn a_thousand_stores_on_one_node() {
    let t = node();
    t.mesh_create(Some("m")).unwrap();
    let mut ids = Vec::new();
    for i in 0..1000 {
        ids.push(
            t.store_create(Some(&format!("s{i}")), StoreType::Builtin("log"))
                .unwrap()
                .id,
        );
    }
    for name in ["s0", "s999"] {
        let h = t.resolve(name, None).unwrap();
        let req = request(
            &h,
            "Append",
            &[("text", prost_reflect::Value::String("hi".into()))],
        );
        t.call(&h, "Append", &req).unwrap();
    }
    let dir = t.dir;
    drop(t.node);
    let n = Node::open(dir.path()).unwrap();
    assert_eq!(
        n.registry().stores().len(),
        1001,
        "1,000 stores and the root"
    );
    let last = n.resolve("s999", None).unwrap();
    assert_eq!(n.kernel().status(&last.id).unwrap().entries, 1);
}
