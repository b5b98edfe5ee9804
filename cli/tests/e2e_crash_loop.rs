//! Crash loops through the real daemon: `lattice daemon` runs on a data dir
//! with a kv, a log and a chat store while writer threads issue mixed
//! writes through the CLI, several in flight; the daemon is SIGKILLed at a
//! seeded random moment, then restarted. After every restart each write
//! the CLI acknowledged (exit 0) is in its store's log and its plugin
//! state, and `lattice store verify` is clean on every store.
//!
//! `LATTICE_CRASH_CYCLES` sets the number of kills (default 50),
//! `LATTICE_CRASH_SEED` the seed (printed, so a failure replays).

#[path = "support/mod.rs"]
mod common;
use common::rng::{Rng, seed_from_env};
use common::*;

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Threads writing at once, each one CLI process at a time.
const WRITERS: u64 = 4;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Kv,
    Log,
    Chat,
}

impl Kind {
    const ALL: [Kind; 3] = [Kind::Kv, Kind::Log, Kind::Chat];

    fn store(self) -> &'static str {
        match self {
            Kind::Kv => "settings",
            Kind::Log => "events",
            Kind::Chat => "general",
        }
    }

    /// The CLI command that writes `token`.
    fn write_args(self, token: &str) -> Vec<String> {
        let args: Vec<&str> = match self {
            Kind::Kv => vec!["settings", "put", "--key", token, "--value", token],
            Kind::Log => vec!["events", "append", "--text", token],
            Kind::Chat => vec!["general", "post", "--text", token],
        };
        args.into_iter().map(str::to_string).collect()
    }
}

/// One write whose CLI call exited 0.
#[derive(Clone)]
struct Acked {
    kind: Kind,
    token: String,
}

/// Writes until `stop`; returns the acknowledged writes and how many
/// failed. A CLI call that fails because the daemon died under it is not
/// acknowledged; it must still fail cleanly (no panic).
fn writer(node: &Node, cycle: u64, w: u64, seed: u64, stop: &AtomicBool) -> (Vec<Acked>, u64) {
    let mut rng = Rng::new(seed ^ (cycle << 8) ^ w);
    let mut acked = Vec::new();
    let mut failed = 0;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        let kind = Kind::ALL[rng.below(3) as usize];
        let token = format!("c{cycle}w{w}n{n}x{}", rng.below(1 << 20));
        n += 1;
        let r = node.run(
            &kind
                .write_args(&token)
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        assert!(
            !r.stderr.contains("panicked"),
            "a write during a crash panicked: {}",
            r.stderr
        );
        if r.code == 0 {
            acked.push(Acked { kind, token });
        } else {
            let lines = r.stderr.lines().filter(|l| !l.trim().is_empty()).count();
            assert_eq!(lines, 1, "a write cut off by a kill: {}", r.stderr);
            failed += 1;
        }
    }
    (acked, failed)
}

/// Every acknowledged write is in its store's log and visible through the
/// plugin's own queries; every store verifies clean.
fn check(node: &Node, all: &[Acked], this_cycle: &[Acked], cycle: u64, seed: u64) {
    let ctx = format!("cycle {cycle}, seed {seed}");
    for kind in Kind::ALL {
        let store = kind.store();
        let v = node.run(&["store", "verify", store]);
        assert_eq!(
            v.code, 0,
            "{ctx}: store verify {store}: {}{}",
            v.stdout, v.stderr
        );
        let log = node
            .run(&["store", "log", store, "--limit", "1000000"])
            .ok()
            .stdout;
        for a in all.iter().filter(|a| a.kind == kind) {
            assert!(
                log.contains(&a.token),
                "{ctx}: acknowledged {kind:?} write {} is not in the log of {store}",
                a.token
            );
        }
    }
    let chat = texts(node);
    let tail = node.run(&["events", "tail", "--n", "1000"]).ok().stdout;
    for a in this_cycle {
        let seen = match a.kind {
            Kind::Chat => chat.contains(&a.token),
            Kind::Log => tail.contains(&a.token),
            Kind::Kv => node
                .run(&["settings", "get", "--key", &a.token])
                .ok()
                .stdout
                .contains(&format!("value: {}", a.token)),
        };
        assert!(
            seen,
            "{ctx}: acknowledged {:?} write {} not in the plugin state",
            a.kind, a.token
        );
    }
}

#[test]
fn kill_9_during_mixed_writes_loses_nothing_acknowledged() {
    let cycles = seed_from_env("LATTICE_CRASH_CYCLES", 50);
    let seed = seed_from_env("LATTICE_CRASH_SEED", 0x15c4a5);
    eprintln!("crash loop: seed {seed} (LATTICE_CRASH_SEED), {cycles} cycles");
    let started = Instant::now();
    let node = Node::new();
    node.setup();
    node.run(&["store", "create", "--type", "log", "--name", "events"])
        .ok();
    let mut rng = Rng::new(seed);
    let mut all: Vec<Acked> = Vec::new();
    let mut cut_off = 0;
    for cycle in 0..cycles {
        let daemon = node.daemon();
        let stop = AtomicBool::new(false);
        let acked = Mutex::new((Vec::new(), 0));
        // Kill 30–600 ms into the writes: mid-request, mid-commit, idle.
        let delay = Duration::from_millis(rng.range(30, 600));
        std::thread::scope(|s| {
            for w in 0..WRITERS {
                let (node, stop, acked) = (&node, &stop, &acked);
                s.spawn(move || {
                    let (got, failed) = writer(node, cycle, w, seed, stop);
                    let mut acked = acked.lock().unwrap();
                    acked.0.extend(got);
                    acked.1 += failed;
                });
            }
            std::thread::sleep(delay);
            daemon.sigkill();
            stop.store(true, Ordering::Relaxed);
        });
        // Writers that started after the kill found no daemon and wrote
        // through their own node; they have all exited before the restart,
        // so the data dir is free again.
        let (this_cycle, failed) = acked.into_inner().unwrap();
        cut_off += failed;
        let _daemon = node.daemon();
        all.extend(this_cycle.iter().cloned());
        check(&node, &all, &this_cycle, cycle, seed);
    }
    let per = |k: Kind| all.iter().filter(|a| a.kind == k).count();
    eprintln!(
        "crash loop: seed {seed}: {cycles} kills, {} acknowledged writes (kv {}, log {}, chat {}), {cut_off} cut off by a kill, all acknowledged present, verify clean, {:.1} s",
        all.len(),
        per(Kind::Kv),
        per(Kind::Log),
        per(Kind::Chat),
        started.elapsed().as_secs_f64()
    );
    assert!(
        all.len() as u64 >= cycles,
        "too few writes were acknowledged to test anything: {}",
        all.len()
    );
}
