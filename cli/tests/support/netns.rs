//! Hosts in network namespaces for partition tests: each daemon runs in
//! its own namespace with one veth link into a shared bridge namespace.
//! The addresses exist only inside those namespaces, so nothing touches the
//! machine's real interfaces. Needs root and iproute2 (CI runs as root);
//! [`available`] says whether a test can run here.

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

use super::{BIN, Daemon, Node, ready_line};

/// The QUIC port every host's daemon listens on.
pub const PORT: u16 = 7401;

/// Root and the `ip` command: what namespaces need.
pub fn available() -> bool {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false);
    root && Command::new("ip").arg("-V").output().is_ok()
}

/// Runs `ip ARGS`; a failure is a broken test setup, so it panics.
pub fn ip(args: &[&str]) {
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

/// Runs `ip ARGS` inside namespace `ns`.
pub fn ip_in(ns: &str, args: &[&str]) {
    let mut full = vec!["netns", "exec", ns, "ip"];
    full.extend_from_slice(args);
    ip(&full);
}

/// `n` hosts (10.213.0.1, .2, …) on one bridge; removed again on drop.
pub struct Net {
    hosts: Vec<String>,
    bridge: String,
    tag: String,
}

impl Net {
    pub fn new(n: usize) -> Net {
        assert!((1..=9).contains(&n), "one digit per host in link names");
        // Unique per process and per net, short enough for 15-byte link names.
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let tag = format!(
            "{}{}",
            std::process::id() % 100_000,
            NEXT.fetch_add(1, Ordering::Relaxed) % 10
        );
        let net = Net {
            hosts: (0..n).map(|i| format!("lt{i}h{tag}")).collect(),
            bridge: format!("ltBr{tag}"),
            tag,
        };
        for ns in net.hosts.iter().chain([&net.bridge]) {
            ip(&["netns", "add", ns]);
            ip_in(ns, &["link", "set", "lo", "up"]);
        }
        ip_in(&net.bridge, &["link", "add", "br0", "type", "bridge"]);
        ip_in(&net.bridge, &["link", "set", "br0", "up"]);
        for (i, host) in net.hosts.iter().enumerate() {
            let (inner, outer) = (net.inner(i), net.outer(i));
            ip(&[
                "link", "add", &inner, "type", "veth", "peer", "name", &outer,
            ]);
            ip(&["link", "set", &inner, "netns", host]);
            ip(&["link", "set", &outer, "netns", &net.bridge]);
            ip_in(
                host,
                &["addr", "add", &format!("{}/16", net.ip(i)), "dev", &inner],
            );
            ip_in(host, &["link", "set", &inner, "up"]);
            ip_in(&net.bridge, &["link", "set", &outer, "master", "br0"]);
            ip_in(&net.bridge, &["link", "set", &outer, "up"]);
        }
        net
    }

    fn inner(&self, i: usize) -> String {
        format!("v{i}h{}", self.tag)
    }

    fn outer(&self, i: usize) -> String {
        format!("v{i}b{}", self.tag)
    }

    pub fn len(&self) -> usize {
        self.hosts.len()
    }

    /// Host `i`'s IP address.
    pub fn ip(&self, i: usize) -> String {
        format!("10.213.0.{}", i + 1)
    }

    /// Host `i`'s daemon address.
    pub fn addr(&self, i: usize) -> String {
        format!("{}:{PORT}", self.ip(i))
    }

    /// Takes host `i`'s link to the bridge down (`up = false`) or up: it is
    /// cut off from every other host.
    pub fn link(&self, i: usize, up: bool) {
        ip_in(
            &self.bridge,
            &[
                "link",
                "set",
                &self.outer(i),
                if up { "up" } else { "down" },
            ],
        );
    }

    /// Cuts (`cut = true`) or restores traffic between hosts `i` and `j`
    /// only, with a blackhole route to the other in each namespace; every
    /// other pair keeps talking. Cutting a cut pair (or restoring an intact
    /// one) is an error, so callers track the state.
    pub fn cut(&self, i: usize, j: usize, cut: bool) {
        let verb = if cut { "add" } else { "del" };
        for (from, to) in [(i, j), (j, i)] {
            ip_in(
                &self.hosts[from],
                &["route", verb, "blackhole", &format!("{}/32", self.ip(to))],
            );
        }
    }

    /// Starts `lattice daemon` for `node` inside host `i`'s namespace,
    /// syncing every second, and waits for its ready line.
    pub fn daemon(&self, i: usize, node: &Node) -> Daemon {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.hosts[i], BIN, "--data-dir"])
            .arg(node.path())
            .args(["daemon", "--listen", &self.addr(i), "--sync-interval", "1"])
            .env_remove("RUST_LOG")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ready = ready_line(&mut child);
        assert!(ready.starts_with("ready "), "{ready}");
        Daemon { child, ready }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in self.hosts.iter().chain([&self.bridge]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
