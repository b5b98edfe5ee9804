//! Which stores this node runs, with which plugin, in which mesh; and the
//! commit hook that applies each entry through its store's plugin inside the
//! kernel's write transaction.
//!
//! The registry is derived from the root stores' state (`/stores/…`), so a
//! store declared on another node appears here once the root store syncs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock, Weak};

use lattice_kernel::{AuthorId, CommitHook, HookError, Kernel, SignedEntry, StoreId};
use prost::Message;
use redb::{ReadableDatabase, TableDefinition, WriteTransaction};

use super::datadir::DataDir;
use super::{NodeError, root};
use crate::runtime::{ApplyOutcome, Op, Plugin, ReadState, Runtime, builtin};

/// store ‖ entry id → reason, for ops a plugin could not apply.
pub(crate) const NOOPS: TableDefinition<&[u8], &str> = TableDefinition::new("host_noops");
/// root store id → founder pubkey (32) ‖ mesh name.
pub(crate) const MESHES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("host_meshes");

/// A running store.
#[derive(Clone)]
pub struct StoreHandle {
    pub id: StoreId,
    /// The root store of the mesh that declares it (itself for a root).
    pub mesh: StoreId,
    pub name: String,
    /// `kv`, `log`, `chat`, or the hex blake3 of a plugin blob.
    pub kind: String,
    pub created_at: u64,
    pub plugin: Arc<Plugin>,
}

impl StoreHandle {
    pub fn is_root(&self) -> bool {
        self.id == self.mesh
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
    pub name: String,
}

#[derive(Default)]
struct Inner {
    stores: HashMap<StoreId, StoreHandle>,
    meshes: HashMap<StoreId, MeshRecord>,
    /// (mesh, author) → active member? Cleared whenever a root entry applies.
    members: HashMap<(StoreId, AuthorId), bool>,
    /// A root store changed since the last refresh.
    dirty: bool,
    /// Plugin blobs that declared stores need and this node lacks.
    missing: std::collections::BTreeSet<[u8; 32]>,
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

    /// Hashes of plugin blobs that declared stores are waiting for.
    pub fn missing_blobs(&self) -> Vec<[u8; 32]> {
        self.inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .missing
            .iter()
            .copied()
            .collect()
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

    /// Loads a plugin by store type: a shipped plugin's name or a blob hash.
    pub fn load_kind(&self, kind: &str) -> Result<Arc<Plugin>, NodeError> {
        if let Some(wasm) = builtin::builtin(kind) {
            return Ok(self.runtime.load(wasm)?);
        }
        let hash = lattice_kernel::EntryId::from_hex(kind)
            .ok_or_else(|| NodeError::UnknownType(kind.to_string()))?;
        let wasm = self
            .data
            .get_blob(&hash.0)?
            .ok_or_else(|| NodeError::MissingBlob(kind.to_string()))?;
        Ok(self.runtime.load(&wasm)?)
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
                plugin,
            },
        );
        inner.meshes.insert(rec.root, rec);
        inner.dirty = true;
        Ok(())
    }

    /// Registers a store before its first entry is written (local create).
    pub(crate) fn insert(&self, h: StoreHandle) {
        self.inner
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .stores
            .insert(h.id, h);
    }

