//! The sandboxed, deterministic wasm plugin runtime.
//!
//! A plugin is a WebAssembly component implementing the `lattice:plugin`
//! world (see `wit/`). [`Runtime::load`] validates a blob (size, imports,
//! world, `describe`, descriptor set) and compiles it (or loads the cached
//! artifact) once per blob hash; [`Plugin::prepare`], [`Plugin::query`] and
//! [`Plugin::apply_with`] run it against one store's state inside a
//! caller-owned redb transaction.
//!
//! Determinism and containment, and why:
//! - apply is a pure function of (state, op): every call runs in a fresh
//!   instance ([`instance`]), under the store's versioned [`Profile`];
//! - an apply failure that could depend on local history halts the store
//!   visibly instead of becoming a local no-op ([`halt`]);
//! - fuel metering with a budget set for every call, and host-function work
//!   charged as fuel by the call's arguments (never by the state returned),
//!   so neither guest loops nor host calls in a loop can hang the host, and
//!   fuel use does not depend on the order concurrent ops were applied;
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
mod check;
mod config;
mod digest;
mod error;
pub mod halt;
mod host;
mod info;
mod instance;
mod plugin;
mod profile;
mod screen;
pub mod state;
mod v0_1_0;
mod v0_2_0;

pub mod builtin;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use wasmtime::component::{Component, Linker};
use wasmtime::{Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use cache::CacheOutcome;
pub use check::{CheckReport, DryRun, Problem};
pub use config::RuntimeConfig;
pub use digest::pair_hash;
pub use error::{CallError, LoadError, RuntimeError, StorageError};
pub use halt::{Halt, STORE_HALTS, halted};
pub use info::{MethodInfo, PluginInfo, decode_descriptor_set};
pub use plugin::{ApplyOutcome, MigrateOutcome, Plugin, ReadState};
pub use profile::{FuelCosts, Profile};
pub use screen::screen;
pub use state::{
    PLUGIN_STATE, STATE_DIGEST, StateTx, StoreKey, clear_store, recompute_digest, state_digest,
};

use host::HostState;
use instance::{Pre, Slots};

/// The WIT package versions this host loads, newest first.
pub const SUPPORTED_API_VERSIONS: &[&str] = &[v0_2_0::VERSION, v0_1_0::VERSION];

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

/// What `prepare` built for a command: the op payload to sign and log, and
/// the encoded reply message for the caller (empty from a 0.1.0 plugin,
/// whose world has no reply: the all-defaults message).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Prepared {
    pub op: Vec<u8>,
    pub reply: Vec<u8>,
}

/// Who is asking `prepare` to build an op, and the HLC it will carry (a
/// lower bound).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Context {
    pub author: Vec<u8>,
    pub hlc: u64,
}

/// What every plugin of a runtime shares: the engine, the local settings
/// and the instance slots.
pub(crate) struct Shared {
    pub(crate) engine: Engine,
    pub(crate) config: RuntimeConfig,
    pub(crate) slots: Slots,
    /// The instance pool's caps: a profile above them cannot run here.
    pool_memory: usize,
    pool_table_elements: usize,
}

impl Shared {
    /// Refuse a profile this engine cannot honour exactly (running it with
    /// other limits would silently change what the store computes).
    pub(crate) fn check_profile(&self, p: &Profile) -> Result<(), StorageError> {
        let refuse = |reason: String| {
            Err(StorageError::Profile {
                version: p.version,
                reason,
            })
        };
        let stack = self.config.profile.max_wasm_stack;
        if p.max_wasm_stack != stack {
            return refuse(format!(
                "wasm stack {} bytes, engine has {stack}",
                p.max_wasm_stack
            ));
        }
        if p.memory_limit > self.pool_memory {
            return refuse(format!(
                "memory limit {} bytes, instance pool allows {}",
                p.memory_limit, self.pool_memory
            ));
        }
        if p.table_elements_limit > self.pool_table_elements {
            return refuse(format!(
                "table limit {} elements, instance pool allows {}",
                p.table_elements_limit, self.pool_table_elements
            ));
        }
        Ok(())
    }
}

