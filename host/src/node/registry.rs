//! Which stores this node runs, with which plugin, in which mesh; and the
//! commit hook that applies each entry through its store's plugin inside the
//! kernel's write transaction.
//!
//! The registry is an in-memory view of the host's trust tables
//! ([`super::trust`]): a store declared on another node appears here once
//! the root entry declaring it commits. Admission never trusts this view;
//! it reads the tables inside the write transaction.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use lattice_kernel::{
    Admission, AuthorId, CommitHook, HookError, Kernel, SignedEntry, StoreId, ValidationError,
    VoidAbove,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::NodeError;
use super::datadir::DataDir;
use super::epochs::{self, Pin};
use super::root_rules::{self, RootWrite, StoreDecl};
use super::trust::{self, Owner, TrustView};
use crate::runtime::{ApplyOutcome, Op, Plugin, Profile, Runtime, builtin};

/// store ‖ entry id → reason, for ops a plugin could not apply.
pub(crate) const NOOPS: TableDefinition<&[u8], &str> = TableDefinition::new("host_noops");
/// root store id → founder pubkey (32) ‖ mesh secret (32) ‖ mesh name.
pub(crate) const MESHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("host_meshes");

/// A running store.
#[derive(Clone)]
pub struct StoreHandle {
    pub id: StoreId,
    /// The root store of the mesh that declares it (itself for a root).
    pub mesh: StoreId,
    pub name: String,
    /// Hex blake3 of the plugin blob the store is pinned to (shipped
    /// plugins too), or `kv` for a root store (host-interpreted).
    pub kind: String,
    pub created_at: u64,
    /// The runtime profile the store was declared with (its limits).
    pub profile: u32,
    /// The plugin the store runs now: the declared one, or the one its
    /// latest applied upgrade pinned ([`Self::pin`]).
    pub plugin: Arc<Plugin>,
    /// The declared plugin (epoch 0 of the store's log).
    pub declared: Arc<Plugin>,
    /// The upgrade the store's state is at (`None`: never upgraded).
    pub pin: Option<Pin>,
}

impl StoreHandle {
    pub fn is_root(&self) -> bool {
        self.id == self.mesh
    }

    /// The hash of the plugin the store runs now (hex).
    pub fn pinned_kind(&self) -> &str {
        self.pin.as_ref().map_or(&self.kind, |p| &p.epoch.spec.to)
    }

    /// The runtime profile the store runs under now.
    pub fn pinned_profile(&self) -> u32 {
        self.pin
            .as_ref()
            .map_or(self.profile, |p| p.epoch.spec.profile)
    }

    /// The name to type for this store's plugin on the command line.
    pub fn type_name(&self) -> String {
        self.plugin.info().name.clone()
    }
}

#[derive(Clone, Debug)]
pub struct MeshRecord {
    pub root: StoreId,
    pub founder: AuthorId,
    /// Known to members only (never logged): `root` is derived from it and
    /// the founder ([`root::mesh_id`]), and it keys the gossip topic ids.
    pub secret: [u8; 32],
    pub name: String,
}

#[derive(Default)]
struct Inner {
    stores: HashMap<StoreId, StoreHandle>,
    meshes: HashMap<StoreId, MeshRecord>,
    /// What root entries changed since the last refresh.
    dirty: Dirty,
    /// Plugin blobs that declared stores need and this node lacks.
    missing: std::collections::BTreeSet<[u8; 32]>,
    /// Plugin blobs that logged upgrades need (their markers wait for
    /// them). Kept apart from `missing`, which a refresh recomputes from
    /// the declarations alone.
    wanted: std::collections::BTreeSet<[u8; 32]>,
}

/// What a refresh has to re-read: a few stores (the usual case: one store
/// created, renamed or deleted), or everything (a mesh joined, a root
/// rebuilt). Refreshing only what changed keeps `store create` O(1) in the
/// number of stores a node holds.
#[derive(Default)]
struct Dirty {
    all: bool,
    stores: std::collections::BTreeSet<StoreId>,
}

impl Dirty {
    fn is_clean(&self) -> bool {
        !self.all && self.stores.is_empty()
    }
}

