//! `lattice bench --irc`: the IRC gateway measured as users meet it, with
//! real daemons (this binary, throwaway data dirs, QUIC on loopback) and
//! plain TCP IRC clients.
//!
//! 1. Fan-out across nodes: PRIVMSG on node1's gateway → received on the
//!    gateways of node2 and node3 (gossip between the daemons).
//! 2. Many connections on one daemon: `clients` registered IRC users in
//!    one channel; the daemon's RSS before and after, and the time until
//!    every member has a PRIVMSG.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use lattice_host::api::{Request, Response, client::Client};

use super::report::Report;
use crate::backend::Backend;

/// Throwaway daemons of this binary, killed on drop.
struct Daemons {
    dirs: Vec<tempfile::TempDir>,
    children: Vec<Child>,
    irc: Vec<SocketAddr>,
}

impl Drop for Daemons {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn free_addr() -> Result<SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

fn run(dir: &Path, args: &[&str]) -> Result<String> {
    let out = Command::new(std::env::current_exe()?)
        .arg("--data-dir")
        .arg(dir)
        .args(args)
        .output()?;
    if !out.status.success() {
        bail!(
            "lattice {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `n` daemons with IRC gateways in one mesh, with a chat room `general`.
fn mesh(n: usize) -> Result<Daemons> {
    let mut d = Daemons {
        dirs: Vec::new(),
        children: Vec::new(),
        irc: Vec::new(),
    };
    for _ in 0..n {
        let dir = tempfile::tempdir()?;
        let irc = free_addr()?;
        let child = Command::new(std::env::current_exe()?)
            .arg("--data-dir")
            .arg(dir.path())
            .args(["daemon", "--irc", &irc.to_string(), "--irc-history", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        d.children.push(child);
        d.irc.push(irc);
        let sock = Backend::socket_path(dir.path());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Client::connect(&sock).is_err() {
            if Instant::now() > deadline {
                bail!("a bench daemon did not start");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        d.dirs.push(dir);
    }
    run(d.dirs[0].path(), &["mesh", "create"])?;
    run(
        d.dirs[0].path(),
        &["store", "create", "--type", "chat", "--name", "general"],
    )?;
    let mut inviter = Client::connect(&Backend::socket_path(d.dirs[0].path()))?;
    for i in 1..n {
        let token = match inviter.call(Request::MeshInvite {
            expires_secs: 600,
            mesh: None,
        })? {
            Response::Invite { token, .. } => token,
            other => bail!("invite: {other:?}"),
        };
        run(d.dirs[i].path(), &["mesh", "join", &token])?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while !run(d.dirs[i].path(), &["store", "list"])?.contains("general") {
            if Instant::now() > deadline {
                bail!("node{} never got the room", i + 1);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(d)
}

/// A registered IRC client joined to `#general`.
struct Irc {
    rd: BufReader<TcpStream>,
    wr: TcpStream,
}

impl Irc {
    fn join(addr: SocketAddr, nick: &str) -> Result<Irc> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let s = loop {
            match TcpStream::connect(addr) {
                Ok(s) => break s,
                Err(_) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Err(e) => return Err(e).context(format!("IRC gateway {addr}")),
            }
        };
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut c = Irc {
            rd: BufReader::new(s.try_clone()?),
            wr: s,
        };
        c.send(&format!(
            "NICK {nick}\r\nUSER b 0 * :bench\r\nJOIN #general"
        ))?;
        c.until(" 366 ")?;
        Ok(c)
    }

    fn send(&mut self, lines: &str) -> Result<()> {
        self.wr.write_all(format!("{lines}\r\n").as_bytes())?;
        Ok(())
    }

    fn until(&mut self, needle: &str) -> Result<String> {
        let mut l = String::new();
        loop {
            l.clear();
            if self.rd.read_line(&mut l)? == 0 {
                bail!("IRC connection closed while waiting for `{needle}`");
            }
            if l.contains(needle) {
                return Ok(l);
            }
        }
    }
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub fn bench(clients: usize, out: &Report) -> Result<()> {
    // Fan-out: one message at a time (under the sender's flood burst),
    // timed until both other gateways delivered it.
    let d = mesh(3)?;
    let mut a = Irc::join(d.irc[0], "alice")?;
    let mut b = Irc::join(d.irc[1], "bob")?;
    let mut c = Irc::join(d.irc[2], "carol")?;
    let (mut to_b, mut to_c) = (Vec::new(), Vec::new());
    for i in 0..60 {
        let marker = format!("fanout-{i}");
        let t0 = Instant::now();
        a.send(&format!("PRIVMSG #general :{marker}"))?;
        b.until(&marker)?;
        let tb = t0.elapsed();
        c.until(&marker)?;
        let tc = t0.elapsed();
        if i >= 10 {
            to_b.push(tb);
            to_c.push(tc);
        }
    }
    out.heading("IRC fan-out, 3 daemons (PRIVMSG on node1's gateway):");
    out.latency("  irc fan-out: received on node2's gateway", &mut to_b);
    out.latency("  irc fan-out: received on node3's gateway", &mut to_c);
    drop((a, b, c));
    drop(d);

    // Many connections on one daemon.
    let d = mesh(1)?;
    let pid = d.children[0].id();
    let before = rss_kib(pid);
    let t0 = Instant::now();
    let mut members = Vec::with_capacity(clients);
    for i in 0..clients {
        members.push(Irc::join(d.irc[0], &format!("u{i}"))?);
    }
    let joined = t0.elapsed();
    let after = rss_kib(pid);
    out.figure(
        "irc connections: registered and joined",
        joined.as_secs_f64(),
        "s",
        &format!(
            "{clients} IRC connections on one daemon: registered and joined in {:.2} s",
            joined.as_secs_f64()
        ),
    );
    if let (Some(b), Some(a)) = (before, after) {
        let per = (a.saturating_sub(b)) as f64 / clients as f64;
        out.figure(
            "irc connections: daemon RSS per connection",
            per,
            "KiB",
            &format!(
                "  daemon RSS {:.1} MiB before, {:.1} MiB after ({per:.1} KiB per connection)",
                b as f64 / 1024.0,
                a as f64 / 1024.0,
            ),
        );
    }
    let mut all = Vec::new();
    let mut last = Vec::new();
    for round in 0..10 {
        let marker = format!("crowd-{round}");
        let t0 = Instant::now();
        members[0].send(&format!("PRIVMSG #general :{marker}"))?;
        for m in members.iter_mut().skip(1) {
            m.until(&marker)?;
            all.push(t0.elapsed());
        }
        last.push(t0.elapsed());
    }
    out.latency(
        &format!("  irc PRIVMSG → each of {} members", clients - 1),
        &mut all,
    );
    out.latency("  irc PRIVMSG → the last member", &mut last);
    Ok(())
}
