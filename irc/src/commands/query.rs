//! Questions about users and the server: AWAY, WHO (with WHOX), WHOIS,
//! WHOWAS, ISON, USERHOST, VERSION, TIME, INFO, LINKS, ADMIN, HELP.

use super::enough;
use super::register::VERSION;
use crate::core::Ctx;
use crate::line::{self, fold, mask_match};
use crate::mesh_events::as_nick;
use crate::state::{ConnId, State, format_time, unix_now};

const AWAYLEN: usize = 200;

pub fn away(st: &mut State, id: ConnId, p: &[&str]) {
    let msg = p.first().filter(|m| !m.is_empty()).map(|m| {
        let mut m = m.to_string();
        line::truncate(&mut m, AWAYLEN);
        m
    });
    let Some(c) = st.clients.get_mut(&id) else {
        return;
    };
    let now_away = msg.is_some();
    c.away = msg;
    if now_away {
        st.reply(id, "306", &["You have been marked as being away"]);
    } else {
        st.reply(id, "305", &["You are no longer marked as being away"]);
    }
}

/// `H`/`G`, `*` for opers, and the member prefix in `chan` if given.
fn flags(st: &State, who: ConnId, chan: Option<&str>) -> String {
    let Some(c) = st.clients.get(&who) else {
        return String::new();
    };
    let mut f = String::from(if c.away.is_some() { "G" } else { "H" });
    if c.is_oper() {
        f.push('*');
    }
    if let Some(m) = chan.and_then(|ch| st.channels.get(ch)?.members.get(&who)) {
        f.push_str(m.prefix());
    }
    f
}

pub fn who(st: &mut State, ctx: &Ctx, id: ConnId, p: &[&str]) {
    let mask = p.first().copied().unwrap_or("*");
    let whox = p.get(1).and_then(|f| f.strip_prefix('%'));
    let mut rows: Vec<(ConnId, Option<String>)> = Vec::new();
    if mask.starts_with('#') {
        let folded = fold(mask);
        if let Some(ch) = st.channels.get(&folded) {
            let member = ch.members.contains_key(&id);
            if member || !ch.modes.contains(&'s') {
                for m in ch.members.keys() {
                    let invisible = st.clients.get(m).is_some_and(|c| c.modes.contains(&'i'));
                    if member || !invisible {
                        rows.push((*m, Some(folded.clone())));
                    }
                }
            }
        }
    } else {
        let mut ids: Vec<ConnId> = st
            .clients
            .iter()
            .filter(|(_, c)| c.registered)
            .filter(|(cid, c)| {
                let matches = mask == "*" || mask == "0" || mask_match(mask, c.nick());
                // Invisible users show only to themselves and those sharing a channel,
                // unless asked for by exact nick.
                let exact = fold(mask) == fold(c.nick());
                matches
                    && (exact
                        || **cid == id
                        || !c.modes.contains(&'i')
                        || st.shares_channel(id, **cid))
            })
            .map(|(cid, _)| *cid)
            .collect();
        ids.sort();
        rows.extend(ids.into_iter().map(|i| (i, None)));
    }
    for (who, chan) in rows {
        let Some(c) = st.clients.get(&who) else {
            continue;
        };
        let shown_chan = chan
            .as_ref()
            .and_then(|f| st.channels.get(f))
            .map(|ch| ch.name.clone())
            .unwrap_or_else(|| "*".into());
        let f = flags(st, who, chan.as_deref());
        let idle = unix_now().saturating_sub(c.last_active).to_string();
        let (user, host, nick, real) = (
            c.user().to_string(),
            c.host.clone(),
            c.nick().to_string(),
            c.realname.clone(),
        );
        let server = st.server().to_string();
        match whox {
            Some(fields) => {
                let (fields, token) = fields.split_once(',').unwrap_or((fields, ""));
                let mut out: Vec<String> = Vec::new();
                for k in "tcuihsnfdlaor".chars().filter(|k| fields.contains(*k)) {
                    out.push(match k {
                        't' => token.to_string(),
                        'c' => shown_chan.clone(),
                        'u' => user.clone(),
                        'i' | 'h' => host.clone(),
                        's' => server.clone(),
                        'n' => nick.clone(),
                        'f' => f.clone(),
                        'd' => "0".into(),
                        'l' => idle.clone(),
                        'a' => "0".into(),
                        'o' => "n/a".into(),
                        _ => real.clone(),
                    });
                }
                let params: Vec<&str> = out.iter().map(String::as_str).collect();
                if fields.contains('r') {
                    st.reply(id, "354", &params);
                } else {
                    st.reply_plain(id, "354", &params);
                }
            }
            None => {
                let hops = format!("0 {real}");
                st.reply(
                    id,
                    "352",
                    &[&shown_chan, &user, &host, &server, &nick, &f, &hops],
                );
            }
        }
    }
    // Members online in the room on other nodes (plain WHO only): hop 1,
    // the node as their server, whether they hold our log in the realname.
    if mask.starts_with('#') && whox.is_none() {
        let chan = st
            .channels
            .get(&fold(mask))
            .filter(|ch| ch.members.contains_key(&id) || !ch.modes.contains(&'s'))
            .map(|ch| (ch.name.clone(), ch.store));
        if let Some((shown, store)) = chan {
            let remote = ctx
                .rooms
                .get(&store)
                .map(|h| ctx.rooms.online_elsewhere(&h))
                .unwrap_or_default();
            let mesh = as_nick(&ctx.rooms.mesh_name());
            for (name, node, in_sync) in remote {
                let nick = as_nick(&name);
                let real = format!(
                    "1 {name} on node {node}, {}",
                    if in_sync { "in sync" } else { "catching up" }
                );
                st.reply(id, "352", &[&shown, &node, &mesh, &node, &nick, "H", &real]);
            }
        }
    }
    st.reply(id, "315", &[mask, "End of /WHO list"]);
}

