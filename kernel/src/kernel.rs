//! The kernel handle: one redb database, one commit thread.
//!
//! Group commit: every write (a local append or a peer's batch) is a job sent
//! to the commit thread. The thread takes every job already waiting, runs
//! them all in ONE write transaction with one fsync, then answers each. Under
//! load the batch grows by itself, so the fsync cost is shared by everything
//! that arrived while the previous one was in flight. Signatures of received
//! entries are checked by the caller before the job is sent, on all cores.

use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded, unbounded};
use redb::{Database, Durability, ReadableDatabase, ReadableTable};

use crate::entry::{Draft, Limits, SignedEntry, verify_all};
use crate::error::KernelError;
use crate::hlc::{Hlc, now_ms};
use crate::identity::Identity;
use crate::ids::{AuthorId, EntryId, SetDigest, StoreId};
use crate::log::{self, CommitHook, LogTxn, Outcome};

mod audit;
mod forks;
pub(crate) mod reads;

pub use audit::{AuditProblem, LogAudit};
pub use forks::ForkImport;

/// Tuning and policy for one kernel.
#[derive(Clone, Debug)]
pub struct KernelConfig {
    pub limits: Limits,
    /// Entries whose HLC is further ahead of our clock are rejected.
    pub max_clock_drift: Duration,
    /// Orphans older than this are dropped by `sweep_orphans`.
    pub orphan_ttl: Duration,
    /// How often a long-running node (the daemon) calls `sweep_orphans`
    /// (default 60 s; the first sweep runs at start).
    pub orphan_sweep_interval: Duration,
    /// Orphan records one author may have waiting. A member with a modified
    /// client can send endless entries whose deps never arrive; over the cap
    /// a new orphan is dropped (sync offers it again once its deps exist).
    /// Default 10 000.
    pub max_orphans_per_author: u64,
    /// Orphan records waiting in total, over all authors and stores
    /// (default 100 000; above the per-author cap, so one author cannot
    /// crowd out the rest).
    pub max_orphans: u64,
    /// Fork evidence records kept per author and store. Two are enough to
    /// prove a fork; the rest only cost disk. Default 64 (at least 2).
    pub max_forks_per_author: u64,
    /// Fork evidence records kept in total (default 10 000).
    pub max_forks: u64,
    /// Most entries one transaction takes before it commits.
    pub max_batch_entries: usize,
    /// `false` skips fsync (tests only): a crash may lose acknowledged writes.
    pub durable: bool,
    /// redb page cache. The log's memory use is bounded by this plus the
    /// commit batch, not by the number of entries.
    pub cache_bytes: usize,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            limits: Limits::default(),
            max_clock_drift: Duration::from_secs(600),
            orphan_ttl: Duration::from_secs(600),
            orphan_sweep_interval: Duration::from_secs(60),
            max_orphans_per_author: 10_000,
            max_orphans: 100_000,
            max_forks_per_author: 64,
            max_forks: 10_000,
            max_batch_entries: 4096,
            durable: true,
            cache_bytes: 64 << 20,
        }
    }
}

/// Per-entry verdicts for one ingested batch, plus every entry the batch
/// caused to commit (including older orphans it unblocked).
#[derive(Debug, Default)]
pub struct IngestReport {
    pub outcomes: Vec<Outcome>,
    pub committed: Vec<EntryId>,
}

impl IngestReport {
    pub fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.outcomes.iter().filter(|o| f(o)).count()
    }
}

/// One store's log summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogStatus {
    pub entries: u64,
    /// Entries logged as void placeholders (never applied).
    pub voided: u64,
    /// Order-independent digest of the store's entry ids.
    pub digest: SetDigest,
    pub heads: Vec<EntryId>,
}

/// An author's chain tip in one store: the unit of a version vector.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainTip {
    pub author: AuthorId,
    pub seq: u64,
    pub id: EntryId,
}

/// One position of an author's chain, without the entry (see
/// [`Kernel::chain_index`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainPos {
    pub seq: u64,
    pub hlc: u64,
    pub id: EntryId,
    /// Size of the entry's wire bytes.
    pub bytes: usize,
}

