//! Store upgrades as epochs of a store's own log.
//!
//! An upgrade is two entries by the store's creator: a root op
//! (`/stores/{uuid}/upgrade`, checked by [`super::root_rules`] and recorded
//! in `trust_upgrades`), then a **marker** in the data store itself whose
//! payload is [`MARKER_MAGIC`] ‖ the root op's id. The marker is where the
//! store switches: an entry is in epoch `k` when `k` valid markers lie in
//! its causal past (itself included). So the switch point is a fact of the
//! DAG, the same on every replica, and an entry written by a node that had
//! not seen the marker yet is in the old epoch whatever order it arrives in.
//!
//! State is `apply_k(epoch k entries) ∘ migrate_k ∘ … ∘ apply_0(epoch 0
//! entries)`: each epoch's entries under its own plugin and profile, in
//! commit order (a causal order), then the next migration. Arriving in
//! causal order, this is what applying as entries come gives — except for an
//! old-epoch entry that arrives after the switch; that one makes the kernel
//! rebuild the store (reset, then one replay pass per epoch with the
//! migration between passes), which costs one replay of the store's log.
//!
//! Why this is a pure function of the log:
//! - a marker counts only if its root op is logged (it is refused until
//!   then, and refusals are not final), is by the same author (the
//!   creator: only it can write the root op), names this store, and names
//!   as `from` the plugin of the epoch its causal past is in. The creator's
//!   entries form one chain, so its markers are causally ordered and the
//!   epochs a chain; a second marker from the same epoch is not valid.
//! - `migrate` runs on the state the log's old epoch leads to, under the
//!   pinned profile's migration budget: its outcome is the same everywhere.
//!   A migration that fails halts the store on every replica alike (the
//!   creator, who alone can upgrade, can also delete the store: a failed
//!   upgrade takes nothing from others that the creator could not).
//! - Epoch tags of entries are derived from their deps when they are
//!   logged (void entries included, so a descendant of a void entry still
//!   sees the epochs behind it).

use std::sync::Arc;

use lattice_kernel::{AuthorId, EntryId, SignedEntry, StoreId};
use redb::{ReadableTable, TableDefinition, WriteTransaction};

use super::NodeError;
use super::registry::{Registry, Runner};
use super::root_rules::UpgradeSpec;
use super::trust::UPGRADES;
use crate::runtime::{Halt, MigrateOutcome, Plugin, Profile, halt};

type Def = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// store ‖ entry id → epoch (u32): entries of epoch ≥ 1 (absent: 0).
pub(crate) const TAGS: Def = TableDefinition::new("epoch_tags");
/// store ‖ epoch (u32) → marker id (32) ‖ upgrade spec: the store's epochs.
pub(crate) const MARKS: Def = TableDefinition::new("epoch_marks");
/// store → epoch (u32) ‖ rows migrated (u64): the epoch the store's state
/// is in (absent: 0, the declared plugin). Written in the transaction that
/// runs the migration, so state and pin commit together.
pub(crate) const PINS: Def = TableDefinition::new("epoch_pins");

/// Opens a marker's payload. A leading zero byte is never the start of a
/// protobuf message (field number 0 is invalid), so no plugin op of the
/// shipped plugins or the SDK's can look like one; plugins must not send
/// payloads starting with this prefix.
pub const MARKER_MAGIC: &[u8] = b"\0lattice-upgrade-v1\0";

/// The marker entry's payload for the upgrade logged as root entry `upgrade`.
pub fn marker_payload(upgrade: &EntryId) -> Vec<u8> {
    [MARKER_MAGIC, upgrade.0.as_slice()].concat()
}

/// Whether a payload claims to be a marker (the host handles it; it never
/// reaches a plugin).
pub fn is_marker(payload: &[u8]) -> bool {
    payload.starts_with(MARKER_MAGIC)
}

fn marker_target(payload: &[u8]) -> Option<EntryId> {
    payload
        .strip_prefix(MARKER_MAGIC)
        .and_then(EntryId::from_slice)
}

fn key(store: &StoreId, rest: &[u8]) -> Vec<u8> {
    [store.0.as_slice(), rest].concat()
}

/// One epoch ≥ 1 of a store: where it starts and what it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Epoch {
    pub number: u32,
    pub marker: EntryId,
    pub spec: UpgradeSpec,
}

/// The epoch a store's state is in, with the rows its migration wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub epoch: Epoch,
    pub rows: u64,
}

