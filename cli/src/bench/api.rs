//! `lattice bench`: the local API measured through the daemon socket, as
//! the CLI and other clients meet it (release builds; figures in
//! docs/benchmarks.md).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Result, anyhow, bail};
use lattice_host::api::client::Client;
use lattice_host::api::server::Server;
use lattice_host::api::{Hex, Request, Response};
use lattice_host::node::Node;

use super::report::Report;
use crate::backend::Backend;

/// Local API benchmark against a throwaway node served on its socket.
pub fn bench(posts: u32, out: &Report) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let node = Arc::new(Node::open(dir.path())?);
    let server = Server::bind(node.clone(), &Backend::socket_path(dir.path()))?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let t = std::thread::spawn(move || server.serve(s));
    let mut c = Client::connect(&Backend::socket_path(dir.path()))?;
    let ok = |r: Response| -> Result<Response> {
        if let Response::Error { message, .. } = r {
            Err(anyhow!(message))
        } else {
            Ok(r)
        }
    };
    ok(c.call(Request::MeshCreate { name: None })?)?;
    ok(c.call(Request::StoreCreate {
        name: Some("benchroom".into()),
        kind: Some("chat".into()),
        wasm: None,
    })?)?;
    let post = |text: &str| Request::Call {
        selector: "benchroom".into(),
        explicit: None,
        method: "Post".into(),
        request: Hex(encode_text_field(text)),
    };
    let query = Request::Call {
        selector: "benchroom".into(),
        explicit: None,
        method: "Topic".into(),
        request: Hex(vec![]),
    };
    for (label, req) in [
        ("query (chat topic)", query),
        ("command (chat post, durable)", post("latency")),
    ] {
        let mut lat = Vec::new();
        for _ in 0..300 {
            let t0 = Instant::now();
            ok(c.call(req.clone())?)?;
            lat.push(t0.elapsed());
        }
        out.latency(label, &mut lat);
    }
    let window = 256u32;
    let t0 = Instant::now();
    let (mut sent, mut done) = (0u32, 0u32);
    while done < posts {
        while sent < posts && sent - done < window {
            c.send(post(&format!("message {sent}")))?;
            sent += 1;
        }
        ok(c.recv()?.resp)?;
        done += 1;
    }
    let secs = t0.elapsed().as_secs_f64();
    out.figure(
        "pipelined chat posts via socket",
        posts as f64 / secs,
        "ops/s",
        &format!(
            "{posts} pipelined chat posts via socket  {:.0} ops/s ({secs:.2} s, window {window})",
            posts as f64 / secs
        ),
    );
    stop.store(true, Ordering::Relaxed);
    let _ = t.join();
    // Process start to first output, one-shot commands (no daemon; plugin artifacts cached).
    drop(c);
    let exe = std::env::current_exe()?;
    // A separate data dir: the node above is still shutting down its threads.
    let dir = tempfile::tempdir()?;
    {
        let n = Node::open(dir.path())?;
        n.mesh_create(None)?;
        n.store_create(
            Some("benchroom"),
            lattice_host::node::StoreType::Builtin("chat"),
        )?;
    }
    let mut lat = Vec::new();
    for _ in 0..20 {
        let t0 = Instant::now();
        let out = std::process::Command::new(&exe)
            .args([
                "--data-dir",
                &dir.path().display().to_string(),
                "benchroom",
                "topic",
            ])
            .output()?;
        if !out.status.success() {
            bail!(
                "one-shot command failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        lat.push(t0.elapsed());
    }
    out.latency("one-shot `lattice benchroom topic` (no daemon)", &mut lat);
    Ok(())
}

/// The chat plugin's `PostRequest` (`string text = 1`), for the benchmark.
#[derive(Clone, PartialEq, prost::Message)]
struct PostRequest {
    #[prost(string, tag = "1")]
    text: String,
}

fn encode_text_field(text: &str) -> Vec<u8> {
    prost::Message::encode_to_vec(&PostRequest {
        text: text.to_string(),
    })
}
