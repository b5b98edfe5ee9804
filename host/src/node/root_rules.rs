//! What a root-store op may say, as a pure function of the op, its author
//! and the mesh. Every replica runs the same check on the same bytes, so an
//! op refused here is refused everywhere, whatever the arrival order; no
//! rule here reads state that a concurrent entry could change.
//!
//! Ownership is proven inside the op rather than looked up:
//! - a store's id is derived from its declaration ([`store_id`]: mesh,
//!   creator, type, profile, nonce), so only the creator can declare it, its
//!   type and profile are fixed by construction, and it cannot equal another
//!   mesh's or store's id;
//! - the creator proves it owns a store by repeating the declaration in any
//!   op that renames or deletes it; the founder needs no proof;
//! - membership keys (`/nodes/*/status`, `cutoff`) are the founder's alone.

use lattice_kernel::{AuthorId, SignedEntry, StoreId};
use prost::Message;

use super::root::{KvOp, Write};

/// Writes in one root op.
pub const MAX_WRITES: usize = 256;
/// Bytes of one root value (a cut-off vector may be longer).
pub const MAX_VALUE: usize = 1024;
/// Bytes of a revocation's cut-off vector.
pub const MAX_CUTOFF: usize = 512 * 1024;
/// Characters of a store, node or mesh name.
pub const MAX_NAME: usize = 64;
/// Superseded heads named by one root op (honest ops name one or two per key).
pub const MAX_SUPERSEDES: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RootRuleError {
    #[error("root op does not decode: {0}")]
    Malformed(String),
    #[error("root op has {0} writes; at most {MAX_WRITES}")]
    TooManyWrites(usize),
    #[error("root op supersedes more than {0} heads, or a head id is not 32 bytes")]
    Supersedes(usize),
    #[error("root key `{0}` is not part of the root schema")]
    UnknownKey(String),
    #[error("root key `{key}`: {why}")]
    BadValue { key: String, why: &'static str },
    #[error("root key `{0}` cannot be deleted (root values are tombstoned)")]
    Delete(String),
    #[error("only the mesh founder may write `{0}`")]
    FounderOnly(String),
    #[error("`{0}` belongs to another node")]
    NotOwner(String),
    #[error("store {0}: its id is not derived from the declaration in this op")]
    BadStoreId(String),
    #[error(
        "store {0}: only its creator (proving it with the declaration) or the founder may change it"
    )]
    NotCreator(String),
    #[error("store {0} would collide with the mesh's root store")]
    RootCollision(String),
    #[error("the founder cannot be revoked")]
    RevokeFounder,
    #[error("a cut-off for {0} needs its revocation in the same op")]
    CutoffWithoutRevoke(String),
    #[error("node {0} was revoked; revocation is final")]
    Revoked(String),
    #[error("store {0}: only its creator (proving it with the declaration) may upgrade it")]
    NotUpgrader(String),
}

/// A member's status in the mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Active,
    Revoked,
}

/// One validated root write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootWrite {
    MeshName(String),
    NodeStatus(AuthorId, Status),
    /// Per store: the highest seq of the revoked node that stands.
    NodeCutoff(AuthorId, Vec<(StoreId, u64)>),
    NodeName(AuthorId, String),
    StoreName(StoreId, String),
    StoreDeleted(StoreId),
    /// The declaration: every field fixed by the store's id.
    StoreDecl(StoreDecl),
    Channel(String, StoreId),
    /// `/plugins/{hash}/*`: informational, no trust attached.
    PluginInfo,
    /// `/stores/{uuid}/upgrade`: the store's creator re-pins it to another
    /// plugin (takes effect at its marker entry in the store's own log; see
    /// [`super::epochs`]).
    StoreUpgrade(StoreId, UpgradeSpec),
}

/// What an upgrade says: from which plugin to which, under which profile,
/// and the state versions the migration goes between. The value of
/// `/stores/{uuid}/upgrade` is `from_hash to_hash profile from_version
/// to_version` (space separated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpgradeSpec {
    /// The plugin the store runs before (hex blake3): a marker applies only
    /// where this is the store's plugin, so upgrades form one chain.
    pub from: String,
    pub to: String,
    pub profile: u32,
    pub from_version: u32,
    pub to_version: u32,
}

impl UpgradeSpec {
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{} {} {} {} {}",
            self.from, self.to, self.profile, self.from_version, self.to_version
        )
        .into_bytes()
    }

    pub fn decode(v: &[u8]) -> Option<UpgradeSpec> {
        let s = std::str::from_utf8(v).ok()?;
        let parts: Vec<&str> = s.split(' ').collect();
        let [from, to, profile, fv, tv] = parts.as_slice() else {
            return None;
        };
        let is_hash =
            |h: &str| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !is_hash(from) || !is_hash(to) || from == to {
            return None;
        }
        Some(UpgradeSpec {
            from: from.to_string(),
            to: to.to_string(),
            profile: profile.parse().ok()?,
            from_version: fv.parse().ok()?,
            to_version: tv.parse().ok()?,
        })
    }
}

