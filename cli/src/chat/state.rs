//! What the client knows: the mesh's chat rooms, the current room's
//! messages, topic and members, and the local numbers that let a person
//! point at a message (`/reply 3 …`). Everything is re-read from the node
//! through [`Source`] when a watch event says it changed; nothing here is
//! the source of truth.

use std::collections::{HashMap, HashSet};

use anyhow::{Result, bail};
use lattice_cli::dynamic::terminal_safe;
use lattice_host::api::{PresenceView, Request, Response};
use lattice_kernel::wall_ms;

use super::input::Composer;
use super::pb;
use super::source::Source;

/// Messages loaded per room unless `/messages N` asks for another number.
pub const DEFAULT_LIMIT: u32 = 200;

pub struct Room {
    pub id: String,
    pub name: String,
    /// Ops applied to this room since it was last shown.
    pub unread: u32,
}

/// What the side panel knows about a member's presence: the later of
/// their latest op in the room and the last presence beacon heard from
/// them, and whether they are online now (`None` when the node cannot say,
/// e.g. a daemon from before presence).
#[derive(Clone, Copy, Debug, Default)]
pub struct Presence {
    pub last_seen_ms: Option<u64>,
    pub online: Option<bool>,
    /// Its log of the room was ours when it last spoke (presence beacon).
    pub in_sync: Option<bool>,
}

pub struct Member {
    /// Node key, hex.
    pub key: String,
    /// Display name, already terminal-safe.
    pub name: String,
    /// No longer an active member of the mesh (or never one).
    pub gone: bool,
    pub presence: Presence,
}

/// A thread open in the message pane instead of the room's timeline.
pub struct Thread {
    pub root: Vec<u8>,
    pub messages: Vec<pb::Message>,
}

/// One line of feedback under the messages.
pub struct Notice {
    pub text: String,
    pub error: bool,
}

/// Message numbers are handed out in the order messages are first seen
/// and never reused, so a number a person read stays valid while new
/// messages arrive.
#[derive(Default)]
struct Refs {
    next: u32,
    by_id: HashMap<Vec<u8>, u32>,
    by_number: HashMap<u32, Vec<u8>>,
}

pub struct App {
    /// This node's key, hex.
    pub me: String,
    pub rooms: Vec<Room>,
    /// Id of the room shown.
    pub current: Option<String>,
    pub topic: String,
    /// The room's latest messages, oldest first.
    pub messages: Vec<pb::Message>,
    pub thread: Option<Thread>,
    pub members: Vec<Member>,
    pub composer: Composer,
    pub notice: Option<Notice>,
    pub help: bool,
    /// Rows scrolled up from the newest message.
    pub scroll: usize,
    pub limit: u32,
    /// The current room changed and must be read again.
    pub stale: bool,
    /// Member names of the mesh by key hex, terminal-safe.
    names: HashMap<String, String>,
    /// (key, active) of every mesh member.
    mesh_members: Vec<(String, bool)>,
    refs: HashMap<String, Refs>,
    /// Keys whose name a refresh was already made for.
    asked: HashSet<String>,
}

impl App {
    pub fn new(source: &mut Source) -> Result<App> {
        let me = match source.call(Request::NodeStatus)? {
            Response::NodeStatus { author, .. } => author,
            other => bail!("unexpected reply to node status: {other:?}"),
        };
        let mut app = App::empty(me);
        app.refresh_mesh(source)?;
        Ok(app)
    }

    /// Knows nothing yet but who it runs as.
    pub fn empty(me: String) -> App {
        App {
            me,
            rooms: Vec::new(),
            current: None,
            topic: String::new(),
            messages: Vec::new(),
            thread: None,
            members: Vec::new(),
            composer: Composer::default(),
            notice: None,
            help: false,
            scroll: 0,
            limit: DEFAULT_LIMIT,
            stale: false,
            names: HashMap::new(),
            mesh_members: Vec::new(),
            refs: HashMap::new(),
            asked: HashSet::new(),
        }
    }

    pub fn room(&self) -> Option<&Room> {
        let id = self.current.as_ref()?;
        self.rooms.iter().find(|r| &r.id == id)
    }

    pub fn room_by_name(&self, name: &str) -> Option<&Room> {
        self.rooms.iter().find(|r| r.name == name || r.id == name)
    }

