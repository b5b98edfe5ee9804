//! Native test harness (non-wasm targets only): drive a plugin's
//! `prepare`/`apply`/`query` against the in-memory state of the current
//! thread, and check convergence under every causal delivery order.
//!
//! Each test thread has its own state, so `cargo test` can run tests in
//! parallel. Call [`reset`] at the start of a test that reuses a thread.

use crate::state::backend::{READ_ONLY, STORE};
use crate::{Adapter, Command, Context, Op, StateMachine};
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::cell::Cell;

/// The whole state: every key/value pair, as the host's digest sees it.
pub type State = BTreeMap<Vec<u8>, Vec<u8>>;

/// Empties this thread's state.
pub fn reset() {
    STORE.with(|s| s.borrow_mut().clear());
}

/// A copy of this thread's state.
pub fn snapshot() -> State {
    STORE.with(|s| s.borrow().clone())
}

/// Replaces this thread's state.
pub fn restore(state: State) {
    STORE.with(|s| *s.borrow_mut() = state);
}

/// A 32-byte id or key made of one repeated byte: readable test fixtures.
pub fn id(n: u8) -> Vec<u8> {
    alloc::vec![n; 32]
}

/// A context for author `id(author)` at `hlc`.
pub fn ctx(author: u8, hlc: u64) -> Context {
    Context {
        author: id(author),
        hlc,
    }
}

/// An op with id `id(n)`, author `id(author)`, causal deps `deps` (as op
/// numbers) and an encoded payload.
pub fn op(n: u8, author: u8, hlc: u64, deps: &[u8], payload: Vec<u8>) -> Op {
    Op {
        id: id(n),
        author: id(author),
        seq: 0,
        hlc,
        deps: deps.iter().map(|d| id(*d)).collect(),
        payload,
    }
}

fn read_only<R>(f: impl FnOnce() -> R) -> R {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            READ_ONLY.with(|r| r.set(false));
        }
    }
    READ_ONLY.with(|r| r.set(true));
    let _guard = Guard;
    f()
}

/// Runs `prepare` as the host would (state read-only: a write panics) and
/// returns the op.
pub fn prepare<T: StateMachine>(
    ctx: &Context,
    method: &str,
    request: &impl prost::Message,
) -> Result<Vec<u8>, String> {
    command::<T>(ctx, method, request).map(|c| c.op)
}

/// [`prepare`], returning the op and the reply.
pub fn command<T: StateMachine>(
    ctx: &Context,
    method: &str,
    request: &impl prost::Message,
) -> Result<Command, String> {
    read_only(|| Adapter::<T>::prepare_checked(ctx, method, &request.encode_to_vec()))
}

/// Runs `migrate(from)` on this thread's state as the host would (state
/// writable; on `Err` the host discards its writes, and so does this).
pub fn migrate<T: StateMachine>(from: u32) -> Result<(), String> {
    let before = snapshot();
    let r = Adapter::<T>::migrate_checked(from);
    if r.is_err() {
        restore(before);
    }
    r
}

/// Runs `query` as the host would and decodes the reply.
pub fn query<T: StateMachine, Rep: prost::Message + Default>(
    method: &str,
    request: &impl prost::Message,
) -> Result<Rep, String> {
    let bytes = read_only(|| Adapter::<T>::query_checked(method, &request.encode_to_vec()))?;
    Ok(Rep::decode(bytes.as_slice()).expect("query reply must decode"))
}

/// Applies one op as the host would.
pub fn apply<T: StateMachine>(op: &Op) {
    Adapter::<T>::apply_checked(op)
}

/// `prepare` then `apply` with an op built from the context, as a node does
/// for a local command; returns the op.
pub fn commit<T: StateMachine>(
    ctx: &Context,
    n: u8,
    deps: &[u8],
    method: &str,
    request: &impl prost::Message,
) -> Result<Op, String> {
    let payload = prepare::<T>(ctx, method, request)?;
    let mut op = op(n, 0, ctx.hlc, deps, payload);
    op.author = ctx.author.clone();
    apply::<T>(&op);
    Ok(op)
}

/// Every order of `ops` in which each op comes after the ops it names in
/// `deps` (ids not among `ops` are taken as already applied): exactly the
/// orders the host may apply them in.
pub fn causal_orders(ops: &[Op]) -> Vec<Vec<usize>> {
    fn go(ops: &[Op], placed: &mut Vec<usize>, used: &mut Vec<bool>, out: &mut Vec<Vec<usize>>) {
        if placed.len() == ops.len() {
            out.push(placed.clone());
            return;
        }
        for i in 0..ops.len() {
            if used[i] {
                continue;
            }
            let ready = ops[i]
                .deps
                .iter()
                .all(|d| ops.iter().position(|o| &o.id == d).is_none_or(|j| used[j]));
            if ready {
                used[i] = true;
                placed.push(i);
                go(ops, placed, used, out);
                placed.pop();
                used[i] = false;
            }
        }
    }
    let mut out = Vec::new();
    go(
        ops,
        &mut Vec::new(),
        &mut alloc::vec![false; ops.len()],
        &mut out,
    );
    out
}

std::thread_local! {
    static ORDERS_CHECKED: Cell<usize> = const { Cell::new(0) };
}

/// Applies `ops` on top of `base` in every causal order and asserts that all
/// orders give byte-identical state. Leaves that state installed (so the
/// test can query it) and returns it.
///
/// # Panics
/// If two orders disagree (naming both orders), or if `ops` has no causal
/// order (a dependency cycle).
pub fn assert_converges<T: StateMachine>(base: &State, ops: &[Op]) -> State {
    let orders = causal_orders(ops);
    assert!(!orders.is_empty(), "ops have no causal order");
    let mut first: Option<(Vec<usize>, State)> = None;
    for order in orders {
        restore(base.clone());
        for &i in &order {
            apply::<T>(&ops[i]);
        }
        let state = snapshot();
        match &first {
            None => first = Some((order, state)),
            Some((o, s)) => assert!(
                *s == state,
                "state diverges: order {o:?} vs {order:?}\n{s:?}\nvs\n{state:?}"
            ),
        }
        ORDERS_CHECKED.with(|c| c.set(c.get() + 1));
    }
    let (_, state) = first.expect("at least one order");
    restore(state.clone());
    state
}

/// How many orders [`assert_converges`] has checked on this thread: lets a
/// test assert that it really exercised several orders.
pub fn orders_checked() -> usize {
    ORDERS_CHECKED.with(Cell::get)
}