/// Live events for watchers: every committed entry, after it is durable.
pub type Watchers = Mutex<Vec<std::sync::mpsc::Sender<SignedEntry>>>;

pub struct Registry {
    inner: RwLock<Inner>,
    runtime: Arc<Runtime>,
    data: Arc<DataDir>,
    kernel: OnceLock<Weak<Kernel>>,
    watchers: Watchers,
    /// Called with every durable batch (the network layer's gossip).
    listeners: Mutex<Vec<Box<dyn Fn(&[SignedEntry]) + Send + Sync>>>,
}

impl Registry {
    pub fn new(runtime: Arc<Runtime>, data: Arc<DataDir>) -> Self {
        Registry {
            inner: RwLock::default(),
            runtime,
            data,
            kernel: OnceLock::new(),
            watchers: Mutex::default(),
            listeners: Mutex::default(),
        }
    }

    pub(crate) fn set_kernel(&self, k: &Arc<Kernel>) {
        let _ = self.kernel.set(Arc::downgrade(k));
    }

    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// A store's log digest and state digest as one consistent pair: the
    /// log digest read before and after the state digest must agree (every
    /// commit changes it), else the pair straddles a commit and is read
    /// again. `None` after three tries or for a store not open here.
    pub fn digests(&self, store: &StoreId) -> Option<([u8; 32], [u8; 32])> {
        if !self.is_open(store) {
            return None;
        }
        let kernel = self.kernel.get()?.upgrade()?;
        for _ in 0..3 {
            let before = kernel.status(store).ok()?.digest;
            let tx = kernel.db().begin_read().ok()?;
            let state = crate::runtime::state_digest(&tx, &store.0).ok()?;
            let after = kernel.status(store).ok()?.digest;
            if before == after {
                return Some((after.0, state));
            }
        }
        None
    }

    /// Whether `id` runs here (no handle cloned: the commit path asks this
    /// for every entry).
    fn is_open(&self, id: &StoreId) -> bool {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .stores
            .contains_key(id)
    }

