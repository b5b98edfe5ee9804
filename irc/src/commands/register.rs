//! Connection registration (PASS, NICK, USER, CAP), the welcome burst
//! (001–005, LUSERS, MOTD), PING and QUIT.

use super::enough;
use crate::line::{self, fold, valid_nick};
use crate::state::{ConnId, Line, State};

pub const NICKLEN: usize = 32;
const USERLEN: usize = 16;
pub const VERSION: &str = concat!("lattice-", env!("CARGO_PKG_VERSION"));

pub fn pass(st: &mut State, id: ConnId, p: &[&str]) {
    if !enough(st, id, "PASS", p, 1) {
        return;
    }
    let Some(c) = st.clients.get_mut(&id) else {
        return;
    };
    if c.registered {
        st.reply(id, "462", &["You may not reregister"]);
        return;
    }
    c.pass = Some(p[0].to_string());
}

pub fn nick(st: &mut State, id: ConnId, p: &[&str]) {
    let Some(new) = p.first().filter(|n| !n.is_empty()).copied() else {
        st.reply(id, "431", &["No nickname given"]);
        return;
    };
    if !valid_nick(new, NICKLEN) {
        st.reply(id, "432", &[new, "Erroneous nickname"]);
        return;
    }
    let folded = fold(new);
    if let Some(&other) = st.nicks.get(&folded) {
        if other != id {
            st.reply(id, "433", &[new, "Nickname is already in use"]);
            return;
        }
    }
    let Some(c) = st.clients.get(&id) else { return };
    let registered = c.registered;
    let old = c.nick.clone();
    if old.as_deref() == Some(new) {
        return;
    }
    if registered {
        let change: Line = line::format(&c.prefix(), "NICK", &[new], false).into();
        st.remember_whowas(id);
        for n in st.neighbours(id) {
            st.send(n, change.clone());
        }
    }
    if let Some(old) = &old {
        st.nicks.remove(&fold(old));
    }
    st.nicks.insert(folded, id);
    if let Some(c) = st.clients.get_mut(&id) {
        c.nick = Some(new.to_string());
    }
    try_register(st, id);
}

pub fn user(st: &mut State, id: ConnId, p: &[&str]) {
    if st.clients.get(&id).is_some_and(|c| c.registered) {
        st.reply(id, "462", &["You may not reregister"]);
        return;
    }
    if p.len() < 4 || p[0].is_empty() || p[3].is_empty() {
        st.reply(id, "461", &["USER", "Not enough parameters"]);
        return;
    }
    let user: String = p[0]
        .chars()
        .filter(|c| c.is_alphanumeric() || "-_.[]{}|^`\\~".contains(*c))
        .take(USERLEN)
        .collect();
    if user.is_empty() {
        st.reply(id, "468", &["Your username is not valid"]);
        return;
    }
    if let Some(c) = st.clients.get_mut(&id) {
        c.user = Some(user);
        c.realname = p[3].to_string();
    }
    try_register(st, id);
}

pub fn cap(st: &mut State, id: ConnId, p: &[&str]) {
    if !enough(st, id, "CAP", p, 1) {
        return;
    }
    let Some(c) = st.clients.get_mut(&id) else {
        return;
    };
    let registered = c.registered;
    let nick = c.nick().to_string();
    let server = st.server().to_string();
    let sub = p[0].to_ascii_uppercase();
    match sub.as_str() {
        // No capabilities are offered: plain IRC only.
        "LS" | "LIST" => {
            if !registered {
                st.clients.get_mut(&id).map(|c| c.cap_hold = true);
            }
            st.send_str(id, line::format(&server, "CAP", &[&nick, &sub, ""], true));
        }
        "REQ" => {
            if !registered {
                st.clients.get_mut(&id).map(|c| c.cap_hold = true);
            }
            let asked = p.get(1).copied().unwrap_or("");
            st.send_str(
                id,
                line::format(&server, "CAP", &[&nick, "NAK", asked], true),
            );
        }
        "END" => {
            if let Some(c) = st.clients.get_mut(&id) {
                c.cap_hold = false;
            }
            try_register(st, id);
        }
        _ => st.reply(id, "410", &[p[0], "Invalid CAP command"]),
    }
}

pub fn ping(st: &mut State, id: ConnId, p: &[&str]) {
    let Some(token) = p.first() else {
        st.reply(id, "409", &["No origin specified"]);
        return;
    };
    let server = st.server().to_string();
    st.send_str(id, line::format(&server, "PONG", &[&server, token], true));
}

pub fn quit(st: &mut State, id: ConnId, p: &[&str]) {
    let reason = match p.first().filter(|r| !r.is_empty()) {
        Some(r) => format!("Quit: {r}"),
        None => "Quit".to_string(),
    };
    close(st, id, &reason);
}

