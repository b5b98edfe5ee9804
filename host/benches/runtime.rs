//! Runtime benchmarks (run by hand in release: `cargo bench -p lattice-host
//! --bench runtime`). Every call runs in a fresh instance. Targets: kv put
//! apply ≤ 10 µs/op, cached plugin load < 20 ms, and the committed kv put
//! rate with 1000 puts per durable transaction.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lattice_host::runtime::{
    ApplyOutcome, Context, MigrateOutcome, Op, Plugin, Profile, Runtime, RuntimeConfig, builtin,
};
use prost::Message as _;
use prost_reflect::{DynamicMessage, Value};
use redb::{Database, Durability, ReadableDatabase};

const EVIL: &str = env!("LATTICE_TEST_PLUGIN_EVIL_WASM");
const COUNTER: &str = env!("LATTICE_PLUGIN_COUNTER_WASM");
/// The counter as built against lattice:plugin@0.1.0 (checked in).
const COUNTER_V0_1_0: &[u8] = include_bytes!("../tests/fixtures/counter-v0.1.0.wasm");
const STORE: [u8; 16] = [1; 16];

fn encode(desc: &prost_reflect::MessageDescriptor, fields: &[(&str, Value)]) -> Vec<u8> {
    let mut m = DynamicMessage::new(desc.clone());
    for (k, v) in fields {
        m.set_field_by_name(k, v.clone());
    }
    m.encode_to_vec()
}

fn op(n: u64, payload: Vec<u8>) -> Op {
    let mut id = blake3::hash(&n.to_le_bytes()).as_bytes().to_vec();
    id[0] ^= 1;
    Op {
        id,
        author: vec![1; 32],
        seq: n + 1,
        hlc: (1_700_000_000_000u64 << 16) + n,
        deps: Vec::new(),
        payload,
    }
}

