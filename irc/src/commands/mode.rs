//! MODE, for channels (`beI,k,l,imnst` and `ov`, as CHANMODES and PREFIX
//! say) and for users (`i`, `w`, and `o` which only OPER grants).

use super::enough;
use crate::line::{self, fold};
use crate::state::{ConnId, Line, ListEntry, State, unix_now};

/// Longest channel key; longer keys are cut (RFC 2812 allows 23).
const KEYLEN: usize = 23;
/// Most entries in a ban, exception or invite-exception list (`MAXLIST`).
const MAXLIST: usize = 100;
/// Most mode changes with a parameter in one command (`MODES`).
const MODES: usize = 4;

pub fn mode(st: &mut State, id: ConnId, p: &[&str]) {
    if !enough(st, id, "MODE", p, 1) {
        return;
    }
    if p[0].starts_with('#') {
        channel_mode(st, id, p);
    } else {
        user_mode(st, id, p);
    }
}

fn user_mode(st: &mut State, id: ConnId, p: &[&str]) {
    let Some(tid) = st.by_nick(p[0]) else {
        st.reply(id, "401", &[p[0], "No such nick/channel"]);
        return;
    };
    if tid != id {
        st.reply(id, "502", &["Can't change mode for other users"]);
        return;
    }
    let Some(c) = st.clients.get_mut(&id) else {
        return;
    };
    let Some(changes) = p.get(1) else {
        let modes: String = c.modes.iter().collect();
        st.reply_plain(id, "221", &[&format!("+{modes}")]);
        return;
    };
    let (mut adding, mut applied, mut unknown) = (true, String::new(), false);
    let mut last_sign = None;
    for ch in changes.chars() {
        match ch {
            '+' => adding = true,
            '-' => adding = false,
            // +o only through OPER; -o is allowed.
            'i' | 'w' | 'o' if !(ch == 'o' && adding) => {
                let changed = if adding {
                    c.modes.insert(ch)
                } else {
                    c.modes.remove(&ch)
                };
                if changed {
                    if last_sign != Some(adding) {
                        applied.push(if adding { '+' } else { '-' });
                        last_sign = Some(adding);
                    }
                    applied.push(ch);
                }
            }
            'o' => {}
            _ => unknown = true,
        }
    }
    let nick = c.nick().to_string();
    if unknown {
        st.reply(id, "501", &["Unknown MODE flag"]);
    }
    if !applied.is_empty() {
        st.send_str(id, line::format(&nick, "MODE", &[&nick, &applied], true));
    }
}

fn channel_mode(st: &mut State, id: ConnId, p: &[&str]) {
    let Some((folded, shown, member)) = st.channel_or_403(id, p[0]) else {
        return;
    };
    let Some(ch) = st.channels.get(&folded) else {
        return;
    };
    let Some(changes) = p.get(1) else {
        let modes = ch.mode_string(member);
        let created = ch.created.to_string();
        let mut params = vec![shown.as_str()];
        params.extend(modes.split(' '));
        st.reply_plain(id, "324", &params);
        st.reply_plain(id, "329", &[&shown, &created]);
        return;
    };
    let is_op = ch.is_op(id);
    let mut args = p[2..].iter().copied();
    let mut adding = true;
    let mut applied: Vec<(bool, char, Option<String>)> = Vec::new();
    let mut denied = false;
    let mut with_param = 0;
    let Some(prefix) = st.clients.get(&id).map(|c| c.prefix()) else {
        return;
    };
    for m in changes.chars() {
        match m {
            '+' => adding = true,
            '-' => adding = false,
            'b' | 'e' | 'I' => {
                let Some(mask) = args.next() else {
                    list_reply(st, id, &folded, m);
                    continue;
                };
                if !is_op {
                    denied = true;
                    continue;
                }
                with_param += 1;
                if with_param > MODES {
                    continue;
                }
                if mask.is_empty() || mask.starts_with(':') || mask.contains([' ', ',']) {
                    st.reply(id, "696", &[&shown, &m.to_string(), "*", "Invalid mask"]);
                    continue;
                }
                let mask = normalize_mask(mask);
                let Some(ch) = st.channels.get_mut(&folded) else {
                    return;
                };
                let list = match m {
                    'b' => &mut ch.bans,
                    'e' => &mut ch.excepts,
                    _ => &mut ch.invex,
                };
                let at = list.iter().position(|e| fold(&e.mask) == fold(&mask));
                match (adding, at) {
                    (true, None) if list.len() < MAXLIST => {
                        list.push(ListEntry {
                            mask: mask.clone(),
                            setter: prefix.clone(),
                            at: unix_now(),
                        });
                        applied.push((true, m, Some(mask)));
                    }
                    (true, None) => st.reply(id, "478", &[&shown, &mask, "Channel list is full"]),
                    (false, Some(i)) => {
                        let e = list.remove(i);
                        applied.push((false, m, Some(e.mask)));
                    }
                    _ => {}
                }
            }
            'o' | 'v' => {
                let Some(nick) = args.next() else {
                    continue;
                };
                if !member {
                    st.not_on_channel(id, &shown);
                    return;
                }
                if !is_op {
                    denied = true;
                    continue;
                }
                let Some(tid) = st.by_nick(nick) else {
                    st.reply(id, "401", &[nick, "No such nick/channel"]);
                    continue;
                };
                let tnick = st
                    .clients
                    .get(&tid)
                    .map(|c| c.nick().to_string())
                    .unwrap_or_default();
                let Some(ch) = st.channels.get_mut(&folded) else {
                    return;
                };
                let Some(status) = ch.members.get_mut(&tid) else {
                    st.reply(id, "441", &[nick, &shown, "They aren't on that channel"]);
                    continue;
                };
                let flag = if m == 'o' {
                    &mut status.op
                } else {
                    &mut status.voice
                };
                if *flag != adding {
                    *flag = adding;
                    applied.push((adding, m, Some(tnick)));
                }
            }
            'k' | 'l' | 'i' | 'm' | 'n' | 's' | 't' => {
                // `+k key`, `-k [key]` and `+l n` take a parameter; `-l` none.
                let arg = match m {
                    'k' => args.next(),
                    'l' if adding => args.next(),
                    _ => None,
                };
                if !is_op {
                    denied = true;
                    continue;
                }
                let Some(ch) = st.channels.get_mut(&folded) else {
                    return;
                };
                match set_mode(ch, m, adding, arg) {
                    Ok(Some(change)) => applied.push(change),
                    Ok(None) => {}
                    Err(()) => st.reply(id, "696", &[&shown, "k", "*", "Invalid key"]),
                }
            }
            other => st.reply(
                id,
                "472",
                &[&other.to_string(), "is unknown mode char to me"],
            ),
        }
    }
    if denied {
        if !member {
            st.not_on_channel(id, &shown);
        } else {
            st.reply(id, "482", &[&shown, "You're not channel operator"]);
        }
    }
    if applied.is_empty() {
        return;
    }
    let mut flags = String::new();
    let mut params = Vec::new();
    let mut sign = None;
    for (add, m, arg) in applied {
        if sign != Some(add) {
            flags.push(if add { '+' } else { '-' });
            sign = Some(add);
        }
        flags.push(m);
        params.extend(arg);
    }
    let mut all = vec![shown.as_str(), flags.as_str()];
    all.extend(params.iter().map(String::as_str));
    let l: Line = line::format(&prefix, "MODE", &all, false).into();
    st.to_channel(&folded, &l, None);
}

