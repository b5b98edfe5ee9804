//! Guest-side SDK for Lattice state-machine plugins.
//!
//! A plugin is a `#![no_std]` WebAssembly component whose only imports are the
//! `lattice:plugin@0.2.0` interfaces (no WASI: no clocks, randomness or files,
//! so every replica computes the same state). Getting such a component to link
//! takes boilerplate that has nothing to do with the plugin's CRDT: a global
//! allocator, a panic handler, an exported `cabi_realloc`, the libc memory
//! functions the compiler calls, and the wit-bindgen glue. This crate owns all
//! of it, so a plugin is one `impl StateMachine` plus [`export_plugin!`].
//!
//! ```text
//! #![no_std]
//! extern crate alloc;
//! use lattice_plugin_sdk::prelude::*;
//! lattice_plugin_sdk::include_proto!("lattice.counter");
//!
//! struct Counter;
//! impl StateMachine for Counter { /* NAME, DESCRIPTOR_SET, prepare, apply, query */ }
//! export_plugin!(Counter);
//! ```
//!
//! On a non-wasm target (`cargo test --target x86_64-unknown-linux-gnu`) the
//! state interface is backed by an in-memory map and [`testing`] drives a
//! plugin's `prepare`/`apply`/`query` directly, so CRDT logic is unit-tested
//! natively, including under every causal delivery order.
#![no_std]

extern crate alloc;
// The generated bindings name this crate by its external path (so the export
// macro works from plugin crates); this makes that path resolve here too.
extern crate self as lattice_plugin_sdk;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::marker::PhantomData;

#[cfg(target_arch = "wasm32")]
mod heap;
pub mod state;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
#[cfg(target_arch = "wasm32")]
mod wasm_rt;

/// Re-exported so generated structs (`::prost::...`) and plugin code use the
/// exact prost this SDK was built against.
pub use prost;

/// The wit-bindgen bindings for world `state-machine` of `lattice:plugin@0.2.0`.
/// Plugins never need to touch these: [`StateMachine`] is the interface.
#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
#[allow(clippy::too_many_arguments)] // generated code
pub mod bindings {
    wit_bindgen::generate!({
        path: "wit/v0.2.0",
        world: "state-machine",
        // The export macro expands inside the plugin crate, which depends on
        // this SDK only, so every path it names must go through this crate.
        pub_export_macro: true,
        export_macro_name: "__export_state_machine",
        default_bindings_module: "lattice_plugin_sdk::bindings",
        runtime_path: "lattice_plugin_sdk::__wit_rt",
    });
}

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub use wit_bindgen::rt as __wit_rt;

/// Everything a plugin usually needs in one `use`.
pub mod prelude {
    pub use crate::state;
    pub use crate::{
        Command, Context, Op, StateMachine, export_plugin, handle, handle_command, method_name,
        unknown_method,
    };
    pub use alloc::borrow::ToOwned;
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
    pub use prost::Message;
}

/// Length of an op id (blake3 hash of the signed entry) and of an author key
/// (ed25519 public key). Fixed widths let plugins build sortable composite
/// keys by plain concatenation; the adapter never calls `apply` with any
/// other width.
pub const ID_LEN: usize = 32;
/// See [`ID_LEN`].
pub const AUTHOR_LEN: usize = 32;

/// One committed op, as handed to [`StateMachine::apply`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Op {
    /// Entry id: 32-byte blake3 hash, unique per op. Use it to name what the
    /// op creates (a message, a kv version) so nothing two replicas create
    /// can collide.
    pub id: Vec<u8>,
    /// The signer's 32-byte ed25519 public key.
    pub author: Vec<u8>,
    /// Position in the author's chain (1, 2, ...).
    pub seq: u64,
    /// Hybrid logical clock: 48 bits wall ms << 16 | counter. Strictly greater
    /// than the hlc of every causal dependency.
    pub hlc: u64,
    /// Ids of the DAG heads the author had seen when writing this op.
    pub deps: Vec<Vec<u8>>,
    /// The encoded op message (the plugin's `op-type`).
    pub payload: Vec<u8>,
}

impl Op {
    /// `hlc (8 bytes, big endian) ‖ author ‖ id`: the total order
    /// (hlc, author, id) as a byte string. Sorting by it gives every replica
    /// the same order, and including the unique id means two ops in the same
    /// millisecond by the same author never collide.
    pub fn order_key(&self) -> Vec<u8> {
        order_key(self.hlc, &self.author, &self.id)
    }

    /// Decodes the payload as the plugin's op message; `None` when it is not
    /// one (apply must then be a no-op, never a trap).
    pub fn decode<M: prost::Message + Default>(&self) -> Option<M> {
        M::decode(self.payload.as_slice()).ok()
    }
}

