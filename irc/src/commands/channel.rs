//! Channel membership and the commands about channels: JOIN, PART, TOPIC,
//! NAMES, LIST, KICK, INVITE.

use super::enough;
use crate::core::Ctx;
use crate::line::{self, fold, mask_match, valid_channel};
use crate::mesh_events;
use crate::state::{Channel, ConnId, Line, Member, State, Topic, unix_now};

pub(crate) const CHANNELLEN: usize = 64;
const CHANLIMIT: usize = 100;
const TOPICLEN: usize = 390;
const KICKLEN: usize = 300;

pub fn join(st: &mut State, ctx: &Ctx, id: ConnId, p: &[&str]) {
    if !enough(st, id, "JOIN", p, 1) {
        return;
    }
    if p[0] == "0" {
        let chans: Vec<String> = st
            .clients
            .get(&id)
            .map(|c| c.channels.iter().cloned().collect())
            .unwrap_or_default();
        for ch in chans {
            part_one(st, id, &ch, None);
        }
        return;
    }
    let keys: Vec<&str> = p.get(1).map(|k| k.split(',').collect()).unwrap_or_default();
    for (i, name) in p[0].split(',').enumerate() {
        if !name.is_empty() {
            join_one(st, ctx, id, name, keys.get(i).copied());
        }
    }
}

fn join_one(st: &mut State, ctx: &Ctx, id: ConnId, name: &str, key: Option<&str>) {
    if !valid_channel(name, CHANNELLEN) {
        st.reply(id, "403", &[name, "No such channel"]);
        return;
    }
    let folded = fold(name);
    let Some(c) = st.clients.get(&id) else { return };
    if c.channels.contains(&folded) {
        return;
    }
    if c.channels.len() >= CHANLIMIT {
        st.reply(id, "405", &[name, "You have joined too many channels"]);
        return;
    }
    let invite = c.invites.get(&folded).copied();
    let invited = invite.is_some();
    // Only an operator's invite lets a user past the limit and the bans.
    let by_op = invite == Some(true);
    let mask = c.prefix();
    let mut fresh = false;
    if let Some(ch) = st.channels.get(&folded) {
        let refusal = if ch.key.as_deref().is_some_and(|k| Some(k) != key) {
            Some(("475", "Cannot join channel (+k)"))
        } else if ch.limit.is_some_and(|l| ch.members.len() >= l) && !by_op {
            Some(("471", "Cannot join channel (+l)"))
        } else if ch.modes.contains(&'i')
            && !invited
            && !ch.invex.iter().any(|e| mask_match(&e.mask, &mask))
        {
            Some(("473", "Cannot join channel (+i)"))
        } else if banned(ch, &mask) && !by_op {
            Some(("474", "Cannot join channel (+b)"))
        } else {
            None
        };
        if let Some((code, text)) = refusal {
            let shown = ch.name.clone();
            st.reply(id, code, &[&shown, text]);
            return;
        }
    } else {
        if ctx.rooms.find(&folded[1..]).is_none() && !take_room_token(st, id) {
            st.reply(
                id,
                "479",
                &[
                    name,
                    "Too many new rooms from this connection; try again later",
                ],
            );
            return;
        }
        let store = match ctx.rooms.open_or_create(&folded[1..]) {
            Ok(h) => h,
            Err(e) => {
                st.reply(
                    id,
                    "479",
                    &[name, &format!("Cannot open a room for it: {e}")],
                );
                return;
            }
        };
        let mut ch = Channel::new(name, store.id);
        if let Some(t) = ctx.rooms.topic(&store) {
            ch.topic = Some(Topic {
                text: t.text,
                setter: mesh_events::as_nick(&ctx.rooms.member_name(&t.author)),
                at: lattice_kernel::wall_ms(t.hlc) / 1000,
            });
        }
        fresh = ctx.rooms.recent(&store, 1).is_empty();
        st.channels.insert(folded.clone(), ch);
    }
    let Some(ch) = st.channels.get_mut(&folded) else {
        return;
    };
    // The first member of a channel here runs it, as on any ircd.
    let first = ch.members.is_empty();
    ch.members.insert(
        id,
        Member {
            op: first,
            voice: false,
        },
    );
    let shown = ch.name.clone();
    let store = ch.store;
    let topic = ch
        .topic
        .as_ref()
        .map(|t| (t.text.clone(), t.setter.clone(), t.at));
    if let Some(c) = st.clients.get_mut(&id) {
        c.channels.insert(folded.clone());
        c.invites.remove(&folded);
    }
    let joined: Line = line::format(&mask, "JOIN", &[&shown], false).into();
    st.to_channel(&folded, &joined, None);
    if let Some((text, setter, at)) = topic {
        st.reply(id, "332", &[&shown, &text]);
        st.reply_plain(id, "333", &[&shown, &setter, &at.to_string()]);
    }
    names_reply(st, ctx, id, &folded);
    st.reply(id, "366", &[&shown, "End of /NAMES list"]);
    // A room created by this JOIN has no history to replay.
    if !fresh {
        if let Some(h) = ctx.rooms.get(&store) {
            for l in mesh_events::history(ctx, &h, &shown, st.config.history) {
                st.send_str(id, l);
            }
        }
    }
}