/// One change of a key, limit or flag mode: what to echo, if anything
/// changed; `Err` for a key that cannot be typed in a JOIN.
fn set_mode(
    ch: &mut crate::state::Channel,
    m: char,
    adding: bool,
    arg: Option<&str>,
) -> Result<Option<(bool, char, Option<String>)>, ()> {
    Ok(match (m, adding) {
        ('k', true) => {
            let Some(key) = arg else { return Ok(None) };
            if key.is_empty() || key.contains(' ') || key.contains(',') {
                return Err(());
            }
            let mut key = key.to_string();
            line::truncate(&mut key, KEYLEN);
            ch.key = Some(key.clone());
            Some((true, 'k', Some(key)))
        }
        ('k', false) => ch.key.take().map(|_| (false, 'k', Some("*".into()))),
        ('l', true) => {
            // Not a positive number: ignored, as most servers do.
            let n = arg.and_then(|a| a.parse::<usize>().ok()).filter(|n| *n > 0);
            match n {
                Some(n) if ch.limit != Some(n) => {
                    ch.limit = Some(n);
                    Some((true, 'l', Some(n.to_string())))
                }
                _ => None,
            }
        }
        ('l', false) => ch.limit.take().map(|_| (false, 'l', None)),
        _ => {
            let changed = if adding {
                ch.modes.insert(m)
            } else {
                ch.modes.remove(&m)
            };
            changed.then_some((adding, m, None))
        }
    })
}

/// The entries of a ban (`b`), exception (`e`) or invite-exception (`I`) list.
fn list_reply(st: &mut State, id: ConnId, folded: &str, m: char) {
    let Some(ch) = st.channels.get(folded) else {
        return;
    };
    let (list, item, end, what) = match m {
        'b' => (&ch.bans, "367", "368", "End of channel ban list"),
        'e' => (&ch.excepts, "348", "349", "End of channel exception list"),
        _ => (&ch.invex, "346", "347", "End of channel invite list"),
    };
    let rows: Vec<[String; 3]> = list
        .iter()
        .map(|e| [e.mask.clone(), e.setter.clone(), e.at.to_string()])
        .collect();
    let shown = ch.name.clone();
    for [mask, setter, at] in rows {
        st.reply_plain(id, item, &[&shown, &mask, &setter, &at]);
    }
    st.reply(id, end, &[&shown, what]);
}

/// `nick` → `nick!*@*`, `*@host` → `*!*@host`, as servers store masks.
fn normalize_mask(mask: &str) -> String {
    match (mask.contains('!'), mask.contains('@')) {
        (true, true) => mask.to_string(),
        (true, false) => format!("{mask}@*"),
        (false, true) => format!("*!{mask}"),
        (false, false) => format!("{mask}!*@*"),
    }
}
