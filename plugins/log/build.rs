fn main() {
    lattice_plugin_sdk_build::compile(&["proto/log.proto"], &["proto"]).unwrap();
}
