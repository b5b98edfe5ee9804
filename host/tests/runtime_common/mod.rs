//! Helpers shared by the runtime integration tests: real wasm plugins
//! (built by build.rs), real wasmtime, and a real redb database in a
//! temporary directory.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use lattice_host::runtime::{
    ApplyOutcome, CallError, Context, Op, Plugin, Runtime, RuntimeConfig, StoreKey, state_digest,
};
use prost::Message as _;
pub use prost_reflect::ReflectMessage;
use prost_reflect::{DynamicMessage, MessageDescriptor, Value};
use redb::Database;
pub use redb::ReadableDatabase;

pub const COUNTER: &str = env!("LATTICE_PLUGIN_COUNTER_WASM");
pub const EVIL: &str = env!("LATTICE_TEST_PLUGIN_EVIL_WASM");
pub const WASI: &str = env!("LATTICE_TEST_PLUGIN_WASI_WASM");

pub fn wasm(path: &str) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

/// One runtime per test binary, with a compile cache so each plugin
/// compiles once per binary.
pub fn runtime() -> &'static Runtime {
    static RT: OnceLock<(Runtime, tempfile::TempDir)> = OnceLock::new();
    &RT.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let rt = Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.path().join("cache")),
            ..RuntimeConfig::default()
        })
        .expect("runtime");
        (rt, dir)
    })
    .0
}

pub fn load(bytes: &[u8]) -> Arc<Plugin> {
    runtime().load(bytes).expect("plugin loads")
}

/// A fresh redb database in its own temp dir.
pub struct Db {
    pub db: Database,
    _dir: tempfile::TempDir,
}

pub fn db() -> Db {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = Database::create(dir.path().join("state.redb")).expect("create db");
    Db { db, _dir: dir }
}

pub const STORE: StoreKey = [7u8; 16];

pub fn store(n: u8) -> StoreKey {
    let mut s = [0u8; 16];
    s[0] = 0x51;
    s[15] = n;
    s
}

/// A 32-byte author key made of one byte.
pub fn author(n: u8) -> Vec<u8> {
    vec![n; 32]
}

/// An op whose id is derived from its content (like the kernel's entry id).
pub fn op(author_n: u8, seq: u64, hlc: u64, deps: Vec<Vec<u8>>, payload: Vec<u8>) -> Op {
    let mut h = blake3::Hasher::new();
    h.update(&[author_n]);
    h.update(&seq.to_le_bytes());
    h.update(&hlc.to_le_bytes());
    for d in &deps {
        h.update(d);
    }
    h.update(&payload);
    Op {
        id: h.finalize().as_bytes().to_vec(),
        author: author(author_n),
        seq,
        hlc,
        deps,
        payload,
    }
}

pub fn ctx(author_n: u8, hlc: u64) -> Context {
    Context {
        author: author(author_n),
        hlc,
    }
}

/// Apply one op in its own (non-durable) write transaction and commit.
pub fn apply(db: &Db, plugin: &Plugin, store: &StoreKey, op: &Op) -> ApplyOutcome {
    let mut tx = db.db.begin_write().expect("begin write");
    tx.set_durability(redb::Durability::None)
        .expect("durability");
    let out = plugin.apply(&tx, store, op).expect("storage ok");
    tx.commit().expect("commit");
    out
}

pub fn query(
    db: &Db,
    plugin: &Plugin,
    store: &StoreKey,
    method: &str,
    req: &[u8],
) -> Result<Vec<u8>, CallError> {
    let tx = db.db.begin_read().expect("begin read");
    plugin.query(&tx, store, method, req)
}

pub fn prepare(
    db: &Db,
    plugin: &Plugin,
    store: &StoreKey,
    ctx: &Context,
    method: &str,
    req: &[u8],
) -> Result<Vec<u8>, CallError> {
    let tx = db.db.begin_read().expect("begin read");
    plugin.prepare(&tx, store, ctx, method, req).map(|p| p.op)
}

pub fn digest(db: &Db, store: &StoreKey) -> [u8; 32] {
    let tx = db.db.begin_read().expect("begin read");
    state_digest(&tx, store).expect("digest")
}

/// The input message descriptor of `method`.
pub fn input(plugin: &Plugin, method: &str) -> MessageDescriptor {
    plugin
        .info()
        .method(method)
        .unwrap_or_else(|| panic!("plugin has method {method}"))
        .input
        .clone()
}

pub fn output(plugin: &Plugin, method: &str) -> MessageDescriptor {
    plugin.info().method(method).expect("method").output.clone()
}

/// Encode a message of type `desc` with the given fields, through
/// prost-reflect (no generated types: exactly what the CLI does).
pub fn encode(desc: &MessageDescriptor, fields: &[(&str, Value)]) -> Vec<u8> {
    let mut m = DynamicMessage::new(desc.clone());
    for (name, value) in fields {
        m.try_set_field_by_name(name, value.clone())
            .unwrap_or_else(|e| panic!("set {name} on {}: {e}", desc.full_name()));
    }
    m.encode_to_vec()
}

pub fn decode(desc: &MessageDescriptor, bytes: &[u8]) -> DynamicMessage {
    DynamicMessage::decode(desc.clone(), bytes)
        .unwrap_or_else(|e| panic!("decode {}: {e}", desc.full_name()))
}

/// Encode a request for `method`.
pub fn req(plugin: &Plugin, method: &str, fields: &[(&str, Value)]) -> Vec<u8> {
    encode(&input(plugin, method), fields)
}

/// Run query `method` and decode its reply.
pub fn ask(
    db: &Db,
    plugin: &Plugin,
    store: &StoreKey,
    method: &str,
    fields: &[(&str, Value)],
) -> DynamicMessage {
    let bytes = query(db, plugin, store, method, &req(plugin, method, fields))
        .unwrap_or_else(|e| panic!("query {method}: {e}"));
    decode(&output(plugin, method), &bytes)
}

pub fn bytes(b: &[u8]) -> Value {
    Value::Bytes(prost::bytes::Bytes::copy_from_slice(b))
}

pub fn text(s: &str) -> Value {
    Value::String(s.to_string())
}

pub fn field(m: &DynamicMessage, name: &str) -> Value {
    m.get_field_by_name(name)
        .unwrap_or_else(|| panic!("{} has field {name}", m.descriptor().full_name()))
        .into_owned()
}

pub fn as_list(v: &Value) -> Vec<Value> {
    v.as_list().expect("a repeated field").to_vec()
}

pub fn as_msg(v: &Value) -> DynamicMessage {
    v.as_message().expect("a message field").clone()
}
