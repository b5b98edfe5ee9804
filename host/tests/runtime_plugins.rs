//! Every method of the shipped plugins (kv, log, chat) and the example
//! counter, through real wasm and redb: commands go prepare → op → apply,
//! queries read the result. Requests and replies are built with
//! prost-reflect from the plugin's own descriptors, as the CLI does.

#[path = "runtime_common/mod.rs"]
mod common;

use std::sync::Arc;

use common::*;
use lattice_host::runtime::{ApplyOutcome, CallError, Op, Plugin, builtin};
use prost_reflect::{DynamicMessage, Value};

/// A single replica driving one plugin: each command is prepared on the
/// current state, turned into an op by `author`, and applied.
struct Node {
    db: Db,
    p: Arc<Plugin>,
    hlc: u64,
    seq: [u64; 8],
    last: Vec<Vec<u8>>,
}

impl Node {
    fn new(wasm: &[u8]) -> Self {
        Node {
            db: db(),
            p: load(wasm),
            hlc: 1_700_000_000_000 << 16,
            seq: [0; 8],
            last: Vec::new(),
        }
    }

    /// Run command `method` as `author`; returns the op applied.
    fn cmd(&mut self, author: u8, method: &str, fields: &[(&str, Value)]) -> Result<Op, CallError> {
        self.hlc += 1;
        let r = req(&self.p, method, fields);
        let payload = prepare(
            &self.db,
            &self.p,
            &STORE,
            &ctx(author, self.hlc),
            method,
            &r,
        )?;
        self.seq[author as usize] += 1;
        let o = op(
            author,
            self.seq[author as usize],
            self.hlc,
            std::mem::take(&mut self.last),
            payload,
        );
        let out = apply(&self.db, &self.p, &STORE, &o);
        assert!(
            matches!(out, ApplyOutcome::Applied { .. }),
            "{method}: {out:?}"
        );
        self.last = vec![o.id.clone()];
        Ok(o)
    }

    fn ok(&mut self, author: u8, method: &str, fields: &[(&str, Value)]) -> Op {
        self.cmd(author, method, fields)
            .unwrap_or_else(|e| panic!("{method}: {e}"))
    }

    fn ask(&self, method: &str, fields: &[(&str, Value)]) -> DynamicMessage {
        ask(&self.db, &self.p, &STORE, method, fields)
    }
}

fn list_len(m: &DynamicMessage, name: &str) -> usize {
    as_list(&field(m, name)).len()
}

fn bytes_of(m: &DynamicMessage, name: &str) -> Vec<u8> {
    field(m, name).as_bytes().expect("bytes field").to_vec()
}

fn str_of(m: &DynamicMessage, name: &str) -> String {
    field(m, name).as_str().expect("string field").to_string()
}

// ---------------------------------------------------------------- kv

