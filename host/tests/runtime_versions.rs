//! Every released WIT version keeps loading and running: a counter built
//! against lattice:plugin@0.1.0 (checked in, tests/fixtures) beside the
//! same counter rebuilt against 0.2.0 (whose commands answer with a reply,
//! and which exports `migrate`). Same ops, same state, on both.

mod runtime_common;
use runtime_common::*;

use lattice_host::runtime::{CallError, MigrateOutcome, Profile};
use prost_reflect::Value;

const V0_1_0: &[u8] = include_bytes!("fixtures/counter-v0.1.0.wasm");

fn run(plugin: &lattice_host::runtime::Plugin) -> (i64, [u8; 32], Vec<u8>) {
    let d = db();
    let mut reply = Vec::new();
    for (n, by) in [(1u64, 5u64), (2, 3)] {
        let p = prepare_full(&d, plugin, &STORE, "Increment", by);
        reply = p.reply;
        apply(&d, plugin, &STORE, &op(1, n, 10 + n, vec![], p.op));
    }
    let v = ask(&d, plugin, &STORE, "Value", &[]);
    (
        field(&v, "value").as_i64().unwrap(),
        digest(&d, &STORE),
        reply,
    )
}

fn prepare_full(
    d: &Db,
    plugin: &lattice_host::runtime::Plugin,
    store: &lattice_host::runtime::StoreKey,
    method: &str,
    by: u64,
) -> lattice_host::runtime::Prepared {
    let tx = d.db.begin_read().unwrap();
    let request = req(plugin, method, &[("by", Value::U64(by))]);
    plugin
        .prepare(&tx, store, &ctx(1, 9), method, &request)
        .unwrap()
}

#[test]
fn a_0_1_0_plugin_runs_unchanged_beside_its_0_2_0_rebuild() {
    let old = load(V0_1_0);
    let new = load(&wasm(COUNTER));
    assert_eq!(old.info().api_version, "0.1.0");
    assert_eq!(new.info().api_version, "0.2.0");

    let (old_value, old_digest, old_reply) = run(&old);
    let (new_value, new_digest, new_reply) = run(&new);
    assert_eq!((old_value, new_value), (8, 8));
    // The state layout did not change: byte-identical state.
    assert_eq!(old_digest, new_digest);
    // 0.1.0 has no reply (the all-defaults message); 0.2.0 answers.
    assert!(old_reply.is_empty());
    let r = decode(&output(&new, "Increment"), &new_reply);
    assert_eq!(field(&r, "value").as_i64(), Some(8));
}

#[test]
fn migrate_takes_over_its_own_version_refuses_others_and_is_absent_in_0_1_0() {
    let d = db();
    let profile = Profile::CURRENT;
    let new = load(&wasm(COUNTER));
    let old = load(V0_1_0);
    let tx = d.db.begin_write().unwrap();
    assert_eq!(
        new.migrate_with(&tx, &STORE, 1, &profile).unwrap(),
        MigrateOutcome::Migrated { writes: 0 }
    );
    match new.migrate_with(&tx, &STORE, 7, &profile).unwrap() {
        MigrateOutcome::Refused(msg) => assert!(msg.contains("cannot migrate state version 7")),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        old.migrate_with(&tx, &STORE, 1, &profile).unwrap(),
        MigrateOutcome::Unsupported
    );
}

#[test]
fn check_reports_each_version_and_runs_migrate_only_where_it_exists() {
    let old = runtime().check(V0_1_0);
    assert_eq!(
        old.world.as_deref(),
        Some("lattice:plugin/state-machine@0.1.0")
    );
    assert!(old.problems.is_empty(), "{:?}", old.problems);
    assert!(old.dry_runs.iter().all(|d| d.method != "migrate"));
    let new = runtime().check(&wasm(COUNTER));
    assert_eq!(
        new.world.as_deref(),
        Some("lattice:plugin/state-machine@0.2.0")
    );
    assert!(new.exports.iter().any(|e| e == "migrate"));
    assert!(new.problems.is_empty(), "{:?}", new.problems);
    let m = new.dry_runs.iter().find(|d| d.method == "migrate").unwrap();
    assert!(m.ok && m.outcome.contains("nothing to rewrite"), "{m:?}");
    let inc = new
        .dry_runs
        .iter()
        .find(|d| d.method == "Increment")
        .unwrap();
    assert!(inc.outcome.contains("reply of 2 bytes"), "{inc:?}");
}

fn evil_rows(d: &Db, evil: &lattice_host::runtime::Plugin, n: u64) {
    for i in 0..n {
        let payload = encode(
            &evil.info().op_type,
            &[
                ("kind", Value::EnumNumber(0)),
                ("key", bytes(format!("m/{i:06}").as_bytes())),
                ("value", bytes(b"v")),
            ],
        );
        apply(d, evil, &STORE, &op(1, i + 1, 10 + i, vec![], payload));
    }
}

/// A migration rewrites rows in one transaction, the same on every
/// replica; a refusal or a failure leaves nothing behind.
#[test]
fn migrate_rewrites_deterministically_and_a_refusal_or_trap_writes_nothing() {
    let evil = load(&wasm(EVIL));
    let profile = Profile::CURRENT;
    let migrated = |from: u32| {
        let d = db();
        evil_rows(&d, &evil, 300);
        let tx = d.db.begin_write().unwrap();
        let out = evil.migrate_with(&tx, &STORE, from, &profile).unwrap();
        tx.commit().unwrap();
        (out, digest(&d, &STORE), d)
    };
    let (out, a, d) = migrated(1000);
    assert_eq!(out, MigrateOutcome::Migrated { writes: 300 });
    let (_, b, _) = migrated(1000);
    assert_eq!(a, b, "two replicas migrate to the same state");
    let v = ask(&d, &evil, &STORE, "Get", &[("key", bytes(b"m/000299"))]);
    assert_eq!(field(&v, "value").as_bytes().unwrap().as_ref(), b"v\x01");

    let (out, untouched, d) = migrated(1);
    assert_eq!(out, MigrateOutcome::Migrated { writes: 0 });
    let (out, refused, _) = migrated(1001);
    assert!(
        matches!(out, MigrateOutcome::Refused(ref m) if m.contains("refuses")),
        "{out:?}"
    );
    assert_eq!(
        refused, untouched,
        "a refused migration's writes are discarded"
    );
    let v = ask(&d, &evil, &STORE, "Get", &[("key", bytes(b"migrated"))]);
    assert_eq!(field(&v, "found").as_bool(), Some(false));
    let (out, trapped, _) = migrated(1002);
    assert!(
        matches!(out, MigrateOutcome::Failed(CallError::OutOfFuel { .. })),
        "{out:?}"
    );
    assert_eq!(trapped, untouched);
}

/// A 0.2.0 command whose reply does not decode as its reply type is
/// refused before anything is logged (the caller could not read it).
#[test]
fn a_reply_that_does_not_decode_refuses_the_command() {
    let evil = load(&wasm(EVIL));
    let d = db();
    let tx = d.db.begin_read().unwrap();
    let err = evil
        .prepare(&tx, &STORE, &ctx(1, 9), "BadReply", &[])
        .unwrap_err();
    assert!(
        matches!(&err, CallError::Guest(m) if m.contains("does not decode as lattice.testing.evil.Value")),
        "{err:?}"
    );
}
