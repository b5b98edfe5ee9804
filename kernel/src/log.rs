//! The log's redb tables and the rules applied inside one write transaction:
//! chain checks, fork evidence, causal deps, heads, orphans.
//!
//! Nothing here keeps log-sized state in memory: every lookup (is this dep
//! known? what is this author's tip?) is a B-tree read in the open
//! transaction, so a million-entry log costs disk, not RAM.

use redb::{ReadableTable, Table, TableDefinition, WriteTransaction};

use crate::entry::{Limits, SignedEntry};
use crate::error::{KernelError, ValidationError};
use crate::hlc::Hlc;
use crate::ids::{AuthorId, EntryId, SetDigest, StoreId};

mod forks;
mod held;

pub(crate) use forks::{Proof, fork_seq_in, prove};
pub(crate) use held::Caps;

type Bytes = &'static [u8];
type Def = TableDefinition<'static, Bytes, Bytes>;

/// id → store(16) ‖ hlc(8) ‖ pos(8) ‖ envelope bytes. Committed entries only.
pub(crate) const ENTRIES: Def = TableDefinition::new("kernel_entries");
/// store ‖ author ‖ seq(8) → id.
pub(crate) const CHAIN: Def = TableDefinition::new("kernel_chain");
/// store ‖ author → seq(8) ‖ id(32) ‖ hlc(8): the author's chain tip.
pub(crate) const TIPS: Def = TableDefinition::new("kernel_tips");
/// store ‖ id → hlc(8): the store's DAG heads.
pub(crate) const HEADS: Def = TableDefinition::new("kernel_heads");
/// store ‖ pos(8) → id: commit order, which is a causal order.
pub(crate) const ORDER: Def = TableDefinition::new("kernel_order");
/// store → count(8) ‖ digest(32): entry count and order-independent digest.
pub(crate) const STORES: Def = TableDefinition::new("kernel_stores");
/// missing id ‖ waiting id → received_ms(8) ‖ envelope bytes.
pub(crate) const ORPHANS: Def = TableDefinition::new("kernel_orphans");
/// received_ms(8) ‖ waiting id ‖ missing id → (): for the TTL sweep.
pub(crate) const ORPHAN_AGE: Def = TableDefinition::new("kernel_orphan_age");
/// store ‖ author ‖ seq(8) ‖ id → envelope bytes: every entry of a fork.
pub(crate) const FORKS: Def = TableDefinition::new("kernel_forks");
/// store ‖ id → (): logged entries that are void (kept as placeholders so
/// their descendants apply, never applied themselves).
pub(crate) const VOIDS: Def = TableDefinition::new("kernel_voids");
/// author → count(8): orphan records held per author, for the cap.
pub(crate) const ORPHAN_AUTHORS: Def = TableDefinition::new("kernel_orphan_authors");
/// store ‖ hlc(8) ‖ id → (): every logged entry (the set the store's log
/// digest sums) in (HLC, id) order, the order range-based reconciliation
/// splits on. Unlike `kernel_order` it is the same on every replica.
pub(crate) const BY_TIME: Def = TableDefinition::new("kernel_by_time");

/// What happened to one submitted entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Logged and applied, durable once the call returns.
    Committed,
    /// Already in the log; nothing changed.
    Duplicate,
    /// Held as an orphan until the named entry arrives (or the TTL passes).
    Waiting { missing: EntryId },
    /// Refused; the reason names the rule.
    Rejected(ValidationError),
}

/// What the layer above decides about an entry, before it is logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Log it and apply it.
    Apply,
    /// Log it as a placeholder but never apply it (e.g. a revoked author's
    /// entry past its cut-off). Its descendants by other authors still
    /// commit and apply, instead of waiting forever for a dep.
    Void,
    /// Keep nothing. The rule may change (a member admitted later), so this
    /// must not be final: sync offers the entry again.
    Refuse(ValidationError),
}

/// "Every entry of `author` in `store` above `seq` is void from now on":
/// a hook's answer to [`CommitHook::voids`] after a revocation applies.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoidAbove {
    pub store: StoreId,
    pub author: AuthorId,
    pub seq: u64,
}