/// Builds the `(hlc, author, id)` order key; see [`Op::order_key`].
pub fn order_key(hlc: u64, author: &[u8], id: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + author.len() + id.len());
    k.extend_from_slice(&hlc.to_be_bytes());
    k.extend_from_slice(author);
    k.extend_from_slice(id);
    k
}

/// Splits an order key built by [`order_key`] back into (hlc, author, id).
/// `None` if it does not have the fixed width.
pub fn split_order_key(k: &[u8]) -> Option<(u64, &[u8], &[u8])> {
    if k.len() != 8 + AUTHOR_LEN + ID_LEN {
        return None;
    }
    let hlc = u64::from_be_bytes(k[..8].try_into().ok()?);
    Some((hlc, &k[8..8 + AUTHOR_LEN], &k[8 + AUTHOR_LEN..]))
}

/// Who asks `prepare` to build an op, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Context {
    /// The local node's 32-byte public key: the author the op will carry.
    pub author: Vec<u8>,
    /// A lower bound of the op's final HLC.
    pub hlc: u64,
}

/// What `prepare` builds for a command: the encoded op to sign, log and
/// apply, and the encoded reply message the caller gets once the op is
/// durable.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Command {
    pub op: Vec<u8>,
    pub reply: Vec<u8>,
}

impl Command {
    /// An op whose method answers with its reply message at all defaults
    /// (encoded as no bytes).
    pub fn op(op: Vec<u8>) -> Command {
        Command {
            op,
            reply: Vec::new(),
        }
    }
}

/// What a plugin implements. Every function is associated (no `self`):
/// all state lives in the host's key/value store, reached through [`state`].
pub trait StateMachine {
    /// Short name, e.g. `"counter"`; the CLI uses it for the command group.
    const NAME: &'static str;
    /// The plugin's own version (semver), shown by `plugin inspect`.
    const VERSION: &'static str;
    /// Schema version of the plugin's state layout: bump it when the key
    /// layout changes so a later release can migrate.
    const STATE_VERSION: u32 = 1;
    /// Encoded `google.protobuf.FileDescriptorSet` (with source info, so
    /// proto comments become CLI help): use [`descriptor_set!`].
    const DESCRIPTOR_SET: &'static [u8];
    /// Full name of the service whose methods are the commands and queries.
    const SERVICE: &'static str;
    /// Full name of the message every op payload decodes as.
    const OP_TYPE: &'static str;

    /// Validates a command against current (read-only) state and returns the
    /// encoded op to sign and log. `method` is the proto method name as
    /// written in the .proto (`"Put"`); the request is its encoded request
    /// message. Every check belongs here, never in `apply`.
    ///
    /// The caller gets the method's reply message with every field at its
    /// default; implement [`StateMachine::command`] instead to answer with
    /// something (one of the two is enough).
    fn prepare(_ctx: &Context, method: &str, _request: &[u8]) -> Result<Vec<u8>, String> {
        unknown_method(method)
    }

    /// [`StateMachine::prepare`] with a reply: the op and the encoded reply
    /// message the caller gets once the op is durable (see
    /// [`handle_command`]). The reply is computed here, on the writer, from
    /// the request and the state as this node sees it.
    fn command(ctx: &Context, method: &str, request: &[u8]) -> Result<Command, String> {
        Self::prepare(ctx, method, request).map(Command::op)
    }

    /// Rewrites state laid out by state version `from` into this build's
    /// layout ([`StateMachine::STATE_VERSION`]). It runs once per store, when
    /// the store switches to this build, with state writable; like `apply`
    /// it must be deterministic. `Err` refuses the switch and leaves state
    /// untouched. The default takes over only state of its own version.
    fn migrate(from: u32) -> Result<(), String> {
        if from == Self::STATE_VERSION {
            Ok(())
        } else {
            Err(alloc::format!(
                "{} {} cannot migrate state version {from} (it reads version {})",
                Self::NAME,
                Self::VERSION,
                Self::STATE_VERSION
            ))
        }
    }

    /// Applies one committed op. Must be total (a payload it cannot use is a
    /// no-op, never a panic) and deterministic, and concurrent ops must
    /// commute: the same op set in any causal order gives byte-identical
    /// state.
    fn apply(op: &Op);

    /// Answers a query (a method marked `NO_SIDE_EFFECTS`) from read-only
    /// state; returns the encoded reply message.
    fn query(method: &str, request: &[u8]) -> Result<Vec<u8>, String>;
}

/// The method's short name: hosts may pass `Put`, `pkg.Service/Put` or
/// `/pkg.Service/Put` (gRPC path style); plugins match on `Put`.
pub fn method_name(method: &str) -> &str {
    method.rsplit('/').next().unwrap_or(method)
}

