//! Power loss under the storage layer: the kernel runs over a redb backend
//! that keeps every write since the last `sync_data` in a volatile layer.
//! At a seeded operation the power fails: that operation and every later
//! one fail, and the disk keeps what was synced plus, depending on the
//! seed, none of the unsynced writes, all of them, or a torn subset (any
//! subset, each possibly cut at a 512-byte sector, as a disk that reorders
//! writes leaves them). The kernel is then reopened over that image. Every
//! entry whose commit returned is present, and the log passes the audit
//! `lattice store verify` runs.
//!
//! Several cuts per seed run on the same evolving image, so recovery from
//! one cut is itself cut.

mod common;

use std::collections::HashSet;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::*;
use lattice_kernel::*;
use rand::prelude::*;
use redb::{ReadableDatabase, StorageBackend};

const STORE: StoreId = StoreId([7; 16]);
const SECTOR: usize = 512;

/// One change to the file that no sync has made durable yet.
#[derive(Clone)]
enum Unsynced {
    Write(u64, Vec<u8>),
    SetLen(u64),
}

/// What a power cut leaves of the unsynced writes.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// None of them: the disk never got to them.
    Drop,
    /// All of them: the disk wrote its cache, the sync never returned.
    Keep,
    /// A random subset, each write possibly cut at a sector boundary.
    Tear,
}

struct Disk {
    /// The file as it was at the last completed sync.
    durable: Vec<u8>,
    /// The file as the running process sees it.
    live: Vec<u8>,
    unsynced: Vec<Unsynced>,
    /// Mutating operations (write, set_len, sync) so far.
    ops: u64,
    /// The operation at which the power fails.
    cut_at: u64,
    dead: bool,
}

/// The fault-injecting backend; tests keep a second handle on the disk to
/// take the image after the cut.
#[derive(Clone)]
struct PowerCutBackend(Arc<Mutex<Disk>>);

impl std::fmt::Debug for PowerCutBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PowerCutBackend")
    }
}

fn power_failed() -> io::Error {
    io::Error::other("simulated power failure")
}

fn apply(file: &mut Vec<u8>, change: &Unsynced) {
    match change {
        Unsynced::Write(offset, data) => {
            let end = *offset as usize + data.len();
            if file.len() < end {
                file.resize(end, 0);
            }
            file[*offset as usize..end].copy_from_slice(data);
        }
        Unsynced::SetLen(len) => file.resize(*len as usize, 0),
    }
}

impl PowerCutBackend {
    fn new(image: Vec<u8>, cut_at: u64) -> Self {
        PowerCutBackend(Arc::new(Mutex::new(Disk {
            durable: image.clone(),
            live: image,
            unsynced: Vec::new(),
            ops: 0,
            cut_at,
            dead: false,
        })))
    }

    /// Counts a mutating operation; `Err` once the power has failed.
    fn tick(disk: &mut Disk) -> io::Result<()> {
        disk.ops += 1;
        if disk.ops >= disk.cut_at {
            disk.dead = true;
        }
        if disk.dead {
            return Err(power_failed());
        }
        Ok(())
    }

    fn cut_happened(&self) -> bool {
        self.0.lock().unwrap().dead
    }

    /// The disk's contents after the cut.
    fn image(&self, cut: Cut, rng: &mut StdRng) -> Vec<u8> {
        let disk = self.0.lock().unwrap();
        let mut file = disk.durable.clone();
        for change in &disk.unsynced {
            match cut {
                Cut::Drop => {}
                Cut::Keep => apply(&mut file, change),
                Cut::Tear => {
                    if !rng.random_bool(0.5) {
                        continue;
                    }
                    let torn = match change {
                        Unsynced::Write(offset, data) if data.len() > SECTOR => {
                            let sectors = data.len().div_ceil(SECTOR);
                            let keep = rng.random_range(1..=sectors) * SECTOR;
                            Unsynced::Write(*offset, data[..keep.min(data.len())].to_vec())
                        }
                        other => other.clone(),
                    };
                    apply(&mut file, &torn);
                }
            }
        }
        file
    }
}

