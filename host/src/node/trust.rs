//! Host-owned trust state: who is a member of which mesh, which stores a
//! mesh declares, and what a revocation cut off. These tables are
//! materialized from the root log inside the kernel's write transaction, by
//! functions of the log alone, and every admission decision reads them; no
//! plugin query decides who may write (DESIGN §10.3).
//!
//! Order independence, rule by rule:
//! - membership (`/nodes/*/status`) is written by the founder only, whose
//!   chain is linear, so its apply order is the same everywhere;
//! - a declaration is fixed by the store's id (see `root_rules`), so
//!   applying it twice, in any order, writes the same row;
//! - names and channels are last-writer-wins by (hlc, author, entry id);
//! - deletion is a sticky tombstone;
//! - revocations and cut-offs are never reset by a replay: a replay of a
//!   store after a revocation therefore judges every entry with the final
//!   cut-offs, as a replica that learned of the revocation first did.

use lattice_kernel::{AuthorId, SignedEntry, StoreId, ValidationError, VoidAbove};
use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::NodeError;
use super::root_rules::{RootWrite, Status, StoreDecl};

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// mesh ‖ author → status (1 active, 2 revoked).
pub(crate) const MEMBERS: Def = TableDefinition::new("trust_members");
/// mesh ‖ author → id of the revoking entry: revoked for good. Never reset.
pub(crate) const REVOKED: Def = TableDefinition::new("trust_revoked");
/// store ‖ author → seq(8): the revoked author's last entry that stands. Never reset.
pub(crate) const CUTOFFS: Def = TableDefinition::new("trust_cutoffs");
/// store → mesh(16) ‖ creator(32) ‖ created_at(8) ‖ profile(4) ‖ nonce(16) ‖ kind.
pub(crate) const DECLS: Def = TableDefinition::new("trust_decls");
/// mesh ‖ store → ().
pub(crate) const MESH_STORES: Def = TableDefinition::new("trust_mesh_stores");
/// store → lww(72) ‖ name.
pub(crate) const NAMES: Def = TableDefinition::new("trust_store_names");
/// store → (): deleted for good.
pub(crate) const DELETED: Def = TableDefinition::new("trust_deleted");
/// mesh ‖ author → lww(72) ‖ node name.
pub(crate) const NODE_NAMES: Def = TableDefinition::new("trust_node_names");
/// mesh ‖ channel name → lww(72) ‖ store(16).
pub(crate) const CHANNELS: Def = TableDefinition::new("trust_channels");

/// mesh ‖ root entry id → store(16) ‖ author(32) ‖ upgrade spec: every
/// upgrade the mesh's root log declares (see [`super::epochs`]).
pub(crate) const UPGRADES: Def = TableDefinition::new("trust_upgrades");

/// Mesh-keyed tables a root replay clears (revocations and cut-offs stay:
/// they are never undone). Store-keyed names, declarations and tombstones
/// are cleared per store of the mesh.
const DERIVED_BY_MESH: &[Def] = &[MEMBERS, MESH_STORES, NODE_NAMES, CHANNELS, UPGRADES];

/// Every table, so a fresh database has them all before the first read.
pub(crate) const ALL: &[Def] = &[
    MEMBERS,
    REVOKED,
    CUTOFFS,
    DECLS,
    MESH_STORES,
    NAMES,
    DELETED,
    NODE_NAMES,
    CHANNELS,
    UPGRADES,
];

