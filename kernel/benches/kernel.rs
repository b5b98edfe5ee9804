//! Kernel benchmarks (run by hand, release): `cargo bench -p lattice-kernel`.
//!
//! - local commit rate: 10k small entries appended back to back (sign +
//!   validate + durable group commit);
//! - single durable append latency (one entry, nothing else in flight);
//! - ingest of a 100k-entry foreign batch (decode + batch verify + commit).

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

criterion_group!(benches, local_commit, single_latency, ingest);
criterion_main!(benches);