#[test]
fn kv_put_get_delete_batch_list_history() {
    let mut n = Node::new(builtin::KV);
    let info = n.p.info();
    assert_eq!(info.name, "kv");
    for q in ["Get", "List", "History"] {
        assert!(info.method(q).unwrap().is_query);
    }
    for c in ["Put", "Delete", "Batch"] {
        assert!(!info.method(c).unwrap().is_query);
    }

    n.ok(
        1,
        "Put",
        &[("key", text("color")), ("value", bytes(b"red"))],
    );
    let g = n.ask("Get", &[("key", text("color"))]);
    assert_eq!(field(&g, "found").as_bool(), Some(true));
    assert_eq!(bytes_of(&g, "value"), b"red");
    assert_eq!(list_len(&g, "heads"), 1);
    assert_eq!(bytes_of(&as_msg(&field(&g, "winner")), "author"), author(1));

    n.ok(
        2,
        "Put",
        &[("key", text("color")), ("value", bytes(b"blue"))],
    );
    let g = n.ask("Get", &[("key", text("color"))]);
    assert_eq!(bytes_of(&g, "value"), b"blue");
    assert_eq!(
        list_len(&g, "heads"),
        1,
        "the second put superseded the first"
    );

    n.ok(1, "Delete", &[("key", text("color"))]);
    let g = n.ask("Get", &[("key", text("color"))]);
    assert_eq!(field(&g, "found").as_bool(), Some(false));

    let pool = &n.p.info().pool;
    let put_desc = pool.get_message_by_name("lattice.kv.PutRequest").unwrap();
    let mk = |k: &str, v: &[u8]| {
        Value::Message(decode(
            &put_desc,
            &encode(&put_desc, &[("key", text(k)), ("value", bytes(v))]),
        ))
    };
    n.ok(1, "Put", &[("key", text("tmp")), ("value", bytes(b"x"))]);
    n.ok(
        1,
        "Batch",
        &[
            (
                "puts",
                Value::List(vec![
                    mk("fruit/apple", b"1"),
                    mk("fruit/pear", b"2"),
                    mk("veg/leek", b"3"),
                ]),
            ),
            ("deletes", Value::List(vec![text("tmp")])),
        ],
    );
    let g = n.ask("Get", &[("key", text("tmp"))]);
    assert_eq!(
        field(&g, "found").as_bool(),
        Some(false),
        "the batch deleted tmp"
    );
    let l = n.ask("List", &[("prefix", text("fruit/"))]);
    let keys: Vec<String> = as_list(&field(&l, "entries"))
        .iter()
        .map(|e| str_of(&as_msg(e), "key"))
        .collect();
    assert_eq!(keys, ["fruit/apple", "fruit/pear"]);
    // Pagination.
    let page1 = n.ask("List", &[("limit", Value::U32(2))]);
    assert_eq!(list_len(&page1, "entries"), 2);
    let next = str_of(&page1, "next");
    assert!(!next.is_empty());
    let page2 = n.ask("List", &[("limit", Value::U32(2)), ("after", text(&next))]);
    let keys: Vec<String> = as_list(&field(&page2, "entries"))
        .iter()
        .map(|e| str_of(&as_msg(e), "key"))
        .collect();
    assert_eq!(keys, ["veg/leek"]);
    assert_eq!(str_of(&page2, "next"), "");

    // History of color: delete (tombstone) newest, then blue, then red.
    let h = n.ask("History", &[("key", text("color"))]);
    let versions: Vec<DynamicMessage> =
        as_list(&field(&h, "versions")).iter().map(as_msg).collect();
    assert!(versions.len() >= 3, "{h:?}");
    assert_eq!(bytes_of(&versions[versions.len() - 1], "value"), b"red");
    assert_eq!(bytes_of(&versions[versions.len() - 2], "value"), b"blue");
    assert_eq!(field(&versions[0], "deleted").as_bool(), Some(true));

    // Validation happens in prepare.
    let err = n
        .cmd(1, "Put", &[("key", text("")), ("value", bytes(b"x"))])
        .unwrap_err();
    assert!(matches!(err, CallError::Rejected(_)), "{err:?}");
}

#[test]
fn kv_concurrent_puts_keep_both_heads_and_modes_pick() {
    let p = load(builtin::KV);
    let db = db();
    let put = |v: &[u8], a: u8, hlc: u64| {
        let r = req(&p, "Put", &[("key", text("k")), ("value", bytes(v))]);
        op(
            a,
            1,
            hlc,
            vec![],
            prepare(&db, &p, &STORE, &ctx(a, hlc), "Put", &r).unwrap(),
        )
    };
    // Both prepared on the empty state: concurrent.
    let (x, y) = (put(b"early", 1, 100), put(b"late", 2, 200));
    apply(&db, &p, &STORE, &y);
    apply(&db, &p, &STORE, &x);
    let get = |mode: i32| {
        ask(
            &db,
            &p,
            &STORE,
            "Get",
            &[("key", text("k")), ("mode", Value::EnumNumber(mode))],
        )
    };
    let lww = get(0);
    assert_eq!(bytes_of(&lww, "value"), b"late");
    assert_eq!(list_len(&lww, "heads"), 2);
    assert_eq!(bytes_of(&get(1), "value"), b"early");
    let all = get(2);
    assert_eq!(field(&all, "found").as_bool(), Some(true));
    assert_eq!(list_len(&all, "heads"), 2);
}

// ---------------------------------------------------------------- log

