//! The sandbox: every kind of plugin misbehaviour ends in its typed error,
//! the host survives, later ops apply normally, and a failed apply leaves no
//! trace. Uses the malicious `evil` plugin (plugins/testing/evil) through
//! real wasmtime and redb.

#[path = "runtime_common/mod.rs"]
mod common;

use std::sync::Arc;

use common::*;
use lattice_host::runtime::{
    ApplyOutcome, CacheOutcome, CallError, LoadError, Plugin, Profile, Runtime, RuntimeConfig,
    StoreKey, recompute_digest,
};
use prost_reflect::Value;

fn evil() -> Arc<Plugin> {
    load(&wasm(EVIL))
}

/// Kinds of EvilOp (see plugins/testing/evil/proto/evil.proto).
const PUT: i32 = 0;
const LOOP: i32 = 1;
const PANIC_AFTER_WRITES: i32 = 2;
const MEMORY_BOMB: i32 = 3;
const SCAN_ABUSE: i32 = 4;
const HUGE_KEY: i32 = 5;
const HUGE_VALUE: i32 = 6;
const REMOVE: i32 = 7;
const STACK_OVERFLOW: i32 = 8;
const WRITE_FLOOD: i32 = 9;
const COPY: i32 = 10;

fn evil_op(
    p: &Plugin,
    seq: u64,
    kind: i32,
    key: &[u8],
    value: &[u8],
    count: u32,
) -> lattice_host::runtime::Op {
    let payload = encode(
        &p.info().op_type,
        &[
            ("kind", Value::EnumNumber(kind)),
            ("key", bytes(key)),
            ("value", bytes(value)),
            ("count", Value::U32(count)),
        ],
    );
    op(1, seq, 1000 + seq, vec![], payload)
}

fn get(db: &Db, p: &Plugin, store: &StoreKey, key: &[u8]) -> Option<Vec<u8>> {
    let reply = ask(db, p, store, "Get", &[("key", bytes(key))]);
    if field(&reply, "found").as_bool() == Some(true) {
        Some(field(&reply, "value").as_bytes().expect("bytes").to_vec())
    } else {
        None
    }
}

fn put(db: &Db, p: &Plugin, store: &StoreKey, seq: u64, key: &[u8], value: &[u8]) {
    let out = apply(db, p, store, &evil_op(p, seq, PUT, key, value, 0));
    assert_eq!(out, ApplyOutcome::Applied { writes: 1 });
}

fn no_op(out: ApplyOutcome) -> CallError {
    match out {
        ApplyOutcome::NoOp { reason } => reason,
        other => panic!("expected a no-op, got {other:?}"),
    }
}

#[test]
fn describe_is_validated_and_methods_are_classified() {
    let p = evil();
    let info = p.info();
    assert_eq!(info.name, "evil");
    assert_eq!(info.api_version, "0.2.0");
    assert_eq!(info.service.full_name(), "lattice.testing.evil.Evil");
    assert_eq!(info.op_type.full_name(), "lattice.testing.evil.EvilOp");
    assert_eq!(info.hash, *blake3::hash(&wasm(EVIL)).as_bytes());
    assert!(!info.method("Op").expect("Op").is_query);
    assert!(
        !info
            .method("LoopInPrepare")
            .expect("LoopInPrepare")
            .is_query
    );
    for q in [
        "Get",
        "Scan",
        "Loop",
        "Bomb",
        "HugeReply",
        "WriteInQuery",
        "Reject",
    ] {
        assert!(info.method(q).expect(q).is_query, "{q} is a query");
    }
}

#[test]
fn infinite_loop_in_apply_runs_out_of_fuel_and_later_ops_apply() {
    let (db, p) = (db(), evil());
    let before = digest(&db, &STORE);
    let err = no_op(apply(&db, &p, &STORE, &evil_op(&p, 1, LOOP, b"", b"", 0)));
    assert!(matches!(err, CallError::OutOfFuel { .. }), "{err:?}");
    assert_eq!(digest(&db, &STORE), before);
    put(&db, &p, &STORE, 2, b"after", b"loop");
    assert_eq!(
        get(&db, &p, &STORE, b"after").as_deref(),
        Some(&b"loop"[..])
    );
}

