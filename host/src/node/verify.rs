//! `lattice store verify`: recompute a store's summaries from what is
//! actually stored and compare them with the incrementally kept ones.
//!
//! The log side is the kernel's audit (every entry hashed against its id,
//! its signature checked, count and log digest recomputed). The state side
//! recomputes the plugin state digest from the state table. Reads of the log
//! check entry hashes on their own, but a plugin state value carries no hash
//! of its own, so a flipped byte there is only visible to this full scan.
//! A store that fails is therefore remembered (node-local, never
//! replicated) and its data is not served to queries or commands until a
//! later verify passes: after a failed check the user sees an error, not
//! plausible wrong data.

use lattice_kernel::LogAudit;
use redb::{ReadableDatabase, TableDefinition};

use super::{Node, NodeError, StoreHandle, read_table};
use crate::runtime::{PLUGIN_STATE, recompute_digest, state_digest};

/// store id → summary of the problems its last verify found.
const FAILED: TableDefinition<&[u8], &str> = TableDefinition::new("host_integrity_failed");

#[derive(Debug, thiserror::Error)]
pub enum IntegrityError {
    #[error(
        "store `{store}` failed its last integrity check ({reason}); it is not served until `lattice store verify {store}` passes"
    )]
    Failed { store: String, reason: String },
}

/// What `store verify` checked and found.
#[derive(Clone, Debug)]
pub struct StoreVerify {
    pub log: LogAudit,
    /// Plugin state pairs hashed.
    pub state_pairs: u64,
    /// The incrementally kept state digest, and the one recomputed.
    pub state_recorded: [u8; 32],
    pub state_recomputed: [u8; 32],
}

impl StoreVerify {
    pub fn is_clean(&self) -> bool {
        self.log.is_clean() && self.state_recorded == self.state_recomputed
    }

    /// Every mismatch, one line each.
    pub fn problems(&self) -> Vec<String> {
        let mut out: Vec<String> = self.log.problems.iter().map(|p| p.to_string()).collect();
        if self.state_recorded != self.state_recomputed {
            out.push(format!(
                "the recorded state digest is {}; the stored state gives {} (a plugin state value was altered)",
                hex::encode(self.state_recorded),
                hex::encode(self.state_recomputed)
            ));
        }
        out
    }
}

impl Node {
    /// Audits `h`'s log and plugin state in one read snapshot, and records
    /// the verdict: a failed store is refused by [`Node::check_verified`]
    /// until a verify passes again.
    pub fn store_verify(&self, h: &StoreHandle) -> Result<StoreVerify, NodeError> {
        let tx = self.kernel.db().begin_read()?;
        let log = self.kernel.verify_store(&tx, &h.id)?;
        let state_recorded = state_digest(&tx, &h.id.0)?;
        let state_recomputed = recompute_digest(&tx, &h.id.0)?;
        let state_pairs = count_pairs(&tx, &h.id.0)?;
        drop(tx);
        let v = StoreVerify {
            log,
            state_pairs,
            state_recorded,
            state_recomputed,
        };
        let w = self.kernel.db().begin_write()?;
        {
            let mut t = w.open_table(FAILED)?;
            if v.is_clean() {
                t.remove(h.id.0.as_slice())?;
            } else {
                let problems = v.problems();
                let reason = format!(
                    "{} problem{}, first: {}",
                    problems.len(),
                    if problems.len() == 1 { "" } else { "s" },
                    problems[0]
                );
                tracing::info!(store = %h.name, %reason, "store failed integrity verification");
                t.insert(h.id.0.as_slice(), reason.as_str())?;
            }
        }
        w.commit()?;
        Ok(v)
    }

    /// `Err` if the last verify of `h` found problems.
    pub fn check_verified(&self, h: &StoreHandle) -> Result<(), NodeError> {
        let tx = self.kernel.db().begin_read()?;
        let Some(t) = read_table(&tx, FAILED)? else {
            return Ok(());
        };
        match t.get(h.id.0.as_slice())? {
            Some(reason) => Err(IntegrityError::Failed {
                store: h.name.clone(),
                reason: reason.value().to_string(),
            }
            .into()),
            None => Ok(()),
        }
    }
}

/// Number of plugin state pairs of `store`.
fn count_pairs(tx: &redb::ReadTransaction, store: &[u8; 16]) -> Result<u64, NodeError> {
    let Some(t) = read_table(tx, PLUGIN_STATE)? else {
        return Ok(0);
    };
    let lo: &[u8] = store;
    let mut n = 0u64;
    for row in t.range(lo..)? {
        let (k, _) = row?;
        if !k.value().starts_with(store) {
            break;
        }
        n += 1;
    }
    Ok(n)
}
