//! This node's display name. It is one local setting, and a root write
//! `/nodes/{me}/name` in every mesh the node belongs to, so that members
//! see a name rather than a 64-hex key. The root rules let only the node
//! itself (or the founder) write that key, and only a name that
//! [`root_rules::is_display_name`] accepts; we check with the same
//! function before writing, so a name we write is one every replica takes.
//!
//! The setting is what meshes created or joined later are told: a node
//! named before it joins arrives with its name.

use redb::ReadableDatabase;

use super::trust::{Standing, TrustView};
use super::{MeshRecord, Node, NodeError, root, root_rules};

/// Setting key of the name set with [`Node::set_node_name`].
const NAME_SETTING: &str = "node_name";

/// What [`Node::set_node_name`] did, mesh by mesh.
pub struct Renamed {
    pub name: String,
    /// Meshes whose root store now carries the name.
    pub meshes: Vec<MeshRecord>,
    /// Meshes where the write was not made, and why (e.g. this node was
    /// revoked there). The name is saved all the same.
    pub failed: Vec<(MeshRecord, NodeError)>,
}

impl Node {
    /// This node's display name: the one set with [`Node::set_node_name`],
    /// else `$HOSTNAME`, else `node`.
    pub fn node_name(&self) -> Result<String, NodeError> {
        let saved = self
            .setting(NAME_SETTING)?
            .and_then(|v| String::from_utf8(v).ok())
            .filter(|n| root_rules::is_display_name(n));
        Ok(saved.unwrap_or_else(default_name))
    }

    /// Names this node: saves the name, then writes it into every mesh
    /// (one root op each). A mesh that cannot take the write is reported
    /// in [`Renamed::failed`] and does not stop the others.
    pub fn set_node_name(&self, name: &str) -> Result<Renamed, NodeError> {
        if !root_rules::is_display_name(name) {
            return Err(NodeError::BadNodeName(name.to_string()));
        }
        self.set_setting(NAME_SETTING, name.as_bytes())?;
        let mut renamed = Renamed {
            name: name.to_string(),
            meshes: Vec::new(),
            failed: Vec::new(),
        };
        for m in self.meshes() {
            match self.write_node_name(&m, name) {
                Ok(()) => renamed.meshes.push(m),
                Err(e) => renamed.failed.push((m, e)),
            }
        }
        Ok(renamed)
    }

    /// Writes `/nodes/{me}/name` into `mesh`'s root store. Refused here
    /// unless this node is an active member there: a revoked node's new
    /// root entry would be logged as void, which would look like success.
    pub(crate) fn write_node_name(&self, mesh: &MeshRecord, name: &str) -> Result<(), NodeError> {
        if !self.is_active_in(mesh)? {
            return Err(NodeError::NotMember(mesh.name.clone()));
        }
        self.root_batch(
            &mesh.root,
            vec![(
                root::node_key(&self.author().to_hex(), "name"),
                name.as_bytes().to_vec(),
            )],
        )?;
        Ok(())
    }

    /// Whether this node's root entries in `mesh` apply (not revoked, and
    /// admitted as far as this node's copy of the root log knows).
    fn is_active_in(&self, mesh: &MeshRecord) -> Result<bool, NodeError> {
        let tx = self.kernel.db().begin_read()?;
        let Some(view) = TrustView::read(&tx)? else {
            return Ok(false);
        };
        let standing = view.standing(&mesh.root, &mesh.founder, &mesh.root, &self.author())?;
        Ok(standing == Standing::Member)
    }
}

/// The name of a node that was never named: `$HOSTNAME` made a valid
/// display name (control characters dropped, cut to the length limit),
/// else `node`.
fn default_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .map(|h| {
            h.chars()
                .filter(|c| !c.is_control())
                .take(root_rules::MAX_NAME)
                .collect::<String>()
        })
        .filter(|h| root_rules::is_display_name(h))
        .unwrap_or_else(|| "node".into())
}