/// A store's declaration, bound to its id by [`store_id`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreDecl {
    pub store: StoreId,
    pub creator: AuthorId,
    /// Hex blake3 of the plugin blob (shipped plugins included).
    pub kind: String,
    pub profile: u32,
    pub nonce: [u8; 16],
    pub created_at: u64,
}

/// A store's id: derived from everything its declaration fixes.
pub fn store_id(
    mesh: &StoreId,
    creator: &AuthorId,
    kind: &str,
    profile: u32,
    nonce: &[u8; 16],
) -> StoreId {
    let mut h = blake3::Hasher::new_derive_key("lattice store id v1");
    h.update(&mesh.0);
    h.update(&creator.0);
    h.update(&(kind.len() as u32).to_le_bytes());
    h.update(kind.as_bytes());
    h.update(&profile.to_le_bytes());
    h.update(nonce);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    StoreId(id)
}

/// The root writes that declare a store (the creator repeats them to prove
/// ownership when it renames or deletes the store).
pub fn declaration_writes(d: &StoreDecl) -> Vec<(String, Vec<u8>)> {
    let u = d.store.to_uuid();
    vec![
        (
            format!("/stores/{u}/creator"),
            d.creator.to_hex().into_bytes(),
        ),
        (format!("/stores/{u}/type"), d.kind.clone().into_bytes()),
        (
            format!("/stores/{u}/profile"),
            d.profile.to_string().into_bytes(),
        ),
        (
            format!("/stores/{u}/nonce"),
            hex::encode(d.nonce).into_bytes(),
        ),
        (
            format!("/stores/{u}/created_at"),
            d.created_at.to_string().into_bytes(),
        ),
    ]
}

