//! `plugin check`: everything the host will decide about a blob, found
//! without stopping at the first refusal, each refusal with its cause and
//! its fix, plus a dry run of every method in a fresh instance.
//!
//! [`super::Runtime::load`] stops at the first rule a blob breaks (that is
//! its job: refuse). An author wants the whole picture, and wants it in
//! terms of what to change in the crate, not of component-model internals:
//! "imports `wasi:cli/environment`" means "you built with std".

use serde::{Deserialize, Serialize};

use super::{LoadError, Runtime, SUPPORTED_API_VERSIONS, v0_1_0, v0_2_0};

mod dry_run;

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
