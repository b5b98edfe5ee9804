//! Versioned runtime profiles: every limit that decides what an `apply`
//! does.
//!
//! Fuel, host-call costs, memory and table caps, the wasm stack, key/value
//! sizes, write and read budgets and scan caps all change the outcome of an
//! `apply` (an op that fits one set of limits traps under another). If they
//! were constants of the binary, two nodes on different releases would run
//! the same log to different states. So they form a [`Profile`] with a
//! version number; a store records the version it was created with, every
//! replica applies that store's ops under [`Profile::by_version`] of it, and
//! a profile, once released, is never changed: a new set of limits is a new
//! version, and upgrading the host never changes what an existing store runs.
//!
//! Limits that only bound local, read-only work (`prepare`/`query` fuel,
//! request and reply sizes, the instance pool) are not consensus-critical
//! and stay in [`super::RuntimeConfig`].

/// Fuel charged for host-function work, on top of the guest's instructions
/// (one unit is roughly one wasm instruction).
///
/// Every charge is computed from what the guest *passes in* (keys, written
/// values, the row limit it asks a scan for) plus a flat cost per call,
/// never from the bytes of state a call returns. Two replicas that applied
/// concurrent ops in different orders hold different intermediate states
/// while they apply op X; if X's host calls were charged by the bytes they
/// read, X could run out of fuel on one replica and not on the other, and
/// that replica would silently drop X. Charged by arguments, the host's part
/// of X's fuel depends only on what X's code asks for. (The guest's own
/// instructions can still depend on what it read; that residue is covered by
/// the halting rule in [`super::halt`].)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FuelCosts {
    /// Every `state` call.
    pub host_call: u64,
    /// Per key byte passed (`get`, `scan` bounds).
    pub per_byte: u64,
    /// Per key/value byte written (writes cost a redb insert and a digest
    /// update later, so they are dearer).
    pub per_write_byte: u64,
    /// Per row a scan *may* return: `min(limit, max_scan_rows)`, charged up
    /// front whether or not that many rows exist.
    pub per_row: u64,
}

/// The limits an `apply` runs under. See the module docs; never edit a
/// released version's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Profile {
    /// Recorded in each store's declaration.
    pub version: u32,
    /// Fuel per `apply` (instantiation included: it is a pure function of
    /// the code, so it counts the same on every replica).
    pub fuel_apply: u64,
    pub costs: FuelCosts,
    /// Linear memory cap per instance.
    pub memory_limit: usize,
    /// Table elements cap per table.
    pub table_elements_limit: usize,
    /// Fixed wasm stack size. This is an engine setting: a [`super::Runtime`]
    /// runs only profiles whose stack equals its engine's.
    pub max_wasm_stack: usize,
    pub max_key_bytes: usize,
    pub max_value_bytes: usize,
    /// Bytes (keys + values) one `apply` may write.
    pub max_apply_write_bytes: usize,
    /// Bytes of state one call may read (all `get` values and scan rows
    /// returned). Bounds host work, which costs no fuel by itself; reaching
    /// it happens after reading, so in `apply` it halts the store.
    pub max_read_bytes: usize,
    /// Rows one `scan` call returns at most (the guest's `limit` is capped).
    pub max_scan_rows: usize,
    /// Approximate bytes one `scan` call returns at most (at least one row).
    pub max_scan_bytes: usize,
    /// Fuel of one `migrate` (a store upgrade rewrites the whole state in
    /// one call, so it needs far more than one op's `fuel_apply`).
    pub fuel_migrate: u64,
    /// Bytes one `migrate` may write (buffered in memory until it returns).
    pub max_migrate_write_bytes: usize,
    /// Bytes of state one `migrate` may read.
    pub max_migrate_read_bytes: usize,
}

impl Profile {
    /// The profile new stores get.
    pub const CURRENT: Profile = Profile::V1;

    /// Version 1 (the limits the 0.1 host shipped with, host calls charged
    /// by arguments). The defaults leave honest plugins orders of magnitude
    /// of headroom while bounding a hostile one to well under a second and
    /// 64 MiB per call.
    pub const V1: Profile = Profile {
        version: 1,
        fuel_apply: 50_000_000,
        costs: FuelCosts {
            host_call: 1_000,
            per_byte: 1,
            per_write_byte: 4,
            per_row: 500,
        },
        memory_limit: 64 << 20,
        table_elements_limit: 20_000,
        max_wasm_stack: 512 << 10,
        max_key_bytes: 4 << 10,
        max_value_bytes: 1 << 20,
        max_apply_write_bytes: 16 << 20,
        max_read_bytes: 256 << 20,
        max_scan_rows: 1024,
        max_scan_bytes: 4 << 20,
        // v1 predates upgrades: a migration under it gets one apply's limits.
        fuel_migrate: 50_000_000,
        max_migrate_write_bytes: 16 << 20,
        max_migrate_read_bytes: 256 << 20,
    };