    /// What applying an entry of `id` needs, without cloning the handle's
    /// strings (the commit path asks for every entry).
    fn runner(&self, id: &StoreId) -> Option<Runner> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.stores.get(id).map(|h| Runner {
            plugin: h.declared.clone(),
            profile: h.profile,
            root: h.is_root(),
            mesh: h.mesh,
        })
    }

    /// The names of `mesh`'s stores (a create checks a new name against
    /// them; only the names are copied, not every handle).
    pub(crate) fn store_names(&self, mesh: &StoreId) -> std::collections::HashSet<String> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner
            .stores
            .values()
            .filter(|h| h.mesh == *mesh && !h.is_root())
            .map(|h| h.name.clone())
            .collect()
    }

    pub fn get(&self, id: &StoreId) -> Option<StoreHandle> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .stores
            .get(id)
            .cloned()
    }

    pub fn stores(&self) -> Vec<StoreHandle> {
        let mut v: Vec<_> = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .stores
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| (a.created_at, &a.name).cmp(&(b.created_at, &b.name)));
        v
    }

    pub fn meshes(&self) -> Vec<MeshRecord> {
        let mut v: Vec<_> = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .meshes
            .values()
            .cloned()
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The secret of the mesh `store` belongs to (keys its gossip topic).
    pub fn mesh_secret(&self, store: &StoreId) -> Option<[u8; 32]> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        let mesh = inner.stores.get(store)?.mesh;
        inner.meshes.get(&mesh).map(|m| m.secret)
    }

    /// Hashes of plugin blobs that declared stores and logged upgrades are
    /// waiting for.
    pub fn missing_blobs(&self) -> Vec<[u8; 32]> {
        let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
        inner.missing.union(&inner.wanted).copied().collect()
    }

    pub fn add_watcher(&self, tx: std::sync::mpsc::Sender<SignedEntry>) {
        self.watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(tx);
    }

    pub fn add_listener(&self, f: Box<dyn Fn(&[SignedEntry]) + Send + Sync>) {
        self.listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(f);
    }

    /// Loads a plugin by store type: the hex blake3 of a blob, which is
    /// either one of the shipped plugins or a blob in the data dir. A store
    /// is pinned to the hash, so a host upgrade never changes what it runs.
    pub fn load_kind(&self, kind: &str) -> Result<Arc<Plugin>, NodeError> {
        if let Some(wasm) = builtin::builtin(kind) {
            return Ok(self.runtime.load(wasm)?);
        }
        let hash = lattice_kernel::EntryId::from_hex(kind)
            .ok_or_else(|| NodeError::UnknownType(kind.to_string()))?;
        if let Some(wasm) = builtin_by_hash(&hash.0) {
            return Ok(self.runtime.load(wasm)?);
        }
        let wasm = self
            .data
            .get_blob(&hash.0)?
            .ok_or_else(|| NodeError::MissingBlob(kind.to_string()))?;
        Ok(self.runtime.load(&wasm)?)
    }

    /// A plugin by blob hash (hex), without re-hashing its bytes when it is
    /// loaded already (the apply path asks for an upgraded store's plugin
    /// on every entry).
    pub(crate) fn plugin_by_hash(&self, kind: &str) -> Result<Arc<Plugin>, NodeError> {
        if let Some(h) = lattice_kernel::EntryId::from_hex(kind) {
            if let Some(p) = self.runtime.loaded(&h.0) {
                return Ok(p);
            }
        }
        self.load_kind(kind)
    }

    /// Whether an upgrade's plugin can run here; if its blob is missing,
    /// asks the network for it (like a declared store's).
    pub(crate) fn ensure_blob(&self, kind: &str) -> Result<(), String> {
        let found = self.plugin_by_hash(kind);
        if let Some(h) = lattice_kernel::EntryId::from_hex(kind) {
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            if found.is_ok() {
                inner.wanted.remove(&h.0);
            } else {
                inner.wanted.insert(h.0);
            }
        }
        found
            .map(|_| ())
            .map_err(|e| format!("upgrade plugin {kind} cannot run here yet: {e}"))
    }

    /// Marks a store for the next refresh (an upgrade switched its plugin).
    pub(crate) fn mark_store(&self, id: &StoreId) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .dirty
            .stores
            .insert(*id);
    }

    /// Registers a mesh's root store (at create, join, or startup).
    pub(crate) fn add_mesh(&self, rec: MeshRecord) -> Result<(), NodeError> {
        let plugin = self.load_kind("kv")?;
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.stores.insert(
            rec.root,
            StoreHandle {
                id: rec.root,
                mesh: rec.root,
                name: "root".into(),
                kind: "kv".into(),
                created_at: 0,
                profile: Profile::V1.version,
                declared: plugin.clone(),
                plugin,
                pin: None,
            },
        );
        inner.meshes.insert(rec.root, rec);
        inner.dirty.all = true;
        Ok(())
    }

    /// Stops running a mesh and its stores (after `mesh leave`).
    pub(crate) fn remove_mesh(&self, root: &StoreId) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.meshes.remove(root);
        inner.stores.retain(|_, h| h.mesh != *root);
    }

    /// The founder of the mesh whose root is `root` (`None`: not a mesh
    /// this node runs).
    fn founder(&self, root: &StoreId) -> Option<AuthorId> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .meshes
            .get(root)
            .map(|m| m.founder)
    }

    pub fn mesh(&self, root: &StoreId) -> Option<MeshRecord> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .meshes
            .get(root)
            .cloned()
    }

    /// Brings the open stores up to date with the trust tables: re-reads
    /// the stores root entries touched since the last refresh (or all of
    /// them, after a mesh-wide change), opens those not yet running, renames
    /// and closes. Stores whose plugin blob is not here yet are skipped (and
    /// retried on the next refresh).
    pub fn refresh(&self, tx: &redb::ReadTransaction) -> Result<(), NodeError> {
        let (dirty, waiting_for_blobs) = {
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            (std::mem::take(&mut inner.dirty), !inner.missing.is_empty())
        };
        // A blob that arrived may open stores no root entry touched.
        let r = if dirty.all || waiting_for_blobs {
            self.refresh_all(tx)
        } else {
            dirty
                .stores
                .iter()
                .try_for_each(|id| self.refresh_store(tx, *id))
        };
        if r.is_err() {
            // Try again next time.
            let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
            inner.dirty.all = true;
        }
        r
    }

    /// Re-reads one store's declaration, name and tombstone.
    fn refresh_store(&self, tx: &redb::ReadTransaction, id: StoreId) -> Result<(), NodeError> {
        let found = trust::declared_store(tx, id)?;
        let live = found.filter(|(m, d)| !d.deleted && self.mesh(m).is_some());
        let opened = live.map(|(mesh, d)| self.open_declared(tx, mesh, d));
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        match opened {
            Some(Opened::Open(h)) => {
                inner.stores.insert(id, h);
            }
            Some(Opened::MissingBlob(hash)) => {
                inner.missing.insert(hash);
            }
            Some(Opened::Unusable) => {}
            None => {
                if inner.stores.get(&id).is_some_and(|h| !h.is_root()) {
                    inner.stores.remove(&id);
                }
            }
        }
        Ok(())
    }

    /// Re-reads the declared stores of every mesh.
    fn refresh_all(&self, tx: &redb::ReadTransaction) -> Result<(), NodeError> {
        let meshes: Vec<StoreId> = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .meshes
            .keys()
            .copied()
            .collect();
        let mut open: HashMap<StoreId, StoreHandle> = HashMap::new();
        let mut missing = std::collections::BTreeSet::new();
        for mesh in meshes {
            for d in trust::declared_stores(tx, &mesh)? {
                if d.deleted {
                    continue;
                }
                match self.open_declared(tx, mesh, d) {
                    Opened::Open(h) => {
                        open.insert(h.id, h);
                    }
                    Opened::MissingBlob(hash) => {
                        missing.insert(hash);
                    }
                    Opened::Unusable => {}
                }
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner
            .stores
            .retain(|id, h| h.is_root() || open.contains_key(id));
        inner.stores.extend(open);
        inner.missing = missing;
        Ok(())
    }

    /// The handle of a declared, live store: its declared plugin, and the
    /// one its latest applied upgrade pinned (by hash; loaded once).
    fn open_declared(
        &self,
        tx: &redb::ReadTransaction,
        mesh: StoreId,
        d: trust::DeclaredStore,
    ) -> Opened {
        let id = d.decl.store;
        let declared = match self.plugin_by_hash(&d.decl.kind) {
            Ok(p) => p,
            Err(e) => return Opened::failed(&id, &d.decl.kind, e),
        };
        let pin = match epochs::read_pin(tx, &id) {
            Ok(p) => p,
            Err(e) => return Opened::failed(&id, &d.decl.kind, e),
        };
        let plugin = match &pin {
            None => declared.clone(),
            Some(p) => match self.plugin_by_hash(&p.epoch.spec.to) {
                Ok(p) => p,
                Err(e) => return Opened::failed(&id, &p.epoch.spec.to, e),
            },
        };
        Opened::Open(StoreHandle {
            id,
            mesh,
            name: d.name.unwrap_or_else(|| id.to_uuid()),
            kind: d.decl.kind,
            created_at: d.decl.created_at,
            profile: d.decl.profile,
            declared,
            plugin,
            pin,
        })
    }

    pub(crate) fn kernel(&self) -> Option<Arc<Kernel>> {
        self.kernel.get().and_then(Weak::upgrade)
    }

    /// Whether `peer` may read and write `store` now: an active member of
    /// its mesh (a table lookup in a snapshot).
    pub fn may_access(&self, store: &StoreId, peer: &AuthorId) -> bool {
        let check = || -> Result<bool, NodeError> {
            let Some(k) = self.kernel() else {
                return Ok(false);
            };
            let tx = k.db().begin_read()?;
            let Some(view) = TrustView::read(&tx)? else {
                return Ok(false);
            };
            let mesh = match self.founder(store) {
                Some(_) => *store,
                None => match view.owner(store, false)? {
                    Owner::Store {
                        mesh,
                        deleted: false,
                    } => mesh,
                    _ => return Ok(false),
                },
            };
            let Some(founder) = self.founder(&mesh) else {
                return Ok(false);
            };
            view.is_active(&mesh, &founder, peer)
        };
        check().unwrap_or(false)
    }

    /// Makes sure the plugin of a declared store is loaded, reading its
    /// declaration in the write transaction (it may have committed earlier
    /// in the same batch).
    fn ensure_loaded(
        &self,
        txn: &WriteTransaction,
        store: &StoreId,
        mesh: &StoreId,
    ) -> Result<(), String> {
        if self.is_open(store) {
            return Ok(());
        }
        let decl = (|| -> Result<Option<StoreDecl>, NodeError> {
            let t = txn.open_table(trust::DECLS)?;
            let Some(v) = t.get(store.0.as_slice())? else {
                return Ok(None);
            };
            Ok(Some(trust::decode_decl(*store, v.value())?.1))
        })()
        .map_err(|e| e.to_string())?;
        let Some(StoreDecl {
            kind,
            created_at,
            profile,
            ..
        }) = decl
        else {
            return Err(format!("store {} is not declared", store.to_uuid()));
        };
        let plugin = match self.load_kind(&kind) {
            Ok(p) => p,
            Err(e) => {
                if let Some(h) = lattice_kernel::EntryId::from_hex(&kind) {
                    self.inner
                        .write()
                        .unwrap_or_else(|e| e.into_inner())
                        .missing
                        .insert(h.0);
                }
                return Err(format!(
                    "store {} cannot run here yet: {e}",
                    store.to_uuid()
                ));
            }
        };
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        inner.stores.entry(*store).or_insert(StoreHandle {
            id: *store,
            mesh: *mesh,
            name: store.to_uuid(),
            kind,
            created_at,
            profile,
            declared: plugin.clone(),
            plugin,
            pin: None,
        });
        // Its name (and anything else) is read at the next refresh.
        inner.dirty.stores.insert(*store);
        Ok(())
    }

    fn mark_dirty(&self) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .dirty
            .all = true;
    }

    /// Root writes that change what a refresh would open, rename or close.
    fn mark_written(&self, writes: &[RootWrite]) {
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for w in writes {
            match w {
                RootWrite::StoreName(id, _) | RootWrite::StoreDeleted(id) => {
                    inner.dirty.stores.insert(*id);
                }
                RootWrite::StoreDecl(d) => {
                    inner.dirty.stores.insert(d.store);
                }
                // Membership is read from the trust tables on every check;
                // channels, node names and plugin info are not held here.
                RootWrite::StoreUpgrade(id, _) => {
                    inner.dirty.stores.insert(*id);
                }
                RootWrite::MeshName(_)
                | RootWrite::NodeStatus(..)
                | RootWrite::NodeCutoff(..)
                | RootWrite::NodeName(..)
                | RootWrite::Channel(..)
                | RootWrite::PluginInfo => {}
            }
        }
    }
}

