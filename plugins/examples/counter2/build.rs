fn main() {
    lattice_plugin_sdk_build::compile(&["../counter/proto/counter.proto"], &["../counter/proto"])
        .unwrap();
}
