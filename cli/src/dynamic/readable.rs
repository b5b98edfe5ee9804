//! What makes a reply readable beyond its schema: member names for author
//! keys and local times for clocks, recognised by the field-name
//! conventions the shipped plugins follow (see docs/plugin-guide.md,
//! "Field names the CLI understands"). `--json` output stays raw.

use std::collections::HashMap;

use prost_reflect::{FieldDescriptor, Kind};

/// Context for the text renderer. The default is raw values (no names, no
/// time conversion), as the library's plain `render_text` prints.
#[derive(Default)]
pub struct Readable {
    /// Member key → name, from the mesh's member list.
    pub names: HashMap<Vec<u8>, String>,
    /// Turns an HLC into a time for people; `None`: print the number.
    pub time: Option<fn(u64) -> String>,
}

impl Readable {
    /// `alice (aca58f56)`, or the short key alone for a non-member: the
    /// host's [`author_label`](lattice_host::node::author_label), with the
    /// name escaped for the terminal.
    pub fn author(&self, key: &[u8]) -> String {
        let Some(id) = lattice_kernel::AuthorId::from_slice(key) else {
            return hex::encode(key.get(..4).unwrap_or(key));
        };
        let name = self.names.get(key).map(|n| super::terminal_safe(n));
        lattice_host::node::author_label(name.as_deref(), &id)
    }
}

impl Readable {
    /// [`Readable::author`] for a key in hex, as the API prints keys.
    pub fn author_hex(&self, key: &str) -> String {
        match hex::decode(key) {
            Ok(k) if k.len() == 32 => self.author(&k),
            _ => super::terminal_safe(key),
        }
    }
}

/// A `uint64` named `hlc` or `*_hlc`: a hybrid logical clock.
pub fn is_clock(field: &FieldDescriptor) -> bool {
    matches!(field.kind(), Kind::Uint64 | Kind::Fixed64)
        && (field.name() == "hlc" || field.name().ends_with("_hlc"))
}

/// A 32-byte `bytes` named `author(s)` or `*_author(s)`: a member key.
pub fn is_author(field: &FieldDescriptor) -> bool {
    let n = field.name();
    matches!(field.kind(), Kind::Bytes)
        && ["author", "authors"]
            .iter()
            .any(|a| n == *a || n.ends_with(&format!("_{a}")))
}

/// A `bytes` field that names an entry (`id`, `to`, `*_id`, `*_to`, and
/// their plurals): its flag takes short id prefixes, resolved in the store.
pub fn is_entry_ref(field: &FieldDescriptor) -> bool {
    let n = field.name();
    matches!(field.kind(), Kind::Bytes)
        && ["id", "ids", "to"]
            .iter()
            .any(|s| n == *s || n.ends_with(&format!("_{s}")))
}