/// The caller's side of a commit: membership and state changes, run inside
/// the kernel's write transaction so an entry and its effects land together.
///
/// Admission must be a pure function of the entry and of replicated state
/// (never local time or arrival order): when a later entry changes the
/// verdict for entries already applied (a revocation), the kernel rebuilds
/// the store by [`reset`](Self::reset) and replaying its log through
/// `admit`/`apply`, so every replica ends where the same log leads.
pub trait CommitHook: Send + Sync + 'static {
    /// Whether and how to take the entry (the whole entry is given so
    /// per-author rules can look at the op). Sees writes made earlier in the
    /// same transaction (a membership change applies to the next entry).
    fn admit(&self, _txn: &WriteTransaction, _entry: &SignedEntry) -> Result<Admission, HookError> {
        Ok(Admission::Apply)
    }

    /// Applies a committed entry's effects, in causal order: once when it
    /// commits, and again in each replay of its store after [`Self::reset`]
    /// (see [`Self::voids`]). An error aborts the whole transaction (storage failure);
    /// a plugin that merely rejects an op must record a no-op, not fail.
    fn apply(&self, txn: &WriteTransaction, entry: &SignedEntry) -> Result<(), HookError>;

    /// After `entry` applied: entries it makes void retroactively. If any
    /// such entry is already logged, the kernel rebuilds that store.
    fn voids(
        &self,
        _txn: &WriteTransaction,
        _entry: &SignedEntry,
    ) -> Result<Vec<VoidAbove>, HookError> {
        Ok(Vec::new())
    }

    /// Forgets everything `apply` derived for `store`, before a replay.
    fn reset(&self, _txn: &WriteTransaction, store: &StoreId) -> Result<(), HookError> {
        Err(format!("this hook cannot rebuild store {}", store.to_uuid()).into())
    }

    /// Called for every entry once it is logged, void or not, before it
    /// applies (and again for each entry in the first pass of a replay):
    /// the place to derive per-entry facts from the entry's causal past,
    /// which is all logged by then (a store upgrade's epoch).
    fn placed(
        &self,
        _txn: &WriteTransaction,
        _entry: &SignedEntry,
        _void: bool,
    ) -> Result<(), HookError> {
        Ok(())
    }

    /// After `entry` applied: stores whose state must be rebuilt from their
    /// log because of it (an entry concurrent with a store upgrade that
    /// arrived after the switch). The kernel rebuilds them in the same
    /// transaction.
    fn rebuilds(
        &self,
        _txn: &WriteTransaction,
        _entry: &SignedEntry,
    ) -> Result<Vec<StoreId>, HookError> {
        Ok(Vec::new())
    }

    /// Whether a replay applies `entry` in pass `pass`. A replay runs pass
    /// 0, then pass 1, 2, … while [`Self::begin_pass`] says so, each over
    /// the whole log in commit order; by default everything applies in
    /// pass 0 and there is no other pass. An upgraded store applies each
    /// epoch's entries in its own pass, with the migration between.
    fn replays_in(
        &self,
        _txn: &WriteTransaction,
        _entry: &SignedEntry,
        pass: u32,
    ) -> Result<bool, HookError> {
        Ok(pass == 0)
    }

    /// Before replay pass `pass` (≥ 1) of `store`: `false` ends the replay.
    fn begin_pass(
        &self,
        _txn: &WriteTransaction,
        _store: &StoreId,
        _pass: u32,
    ) -> Result<bool, HookError> {
        Ok(false)
    }

    /// Called after the transaction holding these entries is durable.
    fn committed(&self, _entries: &[SignedEntry]) {}
}

pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// A hook that applies nothing: a bare log (tests, benchmarks).
pub struct NoHook;

impl CommitHook for NoHook {
    fn apply(&self, _: &WriteTransaction, _: &SignedEntry) -> Result<(), HookError> {
        Ok(())
    }

    /// Nothing was derived, so a rebuild has nothing to forget.
    fn reset(&self, _: &WriteTransaction, _: &StoreId) -> Result<(), HookError> {
        Ok(())
    }
}

