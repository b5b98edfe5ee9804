//! A loaded plugin: its validated description, its pre-linked component and
//! one reusable instance.
//!
//! One instance per plugin (not per call) keeps a call near a microsecond
//! instead of ~30 µs for a fresh instance. After any failed call the
//! instance is discarded (wasmtime leaves a trapped instance unusable, and a
//! plugin that hit a limit may have corrupted its own heap) and the next
//! call instantiates a fresh one from the `InstancePre`.

use std::sync::{Arc, Mutex};

use prost_reflect::{DescriptorPool, MessageDescriptor, ServiceDescriptor};
use redb::{ReadTransaction, WriteTransaction};
use wasmtime::component::Component;
use wasmtime::{Engine, Store, Trap};

use super::cache::CacheOutcome;
use super::error::{CallError, LoadError, StorageError};
use super::host::{HostState, Mode};
use super::state::{self, Overlay, PLUGIN_STATE, StateRead, StoreKey, TableView};
use super::{Context, Op, RuntimeConfig, v0_1_0};

/// What `describe` returned, before validation (version-independent).
pub(crate) struct RawInfo {
    pub(crate) name: String,
    pub(crate) version: String,
    pub(crate) descriptor_set: Vec<u8>,
    pub(crate) service: String,
    pub(crate) op_type: String,
    pub(crate) state_version: u32,
}

/// One method of the plugin's service.
#[derive(Debug, Clone)]
pub struct MethodInfo {
    /// The method's name as written in the .proto (`Put`, `Messages`).
    pub name: String,
    pub input: MessageDescriptor,
    pub output: MessageDescriptor,
    /// Marked `option idempotency_level = NO_SIDE_EFFECTS;`: served by
    /// `query` on read-only state; otherwise a command served by `prepare`.
    pub is_query: bool,
}

/// A validated description of a plugin.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    /// Schema version of the plugin's state (for future migrations).
    pub state_version: u32,
    /// The `lattice:plugin` WIT version the plugin was built against.
    pub api_version: &'static str,
    /// blake3 of the wasm blob: the plugin's content address.
    pub hash: [u8; 32],
    /// Size of the wasm blob in bytes.
    pub size: usize,
    /// The serialized `FileDescriptorSet`, as the plugin returned it.
    pub descriptor_set: Vec<u8>,
    pub pool: DescriptorPool,
    pub service: ServiceDescriptor,
    /// The message every op payload decodes as.
    pub op_type: MessageDescriptor,
    pub methods: Vec<MethodInfo>,
}

impl PluginInfo {
    pub fn method(&self, name: &str) -> Option<&MethodInfo> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// The result of applying one op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The op's writes (if any) were added to the caller's transaction.
    Applied { writes: usize },
    /// The plugin failed (trap, fuel, limit): its writes were discarded and
    /// the op stays in the log as a no-op.
    NoOp { reason: CallError },
}

/// A pre-linked component for one supported WIT version.
pub(crate) enum Pre {
    V0_1_0(v0_1_0::StateMachinePre<HostState>),
}

/// A live instance's exports for one supported WIT version.
pub(crate) enum Guest {
    V0_1_0(v0_1_0::Guest),
}

impl Pre {
    fn api_version(&self) -> &'static str {
        match self {
            Pre::V0_1_0(_) => v0_1_0::VERSION,
        }
    }

    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Guest> {
        match self {
            Pre::V0_1_0(p) => Ok(Guest::V0_1_0(v0_1_0::Guest::instantiate(p, store)?)),
        }
    }
}

impl Guest {
    fn describe(&self, s: &mut Store<HostState>) -> wasmtime::Result<RawInfo> {
        match self {
            Guest::V0_1_0(g) => g.describe(s),
        }
    }
    fn prepare(
        &self,
        s: &mut Store<HostState>,
        ctx: &Context,
        method: &str,
        req: &[u8],
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        match self {
            Guest::V0_1_0(g) => g.prepare(s, ctx, method, req),
        }
    }
    fn query(
        &self,
        s: &mut Store<HostState>,
        method: &str,
        req: &[u8],
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        match self {
            Guest::V0_1_0(g) => g.query(s, method, req),
        }
    }
    fn apply(&self, s: &mut Store<HostState>, op: &Op) -> wasmtime::Result<()> {
        match self {
            Guest::V0_1_0(g) => g.apply(s, op),
        }
    }
}

struct Live {
    store: Store<HostState>,
    guest: Guest,
}

