//! The node's local API: what the CLI asks and what the node answers.
//!
//! The same [`service::handle`] serves both paths: a CLI talking to a
//! running daemon over its Unix socket ([`server`], [`client`]), and a CLI
//! that opened the data dir itself because no daemon was running. Frames
//! are a 4-byte big-endian length and a JSON document (see docs/architecture.md
//! for why not gRPC); binary fields travel as hex strings.

pub mod access;
pub mod client;
pub mod server;
pub mod service;

use serde::{Deserialize, Serialize};

/// Largest frame either side accepts (a plugin blob upload is the biggest).
pub const MAX_FRAME: usize = 32 << 20;

/// 64-bit integers as JSON strings: above 2^53 a JSON number is rounded by
/// JavaScript and jq, so an HLC or a sequence number would silently change
/// on its way through a script. Reading accepts a string or a number.
pub mod json64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(v)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            S(String),
            N(u64),
        }
        match Either::deserialize(d)? {
            Either::S(s) => s.parse().map_err(serde::de::Error::custom),
            Either::N(n) => Ok(n),
        }
    }

    /// The same for `Option<u64>` (`null` when absent).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
            match v {
                Some(v) => s.collect_str(v),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
            #[derive(Deserialize)]
            struct Wrap(#[serde(with = "super")] u64);
            Ok(Option::<Wrap>::deserialize(d)?.map(|w| w.0))
        }
    }
}

/// What kind of failure an error is, for scripts: `--json` prints it beside
/// the message (`{"error": …, "kind": …}`), so a caller can tell "no such
/// store" from "the daemon is down" without parsing English.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The command line itself is wrong (exit 2).
    Usage,
    /// The named mesh, store, method, member or file does not exist.
    NotFound,
    /// A name matches several things; pick one.
    Ambiguous,
    /// A value given is malformed or out of range.
    Invalid,
    /// A rule refused it: not the founder, not the creator, revoked, invite used.
    Refused,
    /// Another process holds the data dir.
    Busy,
    /// It needs the daemon or the network.
    Offline,
    /// Stored data failed a check (integrity, verification).
    Integrity,
    /// Everything else: storage, plugin runtime, I/O.
    #[default]
    Failed,
}

/// Bytes as a hex string in JSON.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hex(pub Vec<u8>);

impl Serialize for Hex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for Hex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        hex::decode(&s).map(Hex).map_err(serde::de::Error::custom)
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    NodeStatus,
    /// Set this node's display name in every mesh (and for meshes to
    /// come); `None` asks for the current name.
    NodeName {
        name: Option<String>,
    },
    MeshCreate {
        name: Option<String>,
    },
    MeshList,
    MeshUse {
        mesh: String,
    },
    MeshStatus {
        mesh: Option<String>,
    },
    /// `kind` is a shipped plugin name; `wasm` carries a plugin blob instead.
    StoreCreate {
        name: Option<String>,
        kind: Option<String>,
        wasm: Option<Hex>,
    },
    StoreList,
    StoreUse {
        store: String,
    },
    /// Delete a store for every member (its creator or the founder).
    StoreDelete {
        store: String,
    },
    /// Re-pin a store to another plugin (its creator only): `kind` is a
    /// shipped plugin name; `wasm` carries a plugin blob instead.
    StoreUpgrade {
        store: String,
        kind: Option<String>,
        wasm: Option<Hex>,
    },
    StoreStatus {
        store: Option<String>,
    },
    StoreLog {
        store: Option<String>,
        from: u64,
        limit: u32,
    },
    /// Every store and plugin type, with descriptors: what the CLI needs to
    /// build its dynamic commands.
    Catalog,
    /// `selector` is a store name, uuid or type; `explicit` is `--store`.
    Call {
        selector: String,
        explicit: Option<String>,
        method: String,
        request: Hex,
    },
    Watch {
        store: Option<String>,
    },
    PluginList,
    PluginInspect {
        wasm: Hex,
    },
    /// Everything the host decides about a blob, with a dry run of every
    /// method; never stores or keeps it.
    PluginCheck {
        wasm: Hex,
    },
    /// A one-time invite token to the current mesh (needs the daemon).
    MeshInvite {
        expires_secs: u64,
        /// Default: the current mesh.
        #[serde(default)]
        mesh: Option<String>,
    },
    /// With `progress`, the daemon answers a `SyncProgress` frame per sync
    /// session of the catch-up before the final `Mesh`.
    MeshJoin {
        token: String,
        #[serde(default)]
        progress: bool,
    },
    MeshPeers,
    /// Who is online in a store's room and whether they hold our log.
    Presence {
        store: Option<String>,
    },
    /// Leave a mesh on this node (not its founder).
    MeshLeave {
        mesh: String,
    },
    MeshRevoke {
        member: String,
        /// Default: the current mesh.
        #[serde(default)]
        mesh: Option<String>,
    },
    /// Sync now with every reachable member (all stores when `store` is none).
    /// With `progress`, the daemon answers a `SyncProgress` frame per
    /// (peer, store) session before the final `Synced`.
    StoreSync {
        store: Option<String>,
        #[serde(default)]
        progress: bool,
    },
    /// Recompute the store's log and state digests from storage and compare.
    StoreVerify {
        store: Option<String>,
    },
    /// Authors proven to have forked the store, with the proof.
    StoreForks {
        store: Option<String>,
    },
    /// A new HTTP API token (see `node::tokens`); only its hash is kept.
    TokenCreate {
        #[serde(default)]
        store: Option<String>,
        #[serde(default)]
        read_only: bool,
        #[serde(default, with = "json64::option")]
        expires_secs: Option<u64>,
        /// A one-time browser login code instead of a token.
        #[serde(default)]
        login: bool,
    },
    TokenList,
    TokenRevoke {
        id: String,
    },
}