/// Entries read per step of a replay (bounds memory on big stores).
const REPLAY_CHUNK: usize = 1024;

fn hook_err(h: HookError) -> KernelError {
    KernelError::Hook(h.to_string())
}

pub(crate) fn chain_key(store: &StoreId, author: &AuthorId, seq: u64) -> [u8; 56] {
    let mut k = [0u8; 56];
    k[..16].copy_from_slice(&store.0);
    k[16..48].copy_from_slice(&author.0);
    k[48..].copy_from_slice(&seq.to_be_bytes());
    k
}

pub(crate) fn pair_key<const N: usize, const M: usize>(a: &[u8; N], b: &[u8; M]) -> Vec<u8> {
    let mut k = Vec::with_capacity(N + M);
    k.extend_from_slice(a);
    k.extend_from_slice(b);
    k
}

pub(crate) fn time_key(store: &StoreId, hlc: u64, id: &EntryId) -> [u8; 56] {
    let mut k = [0u8; 56];
    k[..16].copy_from_slice(&store.0);
    k[16..24].copy_from_slice(&hlc.to_be_bytes());
    k[24..].copy_from_slice(&id.0);
    k
}

pub(crate) fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

pub(crate) struct Tip {
    pub seq: u64,
    pub id: EntryId,
    pub hlc: u64,
}

pub(crate) fn decode_tip(v: &[u8]) -> Result<Tip, KernelError> {
    if v.len() != 48 {
        return Err(KernelError::Corrupt("tip record"));
    }
    Ok(Tip {
        seq: u64_at(v, 0),
        id: EntryId::from_slice(&v[8..40]).expect("32"),
        hlc: u64_at(v, 40),
    })
}

/// The log tables opened in one write transaction.
pub(crate) struct LogTxn<'t> {
    pub txn: &'t WriteTransaction,
    entries: Table<'t, Bytes, Bytes>,
    chain: Table<'t, Bytes, Bytes>,
    tips: Table<'t, Bytes, Bytes>,
    heads: Table<'t, Bytes, Bytes>,
    order: Table<'t, Bytes, Bytes>,
    stores: Table<'t, Bytes, Bytes>,
    orphans: Table<'t, Bytes, Bytes>,
    orphan_age: Table<'t, Bytes, Bytes>,
    forks: Table<'t, Bytes, Bytes>,
    voids: Table<'t, Bytes, Bytes>,
    by_time: Table<'t, Bytes, Bytes>,
    caps: Caps,
    /// Entries committed in this transaction, in order, for the post-commit
    /// notification and per-entry outcomes.
    pub committed: Vec<SignedEntry>,
}

impl<'t> LogTxn<'t> {
    pub fn open(txn: &'t WriteTransaction) -> Result<Self, KernelError> {
        Ok(LogTxn {
            txn,
            entries: txn.open_table(ENTRIES)?,
            chain: txn.open_table(CHAIN)?,
            tips: txn.open_table(TIPS)?,
            heads: txn.open_table(HEADS)?,
            order: txn.open_table(ORDER)?,
            stores: txn.open_table(STORES)?,
            orphans: txn.open_table(ORPHANS)?,
            orphan_age: txn.open_table(ORPHAN_AGE)?,
            forks: txn.open_table(FORKS)?,
            voids: txn.open_table(VOIDS)?,
            by_time: txn.open_table(BY_TIME)?,
            caps: Caps::default(),
            committed: Vec::new(),
        })
    }

    pub fn with_caps(mut self, caps: Caps) -> Self {
        self.caps = caps;
        self
    }

    pub fn tip(&self, store: &StoreId, author: &AuthorId) -> Result<Option<Tip>, KernelError> {
        match self.tips.get(pair_key(&store.0, &author.0).as_slice())? {
            Some(v) => Ok(Some(decode_tip(v.value())?)),
            None => Ok(None),
        }
    }