/// Why a call failed: the plugin (a [`CallError`]), the host's storage, or
/// the host's resources (no instance could be made).
pub(crate) enum Failure {
    Call(CallError),
    Storage(redb::StorageError),
    Host(String),
}

impl From<Failure> for CallError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Call(e) => e,
            Failure::Storage(e) => CallError::Storage(e.to_string()),
            Failure::Host(m) => CallError::Instantiate(m),
        }
    }
}

/// A transaction `prepare` and `query` can read state from: a redb read
/// transaction, or the kernel's write transaction (to validate against
/// state that includes not yet committed ops).
///
/// Sealed: the view type is private, so only these two implementations exist.
pub trait ReadState {
    #[doc(hidden)]
    #[allow(private_interfaces)]
    fn state_view(&self, store: &StoreKey) -> Result<Box<dyn StateRead + '_>, StorageError>;
}

impl ReadState for ReadTransaction {
    #[allow(private_interfaces)]
    fn state_view(&self, store: &StoreKey) -> Result<Box<dyn StateRead + '_>, StorageError> {
        let table = match self.open_table(PLUGIN_STATE) {
            Ok(t) => Some(t),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.into()),
        };
        Ok(Box::new(TableView::new(table, *store)))
    }
}

impl ReadState for WriteTransaction {
    #[allow(private_interfaces)]
    fn state_view(&self, store: &StoreKey) -> Result<Box<dyn StateRead + '_>, StorageError> {
        let table = self.open_table(PLUGIN_STATE)?;
        Ok(Box::new(TableView::new(Some(table), *store)))
    }
}

/// The instance machinery of one plugin: its pre-linked component and the
/// one live instance calls reuse.
struct Instances {
    engine: Engine,
    config: Arc<RuntimeConfig>,
    pre: Pre,
    live: Mutex<Option<Live>>,
}

impl Instances {
    /// A fresh instance. A failure the plugin caused (a trap or a limit in
    /// its initialization) is a [`Failure::Call`]; anything else (the
    /// instance pool is exhausted, the host is out of memory) is a
    /// [`Failure::Host`]: not deterministic, so it must never turn an op into
    /// a no-op on one replica only.
    fn instantiate(&self) -> Result<Live, Failure> {
        let mut store = Store::new(&self.engine, HostState::new(self.config.clone()));
        store.limiter(|s| s);
        let budget = self.config.fuel_call;
        store.data_mut().begin(Mode::ReadOnly, budget);
        store
            .set_fuel(budget)
            .map_err(|e| Failure::Host(e.to_string()))?;
        match self.pre.instantiate(&mut store) {
            Ok(guest) => Ok(Live { store, guest }),
            Err(e) => Err(match store.data_mut().violation.take() {
                Some(v) => Failure::Call(v),
                None if e.downcast_ref::<Trap>().is_some() => Failure::Call(classify(&e, budget)),
                None => Failure::Host(format!("{e:#}")),
            }),
        }
    }

    /// Run `f` on the (re)used instance with `source` as the state, under
    /// `budget` fuel. On success returns the call's result and its overlay;
    /// on failure discards the instance.
    fn call<R>(
        &self,
        mode: Mode,
        budget: u64,
        source: &dyn StateRead,
        f: impl FnOnce(&Guest, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<(R, Overlay), Failure> {
        let mut slot = self.live.lock().unwrap_or_else(|poisoned| {
            // A panic mid-call dropped the instance it held; start afresh.
            let mut g = poisoned.into_inner();
            *g = None;
            g
        });
        // Take the instance out: if anything below panics it is dropped, not
        // left half-used in the slot.
        let mut live = match slot.take() {
            Some(l) => l,
            None => self.instantiate()?,
        };
        live.store.data_mut().begin(mode, budget);
        if let Err(e) = live.store.set_fuel(budget) {
            return Err(Failure::Host(e.to_string()));
        }
        // SAFETY: `source` outlives this function, and the slot is cleared
        // below before returning (and `live` is dropped if `f` unwinds).
        unsafe { live.store.data_mut().source.set(source) };
        let result = f(&live.guest, &mut live.store);
        let data = live.store.data_mut();
        data.source.clear();
        match result {
            Ok(r) => {
                let overlay = std::mem::take(&mut data.overlay);
                *slot = Some(live);
                Ok((r, overlay))
            }
            Err(e) => {
                let storage = data.storage_error.take();
                let violation = data.violation.take();
                drop(live);
                if let Some(s) = storage {
                    return Err(Failure::Storage(s));
                }
                Err(Failure::Call(
                    violation.unwrap_or_else(|| classify(&e, budget)),
                ))
            }
        }
    }
}

/// A loaded, validated plugin. Cheap to share (`Arc`); calls on one plugin
/// are serialized by its instance lock.
pub struct Plugin {
    info: PluginInfo,
    instances: Instances,
    config: Arc<RuntimeConfig>,
    cache: CacheOutcome,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.info.name)
            .field("version", &self.info.version)
            .field("api_version", &self.info.api_version)
            .finish_non_exhaustive()
    }
}

