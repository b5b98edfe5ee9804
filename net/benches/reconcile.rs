//! Hand-run benchmark (release): `cargo bench -p lattice-net --bench reconcile`
//! (`-- 100000` for a smaller log; the default is 1,000,000 entries).
//!
//! Issue 11's figures on real kernels and real Iroh endpoints on loopback:
//! 1. 1M vs 1M entries from 10,000 authors with 20 differences (10 on each
//!    side): round trips and bytes by range-based reconciliation, and the
//!    same by version vectors for comparison;
//! 2. a fresh node catching up all 1M entries, in a child process (so its
//!    peak RSS is the node's alone): time and peak RSS.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

use lattice_kernel::{
    AuthorId, EntryId, Identity, Kernel, KernelConfig, NoHook, SignedEntry, StoreId,
};
use lattice_net::{Net, NetConfig, NoBlobs, NoInvites, Policy};

const AUTHORS: usize = 10_000;

struct Everyone(StoreId);
impl Policy for Everyone {
    fn may_sync(&self, store: &StoreId, _peer: &AuthorId) -> bool {
        *store == self.0
    }
    fn stores(&self) -> Vec<StoreId> {
        vec![self.0]
    }
    fn topic_key(&self, _store: &StoreId) -> Option<[u8; 32]> {
        None
    }
}

fn kernel(path: &Path, durable: bool) -> Arc<Kernel> {
    Arc::new(
        Kernel::open(
            path,
            Identity::generate(),
            KernelConfig {
                durable,
                ..KernelConfig::default()
            },
            Arc::new(NoHook),
        )
        .unwrap(),
    )
}

async fn net(kernel: &Arc<Kernel>, store: StoreId, reconcile_authors: usize) -> Net {
    Net::spawn(
        Arc::clone(kernel),
        NetConfig {
            anti_entropy: None,
            gossip: false,
            reconcile_authors,
            ..NetConfig::default()
        },
        Arc::new(Everyone(store)),
        Arc::new(NoBlobs),
        Arc::new(NoInvites),
    )
    .await
    .unwrap()
}

fn sign(x: &Identity, store: StoreId, seq: u64, prev: EntryId, hlc: u64) -> SignedEntry {
    SignedEntry::sign(
        x,
        lattice_kernel::Draft {
            store,
            seq,
            prev,
            hlc,
            deps: vec![],
            payload: seq.to_le_bytes().to_vec(),
        },
    )
}

