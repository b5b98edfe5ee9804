//! Real nodes for the integration tests: a kernel in a temp dir, a real
//! Iroh endpoint on loopback, and small but real implementations of the
//! node-side traits (membership table, blob map, one-time invites).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lattice_kernel::{
    Admission, AuthorId, CommitHook, HookError, Identity, Kernel, KernelConfig, SignedEntry,
    StoreId, ValidationError,
};
use lattice_net::{Announcer, BlobSource, InviteAuthority, JoinGrant, Net, NetConfig, Policy};

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RUST_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_test_writer()
        .try_init();
}

/// Membership per store, and (for divergence tests) a state digest the
/// test chooses, paired with the kernel's real log digest.
#[derive(Default)]
pub struct Members(
    Mutex<HashMap<StoreId, HashSet<AuthorId>>>,
    Mutex<HashMap<StoreId, [u8; 32]>>,
    Mutex<Option<std::sync::Weak<Kernel>>>,
);

impl Members {
    /// From now on this node reports `state` as its state digest of `store`.
    pub fn set_state(&self, store: StoreId, state: [u8; 32]) {
        self.1.lock().unwrap().insert(store, state);
    }

    pub fn allow(&self, store: StoreId, who: &[AuthorId]) {
        self.0.lock().unwrap().entry(store).or_default().extend(who);
    }

    pub fn revoke(&self, store: StoreId, who: &AuthorId) {
        if let Some(m) = self.0.lock().unwrap().get_mut(&store) {
            m.remove(who);
        }
    }
}

impl Policy for Members {
    fn may_sync(&self, store: &StoreId, peer: &AuthorId) -> bool {
        self.0
            .lock()
            .unwrap()
            .get(store)
            .is_some_and(|m| m.contains(peer))
    }
    fn stores(&self) -> Vec<StoreId> {
        self.0.lock().unwrap().keys().copied().collect()
    }
    /// Every store is its own mesh here, with a secret every test node
    /// knows (hostile tests give it to non-members too: admission must not
    /// rest on it alone).
    fn topic_key(&self, store: &StoreId) -> Option<[u8; 32]> {
        Some(test_key(store))
    }
    fn presence(&self, _store: &StoreId) -> bool {
        true
    }
    fn digests(&self, store: &StoreId) -> Option<([u8; 32], [u8; 32])> {
        let state = *self.1.lock().unwrap().get(store)?;
        let kernel = self.2.lock().unwrap().as_ref()?.upgrade()?;
        Some((kernel.status(store).ok()?.digest.0, state))
    }
}

pub fn test_key(store: &StoreId) -> [u8; 32] {
    *blake3::hash(&store.0).as_bytes()
}

/// A hook that announces committed entries when enabled, and, once `gate`
/// is set, refuses entries of authors who are not members of their store
/// (as the host's trust tables do).
pub struct AnnounceHook {
    pub announcer: Announcer,
    pub enabled: AtomicBool,
    pub gate: Mutex<Option<Arc<Members>>>,
}

impl CommitHook for AnnounceHook {
    fn admit(&self, _: &redb::WriteTransaction, e: &SignedEntry) -> Result<Admission, HookError> {
        match &*self.gate.lock().unwrap() {
            Some(m) if !m.may_sync(&e.store, &e.author) => {
                Ok(Admission::Refuse(ValidationError::Unauthorized(e.author)))
            }
            _ => Ok(Admission::Apply),
        }
    }
    fn apply(&self, _: &redb::WriteTransaction, _: &SignedEntry) -> Result<(), HookError> {
        Ok(())
    }
    /// Nothing derived to forget: a rebuild (a fork proved) only replays.
    fn reset(&self, _: &redb::WriteTransaction, _: &StoreId) -> Result<(), HookError> {
        Ok(())
    }
    fn committed(&self, entries: &[SignedEntry]) {
        if self.enabled.load(Ordering::SeqCst) {
            self.announcer.announce(entries);
        }
    }
}

#[derive(Default)]
pub struct Blobs(pub Mutex<HashMap<[u8; 32], Vec<u8>>>);
impl BlobSource for Blobs {
    fn blob(&self, hash: [u8; 32]) -> Option<Vec<u8>> {
        self.0.lock().unwrap().get(&hash).cloned()
    }
}