const MAX_NAME: usize = 128;
const MAX_DESCRIPTOR_SET: usize = 1 << 20;
const MAX_REJECTION: usize = 4096;

impl Plugin {
    /// Instantiate, call `describe` and validate what it says.
    pub(crate) fn new(
        engine: Engine,
        config: Arc<RuntimeConfig>,
        pre: Pre,
        hash: [u8; 32],
        size: usize,
        cache: CacheOutcome,
    ) -> Result<Self, LoadError> {
        let api_version = pre.api_version();
        let instances = Instances {
            engine,
            config: config.clone(),
            pre,
            live: Mutex::new(None),
        };
        let empty: TableView<redb::ReadOnlyTable<&[u8], &[u8]>> = TableView::new(None, [0; 16]);
        let (raw, _) = instances
            .call(Mode::ReadOnly, config.fuel_call, &empty, |g, s| {
                g.describe(s)
            })
            .map_err(|f| match f {
                Failure::Host(m) => LoadError::Instantiate(m),
                other => LoadError::Describe(other.into()),
            })?;
        let info = validate_info(raw, api_version, hash, size)?;
        Ok(Plugin {
            info,
            instances,
            config,
            cache,
        })
    }

    pub fn info(&self) -> &PluginInfo {
        &self.info
    }

    /// Whether the compiled code came from the compile cache.
    pub fn cache_outcome(&self) -> CacheOutcome {
        self.cache
    }