/// Entries decoded and signature-checked by [`Kernel::check`], waiting
/// for [`Kernel::commit_checked`]. Its fields are private, so nothing
/// unchecked can be committed through it.
pub struct Checked {
    /// Per entry: decided already (rejected), or `None` until committed.
    outcomes: Vec<Option<Outcome>>,
    valid: Vec<SignedEntry>,
    /// Where each valid entry sits in `outcomes`.
    valid_slots: Vec<usize>,
}

fn check_decoded(decoded: Vec<Result<SignedEntry, crate::ValidationError>>) -> Checked {
    let mut outcomes: Vec<Option<Outcome>> = vec![None; decoded.len()];
    let mut ok = Vec::new();
    let mut slots = Vec::new();
    for (i, d) in decoded.into_iter().enumerate() {
        match d {
            Ok(e) => {
                ok.push(e);
                slots.push(i);
            }
            Err(err) => outcomes[i] = Some(Outcome::Rejected(err)),
        }
    }
    let verdicts = verify_all(&ok);
    let mut valid = Vec::with_capacity(ok.len());
    let mut valid_slots = Vec::with_capacity(ok.len());
    for ((e, v), slot) in ok.into_iter().zip(verdicts).zip(slots) {
        match v {
            Ok(()) => {
                valid.push(e);
                valid_slots.push(slot);
            }
            Err(err) => outcomes[slot] = Some(Outcome::Rejected(err)),
        }
    }
    Checked {
        outcomes,
        valid,
        valid_slots,
    }
}

/// A logged entry's place in a store's (HLC, id) order and its size,
/// without the entry: what a sender sorts and packs into batches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LogPos {
    pub hlc: u64,
    pub id: EntryId,
    /// Size of the entry's wire bytes.
    pub bytes: usize,
}

/// Evidence of an author signing two branches of its chain: entries at
/// `seq` with different ids, or an entry at `seq` and one at `seq + 1`
/// whose `prev` is not it. Any replica can check it with
/// [`Kernel::add_fork_evidence`].
#[derive(Clone, Debug)]
pub struct ForkEvidence {
    pub author: AuthorId,
    /// The seq the fork is proved at (the author's entries from here on are
    /// void once this is the lowest).
    pub seq: u64,
    pub entries: Vec<SignedEntry>,
}

enum Job {
    Append {
        store: StoreId,
        payload: Vec<u8>,
        reply: Sender<Result<SignedEntry, KernelError>>,
    },
    Ingest {
        entries: Vec<SignedEntry>,
        reply: Sender<Result<IngestReport, KernelError>>,
    },
    Sweep {
        cutoff_ms: u64,
        reply: Sender<Result<usize, KernelError>>,
    },
    /// A checked fork proof to record.
    Evidence {
        proof: Box<log::Proof>,
        reply: Sender<Result<ForkImport, KernelError>>,
    },
}

/// Where a job's answer goes, kept beside the job so a panic in the batch
/// can still answer it.
enum ReplyTo {
    Append(Sender<Result<SignedEntry, KernelError>>),
    Ingest(Sender<Result<IngestReport, KernelError>>),
    Sweep(Sender<Result<usize, KernelError>>),
    Evidence(Sender<Result<ForkImport, KernelError>>),
}

impl ReplyTo {
    fn fail(&self, e: impl Fn() -> KernelError) {
        // Best effort: a job already answered has a full or closed channel.
        match self {
            ReplyTo::Append(r) => drop(r.try_send(Err(e()))),
            ReplyTo::Ingest(r) => drop(r.try_send(Err(e()))),
            ReplyTo::Sweep(r) => drop(r.try_send(Err(e()))),
            ReplyTo::Evidence(r) => drop(r.try_send(Err(e()))),
        }
    }
}

impl Job {
    fn reply_to(&self) -> ReplyTo {
        match self {
            Job::Append { reply, .. } => ReplyTo::Append(reply.clone()),
            Job::Ingest { reply, .. } => ReplyTo::Ingest(reply.clone()),
            Job::Sweep { reply, .. } => ReplyTo::Sweep(reply.clone()),
            Job::Evidence { reply, .. } => ReplyTo::Evidence(reply.clone()),
        }
    }

