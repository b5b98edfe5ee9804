//! `lattice watch`: ops as they are applied, decoded, until Ctrl-C.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use anyhow::{Result, bail};
use lattice_host::api::server::Server;
use lattice_host::api::{Request, Response, service};
use lattice_host::node::Node;

use super::stop_flag;
use crate::backend::Backend;
use crate::plugin_cmd::{Catalog, Schema};

pub fn run(dir: &Path, store: Option<String>, json: bool) -> Result<ExitCode> {
    let stop = stop_flag()?;
    let mut b = Backend::open(dir)?;
    let cat = Catalog::fetch(&mut b)?;
    // Names as of the start: a member named later shows as its short id.
    let who = crate::plugin_cmd::readable(&mut b);
    let print = |resp: Response| -> bool {
        if let Response::Event { store, entry } = resp {
            let schema = cat
                .plugin_by_hash(&store.plugin_hash)
                .and_then(|p| Schema::of(p).ok());
            if json {
                outln!(
                    "{}",
                    super::json::entry(&store.name, &entry, schema.as_ref())
                );
            } else {
                let op = schema
                    .map(|s| s.render_op(&entry.payload.0, false))
                    .unwrap_or_default();
                outln!(
                    "{:<12} {} {:>5} {}",
                    store.name,
                    who.author_hex(&entry.author),
                    entry.seq,
                    op.replace('\n', " ")
                );
            }
        }
        !stop.load(Ordering::Relaxed)
    };
    match b {
        Backend::Daemon(mut c) => {
            c.send(Request::Watch { store })?;
            eprintln!("watching (Ctrl-C to stop)");
            loop {
                let f = c.recv()?;
                if let Response::Error { message, .. } = f.resp {
                    bail!(message);
                }
                if !print(f.resp) {
                    break;
                }
            }
        }
        Backend::Local(node) => {
            // No daemon: serve the socket ourselves while watching, so other
            // commands can write meanwhile (they reach this process).
            let node: Arc<Node> = Arc::from(node);
            let server = Server::bind(node.clone(), &Backend::socket_path(dir))?;
            eprintln!(
                "watching (no daemon running: serving {} until Ctrl-C)",
                server.path().display()
            );
            let s = stop.clone();
            let t = std::thread::spawn(move || server.serve(s));
            service::watch(&node, store.as_deref(), print)?;
            stop.store(true, Ordering::Relaxed);
            let _ = t.join();
        }
    }
    Ok(ExitCode::from(130))
}
