//! A node: one data directory, one identity, one kernel, the plugin runtime
//! and the stores of every mesh it belongs to. Everything a user does goes
//! through here: CLI → (daemon API) → [`Node`] → kernel transaction →
//! plugin apply.

mod datadir;
pub mod epochs;
mod names;
pub mod network;
pub mod registry;
pub mod root;
mod root_rules;
mod stats;
pub mod tokens;
pub mod trust;
mod upgrade;
pub use upgrade::UpgradeReport;
mod verify;

use std::path::Path;
use std::sync::Arc;

use lattice_kernel::{
    AuthorId, Identity, Kernel, KernelConfig, KernelError, LogStatus, SignedEntry, StoreId,
};
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

pub use datadir::{
    DataDir, LOG_FILE, SOCKET_FILE, TrustError, check_trust, resolve as resolve_data_dir,
};
pub use names::Renamed;
pub use registry::{MeshRecord, Registry, StoreHandle};
pub use root_rules::{RootRuleError, RootWrite, StoreDecl, store_id};
pub use stats::RuntimeStats;
pub use tokens::{TokenError, TokenInfo, TokenRecord};
pub use verify::{IntegrityError, StoreVerify};

use crate::runtime::{
    CallError, Context, LoadError, Runtime, RuntimeConfig, RuntimeError, builtin,
};
use registry::{MESHES, NOOPS, NodeHook};

/// Node-local settings: "mesh" → selected root id; "use/{mesh}/{type}" → store id;
/// "node_name" → this node's display name.
const SETTINGS: TableDefinition<&str, &[u8]> = TableDefinition::new("host_settings");