    /// Re-reads every root store's `/stores/` keys and opens stores not yet
    /// running. Stores whose plugin blob is not here yet are skipped (and
    /// retried on the next refresh).
    pub fn refresh(&self, tx: &impl ReadState) -> Result<(), NodeError> {
        let roots: Vec<(StoreId, Arc<Plugin>)> = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            inner
                .meshes
                .keys()
                .filter_map(|r| inner.stores.get(r).map(|h| (*r, h.plugin.clone())))
                .collect()
        };
        let mut found = Vec::new();
        for (root_id, plugin) in roots {
            for (uuid, fields) in list_stores(tx, &root_id, &plugin)? {
                found.push((root_id, uuid, fields));
            }
        }
        let mut fresh = Vec::new();
        let mut missing = std::collections::BTreeSet::new();
        for (mesh, uuid, fields) in found {
            let Some(id) = StoreId::from_uuid(&uuid) else {
                continue;
            };
            let known = self.get(&id);
            let name = fields.get("name").cloned().unwrap_or_else(|| uuid.clone());
            if let Some(mut h) = known {
                if h.name != name {
                    h.name = name;
                    fresh.push(h);
                }
                continue;
            }
            let Some(kind) = fields.get("type").cloned() else {
                continue;
            };
            let created_at = fields
                .get("created_at")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0);
            match self.load_kind(&kind) {
                Ok(plugin) => fresh.push(StoreHandle {
                    id,
                    mesh,
                    name,
                    kind,
                    created_at,
                    plugin,
                }),
                Err(NodeError::MissingBlob(h)) => {
                    if let Some(hash) = lattice_kernel::EntryId::from_hex(&h) {
                        missing.insert(hash.0);
                    }
                }
                Err(e) => {
                    tracing::warn!(store = %uuid, error = %e, "store declared but cannot be opened")
                }
            }
        }
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        for h in fresh {
            inner.stores.insert(h.id, h);
        }
        inner.dirty = false;
        inner.missing = missing;
        Ok(())
    }

    pub(crate) fn kernel(&self) -> Option<Arc<Kernel>> {
        self.kernel.get().and_then(Weak::upgrade)
    }

    /// Per-author rules for the root store: membership (`/nodes/*/status`)
    /// and the mesh's own keys are the founder's to write; any member may
    /// declare stores, plugins and channels and set its own `/nodes/{self}/name`.
    fn root_write_allowed(&self, mesh: StoreId, e: &SignedEntry) -> bool {
        let founder = match self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .meshes
            .get(&mesh)
        {
            Some(rec) => rec.founder,
            None => return false,
        };
        if e.author == founder {
            return true;
        }
        let Ok(op) = root::KvOp::decode(e.payload.as_slice()) else {
            return false;
        };
        let own_name = root::node_key(&e.author.to_hex(), "name");
        op.writes.iter().all(|w| {
            w.key.starts_with("/stores/")
                || w.key.starts_with("/plugins/")
                || w.key.starts_with("/channels/")
                || w.key == own_name
        })
    }

    /// Whether `author` is an active member of `mesh` (cached until the
    /// next root entry applies).
    /// `cache` may only be true on the commit thread, inside the write
    /// transaction: there lookups are serialized with the root applies that
    /// clear the cache. A result computed from a read snapshot could be
    /// stale by the time it is stored, and would then stick.
    pub(crate) fn is_member(
        &self,
        txn: &impl ReadState,
        mesh: StoreId,
        author: AuthorId,
        cache: bool,
    ) -> Result<bool, NodeError> {
        if let Some(&m) = self
            .inner
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .members
            .get(&(mesh, author))
        {
            return Ok(m);
        }
        let (root_plugin, founder) = {
            let inner = self.inner.read().unwrap_or_else(|e| e.into_inner());
            let rec = inner
                .meshes
                .get(&mesh)
                .ok_or(NodeError::UnknownMesh(mesh.to_uuid()))?;
            let h = inner
                .stores
                .get(&mesh)
                .ok_or(NodeError::UnknownMesh(mesh.to_uuid()))?;
            (h.plugin.clone(), rec.founder)
        };
        let status = kv_get(
            txn,
            &mesh,
            &root_plugin,
            &root::node_key(&author.to_hex(), "status"),
        )?;
        let member = match status.as_deref() {
            Some(b"active") => true,
            Some(_) => false,
            // Genesis: before anyone is recorded, only the founder may write
            // (the founder's first root entry records the founder as active).
            None => {
                author == founder && kv_list(txn, &mesh, &root_plugin, "/nodes/", 1)?.is_empty()
            }
        };
        if cache {
            self.inner
                .write()
                .unwrap_or_else(|e| e.into_inner())
                .members
                .insert((mesh, author), member);
        }
        Ok(member)
    }
}

