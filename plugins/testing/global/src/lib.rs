//! A plugin with a mutable global. Every export bumps `CALLS`; `apply`
//! writes the bumped value. In a fresh instance per apply the value written
//! is always 1, whatever the node answered before; in an instance shared
//! with `prepare`/`query` it would count the node's local call history and
//! two replicas of one log would disagree (issue 9).
#![no_std]
extern crate alloc;

use core::sync::atomic::{AtomicU64, Ordering};

use lattice_plugin_sdk::prelude::*;

lattice_plugin_sdk::include_proto!("lattice.testing.global");

/// Calls served by this instance so far.
static CALLS: AtomicU64 = AtomicU64::new(0);

fn bump() -> u64 {
    CALLS.fetch_add(1, Ordering::Relaxed) + 1
}

pub struct Global;

impl StateMachine for Global {
    const NAME: &'static str = "global";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTOR_SET: &'static [u8] = lattice_plugin_sdk::descriptor_set!();
    const SERVICE: &'static str = "lattice.testing.global.Global";
    const OP_TYPE: &'static str = "lattice.testing.global.Key";

    fn prepare(_ctx: &Context, method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        bump();
        match method {
            "Write" => Ok(request.to_vec()),
            other => unknown_method(other),
        }
    }

    fn apply(op: &Op) {
        let n = bump();
        if let Some(k) = op.decode::<Key>() {
            state::set(&k.key, &n.to_be_bytes());
        }
    }

    fn query(method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        let n = bump();
        match method {
            "Peek" => handle(request, |_: Empty| Ok(Count { count: n })),
            "Get" => handle(request, |r: Key| {
                let count = state::get(&r.key)
                    .and_then(|v| <[u8; 8]>::try_from(v.as_slice()).ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Ok(Count { count })
            }),
            other => unknown_method(other),
        }
    }
}

export_plugin!(Global);
