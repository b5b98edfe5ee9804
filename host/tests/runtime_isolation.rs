//! Apply is a pure function of (state, op): a fresh instance per call, one
//! compiled plugin per blob hash, instances taken per call (never per store),
//! limits from the profile a store is pinned to, and apply failures that are
//! either the same everywhere (no-op) or a visible halt.

#[path = "runtime_common/mod.rs"]
mod common;

use std::sync::Arc;

use common::*;
use lattice_host::runtime::{
    ApplyOutcome, CallError, Plugin, Profile, Runtime, RuntimeConfig, StorageError, StoreKey,
    builtin, clear_store, halted,
};
use prost_reflect::Value;

pub const GLOBAL: &str = env!("LATTICE_TEST_PLUGIN_GLOBAL_WASM");

/// A runtime of its own (one per simulated node), small pool.
fn node_runtime() -> Runtime {
    Runtime::new(RuntimeConfig {
        max_instances: 4,
        ..RuntimeConfig::default()
    })
    .expect("runtime")
}

fn count(db: &Db, p: &Plugin, store: &StoreKey, method: &str, key: &[u8]) -> u64 {
    let reply = ask(db, p, store, method, &[("key", bytes(key))]);
    field(&reply, "count").as_u64().expect("count")
}

/// Two nodes, one log: node B also answers many queries and prepares between
/// the applies. The guest's global counter must not leak into what apply
/// writes: same ops, same digest. (With one instance shared by every call,
/// B's apply would write B's call count and the digests would differ.)
#[test]
fn query_history_does_not_change_what_apply_writes() {
    let (rt_a, rt_b) = (node_runtime(), node_runtime());
    let bytes_ = wasm(GLOBAL);
    let (pa, pb) = (rt_a.load(&bytes_).unwrap(), rt_b.load(&bytes_).unwrap());
    let (db_a, db_b) = (db(), db());
    let s = store(1);
    let mut ops = Vec::new();
    for i in 0..20u8 {
        let r = req(&pa, "Write", &[("key", bytes(&[b'k', i]))]);
        let payload = prepare(&db_a, &pa, &s, &ctx(1, 10 + i as u64), "Write", &r).unwrap();
        ops.push(op(1, i as u64 + 1, 10 + i as u64, vec![], payload));
    }
    for o in &ops {
        assert_eq!(
            apply(&db_a, &pa, &s, o),
            ApplyOutcome::Applied { writes: 1 }
        );
    }
    for (i, o) in ops.iter().enumerate() {
        for _ in 0..=i {
            ask(&db_b, &pb, &s, "Peek", &[]);
        }
        let r = req(&pb, "Write", &[("key", bytes(b"unused"))]);
        prepare(&db_b, &pb, &s, &ctx(2, 1), "Write", &r).unwrap();
        assert_eq!(
            apply(&db_b, &pb, &s, o),
            ApplyOutcome::Applied { writes: 1 }
        );
    }
    assert_eq!(digest(&db_a, &s), digest(&db_b, &s));
    assert_ne!(digest(&db_a, &s), [0u8; 32]);
    // Every apply ran in a fresh instance: it counted only itself.
    for i in 0..20u8 {
        assert_eq!(count(&db_b, &pb, &s, "Get", &[b'k', i]), 1);
    }
    // And queries do not see each other either.
    assert_eq!(
        field(&ask(&db_b, &pb, &s, "Peek", &[]), "count").as_u64(),
        Some(1)
    );
}

#[test]
fn loading_the_same_bytes_returns_the_same_plugin() {
    let rt = node_runtime();
    let a = rt.load(builtin::KV).unwrap();
    let b = rt.load(builtin::KV).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert!(Arc::ptr_eq(&rt.loaded(&a.info().hash).unwrap(), &a));
    let other = rt.load(builtin::LOG).unwrap();
    assert!(!Arc::ptr_eq(&a, &other));
    // Once nothing uses it, it is freed (and loads again on demand).
    let hash = other.info().hash;
    drop(other);
    assert!(rt.loaded(&hash).is_none());
    assert_eq!(rt.load(builtin::LOG).unwrap().info().hash, hash);
}

