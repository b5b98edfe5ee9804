//! Helpers for end-to-end tests of the real `lattice` binary.
#![allow(dead_code)]

pub mod netns;
pub mod rng;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_lattice");

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "command failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        self
    }

    /// A clean failure: exit 1, one line on stderr, no panic.
    #[track_caller]
    pub fn fails_with(self, needle: &str) -> Run {
        self.fails_with_code(1, needle)
    }

    /// A wrong command line: exit 2, one line on stderr, no panic.
    #[track_caller]
    pub fn usage_error(self, needle: &str) -> Run {
        self.fails_with_code(2, needle)
    }

    #[track_caller]
    fn fails_with_code(self, code: i32, needle: &str) -> Run {
        assert_eq!(
            self.code, code,
            "expected exit {code}:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        let lines: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "expected one stderr line, got: {}",
            self.stderr
        );
        assert!(!self.stderr.contains("panicked"), "panic: {}", self.stderr);
        assert!(
            self.stderr.contains(needle),
            "stderr lacks `{needle}`: {}",
            self.stderr
        );
        self
    }
}

pub struct Node {
    pub dir: tempfile::TempDir,
}

impl Node {
    pub fn new() -> Node {
        Node {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn cmd(&self) -> Command {
        let mut c = Command::new(BIN);
        c.arg("--data-dir")
            .arg(self.dir.path())
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1");
        c
    }

    pub fn run(&self, args: &[&str]) -> Run {
        Run::from(self.cmd().args(args).stdin(Stdio::null()).output().unwrap())
    }

    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("lattice.sock")
    }

    /// Starts `lattice daemon` and waits until its socket answers.
    pub fn daemon(&self) -> Daemon {
        self.daemon_with(&[])
    }

    /// Starts `lattice daemon` and waits for its ready line on stdout.
    pub fn daemon_with(&self, extra: &[&str]) -> Daemon {
        let mut child = self
            .cmd()
            .arg("daemon")
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let ready = ready_line(&mut child);
        assert!(
            ready.starts_with("ready "),
            "daemon's first stdout line is not its ready line: {ready:?}"
        );
        Daemon { child, ready }
    }

    /// Creates a mesh plus a chat store `general` and a kv store `settings`.
    pub fn setup(&self) {
        self.run(&["mesh", "create"]).ok();
        self.run(&["store", "create", "--type", "chat", "--name", "general"])
            .ok();
        self.run(&["store", "create", "--type", "kv", "--name", "settings"])
            .ok();
    }
}

pub struct Daemon {
    pub child: Child,
    /// The daemon's ready line (`ready <node> <socket> <addrs>`, or JSON).
    pub ready: String,
}

/// The first line `child` prints on stdout (30 s at most). The rest of its
/// stdout is drained by the same thread, so the daemon never writes into a
/// closed pipe.
pub fn ready_line(child: &mut Child) -> String {
    use std::io::BufRead as _;
    let out = child.stdout.take().expect("stdout piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut r = std::io::BufReader::new(out);
        let mut line = String::new();
        let _ = r.read_line(&mut line);
        let _ = tx.send(line);
        let _ = std::io::copy(&mut r, &mut std::io::sink());
    });
    match rx.recv_timeout(Duration::from_secs(30)) {
        Ok(line) if !line.is_empty() => line.trim_end().to_string(),
        _ => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            panic!("daemon printed no ready line ({status})");
        }
    }
}

impl Daemon {
    pub fn sigkill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> i32 {
        unsafe_kill(self.child.id(), 15);
        self.child.wait().unwrap().code().unwrap_or(-1)
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends a signal with the `kill` command (no libc dependency needed).
pub fn unsafe_kill(pid: u32, sig: i32) {
    Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
}

/// Polls `f` until it returns true or `secs` pass.
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    panic!("timed out after {secs} s waiting for: {what}");
}

/// The texts of the `general` chat room on `n` (empty if it cannot be read yet).
pub fn texts(n: &Node) -> Vec<String> {
    let r = n.run(&["general", "messages", "--limit", "1000", "--json"]);
    if r.code != 0 {
        return vec![];
    }
    serde_json::from_str::<serde_json::Value>(r.stdout.trim())
        .ok()
        .and_then(|v| {
            v["messages"].as_array().map(|a| {
                a.iter()
                    .filter_map(|m| m["text"].as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default()
}

/// `joiner` joins `inviter`'s current mesh with a fresh invite token.
pub fn join(inviter: &Node, joiner: &Node) {
    let token = inviter
        .run(&["mesh", "invite"])
        .ok()
        .stdout
        .trim()
        .to_string();
    assert!(token.starts_with("lattice1"), "{token}");
    joiner.run(&["mesh", "join", &token]).ok();
}

/// The node id `node status` prints.
pub fn node_id(n: &Node) -> String {
    let out = n.run(&["node", "status"]).ok().stdout;
    out.split_whitespace()
        .find(|w| w.len() == 64 && w.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("no node id in `node status`: {out}"))
        .to_string()
}
