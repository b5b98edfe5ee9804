//! What the CLI prints is safe to print: text from peers cannot drive the
//! reader's terminal, and a closed pipe ends a command quietly.

#[path = "support/mod.rs"]
mod common;
use std::process::Stdio;

use common::*;

/// A member's modified client can put any bytes in a chat message; the
/// stock CLI sends the same string. Printed raw, ESC sequences would set the
/// terminal title, clear the screen or forge hyperlinks, and a bidi override
/// would reorder the line.
#[test]
fn escape_sequences_from_peers_are_shown_not_obeyed() {
    let n = Node::new();
    n.setup();
    let evil = "hi\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m \u{202e}txt.exe";
    n.run(&["general", "post", "--text", evil]).ok();
    for args in [
        &["general", "messages"][..],
        &["store", "log", "general"][..],
    ] {
        let out = n.run(args).ok();
        for bad in ['\u{1b}', '\u{7}', '\u{9b}', '\u{202e}'] {
            assert!(
                !out.stdout.contains(bad),
                "{args:?} printed {bad:?} raw: {:?}",
                out.stdout
            );
        }
        // The chat plugin's `prepare` already drops C0/C1 controls from the
        // stock client's text (a forged op keeps them: see the render tests);
        // the bidi override passes `prepare` and must be spelled out here.
        assert!(
            out.stdout.contains("\\u{202e}"),
            "{args:?} should spell the override out: {:?}",
            out.stdout
        );
    }
}

/// `lattice … | head`: the reader is gone before the command writes.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let n = Node::new();
    n.setup();
    n.run(&["general", "post", "--text", "one"]).ok();
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = n
        .cmd()
        .args(["general", "messages"])
        .stdin(Stdio::null())
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.trim().is_empty(), "nothing on stderr: {stderr}");
    assert_eq!(
        out.status.code(),
        Some(141),
        "128 + SIGPIPE, as `head` expects"
    );
}