/// Checks a root entry against every stateless rule and returns what it
/// writes, in op order.
pub fn check(
    mesh: &StoreId,
    founder: &AuthorId,
    e: &SignedEntry,
) -> Result<Vec<RootWrite>, RootRuleError> {
    let op =
        KvOp::decode(e.payload.as_slice()).map_err(|x| RootRuleError::Malformed(x.to_string()))?;
    if op.writes.len() > MAX_WRITES {
        return Err(RootRuleError::TooManyWrites(op.writes.len()));
    }
    // The kv plugin applies root ops too: bound what it must walk, so no
    // root op can exhaust its budget (which would halt the root store).
    let supersedes: usize = op.writes.iter().map(|w| w.supersedes.len()).sum();
    if supersedes > MAX_SUPERSEDES
        || op
            .writes
            .iter()
            .flat_map(|w| &w.supersedes)
            .any(|h| h.len() != 32)
    {
        return Err(RootRuleError::Supersedes(MAX_SUPERSEDES));
    }
    let by_founder = e.author == *founder;
    // Declarations first: they are the proofs the other writes refer to.
    let decls = declarations(mesh, e, &op.writes)?;
    let proven = |s: &StoreId| decls.iter().any(|d| d.store == *s);
    let mut out = Vec::with_capacity(op.writes.len());
    let mut revoked_here: Vec<AuthorId> = Vec::new();
    for w in &op.writes {
        let key = w.key.as_str();
        if w.delete {
            return Err(RootRuleError::Delete(w.key.clone()));
        }
        let limit = if key.ends_with("/cutoff") {
            MAX_CUTOFF
        } else {
            MAX_VALUE
        };
        if w.value.len() > limit {
            return Err(bad(key, "value too long"));
        }
        let parts: Vec<&str> = key.split('/').collect();
        let write = match parts.as_slice() {
            ["", "mesh", "name"] => {
                if !by_founder {
                    return Err(RootRuleError::FounderOnly(w.key.clone()));
                }
                RootWrite::MeshName(name_value(key, &w.value)?)
            }
            ["", "nodes", pk, field] => {
                let node = AuthorId::from_hex(pk)
                    .ok_or_else(|| bad(key, "node id is not 64 hex digits"))?;
                match *field {
                    "status" => {
                        if !by_founder {
                            return Err(RootRuleError::FounderOnly(w.key.clone()));
                        }
                        let status = match w.value.as_slice() {
                            b"active" => Status::Active,
                            b"revoked" => {
                                if node == *founder {
                                    return Err(RootRuleError::RevokeFounder);
                                }
                                revoked_here.push(node);
                                Status::Revoked
                            }
                            _ => return Err(bad(key, "status is `active` or `revoked`")),
                        };
                        RootWrite::NodeStatus(node, status)
                    }
                    "cutoff" => {
                        if !by_founder {
                            return Err(RootRuleError::FounderOnly(w.key.clone()));
                        }
                        RootWrite::NodeCutoff(node, parse_cutoff(key, &w.value)?)
                    }
                    "name" => {
                        if !by_founder && node != e.author {
                            return Err(RootRuleError::NotOwner(w.key.clone()));
                        }
                        RootWrite::NodeName(node, name_value(key, &w.value)?)
                    }
                    _ => return Err(RootRuleError::UnknownKey(w.key.clone())),
                }
            }
            ["", "stores", uuid, field] => {
                let store =
                    StoreId::from_uuid(uuid).ok_or_else(|| bad(key, "store id is not a uuid"))?;
                if store == *mesh {
                    return Err(RootRuleError::RootCollision(store.to_uuid()));
                }
                match *field {
                    "creator" | "type" | "profile" | "nonce" | "created_at" => {
                        // Validated as a whole by `declarations`.
                        if *field == "creator" {
                            let d = decls.iter().find(|d| d.store == store).expect("declared");
                            RootWrite::StoreDecl(d.clone())
                        } else {
                            continue;
                        }
                    }
                    "name" | "deleted" => {
                        if !by_founder && !proven(&store) {
                            return Err(RootRuleError::NotCreator(store.to_uuid()));
                        }
                        if *field == "name" {
                            RootWrite::StoreName(store, store_name(key, &w.value)?)
                        } else {
                            if w.value != b"1" {
                                return Err(bad(key, "deleted is `1`"));
                            }
                            RootWrite::StoreDeleted(store)
                        }
                    }
                    "upgrade" => {
                        // The creator alone: the founder may delete a store
                        // but not change what code runs it.
                        if !proven(&store) {
                            return Err(RootRuleError::NotUpgrader(store.to_uuid()));
                        }
                        let spec = UpgradeSpec::decode(&w.value).ok_or_else(|| {
                            bad(
                                key,
                                "upgrade is `from_hash to_hash profile from_version to_version`",
                            )
                        })?;
                        if crate::runtime::Profile::by_version(spec.profile).is_none() {
                            return Err(bad(key, "unknown runtime profile"));
                        }
                        RootWrite::StoreUpgrade(store, spec)
                    }
                    _ => return Err(RootRuleError::UnknownKey(w.key.clone())),
                }
            }
            ["", "channels", name] => {
                let text =
                    std::str::from_utf8(&w.value).map_err(|_| bad(key, "not a store uuid"))?;
                let store = StoreId::from_uuid(text).ok_or_else(|| bad(key, "not a store uuid"))?;
                if !by_founder && !proven(&store) {
                    return Err(RootRuleError::NotCreator(store.to_uuid()));
                }
                RootWrite::Channel(store_name(key, name.as_bytes())?, store)
            }
            ["", "plugins", hash, "name" | "version" | "size"] => {
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(key, "plugin hash is not 64 hex digits"));
                }
                name_value(key, &w.value)?;
                RootWrite::PluginInfo
            }
            _ => return Err(RootRuleError::UnknownKey(w.key.clone())),
        };
        out.push(write);
    }
    for w in &out {
        if let RootWrite::NodeCutoff(node, _) = w {
            if !revoked_here.contains(node) {
                return Err(RootRuleError::CutoffWithoutRevoke(node.to_hex()));
            }
        }
    }
    Ok(out)
}

