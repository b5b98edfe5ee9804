//! Plugin state in redb: one table for every store's pairs, one for digests.
//!
//! All stores share `plugin_state`, keyed by `store id (16 bytes) ‖ plugin
//! key`, so a store's pairs are one contiguous, sorted range and `scan` is a
//! plain range read. The kernel owns the transaction; this module only opens
//! tables inside it, so the log entry and the state it produced commit (or
//! vanish) together.

use std::collections::BTreeMap;
use std::ops::Bound;

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use super::digest;
use super::error::StorageError;

/// A store's id: 16 bytes (a UUID).
pub type StoreKey = [u8; 16];

/// `store id ‖ plugin key` → value.
pub const PLUGIN_STATE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("plugin_state");
/// `store id` → 32-byte order-independent digest of that store's pairs.
pub const STATE_DIGEST: TableDefinition<&[u8; 16], &[u8; 32]> =
    TableDefinition::new("state_digest");

/// One row handed back to a plugin: `(plugin key, value)`.
pub(crate) type Row = (Vec<u8>, Vec<u8>);

/// Read access to one store's pairs, keys relative to the store.
///
/// Implemented over both redb's read-only and read-write tables so the same
/// host functions serve `query`/`prepare` (read transaction) and `apply`
/// (the kernel's write transaction).
pub(crate) trait StateRead {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, redb::StorageError>;
    /// Rows with keys in `[start, end)`, ascending (or descending if `rev`).
    fn range<'s>(
        &'s self,
        start: &[u8],
        end: Option<&[u8]>,
        rev: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<Row, redb::StorageError>> + 's>, redb::StorageError>;
}

/// A store's view of a redb table (`Table` in a write transaction or
/// `ReadOnlyTable` in a read transaction); `None` when the table does not
/// exist yet (a fresh database: every store is empty).
pub(crate) struct TableView<T> {
    pub(crate) table: Option<T>,
    store: StoreKey,
}

impl<T> TableView<T> {
    pub(crate) fn new(table: Option<T>, store: StoreKey) -> Self {
        TableView { table, store }
    }
}

fn full_key(store: &StoreKey, key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(16 + key.len());
    k.extend_from_slice(store);
    k.extend_from_slice(key);
    k
}

/// The smallest 16-byte prefix greater than every key starting with `store`,
/// or `None` if `store` is all 0xff (then the store's range is unbounded).
fn store_upper(store: &StoreKey) -> Option<Vec<u8>> {
    let mut up = store.to_vec();
    while let Some(last) = up.last_mut() {
        if *last == 0xff {
            up.pop();
        } else {
            *last += 1;
            return Some(up);
        }
    }
    None
}

impl<T: ReadableTable<&'static [u8], &'static [u8]>> StateRead for TableView<T> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, redb::StorageError> {
        let Some(table) = &self.table else {
            return Ok(None);
        };
        let k = full_key(&self.store, key);
        Ok(table.get(k.as_slice())?.map(|g| g.value().to_vec()))
    }

    fn range<'s>(
        &'s self,
        start: &[u8],
        end: Option<&[u8]>,
        rev: bool,
    ) -> Result<Box<dyn Iterator<Item = Result<Row, redb::StorageError>> + 's>, redb::StorageError>
    {
        let Some(table) = &self.table else {
            return Ok(Box::new(std::iter::empty()));
        };
        if matches!(end, Some(e) if e <= start) {
            return Ok(Box::new(std::iter::empty()));
        }
        let lo = full_key(&self.store, start);
        let hi = match end {
            Some(e) => Some(full_key(&self.store, e)),
            None => store_upper(&self.store),
        };
        let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
            Bound::Included(lo.as_slice()),
            match &hi {
                Some(h) => Bound::Excluded(h.as_slice()),
                None => Bound::Unbounded,
            },
        );
        let range = table.range::<&[u8]>(bounds)?;
        let map = |r: Result<RawRow<'_>, redb::StorageError>| {
            r.map(|(k, v)| (k.value()[16..].to_vec(), v.value().to_vec()))
        };
        if rev {
            Ok(Box::new(range.rev().map(map)))
        } else {
            Ok(Box::new(range.map(map)))
        }
    }
}