    fn weight(&self) -> usize {
        match self {
            Job::Ingest { entries, .. } => entries.len().max(1),
            _ => 1,
        }
    }
}

struct Shared {
    db: Database,
    identity: Identity,
    clock: Hlc,
    config: KernelConfig,
    hook: Arc<dyn CommitHook>,
}

/// Set once, by the commit thread's supervisor, if the thread panicked.
type Death = Arc<OnceLock<String>>;

fn stopped(death: &Death) -> KernelError {
    match death.get() {
        Some(why) => KernelError::CommitThreadDied(why.clone()),
        None => KernelError::Stopped,
    }
}

/// A handle to the log. Cheap to share behind an `Arc`; dropping the last
/// handle stops the commit thread after it finishes queued work.
pub struct Kernel {
    shared: Arc<Shared>,
    jobs: Option<Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    death: Death,
    path: PathBuf,
}

/// A write in flight: wait for it with [`Pending::wait`].
pub struct Pending<T>(Receiver<Result<T, KernelError>>, Death);

impl<T> Pending<T> {
    pub fn wait(self) -> Result<T, KernelError> {
        self.0.recv().unwrap_or_else(|_| Err(stopped(&self.1)))
    }
}

impl Kernel {
    /// Opens the log database at `path`, creating it only if no file is
    /// there: an existing file that is empty or not a redb database is an
    /// error and is left untouched (redb would initialize a fresh, empty log
    /// in a 0-byte file, silently dropping the node's history).
    pub fn open(
        path: &Path,
        identity: Identity,
        config: KernelConfig,
        hook: Arc<dyn CommitHook>,
    ) -> Result<Kernel, KernelError> {
        let existed = check_existing_file(path)?;
        let db = match Database::builder()
            .set_cache_size(config.cache_bytes)
            .create(path)
        {
            Ok(db) => db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                return Err(KernelError::Locked {
                    path: path.to_path_buf(),
                });
            }
            Err(e) => {
                return Err(KernelError::Unreadable {
                    path: path.to_path_buf(),
                    reason: e.to_string(),
                });
            }
        };
        if !existed {
            // The log holds every store's data: private to the node's user.
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                    |e| KernelError::Unreadable {
                        path: path.to_path_buf(),
                        reason: e.to_string(),
                    },
                )?;
            }
        }
        Self::start(db, path, identity, config, hook)
    }

    /// Opens the log over a caller's redb storage backend instead of a
    /// file. Only tests need it: a fault-injecting backend that keeps
    /// unsynced writes in a volatile layer and drops or tears them at a
    /// simulated power cut (`tests/power_loss.rs`). Nothing of the file
    /// checks of [`Kernel::open`] applies; `label` stands in for the path
    /// in [`Kernel::path`].
    pub fn open_with_backend(
        backend: impl redb::StorageBackend,
        label: &Path,
        identity: Identity,
        config: KernelConfig,
        hook: Arc<dyn CommitHook>,
    ) -> Result<Kernel, KernelError> {
        let db = Database::builder()
            .set_cache_size(config.cache_bytes)
            .create_with_backend(backend)
            .map_err(|e| KernelError::Unreadable {
                path: label.to_path_buf(),
                reason: e.to_string(),
            })?;
        Self::start(db, label, identity, config, hook)
    }

    /// Everything after the database is open: tables, clock, commit thread.
    fn start(
        db: Database,
        path: &Path,
        identity: Identity,
        config: KernelConfig,
        hook: Arc<dyn CommitHook>,
    ) -> Result<Kernel, KernelError> {
        // Create every table up front so readers never race table creation.
        let txn = db.begin_write()?;
        {
            let lt = LogTxn::open(&txn)?;
            drop(lt);
            txn.open_table(log::ORPHAN_AUTHORS)?;
            log::backfill_by_time(&txn)?;
        }
        txn.commit()?;
        let clock = Hlc::new(config.max_clock_drift);
        let shared = Arc::new(Shared {
            db,
            identity,
            clock,
            config,
            hook,
        });
        // Never hand out an HLC below one already in our own log.
        shared.clock.merge(shared.max_logged_hlc()?);
        let (tx, rx) = unbounded();
        let worker = Arc::clone(&shared);
        let death: Death = Arc::default();
        let dead = death.clone();
        let thread = std::thread::Builder::new()
            .name("lattice-commit".into())
            .spawn(move || commit_loop(&worker, rx, &dead))
            .map_err(|e| KernelError::Hook(format!("cannot start commit thread: {e}")))?;
        Ok(Kernel {
            shared,
            jobs: Some(tx),
            thread: Some(thread),
            death,
            path: path.to_path_buf(),
        })
    }

    /// `Ok` while the commit thread runs; [`KernelError::CommitThreadDied`]
    /// once it has panicked (a daemon checks this and exits).
    pub fn health(&self) -> Result<(), KernelError> {
        match self.death.get() {
            Some(why) => Err(KernelError::CommitThreadDied(why.clone())),
            None => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn config(&self) -> &KernelConfig {
        &self.shared.config
    }

    pub fn author(&self) -> AuthorId {
        self.shared.identity.author()
    }

    pub fn identity(&self) -> &Identity {
        &self.shared.identity
    }

    pub fn clock(&self) -> &Hlc {
        &self.shared.clock
    }

    /// The database, for layers above that keep their own tables beside the
    /// log and read them in snapshots (plugin state, queries).
    pub fn db(&self) -> &Database {
        &self.shared.db
    }

    fn send(&self, job: Job) -> Result<(), KernelError> {
        self.health()?;
        self.jobs
            .as_ref()
            .ok_or(KernelError::Stopped)?
            .send(job)
            .map_err(|_| stopped(&self.death))
    }

    fn pending<T>(&self, rx: Receiver<Result<T, KernelError>>) -> Pending<T> {
        Pending(rx, self.death.clone())
    }

    /// Authors, signs, logs and applies one entry; returns once durable.
    pub fn append(&self, store: StoreId, payload: Vec<u8>) -> Result<SignedEntry, KernelError> {
        self.append_async(store, payload)?.wait()
    }

    /// Like [`append`](Self::append) but returns at once; many appends in
    /// flight share one transaction and one fsync.
    pub fn append_async(
        &self,
        store: StoreId,
        payload: Vec<u8>,
    ) -> Result<Pending<SignedEntry>, KernelError> {
        let (reply, rx) = bounded(1);
        self.send(Job::Append {
            store,
            payload,
            reply,
        })?;
        Ok(self.pending(rx))
    }

    /// Validates and commits entries received from a peer. Stateless rules
    /// and signatures are checked here, in parallel, before the transaction.
    pub fn ingest(&self, wires: &[Vec<u8>]) -> Result<IngestReport, KernelError> {
        self.commit_checked(self.check(wires))
    }

    /// Decodes and signature-checks entries from a peer without committing
    /// them: the costly part of an ingest, and the one that needs no
    /// commit thread, so a receiver checks its next batch while this one
    /// commits. Only [`Self::commit_checked`] takes the result.
    pub fn check(&self, wires: &[Vec<u8>]) -> Checked {
        let cfg = &self.shared.config;
        let decoded: Vec<_> = wires
            .iter()
            .map(|w| SignedEntry::decode(w, &cfg.limits, &self.shared.clock))
            .collect();
        check_decoded(decoded)
    }

    /// Like [`ingest`](Self::ingest) for entries in hand. They go through
    /// the same decoder as bytes from a peer: a [`SignedEntry`] can be
    /// signed over any draft (seq 0, too many deps), and the log must hold
    /// only what the wire rules accept (found by fuzzing: an entry signed at
    /// seq 0 was logged and then could not be read back).
    pub fn ingest_entries(&self, entries: Vec<SignedEntry>) -> Result<IngestReport, KernelError> {
        let wires: Vec<Vec<u8>> = entries.iter().map(SignedEntry::to_wire).collect();
        self.ingest(&wires)
    }

    /// Commits what [`Self::check`] let through (durable once it returns);
    /// the report has one outcome per entry checked, in order.
    pub fn commit_checked(&self, checked: Checked) -> Result<IngestReport, KernelError> {
        let Checked {
            mut outcomes,
            valid,
            valid_slots,
        } = checked;
        let mut committed = Vec::new();
        if !valid.is_empty() {
            let (reply, rx) = bounded(1);
            self.send(Job::Ingest {
                entries: valid,
                reply,
            })?;
            let report = self.pending(rx).wait()?;
            for (slot, o) in valid_slots.into_iter().zip(report.outcomes) {
                outcomes[slot] = Some(o);
            }
            committed = report.committed;
        }
        Ok(IngestReport {
            outcomes: outcomes
                .into_iter()
                .map(|o| o.expect("every slot decided"))
                .collect(),
            committed,
        })
    }

    /// Drops orphans older than the configured TTL; returns how many.
    pub fn sweep_orphans(&self) -> Result<usize, KernelError> {
        let ttl = self.shared.config.orphan_ttl.as_millis() as u64;
        self.sweep_orphans_before(now_ms().saturating_sub(ttl))
    }

    /// Drops orphans received before `cutoff_ms` (Unix ms).
    pub fn sweep_orphans_before(&self, cutoff_ms: u64) -> Result<usize, KernelError> {
        let (reply, rx) = bounded(1);
        self.send(Job::Sweep { cutoff_ms, reply })?;
        self.pending(rx).wait()
    }
}

impl Shared {
    fn max_logged_hlc(&self) -> Result<u64, KernelError> {
        let txn = self.db.begin_read()?;
        let tips = txn.open_table(log::TIPS)?;
        let mut max = 0;
        for row in tips.iter()? {
            let (_, v) = row?;
            max = max.max(log::decode_tip(v.value())?.hlc);
        }
        Ok(max)
    }

    fn author_local(
        &self,
        lt: &LogTxn<'_>,
        store: StoreId,
        payload: Vec<u8>,
    ) -> Result<SignedEntry, KernelError> {
        let me = self.identity.author();
        let tip = lt.tip(&store, &me)?;
        let heads = lt.heads(&store, self.config.limits.max_deps)?;
        let floor = heads
            .iter()
            .map(|(_, h)| *h)
            .chain(tip.as_ref().map(|t| t.hlc))
            .max()
            .unwrap_or(0);
        let mut hlc = self.clock.tick();
        if hlc <= floor {
            self.clock.merge(floor + 1);
            hlc = self.clock.tick();
        }
        let draft = Draft {
            store,
            seq: tip.as_ref().map_or(1, |t| t.seq + 1),
            prev: tip.as_ref().map_or(EntryId::ZERO, |t| t.id),
            hlc,
            deps: heads.into_iter().map(|(id, _)| id).collect(),
            payload,
        };
        Ok(SignedEntry::sign(&self.identity, draft))
    }
}

enum Answer {
    Append(
        Sender<Result<SignedEntry, KernelError>>,
        Result<SignedEntry, KernelError>,
    ),
    Ingest(
        Sender<Result<IngestReport, KernelError>>,
        IngestReport,
        Vec<EntryId>,
    ),
    Sweep(Sender<Result<usize, KernelError>>, usize),
    Evidence(
        Sender<Result<ForkImport, KernelError>>,
        Result<ForkImport, KernelError>,
    ),
}

impl Answer {
    /// Answer with `e` instead: the batch this job ran in did not commit.
    fn fail(self, e: impl Fn() -> KernelError) {
        let to = match self {
            Answer::Append(r, _) => ReplyTo::Append(r),
            Answer::Ingest(r, ..) => ReplyTo::Ingest(r),
            Answer::Sweep(r, _) => ReplyTo::Sweep(r),
            Answer::Evidence(r, _) => ReplyTo::Evidence(r),
        };
        to.fail(e);
    }
}

/// The commit thread. Each batch runs under `catch_unwind`: if anything in
/// it panics (a commit hook, a bug), the transaction is rolled back by the
/// unwind, the death is recorded *before* any waiter can observe a closed
/// channel, every job of the batch is answered with
/// [`KernelError::CommitThreadDied`], and the thread ends, so no later write
/// is accepted by a kernel whose hook state may be inconsistent. Jobs still
/// queued are dropped with the channel and their waiters see the same error.
fn commit_loop(shared: &Shared, rx: Receiver<Job>, death: &Death) {
    while let Ok(first) = rx.recv() {
        let mut weight = first.weight();
        let mut jobs = vec![first];
        while weight < shared.config.max_batch_entries {
            match rx.try_recv() {
                Ok(j) => {
                    weight += j.weight();
                    jobs.push(j);
                }
                Err(_) => break,
            }
        }
        let replies: Vec<ReplyTo> = jobs.iter().map(Job::reply_to).collect();
        if let Err(panic) = std::panic::catch_unwind(AssertUnwindSafe(|| run_batch(shared, jobs))) {
            let why = panic_message(panic.as_ref());
            tracing::error!(reason = %why, "commit thread panicked; the kernel accepts no more writes");
            let _ = death.set(why.clone());
            for r in &replies {
                r.fail(|| KernelError::CommitThreadDied(why.clone()));
            }
            return;
        }
    }
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        format!("panic: {s}")
    } else if let Some(s) = p.downcast_ref::<String>() {
        format!("panic: {s}")
    } else {
        "panic with a non-string payload".to_string()
    }
}

