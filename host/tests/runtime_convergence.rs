//! Convergence of every shipped plugin (and the example counter) through
//! real wasm and redb: random concurrent commands from several authors,
//! each prepared on its author's own replica, exchanged by random syncs and
//! applied in causal order; then every replica, and fresh replicas replaying
//! the whole op set in several random causal orders, must show the same
//! state digest and byte-identical query replies.
//!
//! Every replica has its own `Runtime` and its own loaded `Plugin`, as
//! separate nodes do: a shared instance (or any state kept between calls)
//! would otherwise be invisible here.

#[path = "runtime_common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use common::*;
use lattice_host::runtime::{ApplyOutcome, Op, Plugin, Runtime, RuntimeConfig, StoreKey, builtin};
use prop::test_runner::Config;
use proptest::prelude::*;
use prost_reflect::Value;

/// A deterministic RNG for delivery orders (seeded by proptest).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

struct Replica {
    author: u8,
    store: StoreKey,
    seen: BTreeSet<usize>,
    hlc: u64,
    seq: u64,
}

/// A simulated node's plugin: its own runtime (engine, instance pool),
/// sharing only the on-disk compile cache with the others.
fn node_plugin(wasm: &[u8]) -> Arc<Plugin> {
    let cache = runtime()
        .config()
        .cache_dir
        .clone()
        .expect("the shared test runtime has a cache dir");
    // The plugin keeps its engine alive; the runtime itself can go.
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache),
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    rt.load(wasm).expect("plugin loads")
}

/// A simulated mesh of `n` authors, one replica (store, with its own
/// runtime) each, in one db.
struct Sim {
    db: Db,
    /// The wasm every replica loads.
    wasm: Vec<u8>,
    /// Replica 0's plugin (for descriptors and names).
    plugin: Arc<Plugin>,
    /// Each store's plugin, loaded by that replica's own runtime.
    plugins: BTreeMap<StoreKey, Arc<Plugin>>,
    ops: Vec<Op>,
    /// Every op's causal past (all ops its author had seen).
    past: Vec<BTreeSet<usize>>,
    replicas: Vec<Replica>,
    /// Shared wall clock in ms; advances slowly so many ops share a ms.
    wall: u64,
    rng: Rng,
    next_store: u8,
    /// Commands `prepare` refused (e.g. editing someone else's message).
    refused: usize,
}

impl Sim {
    fn new(wasm: &[u8], authors: u8, seed: u64) -> Self {
        let replicas: Vec<Replica> = (0..authors)
            .map(|a| Replica {
                author: a + 1,
                store: store(a + 1),
                seen: BTreeSet::new(),
                hlc: 0,
                seq: 0,
            })
            .collect();
        let plugins: BTreeMap<StoreKey, Arc<Plugin>> = replicas
            .iter()
            .map(|r| (r.store, node_plugin(wasm)))
            .collect();
        Sim {
            db: db(),
            wasm: wasm.to_vec(),
            plugin: plugins[&replicas[0].store].clone(),
            plugins,
            ops: Vec::new(),
            past: Vec::new(),
            replicas,
            wall: 1_700_000_000_000,
            rng: Rng(seed | 1),
            next_store: 100,
            refused: 0,
        }
    }

    /// The plugin of the replica holding `store` (a fresh replica gets its
    /// own runtime on first use).
    fn plugin_of(&mut self, store: &StoreKey) -> Arc<Plugin> {
        let wasm = &self.wasm;
        self.plugins
            .entry(*store)
            .or_insert_with(|| node_plugin(wasm))
            .clone()
    }

    fn apply_to(&mut self, store: &StoreKey, i: usize) {
        let p = self.plugin_of(store);
        let out = apply(&self.db, &p, store, &self.ops[i]);
        assert!(
            matches!(out, ApplyOutcome::Applied { .. }),
            "op {i}: {out:?}"
        );
    }

