//! The dry run of `plugin check`: every method's default request through
//! `prepare` (then its op through `apply`) or `query`, and `migrate` from
//! the plugin's own state version, each in a fresh instance over a scratch
//! in-memory database.

use std::sync::Arc;

use prost_reflect::DynamicMessage;
use redb::ReadableDatabase as _;

use super::{CheckReport, DryRun, MAX_DRY_RUNS, Problem};
use crate::runtime::{ApplyOutcome, CallError, Context, MigrateOutcome, Op, Plugin, Runtime};

impl Runtime {
    pub(super) fn dry_run(&self, plugin: &Arc<Plugin>, r: &mut CheckReport) {
        let info = plugin.info();
        r.name = Some(info.name.clone());
        r.version = Some(info.version.clone());
        r.state_version = Some(info.state_version);
        r.service = Some(info.service.full_name().to_string());
        r.op_type = Some(info.op_type.full_name().to_string());
        // A throwaway in-memory database: the dry run sees empty state and
        // leaves nothing anywhere.
        let db = match redb::Database::builder()
            .create_with_backend(redb::backends::InMemoryBackend::new())
        {
            Ok(db) => db,
            Err(e) => {
                r.problems.push(Problem {
                    cause: format!("cannot open a scratch database for the dry run: {e}"),
                    fix: "this is the host's problem, not the plugin's".into(),
                });
                return;
            }
        };
        let store = [0u8; 16];
        let ctx = Context {
            author: vec![1; 32],
            hlc: 1 << 16,
        };
        // Each dry run may spend a whole call's fuel: bound the total.
        if info.methods.len() > MAX_DRY_RUNS {
            r.problems.push(Problem {
                cause: format!(
                    "the service has {} methods; only the first {MAX_DRY_RUNS} were dry-run",
                    info.methods.len()
                ),
                fix: "split the plugin: a store's service should be a handful of methods".into(),
            });
        }
        for m in info.methods.iter().take(MAX_DRY_RUNS) {
            let mut run = DryRun {
                method: m.name.clone(),
                query: m.is_query,
                input: m.input.full_name().to_string(),
                output: m.output.full_name().to_string(),
                outcome: String::new(),
                ok: true,
            };
            let default = DynamicMessage::new(m.input.clone());
            let request = prost::Message::encode_to_vec(&default);
            let result = db.begin_read().map_err(|e| e.to_string()).and_then(|tx| {
                Ok(if m.is_query {
                    plugin.query(&tx, &store, &m.name, &request).map(|b| (b, 0))
                } else {
                    plugin
                        .prepare(&tx, &store, &ctx, &m.name, &request)
                        .map(|p| (p.op, p.reply.len()))
                })
            });
            let fail = |run: &mut DryRun, r: &mut CheckReport, what: String, fix: &str| {
                run.ok = false;
                run.outcome = what.clone();
                r.problems.push(Problem {
                    cause: format!("`{}` with its default request: {what}", m.name),
                    fix: fix.to_string(),
                });
            };
            match result {
                Err(e) => fail(
                    &mut run,
                    r,
                    format!("host error: {e}"),
                    "retry; this is the host's problem",
                ),
                Ok(Err(CallError::Rejected(msg))) => run.outcome = format!("rejected: {msg}"),
                Ok(Err(e)) if e.is_guest_failure() => {
                    fail(&mut run, r, format!("failed: {e}"), guest_fix(&e))
                }
                Ok(Err(e)) => fail(&mut run, r, format!("failed: {e}"), "see the cause"),
                Ok(Ok((bytes, _))) if m.is_query => {
                    if DynamicMessage::decode(m.output.clone(), bytes.as_slice()).is_ok() {
                        run.outcome = format!("reply of {} bytes", bytes.len());
                    } else {
                        fail(
                            &mut run,
                            r,
                            format!(
                                "its {}-byte reply does not decode as {}",
                                bytes.len(),
                                m.output.full_name()
                            ),
                            "return the method's reply message, encoded (the SDK's `handle` does)",
                        );
                    }
                }
                Ok(Ok((op, reply))) => {
                    self.dry_apply(plugin, &db, &store, &ctx, op, &mut run, r);
                    if run.ok {
                        run.outcome.push_str(&format!(", reply of {reply} bytes"));
                    }
                }
            }
            r.dry_runs.push(run);
        }
        self.dry_migrate(plugin, &db, &store, r);
    }

