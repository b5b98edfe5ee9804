//! Output people can read and ids they can paste back: times as local
//! time, authors by member name, zero and false shown, and every id form
//! the CLI prints (hex, `hex:`, a short prefix, `--json`'s base64) taken
//! back by id flags.

#[path = "support/mod.rs"]
mod common;

use common::*;

fn messages_json(n: &Node) -> serde_json::Value {
    let out = n.run(&["general", "messages", "--json"]).ok().stdout;
    serde_json::from_str(out.trim()).expect("JSON")
}

#[test]
fn ids_in_every_printed_form_are_taken_back() {
    let n = Node::new();
    n.setup();
    let printed = n.run(&["general", "post", "--text", "hello"]).ok().stdout;
    let full = printed
        .trim()
        .strip_prefix("hex:")
        .expect("hex:<id>")
        .to_string();
    let b64 = messages_json(&n)["messages"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // hex:<id>, bare hex, a short unique prefix, base64 from --json.
    n.run(&[
        "general",
        "react",
        "--to",
        &format!("hex:{full}"),
        "--emoji",
        "a",
    ])
    .ok();
    n.run(&["general", "react", "--to", &full, "--emoji", "b"])
        .ok();
    n.run(&["general", "react", "--to", &full[..7], "--emoji", "c"])
        .ok();
    n.run(&["general", "edit", "--id", &b64, "--text", "hello again"])
        .ok();
    let m = &messages_json(&n)["messages"][0];
    assert_eq!(m["text"], "hello again");
    let emojis: Vec<&str> = m["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["emoji"].as_str().unwrap())
        .collect();
    assert_eq!(emojis, ["a", "b", "c"]);
    // A prefix no entry has is an error naming the flag, not "no such message".
    n.run(&["general", "react", "--to", "0000000", "--emoji", "x"])
        .fails_with("--to: no entry of `general` has an id starting with 0000000");
}

#[test]
fn text_output_shows_names_local_times_and_zero_values() {
    let n = Node::new();
    n.setup();
    n.run(&["general", "post", "--text", "hi"]).ok();
    let out = n.run(&["general", "messages"]).ok().stdout;
    let name = n.run(&["mesh", "status"]).ok().stdout;
    let me = node_id(&n);
    // The author is the member's name and a short key, not 64 hex digits.
    let author = out.lines().find(|l| l.starts_with("author: ")).unwrap();
    assert!(author.ends_with(&format!("({})", &me[..8])), "{author}");
    assert!(!author.contains(&me), "{author}");
    assert!(
        name.contains(
            author
                .trim_start_matches("author: ")
                .split(" (")
                .next()
                .unwrap()
        )
    );
    // The clock is a time of day (HH:MM today), not an HLC integer.
    let hlc = out.lines().find(|l| l.starts_with("hlc: ")).unwrap();
    let t = hlc.trim_start_matches("hlc: ");
    assert!(t.len() == 5 && &t[2..3] == ":", "{hlc}");
    // Zero and false are shown.
    for line in ["edited: false", "deleted: false", "replies: 0"] {
        assert!(out.lines().any(|l| l == line), "{line} missing in {out}");
    }
    // --json stays raw: the HLC number and the full key.
    let m = &messages_json(&n)["messages"][0];
    assert!(m["hlc"].as_str().unwrap().parse::<u64>().unwrap() > 1 << 40);
}
