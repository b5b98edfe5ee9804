fn main() {
    lattice_plugin_sdk_build::compile(&["proto/chat.proto"], &["proto"]).unwrap();
}