#[test]
fn log_append_tail_range() {
    let mut n = Node::new(builtin::LOG);
    let mut hlcs = Vec::new();
    for i in 0..5 {
        let o = n.ok(
            1 + (i % 2) as u8,
            "Append",
            &[("text", text(&format!("line {i}")))],
        );
        hlcs.push(o.hlc);
    }
    n.ok(3, "Append", &[("data", bytes(&[0, 1, 2]))]);

    let t = n.ask("Tail", &[("n", Value::U32(3))]);
    let entries: Vec<DynamicMessage> = as_list(&field(&t, "entries")).iter().map(as_msg).collect();
    assert_eq!(entries.len(), 3);
    assert_eq!(str_of(&entries[0], "text"), "line 3");
    assert_eq!(str_of(&entries[1], "text"), "line 4");
    assert_eq!(bytes_of(&entries[2], "data"), [0, 1, 2]);
    assert_eq!(bytes_of(&entries[2], "author"), author(3));

    let r = n.ask(
        "Range",
        &[
            ("from_hlc", Value::U64(hlcs[1])),
            ("to_hlc", Value::U64(hlcs[3])),
        ],
    );
    let texts: Vec<String> = as_list(&field(&r, "entries"))
        .iter()
        .map(|e| str_of(&as_msg(e), "text"))
        .collect();
    assert_eq!(texts, ["line 1", "line 2", "line 3"]);

    // Paging through a range with the cursor visits everything once.
    let mut seen = Vec::new();
    let mut cursor = Vec::new();
    loop {
        let r = n.ask(
            "Range",
            &[("limit", Value::U32(2)), ("cursor", bytes(&cursor))],
        );
        for e in as_list(&field(&r, "entries")) {
            seen.push(field(&as_msg(&e), "hlc").as_u64().unwrap());
        }
        cursor = bytes_of(&r, "cursor");
        if cursor.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), 6);
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));

    let err = n.cmd(1, "Append", &[]).unwrap_err();
    assert!(matches!(err, CallError::Rejected(_)), "{err:?}");
    let err = n
        .cmd(1, "Append", &[("text", text("a")), ("data", bytes(b"b"))])
        .unwrap_err();
    assert!(matches!(err, CallError::Rejected(_)), "{err:?}");
}

// ---------------------------------------------------------------- chat

fn messages(n: &Node) -> Vec<DynamicMessage> {
    let m = n.ask("Messages", &[("limit", Value::U32(100))]);
    as_list(&field(&m, "messages")).iter().map(as_msg).collect()
}