/// Spends one of the connection's room-creation tokens, if it has one.
fn take_room_token(st: &mut State, id: ConnId) -> bool {
    let Some(c) = st.clients.get_mut(&id) else {
        return false;
    };
    let now = std::time::Instant::now();
    let earned =
        now.duration_since(c.room_refill).as_secs_f64() / crate::core::ROOM_EVERY.as_secs_f64();
    c.room_tokens = (c.room_tokens + earned).min(crate::core::ROOM_BURST);
    c.room_refill = now;
    if c.room_tokens < 1.0 {
        return false;
    }
    c.room_tokens -= 1.0;
    true
}

/// Whether `mask` (`nick!user@host`) is banned and not excepted.
pub fn banned(ch: &Channel, mask: &str) -> bool {
    ch.bans.iter().any(|b| mask_match(&b.mask, mask))
        && !ch.excepts.iter().any(|e| mask_match(&e.mask, mask))
}

/// 353 lines for a channel, as many as the names need: the users here,
/// then members online in the room on other nodes (by presence).
fn names_reply(st: &mut State, ctx: &Ctx, id: ConnId, folded: &str) {
    let Some(ch) = st.channels.get(folded) else {
        return;
    };
    let elsewhere: Vec<String> = ctx
        .rooms
        .get(&ch.store)
        .map(|h| ctx.rooms.online_elsewhere(&h))
        .unwrap_or_default()
        .into_iter()
        .map(|(name, _, _)| mesh_events::as_nick(&name))
        .collect();
    let member = ch.members.contains_key(&id);
    let names: Vec<String> = ch
        .members
        .iter()
        .filter_map(|(m, status)| {
            let c = st.clients.get(m)?;
            if !member && c.modes.contains(&'i') {
                return None;
            }
            Some(format!("{}{}", status.prefix(), c.nick()))
        })
        .chain(elsewhere)
        .collect();
    let (kind, shown) = (ch.names_kind(), ch.name.clone());
    let mut batch = String::new();
    for n in names {
        if batch.len() + n.len() > 400 {
            st.reply(id, "353", &[kind, &shown, &std::mem::take(&mut batch)]);
        }
        if !batch.is_empty() {
            batch.push(' ');
        }
        batch.push_str(&n);
    }
    if !batch.is_empty() {
        st.reply(id, "353", &[kind, &shown, &batch]);
    }
}