impl StorageBackend for PowerCutBackend {
    fn len(&self) -> io::Result<u64> {
        Ok(self.0.lock().unwrap().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let disk = self.0.lock().unwrap();
        let end = offset as usize + out.len();
        if end > disk.live.len() {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "read past end",
            ));
        }
        out.copy_from_slice(&disk.live[offset as usize..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut disk = self.0.lock().unwrap();
        Self::tick(&mut disk)?;
        let change = Unsynced::SetLen(len);
        apply(&mut disk.live, &change);
        disk.unsynced.push(change);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut disk = self.0.lock().unwrap();
        Self::tick(&mut disk)?;
        disk.durable = disk.live.clone();
        disk.unsynced.clear();
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut disk = self.0.lock().unwrap();
        Self::tick(&mut disk)?;
        let change = Unsynced::Write(offset, data.to_vec());
        apply(&mut disk.live, &change);
        disk.unsynced.push(change);
        Ok(())
    }
}

fn open(backend: PowerCutBackend, identity: &Identity) -> Result<Kernel, KernelError> {
    Kernel::open_with_backend(
        backend,
        Path::new("<power-cut backend>"),
        identity.clone(),
        config(true),
        Arc::new(RecordingHook::default()),
    )
}

/// Writes until the power fails: local appends in flight together, and a
/// peer's batches. Returns the ids whose commit returned.
fn write_until_cut(k: &Kernel, peer: &mut Author, rng: &mut StdRng) -> Vec<EntryId> {
    let mut acked = Vec::new();
    for round in 0..10_000u32 {
        if round % 4 == 3 {
            let batch: Vec<Vec<u8>> = (0..rng.random_range(1..30))
                .map(|_| peer.next(STORE, vec![], 0, b"peer").to_wire())
                .collect();
            match k.ingest(&batch) {
                Ok(r) => acked.extend(r.committed),
                Err(_) => return acked,
            }
            continue;
        }
        let mut pending = Vec::new();
        for i in 0..rng.random_range(1..40) {
            match k.append_async(STORE, vec![i as u8; rng.random_range(1..3000)]) {
                Ok(p) => pending.push(p),
                Err(_) => break,
            }
        }
        let mut failed = pending.is_empty();
        for p in pending {
            match p.wait() {
                Ok(e) => acked.push(e.id),
                Err(_) => failed = true,
            }
        }
        if failed {
            return acked;
        }
    }
    panic!("the power never failed: the cut point is past the workload");
}

fn audit_clean(k: &Kernel) -> LogAudit {
    let txn = k.db().begin_read().unwrap();
    let audit = k.verify_store(&txn, &STORE).unwrap();
    assert!(
        audit.is_clean(),
        "audit after a power cut: {:?}",
        audit.problems
    );
    audit
}

#[test]
fn a_power_cut_loses_nothing_whose_commit_returned() {
    const SEEDS: u64 = 12;
    const CUTS: usize = 6;
    let mut total_acked = 0;
    for seed in 0..SEEDS {
        let mut rng = StdRng::seed_from_u64(0x9041 + seed);
        let identity = Identity::generate();
        let mut peer = Author::new();
        let mut image = Vec::new();
        let mut acknowledged = HashSet::new();
        let mut last = 0;
        for cycle in 0..CUTS {
            let cut = [Cut::Drop, Cut::Keep, Cut::Tear][rng.random_range(0..3)];
            // Early cuts land in open's own commit, later ones mid-batch.
            let cut_at = if rng.random_bool(0.15) {
                rng.random_range(1..12)
            } else {
                rng.random_range(12..600)
            };
            let backend = PowerCutBackend::new(image.clone(), cut_at);
            match open(backend.clone(), &identity) {
                Ok(k) => {
                    acknowledged.extend(write_until_cut(&k, &mut peer, &mut rng));
                    drop(k);
                }
                Err(e) => assert!(backend.cut_happened(), "seed {seed}: open failed: {e}"),
            }
            assert!(backend.cut_happened(), "seed {seed} cycle {cycle}");
            image = backend.image(cut, &mut rng);

            let checker = PowerCutBackend::new(image, u64::MAX);
            let k = open(checker.clone(), &identity).unwrap_or_else(|e| {
                panic!("seed {seed} cycle {cycle} ({cut:?} at op {cut_at}): reopen: {e}")
            });
            let count = check_invariants(&k, &STORE, &acknowledged);
            let audit = audit_clean(&k);
            assert_eq!(audit.entries_checked, count);
            assert!(count >= last, "seed {seed} cycle {cycle}: log shrank");
            last = count;
            // The next cycle starts from the recovered file, closed cleanly.
            drop(k);
            image = checker.image(Cut::Keep, &mut rng);
        }
        total_acked += acknowledged.len();
        eprintln!(
            "power loss: seed {seed}: {CUTS} cuts, {} acknowledged, {last} in the log",
            acknowledged.len()
        );
    }
    assert!(
        total_acked > 1000,
        "the workload committed too little to test anything: {total_acked}"
    );
}