    /// Heads of a replica: seen ops no other seen op depends on.
    fn heads(&self, r: usize) -> Vec<usize> {
        let seen = &self.replicas[r].seen;
        seen.iter()
            .copied()
            .filter(|i| !seen.iter().any(|j| self.past[*j].contains(i)))
            .collect()
    }

    /// Author `r` runs command `method`; returns whether it produced an op.
    fn command(&mut self, r: usize, method: &str, req: &[u8]) -> bool {
        if self.rng.below(3) == 0 {
            self.wall += 1;
        }
        let rep = &self.replicas[r];
        let dep_hlc = rep.seen.iter().map(|i| self.ops[*i].hlc).max().unwrap_or(0);
        let hlc = (rep.hlc.max(dep_hlc) + 1).max(self.wall << 16);
        let c = ctx(rep.author, hlc);
        let p = &self.plugins[&rep.store];
        let Ok(payload) = prepare(&self.db, p, &rep.store, &c, method, req) else {
            self.refused += 1;
            return false;
        };
        let deps = self
            .heads(r)
            .iter()
            .map(|i| self.ops[*i].id.clone())
            .collect();
        let rep = &mut self.replicas[r];
        rep.seq += 1;
        rep.hlc = hlc;
        let o = op(rep.author, rep.seq, hlc, deps, payload);
        self.ops.push(o);
        self.past.push(self.replicas[r].seen.clone());
        let i = self.ops.len() - 1;
        let s = self.replicas[r].store;
        self.apply_to(&s, i);
        self.replicas[r].seen.insert(i);
        true
    }

    /// Deliver `ops` (a causally closed set) to `store`, skipping `have`,
    /// in a random causal order.
    fn deliver(&mut self, store: StoreKey, have: &mut BTreeSet<usize>, ops: &BTreeSet<usize>) {
        let mut pending: Vec<usize> = ops.difference(have).copied().collect();
        while !pending.is_empty() {
            let ready: Vec<usize> = pending
                .iter()
                .copied()
                .filter(|i| self.past[*i].is_subset(have))
                .collect();
            assert!(!ready.is_empty(), "causal closure violated");
            let pick = ready[self.rng.below(ready.len())];
            self.apply_to(&store, pick);
            have.insert(pick);
            pending.retain(|i| *i != pick);
        }
    }

    /// Replica `to` receives everything replica `from` has seen.
    fn sync(&mut self, from: usize, to: usize) {
        let ops = self.replicas[from].seen.clone();
        let mut have = std::mem::take(&mut self.replicas[to].seen);
        let store = self.replicas[to].store;
        self.deliver(store, &mut have, &ops);
        let dep_hlc = have.iter().map(|i| self.ops[*i].hlc).max().unwrap_or(0);
        let rep = &mut self.replicas[to];
        rep.seen = have;
        rep.hlc = rep.hlc.max(dep_hlc);
    }

    /// Sync everyone with everyone, then replay the whole op set on `fresh`
    /// new replicas in random causal orders; return all their stores.
    fn converge(&mut self, fresh: usize) -> Vec<StoreKey> {
        eprintln!(
            "{}: {} ops, {} commands refused by prepare",
            self.plugin.info().name,
            self.ops.len(),
            self.refused
        );
        let n = self.replicas.len();
        for to in 0..n {
            for from in 0..n {
                if from != to {
                    self.sync(from, to);
                }
            }
        }
        let all: BTreeSet<usize> = (0..self.ops.len()).collect();
        let mut stores: Vec<StoreKey> = self.replicas.iter().map(|r| r.store).collect();
        for _ in 0..fresh {
            self.next_store += 1;
            let s = store(self.next_store);
            let mut have = BTreeSet::new();
            self.deliver(s, &mut have, &all);
            stores.push(s);
        }
        stores
    }