/// One-time invites with expiry, recording the joiner as a member.
pub struct Invites {
    pub mesh: StoreId,
    pub members: Arc<Members>,
    /// secret → (expires_ms, used)
    pub table: Mutex<HashMap<[u8; 32], (u64, bool)>>,
    pub roster: Mutex<Vec<(AuthorId, Vec<SocketAddr>)>>,
}

impl InviteAuthority for Invites {
    fn redeem(&self, secret: [u8; 32], joiner: AuthorId) -> Result<JoinGrant, String> {
        let mut t = self.table.lock().unwrap();
        let Some((expires, used)) = t.get_mut(&secret) else {
            return Err("unknown invite".into());
        };
        if *used {
            return Err("invite already used".into());
        }
        if *expires != 0 && lattice_kernel::now_ms() > *expires {
            return Err("invite expired".into());
        }
        *used = true;
        self.members.allow(self.mesh, &[joiner]);
        Ok(JoinGrant {
            mesh_id: self.mesh,
            founder: AuthorId([0; 32]),
            mesh_secret: [7; 32],
            members: self.roster.lock().unwrap().clone(),
        })
    }
}

pub struct Node {
    pub dir: tempfile::TempDir,
    pub kernel: Arc<Kernel>,
    pub net: Net,
    pub members: Arc<Members>,
    pub blobs: Arc<Blobs>,
    pub hook: Arc<AnnounceHook>,
}

pub fn test_config() -> NetConfig {
    NetConfig {
        anti_entropy: None,
        gossip_rejoin: Duration::from_millis(300),
        io_timeout: Duration::from_secs(5),
        ..NetConfig::default()
    }
}

impl Node {
    pub async fn start(config: NetConfig) -> Node {
        Self::start_with(config, None).await
    }

    pub async fn start_with(mut config: NetConfig, invites: Option<Arc<Invites>>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let announcer = Announcer::new();
        let hook = Arc::new(AnnounceHook {
            announcer: announcer.clone(),
            enabled: AtomicBool::new(true),
            gate: Mutex::new(None),
        });
        let kernel = Arc::new(
            Kernel::open(
                &dir.path().join("log.redb"),
                Identity::generate(),
                KernelConfig {
                    durable: false,
                    ..KernelConfig::default()
                },
                hook.clone(),
            )
            .unwrap(),
        );
        config.announcer = Some(announcer);
        let members = invites
            .as_ref()
            .map(|i| Arc::clone(&i.members))
            .unwrap_or_default();
        *members.2.lock().unwrap() = Some(Arc::downgrade(&kernel));
        let blobs = Arc::new(Blobs::default());
        let inv: Arc<dyn InviteAuthority> = match invites {
            Some(i) => i,
            None => Arc::new(lattice_net::NoInvites),
        };
        let net = Net::spawn(
            Arc::clone(&kernel),
            config,
            members.clone(),
            blobs.clone(),
            inv,
        )
        .await
        .unwrap();
        Node {
            dir,
            kernel,
            net,
            members,
            blobs,
            hook,
        }
    }

    /// A node without gossip (no announcements, no neighbour-up
    /// catch-up), so only explicit syncs move entries (exact counts in
    /// sync tests).
    pub async fn quiet(config: NetConfig) -> Node {
        let n = Self::start(NetConfig {
            gossip: false,
            ..config
        })
        .await;
        n.hook.enabled.store(false, Ordering::SeqCst);
        n
    }

    pub fn id(&self) -> AuthorId {
        self.kernel.author()
    }

    /// Appends `n` entries with `size`-byte payloads, sharing commits.
    pub fn write(&self, store: StoreId, n: usize, size: usize) -> Vec<SignedEntry> {
        let pend: Vec<_> = (0..n)
            .map(|i| {
                let mut p = vec![(i % 251) as u8; size.max(8)];
                p[..8].copy_from_slice(&(i as u64).to_le_bytes());
                self.kernel.append_async(store, p).unwrap()
            })
            .collect();
        pend.into_iter().map(|p| p.wait().unwrap()).collect()
    }

