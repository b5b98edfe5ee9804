//! The host side of the `state` interface, shared by every WIT version.
//!
//! A version module (`v0_1_0`) only adapts its generated signatures to the
//! functions here. Every host function charges fuel (host time is otherwise
//! free to the guest: a loop of `scan(limit = u32::MAX)` calls would run
//! forever on a budget meant for instructions), checks the size caps, and
//! records *why* it refused in [`HostState::violation`] before trapping, so
//! the caller can return a typed [`CallError`].
//!
//! Fuel is charged by the call's *arguments* only (see
//! [`super::FuelCosts`]): what a `get` or `scan` returns depends on the
//! order concurrent ops were applied, so charging for it would make fuel
//! exhaustion order-dependent. Host work done for returned bytes is bounded
//! instead by the profile's `max_read_bytes`, and the first read of state is
//! recorded in [`HostState::read_state`] so `apply` can tell a failure that
//! is a pure function of (op, profile) from one that may depend on state.

use std::ptr::NonNull;

use wasmtime::{ResourceLimiter, StoreContextMut};

use super::Profile;
use super::error::CallError;
use super::state::{Overlay, Row, StateRead, merged_scan};

/// What the current call may do with state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `describe`, `prepare`, `query`: reads only; `set`/`remove` trap.
    ReadOnly,
    /// `apply`: reads see the overlay, writes go to the overlay.
    Apply,
}

