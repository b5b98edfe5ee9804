//! `plugin check`: everything the host will decide about a blob, found
//! without stopping at the first refusal, each refusal with its cause and
//! its fix, plus a dry run of every method in a fresh instance.
//!
//! [`super::Runtime::load`] stops at the first rule a blob breaks (that is
//! its job: refuse). An author wants the whole picture, and wants it in
//! terms of what to change in the crate, not of component-model internals:
//! "imports `wasi:cli/environment`" means "you built with std".

use std::sync::Arc;

use prost_reflect::DynamicMessage;
use redb::ReadableDatabase as _;
use serde::{Deserialize, Serialize};

use super::{ApplyOutcome, CallError, Context, LoadError, MigrateOutcome, Op, Plugin, Runtime};
use super::{SUPPORTED_API_VERSIONS, v0_1_0, v0_2_0};

/// One finding that makes the host refuse the plugin (or makes it misbehave).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub cause: String,
    pub fix: String,
}

/// One method's dry run: its default request (all fields at their
/// defaults) through `prepare` or `query` on empty state, and for a command
/// the op it built through `apply`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DryRun {
    pub method: String,
    pub query: bool,
    pub input: String,
    pub output: String,
    /// What happened, in words: `op of 12 bytes, applied with 2 writes`,
    /// `rejected: …` (a plugin may refuse an empty request), `trapped: …`.
    pub outcome: String,
    pub ok: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckReport {
    pub hash: String,
    pub size: usize,
    pub max_size: usize,
    /// `lattice:plugin/state-machine@0.1.0`, when the imports name a version.
    pub world: Option<String>,
    pub api_version: Option<String>,
    /// Every import, and whether the host provides it.
    pub imports: Vec<(String, bool)>,
    pub exports: Vec<String>,
    /// (limit, value): what the plugin's calls run under on this host.
    pub limits: Vec<(String, String)>,
    /// `describe`'s answer, validated (None when loading failed).
    pub name: Option<String>,
    pub version: Option<String>,
    pub state_version: Option<u32>,
    pub service: Option<String>,
    pub op_type: Option<String>,
    pub dry_runs: Vec<DryRun>,
    pub problems: Vec<Problem>,
}

/// Methods dry-run at most (each may burn a call's whole fuel budget).
const MAX_DRY_RUNS: usize = 64;

const NO_STD_FIX: &str = "build without std: start src/lib.rs with `#![no_std]` and `extern crate alloc;`, depend on lattice-plugin-sdk (it supplies the allocator, panic handler and memcmp), and check `cargo tree` for a dependency that enables std";

/// The exports every supported world requires.
fn required_exports(version: &str) -> &'static [&'static str] {
    match version {
        v0_1_0::VERSION => &["describe", "prepare", "apply", "query"],
        v0_2_0::VERSION => &["describe", "prepare", "apply", "query", "migrate"],
        _ => &[],
    }
}

fn allowed_imports(version: &str) -> &'static [&'static str] {
    match version {
        v0_1_0::VERSION => &[v0_1_0::TYPES_IMPORT, v0_1_0::STATE_IMPORT],
        v0_2_0::VERSION => &[v0_2_0::TYPES_IMPORT, v0_2_0::STATE_IMPORT],
        _ => &[],
    }
}

impl CheckReport {
    /// Problems read as one line each (wasmtime's parse errors span
    /// several, with byte arrays in them).
    fn one_line(mut self) -> Self {
        for p in &mut self.problems {
            p.cause = p.cause.split_whitespace().collect::<Vec<_>>().join(" ");
        }
        self
    }
}

impl Runtime {
    /// Check `wasm` the way [`Runtime::load`] would, reporting every
    /// problem found instead of the first, then dry-run its methods.
    pub fn check(&self, wasm: &[u8]) -> CheckReport {
        self.check_all(wasm).one_line()
    }

