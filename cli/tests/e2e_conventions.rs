//! The command line's conventions on the real binary: the `--json`
//! contract (JSON lines, JSON errors, 64-bit integers as strings), exit
//! codes, how a store is chosen, the config file, and the daemon's ready
//! line and clean stop. docs/cli.md is what these hold the binary to.

#[path = "support/mod.rs"]
mod common;
use common::*;

use serde_json::Value;

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// A `--json` failure: one JSON object on stderr with the kind, nothing on stdout.
#[track_caller]
fn json_error(r: &Run, code: i32, kind: &str) -> Value {
    assert_eq!(r.code, code, "stdout: {} stderr: {}", r.stdout, r.stderr);
    assert!(r.stdout.is_empty(), "stdout: {}", r.stdout);
    let lines = json_lines(&r.stderr);
    assert_eq!(lines.len(), 1, "stderr: {}", r.stderr);
    assert_eq!(lines[0]["kind"], kind, "stderr: {}", r.stderr);
    assert!(lines[0]["error"].as_str().is_some_and(|e| !e.is_empty()));
    lines[0].clone()
}

#[test]
fn errors_are_json_with_a_kind_and_usage_exits_2() {
    let n = Node::new();
    // Before any mesh: the node answers `not_found`.
    json_error(&n.run(&["--json", "store", "status"]), 1, "not_found");
    n.setup();
    json_error(
        &n.run(&["--json", "store", "status", "nosuch"]),
        1,
        "not_found",
    );
    // Two stores and none picked: `ambiguous`, naming both.
    let e = json_error(&n.run(&["--json", "store", "status"]), 1, "ambiguous");
    let msg = e["error"].as_str().unwrap();
    assert!(msg.contains("general") && msg.contains("settings"), "{msg}");
    // The command line itself is wrong: exit 2, kind `usage`, static and plugin commands alike.
    json_error(&n.run(&["--json", "store", "frobnicate"]), 2, "usage");
    json_error(
        &n.run(&["--json", "general", "post", "--txt", "x"]),
        2,
        "usage",
    );
    json_error(
        &n.run(&["general", "messages", "--limit", "many", "--json"]),
        2,
        "usage",
    );
    json_error(&n.run(&["--json", "store"]), 2, "usage");
    json_error(&n.run(&["--json", "store", "delete"]), 2, "usage");
    // Without --json: the same exit codes, one plain line.
    n.run(&["store", "frobnicate"]).usage_error("frobnicate");
    n.run(&["store", "delete"]).usage_error("needs STORE");
    n.run(&["store", "status", "general", "--store", "settings"])
        .usage_error("cannot be used with");
    // A subcommand missing prints the help on stderr and exits 2, as clap does.
    let r = n.run(&["store"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("Usage:"), "{}", r.stderr);
    // A rule refusing: `refused`.
    json_error(
        &n.run(&["--json", "mesh", "leave", "--mesh", &mesh_id(&n)]),
        1,
        "refused",
    );
}

fn mesh_id(n: &Node) -> String {
    n.run(&["mesh", "list"])
        .ok()
        .stdout
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

#[test]
fn json_output_is_lines_with_64_bit_integers_as_strings() {
    let n = Node::new();
    n.setup();
    n.run(&["general", "post", "--text", "hello"]).ok();
    let post = json_lines(
        &n.run(&["--json", "general", "post", "--text", "again"])
            .ok()
            .stdout,
    );
    assert!(
        post[0]["hlc"].is_string() && post[0]["seq"].is_string(),
        "{post:?}"
    );
    let log = json_lines(&n.run(&["store", "log", "general", "--json"]).ok().stdout);
    assert_eq!(log.len(), 2, "{log:?}");
    for e in &log {
        let hlc = e["hlc"].as_str().expect("hlc is a string");
        assert!(
            hlc.parse::<u64>().unwrap() > 1 << 53,
            "an HLC needs more than 53 bits: {hlc}"
        );
        assert!(e["seq"].is_string(), "{e}");
        assert_eq!(e["author"].as_str().unwrap().len(), 64);
        assert!(e["op"].is_object(), "op decoded: {e}");
    }
    // Lists: one object per line.
    let stores = json_lines(&n.run(&["--json", "store", "list"]).ok().stdout);
    assert_eq!(stores.len(), 2);
    let status = json_lines(&n.run(&["--json", "store", "status", "general"]).ok().stdout);
    assert_eq!(status[0]["entries"], "2");
    let plugins = n.run(&["--json", "plugin", "list"]).ok().stdout;
    for line in plugins.lines() {
        assert!(line.len() < 4096, "a plugin line is {} bytes", line.len());
        let p: Value = serde_json::from_str(line).unwrap();
        assert!(p.get("descriptor_set").is_none(), "{line}");
        assert!(p["name"].is_string());
    }
    assert!(plugins.lines().count() >= 3, "kv, log, chat: {plugins}");
    let node = json_lines(&n.run(&["--json", "node", "status"]).ok().stdout);
    assert_eq!(node[0]["node"].as_str().unwrap().len(), 64);
}

#[test]
fn store_commands_take_the_store_the_same_way_and_store_use_sets_the_default() {
    let n = Node::new();
    n.setup();
    n.run(&["settings", "put", "--key", "k", "--value", "v"])
        .ok();
    // Positional and --store name the same store.
    let a = n.run(&["store", "digest", "settings"]).ok().stdout;
    let b = n
        .run(&["store", "digest", "--store", "settings"])
        .ok()
        .stdout;
    assert_eq!(a, b);
    for cmd in ["status", "log", "digest", "verify"] {
        n.run(&["store", cmd]).fails_with(
            "name one (STORE or --store NAME) or set the default with `lattice store use NAME`",
        );
        n.run(&["store", cmd, "--store", "general"]).ok();
    }
    // `store use` picks the default for every store command.
    n.run(&["store", "use", "settings"]).ok();
    let status = n.run(&["store", "status"]).ok().stdout;
    assert!(status.contains("settings"), "{status}");
    assert_eq!(n.run(&["store", "digest"]).ok().stdout, a);
    let log = n.run(&["store", "log"]).ok().stdout;
    assert!(log.contains("writes"), "the kv put: {log}");
    n.run(&["store", "use", "--store", "general"]).ok();
    assert!(n.run(&["store", "status"]).ok().stdout.contains("general"));
    // Mesh commands: positional or --mesh.
    let id = mesh_id(&n);
    assert_eq!(
        n.run(&["mesh", "status", &id]).ok().stdout,
        n.run(&["mesh", "status", "--mesh", &id]).ok().stdout
    );
}

fn write_config(dir: &std::path::Path, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// A `lattice` run with only the config file (no --data-dir of the test helper).
fn bare(config: &std::path::Path, args: &[&str]) -> Run {
    let out = std::process::Command::new(BIN)
        .args(args)
        .env("LATTICE_CONFIG", config)
        .env_remove("LATTICE_HOME")
        .env_remove("LATTICE_LISTEN")
        .env_remove("LATTICE_SYNC_INTERVAL")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn the_config_file_sets_defaults_that_env_and_flags_override() {
    let t = tempfile::tempdir().unwrap();
    let data = t.path().join("node");
    let cfg = write_config(
        t.path(),
        "config.toml",
        &format!(
            "data_dir = {:?}\n[daemon]\nsync_interval = 7\n[irc]\nserver_name = \"irc.example\"\npassword = \"hunter2\"\n",
            data.display().to_string()
        ),
    );
    // The file's data dir is where commands go.
    bare(&cfg, &["mesh", "create"]).ok();
    assert!(
        data.join("lattice.redb").exists(),
        "the node lives in the file's data_dir"
    );
    let show = json_lines(&bare(&cfg, &["--json", "config", "show"]).ok().stdout);
    let s = &show[0]["settings"];
    assert_eq!(show[0]["found"], true);
    assert_eq!(s["data_dir"]["source"], "file");
    assert_eq!(s["daemon.sync_interval"]["value"], "7");
    assert_eq!(s["daemon.sync_interval"]["source"], "file");
    assert_eq!(s["irc.server_name"]["value"], "irc.example");
    assert_eq!(s["daemon.listen"]["source"], "default");
    // Never print a password.
    let text = bare(&cfg, &["config", "show"]).ok().stdout;
    assert!(
        !text.contains("hunter2") && text.contains("(set)"),
        "{text}"
    );
    // The environment beats the file; a flag beats both.
    let out = std::process::Command::new(BIN)
        .args(["--json", "config", "show"])
        .env("LATTICE_CONFIG", &cfg)
        .env("LATTICE_SYNC_INTERVAL", "9")
        .env("LATTICE_HOME", t.path().join("envdir"))
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["settings"]["daemon.sync_interval"]["value"], "9");
    assert_eq!(
        v["settings"]["daemon.sync_interval"]["source"],
        "env LATTICE_SYNC_INTERVAL"
    );
    assert_eq!(v["settings"]["data_dir"]["source"], "env LATTICE_HOME");
    let flag = json_lines(
        &bare(&cfg, &["--json", "--data-dir", "/tmp/x", "config", "show"])
            .ok()
            .stdout,
    );
    assert_eq!(flag[0]["settings"]["data_dir"]["source"], "flag");
    // A misspelt key is an error naming the file and line, not ignored.
    let bad = write_config(t.path(), "bad.toml", "[daemon]\nsync_intervall = 5\n");
    let r = bare(&bad, &["store", "list"]);
    let r = r.fails_with("line 2");
    assert!(r.stderr.contains("sync_intervall"), "{}", r.stderr);
    json_error(&bare(&bad, &["--json", "config", "show"]), 1, "invalid");
    // A bad value in the environment is one clear line too.
    let out = std::process::Command::new(BIN)
        .args(["config", "show"])
        .env("LATTICE_CONFIG", &cfg)
        .env("LATTICE_LISTEN", "not-an-address")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("LATTICE_LISTEN"));
}

#[test]
fn the_daemon_prints_a_ready_line_and_stops_cleanly_on_sigterm() {
    let n = Node::new();
    n.setup();
    // Plain: `ready <node> <socket> <addrs>`, with the node's real id.
    let d = n.daemon();
    let id = json_lines(&n.run(&["--json", "node", "status"]).ok().stdout)[0]["node"]
        .as_str()
        .unwrap()
        .to_string();
    let words: Vec<&str> = d.ready.split(' ').collect();
    assert_eq!(words[0], "ready");
    assert_eq!(words[1], id);
    assert_eq!(words[2], n.socket().display().to_string());
    assert_eq!(d.stop(), 0, "SIGTERM is a clean stop");
    // --json, with -v logging to a pipe: the ready line is JSON, the log has
    // no colour codes, and SIGTERM closes the endpoint without iroh's
    // "dropped" complaint.
    let mut child = n
        .cmd()
        .env_remove("NO_COLOR")
        .args(["--json", "-v", "daemon"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let ready: Value = serde_json::from_str(&ready_line(&mut child)).unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["node"], id.as_str());
    assert!(ready["listen"].as_array().is_some_and(|a| !a.is_empty()));
    n.run(&["general", "post", "--text", "through the daemon"])
        .ok();
    unsafe_kill(child.id(), 15);
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        !log.contains('\x1b'),
        "colour codes in a piped log: {log:?}"
    );
    assert!(!log.to_lowercase().contains("dropped"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    // Nothing acknowledged was lost.
    assert!(texts(&n).contains(&"through the daemon".to_string()));
}

#[test]
fn bench_prints_json_lines() {
    let r = Node::new().run(&["--json", "bench", "--posts", "50"]).ok();
    let lines = json_lines(&r.stdout);
    assert!(lines.len() >= 4, "{}", r.stdout);
    for l in &lines {
        assert!(l["bench"].is_string(), "{l}");
        assert!(l.get("p50_ms").is_some() || l.get("value").is_some(), "{l}");
    }
}

#[test]
fn the_demo_in_json_is_its_steps_and_their_results() {
    let n = Node::new();
    let r = n.run(&["--json", "demo"]).ok();
    let lines = json_lines(&r.stdout);
    let steps: Vec<&str> = lines.iter().filter_map(|l| l["step"].as_str()).collect();
    assert!(steps.contains(&"lattice mesh create"), "{steps:?}");
    assert!(
        steps.iter().any(|s| s.starts_with("lattice general post")),
        "{steps:?}"
    );
    let converged = lines
        .iter()
        .find_map(|l| l["converged"].as_array())
        .expect("a converged line");
    assert_eq!(converged.len(), 3);
    assert!(
        converged
            .iter()
            .all(|c| c["state_digest"] == converged[0]["state_digest"]),
        "{converged:?}"
    );
    // Text for people goes nowhere near a --json stdout.
    assert!(!r.stdout.contains("Lattice demo:"), "{}", r.stdout);
    json_error(&n.run(&["--json", "completions", "bash"]), 2, "usage");
}