    /// `migrate(own state version)` on empty state must succeed and write
    /// nothing: that is what a store switching between two builds of the
    /// same layout runs.
    fn dry_migrate(
        &self,
        plugin: &Plugin,
        db: &redb::Database,
        store: &[u8; 16],
        r: &mut CheckReport,
    ) {
        let v = plugin.info().state_version;
        let profile = self.config().profile;
        let outcome = db.begin_write().map_err(|e| e.to_string()).and_then(|tx| {
            plugin
                .migrate_with(&tx, store, v, &profile)
                .map_err(|e| e.to_string())
        });
        let mut run = DryRun {
            method: "migrate".into(),
            query: false,
            input: format!("from-version {v}"),
            output: String::new(),
            outcome: String::new(),
            ok: true,
        };
        let fix = "migrate(from) with `from` = STATE_VERSION must return Ok(()) and write nothing (the SDK's default migrate does)";
        let bad = match outcome {
            Ok(MigrateOutcome::Unsupported) => return, // a 0.1.0 plugin
            Ok(MigrateOutcome::Migrated { writes: 0 }) => {
                run.outcome = format!("migrate({v}) ok, nothing to rewrite");
                None
            }
            Ok(MigrateOutcome::Migrated { writes }) => Some(format!(
                "migrate({v}) from its own state version wrote {writes} key(s)"
            )),
            Ok(MigrateOutcome::Refused(msg)) => Some(format!(
                "migrate({v}) from its own state version refused: {msg}"
            )),
            Ok(MigrateOutcome::Failed(e)) => Some(format!("migrate({v}) failed: {e}")),
            Err(e) => Some(format!("host error: {e}")),
        };
        if let Some(cause) = bad {
            run.ok = false;
            run.outcome = cause.clone();
            r.problems.push(Problem {
                cause,
                fix: fix.into(),
            });
        }
        r.dry_runs.push(run);
    }

    #[allow(clippy::too_many_arguments)]
    fn dry_apply(
        &self,
        plugin: &Plugin,
        db: &redb::Database,
        store: &[u8; 16],
        ctx: &Context,
        payload: Vec<u8>,
        run: &mut DryRun,
        r: &mut CheckReport,
    ) {
        let info = plugin.info();
        let len = payload.len();
        let mut problem = |run: &mut DryRun, what: String, fix: &str| {
            run.ok = false;
            run.outcome = what.clone();
            r.problems.push(Problem {
                cause: format!("`{}` with its default request: {what}", run.method),
                fix: fix.to_string(),
            });
        };
        if DynamicMessage::decode(info.op_type.clone(), payload.as_slice()).is_err() {
            return problem(
                run,
                format!(
                    "its {len}-byte op does not decode as the op type {}",
                    info.op_type.full_name()
                ),
                "prepare must return the encoded op message named by OP_TYPE",
            );
        }
        let op = Op {
            id: vec![2; 32],
            author: ctx.author.clone(),
            seq: 1,
            hlc: ctx.hlc,
            deps: Vec::new(),
            payload,
        };
        let outcome = db
            .begin_write()
            .map_err(|e| e.to_string())
            .and_then(|tx| plugin.apply(&tx, store, &op).map_err(|e| e.to_string()));
        match outcome {
            Ok(ApplyOutcome::Applied { writes }) => {
                run.outcome = format!("op of {len} bytes, applied with {writes} write(s)")
            }
            Ok(ApplyOutcome::NoOp { reason }) => problem(
                run,
                format!("apply of its own op failed: {reason}"),
                "apply must be total: a payload it cannot use is a no-op, never a panic",
            ),
            Ok(ApplyOutcome::Halted { halt }) => problem(
                run,
                format!("apply of its own op failed: {}", halt.reason),
                "apply must be total: a payload it cannot use is a no-op, never a panic",
            ),
            Err(e) => problem(
                run,
                format!("host error: {e}"),
                "retry; this is the host's problem",
            ),
        }
    }
}

/// What an author changes when a call fails in the guest.
fn guest_fix(e: &CallError) -> &'static str {
    match e {
        CallError::OutOfFuel { .. } => {
            "the call never finished within its fuel: look for an unbounded loop, and page through state (state::iter) instead of reading all of it"
        }
        CallError::MemoryLimit { .. } | CallError::TableLimit { .. } => {
            "the call outgrew the memory cap: do not collect all of state into memory; bound replies with a limit"
        }
        CallError::ReadOnlyState { .. } => {
            "prepare and query see state read-only: write only in apply (return the change as the op)"
        }
        CallError::StackOverflow => "deep recursion: make it a loop",
        CallError::ReplyTooLarge { .. } => "bound the reply with a limit field and page",
        _ => {
            "prepare and query must return an error for input they cannot use, never panic (no unwrap, no indexing past the end)"
        }
    }
}