/// Records a validated upgrade root write (root apply).
pub(crate) fn record_upgrade(
    txn: &WriteTransaction,
    mesh: &StoreId,
    e: &SignedEntry,
    store: &StoreId,
    spec: &UpgradeSpec,
) -> Result<(), NodeError> {
    let v = [store.0.as_slice(), e.author.0.as_slice(), &spec.encode()].concat();
    txn.open_table(UPGRADES)?
        .insert(key(mesh, &e.id.0).as_slice(), v.as_slice())?;
    Ok(())
}

/// The upgrade root entry `id` of `mesh` declares, if logged.
fn upgrade(
    txn: &WriteTransaction,
    mesh: &StoreId,
    id: &EntryId,
) -> Result<Option<(StoreId, AuthorId, UpgradeSpec)>, NodeError> {
    let t = txn.open_table(UPGRADES)?;
    let Some(v) = t.get(key(mesh, &id.0).as_slice())? else {
        return Ok(None);
    };
    let v = v.value();
    let bad = || NodeError::RootSchema("corrupt upgrade record".into());
    if v.len() < 48 {
        return Err(bad());
    }
    let store = StoreId::from_slice(&v[..16]).ok_or_else(bad)?;
    let author = AuthorId(v[16..48].try_into().map_err(|_| bad())?);
    let spec = UpgradeSpec::decode(&v[48..]).ok_or_else(bad)?;
    Ok(Some((store, author, spec)))
}

/// Admission of an entry whose payload claims to be a marker: the upgrade
/// it names must be logged, for this store, by this author. `Err` is the
/// refusal's reason (not final: the root op may arrive later).
pub(crate) fn check_marker(
    txn: &WriteTransaction,
    mesh: &StoreId,
    e: &SignedEntry,
) -> Result<Result<UpgradeSpec, String>, NodeError> {
    let Some(id) = marker_target(&e.payload) else {
        return Ok(Err(
            "payload starts with the upgrade marker prefix but is not a marker".into(),
        ));
    };
    match upgrade(txn, mesh, &id)? {
        None => Ok(Err(format!(
            "upgrade marker names root entry {id}, not logged here (yet)"
        ))),
        Some((store, author, spec)) if store == e.store && author == e.author => Ok(Ok(spec)),
        Some(_) => Ok(Err(format!(
            "upgrade marker names root entry {id}, an upgrade of another store or by another author"
        ))),
    }
}

fn read_u32(v: &[u8]) -> u32 {
    v.get(..4)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u32::from_be_bytes)
}

/// The epoch of a logged entry.
pub(crate) fn tag(txn: &WriteTransaction, store: &StoreId, id: &EntryId) -> Result<u32, NodeError> {
    let t = txn.open_table(TAGS)?;
    Ok(t.get(key(store, &id.0).as_slice())?
        .map_or(0, |v| read_u32(v.value())))
}

fn decode_epoch(number: u32, v: &[u8]) -> Result<Epoch, NodeError> {
    let bad = || NodeError::RootSchema("corrupt epoch record".into());
    let marker = v.get(..32).and_then(EntryId::from_slice).ok_or_else(bad)?;
    let spec = UpgradeSpec::decode(&v[32..]).ok_or_else(bad)?;
    Ok(Epoch {
        number,
        marker,
        spec,
    })
}

/// Epoch `number` (≥ 1) of `store`, if its marker is logged.
pub(crate) fn epoch<T: ReadableTable<&'static [u8], &'static [u8]>>(
    marks: &T,
    store: &StoreId,
    number: u32,
) -> Result<Option<Epoch>, NodeError> {
    match marks.get(key(store, &number.to_be_bytes()).as_slice())? {
        Some(v) => Ok(Some(decode_epoch(number, v.value())?)),
        None => Ok(None),
    }
}

/// The epoch `store`'s state is in.
pub(crate) fn pin<T, M>(pins: &T, marks: &M, store: &StoreId) -> Result<Option<Pin>, NodeError>
where
    T: ReadableTable<&'static [u8], &'static [u8]>,
    M: ReadableTable<&'static [u8], &'static [u8]>,
{
    let Some(v) = pins.get(store.0.as_slice())? else {
        return Ok(None);
    };
    let v = v.value();
    let number = read_u32(v);
    let rows = v
        .get(4..12)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_be_bytes);
    Ok(epoch(marks, store, number)?.map(|epoch| Pin { epoch, rows }))
}

/// The epoch number `store`'s state is in, inside the write transaction.
pub(crate) fn pinned(txn: &WriteTransaction, store: &StoreId) -> Result<u32, NodeError> {
    let t = txn.open_table(PINS)?;
    Ok(t.get(store.0.as_slice())?
        .map_or(0, |v| read_u32(v.value())))
}

