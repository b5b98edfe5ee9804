//! Integrity on read, the store audit, and refusing empty or foreign log
//! files. Corruption is simulated by rewriting stored records with redb
//! directly (what a flipped bit on disk looks like to the kernel); the CLI
//! test (`cli/tests/e2e_integrity.rs`) flips raw bytes in the file.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::*;
use lattice_kernel::*;
use redb::{ReadableDatabase, ReadableTable, TableDefinition};

const ENTRIES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kernel_entries");
const STORES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kernel_stores");

fn kernel_at(path: &Path) -> Kernel {
    Kernel::open(path, Identity::generate(), config(false), Arc::new(NoHook)).unwrap()
}

/// Rewrites the stored record of `id` with `f` applied.
fn tamper(path: &Path, id: &EntryId, f: impl FnOnce(&mut Vec<u8>)) {
    let db = redb::Database::open(path).unwrap();
    let w = db.begin_write().unwrap();
    {
        let mut t = w.open_table(ENTRIES).unwrap();
        let mut rec = t.get(id.0.as_slice()).unwrap().unwrap().value().to_vec();
        f(&mut rec);
        t.insert(id.0.as_slice(), rec.as_slice()).unwrap();
    }
    w.commit().unwrap();
}

/// Position of `needle` in `hay` (the payload inside a record).
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len())
        .position(|w| w == needle)
        .expect("needle in record")
}

fn written(
    n: usize,
) -> (
    tempfile::TempDir,
    std::path::PathBuf,
    StoreId,
    Vec<SignedEntry>,
) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    let store = StoreId::random();
    let k = kernel_at(&path);
    let entries = (0..n)
        .map(|i| {
            k.append(store, format!("payload-{i:04}").into_bytes())
                .unwrap()
        })
        .collect();
    (dir, path, store, entries)
}

#[test]
fn a_flipped_body_byte_is_a_typed_error_on_every_read_path() {
    let (_d, path, store, entries) = written(5);
    let victim = entries[2].id;
    tamper(&path, &victim, |rec| {
        let at = find(rec, b"payload-0002");
        rec[at + 8] ^= 0x01; // "payload-0002" -> "payload-1002"
    });
    let k = kernel_at(&path);
    let is_victim = |e: KernelError| match e {
        KernelError::CorruptEntry { id, why } => {
            assert_eq!(id, victim);
            assert!(why.contains("no longer hashes"), "{why}");
        }
        other => panic!("expected CorruptEntry, got {other}"),
    };
    is_victim(k.get(&victim).unwrap_err());
    is_victim(k.log(&store, 0, 100).unwrap_err());
    is_victim(
        k.chain_range(&store, &entries[0].author, 1, 100)
            .unwrap_err(),
    );
    // Reads that do not reach the victim still work, and the good entries
    // read back exactly as written.
    assert_eq!(k.log(&store, 0, 2).unwrap(), entries[..2].to_vec());
    assert_eq!(k.log(&store, 3, 100).unwrap(), entries[3..].to_vec());
    assert_eq!(k.get(&entries[4].id).unwrap().as_ref(), Some(&entries[4]));

    let txn = k.db().begin_read().unwrap();
    let audit = k.verify_store(&txn, &store).unwrap();
    assert_eq!(audit.entries_checked, 4);
    assert_eq!(audit.recomputed_count, 5);
    assert_eq!(audit.recomputed_digest, audit.recorded_digest);
    assert!(
        matches!(
            audit.problems.as_slice(),
            [AuditProblem::CorruptEntry { pos: 2, id, .. }] if *id == victim
        ),
        "{:?}",
        audit.problems
    );
}

