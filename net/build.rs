//! Compiles `proto/net.proto` with protox (pure Rust, no `protoc` needed) and
//! generates the prost structs, like the kernel does.
fn main() {
    println!("cargo:rerun-if-changed=proto/net.proto");
    let fds =
        protox::compile(["proto/net.proto"], ["proto"]).expect("net/proto/net.proto must compile");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost-build must generate code for net.proto");
}
