//! A loaded plugin: its validated description and its pre-linked component.
//!
//! A `Plugin` holds no instance. Every call instantiates a fresh one from the
//! `InstancePre` and drops it afterwards (see [`super::instance`]), so a call
//! never sees what an earlier call left in the guest's globals or heap, and a
//! node may hold any number of stores of one plugin (they share this one
//! `Arc<Plugin>`, found by hash in the runtime's plugin cache).

use std::sync::Arc;

use redb::{ReadTransaction, WriteTransaction};
use wasmtime::Store;

use super::cache::CacheOutcome;
use super::error::{CallError, LoadError, StorageError};
use super::halt::{self, Halt, HaltTx};
use super::host::{HostState, Mode};
use super::info::{PluginInfo, validate_info};
use super::instance::{self, Done, Failure, Guest, Pre};
use super::state::{self, PLUGIN_STATE, StateRead, StoreKey, TableView};
use super::{Context, Op, Prepared, Profile, Shared};

/// The result of applying one op.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    /// The op's writes (if any) were added to the caller's transaction.
    Applied { writes: usize },
    /// The plugin failed before reading any state, so it fails the same way
    /// on every replica: its writes were discarded and the op stays in the
    /// log as a no-op.
    NoOp { reason: CallError },
    /// The store is halted on this node (by this op, or earlier): nothing
    /// was applied, and nothing more will be (see [`super::halt`]).
    Halted { halt: Halt },
}