/// Names a store may not take: they are the CLI's static commands.
pub const RESERVED_NAMES: &[&str] = &[
    "node", "mesh", "store", "plugin", "watch", "daemon", "demo", "bench", "help",
];

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("data dir {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("identity: {0}")]
    Identity(#[from] lattice_kernel::IdentityError),
    #[error(transparent)]
    Trust(#[from] TrustError),
    #[error(transparent)]
    Integrity(#[from] IntegrityError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(
        "the data dir {0} is in use by another lattice process that is not answering on its socket"
    )]
    Busy(std::path::PathBuf),
    #[error("{0}")]
    Kernel(KernelError),
    #[error("plugin runtime: {0}")]
    Runtime(#[from] RuntimeError),
    #[error("plugin refused: {0}")]
    Load(#[from] LoadError),
    #[error("{0}")]
    Call(#[from] CallError),
    #[error("plugin state: {0}")]
    State(#[from] crate::runtime::StorageError),
    #[error("storage: {0}")]
    Storage(#[from] redb::Error),
    #[error("no mesh yet: create one with `lattice mesh create`")]
    NoMesh,
    #[error("no stores yet: create one with `lattice store create --type chat --name general`")]
    NoStore,
    #[error("unknown mesh `{0}`")]
    UnknownMesh(String),
    #[error("several meshes exist; pick one with `lattice mesh use NAME` ({0})")]
    AmbiguousMesh(String),
    #[error("unknown store `{selector}`{}", candidates_hint(.candidates))]
    UnknownStore {
        selector: String,
        candidates: Vec<String>,
    },
    #[error("`{selector}` matches several stores: {}; pick one with --store NAME or `lattice store use NAME`", .candidates.join(", "))]
    AmbiguousStore {
        selector: String,
        candidates: Vec<String>,
    },
    #[error("no store named and no default: this mesh has {}; name one (STORE or --store NAME) or set the default with `lattice store use NAME`", .0.join(", "))]
    NoDefaultStore(Vec<String>),
    #[error("unknown store type `{0}`: use kv, log, chat or a path to a .wasm plugin")]
    UnknownType(String),
    #[error("plugin blob {0} is not on this node yet")]
    MissingBlob(String),
    #[error("a store named `{0}` already exists in this mesh")]
    NameTaken(String),
    #[error("invalid store name `{0}`: {1}")]
    BadName(String, &'static str),
    /// Debug-quoted: the name may hold the control characters it is refused for.
    #[error("invalid node name {0:?}: {rule}", rule = root_rules::DISPLAY_NAME_RULE)]
    BadNodeName(String),
    #[error("this node is not an active member of mesh `{0}` (revoked, or not admitted yet)")]
    NotMember(String),
    #[error("unknown method `{method}` for `{store}`; valid: {}", .valid.join(", "))]
    UnknownMethod {
        store: String,
        method: String,
        valid: Vec<String>,
    },
    #[error("root store schema: {0}")]
    RootSchema(String),
    #[error("network: {0}")]
    Net(String),
    #[error("this needs the network: start `lattice daemon` first")]
    Offline,
    #[error("only the mesh founder ({1}) can {0}")]
    NotFounder(String, String),
    #[error("{0}")]
    Invite(&'static str),
    #[error("this node founded mesh `{0}`: the founder cannot leave it (revoke members instead)")]
    FounderCannotLeave(String),
    #[error("only the creator of store `{0}` ({1}) can upgrade it")]
    NotUpgrader(String, String),
    #[error("store `{0}` already runs plugin {1}")]
    SamePlugin(String, String),
    #[error("plugin {plugin} cannot migrate store `{store}` from state version {from}: {why}")]
    CannotMigrate {
        store: String,
        plugin: String,
        from: u32,
        why: String,
    },
}

impl NodeError {
    /// The kind a script sees beside the message (`--json` errors).
    pub fn kind(&self) -> crate::api::ErrorKind {
        use crate::api::ErrorKind as K;
        match self {
            NodeError::NoMesh
            | NodeError::NoStore
            | NodeError::UnknownMesh(_)
            | NodeError::UnknownStore { .. }
            | NodeError::UnknownType(_)
            | NodeError::MissingBlob(_)
            | NodeError::UnknownMethod { .. } => K::NotFound,
            NodeError::AmbiguousMesh(_)
            | NodeError::AmbiguousStore { .. }
            | NodeError::NoDefaultStore(_) => K::Ambiguous,
            NodeError::BadName(..) | NodeError::BadNodeName(_) | NodeError::NameTaken(_) => {
                K::Invalid
            }
            NodeError::Trust(_)
            | NodeError::Load(_)
            | NodeError::NotFounder(..)
            | NodeError::Invite(_)
            | NodeError::FounderCannotLeave(_)
            | NodeError::NotUpgrader(..)
            | NodeError::SamePlugin(..)
            | NodeError::CannotMigrate { .. }
            | NodeError::NotMember(_)
            | NodeError::RootSchema(_) => K::Refused,
            NodeError::Token(TokenError::UnknownId(_)) => K::NotFound,
            NodeError::Token(_) => K::Refused,
            NodeError::Busy(_) => K::Busy,
            NodeError::Offline | NodeError::Net(_) => K::Offline,
            NodeError::Integrity(_) => K::Integrity,
            NodeError::DataDir { .. }
            | NodeError::Identity(_)
            | NodeError::Kernel(_)
            | NodeError::Runtime(_)
            | NodeError::Call(_)
            | NodeError::State(_)
            | NodeError::Storage(_) => K::Failed,
        }
    }
}

fn candidates_hint(c: &[String]) -> String {
    if c.is_empty() {
        String::new()
    } else {
        format!("; known: {}", c.join(", "))
    }
}

impl From<KernelError> for NodeError {
    fn from(e: KernelError) -> Self {
        match e {
            KernelError::Locked { path } => NodeError::Busy(path),
            other => NodeError::Kernel(other),
        }
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$( impl From<$t> for NodeError { fn from(e: $t) -> Self { NodeError::Storage(e.into()) } } )*};
}
storage_from!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<Box<dyn std::error::Error + Send + Sync>> for NodeError {
    fn from(e: Box<dyn std::error::Error + Send + Sync>) -> Self {
        NodeError::Kernel(KernelError::Hook(e.to_string()))
    }
}

/// What to run a new store with.
pub enum StoreType<'a> {
    /// A shipped plugin: `kv`, `log`, `chat`.
    Builtin(&'a str),
    /// A third-party plugin blob.
    Wasm(&'a [u8]),
}

/// The result of calling a store method.
pub struct CallOutcome {
    /// The logged entry, for commands.
    pub entry: Option<SignedEntry>,
    /// The encoded reply message.
    pub reply: Vec<u8>,
}

/// A call whose op may still be on its way to disk.
pub enum CallPending {
    /// A query, or a command already answered.
    Done(CallOutcome),
    /// A command's op, handed to the kernel's group commit.
    Append(Appending),
}

/// A command on its way to disk, and the reply its `prepare` gave.
pub struct Appending {
    pending: lattice_kernel::Pending<SignedEntry>,
    reply: Vec<u8>,
}

impl CallPending {
    /// Block until the op is durable (at once for a query).
    pub fn wait(self) -> Result<CallOutcome, NodeError> {
        match self {
            CallPending::Done(o) => Ok(o),
            CallPending::Append(a) => Ok(CallOutcome {
                entry: Some(a.pending.wait()?),
                reply: a.reply,
            }),
        }
    }
}

pub struct StoreStatus {
    pub handle: StoreHandle,
    pub log: LogStatus,
    pub state_digest: [u8; 32],
    pub noops: u64,
    /// Why the store stopped applying on this node, if it did.
    pub halted: Option<String>,
}

pub struct MeshStatus {
    pub record: MeshRecord,
    /// (pubkey hex, name, status)
    pub members: Vec<(String, String, String)>,
    pub stores: Vec<StoreHandle>,
}

pub struct Node {
    data: Arc<DataDir>,
    kernel: Arc<Kernel>,
    registry: Arc<Registry>,
    network: std::sync::OnceLock<network::Network>,
}

impl Node {
    /// Opens the node in `path` (creating it on first use).
    pub fn open(path: &Path) -> Result<Node, NodeError> {
        Self::open_with(path, KernelConfig::default())
    }

    pub fn open_with(path: &Path, config: KernelConfig) -> Result<Node, NodeError> {
        let data = Arc::new(DataDir::open(path)?);
        let identity = Identity::load_or_create(path)?;
        let runtime = Arc::new(Runtime::new(RuntimeConfig {
            cache_dir: Some(data.cache_path()),
            ..RuntimeConfig::default()
        })?);
        let registry = Arc::new(Registry::new(runtime, data.clone()));
        let kernel = Arc::new(Kernel::open(
            &data.log_path(),
            identity,
            config,
            Arc::new(NodeHook(registry.clone())),
        )?);
        registry.set_kernel(&kernel);
        {
            // Create the trust tables up front so readers never race their creation.
            let tx = kernel.db().begin_write()?;
            for def in trust::ALL {
                tx.open_table(*def)?;
            }
            tx.commit()?;
        }
        let node = Node {
            data,
            kernel,
            registry,
            network: std::sync::OnceLock::new(),
        };
        for rec in node.read_meshes()? {
            node.registry.add_mesh(rec)?;
        }
        node.registry.refresh(&node.kernel.db().begin_read()?)?;
        Ok(node)
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.data
    }

    pub fn kernel(&self) -> &Arc<Kernel> {
        &self.kernel
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn author(&self) -> AuthorId {
        self.kernel.author()
    }

    fn read_meshes(&self) -> Result<Vec<MeshRecord>, NodeError> {
        let tx = self.kernel.db().begin_read()?;
        let Some(t) = read_table(&tx, MESHES)? else {
            return Ok(vec![]);
        };
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let (k, v) = (k.value(), v.value());
            let (Some(root), Some(founder), Some(secret)) = (
                StoreId::from_slice(k),
                v.get(..32).and_then(AuthorId::from_slice),
                v.get(32..64).and_then(|s| <[u8; 32]>::try_from(s).ok()),
            ) else {
                return Err(NodeError::RootSchema("corrupt mesh record".into()));
            };
            if root::mesh_id(&founder, &secret) != root {
                return Err(NodeError::RootSchema(format!(
                    "mesh record {} does not match its founder and secret",
                    root.to_uuid()
                )));
            }
            out.push(MeshRecord {
                root,
                founder,
                secret,
                name: String::from_utf8_lossy(&v[64..]).into_owned(),
            });
        }
        Ok(out)
    }

    fn setting(&self, key: &str) -> Result<Option<Vec<u8>>, NodeError> {
        let tx = self.kernel.db().begin_read()?;
        match read_table(&tx, SETTINGS)? {
            Some(t) => Ok(t.get(key)?.map(|v| v.value().to_vec())),
            None => Ok(None),
        }
    }

    fn set_setting(&self, key: &str, value: &[u8]) -> Result<(), NodeError> {
        let tx = self.kernel.db().begin_write()?;
        tx.open_table(SETTINGS)?.insert(key, value)?;
        tx.commit()?;
        Ok(())
    }

    // ---- meshes ----

    /// Creates a mesh: a new root store whose first entry records this node
    /// as its founding active member.
    pub fn mesh_create(&self, name: Option<&str>) -> Result<MeshRecord, NodeError> {
        let existing = self.registry.meshes();
        let name = match name {
            Some(n) => n.to_string(),
            None if existing.is_empty() => "default".to_string(),
            None => format!("mesh-{}", existing.len() + 1),
        };
        if existing.iter().any(|m| m.name == name) {
            return Err(NodeError::NameTaken(name));
        }
        if !root_rules::is_display_name(&name) {
            return Err(NodeError::BadName(name, root_rules::DISPLAY_NAME_RULE));
        }
        let secret = root::random_secret();
        let rec = MeshRecord {
            root: root::mesh_id(&self.author(), &secret),
            founder: self.author(),
            secret,
            name: name.clone(),
        };
        self.remember_mesh(&rec)?;
        let me = self.author().to_hex();
        self.root_batch(
            &rec.root,
            vec![
                (root::node_key(&me, "status"), b"active".to_vec()),
                (root::node_key(&me, "name"), self.node_name()?.into_bytes()),
                ("/mesh/name".to_string(), name.into_bytes()),
            ],
        )?;
        if self.setting("mesh")?.is_none() {
            self.set_setting("mesh", &rec.root.0)?;
        }
        Ok(rec)
    }

    /// Records a mesh locally and starts running its root store.
    pub fn remember_mesh(&self, rec: &MeshRecord) -> Result<(), NodeError> {
        let tx = self.kernel.db().begin_write()?;
        let value = [
            rec.founder.0.as_slice(),
            rec.secret.as_slice(),
            rec.name.as_bytes(),
        ]
        .concat();
        tx.open_table(MESHES)?
            .insert(rec.root.0.as_slice(), value.as_slice())?;
        tx.commit()?;
        self.registry.add_mesh(rec.clone())
    }

    pub fn meshes(&self) -> Vec<MeshRecord> {
        self.registry.meshes()
    }

    /// Leaves a mesh on this node: stops running it and its stores and
    /// frees their plugin state. The log stays (it is history others may
    /// still sync from us until the founder revokes this node). The founder
    /// cannot leave: the mesh's membership is its chain.
    pub fn mesh_leave(&self, sel: &str) -> Result<MeshRecord, NodeError> {
        let m = self.find_mesh(sel)?;
        if m.founder == self.author() {
            return Err(NodeError::FounderCannotLeave(m.name));
        }
        let stores: Vec<StoreId> = std::iter::once(m.root)
            .chain(self.stores_of(&m.root).into_iter().map(|s| s.id))
            .collect();
        let tx = self.kernel.db().begin_write()?;
        tx.open_table(MESHES)?.remove(m.root.0.as_slice())?;
        for s in &stores {
            crate::runtime::clear_store(&tx, &s.0)?;
        }
        let mut settings = tx.open_table(SETTINGS)?;
        if settings.get("mesh")?.map(|v| v.value().to_vec()) == Some(m.root.0.to_vec()) {
            settings.remove("mesh")?;
        }
        drop(settings);
        tx.commit()?;
        self.registry.remove_mesh(&m.root);
        Ok(m)
    }

    /// The mesh `sel` names (name, uuid or hex id), else the current one.
    pub fn pick_mesh(&self, sel: Option<&str>) -> Result<MeshRecord, NodeError> {
        match sel {
            Some(s) => self.find_mesh(s),
            None => self.current_mesh(),
        }
    }

    fn find_mesh(&self, sel: &str) -> Result<MeshRecord, NodeError> {
        self.meshes()
            .into_iter()
            .find(|m| m.name == sel || m.root.to_uuid() == sel || m.root.to_hex() == sel)
            .ok_or_else(|| NodeError::UnknownMesh(sel.to_string()))
    }

    pub fn mesh_use(&self, sel: &str) -> Result<MeshRecord, NodeError> {
        let m = self.find_mesh(sel)?;
        self.set_setting("mesh", &m.root.0)?;
        Ok(m)
    }

    /// The selected mesh, else the only one.
    pub fn current_mesh(&self) -> Result<MeshRecord, NodeError> {
        let meshes = self.meshes();
        if let Some(id) = self.setting("mesh")?.and_then(|v| StoreId::from_slice(&v)) {
            if let Some(m) = meshes.iter().find(|m| m.root == id) {
                return Ok(m.clone());
            }
        }
        match meshes.len() {
            0 => Err(NodeError::NoMesh),
            1 => Ok(meshes[0].clone()),
            _ => Err(NodeError::AmbiguousMesh(
                meshes
                    .iter()
                    .map(|m| m.name.clone())
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    pub fn mesh_status(&self, sel: Option<&str>) -> Result<MeshStatus, NodeError> {
        let record = self.pick_mesh(sel)?;
        let members = self.members(&record.root)?;
        let stores = self.stores_of(&record.root);
        Ok(MeshStatus {
            record,
            members,
            stores,
        })
    }

    /// A mesh's members as (pubkey hex, name, status), without the store
    /// list `mesh_status` also builds.
    pub fn members(&self, mesh: &StoreId) -> Result<Vec<(String, String, String)>, NodeError> {
        let tx = self.kernel.db().begin_read()?;
        Ok(trust::members(&tx, mesh)?
            .into_iter()
            .map(|(id, name, status)| (id.to_hex(), name, status.to_string()))
            .collect())
    }

    /// An author of `mesh` for people to read: `name (6ecfd2ba)`, the name
    /// the node gave itself in that mesh's root store and the first 8 hex
    /// digits of its key, or the 8 digits alone when it has no name there.
    /// The digits stay because names are not unique: anyone can call
    /// themselves `alice`.
    ///
    /// The name is text a member chose: it has no control characters (the
    /// root rules refuse them) but may still hold bidi overrides or other
    /// tricks, so escape the result for the terminal or protocol it goes to
    /// (the CLI uses `lattice_cli::dynamic::terminal_safe`).
    pub fn author_label(&self, mesh: &StoreId, author: &AuthorId) -> Result<String, NodeError> {
        let tx = self.kernel.db().begin_read()?;
        let name = trust::node_name(&tx, mesh, author)?;
        Ok(author_label(name.as_deref(), author))
    }

    /// Writes root keys through the kv plugin (prepare, sign, log, apply).
    pub fn root_batch(
        &self,
        root: &StoreId,
        puts: Vec<(String, Vec<u8>)>,
    ) -> Result<SignedEntry, NodeError> {
        let h = self
            .registry
            .get(root)
            .ok_or_else(|| NodeError::UnknownMesh(root.to_uuid()))?;
        let out = self.call(&h, "Batch", &root::batch(puts))?;
        Ok(out.entry.expect("Batch is a command"))
    }

    // ---- stores ----

    /// The non-root stores of a mesh, oldest first.
    pub fn stores_of(&self, mesh: &StoreId) -> Vec<StoreHandle> {
        self.registry
            .stores()
            .into_iter()
            .filter(|s| s.mesh == *mesh && !s.is_root())
            .collect()
    }

    pub fn store_create(
        &self,
        name: Option<&str>,
        ty: StoreType<'_>,
    ) -> Result<StoreHandle, NodeError> {
        let mesh = self.current_mesh()?;
        let wasm: &[u8] = match ty {
            StoreType::Builtin(n) => {
                builtin::builtin(n).ok_or_else(|| NodeError::UnknownType(n.to_string()))?
            }
            StoreType::Wasm(bytes) => bytes,
        };
        // Every store is pinned to the hash of its plugin blob, shipped
        // plugins included, and the blob is kept so peers can fetch it.
        let plugin = self.registry.runtime().load(wasm)?;
        let info = plugin.info();
        let hash = lattice_kernel::EntryId(info.hash).to_hex();
        self.data.put_blob(&info.hash, wasm)?;
        let mut puts = root::plugin_catalog(&hash, info);
        let type_name = info.name.clone();
        let taken = self.registry.store_names(&mesh.root);
        let name = match name {
            Some(n) => n.to_string(),
            None => {
                let mut candidate = type_name.clone();
                let mut i = 2;
                while taken.contains(&candidate) {
                    candidate = format!("{type_name}-{i}");
                    i += 1;
                }
                candidate
            }
        };
        validate_name(&name)?;
        if taken.contains(&name) {
            return Err(NodeError::NameTaken(name));
        }
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&root::random_secret()[..16]);
        let profile = crate::runtime::Profile::CURRENT.version;
        let decl = StoreDecl {
            store: store_id(&mesh.root, &self.author(), &hash, profile, &nonce),
            creator: self.author(),
            kind: hash,
            profile,
            nonce,
            created_at: lattice_kernel::now_ms(),
        };
        let uuid = decl.store.to_uuid();
        puts.extend(root_rules::declaration_writes(&decl));
        puts.push((root::store_key(&uuid, "name"), name.clone().into_bytes()));
        if type_name == "chat" {
            puts.push((root::channel_key(&name), uuid.into_bytes()));
        }
        self.root_batch(&mesh.root, puts)?;
        self.registry.refresh(&self.kernel.db().begin_read()?)?;
        self.registry
            .get(&decl.store)
            .ok_or_else(|| NodeError::RootSchema("a store just declared did not open".into()))
    }

    /// Deletes a store for every member: a root op by its creator (proving
    /// it with the declaration) or the founder. Every replica closes the
    /// store and refuses its new entries; its log stays as history.
    pub fn store_delete(&self, sel: &str) -> Result<String, NodeError> {
        let h = self.resolve(sel, Some(sel))?;
        let mesh = self
            .registry
            .mesh(&h.mesh)
            .ok_or_else(|| NodeError::UnknownMesh(h.mesh.to_uuid()))?;
        let tx = self.kernel.db().begin_read()?;
        let decl = trust::declared_stores(&tx, &h.mesh)?
            .into_iter()
            .find(|d| d.decl.store == h.id)
            .ok_or_else(|| NodeError::RootSchema("store has no declaration".into()))?;
        drop(tx);
        let uuid = h.id.to_uuid();
        let mut puts = vec![(root::store_key(&uuid, "deleted"), b"1".to_vec())];
        if decl.decl.creator == self.author() {
            puts.extend(root_rules::declaration_writes(&decl.decl));
        } else if mesh.founder != self.author() {
            return Err(NodeError::NotFounder(
                format!("delete a store created by {}", decl.decl.creator.to_hex()),
                mesh.founder.to_hex(),
            ));
        }
        self.root_batch(&h.mesh, puts)?;
        self.registry.refresh(&self.kernel.db().begin_read()?)?;
        Ok(h.name)
    }

    /// Finds the store a command line names. `selector` is a store name,
    /// uuid, or plugin type; `explicit` is `--store`.
    pub fn resolve(
        &self,
        selector: &str,
        explicit: Option<&str>,
    ) -> Result<StoreHandle, NodeError> {
        let mesh = self.current_mesh()?;
        let stores = self.stores_of(&mesh.root);
        let names = || stores.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
        let by_name = |n: &str| {
            stores
                .iter()
                .find(|s| s.name == n || s.id.to_uuid() == n)
                .cloned()
        };
        if let Some(e) = explicit {
            return by_name(e).ok_or_else(|| NodeError::UnknownStore {
                selector: e.to_string(),
                candidates: names(),
            });
        }
        if let Some(s) = by_name(selector) {
            return Ok(s);
        }
        let of_type: Vec<&StoreHandle> = stores
            .iter()
            .filter(|s| s.type_name() == selector)
            .collect();
        if of_type.is_empty() {
            return Err(NodeError::UnknownStore {
                selector: selector.to_string(),
                candidates: names(),
            });
        }
        let used = self
            .setting(&format!("use/{}/{selector}", mesh.root.to_hex()))?
            .and_then(|v| StoreId::from_slice(&v));
        if let Some(s) = used.and_then(|u| of_type.iter().find(|s| s.id == u)) {
            return Ok((*s).clone());
        }
        match of_type.as_slice() {
            [one] => Ok((*one).clone()),
            many => Err(NodeError::AmbiguousStore {
                selector: selector.to_string(),
                candidates: many.iter().map(|s| s.name.clone()).collect(),
            }),
        }
    }

    /// Makes `sel` the store its type name resolves to.
    /// Makes `sel` the store its type name resolves to, and the store that
    /// commands naming no store (`store status`, `store log`) act on.
    pub fn store_use(&self, sel: &str) -> Result<StoreHandle, NodeError> {
        let s = self.resolve(sel, Some(sel))?;
        self.set_setting(
            &format!("use/{}/{}", s.mesh.to_hex(), s.type_name()),
            &s.id.0,
        )?;
        self.set_setting(&format!("use/{}", s.mesh.to_hex()), &s.id.0)?;
        Ok(s)
    }

    /// The store a command acts on when it names none: the mesh's only
    /// store, else the one `store use` last picked (if it still exists).
    pub fn default_store(&self) -> Result<StoreHandle, NodeError> {
        let mesh = self.current_mesh()?;
        let stores = self.stores_of(&mesh.root);
        if let [one] = stores.as_slice() {
            return Ok(one.clone());
        }
        let used = self
            .setting(&format!("use/{}", mesh.root.to_hex()))?
            .and_then(|v| StoreId::from_slice(&v));
        if let Some(s) = used.and_then(|u| stores.iter().find(|s| s.id == u)) {
            return Ok(s.clone());
        }
        Err(if stores.is_empty() {
            NodeError::NoStore
        } else {
            NodeError::NoDefaultStore(stores.iter().map(|s| s.name.clone()).collect())
        })
    }

    pub fn store_status(&self, h: &StoreHandle) -> Result<StoreStatus, NodeError> {
        let log = self.kernel.status(&h.id)?;
        let tx = self.kernel.db().begin_read()?;
        let state_digest = crate::runtime::state_digest(&tx, &h.id.0)?;
        let noops = match read_table(&tx, NOOPS)? {
            Some(t) => {
                let lo = [h.id.0.as_slice(), &[0u8; 32]].concat();
                let hi = [h.id.0.as_slice(), &[0xffu8; 32]].concat();
                t.range(lo.as_slice()..=hi.as_slice())?.count() as u64
            }
            None => 0,
        };
        let halted = crate::runtime::halted(&tx, &h.id.0)?
            .map(|halt| format!("{} (at op {})", halt.reason, hex::encode(&halt.op_id)));
        Ok(StoreStatus {
            handle: h.clone(),
            log,
            state_digest,
            noops,
            halted,
        })
    }

    /// The store's entries in commit order, each with its no-op reason if
    /// the plugin could not apply it.
    pub fn store_log(
        &self,
        h: &StoreHandle,
        from: u64,
        limit: usize,
    ) -> Result<Vec<(SignedEntry, Option<String>)>, NodeError> {
        let entries = self.kernel.log(&h.id, from, limit)?;
        let tx = self.kernel.db().begin_read()?;
        let noops = read_table(&tx, NOOPS)?;
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let reason = match &noops {
                Some(t) => {
                    let key = [h.id.0.as_slice(), e.id.0.as_slice()].concat();
                    t.get(key.as_slice())?.map(|v| v.value().to_string())
                }
                None => None,
            };
            out.push((e, reason));
        }
        Ok(out)
    }

    /// Runs a method: a query answers from a snapshot; a command is
    /// validated by the plugin's `prepare`, then signed, logged and applied
    /// in one durable transaction before this returns.
    pub fn call(
        &self,
        h: &StoreHandle,
        method: &str,
        req: &[u8],
    ) -> Result<CallOutcome, NodeError> {
        self.call_async(h, method, req)?.wait()
    }

    /// Like [`Node::call`], but a command returns as soon as its op is
    /// handed to the kernel: [`CallPending::wait`] blocks until it is
    /// durable. A server can so keep many commands in one group commit
    /// without a blocked thread for each.
    pub fn call_async(
        &self,
        h: &StoreHandle,
        method: &str,
        req: &[u8],
    ) -> Result<CallPending, NodeError> {
        let info = h.plugin.info();
        let Some(m) = info.method(method) else {
            return Err(NodeError::UnknownMethod {
                store: h.name.clone(),
                method: method.to_string(),
                valid: info.methods.iter().map(|m| m.name.clone()).collect(),
            });
        };
        let tx = self.kernel.db().begin_read()?;
        if m.is_query {
            let reply = h.plugin.query(&tx, &h.id.0, method, req)?;
            return Ok(CallPending::Done(CallOutcome { entry: None, reply }));
        }
        let ctx = Context {
            author: self.author().0.to_vec(),
            hlc: self.kernel.clock().tick(),
        };
        let prepared = h.plugin.prepare(&tx, &h.id.0, &ctx, method, req)?;
        drop(tx);
        Ok(CallPending::Append(Appending {
            pending: self.kernel.append_async(h.id, prepared.op)?,
            reply: prepared.reply,
        }))
    }

    /// Every entry committed from now on, as it becomes durable.
    pub fn watch(&self) -> std::sync::mpsc::Receiver<SignedEntry> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.registry.add_watcher(tx);
        rx
    }
}

/// A table in a read snapshot, `None` before anything was written to it
/// (redb creates tables on first write, and a fresh node has written nothing).
pub(crate) fn read_table<K: redb::Key + 'static, V: redb::Value + 'static>(
    tx: &redb::ReadTransaction,
    def: TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, NodeError> {
    match tx.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// [`Node::author_label`] for a caller that already holds the name (e.g.
/// from [`Node::members`]; an empty name counts as none).
pub fn author_label(name: Option<&str>, author: &AuthorId) -> String {
    let short = &author.to_hex()[..8];
    match name {
        Some(n) if !n.is_empty() => format!("{n} ({short})"),
        _ => short.to_string(),
    }
}

pub(crate) fn validate_name(name: &str) -> Result<(), NodeError> {
    let bad = |why| Err(NodeError::BadName(name.to_string(), why));
    if name.is_empty() || name.len() > 64 {
        return bad("use 1 to 64 characters");
    }
    if name.starts_with('-')
        || !name
            .chars()
            .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || c == '.')
    {
        return bad("use letters, digits, '-', '_' and '.', not starting with '-'");
    }
    if RESERVED_NAMES.contains(&name) {
        return bad("it is a lattice command");
    }
    Ok(())
}
