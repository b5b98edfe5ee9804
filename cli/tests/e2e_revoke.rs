//! Revocation across processes (real daemons, real Iroh on loopback): the
//! founder revokes a member while offline, without having seen that
//! member's last post, which another member saw and built on. Once the
//! founder is back, both hold the same log and the same state.

#[path = "support/mod.rs"]
mod common;
use common::*;

const FAST: &[&str] = &["--sync-interval", "1"];

fn digest(n: &Node) -> String {
    n.run(&["store", "digest", "general"]).ok().stdout
}

#[test]
fn offline_revoke_converges_with_late_pre_revoke_entry() {
    let (f, b, c) = (Node::new(), Node::new(), Node::new());
    f.setup();
    let df = f.daemon_with(FAST);
    let _db = b.daemon_with(FAST);
    let _dc = c.daemon_with(FAST);
    join(&f, &b);
    join(&f, &c);
    c.run(&["general", "post", "--text", "early"]).ok();
    eventually(30, "f has c's early post", || {
        texts(&f).contains(&"early".to_string())
    });

    // F goes offline. C posts x; only B gets it; B posts y after it.
    assert_eq!(df.stop(), 0);
    c.run(&["general", "post", "--text", "x"]).ok();
    eventually(30, "b has x", || texts(&b).contains(&"x".to_string()));
    b.run(&["general", "post", "--text", "y"]).ok();

    // F revokes C offline (one-shot command on its data dir, no daemon).
    let cid = node_id(&c);
    let r = f.run(&["mesh", "revoke", &cid]).ok();
    assert_eq!(r.stdout.trim(), cid);
    assert!(
        r.stderr.starts_with("revoked ")
            && r.stderr.contains(&cid[..8])
            && r.stderr.contains("every member refuses its new entries"),
        "one readable sentence: {}",
        r.stderr
    );
    let _df = f.daemon_with(FAST);

    eventually(60, "f and b converge", || {
        let (tf, tb) = (texts(&f), texts(&b));
        tf.contains(&"y".to_string()) && tf == tb && digest(&f) == digest(&b)
    });
    let t = texts(&f);
    assert!(
        t.contains(&"early".to_string()),
        "the pre-revoke post stands: {t:?}"
    );
    assert!(
        !t.contains(&"x".to_string()),
        "x is past the cut-off: void: {t:?}"
    );
    // Replication counts the members that are left: B, never the revoked C.
    eventually(30, "f reports replication with b", || {
        let s = f.run(&["store", "status", "general"]).ok().stdout;
        s.contains("in sync with 1 of 1 member (")
    });
}