    /// The store's current heads with their HLCs (at most `limit`).
    pub fn heads(&self, store: &StoreId, limit: usize) -> Result<Vec<(EntryId, u64)>, KernelError> {
        let lo = pair_key(&store.0, &[0u8; 32]);
        let hi = pair_key(&store.0, &[0xffu8; 32]);
        let mut out = Vec::new();
        for row in self.heads.range(lo.as_slice()..=hi.as_slice())?.take(limit) {
            let (k, v) = row?;
            out.push((
                EntryId::from_slice(&k.value()[16..]).expect("32"),
                u64_at(v.value(), 0),
            ));
        }
        Ok(out)
    }

    /// Checks an already signature-verified entry against the log, then
    /// commits it and every orphan it unblocks (iteratively: a long chain of
    /// children-before-parents cannot overflow the stack).
    pub fn submit(
        &mut self,
        hook: &dyn CommitHook,
        clock: &Hlc,
        limits: &Limits,
        entry: SignedEntry,
        now_ms: u64,
    ) -> Result<Outcome, KernelError> {
        let first = self.try_commit(hook, clock, &entry, now_ms)?;
        if first != Outcome::Committed {
            return Ok(first);
        }
        let mut unblocked = vec![entry.id];
        while let Some(parent) = unblocked.pop() {
            for (waiting_key, received_ms, wire) in self.take_orphans_of(&parent)? {
                let _ = waiting_key;
                let child = match SignedEntry::decode(&wire, limits, clock) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "dropping orphan that no longer decodes");
                        continue;
                    }
                };
                match self.try_commit(hook, clock, &child, received_ms)? {
                    Outcome::Committed => unblocked.push(child.id),
                    Outcome::Rejected(e) => {
                        tracing::warn!(id = %child.id, error = %e, "orphan rejected once its deps arrived")
                    }
                    Outcome::Duplicate | Outcome::Waiting { .. } => {}
                }
            }
        }
        Ok(Outcome::Committed)
    }

    fn try_commit(
        &mut self,
        hook: &dyn CommitHook,
        clock: &Hlc,
        e: &SignedEntry,
        received_ms: u64,
    ) -> Result<Outcome, KernelError> {
        if self.entries.get(e.id.0.as_slice())?.is_some() {
            return Ok(Outcome::Duplicate);
        }
        let mut admission = hook.admit(self.txn, e).map_err(hook_err)?;
        if let Admission::Refuse(why) = admission {
            return Ok(Outcome::Rejected(why));
        }
        // A break in the author's chain is fork evidence. If it lowered the
        // author's fork seq the store may have been rebuilt: ask again.
        if self.detect_fork(hook, e)? {
            admission = hook.admit(self.txn, e).map_err(hook_err)?;
            if let Admission::Refuse(why) = admission {
                return Ok(Outcome::Rejected(why));
            }
        }
        // The fork rule (see `forks`) wins over the hook's Apply.
        let forked = self.forked(e)?;
        if forked {
            admission = Admission::Void;
        }
        let on_chain = match self.place(e, forked, received_ms)? {
            forks::Place::Chain => true,
            forks::Place::Branch => false,
            forks::Place::Stop(outcome) => return Ok(outcome),
        };
        // Causal deps: all known, same store, strictly earlier HLC.
        for d in &e.deps {
            let Some(v) = self.entries.get(d.0.as_slice())? else {
                let missing = *d;
                self.add_orphan(e, missing, received_ms)?;
                return Ok(Outcome::Waiting { missing });
            };
            let v = v.value();
            if v.len() < 32 {
                return Err(KernelError::Corrupt("entry record"));
            }
            if v[..16] != e.store.0 {
                return Ok(Outcome::Rejected(ValidationError::ForeignDep(*d)));
            }
            let dep_hlc = u64_at(v, 16);
            if dep_hlc >= e.hlc {
                return Ok(Outcome::Rejected(ValidationError::HlcNotAfter {
                    hlc: e.hlc,
                    before: dep_hlc,
                    of: *d,
                }));
            }
        }
        self.write(e, on_chain)?;
        let void = admission == Admission::Void;
        hook.placed(self.txn, e, void).map_err(hook_err)?;
        if void {
            self.voids
                .insert(pair_key(&e.store.0, &e.id.0).as_slice(), [].as_slice())?;
            tracing::debug!(id = %e.id, author = %e.author, "entry logged as void");
        } else {
            hook.apply(self.txn, e).map_err(hook_err)?;
            let voids = hook.voids(self.txn, e).map_err(hook_err)?;
            self.rebuild_for(hook, &voids)?;
            for store in hook.rebuilds(self.txn, e).map_err(hook_err)? {
                self.rebuild(hook, &store)?;
            }
        }
        clock.merge(e.hlc);
        self.committed.push(e.clone());
        Ok(Outcome::Committed)
    }

    /// Rebuilds every store in which an entry named by `voids` is logged.
    fn rebuild_for(
        &mut self,
        hook: &dyn CommitHook,
        voids: &[VoidAbove],
    ) -> Result<(), KernelError> {
        let mut stores: Vec<StoreId> = Vec::new();
        for v in voids {
            let lo = chain_key(&v.store, &v.author, v.seq.saturating_add(1));
            let hi = chain_key(&v.store, &v.author, u64::MAX);
            if self
                .chain
                .range(lo.as_slice()..=hi.as_slice())?
                .next()
                .is_some()
                && !stores.contains(&v.store)
            {
                stores.push(v.store);
            }
        }
        for store in stores {
            self.rebuild(hook, &store)?;
        }
        Ok(())
    }

    /// Replays a store's log from scratch, in its commit order (a causal
    /// order), asking the hook again which entries apply. What the replay
    /// derives depends only on the log, so a replica that applied an entry
    /// before learning it was void ends where one that never applied it is.
    fn rebuild(&mut self, hook: &dyn CommitHook, store: &StoreId) -> Result<(), KernelError> {
        tracing::info!(store = %store.to_uuid(), "rebuilding store state from its log");
        hook.reset(self.txn, store).map_err(hook_err)?;
        let lo = pair_key(&store.0, &[0u8; 32]);
        let hi = pair_key(&store.0, &[0xffu8; 32]);
        self.voids
            .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)?;
        self.replay_pass(hook, store, 0)?;
        let mut pass = 1;
        while hook.begin_pass(self.txn, store, pass).map_err(hook_err)? {
            self.replay_pass(hook, store, pass)?;
            pass += 1;
        }
        Ok(())
    }

    /// One pass of [`Self::rebuild`]: pass 0 decides every entry's
    /// admission (and the void table) and tells the hook where each entry
    /// is placed; later passes apply the non-void entries the hook names.
    fn replay_pass(
        &mut self,
        hook: &dyn CommitHook,
        store: &StoreId,
        pass: u32,
    ) -> Result<(), KernelError> {
        let mut next = 0u64;
        loop {
            let from = pair_key(&store.0, &next.to_be_bytes());
            let to = pair_key(&store.0, &u64::MAX.to_be_bytes());
            let mut ids = Vec::with_capacity(REPLAY_CHUNK);
            for row in self.order.range(from.as_slice()..=to.as_slice())? {
                let (k, v) = row?;
                next = u64_at(k.value(), 16) + 1;
                ids.push(
                    EntryId::from_slice(v.value()).ok_or(KernelError::Corrupt("order record"))?,
                );
                if ids.len() == REPLAY_CHUNK {
                    break;
                }
            }
            if ids.is_empty() {
                return Ok(());
            }
            for id in ids {
                // Decoded like every stored read: the limits it was stored
                // under (not today's config) and checked against its id.
                let (e, _) = match self.entries.get(id.0.as_slice())? {
                    Some(v) => crate::kernel::reads::decode_stored(&id, v.value())?,
                    None => return Err(KernelError::Corrupt("order names a missing entry")),
                };
                if pass > 0 {
                    let void = self
                        .voids
                        .get(pair_key(&store.0, &id.0).as_slice())?
                        .is_some();
                    if !void && hook.replays_in(self.txn, &e, pass).map_err(hook_err)? {
                        hook.apply(self.txn, &e).map_err(hook_err)?;
                    }
                    continue;
                }
                let admission = hook.admit(self.txn, &e).map_err(hook_err)?;
                let void = !matches!(admission, Admission::Apply) || self.forked(&e)?;
                hook.placed(self.txn, &e, void).map_err(hook_err)?;
                if void {
                    self.voids
                        .insert(pair_key(&store.0, &id.0).as_slice(), [].as_slice())?;
                } else if hook.replays_in(self.txn, &e, 0).map_err(hook_err)? {
                    hook.apply(self.txn, &e).map_err(hook_err)?;
                }
            }
        }
    }

    /// Logs `e`; `on_chain` false for a void entry on another branch of a
    /// forked author's chain (logged, but not our chain or tip).
    fn write(&mut self, e: &SignedEntry, on_chain: bool) -> Result<(), KernelError> {
        let (count, mut digest) = match self.stores.get(e.store.0.as_slice())? {
            Some(v) => decode_store_meta(v.value())?,
            None => (0, SetDigest::default()),
        };
        let wire = e.to_wire();
        let mut rec = Vec::with_capacity(32 + wire.len());
        rec.extend_from_slice(&e.store.0);
        rec.extend_from_slice(&e.hlc.to_be_bytes());
        rec.extend_from_slice(&count.to_be_bytes());
        rec.extend_from_slice(&wire);
        self.entries.insert(e.id.0.as_slice(), rec.as_slice())?;
        self.by_time
            .insert(time_key(&e.store, e.hlc, &e.id).as_slice(), [].as_slice())?;
        self.order.insert(
            pair_key(&e.store.0, &count.to_be_bytes()).as_slice(),
            e.id.0.as_slice(),
        )?;
        if on_chain {
            self.chain.insert(
                chain_key(&e.store, &e.author, e.seq).as_slice(),
                e.id.0.as_slice(),
            )?;
            let mut tip = [0u8; 48];
            tip[..8].copy_from_slice(&e.seq.to_be_bytes());
            tip[8..40].copy_from_slice(&e.id.0);
            tip[40..].copy_from_slice(&e.hlc.to_be_bytes());
            self.tips
                .insert(pair_key(&e.store.0, &e.author.0).as_slice(), tip.as_slice())?;
        }
        if e.seq > 1 {
            self.heads
                .remove(pair_key(&e.store.0, &e.prev.0).as_slice())?;
        }
        for d in &e.deps {
            self.heads.remove(pair_key(&e.store.0, &d.0).as_slice())?;
        }
        self.heads.insert(
            pair_key(&e.store.0, &e.id.0).as_slice(),
            e.hlc.to_be_bytes().as_slice(),
        )?;
        digest.add(&e.id.0);
        let mut meta = [0u8; 40];
        meta[..8].copy_from_slice(&(count + 1).to_be_bytes());
        meta[8..].copy_from_slice(&digest.0);
        self.stores.insert(e.store.0.as_slice(), meta.as_slice())?;
        Ok(())
    }
}

