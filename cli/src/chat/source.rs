//! Where the client's data comes from: the daemon if one runs, else the
//! node opened in this process. Either way requests go through the local
//! API (`Request` → `service::handle`), and new entries arrive as watch
//! events on a channel the event loop drains between key presses.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;

use anyhow::{Context as _, Result, bail};
use lattice_host::api::client::Client;
use lattice_host::api::server::Server;
use lattice_host::api::{Hex, Request, Response, service};
use lattice_host::node::{Node, SOCKET_FILE};
use prost::Message;

use crate::backend::Backend;

/// What the watch thread reports.
pub enum Event {
    /// An entry was applied to this store (its id).
    Entry(String),
    /// The event stream ended: the daemon went away.
    Lost(String),
}

enum Calls {
    Daemon(Client),
    Local(Arc<Node>),
}

pub struct Source {
    calls: Calls,
    pub events: Receiver<Event>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    /// Whether this process serves the socket (no daemon was running).
    pub serving: bool,
}

impl Source {
    /// Opens the node the way every command does (waiting for a busy data
    /// dir), then starts watching. Without a daemon the client serves the
    /// socket itself, as `lattice watch` does, so that other commands on
    /// this data dir still work while the client holds it open.
    pub fn open(dir: &Path, stop: Arc<AtomicBool>) -> Result<Source> {
        let (tx, events) = channel();
        let mut threads = Vec::new();
        let (calls, serving) = match Backend::open(dir)? {
            Backend::Daemon(c) => {
                let mut w = Client::connect(&dir.join(SOCKET_FILE))
                    .context("connecting to the daemon for live updates")?;
                w.send(Request::Watch { store: None })
                    .context("asking the daemon for live updates")?;
                let s = stop.clone();
                threads.push(std::thread::spawn(move || watch_daemon(w, tx, s)));
                (Calls::Daemon(c), false)
            }
            Backend::Local(node) => {
                let node: Arc<Node> = Arc::from(node);
                let server = Server::bind(node.clone(), &dir.join(SOCKET_FILE))?;
                let s = stop.clone();
                threads.push(std::thread::spawn(move || server.serve(s)));
                let (n, s) = (node.clone(), stop.clone());
                threads.push(std::thread::spawn(move || watch_local(&n, tx, s)));
                (Calls::Local(node), true)
            }
        };
        Ok(Source {
            calls,
            events,
            stop,
            threads,
            serving,
        })
    }

    /// One request; an error response becomes an `Err` with its message.
    pub fn call(&mut self, req: Request) -> Result<Response> {
        let resp = match &mut self.calls {
            Calls::Daemon(c) => c.call(req).context("daemon connection")?,
            Calls::Local(n) => service::handle(n, req, false),
        };
        if let Response::Error { message, .. } = resp {
            bail!(message);
        }
        Ok(resp)
    }

    /// A chat method on the store with this id, in the plugin's own types.
    pub fn chat<R: Message + Default>(
        &mut self,
        store: &str,
        method: &str,
        request: &impl Message,
    ) -> Result<R> {
        let resp = self.call(Request::Call {
            selector: store.to_string(),
            explicit: None,
            method: method.to_string(),
            request: Hex(request.encode_to_vec()),
        })?;
        let Response::Called { reply, .. } = resp else {
            bail!("unexpected reply to {method}");
        };
        R::decode(reply.0.as_slice()).with_context(|| format!("decoding the reply to {method}"))
    }

    /// Stops the watch (and the socket this process served) and waits for
    /// them, so the socket file is gone when the client has exited.
    pub fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        drop(self.calls);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn watch_daemon(mut c: Client, tx: Sender<Event>, stop: Arc<AtomicBool>) {
    // The daemon sends a heartbeat every 500 ms, so `stop` is seen soon.
    while !stop.load(Ordering::Relaxed) {
        match c.recv() {
            Ok(f) => match f.resp {
                Response::Event { store, .. } => {
                    if tx.send(Event::Entry(store.id)).is_err() {
                        return;
                    }
                }
                Response::Error { message, .. } => {
                    let _ = tx.send(Event::Lost(message));
                    return;
                }
                _ => {}
            },
            Err(e) => {
                if !stop.load(Ordering::Relaxed) {
                    let _ = tx.send(Event::Lost(format!("daemon connection: {e}")));
                }
                return;
            }
        }
    }
}

fn watch_local(node: &Node, tx: Sender<Event>, stop: Arc<AtomicBool>) {
    let r = service::watch(node, None, |resp| {
        if let Response::Event { store, .. } = resp {
            if tx.send(Event::Entry(store.id)).is_err() {
                return false;
            }
        }
        !stop.load(Ordering::Relaxed)
    });
    if let Err(e) = r {
        let _ = tx.send(Event::Lost(format!("watching the node: {e}")));
    }
}