/// A token as `token list` shows it: never the secret.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct TokenView {
    pub id: String,
    /// The store's name, none for a token good for every store.
    pub store: Option<String>,
    pub store_id: Option<String>,
    pub read_only: bool,
    pub login: bool,
    #[serde(with = "json64")]
    pub created_ms: u64,
    #[serde(default, with = "json64::option")]
    pub expires_ms: Option<u64>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct MeshInfo {
    pub id: String,
    pub name: String,
    pub founder: String,
    pub current: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StoreInfo {
    pub id: String,
    pub name: String,
    /// The plugin's name (`chat`, `counter`): what to type on the command line.
    pub type_name: String,
    /// `kv`/`log`/`chat` or the plugin blob hash.
    pub kind: String,
    pub plugin_version: String,
    pub plugin_hash: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PluginView {
    pub name: String,
    pub version: String,
    pub hash: String,
    pub size: u32,
    pub api_version: String,
    /// The plugin's state schema version (what `migrate` starts from).
    #[serde(default)]
    pub state_version: u32,
    pub service: String,
    pub op_type: String,
    pub builtin: bool,
    /// (method, is_query)
    pub methods: Vec<(String, bool)>,
    #[serde(default)]
    pub descriptor_set: Hex,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct EntryView {
    pub id: String,
    pub store: String,
    pub author: String,
    #[serde(with = "json64")]
    pub seq: u64,
    #[serde(with = "json64")]
    pub hlc: u64,
    pub deps: u32,
    pub payload: Hex,
    /// Set when the plugin could not apply the op (kept as a no-op).
    pub noop: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct StoreStatusView {
    pub store: StoreInfo,
    #[serde(with = "json64")]
    pub entries: u64,
    pub heads: Vec<String>,
    pub log_digest: String,
    pub state_digest: String,
    #[serde(with = "json64")]
    pub noops: u64,
    /// Entries logged as void placeholders (a revoked member's, past its cut-off).
    #[serde(default, with = "json64")]
    pub voided: u64,
    /// Why this store stopped applying ops on this node, if it did.
    #[serde(default)]
    pub halted: Option<String>,
    /// e.g. "in sync with 2 of 2 members (last sync 3 s ago)"; none offline.
    #[serde(default)]
    pub sync: Option<String>,
    /// Authors proven to have forked this store (their entries from the
    /// fork on are void on every member that holds the proof).
    #[serde(default)]
    pub forks: Vec<ForkView>,
    /// The state schema version of the plugin the store runs.
    #[serde(default)]
    pub state_version: u32,
    /// The runtime profile the store's ops apply under now.
    #[serde(default)]
    pub profile: u32,
    /// Upgrades applied (0: the declared plugin).
    #[serde(default)]
    pub epoch: u32,
}

/// What `store upgrade` did.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct UpgradeView {
    pub from: String,
    pub to: String,
    pub from_version: u32,
    pub to_version: u32,
    pub profile: u32,
    /// Rows the migration wrote on this node.
    #[serde(with = "json64")]
    pub rows: u64,
}

/// An author that signed two entries where an honest chain has one.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ForkView {
    pub author: String,
    /// The lowest seq with proof: the author's entries from here on are void.
    #[serde(with = "json64")]
    pub seq: u64,
    /// The ids of the entries that prove it.
    #[serde(default)]
    pub entries: Vec<String>,
}

/// The result of `store verify`: what was checked, and every mismatch.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct VerifyView {
    pub store: StoreInfo,
    /// Entries read, hashed against their ids and signature-checked.
    #[serde(with = "json64")]
    pub entries_checked: u64,
    #[serde(with = "json64")]
    pub entries_recorded: u64,
    pub log_digest_recorded: String,
    pub log_digest_recomputed: String,
    #[serde(with = "json64")]
    pub state_pairs: u64,
    pub state_digest_recorded: String,
    pub state_digest_recomputed: String,
    /// Empty when the store is intact.
    pub problems: Vec<String>,
}

/// A member as presence sees it (see `Node::presence`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PresenceView {
    pub id: String,
    pub name: String,
    pub me: bool,
    pub online: bool,
    #[serde(default, with = "json64::option")]
    pub last_seen_ms: Option<u64>,
    pub in_sync: Option<bool>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PeerView {
    pub id: String,
    pub addrs: Vec<String>,
    pub connected: bool,
    #[serde(default, with = "json64::option")]
    pub last_seen_ms: Option<u64>,
    pub syncs: Vec<PeerSync>,
}

/// The last sync with a peer of one store.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct PeerSync {
    pub store: String,
    #[serde(with = "json64")]
    pub at_ms: u64,
    /// "ok: …" or "error: …".
    pub result: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct SyncView {
    pub peer: String,
    pub store: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CatalogStore {
    pub store: StoreInfo,
    pub selected: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Response {
    Ok,
    Error {
        message: String,
        /// Serialized under another name: `kind` is this enum's own tag.
        #[serde(default, rename = "error_kind")]
        kind: ErrorKind,
    },
    NodeStatus {
        author: String,
        data_dir: String,
        meshes: u32,
        stores: u32,
        daemon: bool,
        current_mesh: Option<String>,
        /// This node's display name.
        #[serde(default)]
        name: String,
        /// Live resource counts (see `docs/reliability.md`, "Soak").
        #[serde(default)]
        runtime: crate::node::RuntimeStats,
    },
    /// `meshes`: where the name was written (none for a query); `failed`:
    /// (mesh, why) where it could not be.
    NodeName {
        name: String,
        meshes: Vec<String>,
        #[serde(default)]
        failed: Vec<(String, String)>,
    },
    Mesh {
        mesh: MeshInfo,
    },
    Meshes {
        meshes: Vec<MeshInfo>,
    },
    MeshStatus {
        mesh: MeshInfo,
        members: Vec<(String, String, String)>,
        stores: Vec<StoreInfo>,
    },
    Store {
        store: StoreInfo,
    },
    Stores {
        stores: Vec<StoreInfo>,
    },
    StoreStatus {
        status: StoreStatusView,
    },
    Upgraded {
        store: StoreInfo,
        upgrade: UpgradeView,
    },
    Log {
        store: StoreInfo,
        entries: Vec<EntryView>,
    },
    Catalog {
        stores: Vec<CatalogStore>,
        plugins: Vec<PluginView>,
    },
    Called {
        store: StoreInfo,
        entry: Option<EntryView>,
        reply: Hex,
    },
    Event {
        store: StoreInfo,
        entry: EntryView,
    },
    Plugins {
        plugins: Vec<PluginView>,
    },
    Plugin {
        plugin: PluginView,
    },
    PluginCheck {
        report: crate::runtime::CheckReport,
    },
    Invite {
        token: String,
        #[serde(with = "json64")]
        expires_ms: u64,
    },
    Peers {
        peers: Vec<PeerView>,
    },
    Presence {
        store: StoreInfo,
        members: Vec<PresenceView>,
    },
    Revoked {
        member: String,
    },
    Deleted {
        store: String,
    },
    Left {
        mesh: String,
    },
    Synced {
        results: Vec<SyncView>,
    },
    Verified {
        report: VerifyView,
    },
    Forks {
        store: StoreInfo,
        forks: Vec<ForkView>,
    },
    /// A token just made: `secret` is shown this once.
    Token {
        token: TokenView,
        secret: String,
    },
    Tokens {
        tokens: Vec<TokenView>,
    },
    TokenRevoked {
        token: TokenView,
    },
    /// One sync session of a `StoreSync { progress: true }` finished.
    SyncProgress {
        done: u32,
        total: u32,
        sync: SyncView,
    },
}

impl Response {
    /// An error with no finer kind (`failed`).
    pub fn error(e: impl std::fmt::Display) -> Response {
        Response::Error {
            message: e.to_string(),
            kind: ErrorKind::Failed,
        }
    }

    /// A node error, with the kind its variant implies.
    pub fn node_error(e: &crate::node::NodeError) -> Response {
        Response::Error {
            message: e.to_string(),
            kind: e.kind(),
        }
    }
}

/// A request and the id its response will carry (clients may pipeline).
#[derive(Serialize, Deserialize, Debug)]
pub struct RequestFrame {
    pub id: u64,
    pub req: Request,
}

#[derive(Serialize, Deserialize, Debug)]
pub struct ResponseFrame {
    pub id: u64,
    pub resp: Response,
}