    /// Notices quote names and error messages that may carry peer text,
    /// so they are made terminal-safe here, once for every caller.
    pub fn say(&mut self, text: impl AsRef<str>) {
        self.notice = Some(Notice {
            text: terminal_safe(text.as_ref()),
            error: false,
        });
    }

    pub fn fail(&mut self, text: impl AsRef<str>) {
        self.notice = Some(Notice {
            text: terminal_safe(text.as_ref()),
            error: true,
        });
    }

    /// Rooms and member names of the current mesh. Rooms made or deleted
    /// elsewhere show up here: the watch does not carry root-store entries.
    pub fn refresh_mesh(&mut self, source: &mut Source) -> Result<()> {
        let stores = match source.call(Request::StoreList)? {
            Response::Stores { stores } => stores,
            other => bail!("unexpected reply to store list: {other:?}"),
        };
        let mut rooms: Vec<Room> = stores
            .into_iter()
            .filter(|s| s.type_name == "chat")
            .map(|s| {
                let unread = self
                    .rooms
                    .iter()
                    .find(|r| r.id == s.id)
                    .map_or(0, |r| r.unread);
                Room {
                    id: s.id,
                    name: terminal_safe(&s.name),
                    unread,
                }
            })
            .collect();
        rooms.sort_by(|a, b| a.name.cmp(&b.name));
        self.rooms = rooms;
        if let Some(id) = &self.current {
            if !self.rooms.iter().any(|r| &r.id == id) {
                let gone = id.clone();
                self.current = None;
                self.fail(format!("room {gone} was deleted"));
            }
        }
        if let Response::MeshStatus { members, .. } =
            source.call(Request::MeshStatus { mesh: None })?
        {
            self.names.clear();
            self.mesh_members.clear();
            for (key, name, status) in members {
                if !name.is_empty() {
                    self.names.insert(key.clone(), terminal_safe(&name));
                }
                self.mesh_members.push((key, status == "active"));
            }
        }
        Ok(())
    }

    /// Shows room `id` from its newest messages.
    pub fn switch(&mut self, id: String) {
        if let Some(r) = self.rooms.iter_mut().find(|r| r.id == id) {
            r.unread = 0;
        }
        self.current = Some(id);
        self.thread = None;
        self.scroll = 0;
        self.stale = true;
    }

    /// A watch event: reload the room on screen, count the others.
    pub fn on_entry(&mut self, store: &str) {
        if self.current.as_deref() == Some(store) {
            self.stale = true;
        } else if let Some(r) = self.rooms.iter_mut().find(|r| r.id == store) {
            r.unread = r.unread.saturating_add(1);
        }
    }

    /// Reads the current room (messages, topic, members, open thread).
    pub fn load(&mut self, source: &mut Source) -> Result<()> {
        self.stale = false;
        let Some(id) = self.current.clone() else {
            self.messages.clear();
            self.topic.clear();
            self.members.clear();
            return Ok(());
        };
        let page: pb::MessagesReply = source.chat(
            &id,
            "Messages",
            &pb::MessagesRequest {
                after: 0,
                limit: self.limit,
            },
        )?;
        let topic: pb::TopicReply = source.chat(&id, "Topic", &pb::TopicRequest {})?;
        let members: pb::MembersReply = source.chat(&id, "Members", &pb::MembersRequest {})?;
        // Presence is extra: without it the panel still shows who wrote when.
        let online = match source.call(Request::Presence {
            store: Some(id.clone()),
        }) {
            Ok(Response::Presence { members, .. }) => members,
            _ => Vec::new(),
        };
        self.messages = page.messages;
        self.topic = terminal_safe(&topic.text);
        // A new member's first post can arrive before the next mesh refresh:
        // read the names again now (once per unknown key) instead.
        let unknown: Vec<String> = self
            .messages
            .iter()
            .map(|m| hex::encode(&m.author))
            .filter(|k| !self.names.contains_key(k) && !self.asked.contains(k))
            .collect();
        if !unknown.is_empty() {
            self.asked.extend(unknown);
            self.refresh_mesh(source)?;
        }
        let refs = self.refs.entry(id.clone()).or_default();
        for m in &self.messages {
            refs.number(&m.id);
        }
        if let Some(root) = self.thread.as_ref().map(|t| t.root.clone()) {
            let t: pb::ThreadReply =
                source.chat(&id, "Thread", &pb::ThreadRequest { id: root.clone() })?;
            let messages: Vec<pb::Message> = t.root.into_iter().chain(t.replies).collect();
            for m in &messages {
                refs.number(&m.id);
            }
            self.thread = Some(Thread { root, messages });
        }
        self.set_members(members.members, &online);
        Ok(())
    }