    /// Assert every store has the same digest and the same reply to every
    /// query in `queries`.
    fn assert_converged(&self, stores: &[StoreKey], queries: &[(&str, Vec<u8>)]) {
        let d0 = digest(&self.db, &stores[0]);
        for s in stores {
            assert_eq!(
                digest(&self.db, s),
                d0,
                "digest of store {s:?} differs ({} ops)",
                self.ops.len()
            );
            let tx = self.db.db.begin_read().unwrap();
            assert_eq!(
                lattice_host::runtime::recompute_digest(&tx, s).unwrap(),
                d0,
                "incremental digest matches a full recomputation"
            );
        }
        // A fresh store that received no op (an empty run) has no instance
        // yet: every replica runs the same blob, so make one for it.
        let plugin = |s: &StoreKey| {
            self.plugins
                .get(s)
                .cloned()
                .unwrap_or_else(|| node_plugin(&self.wasm))
        };
        for (method, req) in queries {
            let r0 = query(&self.db, &plugin(&stores[0]), &stores[0], method, req).expect("query");
            for s in &stores[1..] {
                let r = query(&self.db, &plugin(s), s, method, req).expect("query");
                assert_eq!(r, r0, "reply to {method} differs between replicas");
            }
        }
    }

    /// Ids of ops whose payload satisfies `pred`, as seen by replica `r`.
    fn seen_ids(&self, r: usize, pred: impl Fn(&Op) -> bool) -> Vec<Vec<u8>> {
        self.replicas[r]
            .seen
            .iter()
            .map(|i| &self.ops[*i])
            .filter(|o| pred(o))
            .map(|o| o.id.clone())
            .collect()
    }
}

/// One random step: (author, action, a, b).
type Step = (u8, u8, u8, u8);

fn steps() -> impl Strategy<Value = (Vec<Step>, u64)> {
    (
        prop::collection::vec((0u8..3, any::<u8>(), any::<u8>(), any::<u8>()), 8..40),
        any::<u64>(),
    )
}

const KEYS: [&str; 3] = ["a", "b", "c"];

fn kv_step(sim: &mut Sim, (author, action, a, b): Step) {
    let p = sim.plugin.clone();
    let r = author as usize;
    let key = KEYS[a as usize % KEYS.len()];
    match action % 10 {
        0..=4 => {
            sim.command(
                r,
                "Put",
                &req(&p, "Put", &[("key", text(key)), ("value", bytes(&[b]))]),
            );
        }
        5 | 6 => {
            sim.command(r, "Delete", &req(&p, "Delete", &[("key", text(key))]));
        }
        7 => {
            let put_desc = p
                .info()
                .pool
                .get_message_by_name("lattice.kv.PutRequest")
                .unwrap();
            let put = prost_reflect::DynamicMessage::decode(
                put_desc.clone(),
                encode(&put_desc, &[("key", text(key)), ("value", bytes(&[b, b]))]).as_slice(),
            )
            .unwrap();
            let other = KEYS[(a as usize + 1) % KEYS.len()];
            sim.command(
                r,
                "Batch",
                &req(
                    &p,
                    "Batch",
                    &[
                        ("puts", Value::List(vec![Value::Message(put)])),
                        ("deletes", Value::List(vec![text(other)])),
                    ],
                ),
            );
        }
        _ => sim.sync(b as usize % 3, r),
    }
}

fn kv_queries(p: &Plugin) -> Vec<(&'static str, Vec<u8>)> {
    let mut q = Vec::new();
    for key in KEYS {
        for mode in 0..3 {
            q.push((
                "Get",
                req(
                    p,
                    "Get",
                    &[("key", text(key)), ("mode", Value::EnumNumber(mode))],
                ),
            ));
        }
        q.push(("History", req(p, "History", &[("key", text(key))])));
    }
    for mode in 0..3 {
        q.push(("List", req(p, "List", &[("mode", Value::EnumNumber(mode))])));
    }
    q
}

