//! Plugin blobs before anything is compiled or stored: `runtime::screen`,
//! the first step of `Runtime::load` for a blob from a user or a peer.
//! Arbitrary bytes must be refused with one of the screening errors
//! (`Invalid`, `ForbiddenImport`, `UnsupportedVersion`, `MixedVersions`),
//! never a panic; what passes names a supported `lattice:plugin` version.
//!
//! Validate-only on purpose: a cranelift compile costs 100–200 ms a blob,
//! which would leave libFuzzer a few executions a second. What happens
//! after the screen (compile, world check, `describe`) is covered by the
//! host's tests with real and hostile plugins (host/tests/runtime_*.rs).
#![no_main]

use lattice_fuzz::seed;
use lattice_host::runtime::{LoadError, SUPPORTED_API_VERSIONS, builtin, screen};
use libfuzzer_sys::fuzz_target;

fn seeds() -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = builtin::BUILTIN.iter().map(|(_, w)| w.to_vec()).collect();
    for path in [
        lattice_host::artifacts::COUNTER,
        lattice_host::artifacts::WASI_IMPORT,
        lattice_host::artifacts::PARTIAL,
    ] {
        out.push(std::fs::read(path).expect("the plugin artifacts are built"));
    }
    // A core module, and an empty component.
    out.push(b"\0asm\x01\0\0\0".to_vec());
    out.push(b"\0asm\x0d\0\x01\0".to_vec());
    out
}

fuzz_target!(init: seed(seeds), |data: &[u8]| {
    match screen(data) {
        Ok(v) => assert!(SUPPORTED_API_VERSIONS.contains(&v)),
        Err(
            LoadError::Invalid(_)
            | LoadError::ForbiddenImport { .. }
            | LoadError::UnsupportedVersion { .. }
            | LoadError::MixedVersions { .. },
        ) => {}
        Err(other) => panic!("screening gave a non-screening error: {other}"),
    }
});