fn key2(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

/// The last-writer-wins stamp of an entry: (hlc, author, id), big-endian so
/// byte order is the order.
fn stamp(e: &SignedEntry) -> [u8; 72] {
    let mut s = [0u8; 72];
    s[..8].copy_from_slice(&e.hlc.to_be_bytes());
    s[8..40].copy_from_slice(&e.author.0);
    s[40..].copy_from_slice(&e.id.0);
    s
}

/// Where a store belongs, from the host tables.
pub(crate) enum Owner {
    /// The root store of a mesh this node knows.
    Root,
    /// A declared store of `mesh`.
    Store {
        mesh: StoreId,
        deleted: bool,
    },
    Unknown,
}

/// Reads the trust tables (in a read or write transaction).
pub(crate) struct TrustView<T> {
    members: T,
    revoked: T,
    cutoffs: T,
    decls: T,
    deleted: T,
}

impl TrustView<redb::Table<'_, &'static [u8], &'static [u8]>> {
    pub(crate) fn write(
        txn: &WriteTransaction,
    ) -> Result<TrustView<redb::Table<'_, &'static [u8], &'static [u8]>>, NodeError> {
        Ok(TrustView {
            members: txn.open_table(MEMBERS)?,
            revoked: txn.open_table(REVOKED)?,
            cutoffs: txn.open_table(CUTOFFS)?,
            decls: txn.open_table(DECLS)?,
            deleted: txn.open_table(DELETED)?,
        })
    }
}

impl TrustView<redb::ReadOnlyTable<&'static [u8], &'static [u8]>> {
    pub(crate) fn read(txn: &redb::ReadTransaction) -> Result<Option<Self>, NodeError> {
        let open = |d: Def| super::read_table(txn, d);
        let (Some(members), Some(revoked), Some(cutoffs), Some(decls), Some(deleted)) = (
            open(MEMBERS)?,
            open(REVOKED)?,
            open(CUTOFFS)?,
            open(DECLS)?,
            open(DELETED)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(TrustView {
            members,
            revoked,
            cutoffs,
            decls,
            deleted,
        }))
    }
}

/// An author's standing for one entry.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Standing {
    Member,
    /// Revoked; entries up to `cutoff` in this store stand.
    Revoked {
        cutoff: u64,
    },
    Stranger,
}

impl<T: ReadableTable<&'static [u8], &'static [u8]>> TrustView<T> {
    pub(crate) fn owner(&self, store: &StoreId, is_root: bool) -> Result<Owner, NodeError> {
        if is_root {
            return Ok(Owner::Root);
        }
        let Some(d) = self.decls.get(store.0.as_slice())? else {
            return Ok(Owner::Unknown);
        };
        let mesh =
            StoreId::from_slice(d.value().get(..16).ok_or_else(corrupt)?).ok_or_else(corrupt)?;
        let deleted = self.deleted.get(store.0.as_slice())?.is_some();
        Ok(Owner::Store { mesh, deleted })
    }

    /// The standing of `author` in `mesh`, for an entry in `store`.
    pub(crate) fn standing(
        &self,
        mesh: &StoreId,
        founder: &AuthorId,
        store: &StoreId,
        author: &AuthorId,
    ) -> Result<Standing, NodeError> {
        if author == founder {
            return Ok(Standing::Member);
        }
        let mk = key2(&mesh.0, &author.0);
        if self.revoked.get(mk.as_slice())?.is_some() {
            let cutoff = match self.cutoffs.get(key2(&store.0, &author.0).as_slice())? {
                Some(v) => u64::from_be_bytes(v.value().try_into().map_err(|_| corrupt())?),
                None => 0,
            };
            return Ok(Standing::Revoked { cutoff });
        }
        Ok(
            match self
                .members
                .get(mk.as_slice())?
                .map(|v| v.value().first().copied())
            {
                Some(Some(1)) => Standing::Member,
                _ => Standing::Stranger,
            },
        )
    }

    /// Whether `author` may read and write `mesh` now (sync, gossip).
    pub(crate) fn is_active(
        &self,
        mesh: &StoreId,
        founder: &AuthorId,
        author: &AuthorId,
    ) -> Result<bool, NodeError> {
        Ok(self.standing(mesh, founder, mesh, author)? == Standing::Member)
    }

    /// The id of the entry that revoked `author`, if one did.
    pub(crate) fn revoked_by(
        &self,
        mesh: &StoreId,
        author: &AuthorId,
    ) -> Result<Option<[u8; 32]>, NodeError> {
        Ok(self
            .revoked
            .get(key2(&mesh.0, &author.0).as_slice())?
            .and_then(|v| v.value().try_into().ok()))
    }
}

fn corrupt() -> NodeError {
    NodeError::RootSchema("corrupt trust table record".into())
}

