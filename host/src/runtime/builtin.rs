//! The plugins shipped inside the host binary, built from `plugins/` by
//! `build.rs` (wasm32-wasip2, release) and embedded at compile time, so a
//! fresh install can create `kv`, `log` and `chat` stores with no files.

/// The `kv` plugin: LWW multi-head key/value (also the root store's type).
pub static KV: &[u8] = include_bytes!(env!("LATTICE_PLUGIN_KV_WASM"));
/// The `log` plugin: append-only log ordered by (hlc, author, id).
pub static LOG: &[u8] = include_bytes!(env!("LATTICE_PLUGIN_LOG_WASM"));
/// The `chat` plugin: chat rooms.
pub static CHAT: &[u8] = include_bytes!(env!("LATTICE_PLUGIN_CHAT_WASM"));

/// `(type name, wasm)` of every shipped plugin.
pub static BUILTIN: &[(&str, &[u8])] = &[("kv", KV), ("log", LOG), ("chat", CHAT)];

/// The shipped plugin called `name`, if any.
pub fn builtin(name: &str) -> Option<&'static [u8]> {
    BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, w)| *w)
}
