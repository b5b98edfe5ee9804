//! Chat ops from the mesh, as IRC lines for the members of the matching
//! channel on this gateway, and the same rendering for history on JOIN.
//!
//! Everything in an op may be forged by a peer's modified client (its
//! plugin `prepare` never ran here), so nicks are reduced to IRC nick
//! characters and text is cut at line ends: a peer cannot inject an IRC
//! command or spoof a prefix.

use lattice_kernel::SignedEntry;
use prost::Message as _;

use crate::chat::{self, chat_op::Action};
use crate::core::Ctx;
use crate::line;
use crate::state::{Line, State, unix_now};

/// Renders and delivers one committed entry, if it belongs to a channel
/// someone here has joined.
pub fn deliver(st: &mut State, ctx: &Ctx, e: &SignedEntry) {
    let Some((folded, name)) = st
        .channels
        .iter()
        .find(|(_, c)| c.store == e.store)
        .map(|(f, c)| (f.clone(), c.name.clone()))
    else {
        return;
    };
    let Ok(op) = chat::ChatOp::decode(e.payload.as_slice()) else {
        return;
    };
    let Some(action) = op.action else { return };
    let ours = e.author == ctx.rooms.me();
    let who = |nick: &str| sender(st, ctx, nick, &e.author.0);
    let lines: Vec<String> = match action {
        // A nick on our own op means this gateway posted it, and its
        // channel members saw it then.
        Action::Post(p) if ours && !p.nick.is_empty() => return,
        Action::Reply(r) if ours && !r.nick.is_empty() => return,
        Action::Post(p) => chat_lines(&who(&p.nick), &name, &p.text),
        Action::Reply(r) => {
            let text = format!("{} {}", quote(ctx, &e.store, &r.to), r.text);
            chat_lines(&who(&r.nick), &name, &text)
        }
        Action::React(r) => {
            let text = format!("reacted {} to {}", r.emoji, quote(ctx, &e.store, &r.to));
            action_lines(&who(""), &name, &text)
        }
        Action::Edit(ed) => privmsgs(&who(""), &name, &format!("[edit] {}", ed.text)),
        Action::Delete(_) => action_lines(&who(""), &name, "deleted a message"),
        Action::SetTopic(_) => {
            // The room's topic is a last-writer-wins register: an old
            // SetTopic arriving late changes nothing, so show what the
            // store holds now, and only when it differs.
            let now = ctx
                .rooms
                .get(&e.store)
                .and_then(|h| ctx.rooms.topic(&h))
                .map(|t| t.text)
                .unwrap_or_default();
            let t = crate::chat::SetTopicRequest { text: now };
            let prefix = who("");
            let Some(chan) = st.channels.get_mut(&folded) else {
                return;
            };
            if chan.topic.as_ref().map(|t| t.text.as_str()).unwrap_or("") == t.text {
                return; // set here, already announced
            }
            chan.topic = (!t.text.is_empty()).then(|| crate::state::Topic {
                text: t.text.clone(),
                setter: prefix.clone(),
                at: unix_now(),
            });
            vec![line::format(
                &prefix,
                "TOPIC",
                &[&name, &one_line(&t.text)],
                true,
            )]
        }
        Action::Unreact(_) | Action::SetFilter(_) => return,
    };
    for l in lines {
        let l: Line = l.into();
        st.to_channel(&folded, &l, None);
    }
}

/// Text from the mesh with `\x01` removed: a forged op must not become a
/// CTCP request (DCC, VERSION) or break out of the ACTION we wrap it in.
fn no_ctcp(s: &str) -> String {
    s.replace('\u{1}', "")
}

/// History for a JOIN: the room's latest messages, oldest first.
pub fn history(
    ctx: &Ctx,
    h: &lattice_host::node::StoreHandle,
    channel: &str,
    n: u32,
) -> Vec<String> {
    if n == 0 {
        return Vec::new();
    }
    let mut out = Vec::new();
    for m in ctx.rooms.recent(h, n) {
        if m.deleted {
            continue;
        }
        let when = clock(lattice_kernel::wall_ms(m.hlc) / 1000);
        let edited = if m.edited { " [edited]" } else { "" };
        let text = match m.text.strip_prefix("/me ") {
            Some(act) => format!("/me [{when}]{edited} {act}"),
            None => format!("[{when}]{edited} {}", m.text),
        };
        out.extend(chat_lines(
            &sender_plain(ctx, &m.nick, &m.author),
            channel,
            &text,
        ));
    }
    out
}