pub fn whois(st: &mut State, id: ConnId, p: &[&str]) {
    let Some(target) = p.last().filter(|t| !t.is_empty()).copied() else {
        st.reply(id, "431", &["No nickname given"]);
        return;
    };
    for nick in target.split(',').filter(|n| !n.is_empty()) {
        whois_one(st, id, nick);
    }
}

fn whois_one(st: &mut State, id: ConnId, nick: &str) {
    let Some(tid) = st.by_nick(nick) else {
        st.reply(id, "401", &[nick, "No such nick/channel"]);
        st.reply(id, "318", &[nick, "End of /WHOIS list"]);
        return;
    };
    let Some(c) = st.clients.get(&tid) else {
        return;
    };
    let (tnick, user, host, real) = (
        c.nick().to_string(),
        c.user().to_string(),
        c.host.clone(),
        c.realname.clone(),
    );
    let (away, oper, signon) = (c.away.clone(), c.is_oper(), c.signon);
    let idle = unix_now().saturating_sub(c.last_active);
    let chans: Vec<String> = c
        .channels
        .iter()
        .filter_map(|f| {
            let ch = st.channels.get(f)?;
            let visible = !ch.modes.contains(&'s') || ch.members.contains_key(&id);
            let m = ch.members.get(&tid)?;
            visible.then(|| format!("{}{}", m.prefix(), ch.name))
        })
        .collect();
    let (server, info) = (st.server().to_string(), st.config.info.clone());
    st.reply(id, "311", &[&tnick, &user, &host, "*", &real]);
    if !chans.is_empty() {
        st.reply(id, "319", &[&tnick, &chans.join(" ")]);
    }
    st.reply(id, "312", &[&tnick, &server, &info]);
    if oper {
        st.reply(id, "313", &[&tnick, "is an IRC operator"]);
    }
    if let Some(away) = away {
        st.reply(id, "301", &[&tnick, &away]);
    }
    st.reply(
        id,
        "317",
        &[
            &tnick,
            &idle.to_string(),
            &signon.to_string(),
            "seconds idle, signon time",
        ],
    );
    st.reply(id, "318", &[&tnick, "End of /WHOIS list"]);
}

pub fn whowas(st: &mut State, id: ConnId, p: &[&str]) {
    let Some(nicks) = p.first().filter(|n| !n.is_empty()).copied() else {
        st.reply(id, "431", &["No nickname given"]);
        return;
    };
    // A count of zero or less means all entries (RFC 2812 §3.6.3).
    let count = p
        .get(1)
        .and_then(|c| c.parse::<i64>().ok())
        .filter(|c| *c > 0)
        .map(|c| c as usize)
        .unwrap_or(usize::MAX);
    let server = st.server().to_string();
    for nick in nicks.split(',').filter(|n| !n.is_empty()) {
        let rows: Vec<[String; 4]> = st
            .whowas
            .iter()
            .filter(|w| fold(&w.nick) == fold(nick))
            .take(count)
            .map(|w| {
                [
                    w.nick.clone(),
                    w.user.clone(),
                    w.host.clone(),
                    w.realname.clone(),
                ]
            })
            .collect();
        let at: Vec<u64> = st
            .whowas
            .iter()
            .filter(|w| fold(&w.nick) == fold(nick))
            .take(count)
            .map(|w| w.at)
            .collect();
        if rows.is_empty() {
            st.reply(id, "406", &[nick, "There was no such nickname"]);
        }
        for ([n, user, host, real], at) in rows.into_iter().zip(at) {
            st.reply(id, "314", &[&n, &user, &host, "*", &real]);
            st.reply(id, "312", &[&n, &server, &format_time(at)]);
        }
        st.reply(id, "369", &[nick, "End of WHOWAS"]);
    }
}

