//! The same commands through a running daemon: two clients at once, watch,
//! a killed daemon's stale socket.

#[path = "support/mod.rs"]
mod common;
use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::Duration;

use common::*;

#[test]
fn commands_go_through_the_daemon() {
    let n = Node::new();
    let d = n.daemon();
    let st = n.run(&["node", "status"]).ok();
    assert!(st.stdout.contains("daemon     running"), "{}", st.stdout);
    n.setup();
    // Two clients posting at the same time.
    let spawn = |who: &str| {
        let mut cmds = Vec::new();
        for i in 0..15 {
            cmds.push(
                n.cmd()
                    .args(["general", "post", "--text", &format!("{who} {i}")])
                    .stdout(Stdio::null())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap(),
            );
        }
        cmds
    };
    let mut all = spawn("alice");
    all.extend(spawn("bob"));
    for c in all {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let m = n
        .run(&["general", "messages", "--limit", "100", "--json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(m.stdout.trim()).unwrap();
    assert_eq!(v["messages"].as_array().unwrap().len(), 30);
    n.run(&["settings", "put", "--key", "k", "--value", "v"])
        .ok();
    assert!(
        n.run(&["settings", "get", "--key", "k"])
            .ok()
            .stdout
            .contains("value: v")
    );
    // Bad input through the daemon: clear error, daemon keeps serving.
    n.run(&["general", "frobnicate"])
        .usage_error("valid methods");
    n.run(&["nosuch", "post"])
        .usage_error("unknown command `nosuch`");
    assert!(
        n.run(&["general", "messages"])
            .ok()
            .stdout
            .contains("alice 3")
    );
    assert_eq!(d.stop(), 0, "daemon exits cleanly on SIGTERM");
    assert!(!n.socket().exists(), "socket removed on shutdown");
    // Without the daemon the same data is there.
    let m = n
        .run(&["general", "messages", "--limit", "100", "--json"])
        .ok();
    let v: serde_json::Value = serde_json::from_str(m.stdout.trim()).unwrap();
    assert_eq!(v["messages"].as_array().unwrap().len(), 30);
}

#[test]
fn stale_socket_from_a_killed_daemon() {
    let n = Node::new();
    n.setup();
    let d = n.daemon();
    n.run(&["general", "post", "--text", "before the crash"])
        .ok();
    d.sigkill();
    assert!(n.socket().exists(), "SIGKILL leaves the socket file behind");
    // Commands still work (they open the data dir themselves)...
    let m = n.run(&["general", "messages"]).ok();
    assert!(m.stdout.contains("before the crash"), "{}", m.stdout);
    // ...and a new daemon replaces the stale socket.
    let d2 = n.daemon();
    assert!(n.run(&["node", "status"]).ok().stdout.contains("running"));
    // A second daemon on the same data dir is refused clearly.
    n.run(&["daemon"]).fails_with("already serving");
    drop(d2);
}

#[test]
fn watch_streams_ops_until_interrupted() {
    let n = Node::new();
    n.setup();
    let _d = n.daemon();
    let mut w = n
        .cmd()
        .args(["watch", "general"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = w.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    std::thread::sleep(Duration::from_millis(500));
    n.run(&["general", "post", "--text", "live!"]).ok();
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("watch printed the op");
    assert!(line.contains("general") && line.contains("live!"), "{line}");
    unsafe_kill(w.id(), 2);
    let code = w.wait().unwrap().code();
    assert_eq!(code, Some(130));
}

#[test]
fn watch_without_daemon_serves_other_commands() {
    let n = Node::new();
    n.setup();
    let mut w = n
        .cmd()
        .args(["watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = w.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !n.socket().exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    n.run(&["settings", "put", "--key", "x", "--value", "1"])
        .ok();
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("watch printed the op");
    assert!(line.contains("settings"), "{line}");
    unsafe_kill(w.id(), 2);
    assert_eq!(w.wait().unwrap().code(), Some(130));
}
