//! The receiving half of a session: entry batches ingested in arrival
//! order, each durable before the next, so a dropped stream leaves a
//! consistent prefix.

use std::sync::Arc;

use iroh::endpoint::RecvStream;
use lattice_kernel::{Checked, Kernel, Outcome, StoreId};
use prost::Message;

use super::blocking;
use crate::error::{NetError, Result};
use crate::forks;
use crate::frame;
use crate::net::Inner;
use crate::pb;
use crate::pb::sync_frame::Kind as SF;

#[derive(Default)]
pub(crate) struct Pulled {
    entries: u64,
    pub committed: u64,
    pub rejected: u64,
    pub bytes: u64,
}

/// Rejects an entry of another store before it reaches the kernel: a sync
/// of store S may only carry S's entries (the peer was authorized for S).
pub fn check_store(wire: &[u8], store: &StoreId) -> Result<()> {
    let env = lattice_kernel::pb::Entry::decode(wire)
        .map_err(|e| NetError::Protocol(format!("entry envelope does not decode: {e}")))?;
    let body = lattice_kernel::pb::EntryBody::decode(env.body.as_slice())
        .map_err(|e| NetError::Protocol(format!("entry body does not decode: {e}")))?;
    if body.store_id != store.0 {
        return Err(NetError::Protocol(format!(
            "entry of another store in a sync of store {store}"
        )));
    }
    Ok(())
}

async fn commit_batch(kernel: Arc<Kernel>, checked: Checked) -> Result<(u64, u64)> {
    let report = blocking(move || kernel.commit_checked(checked)).await??;
    let mut rejected = 0;
    for o in &report.outcomes {
        if let Outcome::Rejected(e) = o {
            if rejected == 0 {
                tracing::debug!(error = %e, "received entry rejected");
            }
            rejected += 1;
        }
    }
    Ok((report.committed.len() as u64, rejected))
}

/// Reads batches until `Done`, ingesting each: the next frame is read,
/// decoded and signature-checked while the previous batch commits (the
/// checks are most of an ingest's CPU), and batches commit in arrival
/// order.
pub(crate) async fn pull(
    inner: &Arc<Inner>,
    recv: &mut RecvStream,
    store: StoreId,
) -> Result<Pulled> {
    let (max, io) = (inner.config.max_frame, inner.config.io_timeout);
    let mut p = Pulled::default();
    let mut pending: Option<tokio::task::JoinHandle<Result<(u64, u64)>>> = None;
    let finish = |p: &mut Pulled,
                  r: std::result::Result<Result<(u64, u64)>, tokio::task::JoinError>|
     -> Result<()> {
        let (c, rj) = r.map_err(|e| NetError::Protocol(format!("ingest task failed: {e}")))??;
        p.committed += c;
        p.rejected += rj;
        Ok(())
    };
    loop {
        let (f, n) = frame::read::<pb::SyncFrame>(recv, max, io, "sync frame").await?;
        p.bytes += n as u64;
        match f.kind {
            Some(SF::Batch(b)) => {
                p.entries += b.entries.len() as u64;
                let k = Arc::clone(&inner.kernel);
                let checked = blocking(move || -> Result<Checked> {
                    for w in &b.entries {
                        check_store(w, &store)?;
                    }
                    Ok(k.check(&b.entries))
                })
                .await??;
                if let Some(h) = pending.take() {
                    finish(&mut p, h.await)?;
                }
                pending = Some(tokio::spawn(commit_batch(
                    Arc::clone(&inner.kernel),
                    checked,
                )));
            }
            Some(SF::Done(d)) => {
                if let Some(h) = pending.take() {
                    finish(&mut p, h.await)?;
                }
                if d.count != p.entries {
                    return Err(NetError::Protocol(format!(
                        "peer said it sent {} entries but {} arrived",
                        d.count, p.entries
                    )));
                }
                return Ok(p);
            }
            Some(SF::Forks(f)) => {
                let k = Arc::clone(&inner.kernel);
                let new = blocking(move || forks::import(&k, &store, f.proofs)).await??;
                if new > 0 {
                    tracing::warn!(store = %store, proofs = new, "fork proofs received from a peer");
                }
            }
            Some(SF::Error(e)) => return Err(NetError::Refused(e)),
            other => {
                return Err(NetError::Protocol(format!(
                    "expected an entry batch or done, got {other:?}"
                )));
            }
        }
    }
}