pub fn ison(st: &mut State, id: ConnId, p: &[&str]) {
    if !enough(st, id, "ISON", p, 1) {
        return;
    }
    let on: Vec<String> = p
        .iter()
        .flat_map(|s| s.split(' '))
        .filter_map(|n| st.by_nick(n))
        .filter_map(|i| st.clients.get(&i).map(|c| c.nick().to_string()))
        .collect();
    st.reply(id, "303", &[&on.join(" ")]);
}

pub fn userhost(st: &mut State, id: ConnId, p: &[&str]) {
    if !enough(st, id, "USERHOST", p, 1) {
        return;
    }
    let rows: Vec<String> = p
        .iter()
        .take(5)
        .filter_map(|n| st.by_nick(n))
        .filter_map(|i| {
            let c = st.clients.get(&i)?;
            Some(format!(
                "{}{}={}{}@{}",
                c.nick(),
                if c.is_oper() { "*" } else { "" },
                if c.away.is_some() { '-' } else { '+' },
                c.user(),
                c.host
            ))
        })
        .collect();
    st.reply(id, "302", &[&rows.join(" ")]);
}

pub fn version(st: &mut State, id: ConnId) {
    let server = st.server().to_string();
    st.reply(id, "351", &[VERSION, &server, "Lattice IRC gateway"]);
}

pub fn time(st: &mut State, id: ConnId) {
    let server = st.server().to_string();
    st.reply(id, "391", &[&server, &format_time(unix_now())]);
}

pub fn info(st: &mut State, id: ConnId) {
    let lines = [
        format!("{VERSION}: an IRC face for Lattice chat rooms."),
        "Channels are chat stores of the mesh; messages are signed ops".into(),
        "that every member replicates. Modes and bans are this gateway's.".into(),
        st.config.info.clone(),
    ];
    for l in lines {
        st.reply(id, "371", &[&l]);
    }
    st.reply(id, "374", &["End of /INFO list"]);
}

pub fn links(st: &mut State, id: ConnId) {
    let (server, info) = (st.server().to_string(), st.config.info.clone());
    st.reply(id, "364", &[&server, &server, &format!("0 {info}")]);
    st.reply(id, "365", &["*", "End of /LINKS list"]);
}

pub fn admin(st: &mut State, id: ConnId) {
    let server = st.server().to_string();
    st.reply(id, "256", &[&server, "Administrative info"]);
    st.reply(id, "257", &["This gateway is run by the node's owner"]);
    st.reply(
        id,
        "258",
        &["See `lattice mesh status` for the mesh's members"],
    );
    st.reply(id, "259", &["no e-mail"]);
}

/// HELP topics: one line each, for the commands users type most.
const HELP: &[(&str, &str)] = &[
    (
        "JOIN",
        "JOIN #room [key]: enter a room; a new name creates a chat store",
    ),
    ("PART", "PART #room [reason]: leave a room"),
    (
        "PRIVMSG",
        "PRIVMSG #room|nick :text: talk; room messages are stored",
    ),
    (
        "NOTICE",
        "NOTICE target :text: like PRIVMSG, never auto-answered",
    ),
    (
        "TOPIC",
        "TOPIC #room [:text]: show or set the room's replicated topic",
    ),
    ("LIST", "LIST [mask|>n|<n|C>m|T<m]: rooms of the mesh"),
    ("NAMES", "NAMES [#room]: who is in a room on this gateway"),
    ("WHO", "WHO mask [%fields]: users matching mask"),
    ("WHOIS", "WHOIS nick: about a user"),
    ("MODE", "MODE #room|nick [changes]: show or change modes"),
    ("AWAY", "AWAY [:message]: set or clear your away message"),
    ("QUIT", "QUIT [:reason]: leave"),
];

pub fn help(st: &mut State, id: ConnId, p: &[&str]) {
    let topic = p.first().map(|t| t.to_ascii_uppercase());
    match topic {
        None => {
            st.reply(
                id,
                "704",
                &["*", "Lattice IRC gateway: commands you can use"],
            );
            let names: Vec<&str> = HELP.iter().map(|(n, _)| *n).collect();
            st.reply(id, "705", &["*", &names.join(" ")]);
            st.reply(id, "706", &["*", "End of /HELP"]);
        }
        Some(t) => match HELP.iter().find(|(n, _)| *n == t) {
            Some((n, text)) => {
                st.reply(id, "704", &[n, &format!("** {n} **")]);
                st.reply(id, "705", &[n, text]);
                st.reply(id, "706", &[n, "End of /HELP"]);
            }
            None => st.reply(id, "524", &[&t, "No help available on this topic"]),
        },
    }
}