/// The admission verdict for an entry of a non-root store or a root store,
/// before the root-op rules.
pub(crate) fn admit_author(standing: Standing, e: &SignedEntry) -> Result<bool, ValidationError> {
    match standing {
        Standing::Member => Ok(true),
        Standing::Revoked { cutoff } => Ok(e.seq <= cutoff),
        Standing::Stranger => Err(ValidationError::Unauthorized(e.author)),
    }
}

/// Materializes a root entry's validated writes.
pub(crate) fn apply_root(
    txn: &WriteTransaction,
    mesh: &StoreId,
    e: &SignedEntry,
    writes: &[RootWrite],
) -> Result<(), NodeError> {
    let lww = stamp(e);
    for w in writes {
        match w {
            RootWrite::NodeStatus(node, status) => {
                let mk = key2(&mesh.0, &node.0);
                match status {
                    Status::Active => {
                        txn.open_table(MEMBERS)?
                            .insert(mk.as_slice(), [1u8].as_slice())?;
                    }
                    Status::Revoked => {
                        txn.open_table(MEMBERS)?
                            .insert(mk.as_slice(), [2u8].as_slice())?;
                        txn.open_table(REVOKED)?
                            .insert(mk.as_slice(), e.id.0.as_slice())?;
                    }
                }
            }
            RootWrite::NodeCutoff(node, cutoffs) => {
                let mut t = txn.open_table(CUTOFFS)?;
                for (store, seq) in cutoffs {
                    t.insert(
                        key2(&store.0, &node.0).as_slice(),
                        seq.to_be_bytes().as_slice(),
                    )?;
                }
            }
            RootWrite::NodeName(node, name) => {
                lww_put(
                    txn,
                    NODE_NAMES,
                    &key2(&mesh.0, &node.0),
                    &lww,
                    name.as_bytes(),
                )?;
            }
            RootWrite::StoreDecl(d) => {
                txn.open_table(DECLS)?
                    .insert(d.store.0.as_slice(), encode_decl(mesh, d).as_slice())?;
                txn.open_table(MESH_STORES)?
                    .insert(key2(&mesh.0, &d.store.0).as_slice(), [].as_slice())?;
            }
            RootWrite::StoreName(store, name) => {
                lww_put(txn, NAMES, &store.0, &lww, name.as_bytes())?;
            }
            RootWrite::StoreDeleted(store) => {
                txn.open_table(DELETED)?
                    .insert(store.0.as_slice(), [].as_slice())?;
            }
            RootWrite::Channel(name, store) => {
                lww_put(
                    txn,
                    CHANNELS,
                    &key2(&mesh.0, name.as_bytes()),
                    &lww,
                    &store.0,
                )?;
            }
            RootWrite::StoreUpgrade(store, spec) => {
                super::epochs::record_upgrade(txn, mesh, e, store, spec)?;
            }
            RootWrite::MeshName(_) | RootWrite::PluginInfo => {}
        }
    }
    Ok(())
}

fn lww_put(
    txn: &WriteTransaction,
    def: Def,
    key: &[u8],
    stamp: &[u8; 72],
    value: &[u8],
) -> Result<(), NodeError> {
    let mut t = txn.open_table(def)?;
    let newer = match t.get(key)? {
        Some(old) => old.value().get(..72).is_none_or(|s| s < stamp.as_slice()),
        None => true,
    };
    if newer {
        t.insert(key, [stamp.as_slice(), value].concat().as_slice())?;
    }
    Ok(())
}

