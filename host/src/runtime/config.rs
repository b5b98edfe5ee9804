//! Local settings of a runtime: what this node may spend on read-only
//! calls, how many instances run at once, where compiled code is cached.
//! Nothing here changes what an `apply` does; that is the [`Profile`]'s job.

use std::path::PathBuf;

use super::Profile;

#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for compiled artifacts (`None`: compile on every load).
    pub cache_dir: Option<PathBuf>,
    /// Largest accepted wasm blob.
    pub max_wasm_bytes: usize,
    /// The profile [`super::Plugin::apply`] uses when none is given, and
    /// whose limits read-only calls run under. Its wasm stack is the
    /// engine's, and its memory cap sizes the instance pool.
    pub profile: Profile,
    /// Fuel per `describe`, `prepare`, `query` (instantiation included).
    pub fuel_call: u64,
    /// Largest `prepare`/`query` reply.
    pub max_reply_bytes: usize,
    /// Largest `prepare`/`query` request.
    pub max_request_bytes: usize,
    /// Instances alive at once (the pooling allocator's size). Every call
    /// takes one and returns it, so this bounds *concurrent calls*; callers
    /// over it wait. It has nothing to do with how many stores a node has.
    pub max_instances: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            max_wasm_bytes: 8 << 20,
            profile: Profile::CURRENT,
            fuel_call: 200_000_000,
            max_reply_bytes: 4 << 20,
            max_request_bytes: 1 << 20,
            max_instances: 64,
        }
    }
}
