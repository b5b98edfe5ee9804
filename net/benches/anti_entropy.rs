//! Hand-run benchmark (release): `cargo bench -p lattice-net --bench anti_entropy`.
//!
//! An anti-entropy round with 1,000 stores shared with 5 peers and nothing
//! changed (issue 11's target: < 50 KB and < 50 ms CPU per round), then
//! the same round after one store changed on one peer. Real kernels and
//! real Iroh endpoints on loopback; CPU is this process's user + system
//! time over the round (so it counts the 5 peers answering too).

use std::sync::Arc;
use std::time::{Duration, Instant};

use lattice_kernel::{AuthorId, Identity, Kernel, KernelConfig, NoHook, StoreId};
use lattice_net::{Net, NetConfig, NoBlobs, NoInvites, Policy};

const STORES: usize = 1000;
const PEERS: usize = 5;

struct Shared(Vec<StoreId>);
impl Policy for Shared {
    fn may_sync(&self, store: &StoreId, _peer: &AuthorId) -> bool {
        self.0.contains(store)
    }
    fn stores(&self) -> Vec<StoreId> {
        self.0.clone()
    }
    fn topic_key(&self, _store: &StoreId) -> Option<[u8; 32]> {
        None
    }
}

struct Node {
    _dir: tempfile::TempDir,
    kernel: Arc<Kernel>,
    net: Net,
}

async fn node(stores: &[StoreId]) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let kernel = Arc::new(
        Kernel::open(
            &dir.path().join("log.redb"),
            Identity::generate(),
            KernelConfig::default(),
            Arc::new(NoHook),
        )
        .unwrap(),
    );
    let net = Net::spawn(
        kernel.clone(),
        NetConfig {
            anti_entropy: None,
            gossip: false,
            ..NetConfig::default()
        },
        Arc::new(Shared(stores.to_vec())),
        Arc::new(NoBlobs),
        Arc::new(NoInvites),
    )
    .await
    .unwrap();
    Node {
        _dir: dir,
        kernel,
        net,
    }
}

fn cpu() -> Duration {
    // SAFETY: `ru` is plain data that getrusage fills in.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let stores: Vec<StoreId> = (0..STORES).map(|_| StoreId::random()).collect();
    let a = node(&stores).await;
    let mut peers = Vec::new();
    for _ in 0..PEERS {
        peers.push(node(&stores).await);
    }
    for p in &peers {
        a.net.add_peer(p.net.id(), p.net.addrs());
        p.net.add_peer(a.net.id(), a.net.addrs());
    }
    // One entry per store on A, carried to every peer.
    for s in &stores {
        a.kernel.append(*s, b"x".to_vec()).unwrap();
    }
    let t0 = Instant::now();
    for p in &peers {
        for s in &stores {
            p.net.sync_store(a.net.id(), *s).await.unwrap();
        }
    }
    println!(
        "setup: {STORES} stores synced to {PEERS} peers in {:.1} s",
        t0.elapsed().as_secs_f64()
    );

    for label in ["nothing changed", "nothing changed (again)"] {
        let (c0, t0) = (cpu(), Instant::now());
        let mut bytes = 0;
        for p in &peers {
            let r = a.net.differing_stores(p.net.id()).await.unwrap();
            assert!(r.differ.is_empty());
            bytes += r.bytes;
        }
        println!(
            "anti-entropy round, {STORES} stores x {PEERS} peers, {label}: {bytes} bytes, {:.1} ms CPU, {:.1} ms wall",
            (cpu() - c0).as_secs_f64() * 1e3,
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
    peers[2].kernel.append(stores[500], b"y".to_vec()).unwrap();
    let (c0, t0) = (cpu(), Instant::now());
    let mut bytes = 0;
    let mut differ = 0;
    for p in &peers {
        let r = a.net.differing_stores(p.net.id()).await.unwrap();
        differ += r.differ.len();
        bytes += r.bytes;
    }
    assert_eq!(differ, 1);
    println!(
        "anti-entropy round, one store changed on one peer: {bytes} bytes, {:.1} ms CPU, {:.1} ms wall (then 1 store sync)",
        (cpu() - c0).as_secs_f64() * 1e3,
        t0.elapsed().as_secs_f64() * 1e3
    );
    a.net.shutdown().await;
    for p in peers {
        p.net.shutdown().await;
    }
}
