//! Helpers for node-level tests: real nodes (kernel, redb, wasm plugins) in
//! temp dirs, entries carried between them by hand (what sync would do,
//! minus the network), and a forger that signs any entry as any identity,
//! so a hostile member's modified client is a few lines of test.
#![allow(dead_code)]

use lattice_host::node::root::{KvOp, Write};
use lattice_host::node::{MeshRecord, Node, StoreHandle};
use lattice_kernel::{
    COUNTER_BITS, Draft, EntryId, Identity, Outcome, SignedEntry, StoreId, now_ms,
};
use prost::Message as _;
use prost_reflect::{DynamicMessage, Value};

pub struct TestNode {
    pub dir: tempfile::TempDir,
    pub node: Node,
}

pub fn node() -> TestNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let node = Node::open(dir.path()).expect("open node");
    TestNode { dir, node }
}

impl std::ops::Deref for TestNode {
    type Target = Node;
    fn deref(&self) -> &Node {
        &self.node
    }
}

/// A founder with a mesh, and `n` other members admitted by it (each knows
/// the mesh record and has the founder's root log).
pub fn mesh(n: usize) -> (TestNode, Vec<TestNode>, MeshRecord) {
    let f = node();
    let rec = f.mesh_create(Some("m")).expect("mesh create");
    let mut others = Vec::new();
    for _ in 0..n {
        let m = node();
        m.remember_mesh(&rec).expect("remember mesh");
        f.root_batch(
            &rec.root,
            vec![(
                format!("/nodes/{}/status", m.author().to_hex()),
                b"active".to_vec(),
            )],
        )
        .expect("admit");
        others.push(m);
    }
    for m in &others {
        carry(&f, m);
    }
    (f, others, rec)
}

/// Every entry of every store `from` runs, in `from`'s commit order.
pub fn entries(from: &Node) -> Vec<SignedEntry> {
    let mut out = Vec::new();
    let mut stores: Vec<StoreId> = from.meshes().iter().map(|m| m.root).collect();
    for m in from.meshes() {
        stores.extend(from.stores_of(&m.root).iter().map(|s| s.id));
    }
    for s in stores {
        out.extend(from.kernel().log(&s, 0, usize::MAX).expect("log"));
    }
    out
}

/// Delivers `entries` to `to` until nothing more commits (as repeated sync
/// rounds would: an entry refused because its author's admission had not
/// arrived yet is offered again).
pub fn deliver(to: &Node, mut pending: Vec<SignedEntry>) {
    loop {
        let wires: Vec<Vec<u8>> = pending.iter().map(|e| e.to_wire()).collect();
        let report = to.kernel().ingest(&wires).expect("ingest");
        let before = pending.len();
        pending = pending
            .into_iter()
            .zip(report.outcomes)
            .filter(|(e, o)| match o {
                Outcome::Committed | Outcome::Duplicate => false,
                Outcome::Waiting { .. } => !report.committed.contains(&e.id),
                Outcome::Rejected(_) => true,
            })
            .map(|(e, _)| e)
            .filter(|e| !to.kernel().contains(&e.id).unwrap_or(false))
            .collect();
        if pending.is_empty() || pending.len() == before {
            return;
        }
    }
}

/// One sync round from `from` to `to` (one direction).
pub fn carry(from: &Node, to: &Node) {
    deliver(to, entries(from));
}

/// A chat post through the store's real `prepare` (the stock client).
pub fn post(n: &Node, store: &str, text: &str) -> SignedEntry {
    let h = n.resolve(store, Some(store)).expect("resolve store");
    let req = request(&h, "Post", &[("text", Value::String(text.into()))]);
    n.call(&h, "Post", &req)
        .expect("post")
        .entry
        .expect("a command")
}

/// Encodes a request message for `method` from field values.
pub fn request(h: &StoreHandle, method: &str, fields: &[(&str, Value)]) -> Vec<u8> {
    let m = h
        .plugin
        .info()
        .method(method)
        .expect("method")
        .input
        .clone();
    let mut msg = DynamicMessage::new(m);
    for (k, v) in fields {
        msg.set_field_by_name(k, v.clone());
    }
    msg.encode_to_vec()
}

/// `(log digest, state digest, voided)` of a store on a node.
pub fn digests(n: &Node, store: &StoreId) -> ([u8; 32], [u8; 32], u64) {
    let h = n.registry().get(store).expect("store runs");
    let s = n.store_status(&h).expect("status");
    (s.log.digest.0, s.state_digest, s.log.voided)
}

/// Signs entries as any identity, continuing that identity's chain in a
/// store from what a node has logged: a member's modified client.
pub struct Forger<'a> {
    pub id: &'a Identity,
}

impl Forger<'_> {
    /// The next entry of this identity in `store`, as `on` would accept it
    /// chain-wise (seq, prev, deps = `on`'s heads, hlc above them).
    pub fn next(&self, on: &Node, store: StoreId, payload: Vec<u8>) -> SignedEntry {
        self.next_above(on, store, payload, 0)
    }

    /// Like [`Self::next`] with an HLC above `floor`: a second entry at a
    /// seq that must differ from one signed in the same millisecond.
    pub fn next_above(
        &self,
        on: &Node,
        store: StoreId,
        payload: Vec<u8>,
        floor: u64,
    ) -> SignedEntry {
        let k = on.kernel();
        let author = self.id.author();
        let tip = k
            .tips(&store)
            .expect("tips")
            .into_iter()
            .find(|t| t.author == author);
        let (seq, prev) = tip.map_or((1, EntryId::ZERO), |t| (t.seq + 1, t.id));
        let heads = k.heads(&store).expect("heads");
        let mut hlc = (now_ms() << COUNTER_BITS).max(floor + 1);
        for h in &heads {
            if let Some(e) = k.get(h).expect("get") {
                hlc = hlc.max(e.hlc + 1);
            }
        }
        SignedEntry::sign(
            self.id,
            Draft {
                store,
                seq,
                prev,
                hlc,
                deps: heads,
                payload,
            },
        )
    }

    /// A root op writing `puts`.
    pub fn root_op(&self, on: &Node, root: StoreId, puts: &[(&str, &[u8])]) -> SignedEntry {
        let op = KvOp {
            writes: puts
                .iter()
                .map(|(k, v)| Write {
                    key: k.to_string(),
                    value: v.to_vec(),
                    delete: false,
                    supersedes: vec![],
                })
                .collect(),
        };
        self.next(on, root, op.encode_to_vec())
    }
}

/// Ingests one entry and returns its outcome.
pub fn submit(on: &Node, e: &SignedEntry) -> Outcome {
    on.kernel()
        .ingest(&[e.to_wire()])
        .expect("ingest")
        .outcomes
        .remove(0)
}