pub(crate) fn set_pin(
    txn: &WriteTransaction,
    store: &StoreId,
    number: u32,
    rows: u64,
) -> Result<(), NodeError> {
    let mut v = [0u8; 12];
    v[..4].copy_from_slice(&number.to_be_bytes());
    v[4..].copy_from_slice(&rows.to_be_bytes());
    txn.open_table(PINS)?
        .insert(store.0.as_slice(), v.as_slice())?;
    Ok(())
}

/// Whether `store` has any epoch beyond its declaration (the common case,
/// none, costs one lookup per entry).
fn has_epochs(txn: &WriteTransaction, store: &StoreId) -> Result<bool, NodeError> {
    let t = txn.open_table(MARKS)?;
    let lo = key(store, &0u32.to_be_bytes());
    let hi = key(store, &u32::MAX.to_be_bytes());
    Ok(t.range(lo.as_slice()..=hi.as_slice())?.next().is_some())
}

/// Tags a just-logged data entry with its epoch: the highest of its
/// causal parents', plus one if it is a valid marker (see the module docs).
/// `declared` is the plugin hash the store was declared with (epoch 0).
pub(crate) fn place(
    txn: &WriteTransaction,
    mesh: &StoreId,
    e: &SignedEntry,
    void: bool,
    declared: &[u8; 32],
) -> Result<(), NodeError> {
    let marker = !void && is_marker(&e.payload);
    if !marker && !has_epochs(txn, &e.store)? {
        return Ok(());
    }
    let mut base = 0;
    let parents = e.deps.iter().chain((e.seq > 1).then_some(&e.prev));
    for p in parents {
        base = base.max(tag(txn, &e.store, p)?);
    }
    let mut number = base;
    if marker {
        if let Ok(spec) = check_marker(txn, mesh, e)? {
            let marks = txn.open_table(MARKS)?;
            let running = match epoch(&marks, &e.store, base)? {
                Some(ep) => ep.spec.to,
                None => lattice_kernel::EntryId(*declared).to_hex(),
            };
            let next_free = epoch(&marks, &e.store, base + 1)?.is_none();
            drop(marks);
            if spec.from == running && next_free {
                number = base + 1;
                let v = [e.id.0.as_slice(), &spec.encode()].concat();
                txn.open_table(MARKS)?.insert(
                    key(&e.store, &number.to_be_bytes()).as_slice(),
                    v.as_slice(),
                )?;
            }
        }
    }
    if number > 0 {
        txn.open_table(TAGS)?.insert(
            key(&e.store, &e.id.0).as_slice(),
            number.to_be_bytes().as_slice(),
        )?;
    }
    Ok(())
}

/// Forgets the epochs derived for `store` (before a replay recomputes them).
pub(crate) fn reset(txn: &WriteTransaction, store: &StoreId) -> Result<(), NodeError> {
    let lo = store.0.to_vec();
    let mut hi = store.0.to_vec();
    hi.extend_from_slice(&[0xff; 36]);
    for def in [TAGS, MARKS] {
        txn.open_table(def)?
            .retain_in::<&[u8], _>(lo.as_slice()..=hi.as_slice(), |_, _| false)?;
    }
    txn.open_table(PINS)?.remove(store.0.as_slice())?;
    Ok(())
}

/// The pin of `store` in a read snapshot (status, opening a store).
pub(crate) fn read_pin(
    tx: &redb::ReadTransaction,
    store: &StoreId,
) -> Result<Option<Pin>, NodeError> {
    let (Some(pins), Some(marks)) = (super::read_table(tx, PINS)?, super::read_table(tx, MARKS)?)
    else {
        return Ok(None);
    };
    pin(&pins, &marks, store)
}

/// How the hook applies one data entry.
pub(crate) enum Route {
    /// Through this plugin under this profile version.
    Apply(Arc<Plugin>, u32),
    /// Handled here (a marker's migration, or an entry the rebuild that
    /// follows will apply).
    Done,
    /// Recorded as a no-op with this reason.
    NoOp(String),
}

