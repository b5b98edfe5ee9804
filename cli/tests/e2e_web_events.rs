//! The HTTP API's event stream, login links and OpenAPI description, as a
//! client meets them: a real daemon serving HTTP on loopback, tokens made
//! with the real CLI.

mod web_common;
use std::time::{Duration, Instant};

use web_common::*;

/// Opens `/api/events` and returns the connection once its stream is ready.
fn subscribe(w: &Web, token: &str, query: &str) -> Conn {
    let mut c = Conn::open(w.addr).unwrap();
    let auth = format!("Bearer {token}");
    c.send(
        "GET",
        &format!("/api/events{query}"),
        &[("Authorization", &auth)],
        b"",
    )
    .unwrap();
    let (st, headers) = c.head().unwrap();
    assert_eq!(st, 200);
    assert!(
        headers
            .iter()
            .any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream"))
    );
    let mut ready = false;
    c.events(|e, _| {
        ready = e == "ready";
        false
    })
    .unwrap();
    assert!(ready, "first event is not `ready`");
    c
}

#[test]
fn sse_delivers_an_op_posted_from_the_cli_and_ends_on_revoke() {
    let w = web();
    let t = w.token(&[]);
    let mut all = subscribe(&w, &t, "");
    let mut only_settings = subscribe(&w, &t, "?store=settings");
    let started = Instant::now();
    w.node
        .run(&["general", "post", "--text", "<img src=x onerror=alert(1)>"])
        .ok();
    w.node
        .run(&["settings", "put", "--key", "k", "--value", "v"])
        .ok();
    let mut got = None;
    all.events(|e, d| {
        if e == "op" {
            got = Some(serde_json::from_str::<Value>(d).unwrap());
            return false;
        }
        true
    })
    .unwrap();
    let v = got.expect("no op event");
    assert_eq!(v["store"]["name"], "general");
    assert_eq!(v["op"]["post"]["text"], "<img src=x onerror=alert(1)>");
    assert!(started.elapsed() < Duration::from_secs(10));
    // The filtered stream skips general and sees the kv put.
    let mut first = None;
    only_settings
        .events(|e, d| {
            if e == "op" {
                first = Some(serde_json::from_str::<Value>(d).unwrap());
                return false;
            }
            true
        })
        .unwrap();
    assert_eq!(first.unwrap()["store"]["name"], "settings");
    // Revoking the token ends its open stream with `revoked`.
    w.node.run(&["token", "revoke", &t[4..20]]).ok();
    let mut last = String::new();
    all.events(|e, _| {
        last = e.to_string();
        e != "revoked"
    })
    .unwrap();
    assert_eq!(last, "revoked");
}

#[test]
fn a_login_url_works_once() {
    let w = web();
    let out = w
        .node
        .run(&["token", "create", "--login", "--store", "general"])
        .ok();
    let url = out.stdout.trim();
    let want = format!("http://{}/#login=", w.addr);
    assert!(url.starts_with(&want), "{url} (daemon on {})", w.addr);
    let code = &url[want.len()..];
    // The code is no API token.
    status(&w.get(code, "/api/node"), 401, "unauthorized");
    let r = status(&w.req(Some(code), "POST", "/api/login", ""), 200, "");
    let session = r["token"].as_str().unwrap().to_string();
    assert_eq!(r["store"], "general");
    assert!(r["expires_ms"].is_string());
    status(
        &w.post(
            &session,
            "/api/stores/general/call/Post",
            r#"{"text":"hi"}"#,
        ),
        200,
        "",
    );
    status(&w.get(&session, "/api/stores/settings"), 403, "forbidden");
    // Used once: never again, and a session token is not a login code.
    status(
        &w.req(Some(code), "POST", "/api/login", ""),
        401,
        "unauthorized",
    );
    status(
        &w.req(Some(&session), "POST", "/api/login", ""),
        401,
        "unauthorized",
    );
    status(&w.req(None, "POST", "/api/login", ""), 401, "unauthorized");
}

#[test]
fn the_openapi_description_follows_the_descriptors_and_the_scope() {
    let w = web();
    let full = w.token(&[]);
    let doc = status(&w.get(&full, "/api/openapi.json"), 200, "");
    assert_eq!(doc["openapi"], "3.1.0");
    let post = &doc["paths"]["/api/stores/general/call/Post"]["post"];
    assert!(
        post["summary"].as_str().unwrap().contains("command"),
        "{post}"
    );
    assert!(doc["paths"]["/api/stores/settings/call/Put"].is_object());
    let req = &doc["components"]["schemas"]["lattice.chat.PostRequest"];
    assert_eq!(req["properties"]["text"]["type"], "string", "{req}");
    let general = w.token(&["--store", "general"]);
    let doc = status(&w.get(&general, "/api/openapi.json"), 200, "");
    assert!(doc["paths"]["/api/stores/general/call/Post"].is_object());
    assert!(
        doc["paths"]["/api/stores/settings/call/Put"].is_null(),
        "another store's methods leak"
    );
    status(
        &w.req(None, "GET", "/api/openapi.json", ""),
        401,
        "unauthorized",
    );
}
