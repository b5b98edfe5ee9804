//! The kernel's validator on arbitrary entry streams: the input is split
//! into wires (2-byte length prefixes) and ingested into one kernel. It
//! never panics, every outcome is typed, and after each batch the log's
//! recorded count and digest match a full audit of the store.
#![no_main]

use std::sync::{Arc, OnceLock};

use lattice_kernel::{Identity, Kernel, KernelConfig, NoHook};
use libfuzzer_sys::fuzz_target;
use redb::ReadableDatabase;

struct Target {
    _dir: tempfile::TempDir,
    kernel: Kernel,
}

fn target() -> &'static Target {
    static T: OnceLock<Target> = OnceLock::new();
    T.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let kernel = Kernel::open(
            &dir.path().join("log.redb"),
            Identity::generate(),
            KernelConfig {
                durable: false,
                ..KernelConfig::default()
            },
            Arc::new(NoHook),
        )
        .unwrap();
        Target { _dir: dir, kernel }
    })
}

fuzz_target!(|data: &[u8]| {
    let mut wires = Vec::new();
    let mut rest = data;
    while rest.len() >= 2 {
        let n = (u16::from_be_bytes([rest[0], rest[1]]) as usize).min(rest.len() - 2);
        wires.push(rest[2..2 + n].to_vec());
        rest = &rest[2 + n..];
    }
    let k = &target().kernel;
    let report = k
        .ingest(&wires)
        .expect("bad input is an outcome, not a kernel error");
    assert_eq!(report.outcomes.len(), wires.len());
    for id in &report.committed {
        let e = k.get(id).unwrap().expect("a committed entry is logged");
        let txn = k.db().begin_read().unwrap();
        let audit = k.verify_store(&txn, &e.store).unwrap();
        assert!(audit.is_clean(), "{:?}", audit.problems);
    }
});
