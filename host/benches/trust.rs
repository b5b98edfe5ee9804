//! Authorization cost: how long deciding "may this author write/read this
//! store" takes with 1,000 members (a B-tree lookup in the host's trust
//! tables, not a plugin query). Release: `cargo bench -p lattice-host --bench trust`.

use criterion::{Criterion, criterion_group, criterion_main};
use lattice_host::node::{Node, StoreType};
use lattice_kernel::Identity;

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    let mesh = node.mesh_create(Some("bench")).unwrap();
    let store = node
        .store_create(Some("room"), StoreType::Builtin("chat"))
        .unwrap()
        .id;
    let members: Vec<_> = (0..1000).map(|_| Identity::generate().author()).collect();
    for chunk in members.chunks(250) {
        let puts = chunk
            .iter()
            .map(|m| (format!("/nodes/{}/status", m.to_hex()), b"active".to_vec()))
            .collect();
        node.root_batch(&mesh.root, puts).unwrap();
    }
    let stranger = Identity::generate().author();
    let mut i = 0;
    c.bench_function("may_access member of 1000 (snapshot + lookups)", |b| {
        b.iter(|| {
            i = (i + 1) % members.len();
            assert!(node.registry().may_access(&store, &members[i]));
        })
    });
    c.bench_function("may_access stranger, 1000 members", |b| {
        b.iter(|| assert!(!node.registry().may_access(&store, &stranger)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
