//! `kv`: a multi-value register per key (the root store's plugin too).
//!
//! Each write names the heads of its key that the writer had seen
//! (`supersedes`); those stop being heads and the write becomes one.
//! Concurrent writes therefore all stay heads, and a reader picks a winner
//! at read time (LWW, FWW or all). The winner is never materialized: the
//! earlier Lattice kept a "current value" that went stale when the winning
//! head was superseded while a concurrent head remained, and replicas
//! diverged. Here state is only sets, and every set is order-independent:
//!
//! | key                         | value                    | meaning                    |
//! |-----------------------------|--------------------------|----------------------------|
//! | `v/{key}\0{hlc,author,id}`  | [`StoredVersion`]        | every write ever (history) |
//! | `h/{key}\0{id}`             | order key (hlc,author,id)| current heads              |
//! | `s/{key}\0{id}`             | empty                    | superseded writes          |
//!
//! heads = versions − superseded. The `s/` markers make that hold even if a
//! (forged) op supersedes a write the replica has not applied yet.
//! Keys never contain NUL, so `{key}\0` delimits a key's range exactly.
#![no_std]
extern crate alloc;

use lattice_plugin_sdk::prelude::*;
use lattice_plugin_sdk::{ID_LEN, split_order_key};

lattice_plugin_sdk::include_proto!("lattice.kv");

const MAX_KEY_LEN: usize = 1024;
const DEFAULT_LIMIT: u32 = 100;
const MAX_LIMIT: u32 = 1000;
/// Writes in one op, and superseded heads named by one op. `apply` checks
/// both before touching state, so an oversized (forged) op is a no-op on
/// every replica instead of exhausting its budget mid-way (which would halt
/// the store wherever it happened); `prepare` refuses to build one.
const MAX_WRITES: usize = 1000;
const MAX_SUPERSEDES: usize = 4096;

pub struct Kv;

/// A version's payload in state; who/when/which op is in its key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredVersion {
    #[prost(bytes = "vec", tag = "1")]
    pub value: Vec<u8>,
    #[prost(bool, tag = "2")]
    pub deleted: bool,
}

impl StateMachine for Kv {
    const NAME: &'static str = "kv";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTOR_SET: &'static [u8] = lattice_plugin_sdk::descriptor_set!();
    const SERVICE: &'static str = "lattice.kv.Kv";
    const OP_TYPE: &'static str = "lattice.kv.KvOp";

    fn prepare(_ctx: &Context, method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        match method {
            "Put" => handle(request, |r: PutRequest| {
                writes(&[(r.key.as_str(), Some(r.value))])
            }),
            "Delete" => handle(request, |r: DeleteRequest| {
                writes(&[(r.key.as_str(), None)])
            }),
            "Batch" => handle(request, |r: BatchRequest| {
                let mut ws: Vec<(&str, Option<Vec<u8>>)> = Vec::new();
                for p in &r.puts {
                    ws.push((&p.key, Some(p.value.clone())));
                }
                for d in &r.deletes {
                    ws.push((d, None));
                }
                writes(&ws)
            }),
            other => unknown_method(other),
        }
    }

    fn apply(op: &Op) {
        let Some(kv_op) = op.decode::<KvOp>() else {
            return;
        };
        let supersedes: usize = kv_op.writes.iter().map(|w| w.supersedes.len()).sum();
        if kv_op.writes.len() > MAX_WRITES || supersedes > MAX_SUPERSEDES {
            return;
        }
        let order = op.order_key();
        for w in kv_op.writes {
            if !valid_key(&w.key) {
                continue;
            }
            let k = w.key.as_bytes();
            let version = StoredVersion {
                value: if w.delete { Vec::new() } else { w.value },
                deleted: w.delete,
            };
            state::set_msg(&key(b"v/", k, &order), &version);
            for s in &w.supersedes {
                if s.len() == ID_LEN {
                    state::set(&key(b"s/", k, s), &[]);
                    state::remove(&key(b"h/", k, s));
                }
            }
            if !state::contains(&key(b"s/", k, &op.id)) {
                state::set(&key(b"h/", k, &op.id), &order);
            }
        }
    }

    fn query(method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        match method {
            "Get" => handle(request, |r: GetRequest| Ok(get(&r.key, r.mode()))),
            "List" => handle(request, |r: ListRequest| Ok(list(&r))),
            "History" => handle(request, |r: HistoryRequest| Ok(history(&r))),
            other => unknown_method(other),
        }
    }
}

lattice_plugin_sdk::export_plugin!(Kv);

/// `{prefix}{key}\0{suffix}`.
fn key(prefix: &[u8], k: &[u8], suffix: &[u8]) -> Vec<u8> {
    state::key(&[prefix, k, b"\0", suffix])
}

fn valid_key(k: &str) -> bool {
    !k.is_empty() && k.len() <= MAX_KEY_LEN && !k.contains('\0')
}

fn check_key(k: &str) -> Result<(), String> {
    if k.is_empty() {
        Err("the key is empty".into())
    } else if k.len() > MAX_KEY_LEN {
        Err(format!("the key is longer than {MAX_KEY_LEN} bytes"))
    } else if k.contains('\0') {
        Err("the key contains a NUL character".into())
    } else {
        Ok(())
    }
}

fn limit(requested: u32) -> usize {
    let n = match requested {
        0 => DEFAULT_LIMIT,
        n => n.min(MAX_LIMIT),
    };
    n as usize
}