/// A running store's declared plugin and limits (an upgraded store's later
/// epochs are looked up per entry, see [`epochs`]).
pub(crate) struct Runner {
    pub(crate) plugin: Arc<Plugin>,
    pub(crate) profile: u32,
    pub(crate) root: bool,
    pub(crate) mesh: StoreId,
}

/// What opening a declared store came to.
enum Opened {
    Open(StoreHandle),
    /// Its pinned plugin blob is not here yet (fetched from peers).
    MissingBlob([u8; 32]),
    /// Its plugin is here but cannot run (logged).
    Unusable,
}

impl Opened {
    fn failed(store: &StoreId, kind: &str, e: NodeError) -> Opened {
        match (&e, lattice_kernel::EntryId::from_hex(kind)) {
            (NodeError::MissingBlob(_), Some(h)) => Opened::MissingBlob(h.0),
            _ => {
                tracing::warn!(store = %store.to_uuid(), error = %e, "store declared but cannot be opened");
                Opened::Unusable
            }
        }
    }
}

/// The shipped plugin whose blob hashes to `hash`.
pub(crate) fn builtin_by_hash(hash: &[u8; 32]) -> Option<&'static [u8]> {
    static HASHES: OnceLock<Vec<([u8; 32], &'static [u8])>> = OnceLock::new();
    HASHES
        .get_or_init(|| {
            builtin::BUILTIN
                .iter()
                .map(|(_, w)| (*blake3::hash(w).as_bytes(), *w))
                .collect()
        })
        .iter()
        .find(|(h, _)| h == hash)
        .map(|(_, w)| *w)
}