/// Decodes `request` as `Req`, runs `f`, encodes its result: the whole
/// request/reply plumbing of one method.
///
/// ```text
/// match method_name(method) {
///     "Increment" => handle(request, |r: IncrementRequest| Ok(CounterOp { .. })),
///     other => unknown_method(other),
/// }
/// ```
pub fn handle<Req, Rep>(
    request: &[u8],
    f: impl FnOnce(Req) -> Result<Rep, String>,
) -> Result<Vec<u8>, String>
where
    Req: prost::Message + Default,
    Rep: prost::Message,
{
    let req = Req::decode(request).map_err(|e| alloc::format!("malformed request: {e}"))?;
    f(req).map(|rep| rep.encode_to_vec())
}

/// [`handle`] for [`StateMachine::command`]: decodes the request, runs `f`,
/// encodes the op and the reply it returns.
///
/// ```text
/// "Increment" => handle_command(request, |r: IncrementRequest| {
///     Ok((CounterOp { .. }, IncrementReply { value: now + r.by }))
/// }),
/// ```
pub fn handle_command<Req, O, Rep>(
    request: &[u8],
    f: impl FnOnce(Req) -> Result<(O, Rep), String>,
) -> Result<Command, String>
where
    Req: prost::Message + Default,
    O: prost::Message,
    Rep: prost::Message,
{
    let req = Req::decode(request).map_err(|e| alloc::format!("malformed request: {e}"))?;
    f(req).map(|(op, rep)| Command {
        op: op.encode_to_vec(),
        reply: rep.encode_to_vec(),
    })
}

/// The error for a method the plugin does not have.
pub fn unknown_method<T>(method: &str) -> Result<T, String> {
    Err(alloc::format!("unknown method `{method}`"))
}

/// Bridges wit-bindgen's `Guest` trait to [`StateMachine`]; named by
/// [`export_plugin!`], not by plugin code.
#[doc(hidden)]
pub struct Adapter<T>(PhantomData<T>);

impl<T: StateMachine> Adapter<T> {
    /// The op filter shared by the wasm export and [`testing`]: the host
    /// always passes 32-byte ids and authors, but a plugin must never trap on
    /// input, so anything else is dropped here once for all plugins.
    #[doc(hidden)]
    pub fn apply_checked(op: &Op) {
        if op.id.len() == ID_LEN && op.author.len() == AUTHOR_LEN {
            T::apply(op);
        }
    }

    #[doc(hidden)]
    pub fn prepare_checked(ctx: &Context, method: &str, request: &[u8]) -> Result<Command, String> {
        if ctx.author.len() != AUTHOR_LEN {
            return Err("context author must be a 32-byte key".to_string());
        }
        T::command(ctx, method_name(method), request)
    }

    #[doc(hidden)]
    pub fn migrate_checked(from: u32) -> Result<(), String> {
        T::migrate(from)
    }

    #[doc(hidden)]
    pub fn query_checked(method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        T::query(method_name(method), request)
    }
}

#[cfg(target_arch = "wasm32")]
impl<T: StateMachine> bindings::Guest for Adapter<T> {
    fn describe() -> bindings::lattice::plugin::types::Info {
        bindings::lattice::plugin::types::Info {
            name: T::NAME.to_string(),
            version: T::VERSION.to_string(),
            descriptor_set: T::DESCRIPTOR_SET.to_vec(),
            service: T::SERVICE.to_string(),
            op_type: T::OP_TYPE.to_string(),
            state_version: T::STATE_VERSION,
        }
    }

    fn prepare(
        ctx: bindings::lattice::plugin::types::Context,
        method: String,
        request: Vec<u8>,
    ) -> Result<bindings::lattice::plugin::types::Prepared, String> {
        let ctx = Context {
            author: ctx.author,
            hlc: ctx.hlc,
        };
        Self::prepare_checked(&ctx, &method, &request).map(|c| {
            bindings::lattice::plugin::types::Prepared {
                op: c.op,
                reply: c.reply,
            }
        })
    }

    fn migrate(from: u32) -> Result<(), String> {
        Self::migrate_checked(from)
    }

    fn apply(op: bindings::lattice::plugin::types::Op) {
        Self::apply_checked(&Op {
            id: op.id,
            author: op.author,
            seq: op.seq,
            hlc: op.hlc,
            deps: op.deps,
            payload: op.payload,
        })
    }

    fn query(method: String, request: Vec<u8>) -> Result<Vec<u8>, String> {
        Self::query_checked(&method, &request)
    }
}