/// A row as redb's range iterator yields it.
type RawRow<'a> = (
    redb::AccessGuard<'a, &'static [u8]>,
    redb::AccessGuard<'a, &'static [u8]>,
);

/// An overlay entry: `(key, Some(value) | None = removed)`.
type OverlayEntry<'a> = (&'a Vec<u8>, &'a Option<Vec<u8>>);

/// Buffered writes of one `apply`: `Some(value)` = set, `None` = removed.
/// Reads during the call see it first; it reaches redb only if the call
/// succeeds, which is how a trapping op leaves no trace.
pub(crate) type Overlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Merge a table range with the overlay (overlay wins, tombstones hide rows),
/// returning at most `limit` rows and calling `on_row` for every row examined
/// (live or hidden) so the caller can meter the work; `on_row` returning
/// `false` stops the scan.
pub(crate) fn merged_scan(
    base: &dyn StateRead,
    overlay: Option<&Overlay>,
    start: &[u8],
    end: Option<&[u8]>,
    rev: bool,
    limit: usize,
    on_row: &mut dyn FnMut(&[u8], &[u8]) -> bool,
) -> Result<Vec<Row>, redb::StorageError> {
    let mut out = Vec::new();
    if limit == 0 || matches!(end, Some(e) if e <= start) {
        return Ok(out);
    }
    let mut table = base.range(start, end, rev)?;
    let empty = Overlay::new();
    let overlay = overlay.unwrap_or(&empty);
    let ov_range = (
        Bound::Included(start.to_vec()),
        match end {
            Some(e) => Bound::Excluded(e.to_vec()),
            None => Bound::Unbounded,
        },
    );
    let ov_iter = overlay.range::<Vec<u8>, _>(ov_range);
    let mut ov: Box<dyn Iterator<Item = OverlayEntry<'_>>> = if rev {
        Box::new(ov_iter.rev())
    } else {
        Box::new(ov_iter)
    };
    let mut t_next: Option<Row> = table.next().transpose()?;
    let mut o_next = ov.next();
    while out.len() < limit {
        // Which side holds the next key in scan order? On equal keys the
        // overlay wins and the table row is skipped.
        let (take_overlay, shadowed) = match (&t_next, o_next) {
            (None, None) => break,
            (None, Some(_)) => (true, false),
            (Some(_), None) => (false, false),
            (Some((tk, _)), Some((ok, _))) => {
                if ok == tk {
                    (true, true)
                } else if rev {
                    (ok > tk, false)
                } else {
                    (ok < tk, false)
                }
            }
        };
        if shadowed {
            t_next = table.next().transpose()?;
        }
        let keep_going = if take_overlay {
            let Some((ok, ov_val)) = o_next else { break };
            o_next = ov.next();
            match ov_val {
                Some(v) => {
                    let keep = on_row(ok, v);
                    out.push((ok.clone(), v.clone()));
                    keep
                }
                // A tombstone hides the row but still costs the scan.
                None => on_row(ok, &[]),
            }
        } else {
            let Some((k, v)) = t_next.take() else { break };
            t_next = table.next().transpose()?;
            let keep = on_row(&k, &v);
            out.push((k, v));
            keep
        };
        if !keep_going {
            break;
        }
    }
    Ok(out)
}