#[test]
fn header_and_signature_damage_are_found() {
    let (_d, path, store, entries) = written(4);
    // The record header's HLC (bytes 16..24) is not covered by the body hash,
    // but it drives the causal-order check of later entries.
    tamper(&path, &entries[1].id, |rec| rec[23] ^= 0x10);
    // A signature byte: the body still hashes to the id, only the audit's
    // signature check (and every peer) can tell.
    tamper(&path, &entries[3].id, |rec| {
        let n = rec.len();
        rec[n - 1] ^= 0x01;
    });
    let k = kernel_at(&path);
    match k.get(&entries[1].id).unwrap_err() {
        KernelError::CorruptEntry { why, .. } => assert!(why.contains("HLC"), "{why}"),
        other => panic!("{other}"),
    }
    let txn = k.db().begin_read().unwrap();
    let audit = k.verify_store(&txn, &store).unwrap();
    assert_eq!(audit.problems.len(), 2, "{:?}", audit.problems);
    assert!(matches!(
        audit.problems[0],
        AuditProblem::CorruptEntry { pos: 1, .. }
    ));
    assert!(matches!(
        audit.problems[1],
        AuditProblem::BadSignature { pos: 3, id } if id == entries[3].id
    ));
}

#[test]
fn a_wrong_summary_is_reported_and_a_clean_store_passes() {
    let (_d, path, store, entries) = written(300);
    {
        let k = kernel_at(&path);
        let txn = k.db().begin_read().unwrap();
        let audit = k.verify_store(&txn, &store).unwrap();
        assert!(audit.is_clean(), "{:?}", audit.problems);
        assert_eq!(audit.entries_checked, 300);
        assert_eq!(audit.recorded_digest, k.status(&store).unwrap().digest);
    }
    // Altered summary: count and digest no longer describe the log.
    let db = redb::Database::open(&path).unwrap();
    let w = db.begin_write().unwrap();
    {
        let mut t = w.open_table(STORES).unwrap();
        let mut meta = t.get(store.0.as_slice()).unwrap().unwrap().value().to_vec();
        meta[7] ^= 0x02;
        meta[20] ^= 0x80;
        t.insert(store.0.as_slice(), meta.as_slice()).unwrap();
    }
    w.commit().unwrap();
    drop(db);
    let k = kernel_at(&path);
    let txn = k.db().begin_read().unwrap();
    let audit = k.verify_store(&txn, &store).unwrap();
    assert_eq!(audit.entries_checked, 300);
    assert!(
        matches!(
            audit.problems.as_slice(),
            [
                AuditProblem::CountMismatch {
                    recorded: 302,
                    recomputed: 300
                },
                AuditProblem::DigestMismatch { .. }
            ]
        ),
        "{:?}",
        audit.problems
    );
    assert_eq!(k.log(&store, 0, 1000).unwrap(), entries);
}

#[test]
fn empty_and_foreign_files_are_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    std::fs::write(&path, b"").unwrap();
    let err = Kernel::open(&path, Identity::generate(), config(false), Arc::new(NoHook))
        .err()
        .expect("empty file refused");
    assert!(matches!(err, KernelError::EmptyDatabase { .. }), "{err}");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);

    for garbage in [
        b"redb".to_vec(),
        b"not a database at all, just some text that is long enough".to_vec(),
        (0..8192u32).map(|i| (i * 7 + 3) as u8).collect::<Vec<u8>>(),
    ] {
        std::fs::write(&path, &garbage).unwrap();
        let err = Kernel::open(&path, Identity::generate(), config(false), Arc::new(NoHook))
            .err()
            .expect("garbage refused");
        assert!(matches!(err, KernelError::NotADatabase { .. }), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), garbage, "file was modified");
    }
}

#[test]
fn a_new_log_is_private_and_starts_with_the_redb_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.redb");
    drop(kernel_at(&path));
    let head = std::fs::read(&path).unwrap();
    // The header the kernel's own check relies on (guards a redb upgrade).
    assert_eq!(&head[..9], b"redb\x1a\x0a\xa9\x0d\x0a");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // And it reopens.
    drop(kernel_at(&path));
}