/// Exports a [`StateMachine`] as the component's `describe`/`prepare`/
/// `apply`/`query`/`migrate`. Use once, at the crate root. On non-wasm targets it only
/// checks that the type implements the trait, so the crate still builds for
/// native unit tests.
#[macro_export]
macro_rules! export_plugin {
    ($ty:ty) => {
        const _: () = {
            #[allow(dead_code)]
            fn __lattice_assert_state_machine<T: $crate::StateMachine>() {}
            #[allow(dead_code)]
            fn __lattice_check() {
                __lattice_assert_state_machine::<$ty>()
            }
        };
        #[cfg(target_arch = "wasm32")]
        #[doc(hidden)]
        type __LatticePluginAdapter = $crate::Adapter<$ty>;
        #[cfg(target_arch = "wasm32")]
        $crate::bindings::__export_state_machine!(
            __LatticePluginAdapter with_types_in $crate::bindings
        );
    };
}

/// Includes the Rust structs that `lattice_plugin_sdk_build::compile`
/// generated for proto package `$package` (e.g. `"lattice.counter"`).
#[macro_export]
macro_rules! include_proto {
    ($package:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $package, ".rs"));
    };
}

/// The encoded FileDescriptorSet written by `lattice_plugin_sdk_build::compile`,
/// as a `&'static [u8]` for [`StateMachine::DESCRIPTOR_SET`].
#[macro_export]
macro_rules! descriptor_set {
    () => {
        include_bytes!(concat!(env!("OUT_DIR"), "/descriptor_set.bin"))
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, op};
    use alloc::vec;

    #[test]
    fn method_name_accepts_grpc_paths() {
        assert_eq!(method_name("Put"), "Put");
        assert_eq!(method_name("lattice.kv.Kv/Put"), "Put");
        assert_eq!(method_name("/lattice.kv.Kv/Put"), "Put");
    }

    #[test]
    fn order_key_sorts_by_hlc_then_author_then_id() {
        let k = |hlc, a, i| order_key(hlc, &testing::id(a), &testing::id(i));
        assert!(k(1, 9, 9) < k(2, 0, 0));
        assert!(k(2, 1, 9) < k(2, 2, 0));
        assert!(k(2, 2, 1) < k(2, 2, 2));
        let key = k(0x0102, 3, 4);
        assert_eq!(
            split_order_key(&key),
            Some((0x0102, &testing::id(3)[..], &testing::id(4)[..]))
        );
        assert_eq!(split_order_key(&key[1..]), None);
    }

    #[test]
    fn prefix_end_is_the_first_key_past_the_prefix() {
        assert_eq!(state::prefix_end(b"a/"), Some(b"a0".to_vec()));
        assert_eq!(state::prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(state::prefix_end(b"\xff\xff"), None);
    }

    #[test]
    fn iter_pages_through_more_than_one_chunk_both_ways() {
        testing::reset();
        let n = state::CHUNK * 2 + 7;
        for i in 0..n {
            state::set(&state::key(&[b"x/", &i.to_be_bytes()]), &[1]);
        }
        state::set(b"w", &[0]);
        state::set(b"y", &[0]);
        let fwd: Vec<_> = state::iter_prefix(b"x/").map(|(k, _)| k).collect();
        assert_eq!(fwd.len(), n as usize);
        assert!(fwd.windows(2).all(|w| w[0] < w[1]));
        let mut rev: Vec<_> = state::iter_prefix_rev(b"x/").map(|(k, _)| k).collect();
        rev.reverse();
        assert_eq!(fwd, rev);
    }

    #[test]
    fn causal_orders_respect_deps() {
        // 1 <- 2, 3 concurrent: 3 orders.
        let ops = [
            op(1, 1, 1, &[], vec![]),
            op(2, 1, 2, &[1], vec![]),
            op(3, 2, 1, &[], vec![]),
        ];
        let orders = testing::causal_orders(&ops);
        assert_eq!(orders.len(), 3);
        for o in orders {
            let p = |x| o.iter().position(|&i| i == x).unwrap();
            assert!(p(0) < p(1));
        }
    }

    #[test]
    #[should_panic(expected = "read-only")]
    fn writes_outside_apply_panic_like_the_host_traps() {
        struct W;
        impl StateMachine for W {
            const NAME: &'static str = "w";
            const VERSION: &'static str = "0";
            const DESCRIPTOR_SET: &'static [u8] = &[];
            const SERVICE: &'static str = "w.W";
            const OP_TYPE: &'static str = "w.Op";
            fn prepare(_: &Context, _: &str, _: &[u8]) -> Result<Vec<u8>, String> {
                state::set(b"k", b"v");
                Ok(vec![])
            }
            fn apply(_: &Op) {}
            fn query(_: &str, _: &[u8]) -> Result<Vec<u8>, String> {
                Ok(vec![])
            }
        }
        let _ = testing::prepare::<W>(&testing::ctx(1, 1), "X", &());
    }
}
