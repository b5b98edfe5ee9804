//! The root store's schema. A mesh's root store runs the `kv` plugin; the
//! host reads and writes these keys through that plugin's own requests, so
//! the root store replicates and merges like any other kv store:
//!
//! - `/stores/{uuid}/name`, `/stores/{uuid}/type`, `/stores/{uuid}/created_at`
//! - `/plugins/{hash}/name`, `/plugins/{hash}/version`, `/plugins/{hash}/size`
//! - `/nodes/{pubkey}/name`, `/nodes/{pubkey}/status` (`active` | `revoked`)
//! - `/channels/{name}` → chat store uuid
//!
//! The message structs mirror `plugins/kv/proto/kv.proto` (field numbers are
//! the contract).

use prost::Message;

#[derive(Clone, PartialEq, Message)]
pub struct PutRequest {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct BatchRequest {
    #[prost(message, repeated, tag = "1")]
    pub puts: Vec<PutRequest>,
    #[prost(string, repeated, tag = "2")]
    pub deletes: Vec<String>,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetRequest {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(int32, tag = "2")]
    pub mode: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct GetReply {
    #[prost(bool, tag = "1")]
    pub found: bool,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListRequest {
    #[prost(string, tag = "1")]
    pub prefix: String,
    #[prost(string, tag = "2")]
    pub after: String,
    #[prost(uint32, tag = "3")]
    pub limit: u32,
    #[prost(int32, tag = "4")]
    pub mode: i32,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListEntry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

#[derive(Clone, PartialEq, Message)]
pub struct ListReply {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<ListEntry>,
    #[prost(string, tag = "2")]
    pub next: String,
}

/// A mesh's root store id: derived from its founder and secret, so whoever
/// holds the secret can check who founded the mesh (an invite token cannot
/// lie about it), and a root id cannot be chosen to equal another store's.
pub fn mesh_id(founder: &lattice_kernel::AuthorId, secret: &[u8; 32]) -> lattice_kernel::StoreId {
    let mut h = blake3::Hasher::new_derive_key("lattice mesh id v1");
    h.update(&founder.0);
    h.update(secret);
    let mut id = [0u8; 16];
    id.copy_from_slice(&h.finalize().as_bytes()[..16]);
    lattice_kernel::StoreId(id)
}

/// 32 bytes from the OS random source.
pub fn random_secret() -> [u8; 32] {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).expect("the OS random source must be available");
    b
}

pub fn store_key(uuid: &str, field: &str) -> String {
    format!("/stores/{uuid}/{field}")
}

pub fn node_key(pubkey_hex: &str, field: &str) -> String {
    format!("/nodes/{pubkey_hex}/{field}")
}

pub fn plugin_key(hash_hex: &str, field: &str) -> String {
    format!("/plugins/{hash_hex}/{field}")
}

/// The catalog entry a store declaration or an upgrade writes for its
/// plugin blob, so members can name and size it before fetching it.
pub fn plugin_catalog(hash_hex: &str, info: &crate::runtime::PluginInfo) -> Vec<(String, Vec<u8>)> {
    vec![
        (plugin_key(hash_hex, "name"), info.name.clone().into_bytes()),
        (
            plugin_key(hash_hex, "version"),
            info.version.clone().into_bytes(),
        ),
        (
            plugin_key(hash_hex, "size"),
            info.size.to_string().into_bytes(),
        ),
    ]
}

pub fn channel_key(name: &str) -> String {
    format!("/channels/{name}")
}

pub fn batch(puts: Vec<(String, Vec<u8>)>) -> Vec<u8> {
    BatchRequest {
        puts: puts
            .into_iter()
            .map(|(key, value)| PutRequest { key, value })
            .collect(),
        deletes: vec![],
    }
    .encode_to_vec()
}

/// The kv plugin's op (`KvOp`): what a root entry writes.
#[derive(Clone, PartialEq, Message)]
pub struct KvOp {
    #[prost(message, repeated, tag = "1")]
    pub writes: Vec<Write>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Write {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
    #[prost(bool, tag = "3")]
    pub delete: bool,
    #[prost(bytes = "vec", repeated, tag = "4")]
    pub supersedes: Vec<Vec<u8>>,
}
