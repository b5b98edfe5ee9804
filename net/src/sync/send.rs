//! The sending half of a session: which entries the peer lacks (the plan)
//! and streaming them in causal order, in frames bounded by bytes.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;

use iroh::endpoint::SendStream;
use lattice_kernel::{AuthorId, ChainTip, EntryId, Kernel, LogPos, SignedEntry, StoreId};
use tokio::sync::mpsc;

use super::blocking;
use crate::error::Result;
use crate::forks;
use crate::frame;
use crate::net::Inner;
use crate::pb;
use crate::pb::sync_frame::Kind as SF;

/// Entries read from one author's chain per kernel call while merging.
const CHAIN_READ: usize = 512;

/// Our side of a session: tips, the forks we can prove, and what the peer
/// said; from these, the ranges and proofs to send (see `forks`).
pub(crate) struct Plan {
    /// Entries the peer asked for by id, sent first.
    wanted: Vec<SignedEntry>,
    /// Entries found by reconciliation, in (HLC, id) order: sent next.
    positions: Vec<LogPos>,
    ranges: Vec<(AuthorId, u64, u64)>,
    proofs: Vec<pb::ForkProof>,
}

impl Plan {
    /// Send these logged entries (a reconciliation's finding), nothing else.
    pub(crate) fn positions(mut positions: Vec<LogPos>) -> Plan {
        positions.sort_by_key(|p| (p.hlc, p.id));
        Plan {
            wanted: Vec::new(),
            positions,
            ranges: Vec::new(),
            proofs: Vec::new(),
        }
    }
}

pub(crate) async fn plan(
    inner: &Arc<Inner>,
    store: StoreId,
    mine: Vec<ChainTip>,
    known: Arc<forks::Known>,
    peer: forks::PeerState,
) -> Result<Plan> {
    let k = Arc::clone(&inner.kernel);
    blocking(move || {
        let ranges = forks::ranges(&k, &store, &mine, &peer, &known)?;
        Ok(Plan {
            wanted: forks::wanted(&k, &store, &peer)?,
            positions: Vec::new(),
            ranges,
            proofs: known.proofs_for(&peer),
        })
    })
    .await?
}

/// One author's range, as chain positions (no entry bodies): the merge
/// holds at most [`index_read`] positions per author, a few dozen bytes
/// each, and loads entry bodies only for the batch being filled, so the
/// sender's memory is bounded by bytes (two batches in the channel, one
/// being filled), whatever the number of authors or the size of entries.
struct Cursor {
    author: AuthorId,
    next: u64,
    end: u64,
    buf: VecDeque<lattice_kernel::ChainPos>,
}

/// Positions read per author per kernel call: fewer when many authors
/// are merged, so the index held stays near [`INDEX_BUDGET`] positions.
fn index_read(authors: usize) -> usize {
    (INDEX_BUDGET / authors.max(1)).clamp(1, CHAIN_READ)
}

/// Chain positions held across all cursors, about (48 bytes each).
const INDEX_BUDGET: usize = 64 * 1024;

impl Cursor {
    fn refill(&mut self, kernel: &Kernel, store: &StoreId, read: usize) -> Result<()> {
        if self.next > self.end {
            return Ok(());
        }
        let got = kernel.chain_index(store, &self.author, self.next, read)?;
        let before = self.buf.len();
        for p in got {
            if p.seq > self.end {
                break;
            }
            self.next = p.seq + 1;
            self.buf.push_back(p);
        }
        if self.buf.len() == before {
            // Nothing (more) in range: the chain ends early; stop here.
            self.next = self.end + 1;
        }
        Ok(())
    }
}

/// Fills byte-bounded batches from entry positions, loading the entries of
/// one batch at a time, and hands each full batch to the channel.
struct Packer<'a> {
    kernel: &'a Kernel,
    tx: &'a mpsc::Sender<Result<Vec<Vec<u8>>>>,
    batch_bytes: usize,
    batch: Vec<Vec<u8>>,
    ids: Vec<EntryId>,
    size: usize,
}

