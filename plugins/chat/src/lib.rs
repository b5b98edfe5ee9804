//! `chat`: a chat room as a CRDT.
//!
//! Messages are ordered by (hlc, author, id): the kernel gives every op an
//! HLC above those of its causal deps, so this order is causal too. Every
//! piece of state is a grow-only set, a max-register or an observed-remove
//! set, so any causal delivery order gives byte-identical state:
//!
//! | key                                   | value             | CRDT                  |
//! |---------------------------------------|-------------------|-----------------------|
//! | `m/{hlc,author,id}`                   | [`StoredMessage`] | grow-only set         |
//! | `i/{id}`                              | order key         | index of `m/` by id   |
//! | `t/{parent}{hlc,author,id}`           | empty             | replies index         |
//! | `e/{msg}{author}`                     | [`Register`]      | max (hlc, author, id) |
//! | `d/{msg}{author}`                     | empty             | grow-only set         |
//! | `r/{msg}{emoji}\0{author}{tag}`       | empty             | OR-set: added tags    |
//! | `x/{msg}{emoji}\0{author}{tag}`       | empty             | OR-set: removed tags  |
//! | `topic`, `filter`                     | [`Register`]      | max (hlc, author, id) |
//! | `u/{author}`                          | last-seen hlc     | max                   |
//!
//! Edits and deletes are keyed by their *writer*, and readers use only the
//! message author's: an edit of someone else's message (refused by
//! `prepare`, but a peer may forge one) is stored and never shown. Deciding
//! that in `apply` instead would depend on whether the message had arrived.
//!
//! Moderation (NFC, control characters, empty text, the word filter) runs
//! in `prepare` only, against the filter in state; it never rewrites ops
//! already logged.
#![no_std]
extern crate alloc;

mod moderation;

use alloc::collections::BTreeSet;
use lattice_plugin_sdk::prelude::*;
use lattice_plugin_sdk::{AUTHOR_LEN, ID_LEN, split_order_key};

lattice_plugin_sdk::include_proto!("lattice.chat");
use chat_op::Action;

const ORDER_LEN: usize = 8 + AUTHOR_LEN + ID_LEN;
const MAX_THREAD: usize = 1000;

pub struct Chat;

/// A posted message's immutable part; id, author and hlc are in its key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct StoredMessage {
    #[prost(string, tag = "1")]
    pub text: String,
    #[prost(bytes = "vec", tag = "2")]
    pub reply_to: Vec<u8>,
    #[prost(string, tag = "3")]
    pub nick: String,
}

/// A last-writer-wins register: the value with the highest order key.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Register {
    /// (hlc, author, id) of the op that wrote it.
    #[prost(bytes = "vec", tag = "1")]
    pub order: Vec<u8>,
    #[prost(string, tag = "2")]
    pub text: String,
    #[prost(string, repeated, tag = "3")]
    pub words: Vec<String>,
}

impl StateMachine for Chat {
    const NAME: &'static str = "chat";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const DESCRIPTOR_SET: &'static [u8] = lattice_plugin_sdk::descriptor_set!();
    const SERVICE: &'static str = "lattice.chat.Chat";
    const OP_TYPE: &'static str = "lattice.chat.ChatOp";