    fn call<R>(
        &self,
        mode: Mode,
        budget: u64,
        source: &dyn StateRead,
        f: impl FnOnce(&Guest, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<(R, Overlay), Failure> {
        let r = self.instances.call(mode, budget, source, f);
        if let Err(Failure::Call(e)) = &r
            && e.is_guest_failure()
        {
            tracing::debug!(plugin = %self.info.name, error = %e, "plugin call failed; instance discarded");
        }
        r
    }

    fn method_kind(&self, method: &str) -> Result<bool, CallError> {
        self.info
            .method(method)
            .map(|m| m.is_query)
            .ok_or_else(|| CallError::UnknownMethod(method.to_string()))
    }

    fn check_request(&self, req: &[u8]) -> Result<(), CallError> {
        if req.len() > self.config.max_request_bytes {
            return Err(CallError::RequestTooLarge {
                size: req.len(),
                max: self.config.max_request_bytes,
            });
        }
        Ok(())
    }

    fn reply(&self, r: Result<Vec<u8>, String>) -> Result<Vec<u8>, CallError> {
        match r {
            Ok(bytes) if bytes.len() > self.config.max_reply_bytes => {
                Err(CallError::ReplyTooLarge {
                    size: bytes.len(),
                    max: self.config.max_reply_bytes,
                })
            }
            Ok(bytes) => Ok(bytes),
            Err(mut msg) => {
                if msg.len() > MAX_REJECTION {
                    let mut cut = MAX_REJECTION;
                    while !msg.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    msg.truncate(cut);
                }
                Err(CallError::Rejected(msg))
            }
        }
    }

    /// Validate the command `method(req)` against the store's current state
    /// and return the op payload to sign, log and then `apply`.
    pub fn prepare(
        &self,
        tx: &impl ReadState,
        store: &StoreKey,
        ctx: &Context,
        method: &str,
        req: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        if self.method_kind(method)? {
            return Err(CallError::NotACommand(method.to_string()));
        }
        self.check_request(req)?;
        let view = tx
            .state_view(store)
            .map_err(|e| CallError::Storage(e.to_string()))?;
        let (r, _) = self.call(Mode::ReadOnly, self.config.fuel_call, &*view, |g, s| {
            g.prepare(s, ctx, method, req)
        })?;
        self.reply(r)
    }

    /// Answer the query `method(req)` on the store's current state.
    pub fn query(
        &self,
        tx: &impl ReadState,
        store: &StoreKey,
        method: &str,
        req: &[u8],
    ) -> Result<Vec<u8>, CallError> {
        if !self.method_kind(method)? {
            return Err(CallError::NotAQuery(method.to_string()));
        }
        self.check_request(req)?;
        let view = tx
            .state_view(store)
            .map_err(|e| CallError::Storage(e.to_string()))?;
        let (r, _) = self.call(Mode::ReadOnly, self.config.fuel_call, &*view, |g, s| {
            g.query(s, method, req)
        })?;
        self.reply(r)
    }

    /// Apply a committed op inside the caller's write transaction.
    ///
    /// The plugin's writes are buffered and reach `tx` only if the call
    /// succeeds; a trap, fuel exhaustion or limit violation discards them and
    /// yields [`ApplyOutcome::NoOp`]. `Err` means the host's storage failed:
    /// the caller must abort the transaction.
    pub fn apply(
        &self,
        tx: &WriteTransaction,
        store: &StoreKey,
        op: &Op,
    ) -> Result<ApplyOutcome, StorageError> {
        let mut view = TableView::new(Some(tx.open_table(PLUGIN_STATE)?), *store);
        match self.call(Mode::Apply, self.config.fuel_apply, &view, |g, s| {
            g.apply(s, op)
        }) {
            Ok(((), overlay)) => {
                let writes = overlay.len();
                if let Some(table) = view.table.as_mut() {
                    state::flush(tx, table, store, overlay)?;
                }
                Ok(ApplyOutcome::Applied { writes })
            }
            Err(Failure::Storage(e)) => Err(StorageError::Storage(e)),
            Err(Failure::Host(m)) => Err(StorageError::HostResource(m)),
            Err(Failure::Call(reason)) => {
                tracing::warn!(
                    plugin = %self.info.name,
                    op_seq = op.seq,
                    error = %reason,
                    "apply failed; op kept as a no-op and its writes discarded"
                );
                Ok(ApplyOutcome::NoOp { reason })
            }
        }
    }
}

/// Turn a call's `Err` into a typed error when the host did not record a
/// cause itself. Every `Err` is a guest failure: memory-limit errors, for
/// instance, are not `Trap`s.
fn classify(e: &wasmtime::Error, budget: u64) -> CallError {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::OutOfFuel { budget },
        Some(trap) => CallError::Trap(trap.to_string()),
        None => CallError::Guest(format!("{e:#}")),
    }
}

fn check_name(field: &'static str, value: &str) -> Result<(), LoadError> {
    if value.is_empty() || value.len() > MAX_NAME || value.chars().any(|c| c.is_control()) {
        return Err(LoadError::BadInfo {
            field,
            reason: format!("must be 1..={MAX_NAME} bytes without control characters"),
        });
    }
    Ok(())
}

fn validate_info(
    raw: RawInfo,
    api_version: &'static str,
    hash: [u8; 32],
    size: usize,
) -> Result<PluginInfo, LoadError> {
    check_name("name", &raw.name)?;
    check_name("version", &raw.version)?;
    if raw.descriptor_set.len() > MAX_DESCRIPTOR_SET {
        return Err(LoadError::BadInfo {
            field: "descriptor-set",
            reason: format!(
                "{} bytes, more than {MAX_DESCRIPTOR_SET}",
                raw.descriptor_set.len()
            ),
        });
    }
    let pool = DescriptorPool::decode(raw.descriptor_set.as_slice())
        .map_err(|e| LoadError::BadDescriptor(e.to_string()))?;
    let service = pool
        .get_service_by_name(&raw.service)
        .ok_or_else(|| LoadError::UnknownService(raw.service.clone()))?;
    let op_type = pool
        .get_message_by_name(&raw.op_type)
        .ok_or_else(|| LoadError::UnknownOpType(raw.op_type.clone()))?;
    let methods = service
        .methods()
        .map(|m| {
            let level = m
                .method_descriptor_proto()
                .options
                .as_ref()
                .map(|o| o.idempotency_level());
            MethodInfo {
                name: m.name().to_string(),
                input: m.input(),
                output: m.output(),
                is_query: level
                    == Some(prost_types::method_options::IdempotencyLevel::NoSideEffects),
            }
        })
        .collect();
    Ok(PluginInfo {
        name: raw.name,
        version: raw.version,
        state_version: raw.state_version,
        api_version,
        hash,
        size,
        descriptor_set: raw.descriptor_set,
        pool,
        service,
        op_type,
        methods,
    })
}

/// Load-time plumbing shared with [`super::Runtime::load`].
pub(crate) fn compile_component(engine: &Engine, wasm: &[u8]) -> Result<Component, LoadError> {
    Component::new(engine, wasm).map_err(|e| LoadError::Invalid(format!("{e:#}")))
}
