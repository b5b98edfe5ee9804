//! Bindings for the released `lattice:plugin@0.1.0` world.
//!
//! Released worlds are frozen. A later `0.2.0` gets its own module beside this
//! one (its own `bindgen!` over `wit/v0.2.0`) and its own arm in
//! [`super::plugin::Pre`]/[`super::plugin::Guest`], so 0.1.0 plugins keep
//! loading unchanged.

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker};

use super::host::{self, HostState};
use super::{Context as HostContext, Op as HostOp, Prepared};

wasmtime::component::bindgen!({
    path: "../wit/v0.1.0",
    world: "state-machine",
});

/// The package version string as it appears in import names.
pub(crate) const VERSION: &str = "0.1.0";
/// The interfaces a 0.1.0 plugin may import.
pub(crate) const TYPES_IMPORT: &str = "lattice:plugin/types@0.1.0";
pub(crate) const STATE_IMPORT: &str = "lattice:plugin/state@0.1.0";

/// Define the 0.1.0 `state` (and the type-only `types`) imports.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    add_state(linker, TYPES_IMPORT, STATE_IMPORT)
}

/// The `state` interface has the same functions in every released version
/// (so far): define them under the given import names.
pub(crate) fn add_state(
    linker: &mut Linker<HostState>,
    types_import: &str,
    state_import: &str,
) -> wasmtime::Result<()> {
    // `types` only carries records; an empty instance satisfies the import.
    linker.instance(types_import)?;
    let mut state = linker.instance(state_import)?;
    state.func_wrap("get", |cx, (key,): (Vec<u8>,)| {
        host::get(cx, key).map(|v| (v,))
    })?;
    state.func_wrap("set", |cx, (key, value): (Vec<u8>, Vec<u8>)| {
        host::set(cx, key, value)
    })?;
    state.func_wrap("remove", |cx, (key,): (Vec<u8>,)| host::remove(cx, key))?;
    state.func_wrap(
        "scan",
        |cx, (start, end, limit): (Vec<u8>, Option<Vec<u8>>, u32)| {
            host::scan(cx, start, end, limit, false).map(|rows| (rows,))
        },
    )?;
    state.func_wrap(
        "scan-rev",
        |cx, (start, end, limit): (Vec<u8>, Option<Vec<u8>>, u32)| {
            host::scan(cx, start, end, limit, true).map(|rows| (rows,))
        },
    )?;
    Ok(())
}

/// Type-check `component` against the world (imports via the linker,
/// exports via the generated `StateMachinePre`).
pub(crate) fn pre(
    linker: &Linker<HostState>,
    component: &Component,
) -> wasmtime::Result<StateMachinePre<HostState>> {
    let pre: InstancePre<HostState> = linker.instantiate_pre(component)?;
    StateMachinePre::new(pre)
}

/// A live 0.1.0 instance's exports.
pub(crate) struct Guest(StateMachine);

impl Guest {
    pub(crate) fn instantiate(
        pre: &StateMachinePre<HostState>,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<Self> {
        Ok(Guest(pre.instantiate(store)?))
    }

    pub(crate) fn describe(
        &self,
        store: &mut Store<HostState>,
    ) -> wasmtime::Result<super::info::RawInfo> {
        let i = self.0.call_describe(store)?;
        Ok(super::info::RawInfo {
            name: i.name,
            version: i.version,
            descriptor_set: i.descriptor_set,
            service: i.service,
            op_type: i.op_type,
            state_version: i.state_version,
        })
    }

    pub(crate) fn prepare(
        &self,
        store: &mut Store<HostState>,
        ctx: &HostContext,
        method: &str,
        request: &[u8],
    ) -> wasmtime::Result<Result<Prepared, String>> {
        let ctx = lattice::plugin::types::Context {
            author: ctx.author.clone(),
            hlc: ctx.hlc,
        };
        // 0.1.0 has no reply: the caller gets the reply message with every
        // field at its default, which encodes as no bytes.
        Ok(self
            .0
            .call_prepare(store, &ctx, method, request)?
            .map(|op| Prepared {
                op,
                reply: Vec::new(),
            }))
    }

    pub(crate) fn query(
        &self,
        store: &mut Store<HostState>,
        method: &str,
        request: &[u8],
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        self.0.call_query(store, method, request)
    }

    pub(crate) fn apply(&self, store: &mut Store<HostState>, op: &HostOp) -> wasmtime::Result<()> {
        let op = lattice::plugin::types::Op {
            id: op.id.clone(),
            author: op.author.clone(),
            seq: op.seq,
            hlc: op.hlc,
            deps: op.deps.clone(),
            payload: op.payload.clone(),
        };
        self.0.call_apply(store, &op)
    }
}

#[cfg(test)]
mod tests {
    /// The SDK carries its own copy of the WIT (so it builds outside this
    /// repository); a released world is frozen, so the copies never differ.
    #[test]
    fn the_sdk_carries_this_exact_wit() {
        assert_eq!(
            include_str!("../../../wit/v0.1.0/plugin.wit"),
            include_str!("../../../plugins/sdk/wit/v0.1.0/plugin.wit"),
        );
    }
}
