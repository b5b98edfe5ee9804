//! Shared by the `e2e_web*` tests: a daemon serving HTTP on loopback and a
//! client that speaks to it with a token.

#![allow(dead_code)] // each test binary uses a different subset

#[path = "../support/mod.rs"]
mod support;
pub use support::*;

use std::net::SocketAddr;

#[allow(unused_imports)] // `Conn` is for the event-stream tests
pub use lattice_web::client::{self, Conn, Reply};
pub use serde_json::Value;
pub struct Web {
    pub node: Node,
    _daemon: Daemon,
    pub addr: SocketAddr,
}

/// A node with `general` (chat) and `settings` (kv) and a daemon serving HTTP.
pub fn web() -> Web {
    let node = Node::new();
    node.setup();
    let daemon = node.daemon_with(&["--http", "127.0.0.1:0"]);
    let addr = daemon
        .ready
        .split_whitespace()
        .skip_while(|w| *w != "http")
        .nth(1)
        .unwrap_or_else(|| panic!("no http address in the ready line: {}", daemon.ready))
        .parse()
        .unwrap();
    Web {
        node,
        _daemon: daemon,
        addr,
    }
}

impl Web {
    pub fn token(&self, args: &[&str]) -> String {
        let mut a = vec!["token", "create"];
        a.extend_from_slice(args);
        let t = self.node.run(&a).ok().stdout.trim().to_string();
        assert!(t.starts_with("lat_"), "{t}");
        t
    }

    pub fn req(&self, token: Option<&str>, method: &str, path: &str, body: &str) -> Reply {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut h = vec![];
        if let Some(a) = &auth {
            h.push(("Authorization", a.as_str()));
        }
        client::request(self.addr, method, path, &h, body.as_bytes()).unwrap()
    }

    pub fn get(&self, token: &str, path: &str) -> Reply {
        self.req(Some(token), "GET", path, "")
    }

    pub fn post(&self, token: &str, path: &str, body: &str) -> Reply {
        self.req(Some(token), "POST", path, body)
    }
}

#[track_caller]
pub fn status(r: &Reply, want: u16, kind: &str) -> Value {
    assert_eq!(r.status, want, "body: {}", r.text());
    let v = r.json();
    if !kind.is_empty() {
        assert_eq!(v["kind"], kind, "{v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    v
}
