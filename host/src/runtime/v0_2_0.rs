//! Bindings for the `lattice:plugin@0.2.0` world: 0.1.0 plus a reply from
//! `prepare` (`prepared`) and a `migrate` export. Its `state` interface has
//! the same functions as 0.1.0's, so the linker code is shared.

use wasmtime::Store;
use wasmtime::component::{Component, InstancePre, Linker};

use super::host::HostState;
use super::{Context as HostContext, Op as HostOp, Prepared as HostPrepared};

wasmtime::component::bindgen!({
    path: "../wit/v0.2.0",
    world: "state-machine",
});

/// The package version string as it appears in import names.
pub(crate) const VERSION: &str = "0.2.0";
/// The interfaces a 0.2.0 plugin may import.
pub(crate) const TYPES_IMPORT: &str = "lattice:plugin/types@0.2.0";
pub(crate) const STATE_IMPORT: &str = "lattice:plugin/state@0.2.0";

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    super::v0_1_0::add_state(linker, TYPES_IMPORT, STATE_IMPORT)
}

/// Type-check `component` against the world.
pub(crate) fn pre(
    linker: &Linker<HostState>,
    component: &Component,
) -> wasmtime::Result<StateMachinePre<HostState>> {
    let pre: InstancePre<HostState> = linker.instantiate_pre(component)?;
    StateMachinePre::new(pre)
}

/// A live 0.2.0 instance's exports.
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
    ) -> wasmtime::Result<Result<HostPrepared, String>> {
        let ctx = lattice::plugin::types::Context {
            author: ctx.author.clone(),
            hlc: ctx.hlc,
        };
        Ok(self
            .0
            .call_prepare(store, &ctx, method, request)?
            .map(|p| HostPrepared {
                op: p.op,
                reply: p.reply,
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

    pub(crate) fn migrate(
        &self,
        store: &mut Store<HostState>,
        from: u32,
    ) -> wasmtime::Result<Result<(), String>> {
        self.0.call_migrate(store, from)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sdk_carries_this_exact_wit() {
        assert_eq!(
            include_str!("../../../wit/v0.2.0/plugin.wit"),
            include_str!("../../../plugins/sdk/wit/v0.2.0/plugin.wit"),
        );
    }
}
