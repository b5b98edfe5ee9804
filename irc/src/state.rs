//! What the gateway knows about its IRC users and channels, and how lines
//! reach them. Owned by the core thread alone (see `core`), so no locks.
//!
//! Channel membership, channel modes, bans and invites are this gateway's
//! own: they are IRC session state, not chat history. Messages and topics
//! go to the channel's chat store and so to every member of the mesh.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};

use crate::Config;
use crate::line::{self, fold};

pub type ConnId = u64;

/// A line queued for one connection's writer.
pub type Line = Arc<str>;

/// How many nick changes and quits WHOWAS remembers.
const WHOWAS_LEN: usize = 256;

pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// One IRC connection.
pub struct Client {
    pub out: mpsc::Sender<Line>,
    /// Set to drop the socket at once, queued lines or not.
    pub kill: watch::Sender<bool>,
    pub host: String,
    pub nick: Option<String>,
    pub user: Option<String>,
    pub realname: String,
    pub registered: bool,
    /// `CAP LS`/`REQ` was sent: registration waits for `CAP END`.
    pub cap_hold: bool,
    pub pass: Option<String>,
    pub away: Option<String>,
    /// User modes: `i`, `o`, `w`.
    pub modes: BTreeSet<char>,
    /// Folded names of the channels joined.
    pub channels: BTreeSet<String>,
    /// Folded channel names this user was invited to, and whether by an
    /// operator (only an operator's invite gets past `+l` and `+b`).
    pub invites: BTreeMap<String, bool>,
    /// Failed OPER attempts; the connection is closed at the third.
    pub oper_failures: u32,
    /// Rooms this connection may still create now (refilled over time:
    /// a new room is a store every member replicates forever).
    pub room_tokens: f64,
    pub room_refill: std::time::Instant,
    pub signon: u64,
    pub last_active: u64,
    /// Set once the queue overflowed: nothing more is sent.
    pub dead: bool,
}

impl Client {
    pub fn nick(&self) -> &str {
        self.nick.as_deref().unwrap_or("*")
    }

    pub fn user(&self) -> &str {
        self.user.as_deref().unwrap_or("*")
    }

    /// `nick!user@host`, the prefix of lines this user causes.
    pub fn prefix(&self) -> String {
        format!("{}!{}@{}", self.nick(), self.user(), self.host)
    }

    pub fn is_oper(&self) -> bool {
        self.modes.contains(&'o')
    }
}

/// A member's status in one channel.
#[derive(Clone, Copy, Default)]
pub struct Member {
    pub op: bool,
    pub voice: bool,
}

impl Member {
    /// The highest prefix, as `NAMES` and `WHO` show it.
    pub fn prefix(&self) -> &'static str {
        match (self.op, self.voice) {
            (true, _) => "@",
            (false, true) => "+",
            _ => "",
        }
    }
}

pub struct ListEntry {
    pub mask: String,
    pub setter: String,
    pub at: u64,
}

pub struct Topic {
    pub text: String,
    pub setter: String,
    pub at: u64,
}

pub struct Channel {
    /// The name as first joined here.
    pub name: String,
    /// The chat store it stands for.
    pub store: lattice_kernel::StoreId,
    pub members: BTreeMap<ConnId, Member>,
    /// Flag modes: `i m n s t`.
    pub modes: BTreeSet<char>,
    pub key: Option<String>,
    pub limit: Option<usize>,
    pub bans: Vec<ListEntry>,
    pub excepts: Vec<ListEntry>,
    pub invex: Vec<ListEntry>,
    pub topic: Option<Topic>,
    pub created: u64,
}

impl Channel {
    pub fn new(name: &str, store: lattice_kernel::StoreId) -> Channel {
        Channel {
            name: name.to_string(),
            store,
            members: BTreeMap::new(),
            modes: ['n', 't'].into(),
            key: None,
            limit: None,
            bans: Vec::new(),
            excepts: Vec::new(),
            invex: Vec::new(),
            topic: None,
            created: unix_now(),
        }
    }

