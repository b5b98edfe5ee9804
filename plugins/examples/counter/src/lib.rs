//! A PN-counter: the smallest useful Lattice plugin, and the one
//! docs/plugin-guide.md walks through.
//!
//! State is two totals, increments (P) and decrements (N); the value is
//! P - N. The host applies every op exactly once, so applying an op is just
//! an addition, and additions commute: every replica reaches the same totals
//! whatever order concurrent ops arrive in.
#![no_std]
extern crate alloc;

use lattice_plugin_sdk::prelude::*;

lattice_plugin_sdk::include_proto!("lattice.counter");
use counter_op::Change;

/// The state layout. Version 1 keeps the totals at `p` and `n`. Version 2
/// (this source built with the `v2` feature, as the `counter2` package: the
/// plugin guide's worked migration) keeps them under `total/`, and its
/// `migrate(1)` moves them there.
#[cfg(not(feature = "v2"))]
mod layout {
    pub const VERSION: u32 = 1;
    pub const PLUGIN_VERSION: &str = env!("CARGO_PKG_VERSION");
    pub const INCREMENTS: &[u8] = b"p";
    pub const DECREMENTS: &[u8] = b"n";
}
#[cfg(feature = "v2")]
mod layout {
    pub const VERSION: u32 = 2;
    pub const PLUGIN_VERSION: &str = "0.2.0";
    pub const INCREMENTS: &[u8] = b"total/p";
    pub const DECREMENTS: &[u8] = b"total/n";
}
use layout::{DECREMENTS, INCREMENTS};

pub struct Counter;

impl StateMachine for Counter {
    const NAME: &'static str = "counter";
    const VERSION: &'static str = layout::PLUGIN_VERSION;
    const STATE_VERSION: u32 = layout::VERSION;
    const DESCRIPTOR_SET: &'static [u8] = lattice_plugin_sdk::descriptor_set!();
    const SERVICE: &'static str = "lattice.counter.Counter";
    const OP_TYPE: &'static str = "lattice.counter.CounterOp";

    /// A command answers with the value it leads to, so `lattice counter
    /// increment` prints the new value.
    fn command(_ctx: &Context, method: &str, request: &[u8]) -> Result<Command, String> {
        // proto3 cannot tell "unset" from 0; a step of 0 would be a no-op, so
        // an unset `--by` means 1.
        let step = |by: u64| by.max(1);
        let after = |delta: i128| {
            value()
                .saturating_add(delta)
                .clamp(i64::MIN.into(), i64::MAX.into()) as i64
        };
        match method {
            "Increment" => handle_command(request, |r: IncrementRequest| {
                let by = step(r.by);
                Ok((
                    change(Change::Increment(by)),
                    IncrementReply {
                        value: after(by.into()),
                    },
                ))
            }),
            "Decrement" => handle_command(request, |r: DecrementRequest| {
                let by = step(r.by);
                Ok((
                    change(Change::Decrement(by)),
                    DecrementReply {
                        value: after(-i128::from(by)),
                    },
                ))
            }),
            other => unknown_method(other),
        }
    }

    /// Takes over state of its own layout, and (version 2) moves version
    /// 1's totals to their new keys. Deterministic: it reads two keys and
    /// writes two.
    fn migrate(from: u32) -> Result<(), String> {
        match (from, layout::VERSION) {
            (a, b) if a == b => Ok(()),
            (1, 2) => {
                for (old, new) in [(b"p", INCREMENTS), (b"n", DECREMENTS)] {
                    if let Some(v) = state::get(old) {
                        state::set(new, &v);
                        state::remove(old);
                    }
                }
                Ok(())
            }
            (from, to) => Err(alloc::format!(
                "counter {} cannot migrate state version {from} (it reads version {to})",
                layout::PLUGIN_VERSION
            )),
        }
    }

    fn apply(op: &Op) {
        // Anything that is not a counter op is a no-op: apply never fails.
        match op.decode::<CounterOp>().and_then(|op| op.change) {
            Some(Change::Increment(by)) => add(INCREMENTS, by),
            Some(Change::Decrement(by)) => add(DECREMENTS, by),
            None => {}
        }
    }