fn log_step(sim: &mut Sim, (author, action, a, b): Step) {
    let p = sim.plugin.clone();
    let r = author as usize;
    match action % 4 {
        0 | 1 => {
            sim.command(
                r,
                "Append",
                &req(&p, "Append", &[("text", text(&format!("line {a}")))]),
            );
        }
        2 => {
            sim.command(r, "Append", &req(&p, "Append", &[("data", bytes(&[a, b]))]));
        }
        _ => sim.sync(b as usize % 3, r),
    }
}

fn log_queries(p: &Plugin) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("Tail", req(p, "Tail", &[("n", Value::U32(1000))])),
        ("Tail", req(p, "Tail", &[("n", Value::U32(3))])),
        ("Range", req(p, "Range", &[("limit", Value::U32(1000))])),
        ("Range", req(p, "Range", &[("limit", Value::U32(2))])),
    ]
}

fn counter_step(sim: &mut Sim, (author, action, a, b): Step) {
    let p = sim.plugin.clone();
    let r = author as usize;
    match action % 3 {
        0 => {
            sim.command(
                r,
                "Increment",
                &req(&p, "Increment", &[("by", Value::U64(a as u64 % 5))]),
            );
        }
        1 => {
            sim.command(
                r,
                "Decrement",
                &req(&p, "Decrement", &[("by", Value::U64(a as u64 % 5))]),
            );
        }
        _ => sim.sync(b as usize % 3, r),
    }
}

fn is_chat(p: &Plugin, o: &Op, actions: &[&str]) -> bool {
    let m = decode(&p.info().op_type, &o.payload);
    actions.iter().any(|a| m.has_field_by_name(a))
}

const EMOJI: [&str; 2] = ["👍", "🎉"];

fn chat_step(sim: &mut Sim, (author, action, a, b): Step) {
    let p = sim.plugin.clone();
    let r = author as usize;
    let messages = sim.seen_ids(r, |o| is_chat(&p, o, &["post", "reply"]));
    let target = |n: u8| messages.get(n as usize % messages.len().max(1)).cloned();
    let emoji = EMOJI[b as usize % 2];
    match action % 12 {
        0 | 1 => {
            sim.command(
                r,
                "Post",
                &req(&p, "Post", &[("text", text(&format!("hello {a}")))]),
            );
        }
        2 => {
            if let Some(to) = target(a) {
                sim.command(
                    r,
                    "Reply",
                    &req(&p, "Reply", &[("to", bytes(&to)), ("text", text("re"))]),
                );
            }
        }
        3 | 4 => {
            if let Some(to) = target(a) {
                sim.command(
                    r,
                    "React",
                    &req(&p, "React", &[("to", bytes(&to)), ("emoji", text(emoji))]),
                );
            }
        }
        5 => {
            if let Some(to) = target(a) {
                sim.command(
                    r,
                    "Unreact",
                    &req(&p, "Unreact", &[("to", bytes(&to)), ("emoji", text(emoji))]),
                );
            }
        }
        6 => {
            sim.command(
                r,
                "SetTopic",
                &req(&p, "SetTopic", &[("text", text(&format!("topic {a}")))]),
            );
        }
        7 => {
            if let Some(id) = target(a) {
                sim.command(
                    r,
                    "Edit",
                    &req(
                        &p,
                        "Edit",
                        &[("id", bytes(&id)), ("text", text(&format!("edited {b}")))],
                    ),
                );
            }
        }
        8 => {
            if let Some(id) = target(a) {
                sim.command(r, "Delete", &req(&p, "Delete", &[("id", bytes(&id))]));
            }
        }
        9 => {
            let words = if a % 2 == 0 {
                vec![text("spam")]
            } else {
                vec![]
            };
            sim.command(
                r,
                "SetFilter",
                &req(&p, "SetFilter", &[("words", Value::List(words))]),
            );
        }
        _ => sim.sync(b as usize % 3, r),
    }
}