/// Sends `ERROR` and drops the connection once its queue is written.
pub fn close(st: &mut State, id: ConnId, reason: &str) {
    if let Some(c) = st.clients.get(&id) {
        let text = format!("Closing link: {}[{}] ({reason})", c.nick(), c.host);
        st.send_str(id, line::format("", "ERROR", &[&text], true));
    }
    st.remove(id, reason);
}

fn try_register(st: &mut State, id: ConnId) {
    let Some(c) = st.clients.get(&id) else { return };
    if c.registered || c.nick.is_none() || c.user.is_none() || c.cap_hold {
        return;
    }
    if let Some(want) = &st.config.password {
        if c.pass.as_deref() != Some(want.as_str()) {
            st.reply(id, "464", &["Password incorrect"]);
            close(st, id, "Bad password");
            return;
        }
    }
    if let Some(c) = st.clients.get_mut(&id) {
        c.registered = true;
    }
    let registered = st.clients.values().filter(|c| c.registered).count();
    st.max_clients_seen = st.max_clients_seen.max(registered);
    welcome(st, id);
}

fn welcome(st: &mut State, id: ConnId) {
    let Some(c) = st.clients.get(&id) else { return };
    let prefix = c.prefix();
    let server = st.server().to_string();
    let network = st.config.network.clone();
    st.reply(
        id,
        "001",
        &[&format!("Welcome to the {network} IRC gateway, {prefix}")],
    );
    st.reply(
        id,
        "002",
        &[&format!("Your host is {server}, running version {VERSION}")],
    );
    let started = crate::state::format_time(st.started);
    st.reply(id, "003", &[&format!("This server was created {started}")]);
    st.reply_plain(
        id,
        "004",
        &[&server, VERSION, "iow", "beIiklmnost", "beIklov"],
    );
    let tokens = isupport(st);
    for chunk in tokens.chunks(12) {
        let mut params: Vec<&str> = chunk.iter().map(String::as_str).collect();
        params.push("are supported by this server");
        st.reply(id, "005", &params);
    }
    lusers(st, id);
    motd(st, id);
}

fn isupport(st: &State) -> Vec<String> {
    [
        "AWAYLEN=200".to_string(),
        "CASEMAPPING=ascii".into(),
        "CHANLIMIT=#:100".into(),
        "CHANMODES=beI,k,l,imnst".into(),
        "CHANNELLEN=64".into(),
        "CHANTYPES=#".into(),
        "ELIST=CMNTU".into(),
        "EXCEPTS=e".into(),
        "INVEX=I".into(),
        "KICKLEN=300".into(),
        "MAXLIST=beI:100".into(),
        "MODES=4".into(),
        format!("NETWORK={}", st.config.network),
        format!("NICKLEN={NICKLEN}"),
        "PREFIX=(ov)@+".into(),
        "STATUSMSG=@+".into(),
        "TARGMAX=JOIN:,KICK:1,LIST:1,NAMES:1,NOTICE:4,PART:,PRIVMSG:4,WHOIS:1".into(),
        "TOPICLEN=390".into(),
        format!("USERLEN={USERLEN}"),
        "UTF8ONLY".into(),
        "WHOX".into(),
    ]
    .into()
}

pub fn lusers(st: &mut State, id: ConnId) {
    let users: Vec<_> = st.clients.values().filter(|c| c.registered).collect();
    let total = users.len();
    let invisible = users.iter().filter(|c| c.modes.contains(&'i')).count();
    let opers = users.iter().filter(|c| c.is_oper()).count();
    let unknown = st.clients.len() - total;
    let channels = st.channels.len();
    let max = st.max_clients_seen.max(total);
    st.reply(
        id,
        "251",
        &[&format!(
            "There are {} users and {invisible} invisible on 1 servers",
            total - invisible
        )],
    );
    if opers > 0 {
        st.reply(id, "252", &[&opers.to_string(), "operator(s) online"]);
    }
    if unknown > 0 {
        st.reply(id, "253", &[&unknown.to_string(), "unknown connection(s)"]);
    }
    st.reply(id, "254", &[&channels.to_string(), "channels formed"]);
    st.reply(
        id,
        "255",
        &[&format!("I have {total} clients and 0 servers")],
    );
    let (t, m) = (total.to_string(), max.to_string());
    st.reply(
        id,
        "265",
        &[&t, &m, &format!("Current local users {total}, max {max}")],
    );
    st.reply(
        id,
        "266",
        &[&t, &m, &format!("Current global users {total}, max {max}")],
    );
}

pub fn motd(st: &mut State, id: ConnId) {
    let motd = st.config.motd.clone();
    if motd.is_empty() {
        st.reply(id, "422", &["MOTD File is missing"]);
        return;
    }
    let server = st.server().to_string();
    st.reply(id, "375", &[&format!("- {server} Message of the day - ")]);
    for l in motd {
        st.reply(id, "372", &[&format!("- {l}")]);
    }
    st.reply(id, "376", &["End of /MOTD command."]);
}