    fn check_all(&self, wasm: &[u8]) -> CheckReport {
        let cfg = self.config();
        let p = &cfg.profile;
        let mut r = CheckReport {
            hash: blake3::hash(wasm).to_hex().to_string(),
            size: wasm.len(),
            max_size: cfg.max_wasm_bytes,
            world: None,
            api_version: None,
            imports: Vec::new(),
            exports: Vec::new(),
            limits: [
                ("fuel per apply", p.fuel_apply.to_string()),
                ("fuel per prepare/query", cfg.fuel_call.to_string()),
                ("memory", format!("{} bytes", p.memory_limit)),
                ("wasm stack", format!("{} bytes", p.max_wasm_stack)),
                ("key", format!("{} bytes", p.max_key_bytes)),
                ("value", format!("{} bytes", p.max_value_bytes)),
                (
                    "writes per apply",
                    format!("{} bytes", p.max_apply_write_bytes),
                ),
                ("rows per scan", p.max_scan_rows.to_string()),
                ("request", format!("{} bytes", cfg.max_request_bytes)),
                ("reply", format!("{} bytes", cfg.max_reply_bytes)),
                ("profile", format!("v{}", p.version)),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
            name: None,
            version: None,
            state_version: None,
            service: None,
            op_type: None,
            dry_runs: Vec::new(),
            problems: Vec::new(),
        };
        let mut problem = |cause: String, fix: &str| {
            r.problems.push(Problem {
                cause,
                fix: fix.to_string(),
            })
        };
        if wasm.len() > cfg.max_wasm_bytes {
            problem(
                format!(
                    "the plugin is {} bytes, over this host's {}-byte limit",
                    wasm.len(),
                    cfg.max_wasm_bytes
                ),
                "build with the release profile of the template (opt-level = \"s\", lto = true, strip) and drop heavy dependencies",
            );
        }
        let component = match super::plugin::compile_component(&self.shared.engine, wasm) {
            Ok(c) => c,
            Err(e) => {
                let core_module =
                    wasm.len() >= 8 && wasm[..4] == *b"\0asm" && wasm[4..8] == [1, 0, 0, 0];
                if core_module {
                    problem(
                        "this is a core wasm module, not a component".into(),
                        "build for wasm32-wasip2 (`cargo build --release` with the template's .cargo/config.toml, or --target wasm32-wasip2), which emits a component",
                    );
                } else {
                    problem(
                        format!("{e}"),
                        "give the .wasm that `cargo build --release --target wasm32-wasip2` wrote under target/wasm32-wasip2/release/",
                    );
                }
                return r;
            }
        };
        let engine = &self.shared.engine;
        let ty = component.component_type();
        let mut version: Option<String> = None;
        for (name, _) in ty.imports(engine) {
            let v = name
                .strip_prefix("lattice:plugin/")
                .and_then(|rest| rest.split_once('@'))
                .map(|(_, v)| v.to_string());
            let ok = v
                .as_deref()
                .is_some_and(|v| allowed_imports(v).contains(&name));
            r.imports.push((name.to_string(), ok));
            if version.is_none() {
                version = v;
            }
        }
        r.exports = ty.exports(engine).map(|(n, _)| n.to_string()).collect();
        let version = version.unwrap_or_else(|| SUPPORTED_API_VERSIONS[0].to_string());
        let supported = SUPPORTED_API_VERSIONS.contains(&version.as_str());
        r.api_version = Some(version.clone());
        r.world = Some(format!("lattice:plugin/state-machine@{version}"));
        let mut problem = |cause: String, fix: &str| {
            r.problems.push(Problem {
                cause,
                fix: fix.to_string(),
            })
        };
        let wasi: Vec<&str> = r
            .imports
            .iter()
            .filter(|(n, _)| n.starts_with("wasi:"))
            .map(|(n, _)| n.as_str())
            .collect();
        if !wasi.is_empty() {
            problem(
                format!(
                    "imports {} WASI interface(s) ({}, ...), which this host does not provide: the plugin was built with std",
                    wasi.len(),
                    wasi[0]
                ),
                NO_STD_FIX,
            );
        }
        for (name, ok) in &r.imports {
            if *ok || name.starts_with("wasi:") {
                continue;
            }
            if name.starts_with("lattice:plugin/") && !supported {
                continue; // reported once, below
            }
            problem(
                format!("imports `{name}`, which this host does not provide"),
                "a plugin may import only lattice:plugin/types and lattice:plugin/state of one version; remove the dependency that needs it",
            );
        }
        if !supported {
            problem(
                format!(
                    "built against lattice:plugin@{version}; this host loads {}",
                    SUPPORTED_API_VERSIONS.join(", ")
                ),
                "rebuild with the lattice-plugin-sdk of this host's release (or run a host that supports that version)",
            );
        }
        for e in required_exports(&version) {
            if !r.exports.iter().any(|x| x == e) {
                problem(
                    format!("does not export `{e}` of the lattice:plugin@{version} world"),
                    "implement StateMachine for your type and put `lattice_plugin_sdk::export_plugin!(YourType);` at the crate root",
                );
            }
        }
        if !r.problems.is_empty() {
            return r;
        }
        match self.load(wasm) {
            Ok(plugin) => self.dry_run(&plugin, &mut r),
            Err(e) => {
                let fix = load_fix(&e);
                r.problems.push(Problem {
                    cause: e.to_string(),
                    fix: fix.to_string(),
                });
            }
        }
        r
    }

    fn dry_run(&self, plugin: &Arc<Plugin>, r: &mut CheckReport) {
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

/// What an author changes for each way [`Runtime::load`] refuses.
fn load_fix(e: &LoadError) -> &'static str {
    match e {
        LoadError::TooLarge { .. } => "build with the template's release profile",
        LoadError::Invalid(_) => "give the component cargo built for wasm32-wasip2",
        LoadError::ForbiddenImport { .. } => NO_STD_FIX,
        LoadError::UnsupportedVersion { .. } | LoadError::MixedVersions { .. } => {
            "rebuild with the lattice-plugin-sdk of this host's release"
        }
        LoadError::WorldMismatch { .. } => {
            "build with lattice-plugin-sdk and export the type with `export_plugin!`"
        }
        LoadError::Instantiate(_) => {
            "the component needs more memory, tables or instances than a plugin gets; drop static buffers"
        }
        LoadError::Describe(_) => {
            "describe must not trap: check NAME, VERSION and DESCRIPTOR_SET of your StateMachine"
        }
        LoadError::BadInfo { .. } => {
            "NAME and VERSION must be 1..=128 characters without control characters"
        }
        LoadError::BadDescriptor(_) => {
            "DESCRIPTOR_SET must be `lattice_plugin_sdk::descriptor_set!()` from sdk-build's compile"
        }
        LoadError::UnknownService(_) => {
            "SERVICE must be the full name of the .proto's service: `package.Service`"
        }
        LoadError::UnknownOpType(_) => {
            "OP_TYPE must be the full name of the op message: `package.Message`"
        }
    }
}
