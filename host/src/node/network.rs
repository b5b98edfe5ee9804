//! The node on the network: the membership policy, blob source and invite
//! authority `lattice-net` asks of us, and the node-level operations built
//! on them (invite, join, revoke, peers, sync). The daemon owns the tokio
//! runtime; API worker threads block on it.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use lattice_kernel::{AuthorId, StoreId, now_ms};
use lattice_net::{
    Announcer, BlobSource, Invite, InviteAuthority, JoinGrant, Net, NetConfig, PeerInfo, Policy,
    SyncStats,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

use super::{DataDir, MeshRecord, Node, NodeError, Registry, root};

/// blake3(secret) → mesh(16) ‖ expires_ms(8) ‖ used(1).
const INVITES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("host_invites");
/// peer id → comma-separated socket addresses (redialed after a restart).
const PEERS: TableDefinition<&[u8], &str> = TableDefinition::new("host_peers");

/// The network half of a running node.
/// One sync session's outcome: (peer, store, stats or why it failed).
pub type SyncResult = (AuthorId, StoreId, Result<SyncStats, String>);

pub struct Network {
    pub net: Net,
    pub rt: tokio::runtime::Handle,
}

struct NodePolicy(Arc<Registry>);

impl Policy for NodePolicy {
    fn may_sync(&self, store: &StoreId, peer: &AuthorId) -> bool {
        self.0.may_access(store, peer)
    }

    fn stores(&self) -> Vec<StoreId> {
        self.0.stores().into_iter().map(|s| s.id).collect()
    }

    /// The mesh secret: every store of a mesh shares one gossip overlay,
    /// and only members can derive its ALPN and topic ids.
    fn topic_key(&self, store: &StoreId) -> Option<[u8; 32]> {
        self.0.mesh_secret(store)
    }

    /// Chat rooms: presence is who sits in a room; other stores would only
    /// add a beacon per period each.
    fn presence(&self, store: &StoreId) -> bool {
        self.0.get(store).is_some_and(|h| h.type_name() == "chat")
    }

    fn digests(&self, store: &StoreId) -> Option<([u8; 32], [u8; 32])> {
        self.0.digests(store)
    }
}

/// One active member of a store's mesh as presence sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberPresence {
    pub author: AuthorId,
    pub name: String,
    /// This node.
    pub me: bool,
    /// We heard its beacon within three periods (always true for us).
    pub online: bool,
    /// When we last heard it (Unix ms); `None`: never since we started.
    pub last_seen_ms: Option<u64>,
    /// Whether its log of the store was ours when it last spoke.
    pub in_sync: Option<bool>,
}

struct NodeBlobs(Arc<DataDir>);

impl BlobSource for NodeBlobs {
    fn blob(&self, hash: [u8; 32]) -> Option<Vec<u8>> {
        self.0.get_blob(&hash).ok().flatten()
    }
}

struct NodeInvites(Weak<Node>);

impl InviteAuthority for NodeInvites {
    fn redeem(&self, secret: [u8; 32], joiner: AuthorId) -> Result<JoinGrant, String> {
        let node = self.0.upgrade().ok_or("node shutting down")?;
        node.redeem(secret, joiner).map_err(|e| e.to_string())
    }
}

/// How the daemon's network is set up.
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// Bind address; `None` reuses the last one (same port across restarts,
    /// so peers' saved addresses stay valid), else loopback on any port.
    pub listen: Option<SocketAddr>,
    /// Anti-entropy period.
    pub sync_interval: Duration,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            listen: None,
            sync_interval: Duration::from_secs(30),
        }
    }
}

