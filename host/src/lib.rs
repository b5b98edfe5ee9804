//! Lattice host: runs replicated state machines. For now this crate holds
//! the sandboxed wasm plugin [`runtime`]; stores, the node and networking
//! build on it.
pub mod api;
pub mod node;
pub mod runtime;

/// Paths of plugin artifacts built by `build.rs` that are not embedded:
/// the SDK example and the test suite's hostile plugins. For tests and
/// examples of this and dependent crates (the CLI's end-to-end tests).
pub mod artifacts {
    /// `plugins/examples/counter`: a third-party plugin built with the SDK.
    pub const COUNTER: &str = env!("LATTICE_PLUGIN_COUNTER_WASM");
    /// `plugins/examples/counter2`: the counter at state version 2, with a
    /// `migrate(1)` (what a counter store upgrades to).
    pub const COUNTER2: &str = env!("LATTICE_PLUGIN_COUNTER2_WASM");
    /// `plugins/testing/wasi`: a component importing WASI (must be refused).
    pub const WASI_IMPORT: &str = env!("LATTICE_TEST_PLUGIN_WASI_WASM");
    /// `plugins/testing/partial`: a 0.1.0 component without `apply`.
    pub const PARTIAL: &str = env!("LATTICE_TEST_PLUGIN_PARTIAL_WASM");
    /// `plugins/testing/evil`: loops, memory bombs, traps on request.
    pub const EVIL: &str = env!("LATTICE_TEST_PLUGIN_EVIL_WASM");
}