fn fail_all(jobs: Vec<Job>, err: &KernelError) {
    let msg = || KernelError::Hook(format!("transaction aborted: {err}"));
    for j in jobs {
        j.reply_to().fail(msg);
    }
}

fn run_batch(shared: &Shared, jobs: Vec<Job>) {
    let mut txn = match shared.db.begin_write() {
        Ok(t) => t,
        Err(e) => return fail_all(jobs, &e.into()),
    };
    if !shared.config.durable {
        if let Err(e) = txn.set_durability(Durability::None) {
            return fail_all(jobs, &e.into());
        }
    }
    let (answers, committed) = {
        let mut lt = match LogTxn::open(&txn) {
            Ok(lt) => lt.with_caps(log::Caps::of(&shared.config)),
            Err(e) => return fail_all(jobs, &e),
        };
        let mut answers = Vec::with_capacity(jobs.len());
        let mut failed = None;
        let mut pending = jobs.into_iter();
        for job in pending.by_ref() {
            match run_job(shared, &mut lt, job) {
                Ok(a) => answers.push(a),
                Err((e, job)) => {
                    failed = Some((e, job));
                    break;
                }
            }
        }
        if let Some((e, job)) = failed {
            tracing::error!(error = %e, "commit batch aborted");
            let mut rest: Vec<Job> = vec![job];
            rest.extend(pending);
            drop(lt);
            drop(txn);
            // Earlier jobs in this batch were never made durable either.
            for a in answers {
                a.fail(|| KernelError::Hook(format!("transaction aborted: {e}")));
            }
            return fail_all(rest, &e);
        }
        (answers, std::mem::take(&mut lt.committed))
    };
    if let Err(e) = txn.commit() {
        let e: KernelError = e.into();
        tracing::error!(error = %e, "commit failed");
        for a in answers {
            a.fail(|| KernelError::Hook(format!("commit failed: {e}")));
        }
        return;
    }
    if !committed.is_empty() {
        shared.hook.committed(&committed);
    }
    for a in answers {
        match a {
            Answer::Append(r, res) => drop(r.send(res)),
            Answer::Ingest(r, mut report, ids) => {
                report.committed = ids;
                drop(r.send(Ok(report)))
            }
            Answer::Sweep(r, n) => drop(r.send(Ok(n))),
            Answer::Evidence(r, i) => drop(r.send(i)),
        }
    }
}