/// The wasm engine, the per-version linkers, the compile cache and the
/// loaded plugins by blob hash.
pub struct Runtime {
    shared: Arc<Shared>,
    linker_v0_1_0: Linker<HostState>,
    linker_v0_2_0: Linker<HostState>,
    cache: Option<cache::CompileCache>,
    /// One `Plugin` (one compiled component, one `InstancePre`) per blob
    /// hash, shared by every store of that plugin. Weak: a plugin no store
    /// uses any more is freed; loading it again compiles (or hits the
    /// on-disk cache) once more.
    plugins: Mutex<HashMap<[u8; 32], Weak<Plugin>>>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Per-component caps of the pool. A component needing more fails to
/// instantiate already at load (`describe`), so a loaded plugin always fits
/// one slot and `max_instances` concurrent calls always fit the pool.
const CORE_INSTANCES_PER_COMPONENT: u32 = 8;
const MEMORIES_PER_COMPONENT: u32 = 2;
const TABLES_PER_COMPONENT: u32 = 4;
/// Linear memory (and table) kept resident per pool slot: with the
/// `PAGEMAP_SCAN` ioctl (Linux ≥ 6.7, used when available) only the pages a
/// call dirtied are copied back from the image, so the next fresh instance in
/// that slot takes no page faults on its stack and heap. Measured on kv
/// (debug host, loaded machine): the guest call went from 60–120 µs to
/// 20–30 µs against the madvise default.
const KEEP_RESIDENT: usize = 2 << 20;

impl Runtime {
    pub fn new(config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let mut c = wasmtime::Config::new();
        c.consume_fuel(true)
            .cranelift_nan_canonicalization(true)
            .wasm_relaxed_simd(false)
            .relaxed_simd_deterministic(true)
            .wasm_component_model(true)
            .max_wasm_stack(config.profile.max_wasm_stack);
        let n = config.max_instances.max(1);
        // Room for every released profile (and the configured one), so a
        // store pinned to any of them runs with its exact limits.
        let most = |limit: fn(&Profile) -> usize| {
            Profile::ALL
                .iter()
                .chain([&config.profile])
                .map(limit)
                .max()
                .unwrap_or(limit(&config.profile))
        };
        let pool_memory = most(|p| p.memory_limit);
        let pool_table_elements = most(|p| p.table_elements_limit);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
            .total_memories(n.saturating_mul(MEMORIES_PER_COMPONENT))
            .total_tables(n.saturating_mul(TABLES_PER_COMPONENT))
            .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
            .max_memories_per_component(MEMORIES_PER_COMPONENT)
            .max_tables_per_component(TABLES_PER_COMPONENT)
            .max_memory_size(pool_memory)
            .table_elements(pool_table_elements)
            .linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);
        c.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&c).map_err(|e| RuntimeError::Engine(format!("{e:#}")))?;

        let mut linker_v0_1_0 = Linker::new(&engine);
        v0_1_0::add_to_linker(&mut linker_v0_1_0).map_err(|e| RuntimeError::Linker {
            version: v0_1_0::VERSION,
            message: format!("{e:#}"),
        })?;

