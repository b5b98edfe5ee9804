//! The host side of the `state` interface, shared by every WIT version.
//!
//! A version module (`v0_1_0`) only adapts its generated signatures to the
//! functions here. Every host function meters its work as fuel (host time is
//! otherwise free to the guest: a loop of `scan(limit = u32::MAX)` calls
//! would run forever on a budget meant for instructions), checks the size
//! caps, and records *why* it refused in [`HostState::violation`] before
//! trapping, so the caller can return a typed [`CallError`].

use std::ptr::NonNull;
use std::sync::Arc;

use wasmtime::{ResourceLimiter, StoreContextMut};

use super::RuntimeConfig;
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

/// Per-instance store data.
pub(crate) struct HostState {
    pub(crate) config: Arc<RuntimeConfig>,
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
}

impl HostState {
    pub(crate) fn new(config: Arc<RuntimeConfig>) -> Self {
        HostState {
            config,
            mode: Mode::ReadOnly,
            source: SourceSlot::empty(),
            overlay: Overlay::new(),
            written: 0,
            violation: None,
            storage_error: None,
            budget: 0,
        }
    }

    /// Reset per-call state before a call.
    pub(crate) fn begin(&mut self, mode: Mode, budget: u64) {
        self.mode = mode;
        self.overlay.clear();
        self.written = 0;
        self.violation = None;
        self.storage_error = None;
        self.budget = budget;
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
        let limit = self.config.memory_limit;
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
        let limit = self.config.table_elements_limit;
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
    let max = cx.data().config.max_key_bytes;
    if key.len() > max {
        return Err(cx.data_mut().refuse(CallError::KeyTooLarge {
            size: key.len(),
            max,
        }));
    }
    Ok(())
}

/// `state.get`
pub(crate) fn get(
    mut cx: StoreContextMut<'_, HostState>,
    key: Vec<u8>,
) -> wasmtime::Result<Option<Vec<u8>>> {
    let costs = cx.data().config.fuel;
    charge(&mut cx, costs.host_call + costs.per_byte * key.len() as u64)?;
    check_key(&mut cx, &key)?;
    let data = cx.data();
    let found = if let Some(v) = data.overlay.get(&key) {
        Ok(v.clone())
    } else {
        match data.source.get() {
            Some(src) => src.get(&key),
            None => Ok(None),
        }
    };
    let found = found.map_err(|e| storage_failure(&mut cx, e))?;
    if let Some(v) = &found {
        charge(&mut cx, costs.per_byte * v.len() as u64)?;
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
    let costs = cx.data().config.fuel;
    let n = (key.len() + value.len()) as u64;
    charge(&mut cx, costs.host_call + costs.per_write_byte * n)?;
    check_key(&mut cx, &key)?;
    let max = cx.data().config.max_value_bytes;
    if value.len() > max {
        return Err(cx.data_mut().refuse(CallError::ValueTooLarge {
            size: value.len(),
            max,
        }));
    }
    let data = cx.data_mut();
    data.written += key.len() + value.len();
    if data.written > data.config.max_apply_write_bytes {
        let (size, max) = (data.written, data.config.max_apply_write_bytes);
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
    let costs = cx.data().config.fuel;
    charge(
        &mut cx,
        costs.host_call + costs.per_write_byte * key.len() as u64,
    )?;
    check_key(&mut cx, &key)?;
    let data = cx.data_mut();
    data.written += key.len();
    if data.written > data.config.max_apply_write_bytes {
        let (size, max) = (data.written, data.config.max_apply_write_bytes);
        return Err(data.refuse(CallError::WriteBudget { size, max }));
    }
    data.overlay.insert(key, None);
    Ok(())
}

/// `state.scan` / `state.scan-rev`: at most `min(limit, max_scan_rows)` rows
/// and about `max_scan_bytes` bytes (always at least one row if any exists,
/// so a guest paginating by last key always makes progress).
pub(crate) fn scan(
    mut cx: StoreContextMut<'_, HostState>,
    start: Vec<u8>,
    end: Option<Vec<u8>>,
    limit: u32,
    rev: bool,
) -> wasmtime::Result<Vec<Row>> {
    let costs = cx.data().config.fuel;
    let bound_bytes = start.len() + end.as_ref().map_or(0, |e| e.len());
    charge(
        &mut cx,
        costs.host_call + costs.per_byte * bound_bytes as u64,
    )?;
    check_key(&mut cx, &start)?;
    if let Some(e) = &end {
        check_key(&mut cx, e)?;
    }
    let fuel_left = cx.get_fuel()?;
    let data = cx.data();
    let limit = (limit as usize).min(data.config.max_scan_rows);
    let max_bytes = data.config.max_scan_bytes;
    let overlay = (data.mode == Mode::Apply).then_some(&data.overlay);
    // Meter as we go: stop (and fail the call) the moment the scan's cost
    // exceeds the fuel left, rather than doing unbounded host work first.
    let mut spent = 0u64;
    let mut bytes = 0usize;
    let mut out_of_fuel = false;
    let mut on_row = |k: &[u8], v: &[u8]| {
        spent += costs.per_row + costs.per_byte * (k.len() + v.len()) as u64;
        bytes += k.len() + v.len();
        if spent > fuel_left {
            out_of_fuel = true;
            return false;
        }
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
    if out_of_fuel {
        cx.set_fuel(0)?;
        let budget = cx.data().budget;
        return Err(cx.data_mut().refuse(CallError::OutOfFuel { budget }));
    }
    cx.set_fuel(fuel_left - spent)?;
    Ok(rows)
}