/// 1,000 stores of one plugin on a runtime with a pool of 4 instances: every
/// store loads its plugin (as the node does per store) and applies, then the
/// first and the last take one more write. Instances are per call, so the
/// pool's size is irrelevant to the store count.
#[test]
fn a_thousand_stores_share_one_plugin_and_a_small_pool() {
    let rt = node_runtime();
    let db = db();
    let stores: Vec<StoreKey> = (0..1000u32)
        .map(|i| {
            let mut s = [0u8; 16];
            s[..4].copy_from_slice(&i.to_be_bytes());
            s
        })
        .collect();
    let mut held = Vec::new();
    let first = rt.load(builtin::KV).unwrap();
    let put = |p: &Plugin, key: &str, value: &[u8]| {
        req(p, "Put", &[("key", text(key)), ("value", bytes(value))])
    };
    for chunk in stores.chunks(250) {
        let mut tx = db.db.begin_write().unwrap();
        tx.set_durability(redb::Durability::None).unwrap();
        for (i, s) in chunk.iter().enumerate() {
            let p = rt.load(builtin::KV).unwrap();
            assert!(Arc::ptr_eq(&p, &first));
            let payload = p
                .prepare(&tx, s, &ctx(1, 5), "Put", &put(&p, "name", &s[..4]))
                .unwrap()
                .op;
            let o = op(1, 1, 5 + i as u64, vec![], payload);
            assert!(matches!(
                p.apply(&tx, s, &o).unwrap(),
                ApplyOutcome::Applied { .. }
            ));
            held.push(p);
        }
        tx.commit().unwrap();
    }
    for (n, s) in [(0usize, stores[0]), (999, stores[999])] {
        let p = &held[n];
        let payload = prepare(&db, p, &s, &ctx(1, 100), "Put", &put(p, "extra", b"x")).unwrap();
        let o = op(1, 2, 100, vec![], payload);
        assert!(matches!(
            apply(&db, p, &s, &o),
            ApplyOutcome::Applied { .. }
        ));
        let got = ask(&db, p, &s, "Get", &[("key", text("extra"))]);
        assert_eq!(field(&got, "value").as_bytes().unwrap().as_ref(), b"x");
        let name = ask(&db, p, &s, "Get", &[("key", text("name"))]);
        assert_eq!(field(&name, "value").as_bytes().unwrap().as_ref(), &s[..4]);
    }
    let middle = ask(&db, &first, &stores[500], "Get", &[("key", text("extra"))]);
    assert_eq!(field(&middle, "found").as_bool(), Some(false));
}

/// More concurrent callers than pool slots: they wait their turn, nobody
/// fails, and applies still get through (one slot is kept for them).
#[test]
fn callers_beyond_the_pool_wait_instead_of_failing() {
    let rt = Arc::new(
        Runtime::new(RuntimeConfig {
            max_instances: 2,
            ..RuntimeConfig::default()
        })
        .unwrap(),
    );
    let p = rt.load(&wasm(GLOBAL)).unwrap();
    let db = Arc::new(db());
    let s = store(3);
    std::thread::scope(|scope| {
        for _ in 0..6 {
            let (p, db) = (p.clone(), db.clone());
            scope.spawn(move || {
                for _ in 0..30 {
                    ask(&db, &p, &s, "Peek", &[]);
                }
            });
        }
        let (p, db) = (p.clone(), db.clone());
        scope.spawn(move || {
            for i in 0..30u8 {
                let payload = req(&p, "Write", &[("key", bytes(&[i]))]);
                let o = op(1, i as u64 + 1, 1 + i as u64, vec![], payload);
                assert_eq!(apply(&db, &p, &s, &o), ApplyOutcome::Applied { writes: 1 });
            }
        });
    });
    assert_eq!(count(&db, &p, &s, "Get", &[29]), 1);
}

// ---- profiles ----

const EVIL_PUT: i32 = 0;
const EVIL_LOOP: i32 = 1;
const EVIL_SCAN_ABUSE: i32 = 4;

fn evil_op(p: &Plugin, seq: u64, kind: i32, key: &[u8], count: u32) -> lattice_host::runtime::Op {
    let payload = encode(
        &p.info().op_type,
        &[
            ("kind", Value::EnumNumber(kind)),
            ("key", bytes(key)),
            ("value", bytes(b"v")),
            ("count", Value::U32(count)),
        ],
    );
    op(1, seq, 1000 + seq, vec![], payload)
}

fn apply_with(
    db: &Db,
    p: &Plugin,
    s: &StoreKey,
    o: &lattice_host::runtime::Op,
    prof: &Profile,
) -> Result<ApplyOutcome, StorageError> {
    let mut tx = db.db.begin_write().unwrap();
    tx.set_durability(redb::Durability::None).unwrap();
    let out = p.apply_with(&tx, s, o, prof);
    tx.commit().unwrap();
    out
}

