//! What happens when an `apply` fails: a replicated no-op, or a visible halt.
//!
//! Every `apply` runs in a fresh instance under the store's [`Profile`], so
//! its execution is a function of (code, profile, state before the op, op).
//! Code and profile are pinned by the store's declaration and the op is
//! replicated, but the state before the op is not the same everywhere:
//! replicas apply concurrent ops in different (valid) orders, so while they
//! apply op X they may hold different intermediate states.
//!
//! - A failure that happens **before the call consulted stored state** (the
//!   payload does not decode into something the plugin accepts, a key or
//!   value over the cap, an out-of-fuel or memory trap in the op's own
//!   processing) is a pure function of (op, profile): every replica fails X
//!   the same way. X stays in the log as a no-op with its reason
//!   ([`super::ApplyOutcome::NoOp`]), everywhere alike.
//! - A failure **after** the call read state may be a function of the
//!   replica's order of application (a value grown by earlier ops pushing X
//!   over a cap on one replica only), and a stack overflow depends on the
//!   machine code wasmtime generated. Recording a no-op there would be a
//!   silent local divergence. Instead the store **halts on this node**: the
//!   op's writes are discarded, the halt (op id and reason) is recorded in
//!   `store_halts` in the same transaction, an error is logged, and no
//!   further op of that store is applied or prepared here
//!   ([`super::ApplyOutcome::Halted`]). The log keeps growing (entries are
//!   still verified and stored), so nothing acknowledged is lost, and the
//!   state digest stays frozen where peers can see it differ.
//!
//! Honest plugins never reach a post-read failure: budgets leave orders of
//! magnitude of headroom. A plugin that wants hostile payloads to be
//! harmless everywhere validates the whole payload before its first read.

use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

use super::error::{CallError, StorageError};
use super::state::StoreKey;

/// `store id` → `op id (32) ‖ reason (utf-8)`: stores halted on this node.
pub const STORE_HALTS: TableDefinition<&[u8; 16], &[u8]> = TableDefinition::new("store_halts");

/// Why and where a store halted on this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Halt {
    /// The entry whose apply failed.
    pub op_id: Vec<u8>,
    /// The failure, as a line for status and logs.
    pub reason: String,
}

impl Halt {
    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(32 + self.reason.len());
        let mut id = [0u8; 32];
        let n = self.op_id.len().min(32);
        id[..n].copy_from_slice(&self.op_id[..n]);
        v.extend_from_slice(&id);
        v.extend_from_slice(self.reason.as_bytes());
        v
    }

    fn decode(bytes: &[u8]) -> Result<Halt, StorageError> {
        if bytes.len() < 32 {
            return Err(StorageError::Corrupt {
                table: "store_halts",
                reason: format!("{} bytes, expected at least 32", bytes.len()),
            });
        }
        Ok(Halt {
            op_id: bytes[..32].to_vec(),
            reason: String::from_utf8_lossy(&bytes[32..]).into_owned(),
        })
    }
}

/// Whether a failed apply's outcome is the same on every replica: see the
/// module docs.
pub(crate) fn is_replicated(err: &CallError, read_state: bool) -> bool {
    !read_state && !matches!(err, CallError::StackOverflow | CallError::Guest(_))
}

/// A transaction the halt table can be read from (read or write).
pub trait HaltTx {
    #[doc(hidden)]
    fn read_halt(&self, store: &StoreKey) -> Result<Option<Halt>, StorageError>;
}

impl HaltTx for ReadTransaction {
    fn read_halt(&self, store: &StoreKey) -> Result<Option<Halt>, StorageError> {
        let t = match self.open_table(STORE_HALTS) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        t.get(store)?.map(|g| Halt::decode(g.value())).transpose()
    }
}

impl HaltTx for WriteTransaction {
    fn read_halt(&self, store: &StoreKey) -> Result<Option<Halt>, StorageError> {
        let t = self.open_table(STORE_HALTS)?;
        let r = t.get(store)?.map(|g| Halt::decode(g.value())).transpose();
        r
    }
}

/// Whether `store` is halted on this node, and why. The node shows this in
/// the store's status.
pub fn halted(tx: &impl HaltTx, store: &StoreKey) -> Result<Option<Halt>, StorageError> {
    tx.read_halt(store)
}

pub(crate) fn record(
    tx: &WriteTransaction,
    store: &StoreKey,
    halt: &Halt,
) -> Result<(), StorageError> {
    tx.open_table(STORE_HALTS)?
        .insert(store, halt.encode().as_slice())?;
    Ok(())
}

/// Forget a store's halt (with its state, when the store is dropped or
/// rebuilt from its log).
pub(crate) fn clear(tx: &WriteTransaction, store: &StoreKey) -> Result<(), StorageError> {
    tx.open_table(STORE_HALTS)?.remove(store)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_failures_before_any_read_are_replicated() {
        let fuel = CallError::OutOfFuel { budget: 1 };
        assert!(is_replicated(&fuel, false));
        assert!(!is_replicated(&fuel, true));
        assert!(!is_replicated(&CallError::StackOverflow, false));
        assert!(!is_replicated(&CallError::Guest("?".into()), false));
    }

    #[test]
    fn halt_round_trips_and_rejects_short_records() {
        let h = Halt {
            op_id: vec![9; 32],
            reason: "plugin ran out of fuel".into(),
        };
        assert_eq!(Halt::decode(&h.encode()).unwrap(), h);
        assert!(Halt::decode(&[1, 2, 3]).is_err());
    }
}