        let mut linker_v0_2_0 = Linker::new(&engine);
        v0_2_0::add_to_linker(&mut linker_v0_2_0).map_err(|e| RuntimeError::Linker {
            version: v0_2_0::VERSION,
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
            shared: Arc::new(Shared {
                engine,
                slots: Slots::new(n),
                config,
                pool_memory,
                pool_table_elements,
            }),
            linker_v0_1_0,
            linker_v0_2_0,
            cache,
            plugins: Mutex::new(HashMap::new()),
        })
    }

    pub fn config(&self) -> &RuntimeConfig {
        &self.shared.config
    }

    /// (instance slots taken now, slots in all): a call that never gave
    /// its slot back shows as a count that stays up when nothing runs.
    pub fn slot_usage(&self) -> (u32, u32) {
        self.shared.slots.usage()
    }

    /// Compiled plugins alive (one per blob hash some store uses).
    pub fn plugins_alive(&self) -> usize {
        let map = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        map.values().filter(|w| w.strong_count() > 0).count()
    }

    /// Validate and load a plugin blob.
    ///
    /// Refuses (in this order): oversized blobs, bytes that are not a valid
    /// component, any import outside `lattice:plugin/*` of one supported
    /// version, a component that does not match that version's world, and a
    /// plugin whose `describe` fails or names a service or op type its
    /// descriptor set lacks. Uses the compile cache when configured.
    ///
    /// Loading bytes already loaded (and still in use) returns the same
    /// `Arc<Plugin>`: one compiled component per blob hash.
    pub fn load(&self, wasm: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        let max = self.shared.config.max_wasm_bytes;
        if wasm.len() > max {
            return Err(LoadError::TooLarge {
                size: wasm.len(),
                max,
            });
        }
        let hash = *blake3::hash(wasm).as_bytes();
        if let Some(p) = self.loaded(&hash) {
            return Ok(p);
        }
        let plugin = self.load_new(wasm, hash)?;
        let mut map = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        // Two threads may have loaded the same bytes at once: keep the first.
        if let Some(p) = map.get(&hash).and_then(Weak::upgrade) {
            return Ok(p);
        }
        map.retain(|_, w| w.strong_count() > 0);
        map.insert(hash, Arc::downgrade(&plugin));
        Ok(plugin)
    }

    /// The live plugin with this blob hash, if one is loaded.
    pub fn loaded(&self, hash: &[u8; 32]) -> Option<Arc<Plugin>> {
        let map = self.plugins.lock().unwrap_or_else(|e| e.into_inner());
        map.get(hash).and_then(Weak::upgrade)
    }

    fn load_new(&self, wasm: &[u8], hash: [u8; 32]) -> Result<Arc<Plugin>, LoadError> {
        let engine = &self.shared.engine;
        // Refuse what is not a component of our interfaces before paying
        // for a compile (or trusting a cached artifact of it).
        screen(wasm)?;
        let (component, outcome) = match &self.cache {
            None => (
                plugin::compile_component(engine, wasm)?,
                CacheOutcome::Disabled,
            ),
            Some(cache) => match cache.lookup(engine, &hash) {
                Ok(Some(c)) => (c, CacheOutcome::Hit),
                found => {
                    let c = plugin::compile_component(engine, wasm)?;
                    // Only artifacts of plugins that pass the import check are
                    // worth keeping.
                    check_imports(engine, &c)?;
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
        let version = check_imports(engine, &component)?;
        let pre = match version {
            v if v == v0_1_0::VERSION => {
                Pre::V0_1_0(v0_1_0::pre(&self.linker_v0_1_0, &component).map_err(|e| {
                    LoadError::WorldMismatch {
                        version: v0_1_0::VERSION,
                        message: format!("{e:#}"),
                    }
                })?)
            }
            v if v == v0_2_0::VERSION => {
                Pre::V0_2_0(v0_2_0::pre(&self.linker_v0_2_0, &component).map_err(|e| {
                    LoadError::WorldMismatch {
                        version: v0_2_0::VERSION,
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
        let plugin = Plugin::new(self.shared.clone(), pre, hash, wasm.len(), outcome)?;
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

/// Check every import of the compiled component (see
/// [`screen::check_import_names`]); return the version they name. A
/// component with no imports at all (it never touches state) gets the
/// newest version.
fn check_imports(engine: &Engine, component: &Component) -> Result<&'static str, LoadError> {
    let ty = component.component_type();
    let names: Vec<String> = ty
        .imports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    screen::check_import_names(names.iter().map(String::as_str))
}