/// The kernel's commit hook for a node.
pub struct NodeHook(pub Arc<Registry>);

impl NodeHook {
    /// The mesh of a root entry, with its validated writes.
    fn root_writes(&self, e: &SignedEntry) -> Option<(MeshRecord, Vec<RootWrite>)> {
        let rec = self.0.mesh(&e.store)?;
        let writes = root_rules::check(&rec.root, &rec.founder, e).ok()?;
        Some((rec, writes))
    }
}

/// Records why an entry applied as a no-op (shown by `store log`).
fn record_noop(txn: &WriteTransaction, e: &SignedEntry, reason: &str) -> Result<(), HookError> {
    let mut t = txn.open_table(NOOPS)?;
    let key = [e.store.0.as_slice(), e.id.0.as_slice()].concat();
    t.insert(key.as_slice(), reason)?;
    Ok(())
}

fn refused(why: impl std::fmt::Display) -> Admission {
    Admission::Refuse(ValidationError::Refused(why.to_string()))
}

impl CommitHook for NodeHook {
    fn admit(&self, txn: &WriteTransaction, e: &SignedEntry) -> Result<Admission, HookError> {
        let reg = &self.0;
        let view = TrustView::write(txn)?;
        // (mesh, founder), looked up without cloning the mesh record: this
        // runs for every entry.
        let is_root = reg.founder(&e.store).is_some();
        let mesh = if is_root {
            e.store
        } else {
            match view.owner(&e.store, false)? {
                Owner::Store { deleted: true, .. } => {
                    return Ok(refused(format!("store {} was deleted", e.store.to_uuid())));
                }
                Owner::Store { mesh, .. } => mesh,
                Owner::Root | Owner::Unknown => {
                    return Ok(refused(format!(
                        "store {} is not declared in any mesh of this node (yet)",
                        e.store.to_uuid()
                    )));
                }
            }
        };
        let Some(founder) = reg.founder(&mesh) else {
            return Ok(refused("store of a mesh this node left"));
        };
        let standing = view.standing(&mesh, &founder, &e.store, &e.author)?;
        match trust::admit_author(standing, e) {
            Err(v) => return Ok(Admission::Refuse(v)),
            Ok(false) => return Ok(Admission::Void),
            Ok(true) => {}
        }
        if is_root {
            let writes = match root_rules::check(&mesh, &founder, e) {
                Ok(w) => w,
                Err(r) => return Ok(refused(r)),
            };
            for w in &writes {
                if let RootWrite::NodeStatus(node, _) = w {
                    if let Some(by) = view.revoked_by(&mesh, node)? {
                        if by != e.id.0 {
                            return Ok(refused(root_rules::RootRuleError::Revoked(node.to_hex())));
                        }
                    }
                }
            }
            return Ok(Admission::Apply);
        }
        drop(view);
        if let Err(why) = reg.ensure_loaded(txn, &e.store, &mesh) {
            return Ok(refused(why));
        }
        if epochs::is_marker(&e.payload) {
            match epochs::check_marker(txn, &mesh, e)? {
                Err(why) => return Ok(refused(why)),
                Ok(spec) => {
                    if let Err(why) = reg.ensure_blob(&spec.to) {
                        return Ok(refused(why));
                    }
                }
            }
        }
        Ok(Admission::Apply)
    }