#[test]
fn infinite_loop_in_query_and_prepare_runs_out_of_fuel() {
    let (db, p) = (db(), evil());
    let err = query(&db, &p, &STORE, "Loop", &req(&p, "Loop", &[])).unwrap_err();
    assert!(matches!(err, CallError::OutOfFuel { .. }), "{err:?}");
    let err = prepare(&db, &p, &STORE, &ctx(1, 1), "LoopInPrepare", &[]).unwrap_err();
    assert!(matches!(err, CallError::OutOfFuel { .. }), "{err:?}");
    put(&db, &p, &STORE, 1, b"k", b"v");
    assert_eq!(get(&db, &p, &STORE, b"k").as_deref(), Some(&b"v"[..]));
}

#[test]
fn memory_bomb_hits_the_memory_limit() {
    let (db, p) = (db(), evil());
    let limit = runtime().config().profile.memory_limit as u64;
    let err = no_op(apply(
        &db,
        &p,
        &STORE,
        &evil_op(&p, 1, MEMORY_BOMB, b"", b"", 0),
    ));
    assert!(
        matches!(err, CallError::MemoryLimit { limit: l, .. } if l == limit),
        "{err:?}"
    );
    let bomb = req(&p, "Bomb", &[("bytes", Value::U64(1 << 30))]);
    let err = query(&db, &p, &STORE, "Bomb", &bomb).unwrap_err();
    assert!(matches!(err, CallError::MemoryLimit { .. }), "{err:?}");
    // A modest allocation is fine, on the fresh instance.
    let small = req(&p, "Bomb", &[("bytes", Value::U64(8 << 20))]);
    query(&db, &p, &STORE, "Bomb", &small).expect("8 MiB is within the limit");
}

#[test]
fn trap_after_writes_discards_them_even_within_a_shared_transaction() {
    let (db, p) = (db(), evil());
    put(&db, &p, &STORE, 1, b"base", b"1");
    let before = digest(&db, &STORE);

    // Alone.
    let err = no_op(apply(
        &db,
        &p,
        &STORE,
        &evil_op(&p, 2, PANIC_AFTER_WRITES, b"w", b"x", 10),
    ));
    assert!(matches!(err, CallError::Trap(_)), "{err:?}");
    assert_eq!(digest(&db, &STORE), before);
    assert_eq!(get(&db, &p, &STORE, b"w\0\0\0\0"), None);

    // In one transaction with good ops before and after (group commit).
    let mut tx = db.db.begin_write().unwrap();
    tx.set_durability(redb::Durability::None).unwrap();
    let a = p
        .apply(&tx, &STORE, &evil_op(&p, 3, PUT, b"a", b"1", 0))
        .unwrap();
    let bad = p
        .apply(
            &tx,
            &STORE,
            &evil_op(&p, 4, PANIC_AFTER_WRITES, b"w", b"x", 5),
        )
        .unwrap();
    let b = p
        .apply(&tx, &STORE, &evil_op(&p, 5, COPY, b"a", b"b", 0))
        .unwrap();
    tx.commit().unwrap();
    assert_eq!(a, ApplyOutcome::Applied { writes: 1 });
    assert!(matches!(no_op(bad), CallError::Trap(_)));
    assert_eq!(b, ApplyOutcome::Applied { writes: 1 });
    assert_eq!(
        get(&db, &p, &STORE, b"b").as_deref(),
        Some(&b"1"[..]),
        "COPY saw the earlier op's write"
    );
    for i in 0u32..5 {
        let mut k = b"w".to_vec();
        k.extend_from_slice(&i.to_be_bytes());
        assert_eq!(
            get(&db, &p, &STORE, &k),
            None,
            "write {i} before the trap is not visible"
        );
    }
    let tx = db.db.begin_read().unwrap();
    assert_eq!(recompute_digest(&tx, &STORE).unwrap(), digest(&db, &STORE));
}