/// Builds the op for puts (`Some(value)`) and deletes (`None`): each write
/// supersedes exactly the key's heads this replica has applied, all of
/// which are causal dependencies of the op being built.
fn writes(ws: &[(&str, Option<Vec<u8>>)]) -> Result<KvOp, String> {
    if ws.is_empty() {
        return Err("nothing to write".into());
    }
    if ws.len() > MAX_WRITES {
        return Err(format!("at most {MAX_WRITES} writes per op"));
    }
    let mut superseded = 0usize;
    let mut out = KvOp::default();
    for (i, (k, value)) in ws.iter().enumerate() {
        check_key(k)?;
        if ws[..i].iter().any(|(other, _)| other == k) {
            return Err(format!("key `{k}` is written twice"));
        }
        let current = heads(k);
        if value.is_none() && !current.iter().any(|h| !h.deleted) {
            return Err(format!("key `{k}` not found"));
        }
        superseded += current.len();
        if superseded > MAX_SUPERSEDES {
            return Err(format!(
                "the op would supersede more than {MAX_SUPERSEDES} concurrent heads; write fewer keys at once"
            ));
        }
        out.writes.push(Write {
            key: (*k).to_owned(),
            value: value.clone().unwrap_or_default(),
            delete: value.is_none(),
            supersedes: current.into_iter().map(|h| h.id).collect(),
        });
    }
    Ok(out)
}

/// A key's current heads, oldest first by (hlc, author, id).
fn heads(k: &str) -> Vec<Head> {
    let mut orders: Vec<Vec<u8>> = state::iter_prefix(&key(b"h/", k.as_bytes(), b""))
        .map(|(_, order)| order)
        .collect();
    orders.sort();
    orders
        .iter()
        .filter_map(|order| {
            let (hlc, author, id) = split_order_key(order)?;
            let v: StoredVersion = state::get_msg(&key(b"v/", k.as_bytes(), order))?;
            Some(Head {
                id: id.to_vec(),
                author: author.to_vec(),
                hlc,
                value: v.value,
                deleted: v.deleted,
            })
        })
        .collect()
}

/// The reader's winner among `heads` (sorted oldest first).
fn winner(heads: &[Head], mode: Mode) -> Option<&Head> {
    match mode {
        Mode::Lww => heads.last(),
        Mode::Fww => heads.first(),
        Mode::All => None,
    }
}

fn get(k: &str, mode: Mode) -> GetReply {
    let heads = heads(k);
    let winner = winner(&heads, mode).cloned();
    let found = match (&winner, mode) {
        (_, Mode::All) => heads.iter().any(|h| !h.deleted),
        (Some(w), _) => !w.deleted,
        (None, _) => false,
    };
    GetReply {
        found,
        value: winner.as_ref().map(|w| w.value.clone()).unwrap_or_default(),
        winner,
        heads,
    }
}

fn list(r: &ListRequest) -> ListReply {
    let mode = r.mode();
    let limit = limit(r.limit);
    let prefix = state::key(&[b"h/", r.prefix.as_bytes()]);
    let end = state::prefix_end(&prefix);
    // `{after}\x01` is past every `h/{after}\0...` entry and before any
    // longer key that starts with `after`.
    let resume = state::key(&[b"h/", r.after.as_bytes(), b"\x01"]);
    let start = if !r.after.is_empty() && resume > prefix {
        resume
    } else {
        prefix
    };
    let mut reply = ListReply::default();
    let mut last: Option<Vec<u8>> = None;
    for (hk, _) in state::iter(&start, end.as_deref()) {
        // `h/{key}\0{id}`: the key is what lies between.
        let Some(k) = hk.get(2..hk.len().saturating_sub(1 + ID_LEN)) else {
            continue;
        };
        if last.as_deref() == Some(k) {
            continue;
        }
        if reply.entries.len() == limit {
            // Another key exists past a full page.
            reply.next = reply
                .entries
                .last()
                .map(|e| e.key.clone())
                .unwrap_or_default();
            break;
        }
        last = Some(k.to_vec());
        let Ok(k) = core::str::from_utf8(k) else {
            continue;
        };
        let heads = heads(k);
        let shown = if mode == Mode::All { Mode::Lww } else { mode };
        let live = match winner(&heads, shown) {
            Some(w) if !w.deleted => Some(w.value.clone()),
            _ if mode == Mode::All => heads
                .iter()
                .rev()
                .find(|h| !h.deleted)
                .map(|h| h.value.clone()),
            _ => None,
        };
        if let Some(value) = live {
            reply.entries.push(Entry {
                key: k.to_owned(),
                value,
                heads: if mode == Mode::All { heads } else { Vec::new() },
            });
        }
    }
    reply
}

fn history(r: &HistoryRequest) -> HistoryReply {
    let k = r.key.as_bytes();
    let versions = state::iter_prefix_rev(&key(b"v/", k, b""))
        .take(limit(r.limit))
        .filter_map(|(vk, v)| {
            let order = vk.get(vk.len().checked_sub(8 + 2 * ID_LEN)?..)?;
            let (hlc, author, id) = split_order_key(order)?;
            let v = StoredVersion::decode(v.as_slice()).ok()?;
            Some(Version {
                id: id.to_vec(),
                author: author.to_vec(),
                hlc,
                value: v.value,
                deleted: v.deleted,
                current: state::contains(&key(b"h/", k, id)),
            })
        })
        .collect();
    HistoryReply { versions }
}

#[cfg(test)]
mod tests;
