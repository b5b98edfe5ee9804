fn main() {
    lattice_plugin_sdk_build::compile(&["proto/global.proto"], &["proto"]).unwrap();
}