    /// Version 2: v1's apply limits unchanged, plus a migration budget
    /// that fits rewriting a few million small rows (100k rows of the
    /// benchmark take ~150 M fuel) while bounding a hostile `migrate` to a
    /// few seconds and 256 MiB of buffered writes. Store upgrades pin it.
    pub const V2: Profile = Profile {
        version: 2,
        fuel_migrate: 4_000_000_000,
        max_migrate_write_bytes: 256 << 20,
        max_migrate_read_bytes: 1 << 30,
        ..Profile::V1
    };

    /// The profile a store upgrade pins (the store runs under it from the
    /// migration on).
    pub const UPGRADE: Profile = Profile::V2;

    /// Every released profile, oldest first.
    pub const ALL: &'static [Profile] = &[Profile::V1, Profile::V2];

    /// The limits `migrate` runs under: this profile's apply limits with
    /// its migration budget in place of one op's.
    pub fn for_migrate(&self) -> Profile {
        Profile {
            fuel_apply: self.fuel_migrate,
            max_apply_write_bytes: self.max_migrate_write_bytes,
            max_read_bytes: self.max_migrate_read_bytes,
            ..*self
        }
    }

    pub const fn v1() -> Profile {
        Profile::V1
    }

    /// The released profile with this version, if this host knows it. A
    /// store whose profile is unknown (declared by a newer host) must not be
    /// applied with some other profile: it waits for an upgrade.
    pub fn by_version(version: u32) -> Option<Profile> {
        Profile::ALL.iter().copied().find(|p| p.version == version)
    }
}

impl Default for Profile {
    fn default() -> Self {
        Profile::CURRENT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_unique_and_current_is_released() {
        for (i, p) in Profile::ALL.iter().enumerate() {
            assert_eq!(Profile::by_version(p.version), Some(*p));
            assert!(Profile::ALL[..i].iter().all(|q| q.version != p.version));
        }
        assert_eq!(
            Profile::by_version(Profile::CURRENT.version),
            Some(Profile::CURRENT)
        );
        assert_eq!(Profile::by_version(0), None);
    }

    /// A released profile is frozen: this pins v1's values so an edit shows
    /// up as a failing test rather than as diverging replicas.
    #[test]
    fn v1_is_frozen() {
        let p = Profile::v1();
        assert_eq!(
            (p.fuel_apply, p.costs.host_call, p.costs.per_byte),
            (50_000_000, 1_000, 1)
        );
        assert_eq!((p.costs.per_write_byte, p.costs.per_row), (4, 500));
        assert_eq!((p.memory_limit, p.table_elements_limit), (64 << 20, 20_000));
        assert_eq!(p.max_wasm_stack, 512 << 10);
        assert_eq!((p.max_key_bytes, p.max_value_bytes), (4 << 10, 1 << 20));
        assert_eq!(
            (p.max_apply_write_bytes, p.max_read_bytes),
            (16 << 20, 256 << 20)
        );
        assert_eq!((p.max_scan_rows, p.max_scan_bytes), (1024, 4 << 20));
        assert_eq!(
            (
                p.fuel_migrate,
                p.max_migrate_write_bytes,
                p.max_migrate_read_bytes
            ),
            (50_000_000, 16 << 20, 256 << 20)
        );
    }

    /// v2 is frozen too: v1's apply limits plus its migration budget.
    #[test]
    fn v2_is_frozen() {
        let p = Profile::V2;
        assert_eq!(
            Profile {
                version: 1,
                fuel_migrate: Profile::V1.fuel_migrate,
                max_migrate_write_bytes: Profile::V1.max_migrate_write_bytes,
                max_migrate_read_bytes: Profile::V1.max_migrate_read_bytes,
                ..p
            },
            Profile::V1
        );
        assert_eq!(
            (
                p.fuel_migrate,
                p.max_migrate_write_bytes,
                p.max_migrate_read_bytes
            ),
            (4_000_000_000, 256 << 20, 1 << 30)
        );
    }
}
