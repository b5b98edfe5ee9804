//! The gateway's one way into the node: channels are the current mesh's
//! chat stores, messages and topics are chat ops. Everything here blocks
//! briefly (a snapshot read and a plugin call); durability is awaited off
//! the core thread (see `core::Finisher`).

use std::sync::Arc;

use lattice_host::node::{CallPending, Node, NodeError, StoreHandle, StoreType};
use lattice_kernel::{AuthorId, StoreId};

use crate::chat;

/// The plugin type a channel's store runs.
const CHAT: &str = "chat";

pub struct Rooms {
    node: Arc<Node>,
}

impl Rooms {
    pub fn new(node: Arc<Node>) -> Rooms {
        Rooms { node }
    }

    pub fn me(&self) -> AuthorId {
        self.node.author()
    }

    /// The chat stores of the current mesh (none without a mesh).
    pub fn all(&self) -> Vec<StoreHandle> {
        let Ok(mesh) = self.node.current_mesh() else {
            return Vec::new();
        };
        self.node
            .stores_of(&mesh.root)
            .into_iter()
            .filter(|s| s.type_name() == CHAT)
            .collect()
    }

    /// The chat store channel `#name` stands for: the one whose store name
    /// folds to `name`.
    pub fn find(&self, folded: &str) -> Option<StoreHandle> {
        self.all()
            .into_iter()
            .find(|s| s.name.to_ascii_lowercase() == folded)
    }

    pub fn get(&self, id: &StoreId) -> Option<StoreHandle> {
        self.node.registry().get(id)
    }

    /// The store for `folded` (a channel name without `#`), created in the
    /// current mesh if there is none: JOIN of a new channel makes a room.
    pub fn open_or_create(&self, folded: &str) -> Result<StoreHandle, NodeError> {
        if let Some(h) = self.find(folded) {
            return Ok(h);
        }
        self.node
            .store_create(Some(folded), StoreType::Builtin(CHAT))
    }

    fn command<M: prost::Message>(
        &self,
        h: &StoreHandle,
        method: &str,
        req: &M,
    ) -> Result<CallPending, NodeError> {
        self.node.call_async(h, method, &req.encode_to_vec())
    }

    fn query<M: prost::Message, R: prost::Message + Default>(
        &self,
        h: &StoreHandle,
        method: &str,
        req: &M,
    ) -> Option<R> {
        let out = self.node.call(h, method, &req.encode_to_vec()).ok()?;
        R::decode(out.reply.as_slice()).ok()
    }

    /// Posts `text` as `nick`; the op is prepared (and moderated) now and
    /// durable when the returned call finishes.
    pub fn post(&self, h: &StoreHandle, nick: &str, text: &str) -> Result<CallPending, NodeError> {
        let req = chat::PostRequest {
            text: text.to_string(),
            nick: nick.to_string(),
        };
        self.command(h, "Post", &req)
    }

    pub fn set_topic(&self, h: &StoreHandle, text: &str) -> Result<CallPending, NodeError> {
        let req = chat::SetTopicRequest {
            text: text.to_string(),
        };
        self.command(h, "SetTopic", &req)
    }

    pub fn topic(&self, h: &StoreHandle) -> Option<chat::TopicReply> {
        self.query(h, "Topic", &chat::TopicRequest {})
            .filter(|t: &chat::TopicReply| !t.text.is_empty())
    }

    /// The latest `n` messages, oldest first.
    pub fn recent(&self, h: &StoreHandle, n: u32) -> Vec<chat::Message> {
        let req = chat::MessagesRequest { after: 0, limit: n };
        self.query(h, "Messages", &req)
            .map(|r: chat::MessagesReply| r.messages)
            .unwrap_or_default()
    }

    pub fn message(&self, h: &StoreHandle, id: &[u8]) -> Option<chat::Message> {
        let req = chat::ThreadRequest { id: id.to_vec() };
        self.query(h, "Thread", &req)
            .and_then(|r: chat::ThreadReply| r.root)
    }

    /// A member's name in the current mesh, else a short id.
    pub fn member_name(&self, author: &[u8]) -> String {
        let hex = hex::encode(author);
        let short = hex.get(..8).unwrap_or(&hex).to_string();
        let Ok(mesh) = self.node.current_mesh() else {
            return short;
        };
        let Ok(members) = self.node.members(&mesh.root) else {
            return short;
        };
        members
            .into_iter()
            .find(|(k, _, _)| *k == hex)
            .map(|(_, name, _)| name)
            .filter(|n| !n.is_empty())
            .unwrap_or(short)
    }

    /// Members online in the room on other nodes, by presence beacon:
    /// (name, short node id, in sync with our log).
    pub fn online_elsewhere(&self, h: &StoreHandle) -> Vec<(String, String, bool)> {
        self.node
            .presence(h)
            .map(|ms| {
                ms.into_iter()
                    .filter(|m| !m.me && m.online)
                    .map(|m| {
                        (
                            m.name,
                            hex::encode(&m.author.0[..4]),
                            m.in_sync == Some(true),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The current mesh's name, the host part of remote users' prefixes.
    pub fn mesh_name(&self) -> String {
        self.node
            .current_mesh()
            .map(|m| m.name)
            .unwrap_or_else(|_| "lattice".into())
    }
}