fn chat_queries(sim: &Sim) -> Vec<(&'static str, Vec<u8>)> {
    let p = &sim.plugin;
    let mut q = vec![
        (
            "Messages",
            req(p, "Messages", &[("limit", Value::U32(1000))]),
        ),
        ("Messages", req(p, "Messages", &[("limit", Value::U32(2))])),
        ("Members", req(p, "Members", &[])),
        ("Topic", req(p, "Topic", &[])),
        ("Filter", req(p, "Filter", &[])),
    ];
    for o in sim.ops.iter().filter(|o| is_chat(p, o, &["post", "reply"])) {
        q.push(("Thread", req(p, "Thread", &[("id", bytes(&o.id))])));
    }
    q
}

fn run(plugin: &[u8], (steps, seed): (Vec<Step>, u64), step: fn(&mut Sim, Step)) -> Sim {
    let mut sim = Sim::new(plugin, 3, seed);
    for s in steps {
        step(&mut sim, s);
    }
    sim
}

proptest! {
    #![proptest_config(Config { cases: 32, failure_persistence: None, ..Config::default() })]

    #[test]
    fn kv_converges(input in steps()) {
        let mut sim = run(builtin::KV, input, kv_step);
        let stores = sim.converge(3);
        let q = kv_queries(&sim.plugin);
        sim.assert_converged(&stores, &q);
    }

    #[test]
    fn log_converges(input in steps()) {
        let mut sim = run(builtin::LOG, input, log_step);
        let stores = sim.converge(3);
        let q = log_queries(&sim.plugin);
        sim.assert_converged(&stores, &q);
        // Nothing is lost: the tail holds every append.
        let tail = ask(&sim.db, &sim.plugin, &stores[0], "Tail", &[("n", Value::U32(1000))]);
        prop_assert_eq!(as_list(&field(&tail, "entries")).len(), sim.ops.len());
    }

    #[test]
    fn chat_converges(input in steps()) {
        let mut sim = run(builtin::CHAT, input, chat_step);
        let stores = sim.converge(3);
        let q = chat_queries(&sim);
        sim.assert_converged(&stores, &q);
    }

    #[test]
    fn counter_converges(input in steps()) {
        let mut sim = run(&wasm(COUNTER), input, counter_step);
        let stores = sim.converge(3);
        let q = vec![("Value", req(&sim.plugin, "Value", &[]))];
        sim.assert_converged(&stores, &q);
    }
}

