//! Carrying out a typed line against the room on screen. A refused
//! command (not your message, no such room) becomes a notice; the client
//! keeps running.

use anyhow::{Result, bail};
use lattice_cli::dynamic::terminal_safe;
use lattice_host::api::{Request, Response};

use super::input::{self, Command};
use super::pb;
use super::source::Source;
use super::state::{App, DEFAULT_LIMIT, Thread};

/// Whether the client goes on after a line.
#[derive(Debug, PartialEq)]
pub enum Outcome {
    Continue,
    Quit,
}

/// A finished line from the composer.
pub fn line(app: &mut App, source: &mut Source, line: &str) -> Outcome {
    let cmd = match input::parse(line) {
        Ok(c) => c,
        Err(e) => {
            app.fail(e);
            return Outcome::Continue;
        }
    };
    match run(app, source, cmd) {
        Ok(o) => o,
        Err(e) => {
            let mut msg = e.to_string();
            for cause in e.chain().skip(1) {
                msg.push_str(&format!(": {cause}"));
            }
            app.fail(msg);
            Outcome::Continue
        }
    }
}

fn room(app: &App) -> Result<String> {
    match &app.current {
        Some(id) => Ok(id.clone()),
        None => bail!("no room open: /join #name opens (or creates) one"),
    }
}

fn run(app: &mut App, source: &mut Source, cmd: Command) -> Result<Outcome> {
    match cmd {
        Command::Post(text) => {
            let r = room(app)?;
            // With a thread open, a plain line continues it.
            if let Some(to) = app.thread.as_ref().map(|t| t.root.clone()) {
                let reply = pb::ReplyRequest {
                    to,
                    text,
                    nick: String::new(),
                };
                source.chat::<pb::ReplyReply>(&r, "Reply", &reply)?;
            } else {
                let post = pb::PostRequest {
                    text,
                    nick: String::new(),
                };
                source.chat::<pb::PostReply>(&r, "Post", &post)?;
            }
            app.scroll = 0;
            app.notice = None;
        }
        Command::Join(name) => join(app, source, &name)?,
        Command::List => {
            let list: Vec<String> = app
                .rooms
                .iter()
                .map(|r| match r.unread {
                    0 => format!("#{}", r.name),
                    n => format!("#{} ({n} new)", r.name),
                })
                .collect();
            if list.is_empty() {
                app.say("no rooms yet: /join #name creates one");
            } else {
                app.say(format!("rooms: {}", list.join(", ")));
            }
        }
        Command::Reply { to, text } => {
            let (r, id) = (room(app)?, app.resolve(&to)?);
            source.chat::<pb::ReplyReply>(
                &r,
                "Reply",
                &pb::ReplyRequest {
                    to: id,
                    text,
                    nick: String::new(),
                },
            )?;
            app.say(format!("replied to #{}", to.trim_start_matches('#')));
        }
        Command::React { to, emoji } => {
            let r = room(app)?;
            let id = match &to {
                Some(n) => app.resolve(n)?,
                None => match app.last_message() {
                    Some(m) => m.id.clone(),
                    None => bail!("no message to react to"),
                },
            };
            let n = app.number(&id).unwrap_or_default();
            source.chat::<pb::ReactReply>(
                &r,
                "React",
                &pb::ReactRequest {
                    to: id,
                    emoji: emoji.clone(),
                },
            )?;
            app.say(format!("reacted {} to #{n}", terminal_safe(&emoji)));
        }
        Command::Unreact { to, emoji } => {
            let (r, id) = (room(app)?, app.resolve(&to)?);
            source.chat::<pb::UnreactReply>(
                &r,
                "Unreact",
                &pb::UnreactRequest { to: id, emoji },
            )?;
            app.say("reaction taken back");
        }
        Command::Topic(None) => {
            if app.topic.is_empty() {
                app.say("no topic set: /topic TEXT sets one");
            } else {
                app.say(format!("topic: {}", app.topic));
            }
        }
        Command::Topic(Some(text)) => {
            let r = room(app)?;
            source.chat::<pb::SetTopicReply>(&r, "SetTopic", &pb::SetTopicRequest { text })?;
            app.say("topic set");
        }
        Command::Edit { to, text } => {
            let (r, id) = (room(app)?, app.resolve(&to)?);
            source.chat::<pb::EditReply>(&r, "Edit", &pb::EditRequest { id, text })?;
            app.say(format!("edited #{}", to.trim_start_matches('#')));
        }
        Command::Delete(to) => {
            let (r, id) = (room(app)?, app.resolve(&to)?);
            source.chat::<pb::DeleteReply>(&r, "Delete", &pb::DeleteRequest { id })?;
            app.say(format!("deleted #{}", to.trim_start_matches('#')));
        }
        Command::Thread(to) => {
            let id = app.resolve(&to)?;
            if app.find(&id).is_some_and(|m| !m.reply_to.is_empty()) {
                app.say("that is a reply; showing the thread from it");
            } else {
                app.notice = None;
            }
            app.thread = Some(Thread {
                root: id,
                messages: Vec::new(),
            });
            app.scroll = 0;
            app.stale = true;
        }
        Command::Back => {
            app.thread = None;
            app.scroll = 0;
        }
        Command::Messages(n) => {
            app.limit = n.unwrap_or(DEFAULT_LIMIT).clamp(1, 1000);
            app.stale = true;
            app.say(format!("showing up to {} messages", app.limit));
        }
        Command::Help => app.help = true,
        Command::Quit => return Ok(Outcome::Quit),
    }
    Ok(Outcome::Continue)
}

/// Opens room `name`, creating it when the mesh has none by that name
/// (as IRC's JOIN does), so every member sees the new room.
fn join(app: &mut App, source: &mut Source, name: &str) -> Result<()> {
    if let Some(r) = app.room_by_name(name) {
        let id = r.id.clone();
        app.switch(id);
        app.notice = None;
        return Ok(());
    }
    // Another member may have made it since the last refresh.
    app.refresh_mesh(source)?;
    if let Some(r) = app.room_by_name(name) {
        let id = r.id.clone();
        app.switch(id);
        return Ok(());
    }
    let store = match source.call(Request::StoreCreate {
        name: Some(name.to_string()),
        kind: Some("chat".into()),
        wasm: None,
    })? {
        Response::Store { store } => store,
        other => bail!("unexpected reply to store create: {other:?}"),
    };
    app.refresh_mesh(source)?;
    app.switch(store.id);
    app.say(format!("created room #{}", terminal_safe(&store.name)));
    Ok(())
}
