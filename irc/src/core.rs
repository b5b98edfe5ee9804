//! The core thread: every IRC command and every chat op from the mesh is
//! handled here, one at a time, in arrival order, like a single-threaded
//! ircd. That order is what clients see: a PRIVMSG reaches the other
//! members' queues before the sender's next command is read, so a client
//! that pings after another client's message gets the message first.
//!
//! Plugin calls run here (they are short: a snapshot read and a wasm call);
//! waiting for an op to be durable does not: the `Finisher` thread does it
//! and reports failures back as events.

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender};
use lattice_host::node::{CallPending, Node};
use lattice_kernel::SignedEntry;
use tokio::sync::{mpsc, watch};

use crate::Config;
use crate::commands;
use crate::line;
use crate::mesh_events;
use crate::rooms::Rooms;
use crate::state::{Client, ConnId, Line, State, unix_now};

/// Rooms a connection may create at once, and one more per this long.
pub const ROOM_BURST: f64 = 5.0;
pub const ROOM_EVERY: std::time::Duration = std::time::Duration::from_secs(20);
/// A connection that has not registered by then is closed.
const REGISTRATION_TIMEOUT: u64 = 60;

pub enum Event {
    Connected {
        id: ConnId,
        out: mpsc::Sender<Line>,
        kill: watch::Sender<bool>,
        host: String,
    },
    /// One line from a client, without CR LF; `None` when it was too long.
    Line {
        id: ConnId,
        bytes: Option<Vec<u8>>,
    },
    /// The client has sent nothing for a while.
    Idle {
        id: ConnId,
    },
    Closed {
        id: ConnId,
        reason: String,
    },
    /// An entry committed on this node (ours or a peer's).
    Entry(SignedEntry),
    /// An op we prepared could not be made durable.
    NotStored {
        id: ConnId,
        what: String,
        why: String,
    },
}

/// What a handler needs besides the state.
pub struct Ctx {
    pub rooms: Rooms,
    pub finisher: Sender<(ConnId, String, CallPending)>,
}

impl Ctx {
    /// Hands a prepared op to the finisher; `what` names it in a failure.
    pub fn finish(&self, id: ConnId, what: &str, call: CallPending) {
        if let CallPending::Append(_) = call {
            let _ = self.finisher.send((id, what.to_string(), call));
        }
    }
}

pub fn run(node: Arc<Node>, config: Arc<Config>, events: Receiver<Event>, me: Sender<Event>) {
    let (fin_tx, fin_rx) = crossbeam_channel::unbounded::<(ConnId, String, CallPending)>();
    std::thread::Builder::new()
        .name("irc-finisher".into())
        .spawn(move || {
            for (id, what, call) in fin_rx {
                if let Err(e) = call.wait() {
                    let _ = me.send(Event::NotStored {
                        id,
                        what,
                        why: e.to_string(),
                    });
                }
            }
        })
        .expect("spawning the IRC finisher thread");
    let ctx = Ctx {
        rooms: Rooms::new(node),
        finisher: fin_tx,
    };
    let mut st = State::new(config);
    let mut last_sweep = unix_now();
    loop {
        let ev = match events.recv_timeout(std::time::Duration::from_secs(1)) {
            Ok(ev) => ev,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                sweep_unregistered(&mut st, &mut last_sweep);
                continue;
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        };
        sweep_unregistered(&mut st, &mut last_sweep);
        match ev {
            Event::Connected {
                id,
                out,
                kill,
                host,
            } => {
                let now = unix_now();
                st.clients.insert(
                    id,
                    Client {
                        out,
                        kill,
                        host,
                        nick: None,
                        user: None,
                        realname: String::new(),
                        registered: false,
                        cap_hold: false,
                        pass: None,
                        away: None,
                        modes: Default::default(),
                        channels: Default::default(),
                        invites: Default::default(),
                        oper_failures: 0,
                        room_tokens: ROOM_BURST,
                        room_refill: std::time::Instant::now(),
                        signon: now,
                        last_active: now,
                        dead: false,
                    },
                );
            }
            Event::Line { id, bytes } => {
                match bytes {
                    None => st.reply(id, "417", &["Input line was too long"]),
                    Some(bytes) => line_in(&mut st, &ctx, id, &bytes),
                }
                reap(&mut st);
            }
            Event::Idle { id } => {
                let server = st.server().to_string();
                st.send_str(id, format!("PING :{server}"));
            }
            Event::Closed { id, reason } => {
                st.remove(id, &reason);
                reap(&mut st);
            }
            Event::Entry(e) => {
                mesh_events::deliver(&mut st, &ctx, &e);
                reap(&mut st);
            }
            Event::NotStored { id, what, why } => {
                let server = st.server().to_string();
                let nick = st.clients.get(&id).map(|c| c.nick().to_string());
                if let Some(nick) = nick {
                    let text = format!("{what} was not stored: {why}");
                    st.send_str(id, line::format(&server, "NOTICE", &[&nick, &text], true));
                }
            }
        }
    }
}

fn line_in(st: &mut State, ctx: &Ctx, id: ConnId, bytes: &[u8]) {
    if !st.clients.contains_key(&id) {
        return;
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        // We advertise UTF8ONLY: chat stores hold text.
        let cmd = String::from_utf8_lossy(bytes)
            .split(' ')
            .find(|w| !w.starts_with(':') && !w.starts_with('@') && !w.is_empty())
            .map(|w| w.to_ascii_uppercase())
            .unwrap_or_else(|| "*".into());
        let server = st.server().to_string();
        let cmd = if cmd.chars().all(|c| c.is_ascii_alphanumeric()) {
            cmd
        } else {
            "*".into()
        };
        st.send_str(
            id,
            line::format(
                &server,
                "FAIL",
                &[&cmd, "INVALID_UTF8", "Lines must be UTF-8"],
                true,
            ),
        );
        return;
    };
    if let Some(msg) = line::parse(text) {
        // Keep-alives are not activity: WHOIS idle time is the user's.
        if !matches!(msg.command.as_str(), "PING" | "PONG") {
            if let Some(c) = st.clients.get_mut(&id) {
                c.last_active = unix_now();
            }
        }
        commands::dispatch(st, ctx, id, &msg);
    }
}

/// Closes connections that never registered: a slot (and a nick) held by
/// a client that sends a byte now and then is a slot a user cannot have.
fn sweep_unregistered(st: &mut State, last: &mut u64) {
    let now = unix_now();
    if now == *last {
        return;
    }
    *last = now;
    let late: Vec<ConnId> = st
        .clients
        .iter()
        .filter(|(_, c)| !c.registered && now.saturating_sub(c.signon) > REGISTRATION_TIMEOUT)
        .map(|(id, _)| *id)
        .collect();
    for id in late {
        crate::commands::close(st, id, "Registration timed out");
    }
}

/// Drops every client whose queue overflowed (it stopped reading).
fn reap(st: &mut State) {
    let dead: Vec<ConnId> = st
        .clients
        .iter()
        .filter(|(_, c)| c.dead)
        .map(|(id, _)| *id)
        .collect();
    for id in dead {
        tracing::info!(conn = id, "IRC client dropped: its send queue is full");
        st.remove(id, "SendQ exceeded");
    }
}