/// What a revocation in `writes` makes void: for every store of the mesh
/// (and the root), the revoked node's entries above its cut-off.
pub(crate) fn voids_of(
    txn: &WriteTransaction,
    mesh: &StoreId,
    writes: &[RootWrite],
) -> Result<Vec<VoidAbove>, NodeError> {
    let mut out = Vec::new();
    let revoked: Vec<AuthorId> = writes
        .iter()
        .filter_map(|w| match w {
            RootWrite::NodeStatus(n, Status::Revoked) => Some(*n),
            _ => None,
        })
        .collect();
    if revoked.is_empty() {
        return Ok(out);
    }
    let mut stores = vec![*mesh];
    stores.extend(mesh_stores(&txn.open_table(MESH_STORES)?, mesh)?);
    let cutoffs = txn.open_table(CUTOFFS)?;
    for node in revoked {
        for s in &stores {
            let seq = match cutoffs.get(key2(&s.0, &node.0).as_slice())? {
                Some(v) => u64::from_be_bytes(v.value().try_into().map_err(|_| corrupt())?),
                None => 0,
            };
            out.push(VoidAbove {
                store: *s,
                author: node,
                seq,
            });
        }
    }
    Ok(out)
}

/// Clears what root applies derived for `mesh` (before a replay).
pub(crate) fn reset_mesh(txn: &WriteTransaction, mesh: &StoreId) -> Result<(), NodeError> {
    let stores = mesh_stores(&txn.open_table(MESH_STORES)?, mesh)?;
    for def in [NAMES, DECLS, DELETED] {
        let mut t = txn.open_table(def)?;
        for s in &stores {
            t.remove(s.0.as_slice())?;
        }
    }
    let lo = mesh.0.to_vec();
    let mut hi = mesh.0.to_vec();
    hi.extend_from_slice(&[0xff; 64]);
    for def in DERIVED_BY_MESH {
        txn.open_table(*def)?
            .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)?;
    }
    Ok(())
}

/// The stores `mesh` declares.
pub(crate) fn mesh_stores(
    t: &impl ReadableTable<&'static [u8], &'static [u8]>,
    mesh: &StoreId,
) -> Result<Vec<StoreId>, NodeError> {
    let lo = key2(&mesh.0, &[0u8; 16]);
    let hi = key2(&mesh.0, &[0xffu8; 16]);
    let mut out = Vec::new();
    for row in t.range(lo.as_slice()..=hi.as_slice())? {
        let (k, _) = row?;
        out.push(StoreId::from_slice(&k.value()[16..]).ok_or_else(corrupt)?);
    }
    Ok(out)
}

fn encode_decl(mesh: &StoreId, d: &StoreDecl) -> Vec<u8> {
    let mut v = Vec::with_capacity(DECL_KIND + d.kind.len());
    v.extend_from_slice(&mesh.0);
    v.extend_from_slice(&d.creator.0);
    v.extend_from_slice(&d.created_at.to_be_bytes());
    v.extend_from_slice(&d.profile.to_be_bytes());
    v.extend_from_slice(&d.nonce);
    v.extend_from_slice(d.kind.as_bytes());
    v
}

/// Where the kind starts in a declaration record.
pub(crate) const DECL_KIND: usize = 76;

/// Decodes a declaration record of `store`.
pub(crate) fn decode_decl(store: StoreId, d: &[u8]) -> Result<(StoreId, StoreDecl), NodeError> {
    if d.len() < DECL_KIND {
        return Err(corrupt());
    }
    let mesh = StoreId::from_slice(&d[..16]).ok_or_else(corrupt)?;
    Ok((
        mesh,
        StoreDecl {
            store,
            creator: AuthorId::from_slice(&d[16..48]).ok_or_else(corrupt)?,
            created_at: u64::from_be_bytes(d[48..56].try_into().expect("8")),
            profile: u32::from_be_bytes(d[56..60].try_into().expect("4")),
            nonce: d[60..76].try_into().expect("16"),
            kind: String::from_utf8_lossy(&d[DECL_KIND..]).into_owned(),
        },
    ))
}

/// A declared store as the registry opens it.
#[derive(Clone, Debug)]
pub(crate) struct DeclaredStore {
    pub decl: StoreDecl,
    pub name: Option<String>,
    pub deleted: bool,
}

/// Every store `mesh` declares, with its current name. Bounded records
/// (validated at ingest), so this cannot fail on replicated content.
pub(crate) fn declared_stores(
    txn: &redb::ReadTransaction,
    mesh: &StoreId,
) -> Result<Vec<DeclaredStore>, NodeError> {
    let Some(t) = DeclTables::open(txn)? else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for id in mesh_stores(&t.mesh_stores, mesh)? {
        if let Some((_, d)) = t.get(id)? {
            out.push(d);
        }
    }
    Ok(out)
}