    fn query(method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        match method {
            "Value" => handle(request, |_: ValueRequest| {
                Ok(ValueReply {
                    value: value().clamp(i64::MIN.into(), i64::MAX.into()) as i64,
                    increments: total(INCREMENTS),
                    decrements: total(DECREMENTS),
                })
            }),
            other => unknown_method(other),
        }
    }
}

lattice_plugin_sdk::export_plugin!(Counter);

fn change(change: Change) -> CounterOp {
    CounterOp {
        change: Some(change),
    }
}

/// P - N, exactly (the reply clamps it to i64).
fn value() -> i128 {
    i128::from(total(INCREMENTS)) - i128::from(total(DECREMENTS))
}

fn total(key: &[u8]) -> u64 {
    state::get(key)
        .and_then(|v| v.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// Saturating, so it cannot overflow-panic; for non-negative steps
/// saturation is still order-independent (the result is min(sum, MAX)).
fn add(key: &[u8], by: u64) {
    state::set(key, &total(key).saturating_add(by).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_plugin_sdk::testing::{self, ctx, op};

    fn value() -> ValueReply {
        testing::query::<Counter, ValueReply>("Value", &ValueRequest {}).unwrap()
    }

    #[test]
    fn increments_and_decrements_add_up() {
        testing::reset();
        let a = ctx(1, 10);
        testing::commit::<Counter>(&a, 1, &[], "Increment", &IncrementRequest { by: 5 }).unwrap();
        testing::commit::<Counter>(&a, 2, &[1], "Decrement", &DecrementRequest { by: 7 }).unwrap();
        testing::commit::<Counter>(&a, 3, &[2], "Increment", &IncrementRequest { by: 0 }).unwrap();
        let v = value();
        assert_eq!((v.value, v.increments, v.decrements), (-1, 6, 7));
    }

    #[test]
    fn concurrent_ops_converge_in_every_order() {
        let inc = |by| change(Change::Increment(by)).encode_to_vec();
        let dec = |by| change(Change::Decrement(by)).encode_to_vec();
        let ops = [
            op(1, 1, 10, &[], inc(3)),
            op(2, 2, 11, &[], dec(2)),
            op(3, 3, 12, &[], inc(u64::MAX)),
            op(4, 1, 13, &[1], dec(1)),
        ];
        testing::assert_converges::<Counter>(&Default::default(), &ops);
        assert!(testing::orders_checked() > 1);
        let v = value();
        assert_eq!((v.increments, v.decrements), (u64::MAX, 3));
    }

    #[test]
    fn a_command_answers_with_the_value_it_leads_to() {
        testing::reset();
        let a = ctx(1, 10);
        testing::commit::<Counter>(&a, 1, &[], "Increment", &IncrementRequest { by: 5 }).unwrap();
        let c = testing::command::<Counter>(&a, "Decrement", &DecrementRequest { by: 7 }).unwrap();
        assert_eq!(
            DecrementReply::decode(c.reply.as_slice()).unwrap().value,
            -2
        );
        // Preparing wrote nothing: the value is still 5.
        assert_eq!(value().value, 5);
    }

    #[test]
    fn migrate_takes_over_only_its_own_state_version() {
        testing::reset();
        assert_eq!(testing::migrate::<Counter>(1), Ok(()));
        assert!(
            testing::migrate::<Counter>(2)
                .unwrap_err()
                .contains("cannot migrate")
        );
    }

    #[test]
    fn garbage_payload_is_a_no_op() {
        testing::reset();
        testing::apply::<Counter>(&op(1, 1, 10, &[], vec![0xff, 0xff, 0xff]));
        assert!(testing::snapshot().is_empty());
    }

    #[test]
    fn unknown_method_is_an_error() {
        let err = testing::prepare::<Counter>(&ctx(1, 1), "Reset", &ValueRequest {});
        assert!(err.unwrap_err().contains("Reset"));
    }
}
