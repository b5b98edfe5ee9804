//! One handler per IRC command, grouped by job. Every handler gets the
//! whole state and answers with numerics itself; none blocks for long.

mod channel;
mod list;
mod message;
mod mode;
mod oper;
mod query;
mod register;

pub use register::close;

use crate::core::Ctx;
use crate::line::Message;
use crate::state::{ConnId, State};

pub fn dispatch(st: &mut State, ctx: &Ctx, id: ConnId, msg: &Message<'_>) {
    let registered = st.clients.get(&id).is_some_and(|c| c.registered);
    let p = &msg.params;
    match msg.command.as_str() {
        "PASS" => register::pass(st, id, p),
        "NICK" => register::nick(st, id, p),
        "USER" => register::user(st, id, p),
        "CAP" => register::cap(st, id, p),
        "PING" => register::ping(st, id, p),
        "PONG" => {}
        "QUIT" => register::quit(st, id, p),
        cmd if !registered => {
            st.reply(id, "451", &[cmd, "You have not registered"]);
        }
        "JOIN" => channel::join(st, ctx, id, p),
        "PART" => channel::part(st, id, p),
        "TOPIC" => channel::topic(st, ctx, id, p),
        "NAMES" => channel::names(st, ctx, id, p),
        "LIST" => list::list(st, ctx, id, p),
        "KICK" => channel::kick(st, id, p),
        "INVITE" => channel::invite(st, id, p),
        "PRIVMSG" => message::send(st, ctx, id, p, "PRIVMSG"),
        "NOTICE" => message::send(st, ctx, id, p, "NOTICE"),
        "MODE" => mode::mode(st, id, p),
        "AWAY" => query::away(st, id, p),
        "WHO" => query::who(st, ctx, id, p),
        "WHOIS" => query::whois(st, id, p),
        "WHOWAS" => query::whowas(st, id, p),
        "ISON" => query::ison(st, id, p),
        "USERHOST" => query::userhost(st, id, p),
        "LUSERS" => register::lusers(st, id),
        "MOTD" => register::motd(st, id),
        "VERSION" => query::version(st, id),
        "TIME" => query::time(st, id),
        "INFO" => query::info(st, id),
        "LINKS" => query::links(st, id),
        "ADMIN" => query::admin(st, id),
        "HELP" | "HELPOP" => query::help(st, id, p),
        "OPER" => oper::oper(st, id, p),
        "KILL" => oper::kill(st, id, p),
        "WALLOPS" => oper::wallops(st, id, p),
        "USERS" | "SUMMON" => st.reply(id, "446", &[&msg.command, "Disabled"]),
        cmd => st.reply(id, "421", &[cmd, "Unknown command"]),
    }
}

/// Sends 461 unless there are `n` parameters.
fn enough(st: &mut State, id: ConnId, cmd: &str, p: &[&str], n: usize) -> bool {
    if p.len() < n {
        st.reply(id, "461", &[cmd, "Not enough parameters"]);
        return false;
    }
    true
}
