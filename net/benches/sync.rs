//! Hand-run benchmark (release): `cargo bench -p lattice-net --bench sync`.
//!
//! Prints sync time and bytes for 10k entries with 100 differences, a full
//! catch-up of 10k entries, and gossip delivery latency (median / p99)
//! across three nodes. Real kernels (durable, fsync on) and real Iroh
//! endpoints on loopback.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lattice_kernel::{
    AuthorId, CommitHook, EntryId, HookError, Identity, Kernel, KernelConfig, SignedEntry, StoreId,
};
use lattice_net::{Announcer, Net, NetConfig, NoBlobs, NoInvites, Policy};

struct Everyone(StoreId);
impl Policy for Everyone {
    fn may_sync(&self, store: &StoreId, _peer: &AuthorId) -> bool {
        *store == self.0
    }
    fn stores(&self) -> Vec<StoreId> {
        vec![self.0]
    }
    fn topic_key(&self, store: &StoreId) -> Option<[u8; 32]> {
        Some(*blake3::hash(&store.0).as_bytes())
    }
}

struct Hook {
    announcer: Announcer,
    seen: Mutex<HashMap<EntryId, Instant>>,
    /// Off for the sync figures, so gossip does not move entries meanwhile.
    gossip: AtomicBool,
}
impl CommitHook for Hook {
    fn apply(&self, _: &redb::WriteTransaction, _: &SignedEntry) -> Result<(), HookError> {
        Ok(())
    }
    fn committed(&self, entries: &[SignedEntry]) {
        let now = Instant::now();
        let mut s = self.seen.lock().unwrap();
        for e in entries {
            s.insert(e.id, now);
        }
        drop(s);
        if self.gossip.load(Ordering::SeqCst) {
            self.announcer.announce(entries);
        }
    }
}

struct Node {
    _dir: tempfile::TempDir,
    kernel: Arc<Kernel>,
    net: Net,
    hook: Arc<Hook>,
}

async fn node(store: StoreId) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let announcer = Announcer::new();
    let hook = Arc::new(Hook {
        announcer: announcer.clone(),
        seen: Mutex::new(HashMap::new()),
        gossip: AtomicBool::new(false),
    });
    let kernel = Arc::new(
        Kernel::open(
            &dir.path().join("log.redb"),
            Identity::generate(),
            KernelConfig::default(),
            hook.clone(),
        )
        .unwrap(),
    );
    let net = Net::spawn(
        kernel.clone(),
        NetConfig {
            anti_entropy: None,
            gossip_rejoin: Duration::from_millis(300),
            announcer: Some(announcer),
            ..NetConfig::default()
        },
        Arc::new(Everyone(store)),
        Arc::new(NoBlobs),
        Arc::new(NoInvites),
    )
    .await
    .unwrap();
    Node {
        _dir: dir,
        kernel,
        net,
        hook,
    }
}

fn link(nodes: &[&Node]) {
    for a in nodes {
        for b in nodes {
            if a.net.id() != b.net.id() {
                a.net.add_peer(b.net.id(), b.net.addrs());
            }
        }
    }
}

fn write(k: &Kernel, s: StoreId, n: usize) {
    let p: Vec<_> = (0..n)
        .map(|i| {
            k.append_async(s, format!("payload {i:0100}").into_bytes())
                .unwrap()
        })
        .collect();
    for p in p {
        p.wait().unwrap();
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let s = StoreId::random();
    let a = node(s).await;
    let b = node(s).await;
    let c = node(s).await;
    link(&[&a, &b, &c]);

    // 10k entries on A, 9,900 of them already on B.
    write(&a.kernel, s, 9_900);
    b.net.sync_store(a.net.id(), s).await.unwrap();
    write(&a.kernel, s, 100);
    let st = b.net.sync_store(a.net.id(), s).await.unwrap();
    assert_eq!(st.received, 100);
    println!(
        "sync N=10000 d=100: {:.2} ms, {} bytes, {} round trip(s)",
        st.duration.as_secs_f64() * 1e3,
        st.bytes,
        st.round_trips
    );
    // Nothing to do: the cost of a no-op anti-entropy round.
    let st = b.net.sync_store(a.net.id(), s).await.unwrap();
    println!(
        "sync N=10000 d=0:   {:.2} ms, {} bytes",
        st.duration.as_secs_f64() * 1e3,
        st.bytes
    );
    // Full catch-up of a fresh node.
    let st = c.net.sync_store(a.net.id(), s).await.unwrap();
    assert_eq!(st.received, 10_000);
    println!(
        "full catch-up 10000 entries: {:.1} ms ({:.0} entries/s), {} bytes",
        st.duration.as_secs_f64() * 1e3,
        10_000.0 / st.duration.as_secs_f64(),
        st.bytes
    );

    // Catch-up of 100k entries (issue 11: < 4 s idle), on a fresh pair.
    let s2 = StoreId::random();
    let d = node(s2).await;
    let e = node(s2).await;
    link(&[&d, &e]);
    write(&d.kernel, s2, 100_000);
    let st = e.net.sync_store(d.net.id(), s2).await.unwrap();
    assert_eq!(st.received, 100_000);
    println!(
        "full catch-up 100000 entries: {:.2} s ({:.0} entries/s), {} bytes",
        st.duration.as_secs_f64(),
        100_000.0 / st.duration.as_secs_f64(),
        st.bytes
    );
    d.net.shutdown().await;
    e.net.shutdown().await;

    // Gossip latency: append on A, commit seen on B and C.
    a.hook.gossip.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    while (a.net.gossip_neighbors(&s).len() < 2
        || b.net.gossip_neighbors(&s).is_empty()
        || c.net.gossip_neighbors(&s).is_empty())
        && t0.elapsed() < Duration::from_secs(10)
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut lat = Vec::new();
    for i in 0..300 {
        let e = a
            .kernel
            .append(s, format!("gossip {i}").into_bytes())
            .unwrap();
        let sent = Instant::now();
        let deadline = sent + Duration::from_secs(5);
        for n in [&b, &c] {
            loop {
                if let Some(t) = n.hook.seen.lock().unwrap().get(&e.id) {
                    lat.push(t.saturating_duration_since(sent));
                    break;
                }
                if Instant::now() > deadline {
                    panic!("gossip entry {i} not delivered");
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize].as_secs_f64() * 1e3;
    println!(
        "gossip delivery (3 nodes, {} samples): median {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
    for n in [a, b, c] {
        n.net.shutdown().await;
    }
}
