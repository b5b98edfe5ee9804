//! The IRC gateway: a server face (RFC 1459/2812, with the modern numerics
//! clients expect) over the current mesh's chat stores, so Irssi, WeeChat
//! and friends can talk in Lattice rooms.
//!
//! - Channel `#name` is the chat store named `name` (ascii-folded); JOIN
//!   of an unknown channel creates the store, so the whole mesh sees it.
//! - Every IRC user on a gateway posts through this node's key; the op
//!   carries the IRC nick as the message's display name. Members elsewhere
//!   appear as `nick!<node>@<mesh>`. Nothing of an IRC session survives a
//!   reconnect but the messages: a JOIN replays the room's recent history.
//! - Channel modes, bans, invites and operators are the gateway's own
//!   session state (as on any single IRC server); topics are replicated.
//!
//! Layout: `conn` (sockets, pacing, queues) → `core` (one thread, arrival
//! order) → `commands` (one module per group of commands) → `rooms` (the
//! node); `mesh_events` renders chat ops from the mesh as IRC lines.

/// The chat plugin's messages, generated from its `.proto` (replies we
/// never decode are generated too).
#[allow(dead_code)]
mod chat {
    include!(concat!(env!("OUT_DIR"), "/lattice.chat.rs"));
}
mod commands;
mod conn;
mod core;
pub mod line;
mod mesh_events;
mod rooms;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use lattice_host::node::Node;

/// Events waiting for the core thread at most.
const CORE_QUEUE: usize = 16 * 1024;

/// How the gateway presents itself and what it allows.
#[derive(Clone, Debug)]
pub struct Config {
    /// The server name in every reply's prefix.
    pub server_name: String,
    /// Free text for `LINKS`, `WHOIS` and `INFO`.
    pub info: String,
    /// The `NETWORK` name clients show.
    pub network: String,
    /// Message of the day, a line each; empty: `422 MOTD File is missing`.
    pub motd: Vec<String>,
    /// `OPER name password` pairs.
    pub opers: Vec<(String, String)>,
    /// Connection password (`PASS`), if any.
    pub password: Option<String>,
    /// Messages a JOIN replays from the room's history.
    pub history: u32,
    /// Connections served at once; more are refused with `ERROR`.
    pub max_clients: usize,
    /// Lines queued for a client before it counts as not reading and is dropped.
    pub send_queue: usize,
    /// Lines a client may send at once before it is paced.
    pub flood_burst: f64,
    /// Lines per second a paced client may send.
    pub flood_rate: f64,
    /// Silence after which a client is pinged, then dropped.
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            server_name: "lattice.local".into(),
            info: "Lattice IRC gateway".into(),
            network: "Lattice".into(),
            motd: vec![
                "Welcome to a Lattice mesh over IRC.".into(),
                "Channels are the mesh's chat rooms; JOIN #name makes a new one.".into(),
            ],
            opers: Vec::new(),
            password: None,
            history: 20,
            max_clients: 4096,
            send_queue: 4096,
            flood_burst: 64.0,
            flood_rate: 16.0,
            ping_interval: Duration::from_secs(120),
            ping_timeout: Duration::from_secs(120),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum IrcError {
    #[error("cannot listen for IRC on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the IRC core thread: {0}")]
    Thread(std::io::Error),
}

/// A running gateway. It stops with the tokio runtime it was started on.
pub struct Gateway {
    addr: SocketAddr,
}

impl Gateway {
    /// Listens on `addr` and serves IRC on `rt`; commands and mesh events
    /// are handled on a thread of its own.
    pub fn start(
        node: Arc<Node>,
        rt: &tokio::runtime::Handle,
        addr: SocketAddr,
        config: Config,
    ) -> Result<Gateway, IrcError> {
        let listener = {
            let _guard = rt.enter();
            let std = std::net::TcpListener::bind(addr)
                .map_err(|source| IrcError::Bind { addr, source })?;
            std.set_nonblocking(true)
                .and_then(|_| tokio::net::TcpListener::from_std(std))
                .map_err(|source| IrcError::Bind { addr, source })?
        };
        let addr = listener
            .local_addr()
            .map_err(|source| IrcError::Bind { addr, source })?;
        let config = Arc::new(config);
        // Bounded: when the core falls behind, readers wait (and TCP pushes
        // back on their clients) instead of queueing without limit.
        let (tx, rx) = crossbeam_channel::bounded(CORE_QUEUE);
        // Chat ops committed on this node (ours and peers') feed the core.
        let entries = node.watch();
        let to_core = tx.clone();
        std::thread::Builder::new()
            .name("irc-watch".into())
            .spawn(move || {
                for e in entries {
                    if to_core.send(core::Event::Entry(e)).is_err() {
                        break;
                    }
                }
            })
            .map_err(IrcError::Thread)?;
        let (core_config, core_tx) = (config.clone(), tx.clone());
        std::thread::Builder::new()
            .name("irc-core".into())
            .spawn(move || core::run(node, core_config, rx, core_tx))
            .map_err(IrcError::Thread)?;
        rt.spawn(conn::accept_loop(listener, config, tx));
        Ok(Gateway { addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}
