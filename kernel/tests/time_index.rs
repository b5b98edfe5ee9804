//! The (HLC, id) index reconciliation splits on: it holds exactly the
//! logged set (the one the log digest sums), in order, is rebuilt for a log
//! written before it existed, and `locate` never answers for another store.

mod common;

use std::sync::Arc;

use common::*;
use lattice_kernel::*;

fn indexed(k: &Kernel, s: &StoreId) -> Vec<(u64, EntryId)> {
    let mut out = Vec::new();
    k.time_index(s, |hlc, id| out.push((hlc, *id))).unwrap();
    out
}

fn digest_of(items: &[(u64, EntryId)]) -> SetDigest {
    let mut d = SetDigest::default();
    for (_, id) in items {
        d.add(&id.0);
    }
    d
}

fn filled() -> (tempfile::TempDir, StoreId, StoreId, Vec<SignedEntry>) {
    let dir = tempfile::tempdir().unwrap();
    let k = open(dir.path(), Arc::new(NoHook));
    let (s, other) = (StoreId::random(), StoreId::random());
    let (mut x, mut y) = (Author::new(), Author::new());
    let mut es = Vec::new();
    for i in 0..50u32 {
        es.push(x.next(s, vec![], 0, &i.to_le_bytes()));
        es.push(y.next(s, vec![], 0, &i.to_le_bytes()));
    }
    k.ingest_entries(es.clone()).unwrap();
    let mut z = Author::new();
    k.ingest_entries(vec![z.next(other, vec![], 0, b"elsewhere")])
        .unwrap();
    drop(k);
    (dir, s, other, es)
}

#[test]
fn the_index_is_the_logged_set_in_hlc_id_order() {
    let (dir, s, other, es) = filled();
    let k = open(dir.path(), Arc::new(NoHook));
    let items = indexed(&k, &s);
    assert_eq!(items.len(), es.len());
    assert!(items.windows(2).all(|w| w[0] < w[1]), "sorted by (hlc, id)");
    assert_eq!(digest_of(&items), k.status(&s).unwrap().digest);
    assert_eq!(indexed(&k, &other).len(), 1);
}

#[test]
fn a_log_without_the_index_gets_it_back_on_open() {
    let (dir, s, _, es) = filled();
    // As a log written before the index existed: the table is gone.
    {
        let db = redb::Database::open(dir.path().join("log.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        let def: redb::TableDefinition<&[u8], &[u8]> = redb::TableDefinition::new("kernel_by_time");
        assert!(txn.delete_table(def).unwrap());
        txn.commit().unwrap();
    }
    let k = open(dir.path(), Arc::new(NoHook));
    let items = indexed(&k, &s);
    assert_eq!(items.len(), es.len());
    assert_eq!(digest_of(&items), k.status(&s).unwrap().digest);
}

#[test]
fn locate_answers_only_for_the_store_asked() {
    let (dir, s, other, es) = filled();
    let k = open(dir.path(), Arc::new(NoHook));
    let theirs = indexed(&k, &other)[0].1;
    let unknown = EntryId([9; 32]);
    let asked = vec![es[0].id, theirs, unknown, es[1].id];
    let found = k.locate(&s, &asked).unwrap();
    let ids: Vec<_> = found.iter().map(|p| p.id).collect();
    assert_eq!(ids, vec![es[0].id, es[1].id]);
    assert_eq!(found[0].hlc, es[0].hlc);
    assert_eq!(found[0].bytes, es[0].to_wire().len());
}

#[test]
fn store_verify_names_an_index_that_is_not_the_logged_set() {
    let (dir, s, _, es) = filled();
    {
        let db = redb::Database::open(dir.path().join("log.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<&[u8], &[u8]> =
                redb::TableDefinition::new("kernel_by_time");
            let mut t = txn.open_table(def).unwrap();
            let mut key = Vec::new();
            key.extend_from_slice(&s.0);
            key.extend_from_slice(&es[0].hlc.to_be_bytes());
            key.extend_from_slice(&es[0].id.0);
            assert!(t.remove(key.as_slice()).unwrap().is_some());
        }
        txn.commit().unwrap();
    }
    let k = open(dir.path(), Arc::new(NoHook));
    let txn = redb::ReadableDatabase::begin_read(k.db()).unwrap();
    let audit = k.verify_store(&txn, &s).unwrap();
    assert_eq!(
        audit.problems,
        vec![AuditProblem::TimeIndexMismatch {
            count: es.len() as u64 - 1
        }]
    );
}