    pub fn is_op(&self, id: ConnId) -> bool {
        self.members.get(&id).is_some_and(|m| m.op)
    }

    /// `+modes params`, the key and limit shown only to members.
    pub fn mode_string(&self, member: bool) -> String {
        let mut flags: String = self.modes.iter().collect();
        let mut args = Vec::new();
        if let Some(k) = &self.key {
            flags.push('k');
            args.push(if member { k.clone() } else { "*".into() });
        }
        if let Some(l) = self.limit {
            flags.push('l');
            args.push(l.to_string());
        }
        let mut s = format!("+{flags}");
        for a in args {
            s.push(' ');
            s.push_str(&a);
        }
        s
    }

    /// `=` public, `@` secret (RFC 2812 §3.2.5).
    pub fn names_kind(&self) -> &'static str {
        if self.modes.contains(&'s') { "@" } else { "=" }
    }
}

pub struct Whowas {
    pub nick: String,
    pub user: String,
    pub host: String,
    pub realname: String,
    pub at: u64,
}

pub struct State {
    pub config: Arc<Config>,
    pub clients: HashMap<ConnId, Client>,
    /// Folded nick → connection.
    pub nicks: HashMap<String, ConnId>,
    /// Folded name → channel with members on this gateway.
    pub channels: BTreeMap<String, Channel>,
    pub whowas: VecDeque<Whowas>,
    pub max_clients_seen: usize,
    pub started: u64,
}

impl State {
    pub fn new(config: Arc<Config>) -> State {
        State {
            config,
            clients: HashMap::new(),
            nicks: HashMap::new(),
            channels: BTreeMap::new(),
            whowas: VecDeque::new(),
            max_clients_seen: 0,
            started: unix_now(),
        }
    }

    pub fn server(&self) -> &str {
        &self.config.server_name
    }

    /// Queues a line for `id`. A client whose queue is full (it does not
    /// read) is marked dead and dropped by the core after this command.
    pub fn send(&mut self, id: ConnId, line: Line) {
        let Some(c) = self.clients.get_mut(&id) else {
            return;
        };
        if c.dead {
            return;
        }
        if c.out.try_send(line).is_err() {
            c.dead = true;
            let _ = c.kill.send(true);
        }
    }

    pub fn send_str(&mut self, id: ConnId, line: String) {
        self.send(id, line.into());
    }

    /// A numeric reply: `:server CODE nick params…`, last one trailing.
    pub fn reply(&mut self, id: ConnId, code: &str, params: &[&str]) {
        self.numeric(id, code, params, true);
    }

    /// A numeric whose last parameter is not text (e.g. `005`'s tokens are
    /// all middle parameters but the last).
    pub fn reply_plain(&mut self, id: ConnId, code: &str, params: &[&str]) {
        self.numeric(id, code, params, false);
    }

    fn numeric(&mut self, id: ConnId, code: &str, params: &[&str], trailing: bool) {
        let Some(c) = self.clients.get(&id) else {
            return;
        };
        let nick = c.nick().to_string();
        let mut all = Vec::with_capacity(params.len() + 1);
        all.push(nick.as_str());
        all.extend_from_slice(params);
        let line = line::format(&self.config.server_name, code, &all, trailing);
        self.send_str(id, line);
    }

    /// `442` for `chan` (as shown).
    pub fn not_on_channel(&mut self, id: ConnId, chan: &str) {
        self.reply(id, "442", &[chan, "You're not on that channel"]);
    }

    /// The channel `name` names, as (folded name, shown name, whether `id`
    /// is a member), or `403` to `id` when there is none here.
    pub fn channel_or_403(&mut self, id: ConnId, name: &str) -> Option<(String, String, bool)> {
        let folded = line::fold(name);
        match self.channels.get(&folded) {
            Some(ch) => {
                let shown = ch.name.clone();
                let member = ch.members.contains_key(&id);
                Some((folded, shown, member))
            }
            None => {
                self.reply(id, "403", &[name, "No such channel"]);
                None
            }
        }
    }

