//! Build-script helper for Lattice plugins (runs on the build machine).
//!
//! A plugin's `build.rs` is:
//!
//! ```no_run
//! fn main() {
//!     lattice_plugin_sdk_build::compile(&["proto/counter.proto"], &["proto"]).unwrap();
//! }
//! ```
//!
//! It compiles the .proto files with protox (pure Rust, no `protoc` to
//! install), writes the encoded `FileDescriptorSet` the plugin returns from
//! `describe` to `$OUT_DIR/descriptor_set.bin` (see the SDK's
//! `descriptor_set!`), and generates prost structs into
//! `$OUT_DIR/{package}.rs` (see `include_proto!`).
// The example is a build script: its `fn main` is the point.
#![allow(clippy::needless_doctest_main)]

use std::error::Error;
use std::path::{Path, PathBuf};

/// File name of the encoded descriptor set under `OUT_DIR`. The SDK's
/// `descriptor_set!` macro reads the same name.
pub const DESCRIPTOR_SET_FILE: &str = "descriptor_set.bin";

/// [`compile`] for a build script that wants cargo to show the failure as
/// an error (`error: ...`, the build stops) rather than as a panic with a
/// backtrace hint: `fn main() { lattice_plugin_sdk_build::build(&[..], &[..]) }`.
pub fn build(protos: &[impl AsRef<Path>], includes: &[impl AsRef<Path>]) {
    if let Err(e) = compile(protos, includes) {
        for line in e.to_string().lines() {
            println!("cargo::error={line}");
        }
    }
}

/// Compiles `protos` (paths under one of `includes`) for a plugin; see the
/// crate docs. Errors carry protox's file:line diagnostics.
pub fn compile(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
) -> Result<(), Box<dyn Error>> {
    let out_dir = PathBuf::from(
        std::env::var_os("OUT_DIR")
            .ok_or("OUT_DIR is not set: call compile from a build script")?,
    );
    check_crate_is_no_std()?;
    compile_to(protos, includes, &out_dir)?;
    for p in protos {
        println!("cargo:rerun-if-changed={}", p.as_ref().display());
    }
    for i in includes {
        println!("cargo:rerun-if-changed={}", i.as_ref().display());
    }
    Ok(())
}

/// A plugin that forgot `#![no_std]` fails to link with rustc's
/// "found duplicate lang item `panic_impl`" (std and the SDK both define the
/// panic handler), which names neither the cause nor the fix. The build
/// script runs first, so it can say both. Only for wasm builds: native
/// `cargo test` of a no_std plugin links std for the harness anyway.
fn check_crate_is_no_std() -> Result<(), Box<dyn Error>> {
    let wasm = std::env::var("TARGET").is_ok_and(|t| t.starts_with("wasm32"));
    let Some(dir) = std::env::var_os("CARGO_MANIFEST_DIR") else {
        return Ok(());
    };
    let lib = Path::new(&dir).join("src").join("lib.rs");
    println!("cargo:rerun-if-changed={}", lib.display());
    match std::fs::read_to_string(&lib) {
        Ok(src) if wasm => check_no_std(&src).map_err(|e| format!("{}: {e}", lib.display()).into()),
        _ => Ok(()),
    }
}

/// Whether a crate root declares `#![no_std]` (also inside a `cfg_attr`);
/// the error says why it matters and what to write.
pub fn check_no_std(src: &str) -> Result<(), String> {
    let code: String = src
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(at) = rest.find("#![") {
        let attr = &rest[at + 3..];
        let end = attr.find(']').unwrap_or(attr.len());
        if attr[..end].contains("no_std") {
            return Ok(());
        }
        rest = &attr[end..];
    }
    Err(
        "the plugin is not `#![no_std]`. A plugin built with std fails to link \
         (\"found duplicate lang item `panic_impl`\": std and lattice-plugin-sdk both \
         define the panic handler) or, without the SDK, imports WASI, which the host \
         refuses. Fix: start src/lib.rs with `#![no_std]` and `extern crate alloc;`, \
         and use `alloc::` (or the SDK's prelude) for String, Vec and format!"
            .into(),
    )
}

/// [`compile`] into an explicit directory (no cargo output): for tools and
/// tests.
pub fn compile_to(
    protos: &[impl AsRef<Path>],
    includes: &[impl AsRef<Path>],
    out_dir: &Path,
) -> Result<(), Box<dyn Error>> {
    let mut compiler = protox::Compiler::new(includes.iter().map(AsRef::as_ref))?;
    // Comments on services, methods, messages and fields live in the source
    // info; the CLI turns them into `--help`, so they must survive.
    compiler.include_source_info(true);
    // Self-contained: a reader of the descriptor set needs every imported
    // file too.
    compiler.include_imports(true);
    for p in protos {
        compiler.open_file(p.as_ref())?;
    }
    std::fs::write(
        out_dir.join(DESCRIPTOR_SET_FILE),
        compiler.encode_file_descriptor_set(),
    )?;

    prost_build::Config::new()
        .out_dir(out_dir)
        // Deterministic code, and prost-build emits `::prost::alloc` paths,
        // which compile under `no_std` + `alloc`.
        .btree_map(["."])
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_no_std;
    use prost::Message;

    #[test]
    fn no_std_is_found_and_its_absence_explained() {
        assert!(check_no_std("//! Docs\n#![no_std]\nextern crate alloc;").is_ok());
        assert!(check_no_std("#![allow(dead_code)]\n#![cfg_attr(not(test), no_std)]").is_ok());
        for bad in [
            "extern crate alloc;\nfn main() {}",
            "// #![no_std]\nuse std::vec::Vec;",
            "#![allow(unused)]\nconst NO_STD: &str = \"no_std\";",
        ] {
            let e = check_no_std(bad).unwrap_err();
            assert!(
                e.contains("duplicate lang item") && e.contains("#![no_std]"),
                "{e}"
            );
        }
    }

    use std::path::Path;

    /// The CLI's `--help` comes from the descriptor's source info: a
    /// compile that dropped it would leave every plugin undocumented.
    #[test]
    fn descriptor_set_keeps_comments_and_structs_are_generated() {
        let out = std::env::temp_dir().join(format!("lattice-sdk-build-{}", std::process::id()));
        std::fs::create_dir_all(&out).unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/counter/proto");
        super::compile_to(&[root.join("counter.proto")], &[&root], &out).unwrap();

        let bytes = std::fs::read(out.join(super::DESCRIPTOR_SET_FILE)).unwrap();
        let fds = prost_types::FileDescriptorSet::decode(bytes.as_slice()).unwrap();
        let file = fds
            .file
            .iter()
            .find(|f| f.name() == "counter.proto")
            .unwrap();
        assert_eq!(file.package(), "lattice.counter");
        let comments: Vec<&str> = file
            .source_code_info
            .as_ref()
            .expect("source info")
            .location
            .iter()
            .filter_map(|l| l.leading_comments.as_deref())
            .collect();
        assert!(
            comments.iter().any(|c| c.contains("How much to add")),
            "{comments:?}"
        );

        let rust = std::fs::read_to_string(out.join("lattice.counter.rs")).unwrap();
        assert!(rust.contains("pub struct CounterOp"));
        assert!(!rust.contains("::std::"), "generated code must be no_std");
        std::fs::remove_dir_all(&out).unwrap();
    }
}
