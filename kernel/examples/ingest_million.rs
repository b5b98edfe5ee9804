//! Peak memory while ingesting a large foreign log: generates N entries
//! (default 1,000,000) from 5 authors in chunks, ingests each chunk as a
//! peer batch, then prints the rate and the process's peak RSS (VmHWM).
//!
//! `cargo run --release -p lattice-kernel --example ingest_million [N]`

use std::sync::Arc;
use std::time::Instant;

use lattice_kernel::*;

#[path = "../benches/support.rs"]
mod support;

fn peak_rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let k = Kernel::open(
        &dir.path().join("log.redb"),
        Identity::generate(),
        KernelConfig::default(),
        Arc::new(NoHook),
    )
    .expect("open log");
    let mut peer = support::ForeignAuthors::new(5);
    let store = peer.store();
    let mut ingest_time = std::time::Duration::ZERO;
    let mut done = 0;
    while done < n {
        let chunk = peer.batch(4096.min(n - done));
        let t = Instant::now();
        let r = k.ingest(&chunk).expect("ingest");
        ingest_time += t.elapsed();
        assert_eq!(r.committed.len(), chunk.len());
        done += chunk.len();
    }
    let status = k.status(&store).expect("status");
    println!(
        "ingested {} entries in {:.1} s of ingest time: {:.0} entries/s; peak RSS {} MiB; log file {} MiB",
        status.entries,
        ingest_time.as_secs_f64(),
        status.entries as f64 / ingest_time.as_secs_f64(),
        peak_rss_kib().unwrap_or(0) / 1024,
        std::fs::metadata(dir.path().join("log.redb"))
            .map(|m| m.len() / (1 << 20))
            .unwrap_or(0)
    );
}