pub fn part(st: &mut State, id: ConnId, p: &[&str]) {
    if !enough(st, id, "PART", p, 1) {
        return;
    }
    let reason = p.get(1).copied().filter(|r| !r.is_empty());
    for name in p[0].split(',').filter(|n| !n.is_empty()) {
        let folded = fold(name);
        if !st.channels.contains_key(&folded) {
            st.reply(id, "403", &[name, "No such channel"]);
        } else if !st
            .clients
            .get(&id)
            .is_some_and(|c| c.channels.contains(&folded))
        {
            st.not_on_channel(id, name);
        } else {
            part_one(st, id, &folded, reason);
        }
    }
}

fn part_one(st: &mut State, id: ConnId, folded: &str, reason: Option<&str>) {
    let (Some(c), Some(ch)) = (st.clients.get(&id), st.channels.get(folded)) else {
        return;
    };
    let mut params = vec![ch.name.as_str()];
    params.extend(reason);
    let l: Line = line::format(&c.prefix(), "PART", &params, reason.is_some()).into();
    st.to_channel(folded, &l, None);
    st.leave(id, folded);
}

pub fn topic(st: &mut State, ctx: &Ctx, id: ConnId, p: &[&str]) {
    if !enough(st, id, "TOPIC", p, 1) {
        return;
    }
    let Some((folded, shown, member)) = st.channel_or_403(id, p[0]) else {
        return;
    };
    let Some(ch) = st.channels.get(&folded) else {
        return;
    };
    let Some(text) = p.get(1) else {
        if !member && ch.modes.contains(&'s') {
            st.not_on_channel(id, &shown);
            return;
        }
        match ch
            .topic
            .as_ref()
            .map(|t| (t.text.clone(), t.setter.clone(), t.at))
        {
            Some((text, setter, at)) => {
                st.reply(id, "332", &[&shown, &text]);
                st.reply_plain(id, "333", &[&shown, &setter, &at.to_string()]);
            }
            None => st.reply(id, "331", &[&shown, "No topic is set"]),
        }
        return;
    };
    if !member {
        st.not_on_channel(id, &shown);
        return;
    }
    if ch.modes.contains(&'t') && !ch.is_op(id) {
        st.reply(id, "482", &[&shown, "You're not channel operator"]);
        return;
    }
    let mut text = text.to_string();
    line::truncate(&mut text, TOPICLEN);
    let store = ch.store;
    let Some(h) = ctx.rooms.get(&store) else {
        st.reply(id, "403", &[&shown, "Its room is closed"]);
        return;
    };
    let call = match ctx.rooms.set_topic(&h, &text) {
        Ok(call) => call,
        Err(e) => {
            st.reply(id, "477", &[&shown, &format!("Topic refused: {e}")]);
            return;
        }
    };
    ctx.finish(id, "the topic", call);
    let Some(c) = st.clients.get(&id) else { return };
    let prefix = c.prefix();
    let nick = c.nick().to_string();
    if let Some(ch) = st.channels.get_mut(&folded) {
        ch.topic = (!text.is_empty()).then(|| Topic {
            text: text.clone(),
            setter: nick,
            at: unix_now(),
        });
    }
    let l: Line = line::format(&prefix, "TOPIC", &[&shown, &text], true).into();
    st.to_channel(&folded, &l, None);
}

pub fn names(st: &mut State, ctx: &Ctx, id: ConnId, p: &[&str]) {
    let wanted: Vec<String> = match p.first() {
        Some(list) => list
            .split(',')
            .filter(|n| !n.is_empty())
            .map(fold)
            .collect(),
        None => st
            .channels
            .iter()
            .filter(|(_, ch)| !ch.modes.contains(&'s') || ch.members.contains_key(&id))
            .map(|(f, _)| f.clone())
            .collect(),
    };
    for folded in &wanted {
        let visible = st
            .channels
            .get(folded)
            .filter(|ch| !ch.modes.contains(&'s') || ch.members.contains_key(&id))
            .map(|ch| ch.name.clone());
        if let Some(shown) = visible {
            names_reply(st, ctx, id, folded);
            if p.first().is_some() {
                st.reply(id, "366", &[&shown, "End of /NAMES list"]);
            }
        } else if let Some(name) = p.first().and_then(|l| {
            l.split(',')
                .find(|n| fold(n) == *folded)
                .map(str::to_string)
        }) {
            st.reply(id, "366", &[&name, "End of /NAMES list"]);
        }
    }
    if p.is_empty() {
        st.reply(id, "366", &["*", "End of /NAMES list"]);
    }
}

