//! The sandboxed, deterministic wasm plugin runtime.
//!
//! A plugin is a WebAssembly component implementing the `lattice:plugin`
//! world (see `wit/`). [`Runtime::load`] validates a blob (size, imports,
//! world, `describe`, descriptor set) and compiles it (or loads the cached
//! artifact); [`Plugin::prepare`], [`Plugin::query`] and [`Plugin::apply`]
//! run it against one store's state inside a caller-owned redb transaction.
//!
//! Determinism and containment, and why:
//! - fuel metering with a budget re-armed before every call (wasmtime does
//!   not refill fuel), and host-function work charged as fuel, so neither
//!   guest loops nor host calls in a loop can hang the host;
//! - NaN canonicalization and no relaxed SIMD, so floats give the same bits
//!   on every machine (replicas must reach the same state);
//! - a fixed wasm stack, a per-instance memory cap and a pooling allocator;
//! - no imports but the plugin's own interfaces (no WASI, clocks, randomness,
//!   files or network);
//! - size caps on keys, values, scans, requests and replies.
//!
//! State lives in two redb tables (see [`state`]): `plugin_state`
//! (`store id ‖ key → value`) and `state_digest` (`store id → digest`).

mod cache;
mod digest;
mod error;
mod host;
mod plugin;
pub mod state;
mod v0_1_0;

pub mod builtin;

use std::path::PathBuf;
use std::sync::Arc;

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use cache::CacheOutcome;
pub use digest::pair_hash;
pub use error::{CallError, LoadError, RuntimeError, StorageError};
pub use plugin::{ApplyOutcome, MethodInfo, Plugin, PluginInfo, ReadState};
pub use state::{
    PLUGIN_STATE, STATE_DIGEST, StateTx, StoreKey, clear_store, recompute_digest, state_digest,
};

use host::HostState;
use plugin::Pre;

/// The WIT package versions this host loads, newest first.
pub const SUPPORTED_API_VERSIONS: &[&str] = &[v0_1_0::VERSION];

/// One committed op as handed to a plugin's `apply`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Op {
    /// Entry id (blake3 of the signed entry, 32 bytes).
    pub id: Vec<u8>,
    /// Author's ed25519 public key (32 bytes).
    pub author: Vec<u8>,
    /// Position in the author's chain (1-based).
    pub seq: u64,
    /// Hybrid logical clock (48 bits wall ms << 16 | counter).
    pub hlc: u64,
    /// Ids of the store's DAG heads the author had seen.
    pub deps: Vec<Vec<u8>>,
    /// The op payload (encodes the plugin's op message).
    pub payload: Vec<u8>,
}

/// Who is asking `prepare` to build an op, and the HLC it will carry (a
/// lower bound).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    pub author: Vec<u8>,
    pub hlc: u64,
}

/// Fuel charged for host-function work, on top of the guest's instructions
/// (one unit is roughly one wasm instruction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuelCosts {
    /// Every `state` call.
    pub host_call: u64,
    /// Per key/value byte read or passed.
    pub per_byte: u64,
    /// Per key/value byte written (writes cost a redb insert and a digest
    /// update later, so they are dearer).
    pub per_write_byte: u64,
    /// Per row examined by a scan.
    pub per_row: u64,
}

impl Default for FuelCosts {
    fn default() -> Self {
        FuelCosts {
            host_call: 1_000,
            per_byte: 1,
            per_write_byte: 4,
            per_row: 500,
        }
    }
}

/// Limits and settings of the runtime. The defaults leave honest plugins
/// orders of magnitude of headroom while bounding a hostile one to
/// well under a second and 64 MiB per call.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Directory for compiled artifacts (`None`: compile on every load).
    pub cache_dir: Option<PathBuf>,
    /// Largest accepted wasm blob.
    pub max_wasm_bytes: usize,
    /// Linear memory cap per instance.
    pub memory_limit: usize,
    /// Table elements cap per table.
    pub table_elements_limit: usize,
    /// Fixed wasm stack size (deterministic stack-overflow point).
    pub max_wasm_stack: usize,
    /// Fuel per `apply`.
    pub fuel_apply: u64,
    /// Fuel per `describe`, `prepare`, `query` (and instantiation).
    pub fuel_call: u64,
    pub fuel: FuelCosts,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    /// Bytes (keys + values) one `apply` may write.
    pub max_apply_write_bytes: usize,
    /// Rows one `scan` call returns at most (the guest's `limit` is capped).
    pub max_scan_rows: usize,
    /// Approximate bytes one `scan` call returns at most (at least one row).
    pub max_scan_bytes: usize,
    /// Largest `prepare`/`query` reply.
    pub max_reply_bytes: usize,
    /// Largest `prepare`/`query` request.
    pub max_request_bytes: usize,
    /// Maximum number of live plugin instances (the pooling allocator's size).
    pub max_instances: u32,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            cache_dir: None,
            max_wasm_bytes: 8 << 20,
            memory_limit: 64 << 20,
            table_elements_limit: 20_000,
            max_wasm_stack: 512 << 10,
            fuel_apply: 50_000_000,
            fuel_call: 200_000_000,
            fuel: FuelCosts::default(),
            max_key_bytes: 4 << 10,
            max_value_bytes: 1 << 20,
            max_apply_write_bytes: 16 << 20,
            max_scan_rows: 1024,
            max_scan_bytes: 4 << 20,
            max_reply_bytes: 4 << 20,
            max_request_bytes: 1 << 20,
            max_instances: 64,
        }
    }
}

