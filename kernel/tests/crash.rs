//! Crash consistency: a child process commits entries in a loop (local
//! appends in flight together, plus peer batches) and is SIGKILLed at random
//! moments. After each kill the log is reopened and checked: every entry the
//! child reported committed is present, log and state agree, chains are
//! contiguous, heads are exactly the unreferenced entries.
//!
//! The child is this same test binary, re-run with `LATTICE_CRASH_CHILD` set.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use lattice_kernel::*;
use rand::prelude::*;

const CHILD_ENV: &str = "LATTICE_CRASH_CHILD";
const STORE: StoreId = StoreId([42; 16]);

fn child(dir: &Path) -> ! {
    let identity = Identity::load_or_create(dir).unwrap();
    let k = Kernel::open(
        &dir.join("log.redb"),
        identity,
        KernelConfig::default(),
        Arc::new(RecordingHook::default()),
    )
    .unwrap();
    let mut peer = Author::new();
    let mut out = std::io::stdout().lock();
    let mut round = 0u64;
    loop {
        round += 1;
        if round % 3 == 0 {
            // A peer's batch of 20 through ingest.
            let batch: Vec<Vec<u8>> = (0..20)
                .map(|_| peer.next(STORE, vec![], 0, b"peer").to_wire())
                .collect();
            let r = k.ingest(&batch).unwrap();
            for id in r.committed {
                writeln!(out, "{id}").unwrap();
            }
        } else {
            let pending: Vec<_> = (0..50)
                .map(|i| k.append_async(STORE, vec![i as u8; 100]).unwrap())
                .collect();
            for p in pending {
                writeln!(out, "{}", p.wait().unwrap().id).unwrap();
            }
        }
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_mid_write_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = StdRng::seed_from_u64(0x1a77);
    let mut acknowledged = HashSet::new();
    let mut last_count = 0;
    for cycle in 0..20 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "sigkill_mid_write_loses_nothing_acknowledged",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut ids = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(id) = EntryId::from_hex(line.trim()) {
                    ids.push(id);
                }
            }
            ids
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(150..600)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let ids = reader.join().unwrap();
        acknowledged.extend(ids);
        let identity = Identity::load_or_create(dir.path()).unwrap();
        let k = Kernel::open(
            &dir.path().join("log.redb"),
            identity,
            config(true),
            Arc::new(RecordingHook::default()),
        )
        .unwrap();
        let count = check_invariants(&k, &STORE, &acknowledged);
        assert!(
            count >= last_count,
            "cycle {cycle}: log shrank from {last_count} to {count}"
        );
        last_count = count;
    }
    assert!(
        acknowledged.len() > 100,
        "the child committed too little to test anything: {}",
        acknowledged.len()
    );
    eprintln!(
        "crash test: 20 kills, {} acknowledged entries, {last_count} in the log",
        acknowledged.len()
    );
}