    fn placed(&self, txn: &WriteTransaction, e: &SignedEntry, void: bool) -> Result<(), HookError> {
        let Some(h) = self.0.runner(&e.store) else {
            return Ok(());
        };
        if h.root {
            return Ok(());
        }
        Ok(epochs::place(txn, &h.mesh, e, void, &h.plugin.info().hash)?)
    }

    fn rebuilds(&self, txn: &WriteTransaction, e: &SignedEntry) -> Result<Vec<StoreId>, HookError> {
        Ok(epochs::rebuilds(txn, e)?)
    }

    fn replays_in(
        &self,
        txn: &WriteTransaction,
        e: &SignedEntry,
        pass: u32,
    ) -> Result<bool, HookError> {
        Ok(epochs::tag(txn, &e.store, &e.id)? == pass)
    }

    fn begin_pass(
        &self,
        txn: &WriteTransaction,
        store: &StoreId,
        pass: u32,
    ) -> Result<bool, HookError> {
        Ok(epochs::begin_pass(&self.0, txn, store, pass)?)
    }

    fn apply(&self, txn: &WriteTransaction, e: &SignedEntry) -> Result<(), HookError> {
        let reg = &self.0;
        let h = reg
            .runner(&e.store)
            .ok_or_else(|| format!("no plugin for store {}", e.store.to_uuid()))?;
        let op = Op {
            id: e.id.0.to_vec(),
            author: e.author.0.to_vec(),
            seq: e.seq,
            hlc: e.hlc,
            deps: e.deps.iter().map(|d| d.0.to_vec()).collect(),
            payload: e.payload.clone(),
        };
        let (plugin, profile) = if h.root {
            (h.plugin.clone(), h.profile)
        } else {
            match epochs::route(reg, txn, e, &h)? {
                epochs::Route::Apply(plugin, profile) => (plugin, profile),
                epochs::Route::Done => return Ok(()),
                epochs::Route::NoOp(reason) => {
                    record_noop(txn, e, &reason)?;
                    return Ok(());
                }
            }
        };
        let profile = Profile::by_version(profile).ok_or_else(|| {
            format!(
                "store {} names unknown runtime profile {profile}",
                e.store.to_uuid(),
            )
        })?;
        if let ApplyOutcome::NoOp { reason } = plugin.apply_with(txn, &e.store.0, &op, &profile)? {
            record_noop(txn, e, &reason.to_string())?;
        }
        if h.root {
            let (rec, writes) = self
                .root_writes(e)
                .ok_or("a root entry applied without passing the root rules")?;
            trust::apply_root(txn, &rec.root, e, &writes)?;
            reg.mark_written(&writes);
        }
        Ok(())
    }