#[test]
fn huge_query_reply_is_a_typed_error() {
    let (db, p) = (db(), evil());
    let max = runtime().config().max_reply_bytes;
    let huge = req(&p, "HugeReply", &[("bytes", Value::U64(max as u64 + 1024))]);
    let err = query(&db, &p, &STORE, "HugeReply", &huge).unwrap_err();
    assert!(
        matches!(err, CallError::ReplyTooLarge { max: m, .. } if m == max),
        "{err:?}"
    );
    let small = req(&p, "HugeReply", &[("bytes", Value::U64(1024))]);
    assert!(query(&db, &p, &STORE, "HugeReply", &small).unwrap().len() > 1024);
}

#[test]
fn scans_are_capped_and_scan_abuse_runs_out_of_fuel() {
    let (db, p) = (db(), evil());
    let cap = runtime().config().profile.max_scan_rows;
    let mut tx = db.db.begin_write().unwrap();
    tx.set_durability(redb::Durability::None).unwrap();
    for i in 0..(cap as u32 + 500) {
        let out = p
            .apply(
                &tx,
                &STORE,
                &evil_op(&p, i as u64 + 1, PUT, &i.to_be_bytes(), b"v", 0),
            )
            .unwrap();
        assert_eq!(out, ApplyOutcome::Applied { writes: 1 });
    }
    tx.commit().unwrap();

    let scan = |limit: u32, calls: u32, rev: bool| {
        let r = req(
            &p,
            "Scan",
            &[
                ("limit", Value::U32(limit)),
                ("calls", Value::U32(calls)),
                ("rev", Value::Bool(rev)),
            ],
        );
        query(&db, &p, &STORE, "Scan", &r)
    };
    let reply = decode(&output(&p, "Scan"), &scan(u32::MAX, 1, false).unwrap());
    assert_eq!(
        field(&reply, "rows").as_u32(),
        Some(cap as u32),
        "limit u32::MAX is capped"
    );
    let keys = as_list(&field(&reply, "keys"));
    assert_eq!(keys[0].as_bytes().unwrap().as_ref(), &0u32.to_be_bytes());
    let reply = decode(&output(&p, "Scan"), &scan(3, 1, true).unwrap());
    let keys: Vec<Vec<u8>> = as_list(&field(&reply, "keys"))
        .iter()
        .map(|k| k.as_bytes().unwrap().to_vec())
        .collect();
    let last = cap as u32 + 499;
    assert_eq!(
        keys,
        vec![
            last.to_be_bytes().to_vec(),
            (last - 1).to_be_bytes().to_vec(),
            (last - 2).to_be_bytes().to_vec()
        ]
    );

    let err = scan(u32::MAX, 1_000_000, false).unwrap_err();
    assert!(matches!(err, CallError::OutOfFuel { .. }), "{err:?}");
    // In apply the scans read state before fuel ran out: whether it runs
    // out could depend on what this replica held, so the store halts here
    // instead of recording a local no-op.
    match apply(
        &db,
        &p,
        &STORE,
        &evil_op(&p, 100_000, SCAN_ABUSE, b"", b"", 1_000_000),
    ) {
        ApplyOutcome::Halted { halt } => {
            assert!(halt.reason.contains("out of fuel"), "{}", halt.reason)
        }
        other => panic!("expected a halt, got {other:?}"),
    }
    put(&db, &p, &store(9), 100_001, b"still", b"fine");
}

#[test]
fn writes_in_query_are_refused_as_read_only() {
    let (db, p) = (db(), evil());
    let err = query(
        &db,
        &p,
        &STORE,
        "WriteInQuery",
        &req(&p, "WriteInQuery", &[("key", bytes(b"k"))]),
    )
    .unwrap_err();
    assert_eq!(err, CallError::ReadOnlyState { op: "set" });
    assert!(
        err.to_string().contains("state is read-only in query"),
        "{err}"
    );
    assert_eq!(get(&db, &p, &STORE, b"k"), None);
}