#[test]
fn chat_post_reply_react_edit_delete_topic_filter_members() {
    let mut n = Node::new(builtin::CHAT);
    let hi = n.ok(1, "Post", &[("text", text("hi there"))]);
    let reply = n.ok(
        2,
        "Reply",
        &[("to", bytes(&hi.id)), ("text", text("hello"))],
    );
    let ms = messages(&n);
    assert_eq!(ms.len(), 2);
    assert_eq!(str_of(&ms[0], "text"), "hi there");
    assert_eq!(bytes_of(&ms[0], "id"), hi.id);
    assert_eq!(field(&ms[0], "replies").as_u32(), Some(1));
    assert_eq!(bytes_of(&ms[1], "reply_to"), hi.id);

    let th = n.ask("Thread", &[("id", bytes(&hi.id))]);
    assert_eq!(bytes_of(&as_msg(&field(&th, "root")), "id"), hi.id);
    let replies = as_list(&field(&th, "replies"));
    assert_eq!(replies.len(), 1);
    assert_eq!(bytes_of(&as_msg(&replies[0]), "id"), reply.id);

    // Reactions: an add-wins set per (emoji, author).
    n.ok(2, "React", &[("to", bytes(&hi.id)), ("emoji", text("👍"))]);
    n.ok(3, "React", &[("to", bytes(&hi.id)), ("emoji", text("👍"))]);
    let rs = as_list(&field(&messages(&n)[0], "reactions"));
    assert_eq!(rs.len(), 1);
    assert_eq!(list_len(&as_msg(&rs[0]), "authors"), 2);
    n.ok(
        2,
        "Unreact",
        &[("to", bytes(&hi.id)), ("emoji", text("👍"))],
    );
    let rs = as_list(&field(&messages(&n)[0], "reactions"));
    assert_eq!(list_len(&as_msg(&rs[0]), "authors"), 1);
    let err = n
        .cmd(
            2,
            "Unreact",
            &[("to", bytes(&hi.id)), ("emoji", text("👍"))],
        )
        .unwrap_err();
    assert!(matches!(err, CallError::Rejected(_)), "{err:?}");

    // Edit and delete: only one's own messages.
    let err = n
        .cmd(
            2,
            "Edit",
            &[("id", bytes(&hi.id)), ("text", text("hijacked"))],
        )
        .unwrap_err();
    assert!(matches!(err, CallError::Rejected(_)), "{err:?}");
    n.ok(
        1,
        "Edit",
        &[("id", bytes(&hi.id)), ("text", text("hi all"))],
    );
    let m0 = &messages(&n)[0];
    assert_eq!(str_of(m0, "text"), "hi all");
    assert_eq!(field(m0, "edited").as_bool(), Some(true));
    n.ok(2, "Delete", &[("id", bytes(&reply.id))]);
    let m1 = &messages(&n)[1];
    assert_eq!(field(m1, "deleted").as_bool(), Some(true));
    assert_eq!(str_of(m1, "text"), "");

    // Topic.
    n.ok(3, "SetTopic", &[("text", text("rust & wasm"))]);
    let t = n.ask("Topic", &[]);
    assert_eq!(str_of(&t, "text"), "rust & wasm");
    assert_eq!(bytes_of(&t, "author"), author(3));

    // Word filter: enforced in prepare, never rewrites the past.
    n.ok(1, "Post", &[("text", text("buy spam now"))]);
    n.ok(
        1,
        "SetFilter",
        &[("words", Value::List(vec![text("SPAM")]))],
    );
    let f = n.ask("Filter", &[]);
    assert_eq!(as_list(&field(&f, "words")), vec![text("spam")]);
    let err = n
        .cmd(2, "Post", &[("text", text("more Spam please"))])
        .unwrap_err();
    assert!(matches!(err, CallError::Rejected(_)), "{err:?}");
    assert!(
        messages(&n)
            .iter()
            .any(|m| str_of(m, "text") == "buy spam now")
    );

    // Text is normalized: NFC, control characters trimmed.
    n.ok(2, "Post", &[("text", text("cafe\u{301}\u{7}"))]);
    let last = messages(&n).pop().unwrap();
    assert_eq!(str_of(&last, "text"), "caf\u{e9}");

    // Members: everyone who wrote, ordered by key, with last-seen HLC.
    let m = n.ask("Members", &[]);
    let members: Vec<DynamicMessage> = as_list(&field(&m, "members")).iter().map(as_msg).collect();
    let keys: Vec<Vec<u8>> = members.iter().map(|m| bytes_of(m, "author")).collect();
    assert_eq!(keys, vec![author(1), author(2), author(3)]);
    assert!(
        members
            .iter()
            .all(|m| field(m, "last_seen_hlc").as_u64().unwrap() > 0)
    );

    // Replies to unknown messages are refused.
    let err = n
        .cmd(
            1,
            "Reply",
            &[("to", bytes(&[9u8; 32])), ("text", text("?"))],
        )
        .unwrap_err();
    assert!(matches!(err, CallError::Rejected(_)), "{err:?}");
}

// ---------------------------------------------------------------- counter

#[test]
fn counter_increment_decrement_value() {
    let mut n = Node::new(&wasm(COUNTER));
    assert_eq!(n.p.info().name, "counter");
    n.ok(1, "Increment", &[("by", Value::U64(5))]);
    n.ok(2, "Decrement", &[("by", Value::U64(2))]);
    n.ok(3, "Increment", &[]); // unset `by` means 1
    let v = n.ask("Value", &[]);
    assert_eq!(field(&v, "value").as_i64(), Some(4));
    assert_eq!(field(&v, "increments").as_u64(), Some(6));
    assert_eq!(field(&v, "decrements").as_u64(), Some(2));
    // A payload that is not a counter op is a no-op, not a failure.
    let junk = op(1, 99, n.hlc + 1, vec![], vec![0xff, 0xff, 0xff]);
    assert!(matches!(
        apply(&n.db, &n.p, &STORE, &junk),
        ApplyOutcome::Applied { .. }
    ));
    assert_eq!(field(&n.ask("Value", &[]), "value").as_i64(), Some(4));
}

#[test]
fn builtin_plugins_all_load_and_describe() {
    let names: Vec<&str> = builtin::BUILTIN.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, ["kv", "log", "chat"]);
    for (name, wasm) in builtin::BUILTIN {
        let p = load(wasm);
        assert_eq!(p.info().name, *name);
        assert!(!p.info().methods.is_empty());
        assert!(p.info().size < 1 << 20, "{name} is small");
    }
    assert!(builtin::builtin("kv").is_some());
    assert!(builtin::builtin("nope").is_none());
}
