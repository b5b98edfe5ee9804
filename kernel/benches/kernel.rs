//! Kernel benchmarks (run by hand, release): `cargo bench -p lattice-kernel`.
//!
//! - local commit rate: 10k small entries appended back to back (sign +
//!   validate + durable group commit);
//! - single durable append latency (one entry, nothing else in flight);
//! - ingest of a 100k-entry foreign batch (decode + batch verify + commit);
//! - verified reads: 10k entries of 1 KiB read back through `log` (each
//!   body hashed and compared with its id), and blake3 of 1 KiB alone.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use lattice_kernel::*;

mod support;

fn kernel(dir: &std::path::Path) -> Kernel {
    Kernel::open(
        &dir.join("log.redb"),
        Identity::generate(),
        KernelConfig::default(),
        Arc::new(NoHook),
    )
    .unwrap()
}

fn local_commit(c: &mut Criterion) {
    let mut g = c.benchmark_group("local_commit");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.throughput(Throughput::Elements(10_000));
    let dir = tempfile::tempdir().unwrap();
    let k = kernel(dir.path());
    let store = StoreId::random();
    g.bench_function("10k_appends_durable", |b| {
        b.iter(|| {
            let pending: Vec<_> = (0..10_000u32)
                .map(|i| k.append_async(store, i.to_le_bytes().to_vec()).unwrap())
                .collect();
            for p in pending {
                p.wait().unwrap();
            }
        })
    });
    g.finish();
}

fn single_latency(c: &mut Criterion) {
    let mut g = c.benchmark_group("single_append");
    g.sample_size(50);
    let dir = tempfile::tempdir().unwrap();
    let k = kernel(dir.path());
    let store = StoreId::random();
    g.bench_function("durable_latency", |b| {
        b.iter(|| k.append(store, b"x".to_vec()).unwrap())
    });
    g.finish();
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    g.sample_size(10).measurement_time(Duration::from_secs(60));
    let n = 100_000;
    g.throughput(Throughput::Elements(n as u64));
    let batch = support::ForeignAuthors::new(5).batch(n);
    g.bench_function("100k_foreign_entries", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let k = kernel(dir.path());
                let start = Instant::now();
                for chunk in batch.chunks(4096) {
                    let r = k.ingest(chunk).unwrap();
                    assert_eq!(r.committed.len(), chunk.len());
                }
                total += start.elapsed();
            }
            total
        })
    });
    g.finish();
}

fn verified_read(c: &mut Criterion) {
    let mut g = c.benchmark_group("verified_read");
    g.sample_size(20);
    let dir = tempfile::tempdir().unwrap();
    let k = Kernel::open(
        &dir.path().join("log.redb"),
        Identity::generate(),
        KernelConfig {
            durable: false,
            ..KernelConfig::default()
        },
        Arc::new(NoHook),
    )
    .unwrap();
    let store = StoreId::random();
    let pending: Vec<_> = (0..10_000u32)
        .map(|i| {
            let mut p = vec![(i % 251) as u8; 1024];
            p[..4].copy_from_slice(&i.to_le_bytes());
            k.append_async(store, p).unwrap()
        })
        .collect();
    for p in pending {
        p.wait().unwrap();
    }
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("log_10k_entries_1KiB", |b| {
        b.iter(|| {
            let mut n = 0;
            for from in (0..10_000).step_by(1000) {
                n += k.log(&store, from, 1000).unwrap().len();
            }
            assert_eq!(n, 10_000);
        })
    });
    g.throughput(Throughput::Elements(1));
    let body = vec![7u8; 1100];
    g.bench_function("blake3_1KiB_body", |b| {
        b.iter(|| blake3::hash(std::hint::black_box(&body)))
    });
    g.finish();
}

criterion_group!(benches, local_commit, single_latency, ingest, verified_read);
criterion_main!(benches);