/// Builds `kernel_by_time` for a log written before it existed: one pass
/// over the entries, once (an empty index beside a non-empty log).
pub(crate) fn backfill_by_time(txn: &WriteTransaction) -> Result<(), KernelError> {
    use redb::ReadableTableMetadata;
    let mut by_time = txn.open_table(BY_TIME)?;
    let entries = txn.open_table(ENTRIES)?;
    if !by_time.is_empty()? || entries.is_empty()? {
        return Ok(());
    }
    for row in entries.iter()? {
        let (k, v) = row?;
        let id = EntryId::from_slice(k.value()).ok_or(KernelError::Corrupt("entry key"))?;
        let rec = v.value();
        if rec.len() < 32 {
            return Err(KernelError::Corrupt("entry record"));
        }
        let store = StoreId::from_slice(&rec[..16]).ok_or(KernelError::Corrupt("entry record"))?;
        by_time.insert(
            time_key(&store, u64_at(rec, 16), &id).as_slice(),
            [].as_slice(),
        )?;
    }
    Ok(())
}

pub(crate) fn decode_store_meta(v: &[u8]) -> Result<(u64, SetDigest), KernelError> {
    if v.len() != 40 {
        return Err(KernelError::Corrupt("store record"));
    }
    Ok((u64_at(v, 0), SetDigest(v[8..].try_into().expect("32"))))
}