    fn voids(&self, txn: &WriteTransaction, e: &SignedEntry) -> Result<Vec<VoidAbove>, HookError> {
        match self.root_writes(e) {
            Some((rec, writes)) => Ok(trust::voids_of(txn, &rec.root, &writes)?),
            None => Ok(Vec::new()),
        }
    }

    fn reset(&self, txn: &WriteTransaction, store: &StoreId) -> Result<(), HookError> {
        crate::runtime::clear_store(txn, &store.0)?;
        epochs::reset(txn, store)?;
        let lo = [store.0.as_slice(), &[0u8; 32]].concat();
        let hi = [store.0.as_slice(), &[0xffu8; 32]].concat();
        txn.open_table(NOOPS)?
            .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)?;
        if self.0.mesh(store).is_some() {
            trust::reset_mesh(txn, store)?;
            self.0.mark_dirty();
        }
        Ok(())
    }

    fn committed(&self, entries: &[SignedEntry]) {
        let reg = &self.0;
        if !reg
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .dirty
            .is_clean()
        {
            if let Some(k) = reg.kernel() {
                match k.db().begin_read() {
                    Ok(tx) => {
                        if let Err(e) = reg.refresh(&tx) {
                            tracing::warn!(error = %e, "refreshing stores after a root change failed");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot read stores after a root change"),
                }
            }
        }
        let mut w = reg.watchers.lock().unwrap_or_else(|e| e.into_inner());
        w.retain(|tx| entries.iter().all(|e| tx.send(e.clone()).is_ok()));
        drop(w);
        for l in reg
            .listeners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
        {
            l(entries);
        }
    }
}
