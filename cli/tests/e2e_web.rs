//! The HTTP API as a client meets it: a real daemon (`lattice daemon
//! --http 127.0.0.1:0`), tokens made with the real CLI, requests over real
//! HTTP on loopback. Every refusal is asserted with its status, and the
//! hostile cases (other Host, other Origin, forged or revoked tokens, a
//! token reaching past its scope, malformed bodies) are tests here.

mod web_common;
use std::time::Duration;

use web_common::*;

#[test]
fn token_commands_work_with_and_without_a_daemon() {
    let n = Node::new();
    n.setup();
    // No daemon: the CLI opens the data dir itself.
    let t = n
        .run(&["token", "create", "--read-only", "--expires", "7d"])
        .ok();
    let secret = t.stdout.trim();
    assert!(
        secret.starts_with("lat_") && secret.len() == 4 + 16 + 1 + 64,
        "{secret}"
    );
    assert!(t.stderr.contains("read-only") && t.stderr.contains("expires"));
    let j = n
        .run(&["token", "create", "--store", "general", "--json"])
        .ok();
    let v: Value = serde_json::from_str(j.stdout.trim()).unwrap();
    assert_eq!(v["store"], "general");
    assert_eq!(v["read_only"], false);
    assert!(v["created_ms"].is_string(), "u64 as a string: {v}");
    let id = v["id"].as_str().unwrap().to_string();
    let list = n.run(&["token", "list", "--json"]).ok().stdout;
    assert_eq!(list.lines().count(), 2, "{list}");
    assert!(
        !list.contains(secret) && !list.contains(&secret[21..]),
        "list shows a secret: {list}"
    );
    let _d = n.daemon();
    // Through the daemon now.
    let human = n.run(&["token", "list"]).ok().stdout;
    assert!(
        human.contains(&id) && human.contains("store general"),
        "{human}"
    );
    n.run(&["token", "revoke", &id]).ok();
    n.run(&["token", "revoke", &id])
        .fails_with("no token with id");
    assert_eq!(n.run(&["token", "list"]).ok().stdout.lines().count(), 1);
    n.run(&["token", "create", "--expires", "7x"])
        .usage_error("unknown unit");
    n.run(&["token", "create", "--expires", "0s"])
        .usage_error("longer than 0");
    n.run(&["token", "create", "--store", "nope"])
        .fails_with("unknown store");
}

#[test]
fn no_or_bad_token_is_401_and_every_refusal_is_json() {
    let w = web();
    let r = w.req(None, "GET", "/api/node", "");
    status(&r, 401, "unauthorized");
    assert!(
        r.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer"))
    );
    let good = w.token(&[]);
    // Same id, one secret digit changed; a bare secret; a wrong scheme.
    let mut forged = good.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == '0' { '1' } else { '0' });
    for bad in [forged.as_str(), &good[21..], "lat_0000000000000000_00"] {
        status(&w.get(bad, "/api/node"), 401, "unauthorized");
    }
    let basic = client::request(
        w.addr,
        "GET",
        "/api/node",
        &[("Authorization", &format!("Basic {good}"))],
        b"",
    )
    .unwrap();
    status(&basic, 401, "unauthorized");
    let v = status(&w.get(&good, "/api/node"), 200, "");
    assert_eq!(v["daemon"], true);
    // Revoked: refused at once.
    let id = &good[4..20];
    w.node.run(&["token", "revoke", id]).ok();
    status(&w.get(&good, "/api/node"), 401, "unauthorized");
    // Expired: refused once its time has come.
    let short = w.token(&["--expires", "1s"]);
    status(&w.get(&short, "/api/node"), 200, "");
    eventually(10, "a 1 s token to expire", || {
        w.get(&short, "/api/node").status == 401
    });
    let list = w.node.run(&["token", "list"]).ok().stdout;
    assert!(
        list.lines()
            .any(|l| l.starts_with(&short[4..20]) && l.contains("EXPIRED")),
        "{list}"
    );
    // Unknown routes are JSON too.
    status(&w.get(&w.token(&[]), "/api/nope"), 404, "not_found");
}