    /// Sends `line` to every member of the channel but `except`.
    pub fn to_channel(&mut self, chan: &str, line: &Line, except: Option<ConnId>) {
        let ids: Vec<ConnId> = match self.channels.get(chan) {
            Some(c) => c.members.keys().copied().collect(),
            None => return,
        };
        for id in ids {
            if Some(id) != except {
                self.send(id, line.clone());
            }
        }
    }

    /// Everyone sharing a channel with `id`, and `id` itself, once each.
    pub fn neighbours(&self, id: ConnId) -> BTreeSet<ConnId> {
        let mut out = BTreeSet::from([id]);
        if let Some(c) = self.clients.get(&id) {
            for ch in &c.channels {
                if let Some(chan) = self.channels.get(ch) {
                    out.extend(chan.members.keys());
                }
            }
        }
        out
    }

    pub fn by_nick(&self, nick: &str) -> Option<ConnId> {
        self.nicks.get(&fold(nick)).copied()
    }

    pub fn shares_channel(&self, a: ConnId, b: ConnId) -> bool {
        let (Some(ca), Some(cb)) = (self.clients.get(&a), self.clients.get(&b)) else {
            return false;
        };
        ca.channels.intersection(&cb.channels).next().is_some()
    }

    pub fn remember_whowas(&mut self, id: ConnId) {
        let Some(c) = self.clients.get(&id) else {
            return;
        };
        let Some(nick) = c.nick.clone() else {
            return;
        };
        self.whowas.push_front(Whowas {
            nick,
            user: c.user().to_string(),
            host: c.host.clone(),
            realname: c.realname.clone(),
            at: unix_now(),
        });
        self.whowas.truncate(WHOWAS_LEN);
    }

    /// Takes `id` out of channel `chan`, dropping the channel when empty.
    pub fn leave(&mut self, id: ConnId, chan: &str) {
        if let Some(c) = self.clients.get_mut(&id) {
            c.channels.remove(chan);
        }
        if let Some(ch) = self.channels.get_mut(chan) {
            ch.members.remove(&id);
            if ch.members.is_empty() {
                self.channels.remove(chan);
                // Invites belong to the channel that was: none outlive it.
                for c in self.clients.values_mut() {
                    c.invites.remove(chan);
                }
            }
        }
    }

    /// Removes a connection: its QUIT goes to everyone sharing a channel.
    pub fn remove(&mut self, id: ConnId, reason: &str) {
        let Some(c) = self.clients.get(&id) else {
            return;
        };
        let chans: Vec<String> = c.channels.iter().cloned().collect();
        if c.registered {
            let quit: Line = line::format(&c.prefix(), "QUIT", &[reason], true).into();
            for n in self.neighbours(id) {
                if n != id {
                    self.send(n, quit.clone());
                }
            }
            self.remember_whowas(id);
        }
        for ch in chans {
            self.leave(id, &ch);
        }
        if let Some(c) = self.clients.remove(&id) {
            if let Some(n) = &c.nick {
                if self.nicks.get(&fold(n)) == Some(&id) {
                    self.nicks.remove(&fold(n));
                }
            }
        }
    }
}

/// A Unix time as `Tue Dec 01 2026 16:40:00 UTC` (no time zone database
/// is needed for UTC; clients show their own local time where they can).
pub fn format_time(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{} {} {:02} {} {:02}:{:02}:{:02} UTC",
        DAYS[(days % 7) as usize],
        MONTHS[(m - 1) as usize],
        d,
        y,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc_dates() {
        assert_eq!(super::format_time(0), "Thu Jan 01 1970 00:00:00 UTC");
        assert_eq!(
            super::format_time(1_796_142_000),
            "Tue Dec 01 2026 16:20:00 UTC"
        );
    }
}