    fn set_members(&mut self, room: Vec<pb::Member>, online: &[PresenceView]) {
        let mut seen: HashMap<String, u64> = room
            .into_iter()
            .map(|m| (hex::encode(&m.author), wall_ms(m.last_seen_hlc)))
            .collect();
        let presence = |key: &str, wrote: Option<u64>| {
            let p = online.iter().find(|p| p.id == key);
            Presence {
                last_seen_ms: wrote.max(p.and_then(|p| p.last_seen_ms)),
                online: p.map(|p| p.online),
                in_sync: p.and_then(|p| p.in_sync),
            }
        };
        let mut out: Vec<Member> = Vec::new();
        for (key, active) in &self.mesh_members {
            out.push(Member {
                key: key.clone(),
                name: self.name_of_hex(key),
                gone: !active,
                presence: presence(key, seen.remove(key)),
            });
        }
        for (key, ms) in seen {
            out.push(Member {
                name: self.name_of_hex(&key),
                presence: presence(&key, Some(ms)),
                key,
                gone: true,
            });
        }
        // Online first, then by how recently seen.
        let rank = |m: &Member| (m.gone, m.presence.online != Some(true));
        out.sort_by(|a, b| {
            (rank(a), b.presence.last_seen_ms, &a.name).cmp(&(
                rank(b),
                a.presence.last_seen_ms,
                &b.name,
            ))
        });
        self.members = out;
    }

    fn name_of_hex(&self, key: &str) -> String {
        self.names
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.get(..8).unwrap_or(key).to_string())
    }

    /// Who wrote `m`, as shown: the name the sender gave (an IRC nick) if
    /// any, else their member name, else the start of their key.
    pub fn sender(&self, m: &pb::Message) -> String {
        if !m.nick.is_empty() {
            return terminal_safe(&m.nick);
        }
        self.name_of_hex(&hex::encode(&m.author))
    }

    pub fn is_me(&self, author: &[u8]) -> bool {
        hex::encode(author) == self.me
    }

    /// The number shown for message `id` in the current room.
    pub fn number(&self, id: &[u8]) -> Option<u32> {
        let refs = self.refs.get(self.current.as_ref()?)?;
        refs.by_id.get(id).copied()
    }

    /// The message id behind a number typed by the user (`3` or `#3`).
    pub fn resolve(&self, word: &str) -> Result<Vec<u8>> {
        let n: u32 = match word.trim_start_matches('#').parse() {
            Ok(n) => n,
            Err(_) => bail!("`{word}` is not a message number (the number left of each message)"),
        };
        self.current
            .as_ref()
            .and_then(|c| self.refs.get(c))
            .and_then(|r| r.by_number.get(&n))
            .cloned()
            .ok_or_else(|| anyhow::anyhow!("no message #{n} in this room"))
    }

    /// The messages the pane shows: the open thread, else the timeline.
    pub fn shown(&self) -> &[pb::Message] {
        match &self.thread {
            Some(t) => &t.messages,
            None => &self.messages,
        }
    }

    /// The newest message shown, the default target of `/react`.
    pub fn last_message(&self) -> Option<&pb::Message> {
        self.shown().iter().rev().find(|m| !m.deleted)
    }

    pub fn find(&self, id: &[u8]) -> Option<&pb::Message> {
        self.messages
            .iter()
            .chain(self.thread.iter().flat_map(|t| t.messages.iter()))
            .find(|m| m.id == id)
    }
}

impl Refs {
    fn number(&mut self, id: &[u8]) -> u32 {
        if let Some(n) = self.by_id.get(id) {
            return *n;
        }
        self.next += 1;
        self.by_id.insert(id.to_vec(), self.next);
        self.by_number.insert(self.next, id.to_vec());
        self.next
    }
}