impl Packer<'_> {
    /// Adds wire bytes already in hand. `false`: the receiver is gone.
    fn wire(&mut self, w: Vec<u8>) -> Result<bool> {
        let open = self.room(w.len())?;
        self.batch.push(w);
        Ok(open)
    }

    /// Adds a logged entry by position; its body is loaded with its batch.
    fn pos(&mut self, id: EntryId, bytes: usize) -> Result<bool> {
        let open = self.room(bytes)?;
        self.ids.push(id);
        Ok(open)
    }

    /// Sends the batch first if `bytes` more would overflow it.
    fn room(&mut self, bytes: usize) -> Result<bool> {
        let full = self.size + bytes > self.batch_bytes;
        let open = if full && (self.size > 0) {
            self.flush()?
        } else {
            true
        };
        self.size += bytes;
        Ok(open)
    }

    fn flush(&mut self) -> Result<bool> {
        for e in self.kernel.get_many(&self.ids)? {
            self.batch.push(e.to_wire());
        }
        self.ids.clear();
        self.size = 0;
        if self.batch.is_empty() {
            return Ok(true);
        }
        Ok(self
            .tx
            .blocking_send(Ok(std::mem::take(&mut self.batch)))
            .is_ok())
    }
}

/// Sends the plan's entries in byte-bounded batches: those the peer asked
/// for by id, then reconciled positions, then the ranges merged across
/// authors by HLC so deps tend to precede their dependents. Runs on a
/// blocking thread.
fn produce(
    kernel: &Kernel,
    store: &StoreId,
    plan: (Vec<SignedEntry>, Vec<LogPos>, Vec<(AuthorId, u64, u64)>),
    batch_bytes: usize,
    tx: &mpsc::Sender<Result<Vec<Vec<u8>>>>,
) -> Result<()> {
    let (wanted, positions, ranges) = plan;
    let mut out = Packer {
        kernel,
        tx,
        batch_bytes,
        batch: Vec::new(),
        ids: Vec::new(),
        size: 0,
    };
    // The wanted entries are few (bounded by MAX_WANTS) and already loaded.
    for e in wanted {
        if !out.wire(e.to_wire())? {
            return Ok(());
        }
    }
    for p in positions {
        if !out.pos(p.id, p.bytes)? {
            return Ok(());
        }
    }
    let read = index_read(ranges.len());
    let mut cursors = Vec::with_capacity(ranges.len());
    let mut heap = BinaryHeap::new();
    for (i, (author, from, to)) in ranges.into_iter().enumerate() {
        let mut c = Cursor {
            author,
            next: from,
            end: to,
            buf: VecDeque::new(),
        };
        c.refill(kernel, store, read)?;
        if let Some(f) = c.buf.front() {
            heap.push(Reverse((f.hlc, i)));
        }
        cursors.push(c);
    }
    // Pick positions in HLC order; the packer loads a batch's worth of
    // entries in one read when it sends.
    while let Some(Reverse((_, i))) = heap.pop() {
        let c = &mut cursors[i];
        let Some(p) = c.buf.pop_front() else { continue };
        if c.buf.is_empty() {
            c.refill(kernel, store, read)?;
        }
        if let Some(f) = c.buf.front() {
            heap.push(Reverse((f.hlc, i)));
        }
        if !out.pos(p.id, p.bytes)? {
            return Ok(());
        }
    }
    out.flush()?;
    Ok(())
}

/// Streams the ranges to the peer, then `Done`. Returns (entries, bytes).
pub(crate) async fn push(
    inner: &Arc<Inner>,
    send: &mut SendStream,
    store: StoreId,
    plan: Plan,
) -> Result<(u64, u64)> {
    let Plan {
        wanted,
        positions,
        ranges,
        proofs,
    } = plan;
    let io = inner.config.io_timeout;
    let mut bytes = 0u64;
    if !proofs.is_empty() {
        let f = pb::SyncFrame {
            kind: Some(SF::Forks(pb::ForkProofs { proofs })),
        };
        bytes += frame::write(send, &f, io, "fork proofs").await? as u64;
    }
    let (tx, mut rx) = mpsc::channel(2);
    let kernel = Arc::clone(&inner.kernel);
    let batch_bytes = inner.config.batch_bytes;
    let producer = tokio::task::spawn_blocking(move || {
        if let Err(e) = produce(
            &kernel,
            &store,
            (wanted, positions, ranges),
            batch_bytes,
            &tx,
        ) {
            let _ = tx.blocking_send(Err(e));
        }
    });
    let mut sent = 0u64;
    while let Some(batch) = rx.recv().await {
        let entries = batch?;
        sent += entries.len() as u64;
        let f = pb::SyncFrame {
            kind: Some(SF::Batch(pb::EntryBatch { entries })),
        };
        bytes += frame::write(send, &f, io, "entry batch").await? as u64;
    }
    drop(producer);
    let f = pb::SyncFrame {
        kind: Some(SF::Done(pb::Done { count: sent })),
    };
    bytes += frame::write(send, &f, io, "done frame").await? as u64;
    Ok((sent, bytes))
}
