//! Operator commands: OPER, KILL, WALLOPS. Operator credentials are the
//! gateway's flags; an operator has power over this gateway's IRC
//! sessions only, never over the mesh.

use super::enough;
use super::register::close;
use crate::line;
use crate::state::{ConnId, Line, State};

pub fn oper(st: &mut State, id: ConnId, p: &[&str]) {
    if !enough(st, id, "OPER", p, 2) {
        return;
    }
    let ok = st
        .config
        .opers
        .iter()
        .any(|(n, pw)| n == p[0] && same(pw.as_bytes(), p[1].as_bytes()));
    if !ok {
        // One answer for an unknown name and a wrong password, and three
        // tries per connection: guessing costs a reconnect and registration.
        st.reply(id, "464", &["Password incorrect"]);
        let failures = st.clients.get_mut(&id).map(|c| {
            c.oper_failures += 1;
            c.oper_failures
        });
        if failures >= Some(3) {
            close(st, id, "Too many failed OPER attempts");
        }
        return;
    }
    let Some(c) = st.clients.get_mut(&id) else {
        return;
    };
    let nick = c.nick().to_string();
    let newly = c.modes.insert('o');
    st.reply(id, "381", &["You are now an IRC operator"]);
    if newly {
        st.send_str(id, line::format(&nick, "MODE", &[&nick, "+o"], false));
    }
}

/// Whether `id` is an operator; `481` to it if not.
fn oper_only(st: &mut State, id: ConnId) -> bool {
    if st.clients.get(&id).is_some_and(|c| c.is_oper()) {
        return true;
    }
    st.reply(
        id,
        "481",
        &["Permission Denied- You're not an IRC operator"],
    );
    false
}

/// Compares without stopping at the first difference.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

pub fn kill(st: &mut State, id: ConnId, p: &[&str]) {
    if !enough(st, id, "KILL", p, 2) {
        return;
    }
    if !oper_only(st, id) {
        return;
    }
    let Some(c) = st.clients.get(&id) else { return };
    let killer = c.nick().to_string();
    let Some(tid) = st.by_nick(p[0]) else {
        st.reply(id, "401", &[p[0], "No such nick/channel"]);
        return;
    };
    let reason = format!("Killed ({killer} ({}))", p[1]);
    let Some(t) = st.clients.get(&tid) else {
        return;
    };
    let tnick = t.nick().to_string();
    let server = st.server().to_string();
    st.send_str(tid, line::format(&server, "KILL", &[&tnick, &reason], true));
    close(st, tid, &reason);
}

pub fn wallops(st: &mut State, id: ConnId, p: &[&str]) {
    if !enough(st, id, "WALLOPS", p, 1) {
        return;
    }
    if !oper_only(st, id) {
        return;
    }
    let Some(c) = st.clients.get(&id) else { return };
    let l: Line = line::format(&c.prefix(), "WALLOPS", &[p[0]], true).into();
    let to: Vec<ConnId> = st
        .clients
        .iter()
        .filter(|(_, c)| c.registered && c.modes.contains(&'w'))
        .map(|(i, _)| *i)
        .collect();
    for t in to {
        st.send(t, l.clone());
    }
}