/// `(uuid, {field: value})` for every store declared in a root store.
fn list_stores(
    tx: &impl ReadState,
    root_id: &StoreId,
    plugin: &Plugin,
) -> Result<Vec<(String, HashMap<String, String>)>, NodeError> {
    let mut out: Vec<(String, HashMap<String, String>)> = Vec::new();
    for (key, value) in kv_list(tx, root_id, plugin, "/stores/", u32::MAX)? {
        let mut parts = key.trim_start_matches("/stores/").splitn(2, '/');
        let (Some(uuid), Some(field)) = (parts.next(), parts.next()) else {
            continue;
        };
        let value = String::from_utf8_lossy(&value).into_owned();
        match out.last_mut() {
            Some((u, m)) if u == uuid => {
                m.insert(field.to_string(), value);
            }
            _ => out.push((
                uuid.to_string(),
                HashMap::from([(field.to_string(), value)]),
            )),
        }
    }
    Ok(out)
}

/// Reads one root key's LWW value through the kv plugin.
pub(crate) fn kv_get(
    tx: &impl ReadState,
    store: &StoreId,
    plugin: &Plugin,
    key: &str,
) -> Result<Option<Vec<u8>>, NodeError> {
    let req = root::GetRequest {
        key: key.to_string(),
        mode: 0,
    }
    .encode_to_vec();
    let reply = plugin.query(tx, &store.0, "Get", &req)?;
    let r = root::GetReply::decode(reply.as_slice())
        .map_err(|e| NodeError::RootSchema(e.to_string()))?;
    Ok(r.found.then_some(r.value))
}

/// Lists root keys under `prefix` (LWW values), following pagination.
pub(crate) fn kv_list(
    tx: &impl ReadState,
    store: &StoreId,
    plugin: &Plugin,
    prefix: &str,
    max: u32,
) -> Result<Vec<(String, Vec<u8>)>, NodeError> {
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let req = root::ListRequest {
            prefix: prefix.into(),
            after: after.clone(),
            limit: 500,
            mode: 0,
        }
        .encode_to_vec();
        let reply = plugin.query(tx, &store.0, "List", &req)?;
        let r = root::ListReply::decode(reply.as_slice())
            .map_err(|e| NodeError::RootSchema(e.to_string()))?;
        for e in r.entries {
            if out.len() as u32 >= max {
                return Ok(out);
            }
            out.push((e.key, e.value));
        }
        if r.next.is_empty() || r.next == after {
            return Ok(out);
        }
        after = r.next;
    }
}

/// The kernel's commit hook for a node.
pub struct NodeHook(pub Arc<Registry>);

impl CommitHook for NodeHook {
    fn authorize(&self, txn: &WriteTransaction, e: &SignedEntry) -> Result<bool, HookError> {
        let reg = &self.0;
        let mut handle = reg.get(&e.store);
        if handle.is_none() && reg.inner.read().unwrap_or_else(|e| e.into_inner()).dirty {
            reg.refresh(txn)?;
            handle = reg.get(&e.store);
        }
        let Some(h) = handle else {
            tracing::debug!(store = %e.store.to_uuid(), "entry for a store this node does not run");
            return Ok(false);
        };
        if !reg.is_member(txn, h.mesh, e.author, true)? {
            return Ok(false);
        }
        if h.is_root() {
            return Ok(reg.root_write_allowed(h.mesh, e));
        }
        Ok(true)
    }

    fn apply(&self, txn: &WriteTransaction, e: &SignedEntry) -> Result<(), HookError> {
        let reg = &self.0;
        let h = reg
            .get(&e.store)
            .ok_or_else(|| format!("no plugin for store {}", e.store.to_uuid()))?;
        let op = Op {
            id: e.id.0.to_vec(),
            author: e.author.0.to_vec(),
            seq: e.seq,
            hlc: e.hlc,
            deps: e.deps.iter().map(|d| d.0.to_vec()).collect(),
            payload: e.payload.clone(),
        };
        if let ApplyOutcome::NoOp { reason } = h.plugin.apply(txn, &e.store.0, &op)? {
            let mut t = txn.open_table(NOOPS)?;
            let key = [e.store.0.as_slice(), e.id.0.as_slice()].concat();
            t.insert(key.as_slice(), reason.to_string().as_str())?;
        }
        if h.is_root() {
            let mut inner = reg.inner.write().unwrap_or_else(|e| e.into_inner());
            inner.members.retain(|(m, _), _| *m != h.id);
            inner.dirty = true;
        }
        Ok(())
    }

    fn committed(&self, entries: &[SignedEntry]) {
        let reg = &self.0;
        if reg.inner.read().unwrap_or_else(|e| e.into_inner()).dirty {
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