    fn prepare(ctx: &Context, method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        let filter = filter_words();
        let text = |t: &str| moderation::clean_text(t, &filter);
        let op = |a: Action| Ok(ChatOp { action: Some(a) });
        match method {
            "Post" => handle(request, |r: PostRequest| {
                op(Action::Post(PostRequest {
                    text: text(&r.text)?,
                    nick: moderation::clean_nick(&r.nick)?,
                }))
            }),
            "Reply" => handle(request, |r: ReplyRequest| {
                live_message(&r.to)?;
                op(Action::Reply(ReplyRequest {
                    to: r.to,
                    text: text(&r.text)?,
                    nick: moderation::clean_nick(&r.nick)?,
                }))
            }),
            "React" => handle(request, |r: ReactRequest| {
                live_message(&r.to)?;
                op(Action::React(ReactRequest {
                    to: r.to,
                    emoji: moderation::clean_emoji(&r.emoji)?,
                }))
            }),
            "Unreact" => handle(request, |r: UnreactRequest| {
                let emoji = moderation::clean_emoji(&r.emoji)?;
                let tags: Vec<Vec<u8>> =
                    state::iter_prefix(&reaction_key(b"r/", &r.to, &emoji, &ctx.author, b""))
                        .filter_map(|(k, _)| Some(k.get(k.len().checked_sub(ID_LEN)?..)?.to_vec()))
                        .collect();
                if tags.is_empty() {
                    return Err(format!("you have not reacted with {emoji}"));
                }
                op(Action::Unreact(UnreactOp {
                    to: r.to,
                    emoji,
                    tags,
                }))
            }),
            "SetTopic" => handle(request, |r: SetTopicRequest| {
                let text = if r.text.trim().is_empty() {
                    String::new()
                } else {
                    text(&r.text)?
                };
                op(Action::SetTopic(SetTopicRequest { text }))
            }),
            "Edit" => handle(request, |r: EditRequest| {
                own_live_message(ctx, &r.id)?;
                op(Action::Edit(EditRequest {
                    id: r.id,
                    text: text(&r.text)?,
                }))
            }),
            "Delete" => handle(request, |r: DeleteRequest| {
                own_live_message(ctx, &r.id)?;
                op(Action::Delete(DeleteRequest { id: r.id }))
            }),
            "SetFilter" => handle(request, |r: SetFilterRequest| {
                op(Action::SetFilter(SetFilterRequest {
                    words: moderation::clean_filter(&r.words)?,
                }))
            }),
            other => unknown_method(other),
        }
    }

    fn apply(op: &Op) {
        // Every op, even one we cannot use, shows its author was here.
        let member = state::key(&[b"u/", &op.author]);
        if read_u64(&member).is_none_or(|seen| op.hlc > seen) {
            state::set(&member, &op.hlc.to_be_bytes());
        }
        let Some(action) = op.decode::<ChatOp>().and_then(|c| c.action) else {
            return;
        };
        let order = op.order_key();
        match action {
            Action::Post(p) => post(op, &order, p.text, p.nick, Vec::new()),
            Action::Reply(r) if r.to.len() == ID_LEN => post(op, &order, r.text, r.nick, r.to),
            Action::React(r) if valid_target(&r.to, &r.emoji) => {
                let removed = reaction_key(b"x/", &r.to, &r.emoji, &op.author, &op.id);
                if !state::contains(&removed) {
                    state::set(
                        &reaction_key(b"r/", &r.to, &r.emoji, &op.author, &op.id),
                        &[],
                    );
                }
            }
            Action::Unreact(u) if valid_target(&u.to, &u.emoji) => {
                for tag in u.tags.iter().filter(|t| t.len() == ID_LEN) {
                    state::set(&reaction_key(b"x/", &u.to, &u.emoji, &op.author, tag), &[]);
                    state::remove(&reaction_key(b"r/", &u.to, &u.emoji, &op.author, tag));
                }
            }
            Action::SetTopic(t) => set_register(
                b"topic",
                Register {
                    order,
                    text: t.text,
                    words: Vec::new(),
                },
            ),
            Action::Edit(e) if e.id.len() == ID_LEN => set_register(
                &state::key(&[b"e/", &e.id, &op.author]),
                Register {
                    order,
                    text: e.text,
                    words: Vec::new(),
                },
            ),
            Action::Delete(d) if d.id.len() == ID_LEN => {
                state::set(&state::key(&[b"d/", &d.id, &op.author]), &[]);
            }
            Action::SetFilter(f) => set_register(
                b"filter",
                Register {
                    order,
                    text: String::new(),
                    words: f.words,
                },
            ),
            // Malformed ids or emoji: a no-op.
            _ => {}
        }
    }

