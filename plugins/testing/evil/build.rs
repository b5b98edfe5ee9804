fn main() {
    lattice_plugin_sdk_build::compile(&["proto/evil.proto"], &["proto"]).unwrap();
}