/// kv `Put k{n}` payloads, prepared on an empty store (no heads to supersede).
fn kv_payloads(p: &Plugin, db: &Database, from: u64, count: u64) -> Vec<Vec<u8>> {
    let desc = p.info().method("Put").expect("Put").input.clone();
    let tx = db.begin_read().expect("read");
    let ctx = Context {
        author: vec![1; 32],
        hlc: 1,
    };
    (from..from + count)
        .map(|n| {
            let req = encode(
                &desc,
                &[
                    ("key", Value::String(format!("key/{n:012}"))),
                    (
                        "value",
                        Value::Bytes(prost::bytes::Bytes::from_static(b"some value bytes")),
                    ),
                ],
            );
            p.prepare(&tx, &[0xee; 16], &ctx, "Put", &req)
                .expect("prepare")
                .op
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let cache = tempfile::tempdir().expect("tempdir");
    let rt = Runtime::new(RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeConfig::default()
    })
    .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::create(dir.path().join("bench.redb")).expect("db");

    // --- apply overhead, inside one open write transaction.
    let evil = rt
        .load(&std::fs::read(EVIL).expect("evil wasm"))
        .expect("load evil");
    let kv = rt.load(builtin::KV).expect("load kv");
    let mut g = c.benchmark_group("apply");
    g.throughput(Throughput::Elements(1));
    let evil_put = |n: u64| {
        encode(
            &evil.info().op_type,
            &[
                ("kind", Value::EnumNumber(0)),
                ("key", Value::Bytes(n.to_be_bytes().to_vec().into())),
                (
                    "value",
                    Value::Bytes(prost::bytes::Bytes::from_static(b"v")),
                ),
            ],
        )
    };
    let mut counter = 0u64;
    g.bench_function("minimal put (evil)", |b| {
        b.iter_custom(|iters| {
            let ops: Vec<Op> = (0..iters)
                .map(|i| op(counter + i, evil_put(counter + i)))
                .collect();
            counter += iters;
            let mut tx = db.begin_write().expect("write");
            tx.set_durability(Durability::None).expect("durability");
            let start = Instant::now();
            for o in &ops {
                let out = evil.apply(&tx, &STORE, o).expect("apply");
                debug_assert!(matches!(out, ApplyOutcome::Applied { .. }));
                black_box(out);
            }
            let t = start.elapsed();
            tx.commit().expect("commit");
            t
        })
    });
    let mut counter = 0u64;
    g.bench_function("kv put", |b| {
        b.iter_custom(|iters| {
            let payloads = kv_payloads(&kv, &db, 10_000_000 + counter, iters);
            let ops: Vec<Op> = payloads
                .into_iter()
                .enumerate()
                .map(|(i, p)| op(10_000_000 + counter + i as u64, p))
                .collect();
            counter += iters;
            let mut tx = db.begin_write().expect("write");
            tx.set_durability(Durability::None).expect("durability");
            let start = Instant::now();
            for o in &ops {
                black_box(kv.apply(&tx, &STORE, o).expect("apply"));
            }
            let t = start.elapsed();
            tx.commit().expect("commit");
            t
        })
    });
    // The same counter op through the 0.1.0 and the 0.2.0 bindings.
    let counters = [
        (
            "counter increment, lattice:plugin@0.1.0",
            rt.load(COUNTER_V0_1_0).expect("0.1.0"),
        ),
        (
            "counter increment, lattice:plugin@0.2.0",
            rt.load(&std::fs::read(COUNTER).expect("counter wasm"))
                .expect("0.2.0"),
        ),
    ];
    for (name, p) in &counters {
        let inc = encode(&p.info().op_type, &[("increment", Value::U64(1))]);
        let mut counter = 0u64;
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let ops: Vec<Op> = (0..iters)
                    .map(|i| op(20_000_000 + counter + i, inc.clone()))
                    .collect();
                counter += iters;
                let mut tx = db.begin_write().expect("write");
                tx.set_durability(Durability::None).expect("durability");
                let start = Instant::now();
                for o in &ops {
                    black_box(p.apply(&tx, &[2; 16], o).expect("apply"));
                }
                let t = start.elapsed();
                tx.commit().expect("commit");
                t
            })
        });
    }
    g.finish();

    // --- a migration rewriting 100k rows in one transaction (evil's
    // migrate(1000): every `m/` row gets a byte appended). Profile v1's
    // budget is far too small for that (see docs/benchmarks.md); v2's
    // migration budget fits it.
    let rows = 100_000u64;
    {
        let tx = db.begin_write().expect("write");
        for i in 0..rows {
            let payload = encode(
                &evil.info().op_type,
                &[
                    ("kind", Value::EnumNumber(0)),
                    ("key", Value::Bytes(format!("m/{i:08}").into_bytes().into())),
                    (
                        "value",
                        Value::Bytes(prost::bytes::Bytes::from_static(b"v")),
                    ),
                ],
            );
            evil.apply(&tx, &[3; 16], &op(30_000_000 + i, payload))
                .expect("apply");
        }
        tx.commit().expect("commit");
    }
    // Profile v2 (what `store upgrade` pins) has the migration budget.
    let big = Profile::V2;
    let mut g = c.benchmark_group("migrate");
    g.sample_size(10).throughput(Throughput::Elements(rows));
    g.bench_function("100k rows, one transaction, profile v2", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let tx = db.begin_write().expect("write");
                let start = Instant::now();
                let out = evil
                    .migrate_with(&tx, &[3; 16], 1000, &big)
                    .expect("migrate");
                total += start.elapsed();
                assert_eq!(
                    out,
                    MigrateOutcome::Migrated {
                        writes: rows as usize
                    }
                );
                drop(tx); // aborted: the next iteration migrates the same rows
            }
            total
        })
    });
    let tx = db.begin_write().expect("write");
    match evil
        .migrate_with(&tx, &[3; 16], 1000, &Profile::CURRENT)
        .expect("migrate")
    {
        MigrateOutcome::Failed(e) => eprintln!("100k-row migration under profile v1: {e}"),
        other => eprintln!("100k-row migration under profile v1: {other:?}"),
    }
    drop(tx);
    g.finish();

    // --- a query (fresh instance, read snapshot).
    let mut g = c.benchmark_group("query");
    g.throughput(Throughput::Elements(1));
    let get = encode(
        &kv.info().method("Get").expect("Get").input,
        &[("key", Value::String("key/000010000000".into()))],
    );
    g.bench_function("kv get", |b| {
        let tx = db.begin_read().expect("read");
        b.iter(|| black_box(kv.query(&tx, &STORE, "Get", &get).expect("query")))
    });
    g.finish();

    // --- plugin load time.
    let mut g = c.benchmark_group("load");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    let nocache = Runtime::new(RuntimeConfig::default()).expect("runtime");
    g.bench_function("kv compile (no cache)", |b| {
        b.iter(|| black_box(nocache.load(builtin::KV).expect("load")))
    });
    rt.load(builtin::KV).expect("warm cache");
    // A new runtime each time: the same runtime would hand back the loaded
    // plugin without touching the artifact.
    let cached = || {
        Runtime::new(RuntimeConfig {
            cache_dir: Some(cache.path().to_path_buf()),
            max_instances: 2,
            ..RuntimeConfig::default()
        })
        .expect("runtime")
    };
    g.bench_function("kv cached artifact", |b| {
        b.iter_batched(
            cached,
            |r| black_box(r.load(builtin::KV).expect("load")),
            criterion::BatchSize::PerIteration,
        )
    });
    g.bench_function("kv already loaded (same runtime)", |b| {
        b.iter(|| black_box(rt.load(builtin::KV).expect("load")))
    });
    g.finish();

    // --- committed kv puts through wasm + redb, 1000 per durable commit.
    let mut g = c.benchmark_group("commit");
    g.sample_size(10).throughput(Throughput::Elements(1000));
    let mut counter = 0u64;
    g.bench_function("kv puts, 1000 per durable tx", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let base = 50_000_000 + counter;
                let ops: Vec<Op> = kv_payloads(&kv, &db, base, 1000)
                    .into_iter()
                    .enumerate()
                    .map(|(i, p)| op(base + i as u64, p))
                    .collect();
                counter += 1000;
                let start = Instant::now();
                let tx = db.begin_write().expect("write");
                for o in &ops {
                    black_box(kv.apply(&tx, &STORE, o).expect("apply"));
                }
                tx.commit().expect("durable commit");
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
