//! `log`: an append-only log ordered by (hlc, author, id).
//!
//! State is one key per entry, `e/{hlc}{author}{id}` → the entry's
//! [`LogOp`]. The key is the order itself, so `Tail` is one reverse scan and
//! `Range` one forward scan; it carries the unique op id, so two appends by
//! one author in the same millisecond (the earlier Lattice keyed by
//! ms + author and lost one of them) are two keys. Applying an op only adds
//! its own key: any order of the same ops gives the same state.
#![no_std]
extern crate alloc;

use lattice_plugin_sdk::prelude::*;
use lattice_plugin_sdk::split_order_key;

lattice_plugin_sdk::include_proto!("lattice.log");
use log_op::Body;

const ENTRIES: &[u8] = b"e/";
const MAX_LIMIT: u32 = 1000;

pub struct Log;

impl StateMachine for Log {
    const NAME: &'static str = "log";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTOR_SET: &'static [u8] = lattice_plugin_sdk::descriptor_set!();
    const SERVICE: &'static str = "lattice.log.Log";
    const OP_TYPE: &'static str = "lattice.log.LogOp";

    fn prepare(_ctx: &Context, method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        match method {
            "Append" => handle(request, |r: AppendRequest| {
                let body = match (r.text.is_empty(), r.data.is_empty()) {
                    (false, true) => Body::Text(r.text),
                    (true, false) => Body::Data(r.data),
                    (true, true) => return Err("nothing to append: give text or data".into()),
                    (false, false) => return Err("give text or data, not both".into()),
                };
                Ok(LogOp { body: Some(body) })
            }),
            other => unknown_method(other),
        }
    }

    fn apply(op: &Op) {
        if let Some(entry @ LogOp { body: Some(_) }) = op.decode::<LogOp>() {
            state::set_msg(&state::key(&[ENTRIES, &op.order_key()]), &entry);
        }
    }

    fn query(method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        match method {
            "Tail" => handle(request, |r: TailRequest| {
                let n = if r.n == 0 { 10 } else { r.n.min(MAX_LIMIT) };
                let mut entries: Vec<Entry> = state::iter_prefix_rev(ENTRIES)
                    .filter_map(|(k, v)| entry(&k, &v))
                    .take(n as usize)
                    .collect();
                entries.reverse();
                Ok(TailReply { entries })
            }),
            "Range" => handle(request, |r: RangeRequest| Ok(range(&r))),
            other => unknown_method(other),
        }
    }
}

lattice_plugin_sdk::export_plugin!(Log);

fn entry(k: &[u8], v: &[u8]) -> Option<Entry> {
    let (hlc, author, id) = split_order_key(k.get(ENTRIES.len()..)?)?;
    let body = LogOp::decode(v).ok()?.body?;
    let (text, data) = match body {
        Body::Text(t) => (t, Vec::new()),
        Body::Data(d) => (String::new(), d),
    };
    Some(Entry {
        id: id.to_vec(),
        author: author.to_vec(),
        hlc,
        text,
        data,
    })
}

fn range(r: &RangeRequest) -> RangeReply {
    let limit = if r.limit == 0 {
        100
    } else {
        r.limit.min(MAX_LIMIT)
    } as usize;
    let from = state::key(&[ENTRIES, &r.from_hlc.to_be_bytes()]);
    // The cursor is the key of the first entry not yet returned.
    let start = if r.cursor.is_empty() {
        from
    } else {
        state::key(&[ENTRIES, &r.cursor]).max(from)
    };
    // `to_hlc` is inclusive: end before the first key of the next clock value.
    let end = match r.to_hlc {
        0 | u64::MAX => state::prefix_end(ENTRIES),
        to => Some(state::key(&[ENTRIES, &(to + 1).to_be_bytes()])),
    };
    let mut reply = RangeReply::default();
    for (k, v) in state::iter(&start, end.as_deref()) {
        if reply.entries.len() == limit {
            reply.cursor = k[ENTRIES.len()..].to_vec();
            break;
        }
        reply.entries.extend(entry(&k, &v));
    }
    reply
}

