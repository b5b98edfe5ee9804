//! `lattice chat` speaks to chat stores in the chat plugin's own messages:
//! generate them from its `.proto`, so the client cannot drift from it.

fn main() {
    let dir = "../plugins/chat/proto";
    println!("cargo:rerun-if-changed={dir}/chat.proto");
    let fds = protox::compile(["chat.proto"], [dir]).expect("chat.proto compiles");
    prost_build::Config::new()
        .compile_fds(fds)
        .expect("prost generates the chat messages");
}