/// A `&dyn StateRead` whose lifetime has been erased so it can sit in the
/// `'static` store data for the duration of exactly one call.
///
/// Safety contract: set only by [`super::plugin`] right before a guest call
/// with a reference that outlives that call, and cleared right after it; the
/// store is never used for another call while it is set.
pub(crate) struct SourceSlot(Option<NonNull<dyn StateRead + 'static>>);

// SAFETY: the pointer is only dereferenced on the thread that performs the
// call that installed it (calls are synchronous and hold the plugin's
// instance exclusively); between calls it is `None`.
unsafe impl Send for SourceSlot {}

impl SourceSlot {
    pub(crate) fn empty() -> Self {
        SourceSlot(None)
    }

    /// Install `src` for one call.
    ///
    /// # Safety
    /// `src` must stay alive and unmoved until [`SourceSlot::clear`] is
    /// called, and the slot must be cleared before the referent is dropped.
    pub(crate) unsafe fn set(&mut self, src: &dyn StateRead) {
        // SAFETY: lifetime erasure only; the caller guarantees the referent
        // outlives the period during which the slot is set.
        let erased: &'static dyn StateRead =
            unsafe { std::mem::transmute::<&dyn StateRead, &'static dyn StateRead>(src) };
        self.0 = Some(NonNull::from(erased));
    }

    pub(crate) fn clear(&mut self) {
        self.0 = None;
    }

    fn get(&self) -> Option<&dyn StateRead> {
        // SAFETY: see the type's contract: while set, the referent is alive.
        self.0.map(|p| unsafe { &*p.as_ptr() })
    }
}

/// Per-instance store data (one instance serves exactly one call).
pub(crate) struct HostState {
    pub(crate) profile: Profile,
    pub(crate) mode: Mode,
    pub(crate) source: SourceSlot,
    pub(crate) overlay: Overlay,
    /// Bytes written (keys + values) in the current apply.
    pub(crate) written: usize,
    /// Why the host made the current call fail, if it did.
    pub(crate) violation: Option<CallError>,
    /// The host's own storage failure during the current call, if any: not
    /// the plugin's fault, so `apply` returns it instead of a no-op.
    pub(crate) storage_error: Option<redb::StorageError>,
    /// Fuel budget of the current call (for the error message).
    pub(crate) budget: u64,
    /// Whether the call has consulted stored state yet (a `get` that missed
    /// the overlay, or any `scan`). Until it has, everything the guest did is
    /// a pure function of (code, op, profile).
    pub(crate) read_state: bool,
    /// Bytes of state returned to the guest so far in this call.
    pub(crate) read_bytes: usize,
}

impl HostState {
    pub(crate) fn new(profile: Profile, mode: Mode, budget: u64) -> Self {
        HostState {
            profile,
            mode,
            source: SourceSlot::empty(),
            overlay: Overlay::new(),
            written: 0,
            violation: None,
            storage_error: None,
            budget,
            read_state: false,
            read_bytes: 0,
        }
    }

    /// Count `n` bytes of state handed to the guest against the read budget.
    fn account_read(&mut self, n: usize) -> wasmtime::Result<()> {
        self.read_bytes = self.read_bytes.saturating_add(n);
        let max = self.profile.max_read_bytes;
        if self.read_bytes > max {
            let size = self.read_bytes;
            return Err(self.refuse(CallError::ReadBudget { size, max }));
        }
        Ok(())
    }

    /// Record `err` as the reason for the trap and produce the trap value.
    fn refuse(&mut self, err: CallError) -> wasmtime::Error {
        let e = wasmtime::Error::msg(err.to_string());
        // Keep the first violation: it is the cause, later ones are fallout.
        if self.violation.is_none() {
            self.violation = Some(err);
        }
        e
    }
}

impl ResourceLimiter for HostState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.profile.memory_limit;
        if desired > limit {
            // Trap instead of returning -1 from memory.grow: the guest's
            // allocator would abort anyway, and this way the cause is known.
            return Err(self.refuse(CallError::MemoryLimit {
                desired: desired as u64,
                limit: limit as u64,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let limit = self.profile.table_elements_limit;
        if desired > limit {
            return Err(self.refuse(CallError::TableLimit {
                desired: desired as u64,
                limit: limit as u64,
            }));
        }
        Ok(true)
    }
}

/// Take `units` of fuel from the running call, or fail it as out of fuel.
fn charge(cx: &mut StoreContextMut<'_, HostState>, units: u64) -> wasmtime::Result<()> {
    let left = cx.get_fuel()?;
    if units > left {
        cx.set_fuel(0)?;
        let budget = cx.data().budget;
        return Err(cx.data_mut().refuse(CallError::OutOfFuel { budget }));
    }
    cx.set_fuel(left - units)?;
    Ok(())
}

fn storage_failure(
    cx: &mut StoreContextMut<'_, HostState>,
    e: redb::StorageError,
) -> wasmtime::Error {
    tracing::error!(error = %e, "storage failed while serving a plugin");
    let data = cx.data_mut();
    let err = data.refuse(CallError::Storage(e.to_string()));
    data.storage_error.get_or_insert(e);
    err
}

fn check_key(cx: &mut StoreContextMut<'_, HostState>, key: &[u8]) -> wasmtime::Result<()> {
    let max = cx.data().profile.max_key_bytes;
    if key.len() > max {
        return Err(cx.data_mut().refuse(CallError::KeyTooLarge {
            size: key.len(),
            max,
        }));
    }
    Ok(())
}

/// `state.get`: charged by the key; the value returned costs no fuel (it
/// depends on state) but counts against the read budget.
pub(crate) fn get(
    mut cx: StoreContextMut<'_, HostState>,
    key: Vec<u8>,
) -> wasmtime::Result<Option<Vec<u8>>> {
    let costs = cx.data().profile.costs;
    charge(&mut cx, costs.host_call + costs.per_byte * key.len() as u64)?;
    check_key(&mut cx, &key)?;
    let data = cx.data_mut();
    if let Some(v) = data.overlay.get(&key) {
        // The call's own write: no stored state consulted.
        return Ok(v.clone());
    }
    data.read_state = true;
    let found = match data.source.get() {
        Some(src) => src.get(&key),
        None => Ok(None),
    };
    let found = found.map_err(|e| storage_failure(&mut cx, e))?;
    if let Some(v) = &found {
        cx.data_mut().account_read(v.len())?;
    }
    Ok(found)
}

/// `state.set`
pub(crate) fn set(
    mut cx: StoreContextMut<'_, HostState>,
    key: Vec<u8>,
    value: Vec<u8>,
) -> wasmtime::Result<()> {
    if cx.data().mode != Mode::Apply {
        return Err(cx.data_mut().refuse(CallError::ReadOnlyState { op: "set" }));
    }
    let costs = cx.data().profile.costs;
    let n = (key.len() + value.len()) as u64;
    charge(&mut cx, costs.host_call + costs.per_write_byte * n)?;
    check_key(&mut cx, &key)?;
    let max = cx.data().profile.max_value_bytes;
    if value.len() > max {
        return Err(cx.data_mut().refuse(CallError::ValueTooLarge {
            size: value.len(),
            max,
        }));
    }
    let data = cx.data_mut();
    data.written += key.len() + value.len();
    if data.written > data.profile.max_apply_write_bytes {
        let (size, max) = (data.written, data.profile.max_apply_write_bytes);
        return Err(data.refuse(CallError::WriteBudget { size, max }));
    }
    data.overlay.insert(key, Some(value));
    Ok(())
}

/// `state.remove`
pub(crate) fn remove(mut cx: StoreContextMut<'_, HostState>, key: Vec<u8>) -> wasmtime::Result<()> {
    if cx.data().mode != Mode::Apply {
        return Err(cx
            .data_mut()
            .refuse(CallError::ReadOnlyState { op: "remove" }));
    }
    let costs = cx.data().profile.costs;
    charge(
        &mut cx,
        costs.host_call + costs.per_write_byte * key.len() as u64,
    )?;
    check_key(&mut cx, &key)?;
    let data = cx.data_mut();
    data.written += key.len();
    if data.written > data.profile.max_apply_write_bytes {
        let (size, max) = (data.written, data.profile.max_apply_write_bytes);
        return Err(data.refuse(CallError::WriteBudget { size, max }));
    }
    data.overlay.insert(key, None);
    Ok(())
}

/// `state.scan` / `state.scan-rev`: at most `min(limit, max_scan_rows)` rows
/// and about `max_scan_bytes` bytes (always at least one row if any exists,
/// so a guest paginating by last key always makes progress). Charged up
/// front for the bounds and for `min(limit, max_scan_rows)` rows, however
/// many exist: what the guest asked for, not what state held.
pub(crate) fn scan(
    mut cx: StoreContextMut<'_, HostState>,
    start: Vec<u8>,
    end: Option<Vec<u8>>,
    limit: u32,
    rev: bool,
) -> wasmtime::Result<Vec<Row>> {
    let data = cx.data();
    let costs = data.profile.costs;
    let limit = (limit as usize).min(data.profile.max_scan_rows);
    let bound_bytes = start.len() + end.as_ref().map_or(0, |e| e.len());
    charge(
        &mut cx,
        costs.host_call + costs.per_byte * bound_bytes as u64 + costs.per_row * limit as u64,
    )?;
    check_key(&mut cx, &start)?;
    if let Some(e) = &end {
        check_key(&mut cx, e)?;
    }
    let data = cx.data_mut();
    data.read_state = true;
    let data = cx.data();
    let max_bytes = data.profile.max_scan_bytes;
    let overlay = (data.mode == Mode::Apply).then_some(&data.overlay);
    let mut bytes = 0usize;
    let mut on_row = |k: &[u8], v: &[u8]| {
        bytes += k.len() + v.len();
        bytes < max_bytes
    };
    let rows = match data.source.get() {
        Some(src) => merged_scan(
            src,
            overlay,
            &start,
            end.as_deref(),
            rev,
            limit,
            &mut on_row,
        ),
        None => Ok(Vec::new()),
    };
    let rows = rows.map_err(|e| storage_failure(&mut cx, e))?;
    let returned: usize = rows.iter().map(|(k, v)| k.len() + v.len()).sum();
    cx.data_mut().account_read(returned)?;
    Ok(rows)
}
