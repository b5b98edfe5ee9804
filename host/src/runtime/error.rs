//! Typed errors of the plugin runtime. Each variant names the rule that was
//! violated, so a caller (the kernel, the CLI) can print one clear line and a
//! test can assert on the exact failure instead of matching strings.

use std::path::PathBuf;

/// The host could not set up its wasm engine.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// wasmtime refused the engine configuration (e.g. the pooling allocator
    /// could not reserve its address space).
    #[error("wasm engine configuration rejected: {0}")]
    Engine(String),
    /// The compile cache directory could not be created.
    #[error("cannot create plugin compile cache directory {path}: {source}")]
    CacheDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A linker for a supported WIT version could not be built (a host bug).
    #[error("cannot define host imports for lattice:plugin@{version}: {message}")]
    Linker {
        version: &'static str,
        message: String,
    },
}

/// A plugin blob was refused at load time. Nothing of it was stored or run
/// beyond `describe`.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("plugin is {size} bytes, larger than the {max}-byte limit")]
    TooLarge { size: usize, max: usize },
    #[error("not a valid wasm component: {0}")]
    Invalid(String),
    #[error(
        "plugin imports `{name}`: only lattice:plugin interfaces are allowed (no WASI, clocks, randomness, files or network)"
    )]
    ForbiddenImport { name: String },
    #[error(
        "plugin targets lattice:plugin@{version}, which this host does not support (supported: {supported})"
    )]
    UnsupportedVersion { version: String, supported: String },
    #[error("plugin mixes WIT package versions in its imports: {first} and {second}")]
    MixedVersions { first: String, second: String },
    #[error("plugin does not match the lattice:plugin@{version} world: {message}")]
    WorldMismatch {
        version: &'static str,
        message: String,
    },
    #[error("plugin failed to instantiate: {0}")]
    Instantiate(String),
    #[error("plugin `describe` failed: {0}")]
    Describe(#[source] CallError),
    #[error("plugin info field `{field}` is invalid: {reason}")]
    BadInfo { field: &'static str, reason: String },
    #[error("plugin descriptor set does not parse: {0}")]
    BadDescriptor(String),
    #[error("plugin names service `{0}`, which its descriptor set does not define")]
    UnknownService(String),
    #[error("plugin names op type `{0}`, which its descriptor set does not define")]
    UnknownOpType(String),
}

/// A call into a plugin (`describe`, `prepare`, `query`, `apply`) failed.
///
/// Everything but [`CallError::Rejected`] and the method-lookup variants is a
/// *guest failure*: the instance is discarded and the next call gets a fresh
/// one, so a misbehaving plugin can never wedge the host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin refused the request (its own validation); the instance is fine.
    #[error("plugin rejected the request: {0}")]
    Rejected(String),
    #[error("plugin has no method `{0}`")]
    UnknownMethod(String),
    #[error("`{0}` is a query (NO_SIDE_EFFECTS): call query, not prepare")]
    NotACommand(String),
    #[error("`{0}` is a command: call prepare, not query")]
    NotAQuery(String),
    #[error("plugin ran out of fuel (budget {budget})")]
    OutOfFuel { budget: u64 },
    #[error("plugin exceeded its memory limit: wanted {desired} bytes, limit {limit}")]
    MemoryLimit { desired: u64, limit: u64 },
    #[error("plugin exceeded its table limit: wanted {desired} elements, limit {limit}")]
    TableLimit { desired: u64, limit: u64 },
    #[error("state is read-only in query and prepare: `{op}` is not allowed")]
    ReadOnlyState { op: &'static str },
    #[error("plugin key is {size} bytes, larger than the {max}-byte limit")]
    KeyTooLarge { size: usize, max: usize },
    #[error("plugin value is {size} bytes, larger than the {max}-byte limit")]
    ValueTooLarge { size: usize, max: usize },
    #[error("plugin wrote {size} bytes in one apply, more than the {max}-byte limit")]
    WriteBudget { size: usize, max: usize },
    #[error("plugin read {size} bytes of state in one call, more than the {max}-byte limit")]
    ReadBudget { size: usize, max: usize },
    /// The wasm stack overflowed. Kept apart from [`CallError::Trap`]: where
    /// the stack runs out depends on the machine code wasmtime generated, not
    /// only on the op, so in `apply` it always halts the store.
    #[error("plugin overflowed its wasm stack")]
    StackOverflow,
    /// The store is halted on this node (an apply failed in a way that may
    /// depend on local history); nothing more is prepared or applied on it.
    #[error("store is halted on this node: {0}")]
    StoreHalted(String),
    #[error("request is {size} bytes, larger than the {max}-byte limit")]
    RequestTooLarge { size: usize, max: usize },
    #[error("plugin reply is {size} bytes, larger than the {max}-byte limit")]
    ReplyTooLarge { size: usize, max: usize },
    #[error("plugin trapped: {0}")]
    Trap(String),
    /// The host could not make an instance (e.g. its pool is exhausted).
    #[error("plugin could not be instantiated: {0}")]
    Instantiate(String),
    /// Any other failure of the guest (the call returned `Err` without a
    /// known cause); treated like a trap.
    #[error("plugin failed: {0}")]
    Guest(String),
    /// The host's own storage failed while serving the plugin. Not the
    /// plugin's fault: `apply` reports this as [`StorageError`].
    #[error("storage failed while serving the plugin: {0}")]
    Storage(String),
}

impl CallError {
    /// True for failures caused by the plugin misbehaving (as opposed to the
    /// plugin rejecting a request or the caller naming a wrong method).
    pub fn is_guest_failure(&self) -> bool {
        !matches!(
            self,
            CallError::Rejected(_)
                | CallError::UnknownMethod(_)
                | CallError::NotACommand(_)
                | CallError::NotAQuery(_)
                | CallError::RequestTooLarge { .. }
                | CallError::Instantiate(_)
                | CallError::Storage(_)
                | CallError::StoreHalted(_)
        )
    }
}

/// The host's storage (redb) failed. Returned by `apply` and `state_digest`:
/// unlike a plugin failure this must abort the caller's transaction.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("redb table error: {0}")]
    Table(#[from] redb::TableError),
    #[error("redb storage error: {0}")]
    Storage(#[from] redb::StorageError),
    /// The host could not run the plugin (e.g. its instance pool is
    /// exhausted). Not the plugin's fault and not deterministic, so the op
    /// must not become a no-op: abort the transaction and retry later.
    #[error("host could not run the plugin: {0}")]
    HostResource(String),
    /// `apply_with` was given a profile this runtime's engine cannot honour
    /// (its wasm stack differs from the engine's, or its memory cap exceeds
    /// the instance pool's). Local and not the plugin's fault: abort.
    #[error("runtime profile v{version} cannot run on this engine: {reason}")]
    Profile { version: u32, reason: String },
    #[error("stored value in `{table}` is corrupt: {reason}")]
    Corrupt { table: &'static str, reason: String },
}