/// A transaction `prepare` and `query` can read state from: a redb read
/// transaction, or the kernel's write transaction (to validate against
/// state that includes not yet committed ops).
///
/// Sealed: the view type is private, so only these two implementations exist.
pub trait ReadState: HaltTx {
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

/// A loaded, validated plugin. Cheap to share (`Arc`); calls on one plugin
/// run in parallel, each in its own instance.
pub struct Plugin {
    info: PluginInfo,
    pre: Pre,
    shared: Arc<Shared>,
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

const MAX_REJECTION: usize = 4096;

impl Plugin {
    /// Call `describe` (in a fresh instance, like every call) and validate
    /// what it says.
    pub(crate) fn new(
        shared: Arc<Shared>,
        pre: Pre,
        hash: [u8; 32],
        size: usize,
        cache: CacheOutcome,
    ) -> Result<Self, LoadError> {
        let api_version = pre.api_version();
        let empty: TableView<redb::ReadOnlyTable<&[u8], &[u8]>> = TableView::new(None, [0; 16]);
        let budget = shared.config.fuel_call;
        let raw = instance::call(
            &shared,
            &pre,
            &shared.config.profile,
            Mode::ReadOnly,
            budget,
            &empty,
            |g, s| g.describe(s),
        )
        .map_err(|f| match f {
            Failure::Host(m) => LoadError::Instantiate(m),
            other => LoadError::Describe(other.into()),
        })?
        .value;
        let info = validate_info(raw, api_version, hash, size)?;
        Ok(Plugin {
            info,
            pre,
            shared,
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
        profile: &Profile,
        budget: u64,
        source: &dyn StateRead,
        f: impl FnOnce(&Guest, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<Done<R>, Failure> {
        let r = instance::call(&self.shared, &self.pre, profile, mode, budget, source, f);
        if let Err(Failure::Call { error, .. }) = &r
            && error.is_guest_failure()
        {
            tracing::debug!(plugin = %self.info.name, error = %error, "plugin call failed");
        }
        r
    }

    /// A read-only call (`prepare`, `query`) under the runtime's own profile
    /// and `fuel_call`: these are local and never replicated.
    fn read_call<R>(
        &self,
        source: &dyn StateRead,
        f: impl FnOnce(&Guest, &mut Store<HostState>) -> wasmtime::Result<R>,
    ) -> Result<R, CallError> {
        let c = &self.shared.config;
        Ok(self
            .call(Mode::ReadOnly, &c.profile, c.fuel_call, source, f)?
            .value)
    }

    fn method_kind(&self, method: &str) -> Result<bool, CallError> {
        self.info
            .method(method)
            .map(|m| m.is_query)
            .ok_or_else(|| CallError::UnknownMethod(method.to_string()))
    }

    fn check_request(&self, req: &[u8]) -> Result<(), CallError> {
        let max = self.shared.config.max_request_bytes;
        if req.len() > max {
            return Err(CallError::RequestTooLarge {
                size: req.len(),
                max,
            });
        }
        Ok(())
    }

    fn reply(&self, r: Result<Vec<u8>, String>) -> Result<Vec<u8>, CallError> {
        let max = self.shared.config.max_reply_bytes;
        match r {
            Ok(bytes) if bytes.len() > max => Err(CallError::ReplyTooLarge {
                size: bytes.len(),
                max,
            }),
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
    /// and return the op payload to sign, log and then `apply`. Refused on a
    /// halted store: an op built on frozen state would only add to the
    /// backlog.
    pub fn prepare(
        &self,
        tx: &impl ReadState,
        store: &StoreKey,
        ctx: &Context,
        method: &str,
        req: &[u8],
    ) -> Result<Prepared, CallError> {
        if self.method_kind(method)? {
            return Err(CallError::NotACommand(method.to_string()));
        }
        self.check_request(req)?;
        let storage = |e: StorageError| CallError::Storage(e.to_string());
        if let Some(h) = tx.read_halt(store).map_err(storage)? {
            return Err(CallError::StoreHalted(h.reason));
        }
        let view = tx.state_view(store).map_err(storage)?;
        let r = self.read_call(&*view, |g, s| g.prepare(s, ctx, method, req))?;
        let (op, reply) = match r {
            Ok(p) => (p.op, Ok(p.reply)),
            Err(e) => (Vec::new(), Err(e)),
        };
        let reply = self.reply(reply)?;
        let op = self.reply(Ok(op))?;
        // Checked before the op is logged: a reply the caller cannot decode
        // would turn a committed command into an error on the caller's side.
        let output = self
            .info
            .method(method)
            .map(|m| m.output.clone())
            .ok_or_else(|| CallError::UnknownMethod(method.to_string()))?;
        if prost_reflect::DynamicMessage::decode(output.clone(), reply.as_slice()).is_err() {
            return Err(CallError::Guest(format!(
                "prepare's reply does not decode as {}",
                output.full_name()
            )));
        }
        Ok(Prepared { op, reply })
    }

    /// Answer the query `method(req)` on the store's current state (on a
    /// halted store: the state frozen at the halt, for inspection).
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
        let r = self.read_call(&*view, |g, s| g.query(s, method, req))?;
        self.reply(r)
    }

    /// [`Plugin::apply_with`] under the runtime's configured profile
    /// (normally [`Profile::CURRENT`]). A store's ops must be applied under
    /// the profile its declaration records: use `apply_with` for those.
    pub fn apply(
        &self,
        tx: &WriteTransaction,
        store: &StoreKey,
        op: &Op,
    ) -> Result<ApplyOutcome, StorageError> {
        let profile = self.shared.config.profile;
        self.apply_with(tx, store, op, &profile)
    }

    /// Apply a committed op inside the caller's write transaction, in a fresh
    /// instance, under `profile`.
    ///
    /// The plugin's writes are buffered and reach `tx` only if the call
    /// succeeds. A failure before the plugin read any state yields
    /// [`ApplyOutcome::NoOp`] (the same on every replica); any other failure
    /// halts the store on this node ([`ApplyOutcome::Halted`], recorded in
    /// `tx`). `Err` means the host failed (storage, or a profile this engine
    /// cannot run): the caller must abort the transaction.
    pub fn apply_with(
        &self,
        tx: &WriteTransaction,
        store: &StoreKey,
        op: &Op,
        profile: &Profile,
    ) -> Result<ApplyOutcome, StorageError> {
        self.shared.check_profile(profile)?;
        if let Some(halt) = halt::halted(tx, store)? {
            return Ok(ApplyOutcome::Halted { halt });
        }
        let mut view = TableView::new(Some(tx.open_table(PLUGIN_STATE)?), *store);
        match self.call(Mode::Apply, profile, profile.fuel_apply, &view, |g, s| {
            g.apply(s, op)
        }) {
            Ok(Done { overlay, .. }) => {
                let writes = overlay.len();
                if let Some(table) = view.table.as_mut() {
                    state::flush(tx, table, store, overlay)?;
                }
                Ok(ApplyOutcome::Applied { writes })
            }
            Err(Failure::Storage(e)) => Err(StorageError::Storage(e)),
            Err(Failure::Host(m)) => Err(StorageError::HostResource(m)),
            Err(Failure::Call { error, read_state }) => {
                if halt::is_replicated(&error, read_state) {
                    tracing::warn!(
                        plugin = %self.info.name,
                        op_seq = op.seq,
                        error = %error,
                        "apply failed before reading state; op kept as a no-op on every replica"
                    );
                    return Ok(ApplyOutcome::NoOp { reason: error });
                }
                let halt = Halt {
                    op_id: op.id.clone(),
                    reason: format!(
                        "apply of op {} (seq {}) failed after reading state: {error}",
                        hex::encode(&op.id),
                        op.seq
                    ),
                };
                drop(view);
                halt::record(tx, store, &halt)?;
                tracing::error!(
                    plugin = %self.info.name,
                    store = %hex::encode(store),
                    reason = %halt.reason,
                    "store halted on this node: no further ops of it will be applied"
                );
                Ok(ApplyOutcome::Halted { halt })
            }
        }
    }
}

/// What `migrate` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrateOutcome {
    /// Its writes were added to the caller's transaction.
    Migrated { writes: usize },
    /// The plugin cannot take over state of that version (its own error);
    /// nothing was written.
    Refused(String),
    /// The call failed in the guest (trap, fuel, limits); nothing was written.
    Failed(CallError),
    /// A 0.1.0 plugin: its world has no `migrate`.
    Unsupported,
}

impl Plugin {
    /// Run `migrate(from)` inside the caller's write transaction, in a fresh
    /// instance with writable state, under `profile`'s migration limits
    /// ([`Profile::for_migrate`]).
    /// Writes reach `tx` only when the plugin returns `Ok`.
    pub fn migrate_with(
        &self,
        tx: &WriteTransaction,
        store: &StoreKey,
        from: u32,
        profile: &Profile,
    ) -> Result<MigrateOutcome, StorageError> {
        self.shared.check_profile(profile)?;
        let limits = profile.for_migrate();
        let mut view = TableView::new(Some(tx.open_table(PLUGIN_STATE)?), *store);
        match self.call(Mode::Apply, &limits, limits.fuel_apply, &view, |g, s| {
            g.migrate(s, from)
        }) {
            Ok(Done { value: None, .. }) => Ok(MigrateOutcome::Unsupported),
            Ok(Done {
                value: Some(Err(msg)),
                ..
            }) => Ok(MigrateOutcome::Refused(msg)),
            Ok(Done {
                value: Some(Ok(())),
                overlay,
            }) => {
                let writes = overlay.len();
                if let Some(table) = view.table.as_mut() {
                    state::flush(tx, table, store, overlay)?;
                }
                Ok(MigrateOutcome::Migrated { writes })
            }
            Err(Failure::Storage(e)) => Err(StorageError::Storage(e)),
            Err(Failure::Host(m)) => Err(StorageError::HostResource(m)),
            Err(Failure::Call { error, .. }) => Ok(MigrateOutcome::Failed(error)),
        }
    }
}

/// Load-time plumbing shared with [`super::Runtime::load`].
pub(crate) fn compile_component(
    engine: &wasmtime::Engine,
    wasm: &[u8],
) -> Result<wasmtime::component::Component, LoadError> {
    wasmtime::component::Component::new(engine, wasm)
        .map_err(|e| LoadError::Invalid(format!("{e:#}")))
}