/// One declared store and its mesh, `None` if it is not declared.
pub(crate) fn declared_store(
    txn: &redb::ReadTransaction,
    id: StoreId,
) -> Result<Option<(StoreId, DeclaredStore)>, NodeError> {
    match DeclTables::open(txn)? {
        Some(t) => t.get(id),
        None => Ok(None),
    }
}

struct DeclTables {
    mesh_stores: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    decls: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    names: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
    deleted: redb::ReadOnlyTable<&'static [u8], &'static [u8]>,
}

impl DeclTables {
    fn open(txn: &redb::ReadTransaction) -> Result<Option<Self>, NodeError> {
        let open = |d: Def| super::read_table(txn, d);
        let (Some(mesh_stores), Some(decls), Some(names), Some(deleted)) = (
            open(MESH_STORES)?,
            open(DECLS)?,
            open(NAMES)?,
            open(DELETED)?,
        ) else {
            return Ok(None);
        };
        Ok(Some(DeclTables {
            mesh_stores,
            decls,
            names,
            deleted,
        }))
    }

    fn get(&self, id: StoreId) -> Result<Option<(StoreId, DeclaredStore)>, NodeError> {
        let Some(d) = self.decls.get(id.0.as_slice())? else {
            return Ok(None);
        };
        let (mesh, decl) = decode_decl(id, d.value())?;
        let name = self.names.get(id.0.as_slice())?.and_then(|v| {
            v.value()
                .get(72..)
                .map(|n| String::from_utf8_lossy(n).into_owned())
        });
        let deleted = self.deleted.get(id.0.as_slice())?.is_some();
        Ok(Some((
            mesh,
            DeclaredStore {
                decl,
                name,
                deleted,
            },
        )))
    }
}

/// `(node, name, status)` for every node the mesh's root log names.
pub(crate) fn members(
    txn: &redb::ReadTransaction,
    mesh: &StoreId,
) -> Result<Vec<(AuthorId, String, &'static str)>, NodeError> {
    let open = |d: Def| super::read_table(txn, d);
    let (Some(members), Some(names)) = (open(MEMBERS)?, open(NODE_NAMES)?) else {
        return Ok(Vec::new());
    };
    let lo = key2(&mesh.0, &[0u8; 32]);
    let hi = key2(&mesh.0, &[0xffu8; 32]);
    let mut out = Vec::new();
    for row in members.range(lo.as_slice()..=hi.as_slice())? {
        let (k, v) = row?;
        let node = AuthorId::from_slice(&k.value()[16..]).ok_or_else(corrupt)?;
        let status = if v.value().first() == Some(&1) {
            "active"
        } else {
            "revoked"
        };
        let name = names
            .get(k.value())?
            .and_then(|n| {
                n.value()
                    .get(72..)
                    .map(|n| String::from_utf8_lossy(n).into_owned())
            })
            .unwrap_or_default();
        out.push((node, name, status));
    }
    Ok(out)
}

/// The name `node` has in `mesh`'s root store, if it has one.
pub(crate) fn node_name(
    txn: &redb::ReadTransaction,
    mesh: &StoreId,
    node: &AuthorId,
) -> Result<Option<String>, NodeError> {
    let Some(names) = super::read_table(txn, NODE_NAMES)? else {
        return Ok(None);
    };
    Ok(names.get(key2(&mesh.0, &node.0).as_slice())?.and_then(|n| {
        n.value()
            .get(72..)
            .map(|n| String::from_utf8_lossy(n).into_owned())
    }))
}

/// The store a channel name points to in `mesh`.
pub fn channel(
    txn: &redb::ReadTransaction,
    mesh: &StoreId,
    name: &str,
) -> Result<Option<StoreId>, NodeError> {
    let t = match txn.open_table(CHANNELS) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    Ok(t.get(key2(&mesh.0, name.as_bytes()).as_slice())?
        .and_then(|v| v.value().get(72..).and_then(StoreId::from_slice)))
}
