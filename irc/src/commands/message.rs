//! PRIVMSG and NOTICE. A channel message is prepared as a chat op first
//! (the room's moderation may refuse it), then relayed to the members here
//! at once, and made durable by the finisher. Private messages and
//! `@#chan` status messages stay on this gateway: they are not room history.

use crate::core::Ctx;
use crate::line::{self, fold};
use crate::state::{ConnId, Line, State};

/// Most targets in one PRIVMSG/NOTICE (`TARGMAX`).
const TARGMAX: usize = 4;

pub fn send(st: &mut State, ctx: &Ctx, id: ConnId, p: &[&str], cmd: &str) {
    let notice = cmd == "NOTICE";
    let Some(targets) = p.first().filter(|t| !t.is_empty()) else {
        if !notice {
            st.reply(id, "411", &[&format!("No recipient given ({cmd})")]);
        }
        return;
    };
    let Some(text) = p.get(1).filter(|t| !t.is_empty()).copied() else {
        if !notice {
            st.reply(id, "412", &["No text to send"]);
        }
        return;
    };
    let targets: Vec<&str> = targets.split(',').filter(|t| !t.is_empty()).collect();
    if targets.len() > TARGMAX {
        st.reply(id, "407", &[p[0], "Too many recipients"]);
        return;
    }
    for t in targets {
        let (status, name) = match t.strip_prefix('@').or_else(|| t.strip_prefix('+')) {
            Some(rest) if rest.starts_with('#') => (Some(&t[..1]), rest),
            _ => (None, t),
        };
        if name.starts_with('#') {
            to_channel(st, ctx, id, cmd, name, status, text);
        } else {
            to_user(st, id, cmd, name, text);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn to_channel(
    st: &mut State,
    ctx: &Ctx,
    id: ConnId,
    cmd: &str,
    name: &str,
    status: Option<&str>,
    text: &str,
) {
    let notice = cmd == "NOTICE";
    let folded = fold(name);
    let Some(c) = st.clients.get(&id) else { return };
    let prefix = c.prefix();
    let nick = c.nick().to_string();
    let Some(ch) = st.channels.get(&folded) else {
        if !notice {
            st.reply(id, "403", &[name, "No such channel"]);
        }
        return;
    };
    let member = ch.members.get(&id).copied();
    let privileged = member.is_some_and(|m| m.op || m.voice);
    let refused = (ch.modes.contains(&'n') && member.is_none())
        || (ch.modes.contains(&'m') && !privileged)
        || (super::channel::banned(ch, &prefix) && !privileged);
    if refused {
        if !notice {
            let shown = ch.name.clone();
            st.reply(id, "404", &[&shown, "Cannot send to channel"]);
        }
        return;
    }
    let (shown, store) = (ch.name.clone(), ch.store);
    let out_target = match status {
        Some(s) => format!("{s}{shown}"),
        None => shown.clone(),
    };
    let relay: Line = line::format(&prefix, cmd, &[&out_target, text], true).into();
    if let Some(s) = status {
        let ids: Vec<ConnId> = ch
            .members
            .iter()
            .filter(|(m, st)| **m != id && (st.op || (s == "+" && st.voice)))
            .map(|(m, _)| *m)
            .collect();
        for m in ids {
            st.send(m, relay.clone());
        }
        return;
    }
    if let Some(stored) = as_chat_text(text) {
        let Some(h) = ctx.rooms.get(&store) else {
            st.reply(id, "404", &[&shown, "Its room is closed"]);
            return;
        };
        match ctx.rooms.post(&h, &nick, &stored) {
            Ok(call) => ctx.finish(id, &format!("your message to {shown}"), call),
            Err(e) => {
                if !notice {
                    st.reply(
                        id,
                        "404",
                        &[&shown, &format!("Cannot send to channel: {e}")],
                    );
                }
                return;
            }
        }
    }
    st.to_channel(&folded, &relay, Some(id));
}

/// What a channel line becomes in the room: `/me …` for a CTCP ACTION;
/// `None` for other CTCP and lines with nothing visible (relayed only).
fn as_chat_text(text: &str) -> Option<String> {
    let text = if let Some(ctcp) = text.strip_prefix('\u{1}') {
        let body = ctcp.strip_suffix('\u{1}').unwrap_or(ctcp);
        format!("/me {}", body.strip_prefix("ACTION ")?)
    } else {
        text.to_string()
    };
    text.chars()
        .any(|c| !c.is_control() && !c.is_whitespace())
        .then_some(text)
}

fn to_user(st: &mut State, id: ConnId, cmd: &str, nick: &str, text: &str) {
    let notice = cmd == "NOTICE";
    let Some(tid) = st.by_nick(nick) else {
        if !notice {
            st.reply(id, "401", &[nick, "No such nick/channel"]);
        }
        return;
    };
    let Some(c) = st.clients.get(&id) else { return };
    let prefix = c.prefix();
    let Some(t) = st.clients.get(&tid) else {
        return;
    };
    let (tnick, away) = (t.nick().to_string(), t.away.clone());
    st.send_str(tid, line::format(&prefix, cmd, &[&tnick, text], true));
    if let (false, Some(away)) = (notice, away) {
        st.reply(id, "301", &[&tnick, &away]);
    }
}