/// Write an apply's overlay into the table and fold it into the store's
/// digest: subtract each overwritten pair's hash, add each new pair's hash.
pub(crate) fn flush(
    tx: &WriteTransaction,
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    store: &StoreKey,
    overlay: Overlay,
) -> Result<(), StorageError> {
    if overlay.is_empty() {
        return Ok(());
    }
    let mut digests = tx.open_table(STATE_DIGEST)?;
    let mut sum = digests.get(store)?.map(|g| *g.value()).unwrap_or([0u8; 32]);
    for (key, value) in overlay {
        let fk = full_key(store, &key);
        let old = match &value {
            Some(v) => table.insert(fk.as_slice(), v.as_slice())?,
            None => table.remove(fk.as_slice())?,
        };
        if let Some(old) = old {
            sum = digest::sub(&sum, &digest::pair_hash(&key, old.value()));
        }
        if let Some(v) = &value {
            sum = digest::add(&sum, &digest::pair_hash(&key, v));
        }
    }
    if sum == [0u8; 32] {
        digests.remove(store)?;
    } else {
        digests.insert(store, &sum)?;
    }
    Ok(())
}

/// A redb transaction the digest can be read from (read or write).
pub trait StateTx {
    /// The stored digest of `store`, zero if it has no state.
    fn read_digest(&self, store: &StoreKey) -> Result<[u8; 32], StorageError>;
}

impl StateTx for ReadTransaction {
    fn read_digest(&self, store: &StoreKey) -> Result<[u8; 32], StorageError> {
        match self.open_table(STATE_DIGEST) {
            Ok(t) => Ok(t.get(store)?.map(|g| *g.value()).unwrap_or([0u8; 32])),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok([0u8; 32]),
            Err(e) => Err(e.into()),
        }
    }
}

impl StateTx for WriteTransaction {
    fn read_digest(&self, store: &StoreKey) -> Result<[u8; 32], StorageError> {
        let t = self.open_table(STATE_DIGEST)?;
        Ok(t.get(store)?.map(|g| *g.value()).unwrap_or([0u8; 32]))
    }
}

/// The order-independent digest of `store`'s plugin state: the sum of
/// `blake3(u32_le(len(key)) ‖ key ‖ value)` over its pairs, mod 2^256
/// (all zero for an empty store). Two replicas with the same op set agree.
pub fn state_digest(tx: &impl StateTx, store: &StoreKey) -> Result<[u8; 32], StorageError> {
    tx.read_digest(store)
}

/// Recompute a store's digest from its pairs (a full scan). Used to audit
/// the incrementally maintained digest (`store digest --verify`, tests).
pub fn recompute_digest(tx: &ReadTransaction, store: &StoreKey) -> Result<[u8; 32], StorageError> {
    let table = match tx.open_table(PLUGIN_STATE) {
        Ok(t) => t,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok([0u8; 32]),
        Err(e) => return Err(e.into()),
    };
    let view = TableView::new(Some(table), *store);
    let mut sum = [0u8; 32];
    for row in view.range(&[], None, false)? {
        let (k, v) = row?;
        sum = digest::add(&sum, &digest::pair_hash(&k, &v));
    }
    Ok(sum)
}

/// Delete every pair of `store`, its digest and any halt record (dropping a
/// store, or rebuilding it from its log).
pub fn clear_store(tx: &WriteTransaction, store: &StoreKey) -> Result<u64, StorageError> {
    let mut table = tx.open_table(PLUGIN_STATE)?;
    let lo = store.to_vec();
    let hi = store_upper(store);
    let bounds: (Bound<&[u8]>, Bound<&[u8]>) = (
        Bound::Included(lo.as_slice()),
        match &hi {
            Some(h) => Bound::Excluded(h.as_slice()),
            None => Bound::Unbounded,
        },
    );
    let mut removed = 0u64;
    table.retain_in::<&[u8], _>(bounds, |_, _| {
        removed += 1;
        false
    })?;
    tx.open_table(STATE_DIGEST)?.remove(store)?;
    super::halt::clear(tx, store)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_upper_bounds() {
        let mut s = [0u8; 16];
        s[15] = 7;
        let mut want = s.to_vec();
        want[15] = 8;
        assert_eq!(store_upper(&s), Some(want));
        let mut t = [0u8; 16];
        t[14] = 1;
        t[15] = 0xff;
        let mut want = t[..15].to_vec();
        want[14] = 2;
        assert_eq!(store_upper(&t), Some(want));
        assert_eq!(store_upper(&[0xff; 16]), None);
    }
}
