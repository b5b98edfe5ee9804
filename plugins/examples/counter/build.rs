fn main() {
    lattice_plugin_sdk_build::compile(&["proto/counter.proto"], &["proto"]).unwrap();
}