/// `nick!node@mesh` for a message's sender. A nick that a user of this
/// gateway has is shown as `nick|node`: clients key on the nick, and a
/// peer must not be able to speak as someone connected here.
fn sender(st: &State, ctx: &Ctx, nick: &str, author: &[u8]) -> String {
    let plain = sender_plain(ctx, nick, author);
    let (n, rest) = plain.split_once('!').unwrap_or((&plain, ""));
    if st.by_nick(n).is_some() {
        let node = rest.split('@').next().unwrap_or("");
        format!("{n}|{node}!{rest}")
    } else {
        plain
    }
}

fn sender_plain(ctx: &Ctx, nick: &str, author: &[u8]) -> String {
    let nick = if nick.is_empty() {
        ctx.rooms.member_name(author)
    } else {
        nick.to_string()
    };
    let node = hex::encode(author.get(..4).unwrap_or(author));
    format!(
        "{}!{}@{}",
        as_nick(&nick),
        node,
        as_nick(&ctx.rooms.mesh_name())
    )
}

/// Keeps only characters that are safe in an IRC prefix.
pub(crate) fn as_nick(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || "-_[]\\`^{}|.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(32)
        .collect();
    if out.is_empty() { "_".into() } else { out }
}

/// `↪ nick: "first words…"` for the message `id` refers to.
fn quote(ctx: &Ctx, store: &lattice_kernel::StoreId, id: &[u8]) -> String {
    let Some(h) = ctx.rooms.get(store) else {
        return "↪".into();
    };
    match ctx.rooms.message(&h, id) {
        Some(m) => {
            let who = if m.nick.is_empty() {
                ctx.rooms.member_name(&m.author)
            } else {
                m.nick.clone()
            };
            let mut snippet = one_line(&m.text);
            if snippet.chars().count() > 40 {
                snippet = snippet.chars().take(40).collect::<String>() + "…";
            }
            format!("↪ {}: \"{snippet}\"", as_nick(&who))
        }
        None => "↪ (a message not here yet)".into(),
    }
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c == '\r' || c == '\n' || c == '\0' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// A room message as IRC shows it: `/me …` as an ACTION, else PRIVMSGs.
fn chat_lines(prefix: &str, target: &str, text: &str) -> Vec<String> {
    let text = no_ctcp(text);
    match text.strip_prefix("/me ") {
        Some(act) => action_lines(prefix, target, act),
        None => privmsgs(prefix, target, &text),
    }
}

/// PRIVMSG lines for `text`: one per line of it, long lines split so each
/// fits in 512 bytes.
pub fn privmsgs(prefix: &str, target: &str, text: &str) -> Vec<String> {
    let budget = line::MAX_LINE - 2 - prefix.len() - target.len() - 14;
    let mut out = Vec::new();
    for l in text.split('\n') {
        let l = l.trim_end_matches('\r').replace('\0', "");
        if l.is_empty() {
            continue;
        }
        let mut rest = l.as_str();
        while !rest.is_empty() {
            let mut end = rest.len().min(budget.max(16));
            while !rest.is_char_boundary(end) {
                end -= 1;
            }
            let (chunk, tail) = rest.split_at(end);
            out.push(line::format(prefix, "PRIVMSG", &[target, chunk], true));
            rest = tail;
        }
    }
    out
}

/// A CTCP ACTION (`/me`), how IRC clients show "* nick does something".
fn action_lines(prefix: &str, target: &str, text: &str) -> Vec<String> {
    // Cut to fit before wrapping, so the closing \x01 is never truncated.
    let budget = line::MAX_LINE - 2 - prefix.len() - target.len() - 24;
    let mut body = one_line(&no_ctcp(text));
    line::truncate(&mut body, budget.max(16));
    vec![line::format(
        prefix,
        "PRIVMSG",
        &[target, &format!("\u{1}ACTION {body}\u{1}")],
        true,
    )]
}

/// `HH:MM UTC` of a Unix time.
fn clock(secs: u64) -> String {
    let day = secs % 86_400;
    format!("{:02}:{:02} UTC", day / 3600, day % 3600 / 60)
}
