use super::*;
use lattice_plugin_sdk::testing::{self, commit, ctx, id, op};

fn put_op(k: &str, v: &str, supersedes: &[u8]) -> Vec<u8> {
    write_op(k, Some(v), supersedes)
}

fn write_op(k: &str, v: Option<&str>, supersedes: &[u8]) -> Vec<u8> {
    KvOp {
        writes: vec![Write {
            key: k.into(),
            value: v.unwrap_or("").as_bytes().to_vec(),
            delete: v.is_none(),
            supersedes: supersedes.iter().map(|n| id(*n)).collect(),
        }],
    }
    .encode_to_vec()
}

fn get(k: &str, mode: Mode) -> GetReply {
    testing::query::<Kv, GetReply>(
        "Get",
        &GetRequest {
            key: k.into(),
            mode: mode as i32,
        },
    )
    .unwrap()
}

fn head_ids(r: &GetReply) -> Vec<Vec<u8>> {
    r.heads.iter().map(|h| h.id.clone()).collect()
}

fn put(c: &lattice_plugin_sdk::Context, n: u8, deps: &[u8], k: &str, v: &str) {
    let req = PutRequest {
        key: k.into(),
        value: v.into(),
    };
    commit::<Kv>(c, n, deps, "Put", &req).unwrap();
}

/// The earlier implementation's divergence: the LWW winner (op 2) is
/// superseded by op 3 while the concurrent head op 1 remains. Every causal
/// order must give the same bytes, and the winner must come from the heads
/// left (op 1 at hlc 30 beats op 3 at hlc 25).
#[test]
fn superseding_the_winner_while_a_concurrent_head_remains_converges() {
    let ops = [
        op(1, 1, 30, &[], put_op("x", "a", &[])),
        op(2, 2, 20, &[], put_op("x", "b", &[])),
        op(3, 2, 25, &[2], put_op("x", "c", &[2])),
    ];
    testing::assert_converges::<Kv>(&Default::default(), &ops);
    let r = get("x", Mode::Lww);
    assert_eq!(head_ids(&r), vec![id(3), id(1)]);
    assert_eq!(r.value, b"a");
    assert!(r.found);
    assert_eq!(get("x", Mode::Fww).value, b"c");

    // Same shape, but the superseding write has the newer clock.
    let ops = [
        op(1, 1, 21, &[], put_op("x", "a", &[])),
        op(2, 2, 22, &[], put_op("x", "b", &[])),
        op(3, 3, 23, &[2], write_op("x", None, &[2])),
    ];
    testing::assert_converges::<Kv>(&Default::default(), &ops);
    let r = get("x", Mode::Lww);
    assert_eq!(head_ids(&r), vec![id(1), id(3)]);
    assert!(!r.found, "the newest head is a tombstone");
    assert!(get("x", Mode::All).found, "a concurrent live head remains");
    assert_eq!(get("x", Mode::Fww).value, b"a");
}

#[test]
fn supersedes_of_a_not_yet_applied_write_still_converge() {
    // A forged op superseding a write it has no causal dependency on: the
    // host may apply them in either order; the `s/` markers make both agree.
    let ops = [
        op(1, 1, 10, &[], put_op("k", "old", &[])),
        op(2, 2, 11, &[], put_op("k", "new", &[1])),
        op(3, 3, 12, &[], put_op("k", "other", &[])),
    ];
    testing::assert_converges::<Kv>(&Default::default(), &ops);
    assert_eq!(head_ids(&get("k", Mode::All)), vec![id(2), id(3)]);
    assert!(testing::orders_checked() >= 6);
}

#[test]
fn concurrent_puts_keep_all_heads_and_readers_choose() {
    testing::reset();
    let ops = [
        op(1, 1, 10, &[], put_op("k", "one", &[])),
        op(2, 2, 10, &[], put_op("k", "two", &[])),
    ];
    testing::assert_converges::<Kv>(&Default::default(), &ops);
    // Same hlc: the author breaks the tie.
    assert_eq!(get("k", Mode::Lww).value, b"two");
    assert_eq!(get("k", Mode::Fww).value, b"one");
    let all = get("k", Mode::All);
    assert!(all.found && all.winner.is_none() && all.value.is_empty());
    assert_eq!(all.heads.len(), 2);

    // A put by someone who has seen both merges them into one head.
    put(&ctx(3, 11), 3, &[1, 2], "k", "merged");
    let r = get("k", Mode::All);
    assert_eq!(head_ids(&r), vec![id(3)]);
    assert_eq!(get("k", Mode::Lww).value, b"merged");
}

#[test]
fn delete_writes_a_tombstone_and_history_keeps_everything() {
    testing::reset();
    let a = ctx(1, 10);
    put(&a, 1, &[], "k", "v1");
    put(&ctx(1, 11), 2, &[1], "k", "v2");
    let del = DeleteRequest { key: "k".into() };
    commit::<Kv>(&ctx(1, 12), 3, &[2], "Delete", &del).unwrap();
    let r = get("k", Mode::Lww);
    assert!(!r.found);
    assert!(r.winner.unwrap().deleted);
    assert_eq!(
        commit::<Kv>(&ctx(1, 13), 4, &[3], "Delete", &del).unwrap_err(),
        "key `k` not found"
    );

    let h: HistoryReply = testing::query::<Kv, _>(
        "History",
        &HistoryRequest {
            key: "k".into(),
            limit: 0,
        },
    )
    .unwrap();
    let summary: Vec<_> = h
        .versions
        .iter()
        .map(|v| (v.hlc, v.value.clone(), v.deleted, v.current))
        .collect();
    assert_eq!(
        summary,
        vec![
            (12, vec![], true, true),
            (11, b"v2".to_vec(), false, false),
            (10, b"v1".to_vec(), false, false),
        ]
    );
    let list: ListReply = testing::query::<Kv, _>("List", &ListRequest::default()).unwrap();
    assert!(list.entries.is_empty());
}

