//! What a node holds that is not log: orphans (entries waiting for a dep)
//! and fork evidence (see `forks`), both bounded so a member with a modified client
//! cannot make a node store without limit what it will never log.

use redb::{ReadableTable, ReadableTableMetadata};

use super::{LogTxn, ORPHAN_AUTHORS, pair_key, u64_at};
use crate::entry::SignedEntry;
use crate::error::KernelError;
use crate::ids::{AuthorId, EntryId};

/// Bounds on what peers can make this node hold that is not (yet) log:
/// orphans and fork evidence. See the fields of `KernelConfig`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Caps {
    pub orphans_per_author: u64,
    pub orphans: u64,
    pub forks_per_author: u64,
    pub forks: u64,
}

impl Caps {
    pub fn of(c: &crate::KernelConfig) -> Caps {
        Caps {
            orphans_per_author: c.max_orphans_per_author,
            orphans: c.max_orphans,
            forks_per_author: c.max_forks_per_author,
            forks: c.max_forks,
        }
    }
}

impl Default for Caps {
    fn default() -> Self {
        Caps::of(&crate::KernelConfig::default())
    }
}

impl LogTxn<'_> {
    /// Parks `e` until `missing` arrives, unless its author (or everyone
    /// together) already has the most orphans allowed: then it is dropped
    /// with a debug line. Dropping is safe: sync offers the entry again once
    /// it can commit, and nothing was acknowledged for it.
    pub(super) fn add_orphan(
        &mut self,
        e: &SignedEntry,
        missing: EntryId,
        received_ms: u64,
    ) -> Result<(), KernelError> {
        let key = pair_key(&missing.0, &e.id.0);
        if self.orphans.get(key.as_slice())?.is_some() {
            return Ok(());
        }
        let held = self.orphans_of(&e.author)?;
        if held >= self.caps.orphans_per_author {
            tracing::debug!(author = %e.author, id = %e.id, held, "orphan cap for this author reached; dropping orphan");
            return Ok(());
        }
        if self.orphans.len()? >= self.caps.orphans {
            tracing::debug!(author = %e.author, id = %e.id, "total orphan cap reached; dropping orphan");
            return Ok(());
        }
        let wire = e.to_wire();
        let mut v = Vec::with_capacity(8 + wire.len());
        v.extend_from_slice(&received_ms.to_be_bytes());
        v.extend_from_slice(&wire);
        self.orphans.insert(key.as_slice(), v.as_slice())?;
        let mut age = Vec::with_capacity(72);
        age.extend_from_slice(&received_ms.to_be_bytes());
        age.extend_from_slice(&e.id.0);
        age.extend_from_slice(&missing.0);
        self.orphan_age.insert(age.as_slice(), [].as_slice())?;
        self.set_orphans_of(&e.author, held + 1)
    }

    /// Orphan records held for `author`.
    fn orphans_of(&self, author: &AuthorId) -> Result<u64, KernelError> {
        let t = self.txn.open_table(ORPHAN_AUTHORS)?;
        Ok(t.get(author.0.as_slice())?
            .map(|v| u64_at(v.value(), 0))
            .unwrap_or(0))
    }

    fn set_orphans_of(&self, author: &AuthorId, n: u64) -> Result<(), KernelError> {
        let mut t = self.txn.open_table(ORPHAN_AUTHORS)?;
        if n == 0 {
            t.remove(author.0.as_slice())?;
        } else {
            t.insert(author.0.as_slice(), n.to_be_bytes().as_slice())?;
        }
        Ok(())
    }

    /// Counts one orphan record of the entry in `wire` as gone.
    fn release_orphan(&self, wire: &[u8]) -> Result<(), KernelError> {
        if let Some(author) = envelope_author(wire) {
            let n = self.orphans_of(&author)?;
            self.set_orphans_of(&author, n.saturating_sub(1))?;
        }
        Ok(())
    }

    /// Removes and returns the orphans waiting on `parent`. A record whose
    /// body no longer hashes to the id it is stored under is dropped with an
    /// error line, not retried: it is corrupt, and sync fetches the entry
    /// again (failing the batch instead would fail it on every retry).
    pub(super) fn take_orphans_of(
        &mut self,
        parent: &EntryId,
    ) -> Result<Vec<(EntryId, u64, Vec<u8>)>, KernelError> {
        let lo = pair_key(&parent.0, &[0u8; 32]);
        let hi = pair_key(&parent.0, &[0xffu8; 32]);
        let mut found = Vec::new();
        for row in self.orphans.range(lo.as_slice()..=hi.as_slice())? {
            let (k, v) = row?;
            let waiting = EntryId::from_slice(&k.value()[32..]).expect("32");
            let v = v.value();
            if v.len() < 8 {
                return Err(KernelError::Corrupt("orphan record"));
            }
            found.push((waiting, u64_at(v, 0), v[8..].to_vec()));
        }
        for (waiting, received_ms, wire) in &found {
            self.orphans
                .remove(pair_key(&parent.0, &waiting.0).as_slice())?;
            let mut age = Vec::with_capacity(72);
            age.extend_from_slice(&received_ms.to_be_bytes());
            age.extend_from_slice(&waiting.0);
            age.extend_from_slice(&parent.0);
            self.orphan_age.remove(age.as_slice())?;
            self.release_orphan(wire)?;
        }
        found.retain(|(waiting, _, wire)| {
            let intact = envelope_id(wire) == Some(*waiting);
            if !intact {
                tracing::error!(id = %waiting, "corrupt orphan record (body does not hash to its id); dropped");
            }
            intact
        });
        Ok(found)
    }

    /// Drops orphans received before `cutoff_ms`; sync will fetch them again
    /// together with what they were waiting for.
    pub fn sweep_orphans(&mut self, cutoff_ms: u64) -> Result<usize, KernelError> {
        let hi = cutoff_ms.to_be_bytes();
        let mut old = Vec::new();
        for row in self.orphan_age.range(..hi.as_slice())? {
            let (k, _) = row?;
            old.push(k.value().to_vec());
        }
        for k in &old {
            self.orphan_age.remove(k.as_slice())?;
            let mut ok = Vec::with_capacity(64);
            ok.extend_from_slice(&k[40..72]);
            ok.extend_from_slice(&k[8..40]);
            let removed = self
                .orphans
                .remove(ok.as_slice())?
                .map(|v| v.value().to_vec());
            if let Some(v) = removed {
                self.release_orphan(v.get(8..).unwrap_or_default())?;
            }
        }
        Ok(old.len())
    }
}

/// The id (blake3 of the body) of an envelope, if it decodes.
fn envelope_id(wire: &[u8]) -> Option<EntryId> {
    use prost::Message;
    let env = crate::pb::Entry::decode(wire).ok()?;
    Some(EntryId(*blake3::hash(&env.body).as_bytes()))
}

/// The author named in an envelope's body, if it decodes.
fn envelope_author(wire: &[u8]) -> Option<AuthorId> {
    use prost::Message;
    let env = crate::pb::Entry::decode(wire).ok()?;
    let body = crate::pb::EntryBody::decode(env.body.as_slice()).ok()?;
    AuthorId::from_slice(&body.author)
}