#[cfg(test)]
mod tests {
    use super::*;
    use lattice_plugin_sdk::testing::{self, ctx, id, op};

    fn text_op(t: &str) -> Vec<u8> {
        LogOp {
            body: Some(Body::Text(t.into())),
        }
        .encode_to_vec()
    }

    fn texts(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.text.as_str()).collect()
    }

    fn tail(n: u32) -> Vec<Entry> {
        testing::query::<Log, TailReply>("Tail", &TailRequest { n })
            .unwrap()
            .entries
    }

    /// The earlier implementation keyed entries by ms + author: the second
    /// append of a millisecond overwrote the first.
    #[test]
    fn two_appends_by_one_author_in_one_millisecond_are_both_kept() {
        testing::reset();
        let hlc = 1_700_000_000_000u64 << 16;
        testing::apply::<Log>(&op(1, 7, hlc, &[], text_op("first")));
        testing::apply::<Log>(&op(2, 7, hlc, &[1], text_op("second")));
        let all = tail(10);
        assert_eq!(all.len(), 2);
        assert_eq!(texts(&all), ["first", "second"]);
        assert_eq!(all[1].id, id(2));
    }

    #[test]
    fn order_is_hlc_then_author_then_id_in_every_delivery_order() {
        let ops = [
            op(9, 2, 20, &[], text_op("b@20")),
            op(3, 1, 20, &[], text_op("a@20")),
            op(4, 3, 10, &[], text_op("c@10")),
            op(5, 1, 30, &[3], text_op("a@30")),
        ];
        testing::assert_converges::<Log>(&Default::default(), &ops);
        assert_eq!(texts(&tail(0)), ["c@10", "a@20", "b@20", "a@30"]);
        assert_eq!(texts(&tail(2)), ["b@20", "a@30"]);
    }

    #[test]
    fn range_is_inclusive_and_pages_with_a_cursor() {
        testing::reset();
        for (n, hlc) in [(1u8, 5u64), (2, 10), (3, 10), (4, 15), (5, 20)] {
            testing::apply::<Log>(&op(n, n, hlc, &[], text_op(&format!("{n}"))));
        }
        let q = |from_hlc, to_hlc, limit, cursor: Vec<u8>| -> RangeReply {
            let r = RangeRequest {
                from_hlc,
                to_hlc,
                limit,
                cursor,
            };
            testing::query::<Log, _>("Range", &r).unwrap()
        };
        assert_eq!(texts(&q(10, 15, 0, vec![]).entries), ["2", "3", "4"]);
        assert_eq!(
            texts(&q(0, 0, 0, vec![]).entries),
            ["1", "2", "3", "4", "5"]
        );
        let first = q(10, 0, 2, vec![]);
        assert_eq!(texts(&first.entries), ["2", "3"]);
        let rest = q(10, 0, 2, first.cursor);
        assert_eq!(texts(&rest.entries), ["4", "5"]);
        assert!(rest.cursor.is_empty());
    }

    #[test]
    fn append_takes_text_or_data() {
        testing::reset();
        let c = ctx(1, 100);
        let bin = AppendRequest {
            text: String::new(),
            data: vec![0, 1, 2],
        };
        testing::commit::<Log>(&c, 1, &[], "Append", &bin).unwrap();
        assert_eq!(tail(1)[0].data, [0, 1, 2]);
        assert!(testing::prepare::<Log>(&c, "Append", &AppendRequest::default()).is_err());
        let both = AppendRequest {
            text: "t".into(),
            data: vec![1],
        };
        assert!(testing::prepare::<Log>(&c, "Append", &both).is_err());
        testing::apply::<Log>(&op(2, 1, 101, &[], LogOp::default().encode_to_vec()));
        assert_eq!(tail(10).len(), 1, "an empty op is a no-op");
    }
}
