//! A deliberately malicious plugin. The host's tests (host/tests/runtime_*)
//! load it to prove that each kind of misbehaviour ends in a typed error,
//! that the host survives, and that a failed apply leaves no state behind.
#![no_std]
extern crate alloc;

use core::hint::black_box;

use lattice_plugin_sdk::prelude::*;

lattice_plugin_sdk::include_proto!("lattice.testing.evil");
use evil_op::Kind;

pub struct Evil;

/// Never returns, and cannot be optimized into a trap or away.
fn spin() -> ! {
    let mut i: u64 = 0;
    loop {
        i = black_box(i.wrapping_add(1));
    }
}

/// Grab memory in 4 MiB chunks. Only one byte per chunk is written: memory
/// grows on allocation, and touching every byte would burn the fuel budget
/// before the memory limit is reached.
fn hog(bytes: u64) -> usize {
    let mut held: Vec<Vec<u8>> = Vec::new();
    let mut total: u64 = 0;
    while total < bytes {
        let mut chunk: Vec<u8> = Vec::with_capacity(4 << 20);
        chunk.push(0xA5);
        total += chunk.capacity() as u64;
        held.push(black_box(chunk));
    }
    black_box(held.len())
}

/// Deep non-tail recursion with small frames: exhausts the wasm stack
/// (black_box on the result defeats tail-call and accumulator rewrites).
fn recurse(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return depth;
    }
    black_box(recurse(depth + 1)).wrapping_mul(3)
}

impl StateMachine for Evil {
    const NAME: &'static str = "evil";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTOR_SET: &'static [u8] = lattice_plugin_sdk::descriptor_set!();
    const SERVICE: &'static str = "lattice.testing.evil.Evil";
    const OP_TYPE: &'static str = "lattice.testing.evil.EvilOp";

    fn prepare(_ctx: &Context, method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        match method {
            "Op" => Ok(request.to_vec()),
            "LoopInPrepare" => spin(),
            other => unknown_method(other),
        }
    }

    fn command(ctx: &Context, method: &str, request: &[u8]) -> Result<Command, String> {
        match method {
            // 0xff is no valid protobuf tag: the host must refuse the
            // command before its op is logged.
            "BadReply" => Ok(Command {
                op: EvilOp::default().encode_to_vec(),
                reply: vec![0xff, 0xff, 0xff],
            }),
            _ => Self::prepare(ctx, method, request).map(Command::op),
        }
    }

    /// Migrations chosen by the version asked for: 1 (its own) is a no-op;
    /// 1000 rewrites every `m/` row (value ‖ 0x01) as a real migration
    /// would; 1001 writes and then refuses (the write must be discarded);
    /// 1002 never finishes; anything else is refused.
    fn migrate(from: u32) -> Result<(), String> {
        match from {
            1 => Ok(()),
            1000 => {
                let mut start = b"m/".to_vec();
                loop {
                    let page = state::scan(&start, Some(b"m0"), 256);
                    let Some((last, _)) = page.last() else {
                        return Ok(());
                    };
                    start = last.clone();
                    start.push(0);
                    for (k, mut v) in page {
                        v.push(1);
                        state::set(&k, &v);
                    }
                }
            }
            1001 => {
                state::set(b"migrated", b"half");
                Err("evil: refuses after writing".to_string())
            }
            1002 => spin(),
            v => Err(format!("evil cannot migrate state version {v}")),
        }
    }

    fn apply(op: &Op) {
        let Some(op) = op.decode::<EvilOp>() else {
            return;
        };
        match op.kind() {
            Kind::Put => state::set(&op.key, &op.value),
            Kind::Loop => spin(),
            Kind::PanicAfterWrites => {
                for i in 0..op.count {
                    let mut k = op.key.clone();
                    k.extend_from_slice(&i.to_be_bytes());
                    state::set(&k, &op.value);
                }
                panic!("evil: panic after {} writes", op.count);
            }
            Kind::MemoryBomb => {
                hog(u64::MAX);
            }
            Kind::ScanAbuse => {
                for _ in 0..op.count {
                    black_box(state::scan(&[], None, u32::MAX));
                }
            }
            Kind::HugeKey => state::set(&vec![7u8; op.count as usize], b"v"),
            Kind::HugeValue => state::set(&op.key, &vec![7u8; op.count as usize]),
            Kind::Remove => state::remove(&op.key),
            Kind::StackOverflow => {
                black_box(recurse(0));
            }
            Kind::WriteFlood => {
                let value = vec![1u8; 64 << 10];
                for i in 0..op.count {
                    state::set(&i.to_be_bytes(), &value);
                }
            }
            Kind::Copy => {
                if let Some(v) = state::get(&op.key) {
                    state::set(&op.value, &v);
                }
            }
        }
    }

    fn query(method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        match method {
            "Get" => handle(request, |r: Key| {
                Ok(match state::get(&r.key) {
                    Some(value) => Value { found: true, value },
                    None => Value::default(),
                })
            }),
            "Scan" => handle(request, |r: ScanRequest| {
                let mut last = Vec::new();
                for _ in 0..r.calls.max(1) {
                    last = if r.rev {
                        state::scan_rev(&r.start, None, r.limit)
                    } else {
                        state::scan(&r.start, None, r.limit)
                    };
                }
                Ok(ScanReply {
                    rows: last.len() as u32,
                    keys: last.into_iter().map(|(k, _)| k).collect(),
                })
            }),
            "Loop" => spin(),
            "Bomb" => handle(request, |r: Size| {
                hog(r.bytes);
                Ok(Empty {})
            }),
            "HugeReply" => handle(request, |r: Size| {
                Ok(Value {
                    found: true,
                    value: vec![0x5Au8; r.bytes as usize],
                })
            }),
            "WriteInQuery" => handle(request, |r: Key| {
                state::set(&r.key, b"sneaky");
                Ok(Empty {})
            }),
            "Reject" => Err("evil says no".to_string()),
            other => unknown_method(other),
        }
    }
}

export_plugin!(Evil);
