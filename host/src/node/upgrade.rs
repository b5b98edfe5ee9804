//! `store upgrade`: re-pins a store to another plugin (see [`super::epochs`]
//! for how every replica switches at the same point of the store's log).

use lattice_kernel::EntryId;
use redb::ReadableDatabase;

use super::epochs;
use super::root_rules::{self, UpgradeSpec};
use super::{Node, NodeError, StoreType, root, trust};
use crate::runtime::{MigrateOutcome, Profile, builtin};

/// What an upgrade did, as the creator's node saw it.
#[derive(Debug, Clone)]
pub struct UpgradeReport {
    pub store: String,
    pub from: String,
    pub to: String,
    pub from_version: u32,
    pub to_version: u32,
    pub profile: u32,
    /// Rows the migration wrote on this node.
    pub rows: u64,
}

impl Node {
    /// Upgrades store `sel` to plugin `ty`: checks the migration on this
    /// node's state (nothing written), then logs the root op and the
    /// store's marker; the marker's transaction migrates the state and pins
    /// the new plugin together.
    pub fn store_upgrade(&self, sel: &str, ty: StoreType<'_>) -> Result<UpgradeReport, NodeError> {
        let h = self.resolve(sel, Some(sel))?;
        let tx = self.kernel.db().begin_read()?;
        let decl = trust::declared_stores(&tx, &h.mesh)?
            .into_iter()
            .find(|d| d.decl.store == h.id)
            .ok_or_else(|| NodeError::RootSchema("store has no declaration".into()))?
            .decl;
        drop(tx);
        if decl.creator != self.author() {
            let creator = self.author_label(&h.mesh, &decl.creator)?;
            return Err(NodeError::NotUpgrader(h.name, creator));
        }
        let wasm: &[u8] = match ty {
            StoreType::Builtin(n) => {
                builtin::builtin(n).ok_or_else(|| NodeError::UnknownType(n.to_string()))?
            }
            StoreType::Wasm(bytes) => bytes,
        };
        let plugin = self.registry.runtime().load(wasm)?;
        let info = plugin.info();
        let to = EntryId(info.hash).to_hex();
        let from = h.pinned_kind().to_string();
        if to == from {
            return Err(NodeError::SamePlugin(h.name, to));
        }
        let spec = UpgradeSpec {
            from,
            to: to.clone(),
            profile: Profile::UPGRADE.version,
            from_version: h.plugin.info().state_version,
            to_version: info.state_version,
        };
        let cannot = |why: String| NodeError::CannotMigrate {
            store: h.name.clone(),
            plugin: format!("{} {}", info.name, info.version),
            from: spec.from_version,
            why,
        };
        // A dry run on this node's state, aborted: an upgrade that cannot
        // migrate is refused before anything is logged.
        let dry = self.kernel.db().begin_write()?;
        let out = plugin.migrate_with(&dry, &h.id.0, spec.from_version, &Profile::UPGRADE)?;
        dry.abort()?;
        match out {
            MigrateOutcome::Migrated { .. } => {}
            MigrateOutcome::Refused(m) => return Err(cannot(m)),
            MigrateOutcome::Failed(e) => return Err(cannot(e.to_string())),
            MigrateOutcome::Unsupported => {
                return Err(cannot(
                    "it has no `migrate` (built against lattice:plugin@0.1.0)".into(),
                ));
            }
        }
        self.data.put_blob(&info.hash, wasm)?;
        let uuid = h.id.to_uuid();
        let mut puts = root::plugin_catalog(&to, info);
        puts.extend(root_rules::declaration_writes(&decl));
        puts.push((root::store_key(&uuid, "upgrade"), spec.encode()));
        let upgrade = self.root_batch(&h.mesh, puts)?;
        self.kernel
            .append(h.id, epochs::marker_payload(&upgrade.id))?;
        self.registry.refresh(&self.kernel.db().begin_read()?)?;
        let tx = self.kernel.db().begin_read()?;
        if let Some(halt) = crate::runtime::halted(&tx, &h.id.0)? {
            return Err(cannot(halt.reason));
        }
        let rows = epochs::read_pin(&tx, &h.id)?.map_or(0, |p| p.rows);
        Ok(UpgradeReport {
            store: h.name,
            from: spec.from,
            to,
            from_version: spec.from_version,
            to_version: spec.to_version,
            profile: spec.profile,
            rows,
        })
    }
}