/// Runs one job inside the batch transaction. A storage or hook failure
/// aborts the batch and hands the job back so its caller gets the error.
fn run_job(shared: &Shared, lt: &mut LogTxn<'_>, job: Job) -> Result<Answer, (KernelError, Job)> {
    let cfg = &shared.config;
    let hook = shared.hook.as_ref();
    let now = now_ms();
    match job {
        Job::Append {
            store,
            payload,
            reply,
        } => {
            let entry = match shared.author_local(lt, store, payload.clone()) {
                Ok(e) => e,
                Err(e) => {
                    return Err((
                        e,
                        Job::Append {
                            store,
                            payload,
                            reply,
                        },
                    ));
                }
            };
            match lt.submit(hook, &shared.clock, &cfg.limits, entry.clone(), now) {
                Ok(Outcome::Committed) => Ok(Answer::Append(reply, Ok(entry))),
                Ok(Outcome::Rejected(v)) => {
                    Ok(Answer::Append(reply, Err(KernelError::Rejected(v))))
                }
                Ok(other) => Ok(Answer::Append(
                    reply,
                    Err(KernelError::Hook(format!(
                        "local entry not committed: {other:?}"
                    ))),
                )),
                Err(e) => Err((
                    e,
                    Job::Append {
                        store,
                        payload,
                        reply,
                    },
                )),
            }
        }
        Job::Ingest { entries, reply } => {
            let before = lt.committed.len();
            let mut outcomes = Vec::with_capacity(entries.len());
            let ids: Vec<EntryId> = entries.iter().map(|e| e.id).collect();
            for e in &entries {
                match lt.submit(hook, &shared.clock, &cfg.limits, e.clone(), now) {
                    Ok(o) => outcomes.push(o),
                    Err(err) => return Err((err, Job::Ingest { entries, reply })),
                }
            }
            let committed: Vec<EntryId> = lt.committed[before..].iter().map(|e| e.id).collect();
            // An entry first parked as an orphan may have been unblocked by a
            // later entry of the same batch: report its final state.
            let now_in: std::collections::HashSet<EntryId> = committed.iter().copied().collect();
            for (o, id) in outcomes.iter_mut().zip(&ids) {
                if matches!(o, Outcome::Waiting { .. }) && now_in.contains(id) {
                    *o = Outcome::Committed;
                }
            }
            Ok(Answer::Ingest(
                reply,
                IngestReport {
                    outcomes,
                    committed: Vec::new(),
                },
                committed,
            ))
        }
        Job::Sweep { cutoff_ms, reply } => match lt.sweep_orphans(cutoff_ms) {
            Ok(n) => Ok(Answer::Sweep(reply, n)),
            Err(e) => Err((e, Job::Sweep { cutoff_ms, reply })),
        },
        // Evidence is held to the rule entries are: an author this store
        // would refuse (a stranger) cannot fill it with proofs, since a
        // member could mint strangers' forks without end. A refusal is not
        // final, like an entry's: the peer offers the proof again.
        Job::Evidence { proof, reply } => match hook.admit(lt.txn, &proof.second) {
            Ok(log::Admission::Refuse(why)) => Ok(Answer::Evidence(
                reply,
                Err(crate::error::ForkEvidenceError::Refused(why).into()),
            )),
            Ok(_) => match lt.record_evidence(hook, Some(&proof.first), &proof.second, proof.seq) {
                Ok(i) => Ok(Answer::Evidence(reply, Ok(i))),
                Err(e) => Err((e, Job::Evidence { proof, reply })),
            },
            Err(h) => Err((
                KernelError::Hook(h.to_string()),
                Job::Evidence { proof, reply },
            )),
        },
    }
}

/// The first bytes of every redb file (redb's `MAGICNUMBER`).
const REDB_MAGIC: [u8; 9] = [b'r', b'e', b'd', b'b', 0x1A, 0x0A, 0xA9, 0x0D, 0x0A];

/// Refuses an existing file at `path` that is empty or has no redb header,
/// reading it only. A missing file is fine (a new log is created): returns
/// whether the file existed.
fn check_existing_file(path: &Path) -> Result<bool, KernelError> {
    use std::io::Read;
    let unreadable = |e: std::io::Error| KernelError::Unreadable {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let mut f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(unreadable(e)),
    };
    let mut head = [0u8; REDB_MAGIC.len()];
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]).map_err(unreadable)? {
            0 => break,
            k => n += k,
        }
    }
    if n == 0 {
        return Err(KernelError::EmptyDatabase {
            path: path.to_path_buf(),
        });
    }
    if head[..n] != REDB_MAGIC || n < head.len() {
        return Err(KernelError::NotADatabase {
            path: path.to_path_buf(),
        });
    }
    Ok(true)
}

impl Drop for Kernel {
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
