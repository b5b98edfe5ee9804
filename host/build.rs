//! Builds the plugins workspace (`../plugins`, target wasm32-wasip2) so the
//! host can embed the shipped plugins (`kv`, `log`, `chat`) and its tests can
//! load the example and the malicious test plugins.
//!
//! The inner build gets its own, stable target dir (`<outer target>/plugins`)
//! so it is incremental across outer builds and never contends with the
//! outer build's lock, and a scrubbed environment: flags meant for the host
//! build (RUSTFLAGS, clippy's wrapper, cargo's per-package variables) must
//! not leak into a wasm build.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// (cargo package, lib file stem, env var naming the artifact path).
const PLUGINS: &[(&str, &str, &str)] = &[
    ("lattice-kv", "kv", "LATTICE_PLUGIN_KV_WASM"),
    ("lattice-log", "log", "LATTICE_PLUGIN_LOG_WASM"),
    ("lattice-chat", "chat", "LATTICE_PLUGIN_CHAT_WASM"),
    ("lattice-counter", "counter", "LATTICE_PLUGIN_COUNTER_WASM"),
    (
        "lattice-counter2",
        "counter2",
        "LATTICE_PLUGIN_COUNTER2_WASM",
    ),
    ("lattice-test-evil", "evil", "LATTICE_TEST_PLUGIN_EVIL_WASM"),
    (
        "lattice-test-global",
        "global",
        "LATTICE_TEST_PLUGIN_GLOBAL_WASM",
    ),
    (
        "lattice-test-partial",
        "partial",
        "LATTICE_TEST_PLUGIN_PARTIAL_WASM",
    ),
    (
        "lattice-test-wasi",
        "wasi_import",
        "LATTICE_TEST_PLUGIN_WASI_WASM",
    ),
];

const TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let root = manifest_dir.parent().unwrap_or(&manifest_dir).to_path_buf();
    let plugins = root.join("plugins");
    let wit = root.join("wit");

    for p in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
        "sdk",
        "sdk-build",
        "kv",
        "log",
        "chat",
        "examples",
        "testing",
    ] {
        println!("cargo::rerun-if-changed={}", plugins.join(p).display());
    }
    println!("cargo::rerun-if-changed={}", wit.display());
    println!("cargo::rerun-if-env-changed=LATTICE_PLUGINS_TARGET_DIR");

    if let Err(msg) = check_target_installed() {
        println!("cargo::error={msg}");
        return;
    }

    let target_dir = plugins_target_dir();
    let cargo = env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&plugins)
        .arg("build")
        .arg("--release")
        .arg("--target")
        .arg(TARGET)
        .arg("--manifest-path")
        .arg(plugins.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for (package, _, _) in PLUGINS {
        cmd.arg("-p").arg(package);
    }
    scrub_env(&mut cmd);

    let output = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            println!("cargo::error=cannot run cargo to build the plugins workspace: {e}");
            return;
        }
    };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("wasm32-wasip2") && stderr.contains("target may not be installed") {
            println!(
                "cargo::error=the wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`"
            );
            return;
        }
        println!(
            "cargo::error=building the plugins workspace ({}) failed:",
            plugins.display()
        );
        for line in stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .rev()
            .take(40)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
        {
            println!("cargo::error=  {line}");
        }
        return;
    }

    let out = target_dir.join(TARGET).join("release");
    for (package, stem, var) in PLUGINS {
        let path = out.join(format!("{stem}.wasm"));
        if !path.is_file() {
            println!(
                "cargo::error=plugin `{package}` built but {} is missing",
                path.display()
            );
            return;
        }
        println!("cargo::rustc-env={var}={}", path.display());
    }
}

/// Make sure the wasm target is installed: RUSTUP_AUTO_INSTALL is off on
/// our machines, so nothing installs it implicitly. Try `rustup target add`
/// once; if that is impossible, fail with one clear line saying what to run.
fn check_target_installed() -> Result<(), String> {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let out = Command::new(rustc)
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("cannot run rustc: {e}"))?;
    let sysroot = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let lib = Path::new(&sysroot).join("lib").join("rustlib").join(TARGET);
    if lib.is_dir() {
        return Ok(());
    }
    // A fresh machine: install the target ourselves (RUSTUP_AUTO_INSTALL is
    // off here, so nothing else will), then check again.
    println!(
        "cargo::warning=installing the {TARGET} target (rustup target add {TARGET}) to build the shipped plugins"
    );
    let installed = Command::new("rustup")
        .args(["target", "add", TARGET])
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if installed && lib.is_dir() {
        Ok(())
    } else {
        Err(format!(
            "the {TARGET} target is not installed for this toolchain: run `rustup target add {TARGET}`"
        ))
    }
}

/// `<outer target dir>/plugins`: found as the ancestor of OUT_DIR holding
/// cargo's `CACHEDIR.TAG` (works with and without `--target`, and with
/// CARGO_TARGET_DIR), or LATTICE_PLUGINS_TARGET_DIR if set.
fn plugins_target_dir() -> PathBuf {
    if let Some(dir) = env::var_os("LATTICE_PLUGINS_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let out_dir = PathBuf::from(env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    out_dir
        .ancestors()
        .find(|a| a.join("CACHEDIR.TAG").is_file())
        .map(|t| t.join("plugins"))
        .unwrap_or_else(|| out_dir.join("plugins-target"))
}

/// Remove variables the outer cargo set for *this* package's build (and
/// flags meant for the host build), so the inner build sees a clean
/// environment. User configuration such as `CARGO_TARGET_<triple>_LINKER`
/// is kept: the inner build scripts still compile for the host. The jobserver (CARGO_MAKEFLAGS) is
/// kept so both builds share the machine's job slots.
fn scrub_env(cmd: &mut Command) {
    const EXACT: &[&str] = &[
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_DEP_INFO_BASEDIR",
        "RUSTC_WORKSPACE_WRAPPER",
        "CLIPPY_ARGS",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_CRATE_NAME",
        "CARGO_MANIFEST_LINKS",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "PROFILE",
        "OPT_LEVEL",
        "DEBUG",
        "NUM_JOBS",
        "RUSTC_LINKER",
        "CARGO_PROFILE_RELEASE_DEBUG",
    ];
    for var in EXACT {
        cmd.env_remove(var);
    }
    for (key, _) in env::vars_os() {
        let Some(k) = key.to_str() else { continue };
        if k.starts_with("CARGO_CFG_")
            || k.starts_with("CARGO_FEATURE_")
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("DEP_")
        {
            cmd.env_remove(k);
        }
    }
}