impl Node {
    /// Starts networking for this node on `rt` (the daemon's runtime).
    pub fn start_network(
        self: &Arc<Node>,
        rt: &tokio::runtime::Runtime,
        opts: NetOptions,
    ) -> Result<(), NodeError> {
        let announcer = Announcer::new();
        let a = announcer.clone();
        let reg = Arc::downgrade(&self.registry);
        self.registry.add_listener(Box::new(move |entries| {
            // A root entry may have changed who is a member or which stores
            // exist: re-check connections before announcing this batch, so
            // nothing in it goes to a peer it revoked.
            let root = reg.upgrade().is_some_and(|r| {
                entries
                    .iter()
                    .any(|e| r.get(&e.store).is_some_and(|h| h.is_root()))
            });
            if root {
                a.membership_changed();
            }
            a.announce(entries);
        }));
        let saved = self
            .setting("listen")?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|s| s.parse().ok());
        let bind_addr = opts
            .listen
            .or(saved)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
        let config = NetConfig {
            bind_addr,
            anti_entropy: Some(opts.sync_interval),
            announcer: Some(announcer),
            peers: self.saved_peers()?,
            ..NetConfig::default()
        };
        let net = rt
            .block_on(Net::spawn(
                self.kernel.clone(),
                config,
                Arc::new(NodePolicy(self.registry.clone())),
                Arc::new(NodeBlobs(self.data.clone())),
                Arc::new(NodeInvites(Arc::downgrade(self))),
            ))
            .map_err(|e| NodeError::Net(e.to_string()))?;
        if let Some(addr) = net.addrs().first() {
            self.set_setting("listen", addr.to_string().as_bytes())?;
        }
        let _ = self.network.set(Network {
            net,
            rt: rt.handle().clone(),
        });
        Ok(())
    }

    /// Closes connections, gossip and the QUIC endpoint, so peers see a
    /// clean close and nothing is left half-open. Idempotent; the daemon
    /// calls it on SIGTERM/SIGINT.
    pub fn stop_network(&self) {
        if let Some(n) = self.network.get() {
            n.rt.block_on(n.net.shutdown());
        }
    }

    pub fn network(&self) -> Result<&Network, NodeError> {
        self.network.get().ok_or(NodeError::Offline)
    }

    fn saved_peers(&self) -> Result<Vec<(AuthorId, Vec<SocketAddr>)>, NodeError> {
        let tx = self.kernel.db().begin_read()?;
        let Some(t) = super::read_table(&tx, PEERS)? else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            if let Some(id) = AuthorId::from_slice(k.value()) {
                out.push((
                    id,
                    v.value()
                        .split(',')
                        .filter_map(|a| a.parse().ok())
                        .collect(),
                ));
            }
        }
        Ok(out)
    }

    /// Remembers the addresses of every known peer (called periodically and
    /// after a join), so a restarted daemon can redial them.
    pub fn save_peers(&self) -> Result<(), NodeError> {
        let Ok(n) = self.network() else { return Ok(()) };
        let peers = n.net.peers();
        let tx = self.kernel.db().begin_write()?;
        {
            let mut t = tx.open_table(PEERS)?;
            for p in peers.iter().filter(|p| !p.addrs.is_empty()) {
                let addrs: Vec<String> = p.addrs.iter().map(|a| a.to_string()).collect();
                t.insert(p.id.0.as_slice(), addrs.join(",").as_str())?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn require_founder(&self, mesh: &MeshRecord, what: &str) -> Result<(), NodeError> {
        if mesh.founder != self.author() {
            return Err(NodeError::NotFounder(
                what.to_string(),
                mesh.founder.to_hex(),
            ));
        }
        Ok(())
    }

    /// A one-time invite token for `mesh` (default: the current mesh).
    pub fn invite(&self, ttl: Duration, mesh: Option<&str>) -> Result<(String, u64), NodeError> {
        let mesh = self.pick_mesh(mesh)?;
        self.require_founder(&mesh, "invite")?;
        let n = self.network()?;
        let secret = Invite::new_secret();
        let expires_ms = now_ms() + ttl.as_millis() as u64;
        let tx = self.kernel.db().begin_write()?;
        let value = [mesh.root.0.as_slice(), &expires_ms.to_be_bytes(), &[0u8]].concat();
        tx.open_table(INVITES)?.insert(
            blake3::hash(&secret).as_bytes().as_slice(),
            value.as_slice(),
        )?;
        tx.commit()?;
        Ok((
            n.net.invite(mesh.root, secret, expires_ms).to_text(),
            expires_ms,
        ))
    }

    /// The inviter's side of a join: one-time, unexpired secret → the joiner
    /// becomes an active member (a root entry by the founder).
    fn redeem(&self, secret: [u8; 32], joiner: AuthorId) -> Result<JoinGrant, NodeError> {
        let key = *blake3::hash(&secret).as_bytes();
        let tx = self.kernel.db().begin_write()?;
        let mesh = {
            let mut t = tx.open_table(INVITES)?;
            let rec = t
                .get(key.as_slice())?
                .map(|v| v.value().to_vec())
                .ok_or(NodeError::Invite("unknown invite"))?;
            if rec.len() != 25 {
                return Err(NodeError::Invite("unknown invite"));
            }
            if rec[24] != 0 {
                return Err(NodeError::Invite("invite already used"));
            }
            let expires = u64::from_be_bytes(rec[16..24].try_into().expect("8"));
            if expires != 0 && now_ms() > expires {
                return Err(NodeError::Invite("invite expired"));
            }
            let mut used = rec.clone();
            used[24] = 1;
            t.insert(key.as_slice(), used.as_slice())?;
            StoreId::from_slice(&rec[..16]).expect("16")
        };
        tx.commit()?;
        self.root_batch(
            &mesh,
            vec![(
                root::node_key(&joiner.to_hex(), "status"),
                b"active".to_vec(),
            )],
        )?;
        let n = self.network()?;
        let mut members: Vec<(AuthorId, Vec<SocketAddr>)> = vec![n.net.addr()];
        members.extend(
            n.net
                .peers()
                .into_iter()
                .filter(|p| p.id != joiner)
                .map(|p| (p.id, p.addrs)),
        );
        let rec = self
            .meshes()
            .into_iter()
            .find(|m| m.root == mesh)
            .ok_or_else(|| NodeError::UnknownMesh(mesh.to_uuid()))?;
        Ok(JoinGrant {
            mesh_id: mesh,
            founder: rec.founder,
            mesh_secret: rec.secret,
            members,
        })
    }

    /// Joins a mesh with an invite token: redeem it, sync the root store,
    /// open every declared store (fetching plugin blobs), sync them all.
    pub fn join(&self, token: &str) -> Result<MeshRecord, NodeError> {
        self.join_with(token, &mut |_, _, _| {})
    }

    /// [`Node::join`], calling `each` after every sync session of the
    /// catch-up that follows admission (what `mesh join` shows progress with).
    pub fn join_with(
        &self,
        token: &str,
        each: &mut dyn FnMut(u32, u32, &SyncResult),
    ) -> Result<MeshRecord, NodeError> {
        let invite: Invite = token
            .trim()
            .parse()
            .map_err(|e: lattice_net::InviteParseError| {
                NodeError::Net(format!("bad invite token: {e}"))
            })?;
        if self.meshes().iter().any(|m| m.root == invite.mesh_id) {
            return Err(NodeError::Net("this node is already in that mesh".into()));
        }
        let n = self.network()?;
        let grant =
            n.rt.block_on(n.net.join(&invite))
                .map_err(|e| NodeError::Net(e.to_string()))?;
        let name = {
            let taken: Vec<String> = self.meshes().into_iter().map(|m| m.name).collect();
            let base = if taken.iter().any(|t| t == "default") {
                format!("mesh-{}", &grant.mesh_id.to_hex()[..6])
            } else {
                "default".into()
            };
            base
        };
        // The grant must be for the token's mesh, and that mesh's id must
        // be derived from the founder and secret the grant names.
        if grant.mesh_id != invite.mesh_id
            || root::mesh_id(&grant.founder, &grant.mesh_secret) != invite.mesh_id
        {
            return Err(NodeError::Net(format!(
                "the inviter's grant does not match mesh {}: refusing to join",
                invite.mesh_id.to_uuid()
            )));
        }
        let rec = MeshRecord {
            root: grant.mesh_id,
            founder: grant.founder,
            secret: grant.mesh_secret,
            name,
        };
        self.remember_mesh(&rec)?;
        for (id, addrs) in &grant.members {
            if *id != self.author() {
                n.net.add_peer(*id, addrs.clone());
            }
        }
        n.rt.block_on(n.net.sync_store(invite.inviter, rec.root))
            .map_err(|e| NodeError::Net(e.to_string()))?;
        // The synced root log admits us, so our own root write applies
        // here and at the inviter; written before `catch_up` so its sync
        // carries the name along even if gossip has not formed yet. A
        // failure is not the join's: we are in, only still unnamed.
        match self.node_name() {
            Ok(name) => {
                if let Err(e) = self.write_node_name(&rec, &name) {
                    tracing::warn!(mesh = %rec.name, error = %e, "joined, but could not write this node's name");
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not read this node's name"),
        }
        self.sync_now(None, each)?;
        if self.setting("mesh")?.is_none() || self.meshes().len() == 1 {
            self.set_setting("mesh", &rec.root.0)?;
        }
        self.save_peers()?;
        Ok(rec)
    }

    /// Opens newly declared stores (fetching missing plugin blobs from
    /// peers, verified by hash and by the runtime's checks) and syncs every
    /// store with every peer. Safe to call any time.
    pub fn catch_up(
        &self,
    ) -> Result<Vec<(AuthorId, StoreId, Result<SyncStats, String>)>, NodeError> {
        self.fetch_missing_blobs()?;
        let n = self.network()?;
        let mut results = Vec::new();
        // Twice: a synced root store may declare stores the first round missed.
        for _ in 0..2 {
            results =
                n.rt.block_on(n.net.sync_all())
                    .into_iter()
                    .map(|(p, s, r)| (p, s, r.map_err(|e| e.to_string())))
                    .collect();
            let before = self.registry.stores().len();
            self.registry.refresh(&self.kernel.db().begin_read()?)?;
            self.fetch_missing_blobs()?;
            if self.registry.stores().len() == before {
                break;
            }
        }
        Ok(results)
    }

    /// Syncs `only` (else every store) with every known peer that may
    /// sync it, one session at a time, calling `each(done, total, result)`
    /// after each: what `store sync` shows progress with. Without `only`,
    /// a second pass covers stores the synced root stores declared.
    pub fn sync_now(
        &self,
        only: Option<StoreId>,
        each: &mut dyn FnMut(u32, u32, &SyncResult),
    ) -> Result<Vec<SyncResult>, NodeError> {
        self.fetch_missing_blobs()?;
        let n = self.network()?;
        let mut results: Vec<SyncResult> = Vec::new();
        for _ in 0..if only.is_some() { 1 } else { 2 } {
            let stores: Vec<StoreId> = match only {
                Some(s) => vec![s],
                None => self.registry.stores().into_iter().map(|h| h.id).collect(),
            };
            let peers = n.net.peers();
            let pairs: Vec<(AuthorId, StoreId)> = stores
                .iter()
                .flat_map(|s| peers.iter().map(move |p| (p.id, *s)))
                .filter(|(p, s)| self.registry.may_access(s, p))
                .filter(|pair| !results.iter().any(|r| (r.0, r.1) == *pair))
                .collect();
            let total = (results.len() + pairs.len()) as u32;
            for (p, s) in pairs {
                let r = n.rt.block_on(n.net.sync_store(p, s));
                results.push((p, s, r.map_err(|e| e.to_string())));
                each(results.len() as u32, total, results.last().expect("pushed"));
            }
            let before = self.registry.stores().len();
            self.registry.refresh(&self.kernel.db().begin_read()?)?;
            self.fetch_missing_blobs()?;
            if self.registry.stores().len() == before {
                break;
            }
        }
        Ok(results)
    }

    /// Fetches plugin blobs that declared stores need and this node lacks.
    pub fn fetch_missing_blobs(&self) -> Result<usize, NodeError> {
        self.registry.refresh(&self.kernel.db().begin_read()?)?;
        let missing = self.registry.missing_blobs();
        if missing.is_empty() {
            return Ok(0);
        }
        let n = self.network()?;
        let mut got = 0;
        for hash in missing {
            for peer in n.net.peers() {
                match n.rt.block_on(n.net.fetch_blob(peer.id, hash)) {
                    Ok(bytes) => {
                        // Validate before storing: imports, limits, describe.
                        self.registry.runtime().load(&bytes)?;
                        self.data.put_blob(&hash, &bytes)?;
                        got += 1;
                        break;
                    }
                    Err(e) => {
                        tracing::debug!(peer = %peer.id, error = %e, "blob fetch failed; trying the next peer")
                    }
                }
            }
        }
        if got > 0 {
            self.registry.refresh(&self.kernel.db().begin_read()?)?;
        }
        Ok(got)
    }

    /// Cuts a member off: its new entries are refused everywhere the
    /// revocation has reached, and it is served nothing.
    pub fn revoke(&self, member: &str, mesh: Option<&str>) -> Result<String, NodeError> {
        let mesh = self.pick_mesh(mesh)?;
        self.require_founder(&mesh, "revoke")?;
        let id = AuthorId::from_hex(member)
            .ok_or_else(|| NodeError::Net(format!("`{member}` is not a 64-hex-digit node id")))?;
        if id == self.author() {
            return Err(NodeError::Net("the founder cannot revoke itself".into()));
        }
        // The cut-off: per store, the member's last entry this node has.
        // Those stand everywhere; anything later is void everywhere, so
        // replicas agree whatever they had received when this arrives.
        let mut cutoff = Vec::new();
        let stores =
            std::iter::once(mesh.root).chain(self.stores_of(&mesh.root).into_iter().map(|s| s.id));
        for store in stores {
            if let Some(t) = self
                .kernel
                .tips(&store)?
                .into_iter()
                .find(|t| t.author == id)
            {
                cutoff.push((store, t.seq));
            }
        }
        let hex = id.to_hex();
        self.root_batch(
            &mesh.root,
            vec![
                (root::node_key(&hex, "status"), b"revoked".to_vec()),
                (
                    root::node_key(&hex, "cutoff"),
                    super::root_rules::encode_cutoff(&cutoff),
                ),
            ],
        )?;
        Ok(hex)
    }

    pub fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        Ok(self.network()?.net.peers())
    }

    /// The active members of `h`'s mesh, each with what its latest presence
    /// beacon for `h` said. Ephemeral: from gossip since the daemon started,
    /// never from the log; without a network only we are online.
    pub fn presence(&self, h: &super::StoreHandle) -> Result<Vec<MemberPresence>, NodeError> {
        let members = {
            let tx = self.kernel.db().begin_read()?;
            super::trust::members(&tx, &h.mesh)?
        };
        let ours = self.kernel.status(&h.id)?.digest;
        let heard = self
            .network
            .get()
            .map(|n| n.net.presence(&h.id))
            .unwrap_or_default();
        let me = self.author();
        Ok(members
            .into_iter()
            .filter(|(_, _, status)| *status == "active")
            .map(|(author, name, _)| {
                let p = heard.iter().find(|p| p.author == author);
                let mine = author == me;
                MemberPresence {
                    author,
                    name,
                    me: mine,
                    online: mine || p.is_some_and(|p| p.online),
                    last_seen_ms: if mine {
                        Some(now_ms())
                    } else {
                        p.map(|p| p.heard_ms)
                    },
                    in_sync: if mine {
                        Some(true)
                    } else {
                        p.map(|p| p.digest == ours)
                    },
                }
            })
            .collect())
    }
}