    pub fn count(&self, store: &StoreId) -> u64 {
        self.kernel.status(store).unwrap().entries
    }
}

/// Makes every pair of nodes known to each other and members of `store`.
pub fn mesh(nodes: &[&Node], store: StoreId) {
    let ids: Vec<_> = nodes.iter().map(|n| n.id()).collect();
    for n in nodes {
        n.members.allow(store, &ids);
        for m in nodes {
            if m.id() != n.id() {
                n.net.add_peer(m.id(), m.net.addrs());
            }
        }
    }
}

/// Two quiet nodes that are members of a fresh store and know each other.
pub async fn quiet_pair() -> (Node, Node, StoreId) {
    let (a, b) = (
        Node::quiet(test_config()).await,
        Node::quiet(test_config()).await,
    );
    let s = StoreId::random();
    mesh(&[&a, &b], s);
    (a, b, s)
}

/// Polls `f` until it holds or `limit` passes; returns the time it took.
pub async fn eventually(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

/// Waits until every node of `nodes` has at least `n` gossip neighbours on
/// `s`'s topic.
pub async fn wait_neighbors(nodes: &[&Node], s: StoreId, n: usize) {
    for node in nodes {
        let ok = eventually(Duration::from_secs(10), || {
            node.net.gossip_neighbors(&s).len() >= n
        })
        .await;
        assert!(ok.is_some(), "gossip overlay did not form");
    }
}

/// A hostile author's entry at `seq` after `prev`, signed by hand (its
/// modified client): no deps, an HLC above now.
pub fn forged(
    x: &Identity,
    store: StoreId,
    seq: u64,
    prev: lattice_kernel::EntryId,
    payload: &[u8],
) -> SignedEntry {
    SignedEntry::sign(
        x,
        lattice_kernel::Draft {
            store,
            seq,
            prev,
            hlc: (lattice_kernel::now_ms() << lattice_kernel::COUNTER_BITS) + seq,
            deps: vec![],
            payload: payload.to_vec(),
        },
    )
}

/// A bare Iroh endpoint on loopback: a modified client that speaks our
/// ALPN by hand.
pub async fn raw_endpoint() -> iroh::Endpoint {
    raw_endpoint_as(&lattice_kernel::Identity::generate()).await
}

/// [`raw_endpoint`] under a chosen identity (a member's key in a hostile
/// client's hands).
pub async fn raw_endpoint_as(me: &lattice_kernel::Identity) -> iroh::Endpoint {
    iroh::Endpoint::builder(iroh::endpoint::presets::Minimal)
        .secret_key(iroh::SecretKey::from_bytes(&me.secret_bytes()))
        .relay_mode(iroh::RelayMode::Disabled)
        .clear_ip_transports()
        .bind_addr("127.0.0.1:0")
        .unwrap()
        .bind()
        .await
        .unwrap()
}

/// Dials `to` on the sync ALPN from `ep`.
pub async fn dial(ep: &iroh::Endpoint, to: &Node) -> iroh::endpoint::Connection {
    let mut addr = iroh::EndpointAddr::new(iroh::EndpointId::from_bytes(&to.id().0).unwrap());
    for s in to.net.addrs() {
        addr = addr.with_ip_addr(s);
    }
    ep.connect(addr, lattice_net::ALPN).await.unwrap()
}

/// Writes one frame (length header and protobuf body) by hand.
pub async fn put<M: prost::Message>(send: &mut iroh::endpoint::SendStream, m: &M) {
    let b = m.encode_to_vec();
    send.write_all(&(b.len() as u32).to_be_bytes())
        .await
        .unwrap();
    send.write_all(&b).await.unwrap();
}

/// Reads one frame by hand.
pub async fn get<M: prost::Message + Default>(recv: &mut iroh::endpoint::RecvStream) -> M {
    let mut h = [0u8; 4];
    recv.read_exact(&mut h).await.unwrap();
    let mut b = vec![0u8; u32::from_be_bytes(h) as usize];
    recv.read_exact(&mut b).await.unwrap();
    M::decode(b.as_slice()).unwrap()
}
