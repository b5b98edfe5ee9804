//! The IRC gateway as users run it: two real daemons in one mesh over Iroh
//! on loopback, each with `--irc`, and plain IRC clients on both. A line
//! said on one gateway reaches the other; a CLI post reaches both.

#[path = "support/mod.rs"]
mod common;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Irc {
    rd: BufReader<TcpStream>,
    wr: TcpStream,
}

impl Irc {
    /// Connects (retrying while the daemon opens the port) and registers.
    fn join(addr: SocketAddr, nick: &str, channel: &str) -> Irc {
        let deadline = Instant::now() + Duration::from_secs(30);
        let s = loop {
            match TcpStream::connect(addr) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Err(e) => panic!("no IRC gateway on {addr}: {e}"),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut c = Irc {
            rd: BufReader::new(s.try_clone().unwrap()),
            wr: s,
        };
        c.send(&format!("NICK {nick}"));
        c.send("USER u 0 * :Test User");
        c.send(&format!("JOIN {channel}"));
        c.until(" 366 ");
        c
    }

    fn send(&mut self, line: &str) {
        self.wr.write_all(format!("{line}\r\n").as_bytes()).unwrap();
    }

    /// Every line up to and including the first that contains `needle`.
    fn until_end(&mut self, needle: &str) -> Vec<String> {
        let mut seen = Vec::new();
        loop {
            let mut l = String::new();
            match self.rd.read_line(&mut l) {
                Ok(n) if n > 0 => {
                    let done = l.contains(needle);
                    seen.push(l.trim_end().to_string());
                    if done {
                        return seen;
                    }
                }
                _ => panic!("`{needle}` never came; got {seen:#?}"),
            }
        }
    }

    /// Reads lines until one contains `needle` (20 s at most).
    fn until(&mut self, needle: &str) -> String {
        let mut seen = Vec::new();
        loop {
            let mut l = String::new();
            match self.rd.read_line(&mut l) {
                Ok(n) if n > 0 => {
                    if l.contains(needle) {
                        return l.trim_end().to_string();
                    }
                    seen.push(l);
                }
                _ => panic!("`{needle}` never came; got {seen:#?}"),
            }
        }
    }
}

#[test]
fn irc_users_on_two_nodes_share_a_room() {
    let (a, b) = (Node::new(), Node::new());
    a.setup();
    let (pa, pb) = (free_port(), free_port());
    let _da = a.daemon_with(&["--irc", &format!("127.0.0.1:{pa}")]);
    let _db = b.daemon_with(&["--irc", &format!("127.0.0.1:{pb}")]);
    join(&a, &b);
    eventually(30, "b runs the room `general`", || {
        b.run(&["store", "list"]).stdout.contains("general")
    });
    let mut alice = Irc::join(
        format!("127.0.0.1:{pa}").parse().unwrap(),
        "alice",
        "#general",
    );
    let mut bob = Irc::join(
        format!("127.0.0.1:{pb}").parse().unwrap(),
        "bob",
        "#general",
    );

    alice.send("PRIVMSG #general :hi from a");
    let got = bob.until("hi from a");
    // Members elsewhere show as nick!node@mesh.
    assert!(
        got.starts_with(":alice!") && got.contains("@default PRIVMSG #general :"),
        "{got}"
    );

    bob.send("PRIVMSG #general :hi from b");
    alice.until(":bob!");

    a.run(&["general", "post", "--text", "from the cli"]).ok();
    alice.until("from the cli");
    bob.until("from the cli");
    // And the room has it all, with the nicks.
    eventually(30, "b's room has alice's line", || {
        texts(&b).iter().any(|t| t == "hi from a")
    });

    // Presence (gossip beacons, not the log): node a shows as online in the
    // room on b's gateway and in `lattice general members` on b.
    let a8 = node_id(&a)[..8].to_string();
    let mut seen = false;
    for _ in 0..100 {
        bob.send("WHO #general");
        let rows = bob.until_end(" 315 ");
        if rows
            .iter()
            .any(|l| l.contains(&format!("on node {a8}, in sync")))
        {
            seen = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        seen,
        "node a never showed as online and in sync in WHO on b"
    );
    eventually(30, "b's members show a online and in sync", || {
        let out = b.run(&["general", "members"]).stdout;
        out.contains("presence: in sync with 1 of 1 members")
            && out.contains(&format!("({a8}): online, in sync"))
    });
}

#[test]
fn an_open_gateway_needs_a_password() {
    let n = Node::new();
    n.setup();
    n.run(&["daemon", "--irc", "0.0.0.0:6667"])
        .usage_error("anyone who reaches it would post as this node");
    n.run(&["daemon", "--irc", "127.0.0.1:1", "--irc-oper", "nocolon"])
        .usage_error("--irc-oper: expected NAME:PASSWORD");
}
