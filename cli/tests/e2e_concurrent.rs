//! One-shot commands without a daemon, many at once: each waits its turn for
//! the data dir's lock instead of failing, and a lock held too long ends in
//! one clear line.

#[path = "support/mod.rs"]
mod common;
use common::*;

use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[test]
fn ten_parallel_one_shot_posts_without_a_daemon_all_succeed() {
    let n = Node::new();
    n.setup();
    let children: Vec<_> = (0..10)
        .map(|i| {
            n.cmd()
                .args(["general", "post", "--text", &format!("parallel {i}")])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, c) in children.into_iter().enumerate() {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "post {i} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let msgs = n.run(&["general", "messages", "--limit", "50"]).ok();
    for i in 0..10 {
        assert!(
            msgs.stdout.contains(&format!("parallel {i}")),
            "post {i} missing: {}",
            msgs.stdout
        );
    }
}

/// Hold the data dir's lock from this process (its log database, opened
/// directly): a command waits for it, and succeeds once it is released; one
/// that waits longer than its limit fails with one line, no panic.
#[test]
fn a_held_lock_is_waited_for_then_reported_clearly() {
    let n = Node::new();
    n.setup();
    let open_log = || {
        lattice_kernel::Kernel::open(
            &n.path().join("lattice.redb"),
            lattice_kernel::Identity::generate(),
            lattice_kernel::KernelConfig::default(),
            Arc::new(lattice_kernel::NoHook),
        )
        .unwrap()
    };

    let held = open_log();
    let start = Instant::now();
    n.cmd()
        .env("LATTICE_LOCK_WAIT_MS", "300")
        .args(["general", "post", "--text", "too patient?"])
        .stdin(Stdio::null())
        .output()
        .map(|o| {
            let run = Run {
                code: o.status.code().unwrap_or(-1),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            };
            run.fails_with("stayed in use by another lattice process for 0.3 s");
        })
        .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));

    // A waiting command gets through once the holder lets go.
    let child = n
        .cmd()
        .args(["general", "post", "--text", "waited"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The holder keeps the lock a while (the child is retrying meanwhile).
    std::thread::sleep(Duration::from_millis(400));
    drop(held);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let msgs = n.run(&["general", "messages"]).ok();
    assert!(msgs.stdout.contains("waited"), "{}", msgs.stdout);
    assert!(!msgs.stdout.contains("too patient?"), "{}", msgs.stdout);
}
