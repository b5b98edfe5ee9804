fn main() {
    lattice_plugin_sdk_build::compile(&["proto/kv.proto"], &["proto"]).unwrap();
}