pub fn kick(st: &mut State, id: ConnId, p: &[&str]) {
    if !enough(st, id, "KICK", p, 2) {
        return;
    }
    let Some((folded, shown, member)) = st.channel_or_403(id, p[0]) else {
        return;
    };
    if !member {
        st.not_on_channel(id, &shown);
        return;
    }
    if !st.channels.get(&folded).is_some_and(|ch| ch.is_op(id)) {
        st.reply(id, "482", &[&shown, "You're not channel operator"]);
        return;
    }
    let Some(c) = st.clients.get(&id) else { return };
    let prefix = c.prefix();
    let mut reason = p
        .get(2)
        .filter(|r| !r.is_empty())
        .map(|r| r.to_string())
        .unwrap_or_else(|| c.nick().to_string());
    line::truncate(&mut reason, KICKLEN);
    for target in p[1].split(',').filter(|t| !t.is_empty()) {
        let Some(tid) = st.by_nick(target) else {
            st.reply(id, "401", &[target, "No such nick/channel"]);
            continue;
        };
        if !st
            .channels
            .get(&folded)
            .is_some_and(|ch| ch.members.contains_key(&tid))
        {
            st.reply(id, "441", &[target, &shown, "They aren't on that channel"]);
            continue;
        }
        let tnick = st
            .clients
            .get(&tid)
            .map(|c| c.nick().to_string())
            .unwrap_or_default();
        let l: Line = line::format(&prefix, "KICK", &[&shown, &tnick, &reason], true).into();
        st.to_channel(&folded, &l, None);
        st.leave(tid, &folded);
    }
}

pub fn invite(st: &mut State, id: ConnId, p: &[&str]) {
    if p.is_empty() {
        let invites: Vec<String> = st
            .clients
            .get(&id)
            .map(|c| c.invites.keys().cloned().collect())
            .unwrap_or_default();
        for folded in invites {
            let shown = st
                .channels
                .get(&folded)
                .map(|c| c.name.clone())
                .unwrap_or(folded);
            st.reply(id, "336", &[&shown]);
        }
        st.reply(id, "337", &["End of /INVITE list"]);
        return;
    }
    if !enough(st, id, "INVITE", p, 2) {
        return;
    }
    let (target, name) = (p[0], p[1]);
    let Some(tid) = st.by_nick(target) else {
        st.reply(id, "401", &[target, "No such nick/channel"]);
        return;
    };
    let folded = fold(name);
    let shown;
    if let Some(ch) = st.channels.get(&folded) {
        shown = ch.name.clone();
        if !ch.members.contains_key(&id) {
            st.not_on_channel(id, &shown);
            return;
        }
        if ch.members.contains_key(&tid) {
            st.reply(id, "443", &[target, &shown, "is already on channel"]);
            return;
        }
        if ch.modes.contains(&'i') && !ch.is_op(id) {
            st.reply(id, "482", &[&shown, "You're not channel operator"]);
            return;
        }
    } else {
        st.reply(id, "403", &[name, "No such channel"]);
        return;
    }
    let Some(c) = st.clients.get(&id) else { return };
    let prefix = c.prefix();
    let by_op = st.channels.get(&folded).is_some_and(|ch| ch.is_op(id));
    let Some(t) = st.clients.get_mut(&tid) else {
        return;
    };
    t.invites.insert(folded, by_op);
    let tnick = t.nick().to_string();
    let away = t.away.clone();
    st.reply(id, "341", &[&tnick, &shown]);
    if let Some(away) = away {
        st.reply(id, "301", &[&tnick, &away]);
    }
    st.send_str(
        tid,
        line::format(&prefix, "INVITE", &[&tnick, &shown], false),
    );
}