#[test]
fn batch_is_one_atomic_op() {
    testing::reset();
    put(&ctx(1, 10), 1, &[], "gone", "x");
    let batch = BatchRequest {
        puts: vec![
            PutRequest {
                key: "a".into(),
                value: b"1".to_vec(),
            },
            PutRequest {
                key: "b".into(),
                value: b"2".to_vec(),
            },
        ],
        deletes: vec!["gone".into()],
    };
    let op = commit::<Kv>(&ctx(1, 11), 2, &[1], "Batch", &batch).unwrap();
    assert_eq!(op.decode::<KvOp>().unwrap().writes.len(), 3);
    assert_eq!(get("a", Mode::Lww).value, b"1");
    assert_eq!(get("b", Mode::Lww).value, b"2");
    assert!(!get("gone", Mode::Lww).found);

    let mut dup = batch.clone();
    dup.deletes = vec!["a".into()];
    let err = testing::prepare::<Kv>(&ctx(1, 12), "Batch", &dup).unwrap_err();
    assert!(err.contains("twice"), "{err}");
    let err = testing::prepare::<Kv>(&ctx(1, 12), "Batch", &BatchRequest::default()).unwrap_err();
    assert_eq!(err, "nothing to write");
}

#[test]
fn bad_keys_are_refused_in_prepare_and_ignored_in_apply() {
    testing::reset();
    for k in ["", "a\0b"] {
        let req = PutRequest {
            key: k.into(),
            value: vec![],
        };
        assert!(testing::prepare::<Kv>(&ctx(1, 1), "Put", &req).is_err());
        testing::apply::<Kv>(&op(1, 1, 1, &[], put_op(k, "v", &[])));
    }
    testing::apply::<Kv>(&op(2, 1, 2, &[], b"\xff\xff not a KvOp".to_vec()));
    assert!(testing::snapshot().is_empty());
}

#[test]
fn list_pages_through_a_prefix_with_a_cursor() {
    testing::reset();
    let keys = ["a", "ab", "ab/1", "ab/2", "ab/3", "abc", "b"];
    for (i, k) in keys.iter().enumerate() {
        let n = i as u8 + 1;
        put(&ctx(1, 10 + u64::from(n)), n, &[], k, k);
    }
    let page = |after: &str| -> ListReply {
        testing::query::<Kv, _>(
            "List",
            &ListRequest {
                prefix: "ab".into(),
                after: after.into(),
                limit: 2,
                mode: Mode::Lww as i32,
            },
        )
        .unwrap()
    };
    let mut seen = Vec::new();
    let mut after = String::new();
    loop {
        let p = page(&after);
        seen.extend(p.entries.iter().map(|e| (e.key.clone(), e.value.clone())));
        if p.next.is_empty() {
            break;
        }
        after = p.next;
    }
    let expected: Vec<_> = ["ab", "ab/1", "ab/2", "ab/3", "abc"]
        .iter()
        .map(|k| (k.to_string(), k.as_bytes().to_vec()))
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn list_mode_all_shows_concurrent_heads() {
    testing::reset();
    testing::apply::<Kv>(&op(1, 1, 10, &[], put_op("k", "one", &[])));
    testing::apply::<Kv>(&op(2, 2, 11, &[], write_op("k", None, &[])));
    let lww: ListReply = testing::query::<Kv, _>("List", &ListRequest::default()).unwrap();
    assert!(lww.entries.is_empty(), "the LWW winner is a tombstone");
    let all: ListReply = testing::query::<Kv, _>(
        "List",
        &ListRequest {
            mode: Mode::All as i32,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(all.entries.len(), 1);
    assert_eq!(all.entries[0].value, b"one");
    assert_eq!(all.entries[0].heads.len(), 2);
}

/// A forged op too big to apply within the budget is a no-op before it
/// touches state (the same on every replica), and prepare never builds one.
#[test]
fn oversized_ops_are_no_ops_before_any_state_access() {
    testing::reset();
    let many = KvOp {
        writes: vec![Write {
            key: "k".into(),
            value: b"v".to_vec(),
            delete: false,
            supersedes: (0..=MAX_SUPERSEDES).map(|i| id((i % 250) as u8)).collect(),
        }],
    };
    testing::apply::<Kv>(&op(1, 1, 1, &[], many.encode_to_vec()));
    let wide = KvOp {
        writes: (0..=MAX_WRITES)
            .map(|i| Write {
                key: alloc::format!("k{i}"),
                value: b"v".to_vec(),
                delete: false,
                supersedes: vec![],
            })
            .collect(),
    };
    testing::apply::<Kv>(&op(2, 1, 2, &[], wide.encode_to_vec()));
    assert!(testing::snapshot().is_empty());
    let req = BatchRequest {
        puts: (0..=MAX_WRITES)
            .map(|i| PutRequest {
                key: alloc::format!("k{i}"),
                value: vec![],
            })
            .collect(),
        deletes: vec![],
    };
    assert!(testing::prepare::<Kv>(&ctx(1, 1), "Batch", &req).is_err());
}