/// Every store declared by the op, checked: all five fields present and
/// well-formed, the creator is the author, and the id derives from them.
fn declarations(
    mesh: &StoreId,
    e: &SignedEntry,
    writes: &[Write],
) -> Result<Vec<StoreDecl>, RootRuleError> {
    let mut uuids: Vec<&str> = Vec::new();
    for w in writes {
        let parts: Vec<&str> = w.key.split('/').collect();
        if let [
            "",
            "stores",
            uuid,
            "creator" | "type" | "profile" | "nonce" | "created_at",
        ] = parts.as_slice()
        {
            if !uuids.contains(uuid) {
                uuids.push(uuid);
            }
        }
    }
    let mut out = Vec::new();
    for uuid in uuids {
        let field = |f: &str| {
            let key = format!("/stores/{uuid}/{f}");
            let v = writes
                .iter()
                .rev()
                .find(|w| w.key == key)
                .map(|w| w.value.as_slice());
            v.ok_or_else(|| {
                bad(
                    &key,
                    "a declaration needs creator, type, profile, nonce and created_at",
                )
            })
            .and_then(|v| {
                std::str::from_utf8(v)
                    .map(|s| (key.clone(), s))
                    .map_err(|_| bad(&key, "not UTF-8"))
            })
        };
        let (k, creator) = field("creator")?;
        let creator =
            AuthorId::from_hex(creator).ok_or_else(|| bad(&k, "creator is not 64 hex digits"))?;
        if creator != e.author {
            return Err(RootRuleError::NotCreator(uuid.to_string()));
        }
        let (k, kind) = field("type")?;
        if kind.len() != 64 || !kind.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad(&k, "type is a plugin hash (64 lowercase hex digits)"));
        }
        let (k, profile) = field("profile")?;
        let profile: u32 = profile
            .parse()
            .map_err(|_| bad(&k, "profile is a number"))?;
        if crate::runtime::Profile::by_version(profile).is_none() {
            return Err(bad(&k, "unknown runtime profile"));
        }
        let (k, nonce) = field("nonce")?;
        let nonce: [u8; 16] = hex::decode(nonce)
            .ok()
            .and_then(|n| n.try_into().ok())
            .ok_or_else(|| bad(&k, "nonce is 32 hex digits"))?;
        let (k, created) = field("created_at")?;
        if created.len() > 20 {
            return Err(bad(&k, "created_at is a number of milliseconds"));
        }
        let created_at: u64 = created
            .parse()
            .map_err(|_| bad(&k, "created_at is a number of milliseconds"))?;
        let store = StoreId::from_uuid(uuid).ok_or_else(|| bad(&k, "store id is not a uuid"))?;
        if store_id(mesh, &creator, kind, profile, &nonce) != store {
            return Err(RootRuleError::BadStoreId(store.to_uuid()));
        }
        out.push(StoreDecl {
            store,
            creator,
            kind: kind.to_string(),
            profile,
            nonce,
            created_at,
        });
    }
    Ok(out)
}

fn bad(key: &str, why: &'static str) -> RootRuleError {
    RootRuleError::BadValue {
        key: key.to_string(),
        why,
    }
}

/// What a display name (node, mesh, plugin info) must be, in words.
pub const DISPLAY_NAME_RULE: &str = "use 1 to 64 characters, no control characters";

/// Whether `s` is a display name every replica accepts: 1 to 64
/// characters, no control characters. The host checks names it is about
/// to write with this same function, so a local write is never one that
/// replicas would refuse.
pub fn is_display_name(s: &str) -> bool {
    !s.is_empty() && s.chars().count() <= MAX_NAME && !s.chars().any(char::is_control)
}

/// A display name as a root value (see [`is_display_name`]).
fn name_value(key: &str, v: &[u8]) -> Result<String, RootRuleError> {
    let s = std::str::from_utf8(v).map_err(|_| bad(key, "not UTF-8"))?;
    if !is_display_name(s) {
        return Err(bad(key, DISPLAY_NAME_RULE));
    }
    Ok(s.to_string())
}

/// A store or channel name: what `store create --name` accepts.
fn store_name(key: &str, v: &[u8]) -> Result<String, RootRuleError> {
    let s = std::str::from_utf8(v).map_err(|_| bad(key, "not UTF-8"))?;
    super::validate_name(s)
        .map_err(|_| bad(key, "store names are 1-64 letters, digits, '-', '_', '.'"))?;
    Ok(s.to_string())
}

/// `uuid:seq,uuid:seq,…` (empty: nothing of the node stands).
fn parse_cutoff(key: &str, v: &[u8]) -> Result<Vec<(StoreId, u64)>, RootRuleError> {
    let s = std::str::from_utf8(v).map_err(|_| bad(key, "not UTF-8"))?;
    let mut out: Vec<(StoreId, u64)> = Vec::new();
    for item in s.split(',').filter(|i| !i.is_empty()) {
        let (u, n) = item
            .split_once(':')
            .ok_or_else(|| bad(key, "cut-off is `uuid:seq,…`"))?;
        let store = StoreId::from_uuid(u).ok_or_else(|| bad(key, "cut-off is `uuid:seq,…`"))?;
        let seq: u64 = n.parse().map_err(|_| bad(key, "cut-off is `uuid:seq,…`"))?;
        if out.iter().any(|(s, _)| *s == store) {
            return Err(bad(key, "a store appears twice in the cut-off"));
        }
        out.push((store, seq));
    }
    Ok(out)
}

/// Encodes a cut-off vector as [`parse_cutoff`] reads it.
pub fn encode_cutoff(v: &[(StoreId, u64)]) -> Vec<u8> {
    v.iter()
        .map(|(s, n)| format!("{}:{n}", s.to_uuid()))
        .collect::<Vec<_>>()
        .join(",")
        .into_bytes()
}
