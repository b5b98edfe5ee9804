//! One fresh instance per call.
//!
//! A plugin's globals and heap must not carry anything from one call to the
//! next: if `apply` ran in an instance that had earlier served `query` or
//! `prepare`, what it wrote (and whether it ran out of fuel or memory) would
//! depend on this node's call history, and two replicas of one log would
//! diverge. So every call — `describe`, `prepare`, `query`, `apply` — gets
//! its own instance from the plugin's `InstancePre` (pooling allocator,
//! copy-on-write memory image: a few µs), and drops it afterwards. Nothing is
//! held per plugin or per store, so the instance pool is sized for
//! *concurrent calls*, not for the number of stores a node runs.
//!
//! [`Slots`] caps concurrent instances at the pool's size: a caller over the
//! cap waits for a slot instead of failing, and one slot is kept for
//! `apply`, so a burst of queries can never make a commit fail.

use std::sync::{Condvar, Mutex};

use wasmtime::{Store, Trap};

use super::error::CallError;
use super::host::{HostState, Mode};
use super::info::RawInfo;
use super::state::{Overlay, StateRead};
use super::{Context, Op, Prepared, Profile, Shared, v0_1_0, v0_2_0};

/// A pre-linked component for one supported WIT version.
pub(crate) enum Pre {
    V0_1_0(v0_1_0::StateMachinePre<HostState>),
    V0_2_0(v0_2_0::StateMachinePre<HostState>),
}

/// A live instance's exports for one supported WIT version.
pub(crate) enum Guest {
    V0_1_0(v0_1_0::Guest),
    V0_2_0(v0_2_0::Guest),
}

impl Pre {
    pub(crate) fn api_version(&self) -> &'static str {
        match self {
            Pre::V0_1_0(_) => v0_1_0::VERSION,
            Pre::V0_2_0(_) => v0_2_0::VERSION,
        }
    }

    fn instantiate(&self, store: &mut Store<HostState>) -> wasmtime::Result<Guest> {
        match self {
            Pre::V0_1_0(p) => Ok(Guest::V0_1_0(v0_1_0::Guest::instantiate(p, store)?)),
            Pre::V0_2_0(p) => Ok(Guest::V0_2_0(v0_2_0::Guest::instantiate(p, store)?)),
        }
    }
}

impl Guest {
    pub(crate) fn describe(&self, s: &mut Store<HostState>) -> wasmtime::Result<RawInfo> {
        match self {
            Guest::V0_1_0(g) => g.describe(s),
            Guest::V0_2_0(g) => g.describe(s),
        }
    }
    pub(crate) fn prepare(
        &self,
        s: &mut Store<HostState>,
        ctx: &Context,
        method: &str,
        req: &[u8],
    ) -> wasmtime::Result<Result<Prepared, String>> {
        match self {
            Guest::V0_1_0(g) => g.prepare(s, ctx, method, req),
            Guest::V0_2_0(g) => g.prepare(s, ctx, method, req),
        }
    }
    pub(crate) fn query(
        &self,
        s: &mut Store<HostState>,
        method: &str,
        req: &[u8],
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        match self {
            Guest::V0_1_0(g) => g.query(s, method, req),
            Guest::V0_2_0(g) => g.query(s, method, req),
        }
    }
    pub(crate) fn apply(&self, s: &mut Store<HostState>, op: &Op) -> wasmtime::Result<()> {
        match self {
            Guest::V0_1_0(g) => g.apply(s, op),
            Guest::V0_2_0(g) => g.apply(s, op),
        }
    }
    /// `None`: the plugin's world has no `migrate` (0.1.0): it can only take
    /// over state of its own state version.
    pub(crate) fn migrate(
        &self,
        s: &mut Store<HostState>,
        from: u32,
    ) -> wasmtime::Result<Option<Result<(), String>>> {
        match self {
            Guest::V0_1_0(_) => Ok(None),
            Guest::V0_2_0(g) => g.migrate(s, from).map(Some),
        }
    }
}

/// Why a call failed: the plugin (a [`CallError`], with whether it had read
/// state by then), the host's storage, or the host's resources.
pub(crate) enum Failure {
    Call { error: CallError, read_state: bool },
    Storage(redb::StorageError),
    Host(String),
}

impl From<Failure> for CallError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Call { error, .. } => error,
            Failure::Storage(e) => CallError::Storage(e.to_string()),
            Failure::Host(m) => CallError::Instantiate(m),
        }
    }
}

/// A counting semaphore over the instance pool.
pub(crate) struct Slots {
    free: Mutex<u32>,
    freed: Condvar,
    /// Slots read-only calls leave free for `apply` (1 when the pool has
    /// room for it).
    reserved: u32,
    total: u32,
}

pub(crate) struct SlotGuard<'a>(&'a Slots);