/// The profile a store is pinned to decides the outcome, not the runtime's
/// defaults: the same op under a stingy profile is a no-op, under v1 it
/// applies; a profile this engine cannot honour is refused, not bent.
#[test]
fn apply_runs_under_the_profile_it_is_given() {
    assert_eq!(Profile::by_version(1), Some(Profile::v1()));
    assert_eq!(Profile::CURRENT, Profile::v1());
    let rt = node_runtime();
    let p = rt.load(&wasm(EVIL)).unwrap();
    let db = db();
    let s = store(4);
    let stingy = Profile {
        version: 999,
        fuel_apply: 50,
        ..Profile::v1()
    };
    let o = evil_op(&p, 1, EVIL_PUT, b"k", 0);
    match apply_with(&db, &p, &s, &o, &stingy).unwrap() {
        ApplyOutcome::NoOp {
            reason: CallError::OutOfFuel { budget: 50 },
        } => {}
        other => panic!("expected out of fuel under the stingy profile, got {other:?}"),
    }
    assert_eq!(
        apply_with(&db, &p, &s, &o, &Profile::v1()).unwrap(),
        ApplyOutcome::Applied { writes: 1 }
    );
    let odd_stack = Profile {
        max_wasm_stack: Profile::v1().max_wasm_stack * 2,
        ..Profile::v1()
    };
    assert!(matches!(
        apply_with(&db, &p, &s, &o, &odd_stack),
        Err(StorageError::Profile { .. })
    ));
    let huge_memory = Profile {
        memory_limit: Profile::v1().memory_limit * 4,
        ..Profile::v1()
    };
    assert!(matches!(
        apply_with(&db, &p, &s, &o, &huge_memory),
        Err(StorageError::Profile { .. })
    ));
}

// ---- failures: replicated no-op, or visible halt ----

/// A failure before the op read any state is a function of (op, profile):
/// a no-op, and the store goes on.
#[test]
fn failure_before_reading_state_is_a_no_op_everywhere() {
    let rt = node_runtime();
    let p = rt.load(&wasm(EVIL)).unwrap();
    let db = db();
    let s = store(5);
    match apply(&db, &p, &s, &evil_op(&p, 1, EVIL_LOOP, b"", 0)) {
        ApplyOutcome::NoOp {
            reason: CallError::OutOfFuel { .. },
        } => {}
        other => panic!("expected a no-op, got {other:?}"),
    }
    let tx = db.db.begin_read().unwrap();
    assert_eq!(halted(&tx, &s).unwrap(), None);
    drop(tx);
    assert_eq!(
        apply(&db, &p, &s, &evil_op(&p, 2, EVIL_PUT, b"k", 0)),
        ApplyOutcome::Applied { writes: 1 }
    );
}

/// A failure after the op read state may depend on the order this replica
/// applied concurrent ops in: the store halts here, visibly (recorded with
/// the op and the reason), applies nothing more and prepares nothing more,
/// while other stores carry on and queries still show the frozen state.
#[test]
fn failure_after_reading_state_halts_the_store_visibly() {
    let rt = node_runtime();
    let p = rt.load(&wasm(EVIL)).unwrap();
    let db = db();
    let (s, other) = (store(6), store(7));
    assert_eq!(
        apply(&db, &p, &s, &evil_op(&p, 1, EVIL_PUT, b"before", 0)),
        ApplyOutcome::Applied { writes: 1 }
    );
    let frozen = digest(&db, &s);
    let bad = evil_op(&p, 2, EVIL_SCAN_ABUSE, b"", 1_000_000);
    let halt = match apply(&db, &p, &s, &bad) {
        ApplyOutcome::Halted { halt } => halt,
        other => panic!("expected a halt, got {other:?}"),
    };
    assert_eq!(halt.op_id, bad.id);
    assert!(halt.reason.contains("out of fuel"), "{}", halt.reason);
    let tx = db.db.begin_read().unwrap();
    assert_eq!(halted(&tx, &s).unwrap(), Some(halt.clone()));
    assert_eq!(halted(&tx, &other).unwrap(), None);
    drop(tx);
    // Nothing more applies on the halted store.
    match apply(&db, &p, &s, &evil_op(&p, 3, EVIL_PUT, b"after", 0)) {
        ApplyOutcome::Halted { halt: h } => assert_eq!(h, halt),
        other => panic!("expected the store to stay halted, got {other:?}"),
    }
    assert_eq!(digest(&db, &s), frozen);
    let r = encode(&p.info().method("Op").unwrap().input, &[]);
    match prepare(&db, &p, &s, &ctx(1, 1), "Op", &r) {
        Err(CallError::StoreHalted(why)) => assert_eq!(why, halt.reason),
        other => panic!("expected StoreHalted, got {other:?}"),
    }
    // Queries show the frozen state; other stores are unaffected.
    let got = ask(&db, &p, &s, "Get", &[("key", bytes(b"before"))]);
    assert_eq!(field(&got, "found").as_bool(), Some(true));
    assert_eq!(
        apply(&db, &p, &other, &evil_op(&p, 1, EVIL_PUT, b"k", 0)),
        ApplyOutcome::Applied { writes: 1 }
    );
    // Dropping (or rebuilding) the store clears the halt with the state.
    let tx = db.db.begin_write().unwrap();
    clear_store(&tx, &s).unwrap();
    tx.commit().unwrap();
    let tx = db.db.begin_read().unwrap();
    assert_eq!(halted(&tx, &s).unwrap(), None);
}
