//! The single-node product through the real binary, without a daemon.

#[path = "support/mod.rs"]
mod common;
use common::*;

#[test]
fn session_without_daemon() {
    let n = Node::new();
    let status = n.run(&["node", "status"]).ok();
    assert!(status.stdout.contains("not running"), "{}", status.stdout);
    n.run(&["mesh", "create", "--name", "home"]).ok();
    let meshes = n.run(&["mesh", "list"]).ok();
    assert!(
        meshes.stdout.contains("* ") && meshes.stdout.contains("home"),
        "{}",
        meshes.stdout
    );
    n.run(&["store", "create", "--type", "chat", "--name", "general"])
        .ok();
    n.run(&["store", "create", "--type", "kv"]).ok(); // default name: kv
    n.run(&["store", "create", "--type", "log", "--name", "events"])
        .ok();
    let list = n.run(&["store", "list"]).ok();
    for name in ["general", "kv", "events"] {
        assert!(list.stdout.contains(name), "{}", list.stdout);
    }

    // chat through the type name (only one chat store) and the store name.
    let id = n
        .run(&["chat", "post", "--text", "hello, world"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(id.starts_with("hex:") && id.len() == 68, "{id}");
    n.run(&["general", "reply", "--to", &id, "--text", "a reply"])
        .ok();
    n.run(&["general", "react", "--to", &id, "--emoji", "👍"])
        .ok();
    n.run(&["general", "set-topic", "--text", "lattice"]).ok();
    let msgs = n.run(&["general", "messages", "--limit", "10"]).ok();
    assert!(
        msgs.stdout.contains("hello, world") && msgs.stdout.contains("👍"),
        "{}",
        msgs.stdout
    );
    let json = n.run(&["general", "messages", "--json"]).ok();
    let v: serde_json::Value =
        serde_json::from_str(json.stdout.trim()).expect("--json prints JSON");
    assert_eq!(v["messages"].as_array().map(|a| a.len()), Some(2), "{v}");
    let topic = n.run(&["general", "topic"]).ok();
    assert!(topic.stdout.contains("lattice"), "{}", topic.stdout);

    // kv
    n.run(&["kv", "put", "--key", "a", "--value", "b"]).ok();
    let got = n.run(&["kv", "get", "--key", "a"]).ok();
    assert!(got.stdout.contains("value: b"), "{}", got.stdout);
    n.run(&["kv", "delete", "--key", "a"]).ok();
    let gone = n.run(&["kv", "get", "--key", "a", "--json"]).ok();
    assert!(!gone.stdout.contains("\"found\":true"), "{}", gone.stdout);

    // log
    n.run(&["events", "append", "--text", "boot"]).ok();
    let tail = n.run(&["events", "tail", "--n", "5"]).ok();
    assert!(tail.stdout.contains("boot"), "{}", tail.stdout);

    // status, log, digest
    let st = n.run(&["store", "status", "general"]).ok();
    assert!(st.stdout.contains("entries       4"), "{}", st.stdout);
    assert!(st.stdout.contains("state digest"), "{}", st.stdout);
    let log = n.run(&["store", "log", "general"]).ok();
    assert_eq!(log.stdout.lines().count(), 4, "{}", log.stdout);
    assert!(
        log.stdout.contains("hello, world"),
        "ops are decoded: {}",
        log.stdout
    );
    let d1 = n.run(&["store", "digest", "general"]).ok().stdout;
    let d2 = n.run(&["store", "digest", "general"]).ok().stdout;
    assert_eq!(d1, d2);
    assert!(d1.contains("state"), "{d1}");

    // Everything survives a reopen (every command above was its own process).
    let again = n.run(&["general", "messages"]).ok();
    assert!(again.stdout.contains("a reply"), "{}", again.stdout);
}

#[test]
fn help_comes_from_the_proto_comments() {
    let n = Node::new();
    n.setup();
    let top = n.run(&["--help"]).ok();
    assert!(
        top.stdout.contains("general") && top.stdout.contains("chat"),
        "{}",
        top.stdout
    );
    let chat = n.run(&["general", "--help"]).ok();
    assert!(
        chat.stdout.contains("post") && chat.stdout.contains("Post a message"),
        "{}",
        chat.stdout
    );
    let post = n.run(&["general", "post", "--help"]).ok();
    assert!(post.stdout.contains("--text"), "{}", post.stdout);
    let get = n.run(&["settings", "get", "--help"]).ok();
    assert!(
        get.stdout.contains("--mode") && get.stdout.to_lowercase().contains("lww"),
        "{}",
        get.stdout
    );
}

#[test]
fn store_use_and_ambiguity() {
    let n = Node::new();
    n.setup();
    n.run(&["store", "create", "--type", "chat", "--name", "random"])
        .ok();
    n.run(&["chat", "messages"]).fails_with("general, random");
    n.run(&["chat", "post", "--text", "x", "--store", "random"])
        .ok();
    n.run(&["store", "use", "random"]).ok();
    let m = n.run(&["chat", "messages"]).ok();
    assert!(m.stdout.contains("x"), "{}", m.stdout);
    let g = n.run(&["general", "messages"]).ok();
    assert!(!g.stdout.contains("text: x"), "{}", g.stdout);
}

#[test]
fn third_party_plugin_gets_its_own_commands() {
    let n = Node::new();
    n.setup();
    let counter = lattice_host::artifacts::COUNTER;
    let inspect = n.run(&["plugin", "inspect", counter]).ok();
    assert!(inspect.stdout.contains("increment"), "{}", inspect.stdout);
    n.run(&["store", "create", "--type", counter]).ok();
    n.run(&["counter", "increment", "--by", "5"]).ok();
    n.run(&["counter", "decrement", "--by", "2"]).ok();
    let v = n.run(&["counter", "value"]).ok();
    assert!(v.stdout.contains('3'), "{}", v.stdout);
    let help = n.run(&["counter", "--help"]).ok();
    assert!(help.stdout.contains("increment"), "{}", help.stdout);
    let plugins = n.run(&["plugin", "list"]).ok();
    assert!(
        plugins.stdout.contains("counter") && plugins.stdout.contains("external"),
        "{}",
        plugins.stdout
    );
    // Reopens after a restart with no further flags (every run is a restart).
    let log = n.run(&["store", "log", "counter"]).ok();
    assert_eq!(log.stdout.lines().count(), 2, "{}", log.stdout);
}