/// `AUTHORS` chains of `per` entries, signed on both cores and ingested in
/// rounds of 100 authors. Returns each author with its last entry's id.
fn fill(k: &Kernel, store: StoreId, per: u64) -> Vec<(Identity, EntryId)> {
    let base = lattice_kernel::now_ms() << lattice_kernel::COUNTER_BITS;
    let mut out = Vec::with_capacity(AUTHORS);
    for round in 0..AUTHORS / 100 {
        let ids: Vec<Identity> = (0..100).map(|_| Identity::generate()).collect();
        let chains: Vec<Vec<SignedEntry>> = std::thread::scope(|sc| {
            let hs: Vec<_> = ids
                .chunks(50)
                .enumerate()
                .map(|(half, xs)| {
                    sc.spawn(move || {
                        xs.iter()
                            .enumerate()
                            .map(|(i, x)| {
                                let a = (round * 100 + half * 50 + i) as u64;
                                let mut prev = EntryId::ZERO;
                                (1..=per)
                                    .map(|seq| {
                                        let e = sign(x, store, seq, prev, base + a * per + seq);
                                        prev = e.id;
                                        e
                                    })
                                    .collect::<Vec<_>>()
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            hs.into_iter().flat_map(|h| h.join().unwrap()).collect()
        });
        let wires: Vec<Vec<u8>> = chains.iter().flatten().map(|e| e.to_wire()).collect();
        let r = k.ingest(&wires).unwrap();
        assert_eq!(r.committed.len(), wires.len());
        for (x, c) in ids.into_iter().zip(&chains) {
            out.push((x, c.last().unwrap().id));
        }
    }
    out
}

/// Peak resident set of this process, in MiB (Linux).
fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// The child: a fresh, durable node that catches up everything from the
/// parent's node and reports time and its own peak RSS.
async fn catch_up(peer: &str, addr: &str, store: &str) {
    let (peer, store) = (
        AuthorId::from_hex(peer).unwrap(),
        StoreId::from_uuid(store).unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let k = kernel(&dir.path().join("log.redb"), true);
    let n = net(&k, store, lattice_net::RECONCILE_AUTHORS).await;
    n.add_peer(peer, vec![addr.parse().unwrap()]);
    let t0 = Instant::now();
    let st = n.sync_store(peer, store).await.unwrap();
    let secs = t0.elapsed().as_secs_f64();
    println!(
        "catch-up of {} entries (fresh durable node): {secs:.2} s ({:.0} entries/s), {:.1} MB, peak RSS {:.0} MiB",
        st.received,
        st.received as f64 / secs,
        st.bytes as f64 / 1e6,
        peak_rss_mib()
    );
    n.shutdown().await;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--catch-up") {
        return catch_up(&args[i + 1], &args[i + 2], &args[i + 3]).await;
    }
    let total: usize = args
        .iter()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let per = (total / AUTHORS).max(1) as u64;
    let store = StoreId::random();
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (dir.path().join("a.redb"), dir.path().join("b.redb"));
    let t0 = Instant::now();
    let authors = {
        let k = kernel(&pa, false);
        fill(&k, store, per)
    };
    std::fs::copy(&pa, &pb).unwrap();
    println!(
        "setup: {} entries from {AUTHORS} authors, signed and logged twice in {:.0} s",
        per as usize * AUTHORS,
        t0.elapsed().as_secs_f64()
    );
    let (ka, kb) = (kernel(&pa, false), kernel(&pb, false));
    // 20 differences: 10 chains grow on A only, 10 others on B only.
    let grow = |k: &Kernel, range: std::ops::Range<usize>, hlc: u64| {
        let es: Vec<Vec<u8>> = range
            .map(|i| {
                let (x, prev) = &authors[i];
                sign(x, store, per + 1, *prev, hlc + i as u64).to_wire()
            })
            .collect();
        assert_eq!(k.ingest(&es).unwrap().committed.len(), es.len());
    };
    let now = (lattice_kernel::now_ms() + 60_000) << lattice_kernel::COUNTER_BITS;
    grow(&ka, 0..10, now);
    grow(&kb, 10..20, now);
    let (a, b) = (
        net(&ka, store, lattice_net::RECONCILE_AUTHORS).await,
        net(&kb, store, lattice_net::RECONCILE_AUTHORS).await,
    );
    a.add_peer(b.id(), b.addrs());
    let st = a.sync_store(b.id(), store).await.unwrap();
    assert_eq!((st.sent, st.received), (10, 10), "{st:?}");
    assert_eq!(
        ka.status(&store).unwrap().digest,
        kb.status(&store).unwrap().digest
    );
    println!(
        "reconciliation, {} vs {} entries, {AUTHORS} authors, 20 differences: {} round trips, {:.1} KB, {:.0} ms",
        ka.status(&store).unwrap().entries - 10,
        kb.status(&store).unwrap().entries - 10,
        st.round_trips,
        st.bytes as f64 / 1e3,
        st.duration.as_secs_f64() * 1e3
    );
    // The same kind of difference again (20 other chains), by version
    // vectors.
    a.shutdown().await;
    let v = net(&ka, store, usize::MAX).await;
    v.add_peer(b.id(), b.addrs());
    grow(&ka, 20..30, now + 100);
    grow(&kb, 30..40, now + 100);
    let st = v.sync_store(b.id(), store).await.unwrap();
    assert_eq!((st.sent, st.received), (10, 10), "{st:?}");
    println!(
        "version vectors, same stores, 20 differences: {} round trip, {:.1} KB, {:.0} ms",
        st.round_trips,
        st.bytes as f64 / 1e3,
        st.duration.as_secs_f64() * 1e3
    );
    // A fresh node in another process catches up everything from B.
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--catch-up",
            &b.id().to_hex(),
            &b.addrs()[0].to_string(),
            &store.to_uuid(),
        ])
        .status()
        .unwrap();
    assert!(child.success());
    v.shutdown().await;
    b.shutdown().await;
}
