//! `lattice bench --http`: the HTTP face measured as a browser or script
//! meets it: command latency over one keep-alive connection, and the fan-out
//! of live ops to many Server-Sent Events subscribers. A throwaway node in
//! this process, served on 127.0.0.1 by the real `lattice_web::Web`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use lattice_host::node::{Node, StoreType};
use lattice_web::client::Conn;
use serde_json::Value;

use super::report::Report;

pub fn bench(subscribers: usize, posts: usize, out: &Report) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Arc::new(Node::open(dir.path())?);
    node.mesh_create(None)?;
    node.store_create(Some("benchroom"), StoreType::Builtin("chat"))?;
    let (_, token) = node.token_create(None, false, None, false)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let web = lattice_web::Web::start(node.clone(), rt.handle(), "127.0.0.1:0".parse()?)?;
    let addr = web.local_addr();
    let auth = format!("Bearer {token}");
    let h = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
    ];
    out.heading(&format!("HTTP API on {addr} (one keep-alive connection)"));
    let mut c = Conn::open(addr)?;
    for (label, method, path, body) in [
        ("GET /api/node", "GET", "/api/node", ""),
        (
            "query (chat Topic)",
            "POST",
            "/api/stores/benchroom/call/Topic",
            "{}",
        ),
        (
            "command (chat Post, durable)",
            "POST",
            "/api/stores/benchroom/call/Post",
            r#"{"text":"latency"}"#,
        ),
    ] {
        let mut lat = Vec::new();
        for _ in 0..300 {
            let t0 = Instant::now();
            let r = c.request(method, path, &h, body.as_bytes())?;
            if r.status != 200 {
                bail!("{path}: HTTP {}: {}", r.status, r.text());
            }
            lat.push(t0.elapsed());
        }
        out.latency(label, &mut lat);
    }

    out.heading(&format!(
        "SSE fan-out: {subscribers} subscribers, {posts} posts"
    ));
    let sent: Arc<Mutex<Vec<Option<Instant>>>> = Arc::new(Mutex::new(vec![None; posts]));
    let mut readers = Vec::new();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    for _ in 0..subscribers {
        let (auth, sent, ready) = (auth.clone(), sent.clone(), ready_tx.clone());
        readers.push(std::thread::spawn(move || -> Result<Vec<Duration>> {
            let mut s = Conn::open(addr)?;
            s.send(
                "GET",
                "/api/events?store=benchroom",
                &[("Authorization", &auth)],
                b"",
            )?;
            let (st, _) = s.head()?;
            if st != 200 {
                bail!("events: HTTP {st}");
            }
            let mut lat = Vec::with_capacity(posts);
            s.events(|event, data| {
                if event == "ready" {
                    let _ = ready.send(());
                    return true;
                }
                if event != "op" {
                    return true;
                }
                let now = Instant::now();
                let v: Value = serde_json::from_str(data).unwrap_or_default();
                let i = v["op"]["post"]["text"]
                    .as_str()
                    .and_then(|t| t.strip_prefix("fan "))
                    .and_then(|n| n.parse::<usize>().ok());
                if let Some(i) = i {
                    let at = sent.lock().unwrap_or_else(|e| e.into_inner())[i];
                    if let Some(at) = at {
                        lat.push(now - at);
                    }
                    if i + 1 == posts {
                        return false;
                    }
                }
                true
            })?;
            Ok(lat)
        }));
    }
    for _ in 0..subscribers {
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| anyhow!("a subscriber never got its stream"))?;
    }
    let t0 = Instant::now();
    for i in 0..posts {
        sent.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(Instant::now());
        let body = format!(r#"{{"text":"fan {i}"}}"#);
        let r = c.request(
            "POST",
            "/api/stores/benchroom/call/Post",
            &h,
            body.as_bytes(),
        )?;
        if r.status != 200 {
            bail!("post: HTTP {}: {}", r.status, r.text());
        }
    }
    let mut all = Vec::new();
    for r in readers {
        all.extend(
            r.join()
                .map_err(|_| anyhow!("a subscriber thread panicked"))??,
        );
    }
    let secs = t0.elapsed().as_secs_f64();
    let deliveries = all.len();
    out.latency("post → SSE delivery, per subscriber", &mut all);
    out.figure(
        "SSE deliveries",
        deliveries as f64 / secs,
        "events/s",
        &format!(
            "{deliveries} deliveries ({subscribers} × {posts}) in {secs:.2} s: {:.0} events/s",
            deliveries as f64 / secs
        ),
    );
    if deliveries != subscribers * posts {
        bail!(
            "{} of {} deliveries arrived",
            deliveries,
            subscribers * posts
        );
    }
    web.stop();
    Ok(())
}
