//! Compiles `proto/entry.proto` with protox (pure Rust, so no `protoc` binary
//! is needed on a fresh machine) and generates the prost structs.
fn main() {
    println!("cargo:rerun-if-changed=proto/entry.proto");
    let fds = protox::compile(["proto/entry.proto"], ["proto"])
        .expect("kernel/proto/entry.proto must compile");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost-build must generate code for entry.proto");
}