/// The wasm engine, the per-version linkers and the compile cache.
pub struct Runtime {
    engine: Engine,
    config: Arc<RuntimeConfig>,
    linker_v0_1_0: Linker<HostState>,
    cache: Option<cache::CompileCache>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let mut c = wasmtime::Config::new();
        c.consume_fuel(true)
            .cranelift_nan_canonicalization(true)
            .wasm_relaxed_simd(false)
            .relaxed_simd_deterministic(true)
            .wasm_component_model(true)
            .max_wasm_stack(config.max_wasm_stack);
        let n = config.max_instances.max(1);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(2))
            .total_tables(n.saturating_mul(4))
            .max_memory_size(config.memory_limit)
            .table_elements(config.table_elements_limit);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&c).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut linker_v0_1_0 = Linker::new(&engine);
        v0_1_0::add_to_linker(&mut linker_v0_1_0).map_err(|e| RuntimeError::Linker {
            version: v0_1_0::VERSION,
            message: format!("{e:#}"),
        })?;

        let cache = match &config.cache_dir {
            Some(dir) => Some(cache::CompileCache::new(dir.clone(), &engine).map_err(
                |source| RuntimeError::CacheDir {
                    path: dir.clone(),
                    source,
                },
            )?),
            None => None,
        };
        Ok(Runtime {
            engine,
            config: Arc::new(config),
            linker_v0_1_0,
            cache,
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.config
    }

    /// Validate and load a plugin blob.
    ///
    /// Refuses (in this order): oversized blobs, bytes that are not a valid
    /// component, any import outside `lattice:plugin/*` of one supported
    /// version, a component that does not match that version's world, and a
    /// plugin whose `describe` fails or names a service or op type its
    /// descriptor set lacks. Uses the compile cache when configured.
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        if wasm.len() > self.config.max_wasm_bytes {
            return Err(LoadError::TooLarge {
                size: wasm.len(),
                max: self.config.max_wasm_bytes,
            });
        }
        let hash = *blake3::hash(wasm).as_bytes();
        let (component, outcome) = match &self.cache {
            None => (
                plugin::compile_component(&self.engine, wasm)?,
                CacheOutcome::Disabled,
            ),
            Some(cache) => match cache.lookup(&self.engine, &hash) {
                Ok(Some(c)) => (c, CacheOutcome::Hit),
                found => {
                    let c = plugin::compile_component(&self.engine, wasm)?;
                    // Only artifacts of plugins that pass the import check are
                    // worth keeping.
                    check_imports(&self.engine, &c)?;
                    cache.store(&c, &hash);
                    let outcome = if found.is_err() {
                        CacheOutcome::Recovered
                    } else {
                        CacheOutcome::Miss
                    };
                    (c, outcome)
                }
            },
        };
        let version = check_imports(&self.engine, &component)?;
        let pre = match version {
            v if v == v0_1_0::VERSION => {
                Pre::V0_1_0(v0_1_0::pre(&self.linker_v0_1_0, &component).map_err(|e| {
                    LoadError::WorldMismatch {
                        version: v0_1_0::VERSION,
                        message: format!("{e:#}"),
                    }
                })?)
            }
            other => {
                return Err(LoadError::UnsupportedVersion {
                    version: other.to_string(),
                    supported: SUPPORTED_API_VERSIONS.join(", "),
                });
            }
        };
        let plugin = Plugin::new(
            self.engine.clone(),
            self.config.clone(),
            pre,
            hash,
            wasm.len(),
            outcome,
        )?;
        tracing::info!(
            name = %plugin.info().name,
            version = %plugin.info().version,
            api = plugin.info().api_version,
            cache = ?outcome,
            "plugin loaded"
        );
        Ok(Arc::new(plugin))
    }
}

/// Check every import is `lattice:plugin/<interface>@<version>` for one
/// supported version and an interface that version defines; return the
/// version. A component with no imports at all (it never touches state)
/// gets the newest version.
fn check_imports(engine: &Engine, component: &Component) -> Result<&'static str, LoadError> {
    let ty = component.component_type();
    let mut version: Option<&str> = None;
    for (name, _) in ty.imports(engine) {
        let forbidden = || LoadError::ForbiddenImport {
            name: name.to_string(),
        };
        let rest = name.strip_prefix("lattice:plugin/").ok_or_else(forbidden)?;
        let (_interface, v) = rest.split_once('@').ok_or_else(forbidden)?;
        match version {
            None => version = Some(v),
            Some(first) if first != v => {
                return Err(LoadError::MixedVersions {
                    first: first.to_string(),
                    second: v.to_string(),
                });
            }
            Some(_) => {}
        }
        let supported = SUPPORTED_API_VERSIONS
            .iter()
            .find(|s| **s == v)
            .ok_or_else(|| LoadError::UnsupportedVersion {
                version: v.to_string(),
                supported: SUPPORTED_API_VERSIONS.join(", "),
            })?;
        let allowed: &[&str] = match *supported {
            v0_1_0::VERSION => &[v0_1_0::TYPES_IMPORT, v0_1_0::STATE_IMPORT],
            _ => &[],
        };
        if !allowed.contains(&name) {
            return Err(forbidden());
        }
    }
    let v = version.unwrap_or(SUPPORTED_API_VERSIONS[0]);
    SUPPORTED_API_VERSIONS
        .iter()
        .copied()
        .find(|s| *s == v)
        .ok_or_else(|| LoadError::UnsupportedVersion {
            version: v.to_string(),
            supported: SUPPORTED_API_VERSIONS.join(", "),
        })
}