    fn query(method: &str, request: &[u8]) -> Result<Vec<u8>, String> {
        match method {
            "Messages" => handle(request, |r: MessagesRequest| Ok(messages(&r))),
            "Thread" => handle(request, |r: ThreadRequest| thread(&r.id)),
            "Members" => handle(request, |_: MembersRequest| {
                let members = state::iter_prefix(b"u/")
                    .filter_map(|(k, v)| {
                        Some(Member {
                            author: k.get(2..)?.to_vec(),
                            last_seen_hlc: u64::from_be_bytes(v.try_into().ok()?),
                        })
                    })
                    .collect();
                Ok(MembersReply { members })
            }),
            "Topic" => handle(request, |_: TopicRequest| {
                let reg: Register = state::get_msg(b"topic").unwrap_or_default();
                let (hlc, author, _) = split_order_key(&reg.order).unwrap_or((0, &[], &[]));
                Ok(TopicReply {
                    text: reg.text,
                    author: author.to_vec(),
                    hlc,
                })
            }),
            "Filter" => handle(request, |_: FilterRequest| {
                Ok(FilterReply {
                    words: filter_words().into_iter().collect(),
                })
            }),
            other => unknown_method(other),
        }
    }
}

lattice_plugin_sdk::export_plugin!(Chat);

fn read_u64(key: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(state::get(key)?.try_into().ok()?))
}

/// Ids are 32 bytes and emoji never contain NUL (it delimits the emoji in
/// reaction keys); anything else would corrupt the key layout.
fn valid_target(to: &[u8], emoji: &str) -> bool {
    to.len() == ID_LEN && !emoji.is_empty() && !emoji.contains('\0')
}

/// `{prefix}{msg}{emoji}\0{author}{tag}`; an empty `tag` gives the prefix of
/// one (message, emoji, author) element.
fn reaction_key(prefix: &[u8], msg: &[u8], emoji: &str, author: &[u8], tag: &[u8]) -> Vec<u8> {
    state::key(&[prefix, msg, emoji.as_bytes(), b"\0", author, tag])
}

/// Keeps the register value with the highest (hlc, author, id): a max, so
/// the order ops arrive in does not matter.
fn set_register(key: &[u8], new: Register) {
    let current: Option<Register> = state::get_msg(key);
    if current.is_none_or(|c| new.order > c.order) {
        state::set_msg(key, &new);
    }
}

fn post(op: &Op, order: &[u8], text: String, nick: String, reply_to: Vec<u8>) {
    if !reply_to.is_empty() {
        state::set(&state::key(&[b"t/", &reply_to, order]), &[]);
    }
    state::set_msg(
        &state::key(&[b"m/", order]),
        &StoredMessage {
            text,
            reply_to,
            nick,
        },
    );
    state::set(&state::key(&[b"i/", &op.id]), order);
}

fn filter_words() -> BTreeSet<String> {
    state::get_msg::<Register>(b"filter")
        .map(|r| r.words.into_iter().collect())
        .unwrap_or_default()
}

/// The order key of message `id`, if this replica has it.
fn order_of(id: &[u8]) -> Option<Vec<u8>> {
    if id.len() != ID_LEN {
        return None;
    }
    state::get(&state::key(&[b"i/", id])).filter(|o| o.len() == ORDER_LEN)
}

fn is_deleted(id: &[u8], author: &[u8]) -> bool {
    state::contains(&state::key(&[b"d/", id, author]))
}

/// The message's author, if it exists and is not deleted.
fn live_message(id: &[u8]) -> Result<Vec<u8>, String> {
    let order = order_of(id).ok_or("no such message")?;
    let author = order[8..8 + AUTHOR_LEN].to_vec();
    if is_deleted(id, &author) {
        return Err("that message was deleted".into());
    }
    Ok(author)
}

fn own_live_message(ctx: &Context, id: &[u8]) -> Result<(), String> {
    if live_message(id)? != ctx.author {
        return Err("you can only change your own messages".into());
    }
    Ok(())
}