/// The regression from the earlier implementation: the current LWW winner
/// is superseded while a concurrent head remains. Every causal order must
/// give the same heads, winner and digest.
#[test]
fn kv_superseded_winner_with_concurrent_head_converges() {
    let p = load(builtin::KV);
    let db = db();
    let (ra, rb) = (store(1), store(2));
    let put =
        |key: &str, value: &[u8]| req(&p, "Put", &[("key", text(key)), ("value", bytes(value))]);
    // a: author 1 puts k=1 at hlc 10 (concurrent with b and c).
    let a = op(
        1,
        1,
        10,
        vec![],
        prepare(&db, &p, &ra, &ctx(1, 10), "Put", &put("k", b"1")).unwrap(),
    );
    // b: author 2 puts k=2 at hlc 20: the LWW winner over a.
    let b = op(
        2,
        1,
        20,
        vec![],
        prepare(&db, &p, &rb, &ctx(2, 20), "Put", &put("k", b"2")).unwrap(),
    );
    // c: author 3 has seen only b and deletes k, superseding b (not a).
    apply(&db, &p, &rb, &b);
    let c_payload = prepare(
        &db,
        &p,
        &rb,
        &ctx(3, 30),
        "Delete",
        &req(&p, "Delete", &[("key", text("k"))]),
    )
    .unwrap();
    let c = op(3, 1, 30, vec![b.id.clone()], c_payload);
    // d: author 1, having seen a only, puts k=4 superseding a, with an HLC
    // lower than c's.
    apply(&db, &p, &ra, &a);
    let d_payload = prepare(&db, &p, &ra, &ctx(1, 25), "Put", &put("k", b"4")).unwrap();
    let d = op(1, 2, 25, vec![a.id.clone()], d_payload);

    let orders: [[&Op; 4]; 6] = [
        [&a, &b, &c, &d],
        [&b, &a, &c, &d],
        [&b, &c, &a, &d],
        [&a, &d, &b, &c],
        [&b, &a, &d, &c],
        [&a, &b, &d, &c],
    ];
    let mut results = Vec::new();
    for (n, order) in orders.iter().enumerate() {
        let s = store(10 + n as u8);
        for o in order {
            assert!(matches!(
                apply(&db, &p, &s, o),
                ApplyOutcome::Applied { .. }
            ));
        }
        let mut replies = Vec::new();
        for mode in 0..3 {
            replies.push(
                query(
                    &db,
                    &p,
                    &s,
                    "Get",
                    &req(
                        &p,
                        "Get",
                        &[("key", text("k")), ("mode", Value::EnumNumber(mode))],
                    ),
                )
                .unwrap(),
            );
        }
        results.push((digest(&db, &s), replies));
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "all orders agree");
    // Heads are c (tombstone, hlc 30) and d (k=4, hlc 25): LWW picks c.
    let s = store(10);
    let lww = ask(
        &db,
        &p,
        &s,
        "Get",
        &[("key", text("k")), ("mode", Value::EnumNumber(0))],
    );
    assert_eq!(field(&lww, "found").as_bool(), Some(false), "{lww:?}");
    assert_eq!(as_list(&field(&lww, "heads")).len(), 2, "{lww:?}");
    let fww = ask(
        &db,
        &p,
        &s,
        "Get",
        &[("key", text("k")), ("mode", Value::EnumNumber(1))],
    );
    assert_eq!(
        field(&fww, "value").as_bytes().unwrap().as_ref(),
        b"4",
        "{fww:?}"
    );
}

/// Two appends by one author in the same millisecond (and two authors with
/// the same HLC) are all kept, in (hlc, author, id) order, in every order.
#[test]
fn log_same_millisecond_appends_are_all_kept() {
    let p = load(builtin::LOG);
    let db = db();
    let ms = 1_700_000_000_000u64 << 16;
    let append = |t: &str, author: u8, hlc: u64| {
        let r = req(&p, "Append", &[("text", text(t))]);
        prepare(&db, &p, &store(1), &ctx(author, hlc), "Append", &r).unwrap()
    };
    let x = op(1, 1, ms, vec![], append("x", 1, ms));
    let y = op(1, 2, ms + 1, vec![x.id.clone()], append("y", 1, ms + 1));
    let z = op(2, 1, ms, vec![], append("z", 2, ms));
    let orders: [[&Op; 3]; 3] = [[&x, &y, &z], [&z, &x, &y], [&x, &z, &y]];
    let mut results = Vec::new();
    for (n, order) in orders.iter().enumerate() {
        let s = store(20 + n as u8);
        for o in order {
            assert!(matches!(
                apply(&db, &p, &s, o),
                ApplyOutcome::Applied { .. }
            ));
        }
        let tail = query(
            &db,
            &p,
            &s,
            "Tail",
            &req(&p, "Tail", &[("n", Value::U32(10))]),
        )
        .unwrap();
        results.push((digest(&db, &s), tail));
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]));
    let tail = decode(&output(&p, "Tail"), &results[0].1);
    let texts: Vec<String> = as_list(&field(&tail, "entries"))
        .iter()
        .map(|e| field(&as_msg(e), "text").as_str().unwrap().to_string())
        .collect();
    // hlc ms: x (author 1) then z (author 2), then y (ms + 1).
    assert_eq!(texts, ["x", "z", "y"]);
}