/// Decides how a data entry applies, given its epoch and the store's pin.
pub(crate) fn route(
    reg: &Registry,
    txn: &WriteTransaction,
    e: &SignedEntry,
    declared: &Runner,
) -> Result<Route, NodeError> {
    let number = tag(txn, &e.store, &e.id)?;
    let pinned = pinned(txn, &e.store)?;
    if is_marker(&e.payload) {
        let ep = epoch(&txn.open_table(MARKS)?, &e.store, number)?;
        return Ok(match ep {
            Some(ep) if ep.marker == e.id => {
                if pinned + 1 == number {
                    migrate(reg, txn, &e.store, &ep)?;
                }
                // Else a replay: the migration ran when its pass began.
                Route::Done
            }
            _ => Route::NoOp(
                "upgrade marker whose `from` plugin is not the one the store runs at that point: ignored"
                    .into(),
            ),
        });
    }
    if number < pinned {
        // An old-epoch entry that arrived after the switch: `rebuilds`
        // replays the store with it in its epoch.
        return Ok(Route::Done);
    }
    if number == 0 {
        return Ok(Route::Apply(declared.plugin.clone(), declared.profile));
    }
    if number > pinned {
        tracing::warn!(store = %e.store.to_uuid(), epoch = number, pinned, "entry of an epoch whose migration has not run; not applied");
        return Ok(Route::Done);
    }
    let ep = epoch(&txn.open_table(MARKS)?, &e.store, number)?
        .ok_or_else(|| NodeError::RootSchema("entry tagged with an unknown epoch".into()))?;
    Ok(Route::Apply(
        reg.plugin_by_hash(&ep.spec.to)?,
        ep.spec.profile,
    ))
}

/// Stores to rebuild after `e` applied: its own, if it is an old-epoch
/// entry that arrived after the store switched.
pub(crate) fn rebuilds(txn: &WriteTransaction, e: &SignedEntry) -> Result<Vec<StoreId>, NodeError> {
    let pinned = pinned(txn, &e.store)?;
    if pinned > 0 && !is_marker(&e.payload) && tag(txn, &e.store, &e.id)? < pinned {
        tracing::info!(store = %e.store.to_uuid(), "an entry concurrent with an upgrade arrived after it: rebuilding");
        return Ok(vec![e.store]);
    }
    Ok(Vec::new())
}

/// Before replay pass `pass` of `store`: runs epoch `pass`'s migration, if
/// the replay's first pass found that epoch.
pub(crate) fn begin_pass(
    reg: &Registry,
    txn: &WriteTransaction,
    store: &StoreId,
    pass: u32,
) -> Result<bool, NodeError> {
    let Some(ep) = epoch(&txn.open_table(MARKS)?, store, pass)? else {
        return Ok(false);
    };
    migrate(reg, txn, store, &ep)?;
    Ok(true)
}

/// Switches `store` to epoch `ep`: runs the new plugin's `migrate` on the
/// state in this transaction and pins the epoch in the same transaction. A
/// migration that fails (the same on every replica: same code, state and
/// budget) halts the store, visibly, rather than running the new plugin on
/// state it could not take over.
fn migrate(
    reg: &Registry,
    txn: &WriteTransaction,
    store: &StoreId,
    ep: &Epoch,
) -> Result<(), NodeError> {
    let spec = &ep.spec;
    let plugin = reg.plugin_by_hash(&spec.to)?;
    let profile = Profile::by_version(spec.profile).ok_or_else(|| {
        NodeError::RootSchema(format!("unknown runtime profile {}", spec.profile))
    })?;
    if halt::halted(txn, &store.0)?.is_some() {
        set_pin(txn, store, ep.number, 0)?;
        return Ok(());
    }
    let outcome = if plugin.info().state_version != spec.to_version {
        Err(format!(
            "the plugin's state version is {}, the upgrade says {}",
            plugin.info().state_version,
            spec.to_version
        ))
    } else {
        match plugin.migrate_with(txn, &store.0, spec.from_version, &profile)? {
            MigrateOutcome::Migrated { writes } => Ok(writes as u64),
            MigrateOutcome::Refused(m) => Err(m),
            MigrateOutcome::Failed(e) => Err(e.to_string()),
            MigrateOutcome::Unsupported => {
                Err("the plugin has no `migrate` (lattice:plugin@0.1.0)".into())
            }
        }
    };
    let rows = match outcome {
        Ok(rows) => rows,
        Err(why) => {
            let reason = format!(
                "upgrade to plugin {} cannot migrate from state version {}: {why}",
                spec.to, spec.from_version
            );
            tracing::error!(store = %store.to_uuid(), %reason, "store halted");
            halt::record(
                txn,
                &store.0,
                &Halt {
                    op_id: ep.marker.0.to_vec(),
                    reason,
                },
            )?;
            0
        }
    };
    set_pin(txn, store, ep.number, rows)?;
    reg.mark_store(store);
    Ok(())
}