/// A message as readers see it, from its order key.
fn view(order: &[u8]) -> Option<Message> {
    let (hlc, author, id) = split_order_key(order)?;
    let stored: StoredMessage = state::get_msg(&state::key(&[b"m/", order]))?;
    let deleted = is_deleted(id, author);
    let edit: Option<Register> = state::get_msg(&state::key(&[b"e/", id, author]));
    let edited = edit.is_some();
    let text = match (deleted, edit) {
        (true, _) => String::new(),
        (false, Some(e)) => e.text,
        (false, None) => stored.text,
    };
    let replies = state::iter_prefix(&state::key(&[b"t/", id])).count() as u32;
    Some(Message {
        id: id.to_vec(),
        author: author.to_vec(),
        hlc,
        text,
        reply_to: stored.reply_to,
        edited,
        deleted,
        reactions: reactions(id),
        replies,
        nick: stored.nick,
    })
}

/// Live reactions of a message, grouped by emoji; an author counts once per
/// emoji however many live tags they have.
fn reactions(msg: &[u8]) -> Vec<Reaction> {
    let mut out: Vec<Reaction> = Vec::new();
    for (k, _) in state::iter_prefix(&state::key(&[b"r/", msg])) {
        // {emoji}\0{author}{tag}
        let Some(rest) = k.get(2 + ID_LEN..) else {
            continue;
        };
        let Some(split) = rest.len().checked_sub(1 + AUTHOR_LEN + ID_LEN) else {
            continue;
        };
        let Ok(emoji) = core::str::from_utf8(&rest[..split]) else {
            continue;
        };
        let author = &rest[split + 1..split + 1 + AUTHOR_LEN];
        match out.last_mut() {
            Some(r) if r.emoji == emoji => {
                if r.authors.last().map(Vec::as_slice) != Some(author) {
                    r.authors.push(author.to_vec());
                }
            }
            _ => out.push(Reaction {
                emoji: emoji.to_owned(),
                authors: vec![author.to_vec()],
            }),
        }
    }
    out
}

fn messages(r: &MessagesRequest) -> MessagesReply {
    let limit = if r.limit == 0 { 50 } else { r.limit.min(1000) } as usize;
    let orders: Vec<Vec<u8>> = if r.after == 0 {
        let mut latest: Vec<_> = state::iter_prefix_rev(b"m/")
            .take(limit)
            .map(|(k, _)| k)
            .collect();
        latest.reverse();
        latest
    } else {
        let start = state::key(&[b"m/", &r.after.saturating_add(1).to_be_bytes()]);
        state::iter(&start, state::prefix_end(b"m/").as_deref())
            .take(limit)
            .map(|(k, _)| k)
            .collect()
    };
    MessagesReply {
        messages: orders.iter().filter_map(|k| view(k.get(2..)?)).collect(),
    }
}

fn thread(id: &[u8]) -> Result<ThreadReply, String> {
    let root = order_of(id)
        .and_then(|o| view(&o))
        .ok_or("no such message")?;
    // Breadth-first over the replies index; a reply's HLC exceeds its
    // parent's, so there are no cycles, but cap the walk all the same.
    let mut found: Vec<Vec<u8>> = Vec::new();
    let mut next = 0;
    let mut parents = vec![id.to_vec()];
    while let Some(parent) = parents.get(next).cloned() {
        next += 1;
        for (k, _) in state::iter_prefix(&state::key(&[b"t/", &parent])) {
            if found.len() == MAX_THREAD {
                break;
            }
            let order = k[2 + ID_LEN..].to_vec();
            if let Some((_, _, child)) = split_order_key(&order) {
                parents.push(child.to_vec());
            }
            found.push(order);
        }
    }
    found.sort();
    Ok(ThreadReply {
        root: Some(root),
        replies: found.iter().filter_map(|o| view(o)).collect(),
    })
}

#[cfg(test)]
mod tests;
