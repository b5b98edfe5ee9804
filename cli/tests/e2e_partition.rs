//! Partition and heal across network namespaces: two daemons in their own
//! namespaces, linked through a bridge namespace. Link down, writes on both
//! sides, link up: both converge. Needs root (CI runs as root); elsewhere it
//! says why it skipped.

#[path = "support/mod.rs"]
mod common;
use std::process::Command;
use std::time::Duration;

use common::*;

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("the `ip` command (iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn netns(ns: &str, args: &[&str]) {
    let mut full = vec!["netns", "exec", ns, "ip"];
    full.extend_from_slice(args);
    ip(&full);
}

/// Two hosts (10.213.x.1 and .2) on a bridge; removed again on drop.
struct Net2 {
    names: [String; 3],
    tag: String,
}

impl Net2 {
    fn new() -> Net2 {
        let tag = format!("{}", std::process::id() % 100_000);
        let names = [
            format!("ltA{tag}"),
            format!("ltB{tag}"),
            format!("ltBr{tag}"),
        ];
        let net = Net2 { names, tag };
        for n in &net.names {
            ip(&["netns", "add", n]);
            netns(n, &["link", "set", "lo", "up"]);
        }
        let br = &net.names[2];
        netns(br, &["link", "add", "br0", "type", "bridge"]);
        netns(br, &["link", "set", "br0", "up"]);
        for (i, host) in net.names[..2].iter().enumerate() {
            let (inner, outer) = (format!("v{i}h{}", net.tag), format!("v{i}b{}", net.tag));
            ip(&[
                "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ]);
            ip(&["link", "set", &inner, "netns", host]);
            ip(&["link", "set", &outer, "netns", br]);
            netns(
                host,
                &[
                    "addr",
                    "add",
                    &format!("10.213.{}.{}/16", net.tag.len(), i + 1),
                    "dev",
                    &inner,
                ],
            );
            netns(host, &["link", "set", &inner, "up"]);
            netns(br, &["link", "set", &outer, "master", "br0"]);
            netns(br, &["link", "set", &outer, "up"]);
        }
        net
    }

    fn addr(&self, i: usize) -> String {
        format!("10.213.{}.{}:7401", self.tag.len(), i + 1)
    }

    /// Takes host 0's link to the bridge down (`up = false`) or up.
    fn link0(&self, up: bool) {
        netns(
            &self.names[2],
            &[
                "link",
                "set",
                &format!("v0b{}", self.tag),
                if up { "up" } else { "down" },
            ],
        );
    }
}

impl Drop for Net2 {
    fn drop(&mut self) {
        for n in &self.names {
            let _ = Command::new("ip").args(["netns", "del", n]).status();
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn texts(n: &Node) -> String {
    n.run(&["general", "messages", "--limit", "1000"]).stdout
}

#[test]
fn partition_then_heal_converges() {
    if !is_root() || Command::new("ip").arg("-V").output().is_err() {
        eprintln!("skipping partition test: network namespaces need root and iproute2");
        return;
    }
    let net = Net2::new();
    let (a, b) = (Node::new(), Node::new());
    a.setup();
    let start = |n: &Node, i: usize| {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &net.names[i], BIN, "--data-dir"])
            .arg(n.path())
            .args(["daemon", "--listen", &net.addr(i), "--sync-interval", "1"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let ready = ready_line(&mut child);
        Daemon { child, ready }
    };
    let _da = start(&a, 0);
    let _db = start(&b, 1);
    let token = a.run(&["mesh", "invite"]).ok().stdout.trim().to_string();
    b.run(&["mesh", "join", &token]).ok();
    b.run(&["general", "post", "--text", "before the partition"])
        .ok();
    eventually(30, "a sees b's message", || {
        texts(&a).contains("before the partition")
    });

    net.link0(false);
    a.run(&["general", "post", "--text", "a during the partition"])
        .ok();
    b.run(&["general", "post", "--text", "b during the partition"])
        .ok();
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        !texts(&b).contains("a during"),
        "the partition is real: nothing crosses it"
    );
    assert!(
        !texts(&a).contains("b during"),
        "the partition is real: nothing crosses it"
    );

    net.link0(true);
    eventually(90, "both sides converge after the link heals", || {
        let (ta, tb) = (texts(&a), texts(&b));
        ta.contains("b during") && tb.contains("a during")
    });
    let da = a.run(&["store", "digest", "general"]).ok().stdout;
    let db = b.run(&["store", "digest", "general"]).ok().stdout;
    assert_eq!(da, db);
}
