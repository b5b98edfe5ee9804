//! `lattice chat`, the interactive client, driven the way a person would
//! drive it: in a real terminal (tmux), typing keys and reading the
//! screen, with other commands writing to the same rooms meanwhile.

#[path = "support/mod.rs"]
mod common;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// One tmux server of our own (`-L`), killed when the test ends.
struct Tmux {
    socket: String,
}

impl Tmux {
    /// `None` (and a note) when tmux is missing: the test counts as skipped.
    fn new(tag: &str) -> Option<Tmux> {
        if !Command::new("tmux")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            eprintln!("SKIPPED: tmux not installed");
            return None;
        }
        Some(Tmux {
            socket: format!("lattice-chat-{}-{tag}", std::process::id()),
        })
    }

    fn tmux(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .args(["-u", "-f", "/dev/null", "-L", &self.socket])
            .args(args)
            .env_remove("TMUX")
            .env("LANG", "C.UTF-8")
            .output()
            .unwrap()
    }

    /// Runs `lattice ARGS` on `n` in a 120×40 window. When it exits, the
    /// shell prints its exit code and whether the tty is back in cooked
    /// mode with echo, then waits, so the pane can still be read.
    fn start(&self, window: &str, n: &Node, args: &str) {
        let script = format!(
            "env -u RUST_LOG NO_COLOR=1 '{bin}' --data-dir '{dir}' {args}; \
             echo \"exit=$?\"; \
             echo \"tty: $(stty -a | tr ' ;' '\\n\\n' | grep -x -e icanon -e echo | tr '\\n' ' ')\"; \
             sleep 600",
            bin = BIN,
            dir = n.path().display(),
        );
        let o = self.tmux(&[
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            "-s",
            window,
            "sh",
            "-c",
            &script,
        ]);
        assert!(
            o.status.success(),
            "tmux: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    fn screen(&self, window: &str) -> String {
        String::from_utf8_lossy(&self.tmux(&["capture-pane", "-p", "-t", window]).stdout)
            .into_owned()
    }

    /// Types `text` literally, then Enter.
    fn line(&self, window: &str, text: &str) {
        self.tmux(&["send-keys", "-t", window, "-l", text]);
        self.tmux(&["send-keys", "-t", window, "Enter"]);
    }

    fn key(&self, window: &str, key: &str) {
        self.tmux(&["send-keys", "-t", window, key]);
    }

    /// Polls the screen until `ok` holds for it (20 s at most). The
    /// bottom three rows (the composer, echoing what was typed) are left
    /// out, so only what the client did with a line counts.
    #[track_caller]
    fn wait(&self, window: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let full = self.screen(window);
            let rows: Vec<&str> = full.lines().collect();
            let s = rows[..rows.len().saturating_sub(3)].join("\n");
            if ok(&s) {
                return s;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[track_caller]
    fn wait_for(&self, window: &str, needle: &str) -> String {
        self.wait(window, &format!("`{needle}`"), |s| s.contains(needle))
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.tmux(&["kill-server"]);
    }
}

/// The messages of `room`, as `lattice ROOM messages --json` prints them.
fn messages(n: &Node, room: &str) -> Vec<serde_json::Value> {
    let r = n.run(&[room, "messages", "--limit", "1000", "--json"]).ok();
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    v["messages"].as_array().cloned().unwrap_or_default()
}

/// The name `mesh status` gives this node.
fn member_name(n: &Node) -> String {
    let id = node_id(n);
    let out = n.run(&["mesh", "status"]).ok().stdout;
    let line = out
        .lines()
        .find(|l| l.trim_start().starts_with(&id) && l.contains("active"))
        .unwrap_or_else(|| panic!("no member line for {id}: {out}"))
        .to_string();
    line.split_whitespace().last().unwrap().to_string()
}

/// Whether `line` has an `HH:MM` clock in it.
fn has_clock(line: &str) -> bool {
    let b = line.as_bytes();
    b.windows(5).any(|w| {
        w[0].is_ascii_digit()
            && w[1].is_ascii_digit()
            && w[2] == b':'
            && w[3].is_ascii_digit()
            && w[4].is_ascii_digit()
    })
}

#[test]
fn chat_client_through_the_daemon() {
    let Some(t) = Tmux::new("daemon") else { return };
    let n = Node::new();
    let _d = n.daemon();
    n.setup();
    n.run(&["general", "post", "--text", "hello from the cli"])
        .ok();
    let me = member_name(&n);
    t.start("c", &n, "chat");

    // Rooms, existing messages with the sender's name and a local time.
    let s = t.wait_for("c", "hello from the cli");
    assert!(s.contains("Rooms") && s.contains("#general"), "{s}");
    let line = s
        .lines()
        .find(|l| l.contains("hello from the cli"))
        .unwrap();
    assert!(line.contains(&me), "member name `{me}` on {line:?}");
    assert!(has_clock(line), "a time on {line:?}");
    // This node is a member, online (presence), seen just now.
    let you = s.lines().find(|l| l.contains("(you)")).unwrap();
    assert!(
        you.contains("● ") && you.contains(&me) && you.contains("now"),
        "{you:?}"
    );

    // A typed line is posted.
    t.line("c", "typed in the client");
    t.wait_for("c", "typed in the client");
    eventually(10, "the typed line in `general messages`", || {
        messages(&n, "general")
            .iter()
            .any(|m| m["text"] == "typed in the client")
    });

    // A post from another command shows up live.
    n.run(&["general", "post", "--text", "live from another command"])
        .ok();
    t.wait_for("c", "live from another command");

    // Reactions and replies, by the number shown left of each message.
    let first = messages(&n, "general")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.line("c", "/react 1 +1");
    t.wait("c", "a reaction under message 1", |s| s.contains("+1 1"));
    t.line("c", "/reply 1 a threaded answer");
    let s = t.wait_for("c", "a threaded answer");
    let reply = s.lines().find(|l| l.contains("a threaded answer")).unwrap();
    assert!(reply.contains("↳ #1"), "{reply:?}");
    assert!(s.contains("[1 reply]"), "{s}");
    let all = messages(&n, "general");
    let r = all
        .iter()
        .find(|m| m["text"] == "a threaded answer")
        .unwrap();
    assert_eq!(
        r["replyTo"].as_str().or(r["reply_to"].as_str()),
        Some(first.as_str()),
        "{r}"
    );
    let m1 = all.iter().find(|m| m["id"] == first.as_str()).unwrap();
    assert_eq!(m1["reactions"][0]["emoji"], "+1", "{m1}");

    // The thread view: a plain line there replies to its first message.
    t.line("c", "/thread 1");
    t.wait_for("c", "thread #1");
    t.line("c", "said inside the thread");
    t.wait_for("c", "said inside the thread");
    t.key("c", "Escape");
    t.wait_for("c", "[2 replies]");
    let r = messages(&n, "general");
    let r = r
        .iter()
        .find(|m| m["text"] == "said inside the thread")
        .unwrap();
    assert_eq!(
        r["replyTo"].as_str().or(r["reply_to"].as_str()),
        Some(first.as_str()),
        "{r}"
    );

    // Topic, in the title and for the CLI.
    t.line("c", "/topic plans for the week");
    t.wait_for("c", "#general — plans for the week");
    assert!(
        n.run(&["general", "topic"])
            .ok()
            .stdout
            .contains("plans for the week")
    );

    // Edit and delete one's own message.
    t.line("c", "/edit 2 typed, then edited");
    t.wait_for("c", "typed, then edited (edited)");
    t.line("c", "/delete 2");
    t.wait_for("c", "(deleted)");

    // A refused command is one notice line; the client keeps going.
    t.line("c", "/reply 99 nobody");
    t.wait_for("c", "no message #99 in this room");

    // /join creates a room the whole mesh sees, and posts go there.
    t.line("c", "/join #newroom");
    t.wait_for("c", "created room #newroom");
    assert!(n.run(&["store", "list"]).ok().stdout.contains("newroom"));
    t.line("c", "first words in newroom");
    eventually(10, "the post in newroom", || {
        messages(&n, "newroom")
            .iter()
            .any(|m| m["text"] == "first words in newroom")
    });
    // Activity in a room not shown is counted beside its name.
    n.run(&["general", "post", "--text", "meanwhile in general"])
        .ok();
    t.wait_for("c", "#general (1)");
    t.line("c", "/list");
    t.wait_for("c", "rooms: #general (1 new), #newroom");

    t.line("c", "/help");
    t.wait_for("c", "Any key closes this help");
    t.key("c", "Escape");
    t.wait("c", "the help closed", |s| !s.contains("Any key closes"));

    // /quit leaves the alternate screen and cooked mode behind.
    t.line("c", "/quit");
    let s = t.wait_for("c", "exit=0");
    t.wait_for("c", "tty: icanon echo");
    assert!(!s.contains("Members"), "the client's screen is gone: {s}");
}

#[test]
fn chat_client_shows_another_member_live() {
    let Some(t) = Tmux::new("mesh") else { return };
    let (a, b) = (Node::new(), Node::new());
    let _da = a.daemon();
    let _db = b.daemon();
    a.setup();
    join(&a, &b);
    t.start("c", &a, "chat '#general'");
    t.wait_for("c", "#general");
    // Bob's post, over the network, under the name alice's node has for
    // him (a joiner may have none: then the start of his key).
    b.run(&["general", "post", "--text", "hi from bob"]).ok();
    let bob = node_id(&b);
    let label = {
        let status = a.run(&["mesh", "status"]).ok().stdout;
        let row = status
            .lines()
            .find(|l| l.trim_start().starts_with(&bob))
            .unwrap_or_else(|| panic!("bob not a member on a: {status}"))
            .to_string();
        match row.split_whitespace().nth(2) {
            Some(name) => name.to_string(),
            None => bob[..8].to_string(),
        }
    };
    t.wait_for("c", &format!("{label}: hi from bob"));
    t.wait("c", "bob online in the members panel", |s| {
        s.lines().any(|l| l.contains(&format!("● {label}")))
    });
    // Bob's beacon carries the room's log digest: once both hold the same
    // entries, the panel says so.
    t.wait_for("c", "in sync 1/1");
    // And alice's answer reaches bob.
    t.line("c", "hello bob");
    eventually(20, "alice's line on bob's node", || {
        texts(&b).contains(&"hello bob".to_string())
    });
    t.line("c", "/quit");
    t.wait_for("c", "exit=0");
}

#[test]
fn chat_client_reports_a_lost_daemon_in_one_line() {
    let Some(t) = Tmux::new("lost") else { return };
    let n = Node::new();
    let d = n.daemon();
    n.setup();
    t.start("c", &n, "chat");
    t.wait_for("c", "#general");
    d.sigkill();
    let s = t.wait_for("c", "exit=1");
    assert!(s.contains("error: live updates stopped"), "{s}");
    assert!(!s.contains("panicked"), "{s}");
    t.wait_for("c", "tty: icanon echo");
}

#[test]
fn chat_client_without_a_daemon_serves_the_node() {
    let Some(t) = Tmux::new("local") else { return };
    let n = Node::new();
    n.setup();
    // A room that does not exist: one line, exit 1, the terminal as it was.
    t.start("bad", &n, "chat '#nosuch'");
    let s = t.wait_for("bad", "exit=1");
    assert!(
        s.contains("error: no chat room `nosuch` in this mesh"),
        "{s}"
    );
    t.wait_for("bad", "tty: icanon echo");

    t.start("c", &n, "chat --room general");
    t.wait_for("c", "no daemon running");
    // Another command reaches the node through the client's socket.
    n.run(&["general", "post", "--text", "posted while the client runs"])
        .ok();
    t.wait_for("c", "posted while the client runs");
    t.line("c", "and answered from it");
    eventually(10, "the client's post", || {
        messages(&n, "general")
            .iter()
            .any(|m| m["text"] == "and answered from it")
    });
    // Ctrl-C quits cleanly and gives the data dir back.
    t.key("c", "C-c");
    t.wait_for("c", "exit=0");
    t.wait_for("c", "tty: icanon echo");
    eventually(10, "the socket removed", || !n.socket().exists());
    n.run(&["general", "post", "--text", "the data dir is free again"])
        .ok();
}

#[test]
fn chat_without_a_terminal_says_so_and_methods_still_work() {
    let n = Node::new();
    n.setup();
    let r = n.run(&["chat"]);
    assert_eq!(r.code, 2, "stdout: {} stderr: {}", r.stdout, r.stderr);
    assert_eq!(r.stderr.trim().lines().count(), 1, "{}", r.stderr);
    assert!(r.stderr.contains("not a terminal"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);
    n.run(&["chat", "post", "--text", "still a plugin command"])
        .ok();
    assert!(texts(&n).contains(&"still a plugin command".to_string()));
    assert!(n.run(&["chat", "--help"]).ok().stdout.contains("post"));
}

/// Whether a process whose command line names `dir` is running.
fn running_in(dir: &std::path::Path) -> bool {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten().any(|e| {
                std::fs::read(e.path().join("cmdline"))
                    .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                    .unwrap_or(false)
            })
        })
        .unwrap_or(false)
}

/// The terminal hangs up under the client (its tmux or ssh session ends):
/// the client exits, instead of spinning on a dead terminal for good
/// (crossterm's poll never returned there, and the process held the
/// data dir at full CPU, deaf to SIGTERM).
#[test]
fn chat_client_ends_when_its_terminal_goes_away() {
    let Some(t) = Tmux::new("hangup") else { return };
    let n = Node::new();
    n.setup();
    t.start("c", &n, "chat --room general");
    t.wait_for("c", "no daemon running");
    assert!(running_in(n.path()), "the client is not running");
    t.tmux(&["kill-server"]);
    eventually(30, "the client process gone", || !running_in(n.path()));
}
