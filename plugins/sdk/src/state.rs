//! The store's private, sorted key/value space.
//!
//! On wasm these call the host's `lattice:plugin/state` imports; natively
//! (unit tests) they use an in-memory map per thread, see [`crate::testing`].
//! Writes are only allowed during `apply`: the host traps `set`/`remove`
//! during `prepare` and `query`, and so does the native backend.
//!
//! Limits are enforced by the host, not here: a scan returns at most a
//! host-chosen number of pairs (possibly fewer than `limit`), and key/value
//! bytes cost fuel. [`iter`] and [`iter_rev`] page through a range in chunks
//! so plugin code need not care about the cap.

use alloc::vec::Vec;

/// One key/value pair as returned by a scan.
pub type Pair = (Vec<u8>, Vec<u8>);

/// How many pairs [`iter`]/[`iter_rev`] ask for per host call.
pub(crate) const CHUNK: u32 = 128;

#[cfg(target_arch = "wasm32")]
mod backend {
    use crate::bindings::lattice::plugin::state as host;
    use alloc::vec::Vec;

    pub fn get(key: &[u8]) -> Option<Vec<u8>> {
        host::get(key)
    }
    pub fn set(key: &[u8], value: &[u8]) {
        host::set(key, value)
    }
    pub fn remove(key: &[u8]) {
        host::remove(key)
    }
    pub fn scan(start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<super::Pair> {
        host::scan(start, end, limit)
    }
    pub fn scan_rev(start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<super::Pair> {
        host::scan_rev(start, end, limit)
    }
}

#[cfg(not(target_arch = "wasm32"))]
pub(crate) mod backend {
    use alloc::collections::BTreeMap;
    use alloc::vec::Vec;
    use core::cell::{Cell, RefCell};
    use core::ops::Bound;

    std::thread_local! {
        pub(crate) static STORE: RefCell<BTreeMap<Vec<u8>, Vec<u8>>> = const { RefCell::new(BTreeMap::new()) };
        pub(crate) static READ_ONLY: Cell<bool> = const { Cell::new(false) };
    }

    fn check_writable() {
        // Mirrors the host: a write outside `apply` traps the call.
        assert!(
            !READ_ONLY.with(Cell::get),
            "state is read-only during prepare and query"
        );
    }

    pub fn get(key: &[u8]) -> Option<Vec<u8>> {
        STORE.with(|s| s.borrow().get(key).cloned())
    }
    pub fn set(key: &[u8], value: &[u8]) {
        check_writable();
        STORE.with(|s| s.borrow_mut().insert(key.to_vec(), value.to_vec()));
    }
    pub fn remove(key: &[u8]) {
        check_writable();
        STORE.with(|s| s.borrow_mut().remove(key));
    }
    fn range(start: &[u8], end: Option<&[u8]>) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let end = match end {
            Some(e) => Bound::Excluded(e.to_vec()),
            None => Bound::Unbounded,
        };
        (Bound::Included(start.to_vec()), end)
    }
    fn empty(start: &[u8], end: Option<&[u8]>) -> bool {
        // BTreeMap::range panics on start > end; the host returns nothing.
        end.is_some_and(|e| e <= start)
    }
    pub fn scan(start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<super::Pair> {
        if empty(start, end) {
            return Vec::new();
        }
        STORE.with(|s| {
            s.borrow()
                .range(range(start, end))
                .take(limit as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }
    pub fn scan_rev(start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<super::Pair> {
        if empty(start, end) {
            return Vec::new();
        }
        STORE.with(|s| {
            s.borrow()
                .range(range(start, end))
                .rev()
                .take(limit as usize)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
    }
}

/// The value stored under `key`.
pub fn get(key: &[u8]) -> Option<Vec<u8>> {
    backend::get(key)
}

/// Whether `key` holds a value.
pub fn contains(key: &[u8]) -> bool {
    backend::get(key).is_some()
}

/// Stores `value` under `key` (apply only).
pub fn set(key: &[u8], value: &[u8]) {
    backend::set(key, value)
}

/// Removes `key` (apply only); removing a missing key is a no-op.
pub fn remove(key: &[u8]) {
    backend::remove(key)
}

/// Pairs with keys in `[start, end)` ascending (`end` `None` = to the end), at
/// most `limit` of them and at most the host's cap.
pub fn scan(start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<Pair> {
    backend::scan(start, end, limit)
}

/// Pairs with keys in `[start, end)` descending, at most `limit` (and the
/// host's cap).
pub fn scan_rev(start: &[u8], end: Option<&[u8]>, limit: u32) -> Vec<Pair> {
    backend::scan_rev(start, end, limit)
}

/// Decodes the value under `key` as a prost message. A value that does not
/// decode reads as absent, so a corrupt record can never trap `apply`.
pub fn get_msg<M: prost::Message + Default>(key: &[u8]) -> Option<M> {
    get(key).and_then(|v| M::decode(v.as_slice()).ok())
}

/// Stores a prost message under `key` (apply only). prost encodes fields in
/// tag order, so equal messages give equal bytes: safe for the state digest.
pub fn set_msg<M: prost::Message>(key: &[u8], msg: &M) {
    set(key, &msg.encode_to_vec())
}

/// Concatenates key parts: `key(&[b"m/", &id])`.
pub fn key(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The smallest key greater than every key starting with `prefix`: the
/// exclusive end of a prefix scan. `None` if there is none (all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last != 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Lazily pages through `[start, end)` in ascending order, however many
/// pairs it holds: one host call per [`CHUNK`] pairs. Stops only on an
/// empty page, so a host cap below the chunk size cannot end it early.
pub fn iter(start: &[u8], end: Option<&[u8]>) -> Iter {
    Iter {
        next_bound: start.to_vec(),
        other_bound: end.map(<[u8]>::to_vec),
        page: Vec::new().into_iter(),
        done: false,
        rev: false,
    }
}

/// Like [`iter`], descending.
pub fn iter_rev(start: &[u8], end: Option<&[u8]>) -> Iter {
    Iter {
        next_bound: start.to_vec(),
        other_bound: end.map(<[u8]>::to_vec),
        page: Vec::new().into_iter(),
        done: false,
        rev: true,
    }
}

/// All pairs whose key starts with `prefix`, ascending.
pub fn iter_prefix(prefix: &[u8]) -> Iter {
    iter(prefix, prefix_end(prefix).as_deref())
}

/// All pairs whose key starts with `prefix`, descending.
pub fn iter_prefix_rev(prefix: &[u8]) -> Iter {
    iter_rev(prefix, prefix_end(prefix).as_deref())
}

/// Iterator returned by [`iter`] and friends.
pub struct Iter {
    /// Ascending: the inclusive start of the next page. Descending: the
    /// fixed inclusive start of the range.
    next_bound: Vec<u8>,
    /// Ascending: the fixed exclusive end. Descending: the exclusive end of
    /// the next page.
    other_bound: Option<Vec<u8>>,
    page: alloc::vec::IntoIter<Pair>,
    done: bool,
    rev: bool,
}

impl Iterator for Iter {
    type Item = Pair;

    fn next(&mut self) -> Option<Pair> {
        loop {
            if let Some(pair) = self.page.next() {
                return Some(pair);
            }
            if self.done {
                return None;
            }
            let page = if self.rev {
                scan_rev(&self.next_bound, self.other_bound.as_deref(), CHUNK)
            } else {
                scan(&self.next_bound, self.other_bound.as_deref(), CHUNK)
            };
            let Some((last, _)) = page.last() else {
                self.done = true;
                return None;
            };
            if self.rev {
                // The end is exclusive: the next page ends where this one did.
                self.other_bound = Some(last.clone());
            } else {
                // The smallest key after `last`.
                let mut next = last.clone();
                next.push(0);
                self.next_bound = next;
            }
            self.page = page.into_iter();
        }
    }
}
