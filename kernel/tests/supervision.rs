//! A panic on the commit thread (here: a commit hook that panics) must not
//! leave a half-alive kernel: the batch is rolled back, its callers and every
//! later caller get `CommitThreadDied`, `health()` says so, and reads of what
//! was committed before still work.

mod common;

use std::sync::Arc;

use lattice_kernel::*;
use redb::WriteTransaction;

/// Applies nothing, but panics on the payload `boom`.
struct PanickingHook;

impl CommitHook for PanickingHook {
    fn apply(&self, _txn: &WriteTransaction, e: &SignedEntry) -> Result<(), HookError> {
        if e.payload == b"boom" {
            panic!("hook exploded on purpose");
        }
        Ok(())
    }
}

fn died(r: Result<impl std::fmt::Debug, KernelError>) -> String {
    match r {
        Err(KernelError::CommitThreadDied(why)) => why,
        other => panic!("expected CommitThreadDied, got {other:?}"),
    }
}

#[test]
fn panicking_hook_kills_the_kernel_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let k = common::open(dir.path(), Arc::new(PanickingHook));
    let store = StoreId::random();
    let first = k.append(store, b"fine".to_vec()).unwrap();
    k.health().unwrap();

    let why = died(k.append(store, b"boom".to_vec()));
    assert!(why.contains("hook exploded on purpose"), "{why}");

    // Every later call gets the same clear error, not a hang or `Stopped`.
    died(k.append(store, b"after".to_vec()));
    died(k.append_async(store, b"after".to_vec()).map(|_| ()));
    died(k.sweep_orphans_before(0));
    let mut peer = common::Author::new();
    let wire = peer.next(store, vec![], 0, b"from a peer").to_wire();
    died(k.ingest(&[wire]));
    assert!(matches!(k.health(), Err(KernelError::CommitThreadDied(_))));

    // What was committed before is intact and readable; the batch that
    // panicked left nothing behind.
    assert_eq!(k.get(&first.id).unwrap().unwrap().payload, b"fine");
    assert_eq!(k.status(&store).unwrap().entries, 1);
    drop(k);
    let k = common::open(dir.path(), Arc::new(PanickingHook));
    assert_eq!(k.status(&store).unwrap().entries, 1);
    k.append(store, b"after restart".to_vec()).unwrap();
    assert_eq!(k.status(&store).unwrap().entries, 2);
}

/// Jobs queued behind the panicking batch are answered too: no waiter hangs.
#[test]
fn queued_writers_behind_the_panic_all_get_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let k = common::open(dir.path(), Arc::new(PanickingHook));
    let store = StoreId::random();
    let mut pending = vec![k.append_async(store, b"boom".to_vec()).unwrap()];
    for i in 0..50u32 {
        if let Ok(p) = k.append_async(store, i.to_be_bytes().to_vec()) {
            pending.push(p);
        }
    }
    let mut dead = 0;
    for p in pending {
        match p.wait() {
            Ok(_) => {}
            Err(KernelError::CommitThreadDied(_)) => dead += 1,
            Err(e) => panic!("expected CommitThreadDied, got {e}"),
        }
    }
    assert!(dead >= 1);
    assert!(k.health().is_err());
}