#[test]
fn key_value_and_write_budget_limits() {
    let (db, p) = (db(), evil());
    let cfg = runtime().config().profile;
    let err = no_op(apply(
        &db,
        &p,
        &STORE,
        &evil_op(&p, 1, HUGE_KEY, b"", b"", cfg.max_key_bytes as u32 + 1),
    ));
    assert!(matches!(err, CallError::KeyTooLarge { .. }), "{err:?}");
    let err = no_op(apply(
        &db,
        &p,
        &STORE,
        &evil_op(&p, 2, HUGE_VALUE, b"k", b"", cfg.max_value_bytes as u32 + 1),
    ));
    assert!(matches!(err, CallError::ValueTooLarge { .. }), "{err:?}");
    // The write budget: with the default fuel, fuel runs out first (writes
    // cost 4 fuel per byte), so give this runtime plenty of fuel.
    let rich = Runtime::new(RuntimeConfig {
        profile: Profile {
            fuel_apply: 2_000_000_000,
            ..Profile::v1()
        },
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let rich_p = rich.load(&wasm(EVIL)).unwrap();
    let flood = (cfg.max_apply_write_bytes / (64 << 10)) as u32 + 2;
    let err = no_op(apply(
        &db,
        &rich_p,
        &STORE,
        &evil_op(&p, 3, WRITE_FLOOD, b"", b"", flood),
    ));
    assert!(matches!(err, CallError::WriteBudget { .. }), "{err:?}");
    // With the default budget the same flood is stopped by fuel.
    let err = no_op(apply(
        &db,
        &p,
        &STORE,
        &evil_op(&p, 3, WRITE_FLOOD, b"", b"", flood),
    ));
    assert!(matches!(err, CallError::OutOfFuel { .. }), "{err:?}");
    assert_eq!(digest(&db, &STORE), [0u8; 32], "nothing was written");
    // At the limits exactly, writes succeed.
    let out = apply(
        &db,
        &p,
        &STORE,
        &evil_op(&p, 4, HUGE_KEY, b"", b"", cfg.max_key_bytes as u32),
    );
    assert_eq!(out, ApplyOutcome::Applied { writes: 1 });
}

#[test]
fn stack_overflow_halts_the_store() {
    // Where the stack runs out depends on the machine code wasmtime
    // generated, not only on the op: never a replicated no-op.
    let (db, p) = (db(), evil());
    let s = store(8);
    match apply(&db, &p, &s, &evil_op(&p, 1, STACK_OVERFLOW, b"", b"", 0)) {
        ApplyOutcome::Halted { halt } => assert!(halt.reason.contains("stack"), "{}", halt.reason),
        other => panic!("expected a halt, got {other:?}"),
    }
    put(&db, &p, &STORE, 2, b"k", b"v");
}

#[test]
fn rejections_and_method_lookups_are_typed() {
    let (db, p) = (db(), evil());
    assert_eq!(
        query(&db, &p, &STORE, "Reject", &[]).unwrap_err(),
        CallError::Rejected("evil says no".into())
    );
    assert_eq!(
        query(&db, &p, &STORE, "Nope", &[]).unwrap_err(),
        CallError::UnknownMethod("Nope".into())
    );
    assert_eq!(
        query(&db, &p, &STORE, "Op", &[]).unwrap_err(),
        CallError::NotAQuery("Op".into())
    );
    assert_eq!(
        prepare(&db, &p, &STORE, &ctx(1, 1), "Get", &[]).unwrap_err(),
        CallError::NotACommand("Get".into())
    );
    let big = vec![0u8; runtime().config().max_request_bytes + 1];
    assert!(matches!(
        query(&db, &p, &STORE, "Get", &big).unwrap_err(),
        CallError::RequestTooLarge { .. }
    ));
    // prepare passes the request through as the op payload.
    let payload = evil_op(&p, 1, PUT, b"k", b"v", 0).payload;
    assert_eq!(
        prepare(&db, &p, &STORE, &ctx(1, 1), "Op", &payload).unwrap(),
        payload
    );
}

#[test]
fn stores_are_isolated_and_digest_tracks_state() {
    let (db, p) = (db(), evil());
    let (s1, s2) = (store(1), store(2));
    assert_eq!(digest(&db, &s1), [0u8; 32]);
    put(&db, &p, &s1, 1, b"k", b"v");
    let d1 = digest(&db, &s1);
    assert_ne!(d1, [0u8; 32]);
    assert_eq!(get(&db, &p, &s2, b"k"), None);
    assert_eq!(digest(&db, &s2), [0u8; 32]);
    // Overwrite changes the digest; writing the old value back restores it.
    put(&db, &p, &s1, 2, b"k", b"w");
    assert_ne!(digest(&db, &s1), d1);
    put(&db, &p, &s1, 3, b"k", b"v");
    assert_eq!(digest(&db, &s1), d1);
    // Removing the last pair brings the digest back to zero.
    assert_eq!(
        apply(&db, &p, &s1, &evil_op(&p, 4, REMOVE, b"k", b"", 0)),
        ApplyOutcome::Applied { writes: 1 }
    );
    assert_eq!(digest(&db, &s1), [0u8; 32]);
    // The digest is the sum of pair hashes.
    put(&db, &p, &s2, 5, b"x", b"1");
    assert_eq!(
        digest(&db, &s2),
        lattice_host::runtime::pair_hash(b"x", b"1")
    );
}

#[test]
fn digest_is_order_independent() {
    let p = evil();
    let ops: Vec<_> = (0u8..6)
        .map(|i| evil_op(&p, i as u64 + 1, PUT, &[b'k', i], &[i; 3], 0))
        .chain([evil_op(&p, 7, REMOVE, b"k\x02", b"", 0)])
        .collect();
    // Every order that keeps the remove after the put it removes.
    let orders: [&[usize]; 3] = [
        &[0, 1, 2, 3, 4, 5, 6],
        &[5, 4, 3, 2, 6, 1, 0],
        &[2, 0, 6, 4, 1, 5, 3],
    ];
    let mut digests = Vec::new();
    for order in orders {
        let db = db();
        for &i in order {
            assert!(matches!(
                apply(&db, &p, &STORE, &ops[i]),
                ApplyOutcome::Applied { .. }
            ));
        }
        let tx = db.db.begin_read().unwrap();
        assert_eq!(recompute_digest(&tx, &STORE).unwrap(), digest(&db, &STORE));
        digests.push(digest(&db, &STORE));
    }
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
    assert_ne!(digests[0], [0u8; 32]);
}

#[test]
fn concurrent_callers_share_one_plugin() {
    let (db, p) = (db(), evil());
    put(&db, &p, &STORE, 1, b"k", b"v");
    let db = Arc::new(db);
    let handles: Vec<_> = (0..4)
        .map(|i| {
            let (db, p) = (db.clone(), p.clone());
            std::thread::spawn(move || {
                for _ in 0..50 {
                    if i == 0 {
                        // One thread keeps killing the instance.
                        let err = query(&db, &p, &STORE, "WriteInQuery", &[]).unwrap_err();
                        assert!(matches!(err, CallError::ReadOnlyState { .. }));
                    } else {
                        assert_eq!(get(&db, &p, &STORE, b"k").as_deref(), Some(&b"v"[..]));
                    }
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("no panic");
    }
}

#[test]
fn wasi_plugin_is_refused_naming_the_import() {
    let err = runtime().load(&wasm(WASI)).unwrap_err();
    match &err {
        LoadError::ForbiddenImport { name } => assert!(name.starts_with("wasi:"), "{name}"),
        other => panic!("expected ForbiddenImport, got {other:?}"),
    }
    assert!(err.to_string().contains("wasi:"), "{err}");
}

#[test]
fn corrupt_and_oversized_blobs_are_refused() {
    let rt = runtime();
    let good = wasm(EVIL);
    for (what, bytes) in [
        ("empty", Vec::new()),
        ("garbage", b"definitely not wasm".to_vec()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("core module", b"\0asm\x01\0\0\0".to_vec()),
    ] {
        match rt.load(&bytes) {
            Err(LoadError::Invalid(_)) => {}
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
    }
    let mut flipped = good.clone();
    let mid = flipped.len() / 3;
    flipped[mid] ^= 0xff;
    assert!(
        rt.load(&flipped).is_err(),
        "a flipped byte is refused or fails to describe"
    );
    let huge = vec![0u8; rt.config().max_wasm_bytes + 1];
    assert!(matches!(rt.load(&huge), Err(LoadError::TooLarge { .. })));
    // The runtime still works.
    rt.load(&good).expect("good plugin still loads");
}

#[test]
fn compile_cache_hits_and_recovers_from_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = || RuntimeConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        max_instances: 4,
        ..RuntimeConfig::default()
    };
    let good = wasm(EVIL);
    let artifact = || {
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    };
    let check_works = |p: &Plugin| {
        let db = db();
        put(&db, p, &STORE, 1, b"k", b"v");
        assert_eq!(get(&db, p, &STORE, b"k").as_deref(), Some(&b"v"[..]));
    };

    // (Each plugin is dropped before the next load: while one is alive, the
    // runtime hands out that same plugin without touching the disk cache.)
    let rt = Runtime::new(cfg()).unwrap();
    assert_eq!(rt.load(&good).unwrap().cache_outcome(), CacheOutcome::Miss);
    let p = rt.load(&good).unwrap();
    assert_eq!(p.cache_outcome(), CacheOutcome::Hit);
    check_works(&p);
    assert!(
        Arc::ptr_eq(&p, &rt.load(&good).unwrap()),
        "same bytes, same plugin"
    );
    drop(p);
    // A new runtime (a restarted process) hits too.
    let rt2 = Runtime::new(cfg()).unwrap();
    assert_eq!(rt2.load(&good).unwrap().cache_outcome(), CacheOutcome::Hit);

    // Flip a byte in the middle of the artifact.
    let path = artifact();
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let p = rt2.load(&good).unwrap();
    assert_eq!(p.cache_outcome(), CacheOutcome::Recovered);
    check_works(&p);
    drop(p);
    assert_eq!(rt2.load(&good).unwrap().cache_outcome(), CacheOutcome::Hit);

    // Truncate it; then replace it with garbage.
    let bytes = std::fs::read(artifact()).unwrap();
    std::fs::write(artifact(), &bytes[..100]).unwrap();
    assert_eq!(
        rt2.load(&good).unwrap().cache_outcome(),
        CacheOutcome::Recovered
    );
    std::fs::write(artifact(), b"garbage").unwrap();
    let p = rt2.load(&good).unwrap();
    assert_eq!(p.cache_outcome(), CacheOutcome::Recovered);
    check_works(&p);

    // The WASI plugin is refused and leaves no artifact behind.
    assert!(rt2.load(&wasm(WASI)).is_err());
    artifact();

    // Without a cache dir, nothing is cached.
    let rt3 = Runtime::new(RuntimeConfig {
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    assert_eq!(
        rt3.load(&good).unwrap().cache_outcome(),
        CacheOutcome::Disabled
    );
}

#[test]
fn tiny_fuel_budget_fails_cleanly() {
    // With a budget too small even to describe, load fails with a typed error.
    let rt = Runtime::new(RuntimeConfig {
        fuel_call: 10,
        max_instances: 2,
        ..RuntimeConfig::default()
    })
    .unwrap();
    match rt.load(&wasm(EVIL)) {
        Err(LoadError::Describe(CallError::OutOfFuel { budget: 10 })) => {}
        other => panic!("expected describe to run out of fuel, got {other:?}"),
    }
}

#[test]
fn a_pool_of_one_serves_every_plugin_in_turn() {
    // Plugins hold no instance: with one slot, any number of plugins load
    // and run, one call at a time.
    let rt = Runtime::new(RuntimeConfig {
        max_instances: 1,
        ..RuntimeConfig::default()
    })
    .unwrap();
    let p1 = rt.load(&wasm(EVIL)).unwrap();
    let p2 = rt.load(&wasm(COUNTER)).unwrap();
    let p3 = rt.load(lattice_host::runtime::builtin::KV).unwrap();
    let db = db();
    assert!(query(&db, &p1, &STORE, "WriteInQuery", &[]).is_err());
    put(&db, &p1, &STORE, 1, b"k", b"v");
    assert_eq!(get(&db, &p1, &STORE, b"k").as_deref(), Some(&b"v"[..]));
    assert!(query(&db, &p2, &store(2), "Value", &[]).is_ok());
    let r = req(&p3, "Get", &[("key", text("k"))]);
    assert!(query(&db, &p3, &store(3), "Get", &r).is_ok());
}