#[test]
fn a_token_reaches_only_as_far_as_its_scope() {
    let w = web();
    let ro = w.token(&["--read-only"]);
    let general = w.token(&["--store", "general"]);
    let full = w.token(&[]);
    // Read-only: queries yes, commands and mesh changes no.
    status(
        &w.post(&ro, "/api/stores/general/call/Messages", "{}"),
        200,
        "",
    );
    status(
        &w.post(&ro, "/api/stores/general/call/Post", r#"{"text":"x"}"#),
        403,
        "forbidden",
    );
    status(
        &w.post(
            &ro,
            "/api/stores/settings/call/Put",
            r#"{"key":"a","value":"Yg=="}"#,
        ),
        403,
        "forbidden",
    );
    status(
        &w.post(&ro, "/api/stores", r#"{"name":"r2","type":"chat"}"#),
        403,
        "forbidden",
    );
    status(&w.post(&ro, "/api/invite", "{}"), 403, "forbidden");
    status(
        &w.post(&ro, "/api/stores/general/sync", ""),
        403,
        "forbidden",
    );
    status(&w.get(&ro, "/api/peers"), 200, "");
    // One store: that store, read and write; no other store; nothing mesh-wide.
    status(
        &w.post(
            &general,
            "/api/stores/general/call/Post",
            r#"{"text":"in scope"}"#,
        ),
        200,
        "",
    );
    status(&w.get(&general, "/api/stores/general/log"), 200, "");
    for path in [
        "/api/stores/settings",
        "/api/stores/settings/log",
        "/api/stores/settings/schema",
    ] {
        status(&w.get(&general, path), 403, "forbidden");
    }
    status(
        &w.post(&general, "/api/stores/settings/call/Get", r#"{"key":"a"}"#),
        403,
        "forbidden",
    );
    // By type name or uuid it is still the other store.
    status(
        &w.post(&general, "/api/stores/kv/call/Get", r#"{"key":"a"}"#),
        403,
        "forbidden",
    );
    let settings_id = w.get(&full, "/api/stores/settings").json()["status"]["store"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    status(
        &w.get(&general, &format!("/api/stores/{settings_id}")),
        403,
        "forbidden",
    );
    for path in ["/api/peers", "/api/meshes", "/api/meshes/current"] {
        status(&w.get(&general, path), 403, "forbidden");
    }
    status(&w.post(&general, "/api/invite", "{}"), 403, "forbidden");
    // Its catalog lists only its store; its event stream only its store.
    let cat = status(&w.get(&general, "/api/stores"), 200, "");
    let names: Vec<&str> = cat["stores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["general"]);
    let r = w.get(&general, "/api/events?store=settings");
    status(&r, 403, "forbidden");
    // A full token reaches everything; unknown things are 404.
    status(&w.get(&full, "/api/stores/settings/schema"), 200, "");
    status(&w.get(&full, "/api/stores/nope"), 404, "not_found");
    status(
        &w.post(&full, "/api/stores/general/call/Nope", "{}"),
        404,
        "not_found",
    );
}

#[test]
fn a_post_over_http_shows_in_the_cli_and_back() {
    let w = web();
    let t = w.token(&[]);
    let v = status(
        &w.post(
            &t,
            "/api/stores/general/call/Post",
            r#"{"text":"from http"}"#,
        ),
        200,
        "",
    );
    assert_eq!(v["op"]["post"]["text"], "from http", "{v}");
    assert!(v["entry"]["seq"].is_string(), "{v}");
    eventually(10, "the HTTP post in the CLI", || {
        texts(&w.node).contains(&"from http".to_string())
    });
    w.node.run(&["general", "post", "--text", "from cli"]).ok();
    let m = status(
        &w.post(&t, "/api/stores/general/call/Messages", r#"{"limit":10}"#),
        200,
        "",
    );
    let got: Vec<&str> = m["reply"]["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["text"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["from http", "from cli"]);
    // A kv put through HTTP reads back through the CLI.
    status(
        &w.post(
            &t,
            "/api/stores/settings/call/Put",
            r#"{"key":"color","value":"Ymx1ZQ=="}"#,
        ),
        200,
        "",
    );
    let out = w
        .node
        .run(&["settings", "get", "--key", "color"])
        .ok()
        .stdout;
    assert!(out.contains("blue"), "{out}");
    // Status, digests, log and schema agree with the CLI.
    let d = status(&w.get(&t, "/api/stores/general/digest"), 200, "");
    let cli = w
        .node
        .run(&["store", "digest", "general", "--json"])
        .ok()
        .stdout;
    assert!(
        cli.contains(d["state_digest"].as_str().unwrap()),
        "{cli} vs {d}"
    );
    let log = status(
        &w.get(&t, "/api/stores/general/log?from=0&limit=10"),
        200,
        "",
    );
    assert_eq!(log["entries"][1]["op"]["post"]["text"], "from cli");
    let s = status(&w.get(&t, "/api/stores/general/schema"), 200, "");
    let post = s["methods"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == "Post")
        .unwrap();
    assert_eq!(post["query"], false);
    assert_eq!(post["fields"][0]["name"], "text");
    // Node, meshes and peers.
    status(&w.get(&t, "/api/meshes"), 200, "");
    let mesh = status(&w.get(&t, "/api/meshes/current"), 200, "");
    assert_eq!(mesh["members"].as_array().unwrap().len(), 1, "{mesh}");
    status(&w.get(&t, "/api/peers"), 200, "");
}

#[test]
fn malformed_requests_are_400_and_the_daemon_lives_on() {
    let w = web();
    let t = w.token(&[]);
    for body in [
        "{",
        "[]",
        r#"{"text": 5}"#,
        r#"{"nosuch": 1}"#,
        r#"{"text":"a"} trailing"#,
    ] {
        status(
            &w.post(&t, "/api/stores/general/call/Post", body),
            400,
            "invalid",
        );
    }
    status(
        &w.post(&t, "/api/stores", r#"{"type":"chat","extra":1}"#),
        400,
        "invalid",
    );
    status(
        &w.post(&t, "/api/stores", r#"{"name":"-bad","type":"chat"}"#),
        400,
        "invalid",
    );
    // An oversized body is refused, not buffered without end.
    let huge = format!(r#"{{"text":"{}"}}"#, "a".repeat(3 << 20));
    let r = w.post(&t, "/api/stores/general/call/Post", &huge);
    assert_eq!(r.status, 413, "{}", r.text());
    // A request line the server cannot parse gets 400, not a crash.
    use std::io::{Read as _, Write as _};
    let mut raw = std::net::TcpStream::connect(w.addr).unwrap();
    raw.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    raw.write_all(b"\x00\x01 garbage\r\n\r\n").unwrap();
    let mut answer = String::new();
    let _ = raw.read_to_string(&mut answer);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 400"),
        "{answer}"
    );
    status(&w.get(&t, "/api/node"), 200, "");
}

#[test]
fn dns_rebinding_and_cross_origin_requests_are_refused() {
    let w = web();
    let t = w.token(&[]);
    let auth = format!("Bearer {t}");
    let port = w.addr.port();
    let with = |h: &[(&str, &str)]| {
        let mut all = vec![("Authorization", auth.as_str())];
        all.extend_from_slice(h);
        client::request(w.addr, "GET", "/api/node", &all, b"").unwrap()
    };
    for host in [
        "evil.example".to_string(),
        format!("evil.example:{port}"),
        format!("localhost.evil.example:{port}"),
    ] {
        status(&with(&[("Host", &host)]), 403, "forbidden");
    }
    // The UI itself is not served to a rebound name either.
    let page = client::request(w.addr, "GET", "/", &[("Host", "evil.example")], b"").unwrap();
    assert_eq!(page.status, 403);
    status(&with(&[("Host", &format!("localhost:{port}"))]), 200, "");
    status(
        &with(&[("Origin", "http://evil.example")]),
        403,
        "forbidden",
    );
    status(&with(&[("Origin", "null")]), 403, "forbidden");
    status(&with(&[("Origin", &format!("http://{}", w.addr))]), 200, "");
    // Every response, the UI's included, carries a strict CSP.
    let page = client::request(w.addr, "GET", "/", &[], b"").unwrap();
    assert_eq!(page.status, 200);
    let csp = page.header("content-security-policy").unwrap();
    assert!(
        csp.contains("default-src 'none'")
            && csp.contains("script-src 'self'")
            && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(page.header("set-cookie").is_none());
    let js = client::request(w.addr, "GET", "/app.js", &[], b"").unwrap();
    assert!(js.text().contains("textContent") && !js.text().contains("innerHTML"));
}