impl Slots {
    pub(crate) fn new(total: u32) -> Self {
        let total = total.max(1);
        Slots {
            free: Mutex::new(total),
            freed: Condvar::new(),
            reserved: u32::from(total > 1),
            total,
        }
    }

    /// (slots taken now, slots in all).
    pub(crate) fn usage(&self) -> (u32, u32) {
        let free = *self.free.lock().unwrap_or_else(|e| e.into_inner());
        (self.total - free, self.total)
    }

    /// Wait for a slot. `apply` may take the last one; other calls leave
    /// `reserved` free.
    pub(crate) fn acquire(&self, apply: bool) -> SlotGuard<'_> {
        let keep = if apply { 0 } else { self.reserved };
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while *free <= keep {
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        *free -= 1;
        SlotGuard(self)
    }
}

impl Drop for SlotGuard<'_> {
    fn drop(&mut self) {
        let mut free = self.0.free.lock().unwrap_or_else(|e| e.into_inner());
        *free += 1;
        // Wake everyone: an `apply` waiting may be allowed where a query is not.
        self.0.freed.notify_all();
    }
}

/// What a successful call leaves behind.
pub(crate) struct Done<R> {
    pub(crate) value: R,
    pub(crate) overlay: Overlay,
}

/// Run `f` in a fresh instance of `pre`, with `source` as the state, under
/// `budget` fuel (instantiation included) and `profile`'s limits.
pub(crate) fn call<R>(
    shared: &Shared,
    pre: &Pre,
    profile: &Profile,
    mode: Mode,
    budget: u64,
    source: &dyn StateRead,
    f: impl FnOnce(&Guest, &mut Store<HostState>) -> wasmtime::Result<R>,
) -> Result<Done<R>, Failure> {
    let _slot = shared.slots.acquire(mode == Mode::Apply);
    let mut store = Store::new(&shared.engine, HostState::new(*profile, mode, budget));
    store.limiter(|s| s);
    store
        .set_fuel(budget)
        .map_err(|e| Failure::Host(e.to_string()))?;
    // Instantiation sees no state (the source is installed afterwards), so
    // whatever it does is a function of the code alone.
    let guest = match pre.instantiate(&mut store) {
        Ok(g) => g,
        Err(e) => {
            return Err(match store.data_mut().violation.take() {
                Some(v) => Failure::Call {
                    error: v,
                    read_state: false,
                },
                None if e.downcast_ref::<Trap>().is_some() => Failure::Call {
                    error: classify(&e, budget),
                    read_state: false,
                },
                None => Failure::Host(format!("{e:#}")),
            });
        }
    };
    // SAFETY: `source` outlives this function and the slot is cleared below
    // before returning; if `f` unwinds, `store` (holding the pointer) is
    // dropped before the caller's frame that owns `source`.
    unsafe { store.data_mut().source.set(source) };
    let result = f(&guest, &mut store);
    let data = store.data_mut();
    data.source.clear();
    match result {
        Ok(value) => Ok(Done {
            value,
            overlay: std::mem::take(&mut data.overlay),
        }),
        Err(e) => {
            if let Some(s) = data.storage_error.take() {
                return Err(Failure::Storage(s));
            }
            let error = data
                .violation
                .take()
                .unwrap_or_else(|| classify(&e, budget));
            Err(Failure::Call {
                error,
                read_state: data.read_state,
            })
        }
    }
}

/// Turn a call's `Err` into a typed error when the host did not record a
/// cause itself. Every `Err` is a guest failure: memory-limit errors, for
/// instance, are not `Trap`s.
fn classify(e: &wasmtime::Error, budget: u64) -> CallError {
    match e.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => CallError::OutOfFuel { budget },
        Some(Trap::StackOverflow) => CallError::StackOverflow,
        Some(trap) => CallError::Trap(trap.to_string()),
        None => CallError::Guest(format!("{e:#}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    /// Read-only callers never take the reserved slot; apply can.
    #[test]
    fn queries_leave_a_slot_for_apply() {
        let slots = Arc::new(Slots::new(2));
        let q = slots.acquire(false);
        // A second query would have to wait; apply gets the last slot now.
        let a = slots.acquire(true);
        drop(a);
        drop(q);
        // Many threads over a pool of 2: never more than 2 at once.
        let live = Arc::new(AtomicU32::new(0));
        let peak = Arc::new(AtomicU32::new(0));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (slots, live, peak) = (slots.clone(), live.clone(), peak.clone());
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let _g = slots.acquire(i % 2 == 0);
                        let n = live.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(n, Ordering::SeqCst);
                        live.fetch_sub(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(peak.load(Ordering::SeqCst) <= 2);
        assert_eq!(*slots.free.lock().unwrap(), 2);
    }
}
